//! `sync`: one headless run for the chosen locations (or all), the same
//! engine the desktop app drives. Prints a summary; the exit code says how
//! it ended (see `main.rs`).

use std::path::Path;

use anyhow::Context;

use ivoris_hubspot_sync::engine::extract::CancelFlag;
use ivoris_hubspot_sync::engine::load::LoadReport;
use ivoris_hubspot_sync::engine::run::{
    Credentials, Progress, SyncEnvironment, SyncError, SyncRequest, SyncSummary, clock_for, sync,
};
use ivoris_hubspot_sync::ledger::{OutboxKind, RunOutcome};
use ivoris_hubspot_sync::secrets::{OsSecretStore, Secrets};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

/// Options of `sync`.
#[derive(clap::Args)]
pub struct SyncArgs {
    /// Location key to sync (repeatable); default: all configured locations.
    #[arg(long = "location", value_name = "KEY")]
    locations: Vec<String>,
    /// Sync all configured locations (the default; for scripts that want to say so).
    #[arg(long, conflicts_with = "locations")]
    all: bool,
    /// Show what would be written; send nothing to HubSpot.
    #[arg(long)]
    dry_run: bool,
    /// Re-read every patient's billing lines now instead of at the weekly sweep.
    #[arg(long)]
    full_sweep: bool,
}

/// How a run ended, for the exit code.
pub enum Ended {
    Outcome(RunOutcome),
    Locked,
}

/// The environment of a headless command: settings with locations, the
/// secrets from the environment or the OS store.
pub fn headless_environment(
    config: Option<&Path>,
    dirs: &DataDirs,
) -> anyhow::Result<SyncEnvironment> {
    let settings = Settings::load(config, dirs)?;
    if settings.is_demo() {
        anyhow::bail!(
            "Keine Standorte eingerichtet: bitte die Einstellungen ergänzen (oder `sandbox --write-config` für eine Probe). / \
             No locations configured: complete the settings (or try `sandbox --write-config`)."
        );
    }
    let store = OsSecretStore::new();
    let credentials = Credentials::resolve(&settings, &Secrets::from_process_env(&store))?;
    Ok(SyncEnvironment {
        ledger_path: settings.ledger_path(dirs),
        clock: clock_for(&settings),
        settings,
        credentials,
        tune_ivoris: None,
        tune_hubspot: None,
    })
}

/// Runs one sync and prints its summary.
pub fn run(args: SyncArgs, config: Option<&Path>, dirs: &DataDirs) -> anyhow::Result<Ended> {
    let env = headless_environment(config, dirs)?;
    let request = SyncRequest {
        locations: args.locations,
        dry_run: args.dry_run,
        full_sweep: args.full_sweep,
        trigger: "cli".into(),
    };
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let result = runtime.block_on(async {
        let cancel = CancelFlag::new();
        let on_interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Abbruch angefordert … / stopping …");
                on_interrupt.cancel();
            }
        });
        sync(&env, &request, &print_progress, &cancel).await
    });
    match result {
        Ok(summary) => {
            print_summary(&summary, request.dry_run);
            Ok(Ended::Outcome(summary.outcome))
        }
        Err(SyncError::Locked(error)) => {
            eprintln!("{error}");
            Ok(Ended::Locked)
        }
        Err(error) => Err(error.into()),
    }
}

fn print_progress(progress: Progress) {
    match progress {
        Progress::Provisioning => eprintln!("HubSpot-Einrichtung prüfen / checking HubSpot setup"),
        Progress::Extract(p) if p.done == 0 => {
            eprintln!("{}: {:?} lesen / reading", p.location, p.phase)
        }
        Progress::Planning { location } => eprintln!("{location}: planen / planning"),
        Progress::Loading {
            kind,
            done: 0,
            total,
            ..
        } if total > 0 => {
            eprintln!("HubSpot: {total} {} schreiben / writing", kind.as_str())
        }
        _ => {}
    }
}

