//! HTTP edge: one fallback handler parses the path itself, so both path
//! families and every type alias reach the same handlers, and nothing a
//! client sends can produce a non-JSON rejection or a panic.
//!
//! Order per request: correlation id → route (404 JSON) → auth (401) →
//! scope (403) → rate limits (429, refused requests consume nothing) →
//! faults → handler → "committed but lost" → headers.
//!
//! Appointments (0-421) when not activated: every endpoint naming the type
//! answers 400 `VALIDATION_ERROR` "Unable to infer object type from: …",
//! HubSpot's answer for object types the portal does not know.
//!
//! `/_sandbox/` endpoints (no auth, no limits, no faults):
//! - `GET  /_sandbox/state` → [`StateSnapshot`](super::StateSnapshot)
//! - `GET  /_sandbox/counters` → [`Counters`](super::Counters)
//! - `GET|POST /_sandbox/faults` → body and answer [`FaultSettings`] (POST replaces all switches)
//! - `POST /_sandbox/reset-counters` → 204
//! - `POST /_sandbox/index-lag` `{"milliseconds": n}` → 204
//! - `POST /_sandbox/daily-budget` `{"remaining": n}` → 204
//! - `POST /_sandbox/reset-rate-limits` → 204
//! - `POST /_sandbox/advance-time` `{"milliseconds": n}` → 204
//! - `POST /_sandbox/tokens` `{"token": "…", "scopes": ["…"] | null}` → 204
//! - `POST /_sandbox/appointments` `{"enabled": bool}` → 204
//! - `GET|POST /_sandbox/batch-failures` `{"mode": "multi-status" | "whole-call"}`
//!   → the mode / 204 ([`BatchFailures`]: 207 per input, or the whole call
//!   refused over its first bad input)
//! - `GET|POST /_sandbox/value-notation` `{"notation": "as-written" | "rendered"}`
//!   → the notation / 204 ([`ValueNotation`](super::ValueNotation): values
//!   read back as written, or numbers with a trailing zero more, dates as
//!   epoch milliseconds and date-times with milliseconds)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Query as QueryExtractor, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::SimError;
use super::faults::{Fault, FaultSettings};
use super::handlers::{self, Handled, Query, Reply, parse_json};
use super::limits::{Budget, Refusal};
use super::model::ObjectType;
use super::{HubSpotSim, lock};
use crate::sandbox::BatchFailures;

/// Largest request body accepted (HubSpot refuses far smaller ones).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(sim: Arc<HubSpotSim>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

/// What a recognised path asks for.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Enablement(String),
    /// `GET /crm/v3/owners`.
    OwnerList,
    /// `GET /account-info/v3/api-usage/daily/private-apps`.
    ApiUsage,
    Create(ObjectType),
    List(ObjectType),
    Get(ObjectType, String),
    Update(ObjectType, String),
    Archive(ObjectType, String),
    BatchCreate(ObjectType),
    BatchRead(ObjectType),
    BatchUpdate(ObjectType),
    BatchUpsert(ObjectType),
    BatchArchive(ObjectType),
    Search(ObjectType),
    Merge(ObjectType),
    GdprDelete,
    PropertyList(ObjectType),
    PropertyCreate(ObjectType),
    PropertyGet(ObjectType, String),
    PropertyUpdate(ObjectType, String),
    GroupList(ObjectType),
    GroupCreate(ObjectType),
    PipelineList(ObjectType),
    PipelineGet(ObjectType, String),
    AssociateBatch(ObjectType, ObjectType),
    AssociationsRead(ObjectType, ObjectType),
    AssociationsArchive(ObjectType, ObjectType),
    AssociationLabels(ObjectType, ObjectType),
    /// `GET …/objects/{type}/{id}/associations/{toType}` (v4 and dated).
    AssociationsList(ObjectType, String, ObjectType),
    AssociateSingle(ObjectType, String, ObjectType, String),
    UnassociateSingle(ObjectType, String, ObjectType, String),
}

/// A recognised request.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The handler and its path arguments.
    op: Op,
    /// Counter key, e.g. `POST /crm/v3/objects/contacts/batch/upsert`.
    template: String,
    /// Scope the token needs, if any.
    scope: Option<String>,
}

