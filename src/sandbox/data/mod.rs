//! Deterministic synthetic practices: three Ivoris installations (one
//! practice of brand A, two of a second brand) with two years of patients,
//! appointments and billing lines up to a fixed simulated "now", plus the
//! bookings of the next eight weeks.
//!
//! Everything is drawn from one `ChaCha8Rng` seeded from the seed, so the
//! same seed gives byte-identical records. Patients follow journeys as in a
//! real practice: routine patients come for a check-up and prophylaxis about
//! every six months, new patients start with a first consultation and then
//! either decide against treatment („geklärt“), start a treatment series, or
//! simply stay. All fields are public so tests can compute expected values
//! independently from the raw records.

pub mod care;
pub mod export;
pub mod people;

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use self::care::{Payer, VisitKind};
use self::people::{Person, Region, pick};
use super::Size;
use crate::ivoris::wire::{
    Address, Appointment, AppointmentTemplate, DentistChair, DocumentEntry, Insurance, Patient,
    Practitioner, Profile,
};

/// Days of history before the simulated now.
pub const HISTORY_DAYS: i64 = 730;
/// Days of future bookings of treatments and first visits after the
/// simulated now.
pub const FUTURE_DAYS: i64 = 56;
/// Days ahead that recalls reach: practices book the next check-up when the
/// patient leaves, 6, 12, 18 and for a few 24 months out.
pub const RECALL_DAYS: i64 = 730;

/// The fixed simulated "now" of a fresh world: Thursday, 1 October 2026,
/// 10:15 local time, mid-morning so some patients are in the chair.
pub fn simulated_now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 10, 1)
        .and_then(|d| d.and_hms_opt(10, 15, 0))
        .unwrap_or(NaiveDateTime::MIN)
}

/// All simulated locations with their Ivoris records.
#[derive(Debug, Clone, Default, Serialize)]
pub struct World {
    /// Seed the world was generated from (shown in the demo's about box).
    pub seed: u64,
    /// Size it was generated with.
    pub size: Size,
    /// The simulated clock; nothing after it has happened yet.
    pub now: NaiveDateTime,
    /// One entry per Ivoris installation.
    pub locations: Vec<Location>,
}

/// One practice with its own Ivoris installation and one Profile (Mandant).
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// Short key used in settings and namespaced HubSpot keys (`magdeburg`).
    pub key: String,
    /// Practice name shown to staff.
    pub name: String,
    /// Brand the practice belongs to (a chain runs several brands).
    pub brand: String,
    /// Relay link name identifying the installation in the relay URL.
    pub linkname: String,
    /// The installation's single Profile.
    pub profile: Profile,
    /// Chairs served by `DentistChairs`; the last ones are prophylaxis rooms.
    pub chairs: Vec<DentistChair>,
    /// Dentists first, then the prophylaxis assistants.
    pub practitioners: Vec<Practitioner>,
    /// Index of the first prophylaxis assistant in `practitioners`.
    pub first_hygienist: usize,
    /// Appointment types, in the order of [`VisitKind::ALL`].
    pub templates: Vec<AppointmentTemplate>,
    /// Patients in the order of their patient number.
    pub patients: Vec<Patient>,
    /// Appointments, past and booked, in no guaranteed order.
    pub appointments: Vec<Appointment>,
    /// Billing lines visible at the simulated now.
    pub entries: Vec<DocumentEntry>,
    /// Billing lines documented late: they exist with a `LastModified`
    /// after now and become visible when the clock passes it.
    pub pending_entries: Vec<DocumentEntry>,
}

impl Location {
    /// The appointment type behind a template Id.
    pub fn kind_of(&self, template_id: &str) -> Option<VisitKind> {
        let index = self.templates.iter().position(|t| t.id == template_id)?;
        VisitKind::ALL.get(index).copied()
    }

    /// The template of an appointment type.
    pub fn template(&self, kind: VisitKind) -> Option<&AppointmentTemplate> {
        let index = VisitKind::ALL.iter().position(|k| *k == kind)?;
        self.templates.get(index)
    }

    /// Whether the location belongs to the second brand (other type labels).
    pub fn second_brand(&self) -> bool {
        self.brand != BRAND_A
    }
}

const BRAND_A: &str = "Zahnarztpraxis Magdeburg";
const BRAND_B: &str = "Zahnwerk Mitteldeutschland";

struct Spec {
    /// Location key (settings, namespaced HubSpot keys).
    key: &'static str,
    /// Practice name.
    name: &'static str,
    /// Brand the practice belongs to.
    brand: &'static str,
    /// Relay link name of its installation.
    linkname: &'static str,
    /// Where its patients live.
    region: Region,
}

