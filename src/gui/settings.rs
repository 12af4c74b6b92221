//! Einstellungen: the HubSpot portal, the Ivoris connection of every
//! location, the automatic sync, and the app's language and theme.
//!
//! The form edits a draft ([`SettingsDraft`]); nothing is saved until the
//! whole draft is valid. Validation is the settings file's own
//! ([`Settings::parse`]): the draft is written as the file would be and read
//! back, so a rule lives in one place and its message appears next to the
//! field it names. Secrets are never shown: a stored token or password is
//! „gespeichert“ with a way to replace or delete it, and typed values go to
//! the engine, which writes them to the credential store.

use std::collections::HashMap;

use crate::engine::handle::{
    ConnectionCheck, ConnectionReport, ConnectionTest, SecretState, SettingsChange,
};
use crate::hubspot::Tier;
use crate::hubspot::provision::{AppointmentsStatus, ProvisionReport};
use crate::secrets::{Secret, SecretKey};
use crate::settings::{
    ApiVersion, AppointmentsMode, Language, LocationSettings, Problem, SCHEDULE_MINUTES, Settings,
    SettingsError,
};

use super::i18n::Lang;
use super::outcome::outcome_color;
use super::state::{Intent, Model, Panel, Theme};

/// Where the draft's problems are named in messages.
const ORIGIN: &str = "Einstellungen";

/// Width of a text field: an Ivoris relay address fits.
const FIELD_WIDTH: f32 = 440.0;

/// Height of a text field row.
const FIELD_HEIGHT: f32 = 22.0;

/// Least width of a form column, so the sections line up.
const COLUMN_WIDTH: f32 = 190.0;

/// A secret in the form: what was typed, and what to do with the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretField {
    /// A new value typed; empty keeps what is stored.
    pub input: String,
    /// The person chose „Ersetzen“ for a stored value.
    pub replace: bool,
    /// The person chose „Löschen“: deleted when saving.
    pub delete: bool,
}

impl SecretField {
    /// What saving does with this secret: store, delete, or nothing.
    fn change(&self) -> Option<Option<Secret>> {
        if self.delete {
            Some(None)
        } else {
            let value = self.input.trim();
            (!value.is_empty()).then(|| Some(Secret::new(value)))
        }
    }

    /// The typed value, for a connection test.
    fn typed(&self) -> Option<Secret> {
        let value = self.input.trim();
        (!self.delete && !value.is_empty()).then(|| Secret::new(value))
    }
}

/// One location in the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationDraft {
    /// Location key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Ivoris web service URL.
    pub ivoris_url: String,
    /// HTTP Basic user.
    pub ivoris_user: String,
    /// The fields the form does not show, kept as they are in the file.
    pub kept: Option<LocationSettings>,
    /// HTTP Basic password.
    pub password: SecretField,
    /// `api_key` parameter.
    pub api_key: SecretField,
}

/// The form's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsDraft {
    /// Subscription tier.
    pub tier: Tier,
    /// Legacy `v3` paths instead of `2026-03`.
    pub api_v3: bool,
    /// Deal pipeline label.
    pub pipeline: String,
    /// Appointment objects on / off / auto.
    pub appointments: AppointmentsMode,
    /// The HubSpot private-app token.
    pub token: SecretField,
    /// Whether the app syncs by itself.
    pub schedule_on: bool,
    /// Minutes between automatic syncs, as typed.
    pub schedule_minutes: String,
    /// Locations in file order.
    pub locations: Vec<LocationDraft>,
}

impl SettingsDraft {
    /// The form showing `settings`.
    pub fn from_settings(settings: &Settings) -> SettingsDraft {
        SettingsDraft {
            tier: settings.hubspot.tier,
            api_v3: settings.hubspot.api_version == ApiVersion::V3,
            pipeline: settings.hubspot.pipeline.clone(),
            appointments: settings.hubspot.appointments,
            token: SecretField::default(),
            schedule_on: settings.sync.schedule_minutes.is_some(),
            schedule_minutes: settings.sync.schedule_minutes.unwrap_or(30).to_string(),
            locations: settings
                .locations
                .iter()
                .map(|location| LocationDraft {
                    key: location.key.clone(),
                    name: location.name.clone(),
                    ivoris_url: location.ivoris_url.clone(),
                    ivoris_user: location.ivoris_user.clone(),
                    kept: Some(location.clone()),
                    password: SecretField::default(),
                    api_key: SecretField::default(),
                })
                .collect(),
        }
    }

