//! Settings: the TOML file that says which HubSpot portal and which Ivoris
//! locations to sync, and where the ledger lives.
//!
//! The file is read into a permissive raw form (every key optional, unknown
//! keys rejected so typos are reported) and turned once into validated
//! [`Settings`]; nothing downstream re-validates. Errors name the key and the
//! line, in German and English. Secrets never live here (DESIGN.md §3.8): a
//! file that contains a token or password is refused with a pointer to where
//! secrets go. [`DataDirs`] says where the settings, the ledger and the logs
//! are by default.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::hubspot::Tier;
use crate::sandbox::{SandboxLocation, credentials};

/// Name of the settings file inside the config directory.
pub const SETTINGS_FILE: &str = "settings.toml";

/// Default HubSpot API root.
pub const HUBSPOT_BASE_URL: &str = "https://api.hubapi.com";

/// Default deal pipeline label (DESIGN.md §4).
pub const DEFAULT_PIPELINE: &str = "Patientenreise";

/// Allowed values of `sync.ivoris_max_requests_per_second` (0: no ceiling).
pub const MAX_REQUESTS_PER_SECOND: (u32, u32) = (0, 1000);

/// The fixed pause earlier versions wrote into every settings file.
const LEGACY_DEFAULT_PAUSE_MS: u32 = 100;

/// Allowed minutes between automatic syncs (`sync.schedule_minutes`).
pub const SCHEDULE_MINUTES: (u32, u32) = (5, 1440);

/// Key names that would hold a secret. Matched case-insensitively on every
/// key at any depth of the file.
const SECRET_KEYS: &[&str] = &[
    "token",
    "hubspot_token",
    "access_token",
    "private_app_token",
    "password",
    "ivoris_password",
    "api_key",
    "apikey",
    "ivoris_api_key",
    "secret",
    "client_secret",
];

/// The directories the app keeps its files in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirs {
    /// Holds `settings.toml`.
    pub config_dir: PathBuf,
    /// Holds the ledger and the `logs/` directory.
    pub data_dir: PathBuf,
}

impl DataDirs {
    /// The operating system's directories for this app (for example
    /// `~/.config/ivoris-hubspot-sync` and `~/.local/share/ivoris-hubspot-sync`
    /// on Linux, `%APPDATA%\ivoris-hubspot-sync` on Windows).
    pub fn from_os() -> Result<DataDirs, SettingsError> {
        let dirs = directories::ProjectDirs::from("de", "", "ivoris-hubspot-sync")
            .ok_or(SettingsError::NoHomeDirectory)?;
        Ok(DataDirs {
            config_dir: dirs.config_dir().to_owned(),
            data_dir: dirs.data_dir().to_owned(),
        })
    }

    /// Everything below one root (tests, portable installs).
    pub fn under(root: &Path) -> DataDirs {
        DataDirs {
            config_dir: root.join("config"),
            data_dir: root.join("data"),
        }
    }

    /// Default path of the settings file.
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join(SETTINGS_FILE)
    }

    /// Default path of the ledger.
    pub fn ledger_file(&self) -> PathBuf {
        self.data_dir.join("ledger.sqlite")
    }

    /// Directory of the daily log files.
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// Language of the user interface and of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    De,
    En,
}

impl Language {
    fn as_str(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::En => "en",
        }
    }
}

/// Which HubSpot API version paths are built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiVersion {
    /// The date-based version, e.g. `2026-03`.
    Dated {
        /// Four-digit year.
        year: u16,
        /// Month, 1–12.
        month: u8,
    },
    /// The legacy `v3` paths.
    V3,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiVersion::Dated { year, month } => write!(f, "{year:04}-{month:02}"),
            ApiVersion::V3 => f.write_str("v3"),
        }
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        ApiVersion::Dated {
            year: 2026,
            month: 3,
        }
    }
}

/// Whether appointments are written as HubSpot appointment objects (0-421).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppointmentsMode {
    /// Written when the portal has the object activated.
    #[default]
    Auto,
    On,
    Off,
}

impl AppointmentsMode {
    fn as_str(self) -> &'static str {
        match self {
            AppointmentsMode::Auto => "auto",
            AppointmentsMode::On => "on",
            AppointmentsMode::Off => "off",
        }
    }
}

