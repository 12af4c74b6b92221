//! Deal stages over simulated days (DESIGN.md §3.4, §3.5, §4). Each
//! scenario runs on patients created here, with appointments and billing
//! lines scripted through the simulated Ivoris, so every expected stage,
//! date and amount follows from the script, never from the engine's code.
//! Stage ids are looked up in HubSpot's pipeline by their labels.

mod engine_support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use engine_support::{Bed, bed, options, prop, run};
use ivoris_hubspot_sync::ivoris::wire::{Appointment, DocumentEntry, Patient};
use ivoris_hubspot_sync::ledger::{OutboxKind, RunOutcome};
use ivoris_hubspot_sync::sandbox::credentials;
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::{HubSpotSim, RecordSnapshot};

/// Stage label → stage id of the „Patientenreise“ pipeline, as HubSpot's
/// pipelines API reports them.
async fn stage_ids(bed: &Bed) -> BTreeMap<String, String> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/crm/v3/pipelines/deals",
            bed.sandbox.hubspot_url
        ))
        .bearer_auth(credentials::HUBSPOT_TOKEN)
        .send()
        .await
        .expect("pipelines")
        .json()
        .await
        .expect("pipelines body");
    let pipeline = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|p| p["label"] == "Patientenreise")
        .expect("the practice's pipeline");
    pipeline["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["label"].as_str().expect("label").to_string(),
                s["id"].as_str().expect("id").to_string(),
            )
        })
        .collect()
}

/// Live deals by case key.
fn deals(sim: &HubSpotSim) -> BTreeMap<String, RecordSnapshot> {
    sim.records("deals")
        .expect("deals")
        .into_iter()
        .filter(|r| !r.archived)
        .filter_map(|r| Some((r.properties.get("ivoris_case_key")?.clone(), r)))
        .collect()
}

/// A patient of the scenario: unique name and e-mail, no history.
fn patient(id: &str, number: u32, now: NaiveDateTime) -> Patient {
    Patient {
        id: id.to_string(),
        human_readable_id: Some(number.to_string()),
        firstname: Some(format!("Szenario{number}")),
        lastname: Some("Prüfling".to_string()),
        birthday: NaiveDate::from_ymd_opt(1980, 1, 1 + number % 28)
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        gender: None,
        email: Some(format!("szenario{number}@beispiel.test")),
        phone: None,
        mobile: None,
        address: None,
        health_insurance: None,
        current_insurance: None,
        last_modified: Some(now),
    }
}

/// An appointment without a template, so the simulated practice days never
/// settle it on their own: its state changes only when the script says so.
fn appointment(
    id: &str,
    patient: &str,
    type_label: &str,
    start: NaiveDateTime,
    state: &str,
    now: NaiveDateTime,
) -> Appointment {
    Appointment {
        id: id.to_string(),
        profile_id: None,
        patient_id: Some(patient.to_string()),
        practitioner_id: None,
        dentist_chair_id: None,
        template_id: None,
        type_label: Some(type_label.to_string()),
        start: Some(start),
        duration_minutes: Some(30),
        state: Some(state.to_string()),
        confirmation_state: None,
        last_modified: Some(now),
    }
}

fn entry(id: &str, patient: &str, date: NaiveDate, code: &str, euros: f64) -> DocumentEntry {
    DocumentEntry {
        id: id.to_string(),
        profile_id: None,
        patient_id: Some(patient.to_string()),
        practitioner_id: None,
        date: Some(date),
        entry_type: Some("lst".to_string()),
        catalogue: Some("GOZ".to_string()),
        code: Some(code.to_string()),
        quantity: Some(1.0),
        factor: Some(2.3),
        amount: Some(euros),
        tooth: None,
        text: None,
        last_modified: Some(date.and_hms_opt(18, 0, 0).expect("time")),
    }
}

