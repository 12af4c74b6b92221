//! `mapping`: the mapping tables on the command line — export them as CSV
//! for German Excel, import an edited table (or a ZIP of all), list,
//! compare and restore versions.
//!
//! An import is all or nothing: any invalid row and nothing is saved,
//! unless `--drop-invalid` says to leave the unreadable rows out. Warnings
//! (a category row partly overlapped by an earlier one) are printed as
//! „Hinweis“ / "warning" and never stop an import. A saved
//! import is a new version; it reaches HubSpot only after its preview is
//! confirmed — in the app („Zuordnung“) or with `mapping apply --yes`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use ivoris_hubspot_sync::csvio::delimiter_label;
use ivoris_hubspot_sync::engine::reapply::{ReapplyError, confirm, deal_pipelines, preview};
use ivoris_hubspot_sync::engine::run::{SyncError, provision_spec};
use ivoris_hubspot_sync::ledger::RunOutcome;
use ivoris_hubspot_sync::ledger::audit::os_user;
use ivoris_hubspot_sync::ledger::lock::{LockError, WriterLock};
use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind};
use ivoris_hubspot_sync::mapping::archive::export_zip;
use ivoris_hubspot_sync::mapping::diff::{RowChange, diff};
use ivoris_hubspot_sync::mapping::store::{
    applied_version, latest_version, list_versions, load_current, load_version, restore_version,
    save_version,
};
use ivoris_hubspot_sync::mapping::table::{export_table, import_file};
use ivoris_hubspot_sync::mapping::validate::{check_location_pipelines, check_stage_labels};
use ivoris_hubspot_sync::mapping::{Mapping, Problem, TableName};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::Ended;

/// File name of the ZIP the export writes beside the CSV files.
pub const ZIP_NAME: &str = "zuordnung.zip";

/// `mapping …`
#[derive(Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    command: MappingCommand,
}

