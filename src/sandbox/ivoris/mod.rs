//! The simulated Ivoris web service: one installation per location behind a
//! simulated relay (`/relay/{linkname}/webservice/api/…`), serving the
//! synthetic world as the real service would — bare arrays, PascalCase,
//! local date-times without offset — with the faults of the field injected
//! on request, a clock that can be advanced day by day, scripted changes for
//! tests, and malformed raw records served verbatim among valid ones.
//!
//! State lives behind locks that recover from poisoning; no request panics.

mod advance;
pub mod faults;
mod routes;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{NaiveDate, NaiveDateTime};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

pub use self::advance::AdvanceSummary;
use self::faults::Faults;
pub use self::faults::{FaultSettings, FaultUpdate};
use super::data::World;
use super::{FaultProfile, SandboxLocation};
use crate::ivoris::wire::{Appointment, DocumentEntry, Patient};

/// The version string the simulated installations report.
pub const IVORIS_VERSION: &str = "8.2.91.120";
/// Server page size of `AllPatients` unless configured otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Why a scripted change could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No location has this key.
    #[error("unknown location {0}")]
    UnknownLocation(String),
    /// The location has no record of this kind with this Id.
    #[error("unknown {kind} {id}")]
    UnknownRecord { kind: &'static str, id: String },
}

/// The three kinds of records the service lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum RecordKind {
    /// `AllPatients`, `Patient`.
    Patient,
    /// `AllAppointments`, `LatestAppointments`, a patient's appointments.
    Appointment,
    /// `DocumentEntries`.
    Entry,
}

/// Raw JSON records served verbatim: extra records among the valid ones and
/// replacements of valid records by Id.
#[derive(Debug, Clone, Default)]
struct RawRecords {
    /// Extra records per kind, served after the valid ones.
    extra: HashMap<RecordKind, Vec<Value>>,
    /// Served instead of the valid record with the same kind and Id.
    replaced: HashMap<(RecordKind, String), Value>,
}

impl RawRecords {
    fn extra(&self, kind: RecordKind) -> &[Value] {
        self.extra.get(&kind).map_or(&[], Vec::as_slice)
    }

    fn count(&self) -> usize {
        self.extra.values().map(Vec::len).sum::<usize>() + self.replaced.len()
    }
}

/// Lookups rebuilt after every change, so routes answer per patient without
/// scanning all records.
#[derive(Debug, Clone, Default)]
struct LocationIndex {
    /// Patient Id → position in `patients`.
    patients: HashMap<String, usize>,
    /// Appointment Id → position in `appointments`.
    appointments: HashMap<String, usize>,
    /// Patient Id → positions in `appointments`.
    appointments_by_patient: HashMap<String, Vec<usize>>,
    /// Patient Id → positions in `entries`.
    entries_by_patient: HashMap<String, Vec<usize>>,
}

impl LocationIndex {
    fn build(location: &super::data::Location) -> LocationIndex {
        let mut index = LocationIndex::default();
        for (i, patient) in location.patients.iter().enumerate() {
            index.patients.insert(patient.id.clone(), i);
        }
        for (i, appointment) in location.appointments.iter().enumerate() {
            index.appointments.insert(appointment.id.clone(), i);
            if let Some(patient) = &appointment.patient_id {
                index
                    .appointments_by_patient
                    .entry(patient.clone())
                    .or_default()
                    .push(i);
            }
        }
        for (i, entry) in location.entries.iter().enumerate() {
            if let Some(patient) = &entry.patient_id {
                index
                    .entries_by_patient
                    .entry(patient.clone())
                    .or_default()
                    .push(i);
            }
        }
        index
    }
}

/// Everything the routes read and the clock changes.
struct SimState {
    world: World,
    /// One per location, same order as `world.locations`.
    indexes: Vec<LocationIndex>,
    /// One per location, same order as `world.locations`.
    raw: Vec<RawRecords>,
    /// Dice of the simulated practice days.
    days: ChaCha8Rng,
    /// Server page size of `AllPatients`.
    page_size: usize,
}

