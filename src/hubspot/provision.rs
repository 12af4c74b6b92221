//! Idempotent setup of the portal before a sync: the property group, the
//! unique key properties the upserts rely on (DESIGN.md §3 invariant 1),
//! the properties the engine writes, the pipeline and stage ids, and
//! whether appointment objects can be written.
//!
//! Running it twice changes nothing the second time: existing groups and
//! properties are found, not recreated (a 409 counts as "exists"). What
//! cannot be fixed through the API — a key property without unique values,
//! a missing pipeline or stage — is a clear error naming it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::client::{HubSpotClient, ObjectKind};
use super::error::ClientError;
use super::wire::{Pipeline, Property, PropertyDefinition, PropertyOptionWire};
use crate::settings::{AppointmentsMode, DEFAULT_PIPELINE};

/// Name of the property group the app's properties are listed under.
pub const GROUP_NAME: &str = "ivoris_sync";
/// Its label in HubSpot.
pub const GROUP_LABEL: &str = "Ivoris-Synchronisation";

/// Default stage labels of the „Patientenreise“ pipeline (DESIGN.md §4),
/// in the order booked, consulted, in treatment, won, lost.
pub const DEFAULT_STAGE_LABELS: [&str; 5] = [
    "Termin gebucht",
    "Erstberatung",
    "In Behandlung",
    "Behandlung abgeschlossen",
    "Verloren",
];

/// Treatment categories as `(property suffix, German label)` (DESIGN.md §5).
pub const REVENUE_CATEGORIES: [(&str, &str); 12] = [
    ("prophylaxe", "Prophylaxe"),
    ("fuellung", "Füllung"),
    ("endodontie", "Endodontie"),
    ("parodontologie", "Parodontologie"),
    ("chirurgie", "Chirurgie"),
    ("implantologie", "Implantologie"),
    ("prothetik", "Prothetik"),
    ("kieferorthopaedie", "Kieferorthopädie/Aligner"),
    ("aesthetik", "Ästhetik"),
    ("diagnostik", "Diagnostik"),
    ("material_labor", "Material/Labor"),
    ("unklassifiziert", "Unklassifiziert"),
];

/// The unique key property of each synced object type.
pub fn key_property(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Contacts => "ivoris_patient_key",
        ObjectKind::Deals => "ivoris_case_key",
        ObjectKind::Appointments => "ivoris_appointment_key",
    }
}

/// What to provision.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionSpec {
    /// Internal name of the property group.
    pub group_name: String,
    /// Label of the property group.
    pub group_label: String,
    /// Properties per object type; key properties carry `has_unique_value`.
    pub properties: BTreeMap<ObjectKind, Vec<PropertyDefinition>>,
    /// Label of the deal pipeline the cases go to.
    pub pipeline_label: String,
    /// Further deal pipelines some locations' cases go to (labels), each
    /// resolved with the same stage labels.
    pub other_pipelines: Vec<String>,
    /// Stage labels to resolve to ids.
    pub stage_labels: Vec<String>,
    /// Whether appointment objects are written.
    pub appointments: AppointmentsMode,
}

/// A text property of the app's group.
pub fn text_property(name: &str, label: &str) -> PropertyDefinition {
    definition(name, label, "string", "text")
}

fn definition(name: &str, label: &str, kind: &str, field_type: &str) -> PropertyDefinition {
    PropertyDefinition {
        name: name.into(),
        label: label.into(),
        kind: kind.into(),
        field_type: field_type.into(),
        group_name: String::new(),
        has_unique_value: false,
        options: Vec::<PropertyOptionWire>::new(),
    }
}

fn key_definition(kind: ObjectKind, label: &str) -> PropertyDefinition {
    PropertyDefinition {
        has_unique_value: true,
        ..text_property(key_property(kind), label)
    }
}

