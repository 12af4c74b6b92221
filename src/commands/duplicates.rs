//! `duplicates scan` / `duplicates list`: the duplicate review's HubSpot
//! part on the command line. `scan` lists every contact and deal of the
//! portal (read only, Ctrl+C stops it) and caches what it finds in the
//! ledger — the same scan as „HubSpot prüfen“ in the app; `list` prints the
//! cached findings, with the records out of step with HubSpot; `resend`
//! makes those due again (writer lock). Printed are kinds, HubSpot ids and keys with the
//! patient part masked, and the names of properties changed by hand with
//! their values — masked where personal — no names, no addresses.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use ivoris_hubspot_sync::duplicates::drift::{DriftCounts, DriftKind};
use ivoris_hubspot_sync::duplicates::portal::PortalGroup;
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::portal_review::{PortalReview, review};
use ivoris_hubspot_sync::engine::scan::{ScanError, ScanProgress, scan};
use ivoris_hubspot_sync::gui::portal_duplicates::{mask_key, shown_value};
use ivoris_hubspot_sync::ledger::audit::os_user;
use ivoris_hubspot_sync::ledger::lock::{LockError, WriterLock};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::{Ended, headless_environment};

/// Options of `duplicates`.
#[derive(clap::Args)]
pub struct DuplicatesArgs {
    #[command(subcommand)]
    action: DuplicatesAction,
}

#[derive(clap::Subcommand)]
enum DuplicatesAction {
    /// Read every contact and deal of HubSpot and look for duplicates (read only).
    Scan,
    /// Print what the last scan found.
    List,
    /// Repair what the last scan found out of step with HubSpot (records
    /// deleted by hand, records that lost our key, values changed by hand):
    /// the next sync writes them again, with the values from Ivoris.
    Resend,
}

/// Runs `duplicates scan` or `duplicates list`.
pub fn run(args: DuplicatesArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    match args.action {
        DuplicatesAction::Scan => run_scan(config, dirs),
        DuplicatesAction::List => {
            let settings = Settings::load(config, dirs)?;
            let path = settings.ledger_path(dirs);
            let ledger = Ledger::open(&path).with_context(|| format!("{}", path.display()))?;
            print_review(&review(&ledger)?);
            print_drift(&ledger)?;
            Ok(Ended::Outcome(RunOutcome::Success))
        }
        DuplicatesAction::Resend => run_resend(config, dirs),
    }
}

/// `duplicates resend`: under the writer lock, the records the last scan
/// found out of step are made due again for the next sync.
fn run_resend(config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let settings = Settings::load(config, dirs)?;
    let path = settings.ledger_path(dirs);
    let _lock = match WriterLock::acquire(&path, "duplicates resend") {
        Ok(lock) => lock,
        Err(error @ LockError::Held { .. }) => {
            eprintln!("{error}");
            return Ok(Ended::Locked);
        }
        Err(error) => return Err(error.into()),
    };
    let mut ledger = Ledger::open(&path).with_context(|| format!("{}", path.display()))?;
    let drift = ledger
        .portal_scan()?
        .map(|scan| scan.findings.drift)
        .unwrap_or_default();
    let repaired = ledger.resend_drift(&drift, &os_user())?;
    println!(
        "{repaired} Datensätze werden beim nächsten Lauf erneut geschrieben / \
         {repaired} records will be written again by the next run"
    );
    Ok(Ended::Outcome(RunOutcome::Success))
}

