//! Extraction of one location from Ivoris into the ledger.
//!
//! Order: reference data (chairs, practitioners, appointment types), then
//! patients page by page, then appointments in date windows up to the
//! booking horizon (every future booking: recalls are booked up to two
//! years ahead) together with the billing lines of the patients active in
//! each window, then (optionally) the appointments Ivoris reports as
//! changed, then (when due) a full sweep of every patient's billing lines
//! without a window, which catches lines windowed asks left out
//! (DESIGN.md §5). In a run with a sweep — always the first — the sweep is
//! the only billing-line ask, one per patient (see `Run::sweep`), so
//! patients and appointments are complete early and the caller can plan
//! and send them meanwhile.
//!
//! Every page or window is committed to the ledger — records, quarantined
//! rejects and the advanced cursor in one transaction — so killing the
//! process at any instant loses nothing and the next run resumes where the
//! last commit left off (DESIGN.md §3.2). A window that keeps failing is
//! halved down to one day; a location whose server keeps failing is stopped
//! with the reason in the report while the caller goes on with the next.
//! The plan's `now` is injected: nothing here reads the machine clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Duration, NaiveDate, NaiveDateTime};

use crate::ivoris::client::{ClientCounters, IvorisClient, IvorisError, RouteCounts, route};
use crate::ivoris::minimise::Minimised;
use crate::ivoris::parse::{Parsed, Reject};
use crate::ivoris::wire::{Appointment, DocumentEntry, Patient};
use crate::ledger::cursors::stream;
use crate::ledger::deletions;
use crate::ledger::identity::{RecordKind, alias_of, api_id_of};
use crate::ledger::{
    Batch, Ledger, LedgerError, LocationRow, MirrorOutcome, NewAuditEntry, NewQuarantine,
};
use crate::settings::LocationSettings;

/// Default depth of history read on the first run.
pub const DEFAULT_HISTORY_DAYS: i64 = 730;
/// Default reach of future bookings: every booking Ivoris holds. Practices
/// book recalls 6, 12, 18 and some 24 months ahead; a third year leaves
/// room for the exceptions.
pub const DEFAULT_HORIZON_DAYS: i64 = 1096;
/// Default width of an appointment window up to [`NEAR_DAYS`] ahead.
pub const DEFAULT_WINDOW_DAYS: u32 = 14;
/// Days ahead of today up to which windows have the plan's `window_days`;
/// beyond, bookings are sparse (recalls) and windows are
/// [`DEFAULT_FAR_WINDOW_DAYS`] wide, so every run reads the whole horizon
/// in a dozen more asks.
pub const NEAR_DAYS: i64 = 90;
/// Default width of an appointment window beyond [`NEAR_DAYS`].
pub const DEFAULT_FAR_WINDOW_DAYS: u32 = 91;
/// Patients per committed step of the full sweep.
const SWEEP_BATCH: usize = 25;
/// Failed attempts at a one-day window before the location is stopped.
const ONE_DAY_ATTEMPTS: u32 = 3;

/// A request to stop, shared between the GUI or a signal handler and a run.
/// Checked between requests, so a cancelled run stops after its current
/// commit and resumes from there next time.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag not yet set.
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What one extraction reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractPlan {
    /// The current local time, injected (the sandbox has its own clock).
    pub now: NaiveDateTime,
    /// Where the first run starts reading appointments.
    pub history_start: NaiveDateTime,
    /// How far into the future bookings are read.
    pub horizon: NaiveDateTime,
    /// Width of an appointment window in days (at least 1) from the history
    /// up to [`NEAR_DAYS`] ahead of today.
    pub window_days: u32,
    /// Width of a window beyond [`NEAR_DAYS`] (at least 1).
    pub far_window_days: u32,
    /// Whether `LatestAppointments?since=` is asked after the windows.
    pub use_change_route: bool,
    /// Whether every patient's billing lines are read again this run.
    pub full_sweep_due: bool,
    /// Whether the load runs beside the extraction on the same task: the
    /// sweep then leaves it at least half of the task (see `sweep`).
    pub beside_load: bool,
}

impl ExtractPlan {
    /// The default plan at `now`: two years of history, every booking up
    /// to three years ahead, 14-day windows (91 days beyond the next 90
    /// days), change route on, no sweep.
    pub fn new(now: NaiveDateTime) -> ExtractPlan {
        ExtractPlan {
            now,
            history_start: now - Duration::days(DEFAULT_HISTORY_DAYS),
            horizon: now + Duration::days(DEFAULT_HORIZON_DAYS),
            window_days: DEFAULT_WINDOW_DAYS,
            far_window_days: DEFAULT_FAR_WINDOW_DAYS,
            use_change_route: true,
            full_sweep_due: false,
            beside_load: false,
        }
    }

    /// Whether a full sweep is due at `now` for a location, given the days
    /// between sweeps (`SyncSettings::entry_sweep_days`): when none finished
    /// yet, when one is half done, or when the last is older than that.
    pub fn sweep_due(
        ledger: &Ledger,
        location: &str,
        now: NaiveDateTime,
        entry_sweep_days: u32,
    ) -> Result<bool, LedgerError> {
        if ledger.cursor(location, stream::ENTRY_SWEEP)?.is_some() {
            return Ok(true);
        }
        let last = ledger
            .cursor(location, stream::ENTRY_SWEEP_DONE)?
            .and_then(|text| parse_date_time(&text));
        Ok(last.is_none_or(|last| now - last >= Duration::days(i64::from(entry_sweep_days))))
    }
}

/// The steps of an extraction, as shown to staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Chairs, practitioners, appointment types.
    Stammdaten,
    /// Patient pages.
    Patienten,
    /// Appointment windows and changed appointments.
    Termine,
    /// Billing lines (the full sweep).
    Leistungen,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Stammdaten => "Stammdaten",
            Phase::Patienten => "Patienten",
            Phase::Termine => "Termine",
            Phase::Leistungen => "Leistungen",
        })
    }
}