impl SimState {
    fn location_index(&self, key: &str) -> Result<usize, SimError> {
        self.world
            .locations
            .iter()
            .position(|l| l.key == key)
            .ok_or_else(|| SimError::UnknownLocation(key.to_string()))
    }

    fn reindex(&mut self, location: usize) {
        if let (Some(slot), Some(data)) = (
            self.indexes.get_mut(location),
            self.world.locations.get(location),
        ) {
            *slot = LocationIndex::build(data);
        }
    }

    fn appointment_mut(&mut self, location: usize, id: &str) -> Result<&mut Appointment, SimError> {
        let unknown = || SimError::UnknownRecord {
            kind: "appointment",
            id: id.to_string(),
        };
        let position = *self
            .indexes
            .get(location)
            .and_then(|index| index.appointments.get(id))
            .ok_or_else(unknown)?;
        self.world
            .locations
            .get_mut(location)
            .and_then(|l| l.appointments.get_mut(position))
            .ok_or_else(unknown)
    }

    fn patient_mut(&mut self, location: usize, id: &str) -> Result<&mut Patient, SimError> {
        let unknown = || SimError::UnknownRecord {
            kind: "patient",
            id: id.to_string(),
        };
        let position = *self
            .indexes
            .get(location)
            .and_then(|index| index.patients.get(id))
            .ok_or_else(unknown)?;
        self.world
            .locations
            .get_mut(location)
            .and_then(|l| l.patients.get_mut(position))
            .ok_or_else(unknown)
    }
}

/// Requests answered, per route template and status.
pub type Counters = BTreeMap<String, BTreeMap<u16, u64>>;

/// The simulated Ivoris installations of all locations.
pub struct IvorisSim {
    /// The world and what was injected into it.
    state: RwLock<SimState>,
    /// Fault settings and dice; locked after `state` when both are needed.
    faults: Mutex<Faults>,
    /// Request counts for `/_sandbox/counters` and test assertions.
    counters: Mutex<Counters>,
    /// Every request in the order it arrived and finished, so tests can see
    /// which requests were in flight at the same time without timing them.
    requests: Mutex<Vec<RequestRecord>>,
    /// Orders the start and end of every request (see [`RequestRecord`]).
    sequence: AtomicU64,
}

/// At most this many requests are kept in the request log; older ones are
/// dropped first (a `large` first sync sends about 20,000).
const REQUEST_LOG_LIMIT: usize = 1_000_000;

/// One request as the server saw it. `started` and `finished` come from one
/// counter that every request start and end advances, so two requests
/// overlapped exactly when each started before the other finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// The installation's relay link name.
    pub link: String,
    /// Method and route template, e.g. `GET /Documentation/v1/DocumentEntries`.
    pub route: String,
    /// Whether a `begin` or `end` date window was asked for.
    pub windowed: bool,
    /// Position of the request's arrival in the sequence.
    pub started: u64,
    /// Position of the answer in the sequence.
    pub finished: u64,
    /// HTTP status of the answer.
    pub status: u16,
}

impl RequestRecord {
    /// Whether this request and `other` were in flight at the same time.
    pub fn overlaps(&self, other: &RequestRecord) -> bool {
        self.started < other.finished && other.started < self.finished
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IvorisSim {
    /// A simulation serving `world`, with fault dice and practice days
    /// seeded from `seed`.
    pub fn new(world: World, faults: FaultProfile, seed: u64) -> IvorisSim {
        let indexes = world.locations.iter().map(LocationIndex::build).collect();
        let raw = vec![RawRecords::default(); world.locations.len()];
        IvorisSim {
            state: RwLock::new(SimState {
                world,
                indexes,
                raw,
                days: ChaCha8Rng::seed_from_u64(seed ^ 0x6461_7973),
                page_size: DEFAULT_PAGE_SIZE,
            }),
            faults: Mutex::new(Faults::new(faults, seed)),
            counters: Mutex::new(Counters::new()),
            requests: Mutex::new(Vec::new()),
            sequence: AtomicU64::new(0),
        }
    }

    /// The locations as a settings file would describe them; `root` is the
    /// server's base URL (`http://127.0.0.1:PORT`).
    pub fn locations(&self, root: &str) -> Vec<SandboxLocation> {
        let root = root.trim_end_matches('/');
        read(&self.state)
            .world
            .locations
            .iter()
            .map(|l| SandboxLocation {
                key: l.key.clone(),
                name: l.name.clone(),
                brand: l.brand.clone(),
                ivoris_url: format!("{root}/relay/{}/webservice/api", l.linkname),
                profile_id: l.profile.id.clone(),
            })
            .collect()
    }

    /// The simulated now.
    pub fn now(&self) -> NaiveDateTime {
        read(&self.state).world.now
    }

    /// The simulated today.
    pub fn today(&self) -> NaiveDate {
        self.now().date()
    }

    /// Reads the current world (records as served, without raw injections).
    pub fn with_world<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&read(&self.state).world)
    }

