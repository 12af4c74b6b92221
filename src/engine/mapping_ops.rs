//! The mapping editor's requests, answered on the engine thread: the
//! versions and the mapping to edit, values the ledger has seen that the
//! mapping does not know („Nicht zugeordnet“), saving, restoring, CSV
//! import / export, and the re-apply preview and confirmation
//! ([`super::reapply`]). The GUI sends a [`MappingCommand`] and gets one
//! [`MappingEvent`] back; it never touches SQLite or a file itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::Connection;

use crate::hubspot::provision::ProvisionError;
use crate::ledger::Ledger;
use crate::ledger::audit::os_user;
use crate::ledger::lock::{LockError, WriterLock};
use crate::mapping::archive::export_zip;
use crate::mapping::store::{
    MappingVersion, applied_version, latest_version, list_versions, load_current, load_version,
    restore_version, save_version,
};
use crate::mapping::table::{FileImport, export_table, import_file};
use crate::mapping::{Category, Counting, Mapping, TableName};

use super::reapply::{ReapplyOutcome, ReapplyPreview, confirm, deal_pipelines, preview};
use super::run::{SyncEnvironment, SyncError};

/// Why a version could not be saved while a sync runs.
pub const SAVE_WAITS: &str = "Eine Synchronisation läuft – die Zuordnung wurde nicht gespeichert. \
     Der Entwurf bleibt erhalten; bitte nach dem Lauf erneut speichern. / A sync is running – the \
     mapping was not saved. The draft is kept; save again after the run.";

/// Unmapped values listed per kind, most frequent (or largest revenue) first.
const UNMAPPED_LIMIT: usize = 50;

/// What the mapping editor asks.
#[derive(Debug, Clone)]
pub enum MappingCommand {
    /// Read versions, the latest mapping, the pipeline's stage labels and
    /// the unmapped values.
    Load,
    /// Save the edited mapping as a new version.
    Save {
        /// The whole mapping, already validated by the editor.
        mapping: Box<Mapping>,
        /// Why it changed.
        comment: String,
    },
    /// Read one version (to compare it).
    Version(i64),
    /// Save an older version again as the newest.
    Restore(i64),
    /// Compute what applying a version would change.
    Preview(i64),
    /// Apply a version (the person confirmed its preview).
    Confirm(i64),
    /// Read a CSV or ZIP file over the latest mapping (nothing saved).
    Import(PathBuf),
    /// Write every table of a mapping as CSV and a ZIP into a directory.
    Export {
        /// The tables to write (the editor's draft or a version).
        mapping: Box<Mapping>,
        /// Target directory.
        dir: PathBuf,
    },
}

/// One value the ledger has seen and the mapping does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedValue {
    /// Catalogue of a billing code; `None` for the other kinds.
    pub catalogue: Option<String>,
    /// The value (type label, state, code, entry type).
    pub value: String,
    /// Appointments or billing lines with it.
    pub count: u64,
    /// Revenue of billing codes, in cents (0 for the other kinds).
    pub cents: i64,
}

/// Values seen in the ledger that the latest mapping does not map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmapped {
    /// Appointment type labels.
    pub appointment_types: Vec<UnmappedValue>,
    /// Ivoris appointment states.
    pub appointment_states: Vec<UnmappedValue>,
    /// Billing codes that fall to „unklassifiziert“, by revenue.
    pub codes: Vec<UnmappedValue>,
    /// Entry types.
    pub entry_types: Vec<UnmappedValue>,
    /// Locations of the ledger without a row in the location table.
    pub locations: Vec<UnmappedValue>,
}

impl Unmapped {
    /// The list the editor shows beside a table.
    pub fn for_table(&self, table: TableName) -> &[UnmappedValue] {
        match table {
            TableName::AppointmentTypes => &self.appointment_types,
            TableName::AppointmentStates => &self.appointment_states,
            TableName::TreatmentCategories => &self.codes,
            TableName::EntryTypes => &self.entry_types,
            TableName::Locations => &self.locations,
            TableName::Stages | TableName::ContactFields => &[],
        }
    }
}

