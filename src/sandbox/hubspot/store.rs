//! The portal's data: records per object type with their unique-value hash
//! indexes, property definitions, associations and pipelines, and every
//! write rule (validation, uniqueness, merge). No HTTP here; the routes
//! parse requests and call these functions under one lock.
//!
//! Unique values are enforced on every path that changes a record through
//! one function (`check_unique`), backed by a hash index per
//! (type, unique property): no write scans the records.
//!
//! Search visibility: each record keeps the versions written within the
//! index lag, so search sees a write only once the lag has passed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::{PropertyProblem, SimError};
use super::model::{
    ObjectType, Pipeline, PropertyDef, PropertyGroup, association_type_id, seeded_groups,
    seeded_pipelines, seeded_properties,
};

/// Property values of one record version.
pub type Props = HashMap<String, String>;

/// The time a write happens at, and the index lag in force.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Simulated monotonic time: orders versions for the index lag.
    pub instant: Instant,
    /// Simulated wall time: `createdAt`, `updatedAt`, date properties.
    pub wall: DateTime<Utc>,
    /// Index lag in force for this write or search.
    pub lag: Duration,
}

/// HubSpot's timestamp format (`2026-03-01T10:00:00.000Z`).
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One CRM record.
#[derive(Debug, Clone)]
pub struct Record {
    /// HubSpot's record id (`hs_object_id`).
    pub id: u64,
    /// Current values, including the system properties (`hs_object_id`, dates).
    pub props: Arc<Props>,
    /// Earlier values per property, newest first, for `propertiesWithHistory`.
    pub history: HashMap<String, Vec<(String, DateTime<Utc>)>>,
    /// `createdAt`.
    pub created_at: DateTime<Utc>,
    /// `updatedAt` (also the archive time of archived records).
    pub updated_at: DateTime<Utc>,
    /// In the recycle bin: out of lists, search and unique indexes.
    pub archived: bool,
    /// Versions as search will see them: (written at, values or `None` when
    /// archived). The last entry is the current version; older entries are
    /// dropped once a newer one is visible.
    pub indexed: Vec<(Instant, Option<Arc<Props>>)>,
}

/// How many earlier values per property are kept for history reads.
const HISTORY_DEPTH: usize = 20;

impl Record {
    /// The version search sees at `now`.
    pub fn visible(&self, now: Instant, lag: Duration) -> Option<&Arc<Props>> {
        self.indexed
            .iter()
            .rev()
            .find(|(at, _)| at.checked_add(lag).is_some_and(|seen| seen <= now))
            .and_then(|(_, props)| props.as_ref())
    }

    fn push_version(&mut self, now: &Now) {
        let version = if self.archived {
            None
        } else {
            Some(self.props.clone())
        };
        self.indexed.push((now.instant, version));
        while self.indexed.len() > 1
            && self.indexed[1]
                .0
                .checked_add(now.lag)
                .is_some_and(|seen| seen <= now.instant)
        {
            self.indexed.remove(0);
        }
    }
}

/// How reads render the values records hold. A real portal need not give
/// a value back as it was written (HubSpot keeps numbers and dates typed):
/// a test switches to [`ValueNotation::Rendered`] to check that a client
/// compares values as values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueNotation {
    /// Every value as written (the default).
    #[default]
    AsWritten,
    /// `number` properties with one trailing zero more (`171.50` →
    /// `171.500`, `42` → `42.0`), `date` properties as epoch milliseconds,
    /// `datetime` properties as ISO 8601 with milliseconds
    /// (`2024-01-02T00:00:00.000Z`). Text stays as written.
    Rendered,
}

/// Everything about one object type.
#[derive(Debug)]
pub struct TypeStore {
    /// The type this store holds (for messages and type-specific rules).
    pub object_type: ObjectType,
    /// Records by id; ordered so listing pages by id cursor.
    pub records: BTreeMap<u64, Record>,
    /// Property definitions in display order.
    pub properties: Vec<PropertyDef>,
    /// Position of each property in `properties`.
    property_index: HashMap<String, usize>,
    /// Property groups; a property must name one of them.
    pub groups: Vec<PropertyGroup>,
    /// Unique property → normalised value → id of the (live) record holding it.
    unique: HashMap<String, HashMap<String, u64>>,
    /// Ids merged away → the id they were merged into.
    pub merged: HashMap<u64, u64>,
    /// How reads render values.
    pub notation: ValueNotation,
}

