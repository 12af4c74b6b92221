//! The historical import's engine side (DESIGN.md §8): the dry-run
//! summary in HubSpot terms and the import itself.
//!
//! [`summarise`] writes the file's rows and plans the location in one
//! rolled-back transaction — after a first plan without them, so only the
//! import's own effect is counted — like the mapping preview: contacts,
//! deals and appointment records that would be new or changed, deals whose
//! stage or revenue would change, and up to [`SAMPLE_SIZE`] examples keyed
//! by case key (no personal data). [`import`] writes the whole file in
//! one transaction under the writer lock, checking every row on the way:
//! it commits only when the file was read to its end and is accepted
//! (invalid rows refuse it unless they are to be left out); a refused
//! file is read to its end for the report without writing, a cancelled
//! one (the flag is looked at between batches of [`BATCH_ROWS`] rows)
//! leaves nothing. Progress by callback after every batch. Every import
//! is recorded in the history and the audit log.
//!
//! The GUI's Import view uses these on the engine thread: open a session
//! ([`open_session`]), show `session.preview`, re-open with changed
//! choices, [`check`], [`dry_run`], [`import`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDateTime;
use rusqlite::Connection;

use super::extract::CancelFlag;
use super::planner::{DealProperties, PlanContext, PlannedRows, Rehearsal, plan_within};
use super::reapply::{DealChange, FieldChange, SAMPLE_SIZE, resolve};
use super::run::{SyncEnvironment, SyncError, stage_ids};
use crate::hubspot::provision::AppointmentsStatus;
use crate::import::{
    BATCH_ROWS, CheckReport, ImportError, ImportRequest, ImportSession, WriteCounts, Writer,
    file_hash,
};
use crate::ledger::audit::os_user;
use crate::ledger::imports::{ImportRecord, timestamp};
use crate::ledger::lock::{LockError, WriterLock};
use crate::ledger::{Batch, Ledger, LedgerError, OutboxKind};
use crate::mapping::Mapping;
use crate::mapping::store::{contact_properties_to_clear, load_applied};
use crate::plan::LocationStages;

/// Why an import step could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImportRunError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The file has invalid rows and they were not to be left out; the
    /// check says which (nothing was written).
    #[error(
        "{n} ungültige Zeilen – Datei korrigieren oder die Zeilen ausdrücklich weglassen (--drop-invalid) / \
         {n} invalid rows – correct the file or leave the rows out explicitly (--drop-invalid)",
        n = .0.rows_invalid
    )]
    InvalidRows(Box<CheckReport>),
    /// The settings or secrets a dry run needs (HubSpot's stages) are missing.
    #[error("{0}")]
    Environment(String),
    #[error(
        "Spaltenzuordnung unvollständig – jede Spalte braucht ein Feld oder „ignorieren“ (--columns) / \
         column assignment incomplete – every column needs a field or \"ignore\" (--columns)"
    )]
    Columns,
}

impl From<LedgerError> for ImportRunError {
    fn from(error: LedgerError) -> Self {
        ImportRunError::Import(ImportError::Ledger(error))
    }
}

impl From<crate::mapping::store::MappingStoreError> for ImportRunError {
    fn from(error: crate::mapping::store::MappingStoreError) -> Self {
        ImportRunError::Sync(SyncError::Mapping(error))
    }
}

/// Opens a file for the dialog: detection, columns and preview.
pub fn open_session(
    ledger_path: &Path,
    request: ImportRequest,
) -> Result<ImportSession, ImportRunError> {
    let ledger = Ledger::open(ledger_path)?;
    Ok(ImportSession::open(ledger.connection(), request)?)
}

/// Checks every row (read-only).
pub fn check(ledger_path: &Path, session: &ImportSession) -> Result<CheckReport, ImportRunError> {
    let ledger = Ledger::open(ledger_path)?;
    Ok(session.check(ledger.connection())?)
}

/// What planning needs besides the ledger, resolved once.
pub struct PlanInputs {
    /// The mapping in force.
    pub mapping: Mapping,
    /// Stage ids per location.
    pub stage_ids: LocationStages,
    /// Stage and pipeline id → label, for the examples.
    pub labels: BTreeMap<String, String>,
    /// Whether appointment records are written.
    pub appointments_enabled: bool,
    /// The plan's now (local time).
    pub now: NaiveDateTime,
}

/// HubSpot records of one kind the import would touch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordEffect {
    /// Records HubSpot does not have yet.
    pub new: u64,
    /// Records HubSpot has whose properties would change.
    pub changed: u64,
    /// Records of the location HubSpot already has as computed.
    pub unchanged: u64,
}