/// A progress snapshot, published after every commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractProgress {
    /// Location key.
    pub location: String,
    /// Current step.
    pub phase: Phase,
    /// Units done in this step (pages, days, patients).
    pub done: u64,
    /// Units in this step, when known in advance.
    pub total: Option<u64>,
}

/// What happened to the records of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindCounts {
    /// Records received (valid, rejected and repeated).
    pub read: u64,
    /// Records new to the ledger.
    pub inserted: u64,
    /// Records whose content changed.
    pub updated: u64,
    /// Records identical to the ledger; not rewritten.
    pub unchanged: u64,
    /// Records received again within this run (same Id on two pages or
    /// windows); stored once.
    pub duplicates: u64,
    /// Records that could not be parsed and were quarantined.
    pub quarantined: u64,
}

impl KindCounts {
    fn add(&mut self, outcome: MirrorOutcome) {
        self.inserted += outcome.inserted as u64;
        self.updated += outcome.updated as u64;
        self.unchanged += outcome.unchanged as u64;
    }
}

/// Why a location was stopped before the end.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Step in which it stopped.
    pub phase: Phase,
    /// The Ivoris failure (its message is German and English).
    pub error: IvorisError,
}

/// The outcome of one extraction of one location.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    /// Location key.
    pub location: String,
    /// Chairs, practitioners and appointment types.
    pub reference: KindCounts,
    /// Patients.
    pub patients: KindCounts,
    /// Appointments.
    pub appointments: KindCounts,
    /// Billing lines.
    pub entries: KindCounts,
    /// Ivoris requests, retries and failures per route during this run.
    pub calls: ClientCounters,
    /// Appointment windows read and committed.
    pub windows: u64,
    /// Times a failing window was halved.
    pub windows_halved: u64,
    /// Patients whose billing lines were asked because of activity.
    pub patients_asked_for_entries: u64,
    /// Patients whose billing lines the full sweep read.
    pub patients_swept: u64,
    /// Whether a full sweep finished in this run.
    pub sweep_done: bool,
    /// Records the full sweep found deleted in Ivoris (`ledger::deletions`).
    pub deleted: Deleted,
    /// Appointments per start day as Ivoris reported them in this run, for
    /// the reconciliation report.
    pub appointments_per_day: BTreeMap<NaiveDate, u64>,
    /// Billing lines per date as Ivoris reported them in this run.
    pub entries_per_day: BTreeMap<NaiveDate, u64>,
    /// Whether the run stopped because it was cancelled.
    pub cancelled: bool,
    /// Set when Ivoris kept failing and the location was given up for this run.
    pub stopped: Option<Stopped>,
    /// Transient problems the run recovered from (halved windows), for the log view.
    pub errors: Vec<String>,
}

/// Records found deleted in Ivoris in one run, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Patients (their contacts stay in HubSpot).
    pub patients: u64,
    /// Appointments (their records in HubSpot are cancelled).
    pub appointments: u64,
    /// Billing lines (revenue no longer counts them).
    pub entries: u64,
}

impl Deleted {
    /// Every record found deleted.
    pub fn total(&self) -> u64 {
        self.patients + self.appointments + self.entries
    }
}

impl ExtractReport {
    /// Whether the run went through to the end.
    pub fn complete(&self) -> bool {
        !self.cancelled && self.stopped.is_none()
    }
}

/// Failures that end the extraction of a location and are not Ivoris's
/// doing (those are reported in [`ExtractReport::stopped`]).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("Ledger-Fehler beim Abruf / Ledger error during extraction: {0}")]
    Ledger(#[from] LedgerError),
}

/// Why a step ended early.
enum Halt {
    /// The cancel flag was set.
    Cancelled,
    /// Ivoris kept failing.
    Ivoris(Phase, IvorisError),
    /// The ledger failed.
    Ledger(LedgerError),
}

impl From<LedgerError> for Halt {
    fn from(error: LedgerError) -> Self {
        Halt::Ledger(error)
    }
}

/// State of one run of one location.
struct Run<'a> {
    /// The installation of this location.
    client: &'a Arc<IvorisClient>,
    /// Where every step is committed.
    ledger: &'a mut Ledger,
    /// Location key, the namespace of all records.
    location: &'a str,
    /// Ivoris Mandant, when the installation has several.
    profile: Option<&'a str>,
    /// What to read.
    plan: &'a ExtractPlan,
    /// Told after every commit.
    progress: &'a (dyn Fn(ExtractProgress) + Sync),
    /// Checked before every request.
    cancel: &'a CancelFlag,
    /// Filled as the steps go.
    report: ExtractReport,
    /// Patient Ids received this run, to count repeats.
    patients_seen: HashSet<String>,
    /// Patients whose stored record changed this run (entry trigger).
    patients_changed: BTreeSet<String>,
    /// Patients whose billing lines were read this run (committed).
    entries_asked: HashSet<String>,
    /// Appointment Id → start day, as seen this run.
    appointment_days: HashMap<String, Option<NaiveDate>>,
    /// The days every appointment window of this run covered, once all
    /// were read.
    windows_read: Option<(NaiveDate, NaiveDate)>,
    /// Whether this run's patient listing started on the first page and
    /// reached the end: only then does it name every patient.
    listing_complete: bool,
    /// Patient Ids the listing had that could not be read (quarantined):
    /// they exist.
    patients_unreadable: HashSet<String>,
    /// Entry Id → date, as seen this run.
    entry_days: HashMap<String, Option<NaiveDate>>,
    /// Told when a full sweep starts and after each of its commits.
    on_sweep: &'a mut SweepHook<'a>,
}

