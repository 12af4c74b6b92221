//! The switch-over scenario: a chain moving from the previous integration
//! to this app. Two practices of 3,000 patients each, bookings up to 24
//! months ahead, each Ivoris answering in 5 ms with one request in flight,
//! HubSpot Professional refusing whole batches over one conflicting e-mail,
//! and half of the patients already in the portal as contacts the old
//! integration created by e-mail, without our key.
//!
//! Every expected figure is derived from the sandbox's data and its request
//! logs: the minimum HubSpot calls from the records HubSpot confirmed and
//! the contacts seeded, the Ivoris floor from the requests each
//! installation answered.

use std::collections::BTreeMap;
use std::time::Instant;

use ivoris_hubspot_sync::engine::run::SyncRequest;
use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::sandbox::hubspot::seed;
use ivoris_hubspot_sync::sandbox::ivoris::FaultUpdate;
use ivoris_hubspot_sync::sandbox::{
    BatchFailures, FaultProfile, PortalSeed, Sandbox, SandboxOptions, Size,
};

use super::{
    BATCH, CALLS_PER_SECOND, MAX_CALL_RATIO, MAX_RESYNC_SECONDS, MAX_RSS_MB, Row,
    confirmed_records, environment, ratio, row, run_child_sync, run_sync,
};

/// Seed of the chain's world.
const SEED: u64 = 7;
/// Practices synced.
const LOCATIONS: usize = 2;
/// Each Ivoris answers after this long.
const IVORIS_LATENCY_MS: u64 = 5;
/// How long HubSpot's answers take in the `chain-slow` variant (batches of
/// 100 take a few hundred milliseconds at HubSpot; the `chain` scenario
/// answers at once).
pub const SLOW_HUBSPOT_MS: u64 = 100;
/// Wall time against the larger of the two floors.
const MAX_WALL_RATIO: f64 = 1.2;