/// Everything the editor starts from.
#[derive(Debug, Clone)]
pub struct MappingState {
    /// Saved versions, oldest first.
    pub versions: Vec<MappingVersion>,
    /// The latest saved version (`None`: the shipped defaults).
    pub latest: Option<i64>,
    /// The version in force (`None`: the shipped defaults).
    pub applied: Option<i64>,
    /// The latest mapping, to edit.
    pub mapping: Mapping,
    /// Stage labels of the settings' HubSpot pipeline; `None` when HubSpot
    /// could not be asked (the check is then skipped, with a note).
    pub pipeline_labels: Option<Vec<String>>,
    /// Every active deal pipeline of the portal, label → stage labels, for
    /// the location table's pipelines; empty when HubSpot could not be asked.
    pub pipelines: BTreeMap<String, Vec<String>>,
    /// Why the pipeline could not be read, German / English.
    pub pipeline_error: Option<String>,
    /// HubSpot's owners as `(id, name)`; empty when they could not be read.
    pub owners: Vec<(String, String)>,
    /// The Ivoris connections of the settings, which the location table's
    /// keys reference.
    pub connections: Vec<LocationConnection>,
    /// Values the ledger has seen that the mapping does not know.
    pub unmapped: Unmapped,
}

/// A location's Ivoris connection as the settings have it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationConnection {
    /// Location key, referenced by the location table.
    pub key: String,
    /// Name in the settings.
    pub name: String,
    /// Brand in the settings.
    pub brand: Option<String>,
    /// Address of the Ivoris web service.
    pub ivoris_url: String,
    /// Ivoris user.
    pub ivoris_user: String,
}

/// The engine's answer.
#[derive(Debug, Clone)]
pub enum MappingEvent {
    /// Answer to [`MappingCommand::Load`].
    Loaded(Box<MappingState>),
    /// A version was saved (also by a restore).
    Saved(i64),
    /// Answer to [`MappingCommand::Version`].
    Version(i64, Box<Mapping>),
    /// Answer to [`MappingCommand::Preview`].
    Preview(Box<ReapplyPreview>),
    /// Answer to [`MappingCommand::Confirm`].
    Applied(Box<ReapplyOutcome>),
    /// Answer to [`MappingCommand::Import`].
    Imported(Box<FileImport>),
    /// The files written by [`MappingCommand::Export`].
    Exported(Vec<PathBuf>),
    /// Something failed; German / English.
    Failed(String),
}