    /// A copy of the current world.
    pub fn snapshot(&self) -> World {
        read(&self.state).world.clone()
    }

    /// Current fault settings.
    pub fn faults(&self) -> FaultSettings {
        lock(&self.faults).settings.clone()
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, settings: FaultSettings) {
        lock(&self.faults).settings = settings;
    }

    /// Switches to the rates of a profile.
    pub fn set_fault_profile(&self, profile: FaultProfile) {
        self.set_faults(FaultSettings::for_profile(profile));
    }

    /// Applies a partial change of the fault settings and returns the result.
    pub fn update_faults(&self, update: &FaultUpdate) -> FaultSettings {
        let mut faults = lock(&self.faults);
        update.apply(&mut faults.settings);
        faults.settings.clone()
    }

    /// Server page size of `AllPatients`.
    pub fn page_size(&self) -> usize {
        read(&self.state).page_size
    }

    /// Changes the server page size (at least 1).
    pub fn set_page_size(&self, page_size: usize) {
        write(&self.state).page_size = page_size.max(1);
    }

    /// Requests answered so far, per route template (`GET /Patient/v1/AllPatients`) and status.
    pub fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Forgets the request counts.
    pub fn reset_counters(&self) {
        lock(&self.counters).clear();
    }

    /// Every request since the start or the last reset, in order of arrival.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        let mut log = lock(&self.requests).clone();
        log.sort_by_key(|r| r.started);
        log
    }

    /// Forgets the request log.
    pub fn reset_request_log(&self) {
        lock(&self.requests).clear();
    }

    /// The next position in the request sequence.
    fn tick(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst)
    }

    fn log_request(&self, record: RequestRecord) {
        let mut log = lock(&self.requests);
        if log.len() >= REQUEST_LOG_LIMIT {
            log.drain(..REQUEST_LOG_LIMIT / 10);
        }
        log.push(record);
    }

    fn count(&self, route: &str, status: u16) {
        *lock(&self.counters)
            .entry(route.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// Empties every location's patients, appointments and billing lines:
    /// an installation that serves nothing (its history came by CSV
    /// import). Reference data stays.
    pub fn forget_records(&self) {
        let mut state = write(&self.state);
        for location in &mut state.world.locations {
            location.patients.clear();
            location.appointments.clear();
            location.entries.clear();
            location.pending_entries.clear();
        }
        for location in 0..state.world.locations.len() {
            state.reindex(location);
        }
    }

    /// Moves the clock `days` days forward, simulating each practice day.
    pub fn advance_days(&self, days: u32) -> AdvanceSummary {
        let mut state = write(&self.state);
        let summary = advance::advance(&mut state, days);
        for location in 0..state.world.locations.len() {
            state.reindex(location);
        }
        summary
    }

    fn change<R>(
        &self,
        location: &str,
        f: impl FnOnce(&mut SimState, usize, NaiveDateTime) -> Result<R, SimError>,
    ) -> Result<R, SimError> {
        let mut state = write(&self.state);
        let index = state.location_index(location)?;
        let now = state.world.now;
        let result = f(&mut state, index, now)?;
        state.reindex(index);
        Ok(result)
    }

    /// Sets an appointment's state (any string, also unknown ones) and bumps `LastModified`.
    pub fn set_appointment_state(
        &self,
        location: &str,
        id: &str,
        new_state: &str,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, now| {
            let appointment = state.appointment_mut(index, id)?;
            appointment.state = Some(new_state.to_string());
            appointment.last_modified = Some(now);
            Ok(())
        })
    }

    /// Cancels an appointment (state `Cancelled`).
    pub fn cancel_appointment(&self, location: &str, id: &str) -> Result<(), SimError> {
        self.set_appointment_state(location, id, "Cancelled")
    }

    /// Adds an appointment as given (its `LastModified` is kept).
    pub fn add_appointment(
        &self,
        location: &str,
        appointment: Appointment,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(l) = state.world.locations.get_mut(index) {
                l.appointments.push(appointment);
            }
            Ok(())
        })
    }

    /// Adds a billing line as given; visible at once.
    pub fn add_entry(&self, location: &str, entry: DocumentEntry) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(l) = state.world.locations.get_mut(index) {
                l.entries.push(entry);
            }
            Ok(())
        })
    }

    /// Adds a patient as given.
    pub fn add_patient(&self, location: &str, patient: Patient) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(l) = state.world.locations.get_mut(index) {
                l.patients.push(patient);
            }
            Ok(())
        })
    }

    /// Deletes a record in Ivoris (not a cancellation: the record is gone
    /// from every answer). Deleting a patient leaves its appointments and
    /// lines, as Ivoris does when a patient record is merged away.
    pub fn delete_record(
        &self,
        location: &str,
        kind: RecordKind,
        id: &str,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            let unknown = || SimError::UnknownRecord {
                kind: match kind {
                    RecordKind::Patient => "patient",
                    RecordKind::Appointment => "appointment",
                    RecordKind::Entry => "entry",
                },
                id: id.to_string(),
            };
            let l = state.world.locations.get_mut(index).ok_or_else(unknown)?;
            let before = match kind {
                RecordKind::Patient => {
                    let before = l.patients.len();
                    l.patients.retain(|p| p.id != id);
                    before - l.patients.len()
                }
                RecordKind::Appointment => {
                    let before = l.appointments.len();
                    l.appointments.retain(|a| a.id != id);
                    before - l.appointments.len()
                }
                RecordKind::Entry => {
                    let before = l.entries.len();
                    l.entries.retain(|e| e.id != id);
                    before - l.entries.len()
                }
            };
            if before == 0 {
                return Err(unknown());
            }
            Ok(())
        })
    }

    /// Changes (or removes) a patient's e-mail address and bumps `LastModified`.
    pub fn set_patient_email(
        &self,
        location: &str,
        id: &str,
        email: Option<&str>,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, now| {
            let patient = state.patient_mut(index, id)?;
            patient.email = email.map(str::to_string);
            patient.last_modified = Some(now);
            Ok(())
        })
    }

    /// Serves `value` verbatim among the valid records of its kind: patients
    /// on the pages after the valid ones, appointments in every
    /// `AllAppointments` and `LatestAppointments` answer (whatever the
    /// window) and under its `PatientId` if that is a string, entries in the
    /// `DocumentEntries` answer of the patient named by its `PatientId`.
    pub fn inject_raw(
        &self,
        location: &str,
        kind: RecordKind,
        value: Value,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(raw) = state.raw.get_mut(index) {
                raw.extra.entry(kind).or_default().push(value);
            }
            Ok(())
        })
    }

    /// Serves `value` verbatim instead of the valid record with this Id
    /// (wherever that record would appear).
    pub fn replace_raw(
        &self,
        location: &str,
        kind: RecordKind,
        id: &str,
        value: Value,
    ) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(raw) = state.raw.get_mut(index) {
                raw.replaced.insert((kind, id.to_string()), value);
            }
            Ok(())
        })
    }

    /// Removes all raw records of a location.
    pub fn clear_raw(&self, location: &str) -> Result<(), SimError> {
        self.change(location, |state, index, _| {
            if let Some(raw) = state.raw.get_mut(index) {
                *raw = RawRecords::default();
            }
            Ok(())
        })
    }
}

/// The router serving all locations and `/_sandbox/`.
pub fn router(sim: Arc<IvorisSim>) -> axum::Router {
    routes::router(sim)
}