/// What the first sync does with the other open deals of the previous
/// integration that belong to a case whose deal it adopted (DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacyDuplicates {
    /// Close them lost „Duplikat“ (undoable, nothing merged).
    #[default]
    Close,
    /// Merge them into the case's deal (HubSpot's merge, irreversible).
    Merge,
}

impl LegacyDuplicates {
    fn as_str(self) -> &'static str {
        match self {
            LegacyDuplicates::Close => "close",
            LegacyDuplicates::Merge => "merge",
        }
    }
}

/// The HubSpot portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpotSettings {
    /// API root without trailing slash; the sandbox replaces it.
    pub base_url: String,
    /// Version used in request paths.
    pub api_version: ApiVersion,
    /// Subscription tier, which decides the rate limits.
    pub tier: Tier,
    /// Label of the deal pipeline the cases go to.
    pub pipeline: String,
    /// Whether appointment objects are written.
    pub appointments: AppointmentsMode,
}

impl Default for HubSpotSettings {
    fn default() -> Self {
        HubSpotSettings {
            base_url: HUBSPOT_BASE_URL.to_owned(),
            api_version: ApiVersion::default(),
            tier: Tier::default(),
            pipeline: DEFAULT_PIPELINE.to_owned(),
            appointments: AppointmentsMode::default(),
        }
    }
}

/// How the sync behaves over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Days between full sweeps of document entries (DESIGN.md §5).
    pub entry_sweep_days: u32,
    /// Seconds an Ivoris request may take before it counts as failed (the
    /// relay answers slowly under load; integrators use about 20 s).
    pub ivoris_timeout_secs: u32,
    /// Most Ivoris requests per second and installation, for a practice that
    /// wants to spare its server; `None` (the default) lets the client go as
    /// fast as the server answers healthily (`ivoris::pacing`).
    pub ivoris_max_requests_per_second: Option<u32>,
    /// A fixed "now" (local Berlin time) instead of the clock, for the
    /// sandbox whose practices live on their own simulated clock; never set
    /// for a real installation.
    pub simulated_now: Option<NaiveDateTime>,
    /// Minutes between automatic syncs while the desktop app is open;
    /// `None` (the default) means only manual and CLI runs.
    pub schedule_minutes: Option<u32>,
    /// The previous integration's extra deals of an adopted case: closed
    /// (default) or merged into the case's deal.
    pub legacy_duplicates: LegacyDuplicates,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            entry_sweep_days: 7,
            ivoris_timeout_secs: 20,
            ivoris_max_requests_per_second: None,
            simulated_now: None,
            schedule_minutes: None,
            legacy_duplicates: LegacyDuplicates::Close,
        }
    }
}

/// One practice location with its own Ivoris installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationSettings {
    /// `[a-z0-9-]+`; the namespace of every unique key of this location.
    pub key: String,
    /// Shown to staff and written to `praxis_standort`.
    pub name: String,
    /// Brand the practice operates under, if the chain has several.
    pub brand: Option<String>,
    /// Base URL of the Ivoris web service (relay or on-site).
    pub ivoris_url: String,
    /// HTTP Basic user; the password is a secret.
    pub ivoris_user: String,
    /// `app` query parameter.
    pub ivoris_app: String,
    /// `app_version` query parameter.
    pub ivoris_app_version: String,
    /// Ivoris Mandant id when the installation has several.
    pub profile_id: Option<String>,
    /// The practice confirmed that its Ivoris server on the LAN serves only
    /// plain `http://` (`allow_insecure_http = true`); without it such an
    /// address is refused, because the password would travel in clear text.
    /// Shown as a warning in the overview and in every run summary.
    pub allow_insecure_http: bool,
}

impl LocationSettings {
    /// Whether this location's Ivoris is reached over plain HTTP on a
    /// non-loopback address (only possible with `allow_insecure_http`).
    pub fn uses_insecure_http(&self) -> bool {
        reqwest::Url::parse(&self.ivoris_url)
            .is_ok_and(|url| url.scheme() == "http" && !is_loopback(&url))
    }

