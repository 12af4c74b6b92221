//! The Duplikate panel's second part driven through its accessibility
//! tree: „In HubSpot“ → „HubSpot prüfen“ (the scan on the engine thread)
//! → a group side by side → „In Hauptdatensatz zusammenführen“ → the
//! confirmation („Endgültig zusammenführen“) → the merge carried out in
//! the sandbox once → „Protokoll der Entscheidungen“ lists the request and
//! the merge with keys masked. Values changed by hand in HubSpot are
//! counted and listed with property names in clear and personal values
//! masked; „Erneut senden“ makes those records due again.

mod engine_support;
mod gui_support;

use egui_kittest::kittest::Queryable;
use engine_support::{bed, options, run};
use gui_support::{app_harness, step_until};
use ivoris_hubspot_sync::duplicates::portal::Members;
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind};
use ivoris_hubspot_sync::sandbox::{PortalSeed, SandboxOptions, Size};

#[test]
fn review_merge_confirm_and_the_decision_log() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(async {
        let bed = bed(SandboxOptions {
            portal: PortalSeed::Legacy,
            size: Size::Small,
            ..options(83)
        })
        .await;
        run(&bed.env).await;
        bed
    });
    let sim = bed.sandbox.hubspot.clone();
    let mut harness = app_harness(bed.env.clone(), Panel::Duplicates, None);
    step_until(&mut harness, "the panel", |app| {
        app.model.duplicates.is_some()
    });
    harness.get_by_label("In HubSpot").click();
    step_until(
        &mut harness,
        "the empty review",
        |app| matches!(&app.model.portal.review, Some(Ok(r)) if r.scan.is_none()),
    );
    harness.get_by_label("HubSpot prüfen").click();
    step_until(&mut harness, "the scan's findings", |app| {
        app.model.portal.scanning.is_none()
            && matches!(&app.model.portal.review, Some(Ok(r)) if !r.groups.is_empty())
    });
    // Right after a sync HubSpot holds what the ledger knows.
    harness
        .get_by_label_contains("HubSpot hat alle Kontakte und Deals so, wie der Ledger sie kennt");
    let (group, merged) = {
        let app = harness.state();
        let Some(Ok(review)) = &app.model.portal.review else {
            panic!("review");
        };
        let group = review.groups[0].clone();
        let Members::Contacts(contacts) = &group.members else {
            panic!("the first group is of contacts: {group:?}");
        };
        (group.key.clone(), contacts[1].id.clone())
    };
    let contacts_before = sim.records("contacts").expect("contacts").len();

    harness
        .get_by_label("In Hauptdatensatz zusammenführen")
        .click();
    harness.run_steps(3);
    // The dialog says it cannot be undone; nothing is sent before the click.
    harness.get_by_label_contains("kann nicht rückgängig gemacht werden");
    assert_eq!(merges(&sim), 0);
    harness.get_by_label("Endgültig zusammenführen").click();
    step_until(&mut harness, "the merge and the review without it", |app| {
        matches!(&app.model.portal.review, Some(Ok(r))
            if r.queued_merges.is_empty() && !r.groups.iter().any(|g| g.key == group))
    });
    assert_eq!(merges(&sim), 1);
    let live = sim
        .records("contacts")
        .expect("contacts")
        .into_iter()
        .filter(|c| !c.archived)
        .count();
    assert_eq!(live, contacts_before - 1);
    assert!(
        sim.records("contacts")
            .expect("contacts")
            .iter()
            .all(|c| c.id != merged || c.archived)
    );

    harness.get_by_label("Protokoll der Entscheidungen").click();
    step_until(&mut harness, "the decision log", |app| {
        matches!(&app.model.portal.log, Some(Ok(entries))
            if entries.iter().any(|e| e.entry.action == "duplicate.merged"))
    });
    harness.get_by_label("Kontakte zusammengeführt");
    harness.get_by_label("Zusammenführung vorgemerkt");
    // Keys are masked: no patient key of the group is shown.
    let app = harness.state();
    let Some(Ok(entries)) = &app.model.portal.log else {
        panic!("log");
    };
    for entry in entries
        .iter()
        .filter(|e| e.entry.subject.contains(':') && !e.entry.subject.starts_with("hubspot:"))
    {
        assert!(harness.query_by_label(&entry.entry.subject).is_none());
    }
}