/// What the last scan found out of step with HubSpot, keys masked.
fn print_drift(ledger: &Ledger) -> anyhow::Result<()> {
    let Some(scan) = ledger.portal_scan()? else {
        return Ok(());
    };
    let drift = &scan.findings.drift;
    if drift.is_empty() {
        println!(
            "Abgleich mit HubSpot: alles wie im Ledger / reconciliation with HubSpot: as the ledger says"
        );
        return Ok(());
    }
    let counts = DriftCounts::of(drift);
    println!(
        "Abgleich mit HubSpot / reconciliation with HubSpot: {} Datensätze abweichend / records out of step \
         ({} gelöscht / deleted, {} Schlüssel geändert / key changed, {} von Hand geändert / changed by hand; \
         duplicates resend schreibt sie erneut, von Hand geänderte Werte werden mit den Werten aus Ivoris überschrieben / \
         writes them again, values changed by hand are overwritten with the values from Ivoris)",
        counts.total(),
        counts.missing,
        counts.key_changed,
        counts.value_changed,
    );
    for item in drift {
        let problem = match &item.problem {
            DriftKind::Missing => "fehlt in HubSpot / missing in HubSpot",
            DriftKind::KeyChanged { .. } => "Schlüssel geändert / key changed",
            DriftKind::ValueChanged { .. } => {
                "in HubSpot von Hand geändert / changed by hand in HubSpot"
            }
        };
        println!(
            "  {:<8} {:<12} {}  ({})",
            item.kind,
            item.hubspot_id,
            problem,
            mask_key(&item.record_key)
        );
        if let DriftKind::ValueChanged { changes } = &item.problem {
            for change in changes {
                println!(
                    "           {}: {} -> {}",
                    change.property,
                    shown_value(&item.kind, &change.property, change.ours.as_deref()),
                    shown_value(&item.kind, &change.property, change.found.as_deref()),
                );
            }
        }
    }
    Ok(())
}

fn run_scan(config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let env = headless_environment(config, dirs)?;
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let result = runtime.block_on(async {
        let cancel = CancelFlag::new();
        let on_interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Abbruch angefordert … / stopping …");
                on_interrupt.cancel();
            }
        });
        scan(&env, &print_progress, &cancel).await
    });
    match result {
        Ok(summary) => {
            println!(
                "{} Kontakte, {} Deals gelesen ({} Aufrufe, {:.1} s) / {} contacts, {} deals read ({} calls, {:.1} s)",
                summary.contacts,
                summary.deals,
                summary.calls,
                summary.listing.as_secs_f64(),
                summary.contacts,
                summary.deals,
                summary.calls,
                summary.listing.as_secs_f64(),
            );
            if summary.not_compared > 0 {
                println!(
                    "{n} Eigenschaften nicht verglichen: HubSpot lehnte die lange Abfrage ab (414) / \
                     {n} properties not compared: HubSpot refused the long request (414)",
                    n = summary.not_compared
                );
            }
            let ledger = Ledger::open(&env.ledger_path)?;
            print_review(&review(&ledger)?);
            print_drift(&ledger)?;
            Ok(Ended::Outcome(RunOutcome::Success))
        }
        Err(ScanError::Cancelled) => Ok(Ended::Outcome(RunOutcome::Cancelled)),
        Err(error) => Err(error.into()),
    }
}

/// Prints every 10,000 records read.
fn print_progress(progress: ScanProgress) {
    static PRINTED: AtomicU64 = AtomicU64::new(0);
    let step = (progress.contacts + progress.deals) / 10_000;
    if step > PRINTED.fetch_max(step, Ordering::Relaxed) {
        eprintln!(
            "{} Kontakte / contacts, {} Deals / deals",
            progress.contacts, progress.deals
        );
    }
}

fn print_review(review: &PortalReview) {
    let Some(scan) = &review.scan else {
        println!(
            "HubSpot wurde noch nicht geprüft (duplicates scan) / HubSpot was not checked yet (duplicates scan)"
        );
        return;
    };
    println!(
        "Geprüft / checked {}: {} Gruppen / groups, Verloren-Liste / lost, booked again: {}",
        scan.finished_at,
        review.groups.len(),
        review.rebooked.len()
    );
    for group in &review.groups {
        print_group(group);
    }
    for entry in &review.rebooked {
        println!(
            "  verloren / lost {}  Termin / booking {}  neuer Deal / new deal {}  ({})",
            entry.lost.id,
            entry.booking.start,
            entry.new_deal.as_ref().map_or("–", |d| d.id.as_str()),
            mask_key(&entry.patient_key),
        );
    }
}

fn print_group(group: &PortalGroup) {
    let ids = group.members.ids();
    let subject = group
        .subject
        .as_deref()
        .map(|key| format!("  ({})", mask_key(key)))
        .unwrap_or_default();
    println!(
        "  {:<38} {}{subject}",
        group.kind.label(true),
        ids.join(" "),
    );
}
