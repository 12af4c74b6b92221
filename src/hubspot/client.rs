//! The HubSpot CRM client: typed calls over one `reqwest::Client`, paths
//! built from the configured API version, rate limits enforced before
//! sending, retries with capped exponential backoff and full jitter, and
//! batch answers (200/207, or a whole-call refusal) mapped back to the
//! index of each input.
//!
//! Repeatable calls (upserts by unique key, reads, updates, archives,
//! associations) are retried after 5xx, timeouts and dropped connections:
//! the same keys land on the same records. `create` and `merge` are not
//! repeated once HubSpot may have received them; the caller gets
//! [`ClientError::Ambiguous`] and decides.
//!
//! Callers chunk: a batch call with more inputs than HubSpot accepts is
//! refused with [`ClientError::TooManyInputs`] before anything is sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::Tier;
use super::error::{ClientError, mask_personal};
use super::limiter::{self, Admission, Limiter, LimiterConfig, RequestClass};
use super::wire::{
    ApiUsage, AssociationPairWire, AssociationReadResult, AssociationResult, BatchReadBody,
    BatchResponse, CreateBody, Enablement, ErrorBody, GdprDeleteBody, IdInput, Inputs, MergeBody,
    Page, Pipeline, Property, PropertyDefinition, PropertyGroup, PropertyGroupBody, Record,
    Results, SearchRequest, UpdateInputWire, UpsertInputWire,
};
use crate::secrets::Secret;
use crate::settings::{ApiVersion, HubSpotSettings};

/// Most inputs of a batch create/read/update/upsert/archive call.
pub const MAX_BATCH: usize = 100;
/// Most inputs of an association batch call.
pub const MAX_ASSOCIATION_BATCH: usize = 1_000;
/// Page size of full listings (HubSpot's maximum).
const LIST_PAGE: &str = "100";

/// The CRM object types the sync writes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ObjectKind {
    /// `0-1`: patients.
    Contacts,
    /// `0-3`: treatment cases.
    Deals,
    /// `0-421`: appointments (must be activated in the portal).
    Appointments,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Contacts,
        ObjectKind::Deals,
        ObjectKind::Appointments,
    ];

    /// HubSpot's object type id.
    pub fn type_id(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "0-1",
            ObjectKind::Deals => "0-3",
            ObjectKind::Appointments => "0-421",
        }
    }

    /// The path segment: names for the standard objects, the type id for
    /// appointments (which has no name alias on every API version).
    pub fn path_segment(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "contacts",
            ObjectKind::Deals => "deals",
            ObjectKind::Appointments => "0-421",
        }
    }
}

/// The API families whose paths depend on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    /// `…/objects/{type}`.
    Objects,
    /// `…/properties/{type}`.
    Properties,
    /// `…/pipelines/{type}`.
    Pipelines,
    /// `…/associations/{from}/{to}` towards this type.
    Associations(ObjectKind),
}

/// The one place request paths are built: the date-versioned family
/// (`/crm/objects/2026-03/contacts`) or the numbered one (`/crm/v3/…`,
/// associations `/crm/v4/…`).
pub fn api_path(version: &ApiVersion, family: ApiFamily, kind: ObjectKind) -> String {
    let object = kind.path_segment();
    match (version, family) {
        (ApiVersion::Dated { .. }, ApiFamily::Objects) => {
            format!("/crm/objects/{version}/{object}")
        }
        (ApiVersion::Dated { .. }, ApiFamily::Properties) => {
            format!("/crm/properties/{version}/{object}")
        }
        (ApiVersion::Dated { .. }, ApiFamily::Pipelines) => {
            format!("/crm/pipelines/{version}/{object}")
        }
        (ApiVersion::Dated { .. }, ApiFamily::Associations(to)) => {
            format!("/crm/associations/{version}/{object}/{}", to.path_segment())
        }
        (ApiVersion::V3, ApiFamily::Objects) => format!("/crm/v3/objects/{object}"),
        (ApiVersion::V3, ApiFamily::Properties) => format!("/crm/v3/properties/{object}"),
        (ApiVersion::V3, ApiFamily::Pipelines) => format!("/crm/v3/pipelines/{object}"),
        (ApiVersion::V3, ApiFamily::Associations(to)) => {
            format!("/crm/v4/associations/{object}/{}", to.path_segment())
        }
    }
}

/// Portal endpoints outside the object families whose paths follow the
/// version too: HubSpot publishes date-versioned paths for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalEndpoint {
    /// The portal's users who can own records.
    Owners,
    /// Today's use of the daily request budget by private apps.
    DailyUsage,
    /// Whether an object type of the object library (appointments) is activated.
    Enablement(ObjectKind),
}

/// Paths of the portal endpoints: the date-versioned family
/// (`/crm/owners/2026-03`) or the numbered one (`/crm/v3/owners`).
pub fn portal_path(version: &ApiVersion, endpoint: PortalEndpoint) -> String {
    match (version, endpoint) {
        (ApiVersion::Dated { .. }, PortalEndpoint::Owners) => format!("/crm/owners/{version}"),
        (ApiVersion::Dated { .. }, PortalEndpoint::DailyUsage) => {
            format!("/account-info/{version}/api-usage/daily/private-apps")
        }
        (ApiVersion::Dated { .. }, PortalEndpoint::Enablement(kind)) => format!(
            "/crm/object-library/{version}/enablement/{}",
            kind.type_id()
        ),
        (ApiVersion::V3, PortalEndpoint::Owners) => "/crm/v3/owners".to_owned(),
        (ApiVersion::V3, PortalEndpoint::DailyUsage) => {
            "/account-info/v3/api-usage/daily/private-apps".to_owned()
        }
        (ApiVersion::V3, PortalEndpoint::Enablement(kind)) => {
            format!("/crm/v3/object-library/enablement/{}", kind.type_id())
        }
    }
}

/// Time as the client sees it. Production uses tokio's clock (which tests
/// can pause); tests of the whole client against the sandbox plug in a
/// clock whose sleeps move the sandbox's time instead.
pub trait Clock: Send + Sync {
    /// Monotonic now, for the rate windows.
    fn now(&self) -> Instant;
    /// Wall time, for the daily budget's midnight.
    fn wall(&self) -> DateTime<Utc>;
    /// Waits (or lets simulated time pass) for `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// `tokio::time` and the system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

/// The one [`TokioClock`] of the process. Clients built on it share the
/// rate windows of their portal (see [`limiter::shared`]).
pub fn system_clock() -> Arc<dyn Clock> {
    static CLOCK: OnceLock<Arc<dyn Clock>> = OnceLock::new();
    CLOCK.get_or_init(|| Arc::new(TokioClock)).clone()
}

/// A standard request on its way: the limiter counts it until the guard
/// is dropped (answered, failed, or the call given up).
struct OnItsWay {
    limiter: Arc<Mutex<Limiter>>,
    /// Its number in send order; `None` for searches.
    number: Option<u64>,
}

impl Drop for OnItsWay {
    fn drop(&mut self) {
        if let Some(number) = self.number {
            lock(&self.limiter).answered(number);
        }
    }
}

/// What makes two clients count against one rate window: the same portal
/// (address and token) and the same clock.
struct PortalWindow<'a> {
    base_url: &'a str,
    token: &'a str,
    clock: &'a Arc<dyn Clock>,
}

