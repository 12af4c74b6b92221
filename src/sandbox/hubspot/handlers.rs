//! One function per endpoint: parse the body, apply it to the store, build
//! HubSpot's response. They run under the store lock and never await.
//!
//! Batch semantics: when every input carries a distinct
//! `objectWriteTraceId`, inputs succeed or fail one by one and failures
//! come back in a 207; otherwise the whole call is checked first and one bad
//! input refuses it without changing anything. In the whole-call mode
//! ([`BatchFailures::WholeCall`](crate::sandbox::BatchFailures)) batch
//! upserts and updates ignore trace ids and always take the second way.
//!
//! The private `*Input` structs mirror HubSpot's request schemas field by
//! field (camelCase on the wire); unknown fields are ignored as HubSpot does.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::SimError;
use super::model::{
    FIELD_TYPES, ModificationMetadata, ObjectType, PROPERTY_TYPES, PropertyDef, PropertyGroup,
    PropertyOption, association_type_id, field_type_fits, pipeline_json,
};
use super::search::{SearchRequest, search};
use super::store::{Now, Props, Selection, Store, format_time, record_json};

/// A successful answer: status and optional JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status (200, 201, 204, 207).
    pub status: u16,
    /// JSON body; `None` for 204.
    pub body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
        }
    }

    fn empty() -> Reply {
        Reply {
            status: 204,
            body: None,
        }
    }
}

pub type Handled = Result<Reply, SimError>;

/// Query parameters in order (repeated names allowed).
pub type Query = Vec<(String, String)>;

pub fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A list parameter, given comma-separated or repeated.
pub fn list_param(query: &Query, name: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(key, _)| key == name)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a JSON body with HubSpot's error for malformed input.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SimError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SimError::validation(
            "Invalid input JSON on line 1, column 1: No content to map due to end-of-input",
        ));
    }
    // Every endpoint takes an object; serde would also read a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(SimError::validation(
            "Invalid input JSON on line 1, column 1: expected a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        SimError::validation(format!(
            "Invalid input JSON on line {}, column {}: {error}",
            error.line(),
            error.column()
        ))
    })
}

/// Property values arrive as strings; like HubSpot's JSON mapper, numbers
/// and booleans are taken as their text and `null` clears. Objects and
/// arrays are refused.
fn coerce(raw: HashMap<String, Value>) -> Result<Props, SimError> {
    let mut props = Props::with_capacity(raw.len());
    for (name, value) in raw {
        let text = match value {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Null => String::new(),
            Value::Array(_) | Value::Object(_) => {
                return Err(SimError::validation(format!(
                    "Invalid input JSON: the value of property '{name}' must be a string."
                )));
            }
        };
        props.insert(name, text);
    }
    Ok(props)
}

fn batch_body(results: Vec<Value>, errors: Vec<Value>, now: &Now) -> Value {
    let stamp = format_time(now.wall);
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": stamp,
        "completedAt": stamp,
    });
    if !errors.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("numErrors".into(), json!(errors.len()));
        map.insert("errors".into(), Value::Array(errors));
    }
    body
}

fn check_batch_size(count: usize, max: usize) -> Result<(), SimError> {
    if count > max {
        return Err(SimError::validation(format!(
            "Batch input size of {count} exceeds the maximum of {max}."
        ))
        .with_sub_category("BATCH_LIMIT_EXCEEDED"));
    }
    Ok(())
}

/// True when every input has its own `objectWriteTraceId` (207 mode).
fn multi_status(traces: &[Option<String>]) -> bool {
    let mut seen = HashSet::new();
    !traces.is_empty()
        && traces
            .iter()
            .all(|trace| trace.as_ref().is_some_and(|t| seen.insert(t.clone())))
}

fn with_trace(error: SimError, trace: &Option<String>) -> Value {
    match trace {
        Some(trace) => error
            .with_context("objectWriteTraceId", vec![trace.clone()])
            .batch_entry(),
        None => error.batch_entry(),
    }
}