/// How far a full sweep of billing lines is, told to the caller of
/// [`extract_location_with`] with the ledger in between commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepStep<'s> {
    /// Everything but the billing lines is committed (patients and
    /// appointments are complete); the sweep starts.
    Starting,
    /// The billing lines of every patient up to and including this Ivoris
    /// id (in id order) are committed.
    Swept(&'s str),
}

/// The caller's part in a full sweep (see [`SweepStep`]).
pub type SweepHook<'h> =
    dyn FnMut(&mut Ledger, SweepStep<'_>) -> Result<(), LedgerError> + Send + 'h;

/// Extracts one location into the ledger. Ivoris failures stop the location
/// and are reported in [`ExtractReport::stopped`]; only ledger failures are
/// errors.
pub async fn extract_location(
    client: &Arc<IvorisClient>,
    ledger: &mut Ledger,
    location: &LocationSettings,
    plan: &ExtractPlan,
    progress: &(dyn Fn(ExtractProgress) + Sync),
    cancel: &CancelFlag,
) -> Result<ExtractReport, ExtractError> {
    extract_location_with(
        client,
        ledger,
        location,
        plan,
        progress,
        cancel,
        &mut |_, _| Ok(()),
    )
    .await
}

/// Like [`extract_location`], and tells `on_sweep` with the ledger when a
/// due full sweep starts (patients and appointments are complete then) and
/// whenever it committed more billing lines, so the caller can plan and
/// send what is complete while the sweep reads on. Not called when no
/// sweep is due or the extraction stops earlier.
pub async fn extract_location_with<'h>(
    client: &Arc<IvorisClient>,
    ledger: &mut Ledger,
    location: &LocationSettings,
    plan: &ExtractPlan,
    progress: &(dyn Fn(ExtractProgress) + Sync),
    cancel: &CancelFlag,
    on_sweep: &'h mut SweepHook<'h>,
) -> Result<ExtractReport, ExtractError> {
    ledger.upsert_location(&LocationRow::from(location))?;
    let before = client.counters();
    let mut run = Run {
        client,
        ledger,
        location: &location.key,
        profile: location.profile_id.as_deref(),
        plan,
        progress,
        cancel,
        report: ExtractReport {
            location: location.key.clone(),
            ..ExtractReport::default()
        },
        patients_seen: HashSet::new(),
        patients_changed: BTreeSet::new(),
        entries_asked: HashSet::new(),
        appointment_days: HashMap::new(),
        windows_read: None,
        listing_complete: false,
        patients_unreadable: HashSet::new(),
        entry_days: HashMap::new(),
        on_sweep,
    };
    let outcome = run.all_steps().await;
    let mut report = run.finish(&before);
    match outcome {
        Ok(()) => {}
        Err(Halt::Cancelled) => report.cancelled = true,
        Err(Halt::Ivoris(phase, error)) => {
            tracing::warn!(location = %report.location, %phase, "ivoris extraction stopped");
            report.stopped = Some(Stopped { phase, error });
        }
        Err(Halt::Ledger(error)) => return Err(error.into()),
    }
    tracing::info!(
        location = %report.location,
        patients = report.patients.read,
        appointments = report.appointments.read,
        entries = report.entries.read,
        quarantined = report.patients.quarantined + report.appointments.quarantined + report.entries.quarantined,
        windows = report.windows,
        complete = report.complete(),
        "ivoris extraction finished"
    );
    Ok(report)
}

fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    crate::ivoris::parse::parse_date_time(text)
}