#[derive(Subcommand)]
enum MappingCommand {
    /// Write every table as CSV for German Excel (and all of them as zuordnung.zip) into DIR.
    Export {
        /// Target directory (created if missing).
        dir: PathBuf,
        /// Export this version instead of the latest.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Read one table (.csv, table told by file name or header) or all (.zip) and save a new version.
    Import {
        /// The CSV or ZIP file.
        file: PathBuf,
        /// Only check and show what would change; save nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave unreadable rows out instead of refusing the file.
        #[arg(long)]
        drop_invalid: bool,
        /// Why the mapping changes (stored with the version).
        #[arg(long, short)]
        comment: Option<String>,
    },
    /// List the saved versions.
    Versions,
    /// Show what changed between two versions (default: the latest against the one before).
    Diff {
        /// Older version.
        from: Option<i64>,
        /// Newer version.
        to: Option<i64>,
    },
    /// Save an older version again as the newest.
    Restore {
        /// The version to restore.
        version: i64,
    },
    /// Show what putting a version in force changes in HubSpot; with --yes, do it.
    Apply {
        /// The version (default: the latest saved).
        version: Option<i64>,
        /// Confirm: put the version in force and queue the changed records.
        #[arg(long)]
        yes: bool,
    },
}

impl MappingCommand {
    /// Whether the subcommand saves a version into the ledger.
    fn writes(&self) -> bool {
        match self {
            MappingCommand::Import { dry_run, .. } => !dry_run,
            MappingCommand::Restore { .. } | MappingCommand::Apply { .. } => true,
            MappingCommand::Export { .. }
            | MappingCommand::Versions
            | MappingCommand::Diff { .. } => false,
        }
    }
}

/// Runs a `mapping` subcommand.
pub fn run(args: MappingArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    if let MappingCommand::Apply { version, yes } = args.command {
        return apply(config, dirs, version, yes);
    }
    let settings = Settings::load(config, dirs)?;
    let path = settings.ledger_path(dirs);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    // Saving a version changes the ledger: only while no sync writes to it.
    let _lock = if args.command.writes() {
        match WriterLock::acquire(&path, "mapping") {
            Ok(lock) => Some(lock),
            Err(error @ LockError::Held { .. }) => {
                eprintln!("{error}");
                return Ok(Ended::Locked);
            }
            Err(error) => return Err(error.into()),
        }
    } else {
        None
    };
    let mut ledger = Ledger::open(&path).with_context(|| path.display().to_string())?;
    match args.command {
        MappingCommand::Export { dir, version } => export(&ledger, &dir, version),
        MappingCommand::Import {
            file,
            dry_run,
            drop_invalid,
            comment,
        } => {
            let options = ImportOptions {
                dry_run,
                drop_invalid,
                comment,
            };
            import(&mut ledger, &file, options, || {
                hubspot_pipelines(config, dirs)
            })
        }
        MappingCommand::Versions => versions(&ledger),
        MappingCommand::Diff { from, to } => show_diff(&ledger, from, to),
        MappingCommand::Restore { version } => {
            let saved = restore_version(&mut ledger, version, &os_user())?;
            println!(
                "Version {version} als Version {saved} wiederhergestellt; in Kraft erst nach Bestätigung der Vorschau (App: Zuordnung, oder `mapping apply --yes`). / Version {version} restored as version {saved}; in force only after its preview is confirmed (app: Mapping, or `mapping apply --yes`)."
            );
            Ok(Ended::Outcome(RunOutcome::Success))
        }
        // Needs the whole environment, not only the ledger: handled above.
        MappingCommand::Apply { .. } => Ok(Ended::Outcome(RunOutcome::Failed)),
    }
}

/// `mapping apply`: the re-apply preview, and with `--yes` the confirmation.
fn apply(
    config: Option<&Path>,
    dirs: &DataDirs,
    version: Option<i64>,
    yes: bool,
) -> anyhow::Result<Ended> {
    let env = super::sync::headless_environment(config, dirs)?;
    let version = match version {
        Some(v) => v,
        None => {
            let ledger = Ledger::open(&env.ledger_path)
                .with_context(|| env.ledger_path.display().to_string())?;
            latest_version(&ledger)?
                .context("Noch keine gespeicherte Version / No saved version yet")?
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let shown = match runtime.block_on(preview(&env, version)) {
        Ok(shown) => shown,
        Err(ReapplyError::Sync(SyncError::Locked(error))) => {
            eprintln!("{error}");
            return Ok(Ended::Locked);
        }
        Err(error) => return Err(error.into()),
    };
    println!(
        "Version {version}: {} Deals, Phase oder Pipeline ändert sich bei {}, Kategorie bei {}, Umsatz bei {}; {} Schreibvorgänge an HubSpot. / {} deals, stage or pipeline changes for {}, category for {}, revenue for {}; {} writes to HubSpot.",
        shown.deals,
        shown.stage_changes,
        shown.category_changes,
        shown.revenue_changes,
        shown.total_to_write(),
        shown.deals,
        shown.stage_changes,
        shown.category_changes,
        shown.revenue_changes,
        shown.total_to_write(),
    );
    if !shown.cleared_contact_fields.is_empty() {
        let contacts = shown
            .to_write
            .get(&OutboxKind::Contact)
            .copied()
            .unwrap_or_default();
        let fields = shown.cleared_contact_fields.join(", ");
        println!(
            "Kontaktfelder ausgeschaltet, in HubSpot geleert bei {contacts} Kontakten: {fields} / Contact fields switched off, cleared in HubSpot on {contacts} contacts: {fields}"
        );
    }
    for sample in &shown.samples {
        for change in &sample.changes {
            println!(
                "  {}  {}: {} -> {}",
                sample.case_key, change.property, change.before, change.after
            );
        }
    }
    if !yes {
        println!("Nichts geändert. Mit --yes übernehmen. / Nothing changed. Confirm with --yes.");
        return Ok(Ended::Outcome(RunOutcome::Success));
    }
    let done = match runtime.block_on(confirm(&env, version, &os_user())) {
        Ok(done) => done,
        Err(ReapplyError::Sync(SyncError::Locked(error))) => {
            eprintln!("{error}");
            return Ok(Ended::Locked);
        }
        Err(error) => return Err(error.into()),
    };
    let queued: u64 = done.queued.values().sum();
    println!(
        "Version {version} ist in Kraft; {queued} Änderungen warten auf die nächste Synchronisation. / Version {version} is in force; {queued} changes wait for the next sync."
    );
    Ok(Ended::Outcome(RunOutcome::Success))
}

fn export(ledger: &Ledger, dir: &Path, version: Option<i64>) -> anyhow::Result<Ended> {
    let mapping = match version {
        Some(v) => load_version(ledger, v)?.with_context(|| {
            format!("Zuordnung Version {v} gibt es nicht / Mapping version {v} does not exist")
        })?,
        None => load_current(ledger)?,
    };
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for table in TableName::ALL {
        let file = dir.join(format!("{}.csv", table.file_stem()));
        std::fs::write(&file, export_table(&mapping, table)?)
            .with_context(|| file.display().to_string())?;
        println!("{}  ({})", file.display(), table.label());
    }
    let zip = dir.join(ZIP_NAME);
    std::fs::write(&zip, export_zip(&mapping)?).with_context(|| zip.display().to_string())?;
    println!("{}", zip.display());
    Ok(Ended::Outcome(RunOutcome::Success))
}

/// How `mapping import` treats the file.
struct ImportOptions {
    /// Check and show only.
    dry_run: bool,
    /// Leave rows with errors out instead of refusing the file.
    drop_invalid: bool,
    /// Stored with the version.
    comment: Option<String>,
}

/// HubSpot's deal pipelines (label → stage labels) and which one the
/// settings name, or why HubSpot could not be asked.
type HubSpotPipelines = Result<(String, BTreeMap<String, Vec<String>>), String>;

/// Reads HubSpot's deal pipelines with the configured settings, for
/// checking an imported mapping as the app's editor does.
fn hubspot_pipelines(config: Option<&Path>, dirs: &DataDirs) -> HubSpotPipelines {
    let env = super::sync::headless_environment(config, dirs).map_err(|e| format!("{e:#}"))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let pipelines = runtime
        .block_on(deal_pipelines(&env))
        .map_err(|e| e.to_string())?;
    let configured = provision_spec(&env.settings, &Mapping::empty()).pipeline_label;
    Ok((configured, pipelines))
}

/// The problems HubSpot's pipelines find in a mapping.
fn pipeline_problems(
    mapping: &Mapping,
    configured: &str,
    pipelines: &BTreeMap<String, Vec<String>>,
) -> Vec<Problem> {
    let mut problems = match pipelines.get(configured) {
        Some(labels) => check_stage_labels(mapping, labels),
        None => vec![Problem::new(
            TableName::Stages,
            0,
            format!("HubSpot hat keine Deal-Pipeline „{configured}“ (Einstellungen)"),
            format!("HubSpot has no deal pipeline \"{configured}\" (settings)"),
        )],
    };
    problems.extend(check_location_pipelines(mapping, pipelines));
    problems
}

fn import(
    ledger: &mut Ledger,
    file: &Path,
    options: ImportOptions,
    hubspot: impl FnOnce() -> HubSpotPipelines,
) -> anyhow::Result<Ended> {
    let ImportOptions {
        dry_run,
        drop_invalid,
        comment,
    } = options;
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = load_current(ledger)?;
    let import = import_file(&base, &name, &bytes)?;
    for unknown in &import.unknown {
        println!("{unknown}");
    }
    for table in &import.tables {
        println!(
            "{} / {}: {} von {} Zeilen gelesen / {} of {} rows read ({}, {})",
            table.table.label(),
            table.table.label_en(),
            table.rows_kept,
            table.rows_in_file,
            table.rows_kept,
            table.rows_in_file,
            table.encoding.label(),
            delimiter_label(table.delimiter),
        );
        for problem in &table.problems {
            println!("  {problem}");
        }
    }
    if import.tables.is_empty() || !import.unknown.is_empty() {
        println!("Nichts übernommen. / Nothing imported.");
        return Ok(Ended::Outcome(RunOutcome::Failed));
    }
    // Rows that could not be read were left out already; what validation
    // still finds (duplicates, shadowed patterns) stays in the mapping and
    // always blocks saving. Warnings (overlapping patterns) were shown and
    // block nothing.
    let remaining = import.mapping.validate().iter().any(Problem::is_error);
    let unreadable = import.errors().count() > 0;
    if remaining || (unreadable && !drop_invalid) {
        println!(
            "Nichts übernommen: die Datei hat ungültige Zeilen (--drop-invalid lässt unlesbare Zeilen weg). / Nothing imported: the file has invalid rows (--drop-invalid leaves unreadable rows out)."
        );
        return Ok(Ended::Outcome(RunOutcome::Failed));
    }
    // Stage labels and the locations' pipelines must exist in HubSpot, or
    // every sync would stop: checked as in the app, when HubSpot can be
    // asked; otherwise the preview (`mapping apply`) finds them.
    match hubspot() {
        Ok((configured, pipelines)) => {
            let problems = pipeline_problems(&import.mapping, &configured, &pipelines);
            if !problems.is_empty() {
                for problem in &problems {
                    println!("  {problem}");
                }
                println!(
                    "Nichts übernommen: HubSpot kennt diese Pipeline oder Phasen nicht. / Nothing imported: HubSpot does not know this pipeline or these stages."
                );
                return Ok(Ended::Outcome(RunOutcome::Failed));
            }
        }
        Err(reason) => println!(
            "Pipelines und Phasen nicht mit HubSpot geprüft / pipelines and stages not checked with HubSpot: {reason}"
        ),
    }
    print_changes(&base, &import.mapping);
    if import.mapping == base {
        println!("Keine Änderung. / No change.");
        return Ok(Ended::Outcome(RunOutcome::Success));
    }
    if dry_run {
        println!("Probelauf: nichts gespeichert. / Dry run: nothing saved.");
        return Ok(Ended::Outcome(RunOutcome::Success));
    }
    let comment = comment.unwrap_or_else(|| format!("Import {name}"));
    let version = save_version(ledger, &import.mapping, &os_user(), &comment)?;
    println!(
        "Als Version {version} gespeichert; in Kraft erst nach Bestätigung der Vorschau (App: Zuordnung, oder `mapping apply --yes`). / Saved as version {version}; in force only after its preview is confirmed (app: Mapping, or `mapping apply --yes`)."
    );
    Ok(Ended::Outcome(RunOutcome::Success))
}

fn versions(ledger: &Ledger) -> anyhow::Result<Ended> {
    let applied = applied_version(ledger)?;
    let list = list_versions(ledger)?;
    if list.is_empty() {
        println!(
            "Noch keine gespeicherte Version: die mitgelieferte Zuordnung gilt. / No saved version yet: the shipped mapping applies."
        );
    }
    for version in list {
        let mark = if Some(version.version) == applied {
            "  ← in Kraft / in force"
        } else {
            ""
        };
        println!(
            "{:>4}  {}  {:<16} {}{mark}",
            version.version, version.created_at, version.author, version.comment
        );
    }
    Ok(Ended::Outcome(RunOutcome::Success))
}

fn show_diff(ledger: &Ledger, from: Option<i64>, to: Option<i64>) -> anyhow::Result<Ended> {
    let load = |v: i64| -> anyhow::Result<Mapping> {
        load_version(ledger, v)?.with_context(|| {
            format!("Zuordnung Version {v} gibt es nicht / Mapping version {v} does not exist")
        })
    };
    let to_version = match to {
        Some(v) => Some(v),
        None => latest_version(ledger)?,
    };
    let newer = match to_version {
        Some(v) => load(v)?,
        None => Mapping::defaults(),
    };
    let older = match from.or_else(|| to_version.map(|v| v - 1).filter(|v| *v > 0)) {
        Some(v) => load(v)?,
        None => Mapping::defaults(),
    };
    print_changes(&older, &newer);
    Ok(Ended::Outcome(RunOutcome::Success))
}

fn print_changes(before: &Mapping, after: &Mapping) {
    for table in diff(before, after) {
        println!("{} / {}:", table.table.label(), table.table.label_en());
        for change in &table.changes {
            match change {
                RowChange::Added(row) => println!("  + {}", row.join(";")),
                RowChange::Removed(row) => println!("  - {}", row.join(";")),
                RowChange::Changed { before, after } => {
                    println!("  ~ {}  →  {}", before.join(";"), after.join(";"))
                }
            }
        }
        if table.reordered {
            println!("  Reihenfolge geändert / order changed");
        }
    }
}