    /// The validated settings, `base` filling what the form does not show;
    /// or every problem, keyed as in the file (`location[1].ivoris_url`).
    pub fn validate(&self, base: &Settings, lang: Lang) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut candidate = base.clone();
        candidate.language = match lang {
            Lang::De => Language::De,
            Lang::En => Language::En,
        };
        candidate.hubspot.tier = self.tier;
        candidate.hubspot.api_version = if self.api_v3 {
            ApiVersion::V3
        } else {
            ApiVersion::default()
        };
        candidate.hubspot.pipeline = self.pipeline.clone();
        candidate.hubspot.appointments = self.appointments;
        candidate.sync.schedule_minutes = if self.schedule_on {
            match self.schedule_minutes.trim().parse::<u32>() {
                Ok(minutes) => Some(minutes),
                Err(_) => {
                    problems.push(Problem {
                        key: "sync.schedule_minutes".into(),
                        line: None,
                        de: format!(
                            "bitte eine ganze Zahl von {} bis {} eingeben",
                            SCHEDULE_MINUTES.0, SCHEDULE_MINUTES.1
                        ),
                        en: format!(
                            "please enter a whole number from {} to {}",
                            SCHEDULE_MINUTES.0, SCHEDULE_MINUTES.1
                        ),
                    });
                    None
                }
            }
        } else {
            None
        };
        candidate.locations = self
            .locations
            .iter()
            .map(|draft| {
                let kept = draft.kept.clone().unwrap_or_else(|| LocationSettings {
                    key: String::new(),
                    name: String::new(),
                    brand: None,
                    ivoris_url: String::new(),
                    ivoris_user: String::new(),
                    // Empty: the file's defaults apply.
                    ivoris_app: String::new(),
                    ivoris_app_version: String::new(),
                    profile_id: None,
                    allow_insecure_http: false,
                });
                LocationSettings {
                    key: draft.key.trim().to_owned(),
                    name: draft.name.clone(),
                    ivoris_url: draft.ivoris_url.clone(),
                    ivoris_user: draft.ivoris_user.clone(),
                    ..kept
                }
            })
            .collect();
        // The file's own reading is the one validation.
        let parsed = candidate
            .to_toml_string()
            .and_then(|text| Settings::parse(&text, ORIGIN));
        match parsed {
            Ok(settings) if problems.is_empty() => Ok(settings),
            Ok(_) => Err(problems),
            Err(SettingsError::Invalid {
                problems: found, ..
            }) => {
                problems.extend(found);
                Err(problems)
            }
            Err(other) => {
                let text = other.to_string();
                let (de, en) = text
                    .split_once(" / ")
                    .unwrap_or((text.as_str(), text.as_str()));
                problems.push(Problem {
                    key: String::new(),
                    line: None,
                    de: de.to_owned(),
                    en: en.to_owned(),
                });
                Err(problems)
            }
        }
    }

    /// The secrets saving changes, keyed by the validated location keys.
    pub fn secret_changes(&self) -> Vec<(SecretKey, Option<Secret>)> {
        let mut changes = Vec::new();
        if let Some(change) = self.token.change() {
            changes.push((SecretKey::HubSpotToken, change));
        }
        for location in &self.locations {
            let key = location.key.trim().to_owned();
            if let Some(change) = location.password.change() {
                changes.push((SecretKey::IvorisPassword(key.clone()), change));
            }
            if let Some(change) = location.api_key.change() {
                changes.push((SecretKey::IvorisApiKey(key), change));
            }
        }
        changes
    }
}

/// The secrets whose state the panel shows for `settings`.
pub fn secret_keys(settings: &Settings) -> Vec<SecretKey> {
    let mut keys = vec![SecretKey::HubSpotToken];
    for location in &settings.locations {
        keys.push(SecretKey::IvorisPassword(location.key.clone()));
        keys.push(SecretKey::IvorisApiKey(location.key.clone()));
    }
    keys
}

/// What only the settings' drawing needs.
#[derive(Debug, Default)]
pub struct SettingsView {
    /// The form; built from the saved settings when the panel is first drawn.
    pub draft: Option<SettingsDraft>,
    /// Problems of the last validation, shown next to their fields.
    pub problems: Vec<Problem>,
    /// The draft the problems belong to; a changed draft is checked again.
    pub checked: Option<SettingsDraft>,
    /// „Datenschutz und Sicherung“ (not part of the settings file).
    pub privacy: super::privacy::PrivacyView,
}

