//! HTTP face of the simulation: the Ivoris routes of `reference/ivoris.md`
//! under `/relay/{linkname}/webservice/api`, guarded by Basic auth plus the
//! `app`/`app_version`/`api_key` query parameters and by the fault dice, and
//! the unauthenticated inspection and control routes under `/_sandbox/`.
//!
//! Date windows (`begin`, `end`) are whole days and both inclusive;
//! `LatestAppointments?since=` returns records whose `LastModified` is at or
//! after `since` (inclusive, so a cursor never misses a record changed in the
//! same second; clients de-duplicate by Id).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use serde_json::{Value, json};

use super::faults::{Failure, FaultUpdate};
use super::{
    IVORIS_VERSION, IvorisSim, RawRecords, RecordKind, RequestRecord, SimState, lock, read,
};
use crate::sandbox::credentials;

const API: &str = "/relay/{linkname}/webservice/api";

/// The Ivoris routes, relative to the API root.
const ROUTES: [&str; 13] = [
    "/About/v1/Ping",
    "/About/v1/IvorisVersion",
    "/About/v1/Documentation",
    "/Profile/v1/Profiles",
    "/Appointment/v1/DentistChairs",
    "/Practitioner/v1/AllPractitioners",
    "/Patient/v1/AllPatients",
    "/Patient/v1/Patient",
    "/Appointment/v1/AllAppointments",
    "/Appointment/v1/LatestAppointments",
    "/Appointment/v1/Patient/{patientId}/AllAppointments",
    "/Documentation/v1/DocumentEntries",
    "/Appointment/v1/AppointmentTemplates",
];

pub(super) fn router(sim: Arc<IvorisSim>) -> Router {
    let mut api: Router<Arc<IvorisSim>> = Router::new();
    for route in ROUTES {
        api = api.route(&format!("{API}{route}"), get(dispatch));
    }
    api.route_layer(middleware::from_fn_with_state(sim.clone(), guard))
        .route("/_sandbox/state", get(sandbox_state))
        .route("/_sandbox/counters", get(sandbox_counters))
        .route(
            "/_sandbox/faults",
            get(sandbox_faults).post(sandbox_set_faults),
        )
        .route("/_sandbox/advance", post(sandbox_advance))
        .route("/_sandbox/paging", post(sandbox_paging))
        .route("/_sandbox/raw", post(sandbox_raw))
        .route("/_sandbox/counters/reset", post(sandbox_reset_counters))
        .with_state(sim)
}

type Params = HashMap<String, String>;

fn json_body(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn json_value(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_body(status, body),
        Err(_) => server_error(),
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    json_value(status, &json!({ "message": text }))
}

fn server_error() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "An error has occurred.")
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn bad_request(parameter: &str, reason: &str) -> Response {
    json_value(
        StatusCode::BAD_REQUEST,
        &json!({
            "message": "The request is invalid.",
            "parameter": parameter,
            "reason": reason,
        }),
    )
}

/// The Basic credentials every request must carry, encoded once.
fn expected_authorization() -> String {
    let pair = format!(
        "{}:{}",
        credentials::IVORIS_USER,
        credentials::IVORIS_PASSWORD
    );
    format!("Basic {}", base64(pair.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn authorized(headers: &HeaderMap, query: &Params) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let expected = expected_authorization();
            v.len() == expected.len()
                && v[..6].eq_ignore_ascii_case("basic ")
                && v[6..] == expected[6..]
        });
    let present = |name: &str| query.get(name).is_some_and(|v| !v.trim().is_empty());
    basic
        && present("app")
        && present("app_version")
        && query.get("api_key").map(String::as_str) == Some(credentials::IVORIS_API_KEY)
}

fn unauthorized() -> Response {
    let mut response = message(
        StatusCode::UNAUTHORIZED,
        "Authorization has been denied for this request.",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Ivoris\""),
    );
    response
}

/// Route template without the relay prefix, as counters name it.
fn template(matched: &str) -> &str {
    matched
        .split_once("/webservice/api")
        .map_or(matched, |(_, rest)| rest)
}

