//! Request and response bodies of the HubSpot CRM API, field by field as
//! HubSpot's published schemas have them (camelCase on the wire).
//!
//! Requests are built exactly (property values are strings; batch reads
//! carry `properties` and `propertiesWithHistory`). Responses are parsed
//! leniently: every field is optional, ids may arrive as strings or
//! numbers, property values may be `null`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `{"id": "…"}` in batch read, archive and association inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdInput {
    /// Record id or unique property value.
    pub id: String,
}

/// `{"inputs": […]}` around any batch input.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs<T> {
    /// The batch, at most 100 (1,000 for associations).
    pub inputs: Vec<T>,
}

/// One input of `batch/upsert`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertInputWire<'a> {
    /// The unique property that identifies the record.
    pub id_property: &'a str,
    /// Its value.
    pub id: &'a str,
    /// Values to write, all strings.
    pub properties: BTreeMap<&'a str, &'a str>,
    /// The input's index, so 207 errors can be mapped back.
    pub object_write_trace_id: String,
}

/// One input of `batch/update` by record id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInputWire<'a> {
    /// Record id.
    pub id: &'a str,
    /// Values to write.
    pub properties: &'a BTreeMap<String, String>,
    /// The input's index, so 207 errors can be mapped back.
    pub object_write_trace_id: String,
}

/// The body of `batch/read`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReadBody {
    /// Unique property the ids are values of; absent for record ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_property: Option<String>,
    /// Ids or unique values.
    pub inputs: Vec<IdInput>,
    /// Properties to return.
    pub properties: Vec<String>,
    /// Properties to return with history (required by the schema, may be empty).
    pub properties_with_history: Vec<String>,
}

/// The body of a single create.
#[derive(Debug, Clone, Serialize)]
pub struct CreateBody<'a> {
    /// Values to write.
    pub properties: &'a BTreeMap<String, String>,
}

/// The body of a merge.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeBody<'a> {
    /// The record that is meant to survive.
    pub primary_object_id: &'a str,
    /// The record merged into it.
    pub object_id_to_merge: &'a str,
}

/// The body of a GDPR delete.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GdprDeleteBody<'a> {
    /// Contact id.
    pub object_id: &'a str,
}

/// `{"from":{"id"},"to":{"id"}}` of a default association.
#[derive(Debug, Clone, Serialize)]
pub struct AssociationPairWire {
    /// Source record.
    pub from: IdInput,
    /// Target record.
    pub to: IdInput,
}

/// The body of `POST …/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    /// Alternatives (OR), at most 5.
    pub filter_groups: Vec<FilterGroup>,
    /// Sort order.
    pub sorts: Vec<Sort>,
    /// Properties to return.
    pub properties: Vec<String>,
    /// Page size, at most 200.
    pub limit: u32,
    /// Cursor from the previous page's `paging.next.after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Filters that must all hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FilterGroup {
    /// At most 10 per group.
    pub filters: Vec<Filter>,
}

/// One search condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Property compared.
    pub property_name: String,
    /// `EQ`, `IN`, `BETWEEN`, `HAS_PROPERTY`, …
    pub operator: String,
    /// Operand of single-value operators and BETWEEN's lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Operands of `IN` and `NOT_IN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// BETWEEN's upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_value: Option<String>,
}

impl Filter {
    /// `property = value`.
    pub fn eq(property: &str, value: &str) -> Filter {
        Filter {
            property_name: property.into(),
            operator: "EQ".into(),
            value: Some(value.into()),
            values: None,
            high_value: None,
        }
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort {
    /// Property sorted by.
    pub property_name: String,
    /// `ASCENDING` or `DESCENDING`.
    pub direction: String,
}

/// A property definition to create (HubSpot's `PropertyCreate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    /// Internal name, lower-case ASCII snake case.
    pub name: String,
    /// Name the practice sees in HubSpot (German).
    pub label: String,
    /// `string`, `number`, `date`, `datetime`, `enumeration`, `bool`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Form control fitting `kind` (`text`, `number`, `date`, `select`, …).
    pub field_type: String,
    /// Group listed under; filled in by provisioning.
    pub group_name: String,
    /// Unique values per object type (only settable at creation).
    pub has_unique_value: bool,
    /// Allowed values of enumerations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PropertyOptionWire>,
}

/// One enumeration option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOptionWire {
    /// Text shown.
    #[serde(default)]
    pub label: String,
    /// Stored value.
    #[serde(default)]
    pub value: String,
    /// Position in pickers.
    #[serde(default)]
    pub display_order: i64,
    /// Hidden options stay valid.
    #[serde(default)]
    pub hidden: bool,
}

/// The body of a property group create.
#[derive(Debug, Clone, Serialize)]
pub struct PropertyGroupBody<'a> {
    /// Internal name.
    pub name: &'a str,
    /// Name shown.
    pub label: &'a str,
}

