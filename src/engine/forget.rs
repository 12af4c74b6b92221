//! Forgetting a patient (GDPR Art. 17) and lifting it again, for the
//! command line (`forget-patient`) and the app's Einstellungen.
//!
//! Under the writer lock: the patient is named by its number in Ivoris
//! (HumanReadableId) or its Ivoris id; a patient whose HubSpot contact is
//! shared with a patient at another location (the same person, linked by
//! the load) is forgotten only together with that one, on request
//! (`all_locations`), because the contact is deleted for both. The ledger
//! removes the rows and queues the erasures in one transaction
//! (`ledger/erasure.rs`); they are sent right away, and what HubSpot does
//! not take now stays queued for the next sync.

use std::path::Path;

use crate::hubspot::ClientError;
use crate::ledger::audit::os_user;
use crate::ledger::erasure::{ErasureOutcome, ErasurePreview, PatientRef};
use crate::ledger::lock::{LockError, WriterLock};
use crate::ledger::{Ledger, LedgerError, OutboxFilter, OutboxKind};

use super::extract::CancelFlag;
use super::load::{self, LoadError};
use super::run::{SyncEnvironment, hubspot_client};

/// Which patient to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetRequest {
    /// Location key.
    pub location: String,
    /// The patient's number in Ivoris (HumanReadableId) or its Ivoris id.
    pub patient: String,
    /// Also forget the same person at other locations when the HubSpot
    /// contact is shared (it is deleted for all of them).
    pub all_locations: bool,
}

/// What forgetting did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForgetReport {
    /// The patients forgotten (keys only).
    pub patients: Vec<PatientRef>,
    /// What the ledger removed and queued.
    pub ledger: ErasureOutcome,
    /// HubSpot erasures done now.
    pub erased: u64,
    /// HubSpot erasures still queued (sent by the next sync).
    pub pending: u64,
    /// Why HubSpot did not take all of them now (German / English).
    pub hubspot_error: Option<String>,
}

/// Why a patient was not forgotten (or its tombstone not lifted).
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("Unbekannter Standort „{0}“ / Unknown location \"{0}\"")]
    UnknownLocation(String),
    #[error(
        "Patient „{patient}“ ist am Standort „{location}“ nicht bekannt (Patientennummer oder Ivoris-Id) / \
         Patient \"{patient}\" is not known at location \"{location}\" (patient number or Ivoris id)"
    )]
    UnknownPatient { location: String, patient: String },
    #[error(
        "Der HubSpot-Kontakt dieses Patienten gehört auch zu {others} (dieselbe Person an einem anderen Standort). \
         Das Löschen des Kontakts träfe beide: mit --all-locations werden alle gemeinsam vergessen. / \
         This patient's HubSpot contact also belongs to {others} (the same person at another location). \
         Deleting the contact affects both: use --all-locations to forget them together.",
        others = .0.iter().map(PatientRef::key).collect::<Vec<_>>().join(", ")
    )]
    LinkedElsewhere(Vec<PatientRef>),
}

/// The patient a request names, resolved against the ledger. An id the
/// mirror does not know is taken as an Ivoris id when it looks like one
/// (a patient never synced, or forgotten before), so it is kept out too.
pub fn resolve(ledger: &Ledger, location: &str, patient: &str) -> Result<PatientRef, ForgetError> {
    if !ledger.locations()?.iter().any(|l| l.key == location) {
        return Err(ForgetError::UnknownLocation(location.to_owned()));
    }
    let wanted = patient.trim();
    let id = match ledger.find_patient(location, wanted)? {
        Some(id) => id,
        None if looks_like_ivoris_id(wanted) => wanted.to_owned(),
        None => {
            return Err(ForgetError::UnknownPatient {
                location: location.to_owned(),
                patient: wanted.to_owned(),
            });
        }
    };
    Ok(PatientRef {
        location: location.to_owned(),
        patient_id: id,
    })
}

/// A UUID as Ivoris hands them out.
fn looks_like_ivoris_id(text: &str) -> bool {
    text.len() == 36
        && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && text.matches('-').count() == 4
}

/// What forgetting the request's patient would do (read-only).
pub fn preview(
    ledger_path: &Path,
    location: &str,
    patient: &str,
) -> Result<ErasurePreview, ForgetError> {
    let ledger = Ledger::open(ledger_path)?;
    let patient = resolve(&ledger, location, patient)?;
    Ok(ledger.erasure_preview(&patient)?)
}

/// Forgets the patient: ledger rows removed, tombstone kept, HubSpot
/// records erased (now, or by the next sync if HubSpot does not answer).
pub async fn forget_patient(
    env: &SyncEnvironment,
    request: &ForgetRequest,
) -> Result<ForgetReport, ForgetError> {
    let _lock = WriterLock::acquire(&env.ledger_path, "forget-patient")?;
    let mut ledger = Ledger::open(&env.ledger_path)?;
    let patient = resolve(&ledger, &request.location, &request.patient)?;
    let linked = ledger.linked_patients(&patient)?;
    if !linked.is_empty() && !request.all_locations {
        return Err(ForgetError::LinkedElsewhere(linked));
    }
    let mut patients = vec![patient];
    patients.extend(linked);
    let outcome = ledger.forget_patients(&patients, &os_user())?;
    for patient in &patients {
        tracing::info!(patient = %patient.key(), "patient forgotten (GDPR erasure)");
    }
    let mut report = ForgetReport {
        patients,
        ledger: outcome,
        ..ForgetReport::default()
    };
    let sent = match hubspot_client(env) {
        Ok(client) => load::erase(&mut ledger, &client, &CancelFlag::new())
            .await
            .map_err(|error| match error {
                LoadError::HubSpot(error) => explain(&error),
                other => other.to_string(),
            }),
        Err(error) => Err(explain(&error)),
    };
    match sent {
        Ok(load) => {
            report.erased = load.written.get(&OutboxKind::Erasure).copied().unwrap_or(0);
            if load.failed > 0 {
                let filter = OutboxFilter {
                    kind: Some(OutboxKind::Erasure),
                    ..OutboxFilter::default()
                };
                report.hubspot_error = ledger
                    .outbox_filtered(&filter, 0, 1)?
                    .0
                    .into_iter()
                    .find_map(|row| row.last_error);
            }
        }
        Err(reason) => report.hubspot_error = Some(reason),
    }
    report.pending = pending_erasures(&ledger)?;
    Ok(report)
}

/// Erasures still waiting in the outbox (pending or dead).
pub fn pending_erasures(ledger: &Ledger) -> Result<u64, LedgerError> {
    Ok(ledger
        .outbox_counts()?
        .by_kind
        .iter()
        .find(|(kind, _, _)| *kind == OutboxKind::Erasure)
        .map_or(0, |(_, pending, dead)| pending + dead))
}

fn explain(error: &ClientError) -> String {
    format!("{} / {}", error.explain_de(), error.explain_en())
}

/// Lifts the tombstone of the request's patient: the next sync reads it
/// again and creates its records anew. Returns whether one was in force.
pub fn lift(ledger_path: &Path, location: &str, patient: &str) -> Result<bool, ForgetError> {
    let _lock = WriterLock::acquire(ledger_path, "forget-patient --lift")?;
    let mut ledger = Ledger::open(ledger_path)?;
    let patient = resolve(&ledger, location, patient)?;
    let lifted = ledger.lift_tombstone(&patient, &os_user())?;
    if lifted {
        tracing::info!(patient = %patient.key(), "tombstone lifted");
    }
    Ok(lifted)
}