/// Checks link name and credentials, rolls the fault dice, counts the answer.
async fn guard(
    State(sim): State<Arc<IvorisSim>>,
    matched: Option<MatchedPath>,
    Path(params): Path<Params>,
    Query(query): Query<Params>,
    request: Request,
    next: Next,
) -> Response {
    let route = format!(
        "{} {}",
        request.method(),
        matched.as_ref().map_or("?", |m| template(m.as_str()))
    );
    let started = sim.tick();
    let known = params.get("linkname").is_some_and(|link| {
        read(&sim.state)
            .world
            .locations
            .iter()
            .any(|l| &l.linkname == link)
    });
    let response = if !known {
        message(StatusCode::NOT_FOUND, "Unknown relay link.")
    } else if !authorized(request.headers(), &query) {
        unauthorized()
    } else {
        let link = params.get("linkname").map_or("", String::as_str);
        let roll = lock(&sim.faults).roll_request(link, tokio::time::Instant::now());
        if !roll.delay.is_zero() {
            tokio::time::sleep(roll.delay).await;
        }
        match roll.failure {
            Some(Failure::GatewayTimeout) => empty(StatusCode::GATEWAY_TIMEOUT),
            Some(Failure::Unavailable) => empty(StatusCode::SERVICE_UNAVAILABLE),
            Some(Failure::ServerError) => server_error(),
            None => next.run(request).await,
        }
    };
    sim.count(&route, response.status().as_u16());
    let windowed = ["begin", "end"]
        .iter()
        .any(|name| query.get(*name).is_some_and(|v| !v.trim().is_empty()));
    sim.log_request(RequestRecord {
        link: params.get("linkname").cloned().unwrap_or_default(),
        route: route.clone(),
        windowed,
        started,
        finished: sim.tick(),
        status: response.status().as_u16(),
    });
    tracing::debug!(%route, status = response.status().as_u16(), "ivoris sandbox request");
    response
}

/// One handler for all Ivoris routes: the route template decides.
async fn dispatch(
    State(sim): State<Arc<IvorisSim>>,
    matched: MatchedPath,
    Path(params): Path<Params>,
    Query(query): Query<Params>,
) -> Response {
    let route = template(matched.as_str());
    let state = read(&sim.state);
    let Some(location) = params.get("linkname").and_then(|link| {
        state
            .world
            .locations
            .iter()
            .position(|l| &l.linkname == link)
    }) else {
        return message(StatusCode::NOT_FOUND, "Unknown relay link.");
    };
    let request = Ivoris {
        sim: &sim,
        state: &state,
        location,
        query: &query,
    };
    match route {
        "/About/v1/Ping" => json_value(StatusCode::OK, &"Pong"),
        "/About/v1/IvorisVersion" => json_value(StatusCode::OK, &IVORIS_VERSION),
        "/About/v1/Documentation" => json_value(StatusCode::OK, &documentation()),
        "/Profile/v1/Profiles" => request.profiles(),
        "/Appointment/v1/DentistChairs" => request.chairs(),
        "/Practitioner/v1/AllPractitioners" => request.practitioners(),
        "/Appointment/v1/AppointmentTemplates" => request.templates(),
        "/Patient/v1/AllPatients" => request.all_patients(),
        "/Patient/v1/Patient" => request.patient(),
        "/Appointment/v1/AllAppointments" => request.all_appointments(),
        "/Appointment/v1/LatestAppointments" => request.latest_appointments(),
        "/Appointment/v1/Patient/{patientId}/AllAppointments" => {
            request.patient_appointments(params.get("patientId").map_or("", String::as_str))
        }
        "/Documentation/v1/DocumentEntries" => request.entries(),
        _ => message(StatusCode::NOT_FOUND, "No HTTP resource was found."),
    }
}

/// A JSON array written record by record.
struct JsonArray {
    /// The JSON text so far.
    body: String,
    /// Whether no record was written yet (no comma needed).
    empty: bool,
}

impl JsonArray {
    fn new() -> JsonArray {
        JsonArray {
            body: String::from("["),
            empty: true,
        }
    }

    fn push(&mut self, record: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(record) {
            if !self.empty {
                self.body.push(',');
            }
            self.body.push_str(&text);
            self.empty = false;
        }
    }