const SPECS: [Spec; 3] = [
    Spec {
        key: "magdeburg",
        name: "Zahnarztpraxis Magdeburg",
        brand: BRAND_A,
        linkname: "zp-magdeburg",
        region: Region::Magdeburg,
    },
    Spec {
        key: "leipzig",
        name: "Zahnwerk Leipzig",
        brand: BRAND_B,
        linkname: "zahnwerk-leipzig",
        region: Region::Leipzig,
    },
    Spec {
        key: "halle",
        name: "Zahnwerk Halle",
        brand: BRAND_B,
        linkname: "zahnwerk-halle",
        region: Region::Halle,
    },
];

fn patients_per_location(size: Size) -> usize {
    match size {
        Size::Small => 40,
        Size::Medium => 2_000,
        Size::Chain => 3_000,
        Size::Large => 10_000,
    }
}

/// A UUID string drawn from the rng (deterministic per seed).
pub fn new_id(rng: &mut ChaCha8Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl World {
    /// Generates the world of a seed. Pure: same seed and size, same world.
    pub fn generate(seed: u64, size: Size) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let now = simulated_now();
        let per_location = patients_per_location(size);
        let mut emails = HashSet::new();
        let mut people: Vec<Vec<Person>> = SPECS
            .iter()
            .map(|spec| population(&mut rng, spec.region, per_location, now.date(), &mut emails))
            .collect();
        share_people(&mut rng, &mut people, per_location);
        let locations = SPECS
            .iter()
            .zip(people)
            .map(|(spec, persons)| generate_location(&mut rng, spec, size, persons, now))
            .collect();
        World {
            seed,
            size,
            now,
            locations,
        }
    }

    /// The location with this key.
    pub fn location(&self, key: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.key == key)
    }
}

/// People living near a practice: singles, and families sharing an address
/// and one e-mail address. E-mail addresses of unrelated people never clash.
fn population(
    rng: &mut ChaCha8Rng,
    region: Region,
    target: usize,
    today: NaiveDate,
    emails: &mut HashSet<String>,
) -> Vec<Person> {
    let mut persons = Vec::with_capacity(target + 4);
    let families = (target / 30).max(2);
    for _ in 0..families {
        let mut head = people::person(rng, region, today);
        let email = unique_email(rng, &head, emails);
        head.email = Some(email);
        let members = rng.random_range(1..4);
        let mut family = vec![head.clone()];
        for _ in 0..members {
            let mut relative = people::relative(rng, &head, today);
            if rng.random_bool(0.15) {
                relative.email = None;
            }
            family.push(relative);
        }
        persons.extend(family);
    }
    while persons.len() < target {
        let mut person = people::person(rng, region, today);
        if person.email.is_some() {
            person.email = Some(unique_email(rng, &person, emails));
        }
        persons.push(person);
    }
    persons.truncate(target);
    persons
}

fn unique_email(rng: &mut ChaCha8Rng, person: &Person, emails: &mut HashSet<String>) -> String {
    let mut email = people::email_for(rng, &person.firstname, &person.lastname, person.birthday);
    while emails.contains(&email) {
        let (local, domain) = email
            .split_once('@')
            .unwrap_or((email.as_str(), "example.de"));
        email = format!("{local}{}@{domain}", rng.random_range(1..100));
    }
    emails.insert(email.clone());
    email
}

/// People who are patients at two practices of the chain (mostly the two of
/// the second brand, a few also in Magdeburg), and people entered twice in
/// one Ivoris (the second record usually lacks the e-mail address).
fn share_people(rng: &mut ChaCha8Rng, people: &mut [Vec<Person>], per_location: usize) {
    let shared = [
        (1usize, 2usize, (per_location / 50).max(2)),
        (0, 1, (per_location / 200).max(1)),
    ];
    for (from, to, count) in shared {
        for _ in 0..count {
            let Some(person) = people
                .get(from)
                .and_then(|p| p.get(rng.random_range(0..p.len())))
                .cloned()
            else {
                continue;
            };
            if let Some(target) = people.get_mut(to) {
                let at = rng.random_range(0..target.len());
                target.insert(at, person);
            }
        }
    }
    for persons in people.iter_mut() {
        let duplicates = (per_location / 200).max(2);
        for _ in 0..duplicates {
            let mut twin = persons[rng.random_range(0..persons.len())].clone();
            if rng.random_bool(0.6) {
                twin.email = None;
            }
            twin.mobile = None;
            persons.push(twin);
        }
    }
}

