//! Paths follow the configured API version: a whole sync (and the owners
//! list of the mapping editor) under `2026-03` calls no numbered path, one
//! under `v3` no date-versioned path. The sandbox logs every path it is
//! sent, recognised or not.

mod engine_support;

use std::collections::BTreeMap;

use engine_support::{Bed, bed, options, run};
use ivoris_hubspot_sync::engine::reapply;
use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::settings::ApiVersion;

/// Every path the sandbox was sent during a sync and an owners list.
async fn paths_of_a_sync(bed: &Bed) -> BTreeMap<String, u64> {
    bed.sandbox.hubspot.reset_counters();
    let summary = run(&bed.env).await;
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );
    let owners = reapply::owners(&bed.env).await.expect("owners");
    assert!(!owners.is_empty());
    bed.sandbox.hubspot.counters().paths
}

fn numbered(path: &str) -> bool {
    ["/v1/", "/v2/", "/v3/", "/v4/"]
        .iter()
        .any(|family| format!("{path}/").contains(family))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_under_2026_03_calls_no_numbered_path() {
    let bed = bed(options(67)).await;
    assert_eq!(bed.env.settings.hubspot.api_version, ApiVersion::default());
    let paths = paths_of_a_sync(&bed).await;
    let wrong: Vec<&String> = paths.keys().filter(|path| numbered(path)).collect();
    assert!(wrong.is_empty(), "numbered paths under 2026-03: {wrong:?}");
    for family in [
        "/crm/objects/2026-03/",
        "/crm/properties/2026-03/",
        "/crm/pipelines/2026-03/",
        "/crm/associations/2026-03/",
        "/crm/object-library/2026-03/enablement/",
        "/crm/owners/2026-03",
        "/account-info/2026-03/api-usage/",
    ] {
        assert!(
            paths.keys().any(|path| path.contains(family)),
            "{family} used: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_under_v3_keeps_the_numbered_paths() {
    let mut bed = bed(options(67)).await;
    bed.env.settings.hubspot.api_version = ApiVersion::V3;
    let paths = paths_of_a_sync(&bed).await;
    let dated: Vec<&String> = paths
        .keys()
        .filter(|path| path.contains("2026-03"))
        .collect();
    assert!(dated.is_empty(), "dated paths under v3: {dated:?}");
    for family in [
        "/crm/v3/objects/",
        "/crm/v4/associations/",
        "/crm/v3/object-library/enablement/",
        "/crm/v3/owners",
        "/account-info/v3/api-usage/",
    ] {
        assert!(
            paths.keys().any(|path| path.contains(family)),
            "{family} used"
        );
    }
}