    fn finish(mut self) -> Response {
        self.body.push(']');
        json_body(StatusCode::OK, self.body)
    }
}

/// A query parameter that is missing or unparseable, and why.
struct BadParam(&'static str, &'static str);

/// One parsed request against one location.
struct Ivoris<'a> {
    /// For the fault dice (duplicate pages, missing entries).
    sim: &'a IvorisSim,
    /// The world, read-locked for the whole request.
    state: &'a SimState,
    /// Index of the installation addressed by the link name.
    location: usize,
    /// Query parameters as sent.
    query: &'a Params,
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_date_time(text).map(|t| t.date()))
}

fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

impl Ivoris<'_> {
    fn data(&self) -> Option<&crate::sandbox::data::Location> {
        self.state.world.locations.get(self.location)
    }

    fn raw(&self) -> Option<&RawRecords> {
        self.state.raw.get(self.location)
    }

    /// Writes a record, or its raw replacement when one is set.
    fn push<T: Serialize>(&self, out: &mut JsonArray, kind: RecordKind, id: &str, record: &T) {
        match self
            .raw()
            .and_then(|raw| raw.replaced.get(&(kind, id.to_string())))
        {
            Some(value) => out.push(value),
            None => out.push(record),
        }
    }

    /// False when the optional `profileId` names another profile (the answer is then empty).
    fn profile_matches(&self) -> bool {
        match (self.query.get("profileId"), self.data()) {
            (Some(asked), Some(location)) => asked.is_empty() || *asked == location.profile.id,
            _ => true,
        }
    }

    fn date_param(
        &self,
        name: &'static str,
        required: bool,
    ) -> Result<Option<NaiveDate>, BadParam> {
        match self.query.get(name).map(String::as_str) {
            None | Some("") if required => Err(BadParam(name, "required (YYYY-MM-DD)")),
            None | Some("") => Ok(None),
            Some(text) => parse_date(text)
                .map(Some)
                .ok_or(BadParam(name, "expected a date YYYY-MM-DD")),
        }
    }

    fn window(&self, required: bool) -> Result<(Option<NaiveDate>, Option<NaiveDate>), BadParam> {
        let begin = self.date_param("begin", required)?;
        let end = self.date_param("end", required)?;
        if let (Some(b), Some(e)) = (begin, end)
            && e < b
        {
            return Err(BadParam("end", "end is before begin"));
        }
        Ok((begin, end))
    }

    fn list<T: Serialize>(&self, items: impl IntoIterator<Item = T>) -> Response {
        let mut out = JsonArray::new();
        for item in items {
            out.push(&item);
        }
        out.finish()
    }

    fn profiles(&self) -> Response {
        self.list(self.data().map(|l| &l.profile))
    }

    fn chairs(&self) -> Response {
        let chairs = self
            .data()
            .filter(|_| self.profile_matches())
            .map(|l| l.chairs.iter());
        self.list(chairs.into_iter().flatten())
    }

    fn practitioners(&self) -> Response {
        self.list(
            self.data()
                .map(|l| l.practitioners.iter())
                .into_iter()
                .flatten(),
        )
    }

    fn templates(&self) -> Response {
        self.list(
            self.data()
                .map(|l| l.templates.iter())
                .into_iter()
                .flatten(),
        )
    }

    fn all_patients(&self) -> Response {
        let page = match self.query.get("page").map(String::as_str) {
            None | Some("") => 0,
            Some(text) => match text.parse::<usize>() {
                Ok(page) => page,
                Err(_) => return bad_request("page", "expected a non-negative integer"),
            },
        };
        let (Some(location), Some(raw)) = (self.data(), self.raw()) else {
            return server_error();
        };
        let extra = raw.extra(RecordKind::Patient);
        let total = location.patients.len() + extra.len();
        let size = self.state.page_size.max(1);
        let Some(start) = page.checked_mul(size).filter(|s| *s < total) else {
            return JsonArray::new().finish();
        };
        let end = start.saturating_add(size).min(total);
        let mut out = JsonArray::new();
        let first = if start > 0 && lock(&self.sim.faults).roll_duplicate() {
            start - 1
        } else {
            start
        };
        for i in first..end {
            match location.patients.get(i) {
                Some(patient) => self.push(&mut out, RecordKind::Patient, &patient.id, patient),
                None => {
                    if let Some(value) = extra.get(i - location.patients.len()) {
                        out.push(value);
                    }
                }
            }
        }
        out.finish()
    }

    fn patient(&self) -> Response {
        let Some(id) = self.query.get("id").filter(|id| !id.is_empty()) else {
            return bad_request("id", "required");
        };
        let found = self
            .state
            .indexes
            .get(self.location)
            .and_then(|i| i.patients.get(id));
        let patient = found.and_then(|&i| self.data()?.patients.get(i));
        match patient {
            Some(patient) => {
                let replaced = self
                    .raw()
                    .and_then(|raw| raw.replaced.get(&(RecordKind::Patient, id.clone())));
                match replaced {
                    Some(value) => json_value(StatusCode::OK, value),
                    None => json_value(StatusCode::OK, patient),
                }
            }
            None => message(StatusCode::NOT_FOUND, "Patient not found."),
        }
    }

    fn appointments_where(
        &self,
        mut keep: impl FnMut(&crate::ivoris::wire::Appointment) -> bool,
        order_by_modified: bool,
        extra: impl Fn(&Value) -> bool,
    ) -> Response {
        let (Some(location), Some(raw)) = (self.data(), self.raw()) else {
            return server_error();
        };
        let mut selected: Vec<_> = location.appointments.iter().filter(|a| keep(a)).collect();
        if order_by_modified {
            selected.sort_by(|a, b| (a.last_modified, &a.id).cmp(&(b.last_modified, &b.id)));
        } else {
            selected.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        }
        let mut out = JsonArray::new();
        for appointment in selected {
            self.push(
                &mut out,
                RecordKind::Appointment,
                &appointment.id,
                appointment,
            );
        }
        for value in raw
            .extra(RecordKind::Appointment)
            .iter()
            .filter(|v| extra(v))
        {
            out.push(value);
        }
        out.finish()
    }

    fn all_appointments(&self) -> Response {
        let (begin, end) = match self.window(true) {
            Ok(window) => window,
            Err(BadParam(parameter, reason)) => return bad_request(parameter, reason),
        };
        if !self.profile_matches() {
            return JsonArray::new().finish();
        }
        self.appointments_where(
            |a| {
                a.start.is_some_and(|s| {
                    begin.is_none_or(|b| s.date() >= b) && end.is_none_or(|e| s.date() <= e)
                })
            },
            false,
            |_| true,
        )
    }

    fn latest_appointments(&self) -> Response {
        let since = match self.query.get("since").map(String::as_str) {
            None | Some("") => return bad_request("since", "required (YYYY-MM-DDTHH:MM:SS)"),
            Some(text) => match parse_date_time(text) {
                Some(since) => since,
                None => return bad_request("since", "expected a date-time YYYY-MM-DDTHH:MM:SS"),
            },
        };
        if !self.profile_matches() {
            return JsonArray::new().finish();
        }
        self.appointments_where(
            |a| a.last_modified.is_some_and(|m| m >= since),
            true,
            |_| true,
        )
    }

    fn patient_appointments(&self, patient: &str) -> Response {
        let positions: Vec<usize> = self
            .state
            .indexes
            .get(self.location)
            .and_then(|i| i.appointments_by_patient.get(patient))
            .cloned()
            .unwrap_or_default();
        let mut wanted = positions.into_iter().peekable();
        let mut position = 0usize;
        self.appointments_where(
            |_| {
                let keep = wanted.peek() == Some(&position);
                if keep {
                    wanted.next();
                }
                position += 1;
                keep
            },
            false,
            |v| v.get("PatientId").and_then(Value::as_str) == Some(patient),
        )
    }

    fn entries(&self) -> Response {
        let Some(patient) = self.query.get("patientId").filter(|p| !p.is_empty()) else {
            return bad_request("patientId", "required");
        };
        let (begin, end) = match self.window(false) {
            Ok(window) => window,
            Err(BadParam(parameter, reason)) => return bad_request(parameter, reason),
        };
        let (Some(location), Some(raw)) = (self.data(), self.raw()) else {
            return server_error();
        };
        if !self.profile_matches() {
            return JsonArray::new().finish();
        }
        let mut selected: Vec<_> = self
            .state
            .indexes
            .get(self.location)
            .and_then(|i| i.entries_by_patient.get(patient))
            .map(|positions| {
                positions
                    .iter()
                    .filter_map(|&i| location.entries.get(i))
                    .collect()
            })
            .unwrap_or_default();
        selected.retain(|e| {
            e.date
                .is_some_and(|d| begin.is_none_or(|b| d >= b) && end.is_none_or(|e| d <= e))
        });
        selected.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
        let windowed = begin.is_some() || end.is_some();
        let omitted = lock(&self.sim.faults).omitted_entries(windowed, selected.len());
        let mut out = JsonArray::new();
        for (entry, omit) in selected.into_iter().zip(omitted) {
            if !omit {
                self.push(&mut out, RecordKind::Entry, &entry.id, entry);
            }
        }
        for value in raw.extra(RecordKind::Entry) {
            if value.get("PatientId").and_then(Value::as_str) == Some(patient.as_str()) {
                out.push(value);
            }
        }
        out.finish()
    }
}