impl TypeStore {
    fn new(object_type: ObjectType) -> TypeStore {
        let mut store = TypeStore {
            object_type,
            records: BTreeMap::new(),
            properties: Vec::new(),
            property_index: HashMap::new(),
            groups: seeded_groups(object_type),
            unique: HashMap::new(),
            merged: HashMap::new(),
            notation: ValueNotation::AsWritten,
        };
        for property in seeded_properties(object_type) {
            store.add_property(property);
        }
        store
    }

    /// A value as a read gives it back (see [`ValueNotation`]).
    pub fn render(&self, name: &str, value: &str) -> String {
        let kind = match (self.notation, self.property(name)) {
            (ValueNotation::Rendered, Some(property))
                if !value.trim().is_empty() && !property.is_read_only() =>
            {
                property.kind.as_str()
            }
            _ => return value.to_owned(),
        };
        match kind {
            "number" if value.contains('.') => format!("{value}0"),
            "number" => format!("{value}.0"),
            "date" => parse_time_ms(value).map_or_else(|| value.to_owned(), |ms| ms.to_string()),
            "datetime" => parse_time_ms(value)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or_else(
                    || value.to_owned(),
                    |time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                ),
            _ => value.to_owned(),
        }
    }

    pub fn property(&self, name: &str) -> Option<&PropertyDef> {
        self.property_index
            .get(name)
            .and_then(|index| self.properties.get(*index))
    }

    pub fn add_property(&mut self, property: PropertyDef) {
        if self.is_unique(&property) {
            self.unique.entry(property.name.clone()).or_default();
        }
        self.property_index
            .insert(property.name.clone(), self.properties.len());
        self.properties.push(property);
    }

    pub fn property_mut(&mut self, name: &str) -> Option<&mut PropertyDef> {
        let index = *self.property_index.get(name)?;
        self.properties.get_mut(index)
    }

    /// Whether the property's values are indexed as unique: `hasUniqueValue`
    /// properties, and contacts' e-mail.
    fn is_unique(&self, property: &PropertyDef) -> bool {
        property.has_unique_value
            || (self.object_type == ObjectType::Contacts && property.name == "email")
    }

    /// Whether `name` may serve as `idProperty` of upserts and batch reads.
    pub fn is_unique_name(&self, name: &str) -> bool {
        self.unique.contains_key(name)
    }

    pub fn unique_count(&self) -> usize {
        self.properties
            .iter()
            .filter(|p| p.has_unique_value)
            .count()
    }

    fn normalise(&self, property: &str, value: &str) -> String {
        if property == "email" {
            value.trim().to_lowercase()
        } else {
            value.to_string()
        }
    }

    /// The live record holding `value` of a unique property.
    pub fn lookup_unique(&self, property: &str, value: &str) -> Option<u64> {
        let key = self.normalise(property, value);
        self.unique.get(property)?.get(&key).copied()
    }

    /// Follows merges, so a merged-away id answers as the record it went into.
    pub fn resolve(&self, id: u64) -> u64 {
        let mut current = id;
        for _ in 0..64 {
            match self.merged.get(&current) {
                Some(next) => current = *next,
                None => break,
            }
        }
        current
    }

    /// A live (not archived) record by id, following merges.
    pub fn live(&self, raw_id: &str) -> Option<&Record> {
        let id = raw_id.parse::<u64>().ok()?;
        self.records
            .get(&self.resolve(id))
            .filter(|record| !record.archived)
    }

