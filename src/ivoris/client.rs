//! The client of one Ivoris installation's REST web service.
//!
//! The Ivoris API is unstable under load (`reference/ivoris.md`): 502/503/504
//! with empty bodies, 500 with a generic message, answers slower than any
//! sensible timeout. The client therefore sends at most one request at a
//! time to an installation, spaces its requests by the health of the
//! answers ([`super::pacing`]: faster while they come back quickly, slower
//! on 5xx, timeouts or rising latency, never above the practice's
//! ceiling), retries transient failures with capped exponential backoff
//! and full jitter, and stops asking a server that keeps failing (a circuit
//! breaker that opens for a cool-down). Answers are parsed leniently record
//! by record ([`super::parse`]). Nothing here writes to Ivoris.
//!
//! Error messages are German and English and never contain personal data,
//! credentials or URLs with query strings; logs name routes and counts only.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::breaker::{BreakerState, CircuitBreaker};
use super::pacing::{Outcome, PaceReport, Pacer, Pacing};
use super::parse::{Lenient, Parsed, parse_array};
use super::wire::{
    Appointment, AppointmentTemplate, DentistChair, DocumentEntry, Patient, Practitioner, Profile,
};
use crate::secrets::{IvorisSecrets, Secret};
use crate::settings::LocationSettings;

/// Route templates, as counters and messages name them.
pub mod route {
    pub const PING: &str = "/About/v1/Ping";
    pub const VERSION: &str = "/About/v1/IvorisVersion";
    pub const PROFILES: &str = "/Profile/v1/Profiles";
    pub const CHAIRS: &str = "/Appointment/v1/DentistChairs";
    pub const PRACTITIONERS: &str = "/Practitioner/v1/AllPractitioners";
    pub const TEMPLATES: &str = "/Appointment/v1/AppointmentTemplates";
    pub const PATIENTS: &str = "/Patient/v1/AllPatients";
    pub const PATIENT: &str = "/Patient/v1/Patient";
    pub const APPOINTMENTS: &str = "/Appointment/v1/AllAppointments";
    pub const LATEST_APPOINTMENTS: &str = "/Appointment/v1/LatestAppointments";
    pub const PATIENT_APPOINTMENTS: &str = "/Appointment/v1/Patient/{patientId}/AllAppointments";
    pub const DOCUMENT_ENTRIES: &str = "/Documentation/v1/DocumentEntries";
}

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Backoff cap before the first retry; doubles per retry.
    pub base_delay: Duration,
    /// Upper bound of any single backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay between zero and the capped exponential
    /// bound, so retries of several clients do not arrive in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let bound = self.base_delay.saturating_mul(factor).min(self.max_delay);
        bound.mul_f64(rand::random::<f64>())
    }
}

/// When the circuit breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed requests (after retries) that open it.
    pub threshold: u32,
    /// How long it stays open before one trial request.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            cool_down: Duration::from_secs(120),
        }
    }
}

/// Everything the client of one installation needs.
#[derive(Debug, Clone)]
pub struct IvorisClientConfig {
    /// Location key, named in error messages so staff know which server failed.
    pub location_key: String,
    /// API root, e.g. `https://relay.computer-konkret.de/relay/{link}/webservice/api`.
    pub base_url: String,
    /// HTTP Basic user.
    pub user: String,
    /// HTTP Basic password.
    pub password: Secret,
    /// `app` query parameter.
    pub app: String,
    /// `app_version` query parameter.
    pub app_version: String,
    /// `api_key` query parameter.
    pub api_key: Secret,
    /// Per-request timeout; integrators use about 20 s.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Circuit breaker of this installation.
    pub breaker: BreakerPolicy,
    /// How requests are spaced, so the server is asked as fast as it
    /// answers healthily and no faster (adaptive unless a comparison or a
    /// test wants a fixed pause).
    pub pacing: Pacing,
}

/// Default per-request timeout (`reference/ivoris.md`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

