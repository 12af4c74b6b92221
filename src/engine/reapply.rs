//! Re-applying a saved mapping version (DESIGN.md §7): first a preview of
//! what it would change in HubSpot, then — only after a person confirmed
//! it — the version is put in force and exactly the changed records are
//! queued.
//!
//! The preview plans every configured location twice in rolled-back
//! transactions, once with the mapping in force and once with the new
//! version, and compares the deals' stage, category and revenue. The
//! number of records it says will be written is the planner's own count
//! under the new version, so confirming queues exactly that many.
//!
//! **Invariant:** nothing changes in HubSpot under a new mapping before its
//! preview is confirmed: syncs plan with the *applied* version
//! (`mapping::store::load_applied`), and only [`confirm`] advances it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::hubspot::provision::{self, AppointmentsStatus, ProvisionReport, ProvisionSpec};
use crate::hubspot::{HubSpotClient, HubSpotClientConfig, ObjectKind};
use crate::ledger::lock::WriterLock;
use crate::ledger::{Ledger, NewAuditEntry, OutboxKind};
use crate::mapping::Mapping;
use crate::mapping::store::{
    MappingStoreError, contact_properties_to_clear, load_applied, load_version, set_applied,
};

use super::planner::{DealProperties, PlanContext, plan_location_capturing};
use super::run::{SyncEnvironment, SyncError, chosen_locations, provision_spec, stage_ids};

/// Changed deals shown as examples in the preview.
pub const SAMPLE_SIZE: usize = 20;

/// Deal properties the preview compares and shows (stage, category,
/// revenue, owner). None of them is personal: the deal name (patient name)
/// is never shown.
const REVENUE_PREFIX: &str = "umsatz_";

/// One property of a deal before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// HubSpot property name.
    pub property: String,
    /// Value under the mapping in force (stage as its label).
    pub before: String,
    /// Value under the new version.
    pub after: String,
}

/// One changed deal, as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealChange {
    /// `ivoris_case_key` (location and Ivoris appointment id; no personal data).
    pub case_key: String,
    /// Stage, category and revenue properties that change.
    pub changes: Vec<FieldChange>,
}

/// What confirming a version would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReapplyPreview {
    /// The version previewed.
    pub version: i64,
    /// The version in force now (`None`: the shipped defaults).
    pub applied: Option<i64>,
    /// Deals computed under the new version.
    pub deals: u64,
    /// Deals whose stage changes (or that move to another pipeline).
    pub stage_changes: u64,
    /// Deals whose dominant category changes.
    pub category_changes: u64,
    /// Deals whose total or per-category revenue changes.
    pub revenue_changes: u64,
    /// Records confirming would queue, per kind.
    pub to_write: BTreeMap<OutboxKind, u64>,
    /// Up to [`SAMPLE_SIZE`] changed deals.
    pub samples: Vec<DealChange>,
    /// Contact properties the version switches off in „Kontaktfelder“: they
    /// are cleared (sent empty) on every synced contact, counted in
    /// [`ReapplyPreview::to_write`]'s contacts.
    pub cleared_contact_fields: Vec<String>,
}

impl ReapplyPreview {
    /// Records confirming would queue, all kinds.
    pub fn total_to_write(&self) -> u64 {
        self.to_write.values().sum()
    }
}

/// What confirming did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReapplyOutcome {
    /// The version now in force.
    pub version: i64,
    /// Records queued, per kind.
    pub queued: BTreeMap<OutboxKind, u64>,
}

/// Why a preview or confirmation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReapplyError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Store(#[from] MappingStoreError),
    #[error("Zuordnung Version {0} gibt es nicht / Mapping version {0} does not exist")]
    NoSuchVersion(i64),
}

impl From<crate::ledger::lock::LockError> for ReapplyError {
    fn from(error: crate::ledger::lock::LockError) -> Self {
        ReapplyError::Sync(SyncError::Locked(error))
    }
}

impl From<crate::ledger::LedgerError> for ReapplyError {
    fn from(error: crate::ledger::LedgerError) -> Self {
        ReapplyError::Sync(SyncError::Ledger(error))
    }
}

/// The HubSpot client of the environment.
fn client(env: &SyncEnvironment) -> Result<HubSpotClient, SyncError> {
    let mut config = HubSpotClientConfig::from_settings(
        &env.settings.hubspot,
        env.credentials.hubspot_token.clone(),
    );
    if let Some(tune) = &env.tune_hubspot {
        tune(&mut config);
    }
    HubSpotClient::new(config).map_err(SyncError::HubSpot)
}

