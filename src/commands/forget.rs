//! `forget-patient`: erases a patient under GDPR Art. 17 — the HubSpot
//! contact by GDPR delete, its deals and appointment records archived, the
//! ledger's rows removed — and keeps it out of every later sync until
//! `--lift`. Takes the writer lock (exit code 4 while a sync runs). Asks
//! before it acts unless `--yes`.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;

use ivoris_hubspot_sync::engine::forget::{self, ForgetError, ForgetRequest};
use ivoris_hubspot_sync::ledger::lock::LockError;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

use super::sync::{Ended, headless_environment};

/// Options of `forget-patient`.
#[derive(clap::Args)]
pub struct ForgetArgs {
    /// Location key of the patient.
    #[arg(long, value_name = "KEY", required_unless_present = "list")]
    location: Option<String>,
    /// Patient number in Ivoris (HumanReadableId) or Ivoris id (UUID; needed for --lift).
    #[arg(long, value_name = "NUMBER", required_unless_present = "list")]
    patient: Option<String>,
    /// Also forget the same person at other locations when they share one HubSpot contact.
    #[arg(long)]
    all_locations: bool,
    /// Lift the tombstone: the next sync reads the patient again and creates its records.
    #[arg(long, conflicts_with = "all_locations")]
    lift: bool,
    /// List the forgotten patients (keys and dates only).
    #[arg(long, conflicts_with_all = ["lift", "all_locations"])]
    list: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

/// Forgets a patient, lifts its tombstone or lists the tombstones.
pub fn run(args: ForgetArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let ledger_path = Settings::load(config, dirs)?.ledger_path(dirs);
    if args.list {
        return list(&ledger_path);
    }
    let (Some(location), Some(patient)) = (args.location.clone(), args.patient.clone()) else {
        anyhow::bail!("--location und --patient fehlen / --location and --patient are missing");
    };
    let result = if args.lift {
        forget::lift(&ledger_path, &location, &patient).map(|lifted| {
            if lifted {
                println!(
                    "Sperre aufgehoben: {location}:{patient} wird beim nächsten Lauf wieder übertragen / \
                     Tombstone lifted: {location}:{patient} is synced again by the next run"
                );
            } else {
                println!(
                    "Keine Sperre für {location}:{patient} / No tombstone for {location}:{patient}"
                );
            }
            Ended::Outcome(RunOutcome::Success)
        })
    } else {
        if !args.yes && !confirmed(&ledger_path, &location, &patient)? {
            println!("Abgebrochen, nichts geändert / Cancelled, nothing changed");
            return Ok(Ended::Outcome(RunOutcome::Cancelled));
        }
        forget_now(&args, location, patient, config, dirs)
    };
    match result {
        Ok(ended) => Ok(ended),
        Err(ForgetError::Locked(error @ LockError::Held { .. })) => {
            eprintln!("{error}");
            Ok(Ended::Locked)
        }
        Err(error) => Err(error.into()),
    }
}

fn forget_now(
    args: &ForgetArgs,
    location: String,
    patient: String,
    config: Option<&Path>,
    dirs: &DataDirs,
) -> Result<Ended, ForgetError> {
    let env = match headless_environment(config, dirs) {
        Ok(env) => env,
        Err(error) => {
            eprintln!("{error:#}");
            return Ok(Ended::Outcome(RunOutcome::Failed));
        }
    };
    let request = ForgetRequest {
        location,
        patient,
        all_locations: args.all_locations,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tokio runtime: {error}");
            return Ok(Ended::Outcome(RunOutcome::Failed));
        }
    };
    let report = runtime.block_on(forget::forget_patient(&env, &request))?;
    for patient in &report.patients {
        println!(
            "Vergessen / forgotten: {} (Sperre bis `forget-patient --lift --location {} --patient {}` / tombstone until lifted)",
            patient.key(),
            patient.location,
            patient.patient_id
        );
    }
    println!(
        "Ledger: {} Zeilen entfernt / rows removed; HubSpot: {} gelöscht bzw. archiviert / erased, {} ausstehend / pending",
        report.ledger.rows_removed, report.erased, report.pending
    );
    if report.pending > 0 {
        eprintln!(
            "HubSpot hat noch nicht alles gelöscht; der nächste Lauf holt es nach / HubSpot has not erased everything yet; the next sync does: {}",
            report.hubspot_error.as_deref().unwrap_or("-")
        );
        return Ok(Ended::Outcome(RunOutcome::Warnings));
    }
    Ok(Ended::Outcome(RunOutcome::Success))
}

/// Shows what will happen and asks on the terminal.
fn confirmed(ledger_path: &Path, location: &str, patient: &str) -> anyhow::Result<bool> {
    let preview = forget::preview(ledger_path, location, patient)?;
    let key = preview
        .patient
        .as_ref()
        .map(|p| p.key())
        .unwrap_or_default();
    println!(
        "Patient {key} (Nr. {}): HubSpot-Kontakt wird per DSGVO-Löschung endgültig gelöscht, {} Deals und {} Termine werden archiviert, \
         alle lokalen Daten entfernt; der Patient wird nie wieder übertragen, bis die Sperre aufgehoben wird. / \
         The HubSpot contact is deleted for good (GDPR delete), {} deals and {} appointments archived, all local data removed; \
         the patient is never synced again until the tombstone is lifted.",
        preview.number.as_deref().unwrap_or("-"),
        preview.deals,
        preview.appointments,
        preview.deals,
        preview.appointments
    );
    if !preview.linked.is_empty() {
        println!("{}", ForgetError::LinkedElsewhere(preview.linked.clone()));
    }
    print!("Fortfahren? / Continue? [j/N] ");
    std::io::stdout().flush().context("stdout")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("stdin")?;
    Ok(matches!(
        answer.trim().to_lowercase().as_str(),
        "j" | "ja" | "y" | "yes"
    ))
}

fn list(ledger_path: &Path) -> anyhow::Result<Ended> {
    let ledger = Ledger::open(ledger_path)?;
    let tombstones = ledger.tombstones()?;
    if tombstones.is_empty() {
        println!("Keine vergessenen Patienten / No forgotten patients");
    }
    for tombstone in tombstones {
        println!(
            "{}  vergessen am / forgotten on {}{}",
            tombstone.patient.key(),
            tombstone.forgotten_on,
            tombstone
                .lifted_on
                .map(|day| format!(", aufgehoben am / lifted on {day}"))
                .unwrap_or_default()
        );
    }
    Ok(Ended::Outcome(RunOutcome::Success))
}