/// The properties of DESIGN.md §4 with the default pipeline and stages.
pub fn default_spec(pipeline_label: &str, appointments: AppointmentsMode) -> ProvisionSpec {
    let mut deals = vec![key_definition(ObjectKind::Deals, "Ivoris-Fallschlüssel")];
    for (suffix, label) in REVENUE_CATEGORIES {
        deals.push(definition(
            &format!("umsatz_{suffix}"),
            &format!("Umsatz {label}"),
            "number",
            "number",
        ));
    }
    deals.extend([
        definition(
            "umsatz_separat",
            "Umsatz separat (nicht in Summe)",
            "number",
            "number",
        ),
        text_property("behandlungskategorie", "Behandlungskategorie"),
        definition("behandlungsstart", "Behandlungsstart", "date", "date"),
        definition("erster_termin", "Erster Termin", "date", "date"),
        definition("letzter_termin", "Letzter Termin", "date", "date"),
        definition("naechster_termin", "Nächster Termin", "date", "date"),
        text_property("termin_status", "Terminstatus"),
        text_property("praxis_standort", "Praxisstandort"),
        text_property("verlustgrund", "Verlustgrund"),
    ]);
    let contacts = vec![
        key_definition(ObjectKind::Contacts, "Ivoris-Patientenschlüssel"),
        definition(
            "ivoris_patient_keys",
            "Ivoris-Patientenschlüssel (alle Standorte)",
            "string",
            "textarea",
        ),
        text_property("ivoris_patientennummer", "Ivoris-Patientennummer"),
        text_property("praxis_standort", "Praxisstandort"),
    ];
    let appointments_properties = vec![key_definition(
        ObjectKind::Appointments,
        "Ivoris-Terminschlüssel",
    )];
    ProvisionSpec {
        group_name: GROUP_NAME.into(),
        group_label: GROUP_LABEL.into(),
        properties: BTreeMap::from([
            (ObjectKind::Contacts, contacts),
            (ObjectKind::Deals, deals),
            (ObjectKind::Appointments, appointments_properties),
        ]),
        pipeline_label: if pipeline_label.is_empty() {
            DEFAULT_PIPELINE.into()
        } else {
            pipeline_label.into()
        },
        other_pipelines: Vec::new(),
        stage_labels: DEFAULT_STAGE_LABELS.iter().map(|s| (*s).into()).collect(),
        appointments,
    }
}

/// Whether appointment objects will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppointmentsStatus {
    /// Activated and provisioned.
    Enabled,
    /// `auto`, and the portal has not activated the object: skipped.
    SkippedNotEnabled,
    /// Switched off in the settings: skipped.
    SkippedOff,
}

/// What provisioning found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionReport {
    /// Property groups created, per object type.
    pub created_groups: Vec<ObjectKind>,
    /// Property groups that already existed.
    pub found_groups: Vec<ObjectKind>,
    /// Properties created, as (type, name).
    pub created_properties: Vec<(ObjectKind, String)>,
    /// Properties that already existed.
    pub found_properties: Vec<(ObjectKind, String)>,
    /// Id of the deal pipeline.
    pub pipeline_id: String,
    /// Stage label → stage id.
    pub stage_ids: BTreeMap<String, String>,
    /// The further pipelines of the spec, by label.
    pub other_pipelines: BTreeMap<String, ResolvedPipeline>,
    /// Whether appointments are written.
    pub appointments: AppointmentsStatus,
    /// Every closed stage (won or lost) of every deal pipeline, by id.
    pub closed_stages: BTreeSet<String>,
    /// Per pipeline id its lost stage (closed, probability 0), for every
    /// pipeline that has one — also pipelines the sync does not write to
    /// (the previous integration's).
    pub lost_stages: BTreeMap<String, String>,
    /// The names of every property the portal has, per type whose
    /// properties were read (not in a dry run, which only resolves).
    pub portal_properties: BTreeMap<ObjectKind, BTreeSet<String>>,
}

/// A further deal pipeline with its stage ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPipeline {
    /// Value of a deal's `pipeline`.
    pub id: String,
    /// Stage label → stage id.
    pub stage_ids: BTreeMap<String, String>,
}