/// A small OpenAPI document listing the routes, as each installation serves one.
fn documentation() -> Value {
    let query = |name: &str, required: bool, format: &str| {
        json!({"name": name, "in": "query", "required": required,
               "schema": {"type": "string", "format": format}})
    };
    let array = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array"}}}}});
    let mut paths = serde_json::Map::new();
    let parameters: [(&str, Vec<Value>); 13] = [
        ("/About/v1/Ping", vec![]),
        ("/About/v1/IvorisVersion", vec![]),
        ("/About/v1/Documentation", vec![]),
        ("/Profile/v1/Profiles", vec![]),
        (
            "/Appointment/v1/DentistChairs",
            vec![query("profileId", false, "uuid")],
        ),
        ("/Practitioner/v1/AllPractitioners", vec![]),
        (
            "/Patient/v1/AllPatients",
            vec![query("page", false, "int32")],
        ),
        ("/Patient/v1/Patient", vec![query("id", true, "uuid")]),
        (
            "/Appointment/v1/AllAppointments",
            vec![
                query("profileId", false, "uuid"),
                query("begin", true, "date"),
                query("end", true, "date"),
            ],
        ),
        (
            "/Appointment/v1/LatestAppointments",
            vec![query("since", true, "date-time")],
        ),
        (
            "/Appointment/v1/Patient/{patientId}/AllAppointments",
            vec![
                json!({"name": "patientId", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}),
            ],
        ),
        (
            "/Documentation/v1/DocumentEntries",
            vec![
                query("patientId", true, "uuid"),
                query("profileId", false, "uuid"),
                query("begin", false, "date"),
                query("end", false, "date"),
            ],
        ),
        ("/Appointment/v1/AppointmentTemplates", vec![]),
    ];
    for (path, params) in parameters {
        paths.insert(
            path.to_string(),
            json!({"get": {"parameters": params, "responses": array}}),
        );
    }
    json!({
        "openapi": "3.0.1",
        "info": {"title": "Ivoris Web Service", "version": IVORIS_VERSION},
        "paths": paths,
    })
}