fn print_summary(summary: &SyncSummary, dry_run: bool) {
    if dry_run {
        println!(
            "Probelauf – nichts wurde an HubSpot gesendet / dry run – nothing was sent to HubSpot"
        );
    }
    for location in &summary.locations {
        println!("\n{}:", location.key);
        if let Some(extract) = &location.extract {
            println!(
                "  Ivoris gelesen / read: {} Patienten, {} Termine, {} Leistungen ({} neu/new, {} geändert/changed)",
                extract.patients.read,
                extract.appointments.read,
                extract.entries.read,
                extract.patients.inserted
                    + extract.appointments.inserted
                    + extract.entries.inserted,
                extract.patients.updated + extract.appointments.updated + extract.entries.updated,
            );
        }
        if let Some(deleted) = location
            .extract
            .as_ref()
            .map(|e| e.deleted)
            .filter(|d| d.total() > 0)
        {
            println!(
                "  In Ivoris gelöscht / deleted in Ivoris: {} Patienten (Kontakte bleiben / contacts kept), {} Termine (in HubSpot abgesagt / cancelled in HubSpot), {} Leistungen (nicht mehr im Umsatz / no longer in revenue)",
                deleted.patients, deleted.appointments, deleted.entries
            );
        }
        if let Some(plan) = &location.plan {
            for kind in OutboxKind::PLANNED {
                let queued = plan.queued.get(&kind).copied().unwrap_or_default();
                println!(
                    "  {:<12} {:>6} {} / {:>6} unverändert/unchanged",
                    kind.as_str(),
                    queued.to_write(),
                    if dry_run {
                        "würden geschrieben / would be written"
                    } else {
                        "zu schreiben / to write"
                    },
                    queued.unchanged
                );
            }
            let adoption = &plan.adoption;
            if *adoption != Default::default() {
                println!(
                    "  Übernahme aus der bisherigen Integration / adopted from the previous integration{}:",
                    if dry_run {
                        " (Probelauf / dry run)"
                    } else {
                        ""
                    }
                );
                println!(
                    "    Kontakte / contacts: {} übernommen / adopted, {} neu / created",
                    adoption.contacts_adopted, adoption.contacts_created
                );
                println!(
                    "    Deals: {} übernommen / adopted, {} als „Duplikat“ geschlossen / closed lost \"Duplikat\", {} zusammengeführt / merged, {} neu / created",
                    adoption.deals_adopted,
                    adoption.deals_closed,
                    adoption.deals_merged,
                    adoption.deals_created
                );
            }
            if !plan.unmapped_states.is_empty() {
                println!(
                    "  Unbekannte Terminstatus / unmapped states: {}",
                    plan.unmapped_states
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !plan.unmapped_types.is_empty() {
                println!(
                    "  Unbekannte Terminarten / unmapped types: {}",
                    plan.unmapped_types
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if let Some(problem) = &location.problem {
            println!("  Problem: {problem}");
        }
    }
    print_contacts_met(&summary.load);
    let c = &summary.counts;
    println!(
        "\nErgebnis / result: {:?} – gelesen/read {}, geschrieben/written {}, unverändert/unchanged {}, \
         fehlgeschlagen/failed {}, Quarantäne {}, API: Ivoris {} / HubSpot {}",
        summary.outcome,
        c.read,
        c.written,
        c.unchanged,
        c.failed,
        c.quarantined,
        c.ivoris_calls,
        c.hubspot_calls
    );
    if let Some(message) = &summary.message {
        println!("{message}");
    }
    for (de, en) in &summary.warnings {
        println!("Warnung: {de} / warning: {en}");
    }
}

/// What sending found in HubSpot: contacts of the previous integration or
/// of staff that HubSpot holds under a patient's e-mail address — the
/// plan counts them among those to create, HubSpot's e-mail conflict
/// reveals them while sending.
fn print_contacts_met(load: &LoadReport) {
    if load.adopted + load.linked + load.email_withheld == 0 {
        return;
    }
    println!(
        "\nBeim Senden / while sending: {} bestehende Kontakte mit der E-Mail des Patienten übernommen / existing contacts with the patient's e-mail adopted, \
         {} mit dem Kontakt derselben Person verknüpft / linked to the same person's contact, \
         {} ohne E-Mail geschrieben, weil ein anderer Kontakt sie hat (Duplikate → Protokoll) / written without e-mail as another contact has it (Duplicates → log)",
        load.adopted, load.linked, load.email_withheld
    );
}
