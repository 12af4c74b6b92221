//! HubSpot as the practice really finds it: contacts and deals left by an
//! older integration, and e-mail addresses that HubSpot keeps unique while
//! Ivoris does not (the same person at two locations, a family sharing one
//! address). The patients are created here, so who should end up where
//! follows from the script; the rules are those of `engine::load` (an old
//! contact with a patient's address is adopted when its names — and its
//! birthday, where it has one — are the patient's). Every
//! scenario runs twice: against a portal that answers batch failures per
//! input (207) and against one that refuses the whole batch.

mod engine_support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use engine_support::{bed, live, options, prop, run, run_clean, run_ok};
use ivoris_hubspot_sync::ivoris::wire::{Appointment, Patient};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::RecordSnapshot;
use ivoris_hubspot_sync::sandbox::ivoris::IvorisSim;
use ivoris_hubspot_sync::sandbox::{BatchFailures, SandboxOptions};

/// The sandbox of `seed` whose batch calls answer failures as `mode` says.
fn in_mode(seed: u64, mode: BatchFailures) -> SandboxOptions {
    SandboxOptions {
        batch_failures: mode,
        ..options(seed)
    }
}

/// Each scenario runs against a portal that answers batch failures per
/// input (207) and against one that refuses the whole call.
macro_rules! in_both_modes {
    ($($scenario:ident),* $(,)?) => {
        mod multi_status {
            use ivoris_hubspot_sync::sandbox::BatchFailures;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(BatchFailures::MultiStatus).await;
                }
            )*
        }
        mod whole_call {
            use ivoris_hubspot_sync::sandbox::BatchFailures;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(BatchFailures::WholeCall).await;
                }
            )*
        }
    };
}

in_both_modes!(
    a_contact_of_the_old_integration_is_adopted_and_its_deals_left_alone,
    one_person_at_two_locations_is_one_contact_with_both_keys,
    a_family_sharing_one_address_gets_separate_contacts_and_a_review,
    a_patient_who_takes_on_an_address_of_the_old_integration_is_not_stuck,
    a_new_ledger_finds_the_keyed_records_instead_of_duplicating_them,
    a_parents_contact_with_the_family_address_is_not_adopted_by_the_child,
    an_old_contact_with_the_address_is_adopted_only_with_the_patients_birthday,
);

fn patient(id: &str, first: &str, last: &str, born: (i32, u32, u32), email: &str) -> Patient {
    Patient {
        id: id.to_string(),
        human_readable_id: Some(id.trim_start_matches("L-").to_string()),
        firstname: Some(first.to_string()),
        lastname: Some(last.to_string()),
        birthday: NaiveDate::from_ymd_opt(born.0, born.1, born.2)
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        gender: None,
        email: Some(email.to_string()),
        phone: None,
        mobile: None,
        address: None,
        health_insurance: None,
        current_insurance: None,
        last_modified: None,
    }
}

/// A booked consultation in a few days, so the patient has a case and a deal.
fn consultation(id: &str, patient: &str, now: NaiveDateTime) -> Appointment {
    Appointment {
        id: id.to_string(),
        profile_id: None,
        patient_id: Some(patient.to_string()),
        practitioner_id: None,
        dentist_chair_id: None,
        template_id: None,
        type_label: Some("Erstberatung".to_string()),
        start: (now.date() + Duration::days(3)).and_hms_opt(10, 0, 0),
        duration_minutes: Some(30),
        state: Some("Booked".to_string()),
        confirmation_state: None,
        last_modified: Some(now),
    }
}

/// Adds a patient with one consultation.
fn enrol(ivoris: &IvorisSim, location: &str, patient: Patient) {
    let now = ivoris.now();
    let appointment = consultation(&format!("{}-A", patient.id), &patient.id, now);
    ivoris
        .add_patient(
            location,
            Patient {
                last_modified: Some(now),
                ..patient
            },
        )
        .expect("patient");
    ivoris
        .add_appointment(location, appointment)
        .expect("appointment");
}