impl ProvisionReport {
    /// The report as a later run that only found what this one created
    /// would have written it.
    pub fn as_found(mut self) -> ProvisionReport {
        self.found_groups.append(&mut self.created_groups);
        self.found_properties.append(&mut self.created_properties);
        self
    }

    /// Pipeline id and stage ids of `label`; `None` (the spec's pipeline)
    /// or a further pipeline of the spec.
    pub fn pipeline(&self, label: Option<&str>) -> Option<(&str, &BTreeMap<String, String>)> {
        match label {
            None => Some((&self.pipeline_id, &self.stage_ids)),
            Some(label) => self
                .other_pipelines
                .get(label)
                .map(|p| (p.id.as_str(), &p.stage_ids)),
        }
    }

    /// Every stage id this report resolved, with its label.
    pub fn all_stage_ids(&self) -> impl Iterator<Item = (&String, &String)> {
        self.stage_ids.iter().chain(
            self.other_pipelines
                .values()
                .flat_map(|p| p.stage_ids.iter()),
        )
    }

    /// Whether this run changed anything in the portal.
    pub fn created_anything(&self) -> bool {
        !self.created_groups.is_empty() || !self.created_properties.is_empty()
    }
}

/// Why provisioning stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProvisionError {
    /// A HubSpot call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A key property exists without unique values (cannot be changed).
    #[error("the property {property} on {kind:?} exists but does not have unique values")]
    KeyNotUnique {
        /// Object type.
        kind: ObjectKind,
        /// Property name.
        property: String,
    },
    /// No pipeline with the configured label.
    #[error("the deal pipeline '{label}' does not exist in HubSpot")]
    PipelineMissing {
        /// The label looked for.
        label: String,
    },
    /// A stage label is missing from the pipeline.
    #[error("the pipeline '{pipeline}' has no stage '{label}'")]
    StageMissing {
        /// The pipeline's label.
        pipeline: String,
        /// The stage label looked for.
        label: String,
    },
    /// Appointments are `on` but the portal has not activated them.
    #[error(
        "appointments are switched on, but the appointments object is not activated in HubSpot"
    )]
    AppointmentsNotEnabled,
}

impl ProvisionError {
    /// What happened and what to do, in German.
    pub fn explain_de(&self) -> String {
        match self {
            ProvisionError::Client(error) => error.explain_de(),
            ProvisionError::KeyNotUnique { kind, property } => format!(
                "Die HubSpot-Eigenschaft „{property}“ ({}) existiert, hat aber keine eindeutigen Werte. Das lässt sich nachträglich nicht ändern: Bitte die Eigenschaft in HubSpot löschen (oder umbenennen) und die Einrichtung erneut starten.",
                kind_de(*kind)
            ),
            ProvisionError::PipelineMissing { label } => format!(
                "Die Deal-Pipeline „{label}“ gibt es in HubSpot nicht. Bitte sie in HubSpot anlegen oder den richtigen Namen eintragen (Einstellungen bzw. Zuordnung › Standorte)."
            ),
            ProvisionError::StageMissing { pipeline, label } => format!(
                "Die Pipeline „{pipeline}“ hat keine Phase „{label}“. Bitte die Phase in HubSpot anlegen oder die Zuordnung der Phasen anpassen."
            ),
            ProvisionError::AppointmentsNotEnabled => "Termine sollen als HubSpot-Termine übertragen werden, aber das Terminobjekt ist im Portal nicht aktiviert. Bitte von einem Super-Admin in HubSpot aktivieren lassen oder die Einstellung auf „auto“ oder „aus“ stellen.".into(),
        }
    }

