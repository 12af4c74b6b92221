//! What a portal holds before the first sync ([`PortalSeed`]): records an
//! earlier integration left, derived from the synthetic practices so tests
//! can tell which patient and appointment each record stands for.
//!
//! [`records`] is the whole description: tests derive their expectations
//! from it (which contact stands for which patient, which deal for which
//! appointment, which ones are duplicates or were made by hand), never from
//! what the product did with it.
//!
//! [`PortalSeed::Legacy`] — the portal the previous integration (no-code
//! scenarios with data-store queues) left. Per location, patients in the
//! order of their patient number, `i` their position (0, 1, 2, …):
//! - `i % 5 == 4`: nothing (patients who came after the switch-over);
//! - every other patient is a contact with `ivoris_patient_id` = the bare
//!   Ivoris `Id` (no location prefix), `firstname` / `lastname` as Ivoris
//!   has them, and `email` unless `i % 7 == 3`, the patient has none, or an
//!   earlier seeded contact already has the address (compared without case
//!   and surrounding spaces — HubSpot keeps addresses unique);
//! - `i % 10 == 1` (with a last name): the same person a second time, from
//!   a concurrent run — same `ivoris_patient_id` and first name, no e-mail,
//!   the last name with a typo (its last letter doubled);
//! - one deal per appointment of those patients (every appointment Ivoris
//!   has, past and booked), in the appointments' order by start: `dealname`
//!   „<type> <dd.mm.yyyy>“, `ivoris_appointment_id` = the bare appointment
//!   `Id`, in the old pipeline [`OLD_PIPELINE`] with the stage by label
//!   from the appointment's state ([`old_stage`]), `amount` = the patient's
//!   revenue lines (`lst`, `mat`, `lab`) visible at the simulated now and
//!   dated on the appointment's day (omitted when zero), and
//!   `verlustgrund` „Termin abgesagt“ in the lost stage. Each deal is
//!   associated with the patient's contact — for a patient entered twice,
//!   the deals of the 2nd, 4th, … appointment with the typo contact;
//! - `i % 6 == 2`: the patient's first appointment has a second deal with
//!   the same properties (a queue run twice); when also `i % 12 == 8` that
//!   second deal was closed by hand: stage „Verloren“, `verlustgrund`
//!   „Duplikat“;
//! - three contacts made by hand (`firstname` „Interessent“, `lastname`
//!   „Website 1…3“, `email` `anfrage-N@<location>.example.org`) and two
//!   deals made by hand („Anfrage Website 1…2“, stage „Termin vereinbart“,
//!   associated with the hand-made contact of the same number), none with
//!   an Ivoris id.
//!
//! The properties `ivoris_patient_id` (contacts), `ivoris_appointment_id`
//! and `verlustgrund` (deals) are created as the old integration created
//! them (single-line text in HubSpot's default groups). Records are
//! created in the order of [`SeedRecords`], so their ids rise with it.

use std::collections::{HashMap, HashSet};

use crate::ivoris::wire::Appointment;
use crate::sandbox::PortalSeed;
use crate::sandbox::data::{Location, World};

/// Label of the old integration's deal pipeline.
pub const OLD_PIPELINE: &str = "Termine (Altintegration)";
/// Its stages, open ones first, then won and lost (as
/// `HubSpotSim::seed_pipeline` takes them).
pub const OLD_STAGES: [&str; 5] = [
    "Termin vereinbart",
    "Termin bestätigt",
    "Termin wahrgenommen",
    "Abgeschlossen",
    "Verloren",
];

/// A property the seed creates before its records: `(object type, name,
/// label)`, single-line text.
pub type SeedProperty = (&'static str, &'static str, &'static str);

/// Who a seeded contact stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactOrigin {
    /// A patient, synced by the old integration (or, for
    /// [`PortalSeed::PreviousContacts`], without its id).
    Patient {
        /// Location key.
        location: String,
        /// The patient's Ivoris `Id`.
        patient_id: String,
        /// The second contact of the same person, name with a typo.
        typo_duplicate: bool,
    },
    /// Made by hand in HubSpot: stands for no patient.
    ByHand {
        /// Location whose hand-made records it belongs to.
        location: String,
    },
}

impl ContactOrigin {
    /// The contact the old integration made for a patient of `location`
    /// (any location when `None`), not its typo twin nor a hand-made one.
    pub fn is_patient_contact(&self, location: Option<&str>) -> bool {
        matches!(
            self,
            ContactOrigin::Patient { location: l, typo_duplicate: false, .. }
                if location.is_none_or(|wanted| wanted == l)
        )
    }
}