fn merges(sim: &ivoris_hubspot_sync::sandbox::hubspot::HubSpotSim) -> u64 {
    sim.counters()
        .requests
        .iter()
        .filter(|(template, _)| template.ends_with("/merge"))
        .map(|(_, count)| count)
        .sum()
}

fn prop<'a>(
    record: &'a ivoris_hubspot_sync::sandbox::hubspot::RecordSnapshot,
    name: &str,
) -> &'a str {
    record.properties.get(name).map_or("", String::as_str)
}

#[test]
fn values_changed_by_hand_are_listed_masked_and_sent_again() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(async {
        let bed = bed(options(89)).await;
        run(&bed.env).await;
        bed
    });
    let sim = bed.sandbox.hubspot.clone();
    let live = |object: &str| {
        sim.records(object)
            .expect("records")
            .into_iter()
            .filter(|r| !r.archived)
            .collect::<Vec<_>>()
    };
    let contact = live("contacts")
        .into_iter()
        .find(|c| {
            !prop(c, "lastname").is_empty()
                && !prop(c, "ivoris_patient_key").is_empty()
                && !prop(c, "ivoris_patient_keys").contains(';')
        })
        .expect("a contact");
    let deal = live("deals")
        .into_iter()
        .find(|d| !prop(d, "ivoris_case_key").is_empty() && prop(d, "amount") != "4711.00")
        .expect("a case deal");
    let lastname = format!("{}-Hand", prop(&contact, "lastname"));
    sim.edit_by_hand("contacts", &contact.id, &[("lastname", lastname.as_str())])
        .expect("edited");
    sim.edit_by_hand("deals", &deal.id, &[("amount", "4711.00")])
        .expect("edited");

    let mut harness = app_harness(bed.env.clone(), Panel::Duplicates, None);
    step_until(&mut harness, "the panel", |app| {
        app.model.duplicates.is_some()
    });
    harness.get_by_label("In HubSpot").click();
    step_until(
        &mut harness,
        "the empty review",
        |app| matches!(&app.model.portal.review, Some(Ok(r)) if r.scan.is_none()),
    );
    harness.get_by_label("HubSpot prüfen").click();
    step_until(&mut harness, "the scan's findings", |app| {
        app.model.portal.scanning.is_none()
            && matches!(&app.model.portal.review, Some(Ok(r)) if !r.drift.is_empty())
    });
    harness.get_by_label_contains("2 in HubSpot von Hand geändert");
    harness
        .get_by_label("In HubSpot von Hand geändert – erneut senden überschreibt die Änderung mit den Werten aus Ivoris")
        .click();
    harness.run_steps(3);
    // The property name in clear, the personal values masked.
    let line = harness
        .get_by_label_contains("· lastname: ")
        .value()
        .unwrap_or_default();
    let (_, values) = line.split_once("· lastname: ").expect("the values");
    let (ours, found) = values.split_once(" -> ").expect("both values");
    assert!(
        ours.starts_with("pii:") && found.starts_with("pii:"),
        "{line}"
    );
    assert!(!line.contains(&lastname) && !line.contains(prop(&contact, "lastname")));
    let line = harness
        .get_by_label_contains("· amount: ")
        .value()
        .unwrap_or_default();
    assert!(
        line.contains(&format!("{} -> 4711.00", prop(&deal, "amount"))),
        "{line}"
    );

    // The Übersicht counts them beside what HubSpot confirmed.
    harness
        .query_all_by_label("Übersicht")
        .next()
        .expect("navigation entry")
        .click();
    step_until(&mut harness, "the overview with the scan", |app| {
        app.model
            .overview
            .as_ref()
            .is_some_and(|o| o.portal.is_some())
    });
    harness.get_by_label(
        "Abweichend: 0 in HubSpot gelöscht, 0 ohne unseren Schlüssel, 2 von Hand geändert.",
    );
    harness.get_by_label("Zu den Duplikaten").click();
    harness.run_steps(3);
    harness.get_by_label("Erneut senden").click();
    let key = prop(&contact, "ivoris_patient_key").to_owned();
    let ledger_path = bed.env.ledger_path.clone();
    step_until(&mut harness, "the records due again", |_| {
        Ledger::open(&ledger_path)
            .ok()
            .and_then(|l| l.confirmed(OutboxKind::Contact, &key).ok().flatten())
            .is_some_and(|c| c.hash.is_none())
    });
}