    /// The warning for a location reached over plain HTTP, German and
    /// English; `None` when its address is `https://` or loopback.
    pub fn insecure_http_warning(&self) -> Option<(String, String)> {
        self.uses_insecure_http().then(|| {
            (
                format!(
                    "Standort „{}“: Ivoris unverschlüsselt über http:// (allow_insecure_http = true) – Passwort und Patientendaten gehen im Klartext durch das Praxisnetz",
                    self.key
                ),
                format!(
                    "location \"{}\": Ivoris over unencrypted http:// (allow_insecure_http = true) – password and patient data cross the practice network in clear text",
                    self.key
                ),
            )
        })
    }
}

/// Whether a URL's host is a loopback address (127.0.0.0/8, `::1`,
/// `localhost`): traffic that never leaves the PC, like the sandbox's.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Explicit ledger path (relative paths in a loaded file are taken
    /// relative to that file); `None` means [`DataDirs::ledger_file`].
    pub ledger: Option<PathBuf>,
    /// UI and message language.
    pub language: Language,
    /// The HubSpot portal.
    pub hubspot: HubSpotSettings,
    /// Timing rules of the sync.
    pub sync: SyncSettings,
    /// Locations, in file order, keys unique. Empty means no credentials are
    /// configured: the app starts in demo mode.
    pub locations: Vec<LocationSettings>,
}

impl Settings {
    /// Reads the settings from `explicit` (an error if missing) or from the
    /// default path (defaults if missing).
    pub fn load(explicit: Option<&Path>, dirs: &DataDirs) -> Result<Settings, SettingsError> {
        let path = explicit
            .map(Path::to_owned)
            .unwrap_or_else(|| dirs.settings_file());
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut settings = Settings::parse(&text, &path.display().to_string())?;
                // A relative ledger path means "next to the settings file",
                // not the working directory, which differs between a desktop
                // start and a scheduled task.
                if let (Some(ledger), Some(dir)) = (&settings.ledger, path.parent())
                    && ledger.is_relative()
                {
                    settings.ledger = Some(dir.join(ledger));
                }
                Ok(settings)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                Ok(Settings::default())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(SettingsError::NotFound { path })
            }
            Err(source) => Err(SettingsError::Read { path, source }),
        }
    }

    /// Parses and validates settings text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Settings, SettingsError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(e, text, origin))?;
        if let Some(key) = find_secret_key(&table, "") {
            let last = key.rsplit('.').next().unwrap_or(&key).to_owned();
            return Err(SettingsError::SecretInFile {
                origin: origin.to_owned(),
                line: line_of_key(text, &last),
                key,
            });
        }
        let raw: RawSettings = toml::from_str(text).map_err(|e| syntax_error(e, text, origin))?;
        raw.validate(text, origin)
    }

    /// Whether no location is configured (demo mode).
    pub fn is_demo(&self) -> bool {
        self.locations.is_empty()
    }

    /// The ledger path, explicit or default.
    pub fn ledger_path(&self, dirs: &DataDirs) -> PathBuf {
        self.ledger.clone().unwrap_or_else(|| dirs.ledger_file())
    }

    /// One warning per location reached over plain HTTP (German, English),
    /// for the overview and every run summary.
    pub fn insecure_http_warnings(&self) -> Vec<(String, String)> {
        self.locations
            .iter()
            .filter_map(LocationSettings::insecure_http_warning)
            .collect()
    }

    /// The location with this key.
    pub fn location(&self, key: &str) -> Option<&LocationSettings> {
        self.locations.iter().find(|location| location.key == key)
    }

    /// Settings pointing at a running sandbox, with the sandbox's fixed
    /// (non-secret) Ivoris user and app fields.
    pub fn for_sandbox(
        hubspot_url: &str,
        locations: &[SandboxLocation],
        ledger: Option<PathBuf>,
    ) -> Settings {
        Settings {
            ledger,
            hubspot: HubSpotSettings {
                base_url: hubspot_url.trim_end_matches('/').to_owned(),
                ..HubSpotSettings::default()
            },
            locations: locations
                .iter()
                .map(|location| LocationSettings {
                    key: location.key.clone(),
                    name: location.name.clone(),
                    brand: Some(location.brand.clone()).filter(|brand| !brand.is_empty()),
                    ivoris_url: location.ivoris_url.clone(),
                    ivoris_user: credentials::IVORIS_USER.to_owned(),
                    ivoris_app: credentials::IVORIS_APP.to_owned(),
                    ivoris_app_version: credentials::IVORIS_APP_VERSION.to_owned(),
                    profile_id: Some(location.profile_id.clone()).filter(|id| !id.is_empty()),
                    allow_insecure_http: false,
                })
                .collect(),
            ..Settings::default()
        }
    }

    /// The settings as TOML that [`Settings::parse`] reads back unchanged.
    pub fn to_toml_string(&self) -> Result<String, SettingsError> {
        let out = OutSettings {
            ledger: self.ledger.as_ref().map(|p| p.display().to_string()),
            language: self.language.as_str(),
            hubspot: OutHubSpot {
                base_url: &self.hubspot.base_url,
                api_version: self.hubspot.api_version.to_string(),
                tier: tier_name(self.hubspot.tier),
                pipeline: &self.hubspot.pipeline,
                appointments: self.hubspot.appointments.as_str(),
            },
            sync: OutSync {
                entry_sweep_days: self.sync.entry_sweep_days,
                ivoris_timeout_secs: self.sync.ivoris_timeout_secs,
                ivoris_max_requests_per_second: self
                    .sync
                    .ivoris_max_requests_per_second
                    .unwrap_or(0),
                simulated_now: self
                    .sync
                    .simulated_now
                    .map(|now| now.format("%Y-%m-%dT%H:%M:%S").to_string()),
                schedule_minutes: self.sync.schedule_minutes,
                legacy_duplicates: self.sync.legacy_duplicates.as_str(),
            },
            location: self
                .locations
                .iter()
                .map(|l| OutLocation {
                    key: &l.key,
                    name: &l.name,
                    brand: l.brand.as_deref(),
                    ivoris_url: &l.ivoris_url,
                    ivoris_user: &l.ivoris_user,
                    ivoris_app: &l.ivoris_app,
                    ivoris_app_version: &l.ivoris_app_version,
                    profile_id: l.profile_id.as_deref(),
                    allow_insecure_http: l.allow_insecure_http,
                })
                .collect(),
        };
        toml::to_string_pretty(&out).map_err(|error| SettingsError::Serialize(error.to_string()))
    }

    /// Writes the settings file, creating its directory.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let text = self.to_toml_string()?;
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Written beside and renamed, so a reader never sees half a file.
            let partial = path.with_extension("toml.partial");
            std::fs::write(&partial, text.as_bytes())?;
            std::fs::rename(&partial, path)
        };
        write(path).map_err(|source| SettingsError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// One thing wrong with a value in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `location[2].key`.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, in German.
    pub de: String,
    /// What is wrong, in English.
    pub en: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "Zeile/line {line}, {}: {} / {}",
                self.key, self.de, self.en
            ),
            None => write!(f, "{}: {} / {}", self.key, self.de, self.en),
        }
    }
}