impl PortalWindow<'_> {
    /// The registry key; the token goes in only as a hash.
    fn key(&self) -> String {
        let clock = Arc::as_ptr(self.clock).cast::<()>() as usize;
        format!("{} {clock:x}", self.fingerprint())
    }

    /// Address and a hash of the token.
    fn fingerprint(&self) -> String {
        let mut hasher = std::hash::DefaultHasher::new();
        self.token.hash(&mut hasher);
        format!(
            "{} {:016x}",
            self.base_url.trim_end_matches('/'),
            hasher.finish()
        )
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// How failed attempts are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total for 5xx and transport failures.
    pub max_attempts: u32,
    /// First backoff ceiling; doubled per failed attempt.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// 429s waited out per call before giving up (they use no attempts).
    pub max_rate_limit_waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_rate_limit_waits: 20,
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random wait up to the capped exponential ceiling.
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let shift = failed_attempts.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << shift).min(self.cap);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }
}

/// Everything the client needs; built once from the settings and the token.
pub struct HubSpotClientConfig {
    /// API root without trailing slash (the sandbox's address in tests and demo).
    pub base_url: String,
    /// Version the paths are built with.
    pub api_version: ApiVersion,
    /// Subscription tier: sizes the rate limits.
    pub tier: Tier,
    /// Bearer token; never logged.
    pub token: Secret,
    /// Deadline of one whole request.
    pub timeout: Duration,
    /// Deadline of establishing a connection.
    pub connect_timeout: Duration,
    /// Repetition of failed attempts.
    pub retry: RetryPolicy,
    /// The portal's time zone: its midnight resets the daily budget.
    pub time_zone: Tz,
    /// Added to the rate windows to absorb differing network delays.
    pub window_margin: Duration,
    /// Source of time for limits and backoff.
    pub clock: Arc<dyn Clock>,
}

impl HubSpotClientConfig {
    /// Defaults for everything but the address, version, tier and token.
    pub fn new(
        base_url: impl Into<String>,
        api_version: ApiVersion,
        tier: Tier,
        token: Secret,
    ) -> HubSpotClientConfig {
        HubSpotClientConfig {
            base_url: base_url.into(),
            api_version,
            tier,
            token,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            time_zone: chrono_tz::Europe::Berlin,
            window_margin: Duration::from_millis(250),
            clock: system_clock(),
        }
    }

    pub fn from_settings(settings: &HubSpotSettings, token: Secret) -> HubSpotClientConfig {
        HubSpotClientConfig::new(
            settings.base_url.clone(),
            settings.api_version.clone(),
            settings.tier,
            token,
        )
    }
}

/// One record to upsert by its unique key.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertInput {
    /// Value of the unique id property (e.g. `mag:4711`).
    pub key: String,
    /// Values to write, as strings.
    pub properties: BTreeMap<String, String>,
}

/// One input that succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct InputResult {
    /// Position of the input in the call.
    pub index: usize,
    /// HubSpot's record id.
    pub id: String,
    /// Whether the record was created by this call.
    pub new: bool,
    /// Values as HubSpot now has them.
    pub properties: BTreeMap<String, String>,
}

/// One input that failed. Messages are masked; values are never included.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// Position of the input, when HubSpot's answer identifies it.
    pub index: Option<usize>,
    /// HTTP status of the failure (derived from the category in a 207).
    pub status: u16,
    /// HubSpot's category (`CONFLICT`, `VALIDATION_ERROR`, `OBJECT_NOT_FOUND`, …).
    pub category: String,
    /// HubSpot's message with personal values masked.
    pub message: String,
    /// For conflicts: the record already holding the unique value.
    pub existing_id: Option<String>,
    /// HubSpot's `context`, e-mail addresses masked.
    pub context: BTreeMap<String, Vec<String>>,
}

/// The answer of a batch call, input by input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Inputs that succeeded.
    pub results: Vec<InputResult>,
    /// Inputs that failed.
    pub errors: Vec<InputError>,
    /// Inputs HubSpot refused only because another input in the same call
    /// failed (a whole-call refusal); send them again without it.
    pub not_applied: Vec<usize>,
}

/// One page of a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// Matches in total.
    pub total: u64,
    /// The records of this page.
    pub records: Vec<Record>,
    /// Cursor of the next page.
    pub next_after: Option<String>,
}

/// One page of a full listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// The records of this page.
    pub records: Vec<Record>,
    /// Cursor of the next page; `None` on the last.
    pub next_after: Option<String>,
}

/// What the client did, for progress views and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// Requests sent per endpoint kind (`batch_upsert`, `search`, …), retries included.
    pub sent: BTreeMap<&'static str, u64>,
    /// Attempts repeated after a 5xx or transport failure.
    pub retries: u64,
    /// 429s seen per policy (`TEN_SECONDLY_ROLLING`, `SEARCH`, `DAILY`).
    pub rate_limited: BTreeMap<String, u64>,
    /// Time spent waiting for the rate limits and backoff.
    pub waited: Duration,
}

/// Whether a call may be sent again after HubSpot may have received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Same request, same result: retry freely.
    Safe,
    /// Not repeatable (names the operation for the error).
    OnlyIfUnsent(&'static str),
}

/// One request to make.
struct Call {
    /// Endpoint kind for counters and logs.
    kind: &'static str,
    method: Method,
    /// Path below the base URL.
    path: String,
    /// Query parameters.
    query: Vec<(&'static str, String)>,
    /// JSON body.
    body: Option<Vec<u8>>,
    /// Which rate limiter applies.
    class: RequestClass,
    /// Whether it may be repeated.
    repeat: Repeat,
    /// Property values sent, masked wherever HubSpot echoes them in a message.
    values: Vec<String>,
}

impl Call {
    fn new(kind: &'static str, method: Method, path: String) -> Call {
        Call {
            kind,
            method,
            path,
            query: Vec::new(),
            body: None,
            class: RequestClass::Standard,
            repeat: Repeat::Safe,
            values: Vec::new(),
        }
    }

    fn sent_values<'v>(mut self, values: impl IntoIterator<Item = &'v String>) -> Call {
        self.values = values
            .into_iter()
            .filter(|value| value.chars().count() >= 3)
            .cloned()
            .collect();
        // Longer values first, so a value containing another is masked whole.
        self.values
            .sort_by_key(|value| std::cmp::Reverse(value.len()));
        self
    }