/// Patient keys (`<location>:<id>`) the simulation changed between two
/// snapshots: the patient record, an appointment or a new billing line.
fn touched_patients(before: &World, after: &World) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    for location in &after.locations {
        let old = before.location(&location.key).expect("location");
        let key = |id: &str| format!("{}:{id}", location.key);
        for p in &location.patients {
            if old.patients.iter().find(|o| o.id == p.id) != Some(p) {
                touched.insert(key(&p.id));
            }
        }
        for a in &location.appointments {
            if old.appointments.iter().find(|o| o.id == a.id) != Some(a) {
                touched.insert(key(a.patient_id.as_deref().unwrap_or("")));
            }
        }
        for e in &location.entries {
            if !old.entries.iter().any(|o| o.id == e.id) {
                touched.insert(key(e.patient_id.as_deref().unwrap_or("")));
            }
        }
    }
    touched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_later_only_what_changed_is_written() {
    let bed = bed(options(23)).await;
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let full_writes = bed.sandbox.hubspot.write_calls();
    let before = bed.sandbox.ivoris.snapshot();
    let contacts_before: BTreeMap<String, RecordSnapshot> = bed
        .sandbox
        .hubspot
        .records("contacts")
        .expect("contacts")
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let deals_before = deals(&bed.sandbox.hubspot);
    let stages = stage_ids(&bed).await;
    let in_treatment = stages["In Behandlung"].as_str();
    let won = stages["Behandlung abgeschlossen"].as_str();

    let days = bed.sandbox.ivoris.advance_days(7);
    assert!(
        days.new_appointments + days.settled_appointments + days.changed_patients > 0,
        "the week brought changes: {days:?}"
    );
    let after = bed.sandbox.ivoris.snapshot();
    let touched = touched_patients(&before, &after);

    let second = run(&bed.env).await;
    assert_eq!(second.outcome, RunOutcome::Success, "{:?}", second.message);
    let writes = bed.sandbox.hubspot.write_calls() - full_writes;
    assert!(writes > 0, "the changes were written");
    assert!(
        writes * 4 < full_writes,
        "a week's changes take far fewer calls ({writes}) than the full sync ({full_writes})"
    );

    // Contacts written: only those of touched patients (a contact may carry
    // several patient keys when the person is a patient at two locations).
    for contact in bed.sandbox.hubspot.records("contacts").expect("contacts") {
        let unchanged = contacts_before
            .get(&contact.id)
            .is_some_and(|old| old.updated_at == contact.updated_at);
        if unchanged {
            continue;
        }
        let mut keys: BTreeSet<String> = prop(&contact, "ivoris_patient_keys")
            .split(';')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        keys.insert(prop(&contact, "ivoris_patient_key").to_string());
        assert!(
            keys.iter().any(|k| touched.contains(k)),
            "contact {} changed although none of its patients {keys:?} did",
            contact.id
        );
    }
    // Deals written: only cases of touched patients.
    let patient_of_case = |world: &World, case_key: &str| -> String {
        let (location, opening) = case_key.split_once(':').expect("case key");
        let patient = world
            .location(location)
            .expect("location")
            .appointments
            .iter()
            .find(|a| a.id == opening)
            .and_then(|a| a.patient_id.clone())
            .expect("opening appointment");
        format!("{location}:{patient}")
    };
    let mut changed_deals = 0;
    for (key, deal) in deals(&bed.sandbox.hubspot) {
        if deals_before
            .get(&key)
            .is_some_and(|old| old.properties == deal.properties)
        {
            continue;
        }
        changed_deals += 1;
        let patient = patient_of_case(&after, &key);
        if touched.contains(&patient) {
            continue;
        }
        // An untouched patient's deal may only change by the passage of
        // time: the day of an appointment (whatever its state) passed, so
        // it is now the last one; or a treatment whose last activity fell
        // more than sixty days back during this week is won.
        let old = &deals_before
            .get(&key)
            .unwrap_or_else(|| panic!("new deal {key} for untouched {patient}"))
            .properties;
        let changed: BTreeSet<&str> = deal
            .properties
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v) && !k.starts_with("hs_"))
            .map(|(k, _)| k.as_str())
            .collect();
        let week = (after.now.date() - before.now.date()).num_days();
        let this_week = |field: &str| {
            let day = NaiveDate::parse_from_str(prop(&deal, field), "%Y-%m-%d")
                .unwrap_or_else(|_| panic!("{key}: {field}"));
            (before.now.date() - day).num_days()
        };
        for field in &changed {
            match *field {
                "letzter_termin" => {
                    let ago = this_week("letzter_termin");
                    assert!(
                        (-week..=0).contains(&ago),
                        "{key}: the last appointment's day passed this week ({ago} days)"
                    );
                }
                "dealstage" => {
                    assert_eq!(prop(&deals_before[&key], "dealstage"), in_treatment);
                    assert_eq!(prop(&deal, "dealstage"), won);
                    assert!(changed.contains("closedate"), "{key} won with a close date");
                    let quiet_before = this_week("closedate");
                    let quiet_after = quiet_before + week;
                    assert!(
                        quiet_before <= 60 && quiet_after > 60,
                        "{key} crossed the sixty quiet days this week \
                         ({quiet_before} → {quiet_after})"
                    );
                }
                "closedate" => assert!(changed.contains("dealstage"), "{key}"),
                other => panic!("{key} of untouched {patient} changed {other}"),
            }
        }
    }
    let contacts_written = second
        .load
        .written
        .get(&OutboxKind::Contact)
        .copied()
        .unwrap_or(0);
    assert!(
        contacts_written as usize <= touched.len(),
        "{contacts_written} contacts written for {} touched patients",
        touched.len()
    );
    assert!(
        changed_deals > 0 || days.settled_appointments == 0,
        "settled appointments move some deal"
    );

    // And a re-sync right after writes nothing.
    let writes = bed.sandbox.hubspot.write_calls();
    let third = run(&bed.env).await;
    assert_eq!(third.outcome, RunOutcome::Success);
    assert_eq!(
        bed.sandbox.hubspot.write_calls(),
        writes,
        "second: {:?}\nthird: {:?}",
        second.load,
        third.load
    );
    at_most_one_open_deal(&bed.sandbox.hubspot, &after);

    // A month on, the same holds.
    bed.sandbox.ivoris.advance_days(30);
    let month = run(&bed.env).await;
    assert_eq!(month.outcome, RunOutcome::Success, "{:?}", month.message);
    at_most_one_open_deal(&bed.sandbox.hubspot, &bed.sandbox.ivoris.snapshot());
    let writes = bed.sandbox.hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(
        bed.sandbox.hubspot.write_calls(),
        writes,
        "a re-sync after a month writes nothing: {:?}",
        again.load
    );
}

