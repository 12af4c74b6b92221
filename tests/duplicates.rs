//! The duplicate review against the sandbox, whose practices contain people
//! entered twice in one Ivoris and people who are patients at two
//! locations: the groups found equal the records this test groups itself
//! by name and birthday; marking a record's cases lost moves exactly its
//! deals to „Verloren“ „Duplikat“ in HubSpot and undoing moves them back;
//! „kein Duplikat“ is remembered; every decision is audited. Then the panel
//! itself, driven through its accessibility tree. A decision made while a
//! sync runs waits for its writer lock and is saved after it.

mod engine_support;
mod gui_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use egui_kittest::kittest::Queryable;
use engine_support::{bed, keyed_state, options, run, wait_for};
use gui_support::{app_harness, step_until};
use ivoris_hubspot_sync::duplicates::Scope;
use ivoris_hubspot_sync::engine::duplicates::review;
use ivoris_hubspot_sync::engine::handle::{Command, EngineHandle, Event};
use ivoris_hubspot_sync::engine::run::SyncRequest;
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};

/// The sandbox's patients grouped by exact first name, last name and
/// birthday (copies of one person are identical there): each group's
/// sorted patient keys and whether two of them share a location.
fn expected_groups(world: &ivoris_hubspot_sync::sandbox::data::World) -> BTreeMap<String, Scope> {
    let mut by_person: BTreeMap<(String, String, String), Vec<(String, String)>> = BTreeMap::new();
    for location in &world.locations {
        for patient in &location.patients {
            let (Some(first), Some(last), Some(born)) =
                (&patient.firstname, &patient.lastname, patient.birthday)
            else {
                continue;
            };
            by_person
                .entry((first.clone(), last.clone(), born.to_string()))
                .or_default()
                .push((location.key.clone(), patient.id.clone()));
        }
    }
    by_person
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|members| {
            let locations: BTreeSet<&String> = members.iter().map(|(l, _)| l).collect();
            let scope = if locations.len() < members.len() {
                Scope::SamePractice
            } else {
                Scope::AcrossLocations
            };
            let mut keys: Vec<String> = members.iter().map(|(l, id)| format!("{l}:{id}")).collect();
            keys.sort();
            (keys.join(" "), scope)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_marks_and_dismissals_against_the_sandbox() {
    let bed = bed(options(37)).await;
    run(&bed.env).await;
    let world = bed.sandbox.ivoris.snapshot();
    let expected = expected_groups(&world);
    assert!(
        expected.values().any(|s| *s == Scope::SamePractice)
            && expected.values().any(|s| *s == Scope::AcrossLocations),
        "the sandbox has both kinds: {expected:?}"
    );
    let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let groups = review(&ledger, &bed.env.settings).expect("review");
    let found: BTreeMap<String, Scope> = groups
        .iter()
        .map(|g| (g.group.key.clone(), g.group.scope))
        .collect();
    assert_eq!(found, expected);

    // Mark the second record of a same-practice group: its deals become
    // lost „Duplikat“, nobody else's.
    let twin = groups
        .iter()
        .find(|g| g.group.scope == Scope::SamePractice && g.cases.get(1).is_some_and(|c| c.0 > 0))
        .expect("a same-practice group whose second record has cases");
    let member = twin.group.members[1].clone();
    let prefix = format!("{}:", member.location);
    let cases_of_member: BTreeSet<String> = {
        let cases = ledger.cases(&member.location).expect("cases");
        cases
            .into_iter()
            .filter(|c| c.patient_id == member.id)
            .map(|c| c.case_key)
            .collect()
    };
    assert_eq!(cases_of_member.len() as u64, twin.cases[1].0);
    let before = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let changed = ledger
        .mark_patient_duplicate(&member.location, &member.id, true, "test")
        .expect("marked");
    assert_eq!(changed, cases_of_member.len() as u64);
    drop(ledger);
    run(&bed.env).await;
    let after = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    for (key, deal) in &after.deals {
        if cases_of_member.contains(key) {
            assert_eq!(
                deal.get("dealstage").map(String::as_str),
                Some("Patientenreise / Verloren"),
                "{key}"
            );
            assert_eq!(
                deal.get("verlustgrund").map(String::as_str),
                Some("Duplikat")
            );
        } else {
            assert_eq!(Some(deal), before.deals.get(key), "{key} unchanged");
        }
    }
    assert!(cases_of_member.iter().all(|k| k.starts_with(&prefix)));

    // Undo: the deals are derived from their appointments again.
    let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    ledger
        .mark_patient_duplicate(&member.location, &member.id, false, "test")
        .expect("unmarked");
    drop(ledger);
    run(&bed.env).await;
    let undone = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    for key in &cases_of_member {
        assert_eq!(
            undone.deals.get(key),
            before.deals.get(key),
            "{key} as before"
        );
    }

    // „Kein Duplikat“: that group is gone for good, the others stay.
    let mut ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    ledger
        .dismiss_duplicate(&twin.group.key, "test")
        .expect("dismissed");
    let remaining: BTreeSet<String> = review(&ledger, &bed.env.settings)
        .expect("review")
        .into_iter()
        .map(|g| g.group.key)
        .collect();
    let mut without: BTreeSet<String> = expected.keys().cloned().collect();
    without.remove(&twin.group.key);
    assert_eq!(remaining, without);

    let actions: Vec<String> = ledger
        .audit_log(None, 10)
        .expect("audit")
        .into_iter()
        .map(|e| format!("{} {}", e.entry.action, e.entry.subject))
        .collect();
    let patient = format!("{}:{}", member.location, member.id);
    for expected in [
        format!("duplicate.mark_lost {patient}"),
        format!("duplicate.unmark {patient}"),
        format!("duplicate.not_duplicate {}", twin.group.key),
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
}

#[test]
fn the_panel_shows_a_group_side_by_side_and_records_the_decisions() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(41)));
    runtime.block_on(run(&bed.env));
    let expected = expected_groups(&bed.sandbox.ivoris.snapshot());
    let mut harness = app_harness(bed.env.clone(), Panel::Duplicates, None);
    // The overview names the locations in the side-by-side view.
    step_until(&mut harness, "the groups and the overview", |app| {
        matches!(&app.model.duplicates, Some(Ok(_))) && app.model.overview.is_some()
    });
    let count = |app: &ivoris_hubspot_sync::gui::SyncApp| match &app.model.duplicates {
        Some(Ok(groups)) => groups.len(),
        _ => usize::MAX,
    };
    assert_eq!(count(harness.state()), expected.len());
    assert!(
        harness
            .query_by_label(&format!("{} offene Gruppen", expected.len()))
            .is_some()
    );
    assert!(
        harness
            .query_by_label("Vorschlag: Hauptdatensatz")
            .is_some()
    );

    // The first group is shown; losing its second record's cases is noted
    // and shown at the record.
    harness.get_by_label("Fälle als Duplikat verlieren").click();
    step_until(&mut harness, "the mark", |app| {
        app.model.notice.is_some()
            && matches!(&app.model.duplicates, Some(Ok(groups))
                if groups[0].cases.iter().any(|(_, marked)| *marked > 0))
    });
    assert!(harness.query_by_label("Markierung zurücknehmen").is_some());
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert_eq!(
        ledger.audit_log(None, 1).expect("audit")[0].entry.action,
        "duplicate.mark_lost"
    );
    drop(ledger);

    // „Kein Duplikat“: one group fewer, also after reading them again.
    harness.get_by_label("Kein Duplikat").click();
    step_until(&mut harness, "the dismissal", |app| {
        count(app) == expected.len() - 1
    });
    harness.get_by_label("Aktualisieren").click();
    harness.run_steps(2);
    step_until(&mut harness, "the groups again", |app| {
        matches!(&app.model.duplicates, Some(Ok(_)))
    });
    assert_eq!(count(harness.state()), expected.len() - 1);
}