impl SettingsView {
    /// Forgets the form, so it is built again from the saved settings.
    pub fn reset(&mut self) {
        *self = SettingsView {
            privacy: std::mem::take(&mut self.privacy),
            ..SettingsView::default()
        };
    }
}

/// What the form's buttons ask for; handled in [`settings_ui`], which has
/// the draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormAction {
    /// Validate and save.
    Save,
    /// Back to the saved settings.
    Discard,
    /// Validate and test the connection of the location at this index.
    Test(usize),
}

/// Draws the settings.
pub fn settings_ui(ui: &mut egui::Ui, model: &Model, view: &mut SettingsView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let mut actions = Vec::new();
    let lang = model.lang();
    ui.heading(Panel::Settings.title(lang));
    ui.add_space(4.0);
    let draft = view
        .draft
        .get_or_insert_with(|| SettingsDraft::from_settings(&model.settings_file));
    // Problems shown follow the draft as it is edited.
    if view
        .checked
        .as_ref()
        .is_some_and(|checked| *checked != *draft)
    {
        view.problems = match draft.validate(&model.settings_file, lang) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        view.checked = Some(draft.clone());
    }
    let problems = &view.problems;
    save_bar_ui(ui, model, draft, problems, &mut actions);
    ui.separator();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if let Some(error) = &model.settings_file_error {
                ui.colored_label(ui.visuals().error_fg_color, lang.half(error));
                ui.label(lang.pick(
                    "Das Formular beginnt mit den Standardwerten; Speichern ersetzt die Datei.",
                    "The form starts from the defaults; saving replaces the file.",
                ));
                ui.add_space(6.0);
            }
            if model.demo() {
                ui.label(lang.pick(
                    "Demo-Modus: Es sind keine Standorte eingerichtet, die App synchronisiert eine eingebaute Simulation. Tragen Sie HubSpot-Zugang und Standorte ein und speichern Sie, um mit Ihren echten Daten zu arbeiten.",
                    "Demo mode: no locations are configured, the app syncs a built-in simulation. Enter the HubSpot access and the locations and save to work with your real data.",
                ));
                ui.add_space(6.0);
            }
            hubspot_ui(ui, model, draft, problems, &mut intents);
            ui.add_space(12.0);
            locations_ui(ui, model, draft, problems, &mut actions);
            ui.add_space(12.0);
            schedule_ui(ui, lang, draft, problems);
            ui.add_space(12.0);
            appearance_ui(ui, model, &mut intents);
            ui.add_space(12.0);
            intents.extend(super::privacy::privacy_ui(ui, model, &mut view.privacy));
            ui.add_space(8.0);
            if let Some(path) = &model.settings_path {
                ui.weak(format!(
                    "{} {}",
                    lang.pick("Einstellungsdatei:", "Settings file:"),
                    path.display()
                ));
            }
            if let Some(info) = &model.info {
                ui.weak(format!("Ledger: {}", info.ledger_path.display()));
            }
        });
    for action in actions {
        match action {
            FormAction::Discard => {
                view.reset();
                return intents;
            }
            FormAction::Save => match draft.validate(&model.settings_file, lang) {
                Ok(settings) => {
                    view.problems = Vec::new();
                    view.checked = None;
                    intents.push(Intent::SaveSettings(Box::new(SettingsChange {
                        settings,
                        secrets: draft.secret_changes(),
                    })));
                }
                Err(problems) => {
                    view.problems = problems;
                    view.checked = Some(draft.clone());
                }
            },
            FormAction::Test(index) => match draft.validate(&model.settings_file, lang) {
                Ok(settings) => {
                    if let (Some(location), Some(entered)) =
                        (settings.locations.get(index), draft.locations.get(index))
                    {
                        intents.push(Intent::TestConnection(Box::new(ConnectionTest {
                            location: location.clone(),
                            password: entered.password.typed(),
                            api_key: entered.api_key.typed(),
                        })));
                    }
                    view.problems = Vec::new();
                    view.checked = None;
                }
                Err(problems) => {
                    view.problems = problems;
                    view.checked = Some(draft.clone());
                }
            },
        }
    }
    intents
}

