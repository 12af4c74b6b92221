//! The dry run in the desktop app, driven through its accessibility tree:
//! before the first sync over a portal the previous integration filled,
//! „Jetzt synchronisieren“ asks for a dry run; the dry run sends nothing
//! and shows per location what would be adopted, which the real sync
//! started from its result then does; a second sync asks no more.

mod engine_support;
mod gui_support;

use egui_kittest::kittest::Queryable;
use engine_support::{bed, options};
use gui_support::{app_harness, step_until};
use ivoris_hubspot_sync::gui::Panel;
use ivoris_hubspot_sync::gui::dry_run::result_rows;
use ivoris_hubspot_sync::gui::i18n::Lang;
use ivoris_hubspot_sync::gui::state::LastResult;
use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::sandbox::data::World;
use ivoris_hubspot_sync::sandbox::hubspot::seed;
use ivoris_hubspot_sync::sandbox::{PortalSeed, SandboxOptions, Size};

#[test]
fn a_first_sync_offers_a_dry_run_that_sends_nothing_and_says_what_the_sync_does() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let options = SandboxOptions {
        portal: PortalSeed::Legacy,
        size: Size::Small,
        ..options(73)
    };
    let world = World::generate(options.seed, options.size);
    let description = seed::records(PortalSeed::Legacy, &world);
    let bed = runtime.block_on(bed(options));
    let sim = &bed.sandbox.hubspot;
    let mut harness = app_harness(bed.env.clone(), Panel::Overview, None);
    step_until(&mut harness, "the engine", |app| {
        app.model.info.is_some() && app.model.overview.is_some()
    });

    // The first sync asks.
    harness.get_by_label("Jetzt synchronisieren").click();
    harness.run_steps(3);
    assert!(!harness.state().model.running, "nothing started yet");
    assert!(harness.query_by_label("Erste Synchronisation").is_some());
    harness.get_by_label("Probelauf starten").click();
    harness.run_steps(2);
    assert!(harness.state().model.dry_running);
    step_until(&mut harness, "the dry run", |app| {
        !app.model.running && app.model.dry_run_result.is_some()
    });
    assert_eq!(sim.counters().write_calls, 0, "the dry run wrote nothing");
    assert!(harness.query_by_label("Ergebnis des Probelaufs").is_some());

    // Per location: the contacts the old integration made for its patients
    // are adopted (counted from the seed, not from the product).
    let dry = harness
        .state()
        .model
        .dry_run_result
        .clone()
        .expect("the result");
    let rows = result_rows(Lang::De, &dry);
    let adopted = &rows
        .iter()
        .find(|(label, _)| label == "Kontakte übernommen")
        .expect("the adopted contacts' row")
        .1;
    for (location, shown) in dry.locations.iter().zip(adopted) {
        let expected = description
            .contact_origins
            .iter()
            .filter(|o| o.is_patient_contact(Some(&location.key)))
            .count() as u64;
        assert!(expected > 0);
        assert_eq!(*shown, Lang::De.number(expected), "{}", location.key);
        assert!(
            harness.query_all_by_label(shown).next().is_some(),
            "shown: {shown}"
        );
    }

    // The real sync from the result does what the dry run said.
    harness.get_by_label("Synchronisieren wie gezeigt").click();
    harness.run_steps(2);
    assert!(harness.state().model.dry_run_result.is_none(), "closed");
    step_until(&mut harness, "the sync", |app| {
        !app.model.running && matches!(&app.model.last, Some(LastResult::Summary(s)) if !s.dry_run)
    });
    let Some(LastResult::Summary(real)) = harness.state().model.last.clone() else {
        panic!("a summary");
    };
    assert_eq!(real.outcome, RunOutcome::Success, "{:?}", real.message);
    assert!(sim.counters().write_calls > 0);
    for (dry, real) in dry.locations.iter().zip(&real.locations) {
        assert_eq!(
            dry.plan.as_ref().map(|p| p.adoption),
            real.plan.as_ref().map(|p| p.adoption),
            "the dry run said what happened at {}",
            real.key
        );
    }

    // Once HubSpot holds the locations' records, the button just syncs.
    step_until(&mut harness, "the refreshed overview", |app| {
        app.model
            .overview
            .as_ref()
            .is_some_and(|o| o.locations.iter().all(|l| l.confirmed.contacts > 0))
    });
    harness.get_by_label("Jetzt synchronisieren").click();
    harness.run_steps(2);
    assert!(harness.state().model.first_sync_prompt.is_none());
    assert!(
        harness.state().model.running,
        "the second sync runs at once"
    );
    step_until(&mut harness, "the second sync", |app| !app.model.running);
    drop(harness);
    runtime.block_on(bed.sandbox.shutdown());
}