/// Invariant 3 over the whole portal: per patient and location at most one
/// deal without a close date.
fn at_most_one_open_deal(sim: &HubSpotSim, world: &World) {
    let mut open: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, deal) in deals(sim) {
        if !prop(&deal, "closedate").is_empty() {
            continue;
        }
        let (location, opening) = key.split_once(':').expect("case key");
        let patient = world
            .location(location)
            .expect("location")
            .appointments
            .iter()
            .find(|a| a.id == opening)
            .and_then(|a| a.patient_id.clone())
            .expect("opening appointment");
        open.entry(format!("{location}:{patient}"))
            .or_default()
            .push(key);
    }
    for (patient, keys) in open {
        assert!(keys.len() <= 1, "{patient} has open deals {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_follow_the_appointments_over_the_days() {
    let bed = bed(options(31)).await;
    let ivoris = &bed.sandbox.ivoris;
    let now = ivoris.now();
    // The cast at the first location: each patient walks one path.
    let location = bed.sandbox.locations[0].key.clone();
    let l = location.as_str();
    let case = |opening: &str| format!("{l}:{opening}");
    let at = |days: i64, hour: u32| {
        (now.date() + Duration::days(days))
            .and_hms_opt(hour, 0, 0)
            .expect("time")
    };
    for (id, number) in [
        ("S-901", 901),
        ("S-902", 902),
        ("S-903", 903),
        ("S-905", 905),
    ] {
        ivoris
            .add_patient(l, patient(id, number, now))
            .expect("patient");
    }
    // S-901: a first consultation in two days, still booked.
    ivoris
        .add_appointment(
            l,
            appointment("SA-9011", "S-901", "Erstberatung", at(2, 9), "Booked", now),
        )
        .expect("appointment");
    // S-902: a consultation that took place yesterday.
    ivoris
        .add_appointment(
            l,
            appointment(
                "SA-9021",
                "S-902",
                "Erstberatung",
                at(-1, 10),
                "Completed",
                now,
            ),
        )
        .expect("appointment");
    // S-905: did not come to the first consultation two days ago.
    ivoris
        .add_appointment(
            l,
            appointment("SA-9051", "S-905", "Erstberatung", at(-2, 8), "NoShow", now),
        )
        .expect("appointment");
    // S-903: consultation three days ago, a filling yesterday, billed.
    ivoris
        .add_appointment(
            l,
            appointment(
                "SA-9031",
                "S-903",
                "Erstberatung",
                at(-3, 9),
                "Completed",
                now,
            ),
        )
        .expect("appointment");
    ivoris
        .add_appointment(
            l,
            appointment(
                "SA-9032",
                "S-903",
                "Füllungstherapie",
                at(-1, 11),
                "Completed",
                now,
            ),
        )
        .expect("appointment");
    let filling_day = at(-1, 11).date();
    for (id, code, euros) in [("SE-1", "2080", 85.37), ("SE-2", "2100", 42.10)] {
        ivoris
            .add_entry(l, entry(id, "S-903", filling_day, code, euros))
            .expect("entry");
    }
    let filling_cents = 8_537 + 4_210;

    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let stages = stage_ids(&bed).await;
    let stage = |label: &str| stages.get(label).cloned().expect(label);
    let hubspot = &bed.sandbox.hubspot;

    let now_deals = deals(hubspot);
    let booked = &now_deals[&case("SA-9011")];
    assert_eq!(prop(booked, "dealstage"), stage("Termin gebucht"));
    let missed = &now_deals[&case("SA-9051")];
    assert_eq!(prop(missed, "dealstage"), stage("Verloren"));
    assert_eq!(prop(missed, "verlustgrund"), "Termin abgesagt");
    assert_eq!(
        prop(missed, "closedate"),
        at(-2, 8).date().format("%Y-%m-%d").to_string()
    );
    let consulted = &now_deals[&case("SA-9021")];
    assert_eq!(prop(consulted, "dealstage"), stage("Erstberatung"));
    let treated = &now_deals[&case("SA-9031")];
    assert_eq!(prop(treated, "dealstage"), stage("In Behandlung"));
    assert_eq!(
        prop(treated, "behandlungsstart"),
        filling_day.format("%Y-%m-%d").to_string()
    );
    assert_eq!(cents(prop(treated, "amount")), filling_cents);
    assert_eq!(cents(prop(treated, "umsatz_fuellung")), filling_cents);
    assert!(
        !now_deals.contains_key(&case("SA-9032")),
        "the filling joined the open case"
    );

    // The booked consultation is cancelled; the clarified one ends the other.
    ivoris.cancel_appointment(l, "SA-9011").expect("cancel");
    ivoris
        .set_appointment_state(l, "SA-9021", "Clarified")
        .expect("clarify");
    // The filling's completion was entered by mistake: back to booked.
    ivoris
        .set_appointment_state(l, "SA-9032", "Booked")
        .expect("revert");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let now_deals = deals(hubspot);
    let cancelled = &now_deals[&case("SA-9011")];
    assert_eq!(prop(cancelled, "dealstage"), stage("Verloren"));
    assert_eq!(prop(cancelled, "verlustgrund"), "Termin abgesagt");
    assert!(
        !prop(cancelled, "closedate").is_empty(),
        "a lost deal is closed"
    );
    let clarified = &now_deals[&case("SA-9021")];
    assert_eq!(prop(clarified, "dealstage"), stage("Verloren"));
    assert_eq!(prop(clarified, "verlustgrund"), "Erstberatung geklärt");
    let pushed_back = &now_deals[&case("SA-9031")];
    assert_eq!(
        prop(pushed_back, "dealstage"),
        stage("Erstberatung"),
        "the stage goes back when the completion is undone"
    );
    assert_eq!(prop(pushed_back, "behandlungsstart"), "");

    // Completed after all.
    ivoris
        .set_appointment_state(l, "SA-9032", "Completed")
        .expect("complete");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(
        prop(&deals(hubspot)[&case("SA-9031")], "dealstage"),
        stage("In Behandlung")
    );

    // Sixty quiet days are not enough; sixty-one are (the last activity
    // was the filling, one day before the start).
    ivoris.advance_days(59);
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(
        (ivoris.today() - filling_day).num_days(),
        60,
        "exactly sixty days after the filling"
    );
    assert_eq!(
        prop(&deals(hubspot)[&case("SA-9031")], "dealstage"),
        stage("In Behandlung"),
        "exactly sixty quiet days are not yet won"
    );
    ivoris.advance_days(1);
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let won = deals(hubspot)[&case("SA-9031")].clone();
    assert_eq!(prop(&won, "dealstage"), stage("Behandlung abgeschlossen"));
    assert_eq!(
        prop(&won, "closedate"),
        filling_day.format("%Y-%m-%d").to_string(),
        "closed on the day the treatment ended"
    );
    assert_eq!(cents(prop(&won, "amount")), filling_cents);

    // A check-up booked after the closed case opens a second deal.
    let later = ivoris.today() + Duration::days(5);
    ivoris
        .add_appointment(
            l,
            appointment(
                "SA-9033",
                "S-903",
                "Kontrolle",
                later.and_hms_opt(8, 30, 0).expect("time"),
                "Booked",
                ivoris.now(),
            ),
        )
        .expect("appointment");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let now_deals = deals(hubspot);
    let second = &now_deals[&case("SA-9033")];
    assert_eq!(prop(second, "dealstage"), stage("Termin gebucht"));
    assert_eq!(prop(second, "amount").parse::<f64>().unwrap_or(0.0), 0.0);
    let first = &now_deals[&case("SA-9031")];
    assert_eq!(
        first.properties, won.properties,
        "the closed deal stays as it was"
    );
    assert_eq!(
        first.associations.get("contacts"),
        second.associations.get("contacts"),
        "both deals belong to the patient's contact"
    );
    let mine: Vec<&RecordSnapshot> = now_deals
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{l}:SA-903")))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(mine.len(), 2, "two cases, two deals");
    let open = mine
        .iter()
        .filter(|d| prop(d, "closedate").is_empty())
        .count();
    assert_eq!(open, 1, "at most one open deal per patient and location");

    // The simulated days never touched the scripted appointments.
    let world = ivoris.snapshot();
    let scripted: Vec<&Appointment> = world
        .location(l)
        .expect("location")
        .appointments
        .iter()
        .filter(|a| a.patient_id.as_deref() == Some("S-903"))
        .collect();
    assert_eq!(
        scripted.len(),
        3,
        "{scripted:?}: the simulation booked for S-903"
    );
}

/// Cents of a HubSpot number property (`"127.47"`).
fn cents(text: &str) -> i64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let whole: i64 = whole.parse().expect("euros");
    let fraction: i64 = format!("{fraction:0<2}")[..2].parse().expect("cents");
    whole * 100 + fraction
}