/// „Speichern“, „Verwerfen“ and what the last save did.
fn save_bar_ui(
    ui: &mut egui::Ui,
    model: &Model,
    draft: &SettingsDraft,
    problems: &[Problem],
    actions: &mut Vec<FormAction>,
) {
    let lang = model.lang();
    let unchanged = *draft == SettingsDraft::from_settings(&model.settings_file);
    ui.horizontal(|ui| {
        let can_save = model.home && !model.saving && !model.running && !unchanged;
        let save = ui
            .add_enabled(
                can_save,
                egui::Button::new(egui::RichText::new(lang.pick("Speichern", "Save")).strong()),
            )
            .on_hover_text(lang.pick(
                "Schreibt die Einstellungsdatei und die Zugangsdaten in den Anmeldeinformationsspeicher",
                "Writes the settings file, and the credentials to the credential store",
            ));
        if save.clicked() {
            actions.push(FormAction::Save);
        }
        if ui
            .add_enabled(
                !unchanged && !model.saving,
                egui::Button::new(lang.pick("Änderungen verwerfen", "Discard changes")),
            )
            .clicked()
        {
            actions.push(FormAction::Discard);
        }
        if model.saving {
            ui.spinner();
            ui.label(lang.pick("Wird gespeichert …", "Saving …"));
        } else if !problems.is_empty() {
            ui.colored_label(
                ui.visuals().error_fg_color,
                lang.pick(
                    "Nicht gespeichert: bitte die markierten Felder korrigieren.",
                    "Not saved: please correct the marked fields.",
                ),
            );
        } else if model.running && !unchanged {
            ui.weak(lang.pick(
                "Speichern ist nach der laufenden Synchronisation möglich.",
                "Saving is possible after the running sync.",
            ));
        } else if !model.home {
            ui.weak(lang.pick(
                "Einstellungen können in dieser Sitzung nicht gespeichert werden.",
                "Settings cannot be saved in this session.",
            ));
        } else if unchanged {
            ui.weak(lang.pick("Keine ungespeicherten Änderungen.", "No unsaved changes."));
        } else {
            ui.label(lang.pick("Ungespeicherte Änderungen.", "Unsaved changes."));
        }
    });
}

/// The messages of the problems with this key, in the chosen language.
fn problem_text(problems: &[Problem], key: &str, lang: Lang) -> Option<String> {
    let texts: Vec<&str> = problems
        .iter()
        .filter(|p| p.key == key)
        .map(|p| match lang {
            Lang::De => p.de.as_str(),
            Lang::En => p.en.as_str(),
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("; "))
}

/// A row of a form grid: label, text field, and the field's problem.
fn text_row(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut String,
    hint: &str,
    problem: Option<String>,
) {
    let label = ui.label(label);
    // Sized, not desired: a grid cell would keep it as narrow as last frame.
    ui.add_sized(
        [FIELD_WIDTH, FIELD_HEIGHT],
        egui::TextEdit::singleline(value).hint_text(hint),
    )
    .labelled_by(label.id);
    problem_cell_ui(ui, problem);
    ui.end_row();
}

/// The third column of a form row: the problem in the error colour.
fn problem_cell_ui(ui: &mut egui::Ui, problem: Option<String>) {
    match problem {
        Some(text) => {
            ui.colored_label(ui.visuals().error_fg_color, text);
        }
        None => {
            ui.label("");
        }
    }
}

/// A secret's row: „gespeichert“ with „Ersetzen“ / „Löschen“, or a masked
/// field. A stored value is never shown.
fn secret_row(
    ui: &mut egui::Ui,
    lang: Lang,
    label: &str,
    field: &mut SecretField,
    state: Option<SecretState>,
    env_vars: &[String],
) {
    let label = ui.label(label);
    let state = state.unwrap_or(SecretState::Missing);
    let stored = matches!(state, SecretState::Stored | SecretState::Environment);
    let mut note = None;
    if field.delete {
        ui.horizontal(|ui| {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                lang.pick("wird beim Speichern gelöscht", "deleted when saving"),
            );
            if ui.button(lang.pick("Rückgängig", "Undo")).clicked() {
                field.delete = false;
            }
        });
    } else if stored && !field.replace {
        ui.horizontal(|ui| {
            let text = match state {
                SecretState::Environment => {
                    lang.pick("aus Umgebungsvariable", "from environment variable")
                }
                _ => lang.pick("gespeichert", "stored"),
            };
            let shown = ui.colored_label(
                outcome_color(ui, Some(crate::ledger::RunOutcome::Success)),
                text,
            );
            if state == SecretState::Environment {
                shown.on_hover_text(env_vars.join(", "));
            }
            if ui.button(lang.pick("Ersetzen", "Replace")).clicked() {
                field.replace = true;
                field.input.clear();
            }
            if state == SecretState::Stored && ui.button(lang.pick("Löschen", "Delete")).clicked()
            {
                field.delete = true;
                field.input.clear();
            }
        });
    } else {
        ui.horizontal(|ui| {
            let width = if field.replace {
                FIELD_WIDTH - 90.0
            } else {
                FIELD_WIDTH
            };
            ui.add_sized(
                [width, FIELD_HEIGHT],
                egui::TextEdit::singleline(&mut field.input)
                    .password(true)
                    .hint_text(if stored {
                        lang.pick("neuer Wert", "new value")
                    } else {
                        lang.pick("nicht gespeichert", "not stored")
                    }),
            )
            .labelled_by(label.id);
            if field.replace && ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                field.replace = false;
                field.input.clear();
            }
        });
        if !stored && field.input.trim().is_empty() {
            note = Some(
                lang.pick(
                    "fehlt – ohne bleibt der Demo-Modus aktiv",
                    "missing – without it the demo mode stays on",
                )
                .to_owned(),
            );
        }
    }
    match note {
        Some(text) => {
            ui.weak(text);
        }
        None => {
            ui.label("");
        }
    }
    ui.end_row();
}