    fn json(mut self, body: &impl Serialize) -> Result<Call, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|error| ClientError::Decode {
            reason: format!("request body: {}", error.classify_name()),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// Why a call did not produce a success answer.
enum Failure {
    /// Already a final error.
    Client(ClientError),
    /// A 4xx (other than 429) with HubSpot's error body.
    Status { status: u16, error: ErrorBody },
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        Failure::Client(error)
    }
}

/// A transport failure of one attempt.
enum Lost {
    /// The request never left (connection refused): repeating is always safe.
    Unsent(String),
    /// The request may have reached HubSpot.
    Maybe(String),
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The client. Cheap to share behind an `Arc`; calls may run concurrently
/// and share the limits.
pub struct HubSpotClient {
    /// One connection pool for every call.
    http: reqwest::Client,
    /// API root without trailing slash.
    base_url: String,
    /// Version the paths are built with.
    api_version: ApiVersion,
    /// Bearer token.
    token: Secret,
    /// Repetition of failed attempts.
    retry: RetryPolicy,
    /// Source of time.
    clock: Arc<dyn Clock>,
    /// The three rate limits, consulted before every send.
    limiter: Arc<Mutex<Limiter>>,
    /// Counters.
    stats: Mutex<ClientStats>,
}

impl HubSpotClient {
    pub fn new(config: HubSpotClientConfig) -> Result<HubSpotClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("ivoris-hubspot-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ClientError::Transport {
                reason: "the HTTP client could not be set up".into(),
            })?;
        let mut limits = LimiterConfig::for_tier(config.tier, config.time_zone);
        limits.margin = config.window_margin;
        let window = PortalWindow {
            base_url: &config.base_url,
            token: config.token.expose(),
            clock: &config.clock,
        };
        let limiter = limiter::shared(&window.key(), limits, config.clock.wall());
        Ok(HubSpotClient {
            http,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_version: config.api_version,
            token: config.token,
            retry: config.retry,
            clock: config.clock,
            limiter,
            stats: Mutex::new(ClientStats::default()),
        })
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ClientStats {
        lock(&self.stats).clone()
    }

    /// The portal this client talks to (address and token), as a hash.
    pub fn portal_fingerprint(&self) -> String {
        PortalWindow {
            base_url: &self.base_url,
            token: self.token.expose(),
            clock: &self.clock,
        }
        .fingerprint()
    }

    /// This process's sends still in HubSpot's 10-second window, as
    /// wall-clock times (kept for the app's next process, see
    /// [`HubSpotClient::recall_sends`]).
    pub fn recent_sends(&self) -> Vec<DateTime<Utc>> {
        lock(&self.limiter).recent_sends(self.clock.now(), self.clock.wall())
    }

    /// Sends the app's previous process made to this portal: a run started
    /// right after another then waits for the window as that one would
    /// have, instead of learning from the first answer that the window is
    /// used and assuming it was used just now.
    pub fn recall_sends(&self, sends: &[DateTime<Utc>]) {
        lock(&self.limiter).recall_sends(self.clock.now(), self.clock.wall(), sends);
    }

    /// The client's wall clock (the system's; the simulation's in tests).
    pub fn wall_now(&self) -> DateTime<Utc> {
        self.clock.wall()
    }

    /// Requests left in today's budget as the client knows it.
    pub fn daily_remaining(&self) -> u32 {
        lock(&self.limiter).daily_remaining()
    }

    fn path(&self, family: ApiFamily, kind: ObjectKind) -> String {
        api_path(&self.api_version, family, kind)
    }

    // ---- records ------------------------------------------------------