fn format_date_time(value: NaiveDateTime) -> String {
    value.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Counts per route of `after` minus `before`.
fn calls_since(before: &ClientCounters, after: ClientCounters) -> ClientCounters {
    after
        .into_iter()
        .map(|(route, counts)| {
            let old = before.get(route).copied().unwrap_or_default();
            (
                route,
                RouteCounts {
                    requests: counts.requests.saturating_sub(old.requests),
                    retries: counts.retries.saturating_sub(old.retries),
                    failures: counts.failures.saturating_sub(old.failures),
                },
            )
        })
        .filter(|(_, counts)| *counts != RouteCounts::default())
        .collect()
}

/// Quarantines the rejects of one answer inside the step's transaction.
fn quarantine_rejects(
    batch: &mut Batch<'_>,
    location: &str,
    source: &str,
    rejects: &[Reject],
) -> Result<(), LedgerError> {
    for reject in rejects {
        batch.quarantine(&NewQuarantine {
            location_key: location.to_owned(),
            source: source.to_owned(),
            record_id: reject.record_id.clone(),
            field: reject.field.clone(),
            reason_de: reject.reason_de.clone(),
            reason_en: reject.reason_en.clone(),
            raw: reject.raw.clone(),
        })?;
    }
    Ok(())
}

/// Removes records whose Id came earlier in the same answer; returns how many.
fn dedupe_by_id<T>(records: &mut Vec<T>, id: impl Fn(&T) -> &str) -> u64 {
    let mut seen = HashSet::new();
    let before = records.len();
    records.retain(|r| seen.insert(id(r).to_owned()));
    (before - records.len()) as u64
}

/// Billing lines read for one window or sweep step, not yet committed.
#[derive(Default)]
struct EntryHaul {
    /// Valid lines, de-duplicated by Id.
    records: Vec<DocumentEntry>,
    /// Lines to quarantine.
    rejects: Vec<Reject>,
    /// Patients asked.
    patients: Vec<String>,
    /// Lines received, including rejects and repeats.
    read: u64,
    /// Lines received twice in this step.
    duplicates: u64,
}

impl EntryHaul {
    /// Adds the lines of another ask.
    fn absorb(&mut self, other: EntryHaul) {
        self.read += other.read;
        self.duplicates += other.duplicates;
        self.records.extend(other.records);
        self.rejects.extend(other.rejects);
        self.patients.extend(other.patients);
    }
}

impl Run<'_> {
    fn finish(self, before: &ClientCounters) -> ExtractReport {
        let mut report = self.report;
        report.calls = calls_since(before, self.client.counters());
        for day in self.appointment_days.into_values().flatten() {
            *report.appointments_per_day.entry(day).or_default() += 1;
        }
        for day in self.entry_days.into_values().flatten() {
            *report.entries_per_day.entry(day).or_default() += 1;
        }
        report
    }

    fn check_cancel(&self) -> Result<(), Halt> {
        if self.cancel.is_cancelled() {
            Err(Halt::Cancelled)
        } else {
            Ok(())
        }
    }

    fn publish(&self, phase: Phase, done: u64, total: Option<u64>) {
        (self.progress)(ExtractProgress {
            location: self.location.to_owned(),
            phase,
            done,
            total,
        });
    }

    async fn all_steps(&mut self) -> Result<(), Halt> {
        self.reference_data().await?;
        self.patients().await?;
        self.lifted_patients().await?;
        self.appointment_windows().await?;
        if self.plan.use_change_route {
            self.changed_appointments().await?;
        }
        if self.plan.full_sweep_due {
            self.check_cancel()?;
            self.deleted_patients().await?;
            self.deleted_appointments().await?;
            (self.on_sweep)(self.ledger, SweepStep::Starting)?;
            self.sweep().await?;
        }
        Ok(())
    }

    async fn reference_data(&mut self) -> Result<(), Halt> {
        self.check_cancel()?;
        let phase = Phase::Stammdaten;
        let fail = |error| Halt::Ivoris(phase, error);
        let profiles = self.client.profiles().await.map_err(fail)?;
        let chairs = self.client.chairs(self.profile).await.map_err(fail)?;
        let practitioners = self.client.practitioners().await.map_err(fail)?;
        let templates = self.client.templates().await.map_err(fail)?;
        let location = self.location;
        let outcome = self.ledger.commit(|batch| {
            let mut outcome = batch.mirror(location, &chairs.records)?;
            let more = [
                batch.mirror(location, &practitioners.records)?,
                batch.mirror(location, &templates.records)?,
            ];
            for other in more {
                outcome.inserted += other.inserted;
                outcome.updated += other.updated;
                outcome.unchanged += other.unchanged;
            }
            quarantine_rejects(batch, location, route::PROFILES, &profiles.rejects)?;
            quarantine_rejects(batch, location, route::CHAIRS, &chairs.rejects)?;
            quarantine_rejects(
                batch,
                location,
                route::PRACTITIONERS,
                &practitioners.rejects,
            )?;
            quarantine_rejects(batch, location, route::TEMPLATES, &templates.rejects)?;
            Ok(outcome)
        })?;
        let counts = &mut self.report.reference;
        counts.read += (chairs.len() + practitioners.len() + templates.len()) as u64;
        counts.quarantined += (profiles.rejects.len()
            + chairs.rejects.len()
            + practitioners.rejects.len()
            + templates.rejects.len()) as u64;
        counts.add(outcome);
        self.publish(phase, 1, Some(1));
        Ok(())
    }

    async fn patients(&mut self) -> Result<(), Halt> {
        let phase = Phase::Patienten;
        let location = self.location;
        let mut page: u32 = self
            .ledger
            .cursor(location, stream::PATIENT_PAGE)?
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        let from_start = page == 0;
        let mut unnamed_rejects = false;
        let mut done = 0;
        loop {
            self.check_cancel()?;
            let Parsed {
                mut records,
                rejects,
            } = self
                .client
                .patients_page(page)
                .await
                .map_err(|error| Halt::Ivoris(phase, error))?;
            if records.is_empty() && rejects.is_empty() {
                // End of the listing: the next run pages from the start.
                self.ledger
                    .commit(|batch| batch.clear_cursor(location, stream::PATIENT_PAGE))?;
                self.listing_complete = from_start && !unnamed_rejects;
                return Ok(());
            }
            for reject in &rejects {
                match &reject.record_id {
                    Some(id) => {
                        self.patients_unreadable.insert(id.clone());
                    }
                    None => unnamed_rejects = true,
                }
            }
            let counts = &mut self.report.patients;
            counts.read += (records.len() + rejects.len()) as u64;
            let before = records.len();
            let seen = &mut self.patients_seen;
            records.retain(|p| seen.insert(p.id.clone()));
            counts.duplicates += (before - records.len()) as u64;
            counts.quarantined += rejects.len() as u64;

            let changed = changed_patients(self.ledger, location, &records)?;
            let next = (page + 1).to_string();
            let outcome = self.ledger.commit(|batch| {
                let outcome = batch.mirror(location, &records)?;
                quarantine_rejects(batch, location, route::PATIENTS, &rejects)?;
                batch.set_cursor(location, stream::PATIENT_PAGE, &next)?;
                Ok(outcome)
            })?;
            self.report.patients.add(outcome);
            self.patients_changed.extend(changed);
            page += 1;
            done += 1;
            self.publish(phase, done, None);
        }
    }

    /// Patients whose tombstone was lifted (`forget-patient --lift`): read
    /// again whole — the patient, every appointment, every billing line
    /// without a window — since their history lies before the windows.
    async fn lifted_patients(&mut self) -> Result<(), Halt> {
        let location = self.location;
        for patient in self.ledger.lifted_patients(location)? {
            self.check_cancel()?;
            let phase = Phase::Patienten;
            let fail = |error| Halt::Ivoris(phase, error);
            let found = self.client.patient(&patient).await.map_err(fail)?;
            let appointments = self
                .client
                .patient_appointments(&patient)
                .await
                .map_err(fail)?;
            let entries = self
                .client
                .document_entries(&patient, self.profile, None, None)
                .await
                .map_err(fail)?;
            let outcome = self.ledger.commit(|batch| {
                batch.reread_done(location, &patient)?;
                let outcome = batch.mirror(location, &found.records)?;
                batch.mirror(location, &appointments.records)?;
                batch.mirror(location, &entries.records)?;
                quarantine_rejects(batch, location, route::PATIENT, &found.rejects)?;
                quarantine_rejects(
                    batch,
                    location,
                    route::PATIENT_APPOINTMENTS,
                    &appointments.rejects,
                )?;
                quarantine_rejects(batch, location, route::DOCUMENT_ENTRIES, &entries.rejects)?;
                Ok(outcome)
            })?;
            self.report.patients.add(outcome);
            self.entries_asked.insert(patient.clone());
            tracing::info!(%location, "patient read again after its tombstone was lifted");
        }
        Ok(())
    }

    /// The first day to read: where the last run stopped, but never later
    /// than one window before today, because recent and future
    /// appointments change (settled, confirmed, cancelled, new bookings).
    fn first_window_day(&self) -> Result<NaiveDate, LedgerError> {
        let today = self.plan.now.date();
        let rescan = today - Duration::days(i64::from(self.plan.window_days.max(1)));
        let cursor = self
            .ledger
            .cursor(self.location, stream::APPOINTMENT_DAY)?
            .and_then(|text| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok());
        Ok(match cursor {
            // A full sweep reads every window again, so it sees which
            // appointments are gone.
            Some(day) if !self.plan.full_sweep_due => day.min(rescan),
            _ => self.plan.history_start.date(),
        })
    }

    /// The width of a full window starting on `day`: narrow up to
    /// [`NEAR_DAYS`] ahead, where appointments are dense and change, wide
    /// beyond, where only recalls are booked.
    fn full_width(&self, day: NaiveDate) -> i64 {
        let near_end = self.plan.now.date() + Duration::days(NEAR_DAYS);
        let days = if day < near_end {
            self.plan.window_days
        } else {
            self.plan.far_window_days
        };
        i64::from(days.max(1))
    }

    async fn appointment_windows(&mut self) -> Result<(), Halt> {
        let phase = Phase::Termine;
        let first = self.first_window_day()?;
        let last = self.plan.horizon.date();
        let total = u64::try_from((last - first).num_days() + 1).unwrap_or(0);
        let mut width = self.full_width(first);
        let mut day = first;
        let mut one_day_failures = 0;
        // Patients changed in the patient step have their lines read along
        // with the first window.
        let mut changed: Vec<String> = self.patients_changed.iter().cloned().collect();
        while day <= last {
            self.check_cancel()?;
            let end = (day + Duration::days(width - 1)).min(last);
            match self.window(first, day, end, &changed).await {
                Ok(()) => {
                    changed.clear();
                    self.report.windows += 1;
                    one_day_failures = 0;
                    let full_before = self.full_width(day);
                    day = end + Duration::days(1);
                    // Back to full width gradually after a halving; a full
                    // window is followed by a full one of the next zone.
                    width = if width >= full_before {
                        self.full_width(day)
                    } else {
                        (width * 2).min(self.full_width(day))
                    };
                    let done = u64::try_from((day - first).num_days()).unwrap_or(0);
                    self.publish(phase, done.min(total), Some(total));
                }
                Err(Halt::Ivoris(_, error)) if error.is_transient() => {
                    self.report.errors.push(error.to_string());
                    if width > 1 {
                        width = (width / 2).max(1);
                        self.report.windows_halved += 1;
                        tracing::info!(location = %self.location, width, "appointment window halved");
                    } else {
                        one_day_failures += 1;
                        if one_day_failures >= ONE_DAY_ATTEMPTS {
                            return Err(Halt::Ivoris(phase, error));
                        }
                    }
                }
                Err(halt) => return Err(halt),
            }
        }
        self.windows_read = Some((first, last));
        Ok(())
    }

    /// Reads one window and the billing lines of its active patients, and
    /// commits both with the advanced cursor.
    async fn window(
        &mut self,
        run_start: NaiveDate,
        begin: NaiveDate,
        end: NaiveDate,
        changed: &[String],
    ) -> Result<(), Halt> {
        let phase = Phase::Termine;
        let today = self.plan.now.date();
        let Parsed {
            mut records,
            rejects,
        } = self
            .client
            .appointments(self.profile, begin, end)
            .await
            .map_err(|error| Halt::Ivoris(phase, error))?;
        let read = (records.len() + rejects.len()) as u64;
        let duplicates = dedupe_by_id(&mut records, |a| &a.id);

        // Patients with an appointment that has begun: only they can have
        // new billing lines from this window.
        let mut active: BTreeSet<String> = records
            .iter()
            .filter(|a| a.start.is_some_and(|s| s.date() <= today))
            .filter_map(|a| a.patient_id.clone())
            .collect();
        active.extend(changed.iter().cloned());
        active.retain(|p| !self.entries_asked.contains(p));
        if self.plan.full_sweep_due {
            // The sweep asks every patient without a window (see `sweep`).
            active.clear();
        }
        let haul = entries_for(
            self.client,
            self.profile,
            self.cancel,
            active.into_iter().collect(),
            Some(run_start),
            Some(today),
        )
        .await?;

        let location = self.location;
        let next = (end + Duration::days(1)).format("%Y-%m-%d").to_string();
        let (appointments, entries) = self.ledger.commit(|batch| {
            let appointments = batch.mirror(location, &records)?;
            quarantine_rejects(batch, location, route::APPOINTMENTS, &rejects)?;
            let entries = batch.mirror(location, &haul.records)?;
            quarantine_rejects(batch, location, route::DOCUMENT_ENTRIES, &haul.rejects)?;
            batch.set_cursor(location, stream::APPOINTMENT_DAY, &next)?;
            Ok((appointments, entries))
        })?;
        let counts = &mut self.report.appointments;
        counts.read += read;
        counts.duplicates += duplicates;
        counts.quarantined += rejects.len() as u64;
        counts.add(appointments);
        for appointment in &records {
            self.appointment_days
                .insert(appointment.id.clone(), appointment.start.map(|s| s.date()));
        }
        self.report.patients_asked_for_entries += haul.patients.len() as u64;
        self.entries_asked.extend(haul.patients.iter().cloned());
        self.record_entries(haul, entries);
        Ok(())
    }

    fn record_entries(&mut self, haul: EntryHaul, outcome: MirrorOutcome) {
        let counts = &mut self.report.entries;
        counts.read += haul.read;
        counts.duplicates += haul.duplicates;
        counts.quarantined += haul.rejects.len() as u64;
        counts.add(outcome);
        for entry in &haul.records {
            self.entry_days.insert(entry.id.clone(), entry.date);
        }
    }

    /// `LatestAppointments?since=` from the change cursor; on the first run
    /// the cursor is only set (the windows have read everything).
    async fn changed_appointments(&mut self) -> Result<(), Halt> {
        self.check_cancel()?;
        let phase = Phase::Termine;
        let location = self.location;
        let today = self.plan.now.date();
        let since = self
            .ledger
            .cursor(location, stream::APPOINTMENT_CHANGES)?
            .and_then(|text| parse_date_time(&text));
        let Some(since) = since else {
            let latest = self.ledger.latest_appointment_change(location)?;
            if let Some(latest) = latest {
                self.ledger
                    .set_cursor(location, stream::APPOINTMENT_CHANGES, &latest)?;
            }
            return Ok(());
        };
        let Parsed {
            mut records,
            rejects,
        } = self
            .client
            .latest_appointments(since)
            .await
            .map_err(|error| Halt::Ivoris(phase, error))?;
        let read = (records.len() + rejects.len()) as u64;
        let mut duplicates = dedupe_by_id(&mut records, |a| &a.id);
        // Appointments the windows already read this run count as repeats.
        let before = records.len();
        let windows_read: Vec<Appointment> = records
            .iter()
            .filter(|a| self.appointment_days.contains_key(&a.id))
            .cloned()
            .collect();
        records.retain(|a| !self.appointment_days.contains_key(&a.id));
        duplicates += (before - records.len()) as u64;
        let newest = records
            .iter()
            .chain(&windows_read)
            .filter_map(|a| a.last_modified)
            .max()
            .map_or(since, |m| m.max(since));

        let mut begin_of: BTreeMap<String, NaiveDate> = BTreeMap::new();
        for appointment in &records {
            if let (Some(patient), Some(start)) = (&appointment.patient_id, appointment.start)
                && start.date() <= today
                && !self.entries_asked.contains(patient)
            {
                let begin = begin_of.entry(patient.clone()).or_insert(start.date());
                *begin = (*begin).min(start.date());
            }
        }
        if self.plan.full_sweep_due {
            // The sweep asks every patient without a window (see `sweep`).
            begin_of.clear();
        }
        let mut haul = EntryHaul::default();
        for (patient, begin) in begin_of {
            let one = entries_for(
                self.client,
                self.profile,
                self.cancel,
                vec![patient],
                Some(begin),
                Some(today),
            )
            .await?;
            haul.absorb(one);
        }
        haul.duplicates += dedupe_by_id(&mut haul.records, |e| &e.id);

        let cursor = format_date_time(newest);
        let (appointments, entries) = self.ledger.commit(|batch| {
            let appointments = batch.mirror(location, &records)?;
            quarantine_rejects(batch, location, route::LATEST_APPOINTMENTS, &rejects)?;
            let entries = batch.mirror(location, &haul.records)?;
            quarantine_rejects(batch, location, route::DOCUMENT_ENTRIES, &haul.rejects)?;
            batch.set_cursor(location, stream::APPOINTMENT_CHANGES, &cursor)?;
            Ok((appointments, entries))
        })?;
        let counts = &mut self.report.appointments;
        counts.read += read;
        counts.duplicates += duplicates;
        counts.quarantined += rejects.len() as u64;
        counts.add(appointments);
        for appointment in &records {
            self.appointment_days
                .insert(appointment.id.clone(), appointment.start.map(|s| s.date()));
        }
        self.report.patients_asked_for_entries += haul.patients.len() as u64;
        self.entries_asked.extend(haul.patients.iter().cloned());
        self.record_entries(haul, entries);
        Ok(())
    }

    /// At a full sweep whose listing named every patient: the mirrored
    /// patients it did not name, asked one by one, and noted as deleted
    /// when Ivoris does not know them (a listing may skip a record while
    /// the data changes; the single ask decides).
    async fn deleted_patients(&mut self) -> Result<(), Halt> {
        if !self.listing_complete {
            return Ok(());
        }
        let location = self.location;
        // (Ivoris id, mirror key): an imported patient is asked by the
        // Ivoris id it is an alias of; one the API never named is not.
        let mut missing = Vec::new();
        for key in deletions::live_patient_ids(self.ledger.connection(), location)? {
            let conn = self.ledger.connection();
            let Some(id) = api_id_of(conn, location, RecordKind::Patient, &key)? else {
                continue;
            };
            if !self.patients_seen.contains(&id) && !self.patients_unreadable.contains(&id) {
                missing.push((id, key));
            }
        }
        let mut gone: Vec<(String, String)> = Vec::new();
        for (id, key) in missing {
            self.check_cancel()?;
            let answer = self
                .client
                .patient(&id)
                .await
                .map_err(|error| Halt::Ivoris(Phase::Patienten, error))?;
            if answer.records.is_empty() && answer.rejects.is_empty() {
                gone.push((id, key));
            } else {
                self.ledger
                    .commit(|batch| batch.mirror(location, &answer.records))?;
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let now = format_date_time(self.plan.now);
        let (ids, keys): (Vec<String>, Vec<String>) = gone.into_iter().unzip();
        self.ledger
            .commit(|batch| batch.delete_patients(location, &keys, &now))?;
        self.note_deleted("patient", &ids)?;
        self.report.deleted.patients += ids.len() as u64;
        Ok(())
    }

    /// At a full sweep: the mirrored appointments in the days the sweep's
    /// windows covered that no window returned. Each patient's own list
    /// decides: an appointment it holds moved and is mirrored as it is
    /// now; one it does not hold is deleted.
    async fn deleted_appointments(&mut self) -> Result<(), Halt> {
        let Some((first, last)) = self.windows_read else {
            return Ok(());
        };
        let location = self.location;
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        // Ivoris ids throughout (imported rows by their aliases; one the
        // API never delivered is not looked for), the mirror key beside.
        let mut by_patient: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let conn = self.ledger.connection();
        for (key, patient) in
            deletions::appointments_between(conn, location, &day(first), &day(last))?
        {
            let Some(id) = api_id_of(conn, location, RecordKind::Appointment, &key)? else {
                continue;
            };
            let patient = match patient {
                Some(patient) => api_id_of(conn, location, RecordKind::Patient, &patient)?,
                None => None,
            };
            if let Some(patient) = patient.filter(|_| !self.appointment_days.contains_key(&id)) {
                by_patient.entry(patient).or_default().push((id, key));
            }
        }
        let mut gone: Vec<(String, String)> = Vec::new();
        for (patient, ids) in by_patient {
            self.check_cancel()?;
            let answer = self
                .client
                .patient_appointments(&patient)
                .await
                .map_err(|error| Halt::Ivoris(Phase::Termine, error))?;
            if answer.rejects.iter().any(|r| r.record_id.is_none()) {
                continue;
            }
            let present: HashSet<&str> = answer
                .records
                .iter()
                .map(|a| a.id.as_str())
                .chain(answer.rejects.iter().filter_map(|r| r.record_id.as_deref()))
                .collect();
            let moved: Vec<_> = answer
                .records
                .iter()
                .filter(|a| ids.iter().any(|(id, _)| *id == a.id))
                .cloned()
                .collect();
            gone.extend(
                ids.iter()
                    .filter(|(id, _)| !present.contains(id.as_str()))
                    .cloned(),
            );
            if !moved.is_empty() {
                self.ledger.commit(|batch| batch.mirror(location, &moved))?;
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let now = format_date_time(self.plan.now);
        let (ids, keys): (Vec<String>, Vec<String>) = gone.into_iter().unzip();
        let moved = self
            .ledger
            .commit(|batch| batch.delete_appointments(location, &keys, &now))?;
        self.note_deleted("appointment", &ids)?;
        self.report.deleted.appointments += moved;
        Ok(())
    }

    /// One audit entry per kind and run: the Ivoris Ids found deleted.
    fn note_deleted(&mut self, kind: &str, ids: &[String]) -> Result<(), LedgerError> {
        if ids.is_empty() {
            return Ok(());
        }
        tracing::info!(location = %self.location, kind, count = ids.len(), "records deleted in ivoris");
        self.ledger.audit(&NewAuditEntry {
            actor: "sync".into(),
            action: "ivoris_deleted".into(),
            subject: self.location.to_owned(),
            details: serde_json::json!({
                "kind": kind,
                "ivoris_ids": ids,
                "reason_de": "In Ivoris gelöscht (bei der vollständigen Abfrage nicht mehr gefunden)",
                "reason_en": "deleted in Ivoris (no longer found by the full sweep)",
            }),
        })?;
        Ok(())
    }

    /// Reads every mirrored patient's billing lines without a window, in
    /// committed batches, resuming after the last patient done.
    ///
    /// One ask per patient: an unwindowed ask returns all of a patient's
    /// lines, while windowed asks may leave some out (`reference/ivoris.md`),
    /// so in a run with a sweep the windows and changed appointments ask
    /// nobody and this is the only ask — on the first extraction, before
    /// cases are formed from the lines, and on every periodic sweep, which
    /// catches what the windowed asks of incremental runs left out
    /// (DESIGN.md §5). The caller plans and sends contacts and appointments
    /// while this reads.
    async fn sweep(&mut self) -> Result<(), Halt> {
        let phase = Phase::Leistungen;
        let location = self.location;
        let after = self
            .ledger
            .cursor(location, stream::ENTRY_SWEEP)?
            .unwrap_or_default();
        let patients = self.ledger.patient_ids_after(location, &after)?;
        let total = patients.len() as u64;
        let mut done = 0;
        let chunks: Vec<Vec<String>> = patients
            .chunks(SWEEP_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let mut hauls = ask_ahead(self.client, self.profile, self.cancel, chunks);
        while let Some(swept) = hauls.next().await {
            self.check_cancel()?;
            let started = std::time::Instant::now();
            let mut swept = swept?;
            swept.duplicates += dedupe_by_id(&mut swept.records, |e| &e.id);
            let Some(last) = swept.patients.last().cloned() else {
                continue;
            };
            let (outcome, removed) = self.ledger.commit(|batch| {
                let outcome = batch.mirror(location, &swept.records)?;
                quarantine_rejects(batch, location, route::DOCUMENT_ENTRIES, &swept.rejects)?;
                let removed = remove_missing_entries(batch, location, &swept)?;
                batch.set_cursor(location, stream::ENTRY_SWEEP, &last)?;
                Ok((outcome, removed))
            })?;
            self.note_deleted("document_entry", &removed)?;
            self.report.deleted.entries += removed.len() as u64;
            self.report.patients_swept += swept.patients.len() as u64;
            self.entries_asked.extend(swept.patients.iter().cloned());
            let asked = swept.patients.len() as u64;
            self.record_entries(swept, outcome);
            done += asked;
            self.publish(phase, done, Some(total));
            (self.on_sweep)(self.ledger, SweepStep::Swept(&last))?;
            // The answers wait ready in the channel: without a pause this
            // loop would keep the run's task to itself and the load beside
            // it would starve. Pausing as long as the step took leaves the
            // load at least half of the task; the sweep still ends well
            // before HubSpot's rate limit lets the load end.
            if self.plan.beside_load {
                tokio::time::sleep(started.elapsed()).await;
            }
        }
        let finished = format_date_time(self.plan.now);
        self.ledger.commit(|batch| {
            batch.clear_cursor(location, stream::ENTRY_SWEEP)?;
            batch.set_cursor(location, stream::ENTRY_SWEEP_DONE, &finished)
        })?;
        self.report.sweep_done = true;
        Ok(())
    }
}

/// The billing lines of the swept patients that their complete answers no
/// longer hold: deleted in Ivoris. Nothing is removed when a line of the
/// answers could not be read and had no Id (it might be any of them).
fn remove_missing_entries(
    batch: &mut Batch<'_>,
    location: &str,
    swept: &EntryHaul,
) -> Result<Vec<String>, LedgerError> {
    if swept.rejects.iter().any(|r| r.record_id.is_none()) {
        return Ok(Vec::new());
    }
    let present: HashSet<&str> = swept
        .records
        .iter()
        .map(|e| e.id.as_str())
        .chain(swept.rejects.iter().filter_map(|r| r.record_id.as_deref()))
        .collect();
    let mut removed = Vec::new();
    for patient in &swept.patients {
        removed.extend(batch.remove_missing_entries(location, patient, &present)?);
    }
    Ok(removed)
}

/// The answers of a sweep, asked ahead of the commits.
struct AskedAhead {
    /// Each chunk's lines, in the chunks' order; ends after the first error.
    answers: tokio::sync::mpsc::Receiver<Result<EntryHaul, Halt>>,
    /// The task that asks; stopped when the sweep ends early.
    task: tokio::task::JoinHandle<()>,
}

impl AskedAhead {
    async fn next(&mut self) -> Option<Result<EntryHaul, Halt>> {
        self.answers.recv().await
    }
}

impl Drop for AskedAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Chunks a sweep asks ahead of its commits: about a hundred patients'
/// lines wait at most.
const SWEEP_CHUNKS_AHEAD: usize = 4;

/// Asks Ivoris for the billing lines of each chunk of patients in a task
/// of its own — still one request in flight, chunk after chunk — so the
/// answers keep coming while the run commits, plans and loads on its own
/// task, and the pacing measures the server's latency, not the run's.
fn ask_ahead(
    client: &Arc<IvorisClient>,
    profile: Option<&str>,
    cancel: &CancelFlag,
    chunks: Vec<Vec<String>>,
) -> AskedAhead {
    let (sender, answers) = tokio::sync::mpsc::channel(SWEEP_CHUNKS_AHEAD);
    let (client, cancel) = (Arc::clone(client), cancel.clone());
    let profile = profile.map(str::to_owned);
    let task = tokio::spawn(async move {
        for chunk in chunks {
            let haul = entries_for(&client, profile.as_deref(), &cancel, chunk, None, None).await;
            let failed = haul.is_err();
            if sender.send(haul).await.is_err() || failed {
                return;
            }
        }
    });
    AskedAhead { answers, task }
}

/// Asks Ivoris for the billing lines of `patients` (nothing is stored yet).
/// A free function so the future borrows only the client, not the run
/// (whose ledger connection must not be shared across threads).
async fn entries_for(
    client: &IvorisClient,
    profile: Option<&str>,
    cancel: &CancelFlag,
    patients: Vec<String>,
    begin: Option<NaiveDate>,
    end: Option<NaiveDate>,
) -> Result<EntryHaul, Halt> {
    let mut haul = EntryHaul::default();
    let mut seen = HashSet::new();
    for patient in patients {
        if cancel.is_cancelled() {
            return Err(Halt::Cancelled);
        }
        let parsed = client
            .document_entries(&patient, profile, begin, end)
            .await
            .map_err(|error| Halt::Ivoris(Phase::Leistungen, error))?;
        haul.read += parsed.len() as u64;
        for entry in parsed.records {
            if seen.insert(entry.id.clone()) {
                haul.records.push(entry);
            } else {
                haul.duplicates += 1;
            }
        }
        haul.rejects.extend(parsed.rejects);
        haul.patients.push(patient);
    }
    Ok(haul)
}

/// Ids of `records` that are stored with other content (changed patients);
/// new patients are not counted, their appointments bring them.
fn changed_patients(
    ledger: &Ledger,
    location: &str,
    records: &[Patient],
) -> Result<Vec<String>, LedgerError> {
    let mut changed = Vec::new();
    for patient in records {
        // An imported patient is stored under its own key (`ledger::identity`).
        let key = alias_of(
            ledger.connection(),
            location,
            RecordKind::Patient,
            &patient.id,
        )?
        .unwrap_or_else(|| patient.id.clone());
        if let Some(stored) = ledger.patient(location, &key)?
            && stored
                != (Patient {
                    id: key,
                    ..patient.minimised()
                })
        {
            changed.push(patient.id.clone());
        }
    }
    Ok(changed)
}