/// Accepts a string or a number (HubSpot ids arrive as either).
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Property values: strings, with `null` dropped and numbers taken as text.
fn lenient_properties<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(name, value)| match value {
            Value::Null => None,
            Value::String(text) => Some((name, text)),
            other => Some((name, other.to_string())),
        })
        .collect())
}

/// A CRM record (`SimplePublicObject`, upserts add `new`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Record {
    /// HubSpot's record id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Property values as strings (`null` values left out).
    #[serde(deserialize_with = "lenient_properties")]
    pub properties: BTreeMap<String, String>,
    /// Whether an upsert created the record.
    pub new: Option<bool>,
    /// Archived records only appear when asked for.
    pub archived: bool,
    /// Creation time as HubSpot formats it.
    pub created_at: Option<String>,
    /// Last change as HubSpot formats it.
    pub updated_at: Option<String>,
}

/// A record listed with `associations=…`: HubSpot's `associations` map
/// by the associated type's name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssociatedRecord {
    /// The record itself.
    #[serde(flatten)]
    pub record: Record,
    /// Associated records per type name (`contacts`).
    pub associations: BTreeMap<String, AssociationResults>,
}

/// The associated records of one type.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssociationResults {
    /// Their ids (the first page of them).
    pub results: Vec<AssociationRef>,
}

/// One associated record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssociationRef {
    /// The associated record's id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
}

/// HubSpot's error body, also the entries of a 207's `errors`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ErrorBody {
    /// `error` on errors.
    pub status: Option<String>,
    /// Human-readable explanation (may contain personal values).
    pub message: Option<String>,
    /// HubSpot's request id, safe to log.
    pub correlation_id: Option<String>,
    /// `VALIDATION_ERROR`, `CONFLICT`, `RATE_LIMITS`, …
    pub category: Option<String>,
    /// Finer category.
    pub sub_category: Option<Value>,
    /// Details; values are usually lists of strings.
    pub context: Option<BTreeMap<String, Value>>,
    /// Detail entries.
    pub errors: Option<Vec<Value>>,
    /// Rate-limit policy of a 429 (`TEN_SECONDLY_ROLLING`, `DAILY`).
    pub policy_name: Option<String>,
    /// `RATE_LIMIT` on 429s.
    pub error_type: Option<String>,
}

impl ErrorBody {
    /// The strings under one `context` key (a list or a single value).
    pub fn context_values(&self, key: &str) -> Vec<String> {
        let Some(value) = self.context.as_ref().and_then(|c| c.get(key)) else {
            return Vec::new();
        };
        strings_of(value)
    }

    /// Scopes a 403 names, from `context.missingScopes` or the detail entries.
    pub fn missing_scopes(&self) -> Vec<String> {
        let mut scopes = self.context_values("missingScopes");
        if scopes.is_empty() {
            for entry in self.errors.iter().flatten() {
                if let Some(value) = entry
                    .get("context")
                    .and_then(|c| c.get("requiredGranularScopes"))
                {
                    scopes.extend(strings_of(value));
                }
            }
        }
        scopes
    }
}

fn strings_of(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(text) => Some(text.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        Value::String(text) => vec![text.clone()],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// The answer of a batch call (200, 201 or 207).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BatchResponse<T> {
    /// `COMPLETE` etc.
    pub status: Option<String>,
    /// Successful inputs.
    pub results: Vec<T>,
    /// Failed inputs (207).
    pub errors: Vec<ErrorBody>,
    /// Count of `errors`.
    pub num_errors: Option<u64>,
}

/// A HubSpot user who can own records (`GET /crm/owners/2026-03`). Only the id
/// and the name are read: the editor shows whom a location's deals go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Owner id, the value of `hubspot_owner_id`.
    pub id: String,
    /// First name, if HubSpot has one.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name, if HubSpot has one.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Deactivated users are listed as archived.
    #[serde(default)]
    pub archived: bool,
}

impl Owner {
    /// „Vorname Nachname“, or the id when HubSpot has no name.
    pub fn display_name(&self) -> String {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            self.id.clone()
        } else {
            name
        }
    }
}

/// One page of a list or search.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Page<T> {
    /// The records of this page.
    pub results: Vec<T>,
    /// Cursor of the next page; absent on the last.
    pub paging: Option<Paging>,
    /// Matches in total (search only).
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The `after` cursor of the next page, if there is one.
    pub fn next_after(&self) -> Option<String> {
        self.paging
            .as_ref()?
            .next
            .as_ref()
            .map(|next| next.after.clone())
            .filter(|after| !after.is_empty())
    }
}

/// `paging` of a page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Paging {
    /// The next page, absent on the last.
    pub next: Option<NextPage>,
}

/// `paging.next`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NextPage {
    /// The cursor to send as `after`.
    #[serde(deserialize_with = "lenient_string")]
    pub after: String,
}