impl Endpoint {
    fn is_write(&self) -> bool {
        !matches!(
            self.op,
            Op::Enablement(_)
                | Op::OwnerList
                | Op::ApiUsage
                | Op::List(_)
                | Op::Get(..)
                | Op::BatchRead(_)
                | Op::Search(_)
                | Op::PropertyList(_)
                | Op::PropertyGet(..)
                | Op::GroupList(_)
                | Op::PipelineList(_)
                | Op::PipelineGet(..)
                | Op::AssociationsRead(..)
                | Op::AssociationLabels(..)
                | Op::AssociationsList(..)
        )
    }

    fn is_search(&self) -> bool {
        matches!(self.op, Op::Search(_))
    }

    fn types(&self) -> Vec<ObjectType> {
        match &self.op {
            Op::Enablement(_) | Op::OwnerList | Op::ApiUsage => vec![],
            Op::GdprDelete => vec![ObjectType::Contacts],
            Op::Create(t)
            | Op::List(t)
            | Op::Get(t, _)
            | Op::Update(t, _)
            | Op::Archive(t, _)
            | Op::BatchCreate(t)
            | Op::BatchRead(t)
            | Op::BatchUpdate(t)
            | Op::BatchUpsert(t)
            | Op::BatchArchive(t)
            | Op::Search(t)
            | Op::Merge(t)
            | Op::PropertyList(t)
            | Op::PropertyCreate(t)
            | Op::PropertyGet(t, _)
            | Op::PropertyUpdate(t, _)
            | Op::GroupList(t)
            | Op::GroupCreate(t)
            | Op::PipelineList(t)
            | Op::PipelineGet(t, _) => vec![*t],
            Op::AssociateBatch(a, b)
            | Op::AssociationsRead(a, b)
            | Op::AssociationsArchive(a, b)
            | Op::AssociationLabels(a, b)
            | Op::AssociationsList(a, _, b)
            | Op::AssociateSingle(a, _, b, _)
            | Op::UnassociateSingle(a, _, b, _) => vec![*a, *b],
        }
    }
}

/// `YYYY-MM` (date-versioned paths); associations also accept `v4` there.
fn is_version(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
}

fn object_type(raw: &str) -> Result<ObjectType, SimError> {
    super::parse_type(raw)
}