/// Answers one command.
pub async fn handle(env: &SyncEnvironment, command: MappingCommand) -> MappingEvent {
    let result = match command {
        MappingCommand::Load => load(env).await,
        MappingCommand::Preview(version) => preview(env, version)
            .await
            .map(|p| MappingEvent::Preview(Box::new(p)))
            .map_err(|e| e.to_string()),
        MappingCommand::Confirm(version) => confirm(env, version, &os_user())
            .await
            .map(|o| MappingEvent::Applied(Box::new(o)))
            .map_err(|e| e.to_string()),
        other => {
            let env = env.clone();
            tokio::task::spawn_blocking(move || blocking(&env, other))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
    };
    result.unwrap_or_else(MappingEvent::Failed)
}

/// The commands that only read or write the ledger or files.
fn blocking(env: &SyncEnvironment, command: MappingCommand) -> Result<MappingEvent, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    // Saving a version changes the ledger: only while no sync writes to it
    // (the editor keeps its draft, so nothing is lost by waiting).
    let _lock = match &command {
        MappingCommand::Save { .. } | MappingCommand::Restore(_) => Some(
            WriterLock::acquire(&env.ledger_path, "mapping").map_err(|e| match e {
                LockError::Held { .. } => SAVE_WAITS.to_owned(),
                other => text(&other),
            })?,
        ),
        _ => None,
    };
    let mut ledger = Ledger::open(&env.ledger_path).map_err(|e| text(&e))?;
    match command {
        MappingCommand::Save { mapping, comment } => {
            save_version(&mut ledger, &mapping, &os_user(), &comment)
                .map(MappingEvent::Saved)
                .map_err(|e| text(&e))
        }
        MappingCommand::Version(version) => match load_version(&ledger, version) {
            Ok(Some(mapping)) => Ok(MappingEvent::Version(version, Box::new(mapping))),
            Ok(None) => Err(format!(
                "Zuordnung Version {version} gibt es nicht / Mapping version {version} does not exist"
            )),
            Err(e) => Err(text(&e)),
        },
        MappingCommand::Restore(version) => restore_version(&mut ledger, version, &os_user())
            .map(MappingEvent::Saved)
            .map_err(|e| text(&e)),
        MappingCommand::Import(path) => {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let base = load_current(&ledger).map_err(|e| text(&e))?;
            import_file(&base, &name, &bytes)
                .map(|i| MappingEvent::Imported(Box::new(i)))
                .map_err(|e| text(&e))
        }
        MappingCommand::Export { mapping, dir } => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut written = Vec::new();
            for table in TableName::ALL {
                let path = dir.join(format!("{}.csv", table.file_stem()));
                let bytes = export_table(&mapping, table).map_err(|e| text(&e))?;
                std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                written.push(path);
            }
            let zip = dir.join("zuordnung.zip");
            let bytes = export_zip(&mapping).map_err(|e| text(&e))?;
            std::fs::write(&zip, bytes).map_err(|e| format!("{}: {e}", zip.display()))?;
            written.push(zip);
            Ok(MappingEvent::Exported(written))
        }
        MappingCommand::Load | MappingCommand::Preview(_) | MappingCommand::Confirm(_) => {
            Err("Kein Ledger-Befehl / Not a ledger command".to_owned())
        }
    }
}

async fn load(env: &SyncEnvironment) -> Result<MappingEvent, String> {
    let path = env.ledger_path.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<MappingState, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let ledger = Ledger::open(&path).map_err(|e| text(&e))?;
        let mapping = load_current(&ledger).map_err(|e| text(&e))?;
        Ok(MappingState {
            versions: list_versions(&ledger).map_err(|e| text(&e))?,
            latest: latest_version(&ledger).map_err(|e| text(&e))?,
            applied: applied_version(&ledger).map_err(|e| text(&e))?,
            unmapped: unmapped(ledger.connection(), &mapping).map_err(|e| text(&e))?,
            mapping,
            pipeline_labels: None,
            pipelines: BTreeMap::new(),
            pipeline_error: None,
            owners: Vec::new(),
            connections: Vec::new(),
        })
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut state = read?;
    state.connections = env
        .settings
        .locations
        .iter()
        .map(|l| LocationConnection {
            key: l.key.clone(),
            name: l.name.clone(),
            brand: l.brand.clone(),
            ivoris_url: l.ivoris_url.clone(),
            ivoris_user: l.ivoris_user.clone(),
        })
        .collect();
    // A configured location without a row is as unmapped as one the ledger
    // has seen (it may not have synced yet).
    for connection in &state.connections {
        let listed = state
            .unmapped
            .locations
            .iter()
            .any(|v| v.value == connection.key);
        if !listed && state.mapping.location(&connection.key).is_none() {
            state.unmapped.locations.push(UnmappedValue {
                catalogue: None,
                value: connection.key.clone(),
                count: 0,
                cents: 0,
            });
        }
    }
    match deal_pipelines(env).await {
        Ok(pipelines) => {
            let configured = &env.settings.hubspot.pipeline;
            match pipelines.get(configured) {
                Some(labels) => state.pipeline_labels = Some(labels.clone()),
                None => {
                    state.pipeline_error = Some(
                        SyncError::Provision(ProvisionError::PipelineMissing {
                            label: configured.clone(),
                        })
                        .to_string(),
                    )
                }
            }
            state.pipelines = pipelines;
        }
        Err(error) => state.pipeline_error = Some(error.to_string()),
    }
    // Without the owners the ids are still editable as text.
    match super::reapply::owners(env).await {
        Ok(owners) => state.owners = owners,
        Err(error) => tracing::warn!(%error, "owners not readable"),
    }
    Ok(MappingEvent::Loaded(Box::new(state)))
}