/// Why a seeded deal exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealOrigin {
    /// The old integration's deal of an appointment.
    Appointment,
    /// A second deal of the same appointment from a concurrent run, open.
    RunDuplicate,
    /// A second deal of the same appointment, closed lost „Duplikat“ by hand.
    ClosedDuplicate,
    /// Made by hand in HubSpot, no Ivoris id.
    ByHand,
}

/// A deal to seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedDeal {
    /// Location key.
    pub location: String,
    /// The appointment it stands for (`None`: made by hand).
    pub appointment_id: Option<String>,
    /// The patient of that appointment.
    pub patient_id: Option<String>,
    /// Why it exists.
    pub origin: DealOrigin,
    /// Stage label in [`OLD_PIPELINE`]; `pipeline` and `dealstage` are set
    /// from it when seeding.
    pub stage: &'static str,
    /// Whether the stage is open (not won or lost).
    pub open: bool,
    /// Every other property, as `(name, value)`.
    pub properties: Vec<(&'static str, String)>,
    /// Index in [`SeedRecords::contacts`] of the contact it is associated with.
    pub contact: Option<usize>,
}

/// Everything a seed puts into the portal, in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedRecords {
    /// Properties created first.
    pub properties: Vec<SeedProperty>,
    /// Whether [`OLD_PIPELINE`] is created (with [`OLD_STAGES`]).
    pub old_pipeline: bool,
    /// Contacts as `(property, value)` lists.
    pub contacts: Vec<Vec<(&'static str, String)>>,
    /// Parallel to `contacts`: who each one stands for.
    pub contact_origins: Vec<ContactOrigin>,
    /// Deals, each associated with its contact.
    pub deals: Vec<SeedDeal>,
}

/// The records `seed` puts into the portal for `world` (see [`PortalSeed`]
/// and this module's documentation for exactly which).
pub fn records(seed: PortalSeed, world: &World) -> SeedRecords {
    match seed {
        PortalSeed::Empty => SeedRecords::default(),
        PortalSeed::PreviousContacts => previous_contacts(world),
        PortalSeed::Legacy => legacy(world),
    }
}

/// Every second patient with an e-mail address per location, without our
/// key; an address already taken by an earlier one is skipped.
fn previous_contacts(world: &World) -> SeedRecords {
    let mut taken = HashSet::new();
    let mut seeded = SeedRecords::default();
    for location in &world.locations {
        let with_email = location.patients.iter().filter_map(|patient| {
            let email = patient.email.as_deref().map(str::trim)?;
            (!email.is_empty()).then_some((patient, email))
        });
        for (patient, email) in with_email.step_by(2) {
            if !taken.insert(email.to_lowercase()) {
                continue;
            }
            let mut properties = vec![("email", email.to_owned())];
            properties.extend(names(
                patient.firstname.as_deref(),
                patient.lastname.as_deref(),
            ));
            seeded.contacts.push(properties);
            seeded.contact_origins.push(ContactOrigin::Patient {
                location: location.key.clone(),
                patient_id: patient.id.clone(),
                typo_duplicate: false,
            });
        }
    }
    seeded
}

/// `firstname` / `lastname` where present and not blank.
fn names(first: Option<&str>, last: Option<&str>) -> Vec<(&'static str, String)> {
    [("firstname", first), ("lastname", last)]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.map(str::trim).filter(|v| !v.is_empty())?;
            Some((name, value.to_owned()))
        })
        .collect()
}

/// A last name with its last letter doubled.
pub fn typo(lastname: &str) -> String {
    let mut typo = lastname.trim().to_owned();
    if let Some(last) = typo.chars().last() {
        typo.push(last);
    }
    typo
}

/// The old pipeline's stage of an appointment in `state`, and whether it
/// is open.
pub fn old_stage(state: Option<&str>) -> (&'static str, bool) {
    match state {
        Some("Booked") | None => ("Termin vereinbart", true),
        Some("Confirmed" | "Arrived" | "InTreatment") => ("Termin bestätigt", true),
        Some("Completed" | "Clarified") => ("Termin wahrgenommen", true),
        Some(_) => ("Verloren", false),
    }
}

fn legacy(world: &World) -> SeedRecords {
    let mut seeded = SeedRecords {
        properties: vec![
            ("contacts", "ivoris_patient_id", "Ivoris Patienten-ID"),
            ("deals", "ivoris_appointment_id", "Ivoris Termin-ID"),
            ("deals", "verlustgrund", "Verlustgrund"),
        ],
        old_pipeline: true,
        ..SeedRecords::default()
    };
    let mut taken = HashSet::new();
    for location in &world.locations {
        legacy_location(location, &mut taken, &mut seeded);
    }
    seeded
}