    /// Refuses values that another record already holds. `staged` carries
    /// values claimed earlier in the same all-or-nothing batch.
    pub fn check_unique(
        &self,
        target: Option<u64>,
        props: &Props,
        staged: Option<&HashMap<(String, String), usize>>,
    ) -> Result<(), SimError> {
        for (name, value) in props {
            if value.is_empty() {
                continue;
            }
            let Some(index) = self.unique.get(name) else {
                continue;
            };
            let key = self.normalise(name, value);
            if let Some(existing) = index.get(&key)
                && Some(*existing) != target
            {
                return Err(SimError::unique_conflict(self.object_type, name, *existing));
            }
            if let Some(staged) = staged
                && staged.contains_key(&(name.clone(), key))
            {
                return Err(SimError::validation(format!(
                    "Duplicate value for unique property '{name}' within the batch input."
                ))
                .with_context("propertyName", vec![name.clone()]));
            }
        }
        Ok(())
    }

    /// Records the unique values of `props` in `staged` (all-or-nothing batches).
    pub fn stage_unique(
        &self,
        props: &Props,
        staged: &mut HashMap<(String, String), usize>,
        input: usize,
    ) {
        for (name, value) in props {
            if !value.is_empty() && self.unique.contains_key(name) {
                staged.insert((name.clone(), self.normalise(name, value)), input);
            }
        }
    }

    fn index_record(&mut self, id: u64, props: &Props) {
        for (name, index) in self.unique.iter_mut() {
            if let Some(value) = props.get(name)
                && !value.is_empty()
            {
                let key = if name == "email" {
                    value.trim().to_lowercase()
                } else {
                    value.clone()
                };
                index.insert(key, id);
            }
        }
    }

    fn unindex_record(&mut self, id: u64, props: &Props) {
        for (name, index) in self.unique.iter_mut() {
            if let Some(value) = props.get(name) {
                let key = if name == "email" {
                    value.trim().to_lowercase()
                } else {
                    value.clone()
                };
                if index.get(&key) == Some(&id) {
                    index.remove(&key);
                }
            }
        }
    }

    /// Checks names, read-only flags and value formats of incoming values.
    /// `current` is the record's current values (for pipeline/stage pairs).
    pub fn validate(
        &self,
        props: &Props,
        current: Option<&Props>,
        pipelines: &[Pipeline],
    ) -> Result<(), SimError> {
        let mut problems = Vec::new();
        for (name, value) in props {
            let Some(property) = self.property(name) else {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "PROPERTY_DOESNT_EXIST",
                    message: format!("Property \"{name}\" does not exist"),
                });
                continue;
            };
            if property.is_read_only() {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code: "READ_ONLY_VALUE",
                    message: format!("{name} is a read only property; its value cannot be set."),
                });
                continue;
            }
            if value.is_empty() {
                continue;
            }
            if let Err((code, message)) = check_format(property, value) {
                problems.push(PropertyProblem {
                    name: name.clone(),
                    code,
                    message,
                });
            }
        }
        if self.object_type == ObjectType::Deals {
            check_pipeline(props, current, pipelines, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SimError::invalid_properties(problems))
        }
    }
}