async fn sandbox_state(State(sim): State<Arc<IvorisSim>>) -> Response {
    let faults = sim.faults();
    let state = read(&sim.state);
    let locations: Vec<Value> = state
        .world
        .locations
        .iter()
        .zip(&state.raw)
        .map(|(l, raw)| {
            let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
            for appointment in &l.appointments {
                *by_state
                    .entry(appointment.state.as_deref().unwrap_or(""))
                    .or_default() += 1;
            }
            json!({
                "key": l.key,
                "name": l.name,
                "brand": l.brand,
                "linkname": l.linkname,
                "profile_id": l.profile.id,
                "patients": l.patients.len(),
                "appointments": l.appointments.len(),
                "appointments_by_state": by_state,
                "entries": l.entries.len(),
                "pending_entries": l.pending_entries.len(),
                "raw_records": raw.count(),
            })
        })
        .collect();
    json_value(
        StatusCode::OK,
        &json!({
            "now": state.world.now,
            "today": state.world.now.date(),
            "seed": state.world.seed,
            "size": state.world.size,
            "page_size": state.page_size,
            "faults": faults,
            "locations": locations,
        }),
    )
}

async fn sandbox_counters(State(sim): State<Arc<IvorisSim>>) -> Response {
    json_value(StatusCode::OK, &sim.counters())
}

