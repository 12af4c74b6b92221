//! Simulated practice days: when the clock moves on, booked appointments
//! that have passed are settled (completed, cancelled, no-show, clarified),
//! completed treatments are billed (some lines days late), future
//! appointments get confirmed or cancelled, new and known patients book,
//! and some patients change their contact data. Every change bumps
//! `LastModified` to a moment of the day it happened on.

use chrono::{Datelike, Duration, NaiveDateTime, Weekday};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::SimState;
use crate::sandbox::data::care::{self, Payer, VisitKind};
use crate::sandbox::data::{
    self, Fate, Location, Planner, Practice, between, office_moment, people,
};

/// Longest step of one `advance` call.
pub const MAX_DAYS: u32 = 366;

/// What happened while the clock moved on (summed over all locations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdvanceSummary {
    /// Days simulated (capped at [`MAX_DAYS`]).
    pub days: u32,
    /// The simulated now afterwards.
    pub now: NaiveDateTime,
    /// Appointments whose time passed: completed, cancelled, no-show, clarified.
    pub settled_appointments: usize,
    /// Booked appointments the patient confirmed.
    pub confirmed_appointments: usize,
    /// Future appointments the patient cancelled.
    pub cancelled_appointments: usize,
    /// Patients registered with their first booking.
    pub new_patients: usize,
    /// Appointments booked (by new and known patients).
    pub new_appointments: usize,
    /// Billing lines that became visible (including late ones).
    pub new_entries: usize,
    /// Patients whose e-mail, mobile number or address changed.
    pub changed_patients: usize,
}

pub(super) fn advance(state: &mut SimState, days: u32) -> AdvanceSummary {
    let days = days.min(MAX_DAYS);
    let mut summary = AdvanceSummary {
        days,
        ..AdvanceSummary::default()
    };
    for _ in 0..days {
        let from = state.world.now;
        let to = from + Duration::days(1);
        for location in state.world.locations.iter_mut() {
            simulate_day(&mut state.days, location, from, to, &mut summary);
        }
        state.world.now = to;
    }
    summary.now = state.world.now;
    summary
}

/// A random count with the given mean: its integer part plus one more with
/// the probability of the fraction.
fn count(rng: &mut ChaCha8Rng, mean: f64) -> usize {
    let whole = mean.floor();
    let extra = usize::from(rng.random_bool((mean - whole).clamp(0.0, 1.0)));
    whole as usize + extra
}

fn simulate_day(
    rng: &mut ChaCha8Rng,
    location: &mut Location,
    from: NaiveDateTime,
    to: NaiveDateTime,
    summary: &mut AdvanceSummary,
) {
    let appointments_before = location.appointments.len();
    let entries_before = location.entries.len();
    let planner = Planner::new(location);
    let mut practice = Practice {
        location,
        planner,
        now: to,
    };
    settle(rng, &mut practice, from, to, summary);
    let open = !matches!(to.date().weekday(), Weekday::Sat | Weekday::Sun);
    if open {
        book(rng, &mut practice, from, to, summary);
    }
    change_patients(rng, &mut practice, from, to, summary);
    let location = practice.location;
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut location.pending_entries)
        .into_iter()
        .partition(|e| e.last_modified.is_some_and(|m| m <= to));
    location.entries.extend(due);
    location.pending_entries = later;
    summary.new_appointments += location.appointments.len() - appointments_before;
    summary.new_entries += location.entries.len() - entries_before;
}

fn is_open(state: Option<&str>) -> bool {
    matches!(
        state,
        Some("Booked" | "Confirmed" | "Arrived" | "InTreatment")
    )
}

/// Settles, confirms and cancels the appointments already in the book.
fn settle(
    rng: &mut ChaCha8Rng,
    practice: &mut Practice<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
    summary: &mut AdvanceSummary,
) {
    let mut follow_ups = Vec::new();
    for index in 0..practice.location.appointments.len() {
        let Some(appointment) = practice.location.appointments.get(index) else {
            continue;
        };
        let (Some(start), true) = (appointment.start, is_open(appointment.state.as_deref())) else {
            continue;
        };
        // Scripted records may carry absurd dates; the practice ignores them.
        if (start - to).num_days().abs() > 3_650 {
            continue;
        }
        let Some(kind) = appointment
            .template_id
            .as_deref()
            .and_then(|t| practice.location.kind_of(t))
        else {
            continue;
        };
        let end = start + Duration::minutes(i64::from(appointment.duration_minutes.unwrap_or(15)));
        let showed_up = matches!(
            appointment.state.as_deref(),
            Some("Arrived" | "InTreatment")
        );
        let patient_id = appointment.patient_id.clone().unwrap_or_default();
        let practitioner = appointment.practitioner_id.clone().unwrap_or_default();
        let (new_state, modified) = if end <= to {
            let outcome = if showed_up {
                "Completed"
            } else {
                care::outcome(rng, kind)
            };
            let modified = if outcome == "Cancelled" {
                between(
                    rng,
                    from.max(start - Duration::days(2)),
                    start - Duration::hours(1),
                )
                .max(from)
            } else {
                end + Duration::minutes(rng.random_range(3..120))
            };
            (outcome, modified.min(to))
        } else if start <= to {
            ("InTreatment", start.max(from))
        } else if start <= to + Duration::minutes(30) && rng.random_bool(0.7) {
            ("Arrived", to - Duration::minutes(rng.random_range(0..10)))
        } else if appointment.state.as_deref() == Some("Booked")
            && (start.date() - to.date()).num_days() <= 2
            && rng.random_bool(0.6)
        {
            summary.confirmed_appointments += 1;
            ("Confirmed", between(rng, from, to))
        } else if start > to + Duration::days(1) && rng.random_bool(0.004) {
            summary.cancelled_appointments += 1;
            ("Cancelled", between(rng, from, to))
        } else {
            continue;
        };
        if let Some(appointment) = practice.location.appointments.get_mut(index) {
            appointment.state = Some(new_state.to_string());
            appointment.last_modified = Some(modified);
            if new_state == "Confirmed" || new_state == "Arrived" {
                appointment.confirmation_state = Some("Confirmed".to_string());
            }
        }
        if end > to {
            continue;
        }
        summary.settled_appointments += 1;
        let payer = practice
            .location
            .patients
            .iter()
            .find(|p| p.id == patient_id)
            .map_or(Payer::Statutory, |p| {
                Payer::from_insurance(p.health_insurance.as_deref().unwrap_or(""))
            });
        let tooth = care::back_tooth(rng);
        practice.document(
            rng,
            &patient_id,
            &practitioner,
            kind,
            payer,
            new_state,
            start,
            &tooth,
        );
        if new_state == "Completed" && kind == VisitKind::Erstberatung && rng.random_bool(0.5) {
            follow_ups.push((patient_id, start));
        }
    }
    for (patient_id, start) in follow_ups {
        if let Some(patient) = practice
            .location
            .patients
            .iter()
            .position(|p| p.id == patient_id)
        {
            let first = data::weighted(rng);
            let day = start.date() + Duration::days(rng.random_range(7..29));
            practice.series(rng, patient, first, day);
        }
    }
}

