//! Logging: a daily log file in the data directory plus stderr, and the
//! [`Masked`] wrapper through which personal data is logged at all.
//!
//! Logs must never contain names, e-mails, phone numbers or birthdays
//! (DESIGN.md §3.7). Rather than scrubbing text after the fact, personal
//! values are wrapped in [`Masked`], whose `Debug` and `Display` print a short
//! keyed hash instead of the value: the same value gives the same tag within
//! one process, so log lines about one patient can still be correlated, but
//! the key is random per process, so a tag cannot be reversed by hashing a
//! list of birthdays or common names. [`CapturedLog`] records what a piece of
//! code logs, for tests that check exactly this.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, mpsc};

use chrono::{NaiveDate, NaiveDateTime};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::ivoris::wire;

/// Prefix of the daily log files (`ivoris-hubspot-sync.2026-11-27.log`).
const LOG_FILE_PREFIX: &str = "ivoris-hubspot-sync";

/// How many daily files are kept before the oldest is deleted.
const LOG_FILES_KEPT: usize = 30;

/// Lines of the live log that may wait for the app; beyond that new lines
/// are counted, not kept, so a window that stopped drawing cannot make the
/// engine wait or grow without bound.
const LIVE_LOG_BACKLOG: usize = 10_000;

/// Key of the masking hash, drawn once per process.
static MASK_KEY: LazyLock<[u8; 32]> = LazyLock::new(rand::random);

/// A value that is personal data. It can be passed to `tracing` fields and
/// format strings, but only ever renders as a tag like `pii:3f9a1c2e`
/// (`pii:-` when absent); ASCII so it survives any Windows console code page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Masked<T>(pub T);

impl<T: Personal> Masked<T> {
    /// The tag this value renders as: eight hex digits of a keyed hash.
    pub fn tag(&self) -> String {
        match self.0.canonical() {
            None => "pii:-".to_owned(),
            Some(text) => {
                let hash = blake3::keyed_hash(&MASK_KEY, text.as_bytes());
                format!("pii:{}", &hash.to_hex()[..8])
            }
        }
    }
}

impl<T: Personal> fmt::Display for Masked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag())
    }
}

impl<T: Personal> fmt::Debug for Masked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag())
    }
}

/// A kind of value that can be personal data; [`Masked`] hashes its
/// canonical text.
pub trait Personal {
    /// The text that is hashed; `None` when there is no value. Surrounding
    /// whitespace and letter case are ignored so that `Anna@X.de` and
    /// `anna@x.de ` get the same tag.
    fn canonical(&self) -> Option<String>;
}

impl Personal for str {
    fn canonical(&self) -> Option<String> {
        Some(self.trim().to_lowercase())
    }
}

impl Personal for String {
    fn canonical(&self) -> Option<String> {
        self.as_str().canonical()
    }
}

impl Personal for NaiveDate {
    fn canonical(&self) -> Option<String> {
        Some(self.format("%Y-%m-%d").to_string())
    }
}

impl Personal for NaiveDateTime {
    fn canonical(&self) -> Option<String> {
        self.date().canonical()
    }
}

impl<T: Personal + ?Sized> Personal for &T {
    fn canonical(&self) -> Option<String> {
        (**self).canonical()
    }
}

impl<T: Personal> Personal for Option<T> {
    fn canonical(&self) -> Option<String> {
        self.as_ref().and_then(Personal::canonical)
    }
}

/// What may be logged about a patient: the Ivoris id (a random UUID that
/// means nothing outside the practice system) and masked tags of the
/// personal fields, so two log lines can be matched without revealing whom
/// they are about.
pub struct PatientLog<'a>(&'a wire::Patient);

impl wire::Patient {
    /// A view of this patient that is safe to log.
    pub fn log_view(&self) -> PatientLog<'_> {
        PatientLog(self)
    }
}

impl fmt::Display for PatientLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "patient {}", self.0.id)
    }
}

impl fmt::Debug for PatientLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patient = self.0;
        f.debug_struct("Patient")
            .field("id", &patient.id)
            .field("lastname", &Masked(&patient.lastname))
            .field("email", &Masked(&patient.email))
            .field("birthday", &Masked(&patient.birthday))
            .finish_non_exhaustive()
    }
}

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Directory of the daily log files (`<data dir>/logs`); `None` logs to
    /// stderr only (tests, one-off commands).
    pub dir: Option<PathBuf>,
    /// Most detailed level shown on stderr (the user's `-v`/`-q`).
    pub stderr_level: LevelFilter,
    /// `RUST_LOG`-style directives for the log file; `RUST_LOG` itself wins
    /// when set, so support can raise the level without a new build.
    pub file_filter: String,
    /// Where the desktop app's Protokoll gets the lines of the current run;
    /// `None` for the headless commands.
    pub live: Option<LiveLog>,
}

