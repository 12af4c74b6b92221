//! Einstellungen › „Datenschutz und Sicherung“: backup and restore of the
//! ledger, and forgetting a patient (GDPR Art. 17) — where a practice
//! manager looks for what the app keeps about patients.
//!
//! „Sicherung erstellen…“ and „Sicherung wiederherstellen…“ use the file
//! in the field next to them, or open the operating system's dialog when
//! it is empty (its answer fills the field and goes on). A restore asks
//! first. „Patient vergessen…“ asks the engine what forgetting would do and
//! shows it in a confirmation naming every step; a contact shared with the
//! same person at another location is named there and must be confirmed
//! for all of them.

use std::path::PathBuf;

use crate::engine::forget::{ForgetReport, ForgetRequest};
use crate::engine::privacy_ops::{PrivacyCommand, PrivacyEvent};
use crate::ledger::erasure::ErasurePreview;

use super::file_dialog::Pick;
use super::i18n::Lang;
use super::state::{Intent, Model, Notice};

/// Engine answers the section shows.
#[derive(Debug, Default)]
pub struct PrivacyModel {
    /// A command is on its way; the buttons wait.
    pub busy: bool,
    /// What the last backup, restore, erasure or lifting did.
    pub result: Option<Notice>,
    /// The erasure preview waiting for confirmation.
    pub preview: Option<ErasurePreview>,
}

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct PrivacyView {
    /// The backup file, typed or chosen.
    pub backup_path: String,
    /// The restore confirmation is open.
    pub confirm_restore: bool,
    /// Location of the patient to forget.
    pub location: String,
    /// Patient number (or Ivoris id) to forget, or Ivoris id to lift.
    pub patient: String,
    /// Confirmed: forget the same person at every linked location.
    pub all_locations: bool,
}

/// What the section asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivacyIntent {
    /// Send this to the engine.
    Engine(PrivacyCommand),
    /// Close the erasure preview without acting.
    ClosePreview,
    /// Ask before restoring the backup in the field (from the next frame
    /// on, so the click that asked does not close the question).
    AskRestore,
}

/// Applies an engine answer; returns the notice for the top bar.
pub fn on_event(model: &mut PrivacyModel, event: PrivacyEvent, lang: Lang) -> Notice {
    model.busy = false;
    let notice = match event {
        PrivacyEvent::BackedUp(Ok(path)) => ok(format!(
            "{} {}",
            lang.pick("Sicherung erstellt:", "Backup written:"),
            path.display()
        )),
        PrivacyEvent::Restored(Ok(kept)) => ok(format!(
            "{} {}",
            lang.pick(
                "Sicherung wiederhergestellt. Der bisherige Ledger liegt unter",
                "Backup restored. The previous ledger is kept at"
            ),
            kept.display()
        )),
        PrivacyEvent::Preview(Ok(preview)) => {
            model.preview = Some(preview);
            return ok(String::new());
        }
        PrivacyEvent::Forgotten(Ok(report)) => forgotten(lang, &report),
        PrivacyEvent::Lifted(Ok(lifted)) => ok(if lifted {
            lang.pick(
                "Sperre aufgehoben: Die nächste Synchronisation überträgt den Patienten wieder.",
                "Tombstone lifted: the next sync transfers the patient again.",
            )
            .to_owned()
        } else {
            lang.pick(
                "Für diesen Patienten besteht keine Sperre.",
                "There is no tombstone for this patient.",
            )
            .to_owned()
        }),
        PrivacyEvent::BackedUp(Err(message))
        | PrivacyEvent::Restored(Err(message))
        | PrivacyEvent::Preview(Err(message))
        | PrivacyEvent::Forgotten(Err(message))
        | PrivacyEvent::Lifted(Err(message)) => Notice {
            text: lang.half(&message),
            error: true,
        },
    };
    model.result = Some(notice.clone());
    notice
}

fn ok(text: String) -> Notice {
    Notice { text, error: false }
}

fn forgotten(lang: Lang, report: &ForgetReport) -> Notice {
    let keys: Vec<String> = report.patients.iter().map(|p| p.key()).collect();
    let mut text = format!(
        "{} {} — {} {}",
        lang.pick("Vergessen:", "Forgotten:"),
        keys.join(", "),
        lang.number(report.erased),
        lang.pick(
            "Datensätze in HubSpot gelöscht bzw. archiviert.",
            "records erased or archived in HubSpot."
        ),
    );
    if report.pending > 0 {
        text.push_str(&format!(
            " {} {}",
            lang.number(report.pending),
            lang.pick(
                "stehen noch aus; die nächste Synchronisation holt sie nach.",
                "are still pending; the next sync sends them."
            )
        ));
    }
    Notice {
        text,
        error: report.pending > 0,
    }
}

