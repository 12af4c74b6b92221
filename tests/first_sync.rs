//! The first sync against a practice as the field has it: recalls booked up
//! to two years ahead, several installations read at once, billing lines
//! asked once per patient without a window. Expectations come from the
//! sandbox's own Ivoris data and its request log, never from the product.

mod engine_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::Duration;
use engine_support::{Bed, KeyedState, bed, dry_run, keyed_state, options, run};
use ivoris_hubspot_sync::engine::extract::{CancelFlag, Phase};
use ivoris_hubspot_sync::engine::run::{Progress, SyncRequest, SyncSummary, sync};
use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind, RunOutcome};
use ivoris_hubspot_sync::plan::properties::appointment_key;
use ivoris_hubspot_sync::sandbox::ivoris::{FaultUpdate, RequestRecord};
use ivoris_hubspot_sync::sandbox::{SandboxOptions, Size};

const ENTRIES: &str = "GET /Documentation/v1/DocumentEntries";

/// Every appointment of the sandbox's world by its HubSpot key, and the
/// number of days the farthest booking lies ahead.
fn world_appointments(bed: &Bed) -> (BTreeSet<String>, i64) {
    bed.sandbox.ivoris.with_world(|world| {
        let today = world.now.date();
        let mut keys = BTreeSet::new();
        let mut farthest = 0;
        for location in &world.locations {
            for appointment in &location.appointments {
                keys.insert(appointment_key(&location.key, &appointment.id));
                if let Some(start) = appointment.start {
                    farthest = farthest.max((start.date() - today).num_days());
                }
            }
        }
        (keys, farthest)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_booking_up_to_two_years_ahead_is_synced_in_one_run_and_a_resync_writes_nothing() {
    let bed = bed(options(71)).await;
    let (expected, farthest) = world_appointments(&bed);
    assert!(
        farthest > 365,
        "the sandbox books recalls more than a year ahead ({farthest} days)"
    );
    let booked_far = bed.sandbox.ivoris.with_world(|world| {
        let limit = world.now + Duration::days(90);
        world
            .locations
            .iter()
            .flat_map(|l| &l.appointments)
            .filter(|a| a.start.is_some_and(|s| s > limit))
            .count()
    });
    assert!(booked_far > 0, "some bookings lie beyond 90 days");

    let first = run(&bed.env).await;
    assert!(first.counts.written > 0, "the first sync writes");
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let synced: BTreeSet<String> = state.appointments.keys().cloned().collect();
    let missing: Vec<&String> = expected.difference(&synced).take(5).collect();
    assert!(
        missing.is_empty(),
        "every appointment has its record after one run; missing e.g. {missing:?}"
    );

    let writes_before = bed.sandbox.hubspot.write_calls();
    let second = run(&bed.env).await;
    assert_eq!(
        second.counts.written, 0,
        "a re-sync without changes writes nothing"
    );
    assert_eq!(
        bed.sandbox.hubspot.write_calls(),
        writes_before,
        "no HubSpot write call on the re-sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_are_read_at_the_same_time_with_one_request_in_flight_each() {
    let bed = bed(options(72)).await;
    // Every answer takes a moment, as over the relay, so requests in
    // flight at the same time are seen in the log.
    bed.sandbox.ivoris.update_faults(&FaultUpdate {
        slow_rate: Some(1.0),
        slow_delay_ms: Some(3),
        ..FaultUpdate::default()
    });
    bed.sandbox.ivoris.reset_request_log();
    run(&bed.env).await;
    let log = bed.sandbox.ivoris.request_log();
    let links: BTreeSet<&str> = log.iter().map(|r| r.link.as_str()).collect();
    assert!(links.len() >= 2, "the sandbox has several installations");

    let mut by_link: BTreeMap<&str, Vec<&RequestRecord>> = BTreeMap::new();
    for record in &log {
        by_link
            .entry(record.link.as_str())
            .or_default()
            .push(record);
    }
    for (link, records) in &by_link {
        for pair in records.windows(2) {
            assert!(
                !pair[0].overlaps(pair[1]),
                "one request in flight at {link}: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    let overlapping = log
        .iter()
        .flat_map(|a| log.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a.link < b.link && a.overlaps(b))
        .count();
    // Read one after the other, no request of one installation would be in
    // flight while another's is.
    assert!(
        overlapping > log.len() / 4,
        "installations were read concurrently ({overlapping} overlapping pairs of {} requests)",
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_slow_answers_several_hubspot_calls_are_on_their_way_and_the_result_is_the_same() {
    // HubSpot takes a while over a batch of 100; one call at a time would
    // reach a fraction of the rate limit. Rate limits stay on.
    let mut slow = options(74);
    slow.rate_limits = true;
    slow.hubspot_latency = std::time::Duration::from_millis(60);
    let bed = bed(slow).await;
    let (expected, _) = world_appointments(&bed);

    let first = run(&bed.env).await;
    assert!(first.counts.written > 0, "the first sync writes");
    let counters = bed.sandbox.hubspot.counters();
    assert!(
        counters.most_in_flight >= 4,
        "calls overlap while HubSpot answers (at most {} at once)",
        counters.most_in_flight
    );
    assert!(
        counters.limit_refusals.is_empty(),
        "in flight together, the calls still keep the limits: {:?}",
        counters.limit_refusals
    );
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    let synced: BTreeSet<String> = state.appointments.keys().cloned().collect();
    assert_eq!(synced, expected, "every appointment has its record");
    assert!(state.duplicates.is_empty(), "{:?}", state.duplicates);
    let ledger = Ledger::open(&bed.env.ledger_path).unwrap();
    assert_one_deal_per_case(&ledger, &first, &state);
    assert_eq!(
        ledger.outbox_counts().unwrap().pending(),
        0,
        "nothing left queued"
    );
    // The run's sends are kept for the next process: times and the
    // portal's hash only.
    let kept = std::fs::read_to_string(bed.env.ledger_path.with_file_name("hubspot-window.json"))
        .expect("window kept beside the ledger");
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    let fields: BTreeSet<&str> = kept
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, BTreeSet::from(["portal", "sends"]));
    assert!(!kept["sends"].as_array().unwrap().is_empty());

    let writes = bed.sandbox.hubspot.write_calls();
    let second = run(&bed.env).await;
    assert_eq!(second.counts.written, 0, "a re-sync writes nothing");
    assert_eq!(bed.sandbox.hubspot.write_calls(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_asks_every_patient_once_without_a_window_and_gets_every_line() {
    let bed = bed(options(73)).await;
    // Windowed asks leave lines out every time; unwindowed asks never do.
    bed.sandbox.ivoris.update_faults(&FaultUpdate {
        missing_entries_rate: Some(1.0),
        ..FaultUpdate::default()
    });
    bed.sandbox.ivoris.reset_request_log();
    let summary = run(&bed.env).await;

    let (patients, entries) = bed.sandbox.ivoris.with_world(|world| {
        let by_link: BTreeMap<String, usize> = world
            .locations
            .iter()
            .map(|l| (l.linkname.clone(), l.patients.len()))
            .collect();
        let entries: usize = world.locations.iter().map(|l| l.entries.len()).sum();
        (by_link, entries)
    });
    let log = bed.sandbox.ivoris.request_log();
    for (link, count) in &patients {
        let asks: Vec<&RequestRecord> = log
            .iter()
            .filter(|r| &r.link == link && r.route == ENTRIES)
            .collect();
        assert_eq!(
            asks.len(),
            *count,
            "one billing-line ask per patient at {link}"
        );
        assert!(
            asks.iter().all(|r| !r.windowed),
            "no windowed billing-line ask on the first sync at {link}"
        );
    }
    let read: u64 = summary
        .locations
        .iter()
        .filter_map(|l| l.extract.as_ref())
        .map(|e| e.entries.read)
        .sum();
    assert_eq!(read as usize, entries, "every billing line was read");
    let lines_stored: i64 = rusqlite::Connection::open(&bed.env.ledger_path)
        .expect("ledger")
        .query_row("SELECT COUNT(*) FROM document_entries", [], |row| {
            row.get(0)
        })
        .expect("count");
    assert_eq!(
        lines_stored as usize, entries,
        "every billing line is in the ledger"
    );
}

/// A location's deals reach HubSpot while its billing lines are still being
/// read: the cases of the patients whose lines are in are planned in parts.
/// The parts together queue exactly what the one plan of a dry run said,
/// every case has exactly one deal, and a re-sync writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_are_sent_while_billing_lines_are_still_read() {
    let bed = bed(SandboxOptions {
        size: Size::Medium,
        ..options(74)
    })
    .await;
    // Every answer takes a moment, as over the relay.
    bed.sandbox.ivoris.update_faults(&FaultUpdate {
        slow_rate: Some(1.0),
        slow_delay_ms: Some(1),
        ..FaultUpdate::default()
    });
    let dry = dry_run(&bed.env).await;

    // The sweep's position per location, and a copy of it taken when
    // HubSpot confirmed the first deals.
    let sweep: Mutex<SweepPositions> = Mutex::default();
    let at_first_deals: Mutex<Option<SweepPositions>> = Mutex::default();
    let progress = |step: Progress| match step {
        Progress::Extract(p) if p.phase == Phase::Leistungen => {
            lock(&sweep).insert(p.location, (p.done, p.total));
        }
        Progress::Loading {
            kind: OutboxKind::Deal,
            done,
            ..
        } if done > 0 => {
            let mut first = lock(&at_first_deals);
            if first.is_none() {
                *first = Some(lock(&sweep).clone());
            }
        }
        _ => {}
    };
    let request = SyncRequest {
        trigger: "test".into(),
        ..SyncRequest::default()
    };
    let summary = sync(&bed.env, &request, &progress, &CancelFlag::new())
        .await
        .expect("sync");
    assert_eq!(
        summary.outcome,
        RunOutcome::Success,
        "{:?}",
        summary.message
    );

    let seen = lock(&at_first_deals).clone().expect("deals were written");
    let locations = bed.sandbox.ivoris.with_world(|w| w.locations.len());
    let still_reading = seen
        .values()
        .filter(|(done, total)| total.is_some_and(|t| *done < t))
        .count()
        + locations.saturating_sub(seen.len());
    assert!(
        still_reading > 0,
        "the first deals were written while a sweep was still reading: {seen:?}"
    );

    for (dry, real) in dry.locations.iter().zip(&summary.locations) {
        let (Some(dry), Some(real)) = (&dry.plan, &real.plan) else {
            panic!("both runs planned {}", real.key);
        };
        assert_eq!(
            dry.queued, real.queued,
            "{}: what the parts queued",
            real.location
        );
        assert_eq!(dry.cases_opened, real.cases_opened, "{}", real.location);
    }
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert!(state.duplicates.is_empty(), "{:?}", state.duplicates);
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    assert_one_deal_per_case(&ledger, &summary, &state);

    let writes = bed.sandbox.hubspot.write_calls();
    let again = run(&bed.env).await;
    assert_eq!(again.counts.written, 0, "a re-sync writes nothing");
    assert_eq!(bed.sandbox.hubspot.write_calls(), writes);
}

/// Patients swept and to sweep, per location.
type SweepPositions = BTreeMap<String, (u64, Option<u64>)>;

/// Every case the ledger formed at the run's locations has exactly one
/// deal in HubSpot, and every keyed deal is such a case's.
fn assert_one_deal_per_case(ledger: &Ledger, summary: &SyncSummary, state: &KeyedState) {
    let mut cases = BTreeSet::new();
    for location in &summary.locations {
        for case in ledger.cases(&location.key).expect("cases") {
            cases.insert(case.case_key);
        }
    }
    let deals: BTreeSet<String> = state.deals.keys().cloned().collect();
    assert_eq!(deals, cases, "every case has exactly one deal");
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
