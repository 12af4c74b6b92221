//! Records deleted in Ivoris (not cancelled: gone) do not stay in HubSpot
//! silently. The full sweep finds them: a deleted billing line leaves the
//! deal's revenue, a deleted appointment's record is cancelled and says
//! why, a deleted patient's contact stays and is counted. Expected values
//! come from the sandbox's world, not from the product.

mod engine_support;

use engine_support::{bed, live, options, prop, run};
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::hubspot::HubSpotSim;
use ivoris_hubspot_sync::sandbox::ivoris::RecordKind;

/// Every deal's `amount`, in cents.
fn total_amount(sim: &HubSpotSim) -> i64 {
    live(sim, "deals")
        .iter()
        .map(|deal| {
            let amount = prop(deal, "amount");
            let (euros, cents) = amount.split_once('.').unwrap_or((amount, "0"));
            euros.parse::<i64>().unwrap_or(0) * 100
                + format!("{cents:0<2}")[..2].parse::<i64>().unwrap_or(0)
        })
        .sum()
}

/// What the test deletes, chosen from the world.
struct Chosen {
    location: String,
    /// A service line on the day of one of its patient's completed
    /// appointments, and its amount in cents.
    entry: (String, i64),
    /// A future booking.
    appointment: String,
    /// A patient without appointments or lines of the chosen ones.
    patient: String,
}

fn choose(sim: &ivoris_hubspot_sync::sandbox::ivoris::IvorisSim) -> Chosen {
    sim.with_world(|world| {
        let now = world.now;
        let location = world.locations.first().expect("a location");
        let entry = location
            .entries
            .iter()
            .filter(|e| e.entry_type.as_deref() == Some("lst"))
            .filter(|e| e.amount_cents().is_some_and(|c| c > 0))
            .find(|e| {
                e.date.is_some_and(|day| day < now.date())
                    && location.appointments.iter().any(|a| {
                        a.patient_id == e.patient_id
                            && a.state.as_deref() == Some("Completed")
                            && a.start.map(|s| s.date()) == e.date
                    })
            })
            .expect("a billed service");
        let appointment = location
            .appointments
            .iter()
            .find(|a| {
                a.start
                    .is_some_and(|s| s > now + chrono::Duration::days(30))
                    && a.state.as_deref() == Some("Booked")
            })
            .expect("a future booking");
        let patient = location
            .patients
            .iter()
            .find(|p| {
                Some(&p.id) != entry.patient_id.as_ref()
                    && Some(&p.id) != appointment.patient_id.as_ref()
            })
            .expect("another patient");
        Chosen {
            location: location.key.clone(),
            entry: (entry.id.clone(), entry.amount_cents().unwrap_or(0)),
            appointment: appointment.id.clone(),
            patient: patient.id.clone(),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_sweep_finds_what_was_deleted_in_ivoris_and_hubspot_follows() {
    let mut bed = bed(options(91)).await;
    let first = run(&bed.env).await;
    assert_eq!(first.outcome, RunOutcome::Success, "{:?}", first.message);
    let hubspot = &bed.sandbox.hubspot;
    let ivoris = &bed.sandbox.ivoris;
    let chosen = choose(ivoris);
    let amount_before = total_amount(hubspot);
    let contacts_before = live(hubspot, "contacts").len();

    ivoris
        .delete_record(&chosen.location, RecordKind::Entry, &chosen.entry.0)
        .expect("entry deleted");
    ivoris
        .delete_record(
            &chosen.location,
            RecordKind::Appointment,
            &chosen.appointment,
        )
        .expect("appointment deleted");
    ivoris
        .delete_record(&chosen.location, RecordKind::Patient, &chosen.patient)
        .expect("patient deleted");

    // Without a sweep nothing is concluded from a missing record.
    let quiet = run(&bed.env).await;
    let deleted = |summary: &ivoris_hubspot_sync::engine::run::SyncSummary| {
        summary
            .locations
            .iter()
            .filter_map(|l| l.extract.as_ref())
            .map(|e| {
                (
                    e.deleted.patients,
                    e.deleted.appointments,
                    e.deleted.entries,
                )
            })
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    };
    assert_eq!(deleted(&quiet), (0, 0, 0), "no sweep, no deletion");

    // The sweep finds all three.
    bed.env.settings.sync.entry_sweep_days = 0;
    let swept = run(&bed.env).await;
    assert_eq!(swept.outcome, RunOutcome::Success, "{:?}", swept.message);
    assert_eq!(deleted(&swept), (1, 1, 1));
    assert_eq!(
        total_amount(hubspot),
        amount_before - chosen.entry.1,
        "the deleted line left the revenue"
    );
    let key = format!("{}:{}", chosen.location, chosen.appointment);
    let record = live(hubspot, "appointments")
        .into_iter()
        .find(|r| prop(r, "ivoris_appointment_key") == key)
        .expect("the appointment record stays");
    assert_eq!(prop(&record, "hs_appointment_status"), "CANCELED");
    assert!(prop(&record, "hs_appointment_name").contains("in Ivoris gelöscht"));
    assert_eq!(
        live(hubspot, "contacts").len(),
        contacts_before,
        "the deleted patient's contact stays"
    );
    let ledger = Ledger::open(&bed.env.ledger_path).expect("ledger");
    let audited = ledger
        .connection()
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'ivoris_deleted'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .expect("audit");
    assert_eq!(audited, 3, "one audit entry per kind");
    drop(ledger);

    // A further sweep finds nothing new and writes nothing.
    let again = run(&bed.env).await;
    assert_eq!(deleted(&again), (0, 0, 0));
    assert_eq!(again.counts.written, 0, "{:?}", again.counts);
    bed.sandbox.shutdown().await;
}