    /// What happened and what to do, in English.
    pub fn explain_en(&self) -> String {
        match self {
            ProvisionError::Client(error) => error.explain_en(),
            ProvisionError::KeyNotUnique { kind, property } => format!(
                "The HubSpot property '{property}' ({}) exists but does not have unique values. That cannot be changed afterwards: delete (or rename) the property in HubSpot and run the setup again.",
                kind_en(*kind)
            ),
            ProvisionError::PipelineMissing { label } => format!(
                "The deal pipeline '{label}' does not exist in HubSpot. Create it in HubSpot or enter the right name (settings or Mapping › Locations)."
            ),
            ProvisionError::StageMissing { pipeline, label } => format!(
                "The pipeline '{pipeline}' has no stage '{label}'. Create the stage in HubSpot or adjust the stage mapping."
            ),
            ProvisionError::AppointmentsNotEnabled => "Appointments are to be written as HubSpot appointments, but the appointments object is not activated in the portal. Have a super admin activate it in HubSpot, or set the option to 'auto' or 'off'.".into(),
        }
    }
}

fn kind_de(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Contacts => "Kontakte",
        ObjectKind::Deals => "Deals",
        ObjectKind::Appointments => "Termine",
    }
}

fn kind_en(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Contacts => "contacts",
        ObjectKind::Deals => "deals",
        ObjectKind::Appointments => "appointments",
    }
}

/// Sets the portal up as `spec` says; safe to run before every sync.
pub async fn provision(
    client: &HubSpotClient,
    spec: &ProvisionSpec,
) -> Result<ProvisionReport, ProvisionError> {
    let mut report = resolve(client, spec).await?;
    for (kind, definitions) in &spec.properties {
        if *kind == ObjectKind::Appointments && report.appointments != AppointmentsStatus::Enabled {
            continue;
        }
        provision_kind(client, spec, *kind, definitions, &mut report).await?;
    }
    tracing::info!(
        created_groups = report.created_groups.len(),
        created_properties = report.created_properties.len(),
        found_properties = report.found_properties.len(),
        "hubspot provisioned"
    );
    Ok(report)
}

/// Resolves pipeline, stages and the appointments object without changing
/// anything in the portal (dry runs).
pub async fn resolve(
    client: &HubSpotClient,
    spec: &ProvisionSpec,
) -> Result<ProvisionReport, ProvisionError> {
    let appointments = match spec.appointments {
        AppointmentsMode::Off => AppointmentsStatus::SkippedOff,
        mode => match (client.appointments_enabled().await?, mode) {
            (true, _) => AppointmentsStatus::Enabled,
            (false, AppointmentsMode::On) => return Err(ProvisionError::AppointmentsNotEnabled),
            (false, _) => AppointmentsStatus::SkippedNotEnabled,
        },
    };
    let mut report = ProvisionReport {
        created_groups: Vec::new(),
        found_groups: Vec::new(),
        created_properties: Vec::new(),
        found_properties: Vec::new(),
        pipeline_id: String::new(),
        stage_ids: BTreeMap::new(),
        other_pipelines: BTreeMap::new(),
        appointments,
        closed_stages: BTreeSet::new(),
        lost_stages: BTreeMap::new(),
        portal_properties: BTreeMap::new(),
    };

    // The pipelines first: a wrong label is found before anything is created.
    let pipelines = client.pipelines(ObjectKind::Deals).await?;
    report.closed_stages = pipelines
        .iter()
        .flat_map(|p| &p.stages)
        .filter(|stage| stage.is_closed())
        .map(|stage| stage.id.clone())
        .collect();
    report.lost_stages = pipelines
        .iter()
        .filter(|p| !p.archived)
        .filter_map(|p| Some((p.id.clone(), p.lost_stage()?.id.clone())))
        .collect();
    let (id, stage_ids) = resolve_pipeline(&pipelines, &spec.pipeline_label, &spec.stage_labels)?;
    report.pipeline_id = id;
    report.stage_ids = stage_ids;
    for label in &spec.other_pipelines {
        if *label == spec.pipeline_label || report.other_pipelines.contains_key(label) {
            continue;
        }
        let (id, stage_ids) = resolve_pipeline(&pipelines, label, &spec.stage_labels)?;
        report
            .other_pipelines
            .insert(label.clone(), ResolvedPipeline { id, stage_ids });
    }
    Ok(report)
}

