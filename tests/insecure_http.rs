//! A location whose Ivoris is reached over plain HTTP on the practice
//! network (`allow_insecure_http = true`) is warned about in the run
//! summary, in the app's last-run line and in the Übersicht.
//!
//! No request leaves the machine: the settings name a practice-network
//! address, and the client is pointed at the sandbox on 127.0.0.1 under it
//! (`tune_ivoris`), as the settings' validation never sees.

mod engine_support;
mod gui_support;

use std::sync::Arc;

use egui_kittest::kittest::{By, Queryable};
use engine_support::{Bed, bed, options, run};
use gui_support::{app_harness, click_sync, step_until};
use ivoris_hubspot_sync::engine::run::SyncEnvironment;
use ivoris_hubspot_sync::gui::state::LastResult;
use ivoris_hubspot_sync::gui::{Panel, SyncApp};
use ivoris_hubspot_sync::ledger::RunOutcome;

/// Plain HTTP on the practice network, as the settings would name it.
const LAN_URL: &str = "http://192.0.2.10/relay/praxis/webservice/api";

/// The bed's environment with its first location at [`LAN_URL`] (opted
/// in), its client still talking to the sandbox.
fn lan_env(bed: &Bed) -> SyncEnvironment {
    let mut env = bed.env.clone();
    let first = &mut env.settings.locations[0];
    let sandbox_url = std::mem::replace(&mut first.ivoris_url, LAN_URL.to_owned());
    first.allow_insecure_http = true;
    assert!(first.uses_insecure_http());
    let earlier = env.tune_ivoris.clone();
    env.tune_ivoris = Some(Arc::new(move |config| {
        if let Some(tune) = &earlier {
            tune(config);
        }
        if config.base_url == LAN_URL {
            config.base_url = sandbox_url.clone();
        }
    }));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_summary_warns_about_plain_http() {
    let bed = bed(options(81)).await;
    let env = lan_env(&bed);
    let key = env.settings.locations[0].key.clone();
    let summary = run(&env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    let (de, en) = &summary.warnings[0];
    assert!(de.contains(&format!("Standort „{key}“")) && de.contains("unverschlüsselt"));
    assert!(en.contains(&format!("location \"{key}\"")) && en.contains("unencrypted"));

    // The sandbox as it is (loopback) is not warned about.
    let summary = run(&bed.env).await;
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
}

#[test]
fn the_overview_and_the_last_run_line_warn_about_plain_http() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(82)));
    let mut harness = app_harness(lan_env(&bed), Panel::Overview, None);
    step_until(&mut harness, "the overview", |app| {
        app.model.info.is_some() && app.model.overview.is_some()
    });
    let warned = |harness: &egui_kittest::Harness<'_, SyncApp>| {
        harness
            .query_all(By::new().predicate(|node| {
                node.role() == egui::accesskit::Role::Label
                    && node.value().is_some_and(|text| {
                        text.contains("unverschlüsselt über http://") && text.contains("Klartext")
                    })
            }))
            .count()
    };
    assert_eq!(warned(&harness), 1, "the Übersicht warns");

    click_sync(&mut harness);
    step_until(&mut harness, "the sync", |app| {
        !app.model.running && matches!(app.model.last, Some(LastResult::Summary(_)))
    });
    assert_eq!(
        warned(&harness),
        2,
        "the Übersicht and the last run's line both warn"
    );
}
