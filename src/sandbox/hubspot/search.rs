//! `POST …/{type}/search`: filter groups (OR) of filters (AND), sorts,
//! paging and HubSpot's limits, evaluated against the versions the index
//! has caught up with (writes become visible after the index lag).

use std::cmp::Ordering;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::SimError;
use super::store::{Props, Selection, TypeStore, parse_time_ms, props_json};

/// The search body as HubSpot's schema has it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SearchRequest {
    /// Alternatives (OR); empty matches everything.
    pub filter_groups: Vec<FilterGroup>,
    /// Only the first sort is applied; default order is by id.
    pub sorts: Vec<SortSpec>,
    /// Properties in the results; empty means the type's defaults.
    pub properties: Vec<String>,
    /// Page size, at most 200 (default 10).
    pub limit: Option<i64>,
    /// Offset cursor from `paging.next.after` (string or number).
    pub after: Option<Value>,
    /// Free text over the type's default text properties.
    pub query: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilterGroup {
    /// Conditions that must all hold (AND).
    pub filters: Vec<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Filter {
    /// Property compared.
    pub property_name: String,
    /// EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY,
    /// NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN.
    pub operator: String,
    /// Operand of single-value operators and BETWEEN's lower bound.
    pub value: Option<Value>,
    /// BETWEEN's upper bound.
    pub high_value: Option<Value>,
    /// Operands of IN and NOT_IN.
    pub values: Option<Vec<Value>>,
}

/// A sort is either `{propertyName, direction}` or a bare property name
/// (the Node SDK's `"-createdate"` form).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SortSpec {
    Named(String),
    Full {
        #[serde(rename = "propertyName")]
        property_name: String,
        #[serde(default)]
        direction: Option<String>,
    },
}

/// HubSpot's caps.
const MAX_LIMIT: i64 = 200;
const MAX_RESULTS: usize = 10_000;
const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;

/// Runs a search; the response is `CollectionResponseWithTotal…ForwardPaging`.
pub fn search(
    store: &TypeStore,
    request: &SearchRequest,
    now: Instant,
    lag: Duration,
) -> Result<Value, SimError> {
    if request.filter_groups.len() > MAX_GROUPS {
        return Err(SimError::validation(format!(
            "Too many filter groups: {} (at most {MAX_GROUPS} are allowed).",
            request.filter_groups.len()
        ))
        .with_sub_category("TOO_MANY_FILTER_GROUPS"));
    }
    let mut total_filters = 0;
    for group in &request.filter_groups {
        if group.filters.len() > MAX_FILTERS_PER_GROUP {
            return Err(SimError::validation(format!(
                "Too many filters in a filter group: {} (at most {MAX_FILTERS_PER_GROUP} are allowed).",
                group.filters.len()
            ))
            .with_sub_category("TOO_MANY_FILTERS_IN_GROUP"));
        }
        total_filters += group.filters.len();
        for filter in &group.filters {
            check_filter(store, filter)?;
        }
    }
    if total_filters > MAX_FILTERS {
        return Err(SimError::validation(format!(
            "Too many filters: {total_filters} (at most {MAX_FILTERS} are allowed)."
        ))
        .with_sub_category("TOO_MANY_FILTERS"));
    }
    let limit = request.limit.unwrap_or(10);
    if !(0..=MAX_LIMIT).contains(&limit) {
        return Err(SimError::validation(format!(
            "limit must be between 0 and {MAX_LIMIT}, was {limit}."
        )));
    }
    let limit = usize::try_from(limit).unwrap_or(0);
    let after = match &request.after {
        None | Some(Value::Null) => 0,
        Some(Value::String(text)) if text.is_empty() => 0,
        Some(Value::String(text)) => text
            .parse::<usize>()
            .map_err(|_| SimError::validation(format!("Invalid after value: {text}")))?,
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| SimError::validation("Invalid after value."))?,
        Some(_) => return Err(SimError::validation("Invalid after value.")),
    };
    if after.saturating_add(limit) > MAX_RESULTS {
        return Err(SimError::validation(format!(
            "Paging past {MAX_RESULTS} results is not supported: after {after} with limit {limit}."
        ))
        .with_sub_category("RESULT_LIMIT_EXCEEDED"));
    }

    let query = request
        .query
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.trim().is_empty());
    let mut matches: Vec<(u64, &Props)> = Vec::new();
    for record in store.records.values() {
        let Some(props) = record.visible(now, lag) else {
            continue;
        };
        let props: &Props = props;
        let hit = request.filter_groups.is_empty()
            || request.filter_groups.iter().any(|group| {
                group
                    .filters
                    .iter()
                    .all(|f| filter_matches(store, f, props))
            });
        let query_hit = query
            .as_ref()
            .is_none_or(|q| query_matches(store, q, props));
        if hit && query_hit {
            matches.push((record.id, props));
        }
    }
    if let Some((property, descending)) = request.sorts.first().map(sort_key) {
        let numeric = store.property(&property).is_some_and(|p| p.is_numeric());
        matches.sort_by(|a, b| {
            compare_values(a.1.get(&property), b.1.get(&property), numeric, descending)
                .then(a.0.cmp(&b.0))
        });
    }
    let total = matches.len();
    let selection = Selection::from_names(request.properties.clone());
    let results: Vec<Value> = matches
        .iter()
        .skip(after)
        .take(limit)
        .filter_map(|(id, props)| {
            store
                .records
                .get(id)
                .map(|record| props_json(store, *id, props, record, &selection, &[]))
        })
        .collect();
    let mut body = json!({ "total": total, "results": results });
    let next = after + limit;
    if next < total
        && next < MAX_RESULTS
        && let Some(map) = body.as_object_mut()
    {
        map.insert(
            "paging".into(),
            json!({"next": {"after": next.to_string()}}),
        );
    }
    Ok(body)
}