/// Draws the section.
pub fn privacy_ui(ui: &mut egui::Ui, model: &Model, view: &mut PrivacyView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.strong(lang.pick("Datenschutz und Sicherung", "Privacy and backup"));
    backup_ui(ui, model, view, &mut intents);
    ui.add_space(8.0);
    forget_ui(ui, model, view, &mut intents);
    if let Some(result) = model.privacy.result.as_ref().filter(|r| !r.text.is_empty()) {
        if result.error {
            ui.colored_label(ui.visuals().error_fg_color, &result.text);
        } else {
            ui.label(&result.text);
        }
    }
    if view.confirm_restore {
        confirm_restore_ui(ui, lang, view, &mut intents);
    }
    if let Some(preview) = &model.privacy.preview {
        confirm_forget_ui(ui, lang, view, preview, &mut intents);
    }
    intents
}

fn backup_ui(ui: &mut egui::Ui, model: &Model, view: &mut PrivacyView, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    ui.label(lang.pick(
        "Eine Sicherung enthält Patientendaten: auf einem verschlüsselten Laufwerk oder dem Sicherungsziel der Praxis ablegen, nicht auf einem USB-Stick, der am PC steckt.",
        "A backup contains patient data: keep it on an encrypted drive or the practice's backup target, not on a USB stick left in the PC.",
    ));
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Sicherungsdatei:", "Backup file:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.backup_path)
                .desired_width(360.0)
                .hint_text(lang.pick("leer: Datei wählen", "empty: choose a file")),
        )
        .labelled_by(label.id);
    });
    let path = view.backup_path.trim();
    let idle = !model.privacy.busy;
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                idle,
                egui::Button::new(lang.pick("Sicherung erstellen…", "Create backup…")),
            )
            .clicked()
        {
            intents.push(if path.is_empty() {
                Intent::PickFile(Pick::BackupTarget)
            } else {
                Intent::Privacy(PrivacyIntent::Engine(PrivacyCommand::Backup(
                    PathBuf::from(path),
                )))
            });
        }
        if ui
            .add_enabled(
                idle && !model.running,
                egui::Button::new(lang.pick("Sicherung wiederherstellen…", "Restore backup…")),
            )
            .clicked()
        {
            if path.is_empty() {
                intents.push(Intent::PickFile(Pick::BackupSource));
            } else {
                intents.push(Intent::Privacy(PrivacyIntent::AskRestore));
            }
        }
    });
    if model.running {
        ui.weak(lang.pick(
            "Während einer Synchronisation kann keine Sicherung wiederhergestellt werden.",
            "A backup cannot be restored while a sync runs.",
        ));
    }
}

fn forget_ui(ui: &mut egui::Ui, model: &Model, view: &mut PrivacyView, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    ui.label(lang.pick(
        "Patient vergessen (DSGVO Art. 17): löscht den Kontakt in HubSpot, archiviert Deals und Termine, entfernt alle lokalen Daten und überträgt den Patienten nie wieder.",
        "Forget a patient (GDPR Art. 17): deletes the contact in HubSpot, archives deals and appointments, removes all local data and never transfers the patient again.",
    ));
    let locations: Vec<(String, String)> = match &model.overview {
        Some(overview) => overview
            .locations
            .iter()
            .map(|l| (l.key.clone(), l.name.clone()))
            .collect(),
        None => model
            .info
            .iter()
            .flat_map(|info| &info.settings.locations)
            .map(|l| (l.key.clone(), l.name.clone()))
            .collect(),
    };
    if view.location.is_empty()
        && let Some((key, _)) = locations.first()
    {
        view.location = key.clone();
    }
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Standort:", "Location:"));
        egui::ComboBox::from_id_salt("forget_location")
            .selected_text(view.location.clone())
            .show_ui(ui, |ui| {
                for (key, name) in &locations {
                    ui.selectable_value(&mut view.location, key.clone(), format!("{name} ({key})"));
                }
            })
            .response
            .labelled_by(label.id);
        let label = ui.label(lang.pick("Patientennummer:", "Patient number:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.patient)
                .desired_width(280.0)
                .hint_text(lang.pick(
                    "Nummer in Ivoris oder Ivoris-Id",
                    "number in Ivoris or Ivoris id",
                )),
        )
        .labelled_by(label.id);
    });
    let ready = !model.privacy.busy && !view.location.is_empty() && !view.patient.trim().is_empty();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                ready,
                egui::Button::new(lang.pick("Patient vergessen…", "Forget patient…")),
            )
            .clicked()
        {
            view.all_locations = false;
            intents.push(Intent::Privacy(PrivacyIntent::Engine(
                PrivacyCommand::Preview {
                    location: view.location.clone(),
                    patient: view.patient.trim().to_owned(),
                },
            )));
        }
        if ui
            .add_enabled(
                ready,
                egui::Button::new(lang.pick("Sperre aufheben", "Lift tombstone")),
            )
            .on_hover_text(lang.pick(
                "Mit der Ivoris-Id des vergessenen Patienten",
                "With the forgotten patient's Ivoris id",
            ))
            .clicked()
        {
            intents.push(Intent::Privacy(PrivacyIntent::Engine(
                PrivacyCommand::Lift {
                    location: view.location.clone(),
                    patient: view.patient.trim().to_owned(),
                },
            )));
        }
    });
}