/// Recognises a path; `Ok(None)` is an unknown route.
fn parse_route(method: &Method, path: &str) -> Result<Option<Endpoint>, SimError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (family, prefix, rest): (&str, String, &[&str]) = match segments.as_slice() {
        [
            "account-info",
            version,
            "api-usage",
            "daily",
            "private-apps",
        ] if method == Method::GET && (*version == "v3" || is_version(version)) => {
            return Ok(Some(Endpoint {
                op: Op::ApiUsage,
                template: format!("GET /account-info/{version}/api-usage/daily/private-apps"),
                scope: None,
            }));
        }
        ["crm", "v3", "object-library", "enablement", type_id] if method == Method::GET => {
            return Ok(Some(Endpoint {
                op: Op::Enablement((*type_id).to_string()),
                template: "GET /crm/v3/object-library/enablement/{objectTypeId}".into(),
                scope: None,
            }));
        }
        ["crm", "object-library", version, "enablement", type_id]
            if method == Method::GET && is_version(version) =>
        {
            return Ok(Some(Endpoint {
                op: Op::Enablement((*type_id).to_string()),
                template: format!("GET /crm/object-library/{version}/enablement/{{objectTypeId}}"),
                scope: None,
            }));
        }
        ["crm", "v3", "owners"] if method == Method::GET => {
            return Ok(Some(Endpoint {
                op: Op::OwnerList,
                template: "GET /crm/v3/owners".into(),
                scope: Some("crm.objects.owners.read".into()),
            }));
        }
        ["crm", "owners", version] if method == Method::GET && is_version(version) => {
            return Ok(Some(Endpoint {
                op: Op::OwnerList,
                template: format!("GET /crm/owners/{version}"),
                scope: Some("crm.objects.owners.read".into()),
            }));
        }
        [
            "crm",
            "v3",
            family @ ("objects" | "properties" | "pipelines"),
            rest @ ..,
        ] => (family, format!("/crm/v3/{family}"), rest),
        [
            "crm",
            "v4",
            family @ ("objects" | "associations"),
            rest @ ..,
        ] => (family, format!("/crm/v4/{family}"), rest),
        [
            "crm",
            family @ ("objects" | "properties" | "pipelines"),
            version,
            rest @ ..,
        ] if is_version(version) => (family, format!("/crm/{family}/{version}"), rest),
        ["crm", "associations", version, rest @ ..] if is_version(version) || *version == "v4" => {
            ("associations", format!("/crm/associations/{version}"), rest)
        }
        _ => return Ok(None),
    };
    let Some((raw_type, rest)) = rest.split_first() else {
        return Ok(None);
    };
    let ty = object_type(raw_type)?;
    let name = ty.name();
    let m = method.as_str();
    let read = Some(format!("crm.objects.{}.read", ty.scope_family()));
    let write = Some(format!("crm.objects.{}.write", ty.scope_family()));
    let endpoint = |op: Op, suffix: &str, scope: Option<String>| {
        Some(Endpoint {
            op,
            template: format!("{m} {prefix}/{name}{suffix}"),
            scope,
        })
    };
    let found = match (family, rest) {
        ("objects", []) => match m {
            "GET" => endpoint(Op::List(ty), "", read),
            "POST" => endpoint(Op::Create(ty), "", write),
            _ => None,
        },
        ("objects", ["batch", action]) if m == "POST" => match *action {
            "create" => endpoint(Op::BatchCreate(ty), "/batch/create", write),
            "read" => endpoint(Op::BatchRead(ty), "/batch/read", read),
            "update" => endpoint(Op::BatchUpdate(ty), "/batch/update", write),
            "upsert" => endpoint(Op::BatchUpsert(ty), "/batch/upsert", write),
            "archive" => endpoint(Op::BatchArchive(ty), "/batch/archive", write),
            _ => None,
        },
        ("objects", ["search"]) if m == "POST" => endpoint(Op::Search(ty), "/search", read),
        ("objects", ["merge"]) if m == "POST" => endpoint(Op::Merge(ty), "/merge", write),
        ("objects", ["gdpr-delete"]) if m == "POST" && ty == ObjectType::Contacts => {
            endpoint(Op::GdprDelete, "/gdpr-delete", write)
        }
        ("objects", [id]) => match m {
            "GET" => endpoint(Op::Get(ty, (*id).into()), "/{id}", read),
            "PATCH" => endpoint(Op::Update(ty, (*id).into()), "/{id}", write),
            "DELETE" => endpoint(Op::Archive(ty, (*id).into()), "/{id}", write),
            _ => None,
        },
        ("objects", [id, "associations", "default", to, to_id]) if m == "PUT" => {
            let to_type = object_type(to)?;
            endpoint(
                Op::AssociateSingle(ty, (*id).into(), to_type, (*to_id).into()),
                &format!("/{{id}}/associations/default/{}/{{toId}}", to_type.name()),
                write,
            )
        }
        // One record's associations in v4's shape; v3 answers in another
        // shape the sandbox does not serve.
        ("objects", [id, "associations", to]) if m == "GET" && !prefix.starts_with("/crm/v3") => {
            let to_type = object_type(to)?;
            endpoint(
                Op::AssociationsList(ty, (*id).into(), to_type),
                &format!("/{{id}}/associations/{}", to_type.name()),
                read,
            )
        }
        ("objects", [id, "associations", to, to_id]) if m == "DELETE" => {
            let to_type = object_type(to)?;
            endpoint(
                Op::UnassociateSingle(ty, (*id).into(), to_type, (*to_id).into()),
                &format!("/{{id}}/associations/{}/{{toId}}", to_type.name()),
                write,
            )
        }
        ("properties", []) => {
            let read = Some(format!("crm.schemas.{}.read", ty.scope_family()));
            let write = Some(format!("crm.schemas.{}.write", ty.scope_family()));
            match m {
                "GET" => endpoint(Op::PropertyList(ty), "", read),
                "POST" => endpoint(Op::PropertyCreate(ty), "", write),
                _ => None,
            }
        }
        ("properties", ["groups"]) => {
            let read = Some(format!("crm.schemas.{}.read", ty.scope_family()));
            let write = Some(format!("crm.schemas.{}.write", ty.scope_family()));
            match m {
                "GET" => endpoint(Op::GroupList(ty), "/groups", read),
                "POST" => endpoint(Op::GroupCreate(ty), "/groups", write),
                _ => None,
            }
        }
        ("properties", [property]) => {
            let read = Some(format!("crm.schemas.{}.read", ty.scope_family()));
            let write = Some(format!("crm.schemas.{}.write", ty.scope_family()));
            match m {
                "GET" => endpoint(
                    Op::PropertyGet(ty, (*property).into()),
                    "/{propertyName}",
                    read,
                ),
                "PATCH" => endpoint(
                    Op::PropertyUpdate(ty, (*property).into()),
                    "/{propertyName}",
                    write,
                ),
                _ => None,
            }
        }
        ("pipelines", []) if m == "GET" => endpoint(Op::PipelineList(ty), "", read),
        ("pipelines", [id]) if m == "GET" => {
            endpoint(Op::PipelineGet(ty, (*id).into()), "/{pipelineId}", read)
        }
        ("associations", [to, rest @ ..]) => {
            let to_type = object_type(to)?;
            let suffix = |tail: &str| format!("/{}{tail}", to_type.name());
            match (m, rest) {
                ("POST", ["batch", "associate", "default"]) => endpoint(
                    Op::AssociateBatch(ty, to_type),
                    &suffix("/batch/associate/default"),
                    write,
                ),
                ("POST", ["batch", "read"]) => endpoint(
                    Op::AssociationsRead(ty, to_type),
                    &suffix("/batch/read"),
                    read,
                ),
                ("POST", ["batch", "archive"]) => endpoint(
                    Op::AssociationsArchive(ty, to_type),
                    &suffix("/batch/archive"),
                    write,
                ),
                ("GET", ["labels"]) => {
                    endpoint(Op::AssociationLabels(ty, to_type), &suffix("/labels"), read)
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(found)
}

/// How the response leaves.
enum Outcome {
    Reply(Reply),
    Error(SimError),
    Drop,
    /// A 5xx fault: status and body (`None` = empty).
    Raw(u16, Option<Value>),
}

async fn handle(State(sim): State<Arc<HubSpotSim>>, request: Request) -> Response {
    let correlation = sim.correlation_id();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query: Query = QueryExtractor::<Query>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let error = SimError::new(413, "VALIDATION_ERROR", "Request body too large.");
            return json_response(
                error.status,
                Some(error.body(&correlation)),
                &correlation,
                None,
            );
        }
    };
    if let Some(inner) = path.strip_prefix("/_sandbox/") {
        return inspect(&sim, &parts.method, inner, &bytes, &correlation);
    }
    let _answering = sim.answering();
    if !sim.admit_uri(parts.uri.to_string().len()) {
        let mut response = Response::new(Body::from(
            "<html><head><title>414 Request-URI Too Large</title></head></html>",
        ));
        *response.status_mut() = StatusCode::URI_TOO_LONG;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    *lock(&sim.counters)
        .paths
        .entry(format!("{} {path}", parts.method))
        .or_default() += 1;
    let endpoint = match parse_route(&parts.method, &path) {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) => {
            let error = SimError::new(404, "OBJECT_NOT_FOUND", "resource not found");
            return json_response(404, Some(error.body(&correlation)), &correlation, None);
        }
        Err(error) => {
            return json_response(
                error.status,
                Some(error.body(&correlation)),
                &correlation,
                None,
            );
        }
    };
    // The route template only: paths and bodies may carry personal data.
    tracing::debug!(template = %endpoint.template, "hubspot sandbox request");
    let is_write = endpoint.is_write();
    {
        let mut counters = lock(&sim.counters);
        *counters
            .requests
            .entry(endpoint.template.clone())
            .or_default() += 1;
    }
    if let Err(error) = authorize(&sim, &parts.headers, &endpoint) {
        return json_response(
            error.status,
            Some(error.body(&correlation)),
            &correlation,
            None,
        );
    }
    if is_write {
        lock(&sim.counters).write_calls += 1;
    }
    if let Op::BatchRead(ty) = endpoint.op {
        count_batch_read(&sim, ty, &bytes);
    }
    if !sim.appointments_enabled() && endpoint.types().contains(&ObjectType::Appointments) {
        let error = SimError::validation(format!(
            "Unable to infer object type from: {}",
            ObjectType::Appointments.type_id()
        ));
        return json_response(
            error.status,
            Some(error.body(&correlation)),
            &correlation,
            None,
        );
    }

    let mut budget = None;
    if sim.rate_limits.load(Ordering::Relaxed) {
        match sim.limiter.admit(sim.clock.now(), endpoint.is_search()) {
            Ok(admitted) => {
                if !endpoint.is_search() && admitted.remaining == 0 {
                    lock(&sim.counters).windows_filled += 1;
                }
                if !endpoint.is_search() {
                    budget = Some(admitted);
                }
            }
            Err(refusal) => {
                let policy = match refusal {
                    Refusal::TenSecondly => "TEN_SECONDLY_ROLLING",
                    Refusal::Daily => "DAILY",
                    Refusal::Search => "SEARCH_SECONDLY",
                };
                *lock(&sim.counters)
                    .limit_refusals
                    .entry(policy.to_string())
                    .or_default() += 1;
                return refused(&sim, refusal, &correlation);
            }
        }
    }

    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = sim.faults.roll(is_write);
    if let Some(fault) = fault {
        count_fault(&sim, fault);
    }
    let outcome = match fault {
        Some(Fault::RateLimit) => {
            // Searches are refused by their own limiter, with its body.
            let refusal = if endpoint.is_search() {
                Refusal::Search
            } else {
                Refusal::TenSecondly
            };
            return refused(&sim, refusal, &correlation);
        }
        Some(Fault::ServerError(status, empty)) => Outcome::Raw(
            status,
            (!empty).then(|| server_error_body(status, &correlation)),
        ),
        Some(Fault::FailWrite(status)) => {
            Outcome::Raw(status, Some(server_error_body(status, &correlation)))
        }
        Some(Fault::DropConnection) => Outcome::Drop,
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            execute(&sim, &endpoint, &query, &bytes)
        }
        Some(Fault::CommittedButLost(drop)) => {
            let result = execute(&sim, &endpoint, &query, &bytes);
            match result {
                Outcome::Reply(_) if drop => Outcome::Drop,
                Outcome::Reply(_) => Outcome::Raw(502, None),
                other => other,
            }
        }
        None => execute(&sim, &endpoint, &query, &bytes),
    };
    match outcome {
        Outcome::Reply(reply) => json_response(reply.status, reply.body, &correlation, budget),
        Outcome::Error(error) => json_response(
            error.status,
            Some(error.body(&correlation)),
            &correlation,
            budget,
        ),
        Outcome::Raw(status, body) => json_response(status, body, &correlation, None),
        Outcome::Drop => dropped_response(&correlation),
    }
}