/// The id of the active pipeline `label` and the ids of `stage_labels` in it.
fn resolve_pipeline(
    pipelines: &[Pipeline],
    label: &str,
    stage_labels: &[String],
) -> Result<(String, BTreeMap<String, String>), ProvisionError> {
    let pipeline = pipelines
        .iter()
        .find(|p| !p.archived && p.label == label)
        .ok_or_else(|| ProvisionError::PipelineMissing {
            label: label.to_owned(),
        })?;
    let mut stage_ids = BTreeMap::new();
    for stage_label in stage_labels {
        let stage = pipeline
            .stages
            .iter()
            .find(|s| !s.archived && &s.label == stage_label)
            .ok_or_else(|| ProvisionError::StageMissing {
                pipeline: pipeline.label.clone(),
                label: stage_label.clone(),
            })?;
        stage_ids.insert(stage_label.clone(), stage.id.clone());
    }
    Ok((pipeline.id.clone(), stage_ids))
}

async fn provision_kind(
    client: &HubSpotClient,
    spec: &ProvisionSpec,
    kind: ObjectKind,
    definitions: &[PropertyDefinition],
    report: &mut ProvisionReport,
) -> Result<(), ProvisionError> {
    let existing: BTreeMap<String, Property> = client
        .properties(kind)
        .await?
        .into_iter()
        .filter(|p| !p.archived)
        .map(|p| (p.name.clone(), p))
        .collect();
    report
        .portal_properties
        .insert(kind, existing.keys().cloned().collect());
    // Key properties are checked before anything is created for this type.
    for definition in definitions.iter().filter(|d| d.has_unique_value) {
        if let Some(property) = existing.get(&definition.name)
            && !property.has_unique_value
        {
            return Err(ProvisionError::KeyNotUnique {
                kind,
                property: definition.name.clone(),
            });
        }
    }
    let groups = client.property_groups(kind).await?;
    if groups.iter().any(|g| g.name == spec.group_name) {
        report.found_groups.push(kind);
    } else {
        match client
            .create_property_group(kind, &spec.group_name, &spec.group_label)
            .await
        {
            Ok(()) => report.created_groups.push(kind),
            Err(ClientError::Conflict { .. }) => report.found_groups.push(kind),
            Err(error) => return Err(error.into()),
        }
    }
    let mut missing = Vec::new();
    for definition in definitions {
        if existing.contains_key(&definition.name) {
            report
                .found_properties
                .push((kind, definition.name.clone()));
        } else {
            missing.push(PropertyDefinition {
                group_name: spec.group_name.clone(),
                ..definition.clone()
            });
        }
    }
    // Independent of each other: created together (the client's limiter
    // spaces them), answers taken in the order of the definitions.
    let created = futures_util::future::join_all(
        missing
            .iter()
            .map(|definition| client.create_property(kind, definition)),
    )
    .await;
    for (definition, answer) in missing.iter().zip(created) {
        match answer {
            Ok(_) => report
                .created_properties
                .push((kind, definition.name.clone())),
            Err(ClientError::Conflict { .. }) => report
                .found_properties
                .push((kind, definition.name.clone())),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_has_snake_case_names_and_german_labels() {
        let spec = default_spec("", AppointmentsMode::Auto);
        assert_eq!(spec.pipeline_label, "Patientenreise");
        let deals = &spec.properties[&ObjectKind::Deals];
        assert!(deals.iter().any(|p| p.name == "umsatz_kieferorthopaedie"
            && p.label == "Umsatz Kieferorthopädie/Aligner"));
        for definitions in spec.properties.values() {
            for p in definitions {
                assert!(
                    p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{}",
                    p.name
                );
            }
            assert_eq!(definitions.iter().filter(|p| p.has_unique_value).count(), 1);
        }
    }
}