/// Why settings could not be read, validated or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "Einstellungsdatei {path} nicht gefunden / Settings file {path} not found",
        path = .path.display()
    )]
    NotFound { path: PathBuf },
    #[error(
        "Einstellungsdatei {path} kann nicht gelesen werden / Cannot read the settings file {path}: {source}",
        path = .path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Einstellungsdatei {path} kann nicht geschrieben werden / Cannot write the settings file {path}: {source}",
        path = .path.display()
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{origin}, Zeile/line {line}, Spalte/column {column}: Fehler in der Einstellungsdatei / error in the settings file: {message}"
    )]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: ungültige Einstellungen / invalid settings:{}", problems_text(.problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    #[error(
        "{origin}{}: „{key}“ ist ein Geheimnis und gehört nicht in die Einstellungsdatei; bitte entfernen und im Programm unter „Einstellungen“ (Anmeldeinformationsspeicher des Betriebssystems) oder als Umgebungsvariable hinterlegen / \
         \"{key}\" is a secret and does not belong in the settings file; remove it and store it in the app under \"Settings\" (the operating system's credential store) or in an environment variable",
        line_suffix(*.line)
    )]
    SecretInFile {
        origin: String,
        key: String,
        line: Option<usize>,
    },
    #[error("Einstellungen können nicht geschrieben werden / Cannot serialize the settings: {0}")]
    Serialize(String),
    #[error(
        "Kein Benutzerverzeichnis gefunden / No home directory found: --config angeben / pass --config"
    )]
    NoHomeDirectory,
}