/// HubSpot: token, tier, API version, pipeline, appointments, „Einrichtung prüfen“.
fn hubspot_ui(
    ui: &mut egui::Ui,
    model: &Model,
    draft: &mut SettingsDraft,
    problems: &[Problem],
    intents: &mut Vec<Intent>,
) {
    let lang = model.lang();
    ui.strong("HubSpot");
    egui::Grid::new("settings_hubspot")
        .num_columns(3)
        .min_col_width(COLUMN_WIDTH)
        .spacing([16.0, 8.0])
        .show(ui, |ui| {
            secret_row(
                ui,
                lang,
                lang.pick("Zugriffstoken", "Access token"),
                &mut draft.token,
                model.secret_states.get(&SecretKey::HubSpotToken).copied(),
                &SecretKey::HubSpotToken.env_vars(),
            );
            let label = ui.label(lang.pick("HubSpot-Abo", "HubSpot tier"));
            egui::ComboBox::from_id_salt("settings_tier")
                .selected_text(tier_text(lang, draft.tier))
                .width(200.0)
                .show_ui(ui, |ui| {
                    for tier in [
                        Tier::Free,
                        Tier::Starter,
                        Tier::Professional,
                        Tier::Enterprise,
                        Tier::Increase,
                    ] {
                        ui.selectable_value(&mut draft.tier, tier, tier_text(lang, tier));
                    }
                })
                .response
                .labelled_by(label.id);
            ui.weak(lang.pick(
                "bestimmt, wie viele Anfragen HubSpot erlaubt",
                "decides how many requests HubSpot allows",
            ));
            ui.end_row();

            ui.label(lang.pick("API-Version", "API version"));
            ui.horizontal(|ui| {
                ui.radio_value(&mut draft.api_v3, false, "2026-03");
                ui.radio_value(
                    &mut draft.api_v3,
                    true,
                    lang.pick("v3 (älter)", "v3 (legacy)"),
                );
            });
            problem_cell_ui(ui, problem_text(problems, "hubspot.api_version", lang));
            ui.end_row();

            text_row(
                ui,
                lang.pick("Deal-Pipeline", "Deal pipeline"),
                &mut draft.pipeline,
                crate::settings::DEFAULT_PIPELINE,
                problem_text(problems, "hubspot.pipeline", lang),
            );

            ui.label(lang.pick(
                "Termine als HubSpot-Termine",
                "Appointments as HubSpot appointments",
            ));
            ui.horizontal(|ui| {
                ui.radio_value(
                    &mut draft.appointments,
                    AppointmentsMode::Auto,
                    lang.pick("automatisch", "automatic"),
                );
                ui.radio_value(
                    &mut draft.appointments,
                    AppointmentsMode::On,
                    lang.pick("an", "on"),
                );
                ui.radio_value(
                    &mut draft.appointments,
                    AppointmentsMode::Off,
                    lang.pick("aus", "off"),
                );
            });
            ui.weak(detected_text(lang, model.appointments_detected));
            ui.end_row();
        });
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let enabled = model.info.is_some() && !model.provisioning;
        if ui
            .add_enabled(
                enabled,
                egui::Button::new(lang.pick("Einrichtung prüfen", "Check setup")),
            )
            .on_hover_text(lang.pick(
                "Legt in HubSpot die Eigenschaften der Synchronisation an (falls nötig) und prüft Pipeline und Phasen – mit den gespeicherten Einstellungen",
                "Creates the sync's properties in HubSpot (if needed) and checks pipeline and stages – with the saved settings",
            ))
            .clicked()
        {
            intents.push(Intent::Provision);
        }
        if model.provisioning {
            ui.spinner();
            ui.label(lang.pick("HubSpot wird geprüft …", "Checking HubSpot …"));
        }
    });
    match &model.provision {
        Some(Ok(report)) => provision_report_ui(ui, lang, report),
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, lang.half(message));
        }
        None => {}
    }
}