impl LogOptions {
    /// Daily files in the data directory's `logs/`, stderr at `stderr_level`.
    pub fn in_data_dir(dirs: &crate::settings::DataDirs, stderr_level: LevelFilter) -> LogOptions {
        LogOptions {
            dir: Some(dirs.logs_dir()),
            stderr_level,
            ..LogOptions::default()
        }
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            dir: None,
            stderr_level: LevelFilter::WARN,
            file_filter: "info".to_owned(),
            live: None,
        }
    }
}

/// Keeps the background writer of the log file alive; dropping it flushes
/// what is still buffered, so hold it until the program ends.
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard {
    /// Flushes the non-blocking file writer on drop.
    _file: Option<WorkerGuard>,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "Protokollverzeichnis {dir} kann nicht angelegt werden / Cannot create the log directory {dir}: {source}"
    )]
    Directory { dir: PathBuf, source: io::Error },
    #[error(
        "Protokolldatei in {dir} kann nicht geöffnet werden / Cannot open the log file in {dir}: {message}"
    )]
    File { dir: PathBuf, message: String },
    #[error("Ungültiger Protokollfilter / Invalid log filter „{filter}“: {message}")]
    Filter { filter: String, message: String },
    #[error("Protokollierung ist bereits eingerichtet / Logging is already set up: {0}")]
    AlreadySet(String),
}

/// Installs the global subscriber: the daily file (if a directory is given)
/// and stderr. Call once, at program start.
pub fn init(options: &LogOptions) -> Result<LogGuard, LoggingError> {
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_target(false)
        .with_filter(options.stderr_level);

    let mut narrowed = Vec::new();
    let (file_layer, guard) = match &options.dir {
        None => (None, None),
        Some(dir) => {
            let (appender, fixed) = daily_appender(dir)?;
            narrowed = fixed;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let filter = file_filter(&options.file_filter)?;
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter);
            (Some(layer), Some(guard))
        }
    };

    let live_layer = options.live.clone().map(|live| {
        live.with_filter(
            Targets::new()
                .with_default(LevelFilter::INFO)
                .with_target("ivoris_hubspot_sync", LevelFilter::DEBUG),
        )
    });
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .with(live_layer)
        .try_init()
        .map_err(|error| LoggingError::AlreadySet(error.to_string()))?;
    for (path, was, now) in narrowed {
        crate::files::log_narrowed(&path, was, now);
    }
    Ok(LogGuard { _file: guard })
}

/// The daily appender in `dir`, with the directory and its log files made
/// private; returns the permissions it had to narrow on files that existed
/// before (to be logged once logging is set up), not on the file the
/// appender just created.
fn daily_appender(dir: &Path) -> Result<(PrivateLogs, Vec<Narrowed>), LoggingError> {
    crate::files::create_dir(dir).map_err(|source| LoggingError::Directory {
        dir: dir.to_owned(),
        source,
    })?;
    let mut narrowed: Vec<Narrowed> = crate::files::narrow_quietly(dir)
        .ok()
        .flatten()
        .map(|(was, now)| (dir.to_owned(), was, now))
        .into_iter()
        .collect();
    narrowed.extend(narrow_log_files(dir));
    let inner = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(dir)
        .map_err(|error| LoggingError::File {
            dir: dir.to_owned(),
            message: error.to_string(),
        })?;
    // Today's file, if the appender just created it.
    narrow_log_files(dir);
    let today = chrono::Utc::now().date_naive();
    Ok((
        PrivateLogs {
            inner,
            dir: dir.to_owned(),
            checked: Some(today),
        },
        narrowed,
    ))
}

/// A path whose permissions were narrowed, with the bits before and after.
type Narrowed = (PathBuf, u32, u32);