async fn sandbox_faults(State(sim): State<Arc<IvorisSim>>) -> Response {
    json_value(StatusCode::OK, &sim.faults())
}

async fn sandbox_set_faults(State(sim): State<Arc<IvorisSim>>, body: String) -> Response {
    match serde_json::from_str::<FaultUpdate>(&body) {
        Ok(update) => json_value(StatusCode::OK, &sim.update_faults(&update)),
        Err(error) => bad_request("body", &error.to_string()),
    }
}

async fn sandbox_advance(
    State(sim): State<Arc<IvorisSim>>,
    Query(query): Query<Params>,
) -> Response {
    let days = match query.get("days").map(String::as_str) {
        None | Some("") => 1,
        Some(text) => match text.parse::<u32>() {
            Ok(days) if days <= super::advance::MAX_DAYS => days,
            _ => return bad_request("days", "expected 0 to 366"),
        },
    };
    match tokio::task::spawn_blocking(move || sim.advance_days(days)).await {
        Ok(summary) => json_value(StatusCode::OK, &summary),
        Err(_) => server_error(),
    }
}

async fn sandbox_paging(State(sim): State<Arc<IvorisSim>>, body: String) -> Response {
    let page_size = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("page_size")?.as_u64())
        .filter(|n| *n >= 1);
    match page_size.and_then(|n| usize::try_from(n).ok()) {
        Some(n) => {
            sim.set_page_size(n);
            json_value(StatusCode::OK, &json!({"page_size": sim.page_size()}))
        }
        None => bad_request("page_size", "expected a positive integer"),
    }
}

/// Body of `POST /_sandbox/raw`: a raw record to serve, added among the
/// valid ones or, with `replace_id`, instead of the valid record with that Id.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    /// Location key (`magdeburg`).
    location: String,
    /// `Patient`, `Appointment` or `Entry`.
    kind: RecordKind,
    /// The record exactly as it is to be served.
    value: Value,
    /// Id of the valid record to replace.
    replace_id: Option<String>,
}

async fn sandbox_raw(State(sim): State<Arc<IvorisSim>>, body: String) -> Response {
    let request = match serde_json::from_str::<RawRequest>(&body) {
        Ok(request) => request,
        Err(error) => return bad_request("body", &error.to_string()),
    };
    let result = match &request.replace_id {
        Some(id) => sim.replace_raw(&request.location, request.kind, id, request.value),
        None => sim.inject_raw(&request.location, request.kind, request.value),
    };
    match result {
        Ok(()) => json_value(StatusCode::OK, &json!({"ok": true})),
        Err(error) => error.into_response(),
    }
}

async fn sandbox_reset_counters(State(sim): State<Arc<IvorisSim>>) -> Response {
    sim.reset_counters();
    json_value(StatusCode::OK, &sim.counters())
}

impl IntoResponse for super::SimError {
    fn into_response(self) -> Response {
        message(StatusCode::NOT_FOUND, &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("sync:pw", "c3luYzpwdw=="),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn dates_and_date_times_are_parsed_strictly() {
        assert_eq!(
            parse_date("2026-10-01"),
            NaiveDate::from_ymd_opt(2026, 10, 1)
        );
        assert_eq!(
            parse_date("2026-10-01T08:00:00"),
            NaiveDate::from_ymd_opt(2026, 10, 1)
        );
        for bad in ["01.10.2026", "2026-02-30", "gestern", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(
            parse_date_time("2026-10-01"),
            NaiveDate::from_ymd_opt(2026, 10, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
        );
    }

    #[test]
    fn counter_names_drop_the_relay_prefix() {
        assert_eq!(
            template("/relay/{linkname}/webservice/api/Patient/v1/AllPatients"),
            "/Patient/v1/AllPatients"
        );
    }
}