fn legacy_location(location: &Location, taken: &mut HashSet<String>, seeded: &mut SeedRecords) {
    let mut appointments: HashMap<&str, Vec<&Appointment>> = HashMap::new();
    for appointment in &location.appointments {
        if let Some(patient) = appointment.patient_id.as_deref() {
            appointments.entry(patient).or_default().push(appointment);
        }
    }
    let revenue = revenue_by_day(location);
    for (i, patient) in location.patients.iter().enumerate() {
        if i % 5 == 4 {
            continue;
        }
        let mut properties = vec![("ivoris_patient_id", patient.id.clone())];
        let email = patient
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty() && i % 7 != 3 && taken.insert(e.to_lowercase()));
        if let Some(email) = email {
            properties.push(("email", email.to_owned()));
        }
        properties.extend(names(
            patient.firstname.as_deref(),
            patient.lastname.as_deref(),
        ));
        let contact = seeded.contacts.len();
        seeded.contacts.push(properties);
        seeded.contact_origins.push(ContactOrigin::Patient {
            location: location.key.clone(),
            patient_id: patient.id.clone(),
            typo_duplicate: false,
        });
        let lastname = patient.lastname.as_deref().map(str::trim).unwrap_or("");
        let twin = (i % 10 == 1 && !lastname.is_empty()).then(|| {
            let mut properties = vec![("ivoris_patient_id", patient.id.clone())];
            properties.extend(names(patient.firstname.as_deref(), None));
            properties.push(("lastname", typo(lastname)));
            seeded.contacts.push(properties);
            seeded.contact_origins.push(ContactOrigin::Patient {
                location: location.key.clone(),
                patient_id: patient.id.clone(),
                typo_duplicate: true,
            });
            seeded.contacts.len() - 1
        });
        let mut own = appointments.remove(patient.id.as_str()).unwrap_or_default();
        own.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        for (j, appointment) in own.iter().enumerate() {
            let contact = match twin {
                Some(twin) if j % 2 == 1 => twin,
                _ => contact,
            };
            let deal = appointment_deal(location, appointment, &revenue, contact);
            if j == 0 && i % 6 == 2 {
                let mut second = deal.clone();
                if i % 12 == 8 {
                    second.origin = DealOrigin::ClosedDuplicate;
                    second.stage = "Verloren";
                    second.open = false;
                    second
                        .properties
                        .retain(|(name, _)| *name != "verlustgrund");
                    second.properties.push(("verlustgrund", "Duplikat".into()));
                } else {
                    second.origin = DealOrigin::RunDuplicate;
                }
                seeded.deals.push(deal);
                seeded.deals.push(second);
            } else {
                seeded.deals.push(deal);
            }
        }
    }
    by_hand(location, seeded);
}

/// Revenue in cents per (patient, day) of the lines visible at now.
fn revenue_by_day(location: &Location) -> HashMap<(&str, chrono::NaiveDate), i64> {
    let mut revenue = HashMap::new();
    for entry in &location.entries {
        let counts = matches!(entry.entry_type.as_deref(), Some("lst" | "mat" | "lab"));
        if let (true, Some(patient), Some(date), Some(cents)) = (
            counts,
            entry.patient_id.as_deref(),
            entry.date,
            entry.amount_cents(),
        ) {
            *revenue.entry((patient, date)).or_insert(0) += cents;
        }
    }
    revenue
}

fn appointment_deal(
    location: &Location,
    appointment: &Appointment,
    revenue: &HashMap<(&str, chrono::NaiveDate), i64>,
    contact: usize,
) -> SeedDeal {
    let (stage, open) = old_stage(appointment.state.as_deref());
    let day = appointment.start.map(|s| s.date());
    let label = appointment.type_label.as_deref().unwrap_or("Termin");
    let mut properties = vec![
        (
            "dealname",
            match day {
                Some(day) => format!("{label} {}", day.format("%d.%m.%Y")),
                None => label.to_owned(),
            },
        ),
        ("ivoris_appointment_id", appointment.id.clone()),
    ];
    let cents = match (appointment.patient_id.as_deref(), day) {
        (Some(patient), Some(day)) => revenue.get(&(patient, day)).copied().unwrap_or(0),
        _ => 0,
    };
    if cents != 0 {
        properties.push((
            "amount",
            format!("{}.{:02}", cents / 100, cents.abs() % 100),
        ));
    }
    if !open {
        properties.push(("verlustgrund", "Termin abgesagt".into()));
    }
    SeedDeal {
        location: location.key.clone(),
        appointment_id: Some(appointment.id.clone()),
        patient_id: appointment.patient_id.clone(),
        origin: DealOrigin::Appointment,
        stage,
        open,
        properties,
        contact: Some(contact),
    }
}