/// Counts a batch read under the unique property it looks records up by.
fn count_batch_read(sim: &HubSpotSim, ty: ObjectType, body: &[u8]) {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct IdProperty {
        /// The unique property the inputs name; absent for record ids.
        #[serde(default)]
        id_property: Option<String>,
    }
    let by = serde_json::from_slice::<IdProperty>(body)
        .ok()
        .and_then(|read| read.id_property)
        .unwrap_or_else(|| "hs_object_id".to_owned());
    *lock(&sim.counters)
        .batch_reads_by
        .entry(format!("{} by {by}", ty.name()))
        .or_default() += 1;
}

fn count_fault(sim: &HubSpotSim, fault: Fault) {
    let kind = match fault {
        Fault::RateLimit => "rateLimit",
        Fault::ServerError(..) => "serverError",
        Fault::DropConnection => "dropConnection",
        Fault::CommittedButLost(_) => "committedButLost",
        Fault::Slow(_) => "slow",
        Fault::FailWrite(_) => "failWrite",
    };
    *lock(&sim.counters)
        .faults_injected
        .entry(kind.to_string())
        .or_default() += 1;
}

fn server_error_body(status: u16, correlation: &str) -> Value {
    let message = match status {
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "internal error",
    };
    json!({
        "status": "error",
        "message": message,
        "correlationId": correlation,
        "category": "INTERNAL_ERROR",
    })
}