/// Resolves pipeline and stage ids for every stage label of `mappings`
/// without changing the portal.
pub(super) async fn resolve(
    env: &SyncEnvironment,
    mappings: &[&Mapping],
) -> Result<ProvisionReport, SyncError> {
    let hubspot = client(env)?;
    // One spec that resolves what every mapping needs: their stage labels
    // and their locations' pipelines.
    let specs: Vec<ProvisionSpec> = mappings
        .iter()
        .map(|m| provision_spec(&env.settings, m))
        .collect();
    let mut spec = provision_spec(&env.settings, &Mapping::empty());
    let labels: BTreeSet<String> = specs.iter().flat_map(|s| s.stage_labels.clone()).collect();
    spec.stage_labels = labels.into_iter().collect();
    let pipelines: BTreeSet<String> = specs
        .iter()
        .flat_map(|s| s.other_pipelines.clone())
        .collect();
    spec.other_pipelines = pipelines.into_iter().collect();
    provision::resolve(&hubspot, &spec)
        .await
        .map_err(SyncError::Provision)
}

/// HubSpot's active deal pipelines, label → active stage labels, for
/// checking the stage and location tables while they are edited.
pub async fn deal_pipelines(
    env: &SyncEnvironment,
) -> Result<BTreeMap<String, Vec<String>>, SyncError> {
    let hubspot = client(env)?;
    let pipelines = hubspot
        .pipelines(ObjectKind::Deals)
        .await
        .map_err(SyncError::HubSpot)?;
    Ok(pipelines
        .into_iter()
        .filter(|p| !p.archived)
        .map(|p| {
            let stages = p
                .stages
                .into_iter()
                .filter(|s| !s.archived)
                .map(|s| s.label)
                .collect();
            (p.label, stages)
        })
        .collect())
}

/// HubSpot's active owners as `(id, name)`, for choosing a location's deal
/// owner by name.
pub async fn owners(env: &SyncEnvironment) -> Result<Vec<(String, String)>, SyncError> {
    let hubspot = client(env)?;
    let owners = hubspot.owners().await.map_err(SyncError::HubSpot)?;
    Ok(owners
        .into_iter()
        .map(|o| {
            let name = o.display_name();
            (o.id, name)
        })
        .collect())
}

/// Plans every configured location with `mapping`, rolled back, and
/// collects every deal's properties and the records that would be queued.
fn rehearse(
    env: &SyncEnvironment,
    ledger: &mut Ledger,
    mapping: &Mapping,
    provisioned: &ProvisionReport,
) -> Result<(DealProperties, BTreeMap<OutboxKind, u64>), SyncError> {
    let ids = stage_ids(&env.settings, mapping, provisioned)?;
    let cleared = contact_properties_to_clear(ledger, mapping)?;
    let context = PlanContext {
        legacy: None,
        mapping,
        cleared_contact_properties: &cleared,
        stage_ids: &ids,
        appointments_enabled: provisioned.appointments == AppointmentsStatus::Enabled,
        now: (env.clock)(),
    };
    let deals = RefCell::new(DealProperties::new());
    let mut to_write = BTreeMap::new();
    for location in chosen_locations(&env.settings, &[])? {
        let report = plan_location_capturing(ledger, &location.key, &context, true, Some(&deals))?;
        for (kind, queued) in &report.queued {
            *to_write.entry(*kind).or_insert(0) += queued.to_write();
        }
    }
    Ok((deals.into_inner(), to_write))
}