    /// Creates or updates records by a unique property, at most 100 per call.
    pub async fn batch_upsert(
        &self,
        kind: ObjectKind,
        id_property: &str,
        inputs: &[UpsertInput],
    ) -> Result<BatchOutcome, ClientError> {
        check_size(inputs.len(), MAX_BATCH)?;
        if inputs.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let keys: Vec<&str> = inputs.iter().map(|input| input.key.as_str()).collect();
        check_distinct(&keys)?;
        let wire: Vec<UpsertInputWire<'_>> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                // The key is written too, so every answer names it and
                // results can be matched to inputs.
                let mut properties: BTreeMap<&str, &str> = input
                    .properties
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                properties.insert(id_property, input.key.as_str());
                UpsertInputWire {
                    id_property,
                    id: input.key.as_str(),
                    properties,
                    object_write_trace_id: index.to_string(),
                }
            })
            .collect();
        let path = format!("{}/batch/upsert", self.path(ApiFamily::Objects, kind));
        let call = Call::new("batch_upsert", Method::POST, path).json(&Inputs { inputs: wire })?;
        let matcher = Matcher::by_property(id_property, &keys);
        self.batch(call, &matcher).await
    }

    /// Reads records by a unique property; missing keys come back as errors.
    pub async fn batch_read_by_property(
        &self,
        kind: ObjectKind,
        id_property: &str,
        keys: &[String],
        properties: &[String],
    ) -> Result<BatchOutcome, ClientError> {
        check_size(keys.len(), MAX_BATCH)?;
        if keys.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let mut wanted = properties.to_vec();
        if !wanted.iter().any(|p| p == id_property) {
            wanted.push(id_property.to_string());
        }
        let body = BatchReadBody {
            id_property: Some(id_property.to_string()),
            inputs: keys.iter().map(|id| IdInput { id: id.clone() }).collect(),
            properties: wanted,
            properties_with_history: Vec::new(),
        };
        let path = format!("{}/batch/read", self.path(ApiFamily::Objects, kind));
        let call = Call::new("batch_read", Method::POST, path).json(&body)?;
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.batch(call, &Matcher::by_property(id_property, &refs))
            .await
    }

    /// Reads records by id; missing ids come back as errors.
    pub async fn batch_read_by_id(
        &self,
        kind: ObjectKind,
        ids: &[String],
        properties: &[String],
    ) -> Result<BatchOutcome, ClientError> {
        check_size(ids.len(), MAX_BATCH)?;
        if ids.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let body = BatchReadBody {
            id_property: None,
            inputs: ids.iter().map(|id| IdInput { id: id.clone() }).collect(),
            properties: properties.to_vec(),
            properties_with_history: Vec::new(),
        };
        let path = format!("{}/batch/read", self.path(ApiFamily::Objects, kind));
        let call = Call::new("batch_read", Method::POST, path).json(&body)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.batch(call, &Matcher::by_id(&refs)).await
    }

    /// Updates records by id, at most 100 per call.
    pub async fn batch_update_by_id(
        &self,
        kind: ObjectKind,
        inputs: &[(String, BTreeMap<String, String>)],
    ) -> Result<BatchOutcome, ClientError> {
        check_size(inputs.len(), MAX_BATCH)?;
        if inputs.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let ids: Vec<&str> = inputs.iter().map(|(id, _)| id.as_str()).collect();
        check_distinct(&ids)?;
        let wire: Vec<UpdateInputWire<'_>> = inputs
            .iter()
            .enumerate()
            .map(|(index, (id, properties))| UpdateInputWire {
                id,
                properties,
                object_write_trace_id: index.to_string(),
            })
            .collect();
        let path = format!("{}/batch/update", self.path(ApiFamily::Objects, kind));
        let call = Call::new("batch_update", Method::POST, path).json(&Inputs { inputs: wire })?;
        self.batch(call, &Matcher::by_id(&ids)).await
    }

    /// Archives records by id (restorable in HubSpot for 90 days).
    pub async fn batch_archive(&self, kind: ObjectKind, ids: &[String]) -> Result<(), ClientError> {
        check_size(ids.len(), MAX_BATCH)?;
        if ids.is_empty() {
            return Ok(());
        }
        let inputs: Vec<IdInput> = ids.iter().map(|id| IdInput { id: id.clone() }).collect();
        let path = format!("{}/batch/archive", self.path(ApiFamily::Objects, kind));
        let call = Call::new("batch_archive", Method::POST, path).json(&Inputs { inputs })?;
        self.run(call).await.map(|_| ()).map_err(into_error)
    }

    /// Creates one record without a key. For tests and legacy data only:
    /// synced records are always upserted. Not repeated once sent.
    pub async fn create(
        &self,
        kind: ObjectKind,
        properties: &BTreeMap<String, String>,
    ) -> Result<Record, ClientError> {
        let mut call = Call::new("create", Method::POST, self.path(ApiFamily::Objects, kind))
            .json(&CreateBody { properties })?
            .sent_values(properties.values());
        call.repeat = Repeat::OnlyIfUnsent("create");
        self.fetch(call).await
    }

    /// One record by id.
    pub async fn get(
        &self,
        kind: ObjectKind,
        id: &str,
        properties: &[String],
    ) -> Result<Record, ClientError> {
        let path = format!(
            "{}/{}",
            self.path(ApiFamily::Objects, kind),
            path_escape(id)
        );
        let mut call = Call::new("get", Method::GET, path);
        if !properties.is_empty() {
            call.query.push(("properties", properties.join(",")));
        }
        self.fetch(call).await
    }

    /// One page of every record of a type (`after` from the previous page).
    pub async fn list_page(
        &self,
        kind: ObjectKind,
        properties: &[String],
        after: Option<&str>,
    ) -> Result<ListPage, ClientError> {
        let mut call = Call::new("list", Method::GET, self.path(ApiFamily::Objects, kind));
        call.query.push(("limit", LIST_PAGE.to_string()));
        if !properties.is_empty() {
            call.query.push(("properties", properties.join(",")));
        }
        if let Some(after) = after {
            call.query.push(("after", after.to_string()));
        }
        let page: Page<Record> = self.fetch(call).await?;
        Ok(ListPage {
            next_after: page.next_after(),
            records: page.results,
        })
    }

    /// One page of every record of a type with the ids of its associated
    /// records of type `to` (`associations=…` on the list call), for scans
    /// that need both without a call per 1000 associations.
    pub async fn list_page_associated(
        &self,
        kind: ObjectKind,
        properties: &[String],
        to: ObjectKind,
        after: Option<&str>,
    ) -> Result<(Vec<(Record, Vec<String>)>, Option<String>), ClientError> {
        let mut call = Call::new("list", Method::GET, self.path(ApiFamily::Objects, kind));
        call.query.push(("limit", LIST_PAGE.to_string()));
        if !properties.is_empty() {
            call.query.push(("properties", properties.join(",")));
        }
        call.query
            .push(("associations", to.path_segment().to_string()));
        if let Some(after) = after {
            call.query.push(("after", after.to_string()));
        }
        let page: Page<crate::hubspot::wire::AssociatedRecord> = self.fetch(call).await?;
        let next = page.next_after();
        let records = page
            .results
            .into_iter()
            .map(|listed| {
                let ids = listed
                    .associations
                    .into_iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(to.path_segment()))
                    .flat_map(|(_, list)| list.results.into_iter().map(|r| r.id))
                    .collect();
                (listed.record, ids)
            })
            .collect();
        Ok((records, next))
    }

    /// Every record of a type, following `paging.next.after` until it is absent.
    pub async fn list_all(
        &self,
        kind: ObjectKind,
        properties: &[String],
    ) -> Result<Vec<Record>, ClientError> {
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        loop {
            let page = self.list_page(kind, properties, after.as_deref()).await?;
            records.extend(page.records);
            match page.next_after {
                // A cursor seen before would loop forever.
                Some(next) if seen_cursors.insert(next.clone()) => after = Some(next),
                _ => return Ok(records),
            }
        }
    }

    /// One page of a search. Searches are eventually consistent: never use
    /// them to check whether something just written exists.
    pub async fn search(
        &self,
        kind: ObjectKind,
        request: &SearchRequest,
    ) -> Result<SearchPage, ClientError> {
        let path = format!("{}/search", self.path(ApiFamily::Objects, kind));
        let mut call = Call::new("search", Method::POST, path).json(request)?;
        call.class = RequestClass::Search;
        let page: Page<Record> = self.fetch(call).await?;
        Ok(SearchPage {
            total: page.total.unwrap_or(0),
            next_after: page.next_after(),
            records: page.results,
        })
    }

    /// Merges `to_merge` into `primary`; returns the surviving record (its
    /// id is read from the answer). Irreversible, so never repeated once sent.
    pub async fn merge(
        &self,
        kind: ObjectKind,
        primary: &str,
        to_merge: &str,
    ) -> Result<Record, ClientError> {
        let path = format!("{}/merge", self.path(ApiFamily::Objects, kind));
        let mut call = Call::new("merge", Method::POST, path).json(&MergeBody {
            primary_object_id: primary,
            object_id_to_merge: to_merge,
        })?;
        call.repeat = Repeat::OnlyIfUnsent("merge");
        self.fetch(call).await
    }

    /// Deletes a contact for good (GDPR); it cannot be restored. A contact
    /// that is already gone counts as deleted, so a retry after a lost
    /// answer (whose first attempt did delete it) succeeds.
    ///
    /// HubSpot publishes this endpoint only in the numbered family
    /// (`POST /crm/v3/objects/contacts/gdpr-delete`, listed among the legacy
    /// APIs); no date-versioned form is known, so it is called by that path
    /// under every configured version — the one numbered path a `2026-03`
    /// client uses.
    pub async fn gdpr_delete_contact(&self, id: &str) -> Result<(), ClientError> {
        let path = format!(
            "{}/gdpr-delete",
            api_path(&ApiVersion::V3, ApiFamily::Objects, ObjectKind::Contacts)
        );
        let call =
            Call::new("gdpr_delete", Method::POST, path).json(&GdprDeleteBody { object_id: id })?;
        match self.run(call).await.map_err(into_error) {
            Ok(_) | Err(ClientError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    // ---- associations -------------------------------------------------

    /// Default associations, idempotent; one outcome per pair, in order.
    pub async fn associate_default_batch(
        &self,
        from: ObjectKind,
        to: ObjectKind,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<(), InputError>>, ClientError> {
        check_size(pairs.len(), MAX_ASSOCIATION_BATCH)?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<AssociationPairWire> = pairs
            .iter()
            .map(|(a, b)| AssociationPairWire {
                from: IdInput { id: a.clone() },
                to: IdInput { id: b.clone() },
            })
            .collect();
        let path = format!(
            "{}/batch/associate/default",
            self.path(ApiFamily::Associations(to), from)
        );
        let call = Call::new("associate", Method::POST, path).json(&Inputs { inputs })?;
        let answer = self.run(call).await.map_err(into_error)?;
        let response: BatchResponse<AssociationResult> = decode(&answer)?;
        let linked: HashSet<(String, String)> = response
            .results
            .into_iter()
            .flat_map(|r| [(r.from.id.clone(), r.to.id.clone()), (r.to.id, r.from.id)])
            .collect();
        let errors: Vec<(HashSet<String>, InputError)> = response
            .errors
            .iter()
            .map(|error| {
                let ids: HashSet<String> = error
                    .context_values("ids")
                    .into_iter()
                    .chain(error.context_values("id"))
                    .collect();
                (ids, input_error(None, error, None))
            })
            .collect();
        Ok(pairs
            .iter()
            .map(|(a, b)| {
                if linked.contains(&(a.clone(), b.clone())) {
                    return Ok(());
                }
                match errors
                    .iter()
                    .find(|(ids, _)| ids.contains(a) || ids.contains(b))
                    .or_else(|| errors.first())
                {
                    Some((_, error)) => Err(error.clone()),
                    None => Ok(()),
                }
            })
            .collect())
    }

    /// Associated record ids per record (records without any map to an empty list).
    pub async fn read_associations(
        &self,
        from: ObjectKind,
        to: ObjectKind,
        ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        check_size(ids.len(), MAX_ASSOCIATION_BATCH)?;
        let mut found: BTreeMap<String, Vec<String>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        if ids.is_empty() {
            return Ok(found);
        }
        let inputs: Vec<IdInput> = ids.iter().map(|id| IdInput { id: id.clone() }).collect();
        let path = format!(
            "{}/batch/read",
            self.path(ApiFamily::Associations(to), from)
        );
        let call = Call::new("associations_read", Method::POST, path).json(&Inputs { inputs })?;
        let answer = self.run(call).await.map_err(into_error)?;
        let response: BatchResponse<AssociationReadResult> = decode(&answer)?;
        for result in response.results {
            found
                .entry(result.from.id)
                .or_default()
                .extend(result.to.into_iter().map(|to| to.to_object_id));
        }
        Ok(found)
    }

    // ---- schema -------------------------------------------------------

    /// Every pipeline of a type (deals).
    pub async fn pipelines(&self, kind: ObjectKind) -> Result<Vec<Pipeline>, ClientError> {
        let call = Call::new(
            "pipelines",
            Method::GET,
            self.path(ApiFamily::Pipelines, kind),
        );
        let results: Results<Pipeline> = self.fetch(call).await?;
        Ok(results.results)
    }

    /// Every active owner (user who can own records), following the pages.
    pub async fn owners(&self) -> Result<Vec<crate::hubspot::wire::Owner>, ClientError> {
        let mut owners = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = portal_path(&self.api_version, PortalEndpoint::Owners);
            let mut call = Call::new("owners", Method::GET, path);
            call.query.push(("limit", "100".to_owned()));
            call.query.push(("archived", "false".to_owned()));
            if let Some(after) = &after {
                call.query.push(("after", after.clone()));
            }
            let page: Page<crate::hubspot::wire::Owner> = self.fetch(call).await?;
            after = page.next_after();
            owners.extend(page.results.into_iter().filter(|o| !o.archived));
            if after.is_none() {
                return Ok(owners);
            }
        }
    }

    /// Every property definition of a type.
    pub async fn properties(&self, kind: ObjectKind) -> Result<Vec<Property>, ClientError> {
        let call = Call::new(
            "properties",
            Method::GET,
            self.path(ApiFamily::Properties, kind),
        );
        let results: Results<Property> = self.fetch(call).await?;
        Ok(results.results)
    }

    /// Creates a property; an existing name is [`ClientError::Conflict`].
    pub async fn create_property(
        &self,
        kind: ObjectKind,
        definition: &PropertyDefinition,
    ) -> Result<Property, ClientError> {
        let call = Call::new(
            "property_create",
            Method::POST,
            self.path(ApiFamily::Properties, kind),
        )
        .json(definition)?;
        self.fetch(call).await
    }

    /// Every property group of a type.
    pub async fn property_groups(
        &self,
        kind: ObjectKind,
    ) -> Result<Vec<PropertyGroup>, ClientError> {
        let path = format!("{}/groups", self.path(ApiFamily::Properties, kind));
        let results: Results<PropertyGroup> = self
            .fetch(Call::new("property_groups", Method::GET, path))
            .await?;
        Ok(results.results)
    }

    /// Creates a property group; an existing name is [`ClientError::Conflict`].
    pub async fn create_property_group(
        &self,
        kind: ObjectKind,
        name: &str,
        label: &str,
    ) -> Result<(), ClientError> {
        let path = format!("{}/groups", self.path(ApiFamily::Properties, kind));
        let call = Call::new("property_group_create", Method::POST, path)
            .json(&PropertyGroupBody { name, label })?;
        self.run(call).await.map(|_| ()).map_err(into_error)
    }

    /// Today's use of the portal's daily request budget, shared by every
    /// integration of the portal (`GET /account-info/{version}/api-usage/daily/private-apps`).
    /// The limiter's daily budget is set from it, so the client stops
    /// cleanly before the budget is exhausted, as it does from the rate
    /// headers. `None` when HubSpot reports no daily budget.
    pub async fn daily_usage(&self) -> Result<Option<ApiUsage>, ClientError> {
        let call = Call::new(
            "api_usage",
            Method::GET,
            portal_path(&self.api_version, PortalEndpoint::DailyUsage),
        );
        let usage: Results<ApiUsage> = self.fetch(call).await?;
        let daily = usage
            .results
            .into_iter()
            .find(|u| u.name == "api-calls-daily" && u.usage_limit > 0);
        if let Some(daily) = &daily {
            let remaining = u32::try_from(daily.remaining()).unwrap_or(u32::MAX);
            lock(&self.limiter).observe(
                self.clock.now(),
                self.clock.wall(),
                None,
                None,
                None,
                Some(remaining),
            );
        }
        Ok(daily)
    }

    /// Whether the appointments object (0-421) is activated in the portal.
    pub async fn appointments_enabled(&self) -> Result<bool, ClientError> {
        let call = Call::new(
            "enablement",
            Method::GET,
            portal_path(
                &self.api_version,
                PortalEndpoint::Enablement(ObjectKind::Appointments),
            ),
        );
        let enablement: Enablement = self.fetch(call).await?;
        Ok(enablement.enablement)
    }

    // ---- machinery ----------------------------------------------------

    async fn fetch<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let answer = self.run(call).await.map_err(into_error)?;
        decode(&answer)
    }

    /// Sends a batch call and maps its answer, or a whole-call refusal, to inputs.
    async fn batch(&self, call: Call, matcher: &Matcher<'_>) -> Result<BatchOutcome, ClientError> {
        let values = call.values.clone();
        match self.run(call).await {
            Ok(answer) => {
                let mut response: BatchResponse<Record> = decode(&answer)?;
                for error in &mut response.errors {
                    scrub(&mut error.message, &values);
                }
                Ok(matcher.outcome(response))
            }
            Err(Failure::Status { status, error }) => matcher.whole_call(status, &error),
            Err(Failure::Client(error)) => Err(error),
        }
    }

    /// Waits until the limits allow a send of `class`; a standard send
    /// is counted as on its way until the returned guard is dropped.
    async fn admit(&self, class: RequestClass) -> Result<OnItsWay, ClientError> {
        loop {
            let (admission, number) = {
                let mut limiter = lock(&self.limiter);
                let admission = limiter.admit(class, self.clock.now(), self.clock.wall());
                let standard = admission == Admission::Go && class == RequestClass::Standard;
                (admission, standard.then(|| limiter.dispatched()))
            };
            match admission {
                Admission::Go => {
                    return Ok(OnItsWay {
                        limiter: self.limiter.clone(),
                        number,
                    });
                }
                Admission::Wait(wait) => self.pause(wait).await,
                Admission::DailyExhausted(resets_at) => {
                    tracing::warn!(%resets_at, "hubspot daily budget exhausted");
                    return Err(ClientError::DailyLimit { resets_at });
                }
            }
        }
    }

    async fn pause(&self, wait: Duration) {
        lock(&self.stats).waited += wait;
        self.clock.sleep(wait).await;
    }

    /// Sends a call, waiting for the limits, repeating what may be repeated.
    async fn run(&self, call: Call) -> Result<Vec<u8>, Failure> {
        let mut failed = 0u32;
        let mut refused = 0u32;
        loop {
            let on_its_way = self.admit(call.class).await?;
            *lock(&self.stats).sent.entry(call.kind).or_default() += 1;
            let attempt = self.send_once(&call).await;
            let number = on_its_way.number;
            drop(on_its_way);
            let reason = match attempt {
                Err(Lost::Maybe(reason)) => {
                    if let Repeat::OnlyIfUnsent(operation) = call.repeat {
                        return Err(ClientError::Ambiguous { operation }.into());
                    }
                    reason
                }
                Err(Lost::Unsent(reason)) => reason,
                Ok((status, headers, body)) => {
                    self.observe(&headers, number);
                    match status {
                        200..=299 => return Ok(body),
                        429 => {
                            refused += 1;
                            self.rate_limited(&headers, &body, refused).await?;
                            continue;
                        }
                        500..=599 => {
                            if let Repeat::OnlyIfUnsent(operation) = call.repeat {
                                return Err(ClientError::Ambiguous { operation }.into());
                            }
                            if failed + 1 >= self.retry.max_attempts {
                                return Err(ClientError::Server { status }.into());
                            }
                            format!("status {status}")
                        }
                        _ => {
                            let mut error: ErrorBody =
                                serde_json::from_slice(&body).unwrap_or_default();
                            scrub(&mut error.message, &call.values);
                            return Err(Failure::Status { status, error });
                        }
                    }
                }
            };
            failed += 1;
            if failed >= self.retry.max_attempts {
                return Err(ClientError::Transport { reason }.into());
            }
            lock(&self.stats).retries += 1;
            let wait = self.retry.backoff(failed);
            tracing::warn!(endpoint = call.kind, attempt = failed, %reason, "hubspot call retried");
            self.pause(wait).await;
        }
    }

    /// One attempt: status, headers and the whole body, or how it was lost.
    async fn send_once(&self, call: &Call) -> Result<(u16, HeaderMap, Vec<u8>), Lost> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                Lost::Unsent("connection failed".into())
            } else if error.is_timeout() {
                Lost::Maybe("timeout".into())
            } else {
                Lost::Maybe("connection dropped".into())
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|error| {
            if error.is_timeout() {
                Lost::Maybe("timeout while reading the answer".into())
            } else {
                Lost::Maybe("answer cut short".into())
            }
        })?;
        tracing::debug!(endpoint = call.kind, status, "hubspot call");
        Ok((status, headers, body.to_vec()))
    }

    /// Feeds the rate headers of the answer to request `number` to the limiter.
    fn observe(&self, headers: &HeaderMap, request: Option<u64>) {
        let number =
            |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let remaining = number("x-hubspot-ratelimit-remaining");
        let max = number("x-hubspot-ratelimit-max");
        let daily = number("x-hubspot-ratelimit-daily-remaining");
        if remaining.is_some() || daily.is_some() {
            let (now, wall) = (self.clock.now(), self.clock.wall());
            lock(&self.limiter).observe(now, wall, request, remaining, max, daily);
        }
    }

    /// A 429: pause by policy, or stop for the day.
    async fn rate_limited(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        refused: u32,
    ) -> Result<(), ClientError> {
        let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let policy = match error.policy_name.as_deref() {
            Some("DAILY") => "DAILY",
            Some(_) => "TEN_SECONDLY_ROLLING",
            None if error.category.as_deref() == Some("RATE_LIMITS") => "SEARCH",
            None => "TEN_SECONDLY_ROLLING",
        };
        *lock(&self.stats)
            .rate_limited
            .entry(policy.to_string())
            .or_default() += 1;
        tracing::warn!(policy, "hubspot answered 429");
        let now = self.clock.now();
        let mut limiter = lock(&self.limiter);
        if policy == "DAILY" {
            let resets_at = limiter.daily_refused(self.clock.wall());
            return Err(ClientError::DailyLimit { resets_at });
        }
        if refused > self.retry.max_rate_limit_waits {
            return Err(ClientError::RateLimited);
        }
        if policy == "SEARCH" {
            limiter.search_refused(now, retry_after);
        } else {
            limiter.ten_secondly_refused(now, retry_after);
        }
        Ok(())
    }
}