/// Values of the mirror the mapping does not know, most used first.
pub fn unmapped(conn: &Connection, mapping: &Mapping) -> Result<Unmapped, rusqlite::Error> {
    let mut result = Unmapped::default();
    let counted = |sql: &str| -> Result<Vec<(String, u64)>, rusqlite::Error> {
        let mut statement = conn.prepare(sql)?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        rows.map(|r| r.map(|(v, n)| (v, u64::try_from(n).unwrap_or(0))))
            .collect()
    };
    for (label, count) in counted(
        "SELECT type_label, count(*) FROM appointments WHERE coalesce(type_label, '') <> ''
         GROUP BY type_label ORDER BY count(*) DESC",
    )? {
        if !mapping.appointment_type(Some(&label), None).mapped {
            result.appointment_types.push(plain(label, count));
        }
    }
    for (state, count) in counted(
        "SELECT state, count(*) FROM appointments WHERE coalesce(state, '') <> ''
         GROUP BY state ORDER BY count(*) DESC",
    )? {
        if mapping.appointment_state(&state).is_none() {
            result.appointment_states.push(plain(state, count));
        }
    }
    for (entry_type, count) in counted(
        "SELECT entry_type, count(*) FROM document_entries WHERE coalesce(entry_type, '') <> ''
         GROUP BY entry_type ORDER BY count(*) DESC",
    )? {
        if mapping.entry_type(&entry_type).is_none() {
            result.entry_types.push(plain(entry_type, count));
        }
    }
    for (key, count) in counted(
        "SELECT location_key, count(*) FROM patients GROUP BY location_key ORDER BY location_key",
    )? {
        if mapping.location(&key).is_none() {
            result.locations.push(plain(key, count));
        }
    }
    let mut statement = conn.prepare(
        "SELECT catalogue, code, entry_type, count(*), coalesce(sum(amount_cents), 0)
         FROM document_entries WHERE coalesce(code, '') <> '' GROUP BY catalogue, code, entry_type",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, Option<String>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
        ))
    })?;
    let mut codes: std::collections::BTreeMap<(Option<String>, String), (u64, i64)> =
        std::collections::BTreeMap::new();
    for row in rows {
        let (catalogue, code, entry_type, count, cents) = row?;
        // Lines whose entry type fixes the category or is ignored never
        // use the category table.
        let bypassed = entry_type
            .as_deref()
            .and_then(|t| mapping.entry_type(t))
            .is_some_and(|r| r.category.is_some() || r.counting == Counting::Ignored);
        if bypassed
            || mapping.category(catalogue.as_deref(), Some(&code)) != Category::Unklassifiziert
        {
            continue;
        }
        let sum = codes.entry((catalogue, code)).or_default();
        sum.0 += u64::try_from(count).unwrap_or(0);
        sum.1 = sum.1.saturating_add(cents);
    }
    result.codes = codes
        .into_iter()
        .map(|((catalogue, value), (count, cents))| UnmappedValue {
            catalogue,
            value,
            count,
            cents,
        })
        .collect();
    result
        .codes
        .sort_by_key(|v| std::cmp::Reverse(v.cents.unsigned_abs()));
    for list in [
        &mut result.codes,
        &mut result.appointment_types,
        &mut result.appointment_states,
        &mut result.entry_types,
    ] {
        list.truncate(UNMAPPED_LIMIT);
    }
    Ok(result)
}

fn plain(value: String, count: u64) -> UnmappedValue {
    UnmappedValue {
        catalogue: None,
        value,
        count,
        cents: 0,
    }
}