/// Free slots of the chairs, one bit per quarter hour from 08:00.
pub(crate) struct Planner {
    /// Occupied quarter hours per day and chair, so chairs are not double-booked.
    busy: HashMap<(NaiveDate, usize), u64>,
    /// Number of chairs of the location.
    chairs: usize,
    /// The last chairs are prophylaxis rooms, used by the hygienists.
    prophylaxis_chairs: usize,
}

const OPENING: u32 = 8 * 60;

fn quarter_hours(day: NaiveDate) -> u32 {
    match day.weekday() {
        Weekday::Fri => 24,
        Weekday::Sat | Weekday::Sun => 0,
        _ => 40,
    }
}

fn next_workday(mut day: NaiveDate) -> NaiveDate {
    while quarter_hours(day) == 0 {
        day += Duration::days(1);
    }
    day
}

impl Planner {
    pub(crate) fn new(location: &Location) -> Planner {
        let mut planner = Planner {
            busy: HashMap::new(),
            chairs: location.chairs.len().max(1),
            prophylaxis_chairs: prophylaxis_chairs(location.chairs.len()),
        };
        for appointment in &location.appointments {
            let (Some(start), Some(chair)) = (appointment.start, &appointment.dentist_chair_id)
            else {
                continue;
            };
            if appointment.state.as_deref() == Some("Cancelled") {
                continue;
            }
            if let Some(chair) = location.chairs.iter().position(|c| &c.id == chair) {
                let minutes = appointment.duration_minutes.unwrap_or(15);
                planner.mark(start, chair, minutes);
            }
        }
        planner
    }

    fn mark(&mut self, start: NaiveDateTime, chair: usize, minutes: u32) {
        let Some(offset) =
            (chrono::Timelike::num_seconds_from_midnight(&start.time()) / 60).checked_sub(OPENING)
        else {
            return;
        };
        let first = offset / 15;
        let need = minutes.div_ceil(15);
        let mask = slot_mask(first, need);
        *self.busy.entry((start.date(), chair)).or_default() |= mask;
    }

    /// Whether the chair is free for the whole appointment.
    fn is_free(&self, start: NaiveDateTime, chair: usize, minutes: u32) -> bool {
        let Some(offset) =
            (chrono::Timelike::num_seconds_from_midnight(&start.time()) / 60).checked_sub(OPENING)
        else {
            return false;
        };
        let mask = slot_mask(offset / 15, minutes.div_ceil(15));
        self.busy
            .get(&(start.date(), chair))
            .is_none_or(|busy| busy & mask == 0)
    }

    /// A free chair and start on `day` or the next workdays.
    fn find(
        &mut self,
        rng: &mut ChaCha8Rng,
        day: NaiveDate,
        kind: VisitKind,
    ) -> (NaiveDateTime, usize) {
        let need = kind.duration_minutes().div_ceil(15);
        let (low, high) = if kind.by_hygienist() {
            (self.chairs - self.prophylaxis_chairs, self.chairs)
        } else {
            (0, self.chairs - self.prophylaxis_chairs)
        };
        let mut day = next_workday(day);
        let mut fallback = None;
        for _ in 0..10 {
            let slots = quarter_hours(day);
            for _ in 0..8 {
                let chair = rng.random_range(low..high.max(low + 1));
                let first = rng.random_range(0..=slots.saturating_sub(need));
                let mask = slot_mask(first, need);
                let start = at_quarter(day, first);
                fallback.get_or_insert((start, chair));
                let busy = self.busy.entry((day, chair)).or_default();
                if *busy & mask == 0 {
                    *busy |= mask;
                    return (start, chair);
                }
            }
            day = next_workday(day + Duration::days(1));
        }
        fallback.unwrap_or((at_quarter(day, 0), low))
    }
}

fn prophylaxis_chairs(chairs: usize) -> usize {
    if chairs >= 8 { 2 } else { 1 }
}

fn slot_mask(first: u32, need: u32) -> u64 {
    let bits = if need >= 64 {
        u64::MAX
    } else {
        (1u64 << need) - 1
    };
    bits.checked_shl(first).unwrap_or(0)
}

fn at_quarter(day: NaiveDate, quarter: u32) -> NaiveDateTime {
    let minutes = OPENING + quarter * 15;
    day.and_time(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN))
}