fn problems_text(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  – {p}")).collect()
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|line| format!(", Zeile/line {line}"))
        .unwrap_or_default()
}

fn syntax_error(error: toml::de::Error, text: &str, origin: &str) -> SettingsError {
    let (line, column) = error
        .span()
        .map(|span| line_column(text, span.start))
        .unwrap_or((1, 1));
    SettingsError::Syntax {
        origin: origin.to_owned(),
        line,
        column,
        message: error.message().trim().to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Dotted path of the first key anywhere in the table that names a secret.
fn find_secret_key(table: &toml::Table, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if SECRET_KEYS.contains(&key.to_lowercase().as_str()) {
            return Some(path);
        }
        let nested = match value {
            toml::Value::Table(inner) => find_secret_key(inner, &path),
            toml::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                item.as_table()
                    .and_then(|inner| find_secret_key(inner, &format!("{path}[{}]", i + 1)))
            }),
            _ => None,
        };
        if nested.is_some() {
            return nested;
        }
    }
    None
}

/// The line on which `key = …` first appears; the table API keeps no spans.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches('"');
            line.to_lowercase()
                .strip_prefix(&key.to_lowercase())
                .is_some_and(|rest| rest.trim_start().trim_start_matches('"').starts_with('='))
        })
        .map(|index| index + 1)
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "free",
        Tier::Starter => "starter",
        Tier::Professional => "professional",
        Tier::Enterprise => "enterprise",
        Tier::Increase => "increase",
    }
}

/// The file as written by people: everything optional, values unchecked,
/// spans kept for messages.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSettings {
    ledger: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    hubspot: RawHubSpot,
    sync: RawSync,
    location: Vec<RawLocation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHubSpot {
    base_url: Option<Spanned<String>>,
    api_version: Option<Spanned<String>>,
    tier: Option<Spanned<String>>,
    pipeline: Option<Spanned<String>>,
    appointments: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSync {
    entry_sweep_days: Option<Spanned<i64>>,
    ivoris_timeout_secs: Option<Spanned<i64>>,
    ivoris_max_requests_per_second: Option<Spanned<i64>>,
    /// Deprecated: the fixed pause of earlier versions, read as a ceiling.
    ivoris_pause_ms: Option<Spanned<i64>>,
    simulated_now: Option<Spanned<String>>,
    schedule_minutes: Option<Spanned<i64>>,
    legacy_duplicates: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLocation {
    key: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    brand: Option<Spanned<String>>,
    ivoris_url: Option<Spanned<String>>,
    ivoris_user: Option<Spanned<String>>,
    ivoris_app: Option<Spanned<String>>,
    ivoris_app_version: Option<Spanned<String>>,
    profile_id: Option<Spanned<String>>,
    allow_insecure_http: Option<Spanned<bool>>,
}

/// Whether an address may use plain `http://` to a non-loopback host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainHttp {
    /// Never (HubSpot: a public API that always has TLS).
    Never,
    /// Not without the location's `allow_insecure_http = true`.
    OptIn,
    /// The location opted in.
    Allowed,
}

/// Collects problems while the raw file is turned into [`Settings`].
struct Check<'t> {
    /// The file text, to turn spans into line numbers.
    text: &'t str,
    /// Everything found so far; all are reported together.
    problems: Vec<Problem>,
}