/// The synthetic world's patients grouped by e-mail address (lower case):
/// for each address, the patient keys per person (normalised name and
/// birthday).
fn people_by_email(world: &World) -> BTreeMap<String, BTreeMap<Person, BTreeSet<String>>> {
    let mut groups: BTreeMap<String, BTreeMap<Person, BTreeSet<String>>> = BTreeMap::new();
    for location in &world.locations {
        for p in &location.patients {
            let Some(email) = p.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) else {
                continue;
            };
            let norm = |s: &Option<String>| s.clone().unwrap_or_default().trim().to_lowercase();
            let person = (
                norm(&p.firstname),
                norm(&p.lastname),
                p.birthday.map(|b| b.date().to_string()).unwrap_or_default(),
            );
            groups
                .entry(email.to_lowercase())
                .or_default()
                .entry(person)
                .or_default()
                .insert(format!("{}:{}", location.key, p.id));
        }
    }
    groups
}

/// First name, last name, birthday.
type Person = (String, String, String);

fn with_email<'a>(contacts: &'a [RecordSnapshot], email: &str) -> Vec<&'a RecordSnapshot> {
    contacts
        .iter()
        .filter(|c| prop(c, "email").eq_ignore_ascii_case(email))
        .collect()
}

fn holding_key<'a>(contacts: &'a [RecordSnapshot], key: &str) -> Vec<&'a RecordSnapshot> {
    contacts
        .iter()
        .filter(|c| {
            prop(c, "ivoris_patient_key") == key
                || prop(c, "ivoris_patient_keys").split(';').any(|k| k == key)
        })
        .collect()
}

fn deal_of<'a>(deals: &'a [RecordSnapshot], case_key: &str) -> &'a RecordSnapshot {
    let found: Vec<&RecordSnapshot> = deals
        .iter()
        .filter(|d| prop(d, "ivoris_case_key") == case_key)
        .collect();
    assert_eq!(found.len(), 1, "one deal for {case_key}");
    found[0]
}