/// Asks before the ledger is replaced.
fn confirm_restore_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut PrivacyView,
    intents: &mut Vec<Intent>,
) {
    let modal = egui::Modal::new(egui::Id::unique("confirm_restore")).show(ui.ctx(), |ui| {
        ui.heading(lang.pick("Sicherung wiederherstellen?", "Restore backup?"));
        ui.label(lang.pick(
            "Der Ledger wird durch die Sicherung ersetzt; der bisherige bleibt als „.before-restore“ daneben liegen. Die nächste Synchronisation liest nach, was sich seit der Sicherung geändert hat.",
            "The ledger is replaced by the backup; the previous one is kept beside it as \".before-restore\". The next sync catches up with what changed since the backup.",
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button(lang.pick("Wiederherstellen", "Restore")).clicked() {
                intents.push(Intent::Privacy(PrivacyIntent::Engine(PrivacyCommand::Restore(
                    PathBuf::from(view.backup_path.trim()),
                ))));
                view.confirm_restore = false;
            }
            if ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                view.confirm_restore = false;
            }
        });
    });
    if modal.should_close() {
        view.confirm_restore = false;
    }
}

/// Names exactly what forgetting does, and who else shares the contact.
fn confirm_forget_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut PrivacyView,
    preview: &ErasurePreview,
    intents: &mut Vec<Intent>,
) {
    let Some(patient) = &preview.patient else {
        return;
    };
    let modal = egui::Modal::new(egui::Id::unique("confirm_forget")).show(ui.ctx(), |ui| {
        ui.set_max_width(560.0);
        ui.heading(lang.pick("Patient endgültig vergessen?", "Forget patient for good?"));
        ui.label(format!(
            "{} {} ({}: {})",
            lang.pick("Patient", "Patient"),
            preview.number.as_deref().unwrap_or("–"),
            lang.pick("Schlüssel", "key"),
            patient.key()
        ));
        for line in steps(lang, preview) {
            ui.label(format!("• {line}"));
        }
        let linked = !preview.linked.is_empty();
        if linked {
            let keys: Vec<String> = preview.linked.iter().map(|p| p.key()).collect();
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "{} {}. {}",
                    lang.pick(
                        "Derselbe HubSpot-Kontakt gehört auch zu",
                        "The same HubSpot contact also belongs to"
                    ),
                    keys.join(", "),
                    lang.pick(
                        "Der Kontakt wird für alle gelöscht; sie werden gemeinsam vergessen.",
                        "The contact is deleted for all of them; they are forgotten together."
                    )
                ),
            );
            ui.checkbox(
                &mut view.all_locations,
                lang.pick("An allen Standorten vergessen", "Forget at every location"),
            );
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let allowed = !linked || view.all_locations;
            if ui
                .add_enabled(
                    allowed,
                    egui::Button::new(lang.pick("Endgültig vergessen", "Forget for good")),
                )
                .clicked()
            {
                intents.push(Intent::Privacy(PrivacyIntent::Engine(
                    PrivacyCommand::Forget(ForgetRequest {
                        location: patient.location.clone(),
                        patient: patient.patient_id.clone(),
                        all_locations: view.all_locations,
                    }),
                )));
            }
            if ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                intents.push(Intent::Privacy(PrivacyIntent::ClosePreview));
            }
        });
    });
    if modal.should_close() {
        intents.push(Intent::Privacy(PrivacyIntent::ClosePreview));
    }
}

/// What forgetting does, step by step.
fn steps(lang: Lang, preview: &ErasurePreview) -> Vec<String> {
    let mut steps = Vec::new();
    if preview.forgotten {
        steps.push(
            lang.pick(
                "Der Patient ist bereits vergessen; noch ausstehende Löschungen werden gesendet.",
                "The patient is forgotten already; pending erasures are sent.",
            )
            .to_owned(),
        );
    }
    steps.push(
        lang.pick(
            "Der Kontakt wird in HubSpot per DSGVO-Löschung endgültig gelöscht (nicht wiederherstellbar).",
            "The contact is deleted in HubSpot by GDPR delete, for good (cannot be restored).",
        )
        .to_owned(),
    );
    steps.push(format!(
        "{} {} {} {}",
        lang.number(preview.deals as u64),
        lang.pick("Deals und", "deals and"),
        lang.number(preview.appointments as u64),
        lang.pick(
            "Termine werden in HubSpot ohne Namen archiviert.",
            "appointment records are archived in HubSpot without the name."
        ),
    ));
    steps.push(
        lang.pick(
            "Alle Daten des Patienten in diesem Programm werden entfernt.",
            "All of the patient's data in this program is removed.",
        )
        .to_owned(),
    );
    steps.push(
        lang.pick(
            "Der Patient wird nie wieder übertragen, bis die Sperre aufgehoben wird.",
            "The patient is never transferred again until the tombstone is lifted.",
        )
        .to_owned(),
    );
    steps
}
