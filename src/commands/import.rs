//! `import`: a historical CSV export of one kind for one location into the
//! ledger (DESIGN.md §8), the same steps as the app's Import view: detect,
//! assign columns (`--columns`, remembered per layout), check every row,
//! and either show the dry-run summary (`--dry-run`) or import. Invalid
//! rows refuse the file unless `--drop-invalid` leaves them out (they go
//! to the quarantine). `--history` lists earlier imports. Takes the writer
//! lock like `sync`: while a sync writes, exit code 4.

use std::path::{Path, PathBuf};

use anyhow::Context;

use ivoris_hubspot_sync::csvio::RowError;
use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::import::{
    ImportOptions, ImportOutcome, ImportProgress, ImportRunError, ImportSummary, dry_run,
    ensure_location, import, open_session,
};
use ivoris_hubspot_sync::import::{
    ColumnChoices, ImportKind, ImportRequest, ImportSession, Source, Target,
};
use ivoris_hubspot_sync::ledger::imports::ImportRecord;
use ivoris_hubspot_sync::ledger::lock::LockError;
use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind, RunOutcome};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::{Ended, headless_environment};

/// Problems listed on the console; the rest are counted.
const LISTED: usize = 50;

/// Options of `import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// What the file holds: patients, appointments or entries (billing lines).
    #[arg(long, value_parser = parse_kind, required_unless_present = "history")]
    kind: Option<ImportKind>,
    /// Location key the export comes from.
    #[arg(long, value_name = "KEY", required_unless_present = "history")]
    location: Option<String>,
    /// Show what HubSpot would receive; nothing is stored or sent.
    #[arg(long)]
    dry_run: bool,
    /// Leave invalid rows out (they go to the quarantine with their reason).
    #[arg(long)]
    drop_invalid: bool,
    /// Column assignment, e.g. "Pat.-Nr.=patient_number,Bemerkung=ignore".
    #[arg(long, value_name = "MAP")]
    columns: Option<String>,
    /// List earlier imports instead.
    #[arg(long)]
    history: bool,
    /// The CSV export.
    #[arg(required_unless_present = "history")]
    file: Option<PathBuf>,
}

fn parse_kind(name: &str) -> Result<ImportKind, String> {
    ImportKind::from_name(name)
        .ok_or_else(|| "erwartet / expected: patients, appointments, entries".to_owned())
}

/// Runs `import` (see the module documentation).
pub fn run(args: ImportArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let settings = Settings::load(config, dirs)?;
    let ledger_path = settings.ledger_path(dirs);
    if args.history {
        print_history(&Ledger::open(&ledger_path)?.import_history(50)?);
        return Ok(Ended::Outcome(RunOutcome::Success));
    }
    let (Some(kind), Some(location), Some(file)) = (args.kind, args.location, args.file) else {
        anyhow::bail!(
            "--kind, --location und DATEI fehlen / --kind, --location and FILE are missing"
        );
    };
    let choices = match &args.columns {
        Some(map) => ColumnChoices::parse(map).map_err(anyhow::Error::msg)?,
        None => ColumnChoices::default(),
    };
    let request = ImportRequest {
        path: file,
        kind,
        location: location.clone(),
        choices,
    };
    let steps = || -> Result<Ended, ImportRunError> {
        if let Some(configured) = settings.locations.iter().find(|l| l.key == location) {
            ensure_location(&ledger_path, configured)?;
        }
        let session = open_session(&ledger_path, request)?;
        print_preview(&session);
        if !session.preview.column_problems.is_empty() {
            return Ok(Ended::Outcome(RunOutcome::Failed));
        }
        if args.dry_run {
            return preview_import(config, dirs, &session, args.drop_invalid);
        }
        let outcome = run_import(&ledger_path, &session, args.drop_invalid)?;
        print_outcome(&outcome);
        Ok(Ended::Outcome(if outcome.cancelled {
            RunOutcome::Cancelled
        } else if outcome.counts.rows_left_out > 0 {
            RunOutcome::Warnings
        } else {
            RunOutcome::Success
        }))
    };
    match steps() {
        Ok(ended) => Ok(ended),
        Err(ImportRunError::Locked(error @ LockError::Held { .. })) => {
            eprintln!("{error}");
            Ok(Ended::Locked)
        }
        Err(ImportRunError::InvalidRows(report)) => {
            print_problems(
                &report.errors,
                report.rows_invalid,
                "ungültige Zeilen / invalid rows",
            );
            eprintln!("{}", ImportRunError::InvalidRows(report));
            Ok(Ended::Outcome(RunOutcome::Failed))
        }
        Err(error) => Err(error.into()),
    }
}

fn preview_import(
    config: Option<&Path>,
    dirs: &DataDirs,
    session: &ImportSession,
    drop_invalid: bool,
) -> Result<Ended, ImportRunError> {
    let environment = |e: String| ImportRunError::Environment(e);
    let env = headless_environment(config, dirs).map_err(|e| environment(format!("{e:#}")))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| environment(e.to_string()))?;
    let summary = runtime.block_on(dry_run(&env, session))?;
    print_summary(&summary);
    Ok(Ended::Outcome(
        if summary.check.rows_invalid > 0 && !drop_invalid {
            RunOutcome::Failed
        } else {
            RunOutcome::Success
        },
    ))
}