async fn a_contact_of_the_old_integration_is_adopted_and_its_deals_left_alone(mode: BatchFailures) {
    let bed = bed(in_mode(41, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let l = bed.sandbox.locations[0].key.clone();
    let email = "erika.altbestand@beispiel.test";
    enrol(
        ivoris,
        &l,
        patient("L-501", "Erika", "Altbestand", (1971, 4, 12), email),
    );
    let legacy = hubspot
        .seed_legacy(
            "contacts",
            &[
                // The old integration kept the address as typed.
                ("email", "Erika.Altbestand@Beispiel.test"),
                ("firstname", "Erika"),
                ("lastname", "Altbestand"),
            ],
        )
        .expect("legacy contact");
    assert!(
        hubspot
            .seed_legacy("contacts", &[("email", email), ("firstname", "Zweit")])
            .is_err(),
        "HubSpot refuses a second contact with the same e-mail address"
    );
    let old_deal = hubspot
        .seed_legacy(
            "deals",
            &[
                ("dealname", "Erika Altbestand – Implantat 2023"),
                ("amount", "1234.50"),
            ],
        )
        .expect("legacy deal");
    hubspot
        .seed_association("deals", &old_deal, "contacts", &legacy)
        .expect("association");
    let stray_deal = hubspot
        .seed_legacy("deals", &[("dealname", "Anfrage Website")])
        .expect("legacy deal");
    let legacy_deals: Vec<RecordSnapshot> = live(hubspot, "deals");

    run_clean(&bed.env).await;

    let contacts = live(hubspot, "contacts");
    let key = format!("{l}:L-501");
    let holders = with_email(&contacts, email);
    assert_eq!(holders.len(), 1, "no second contact with the address");
    assert_eq!(holders[0].id, legacy, "the old contact is adopted");
    assert_eq!(prop(holders[0], "ivoris_patient_key"), key);
    assert_eq!(holding_key(&contacts, &key).len(), 1);

    let deals = live(hubspot, "deals");
    for old in &legacy_deals {
        let now = deals
            .iter()
            .find(|d| d.id == old.id)
            .expect("legacy deal kept");
        assert_eq!(
            now.properties, old.properties,
            "legacy deal {} unchanged",
            old.id
        );
        assert_eq!(
            now.updated_at, old.updated_at,
            "legacy deal {} not written",
            old.id
        );
        assert_eq!(prop(now, "ivoris_case_key"), "");
    }
    assert!(deals.iter().any(|d| d.id == stray_deal));
    let ours = deal_of(&deals, &format!("{l}:L-501-A"));
    assert!(!legacy_deals.iter().any(|d| d.id == ours.id));
    assert_eq!(
        ours.associations.get("contacts"),
        Some(&vec![legacy.clone()]),
        "our deal belongs to the adopted contact"
    );
    let keyed: Vec<&str> = deals
        .iter()
        .map(|d| prop(d, "ivoris_case_key"))
        .filter(|k| !k.is_empty())
        .collect();
    let distinct: BTreeSet<&str> = keyed.iter().copied().collect();
    assert_eq!(keyed.len(), distinct.len(), "no duplicate deals");

    // A second run finds everything in place.
    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(hubspot.write_calls(), writes);
}

async fn one_person_at_two_locations_is_one_contact_with_both_keys(mode: BatchFailures) {
    let bed = bed(in_mode(43, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let first = bed.sandbox.locations[0].key.clone();
    let second = bed.sandbox.locations[1].key.clone();
    let email = "jörg.zweistandort@beispiel.test";
    for (location, id) in [(&first, "L-601"), (&second, "L-602")] {
        enrol(
            ivoris,
            location,
            patient(id, "Jörg", "Zweistandort", (1965, 11, 3), email),
        );
    }

    run_clean(&bed.env).await;

    let contacts = live(hubspot, "contacts");
    let keys = [format!("{first}:L-601"), format!("{second}:L-602")];
    let holders = with_email(&contacts, email);
    assert_eq!(holders.len(), 1, "one contact for the person");
    let contact = holders[0];
    let known: BTreeSet<&str> = prop(contact, "ivoris_patient_keys").split(';').collect();
    assert_eq!(
        known,
        keys.iter().map(String::as_str).collect(),
        "the contact knows both patient keys"
    );
    for key in &keys {
        assert_eq!(holding_key(&contacts, key).len(), 1, "{key} on one contact");
    }
    let deals = live(hubspot, "deals");
    for case in [format!("{first}:L-601-A"), format!("{second}:L-602-A")] {
        assert_eq!(
            deal_of(&deals, &case).associations.get("contacts"),
            Some(&vec![contact.id.clone()]),
            "deal {case} belongs to the person's contact"
        );
    }

    // The same holds for the people the synthetic practices share.
    let mut shared = 0;
    for persons in people_by_email(&ivoris.snapshot()).values() {
        for keys in persons.values().filter(|keys| keys.len() > 1) {
            let holders: BTreeSet<&str> = keys
                .iter()
                .flat_map(|key| holding_key(&contacts, key))
                .map(|c| c.id.as_str())
                .collect();
            assert_eq!(holders.len(), 1, "{keys:?} share one contact");
            shared += 1;
        }
    }
    assert!(shared > 1, "the synthetic data has shared people");

    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(
        hubspot.write_calls(),
        writes,
        "the link holds without writes"
    );

    // The practice of the linked patient retypes the address: the patient
    // stays linked.
    let linked = keys
        .iter()
        .find(|k| k.as_str() != prop(contact, "ivoris_patient_key"))
        .expect("one patient is linked");
    let (location, id) = linked.split_once(':').expect("key");
    ivoris
        .set_patient_email(location, id, Some(&email.to_uppercase()))
        .expect("e-mail");
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(again.load.linked, 1, "linked again: {:?}", again.load);
    let queue = Ledger::open(&bed.env.ledger_path)
        .expect("ledger")
        .outbox_counts()
        .expect("counts");
    assert_eq!((queue.pending(), queue.dead()), (0, 0), "nothing stuck");
    let now = live(hubspot, "contacts");
    assert_eq!(now.len(), contacts.len(), "no new contact");
    for key in &keys {
        let holders = holding_key(&now, key);
        assert_eq!(holders.len(), 1, "{key} on one contact");
        assert_eq!(holders[0].id, contact.id);
    }
}

async fn a_family_sharing_one_address_gets_separate_contacts_and_a_review(mode: BatchFailures) {
    let bed = bed(in_mode(47, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let l = bed.sandbox.locations[0].key.clone();
    let email = "familie.gemeinsam@beispiel.test";
    let family = [
        ("L-701", "Sabine", (1978, 2, 14)),
        ("L-702", "Lukas", (2009, 8, 30)),
        ("L-703", "Sabine", (2012, 5, 1)),
    ];
    for (id, first, born) in family {
        enrol(ivoris, &l, patient(id, first, "Gemeinsam", born, email));
    }

    run_clean(&bed.env).await;

    let contacts = live(hubspot, "contacts");
    let holders = with_email(&contacts, email);
    assert_eq!(holders.len(), 1, "the address stays on one contact");
    let owner = prop(holders[0], "ivoris_patient_key").to_string();
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let mut reviewed = Vec::new();
    for (id, first, _) in family {
        let key = format!("{l}:{id}");
        let mine = holding_key(&contacts, &key);
        assert_eq!(mine.len(), 1, "{key} has its own contact");
        assert_eq!(prop(mine[0], "firstname"), first);
        assert!(
            ["", key.as_str()].contains(&prop(mine[0], "ivoris_patient_keys")),
            "{key} was not linked to a relative"
        );
        let withheld = ledger
            .audit_log(Some(&key), 100)
            .expect("audit log")
            .iter()
            .any(|e| e.entry.action == "email_withheld");
        if key == owner {
            assert!(!withheld, "the owner of the address is not listed");
        } else {
            assert_eq!(prop(mine[0], "email"), "", "{key} written without e-mail");
            assert!(withheld, "{key} listed for review");
            reviewed.push(key);
        }
    }
    assert_eq!(reviewed.len(), family.len() - 1);
    let ids: BTreeSet<&str> = family
        .iter()
        .map(|(id, _, _)| holding_key(&contacts, &format!("{l}:{id}"))[0].id.as_str())
        .collect();
    assert_eq!(ids.len(), family.len(), "three people, three contacts");

    // The same holds for the families of the synthetic practices: per
    // address, one person keeps it, everyone else is listed for review.
    let mut families = 0;
    for (address, persons) in people_by_email(&ivoris.snapshot()) {
        if persons.len() < 2 || address == email {
            continue;
        }
        families += 1;
        assert_eq!(with_email(&contacts, &address).len(), 1, "one holder");
        let holder = with_email(&contacts, &address)[0].id.clone();
        for keys in persons.values() {
            let holds = keys
                .iter()
                .any(|key| holding_key(&contacts, key).iter().any(|c| c.id == holder));
            let listed = keys.iter().all(|key| {
                ledger
                    .audit_log(Some(key), 100)
                    .expect("audit log")
                    .iter()
                    .any(|e| e.entry.action == "email_withheld")
            });
            assert!(holds != listed, "{keys:?}: holds the address or is listed");
        }
    }
    assert!(
        families > 0,
        "the synthetic data has families sharing an address"
    );

    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(hubspot.write_calls(), writes, "the review is not repeated");
}

async fn a_patient_who_takes_on_an_address_of_the_old_integration_is_not_stuck(
    mode: BatchFailures,
) {
    let bed = bed(in_mode(53, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let l = bed.sandbox.locations[0].key.clone();
    enrol(
        ivoris,
        &l,
        patient(
            "L-801",
            "Petra",
            "Umzug",
            (1983, 9, 9),
            "petra.alt@beispiel.test",
        ),
    );
    let legacy = hubspot
        .seed_legacy(
            "contacts",
            &[("email", "petra.neu@beispiel.test"), ("firstname", "Petra")],
        )
        .expect("legacy contact");
    run_ok(&bed.env).await;
    let key = format!("{l}:L-801");
    let ours = holding_key(&live(hubspot, "contacts"), &key)[0].id.clone();
    assert_ne!(ours, legacy);

    // The patient now uses the address the old integration once stored.
    ivoris
        .set_patient_email(&l, "L-801", Some("petra.neu@beispiel.test"))
        .expect("e-mail");
    for _ in 0..3 {
        run_ok(&bed.env).await;
    }
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let queue = ledger.outbox_counts().expect("counts");
    assert_eq!((queue.pending(), queue.dead()), (0, 0), "nothing stuck");
    let contacts = live(hubspot, "contacts");
    let holders = holding_key(&contacts, &key);
    assert_eq!(holders.len(), 1, "{key} on one contact");
    assert_eq!(holders[0].id, ours, "the patient keeps its contact");
    assert_eq!(with_email(&contacts, "petra.neu@beispiel.test").len(), 1);
    assert!(
        ledger
            .audit_log(Some(&key), 100)
            .expect("audit log")
            .iter()
            .any(|e| e.entry.action == "email_withheld"),
        "listed for review"
    );
}

async fn a_new_ledger_finds_the_keyed_records_instead_of_duplicating_them(mode: BatchFailures) {
    let bed = bed(in_mode(59, mode)).await;
    let hubspot = &bed.sandbox.hubspot;
    run_ok(&bed.env).await;
    let ids = |object: &str| -> BTreeSet<String> {
        live(hubspot, object).into_iter().map(|r| r.id).collect()
    };
    let (contacts, deals, appointments) = (ids("contacts"), ids("deals"), ids("appointments"));

    // The PC was replaced: a new ledger, the same HubSpot portal.
    let mut env = bed.env.clone();
    env.ledger_path = bed.dir.path().join("replacement.sqlite");
    let summary = run(&env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(summary.dead_letters, 0, "no dead letter");
    assert_eq!(ids("contacts"), contacts, "the same contacts, none added");
    assert_eq!(ids("deals"), deals, "the same deals, none added");
    assert_eq!(ids("appointments"), appointments, "the same appointments");
}

/// Staff entered the mother by hand, with the family's address; only her
/// child is a patient. The child must not take over the mother's contact:
/// the child's contact is written without the address and listed for
/// review, the mother's stays as it was.
async fn a_parents_contact_with_the_family_address_is_not_adopted_by_the_child(
    mode: BatchFailures,
) {
    let bed = bed(in_mode(53, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let l = bed.sandbox.locations[0].key.clone();
    let email = "familie.handschrift@beispiel.test";
    let mother = hubspot
        .seed_legacy(
            "contacts",
            &[
                ("email", email),
                ("firstname", "Petra"),
                ("lastname", "Handschrift"),
            ],
        )
        .expect("hand-made contact");
    let before = live(hubspot, "contacts")
        .into_iter()
        .find(|c| c.id == mother)
        .expect("seeded");
    enrol(
        ivoris,
        &l,
        patient("L-801", "Jonas", "Handschrift", (2014, 6, 3), email),
    );

    run_clean(&bed.env).await;
    let contacts = live(hubspot, "contacts");
    let after = contacts.iter().find(|c| c.id == mother).expect("kept");
    assert_eq!(
        after.properties, before.properties,
        "the mother's contact is untouched"
    );
    let key = format!("{l}:L-801");
    let mine = holding_key(&contacts, &key);
    assert_eq!(mine.len(), 1, "the child has a contact of its own");
    assert_ne!(mine[0].id, mother);
    assert_eq!(prop(mine[0], "firstname"), "Jonas");
    assert_eq!(prop(mine[0], "email"), "", "written without the address");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert!(
        ledger
            .audit_log(Some(&key), 100)
            .expect("audit log")
            .iter()
            .any(|e| e.entry.action == "email_withheld"),
        "listed for review"
    );
    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(hubspot.write_calls(), writes, "nothing left to write");
}

/// Two patients whose addresses sit on contacts of the old integration
/// with the same names: one of them has the patient's birthday (in another
/// notation) and is adopted; the other has another birthday — someone
/// else of the same name — and is left alone: the patient's contact is
/// written without the address and listed for review. (A contact without
/// a birthday is decided by the names:
/// `a_contact_of_the_old_integration_is_adopted_and_its_deals_left_alone`.)
async fn an_old_contact_with_the_address_is_adopted_only_with_the_patients_birthday(
    mode: BatchFailures,
) {
    let bed = bed(in_mode(61, mode)).await;
    let ivoris = &bed.sandbox.ivoris;
    let hubspot = &bed.sandbox.hubspot;
    let l = bed.sandbox.locations[0].key.clone();
    let same_email = "erika.geburtstag@beispiel.test";
    let other_email = "hans.geburtstag@beispiel.test";
    enrol(
        ivoris,
        &l,
        patient("L-511", "Erika", "Geburtstag", (1971, 4, 12), same_email),
    );
    enrol(
        ivoris,
        &l,
        patient("L-512", "Hans", "Geburtstag", (1960, 1, 5), other_email),
    );
    let same = hubspot
        .seed_legacy(
            "contacts",
            &[
                ("email", same_email),
                ("firstname", "Erika"),
                ("lastname", "Geburtstag"),
                ("date_of_birth", "1971-04-12T00:00:00Z"),
            ],
        )
        .expect("legacy contact");
    let other = hubspot
        .seed_legacy(
            "contacts",
            &[
                ("email", other_email),
                ("firstname", "Hans"),
                ("lastname", "Geburtstag"),
                ("date_of_birth", "1960-01-06"),
            ],
        )
        .expect("legacy contact");
    let other_before = live(hubspot, "contacts")
        .into_iter()
        .find(|c| c.id == other)
        .expect("seeded");

    run_clean(&bed.env).await;
    let contacts = live(hubspot, "contacts");
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let withheld = |key: &str| {
        ledger
            .audit_log(Some(key), 100)
            .expect("audit log")
            .iter()
            .any(|e| e.entry.action == "email_withheld")
    };

    let adopted_key = format!("{l}:L-511");
    let holders = holding_key(&contacts, &adopted_key);
    assert_eq!(holders.len(), 1, "{adopted_key} on one contact");
    assert_eq!(
        holders[0].id, same,
        "the contact with the birthday is adopted"
    );
    assert_eq!(with_email(&contacts, same_email).len(), 1);
    assert!(!withheld(&adopted_key));

    let kept_key = format!("{l}:L-512");
    let mine = holding_key(&contacts, &kept_key);
    assert_eq!(mine.len(), 1, "{kept_key} has a contact of its own");
    assert_ne!(mine[0].id, other, "another birthday: not adopted");
    assert_eq!(prop(mine[0], "email"), "", "written without the address");
    assert!(withheld(&kept_key), "listed for review");
    let after = contacts.iter().find(|c| c.id == other).expect("kept");
    assert_eq!(
        after.properties, other_before.properties,
        "the other person's contact is untouched"
    );

    let writes = hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.outcome, RunOutcome::Success);
    assert_eq!(hubspot.write_calls(), writes, "nothing left to write");
}

/// The command line says how many of the portal's contacts the sync took
/// over by e-mail — the plan counts them among those to create, so without
/// this line the summary reads as if every contact were new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_counts_the_contacts_taken_over_by_e_mail() {
    use engine_support::{run_binary, sync_command};
    use ivoris_hubspot_sync::sandbox::PortalSeed;
    let bed = bed(SandboxOptions {
        portal: PortalSeed::PreviousContacts,
        batch_failures: BatchFailures::WholeCall,
        ..options(97)
    })
    .await;
    let sim = &bed.sandbox.hubspot;
    let before: BTreeSet<String> = live(sim, "contacts").into_iter().map(|c| c.id).collect();
    assert!(!before.is_empty(), "the portal holds the old contacts");
    let output = run_binary(sync_command(&bed)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // Old contacts that carry a patient key now: taken over.
    let taken_over = live(sim, "contacts")
        .iter()
        .filter(|c| before.contains(&c.id) && !prop(c, "ivoris_patient_key").is_empty())
        .count();
    assert!(taken_over > 0);
    assert!(
        stdout.contains(&format!(
            "Beim Senden / while sending: {taken_over} bestehende Kontakte mit der E-Mail des Patienten übernommen"
        )),
        "{stdout}"
    );
    bed.sandbox.shutdown().await;
}