/// Issue 11 point 5: a review decision made while a sync holds the writer
/// lock waits for it (and says so), is saved after it, and the run itself
/// ends as it would have; the next sync carries the decision to HubSpot.
#[test]
fn a_mark_made_during_a_running_sync_is_saved_after_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(43)));
    runtime.block_on(run(&bed.env));
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let member = review(&ledger, &bed.env.settings)
        .expect("review")
        .into_iter()
        .find(|g| g.group.scope == Scope::SamePractice && g.cases.get(1).is_some_and(|c| c.0 > 0))
        .expect("a same-practice group whose second record has cases")
        .group
        .members[1]
        .clone();
    let cases_of_member: BTreeSet<String> = ledger
        .cases(&member.location)
        .expect("cases")
        .into_iter()
        .filter(|c| c.patient_id == member.id)
        .map(|c| c.case_key)
        .collect();
    drop(ledger);
    // Slow Ivoris answers keep the second run holding the lock.
    let calm = bed.sandbox.ivoris.faults();
    let mut faults = calm.clone();
    faults.slow_rate = 1.0;
    faults.slow_delay_ms = 50;
    bed.sandbox.ivoris.set_faults(faults);

    let handle = EngineHandle::start(bed.env.clone(), Arc::new(|| {})).expect("engine starts");
    handle.send(Command::Sync(SyncRequest {
        trigger: "manual".into(),
        ..SyncRequest::default()
    }));
    let mut seen = Vec::new();
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Progress(_)
    )));
    handle.send(Command::MarkDuplicate {
        location: member.location.clone(),
        patient_id: member.id.clone(),
        duplicate: true,
    });
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::Finished(_)
    )));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::DecisionDeferred(text)
            if text.contains("Eine Synchronisation läuft") && text.contains("A sync is running"))),
        "the decision waited for the sync and said so"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, Event::DuplicateDecided(_))),
        "nothing was saved while the sync ran"
    );
    let Some(Event::Finished(result)) = seen.last() else {
        panic!("last event is the result")
    };
    let summary = result.as_ref().as_ref().expect("the sync ran");
    assert_eq!(summary.outcome, RunOutcome::Success);
    assert!(wait_for(&handle, &mut seen, |e| matches!(
        e,
        Event::DuplicateDecided(_)
    )));
    drop(handle);

    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let marks = ledger.case_marks().expect("marks");
    let key = (member.location.clone(), member.id.clone());
    assert_eq!(
        marks.get(&key),
        Some(&(cases_of_member.len() as u64, cases_of_member.len() as u64)),
        "every case of the record is marked"
    );
    let patient = format!("{}:{}", member.location, member.id);
    assert!(
        ledger
            .audit_log(None, 10)
            .expect("audit")
            .iter()
            .any(|e| e.entry.action == "duplicate.mark_lost" && e.entry.subject == patient),
        "the mark is audited"
    );
    let runs = ledger.recent_runs(10).expect("runs");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].outcome, Some(RunOutcome::Success));
    drop(ledger);

    bed.sandbox.ivoris.set_faults(calm);
    runtime.block_on(run(&bed.env));
    let after = runtime.block_on(keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url));
    for key in &cases_of_member {
        let deal = after.deals.get(key).expect("the deal exists");
        assert_eq!(
            deal.get("verlustgrund").map(String::as_str),
            Some("Duplikat"),
            "{key}"
        );
    }
}