/// A random moment between two instants (the earlier one if they are reversed).
pub fn between(rng: &mut ChaCha8Rng, from: NaiveDateTime, to: NaiveDateTime) -> NaiveDateTime {
    let seconds = (to - from).num_seconds();
    if seconds <= 0 {
        return from.min(to);
    }
    let offset = rng.random_range(0..=seconds / 60) * 60;
    from + Duration::seconds(offset)
}

/// A moment during office hours (07:30–18:30) between two instants, for
/// changes staff make: registrations, bookings, corrections.
pub fn office_moment(
    rng: &mut ChaCha8Rng,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> NaiveDateTime {
    let day = between(rng, from, to).date();
    let minutes = rng.random_range(7 * 60 + 30..18 * 60 + 30);
    let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN);
    if from >= to {
        return to;
    }
    // Strictly after `from`, so a change is always newer than the moment before it.
    day.and_time(time).max(from + Duration::minutes(1)).min(to)
}

fn staff(rng: &mut ChaCha8Rng, size: Size) -> (Vec<Practitioner>, usize) {
    let (dentists, hygienists) = match size {
        Size::Small => (2, 1),
        Size::Medium => (4, 2),
        Size::Chain => (5, 2),
        Size::Large => (7, 3),
    };
    let mut practitioners = Vec::new();
    for i in 0..dentists + hygienists {
        let person = people::person(rng, Region::Magdeburg, simulated_now().date());
        let initials: String = [&person.firstname, &person.lastname]
            .iter()
            .filter_map(|n| n.chars().next())
            .collect();
        let firstname = if i < dentists {
            format!("Dr. {}", person.firstname)
        } else {
            person.firstname
        };
        practitioners.push(Practitioner {
            id: new_id(rng),
            abbreviation: Some(format!("{}{}", initials.to_uppercase(), i + 1)),
            firstname: Some(firstname),
            lastname: Some(person.lastname),
        });
    }
    (practitioners, dentists)
}

/// The skeleton of an installation: profile, chairs, staff, templates.
fn installation(rng: &mut ChaCha8Rng, spec: &Spec, size: Size) -> Location {
    let profile = Profile {
        id: new_id(rng),
        name: Some(spec.name.to_string()),
    };
    let chair_count = match size {
        Size::Small => 4,
        Size::Medium => 6,
        Size::Chain => 8,
        Size::Large => 10,
    };
    let prophylaxis = prophylaxis_chairs(chair_count);
    let chairs = (0..chair_count)
        .map(|i| DentistChair {
            id: new_id(rng),
            name: Some(if i < chair_count - prophylaxis {
                format!("Behandlungszimmer {}", i + 1)
            } else {
                format!("Prophylaxe {}", i + 1 + prophylaxis - chair_count)
            }),
        })
        .collect();
    let (practitioners, first_hygienist) = staff(rng, size);
    let second_brand = spec.brand != BRAND_A;
    let templates = VisitKind::ALL
        .iter()
        .map(|kind| AppointmentTemplate {
            id: new_id(rng),
            name: Some(kind.label(second_brand).to_string()),
            duration_minutes: Some(kind.duration_minutes()),
        })
        .collect();
    Location {
        key: spec.key.to_string(),
        name: spec.name.to_string(),
        brand: spec.brand.to_string(),
        linkname: spec.linkname.to_string(),
        profile,
        chairs,
        practitioners,
        first_hygienist,
        templates,
        patients: Vec::new(),
        appointments: Vec::new(),
        entries: Vec::new(),
        pending_entries: Vec::new(),
    }
}

/// Turns a person into this installation's patient record.
pub fn patient_record(
    rng: &mut ChaCha8Rng,
    person: &Person,
    number: u32,
    last_modified: NaiveDateTime,
) -> Patient {
    Patient {
        id: new_id(rng),
        human_readable_id: Some(number.to_string()),
        firstname: Some(person.firstname.clone()),
        lastname: Some(person.lastname.clone()),
        birthday: person.birthday.and_hms_opt(0, 0, 0),
        gender: Some(person.gender.to_string()),
        email: person.email.clone(),
        phone: person.phone.clone(),
        mobile: person.mobile.clone(),
        address: Some(Address {
            street: Some(person.street.clone()),
            zip: Some(person.zip.clone()),
            city: Some(person.city.clone()),
            country: Some("DE".to_string()),
        }),
        health_insurance: Some(person.health_insurance.to_string()),
        current_insurance: person.insurance_status.map(|status| Insurance {
            insurance_status: Some(status.to_string()),
            insurance_number: person.insurance_number.clone(),
        }),
        last_modified: Some(last_modified),
    }
}