fn execute(sim: &HubSpotSim, endpoint: &Endpoint, query: &Query, body: &Bytes) -> Outcome {
    let now = sim.now();
    let whole_call = sim.batch_failures() == BatchFailures::WholeCall;
    let mut store = lock(&sim.store);
    let store = &mut *store;
    let result: Handled = match &endpoint.op {
        Op::Enablement(type_id) => handlers::enablement(sim.appointments_enabled(), type_id),
        Op::OwnerList => handlers::owners(query),
        Op::ApiUsage => handlers::api_usage(&sim.limiter.current(), now.wall),
        Op::Create(t) => handlers::create(store, *t, body, &now),
        Op::List(t) => handlers::list(store, *t, query),
        Op::Get(t, id) => handlers::get(store, *t, id, query),
        Op::Update(t, id) => handlers::update(store, *t, id, query, body, &now),
        Op::Archive(t, id) => handlers::archive(store, *t, id, &now),
        Op::BatchCreate(t) => handlers::batch_create(store, *t, body, &now),
        Op::BatchRead(t) => handlers::batch_read(store, *t, body, &now),
        Op::BatchUpdate(t) => handlers::batch_update(store, *t, body, whole_call, &now),
        Op::BatchUpsert(t) => handlers::batch_upsert(store, *t, body, whole_call, &now),
        Op::BatchArchive(t) => handlers::batch_archive(store, *t, body, &now),
        Op::Search(t) => handlers::run_search(store, *t, body, &now),
        Op::Merge(t) => handlers::merge(store, *t, body, &now),
        Op::GdprDelete => handlers::gdpr_delete(store, body),
        Op::PropertyList(t) => handlers::properties_list(store, *t, query),
        Op::PropertyCreate(t) => handlers::property_create(store, *t, body, &now),
        Op::PropertyGet(t, name) => handlers::property_get(store, *t, name),
        Op::PropertyUpdate(t, name) => handlers::property_update(store, *t, name, body, &now),
        Op::GroupList(t) => handlers::groups_list(store, *t),
        Op::GroupCreate(t) => handlers::group_create(store, *t, body),
        Op::PipelineList(t) => handlers::pipelines_list(store, *t),
        Op::PipelineGet(t, id) => handlers::pipeline_get(store, *t, id),
        Op::AssociateBatch(a, b) => handlers::associate_default_batch(store, *a, *b, body, &now),
        Op::AssociationsRead(a, b) => handlers::associations_read(store, *a, *b, body, &now),
        Op::AssociationsArchive(a, b) => handlers::associations_archive(store, *a, *b, body),
        Op::AssociationLabels(a, b) => handlers::association_labels(*a, *b),
        Op::AssociationsList(a, id, b) => handlers::associations_list(store, *a, id, *b, query),
        Op::AssociateSingle(a, id, b, to_id) => {
            handlers::associate_default_single(store, *a, id, *b, to_id, &now)
        }
        Op::UnassociateSingle(a, id, b, to_id) => {
            handlers::unassociate_single(store, *a, id, *b, to_id)
        }
    };
    match result {
        Ok(reply) => Outcome::Reply(reply),
        Err(error) => Outcome::Error(error),
    }
}