/// Maps answers of a batch call back to input positions.
struct Matcher<'a> {
    /// Unique property whose value identifies an input in results; `None`
    /// matches by record id.
    property: Option<&'a str>,
    /// Input keys (unique values or ids) in order.
    keys: &'a [&'a str],
    /// Lower-cased key → index (e-mails compare case-insensitively).
    index: HashMap<String, usize>,
}

impl<'a> Matcher<'a> {
    fn by_property(property: &'a str, keys: &'a [&'a str]) -> Matcher<'a> {
        Matcher {
            property: Some(property),
            keys,
            index: index_of(keys),
        }
    }

    fn by_id(ids: &'a [&'a str]) -> Matcher<'a> {
        Matcher {
            property: None,
            keys: ids,
            index: index_of(ids),
        }
    }

    fn lookup(&self, key: &str) -> Option<usize> {
        self.index.get(&key.to_lowercase()).copied()
    }

    fn key_of(&self, record: &Record) -> Option<usize> {
        match self.property {
            Some(property) => record.properties.get(property).and_then(|v| self.lookup(v)),
            None => self.lookup(&record.id),
        }
    }

    /// The input an error entry is about: its trace id, its context ids, or
    /// a key named in its message.
    fn locate(&self, error: &ErrorBody) -> Vec<usize> {
        let traced: Vec<usize> = error
            .context_values("objectWriteTraceId")
            .iter()
            .filter_map(|trace| trace.parse::<usize>().ok())
            .filter(|index| *index < self.keys.len())
            .collect();
        if !traced.is_empty() {
            return traced;
        }
        let named: Vec<usize> = error
            .context_values("ids")
            .into_iter()
            .chain(error.context_values("id"))
            .filter_map(|id| self.lookup(&id))
            .collect();
        if !named.is_empty() {
            return named;
        }
        let message = error.message.as_deref().unwrap_or_default().to_lowercase();
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.len() > 2 && mentions(&message, &key.to_lowercase()))
            .map(|(index, _)| index)
            .take(1)
            .collect()
    }

    fn outcome(&self, response: BatchResponse<Record>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut claimed = HashSet::new();
        for error in &response.errors {
            let located = self.locate(error);
            if located.is_empty() {
                outcome.errors.push(input_error(None, error, None));
            }
            for index in located {
                claimed.insert(index);
                outcome.errors.push(input_error(Some(index), error, None));
            }
        }
        let mut unmatched = Vec::new();
        for record in response.results {
            match self.key_of(&record) {
                Some(index) if claimed.insert(index) => outcome.results.push(result(index, record)),
                _ => unmatched.push(record),
            }
        }
        // Results that name no key take the remaining positions in order,
        // which is how HubSpot lists them.
        let mut free = (0..self.keys.len()).filter(|index| !claimed.contains(index));
        for record in unmatched {
            if let Some(index) = free.next() {
                outcome.results.push(result(index, record));
            }
        }
        outcome.results.sort_by_key(|r| r.index);
        outcome
    }

    /// A whole call refused: an input error when the culprit is known
    /// (the others are `not_applied`), otherwise the call's error.
    fn whole_call(&self, status: u16, error: &ErrorBody) -> Result<BatchOutcome, ClientError> {
        if !matches!(status, 400 | 404 | 409) {
            return Err(status_error(status, error));
        }
        let mut located = self.locate(error);
        if located.is_empty() && self.keys.len() == 1 {
            located.push(0);
        }
        if located.is_empty() {
            return Err(status_error(status, error));
        }
        let errors: Vec<InputError> = located
            .iter()
            .map(|index| input_error(Some(*index), error, Some(status)))
            .collect();
        let not_applied = (0..self.keys.len())
            .filter(|index| !located.contains(index))
            .collect();
        Ok(BatchOutcome {
            results: Vec::new(),
            errors,
            not_applied,
        })
    }
}