/// Writes appointments and billing lines into a location.
pub(crate) struct Practice<'a> {
    /// The installation written to.
    pub(crate) location: &'a mut Location,
    /// Chair occupancy of `location`.
    pub(crate) planner: Planner,
    /// The simulated now: appointments before it are settled, entries
    /// documented after it stay pending.
    pub(crate) now: NaiveDateTime,
}

/// What became of a booked appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It took place (billing lines written).
    Completed,
    /// It ended without treatment (cancelled, no-show, clarified).
    Ended,
    /// It has not happened yet (booked, confirmed, arrived, in treatment).
    Pending,
}

impl Practice<'_> {
    fn practitioner(&self, rng: &mut ChaCha8Rng, kind: VisitKind, preferred: usize) -> String {
        let practitioners = &self.location.practitioners;
        let hygienist = self.location.first_hygienist;
        let index = if kind.by_hygienist() && hygienist < practitioners.len() {
            rng.random_range(hygienist..practitioners.len())
        } else if rng.random_bool(0.8) {
            preferred % hygienist.max(1)
        } else {
            rng.random_range(0..hygienist.max(1))
        };
        practitioners
            .get(index)
            .map(|p| p.id.clone())
            .unwrap_or_default()
    }

    /// Books an appointment on `day` (or the next free day), settles it
    /// against the clock and writes its billing lines if it took place.
    pub(crate) fn visit(
        &mut self,
        rng: &mut ChaCha8Rng,
        patient: usize,
        kind: VisitKind,
        day: NaiveDate,
        booked_at: Option<NaiveDateTime>,
        tooth: &str,
    ) -> (Fate, NaiveDate) {
        let (start, chair) = self.planner.find(rng, day, kind);
        self.visit_at(rng, patient, kind, start, chair, booked_at, tooth)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn visit_at(
        &mut self,
        rng: &mut ChaCha8Rng,
        patient: usize,
        kind: VisitKind,
        start: NaiveDateTime,
        chair: usize,
        booked_at: Option<NaiveDateTime>,
        tooth: &str,
    ) -> (Fate, NaiveDate) {
        let now = self.now;
        let minutes = kind.duration_minutes();
        let end = start + Duration::minutes(i64::from(minutes));
        let booked_at = booked_at
            .unwrap_or_else(|| {
                start
                    - Duration::days(rng.random_range(1..43))
                    - Duration::minutes(rng.random_range(0..600))
            })
            .min(now - Duration::minutes(1))
            .min(start);
        let preferred = patient;
        let practitioner = self.practitioner(rng, kind, preferred);
        let (patient_id, payer) = match self.location.patients.get(patient) {
            Some(p) => (
                p.id.clone(),
                Payer::from_insurance(p.health_insurance.as_deref().unwrap_or("")),
            ),
            None => return (Fate::Ended, start.date()),
        };
        let (state, confirmation, last_modified, fate) = if end <= now {
            let state = care::outcome(rng, kind);
            let modified = match state {
                "Cancelled" => between(
                    rng,
                    booked_at.max(start - Duration::days(5)),
                    start - Duration::hours(1),
                ),
                _ => end + Duration::minutes(rng.random_range(3..120)),
            };
            let fate = if state == "Completed" {
                Fate::Completed
            } else {
                Fate::Ended
            };
            let confirmation = if rng.random_bool(0.8) {
                "Confirmed"
            } else {
                "Unconfirmed"
            };
            (state, confirmation, modified.min(now), fate)
        } else if start <= now {
            (
                "InTreatment",
                "Confirmed",
                start + Duration::minutes(rng.random_range(0..5)),
                Fate::Pending,
            )
        } else if start <= now + Duration::minutes(30) && rng.random_bool(0.7) {
            (
                "Arrived",
                "Confirmed",
                now - Duration::minutes(rng.random_range(0..10)),
                Fate::Pending,
            )
        } else if rng.random_bool(0.03) {
            (
                "Cancelled",
                "Unconfirmed",
                between(rng, booked_at, now),
                Fate::Ended,
            )
        } else {
            let soon = (start.date() - now.date()).num_days() <= 3;
            if rng.random_bool(if soon { 0.65 } else { 0.1 }) {
                (
                    "Confirmed",
                    "Confirmed",
                    between(rng, booked_at, now),
                    Fate::Pending,
                )
            } else {
                ("Booked", "Unconfirmed", booked_at, Fate::Pending)
            }
        };
        let last_modified = last_modified.min(now);
        if state != "Cancelled" {
            self.planner.mark(start, chair, minutes);
        }
        let appointment = Appointment {
            id: new_id(rng),
            profile_id: Some(self.location.profile.id.clone()),
            patient_id: Some(patient_id.clone()),
            practitioner_id: Some(practitioner.clone()),
            dentist_chair_id: self.location.chairs.get(chair).map(|c| c.id.clone()),
            template_id: self.location.template(kind).map(|t| t.id.clone()),
            type_label: self.location.template(kind).and_then(|t| t.name.clone()),
            start: Some(start),
            duration_minutes: Some(minutes),
            state: Some(state.to_string()),
            confirmation_state: Some(confirmation.to_string()),
            last_modified: Some(last_modified),
        };
        self.location.appointments.push(appointment);
        self.document(
            rng,
            &patient_id,
            &practitioner,
            kind,
            payer,
            state,
            start,
            tooth,
        );
        (fate, start.date())
    }
}