/// What „Einrichtung prüfen“ created and found.
fn provision_report_ui(ui: &mut egui::Ui, lang: Lang, report: &ProvisionReport) {
    let good = outcome_color(ui, Some(crate::ledger::RunOutcome::Success));
    let created = report.created_properties.len() + report.created_groups.len();
    let found = report.found_properties.len() + report.found_groups.len();
    ui.colored_label(
        good,
        format!(
            "{} {} {}, {} {}.",
            lang.pick("Einrichtung in Ordnung:", "Setup is fine:"),
            created,
            lang.pick(
                "Eigenschaften/Gruppen angelegt",
                "properties/groups created"
            ),
            found,
            lang.pick("vorhanden", "already there"),
        ),
    );
    if !report.created_properties.is_empty() {
        let names: Vec<&str> = report
            .created_properties
            .iter()
            .map(|(_, name)| name.as_str())
            .collect();
        ui.label(format!(
            "{} {}",
            lang.pick("Neu angelegt:", "Created:"),
            names.join(", ")
        ));
    }
    ui.label(format!(
        "{} {} · {} {} · {}",
        lang.pick("Pipeline-ID", "Pipeline id"),
        report.pipeline_id,
        report.stage_ids.len(),
        lang.pick("Phasen gefunden", "stages found"),
        detected_text(lang, Some(report.appointments)),
    ));
    for (label, pipeline) in &report.other_pipelines {
        ui.label(format!(
            "{} „{label}“ ({}): {} {} {}",
            lang.pick("Pipeline", "Pipeline"),
            lang.pick("Zuordnung › Standorte", "Mapping › Locations"),
            lang.pick("ID", "id"),
            pipeline.id,
            lang.pick("gefunden", "found"),
        ));
    }
}

/// The appointments object as last detected.
fn detected_text(lang: Lang, status: Option<AppointmentsStatus>) -> &'static str {
    match status {
        Some(AppointmentsStatus::Enabled) => lang.pick(
            "erkannt: im Portal aktiviert, Termine werden übertragen",
            "detected: activated in the portal, appointments are written",
        ),
        Some(AppointmentsStatus::SkippedNotEnabled) => lang.pick(
            "erkannt: im Portal nicht aktiviert, Termine werden übersprungen",
            "detected: not activated in the portal, appointments are skipped",
        ),
        Some(AppointmentsStatus::SkippedOff) => lang.pick(
            "ausgeschaltet, Termine werden nicht übertragen",
            "switched off, appointments are not written",
        ),
        None => lang.pick("noch nicht geprüft", "not checked yet"),
    }
}

/// A tier in words.
fn tier_text(lang: Lang, tier: Tier) -> &'static str {
    match tier {
        Tier::Free => lang.pick("Free (kostenlos)", "Free"),
        Tier::Starter => "Starter",
        Tier::Professional => "Professional",
        Tier::Enterprise => "Enterprise",
        Tier::Increase => lang.pick("mit API-Erweiterung", "with API limit increase"),
    }
}