impl Check<'_> {
    fn report(&mut self, key: &str, span: Option<Range<usize>>, de: String, en: String) {
        let line = span.map(|span| line_column(self.text, span.start).0);
        self.problems.push(Problem {
            key: key.to_owned(),
            line,
            de,
            en,
        });
    }

    /// A required, non-empty string.
    fn required(
        &mut self,
        key: &str,
        value: &Option<Spanned<String>>,
        near: Option<Range<usize>>,
    ) -> String {
        match value {
            Some(v) if !v.get_ref().trim().is_empty() => v.get_ref().trim().to_owned(),
            Some(v) => {
                self.report(
                    key,
                    Some(v.span()),
                    "darf nicht leer sein".into(),
                    "must not be empty".into(),
                );
                String::new()
            }
            None => {
                self.report(key, near, "fehlt".into(), "is missing".into());
                String::new()
            }
        }
    }

    /// An `https://` address; plain `http://` only for loopback (the
    /// sandbox) or where `plain` allows it (a location's opt-in).
    fn url(&mut self, key: &str, value: &Spanned<String>, plain: PlainHttp) -> String {
        let text = value.get_ref().trim();
        let url = match reqwest::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
            _ => {
                self.report(
                    key,
                    Some(value.span()),
                    format!("„{text}“ ist keine http(s)-Adresse"),
                    format!("\"{text}\" is not an http(s) URL"),
                );
                return text.to_owned();
            }
        };
        if url.scheme() == "http" && !is_loopback(&url) {
            let (de, en) = match plain {
                PlainHttp::Allowed => return text.trim_end_matches('/').to_owned(),
                PlainHttp::Never => (
                    format!(
                        "„{text}“ ist unverschlüsselt: HubSpot nur über https:// (http:// nur für die Sandbox auf 127.0.0.1 oder localhost)"
                    ),
                    format!(
                        "\"{text}\" is unencrypted: HubSpot only over https:// (http:// only for the sandbox on 127.0.0.1 or localhost)"
                    ),
                ),
                PlainHttp::OptIn => (
                    format!(
                        "„{text}“ ist unverschlüsselt: das Ivoris-Passwort ginge im Klartext durchs Netz; bitte https:// verwenden oder, wenn der Server im Praxisnetz wirklich nur http anbietet, allow_insecure_http = true in diesem [[location]] setzen"
                    ),
                    format!(
                        "\"{text}\" is unencrypted: the Ivoris password would cross the network in clear text; use https:// or, if the server on the practice network really serves only http, set allow_insecure_http = true in this [[location]]"
                    ),
                ),
            };
            self.report(key, Some(value.span()), de, en);
        }
        text.trim_end_matches('/').to_owned()
    }

    fn days(&mut self, key: &str, value: &Option<Spanned<i64>>, default: u32) -> u32 {
        let Some(value) = value else { return default };
        match u32::try_from(*value.get_ref()) {
            Ok(days) if (1..=3650).contains(&days) => days,
            _ => {
                self.report(
                    key,
                    Some(value.span()),
                    "muss zwischen 1 und 3650 Tagen liegen".into(),
                    "must be between 1 and 3650 days".into(),
                );
                default
            }
        }
    }

    /// A whole number within `(low, high)`, both included.
    fn bounded(
        &mut self,
        key: &str,
        value: &Option<Spanned<i64>>,
        (low, high): (u32, u32),
        default: u32,
    ) -> u32 {
        let Some(value) = value else { return default };
        match u32::try_from(*value.get_ref()) {
            Ok(number) if (low..=high).contains(&number) => number,
            _ => {
                self.report(
                    key,
                    Some(value.span()),
                    format!("muss zwischen {low} und {high} liegen"),
                    format!("must be between {low} and {high}"),
                );
                default
            }
        }
    }

    /// `sync.ivoris_max_requests_per_second` (0: no ceiling), or else the
    /// deprecated `sync.ivoris_pause_ms` of older files read as a ceiling of
    /// one request per pause. Files written by earlier versions always
    /// carried that version's default of 100 ms; it and 0 mean no ceiling,
    /// so the adaptive pacing is not held to the old fixed rate.
    fn ceiling(&mut self, raw: &RawSync) -> Option<u32> {
        if raw.ivoris_max_requests_per_second.is_some() {
            let ceiling = self.bounded(
                "sync.ivoris_max_requests_per_second",
                &raw.ivoris_max_requests_per_second,
                MAX_REQUESTS_PER_SECOND,
                0,
            );
            return Some(ceiling).filter(|c| *c > 0);
        }
        raw.ivoris_pause_ms.as_ref()?;
        let pause = self.bounded("sync.ivoris_pause_ms", &raw.ivoris_pause_ms, (0, 60_000), 0);
        match pause {
            0 | LEGACY_DEFAULT_PAUSE_MS => None,
            pause => Some((1000 / pause).max(1)),
        }
    }

    /// A local date-time `YYYY-MM-DDTHH:MM:SS`.
    fn local_time(&mut self, key: &str, value: &Option<Spanned<String>>) -> Option<NaiveDateTime> {
        let value = value.as_ref()?;
        match NaiveDateTime::parse_from_str(value.get_ref().trim(), "%Y-%m-%dT%H:%M:%S") {
            Ok(time) => Some(time),
            Err(_) => {
                self.report(
                    key,
                    Some(value.span()),
                    "muss die Form JJJJ-MM-TTTHH:MM:SS haben".into(),
                    "must look like YYYY-MM-DDTHH:MM:SS".into(),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: &Option<Spanned<String>>,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(value) = value else { return default };
        let text = value.get_ref().trim().to_lowercase();
        if let Some((_, chosen)) = options.iter().find(|(name, _)| *name == text) {
            return *chosen;
        }
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        self.report(
            key,
            Some(value.span()),
            format!("„{text}“ ist nicht erlaubt, erlaubt: {}", names.join(", ")),
            format!("\"{text}\" is not allowed, allowed: {}", names.join(", ")),
        );
        default
    }
}

fn parse_api_version(text: &str) -> Option<ApiVersion> {
    if text == "v3" {
        return Some(ApiVersion::V3);
    }
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let year: u16 = year.parse().ok()?;
    let month: u8 = month.parse().ok()?;
    ((2000..=2999).contains(&year) && (1..=12).contains(&month))
        .then_some(ApiVersion::Dated { year, month })
}

fn is_location_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl RawSettings {
    fn validate(self, text: &str, origin: &str) -> Result<Settings, SettingsError> {
        let mut check = Check {
            text,
            problems: Vec::new(),
        };
        let defaults = HubSpotSettings::default();

        let ledger = self.ledger.as_ref().and_then(|value| {
            let path = value.get_ref().trim();
            if path.is_empty() {
                check.report(
                    "ledger",
                    Some(value.span()),
                    "darf nicht leer sein".into(),
                    "must not be empty".into(),
                );
                None
            } else {
                Some(PathBuf::from(path))
            }
        });
        let language = check.choice(
            "language",
            &self.language,
            &[("de", Language::De), ("en", Language::En)],
            Language::De,
        );

        let raw = &self.hubspot;
        let base_url = match &raw.base_url {
            Some(value) => check.url("hubspot.base_url", value, PlainHttp::Never),
            None => defaults.base_url.clone(),
        };
        let api_version = match &raw.api_version {
            None => defaults.api_version.clone(),
            Some(value) => parse_api_version(value.get_ref().trim()).unwrap_or_else(|| {
                check.report(
                    "hubspot.api_version",
                    Some(value.span()),
                    format!("„{}“ ist keine Version (JJJJ-MM oder v3)", value.get_ref()),
                    format!("\"{}\" is not a version (YYYY-MM or v3)", value.get_ref()),
                );
                defaults.api_version.clone()
            }),
        };
        let tier = check.choice(
            "hubspot.tier",
            &raw.tier,
            &[
                ("free", Tier::Free),
                ("starter", Tier::Starter),
                ("professional", Tier::Professional),
                ("enterprise", Tier::Enterprise),
                ("increase", Tier::Increase),
            ],
            defaults.tier,
        );
        let pipeline = match &raw.pipeline {
            None => defaults.pipeline.clone(),
            Some(_) => check.required("hubspot.pipeline", &raw.pipeline, None),
        };
        let appointments = check.choice(
            "hubspot.appointments",
            &raw.appointments,
            &[
                ("auto", AppointmentsMode::Auto),
                ("on", AppointmentsMode::On),
                ("off", AppointmentsMode::Off),
            ],
            defaults.appointments,
        );

        let sync_defaults = SyncSettings::default();
        let sync = SyncSettings {
            simulated_now: check.local_time("sync.simulated_now", &self.sync.simulated_now),
            entry_sweep_days: check.days(
                "sync.entry_sweep_days",
                &self.sync.entry_sweep_days,
                sync_defaults.entry_sweep_days,
            ),
            ivoris_timeout_secs: check.bounded(
                "sync.ivoris_timeout_secs",
                &self.sync.ivoris_timeout_secs,
                (1, 600),
                sync_defaults.ivoris_timeout_secs,
            ),
            ivoris_max_requests_per_second: check.ceiling(&self.sync),
            schedule_minutes: self.sync.schedule_minutes.as_ref().map(|_| {
                check.bounded(
                    "sync.schedule_minutes",
                    &self.sync.schedule_minutes,
                    SCHEDULE_MINUTES,
                    SCHEDULE_MINUTES.0,
                )
            }),
            legacy_duplicates: check.choice(
                "sync.legacy_duplicates",
                &self.sync.legacy_duplicates,
                &[
                    ("close", LegacyDuplicates::Close),
                    ("merge", LegacyDuplicates::Merge),
                ],
                sync_defaults.legacy_duplicates,
            ),
        };

        let mut locations: Vec<LocationSettings> = Vec::new();
        for (index, raw) in self.location.iter().enumerate() {
            let at = |field: &str| format!("location[{}].{field}", index + 1);
            // Spans of a neighbouring key place "is missing" near the right table.
            let near = [&raw.key, &raw.name, &raw.ivoris_url]
                .into_iter()
                .flatten()
                .map(Spanned::span)
                .next();
            let key = check.required(&at("key"), &raw.key, near.clone());
            if let Some(value) = &raw.key
                && !key.is_empty()
            {
                if !is_location_key(&key) {
                    check.report(
                        &at("key"),
                        Some(value.span()),
                        format!("„{key}“: nur Kleinbuchstaben a–z, Ziffern und „-“ erlaubt"),
                        format!("\"{key}\": only lower-case letters a–z, digits and \"-\" allowed"),
                    );
                } else if locations.iter().any(|l| l.key == key) {
                    check.report(
                        &at("key"),
                        Some(value.span()),
                        format!("Standortschlüssel „{key}“ kommt doppelt vor"),
                        format!("location key \"{key}\" appears twice"),
                    );
                }
            }
            let name = match &raw.name {
                None => key.clone(),
                Some(_) => check.required(&at("name"), &raw.name, None),
            };
            let allow_insecure_http = raw
                .allow_insecure_http
                .as_ref()
                .is_some_and(|allow| *allow.get_ref());
            let plain = if allow_insecure_http {
                PlainHttp::Allowed
            } else {
                PlainHttp::OptIn
            };
            let ivoris_url = match &raw.ivoris_url {
                Some(value) => check.url(&at("ivoris_url"), value, plain),
                None => check.required(&at("ivoris_url"), &None, near.clone()),
            };
            let with_default = |value: &Option<Spanned<String>>, default: &str| {
                value
                    .as_ref()
                    .map(|v| v.get_ref().trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_owned())
            };
            let optional = |value: &Option<Spanned<String>>| {
                value
                    .as_ref()
                    .map(|v| v.get_ref().trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            locations.push(LocationSettings {
                ivoris_user: check.required(&at("ivoris_user"), &raw.ivoris_user, near),
                ivoris_app: with_default(&raw.ivoris_app, credentials::IVORIS_APP),
                ivoris_app_version: with_default(
                    &raw.ivoris_app_version,
                    credentials::IVORIS_APP_VERSION,
                ),
                brand: optional(&raw.brand),
                profile_id: optional(&raw.profile_id),
                key,
                name,
                ivoris_url,
                allow_insecure_http,
            });
        }

        if !check.problems.is_empty() {
            return Err(SettingsError::Invalid {
                origin: origin.to_owned(),
                problems: check.problems,
            });
        }
        Ok(Settings {
            ledger,
            language,
            hubspot: HubSpotSettings {
                base_url,
                api_version,
                tier,
                pipeline,
                appointments,
            },
            sync,
            locations,
        })
    }
}

/// The file as written by [`Settings::to_toml_string`].
#[derive(Serialize)]
struct OutSettings<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<String>,
    language: &'static str,
    hubspot: OutHubSpot<'a>,
    sync: OutSync,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    location: Vec<OutLocation<'a>>,
}

#[derive(Serialize)]
struct OutHubSpot<'a> {
    base_url: &'a str,
    api_version: String,
    tier: &'static str,
    pipeline: &'a str,
    appointments: &'static str,
}

#[derive(Serialize)]
struct OutSync {
    entry_sweep_days: u32,
    ivoris_timeout_secs: u32,
    ivoris_max_requests_per_second: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    simulated_now: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_minutes: Option<u32>,
    legacy_duplicates: &'static str,
}

#[derive(Serialize)]
struct OutLocation<'a> {
    key: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<&'a str>,
    ivoris_url: &'a str,
    ivoris_user: &'a str,
    ivoris_app: &'a str,
    ivoris_app_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_id: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_insecure_http: bool,
}