impl IvorisClientConfig {
    /// The configuration of a location with default timing.
    pub fn for_location(location: &LocationSettings, secrets: &IvorisSecrets) -> Self {
        IvorisClientConfig {
            location_key: location.key.clone(),
            base_url: location.ivoris_url.clone(),
            user: location.ivoris_user.clone(),
            password: secrets.password.clone(),
            app: location.ivoris_app.clone(),
            app_version: location.ivoris_app_version.clone(),
            api_key: secrets.api_key.clone(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            pacing: Pacing::default(),
        }
    }
}

/// What can go wrong talking to Ivoris. Messages name the location and the
/// route, never record contents, credentials or query strings.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IvorisError {
    #[error(
        "Ivoris am Standort „{location}“ lehnt die Anmeldung ab: bitte Ivoris-Benutzer, Passwort und API-Schlüssel (sowie app/app_version) in den Einstellungen prüfen / \
         Ivoris at location \"{location}\" refuses the login: please check the Ivoris user, password and API key (and app/app_version) in the settings"
    )]
    Unauthorized { location: String },
    #[error(
        "Ivoris am Standort „{location}“ kennt {route} nicht (404); stimmt die Ivoris-Adresse? / \
         Ivoris at location \"{location}\" does not know {route} (404); is the Ivoris URL right?"
    )]
    NotFound {
        location: String,
        route: &'static str,
    },
    #[error(
        "Ivoris am Standort „{location}“ weist die Anfrage {route} zurück ({status}) / \
         Ivoris at location \"{location}\" rejects the request {route} ({status})"
    )]
    BadRequest {
        location: String,
        route: &'static str,
        status: u16,
    },
    #[error(
        "Ivoris-Server am Standort „{location}“ meldet einen Fehler ({status}) bei {route} / \
         The Ivoris server of location \"{location}\" reports an error ({status}) on {route}"
    )]
    Server {
        location: String,
        route: &'static str,
        status: u16,
    },
    #[error(
        "Ivoris-Server am Standort „{location}“ antwortet nicht rechtzeitig auf {route} / \
         The Ivoris server of location \"{location}\" does not answer {route} in time"
    )]
    Timeout {
        location: String,
        route: &'static str,
    },
    #[error(
        "Keine Verbindung zum Ivoris-Server am Standort „{location}“ ({route}): {detail} / \
         No connection to the Ivoris server of location \"{location}\" ({route}): {detail}"
    )]
    Transport {
        location: String,
        route: &'static str,
        detail: String,
    },
    #[error(
        "Der Ivoris-Server am Standort „{location}“ antwortet nicht; neuer Versuch ab {retry_at} / \
         The Ivoris server of location \"{location}\" is not answering; retrying from {retry_at}"
    )]
    BreakerOpen {
        location: String,
        /// When the breaker lets a trial request through (monotonic).
        until: Instant,
        /// The same instant as local wall-clock time, for the message.
        retry_at: String,
    },
    #[error(
        "Antwort von Ivoris am Standort „{location}“ auf {route} ist nicht lesbar: {detail} / \
         The answer of Ivoris at location \"{location}\" to {route} is unreadable: {detail}"
    )]
    Decode {
        location: String,
        route: &'static str,
        detail: String,
    },
}

impl IvorisError {
    /// Whether another attempt may succeed (server trouble, not a refusal).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IvorisError::Server { .. }
                | IvorisError::Timeout { .. }
                | IvorisError::Transport { .. }
        )
    }
}

/// Requests of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteCounts {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// Attempts repeated after a transient failure.
    pub retries: u64,
    /// Calls that failed after all retries.
    pub failures: u64,
}

/// Counters per route template.
pub type ClientCounters = BTreeMap<&'static str, RouteCounts>;