/// The locations: connection fields, secrets, „Verbindung testen“.
fn locations_ui(
    ui: &mut egui::Ui,
    model: &Model,
    draft: &mut SettingsDraft,
    problems: &[Problem],
    actions: &mut Vec<FormAction>,
) {
    let lang = model.lang();
    ui.strong(lang.pick("Standorte (Ivoris)", "Locations (Ivoris)"));
    if draft.locations.is_empty() {
        ui.weak(lang.pick(
            "Noch kein Standort eingerichtet.",
            "No location configured yet.",
        ));
    }
    let mut remove = None;
    for (index, location) in draft.locations.iter_mut().enumerate() {
        let at = |field: &str| format!("location[{}].{field}", index + 1);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let title = if location.name.trim().is_empty() {
                    format!("{} {}", lang.pick("Standort", "Location"), index + 1)
                } else {
                    location.name.clone()
                };
                ui.strong(title);
                if ui
                    .add_enabled(
                        !matches!(model.testing.get(location.key.trim()), Some(None)),
                        egui::Button::new(lang.pick("Verbindung testen", "Test connection")),
                    )
                    .on_hover_text(lang.pick(
                        "Fragt Ivoris: Ping, Version und eine Seite Patienten",
                        "Asks Ivoris: ping, version and one page of patients",
                    ))
                    .clicked()
                {
                    actions.push(FormAction::Test(index));
                }
                if ui
                    .button(lang.pick("Standort entfernen", "Remove location"))
                    .clicked()
                {
                    remove = Some(index);
                }
            });
            egui::Grid::new(("settings_location", index))
                .num_columns(3)
                .min_col_width(COLUMN_WIDTH)
                .spacing([16.0, 8.0])
                .show(ui, |ui| {
                    text_row(
                        ui,
                        lang.pick("Schlüssel", "Key"),
                        &mut location.key,
                        "z. B. magdeburg-nord",
                        problem_text(problems, &at("key"), lang),
                    );
                    text_row(
                        ui,
                        lang.pick("Name", "Name"),
                        &mut location.name,
                        lang.pick(
                            "wie ihn das Team kennt (Zuordnung › Standorte kann ihn ersetzen)",
                            "as the team knows it (Mapping › Locations may replace it)",
                        ),
                        problem_text(problems, &at("name"), lang),
                    );
                    text_row(
                        ui,
                        lang.pick("Ivoris-Adresse", "Ivoris URL"),
                        &mut location.ivoris_url,
                        "https://…/webservice/api",
                        problem_text(problems, &at("ivoris_url"), lang),
                    );
                    text_row(
                        ui,
                        lang.pick("Ivoris-Benutzer", "Ivoris user"),
                        &mut location.ivoris_user,
                        "",
                        problem_text(problems, &at("ivoris_user"), lang),
                    );
                    let key = location.key.trim().to_owned();
                    let password_key = SecretKey::IvorisPassword(key.clone());
                    secret_row(
                        ui,
                        lang,
                        lang.pick("Ivoris-Passwort", "Ivoris password"),
                        &mut location.password,
                        model.secret_states.get(&password_key).copied(),
                        &password_key.env_vars(),
                    );
                    let api_key_key = SecretKey::IvorisApiKey(key);
                    secret_row(
                        ui,
                        lang,
                        lang.pick("Ivoris-API-Schlüssel", "Ivoris API key"),
                        &mut location.api_key,
                        model.secret_states.get(&api_key_key).copied(),
                        &api_key_key.env_vars(),
                    );
                });
            match model.testing.get(location.key.trim()) {
                Some(None) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(
                            lang.pick("Verbindung wird getestet …", "Testing the connection …"),
                        );
                    });
                }
                Some(Some(report)) => connection_report_ui(ui, lang, report),
                None => {}
            }
        });
        ui.add_space(4.0);
    }
    if let Some(index) = remove {
        draft.locations.remove(index);
    }
    if ui
        .button(lang.pick("Standort hinzufügen", "Add location"))
        .clicked()
    {
        draft.locations.push(LocationDraft {
            ivoris_user: String::new(),
            ..LocationDraft::default()
        });
    }
}

/// The steps of a connection test: what worked, what failed and what to do.
fn connection_report_ui(ui: &mut egui::Ui, lang: Lang, report: &ConnectionReport) {
    let good = outcome_color(ui, Some(crate::ledger::RunOutcome::Success));
    let bad = ui.visuals().error_fg_color;
    for step in &report.steps {
        let what = match step.check {
            ConnectionCheck::Credentials => lang.pick("Zugangsdaten", "Credentials"),
            ConnectionCheck::Ping => lang.pick("Erreichbarkeit", "Reachable"),
            ConnectionCheck::Version => lang.pick("Version", "Version"),
            ConnectionCheck::SamplePage => lang.pick("Beispielseite", "Sample page"),
        };
        ui.horizontal_wrapped(|ui| match &step.result {
            Ok(text) => {
                ui.colored_label(good, format!("{what}: OK"));
                ui.label(lang.half(text));
            }
            Err(text) => {
                ui.colored_label(bad, format!("{what}: {}", lang.pick("Fehler", "failed")));
                ui.label(lang.half(text));
            }
        });
    }
    if report.ok() {
        ui.colored_label(
            good,
            lang.pick("Die Verbindung funktioniert.", "The connection works."),
        );
    }
}