/// Regression: a visit booked into the time before a case that was then
/// cancelled opens a new case (the cancelled one is closed as of that
/// visit). The new case is the latest one: it stays open, the cancelled
/// one stays lost, and reading the cases back in the next run must not
/// swap them (the next run wrote „Folgefall eröffnet“ onto the open deal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_opened_before_an_earlier_opened_one_stays_the_open_case() {
    let bed = bed(options(37)).await;
    let ivoris = &bed.sandbox.ivoris;
    let now = ivoris.now();
    let l = bed.sandbox.locations[0].key.clone();
    let day = |days: i64| {
        (now.date() + Duration::days(days))
            .and_hms_opt(9, 0, 0)
            .expect("time")
    };
    ivoris
        .add_patient(&l, patient("S-904", 904, now))
        .expect("patient");
    ivoris
        .add_appointment(
            &l,
            appointment("SA-9041", "S-904", "Erstberatung", day(30), "Booked", now),
        )
        .expect("appointment");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );

    ivoris.cancel_appointment(&l, "SA-9041").expect("cancel");
    ivoris
        .add_appointment(
            &l,
            appointment("SA-9042", "S-904", "Kontrolle", day(10), "Booked", now),
        )
        .expect("appointment");
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let stages = stage_ids(&bed).await;
    let check = |deals: &BTreeMap<String, RecordSnapshot>| {
        let cancelled = &deals[&format!("{l}:SA-9041")];
        assert_eq!(prop(cancelled, "dealstage"), stages["Verloren"]);
        assert_eq!(prop(cancelled, "verlustgrund"), "Termin abgesagt");
        let open = &deals[&format!("{l}:SA-9042")];
        assert_eq!(prop(open, "dealstage"), stages["Termin gebucht"]);
        assert_eq!(prop(open, "verlustgrund"), "");
    };
    check(&deals(&bed.sandbox.hubspot));

    let writes = bed.sandbox.hubspot.write_calls();
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    check(&deals(&bed.sandbox.hubspot));
    assert_eq!(
        bed.sandbox.hubspot.write_calls(),
        writes,
        "nothing changed, nothing is written"
    );
}