/// The dry run's summary: what confirming the import would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Every row checked.
    pub check: CheckReport,
    /// Ledger rows of the file's kind: new, changed, unchanged, left out.
    pub records: WriteCounts,
    /// Per HubSpot kind (contacts, deals, appointments, associations).
    pub hubspot: BTreeMap<OutboxKind, RecordEffect>,
    /// Deals whose stage (or pipeline) would change, new deals included.
    pub stage_changes: u64,
    /// Deals whose total or per-category revenue would change.
    pub revenue_changes: u64,
    /// Up to [`SAMPLE_SIZE`] changed deals (case key, stage, revenue).
    pub samples: Vec<DealChange>,
}

/// Resolves the mapping in force and HubSpot's stage ids (read only).
pub async fn plan_inputs(env: &SyncEnvironment) -> Result<PlanInputs, ImportRunError> {
    let mapping = {
        let ledger = Ledger::open(&env.ledger_path)?;
        load_applied(&ledger)?.1
    };
    let provisioned = resolve(env, &[&mapping]).await?;
    let ids = stage_ids(&env.settings, &mapping, &provisioned)?;
    let mut labels: BTreeMap<String, String> = provisioned
        .all_stage_ids()
        .map(|(label, id)| (id.clone(), label.clone()))
        .collect();
    labels.insert(
        provisioned.pipeline_id.clone(),
        env.settings.hubspot.pipeline.clone(),
    );
    for (label, pipeline) in &provisioned.other_pipelines {
        labels.insert(pipeline.id.clone(), label.clone());
    }
    Ok(PlanInputs {
        mapping,
        stage_ids: ids,
        labels,
        appointments_enabled: provisioned.appointments == AppointmentsStatus::Enabled,
        now: (env.clock)(),
    })
}

/// The dry run against the environment's HubSpot and ledger; holds the
/// writer lock while it plans, so a running sync does not mix in.
pub async fn dry_run(
    env: &SyncEnvironment,
    session: &ImportSession,
) -> Result<ImportSummary, ImportRunError> {
    let inputs = plan_inputs(env).await?;
    let _lock = WriterLock::acquire(&env.ledger_path, "import dry run")?;
    let mut ledger = Ledger::open(&env.ledger_path)?;
    summarise(&mut ledger, session, &inputs)
}

/// Outbox rows of a location: (kind, key) → payload hash.
type OutboxRows = HashMap<(OutboxKind, String), String>;

/// Outbox rows of a location.
fn queued(conn: &Connection, location: &str) -> Result<OutboxRows, LedgerError> {
    let mut statement =
        conn.prepare("SELECT kind, record_key, payload_hash FROM outbox WHERE location_key = ?1")?;
    let rows = statement.query_map([location], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut out = OutboxRows::new();
    for row in rows {
        let (kind, key, hash) = row?;
        if let Some(kind) = OutboxKind::parse(&kind) {
            out.insert((kind, key), hash);
        }
    }
    Ok(out)
}

/// The outbox rows of a location after a plan: `outbox` as the plan
/// found it, with the plan's rows written over it.
fn overlay(outbox: &OutboxRows, planned: PlannedRows) -> OutboxRows {
    let mut rows = outbox.clone();
    for (row, hash) in planned {
        match hash {
            Some(hash) => rows.insert(row, hash),
            None => rows.remove(&row),
        };
    }
    rows
}

fn known_to_hubspot(conn: &Connection, kind: OutboxKind, key: &str) -> Result<bool, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM hubspot_records WHERE kind = ?1 AND record_key = ?2)",
        )?
        .query_row([kind.as_str(), key], |row| row.get(0))?)
}

