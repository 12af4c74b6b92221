//! Einstellungen: what the sync runs with — HubSpot portal, pipeline,
//! appointments, locations, ledger — and the app's own language and theme.
//!
//! In this version the sync settings are shown, not edited: they live in
//! the settings file (the CLI's `sandbox --write-config` writes an
//! example), and the credentials in the operating system's credential
//! store. The panel says so instead of offering fields that do nothing.

use crate::settings::AppointmentsMode;

use super::app::{Intent, Model, Panel, Theme};
use super::i18n::Lang;

/// Draws the settings.
pub fn settings_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.heading(Panel::Settings.title(lang));
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.strong(lang.pick("Darstellung", "Appearance"));
            egui::Grid::new("settings_appearance")
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    ui.label(lang.pick("Sprache", "Language"));
                    ui.horizontal(|ui| {
                        for (choice, name) in [(Lang::De, "Deutsch"), (Lang::En, "English")] {
                            if ui.radio(lang == choice, name).clicked() && lang != choice {
                                intents.push(Intent::SetLang(choice));
                            }
                        }
                    });
                    ui.end_row();
                    ui.label(lang.pick("Farbschema", "Theme"));
                    ui.horizontal(|ui| {
                        for (choice, name) in [
                            (Theme::System, lang.pick("wie das System", "as the system")),
                            (Theme::Light, lang.pick("Hell", "Light")),
                            (Theme::Dark, lang.pick("Dunkel", "Dark")),
                        ] {
                            if ui.radio(model.ui.theme == choice, name).clicked() {
                                intents.push(Intent::SetTheme(choice));
                            }
                        }
                    });
                    ui.end_row();
                });
            ui.add_space(12.0);
            sync_settings_ui(ui, model, &mut intents);
        });
    intents
}

/// The sync settings, read-only in this version.
fn sync_settings_ui(ui: &mut egui::Ui, model: &Model, _intents: &mut Vec<Intent>) {
    let lang = model.lang();
    let Some(info) = &model.info else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Wird vorbereitet …", "Preparing …"));
        });
        return;
    };
    let settings = &info.settings;
    ui.strong(lang.pick("Synchronisation", "Sync"));
    if info.demo {
        ui.label(lang.pick(
            "Demo-Modus: Es sind keine Standorte eingerichtet. Die App synchronisiert eine eingebaute Simulation von Ivoris und HubSpot auf diesem PC; es werden keine echten Daten gelesen oder gesendet.",
            "Demo mode: no locations are configured. The app syncs a built-in simulation of Ivoris and HubSpot on this PC; no real data is read or sent.",
        ));
    }
    ui.label(lang.pick(
        "Diese Version zeigt die Einstellungen an; bearbeitet werden sie in der Einstellungsdatei, die Zugangsdaten im Anmeldeinformationsspeicher des Betriebssystems. Bearbeiten in der App folgt in einer späteren Version.",
        "This version shows the settings; they are edited in the settings file, the credentials in the operating system's credential store. Editing in the app comes in a later version.",
    ));
    ui.add_space(6.0);
    egui::Grid::new("settings_sync")
        .num_columns(2)
        .striped(true)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            let mut row = |name: &str, value: String| {
                ui.label(name);
                ui.label(value);
                ui.end_row();
            };
            if let Some(path) = &model.settings_path {
                row(
                    lang.pick("Einstellungsdatei", "Settings file"),
                    path.display().to_string(),
                );
            }
            row("Ledger", info.ledger_path.display().to_string());
            row(
                lang.pick("HubSpot-Adresse", "HubSpot URL"),
                settings.hubspot.base_url.clone(),
            );
            row(
                lang.pick("API-Version", "API version"),
                settings.hubspot.api_version.to_string(),
            );
            row(
                lang.pick("HubSpot-Abo", "HubSpot tier"),
                format!("{:?}", settings.hubspot.tier),
            );
            row(
                lang.pick("Pipeline", "Pipeline"),
                settings.hubspot.pipeline.clone(),
            );
            row(
                lang.pick(
                    "Termine als HubSpot-Objekte",
                    "Appointments as HubSpot objects",
                ),
                match settings.hubspot.appointments {
                    AppointmentsMode::Auto => lang.pick(
                        "automatisch (wenn im Portal aktiviert)",
                        "automatic (when activated in the portal)",
                    ),
                    AppointmentsMode::On => lang.pick("ja", "yes"),
                    AppointmentsMode::Off => lang.pick("nein", "no"),
                }
                .to_owned(),
            );
        });
    ui.add_space(12.0);
    ui.strong(lang.pick("Standorte", "Locations"));
    egui::Grid::new("settings_locations")
        .num_columns(5)
        .striped(true)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            for title in [
                lang.pick("Schlüssel", "Key"),
                lang.pick("Name", "Name"),
                lang.pick("Marke", "Brand"),
                lang.pick("Ivoris-Adresse", "Ivoris URL"),
                lang.pick("Benutzer", "User"),
            ] {
                ui.strong(title);
            }
            ui.end_row();
            for location in &settings.locations {
                ui.label(&location.key);
                ui.label(&location.name);
                ui.label(location.brand.as_deref().unwrap_or("–"));
                ui.label(&location.ivoris_url);
                ui.label(&location.ivoris_user);
                ui.end_row();
            }
        });
}