/// Client of one Ivoris installation. Cheap to share by reference; all
/// calls of one client are serialised.
pub struct IvorisClient {
    /// Connection settings, credentials and timing.
    config: IvorisClientConfig,
    /// One HTTP client (connection pool) per installation.
    http: reqwest::Client,
    /// At most one request in flight: Ivoris fails under parallel load.
    in_flight: Semaphore,
    /// When the next request may start, learnt from the answers.
    pacer: Mutex<Pacer>,
    /// Stops asking a server that keeps failing.
    breaker: Mutex<CircuitBreaker>,
    /// Requests, retries and failures per route.
    counters: Mutex<ClientCounters>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

impl IvorisClient {
    /// A client for one installation.
    pub fn new(config: IvorisClientConfig) -> Result<IvorisClient, IvorisError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|error| IvorisError::Transport {
                location: config.location_key.clone(),
                route: "-",
                detail: error.without_url().to_string(),
            })?;
        let breaker = CircuitBreaker::new(config.breaker.threshold, config.breaker.cool_down);
        let pacer = Pacer::new(config.pacing);
        Ok(IvorisClient {
            config,
            http,
            in_flight: Semaphore::new(1),
            pacer: Mutex::new(pacer),
            breaker: Mutex::new(breaker),
            counters: Mutex::new(ClientCounters::new()),
        })
    }

    /// The location this client serves.
    pub fn location_key(&self) -> &str {
        &self.config.location_key
    }

    /// Requests, retries and failures per route so far.
    pub fn counters(&self) -> ClientCounters {
        lock(&self.counters).clone()
    }

    /// How fast this installation is asked now (requests per second the
    /// pacer allows, slowdowns so far), for the engine to show or log.
    pub fn pace(&self) -> PaceReport {
        lock(&self.pacer).report()
    }

    /// The circuit breaker's current state.
    pub fn breaker_state(&self) -> BreakerState {
        lock(&self.breaker).state(Instant::now())
    }

    /// `GET /About/v1/Ping`: whether the installation answers.
    pub async fn ping(&self) -> Result<(), IvorisError> {
        self.get(route::PING, route::PING.to_owned(), Vec::new())
            .await
            .map(|_| ())
    }

    /// `GET /About/v1/IvorisVersion`: the installation's version string.
    pub async fn version(&self) -> Result<String, IvorisError> {
        let value = self
            .get(route::VERSION, route::VERSION.to_owned(), Vec::new())
            .await?;
        match value {
            Value::String(version) => Ok(version),
            other => Ok(other.to_string()),
        }
    }

    /// `GET /Profile/v1/Profiles`.
    pub async fn profiles(&self) -> Result<Parsed<Profile>, IvorisError> {
        self.list(route::PROFILES, route::PROFILES.to_owned(), Vec::new())
            .await
    }

    /// `GET /Appointment/v1/DentistChairs?profileId=`.
    pub async fn chairs(&self, profile: Option<&str>) -> Result<Parsed<DentistChair>, IvorisError> {
        let query = profile
            .map(|p| vec![("profileId", p.to_owned())])
            .unwrap_or_default();
        self.list(route::CHAIRS, route::CHAIRS.to_owned(), query)
            .await
    }

    /// `GET /Practitioner/v1/AllPractitioners`.
    pub async fn practitioners(&self) -> Result<Parsed<Practitioner>, IvorisError> {
        self.list(
            route::PRACTITIONERS,
            route::PRACTITIONERS.to_owned(),
            Vec::new(),
        )
        .await
    }

    /// `GET /Appointment/v1/AppointmentTemplates`.
    pub async fn templates(&self) -> Result<Parsed<AppointmentTemplate>, IvorisError> {
        self.list(route::TEMPLATES, route::TEMPLATES.to_owned(), Vec::new())
            .await
    }

    /// `GET /Patient/v1/AllPatients?page=N` (zero-based; empty past the end).
    pub async fn patients_page(&self, page: u32) -> Result<Parsed<Patient>, IvorisError> {
        self.list(
            route::PATIENTS,
            route::PATIENTS.to_owned(),
            vec![("page", page.to_string())],
        )
        .await
    }

    /// `GET /Patient/v1/Patient?id=`: empty when Ivoris does not know the id.
    pub async fn patient(&self, id: &str) -> Result<Parsed<Patient>, IvorisError> {
        let value = self
            .get(
                route::PATIENT,
                route::PATIENT.to_owned(),
                vec![("id", id.to_owned())],
            )
            .await;
        let value = match value {
            Err(IvorisError::NotFound { .. }) => return Ok(Parsed::default()),
            other => other?,
        };
        let mut parsed = Parsed::default();
        match Patient::from_value(&value) {
            Ok(patient) => parsed.records.push(patient),
            Err(reject) => parsed.rejects.push(reject),
        }
        Ok(parsed)
    }

    /// `GET /Appointment/v1/AllAppointments?profileId=&begin=&end=`, both days inclusive.
    pub async fn appointments(
        &self,
        profile: Option<&str>,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<Parsed<Appointment>, IvorisError> {
        let mut query = vec![("begin", date(begin)), ("end", date(end))];
        if let Some(profile) = profile {
            query.push(("profileId", profile.to_owned()));
        }
        self.list(route::APPOINTMENTS, route::APPOINTMENTS.to_owned(), query)
            .await
    }

    /// `GET /Appointment/v1/LatestAppointments?since=`: appointments changed
    /// at or after `since`.
    pub async fn latest_appointments(
        &self,
        since: NaiveDateTime,
    ) -> Result<Parsed<Appointment>, IvorisError> {
        self.list(
            route::LATEST_APPOINTMENTS,
            route::LATEST_APPOINTMENTS.to_owned(),
            vec![("since", since.format("%Y-%m-%dT%H:%M:%S").to_string())],
        )
        .await
    }

    /// `GET /Appointment/v1/Patient/{patientId}/AllAppointments`.
    pub async fn patient_appointments(
        &self,
        patient: &str,
    ) -> Result<Parsed<Appointment>, IvorisError> {
        let path = format!(
            "/Appointment/v1/Patient/{}/AllAppointments",
            encode(patient)
        );
        self.list(route::PATIENT_APPOINTMENTS, path, Vec::new())
            .await
    }

    /// `GET /Documentation/v1/DocumentEntries?patientId=&profileId=&begin=&end=`.
    pub async fn document_entries(
        &self,
        patient: &str,
        profile: Option<&str>,
        begin: Option<NaiveDate>,
        end: Option<NaiveDate>,
    ) -> Result<Parsed<DocumentEntry>, IvorisError> {
        let mut query = vec![("patientId", patient.to_owned())];
        if let Some(profile) = profile {
            query.push(("profileId", profile.to_owned()));
        }
        if let Some(begin) = begin {
            query.push(("begin", date(begin)));
        }
        if let Some(end) = end {
            query.push(("end", date(end)));
        }
        self.list(
            route::DOCUMENT_ENTRIES,
            route::DOCUMENT_ENTRIES.to_owned(),
            query,
        )
        .await
    }

    async fn list<T: Lenient>(
        &self,
        route: &'static str,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> Result<Parsed<T>, IvorisError> {
        let value = self.get(route, path, query).await?;
        parse_array(&value).map_err(|error| IvorisError::Decode {
            location: self.config.location_key.clone(),
            route,
            detail: format!(
                "JSON-Liste erwartet, {found} erhalten / JSON array expected, got {found}",
                found = error.found
            ),
        })
    }

    /// One call with retries, guarded by the breaker.
    async fn get(
        &self,
        route: &'static str,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> Result<Value, IvorisError> {
        let mut retry = 0;
        loop {
            self.check_breaker()?;
            match self.attempt(route, &path, &query).await {
                Ok(value) => {
                    lock(&self.breaker).success();
                    return Ok(value);
                }
                Err(error) if error.is_transient() && retry < self.config.retry.max_retries => {
                    retry += 1;
                    self.count(route, |c| c.retries += 1);
                    let delay = self.config.retry.backoff(retry);
                    tracing::debug!(
                        location = %self.config.location_key,
                        route,
                        retry,
                        delay_ms = delay.as_millis() as u64,
                        "ivoris request failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    self.count(route, |c| c.failures += 1);
                    if error.is_transient()
                        && let Some(until) = lock(&self.breaker).failure(Instant::now())
                    {
                        tracing::warn!(
                            location = %self.config.location_key,
                            route,
                            cool_down_s = until.saturating_duration_since(Instant::now()).as_secs(),
                            "ivoris circuit breaker open"
                        );
                    }
                    return Err(error);
                }
            }
        }
    }

    fn check_breaker(&self) -> Result<(), IvorisError> {
        let now = Instant::now();
        match lock(&self.breaker).state(now) {
            BreakerState::Open { until } => {
                let remaining = until.saturating_duration_since(now);
                let retry_at = chrono::Local::now()
                    + chrono::Duration::from_std(remaining).unwrap_or(chrono::Duration::zero());
                Err(IvorisError::BreakerOpen {
                    location: self.config.location_key.clone(),
                    until,
                    retry_at: retry_at.format("%H:%M:%S").to_string(),
                })
            }
            BreakerState::Closed | BreakerState::HalfOpen => Ok(()),
        }
    }

    fn count(&self, route: &'static str, f: impl FnOnce(&mut RouteCounts)) {
        f(lock(&self.counters).entry(route).or_default());
    }

    /// One HTTP request, alone in flight, when the pacer lets it start.
    async fn attempt(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Value, IvorisError> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.in_flight.acquire().await.ok();
        let now = Instant::now();
        let start = lock(&self.pacer).reserve(now);
        if start > now {
            tokio::time::sleep_until(start).await;
        }
        self.count(route, |c| c.requests += 1);
        let sent = Instant::now();
        let result = self.send(route, path, query).await;
        self.paced(route, sent, &result);
        result
    }

    /// Tells the pacer how the request sent at `sent` went; logs a slowdown.
    fn paced(&self, route: &'static str, sent: Instant, result: &Result<Value, IvorisError>) {
        let now = Instant::now();
        let outcome = match result {
            Err(IvorisError::Server { status, .. }) => Outcome::Status(*status),
            Err(IvorisError::Timeout { .. }) => Outcome::Timeout,
            Err(IvorisError::Transport { .. }) => Outcome::Connection,
            _ => Outcome::Answered {
                latency: now.saturating_duration_since(sent),
            },
        };
        let Some(slowdown) = lock(&self.pacer).answered(now, outcome) else {
            return;
        };
        tracing::info!(
            location = %self.config.location_key,
            route,
            cause = %slowdown.cause,
            from_per_s = format!("{:.1}", slowdown.from),
            to_per_s = format!("{:.1}", slowdown.to),
            "ivoris pacing slows down"
        );
    }

    async fn send(
        &self,
        route: &'static str,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Value, IvorisError> {
        let location = || self.config.location_key.clone();
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), path);
        let transport = |error: reqwest::Error| {
            if error.is_timeout() {
                IvorisError::Timeout {
                    location: location(),
                    route,
                }
            } else {
                IvorisError::Transport {
                    location: location(),
                    route,
                    detail: error.without_url().to_string(),
                }
            }
        };
        let response = self
            .http
            .get(url)
            .basic_auth(&self.config.user, Some(self.config.password.expose()))
            .query(&[
                ("app", self.config.app.as_str()),
                ("app_version", self.config.app_version.as_str()),
                ("api_key", self.config.api_key.expose()),
            ])
            .query(query)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        tracing::debug!(
            location = %self.config.location_key,
            route,
            status = status.as_u16(),
            "ivoris request"
        );
        match status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(IvorisError::Unauthorized {
                    location: location(),
                });
            }
            StatusCode::NOT_FOUND => {
                return Err(IvorisError::NotFound {
                    location: location(),
                    route,
                });
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                return Err(IvorisError::Server {
                    location: location(),
                    route,
                    status: s.as_u16(),
                });
            }
            s => {
                return Err(IvorisError::BadRequest {
                    location: location(),
                    route,
                    status: s.as_u16(),
                });
            }
        }
        let body = response.bytes().await.map_err(transport)?;
        serde_json::from_slice(&body).map_err(|error| IvorisError::Decode {
            location: location(),
            route,
            detail: format!(
                "kein JSON / not JSON (Zeile/line {}, Spalte/column {})",
                error.line(),
                error.column()
            ),
        })
    }
}

/// Percent-encodes a path segment (Ivoris ids are UUIDs, but a malformed id
/// must not change the path).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_below_the_capped_bound() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        for retry in 1..10 {
            let bound = Duration::from_millis((100u64 << (retry - 1)).min(350));
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= bound, "retry {retry}");
            }
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("c1f0-AB"), "c1f0-AB");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }
}