impl Practice<'_> {
    /// Writes the billing lines of an appointment that has just ended in
    /// `state`: the treatment's lines when completed, sometimes a fee for a
    /// no-show. Most are documented the same day, some days later (those
    /// stay pending until the clock passes their `LastModified`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn document(
        &mut self,
        rng: &mut ChaCha8Rng,
        patient_id: &str,
        practitioner: &str,
        kind: VisitKind,
        payer: Payer,
        state: &str,
        start: NaiveDateTime,
        tooth: &str,
    ) -> usize {
        let end = start + Duration::minutes(i64::from(kind.duration_minutes()));
        let lines = match state {
            "Completed" => care::lines(rng, kind, payer, tooth),
            "NoShow" if payer == Payer::Private && rng.random_bool(0.3) => {
                vec![care::no_show_fee(rng)]
            }
            _ => Vec::new(),
        };
        let documented = if rng.random_bool(0.08) {
            (end.date() + Duration::days(rng.random_range(1..6)))
                .and_hms_opt(rng.random_range(17..20), rng.random_range(0..60), 0)
                .unwrap_or(end)
        } else {
            end + Duration::minutes(rng.random_range(5..240))
        };
        let count = lines.len();
        for line in lines {
            let entry = DocumentEntry {
                id: new_id(rng),
                profile_id: Some(self.location.profile.id.clone()),
                patient_id: Some(patient_id.to_string()),
                practitioner_id: Some(practitioner.to_string()),
                date: Some(start.date()),
                entry_type: Some(line.entry_type.to_string()),
                catalogue: line.catalogue.map(str::to_string),
                code: line.code.map(str::to_string),
                quantity: Some(line.quantity),
                factor: line.factor,
                amount: Some(line.cents as f64 / 100.0),
                tooth: line.tooth,
                text: Some(line.text.to_string()),
                last_modified: Some(documented),
            };
            if documented <= self.now {
                self.location.entries.push(entry);
            } else {
                self.location.pending_entries.push(entry);
            }
        }
        count
    }
}

/// Treatment series a consultation may lead to, with relative weights.
const SERIES: [(VisitKind, u32); 9] = [
    (VisitKind::Fuellung, 30),
    (VisitKind::Endo, 12),
    (VisitKind::Par, 8),
    (VisitKind::Chirurgie, 10),
    (VisitKind::ImplantatBeratung, 8),
    (VisitKind::ZePraeparation, 12),
    (VisitKind::KfoBeratung, 6),
    (VisitKind::Bleaching, 4),
    (VisitKind::Prophylaxe, 10),
];