/// An association given on create.
#[derive(Debug, Deserialize)]
struct AssociationOnCreate {
    to: IdRef,
    #[serde(default)]
    types: Vec<AssociationSpecInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationSpecInput {
    #[serde(default)]
    association_type_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct IdRef {
    id: Value,
}

impl IdRef {
    fn text(&self) -> String {
        match &self.id {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    #[serde(default)]
    properties: HashMap<String, Value>,
    #[serde(default)]
    associations: Vec<AssociationOnCreate>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: HashMap<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Inputs<T> {
    inputs: Vec<T>,
}

fn id_text(id: &Option<Value>) -> String {
    match id {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Resolves association targets of a create to (type, id) pairs.
fn association_targets(
    store: &Store,
    from: ObjectType,
    associations: &[AssociationOnCreate],
) -> Result<Vec<(ObjectType, u64)>, SimError> {
    let mut targets = Vec::new();
    for association in associations {
        let type_id = association
            .types
            .first()
            .and_then(|t| t.association_type_id)
            .unwrap_or(0);
        let to = ObjectType::ALL
            .into_iter()
            .find(|to| association_type_id(from, *to) == Some(type_id))
            .ok_or_else(|| {
                SimError::validation(format!(
                    "Association type id {type_id} is not valid from {}.",
                    from.name()
                ))
            })?;
        let raw = association.to.text();
        let id = store.of(to).live(&raw).map(|r| r.id).ok_or_else(|| {
            SimError::validation(format!("Association target {raw} does not exist."))
        })?;
        targets.push((to, id));
    }
    Ok(targets)
}

pub fn create(store: &mut Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let input: CreateInput = parse_json(body)?;
    let props = coerce(input.properties)?;
    let targets = association_targets(store, ty, &input.associations)?;
    let id = store.create(ty, props, now)?;
    for target in targets {
        store.link((ty, id), target);
    }
    let types = store.of(ty);
    let record = types
        .records
        .get(&id)
        .ok_or_else(|| SimError::object_not_found(&id.to_string()))?;
    Ok(Reply::json(
        201,
        record_json(types, record, &Selection::All, &[]),
    ))
}

/// Finds a record by id or by a unique `idProperty` value.
fn find(
    store: &Store,
    ty: ObjectType,
    raw: &str,
    id_property: Option<&str>,
) -> Result<u64, SimError> {
    let types = store.of(ty);
    match id_property.filter(|p| *p != "hs_object_id") {
        Some(property) => {
            if !types.is_unique_name(property) {
                return Err(SimError::validation(format!(
                    "{property} is not a unique property and cannot be used as idProperty."
                )));
            }
            types
                .lookup_unique(property, raw)
                .ok_or_else(|| SimError::object_not_found(raw))
        }
        None => types
            .live(raw)
            .map(|r| r.id)
            .ok_or_else(|| SimError::object_not_found(raw)),
    }
}

/// `associations=deals,…` on reads: HubSpot's `associations` map.
fn with_associations(
    store: &Store,
    ty: ObjectType,
    id: u64,
    mut object: Value,
    wanted: &[String],
) -> Value {
    if wanted.is_empty() {
        return object;
    }
    let mut map = serde_json::Map::new();
    for name in wanted {
        let Some(to) = ObjectType::parse(name) else {
            continue;
        };
        let kind = format!(
            "{}_to_{}",
            ty.singular().to_lowercase(),
            to.singular().to_lowercase()
        );
        let results: Vec<Value> = store
            .associated((ty, id), to)
            .into_iter()
            .map(|other| json!({"id": other.to_string(), "type": kind}))
            .collect();
        if !results.is_empty() {
            map.insert(to.name().to_string(), json!({ "results": results }));
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.insert("associations".into(), Value::Object(map));
    }
    object
}

pub fn get(store: &Store, ty: ObjectType, raw: &str, query: &Query) -> Handled {
    let archived = param(query, "archived") == Some("true");
    let types = store.of(ty);
    let id = if archived {
        raw.parse::<u64>()
            .ok()
            .map(|id| types.resolve(id))
            .filter(|id| types.records.contains_key(id))
            .ok_or_else(|| SimError::object_not_found(raw))?
    } else {
        find(store, ty, raw, param(query, "idProperty"))?
    };
    let record = types
        .records
        .get(&id)
        .ok_or_else(|| SimError::object_not_found(raw))?;
    let selection = Selection::from_names(list_param(query, "properties"));
    let history = list_param(query, "propertiesWithHistory");
    let object = record_json(types, record, &selection, &history);
    Ok(Reply::json(
        200,
        with_associations(store, ty, id, object, &list_param(query, "associations")),
    ))
}

pub fn update(
    store: &mut Store,
    ty: ObjectType,
    raw: &str,
    query: &Query,
    body: &[u8],
    now: &Now,
) -> Handled {
    let input: UpdateInput = parse_json(body)?;
    let props = coerce(input.properties)?;
    let id = find(store, ty, raw, param(query, "idProperty"))?;
    store.update(ty, &id.to_string(), props, now)?;
    let types = store.of(ty);
    let record = types
        .records
        .get(&id)
        .ok_or_else(|| SimError::object_not_found(raw))?;
    Ok(Reply::json(
        200,
        record_json(types, record, &Selection::All, &[]),
    ))
}

pub fn archive(store: &mut Store, ty: ObjectType, raw: &str, now: &Now) -> Handled {
    store.archive(ty, raw, now);
    Ok(Reply::empty())
}

pub fn list(store: &Store, ty: ObjectType, query: &Query) -> Handled {
    let limit = match param(query, "limit") {
        Some(raw) => raw
            .parse::<usize>()
            .map_err(|_| SimError::validation(format!("limit must be a number, was {raw}")))?,
        None => 10,
    }
    .clamp(1, 100);
    let after = match param(query, "after") {
        Some(raw) if !raw.is_empty() => raw
            .parse::<u64>()
            .map_err(|_| SimError::validation(format!("Invalid after cursor: {raw}")))?,
        _ => 0,
    };
    let archived = param(query, "archived") == Some("true");
    let selection = Selection::from_names(list_param(query, "properties"));
    let history = list_param(query, "propertiesWithHistory");
    let associations = list_param(query, "associations");
    let types = store.of(ty);
    let mut page = types
        .records
        .range(after..)
        .map(|(_, record)| record)
        .filter(|record| record.archived == archived);
    let results: Vec<Value> = page
        .by_ref()
        .take(limit)
        .map(|record| {
            let object = record_json(types, record, &selection, &history);
            with_associations(store, ty, record.id, object, &associations)
        })
        .collect();
    let mut body = json!({ "results": results });
    if let Some(next) = page.next()
        && let Some(map) = body.as_object_mut()
    {
        map.insert(
            "paging".into(),
            json!({"next": {"after": next.id.to_string(), "link": format!("?after={}", next.id)}}),
        );
    }
    Ok(Reply::json(200, body))
}

pub fn batch_create(store: &mut Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let batch: Inputs<CreateInput> = parse_json(body)?;
    check_batch_size(batch.inputs.len(), 100)?;
    let traces: Vec<Option<String>> = batch
        .inputs
        .iter()
        .map(|i| i.object_write_trace_id.clone())
        .collect();
    let mut prepared = Vec::with_capacity(batch.inputs.len());
    let mut results = Vec::new();
    let mut errors = Vec::new();
    if multi_status(&traces) {
        for input in batch.inputs {
            let trace = input.object_write_trace_id.clone();
            let outcome = coerce(input.properties).and_then(|props| {
                let targets = association_targets(store, ty, &input.associations)?;
                let id = store.create(ty, props, now)?;
                for target in targets {
                    store.link((ty, id), target);
                }
                Ok(id)
            });
            match outcome {
                Ok(id) => prepared.push(id),
                Err(error) => errors.push(with_trace(error, &trace)),
            }
        }
    } else {
        let mut staged = HashMap::new();
        let mut checked = Vec::with_capacity(batch.inputs.len());
        for (index, input) in batch.inputs.into_iter().enumerate() {
            let props = coerce(input.properties)?;
            let types = store.of(ty);
            types.validate(&props, None, &store.pipelines)?;
            types.check_unique(None, &props, Some(&staged))?;
            types.stage_unique(&props, &mut staged, index);
            let targets = association_targets(store, ty, &input.associations)?;
            checked.push((props, targets));
        }
        for (props, targets) in checked {
            let id = store.create_unchecked(ty, props, now);
            for target in targets {
                store.link((ty, id), target);
            }
            prepared.push(id);
        }
    }
    let types = store.of(ty);
    for id in prepared {
        if let Some(record) = types.records.get(&id) {
            results.push(record_json(types, record, &Selection::All, &[]));
        }
    }
    let status = if errors.is_empty() { 201 } else { 207 };
    Ok(Reply::json(status, batch_body(results, errors, now)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBatch {
    inputs: Vec<IdRef>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

pub fn batch_read(store: &Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let batch: ReadBatch = parse_json(body)?;
    let max = if batch.properties_with_history.is_empty() {
        100
    } else {
        50
    };
    check_batch_size(batch.inputs.len(), max)?;
    let id_property = batch
        .id_property
        .as_deref()
        .filter(|p| *p != "hs_object_id");
    let types = store.of(ty);
    if let Some(property) = id_property
        && !types.is_unique_name(property)
    {
        return Err(SimError::validation(format!(
            "{property} is not a unique property and cannot be used as idProperty."
        )));
    }
    let selection = Selection::from_names(batch.properties.clone());
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for input in &batch.inputs {
        let raw = input.text();
        let found = match id_property {
            Some(property) => types.lookup_unique(property, &raw),
            None => types.live(&raw).map(|r| r.id),
        };
        match found.and_then(|id| types.records.get(&id)) {
            Some(record) => {
                if seen.insert(record.id) {
                    results.push(record_json(
                        types,
                        record,
                        &selection,
                        &batch.properties_with_history,
                    ));
                }
            }
            None => missing.push(raw),
        }
    }
    let mut errors = Vec::new();
    if !missing.is_empty() {
        errors.push(
            SimError::not_found(format!(
                "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                ty.upper()
            ))
            .with_context("ids", missing)
            .batch_entry(),
        );
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    Ok(Reply::json(status, batch_body(results, errors, now)))
}

/// One checked input of a batch update or upsert.
struct Planned {
    /// Existing record to update, or `None` to create.
    target: Option<u64>,
    props: Props,
}

/// Plans one update input: resolves the record and checks the values.
fn plan_update(
    store: &Store,
    ty: ObjectType,
    input: UpdateInput,
    staged: Option<&HashMap<(String, String), usize>>,
) -> Result<Planned, (SimError, Option<String>)> {
    let trace = input.object_write_trace_id.clone();
    let fail = |error: SimError| (error, trace.clone());
    let props = coerce(input.properties).map_err(fail)?;
    let raw = id_text(&input.id);
    let id = find(store, ty, &raw, input.id_property.as_deref()).map_err(fail)?;
    let types = store.of(ty);
    let current = types.records.get(&id).map(|r| r.props.clone());
    types
        .validate(&props, current.as_deref(), &store.pipelines)
        .map_err(fail)?;
    types.check_unique(Some(id), &props, staged).map_err(fail)?;
    Ok(Planned {
        target: Some(id),
        props,
    })
}

/// Plans one upsert input: the record holding the `idProperty` value, or a new one.
fn plan_upsert(
    store: &Store,
    ty: ObjectType,
    input: UpdateInput,
    staged: Option<&HashMap<(String, String), usize>>,
) -> Result<Planned, (SimError, Option<String>)> {
    let trace = input.object_write_trace_id.clone();
    let fail = |error: SimError| (error, trace.clone());
    let mut props = coerce(input.properties).map_err(fail)?;
    let value = id_text(&input.id);
    let property = input.id_property.unwrap_or_default();
    let types = store.of(ty);
    let target = types.lookup_unique(&property, &value);
    if target.is_none() {
        props.insert(property, value);
    }
    let current = target
        .and_then(|id| types.records.get(&id))
        .map(|r| r.props.clone());
    types
        .validate(&props, current.as_deref(), &store.pipelines)
        .map_err(fail)?;
    types.check_unique(target, &props, staged).map_err(fail)?;
    Ok(Planned { target, props })
}

/// How a batch update or upsert goes: update or upsert, and whether trace
/// ids are ignored so one bad input refuses the whole call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchWrite {
    /// Inputs name a unique `idProperty` value and may create records.
    upsert: bool,
    /// Trace ids are ignored: the first bad input refuses the call.
    whole_call: bool,
}

/// Shared driver of batch update and upsert.
fn batch_write(
    store: &mut Store,
    ty: ObjectType,
    inputs: Vec<UpdateInput>,
    write: BatchWrite,
    now: &Now,
) -> Handled {
    let upsert = write.upsert;
    check_batch_size(inputs.len(), 100)?;
    let mut keys = HashSet::new();
    let mut duplicates = Vec::new();
    for input in &inputs {
        let key = (
            input.id_property.clone().unwrap_or_default(),
            id_text(&input.id),
        );
        if !keys.insert(key.clone()) {
            duplicates.push(key.1);
        }
    }
    if !duplicates.is_empty() {
        return Err(SimError::validation(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            duplicates.join(", ")
        )));
    }
    if upsert {
        let types = store.of(ty);
        for input in &inputs {
            let property = input.id_property.as_deref().unwrap_or_default();
            if !types.is_unique_name(property) {
                return Err(SimError::validation(format!(
                    "Property '{property}' cannot be used as idProperty: it does not have unique values."
                )));
            }
        }
    }
    let plan = |store: &Store, input, staged: Option<&HashMap<(String, String), usize>>| {
        if upsert {
            plan_upsert(store, ty, input, staged)
        } else {
            plan_update(store, ty, input, staged)
        }
    };
    let traces: Vec<Option<String>> = inputs
        .iter()
        .map(|i| i.object_write_trace_id.clone())
        .collect();
    let mut done: Vec<(u64, bool)> = Vec::new();
    let mut errors = Vec::new();
    if !write.whole_call && multi_status(&traces) {
        for input in inputs {
            match plan(store, input, None) {
                Ok(planned) => done.push(apply(store, ty, planned, now)),
                Err((error, trace)) => errors.push(with_trace(error, &trace)),
            }
        }
    } else {
        let mut staged = HashMap::new();
        let mut planned = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.into_iter().enumerate() {
            let item = plan(store, input, Some(&staged)).map_err(|(error, _)| error)?;
            let types = store.of(ty);
            types.stage_unique(&item.props, &mut staged, index);
            planned.push(item);
        }
        for item in planned {
            done.push(apply(store, ty, item, now));
        }
    }
    let types = store.of(ty);
    let results: Vec<Value> = done
        .into_iter()
        .filter_map(|(id, new)| {
            let record = types.records.get(&id)?;
            let mut object = record_json(types, record, &Selection::All, &[]);
            if upsert && let Some(map) = object.as_object_mut() {
                map.insert("new".into(), json!(new));
            }
            Some(object)
        })
        .collect();
    let status = if errors.is_empty() { 200 } else { 207 };
    Ok(Reply::json(status, batch_body(results, errors, now)))
}

fn apply(store: &mut Store, ty: ObjectType, planned: Planned, now: &Now) -> (u64, bool) {
    match planned.target {
        Some(id) => {
            store.update_unchecked(ty, id, planned.props, now);
            (id, false)
        }
        None => (store.create_unchecked(ty, planned.props, now), true),
    }
}

pub fn batch_update(
    store: &mut Store,
    ty: ObjectType,
    body: &[u8],
    whole_call: bool,
    now: &Now,
) -> Handled {
    let batch: Inputs<UpdateInput> = parse_json(body)?;
    let write = BatchWrite {
        upsert: false,
        whole_call,
    };
    batch_write(store, ty, batch.inputs, write, now)
}

pub fn batch_upsert(
    store: &mut Store,
    ty: ObjectType,
    body: &[u8],
    whole_call: bool,
    now: &Now,
) -> Handled {
    let batch: Inputs<UpdateInput> = parse_json(body)?;
    let write = BatchWrite {
        upsert: true,
        whole_call,
    };
    batch_write(store, ty, batch.inputs, write, now)
}

pub fn batch_archive(store: &mut Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let batch: Inputs<IdRef> = parse_json(body)?;
    check_batch_size(batch.inputs.len(), 100)?;
    for input in &batch.inputs {
        store.archive(ty, &input.text(), now);
    }
    Ok(Reply::empty())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeInput {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

pub fn merge(store: &mut Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let input: MergeInput = parse_json(body)?;
    let primary = id_text(&Some(input.primary_object_id));
    let secondary = id_text(&Some(input.object_id_to_merge));
    let id = store.merge(ty, &primary, &secondary, now)?;
    let types = store.of(ty);
    let record = types
        .records
        .get(&id)
        .ok_or_else(|| SimError::object_not_found(&primary))?;
    Ok(Reply::json(
        200,
        record_json(types, record, &Selection::All, &[]),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdprInput {
    object_id: Value,
    #[serde(default)]
    id_property: Option<String>,
}

pub fn gdpr_delete(store: &mut Store, body: &[u8]) -> Handled {
    let input: GdprInput = parse_json(body)?;
    let raw = id_text(&Some(input.object_id));
    let id = find(
        store,
        ObjectType::Contacts,
        &raw,
        input.id_property.as_deref(),
    )?;
    store.purge(ObjectType::Contacts, id);
    Ok(Reply::empty())
}

pub fn run_search(store: &Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let request: SearchRequest = parse_json(body)?;
    Ok(Reply::json(
        200,
        search(store.of(ty), &request, now.instant, now.lag)?,
    ))
}

pub fn properties_list(store: &Store, ty: ObjectType, query: &Query) -> Handled {
    let archived = param(query, "archived") == Some("true");
    let results: Vec<&PropertyDef> = store
        .of(ty)
        .properties
        .iter()
        .filter(|p| p.archived == archived)
        .collect();
    Ok(Reply::json(200, json!({ "results": results })))
}

pub fn property_get(store: &Store, ty: ObjectType, name: &str) -> Handled {
    let property = store.of(ty).property(name).ok_or_else(|| {
        SimError::not_found(format!(
            "Unable to find property named {name} for object type {}",
            ty.type_id()
        ))
    })?;
    Ok(Reply::json(200, json!(property)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyCreate {
    name: Option<String>,
    label: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    field_type: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Vec<PropertyOption>,
    #[serde(default)]
    display_order: Option<i64>,
    #[serde(default)]
    has_unique_value: bool,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    form_field: Option<bool>,
}

/// HubSpot caps unique-value properties per object type.
const MAX_UNIQUE_PROPERTIES: usize = 10;

pub fn property_create(store: &mut Store, ty: ObjectType, body: &[u8], now: &Now) -> Handled {
    let input: PropertyCreate = parse_json(body)?;
    let mut missing = Vec::new();
    for (field, value) in [
        ("name", &input.name),
        ("label", &input.label),
        ("type", &input.kind),
        ("fieldType", &input.field_type),
        ("groupName", &input.group_name),
    ] {
        if value.as_deref().is_none_or(str::is_empty) {
            missing.push(field.to_string());
        }
    }
    if !missing.is_empty() {
        return Err(SimError::validation(format!(
            "Missing required fields: {}",
            missing.join(", ")
        ))
        .with_context("missingFields", missing));
    }
    let name = input.name.unwrap_or_default();
    let kind = input.kind.unwrap_or_default();
    let field_type = input.field_type.unwrap_or_default();
    let group_name = input.group_name.unwrap_or_default();
    let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(SimError::validation(format!(
            "Property name '{name}' is invalid: use lower-case letters, digits and underscores, starting with a letter."
        )));
    }
    if !PROPERTY_TYPES.contains(&kind.as_str()) {
        return Err(SimError::validation(format!(
            "Invalid property type '{kind}'. Allowed: {}",
            PROPERTY_TYPES.join(", ")
        )));
    }
    if !FIELD_TYPES.contains(&field_type.as_str()) || !field_type_fits(&kind, &field_type) {
        return Err(SimError::validation(format!(
            "Field type '{field_type}' is not valid for a property of type '{kind}'."
        )));
    }
    let types = store.of(ty);
    if types.property(&name).is_some() {
        return Err(SimError::new(
            409,
            "CONFLICT",
            format!("A property named '{name}' already exists."),
        ));
    }
    if !types.groups.iter().any(|g| g.name == group_name) {
        return Err(SimError::validation(format!(
            "Property group '{group_name}' does not exist."
        )));
    }
    if input.has_unique_value {
        if !matches!(kind.as_str(), "string" | "number") {
            return Err(SimError::validation(
                "Only string and number properties can have unique values.",
            ));
        }
        if types.unique_count() >= MAX_UNIQUE_PROPERTIES {
            return Err(SimError::validation(format!(
                "This object type already has the maximum of {MAX_UNIQUE_PROPERTIES} properties with unique values."
            ))
            .with_sub_category("UNIQUE_PROPERTY_LIMIT"));
        }
    }
    let stamp = format_time(now.wall);
    let property = PropertyDef {
        display_order: input.display_order.unwrap_or(-1),
        name,
        label: input.label.unwrap_or_default(),
        kind,
        field_type,
        group_name,
        description: input.description.unwrap_or_default(),
        options: input.options,
        has_unique_value: input.has_unique_value,
        hidden: input.hidden,
        form_field: input.form_field.unwrap_or(true),
        calculated: false,
        external_options: false,
        hubspot_defined: false,
        archived: false,
        created_at: stamp.clone(),
        updated_at: stamp,
        modification_metadata: ModificationMetadata {
            archivable: true,
            read_only_definition: false,
            read_only_value: false,
        },
    };
    let body = json!(property);
    store.of_mut(ty).add_property(property);
    Ok(Reply::json(201, body))
}

pub fn property_update(
    store: &mut Store,
    ty: ObjectType,
    name: &str,
    body: &[u8],
    now: &Now,
) -> Handled {
    let input: Value = parse_json(body)?;
    let Some(fields) = input.as_object() else {
        return Err(SimError::validation(
            "Invalid input JSON: expected an object.",
        ));
    };
    if fields.contains_key("hasUniqueValue") {
        return Err(SimError::validation(
            "hasUniqueValue can only be set when a property is created.",
        ));
    }
    let property = store.of_mut(ty).property_mut(name).ok_or_else(|| {
        SimError::not_found(format!(
            "Unable to find property named {name} for object type {}",
            ty.type_id()
        ))
    })?;
    if property.modification_metadata.read_only_definition {
        return Err(SimError::validation(format!(
            "The definition of {name} is read-only."
        )));
    }
    if let Some(label) = fields.get("label").and_then(Value::as_str) {
        property.label = label.to_string();
    }
    if let Some(description) = fields.get("description").and_then(Value::as_str) {
        property.description = description.to_string();
    }
    if let Some(hidden) = fields.get("hidden").and_then(Value::as_bool) {
        property.hidden = hidden;
    }
    if let Some(options) = fields.get("options") {
        property.options = serde_json::from_value(options.clone())
            .map_err(|error| SimError::validation(format!("Invalid options: {error}")))?;
    }
    property.updated_at = format_time(now.wall);
    Ok(Reply::json(200, json!(property)))
}

pub fn groups_list(store: &Store, ty: ObjectType) -> Handled {
    Ok(Reply::json(200, json!({ "results": store.of(ty).groups })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupCreate {
    name: String,
    label: String,
    #[serde(default)]
    display_order: Option<i64>,
}

pub fn group_create(store: &mut Store, ty: ObjectType, body: &[u8]) -> Handled {
    let input: GroupCreate = parse_json(body)?;
    if input.name.is_empty() || input.label.is_empty() {
        return Err(SimError::validation("name and label are required."));
    }
    let types = store.of_mut(ty);
    if types.groups.iter().any(|g| g.name == input.name) {
        return Err(SimError::new(
            409,
            "CONFLICT",
            format!("A property group named '{}' already exists.", input.name),
        ));
    }
    let group = PropertyGroup {
        name: input.name,
        label: input.label,
        display_order: input.display_order.unwrap_or(-1),
        archived: false,
    };
    let body = json!(group);
    types.groups.push(group);
    Ok(Reply::json(201, body))
}

fn pipelines_of(ty: ObjectType) -> Result<(), SimError> {
    if ty == ObjectType::Deals {
        Ok(())
    } else {
        Err(SimError::validation(format!(
            "Object type {} does not support pipelines.",
            ty.type_id()
        )))
    }
}

pub fn pipelines_list(store: &Store, ty: ObjectType) -> Handled {
    pipelines_of(ty)?;
    let results: Vec<Value> = store.pipelines.iter().map(pipeline_json).collect();
    Ok(Reply::json(200, json!({ "results": results })))
}

pub fn pipeline_get(store: &Store, ty: ObjectType, id: &str) -> Handled {
    pipelines_of(ty)?;
    let pipeline = store.pipelines.iter().find(|p| p.id == id).ok_or_else(|| {
        SimError::not_found(format!("Unable to find pipeline {id}."))
            .with_context("pipelineId", vec![id.to_string()])
    })?;
    Ok(Reply::json(200, pipeline_json(pipeline)))
}

fn pair(from: ObjectType, to: ObjectType) -> Result<(u32, u32), SimError> {
    match (association_type_id(from, to), association_type_id(to, from)) {
        (Some(forward), Some(back)) => Ok((forward, back)),
        _ => Err(SimError::validation(format!(
            "Associations from {} to {} are not supported.",
            from.type_id(),
            to.type_id()
        ))),
    }
}

fn default_association(from: &str, to: &str, type_id: u32) -> Value {
    json!({
        "from": {"id": from},
        "to": {"id": to},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
    })
}

#[derive(Debug, Deserialize)]
struct PairInput {
    from: IdRef,
    to: IdRef,
}

pub fn associate_default_batch(
    store: &mut Store,
    from: ObjectType,
    to: ObjectType,
    body: &[u8],
    now: &Now,
) -> Handled {
    let (forward, back) = pair(from, to)?;
    let batch: Inputs<PairInput> = parse_json(body)?;
    check_batch_size(batch.inputs.len(), 1_000)?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &batch.inputs {
        let (raw_from, raw_to) = (input.from.text(), input.to.text());
        let a = store.of(from).live(&raw_from).map(|r| r.id);
        let b = store.of(to).live(&raw_to).map(|r| r.id);
        match (a, b) {
            (Some(a), Some(b)) => {
                store.link((from, a), (to, b));
                results.push(default_association(&a.to_string(), &b.to_string(), forward));
                results.push(default_association(&b.to_string(), &a.to_string(), back));
            }
            (a, b) => {
                let mut ids = Vec::new();
                if a.is_none() {
                    ids.push(raw_from.clone());
                }
                if b.is_none() {
                    ids.push(raw_to.clone());
                }
                errors.push(
                    SimError::not_found(format!(
                        "One or more objects could not be found: {}",
                        ids.join(", ")
                    ))
                    .with_context("ids", ids)
                    .batch_entry(),
                );
            }
        }
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    Ok(Reply::json(status, batch_body(results, errors, now)))
}

pub fn associate_default_single(
    store: &mut Store,
    from: ObjectType,
    raw_from: &str,
    to: ObjectType,
    raw_to: &str,
    now: &Now,
) -> Handled {
    let (forward, back) = pair(from, to)?;
    let a = store
        .of(from)
        .live(raw_from)
        .map(|r| r.id)
        .ok_or_else(|| SimError::object_not_found(raw_from))?;
    let b = store
        .of(to)
        .live(raw_to)
        .map(|r| r.id)
        .ok_or_else(|| SimError::object_not_found(raw_to))?;
    store.link((from, a), (to, b));
    let results = vec![
        default_association(&a.to_string(), &b.to_string(), forward),
        default_association(&b.to_string(), &a.to_string(), back),
    ];
    Ok(Reply::json(200, batch_body(results, Vec::new(), now)))
}

pub fn unassociate_single(
    store: &mut Store,
    from: ObjectType,
    raw_from: &str,
    to: ObjectType,
    raw_to: &str,
) -> Handled {
    pair(from, to)?;
    let a = store.of(from).live(raw_from).map(|r| r.id);
    let b = store.of(to).live(raw_to).map(|r| r.id);
    if let (Some(a), Some(b)) = (a, b) {
        store.unlink((from, a), (to, b));
    }
    Ok(Reply::empty())
}

pub fn associations_read(
    store: &Store,
    from: ObjectType,
    to: ObjectType,
    body: &[u8],
    now: &Now,
) -> Handled {
    pair(from, to)?;
    let batch: Inputs<IdRef> = parse_json(body)?;
    check_batch_size(batch.inputs.len(), 1_000)?;
    let types = Store::association_types(from, to);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &batch.inputs {
        let raw = input.text();
        let linked = store
            .of(from)
            .live(&raw)
            .map(|r| store.associated((from, r.id), to))
            .unwrap_or_default();
        if linked.is_empty() {
            errors.push(
                SimError::not_found(format!(
                    "No {} is associated with {} {raw}.",
                    to.singular().to_lowercase(),
                    from.singular().to_lowercase()
                ))
                .with_sub_category("crm.associations.NO_ASSOCIATIONS_FOUND")
                .with_context("fromObjectId", vec![raw.clone()])
                .batch_entry(),
            );
            continue;
        }
        let to_list: Vec<Value> = linked
            .into_iter()
            .map(|id| json!({"toObjectId": id, "associationTypes": types}))
            .collect();
        results.push(json!({"from": {"id": raw}, "to": to_list}));
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    Ok(Reply::json(status, batch_body(results, errors, now)))
}

/// Most associations on one page of a record's association list (HubSpot's
/// default and maximum).
const ASSOCIATION_PAGE: usize = 500;

/// One record's associations towards a type, paged by `limit` and `after`
/// (the last `toObjectId` of the previous page), in v4's shape.
pub fn associations_list(
    store: &Store,
    from: ObjectType,
    raw: &str,
    to: ObjectType,
    query: &Query,
) -> Handled {
    pair(from, to)?;
    let limit = match param(query, "limit") {
        Some(raw) => raw
            .parse::<usize>()
            .map_err(|_| SimError::validation(format!("limit must be a number, was {raw}")))?,
        None => ASSOCIATION_PAGE,
    }
    .clamp(1, ASSOCIATION_PAGE);
    let after = match param(query, "after") {
        Some(raw) if !raw.is_empty() => raw
            .parse::<u64>()
            .map_err(|_| SimError::validation(format!("Invalid after cursor: {raw}")))?,
        _ => 0,
    };
    let id = store
        .of(from)
        .live(raw)
        .map(|r| r.id)
        .ok_or_else(|| SimError::object_not_found(raw))?;
    let types = Store::association_types(from, to);
    let mut linked = store
        .associated((from, id), to)
        .into_iter()
        .filter(|other| *other > after);
    let page: Vec<u64> = linked.by_ref().take(limit).collect();
    let results: Vec<Value> = page
        .iter()
        .map(|other| json!({"toObjectId": other, "associationTypes": types}))
        .collect();
    let mut body = json!({ "results": results });
    if linked.next().is_some()
        && let Some(last) = page.last()
        && let Some(map) = body.as_object_mut()
    {
        map.insert(
            "paging".into(),
            json!({"next": {"after": last.to_string(), "link": format!("?after={last}")}}),
        );
    }
    Ok(Reply::json(200, body))
}

#[derive(Debug, Deserialize)]
struct ArchiveInput {
    from: IdRef,
    to: Vec<IdRef>,
}

pub fn associations_archive(
    store: &mut Store,
    from: ObjectType,
    to: ObjectType,
    body: &[u8],
) -> Handled {
    pair(from, to)?;
    let batch: Inputs<ArchiveInput> = parse_json(body)?;
    check_batch_size(batch.inputs.len(), 1_000)?;
    for input in &batch.inputs {
        let Some(a) = store.of(from).live(&input.from.text()).map(|r| r.id) else {
            continue;
        };
        for target in &input.to {
            if let Some(b) = store.of(to).live(&target.text()).map(|r| r.id) {
                store.unlink((from, a), (to, b));
            }
        }
    }
    Ok(Reply::empty())
}

pub fn association_labels(from: ObjectType, to: ObjectType) -> Handled {
    pair(from, to)?;
    Ok(Reply::json(
        200,
        json!({ "results": Store::association_types(from, to) }),
    ))
}

/// The portal's daily request budget as the limiter counts it; it resets at
/// the portal's midnight (Europe/Berlin for the simulated portal).
pub fn api_usage(budget: &super::limits::Budget, wall: chrono::DateTime<chrono::Utc>) -> Handled {
    use chrono::TimeZone;
    let berlin = wall.with_timezone(&chrono_tz::Europe::Berlin);
    let resets_at = berlin
        .date_naive()
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .and_then(|midnight| {
            chrono_tz::Europe::Berlin
                .from_local_datetime(&midnight)
                .earliest()
        })
        .map_or(wall, |midnight| midnight.with_timezone(&chrono::Utc));
    Ok(Reply::json(
        200,
        json!({
            "results": [{
                "name": "api-calls-daily",
                "usageLimit": budget.daily,
                "currentUsage": budget.daily.saturating_sub(budget.daily_remaining),
                "collectedAt": format_time(wall),
                "fetchStatus": "SUCCESS",
                "resetsAt": format_time(resets_at),
            }]
        }),
    ))
}

pub fn enablement(appointments_enabled: bool, type_id: &str) -> Handled {
    let enabled = match ObjectType::parse(type_id) {
        Some(ObjectType::Appointments) => appointments_enabled,
        Some(_) => true,
        None => {
            return Err(SimError::not_found(format!(
                "Unknown object type {type_id}."
            )));
        }
    };
    Ok(Reply::json(200, json!({ "enablement": enabled })))
}

/// The portal's users who can own records: fixed synthetic practice
/// managers (one archived), paged like HubSpot's owners API (`limit`,
/// `after`, `archived`).
pub fn owners(query: &Query) -> Handled {
    const OWNERS: [(&str, &str, &str, bool); 5] = [
        ("70001", "Katrin", "Schäfer", false),
        ("70002", "Jörg", "Lehmann", false),
        ("70003", "Aylin", "Öztürk", false),
        ("70004", "Sven", "Krüger", false),
        ("70009", "Ute", "Weiß", true),
    ];
    let archived = param(query, "archived") == Some("true");
    let limit = param(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let start = param(query, "after")
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<_> = OWNERS.iter().filter(|o| o.3 == archived).collect();
    let results: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, first, last, archived)| {
            json!({
                "id": id,
                "email": format!("{}@praxis.example", id),
                "type": "PERSON",
                "firstName": first,
                "lastName": last,
                "userId": id.parse::<u64>().unwrap_or(0),
                "createdAt": "2024-01-02T08:00:00.000Z",
                "updatedAt": "2024-01-02T08:00:00.000Z",
                "archived": archived,
            })
        })
        .collect();
    let mut body = json!({ "results": results });
    if start + limit < matching.len() {
        body["paging"] = json!({ "next": { "after": (start + limit).to_string() } });
    }
    Ok(Reply::json(200, body))
}