/// Three contacts and two deals staff made by hand.
fn by_hand(location: &Location, seeded: &mut SeedRecords) {
    let first = seeded.contacts.len();
    for n in 1..=3 {
        seeded.contacts.push(vec![
            ("email", format!("anfrage-{n}@{}.example.org", location.key)),
            ("firstname", "Interessent".into()),
            ("lastname", format!("Website {n}")),
        ]);
        seeded.contact_origins.push(ContactOrigin::ByHand {
            location: location.key.clone(),
        });
    }
    for n in 1..=2 {
        seeded.deals.push(SeedDeal {
            location: location.key.clone(),
            appointment_id: None,
            patient_id: None,
            origin: DealOrigin::ByHand,
            stage: "Termin vereinbart",
            open: true,
            properties: vec![("dealname", format!("Anfrage Website {n}"))],
            contact: Some(first + n - 1),
        });
    }
}

/// A patient of a clean portal ([`super::HubSpotSim::seed_clean_portal`]):
/// every name, address and birthday differs from every other's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPatient {
    /// `<location>:p<n>`.
    pub key: String,
    /// `Vorname<n>`.
    pub firstname: String,
    /// `Nachname<n>`.
    pub lastname: String,
    /// `patient<n>@<location>.example.org`.
    pub email: String,
    /// 1 January 1930 plus `n` days.
    pub birthday: chrono::NaiveDate,
}

/// The `n`-th patient of a clean portal of `location`.
pub fn clean_patient(location: &str, n: usize) -> CleanPatient {
    let start = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default();
    CleanPatient {
        key: format!("{location}:p{n}"),
        firstname: format!("Vorname{n}"),
        lastname: format!("Nachname{n}"),
        email: format!("patient{n}@{location}.example.org"),
        birthday: start + chrono::Days::new(n as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Size;

    #[test]
    fn the_previous_integration_left_every_second_patient_with_an_address() {
        let world = World::generate(3, Size::Small);
        let seeded = records(PortalSeed::PreviousContacts, &world).contacts;
        let with_email: usize = world
            .locations
            .iter()
            .map(|l| l.patients.iter().filter(|p| p.email.is_some()).count())
            .sum();
        assert!(seeded.len() * 2 <= with_email + world.locations.len());
        assert!(seeded.len() * 3 >= with_email, "about half");
        for contact in &seeded {
            assert!(contact.iter().any(|(name, _)| *name == "email"));
            assert!(!contact.iter().any(|(name, _)| name.starts_with("ivoris")));
        }
        let emails: HashSet<String> = seeded
            .iter()
            .flat_map(|c| c.iter().filter(|(n, _)| *n == "email"))
            .map(|(_, v)| v.to_lowercase())
            .collect();
        assert_eq!(emails.len(), seeded.len(), "addresses stay unique");
        assert!(records(PortalSeed::Empty, &world).contacts.is_empty());
    }

    #[test]
    fn the_legacy_portal_holds_every_kind_of_record_the_switch_over_meets() {
        let world = World::generate(3, Size::Small);
        let seeded = records(PortalSeed::Legacy, &world);
        assert_eq!(seeded.contacts.len(), seeded.contact_origins.len());
        let patients: usize = world.locations.iter().map(|l| l.patients.len()).sum();
        let synced = seeded
            .contact_origins
            .iter()
            .filter(|o| o.is_patient_contact(None))
            .count();
        // Four of every five patients.
        assert!(synced * 5 >= patients * 4 - 5 && synced * 5 <= patients * 4 + 15);
        let twins = seeded
            .contact_origins
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    ContactOrigin::Patient {
                        typo_duplicate: true,
                        ..
                    }
                )
            })
            .count();
        assert!(twins > 0, "some patients twice");
        let hand = seeded
            .contact_origins
            .iter()
            .filter(|o| matches!(o, ContactOrigin::ByHand { .. }))
            .count();
        assert_eq!(hand, 3 * world.locations.len());
        for origin in [
            DealOrigin::Appointment,
            DealOrigin::RunDuplicate,
            DealOrigin::ClosedDuplicate,
            DealOrigin::ByHand,
        ] {
            assert!(
                seeded.deals.iter().any(|d| d.origin == origin),
                "{origin:?} seeded"
            );
        }
        assert!(seeded.contacts.iter().any(|c| {
            c.iter().any(|(n, _)| *n == "ivoris_patient_id")
                && !c.iter().any(|(n, _)| *n == "email")
        }));
        let emails: Vec<String> = seeded
            .contacts
            .iter()
            .flat_map(|c| c.iter().filter(|(n, _)| *n == "email"))
            .map(|(_, v)| v.to_lowercase())
            .collect();
        let unique: HashSet<&String> = emails.iter().collect();
        assert_eq!(unique.len(), emails.len(), "addresses stay unique");
        assert_eq!(seeded, records(PortalSeed::Legacy, &world), "deterministic");
    }
}