pub(crate) fn weighted(rng: &mut ChaCha8Rng) -> VisitKind {
    let total: u32 = SERIES.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (kind, weight) in SERIES {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    VisitKind::Fuellung
}

/// The steps of a treatment series after its first appointment: the type and
/// the gap in days before it.
fn series_steps(rng: &mut ChaCha8Rng, first: VisitKind) -> Vec<(VisitKind, i64)> {
    match first {
        VisitKind::Fuellung => (0..rng.random_range(0..2))
            .map(|_| (VisitKind::Fuellung, rng.random_range(7..15)))
            .collect(),
        VisitKind::Endo => {
            let mut steps = vec![(VisitKind::Endo, rng.random_range(7..15))];
            if rng.random_bool(0.5) {
                steps.push((VisitKind::Endo, rng.random_range(7..15)));
            }
            steps
        }
        VisitKind::Par => (0..rng.random_range(2..4))
            .map(|_| (VisitKind::Par, rng.random_range(14..31)))
            .collect(),
        VisitKind::Chirurgie => vec![(VisitKind::Kontrolle, rng.random_range(6..10))],
        VisitKind::ImplantatBeratung => vec![
            (VisitKind::Implantation, rng.random_range(14..41)),
            (VisitKind::ZePraeparation, rng.random_range(90..121)),
            (VisitKind::ZeEingliederung, rng.random_range(14..22)),
        ],
        VisitKind::ZePraeparation => vec![(VisitKind::ZeEingliederung, rng.random_range(14..22))],
        VisitKind::KfoBeratung => vec![
            (VisitKind::AlignerScan, rng.random_range(14..31)),
            (VisitKind::Kontrolle, rng.random_range(42..70)),
        ],
        _ => Vec::new(),
    }
}

impl Practice<'_> {
    /// A treatment series from its first appointment on. Consultations
    /// within it lead on only when completed; a missed appointment is
    /// rebooked once; the series stops at the first one not yet happened.
    pub(crate) fn series(
        &mut self,
        rng: &mut ChaCha8Rng,
        patient: usize,
        first: VisitKind,
        day: NaiveDate,
    ) {
        let tooth = care::back_tooth(rng);
        let mut steps = vec![(first, 0)];
        steps.extend(series_steps(rng, first));
        let mut day = day;
        let mut rebooked = false;
        let mut index = 0;
        while let Some(&(kind, gap)) = steps.get(index) {
            day += Duration::days(gap);
            if day > self.now.date() + Duration::days(FUTURE_DAYS) {
                return;
            }
            let (fate, date) = self.visit(rng, patient, kind, day, None, &tooth);
            day = date;
            match fate {
                Fate::Completed => index += 1,
                Fate::Pending => return,
                Fate::Ended if !rebooked && !kind.is_consultation() => {
                    rebooked = true;
                    day += Duration::days(rng.random_range(3..11));
                    steps[index].1 = 0;
                }
                Fate::Ended => return,
            }
        }
    }

    /// Check-ups (and prophylaxis for some) from `day` on, about every six
    /// months for most patients and every 12, 18 or 24 months for some,
    /// with the occasional treatment in between. The next check-up is
    /// booked when the patient leaves, so a patient in routine care has a
    /// booking up to two years ahead.
    pub(crate) fn routine(
        &mut self,
        rng: &mut ChaCha8Rng,
        patient: usize,
        mut day: NaiveDate,
        prophylaxis: bool,
    ) {
        let horizon = self.now.date() + Duration::days(RECALL_DAYS);
        let lapses = rng.random_bool(0.12);
        let interval = match rng.random_range(0..100) {
            0..70 => 165..200,
            70..88 => 350..380,
            88..97 => 530..560,
            _ => 690..RECALL_DAYS,
        };
        while day <= horizon {
            let kind = if rng.random_bool(0.2) {
                VisitKind::Recall
            } else {
                VisitKind::Kontrolle
            };
            let tooth = care::tooth(rng);
            let (fate, date) = self.visit(rng, patient, kind, day, None, &tooth);
            if fate == Fate::Pending {
                return;
            }
            if prophylaxis {
                let day = date + Duration::days(rng.random_range(0..15));
                let (fate, _) = self.visit(rng, patient, VisitKind::Prophylaxe, day, None, "");
                if fate == Fate::Pending {
                    return;
                }
            }
            if fate == Fate::Completed && rng.random_bool(0.14) {
                let first = weighted(rng);
                let day = date + Duration::days(rng.random_range(7..22));
                self.series(rng, patient, first, day);
            }
            if rng.random_bool(0.03) {
                let pain = date + Duration::days(rng.random_range(20..150));
                if pain <= self.now.date() {
                    let tooth = care::tooth(rng);
                    let booked = pain.and_hms_opt(7, 30, 0).unwrap_or(self.now);
                    self.visit(rng, patient, VisitKind::Schmerz, pain, Some(booked), &tooth);
                }
            }
            if lapses && rng.random_bool(0.3) {
                return;
            }
            day = date + Duration::days(rng.random_range(interval.clone()));
        }
    }

    /// A new patient's journey from the first contact on.
    pub(crate) fn newcomer(&mut self, rng: &mut ChaCha8Rng, patient: usize, day: NaiveDate) {
        let first = if rng.random_bool(0.1) {
            VisitKind::Schmerz
        } else {
            VisitKind::Erstberatung
        };
        let tooth = care::tooth(rng);
        let (mut fate, mut date) = self.visit(rng, patient, first, day, None, &tooth);
        if fate == Fate::Ended && first == VisitKind::Erstberatung && rng.random_bool(0.3) {
            let again = date + Duration::days(rng.random_range(7..22));
            (fate, date) = self.visit(rng, patient, first, again, None, "");
        }
        if fate != Fate::Completed {
            return;
        }
        let roll = rng.random_range(0..100);
        if roll < 50 {
            let first = weighted(rng);
            let day = date + Duration::days(rng.random_range(7..29));
            self.series(rng, patient, first, day);
        } else if roll < 75 {
            let day = date + Duration::days(rng.random_range(150..200));
            let prophylaxis = rng.random_bool(0.4);
            self.routine(rng, patient, day, prophylaxis);
        }
    }
}

