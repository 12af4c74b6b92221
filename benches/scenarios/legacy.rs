//! The switch-over at scale: the first location of the `large` sandbox
//! (10,000 patients) synced into a portal the previous integration filled
//! for every location (contacts by `ivoris_patient_id`, a deal per
//! appointment, duplicates, lost „Duplikat“ deals, records made by hand).
//! HubSpot Professional, rate limits on.
//!
//! The budget is issue 11's: HubSpot calls ≤ 1.1 × (the minimum of an
//! empty portal + one list call per 100 legacy records). The minimum is
//! one call per 100 records of each kind and association kind HubSpot
//! confirmed; the legacy records are counted from the seed's description.

use std::time::Instant;

use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::sandbox::hubspot::seed;
use ivoris_hubspot_sync::sandbox::{FaultProfile, PortalSeed, Sandbox, SandboxOptions, Size};

use super::{BATCH, Row, confirmed_records, environment, ratio, row, run_child_sync};

/// Seed of the world.
const SEED: u64 = 11;
/// Calls against the budget.
const MAX_RATIO: f64 = 1.1;

/// Runs the scenario and adds its rows.
pub async fn run(rows: &mut Vec<Row>) {
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions {
        seed: SEED,
        size: Size::Large,
        faults: FaultProfile::None,
        tier: Tier::Professional,
        rate_limits: true,
        portal: PortalSeed::Legacy,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let legacy = sandbox.ivoris.with_world(|world| {
        let description = seed::records(PortalSeed::Legacy, world);
        (description.contacts.len() + description.deals.len()) as u64
    });
    println!(
        "\n== legacy portal: `large` sandbox with {legacy} records of the previous integration, ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let location = sandbox.locations[0].key.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = environment(&sandbox, dir.path().join("ledger.sqlite"));
    env.settings.locations.retain(|l| l.key == location);
    let settings_file = dir.path().join("settings.toml");
    env.settings.save(&settings_file).expect("settings written");

    sandbox.hubspot.reset_counters();
    let started = Instant::now();
    let (exit, _) =
        run_child_sync(&settings_file, dir.path(), std::slice::from_ref(&location)).await;
    let wall = started.elapsed().as_secs_f64();
    println!("first sync of `{location}`: exit code {exit:?}, {wall:.1} s");
    let counters = sandbox.hubspot.counters();
    println!("HubSpot requests by endpoint:");
    for (endpoint, count) in &counters.requests {
        println!("  {count:>6}  {endpoint}");
    }
    // Provisioning is the same for any number of records.
    let setup: u64 = counters
        .requests
        .iter()
        .filter(|(endpoint, _)| {
            [
                "/crm/properties/",
                "/crm/pipelines/",
                "/account-info/",
                "/crm/object-library/",
            ]
            .iter()
            .any(|family| endpoint.contains(family))
        })
        .map(|(_, count)| count)
        .sum();
    let calls = counters.requests.values().sum::<u64>() - setup;
    let mut minimum = 0;
    for (kind, count) in confirmed_records(&env.ledger_path) {
        let kind_calls = count.div_ceil(BATCH);
        minimum += kind_calls;
        println!("  {count:>7}  {kind:<28} {kind_calls:>5}");
    }
    let lists = legacy.div_ceil(BATCH);
    let budget = (minimum + lists) as f64 * MAX_RATIO;
    rows.push(row(
        "legacy portal (large): HubSpot calls, first sync",
        format!(
            "{calls} (minimum {minimum} + {lists} list calls, x{:.3})",
            ratio(calls, minimum + lists)
        ),
        "<= 1.1 x (minimum + legacy/100)",
        Some(exit == Some(0) && calls as f64 <= budget),
    ));
    rows.push(row(
        "legacy portal (large): wall time, first sync",
        format!("{wall:.1} s"),
        "report",
        None,
    ));
    sandbox.shutdown().await;
}