/// Narrows the log files in `dir` to the owner, quietly (the log writer
/// calls it too, and must not log from inside itself); returns what it
/// changed. Best effort: a file that cannot be narrowed is still logged to.
fn narrow_log_files(dir: &Path) -> Vec<Narrowed> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(LOG_FILE_PREFIX))
        })
        .filter_map(|path| {
            let (was, now) = crate::files::narrow_quietly(&path).ok().flatten()?;
            Some((path, was, now))
        })
        .collect()
}

/// The daily file appender, keeping its files private: the appender creates
/// each day's file with the default permissions, so after the first write
/// of a new day the directory's log files are narrowed to the owner.
struct PrivateLogs {
    /// Rotates and writes the files.
    inner: RollingFileAppender,
    /// The directory of the files.
    dir: PathBuf,
    /// The day (UTC, as the appender rotates) whose file was last narrowed.
    checked: Option<NaiveDate>,
}

impl io::Write for PrivateLogs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        let today = chrono::Utc::now().date_naive();
        if self.checked != Some(today) {
            // A new day's file: the appender created it with the default
            // permissions.
            narrow_log_files(&self.dir);
            self.checked = Some(today);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn file_filter(fallback: &str) -> Result<EnvFilter, LoggingError> {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| fallback.to_owned());
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|error| LoggingError::Filter {
            filter: directives.clone(),
            message: error.to_string(),
        })
}

/// One logged event, for the desktop app's Protokoll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLine {
    /// When it was logged.
    pub at: chrono::DateTime<chrono::Utc>,
    /// How important it is; the Protokoll filters by it.
    pub level: tracing::Level,
    /// The message and its fields (`key=value`), as in the log file —
    /// personal values only ever as [`Masked`] tags.
    pub text: String,
}

/// A log layer that hands every event to the desktop app through a bounded
/// channel, so the app shows what the engine is doing without reading the
/// log file. Sending never waits: when the app does not keep up, lines are
/// counted as dropped.
#[derive(Clone)]
pub struct LiveLog {
    /// Where the lines go; the app holds the receiver.
    sender: mpsc::SyncSender<LiveLine>,
    /// Lines that found the channel full.
    dropped: Arc<AtomicU64>,
}

impl fmt::Debug for LiveLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveLog")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A live log layer and the receiving end the app drains.
pub fn live_log() -> (LiveLog, mpsc::Receiver<LiveLine>) {
    let (sender, receiver) = mpsc::sync_channel(LIVE_LOG_BACKLOG);
    let live = LiveLog {
        sender,
        dropped: Arc::new(AtomicU64::new(0)),
    };
    (live, receiver)
}

impl LiveLog {
    /// Lines that could not be handed over because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<S: tracing::Subscriber> Layer<S> for LiveLog {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let mut text = visitor.message;
        if !visitor.fields.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&visitor.fields);
        }
        let line = LiveLine {
            at: chrono::Utc::now(),
            level: *event.metadata().level(),
            text,
        };
        if self.sender.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Collects an event's message and fields into text.
#[derive(Default)]
struct LineVisitor {
    /// The `message` field.
    message: String,
    /// Every other field as `key=value`, space-separated.
    fields: String,
}