/// Automatic sync every N minutes.
fn schedule_ui(ui: &mut egui::Ui, lang: Lang, draft: &mut SettingsDraft, problems: &[Problem]) {
    ui.strong(lang.pick("Zeitplan", "Schedule"));
    egui::Grid::new("settings_schedule")
        .num_columns(3)
        .min_col_width(COLUMN_WIDTH)
        .spacing([16.0, 8.0])
        .show(ui, |ui| {
            ui.checkbox(
                &mut draft.schedule_on,
                lang.pick("Automatisch synchronisieren", "Sync automatically"),
            );
            ui.add_enabled_ui(draft.schedule_on, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label(lang.pick("alle", "every"));
                    ui.add(
                        egui::TextEdit::singleline(&mut draft.schedule_minutes).desired_width(60.0),
                    )
                    .labelled_by(label.id);
                    ui.label(lang.pick(
                        "Minuten (solange die App geöffnet ist)",
                        "minutes (while the app is open)",
                    ));
                });
            });
            problem_cell_ui(ui, problem_text(problems, "sync.schedule_minutes", lang));
            ui.end_row();
        });
}

/// Language and theme, applied at once.
fn appearance_ui(ui: &mut egui::Ui, model: &Model, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    ui.strong(lang.pick("Darstellung", "Appearance"));
    egui::Grid::new("settings_appearance")
        .num_columns(2)
        .min_col_width(COLUMN_WIDTH)
        .spacing([16.0, 8.0])
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
}

/// Secret states by key, as the engine reported them.
pub type SecretStates = HashMap<SecretKey, SecretState>;

#[cfg(test)]
mod tests {
    use super::*;

    fn location(url: &str) -> LocationDraft {
        LocationDraft {
            key: "nord".into(),
            name: "Praxis Nord".into(),
            ivoris_url: url.into(),
            ivoris_user: "sync".into(),
            ..LocationDraft::default()
        }
    }

    #[test]
    fn an_invalid_ivoris_url_is_reported_at_its_field() {
        let mut draft = SettingsDraft::from_settings(&Settings::default());
        draft.locations.push(location("kein-url"));
        let problems = draft
            .validate(&Settings::default(), Lang::De)
            .expect_err("refused");
        let text = problem_text(&problems, "location[1].ivoris_url", Lang::De).expect("at the url");
        assert!(text.contains("keine http(s)-Adresse"), "{text}");
    }

    #[test]
    fn a_valid_draft_gives_settings_and_secrets_by_location_key() {
        let mut draft = SettingsDraft::from_settings(&Settings::default());
        draft
            .locations
            .push(location("https://ivoris.example/webservice/api/"));
        draft.locations[0].password.input = "pw".into();
        draft.token.delete = true;
        draft.schedule_on = true;
        draft.schedule_minutes = "30".into();
        let settings = draft
            .validate(&Settings::default(), Lang::En)
            .expect("valid");
        assert_eq!(
            settings.locations[0].ivoris_url,
            "https://ivoris.example/webservice/api"
        );
        assert_eq!(settings.sync.schedule_minutes, Some(30));
        assert_eq!(settings.language, Language::En);
        let changes = draft.secret_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0], (SecretKey::HubSpotToken, None));
        assert_eq!(changes[1].0, SecretKey::IvorisPassword("nord".into()));
    }

    #[test]
    fn schedule_minutes_must_be_a_number_in_range() {
        let mut draft = SettingsDraft::from_settings(&Settings::default());
        draft.schedule_on = true;
        for (typed, expected) in [("zehn", "ganze Zahl"), ("1", "zwischen 5 und 1440")] {
            draft.schedule_minutes = typed.into();
            let problems = draft
                .validate(&Settings::default(), Lang::De)
                .expect_err("refused");
            let text = problem_text(&problems, "sync.schedule_minutes", Lang::De)
                .expect("at the schedule");
            assert!(text.contains(expected), "{typed}: {text}");
        }
    }
}