/// Computes the summary in one rolled-back transaction (see the module
/// documentation); nothing stays in the ledger.
pub fn summarise(
    ledger: &mut Ledger,
    session: &ImportSession,
    inputs: &PlanInputs,
) -> Result<ImportSummary, ImportRunError> {
    if !session.preview.column_problems.is_empty() {
        return Ok(ImportSummary {
            check: session.check(ledger.connection())?,
            ..ImportSummary::default()
        });
    }
    let cleared = contact_properties_to_clear(ledger, &inputs.mapping)?;
    let context = PlanContext {
        legacy: None,
        mapping: &inputs.mapping,
        cleared_contact_properties: &cleared,
        stage_ids: &inputs.stage_ids,
        appointments_enabled: inputs.appointments_enabled,
        now: inputs.now,
    };
    let location = session.request.location.as_str();
    let mut failure: Option<ImportError> = None;
    let rehearsal = ledger.rehearse(|tx| {
        let outbox = queued(tx, location)?;
        let before = RefCell::new(DealProperties::new());
        let rehearsal = Rehearsal {
            deals: &before,
            keep_decisions: true,
        };
        let (_, first) = plan_within(tx, location, &context, rehearsal)?;
        let mut batch = Batch::over(tx);
        let mut writer = match Writer::start(session, tx, false) {
            Ok(writer) => writer,
            Err(error) => {
                failure = Some(error);
                return Ok(None);
            }
        };
        while writer.next_batch(&mut batch, BATCH_ROWS)? {}
        writer.finish(&mut batch)?;
        let after = RefCell::new(DealProperties::new());
        let rehearsal = Rehearsal {
            deals: &after,
            keep_decisions: false,
        };
        let (report, second) = plan_within(tx, location, &context, rehearsal)?;
        let queued_before = overlay(&outbox, first);
        let mut hubspot: BTreeMap<OutboxKind, RecordEffect> = BTreeMap::new();
        for ((kind, key), hash) in overlay(&outbox, second) {
            if queued_before.get(&(kind, key.clone())) == Some(&hash) {
                continue;
            }
            let effect = hubspot.entry(kind).or_default();
            if known_to_hubspot(tx, kind, &key)? {
                effect.changed += 1;
            } else {
                effect.new += 1;
            }
        }
        for (kind, planned) in &report.queued {
            let effect = hubspot.entry(*kind).or_default();
            let total = planned.added + planned.replaced + planned.unchanged;
            effect.unchanged = total.saturating_sub(effect.new + effect.changed);
        }
        Ok(Some((
            (writer.counts, writer.report),
            hubspot,
            before.into_inner(),
            after.into_inner(),
        )))
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    let Some(((records, check), hubspot, before, after)) = rehearsal else {
        return Ok(ImportSummary::default());
    };
    let mut summary = ImportSummary {
        check,
        records,
        hubspot,
        ..ImportSummary::default()
    };
    compare_deals(&mut summary, &before, &after, &inputs.labels);
    Ok(summary)
}

/// Counts and samples the deals whose stage or revenue differ.
fn compare_deals(
    summary: &mut ImportSummary,
    before: &DealProperties,
    after: &DealProperties,
    labels: &BTreeMap<String, String>,
) {
    let empty = BTreeMap::new();
    for (case_key, new) in after {
        let old = before.get(case_key).unwrap_or(&empty);
        let value = |map: &BTreeMap<String, String>, property: &str| {
            let raw = map.get(property).cloned().unwrap_or_default();
            match property {
                "dealstage" | "pipeline" => labels.get(&raw).cloned().unwrap_or(raw),
                _ => raw,
            }
        };
        let mut properties: BTreeSet<&str> =
            ["pipeline", "dealstage", "amount"].into_iter().collect();
        for map in [old, new] {
            properties.extend(
                map.keys()
                    .filter(|k| k.starts_with("umsatz_"))
                    .map(String::as_str),
            );
        }
        let changes: Vec<FieldChange> = properties
            .into_iter()
            .filter_map(|property| {
                let (before, after) = (value(old, property), value(new, property));
                (before != after).then(|| FieldChange {
                    property: property.to_owned(),
                    before,
                    after,
                })
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        if changes
            .iter()
            .any(|c| c.property == "dealstage" || c.property == "pipeline")
        {
            summary.stage_changes += 1;
        }
        if changes
            .iter()
            .any(|c| c.property == "amount" || c.property.starts_with("umsatz_"))
        {
            summary.revenue_changes += 1;
        }
        if summary.samples.len() < SAMPLE_SIZE {
            summary.samples.push(DealChange {
                case_key: case_key.clone(),
                changes,
            });
        }
    }
}

/// Options of a real import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Leave invalid rows out (quarantined with their reason) instead of
    /// refusing the file.
    pub drop_invalid: bool,
}

/// Progress of an import, after every batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportProgress {
    /// Rows read so far.
    pub rows: u64,
    /// Bytes of the file read so far.
    pub bytes: u64,
    /// The file's size.
    pub total_bytes: u64,
    /// Rows per second so far.
    pub rows_per_second: f64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The history entry (also in the audit log).
    pub record: ImportRecord,
    /// The check before writing.
    pub check: CheckReport,
    /// Counts of the rows written.
    pub counts: WriteCounts,
    /// Whether it stopped at a batch boundary because it was cancelled.
    pub cancelled: bool,
}

/// Imports a file in one transaction: every row is checked as it is
/// written, and the transaction commits only when the file was read to
/// its end and is accepted (no invalid rows, or they are to be left out).
/// A refused or cancelled import leaves the ledger as it was; a refused
/// file is read to its end for the report, without writing.
pub fn import(
    ledger_path: &Path,
    session: &ImportSession,
    options: ImportOptions,
    progress: &dyn Fn(ImportProgress),
    cancel: &CancelFlag,
) -> Result<ImportOutcome, ImportRunError> {
    let _lock = WriterLock::acquire(ledger_path, "import")?;
    if !session.preview.column_problems.is_empty() {
        return Err(ImportRunError::Columns);
    }
    let mut ledger = Ledger::open(ledger_path)?;
    let started_at = timestamp();
    let path = &session.request.path;
    let total_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let hash = file_hash(path)?;
    let snapshot = Ledger::open(ledger_path)?;
    let mut writer = Writer::start_pipelined(session, ledger.connection(), snapshot, true)?;
    let clock = Instant::now();
    let mut report = |writer: &Writer<'_>| {
        let seconds = clock.elapsed().as_secs_f64().max(1e-6);
        progress(ImportProgress {
            rows: writer.counts.rows_read,
            bytes: writer.bytes_read(),
            total_bytes,
            rows_per_second: writer.counts.rows_read as f64 / seconds,
        });
    };
    let ended = write_all(&mut ledger, &mut writer, options, &mut report, cancel)?;
    if ended == Ended::Refused {
        writer.check_rest(ledger.connection(), &mut report)?;
        return Err(ImportRunError::InvalidRows(Box::new(writer.report)));
    }
    let cancelled = ended == Ended::Cancelled;
    let counts = if cancelled {
        // Rolled back: nothing of the file was stored.
        WriteCounts {
            rows_read: writer.counts.rows_read,
            ..WriteCounts::default()
        }
    } else {
        // Rows an earlier import of this file left out and that are fine now.
        ledger.resolve_imported_again(
            &session.request.location,
            &session.preview.file_name,
            &writer.left_out,
        )?;
        writer.counts
    };
    let mut record = ImportRecord {
        id: 0,
        location_key: session.request.location.clone(),
        kind: session.request.kind.name().to_owned(),
        file_name: session.preview.file_name.clone(),
        file_hash: hash,
        rows_read: counts.rows_read,
        rows_taken: counts.rows_taken,
        rows_left_out: counts.rows_left_out,
        records_written: counts.written(),
        outcome: if cancelled { "cancelled" } else { "done" }.to_owned(),
        actor: os_user(),
        started_at,
        finished_at: timestamp(),
    };
    record.id = ledger.record_import(&record)?;
    tracing::info!(
        kind = record.kind,
        location = record.location_key,
        rows = counts.rows_read,
        written = counts.written(),
        left_out = counts.rows_left_out,
        cancelled,
        "import finished"
    );
    Ok(ImportOutcome {
        record,
        check: writer.report,
        counts,
        cancelled,
    })
}

/// How writing a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Read to its end and committed.
    Done,
    /// Cancelled between batches; rolled back.
    Cancelled,
    /// An invalid row that was not to be left out; rolled back.
    Refused,
}

