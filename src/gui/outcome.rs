//! How a run's outcome looks: its colour and its words, shared by the
//! panels that list runs.

use crate::ledger::RunOutcome;

use super::i18n::Lang;

/// The colour a run's outcome is shown in.
pub fn outcome_color(ui: &egui::Ui, outcome: Option<RunOutcome>) -> egui::Color32 {
    let dark = ui.visuals().dark_mode;
    match outcome {
        Some(RunOutcome::Success) => {
            if dark {
                egui::Color32::from_rgb(110, 200, 120)
            } else {
                egui::Color32::from_rgb(30, 130, 50)
            }
        }
        Some(RunOutcome::Warnings) | Some(RunOutcome::Cancelled) => {
            if dark {
                egui::Color32::from_rgb(240, 180, 60)
            } else {
                egui::Color32::from_rgb(170, 100, 0)
            }
        }
        Some(RunOutcome::Failed) => ui.visuals().error_fg_color,
        None => ui.visuals().weak_text_color(),
    }
}

/// A run's outcome in words.
pub fn outcome_text(lang: Lang, outcome: Option<RunOutcome>) -> &'static str {
    match outcome {
        Some(RunOutcome::Success) => lang.pick("Erfolgreich", "Succeeded"),
        Some(RunOutcome::Warnings) => lang.pick("Mit Hinweisen", "With warnings"),
        Some(RunOutcome::Failed) => lang.pick("Fehlgeschlagen", "Failed"),
        Some(RunOutcome::Cancelled) => lang.pick("Abgebrochen", "Cancelled"),
        None => lang.pick("Läuft", "Running"),
    }
}
