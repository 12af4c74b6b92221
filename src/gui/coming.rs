//! Import: the view a later version fills.
//! Until then each shows what the ledger already knows about its subject —
//! real counts, nothing invented — and says what is coming.

use super::i18n::Lang;
use super::state::{Intent, Model, Panel};

/// Draws one of the coming views.
pub fn coming_ui(ui: &mut egui::Ui, model: &Model, panel: Panel) -> Vec<Intent> {
    let lang = model.lang();
    ui.heading(panel.title(lang));
    ui.add_space(6.0);
    ui.label(lang.pick(
        "Hier wird die historische Übernahme aus CSV-Exporten gestartet und verfolgt.",
        "The historical migration from CSV exports will be started and followed here.",
    ));
    ui.add_space(10.0);
    ui.strong(lang.pick("Was der Ledger schon weiß", "What the ledger already knows"));
    match &model.overview {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(lang.pick("Daten werden gelesen …", "Reading data …"));
            });
        }
        Some(overview) if overview.locations.is_empty() => {
            ui.weak(lang.pick(
                "Noch keine Daten – zuerst synchronisieren.",
                "No data yet – sync first.",
            ));
        }
        Some(overview) => {
            let columns = known_columns(lang);
            egui::Grid::new(("coming", panel as u8))
                .num_columns(columns.len() + 1)
                .striped(true)
                .spacing([20.0, 6.0])
                .show(ui, |ui| {
                    ui.strong(lang.pick("Standort", "Location"));
                    for (title, _) in &columns {
                        ui.strong(*title);
                    }
                    ui.end_row();
                    for location in &overview.locations {
                        ui.label(&location.name);
                        for (_, value) in &columns {
                            ui.label(lang.number(value(location)));
                        }
                        ui.end_row();
                    }
                });
        }
    }
    ui.add_space(10.0);
    ui.weak(lang.pick(
        "Diese Ansicht folgt in einer späteren Version.",
        "This view comes in a later version.",
    ));
    if let Some(latest) = super::overview::latest_run_text(model) {
        ui.weak(latest);
    }
    Vec::new()
}

/// A count of one location.
type Count = fn(&crate::engine::handle::LocationOverview) -> u64;

/// The counts the coming view shows: what an import would add to.
fn known_columns(lang: Lang) -> Vec<(&'static str, Count)> {
    vec![
        (lang.pick("Patienten", "Patients"), |l| l.counts.patients),
        (lang.pick("Termine", "Appointments"), |l| {
            l.counts.appointments
        }),
        (lang.pick("Leistungen", "Billing lines"), |l| {
            l.counts.document_entries
        }),
    ]
}