fn generate_location(
    rng: &mut ChaCha8Rng,
    spec: &Spec,
    size: Size,
    persons: Vec<Person>,
    now: NaiveDateTime,
) -> Location {
    let mut location = installation(rng, spec, size);
    let history_start = now - Duration::days(HISTORY_DAYS);
    let mut number = rng.random_range(1_000..4_000u32);
    let mut newcomers = Vec::with_capacity(persons.len());
    for person in &persons {
        let newcomer = rng.random_bool(0.6);
        let first_day = if newcomer {
            (history_start + Duration::days(rng.random_range(0..HISTORY_DAYS + FUTURE_DAYS))).date()
        } else {
            (history_start + Duration::days(rng.random_range(0..190))).date()
        };
        let registered = if newcomer {
            office_moment(
                rng,
                first_day.and_hms_opt(8, 0, 0).unwrap_or(now) - Duration::days(21),
                first_day.and_hms_opt(8, 0, 0).unwrap_or(now),
            )
        } else {
            office_moment(rng, history_start, now)
        };
        let registered = if registered > now - Duration::minutes(5) {
            office_moment(rng, now - Duration::days(40), now - Duration::minutes(5))
        } else {
            registered
        };
        location
            .patients
            .push(patient_record(rng, person, number, registered));
        newcomers.push((newcomer, first_day));
        number += if rng.random_range(0..10) == 0 {
            rng.random_range(2..5)
        } else {
            1
        };
    }
    let planner = Planner::new(&location);
    let mut practice = Practice {
        location: &mut location,
        planner,
        now,
    };
    for (patient, (newcomer, day)) in newcomers.into_iter().enumerate() {
        if newcomer {
            practice.newcomer(rng, patient, day);
        } else {
            let prophylaxis = rng.random_bool(0.35);
            practice.routine(rng, patient, day, prophylaxis);
        }
    }
    this_morning(rng, &mut practice);
    location
}

/// Mid-morning on the simulated today: patients in the chairs and one in
/// the waiting room, whatever the journeys happened to book.
fn this_morning(rng: &mut ChaCha8Rng, practice: &mut Practice<'_>) {
    let now = practice.now;
    let patients = practice.location.patients.len();
    if patients == 0 || quarter_hours(now.date()) == 0 {
        return;
    }
    let treatment_chairs = practice.planner.chairs - practice.planner.prophylaxis_chairs;
    let in_chair = now.date().and_hms_opt(10, 0, 0).unwrap_or(now);
    let waiting = now.date().and_hms_opt(10, 30, 0).unwrap_or(now);
    let kinds = [VisitKind::Kontrolle, VisitKind::Fuellung, VisitKind::Endo];
    let mut booked = 0;
    for chair in 0..treatment_chairs {
        let kind = *pick(rng, &kinds);
        if booked == 2
            || !practice
                .planner
                .is_free(in_chair, chair, kind.duration_minutes())
        {
            continue;
        }
        let patient = rng.random_range(0..patients);
        let tooth = care::back_tooth(rng);
        practice.visit_at(rng, patient, kind, in_chair, chair, None, &tooth);
        booked += 1;
    }
    let kind = VisitKind::Kontrolle;
    let free = (0..treatment_chairs).find(|&c| {
        practice
            .planner
            .is_free(waiting, c, kind.duration_minutes())
    });
    let patient = rng.random_range(0..patients);
    let count = practice.location.appointments.len();
    practice.visit_at(rng, patient, kind, waiting, free.unwrap_or(0), None, "");
    if let Some(appointment) = practice.location.appointments.get_mut(count) {
        appointment.state = Some("Arrived".to_string());
        appointment.confirmation_state = Some("Confirmed".to_string());
        appointment.last_modified = Some(now - Duration::minutes(4));
    }
}

/// The catchment area of a location key (new patients during simulated days).
pub(crate) fn region_of(key: &str) -> Region {
    SPECS
        .iter()
        .find(|spec| spec.key == key)
        .map_or(Region::Magdeburg, |spec| spec.region)
}