/// A deal pipeline.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pipeline {
    /// Value of a deal's `pipeline`.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Name shown in HubSpot, matched by provisioning.
    pub label: String,
    /// Stages in any order.
    pub stages: Vec<PipelineStage>,
    /// Archived pipelines are ignored.
    pub archived: bool,
}

/// A pipeline stage.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PipelineStage {
    /// Value of a deal's `dealstage`.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Unique within the pipeline.
    pub label: String,
    /// Archived stages are ignored.
    pub archived: bool,
    /// `probability`, `isClosed` (strings).
    pub metadata: Option<BTreeMap<String, Value>>,
}

impl PipelineStage {
    /// Whether the stage ends a deal (won or lost): `isClosed` is `"true"`.
    pub fn is_closed(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("isClosed"))
            .is_some_and(|v| v.as_str() == Some("true") || v.as_bool() == Some(true))
    }

    /// `probability` as a number (HubSpot sends `"0.0"`, `"0"`, `"1.0"`).
    pub fn probability(&self) -> Option<f64> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("probability"))
            .and_then(|v| match v {
                Value::String(s) => s.trim().parse::<f64>().ok(),
                other => other.as_f64(),
            })
    }

    /// Whether the stage ends a deal lost: closed with probability 0.
    pub fn is_lost(&self) -> bool {
        self.is_closed() && self.probability().is_some_and(|p| p <= 0.0)
    }
}

impl Pipeline {
    /// The pipeline's first stage (in HubSpot's order) that ends a deal
    /// lost, archived stages left out.
    pub fn lost_stage(&self) -> Option<&PipelineStage> {
        self.stages.iter().find(|s| !s.archived && s.is_lost())
    }
}

/// A property definition as HubSpot lists it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Property {
    /// Internal name.
    pub name: String,
    /// Name shown.
    pub label: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Form control.
    pub field_type: String,
    /// Group it is listed under.
    pub group_name: String,
    /// Whether values are unique per object type.
    pub has_unique_value: bool,
    /// Enumeration options.
    pub options: Vec<PropertyOptionWire>,
    /// Archived definitions are ignored.
    pub archived: bool,
}

/// A property group.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PropertyGroup {
    /// Internal name.
    pub name: String,
    /// Name shown.
    pub label: String,
}

/// One entry of `GET /account-info/2026-03/api-usage/daily/private-apps`: the
/// portal's daily request budget (`name` `api-calls-daily`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApiUsage {
    /// Which budget (`api-calls-daily`).
    pub name: String,
    /// Requests allowed per day.
    pub usage_limit: u64,
    /// Requests counted today.
    pub current_usage: u64,
    /// When HubSpot counted (ISO-8601).
    pub collected_at: Option<String>,
    /// `SUCCESS` when the numbers are current.
    pub fetch_status: Option<String>,
    /// When the budget resets, the portal's midnight (ISO-8601).
    pub resets_at: Option<String>,
}

impl ApiUsage {
    /// Requests still allowed today.
    pub fn remaining(&self) -> u64 {
        self.usage_limit.saturating_sub(self.current_usage)
    }
}

/// `{"results": […]}` of non-paged lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Results<T> {
    /// The list.
    pub results: Vec<T>,
}

/// One entry of a default association answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AssociationResult {
    /// Source record.
    pub from: IdRef,
    /// Target record.
    pub to: IdRef,
}

/// `{"id": …}` in answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IdRef {
    /// The id, as text.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
}

/// One entry of an association read answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AssociationReadResult {
    /// The record asked about.
    pub from: IdRef,
    /// Its associated records.
    pub to: Vec<AssociatedTo>,
}

/// One associated record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AssociatedTo {
    /// Its id.
    #[serde(deserialize_with = "lenient_string")]
    pub to_object_id: String,
}

/// `GET /crm/object-library/2026-03/enablement/{type}` (or its `v3` path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Enablement {
    /// Whether the object type is activated in the portal.
    pub enablement: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_leniently() {
        let record: Record = serde_json::from_value(serde_json::json!({
            "id": 17, "properties": {"a": null, "b": "x", "c": 3}
        }))
        .unwrap_or_default();
        assert_eq!(record.id, "17");
        assert_eq!(record.properties.len(), 2);
        assert_eq!(record.properties["c"], "3");
        let error: ErrorBody = serde_json::from_str("{}").unwrap_or_default();
        assert!(error.message.is_none());
    }

    #[test]
    fn batch_read_bodies_carry_both_property_lists() {
        let body = BatchReadBody {
            id_property: None,
            inputs: vec![IdInput { id: "1".into() }],
            properties: vec![],
            properties_with_history: vec![],
        };
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"inputs":[{"id":"1"}],"properties":[],"propertiesWithHistory":[]})
        );
    }
}