fn run_import(
    ledger_path: &Path,
    session: &ImportSession,
    drop_invalid: bool,
) -> Result<ImportOutcome, ImportRunError> {
    let cancel = CancelFlag::new();
    let on_interrupt = cancel.clone();
    // Ctrl+C stops after the current batch; nothing of the file is taken.
    let _ = ctrlc_like(move || on_interrupt.cancel());
    import(
        ledger_path,
        session,
        ImportOptions { drop_invalid },
        &print_progress,
        &cancel,
    )
}

/// Installs a Ctrl+C handler on a small runtime thread.
fn ctrlc_like(on_interrupt: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Abbruch angefordert … / stopping …");
                on_interrupt();
            }
        });
    });
    Ok(())
}

fn print_progress(progress: ImportProgress) {
    let percent = if progress.total_bytes > 0 {
        progress.bytes as f64 * 100.0 / progress.total_bytes as f64
    } else {
        100.0
    };
    eprintln!(
        "{} Zeilen / rows ({percent:.0} %), {:.0} Zeilen/s / rows/s",
        progress.rows, progress.rows_per_second
    );
}

fn print_preview(session: &ImportSession) {
    let preview = &session.preview;
    println!(
        "{}: {}, {}, Dezimalkomma / decimal comma: {}, Datumsformate / date notations: {}",
        preview.file_name,
        preview.encoding,
        preview.delimiter,
        if preview.decimal_comma {
            "ja/yes"
        } else {
            "nein/no"
        },
        preview.date_notations.join(", ")
    );
    for column in &preview.assignment.columns {
        let target = column.target.map_or("?".to_owned(), Target::name);
        let source = match column.source {
            Source::Alias => "erkannt / recognised",
            Source::Remembered => "gespeichert / remembered",
            Source::Chosen => "gewählt / chosen",
            Source::Unknown => "unbekannt / unknown",
        };
        println!("  {:<28} → {target:<20} ({source})", column.header);
    }
    print_problems(
        &preview.column_problems,
        preview.column_problems.len() as u64,
        "Spaltenprobleme / column problems",
    );
}

fn print_problems(problems: &[RowError], total: u64, title: &str) {
    if total == 0 {
        return;
    }
    println!("{total} {title}:");
    for problem in problems.iter().take(LISTED) {
        println!("  {problem}");
    }
    if total as usize > LISTED {
        println!("  … {} weitere / more", total as usize - LISTED);
    }
}

fn print_summary(summary: &ImportSummary) {
    let check = &summary.check;
    print_problems(
        &check.errors,
        check.rows_invalid,
        "ungültige Zeilen / invalid rows",
    );
    println!(
        "Probelauf – nichts wurde gespeichert oder gesendet / dry run – nothing was stored or sent"
    );
    let records = &summary.records;
    println!(
        "  Ledger: {} neu/new, {} geändert/changed, {} unverändert/unchanged, {} weggelassen/left out",
        records.inserted, records.updated, records.unchanged, records.rows_left_out
    );
    for kind in OutboxKind::PHASES {
        let effect = summary.hubspot.get(&kind).copied().unwrap_or_default();
        println!(
            "  HubSpot {:<12} {:>6} neu/new {:>6} geändert/changed {:>6} unverändert/unchanged",
            kind.as_str(),
            effect.new,
            effect.changed,
            effect.unchanged
        );
    }
    println!(
        "  Deals: {} mit neuer Phase / stage changes, {} mit neuem Umsatz / revenue changes",
        summary.stage_changes, summary.revenue_changes
    );
    for sample in &summary.samples {
        let changes: Vec<String> = sample
            .changes
            .iter()
            .map(|c| format!("{}: {} → {}", c.property, c.before, c.after))
            .collect();
        println!("    {}: {}", sample.case_key, changes.join("; "));
    }
}

fn print_outcome(outcome: &ImportOutcome) {
    let check = &outcome.check;
    print_problems(
        &check.errors,
        check.rows_invalid,
        "ungültige Zeilen / invalid rows",
    );
    let counts = &outcome.counts;
    if outcome.cancelled {
        println!(
            "Abgebrochen – nichts übernommen, die Datei kann erneut importiert werden / \
             cancelled – nothing taken, the file can be imported again"
        );
    }
    println!(
        "Importiert / imported: {} Zeilen/rows gelesen/read, {} übernommen/taken ({} neu/new, {} geändert/changed, {} unverändert/unchanged), {} weggelassen/left out",
        counts.rows_read,
        counts.rows_taken,
        counts.inserted,
        counts.updated,
        counts.unchanged,
        counts.rows_left_out
    );
    if outcome.cancelled {
        // Said above.
    } else if counts.written() > 0 {
        println!(
            "Die nächste Synchronisation sendet die Änderungen an HubSpot / the next sync sends the changes to HubSpot"
        );
    } else {
        println!(
            "Nichts geändert – die Synchronisation hat daraus nichts zu senden / nothing changed – nothing for the sync to send"
        );
    }
    print_history(std::slice::from_ref(&outcome.record));
}

fn print_history(records: &[ImportRecord]) {
    if records.is_empty() {
        println!("Noch keine Importe / no imports yet");
    }
    for r in records {
        println!(
            "#{} {} {} {} {} ({}…): {} gelesen/read, {} übernommen/taken, {} weggelassen/left out, {} geschrieben/written – {} {}",
            r.id,
            r.finished_at,
            r.location_key,
            r.kind,
            r.file_name,
            &r.file_hash[..r.file_hash.len().min(12)],
            r.rows_read,
            r.rows_taken,
            r.rows_left_out,
            r.records_written,
            r.actor,
            r.outcome
        );
    }
}