impl tracing::field::Visit for LineVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// An in-memory log sink for tests: everything logged through
/// [`CapturedLog::subscriber`] lands in a shared buffer.
#[derive(Clone, Default)]
pub struct CapturedLog {
    /// Shared with every writer handed out, so the test reads what the code
    /// under test wrote.
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLog {
    pub fn new() -> CapturedLog {
        CapturedLog::default()
    }

    /// A subscriber that writes every event at any level, with its fields,
    /// into this buffer. Install it with `tracing::subscriber::with_default`
    /// (this thread), `tracing::instrument::WithSubscriber` (one future on a
    /// current-thread runtime) or `set_global_default` (a whole test binary
    /// with a multi-threaded runtime).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_filter(LevelFilter::TRACE);
        Registry::default().with(layer)
    }

    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panicking test thread must not hide what was logged before it.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `body` with a capturing subscriber on this thread and returns its
/// result together with everything it logged.
pub fn capture<R>(body: impl FnOnce() -> R) -> (R, String) {
    let log = CapturedLog::new();
    let result = tracing::subscriber::with_default(log.subscriber(), body);
    (result, log.contents())
}

impl io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> wire::Patient {
        serde_json::from_str(
            r#"{"Id":"c1f0","HumanReadableId":"10234","Firstname":"Jürgen","Lastname":"Weiß",
            "Birthday":"1985-03-15T00:00:00","Email":"j.weiss@example.de",
            "Phone":"0391 123456","Mobile":"+49 170 1234567"}"#,
        )
        .expect("parses")
    }

    /// The personal values of [`patient`] as they might appear in text.
    const PERSONAL: [&str; 7] = [
        "Jürgen",
        "Weiß",
        "j.weiss@example.de",
        "0391 123456",
        "+49 170 1234567",
        "1985-03-15",
        "15.03.1985",
    ];

    fn assert_no_personal_data(text: &str) {
        for value in PERSONAL {
            assert!(!text.contains(value), "{value:?} leaked into {text:?}");
        }
    }

    #[test]
    fn masked_values_never_render_the_original() {
        let p = patient();
        let rendered = [
            format!("{}", Masked(&p.firstname)),
            format!("{:?}", Masked(&p.lastname)),
            format!("{:#?}", Masked(p.email.as_deref())),
            format!("{}", Masked(&p.phone)),
            format!("{:?}", Masked(&p.mobile)),
            format!("{}", Masked(&p.birthday)),
            format!("{:?}", p.log_view()),
            format!("{}", p.log_view()),
        ];
        for text in &rendered {
            assert_no_personal_data(text);
        }
        assert!(rendered[7].contains("c1f0"), "the id stays visible");
    }

    #[test]
    fn tags_are_stable_short_and_case_insensitive() {
        let a = Masked("Anna@Example.de ").to_string();
        assert_eq!(a, Masked("anna@example.de").to_string());
        assert_ne!(a, Masked("anne@example.de").to_string());
        assert_eq!(a.len(), 12);
        assert_eq!(Masked(None::<String>).to_string(), "pii:-");
    }

    #[test]
    fn tracing_fields_through_masked_do_not_leak() {
        let p = patient();
        let ((), log) = capture(|| {
            tracing::info!(
                patient = %p.id,
                name = %Masked(&p.lastname),
                email = ?Masked(&p.email),
                birthday = %Masked(&p.birthday),
                "patient mirrored"
            );
            tracing::warn!(view = ?p.log_view(), "patient quarantined");
        });
        assert!(log.contains("patient mirrored"), "{log}");
        assert!(log.contains("patient quarantined"), "{log}");
        assert!(log.contains("c1f0"), "{log}");
        assert_no_personal_data(&log);
    }

    #[test]
    fn capture_sees_what_unmasked_logging_would_leak() {
        // Guards the test above: the capture really contains field values.
        let p = patient();
        let ((), log) = capture(|| tracing::info!(email = ?p.email, "unmasked"));
        assert!(log.contains("j.weiss@example.de"), "{log}");
    }

    #[test]
    fn log_files_are_created_in_the_given_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let logs = dir.path().join("logs");
        let (appender, _) = daily_appender(&logs).expect("appender");
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false);
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            tracing::info!("written to the file");
        });
        drop(guard);
        let files: Vec<_> = std::fs::read_dir(&logs)
            .expect("log dir")
            .map(|entry| entry.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(&files[0]).expect("log file");
        assert!(text.contains("written to the file"), "{text}");
    }
    #[test]
    fn the_live_log_hands_over_level_message_and_masked_fields() {
        let (live, lines) = live_log();
        let subscriber = Registry::default().with(live.clone());
        let patient = patient();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(location = "leipzig", name = %Masked(&patient.lastname), "Ivoris antwortet langsam");
            tracing::debug!("details");
        });
        let received: Vec<LiveLine> = lines.try_iter().collect();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].level, tracing::Level::WARN);
        assert!(
            received[0]
                .text
                .starts_with("Ivoris antwortet langsam location=\"leipzig\" name=pii:"),
            "{}",
            received[0].text
        );
        assert_eq!(received[1].level, tracing::Level::DEBUG);
        assert_eq!(received[1].text, "details");
        let all: String = received.iter().map(|l| l.text.as_str()).collect();
        assert_no_personal_data(&all);
    }

    #[test]
    fn a_full_live_log_drops_lines_instead_of_waiting() {
        let (live, lines) = live_log();
        let subscriber = Registry::default().with(live.clone());
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..LIVE_LOG_BACKLOG + 5 {
                tracing::info!(n, "line");
            }
        });
        assert_eq!(lines.try_iter().count(), LIVE_LOG_BACKLOG);
        assert_eq!(live.dropped(), 5);
    }
}