/// New patients book a first consultation; known patients book check-ups,
/// prophylaxis, fillings or come in with pain.
fn book(
    rng: &mut ChaCha8Rng,
    practice: &mut Practice<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
    summary: &mut AdvanceSummary,
) {
    let patients = practice.location.patients.len();
    let region = data::region_of(&practice.location.key);
    let newcomers = count(rng, (patients as f64 * 0.0012).max(0.7));
    for _ in 0..newcomers {
        let mut person = people::person(rng, region, to.date());
        if let Some(email) = &person.email {
            let (local, domain) = email
                .split_once('@')
                .unwrap_or((email.as_str(), "example.de"));
            person.email = Some(format!("{local}.{}@{domain}", rng.random_range(100..1000)));
        }
        let number = practice
            .location
            .patients
            .iter()
            .filter_map(|p| p.human_readable_id.as_deref()?.parse::<u32>().ok())
            .max()
            .unwrap_or(1000)
            + 1;
        let registered = office_moment(rng, from, to);
        let patient = data::patient_record(rng, &person, number, registered);
        practice.location.patients.push(patient);
        summary.new_patients += 1;
        let day = to.date() + Duration::days(rng.random_range(1..22));
        let index = practice.location.patients.len().saturating_sub(1);
        practice.newcomer(rng, index, day);
    }
    let known = count(rng, (patients as f64 * 0.004).max(1.0));
    for _ in 0..known {
        if patients == 0 {
            break;
        }
        let patient = rng.random_range(0..patients);
        let (kind, day) = match rng.random_range(0..20) {
            0..=9 => (VisitKind::Kontrolle, rng.random_range(3..57)),
            10..=14 => (VisitKind::Prophylaxe, rng.random_range(7..57)),
            15..=16 => (VisitKind::Schmerz, rng.random_range(0..2)),
            _ => (VisitKind::Fuellung, rng.random_range(5..29)),
        };
        let booked_at = office_moment(rng, from, to);
        let tooth = care::back_tooth(rng);
        let (fate, _) = practice.visit(
            rng,
            patient,
            kind,
            to.date() + Duration::days(day),
            Some(booked_at),
            &tooth,
        );
        if fate == Fate::Completed {
            summary.settled_appointments += 1;
        }
    }
}

/// Some patients get a new e-mail address, mobile number or address.
fn change_patients(
    rng: &mut ChaCha8Rng,
    practice: &mut Practice<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
    summary: &mut AdvanceSummary,
) {
    let patients = practice.location.patients.len();
    if patients == 0 {
        return;
    }
    let changes = count(rng, (patients as f64 * 0.0008).max(0.5));
    for _ in 0..changes {
        let index = rng.random_range(0..patients);
        let modified = office_moment(rng, from, to);
        let roll = rng.random_range(0..20);
        let Some(patient) = practice.location.patients.get_mut(index) else {
            continue;
        };
        let firstname = patient.firstname.clone().unwrap_or_default();
        let lastname = patient.lastname.clone().unwrap_or_default();
        let birthday = patient.birthday.map_or(to.date(), |b| b.date());
        match roll {
            0..=11 => {
                patient.email = Some(people::changed_email(rng, &firstname, &lastname, birthday))
            }
            12..=16 => {
                patient.mobile = Some(format!(
                    "+49 1{} {}",
                    rng.random_range(50..80),
                    rng.random_range(1_000_000..10_000_000)
                ))
            }
            _ => {
                if let Some(address) = patient.address.as_mut() {
                    address.street = Some(format!("Neue Straße {}", rng.random_range(1..80)));
                }
            }
        }
        patient.last_modified = Some(modified);
        summary.changed_patients += 1;
    }
}