/// Runs the scenario and adds its rows.
pub async fn run(rows: &mut Vec<Row>, hubspot_latency_ms: u64) {
    let scenario = if hubspot_latency_ms == 0 {
        "switch-over".to_owned()
    } else {
        format!("switch-over, HubSpot answers in {hubspot_latency_ms} ms")
    };
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions {
        seed: SEED,
        size: Size::Chain,
        faults: FaultProfile::None,
        tier: Tier::Professional,
        rate_limits: true,
        batch_failures: BatchFailures::WholeCall,
        portal: PortalSeed::PreviousContacts,
        hubspot_latency: std::time::Duration::from_millis(hubspot_latency_ms),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    sandbox.ivoris.update_faults(&FaultUpdate {
        latency_ms: Some(IVORIS_LATENCY_MS),
        ..FaultUpdate::default()
    });
    println!(
        "\n== switch-over: {LOCATIONS} practices of the `chain` sandbox, generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let keys: Vec<String> = sandbox
        .locations
        .iter()
        .take(LOCATIONS)
        .map(|l| l.key.clone())
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = environment(&sandbox, dir.path().join("ledger.sqlite"));
    env.settings.locations.retain(|l| keys.contains(&l.key));
    let settings_file = dir.path().join("settings.toml");
    env.settings.save(&settings_file).expect("settings written");

    let (patients, farthest) = world_figures(&sandbox, &keys);
    let conflicts = conflicting_patients(&sandbox, &keys);
    sandbox.hubspot.reset_counters();
    sandbox.ivoris.reset_counters();
    sandbox.ivoris.reset_request_log();
    let started = Instant::now();
    let (exit, peak_kb) = run_child_sync(&settings_file, dir.path(), &keys).await;
    let wall = started.elapsed().as_secs_f64();
    println!("first sync: exit code {exit:?}, {wall:.1} s; farthest booking {farthest} days ahead");

    let hubspot = sandbox.hubspot.counters();
    println!("HubSpot requests by endpoint:");
    for (endpoint, count) in &hubspot.requests {
        println!("  {count:>6}  {endpoint}");
    }
    let calls: u64 = hubspot.requests.values().sum();
    let records = confirmed_records(&env.ledger_path);
    let mut minimum = 0;
    for (kind, count) in &records {
        let kind_calls = count.div_ceil(BATCH);
        minimum += kind_calls;
        println!("  {count:>7}  {kind:<28} {kind_calls:>5}");
    }
    minimum += conflicts.div_ceil(BATCH) * 2;
    println!("  {conflicts:>7}  patients whose e-mail a seeded contact has (x2 per 100)");
    rows.push(row(
        &format!("{scenario}: HubSpot calls, first sync"),
        format!("{calls} (minimum {minimum}, x{:.3})", ratio(calls, minimum)),
        "<= 1.05 x minimum",
        Some(calls as f64 <= MAX_CALL_RATIO * minimum as f64),
    ));

    let log = sandbox.ivoris.request_log();
    let mut per_link: BTreeMap<&str, u64> = BTreeMap::new();
    let mut per_route: BTreeMap<(&str, bool), u64> = BTreeMap::new();
    for record in &log {
        *per_link.entry(record.link.as_str()).or_default() += 1;
        *per_route
            .entry((record.route.as_str(), record.windowed))
            .or_default() += 1;
    }
    println!("Ivoris requests by route:");
    for ((route, windowed), count) in &per_route {
        let window = if *windowed { " (windowed)" } else { "" };
        println!("  {count:>6}  {route}{window}");
    }
    let entry_asks: u64 = per_route
        .iter()
        .filter(|((route, _), _)| route.contains("DocumentEntries"))
        .map(|(_, count)| count)
        .sum();
    let total_patients: u64 = patients.values().sum();
    rows.push(row(
        &format!("{scenario}: billing-line asks, first sync"),
        format!("{entry_asks} for {total_patients} patients"),
        "= patients",
        Some(entry_asks == total_patients),
    ));
    let overlapping = concurrent_pairs(&log);
    rows.push(row(
        &format!("{scenario}: installations read at the same time"),
        format!("{overlapping} overlapping request pairs of different installations"),
        "> 0",
        Some(overlapping > 0),
    ));

    let slowest = per_link.values().copied().max().unwrap_or(0);
    let ivoris_floor = slowest as f64 * IVORIS_LATENCY_MS as f64 / 1000.0;
    let hubspot_floor = minimum as f64 / CALLS_PER_SECOND;
    let floor = ivoris_floor.max(hubspot_floor);
    rows.push(row(
        &format!("{scenario}: wall time, first sync"),
        format!(
            "{wall:.1} s (floors: HubSpot {hubspot_floor:.1} s, Ivoris {ivoris_floor:.1} s; x{:.3})",
            wall / floor
        ),
        "<= 1.2 x max(floors)",
        Some(wall <= MAX_WALL_RATIO * floor),
    ));
    let engine_mb = peak_kb.map(|kb| kb as f64 / 1024.0);
    rows.push(row(
        &format!("{scenario}: peak memory of the first sync (VmHWM)"),
        engine_mb.map_or("n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        "<= 300 MB",
        engine_mb.map(|mb| mb <= MAX_RSS_MB),
    ));

    sandbox.hubspot.reset_counters();
    let request = SyncRequest {
        locations: keys.clone(),
        trigger: "bench".into(),
        ..SyncRequest::default()
    };
    let started = Instant::now();
    let again = run_sync(&env, &request).await;
    let resync = started.elapsed().as_secs_f64();
    let writes = sandbox.hubspot.write_calls();
    let calls: u64 = sandbox.hubspot.counters().requests.values().sum();
    rows.push(row(
        &format!("{scenario}: re-sync without changes"),
        format!(
            "{resync:.2} s, {calls} HubSpot calls ({writes} writes), {} records written",
            again.counts.written
        ),
        "<= 5 s, 0 writes",
        Some(resync <= MAX_RESYNC_SECONDS && writes == 0 && again.counts.written == 0),
    ));
    sandbox.shutdown().await;
}

/// Patients per synced location's link name, and how many days ahead the
/// farthest booking lies.
fn world_figures(sandbox: &Sandbox, keys: &[String]) -> (BTreeMap<String, u64>, i64) {
    sandbox.ivoris.with_world(|world| {
        let today = world.now.date();
        let mut patients = BTreeMap::new();
        let mut farthest = 0;
        for location in world.locations.iter().filter(|l| keys.contains(&l.key)) {
            patients.insert(location.linkname.clone(), location.patients.len() as u64);
            for start in location.appointments.iter().filter_map(|a| a.start) {
                farthest = farthest.max((start.date() - today).num_days());
            }
        }
        (patients, farthest)
    })
}

/// Synced patients whose e-mail address a contact of the previous
/// integration already has (compared as HubSpot does, without case and
/// surrounding spaces): each of them conflicts once.
fn conflicting_patients(sandbox: &Sandbox, keys: &[String]) -> u64 {
    sandbox.ivoris.with_world(|world| {
        let seeded: std::collections::HashSet<String> =
            seed::records(PortalSeed::PreviousContacts, world)
                .contacts
                .iter()
                .flat_map(|contact| contact.iter().filter(|(name, _)| *name == "email"))
                .map(|(_, value)| value.trim().to_lowercase())
                .collect();
        world
            .locations
            .iter()
            .filter(|l| keys.contains(&l.key))
            .flat_map(|l| &l.patients)
            .filter_map(|p| p.email.as_deref())
            .filter(|email| seeded.contains(&email.trim().to_lowercase()))
            .count() as u64
    })
}

/// Pairs of requests to different installations that were in flight at
/// the same time (the log orders starts and ends, so no clock is read).
fn concurrent_pairs(log: &[ivoris_hubspot_sync::sandbox::ivoris::RequestRecord]) -> u64 {
    let mut pairs = 0;
    for (i, a) in log.iter().enumerate() {
        for b in &log[i + 1..] {
            if b.started >= a.finished {
                break;
            }
            if a.link != b.link && a.overlaps(b) {
                pairs += 1;
            }
        }
    }
    pairs
}