/// Value formats HubSpot enforces per property type.
fn check_format(property: &PropertyDef, value: &str) -> Result<(), (&'static str, String)> {
    match property.kind.as_str() {
        "number" if value.trim().parse::<f64>().is_err() => {
            Err(("INVALID_FLOAT", format!("{value} was not a valid number.")))
        }
        "date" | "datetime" if parse_time_ms(value).is_none() => Err((
            "INVALID_DATE",
            format!("{value} was not a valid long or ISO 8601 date string."),
        )),
        "date" => match parse_time_ms(value) {
            Some(ms) if ms.rem_euclid(86_400_000) != 0 => Err((
                "INVALID_DATE",
                format!("{value} is not at midnight UTC, as a date property requires."),
            )),
            _ => Ok(()),
        },
        "bool" if !matches!(value, "true" | "false") => Err((
            "INVALID_BOOLEAN",
            format!("{value} was not a valid boolean."),
        )),
        "enumeration" if !property.external_options && !property.options.is_empty() => {
            let allowed: HashSet<&str> =
                property.options.iter().map(|o| o.value.as_str()).collect();
            let values: Vec<&str> = if property.field_type == "checkbox" {
                value.split(';').collect()
            } else {
                vec![value]
            };
            match values.iter().find(|v| !allowed.contains(*v)) {
                Some(bad) => Err((
                    "INVALID_OPTION",
                    format!(
                        "{bad} was not one of the allowed options: [{}]",
                        property
                            .options
                            .iter()
                            .map(|o| o.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Deals: `pipeline` must exist and `dealstage` must belong to the deal's pipeline.
fn check_pipeline(
    props: &Props,
    current: Option<&Props>,
    pipelines: &[Pipeline],
    problems: &mut Vec<PropertyProblem>,
) {
    let pipeline_id = props
        .get("pipeline")
        .filter(|v| !v.is_empty())
        .or_else(|| {
            current
                .and_then(|c| c.get("pipeline"))
                .filter(|v| !v.is_empty())
        })
        .map(String::as_str)
        .unwrap_or("default");
    let Some(pipeline) = pipelines.iter().find(|p| p.id == pipeline_id) else {
        problems.push(PropertyProblem {
            name: "pipeline".into(),
            code: "INVALID_OPTION",
            message: format!("{pipeline_id} was not one of the allowed options"),
        });
        return;
    };
    if let Some(stage) = props.get("dealstage").filter(|v| !v.is_empty())
        && !pipeline.stages.iter().any(|s| &s.id == stage)
    {
        problems.push(PropertyProblem {
            name: "dealstage".into(),
            code: "INVALID_OPTION",
            message: format!(
                "{stage} was not one of the allowed options: [{}]",
                pipeline
                    .stages
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
}

/// Epoch milliseconds of an ISO date, ISO date-time or epoch-ms string.
pub fn parse_time_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Some(time.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp_millis())
}

/// A record as the state dump shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSnapshot {
    /// Record id.
    pub id: String,
    /// Current values, system properties included.
    pub properties: BTreeMap<String, String>,
    /// `createdAt` in HubSpot's format.
    pub created_at: String,
    /// `updatedAt` in HubSpot's format.
    pub updated_at: String,
    /// Whether it sits in the recycle bin.
    pub archived: bool,
    /// Associated ids per object type name.
    pub associations: BTreeMap<String, Vec<String>>,
}

/// The whole portal as `GET /_sandbox/state` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Records per object type name, by id.
    pub objects: BTreeMap<String, Vec<RecordSnapshot>>,
    /// Merged-away id → surviving id, per object type name.
    pub merged: BTreeMap<String, BTreeMap<String, String>>,
    /// Property definitions per object type name.
    pub properties: BTreeMap<String, Vec<PropertyDef>>,
}

/// One endpoint of an association.
pub type ObjectRef = (ObjectType, u64);

/// The whole portal.
#[derive(Debug)]
pub struct Store {
    /// Per object type, indexed by `ObjectType::index`.
    pub types: [TypeStore; 3],
    /// Both directions of every association.
    pub associations: HashMap<ObjectRef, BTreeSet<ObjectRef>>,
    /// Deal pipelines; `pipeline` and `dealstage` values are checked against them.
    pub pipelines: Vec<Pipeline>,
    /// Next record id (shared by all types, like HubSpot's large ids).
    next_id: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            types: ObjectType::ALL.map(TypeStore::new),
            associations: HashMap::new(),
            pipelines: seeded_pipelines(),
            next_id: 1_001,
        }
    }

    /// An id for a further pipeline, numeric like HubSpot's.
    pub fn next_pipeline_id(&mut self) -> String {
        self.next_id += 1;
        format!("9{}", self.next_id)
    }

    pub fn of(&self, object_type: ObjectType) -> &TypeStore {
        &self.types[object_type.index()]
    }

    pub fn of_mut(&mut self, object_type: ObjectType) -> &mut TypeStore {
        &mut self.types[object_type.index()]
    }

    /// Validates values and uniqueness, then creates one record.
    pub fn create(
        &mut self,
        object_type: ObjectType,
        props: Props,
        now: &Now,
    ) -> Result<u64, SimError> {
        let store = self.of(object_type);
        store.validate(&props, None, &self.pipelines)?;
        store.check_unique(None, &props, None)?;
        Ok(self.create_unchecked(object_type, props, now))
    }

    /// Creates a record whose values were already validated.
    pub fn create_unchecked(
        &mut self,
        object_type: ObjectType,
        mut props: Props,
        now: &Now,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        props.retain(|_, value| !value.is_empty());
        let stamp = format_time(now.wall);
        props.insert("hs_object_id".into(), id.to_string());
        props.insert(object_type.created_property().into(), stamp.clone());
        for name in object_type.modified_properties() {
            props.insert((*name).into(), stamp.clone());
        }
        let store = self.of_mut(object_type);
        store.index_record(id, &props);
        let mut history = HashMap::new();
        for (name, value) in &props {
            history.insert(name.clone(), vec![(value.clone(), now.wall)]);
        }
        let mut record = Record {
            id,
            props: Arc::new(props),
            history,
            created_at: now.wall,
            updated_at: now.wall,
            archived: false,
            indexed: Vec::new(),
        };
        record.push_version(now);
        store.records.insert(id, record);
        id
    }

    /// Validates and updates one live record (merged ids resolve to the primary).
    pub fn update(
        &mut self,
        object_type: ObjectType,
        raw_id: &str,
        props: Props,
        now: &Now,
    ) -> Result<u64, SimError> {
        let store = self.of(object_type);
        let record = store
            .live(raw_id)
            .ok_or_else(|| SimError::object_not_found(raw_id))?;
        let id = record.id;
        store.validate(&props, Some(&record.props), &self.pipelines)?;
        store.check_unique(Some(id), &props, None)?;
        self.update_unchecked(object_type, id, props, now);
        Ok(id)
    }

    /// Applies already-validated values to a record; empty strings clear.
    pub fn update_unchecked(&mut self, object_type: ObjectType, id: u64, props: Props, now: &Now) {
        let store = self.of_mut(object_type);
        let Some(record) = store.records.get(&id) else {
            return;
        };
        let old = record.props.clone();
        store.unindex_record(id, &old);
        let mut next: Props = (*old).clone();
        let mut changed = Vec::new();
        for (name, value) in props {
            if next.get(&name) == Some(&value) || (value.is_empty() && !next.contains_key(&name)) {
                continue;
            }
            if value.is_empty() {
                next.remove(&name);
            } else {
                next.insert(name.clone(), value.clone());
            }
            changed.push((name, value));
        }
        let stamp = format_time(now.wall);
        for name in object_type.modified_properties() {
            next.insert((*name).into(), stamp.clone());
        }
        store.index_record(id, &next);
        if let Some(record) = store.records.get_mut(&id) {
            for (name, value) in changed {
                let entries = record.history.entry(name).or_default();
                entries.insert(0, (value, now.wall));
                entries.truncate(HISTORY_DEPTH);
            }
            record.props = Arc::new(next);
            record.updated_at = now.wall;
            record.push_version(now);
        }
    }

    /// Archives a record (HubSpot's recycle bin): it leaves lists, search and
    /// the unique indexes. Unknown ids are fine, as in HubSpot (204 anyway).
    pub fn archive(&mut self, object_type: ObjectType, raw_id: &str, now: &Now) {
        let store = self.of_mut(object_type);
        let Some(id) = raw_id.parse::<u64>().ok().map(|id| store.resolve(id)) else {
            return;
        };
        let Some(record) = store.records.get(&id) else {
            return;
        };
        if record.archived {
            return;
        }
        let props = record.props.clone();
        store.unindex_record(id, &props);
        if let Some(record) = store.records.get_mut(&id) {
            record.archived = true;
            record.updated_at = now.wall;
            record.push_version(now);
        }
    }

    /// Removes a contact for good (GDPR), with its associations.
    pub fn purge(&mut self, object_type: ObjectType, id: u64) -> bool {
        let store = self.of_mut(object_type);
        let Some(record) = store.records.remove(&id) else {
            return false;
        };
        store.unindex_record(id, &record.props);
        store.merged.retain(|_, target| *target != id);
        self.drop_associations((object_type, id));
        true
    }

    fn drop_associations(&mut self, node: ObjectRef) {
        if let Some(links) = self.associations.remove(&node) {
            for other in links {
                if let Some(back) = self.associations.get_mut(&other) {
                    back.remove(&node);
                }
            }
        }
    }

    /// Merges `secondary` into `primary`: the primary keeps its id and values,
    /// takes the secondary's values where it has none, and inherits its
    /// associations; the secondary id then answers as the primary.
    pub fn merge(
        &mut self,
        object_type: ObjectType,
        primary_raw: &str,
        secondary_raw: &str,
        now: &Now,
    ) -> Result<u64, SimError> {
        let store = self.of(object_type);
        let primary = store
            .live(primary_raw)
            .ok_or_else(|| SimError::object_not_found(primary_raw))?
            .id;
        let secondary = store
            .live(secondary_raw)
            .ok_or_else(|| SimError::object_not_found(secondary_raw))?
            .id;
        if primary == secondary {
            return Err(SimError::validation("Cannot merge an object with itself."));
        }
        let primary_props = store
            .records
            .get(&primary)
            .map(|r| r.props.clone())
            .unwrap_or_default();
        let secondary_props = store
            .records
            .get(&secondary)
            .map(|r| r.props.clone())
            .unwrap_or_default();
        let mut taken = Props::new();
        for (name, value) in secondary_props.iter() {
            let system = store.property(name).is_none_or(|p| p.is_read_only());
            if !system && !primary_props.contains_key(name) {
                taken.insert(name.clone(), value.clone());
            }
        }
        let mut merged_ids: Vec<String> = primary_props
            .get("hs_merged_object_ids")
            .map(|ids| ids.split(';').map(str::to_string).collect())
            .unwrap_or_default();
        merged_ids.push(secondary.to_string());
        if let Some(ids) = secondary_props.get("hs_merged_object_ids") {
            merged_ids.extend(ids.split(';').map(str::to_string));
        }

        let store = self.of_mut(object_type);
        if let Some(record) = store.records.remove(&secondary) {
            store.unindex_record(secondary, &record.props);
        }
        store.merged.insert(secondary, primary);
        taken.insert("hs_merged_object_ids".into(), merged_ids.join(";"));
        self.update_unchecked(object_type, primary, taken, now);

        let secondary_node = (object_type, secondary);
        let primary_node = (object_type, primary);
        if let Some(links) = self.associations.remove(&secondary_node) {
            for other in links {
                if let Some(back) = self.associations.get_mut(&other) {
                    back.remove(&secondary_node);
                }
                if other != primary_node {
                    self.link(primary_node, other);
                }
            }
        }
        Ok(primary)
    }

    /// Associates two records both ways; `false` when they already were.
    pub fn link(&mut self, a: ObjectRef, b: ObjectRef) -> bool {
        let new = self.associations.entry(a).or_default().insert(b);
        self.associations.entry(b).or_default().insert(a);
        new
    }

    pub fn unlink(&mut self, a: ObjectRef, b: ObjectRef) {
        if let Some(links) = self.associations.get_mut(&a) {
            links.remove(&b);
        }
        if let Some(links) = self.associations.get_mut(&b) {
            links.remove(&a);
        }
    }

    /// Live records of `to` associated with `from`.
    pub fn associated(&self, from: ObjectRef, to: ObjectType) -> Vec<u64> {
        self.associations
            .get(&from)
            .map(|links| {
                links
                    .iter()
                    .filter(|(kind, id)| {
                        *kind == to
                            && self
                                .of(to)
                                .records
                                .get(id)
                                .is_some_and(|record| !record.archived)
                    })
                    .map(|(_, id)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The association's type spec in v4's wire form.
    pub fn association_types(from: ObjectType, to: ObjectType) -> Value {
        json!([{
            "category": "HUBSPOT_DEFINED",
            "typeId": association_type_id(from, to).unwrap_or(0),
            "label": Value::Null,
        }])
    }

    /// Every record of one type (archived ones included), by id.
    pub fn records_snapshot(&self, object_type: ObjectType) -> Vec<RecordSnapshot> {
        self.of(object_type)
            .records
            .values()
            .map(|record| {
                let mut associations: BTreeMap<String, Vec<String>> = BTreeMap::new();
                if let Some(links) = self.associations.get(&(object_type, record.id)) {
                    for (kind, id) in links {
                        associations
                            .entry(kind.name().to_string())
                            .or_default()
                            .push(id.to_string());
                    }
                }
                RecordSnapshot {
                    id: record.id.to_string(),
                    properties: record
                        .props
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    created_at: format_time(record.created_at),
                    updated_at: format_time(record.updated_at),
                    archived: record.archived,
                    associations,
                }
            })
            .collect()
    }

    pub fn snapshot(&self) -> StateSnapshot {
        let mut objects = BTreeMap::new();
        let mut merged = BTreeMap::new();
        let mut properties = BTreeMap::new();
        for store in &self.types {
            let object_type = store.object_type;
            let records = self.records_snapshot(object_type);
            objects.insert(object_type.name().to_string(), records);
            merged.insert(
                object_type.name().to_string(),
                store
                    .merged
                    .iter()
                    .map(|(from, to)| (from.to_string(), to.to_string()))
                    .collect(),
            );
            properties.insert(object_type.name().to_string(), store.properties.clone());
        }
        StateSnapshot {
            objects,
            merged,
            properties,
        }
    }
}

/// Which properties a record's JSON carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every value the record has (write responses).
    All,
    /// HubSpot's default set for the type.
    Default,
    /// The named ones; unset ones appear as `null`, unknown ones are left out.
    Named(Vec<String>),
}

impl Selection {
    /// From a `properties` list: empty means the defaults.
    pub fn from_names(names: Vec<String>) -> Selection {
        if names.is_empty() {
            Selection::Default
        } else {
            Selection::Named(names)
        }
    }
}

/// A record in HubSpot's `SimplePublicObject` shape.
pub fn record_json(
    store: &TypeStore,
    record: &Record,
    selection: &Selection,
    history: &[String],
) -> Value {
    props_json(store, record.id, &record.props, record, selection, history)
}

/// Like `record_json` but with the given values (search sees an older version).
pub fn props_json(
    store: &TypeStore,
    id: u64,
    props: &Props,
    record: &Record,
    selection: &Selection,
    history: &[String],
) -> Value {
    let mut properties = Map::new();
    let value = |name: &str| json!(props.get(name).map(|v| store.render(name, v)));
    match selection {
        Selection::All => {
            for (name, written) in props {
                properties.insert(name.clone(), json!(store.render(name, written)));
            }
        }
        Selection::Default => {
            for name in store.object_type.default_read_properties() {
                properties.insert((*name).to_string(), value(name));
            }
        }
        Selection::Named(names) => {
            for name in names {
                if store.property(name).is_some() {
                    properties.insert(name.clone(), value(name));
                }
            }
            for name in [
                "hs_object_id",
                store.object_type.created_property(),
                store.object_type.modified_property(),
            ] {
                properties.insert(name.to_string(), json!(props.get(name)));
            }
        }
    }
    let mut object = json!({
        "id": id.to_string(),
        "properties": properties,
        "createdAt": format_time(record.created_at),
        "updatedAt": format_time(record.updated_at),
        "archived": record.archived,
    });
    if record.archived
        && let Some(map) = object.as_object_mut()
    {
        map.insert("archivedAt".into(), json!(format_time(record.updated_at)));
    }
    if !history.is_empty()
        && let Some(map) = object.as_object_mut()
    {
        let mut with_history = Map::new();
        for name in history {
            if store.property(name).is_none() {
                continue;
            }
            let entries: Vec<Value> = record
                .history
                .get(name)
                .map(|entries| {
                    entries
                        .iter()
                        .map(|(value, at)| {
                            json!({
                                "value": value,
                                "timestamp": format_time(*at),
                                "sourceType": "INTEGRATION",
                                "sourceId": "sandbox",
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            with_history.insert(name.clone(), Value::Array(entries));
        }
        map.insert("propertiesWithHistory".into(), Value::Object(with_history));
    }
    object
}