fn authorize(sim: &HubSpotSim, headers: &HeaderMap, endpoint: &Endpoint) -> Result<(), SimError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let tokens = lock(&sim.tokens);
    let Some(scopes) = token.and_then(|token| tokens.get(token)) else {
        return Err(SimError::new(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ));
    };
    if let (Some(granted), Some(needed)) = (scopes, &endpoint.scope)
        && !granted.contains(needed)
    {
        let mut error = SimError::new(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
        )
        .with_context("missingScopes", vec![needed.clone()]);
        error.details.errors = vec![json!({
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": [needed]},
        })];
        error.details.extra.insert(
            "links".into(),
            json!({"scopes": "https://developers.hubspot.com/scopes"}),
        );
        return Err(error);
    }
    Ok(())
}

fn refused(sim: &HubSpotSim, refusal: Refusal, correlation: &str) -> Response {
    let (policy, body, budget) = match refusal {
        Refusal::TenSecondly => (
            "TEN_SECONDLY_ROLLING",
            json!({
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation,
                "policyName": "TEN_SECONDLY_ROLLING",
            }),
            Some(Budget {
                remaining: 0,
                ..sim.limiter.current()
            }),
        ),
        Refusal::Daily => (
            "DAILY",
            json!({
                "status": "error",
                "message": "You have reached your daily limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation,
                "policyName": "DAILY",
            }),
            Some(Budget {
                daily_remaining: 0,
                ..sim.limiter.current()
            }),
        ),
        Refusal::Search => (
            "SEARCH_SECONDLY",
            json!({
                "status": "error",
                "message": "You have reached your secondly limit.",
                "category": "RATE_LIMITS",
                "correlationId": correlation,
            }),
            None,
        ),
    };
    *lock(&sim.counters)
        .rate_limited
        .entry(policy.to_string())
        .or_default() += 1;
    json_response(429, Some(body), correlation, budget)
}