/// Writes the file batch by batch in one transaction (see [`import`]).
fn write_all(
    ledger: &mut Ledger,
    writer: &mut Writer<'_>,
    options: ImportOptions,
    progress: &mut dyn FnMut(&Writer<'_>),
    cancel: &CancelFlag,
) -> Result<Ended, ImportRunError> {
    Ok(ledger.commit_if(|batch| {
        loop {
            if cancel.is_cancelled() {
                return Ok((Ended::Cancelled, false));
            }
            let more = writer.next_batch(batch, BATCH_ROWS)?;
            progress(writer);
            if writer.report.rows_invalid > 0 && !options.drop_invalid {
                return Ok((Ended::Refused, false));
            }
            if !more {
                writer.finish(batch)?;
                return Ok((Ended::Done, true));
            }
        }
    })?)
}

/// Makes sure the ledger knows a configured location before its first
/// sync (imports may come first); takes the writer lock only to add it.
pub fn ensure_location(
    ledger_path: &Path,
    location: &crate::settings::LocationSettings,
) -> Result<(), ImportRunError> {
    let known = Ledger::open(ledger_path)?
        .locations()?
        .iter()
        .any(|l| l.key == location.key);
    if !known {
        let _lock = WriterLock::acquire(ledger_path, "import")?;
        Ledger::open(ledger_path)?.upsert_location(&location.into())?;
    }
    Ok(())
}
