//! The sync benchmark: one location of the `large` sandbox synced end to end
//! into the simulated HubSpot under Professional rate limits (190 calls per
//! 10 s), no faults, then synced again without changes, then a corrected
//! mapping is previewed, confirmed and synced. Alongside, the pure planning
//! rules are timed over the same location's facts in memory.
//!
//! The pacing comparison (`scenarios/pacing.rs`) runs last.
//!
//! A second scenario (`scenarios/chain.rs`) is a chain switching over from
//! the previous integration: two practices read at once, bookings two
//! years ahead, an Ivoris answering in 5 ms, whole-call conflict refusals
//! over a portal already full of the old integration's contacts. A third
//! (`scenarios/legacy.rs`) syncs the first `large` location into a portal
//! the previous integration filled with its keyed contacts and deals.
//!
//! Run with `cargo bench --bench sync` (all four), or
//! `cargo bench --bench sync -- large` / `-- chain` / `-- chain-slow` /
//! `-- legacy` / `-- pacing` for some (`chain-slow` is the chain with
//! HubSpot answering every call in 100 ms, as its batch calls take). It prints a
//! table of every number with its target and PASS/FAIL; the run takes a
//! few minutes because the first sync is paced by HubSpot's rate limit,
//! which is the point.

#[path = "scenarios/chain.rs"]
mod chain;
#[path = "scenarios/legacy.rs"]
mod legacy;
#[path = "scenarios/pacing.rs"]
mod pacing;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::reapply::{confirm, preview};
use ivoris_hubspot_sync::engine::run::{Progress, SyncEnvironment, SyncRequest, SyncSummary, sync};
use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::mapping::store::save_version;
use ivoris_hubspot_sync::mapping::{Category, Mapping};
use ivoris_hubspot_sync::plan::properties::{appointment_key, patient_key};
use ivoris_hubspot_sync::plan::{
    AppointmentFacts, DealContext, EntryFacts, PatientCases, PatientFacts, StageIds,
    appointment_properties, contact_properties, deal_properties, derive_stages,
    derive_stages_by_span,
};
use ivoris_hubspot_sync::sandbox::data::Location;
use ivoris_hubspot_sync::sandbox::{FaultProfile, Sandbox, SandboxOptions, Size, credentials};

/// Seed of the synthetic world.
const SEED: u64 = 42;
/// Inputs per HubSpot batch call.
const BATCH: u64 = 100;
/// Professional tier: 190 calls per 10 s, i.e. 19 per second.
const CALLS_PER_SECOND: f64 = 19.0;
/// Targets of the issue.
const MAX_CALL_RATIO: f64 = 1.05;
const MAX_WALL_RATIO: f64 = 1.15;
const MAX_RESYNC_SECONDS: f64 = 5.0;
const MIN_PLAN_ENTRIES_PER_SECOND: f64 = 200_000.0;
const MAX_RSS_MB: f64 = 300.0;
/// Threads the engine's planner uses at most (`engine::planner`).
const PLAN_THREADS: usize = 4;