fn json_response(
    status: u16,
    body: Option<Value>,
    correlation: &str,
    budget: Option<Budget>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = body
        .map(|body| serde_json::to_vec(&body).unwrap_or_default())
        .unwrap_or_default();
    let has_body = !bytes.is_empty();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
    }
    if let Ok(value) = HeaderValue::from_str(correlation) {
        headers.insert("x-hubspot-correlation-id", value);
    }
    if let Some(budget) = budget {
        let pairs = [
            ("x-hubspot-ratelimit-max", budget.max),
            ("x-hubspot-ratelimit-remaining", budget.remaining),
            ("x-hubspot-ratelimit-interval-milliseconds", 10_000),
            ("x-hubspot-ratelimit-daily", budget.daily),
            (
                "x-hubspot-ratelimit-daily-remaining",
                budget.daily_remaining,
            ),
        ];
        for (name, value) in pairs {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    response
}

/// A response whose connection breaks before it is complete: the header
/// promises more body than is sent, so the server aborts the connection and
/// the client sees a transport error, not a status.
fn dropped_response(correlation: &str) -> Response {
    let mut response = Response::new(Body::from("{"));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(4096u32));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(correlation) {
        headers.insert("x-hubspot-correlation-id", value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct Milliseconds {
    milliseconds: u64,
}

#[derive(Debug, Deserialize)]
struct Remaining {
    remaining: u32,
}

#[derive(Debug, Deserialize)]
struct TokenInput {
    token: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
struct BatchFailuresInput {
    mode: BatchFailures,
}

#[derive(Debug, Deserialize)]
struct ValueNotationInput {
    notation: super::ValueNotation,
}

fn inspect(
    sim: &HubSpotSim,
    method: &Method,
    path: &str,
    body: &[u8],
    correlation: &str,
) -> Response {
    let done = Ok(Reply {
        status: 204,
        body: None,
    });
    let result: Handled = match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "state") => Ok(Reply {
            status: 200,
            body: Some(json!(sim.snapshot())),
        }),
        ("GET", "counters") => Ok(Reply {
            status: 200,
            body: Some(json!(sim.counters())),
        }),
        ("GET", "faults") => Ok(Reply {
            status: 200,
            body: Some(json!(sim.faults())),
        }),
        ("POST", "faults") => parse_json::<FaultSettings>(body).map(|settings| {
            sim.set_faults(settings);
            Reply {
                status: 200,
                body: Some(json!(sim.faults())),
            }
        }),
        ("POST", "reset-counters") => {
            sim.reset_counters();
            done
        }
        ("POST", "index-lag") => parse_json::<Milliseconds>(body).and_then(|input| {
            sim.set_index_lag(Duration::from_millis(input.milliseconds));
            done
        }),
        ("POST", "advance-time") => parse_json::<Milliseconds>(body).and_then(|input| {
            sim.advance_time(Duration::from_millis(input.milliseconds));
            done
        }),
        ("POST", "daily-budget") => parse_json::<Remaining>(body).and_then(|input| {
            sim.set_daily_remaining(input.remaining);
            done
        }),
        ("POST", "reset-rate-limits") => {
            sim.reset_rate_limits();
            done
        }
        ("POST", "tokens") => parse_json::<TokenInput>(body).and_then(|input| {
            let scopes: Option<Vec<&str>> = input
                .scopes
                .as_ref()
                .map(|list| list.iter().map(String::as_str).collect());
            sim.set_token_scopes(&input.token, scopes.as_deref());
            done
        }),
        ("POST", "appointments") => parse_json::<Enabled>(body).and_then(|input| {
            sim.set_appointments_enabled(input.enabled);
            done
        }),
        ("GET", "batch-failures") => Ok(Reply {
            status: 200,
            body: Some(json!({ "mode": sim.batch_failures() })),
        }),
        ("POST", "batch-failures") => parse_json::<BatchFailuresInput>(body).and_then(|input| {
            sim.set_batch_failures(input.mode);
            done
        }),
        ("GET", "value-notation") => Ok(Reply {
            status: 200,
            body: Some(json!({ "notation": sim.value_notation() })),
        }),
        ("POST", "value-notation") => parse_json::<ValueNotationInput>(body).and_then(|input| {
            sim.set_value_notation(input.notation);
            done
        }),
        _ => Err(SimError::new(404, "OBJECT_NOT_FOUND", "resource not found")),
    };
    match result {
        Ok(reply) => json_response(reply.status, reply.body, correlation, None),
        Err(error) => json_response(
            error.status,
            Some(error.body(correlation)),
            correlation,
            None,
        ),
    }
}