/// Replaces every value the request sent where a message echoes it.
fn scrub(message: &mut Option<String>, values: &[String]) {
    if let Some(text) = message {
        for value in values {
            if text.contains(value.as_str()) {
                *text = text.replace(value.as_str(), "<value>");
            }
        }
    }
}

/// Whether `message` names `key` as a whole word (`mag:1` is not in `mag:10`).
fn mentions(message: &str, key: &str) -> bool {
    message.match_indices(key).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + key.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn index_of(keys: &[&str]) -> HashMap<String, usize> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| (key.to_lowercase(), index))
        .collect()
}

fn result(index: usize, record: Record) -> InputResult {
    InputResult {
        index,
        new: record.new.unwrap_or(false),
        id: record.id,
        properties: record.properties,
    }
}

/// HTTP status a 207 entry stands for.
fn status_of_category(category: &str) -> u16 {
    match category {
        "CONFLICT" => 409,
        "OBJECT_NOT_FOUND" => 404,
        "RATE_LIMITS" => 429,
        "MISSING_SCOPES" => 403,
        "INVALID_AUTHENTICATION" => 401,
        _ => 400,
    }
}

/// The id HubSpot names in a conflict: `context.existingId` or "Existing ID: N".
fn existing_id(error: &ErrorBody) -> Option<String> {
    if let Some(id) = error.context_values("existingId").into_iter().next() {
        return Some(id);
    }
    let message = error.message.as_deref()?;
    let start = message.find("Existing ID:")? + "Existing ID:".len();
    let digits: String = message[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

fn input_error(index: Option<usize>, error: &ErrorBody, status: Option<u16>) -> InputError {
    let category = error.category.clone().unwrap_or_default();
    let context = error
        .context
        .iter()
        .flatten()
        .map(|(key, _)| {
            let values = error
                .context_values(key)
                .into_iter()
                .map(|value| {
                    if value.contains('@') {
                        "<e-mail>".to_string()
                    } else {
                        value
                    }
                })
                .collect();
            (key.clone(), values)
        })
        .collect();
    InputError {
        index,
        status: status.unwrap_or_else(|| status_of_category(&category)),
        message: mask_personal(error.message.as_deref().unwrap_or_default()),
        existing_id: existing_id(error),
        category,
        context,
    }
}

/// The error of a refused call.
fn status_error(status: u16, error: &ErrorBody) -> ClientError {
    let message = mask_personal(error.message.as_deref().unwrap_or_default());
    match status {
        401 => ClientError::Unauthorized,
        403 => ClientError::Forbidden {
            missing_scopes: error.missing_scopes(),
        },
        404 => ClientError::NotFound { message },
        414 => ClientError::AddressTooLong,
        409 => ClientError::Conflict {
            existing_id: existing_id(error),
            message,
        },
        _ => ClientError::Validation {
            message,
            category: error
                .category
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}")),
        },
    }
}

fn into_error(failure: Failure) -> ClientError {
    match failure {
        Failure::Client(error) => error,
        Failure::Status { status, error } => status_error(status, &error),
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| ClientError::Decode {
        reason: error.classify_name().to_string(),
    })
}

fn check_size(count: usize, max: usize) -> Result<(), ClientError> {
    if count > max {
        return Err(ClientError::TooManyInputs { count, max });
    }
    Ok(())
}

/// HubSpot refuses a batch naming one record twice; say so before sending.
fn check_distinct(keys: &[&str]) -> Result<(), ClientError> {
    let mut seen = HashSet::new();
    if keys.iter().all(|key| seen.insert(key.to_lowercase())) {
        Ok(())
    } else {
        Err(ClientError::Validation {
            message: "the same key appears twice in one batch".into(),
            category: "DUPLICATE_INPUT".into(),
        })
    }
}

/// Escapes an id for a path segment (ids are digits; anything else is encoded).
fn path_escape(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_path_families_are_built_from_the_version() {
        let dated = ApiVersion::default();
        assert_eq!(
            api_path(&dated, ApiFamily::Objects, ObjectKind::Contacts),
            "/crm/objects/2026-03/contacts"
        );
        assert_eq!(
            api_path(
                &dated,
                ApiFamily::Associations(ObjectKind::Contacts),
                ObjectKind::Deals
            ),
            "/crm/associations/2026-03/deals/contacts"
        );
        assert_eq!(
            api_path(&ApiVersion::V3, ApiFamily::Pipelines, ObjectKind::Deals),
            "/crm/v3/pipelines/deals"
        );
        assert_eq!(
            api_path(
                &ApiVersion::V3,
                ApiFamily::Associations(ObjectKind::Appointments),
                ObjectKind::Contacts
            ),
            "/crm/v4/associations/contacts/0-421"
        );
    }

    #[test]
    fn portal_paths_follow_the_version() {
        let dated = ApiVersion::default();
        let appointments = PortalEndpoint::Enablement(ObjectKind::Appointments);
        for (version, endpoint, path) in [
            (&dated, PortalEndpoint::Owners, "/crm/owners/2026-03"),
            (
                &dated,
                PortalEndpoint::DailyUsage,
                "/account-info/2026-03/api-usage/daily/private-apps",
            ),
            (
                &dated,
                appointments,
                "/crm/object-library/2026-03/enablement/0-421",
            ),
            (&ApiVersion::V3, PortalEndpoint::Owners, "/crm/v3/owners"),
            (
                &ApiVersion::V3,
                PortalEndpoint::DailyUsage,
                "/account-info/v3/api-usage/daily/private-apps",
            ),
            (
                &ApiVersion::V3,
                appointments,
                "/crm/v3/object-library/enablement/0-421",
            ),
        ] {
            assert_eq!(
                portal_path(version, endpoint),
                path,
                "{version} {endpoint:?}"
            );
        }
        let later = ApiVersion::Dated {
            year: 2026,
            month: 9,
        };
        assert_eq!(
            portal_path(&later, PortalEndpoint::Owners),
            "/crm/owners/2026-09"
        );
    }

    #[test]
    fn no_dated_path_is_numbered() {
        let dated = ApiVersion::default();
        let families = [
            ApiFamily::Objects,
            ApiFamily::Properties,
            ApiFamily::Pipelines,
            ApiFamily::Associations(ObjectKind::Contacts),
            ApiFamily::Associations(ObjectKind::Deals),
            ApiFamily::Associations(ObjectKind::Appointments),
        ];
        let endpoints = [
            PortalEndpoint::Owners,
            PortalEndpoint::DailyUsage,
            PortalEndpoint::Enablement(ObjectKind::Appointments),
        ];
        let paths = ObjectKind::ALL
            .iter()
            .flat_map(|kind| {
                families
                    .iter()
                    .map(|family| api_path(&dated, *family, *kind))
            })
            .chain(endpoints.iter().map(|e| portal_path(&dated, *e)));
        for path in paths {
            assert!(path.contains("2026-03"), "{path}");
            assert!(!path.contains("/v3/") && !path.contains("/v4/"), "{path}");
        }
    }

    #[test]
    fn existing_ids_are_read_from_context_or_message() {
        let error = ErrorBody {
            message: Some("Contact already exists. Existing ID: 5512".into()),
            ..ErrorBody::default()
        };
        assert_eq!(existing_id(&error).as_deref(), Some("5512"));
    }

    fn conflict(message: &str) -> ErrorBody {
        ErrorBody {
            message: Some(message.into()),
            category: Some("CONFLICT".into()),
            ..ErrorBody::default()
        }
    }

    #[test]
    fn a_whole_call_conflict_of_a_single_input_becomes_an_input_error() {
        let keys = ["mag:1"];
        let matcher = Matcher::by_property("ivoris_patient_key", &keys);
        let outcome = matcher
            .whole_call(
                409,
                &conflict("Contact already exists. Existing ID: 77 (a@b.de)"),
            )
            .unwrap_or_default();
        assert_eq!(outcome.errors.len(), 1);
        let error = &outcome.errors[0];
        assert_eq!(error.index, Some(0));
        assert_eq!(error.status, 409);
        assert_eq!(error.existing_id.as_deref(), Some("77"));
        assert!(!error.message.contains("a@b.de"));
        assert!(outcome.not_applied.is_empty());
    }

    #[test]
    fn a_whole_call_conflict_naming_a_key_marks_the_others_not_applied() {
        let keys = ["mag:2", "mag:20", "mag:3"];
        let matcher = Matcher::by_property("ivoris_patient_key", &keys);
        let outcome = matcher
            .whole_call(409, &conflict("Duplicate value mag:20. Existing ID: 5"))
            .unwrap_or_default();
        assert_eq!(outcome.errors[0].index, Some(1));
        assert_eq!(outcome.not_applied, vec![0, 2]);
        let unknown = matcher.whole_call(409, &conflict("Existing ID: 5"));
        assert_eq!(
            unknown,
            Err(ClientError::Conflict {
                existing_id: Some("5".into()),
                message: "Existing ID: 5".into()
            })
        );
    }

    #[test]
    fn results_without_their_key_take_the_remaining_positions_in_order() {
        let keys = ["1", "2", "3"];
        let matcher = Matcher::by_property("ivoris_case_key", &keys);
        let record = |id: &str| Record {
            id: id.into(),
            ..Record::default()
        };
        let mut traced = conflict("bad");
        traced.context = Some(BTreeMap::from([(
            "objectWriteTraceId".to_string(),
            serde_json::json!(["1"]),
        )]));
        let outcome = matcher.outcome(BatchResponse {
            results: vec![record("10"), record("30")],
            errors: vec![traced],
            ..BatchResponse::default()
        });
        let placed: Vec<(usize, &str)> = outcome
            .results
            .iter()
            .map(|r| (r.index, r.id.as_str()))
            .collect();
        assert_eq!(placed, vec![(0, "10"), (2, "30")]);
        assert_eq!(outcome.errors[0].index, Some(1));
    }

    #[test]
    fn backoff_stays_under_the_capped_ceiling() {
        let policy = RetryPolicy::default();
        for attempt in 1..30 {
            let wait = policy.backoff(attempt);
            assert!(wait <= policy.cap);
            assert!(wait <= policy.base.saturating_mul(1 << (attempt - 1).min(20)));
        }
    }
}