/// What confirming `version` would change. Holds the writer lock while it
/// plans, so the numbers are not mixed with a running sync.
pub async fn preview(env: &SyncEnvironment, version: i64) -> Result<ReapplyPreview, ReapplyError> {
    let (applied, old_mapping, new_mapping) = {
        let ledger = Ledger::open(&env.ledger_path)?;
        let (applied, old) = load_applied(&ledger)?;
        let new = load_version(&ledger, version)?.ok_or(ReapplyError::NoSuchVersion(version))?;
        (applied, old, new)
    };
    let provisioned = resolve(env, &[&old_mapping, &new_mapping]).await?;
    let _lock = WriterLock::acquire(&env.ledger_path, "mapping preview")?;
    let mut ledger = Ledger::open(&env.ledger_path)?;
    let (before, _) = rehearse(env, &mut ledger, &old_mapping, &provisioned)?;
    let (after, to_write) = rehearse(env, &mut ledger, &new_mapping, &provisioned)?;

    let stage_names: BTreeMap<&str, &str> = provisioned
        .all_stage_ids()
        .map(|(label, id)| (id.as_str(), label.as_str()))
        .collect();
    let default_pipeline = provision_spec(&env.settings, &Mapping::empty()).pipeline_label;
    let pipeline_names: BTreeMap<&str, &str> =
        std::iter::once((provisioned.pipeline_id.as_str(), default_pipeline.as_str()))
            .chain(
                provisioned
                    .other_pipelines
                    .iter()
                    .map(|(label, p)| (p.id.as_str(), label.as_str())),
            )
            .collect();
    let mut preview = ReapplyPreview {
        version,
        applied,
        deals: after.len() as u64,
        to_write,
        cleared_contact_fields: switched_off(&old_mapping, &new_mapping),
        ..ReapplyPreview::default()
    };
    let empty = BTreeMap::new();
    for (case_key, new) in &after {
        let old = before.get(case_key).unwrap_or(&empty);
        let value = |map: &BTreeMap<String, String>, property: &str| -> String {
            let raw = map.get(property).cloned().unwrap_or_default();
            let names = match property {
                "dealstage" => &stage_names,
                "pipeline" => &pipeline_names,
                _ => return raw,
            };
            names.get(raw.as_str()).map_or(raw, |l| (*l).to_owned())
        };
        let mut properties: BTreeSet<&str> = [
            "pipeline",
            "dealstage",
            "behandlungskategorie",
            "amount",
            "hubspot_owner_id",
        ]
        .into_iter()
        .collect();
        for map in [old, new] {
            properties.extend(
                map.keys()
                    .filter(|k| k.starts_with(REVENUE_PREFIX))
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
        let changed = |p: &dyn Fn(&str) -> bool| changes.iter().any(|c| p(&c.property));
        // A move to another pipeline is a change of stage, even where the
        // stage's label is the same in both.
        if changed(&|p| p == "dealstage" || p == "pipeline") {
            preview.stage_changes += 1;
        }
        if changed(&|p| p == "behandlungskategorie") {
            preview.category_changes += 1;
        }
        if changed(&|p| p == "amount" || p.starts_with(REVENUE_PREFIX)) {
            preview.revenue_changes += 1;
        }
        if preview.samples.len() < SAMPLE_SIZE {
            preview.samples.push(DealChange {
                case_key: case_key.clone(),
                changes,
            });
        }
    }
    Ok(preview)
}

/// Contact properties `old` fills and `new` does not: the next sync clears
/// them ([`Mapping::cleared_contact_properties`]).
fn switched_off(old: &Mapping, new: &Mapping) -> Vec<String> {
    let now = new.enabled_contact_properties();
    old.enabled_contact_properties()
        .into_iter()
        .filter(|property| !now.contains(property))
        .collect()
}

/// Puts `version` in force and queues every record it changes (the person
/// saw the preview). The version is recorded first: should the process die
/// while planning, the next sync plans with the confirmed version and
/// queues the rest.
pub async fn confirm(
    env: &SyncEnvironment,
    version: i64,
    who: &str,
) -> Result<ReapplyOutcome, ReapplyError> {
    let mapping = {
        let ledger = Ledger::open(&env.ledger_path)?;
        load_version(&ledger, version)?.ok_or(ReapplyError::NoSuchVersion(version))?
    };
    let provisioned = resolve(env, &[&mapping]).await?;
    let ids = stage_ids(&env.settings, &mapping, &provisioned)?;
    let _lock = WriterLock::acquire(&env.ledger_path, "mapping apply")?;
    let mut ledger = Ledger::open(&env.ledger_path)?;
    let previous = load_applied(&ledger)?.0;
    set_applied(ledger.connection(), version, who)?;
    ledger.audit(&NewAuditEntry {
        actor: who.to_owned(),
        action: "mapping.apply".to_owned(),
        subject: format!("mapping:{version}"),
        details: serde_json::json!({ "version": version, "previous": previous }),
    })?;
    let cleared = contact_properties_to_clear(&ledger, &mapping)?;
    let context = PlanContext {
        legacy: None,
        mapping: &mapping,
        cleared_contact_properties: &cleared,
        stage_ids: &ids,
        appointments_enabled: provisioned.appointments == AppointmentsStatus::Enabled,
        now: (env.clock)(),
    };
    let mut queued = BTreeMap::new();
    for location in chosen_locations(&env.settings, &[])? {
        let report = plan_location_capturing(&mut ledger, &location.key, &context, false, None)?;
        for (kind, q) in &report.queued {
            *queued.entry(*kind).or_insert(0) += q.to_write();
        }
    }
    tracing::info!(version, "mapping version applied");
    Ok(ReapplyOutcome { version, queued })
}