fn check_filter(store: &TypeStore, filter: &Filter) -> Result<(), SimError> {
    if store.property(&filter.property_name).is_none() {
        return Err(SimError::validation(format!(
            "There was a problem with the request: property {} does not exist.",
            filter.property_name
        )));
    }
    let needs_value = matches!(
        filter.operator.as_str(),
        "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN"
    );
    let known = needs_value
        || matches!(
            filter.operator.as_str(),
            "BETWEEN" | "IN" | "NOT_IN" | "HAS_PROPERTY" | "NOT_HAS_PROPERTY"
        );
    if !known {
        return Err(SimError::validation(format!(
            "Invalid filter operator: {}",
            filter.operator
        )));
    }
    if needs_value && filter.value.is_none() {
        return Err(SimError::validation(format!(
            "Filter on {} with operator {} requires a value.",
            filter.property_name, filter.operator
        )));
    }
    if filter.operator == "BETWEEN" && (filter.value.is_none() || filter.high_value.is_none()) {
        return Err(SimError::validation(
            "BETWEEN requires value and highValue.",
        ));
    }
    if matches!(filter.operator.as_str(), "IN" | "NOT_IN") && filter.values.is_none() {
        return Err(SimError::validation(format!(
            "{} requires values.",
            filter.operator
        )));
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Numbers, dates (ISO or epoch ms) compare numerically.
fn number(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .or_else(|| parse_time_ms(value).map(|ms| ms as f64))
}

fn compare(numeric: bool, stored: &str, wanted: &str) -> Option<Ordering> {
    if numeric {
        number(stored)?.partial_cmp(&number(wanted)?)
    } else {
        Some(stored.to_lowercase().cmp(&wanted.to_lowercase()))
    }
}

fn filter_matches(store: &TypeStore, filter: &Filter, props: &Props) -> bool {
    let numeric = store
        .property(&filter.property_name)
        .is_some_and(|p| p.is_numeric());
    let stored = props.get(&filter.property_name).filter(|v| !v.is_empty());
    let wanted = filter.value.as_ref().map(text).unwrap_or_default();
    let ordering = |value: &str| stored.and_then(|s| compare(numeric, s, value));
    match filter.operator.as_str() {
        "HAS_PROPERTY" => stored.is_some(),
        "NOT_HAS_PROPERTY" => stored.is_none(),
        "EQ" => ordering(&wanted) == Some(Ordering::Equal),
        "NEQ" => ordering(&wanted) != Some(Ordering::Equal),
        "LT" => ordering(&wanted) == Some(Ordering::Less),
        "LTE" => matches!(ordering(&wanted), Some(Ordering::Less | Ordering::Equal)),
        "GT" => ordering(&wanted) == Some(Ordering::Greater),
        "GTE" => matches!(ordering(&wanted), Some(Ordering::Greater | Ordering::Equal)),
        "BETWEEN" => {
            let high = filter.high_value.as_ref().map(text).unwrap_or_default();
            matches!(ordering(&wanted), Some(Ordering::Greater | Ordering::Equal))
                && matches!(ordering(&high), Some(Ordering::Less | Ordering::Equal))
        }
        "IN" | "NOT_IN" => {
            let found = filter
                .values
                .iter()
                .flatten()
                .any(|value| ordering(&text(value)) == Some(Ordering::Equal));
            if filter.operator == "IN" {
                found
            } else {
                !found
            }
        }
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let found = stored.is_some_and(|s| contains_token(s, &wanted));
            if filter.operator == "CONTAINS_TOKEN" {
                found
            } else {
                !found
            }
        }
        _ => false,
    }
}

/// Token match, case-insensitive, with `*` as a wildcard at either end.
fn contains_token(stored: &str, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    let stored = stored.to_lowercase();
    let prefix = wanted.ends_with('*');
    let suffix = wanted.starts_with('*');
    let core = wanted.trim_matches('*');
    if core.is_empty() {
        return true;
    }
    stored
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.' && c != '-' && c != '_')
        .chain(stored.split(|c: char| !c.is_alphanumeric()))
        .any(|token| match (prefix, suffix) {
            (true, true) => token.contains(core),
            (true, false) => token.starts_with(core),
            (false, true) => token.ends_with(core),
            (false, false) => token == core,
        })
}

/// The free-text `query`: HubSpot searches a type's default text properties.
fn query_matches(store: &TypeStore, query: &str, props: &Props) -> bool {
    let fields: &[&str] = match store.object_type.name() {
        "contacts" => &["email", "firstname", "lastname", "phone", "mobilephone"],
        "deals" => &["dealname"],
        _ => &["hs_appointment_name"],
    };
    fields.iter().any(|field| {
        props
            .get(*field)
            .is_some_and(|value| value.to_lowercase().contains(query))
    })
}

fn sort_key(sort: &SortSpec) -> (String, bool) {
    match sort {
        SortSpec::Named(name) => match name.strip_prefix('-') {
            Some(stripped) => (stripped.to_string(), true),
            None => (name.clone(), false),
        },
        SortSpec::Full {
            property_name,
            direction,
        } => (
            property_name.clone(),
            direction.as_deref() == Some("DESCENDING"),
        ),
    }
}

/// Records without a value sort last in either direction.
fn compare_values(
    a: Option<&String>,
    b: Option<&String>,
    numeric: bool,
    descending: bool,
) -> Ordering {
    match (a.filter(|v| !v.is_empty()), b.filter(|v| !v.is_empty())) {
        (Some(a), Some(b)) => {
            let ordering = compare(numeric, a, b).unwrap_or(Ordering::Equal);
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