/// One line of the result table.
struct Row {
    name: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

fn row(name: &str, value: String, target: &str, pass: Option<bool>) -> Row {
    Row {
        name: name.to_owned(),
        value,
        target: target.to_owned(),
        pass,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("large") {
        runtime.block_on(run(&mut rows));
    }
    if wanted("chain") {
        runtime.block_on(chain::run(&mut rows, 0));
    }
    if wanted("chain-slow") {
        runtime.block_on(chain::run(&mut rows, chain::SLOW_HUBSPOT_MS));
    }
    if wanted("legacy") {
        runtime.block_on(legacy::run(&mut rows));
    }
    if wanted("pacing") {
        let runs = runtime.block_on(pacing::compare(pacing::asks()));
        pacing::print_runs(&runs);
        pacing::print_verdicts(&runs);
        for (what, measured, pass) in pacing::verdicts(&runs) {
            rows.push(row(&what, measured, "see name", Some(pass)));
        }
    }

    let rss_mb = status_kb("VmHWM:").map(|kb| kb as f64 / 1024.0);
    rows.push(row(
        "peak memory of this process (sandbox + re-sync + planning)",
        rss_mb.map_or("n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        "report",
        None,
    ));
    print_table(&rows);
}

async fn run(rows: &mut Vec<Row>) {
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions {
        seed: SEED,
        size: Size::Large,
        faults: FaultProfile::None,
        tier: Tier::Professional,
        rate_limits: true,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    println!(
        "sandbox `large` generated and started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let baseline = status_kb("VmRSS:").map(|kb| kb as f64 / 1024.0);
    rows.push(row(
        "memory after sandbox start (VmRSS)",
        baseline.map_or("n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        "report",
        None,
    ));
    let location = sandbox.locations[0].key.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = environment(&sandbox, dir.path().join("ledger.sqlite"));
    let request = SyncRequest {
        locations: vec![location.clone()],
        trigger: "bench".into(),
        ..SyncRequest::default()
    };

    // First sync: everything is new. It runs as the real binary in its own
    // process, so its peak memory is the engine's, not the sandbox's.
    sandbox.hubspot.reset_counters();
    sandbox.ivoris.reset_counters();
    let settings_file = dir.path().join("settings.toml");
    env.settings.save(&settings_file).expect("settings written");
    let started = Instant::now();
    let (exit, peak_kb) =
        run_child_sync(&settings_file, dir.path(), std::slice::from_ref(&location)).await;
    let wall = started.elapsed().as_secs_f64();
    let engine_mb = peak_kb.map(|kb| kb as f64 / 1024.0);
    rows.push(row(
        "peak memory of the first sync (engine process, VmHWM)",
        engine_mb.map_or("n/a".to_owned(), |mb| format!("{mb:.1} MB")),
        "<= 300 MB",
        engine_mb.map(|mb| mb <= MAX_RSS_MB),
    ));
    let hubspot = sandbox.hubspot.counters();
    let ivoris = sandbox.ivoris.counters();
    println!("\nfirst sync of `{location}`: exit code {exit:?}");

    println!("HubSpot requests by endpoint:");
    for (endpoint, count) in &hubspot.requests {
        println!("  {count:>6}  {endpoint}");
    }
    let calls: u64 = hubspot.requests.values().sum();
    println!("  429s: {:?}", hubspot.rate_limited);

    let records = confirmed_records(&env.ledger_path);
    println!("records HubSpot confirmed, by kind (minimum calls):");
    let mut minimum = 0;
    for (kind, count) in &records {
        let calls = count.div_ceil(BATCH);
        minimum += calls;
        println!("  {count:>7}  {kind:<28} {calls:>5}");
    }

    println!("Ivoris requests by route (status: count):");
    for (route, statuses) in &ivoris {
        println!("  {statuses:?}  {route}");
    }
    let patients = sandbox.ivoris.with_world(|world| {
        world
            .locations
            .iter()
            .find(|l| l.key == location)
            .map_or(0, |l| l.patients.len() as u64)
    });
    let entry_calls: u64 = ivoris
        .iter()
        .filter(|(route, _)| route.contains("DocumentEntries"))
        .flat_map(|(_, statuses)| statuses.values())
        .sum();

    let floor = minimum as f64 / CALLS_PER_SECOND;
    rows.push(row(
        "HubSpot calls, first sync",
        format!("{calls} (minimum {minimum}, x{:.3})", ratio(calls, minimum)),
        "<= 1.05 x minimum",
        Some(calls as f64 <= MAX_CALL_RATIO * minimum as f64),
    ));
    rows.push(row(
        "wall time, first sync",
        format!("{wall:.1} s (floor {floor:.1} s, x{:.3})", wall / floor),
        "<= 1.15 x floor",
        Some(wall <= MAX_WALL_RATIO * floor),
    ));
    rows.push(row(
        "Ivoris calls, first sync",
        format!(
            "{} total, {entry_calls} for billing lines",
            ivoris.values().flat_map(BTreeMap::values).sum::<u64>()
        ),
        "report",
        None,
    ));
    rows.push(row(
        "billing-line calls, first sync",
        format!("{entry_calls} for {patients} patients (activity, then the first full sweep)"),
        "report",
        None,
    ));

    // Second sync: nothing changed in Ivoris.
    sandbox.hubspot.reset_counters();
    sandbox.ivoris.reset_counters();
    let started = Instant::now();
    let second = run_sync(&env, &request).await;
    let resync = started.elapsed().as_secs_f64();
    let writes = sandbox.hubspot.write_calls();
    let ivoris_again: u64 = sandbox
        .ivoris
        .counters()
        .values()
        .flat_map(BTreeMap::values)
        .sum();
    println!(
        "\nre-sync: {:?}, {} HubSpot requests, {ivoris_again} Ivoris requests",
        second.outcome,
        sandbox.hubspot.counters().requests.values().sum::<u64>()
    );
    let extract = second
        .locations
        .first()
        .and_then(|l| l.extract.clone())
        .unwrap_or_default();
    let entry_calls_again: u64 = sandbox
        .ivoris
        .counters()
        .iter()
        .filter(|(route, _)| route.contains("DocumentEntries"))
        .flat_map(|(_, statuses)| statuses.values())
        .sum();
    rows.push(row(
        "billing lines asked, re-sync",
        format!(
            "{entry_calls_again} calls: {} patients with activity, {} swept",
            extract.patients_asked_for_entries, extract.patients_swept
        ),
        "activity only",
        Some(
            extract.patients_swept == 0 && entry_calls_again == extract.patients_asked_for_entries,
        ),
    ));
    rows.push(row(
        "HubSpot writes, re-sync",
        writes.to_string(),
        "0",
        Some(writes == 0),
    ));
    rows.push(row(
        "wall time, re-sync",
        format!("{resync:.2} s"),
        "<= 5 s",
        Some(resync <= MAX_RESYNC_SECONDS),
    ));

    // A corrected mapping re-applied: every filling counts as
    // endodontics. The preview plans the location twice in rolled-back
    // transactions; confirming queues the changed deals; the next sync
    // sends exactly those.
    let mut corrected = Mapping::defaults();
    for rule in &mut corrected.categories {
        if rule.category == Category::Fuellung {
            rule.category = Category::Endodontie;
        }
    }
    let version = {
        let mut ledger = Ledger::open(&env.ledger_path).expect("ledger");
        save_version(&mut ledger, &corrected, "bench", "Füllung → Endodontie").expect("save")
    };
    let started = Instant::now();
    let shown = preview(&env, version).await.expect("preview");
    let preview_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let confirmed = confirm(&env, version, "bench").await.expect("confirm");
    let confirm_secs = started.elapsed().as_secs_f64();
    let queued: u64 = confirmed.queued.values().sum();
    sandbox.hubspot.reset_counters();
    let applied = run_sync(&env, &request).await;
    rows.push(row(
        "re-apply preview (category change)",
        format!(
            "{preview_secs:.2} s for {} deals: {} change category, {} revenue; {} to write",
            shown.deals,
            shown.category_changes,
            shown.revenue_changes,
            shown.total_to_write()
        ),
        "report",
        None,
    ));
    rows.push(row(
        "re-apply confirm, then sync",
        format!(
            "{confirm_secs:.2} s, {queued} queued; sync wrote {} records",
            applied.counts.written
        ),
        "= preview",
        Some(queued == shown.total_to_write() && applied.counts.written == queued),
    ));

    // The pure planning rules over the same location, in memory: on one
    // thread, and split over threads as the engine's planner does.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(PLAN_THREADS);
    for (label, threads) in [("1 thread", 1), ("engine's threads", threads)] {
        let (entries, seconds) = sandbox.ivoris.with_world(|world| {
            let location = world
                .locations
                .iter()
                .find(|l| l.key == location)
                .expect("location");
            plan_throughput(location, world.now, threads)
        });
        let per_second = entries as f64 / seconds;
        let engine = label != "1 thread";
        rows.push(row(
            &format!("planning throughput (plan + diff), {label} ({threads})"),
            format!("{per_second:.0} entries/s ({entries} entries in {seconds:.3} s)"),
            if engine {
                ">= 200,000 entries/s"
            } else {
                "report"
            },
            engine.then_some(per_second >= MIN_PLAN_ENTRIES_PER_SECOND),
        ));
    }
    sandbox.shutdown().await;
}

fn ratio(value: u64, base: u64) -> f64 {
    value as f64 / base.max(1) as f64
}

/// The shared sandbox environment under the Professional tier, with the
/// sandbox's clock written into the settings.
fn environment(sandbox: &Sandbox, ledger_path: std::path::PathBuf) -> SyncEnvironment {
    let mut env = support::sandbox_environment(sandbox, ledger_path);
    env.settings.hubspot.tier = Tier::Professional;
    // The child process of the first sync reads the clock from the file.
    env.settings.sync.simulated_now = Some(sandbox.ivoris.now());
    env
}

/// Runs `sync` of some locations as the real binary and samples its peak
/// resident memory (`VmHWM` only grows, so the last sample before it exits
/// is its peak within one sampling interval).
async fn run_child_sync(
    settings: &std::path::Path,
    data_dir: &std::path::Path,
    locations: &[String],
) -> (Option<i32>, Option<u64>) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivoris-hubspot-sync"));
    command
        .arg("--config")
        .arg(settings)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("sync");
    for location in locations {
        command.args(["--location", location]);
    }
    let mut child = command
        .env("HUBSPOT_TOKEN", credentials::HUBSPOT_TOKEN)
        .env("IVORIS_PASSWORD", credentials::IVORIS_PASSWORD)
        .env("IVORIS_API_KEY", credentials::IVORIS_API_KEY)
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sync starts");
    let pid = child.id().expect("pid");
    let mut peak = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return (status.code(), peak);
        }
        let path = format!("/proc/{pid}/status");
        if let Some(kb) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| field_kb(&text, "VmHWM:"))
        {
            peak = Some(peak.map_or(kb, |p: u64| p.max(kb)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs one sync and prints how long each of its phases took.
async fn run_sync(env: &SyncEnvironment, request: &SyncRequest) -> SyncSummary {
    let phases: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(vec![("start", Instant::now())]);
    let progress = |event: Progress| {
        let phase = match event {
            Progress::Provisioning => "provisioning",
            Progress::Extract(_) => "extraction",
            Progress::Planning { .. } => "planning",
            Progress::Loading { .. } => "loading",
        };
        let mut phases = phases.lock().expect("phases");
        if phases.last().is_none_or(|(last, _)| *last != phase) {
            phases.push((phase, Instant::now()));
        }
    };
    let summary = sync(env, request, &progress, &CancelFlag::new())
        .await
        .expect("sync runs");
    let mut phases = phases.into_inner().expect("phases");
    phases.push(("end", Instant::now()));
    let timings: Vec<String> = phases
        .windows(2)
        .skip(1)
        .map(|pair| {
            let seconds = pair[1].1.duration_since(pair[0].1).as_secs_f64();
            format!("{} {seconds:.1} s", pair[0].0)
        })
        .collect();
    println!("phases: {}", timings.join(", "));
    summary
}

/// Records HubSpot confirmed, per object kind and per association kind pair
/// (the pair leads the association's outbox key).
fn confirmed_records(ledger: &std::path::Path) -> BTreeMap<String, u64> {
    let conn = rusqlite::Connection::open(ledger).expect("ledger");
    let mut statement = conn
        .prepare("SELECT kind, record_key FROM hubspot_records")
        .expect("query");
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .expect("rows");
    let mut counts = BTreeMap::new();
    for row in rows {
        let (kind, key) = row.expect("row");
        let name = match key.split_once('|') {
            Some((pair, _)) if kind == "association" => format!("association {pair}"),
            _ => kind,
        };
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

/// The plan's facts of one location, as the planner builds them from the
/// mirror: appointments without patient or start and entries without
/// patient, date or amount are left out (the planner quarantines them).
struct Facts {
    patients: Vec<PatientFacts>,
    appointments: HashMap<String, Vec<AppointmentFacts>>,
    entries: HashMap<String, Vec<EntryFacts>>,
}

impl Facts {
    /// One patient's appointments and billing lines (empty when none).
    fn records_of(&self, patient_id: &str) -> (&[AppointmentFacts], &[EntryFacts]) {
        let appointments = self
            .appointments
            .get(patient_id)
            .map_or(&[][..], Vec::as_slice);
        let entries = self.entries.get(patient_id).map_or(&[][..], Vec::as_slice);
        (appointments, entries)
    }
}

fn facts(location: &Location) -> Facts {
    let mut patients: Vec<PatientFacts> = location
        .patients
        .iter()
        .map(|p| {
            let address = p.address.clone().unwrap_or_default();
            PatientFacts {
                location: location.key.clone(),
                id: p.id.clone(),
                human_readable_id: p.human_readable_id.clone(),
                firstname: p.firstname.clone(),
                lastname: p.lastname.clone(),
                email: p.email.clone(),
                phone: p.phone.clone(),
                mobile: p.mobile.clone(),
                birthday: p.birthday.map(|b| b.date()),
                street: address.street,
                zip: address.zip,
                city: address.city,
            }
        })
        .collect();
    patients.sort_by(|a, b| a.id.cmp(&b.id));
    let mut appointments: HashMap<String, Vec<AppointmentFacts>> = HashMap::new();
    for a in &location.appointments {
        let (Some(patient_id), Some(start)) = (a.patient_id.clone(), a.start) else {
            continue;
        };
        appointments
            .entry(patient_id.clone())
            .or_default()
            .push(AppointmentFacts {
                id: a.id.clone(),
                patient_id,
                start,
                duration_minutes: a.duration_minutes,
                state: a.state.clone().unwrap_or_default(),
                type_label: a.type_label.clone(),
                template_id: a.template_id.clone(),
                deleted: false,
            });
    }
    let mut entries: HashMap<String, Vec<EntryFacts>> = HashMap::new();
    for e in &location.entries {
        let (Some(patient_id), Some(date), Some(amount_cents)) =
            (e.patient_id.clone(), e.date, e.amount_cents())
        else {
            continue;
        };
        entries
            .entry(patient_id.clone())
            .or_default()
            .push(EntryFacts {
                id: e.id.clone(),
                patient_id,
                date,
                entry_type: e.entry_type.clone().unwrap_or_default(),
                catalogue: e.catalogue.clone(),
                code: e.code.clone(),
                amount_cents,
            });
    }
    for list in appointments.values_mut() {
        list.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    }
    for list in entries.values_mut() {
        list.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
    }
    Facts {
        patients,
        appointments,
        entries,
    }
}

/// Plans every patient of `facts` as the engine does (case assignment,
/// stages, revenue, contact, deal and appointment property sets with their
/// hashes) and diffs each hash against `confirmed`. Returns how many
/// records differ.
fn plan_patients(
    patients: &[PatientFacts],
    facts: &Facts,
    mapping: &Mapping,
    context: &DealContext<'_>,
    confirmed: &HashMap<String, String>,
) -> u64 {
    let mut changed = 0;
    // Once per run, as the engine does (`contact_properties_to_clear`).
    let cleared = mapping.cleared_contact_properties([]);
    // Keyed by kind and key: a deal shares its key with its opening appointment.
    let mut diff = |key: String, hash: String| {
        if confirmed.get(&key) != Some(&hash) {
            changed += 1;
        }
    };
    for patient in patients {
        let location = patient.location.as_str();
        let (appointments, entries) = facts.records_of(&patient.id);
        let mut cases = PatientCases::new(location, &patient.id);
        cases.admit(appointments, entries, mapping);
        let contact_key = patient_key(location, &patient.id);
        diff(
            contact_key,
            contact_properties(patient, mapping, &cleared).content_hash(),
        );
        let spans = cases.entries_by_case(entries);
        let outcomes = derive_stages_by_span(&cases, &spans, mapping, context.now);
        for (case, outcome) in cases.cases.iter().zip(&outcomes) {
            let lines = spans.by_case.get(&case.key).map_or(&[][..], Vec::as_slice);
            let deal = deal_properties(patient, case, lines, outcome, context);
            diff(format!("deal {}", case.key), deal.content_hash());
        }
        for appointment in appointments {
            let record = appointment_properties(location, appointment, mapping);
            diff(
                format!("appointment {}", appointment_key(location, &appointment.id)),
                record.content_hash(),
            );
        }
    }
    changed
}

/// [`plan_patients`] over all patients on `threads` threads, split into
/// contiguous parts as the engine's planner splits them.
fn plan_all(
    facts: &Facts,
    mapping: &Mapping,
    context: &DealContext<'_>,
    confirmed: &HashMap<String, String>,
    threads: usize,
) -> u64 {
    if threads < 2 {
        return plan_patients(&facts.patients, facts, mapping, context, confirmed);
    }
    let chunk = facts.patients.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = facts
            .patients
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || plan_patients(part, facts, mapping, context, confirmed))
            })
            .collect();
        parts
            .into_iter()
            .map(|part| part.join().expect("planning thread"))
            .sum()
    })
}

/// The hashes of every record of `facts`, as HubSpot would have confirmed them.
fn confirmed_hashes(
    facts: &Facts,
    mapping: &Mapping,
    context: &DealContext<'_>,
) -> HashMap<String, String> {
    let mut confirmed = HashMap::new();
    for patient in &facts.patients {
        let location = patient.location.as_str();
        let (appointments, entries) = facts.records_of(&patient.id);
        let mut cases = PatientCases::new(location, &patient.id);
        cases.admit(appointments, entries, mapping);
        confirmed.insert(
            patient_key(location, &patient.id),
            contact_properties(patient, mapping, &mapping.cleared_contact_properties([]))
                .content_hash(),
        );
        let outcomes = derive_stages(&cases, entries, mapping, context.now);
        let spans = cases.entries_by_case(entries);
        for (case, outcome) in cases.cases.iter().zip(&outcomes) {
            let lines = spans.by_case.get(&case.key).map_or(&[][..], Vec::as_slice);
            let deal = deal_properties(patient, case, lines, outcome, context);
            confirmed.insert(format!("deal {}", case.key), deal.content_hash());
        }
        for appointment in appointments {
            let record = appointment_properties(location, appointment, mapping);
            confirmed.insert(
                format!("appointment {}", appointment_key(location, &appointment.id)),
                record.content_hash(),
            );
        }
    }
    confirmed
}

/// Best of three timed plans of one location on `threads` threads; returns
/// the billing lines planned and the seconds taken.
fn plan_throughput(location: &Location, now: chrono::NaiveDateTime, threads: usize) -> (u64, f64) {
    let facts = facts(location);
    let entries: u64 = facts.entries.values().map(|e| e.len() as u64).sum();
    let mapping = Mapping::defaults();
    let stage_ids = StageIds {
        pipeline: "pipeline".into(),
        booked: "booked".into(),
        consulted: "consulted".into(),
        in_treatment: "in_treatment".into(),
        won: "won".into(),
        lost: "lost".into(),
    };
    let context = DealContext {
        mapping: &mapping,
        stage_ids: &stage_ids,
        now,
    };
    let confirmed = confirmed_hashes(&facts, &mapping, &context);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let changed = plan_all(&facts, &mapping, &context, &confirmed, threads);
        best = best.min(started.elapsed());
        assert_eq!(changed, 0, "the same facts plan to the same hashes");
    }
    (entries, best.as_secs_f64())
}

/// A memory figure of this process in KiB from `/proc/self/status`
/// (`VmHWM:` the peak resident set, `VmRSS:` the current one; Linux only).
fn field_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn status_kb(field: &str) -> Option<u64> {
    field_kb(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

fn print_table(rows: &[Row]) {
    let name = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let value = rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
    let target = rows.iter().map(|r| r.target.len()).max().unwrap_or(0);
    println!();
    println!(
        "{:<name$}  {:<value$}  {:<target$}  result",
        "measure", "value", "target"
    );
    println!("{}", "-".repeat(name + value + target + 12));
    for r in rows {
        let verdict = match r.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        println!(
            "{:<name$}  {:<value$}  {:<target$}  {verdict}",
            r.name, r.value, r.target
        );
    }
}
