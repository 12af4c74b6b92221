//! `status`: what the ledger knows — locations and their records, the queue
//! by state, dead letters, quarantine and the latest runs.

use std::path::Path;

use anyhow::Context;

use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

/// Prints the status of the ledger the settings point at.
pub fn run(config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<()> {
    let settings = Settings::load(config, dirs)?;
    let path = settings.ledger_path(dirs);
    if !path.exists() {
        println!(
            "Noch keine Synchronisation: kein Ledger unter {} / No sync yet: no ledger at {}",
            path.display(),
            path.display()
        );
        return Ok(());
    }
    let ledger = Ledger::open(&path).with_context(|| format!("{}", path.display()))?;
    println!(
        "Ledger: {} (Schema {})",
        path.display(),
        ledger.schema_version()?
    );

    println!("\nStandorte / locations:");
    for location in ledger.locations()? {
        let counts = ledger.counts(Some(&location.key))?;
        println!(
            "  {:<12} {:>7} Patienten  {:>8} Termine  {:>9} Leistungen  {:>4} in Quarantäne",
            location.key,
            counts.patients,
            counts.appointments,
            counts.document_entries,
            counts.quarantined
        );
    }

    let queue = ledger.outbox_counts()?;
    println!("\nWarteschlange / queue:");
    if queue.by_kind.is_empty() {
        println!("  leer / empty");
    }
    for (kind, pending, dead) in &queue.by_kind {
        println!(
            "  {:<12} {pending:>7} wartend / pending  {dead:>5} fehlgeschlagen / dead",
            kind.as_str()
        );
    }
    if queue.dead() > 0 {
        println!("\nFehlgeschlagene Schreibvorgänge / dead letters:");
        for item in ledger.outbox_page(true, 0, 20)? {
            println!(
                "  #{:<6} {:<12} {:<40} {} Versuche: {}",
                item.id,
                item.kind.as_str(),
                item.record_key,
                item.attempts,
                item.last_error.as_deref().unwrap_or("-")
            );
        }
    }

    let differing = ledger.latest_reconciliation(true)?;
    if !differing.is_empty() {
        println!("\nAbgleich: abweichende Tage / reconciliation: differing days");
        println!(
            "  {:<12} {:<10} {:<12} {:>7} {:>7} {:>7}",
            "Standort", "Tag", "Art", "Ivoris", "Ledger", "HubSpot"
        );
        for row in differing.iter().take(30) {
            println!(
                "  {:<12} {:<10} {:<12} {:>7} {:>7} {:>7}",
                row.location_key,
                row.day,
                row.kind,
                row.ivoris,
                row.ledger,
                row.hubspot.map_or("–".to_owned(), |h| h.to_string())
            );
        }
    }

    println!("\nLetzte Läufe / latest runs:");
    let runs = ledger.recent_runs(10)?;
    if runs.is_empty() {
        println!("  keine / none");
    }
    for run in runs {
        let outcome = run
            .outcome
            .map(|o| format!("{o:?}").to_lowercase())
            .unwrap_or_else(|| "läuft oder abgebrochen / running or interrupted".into());
        println!(
            "  #{:<4} {} {:<8} {:<24} {outcome:<9} gelesen {} geschrieben {} unverändert {} fehlgeschlagen {} Quarantäne {}{}",
            run.id,
            run.started_at,
            run.trigger,
            run.locations,
            run.counts.read,
            run.counts.written,
            run.counts.unchanged,
            run.counts.failed,
            run.counts.quarantined,
            if run.dry_run {
                " (Probelauf / dry run)"
            } else {
                ""
            }
        );
        if let Some(message) = run.message {
            println!("        {message}");
        }
    }
    Ok(())
}
