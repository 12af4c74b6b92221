//! Import: the historical migration from Ivoris CSV exports (DESIGN.md §8),
//! step by step — kind and location, a file (dialog, typed path or dropped
//! on the window), its preview with each column's field (unknown columns
//! get a choice, which opens the file again with it), „Prüfen“,
//! „Probelauf“ in HubSpot terms, „Importieren“ with progress and
//! „Abbrechen“, and the history of every import.
//!
//! Like the mapping editor it keeps what the engine told it in its own
//! model ([`ImportModel`]) and turns its intents into engine commands in
//! [`apply`]; the file and the ledger are only ever read on the engine
//! thread (`engine::import_ops`).

use std::path::PathBuf;

use egui_extras::{Column, TableBuilder};

use crate::engine::handle::Command;
use crate::engine::import::{ImportOptions, ImportOutcome, ImportProgress, ImportSummary};
use crate::engine::import_ops::{ImportCommand, ImportEvent};
use crate::import::{
    CheckReport, ColumnChoices, ImportKind, ImportRequest, ImportSession, Source, Target,
};
use crate::ledger::OutboxKind;
use crate::ledger::imports::ImportRecord;

use super::file_dialog::Pick;
use super::i18n::Lang;
use super::log::local_time;
use super::state::{Intent, Model};

/// Problems listed under the check; the rest are counted.
const LISTED_PROBLEMS: usize = 200;

/// What the engine told the Import view, and what is chosen.
#[derive(Debug, Clone)]
pub struct ImportModel {
    /// What the file holds.
    pub kind: ImportKind,
    /// The location whose Ivoris exported it; `None` until chosen.
    pub location: Option<String>,
    /// The file chosen.
    pub path: Option<PathBuf>,
    /// Columns assigned by hand.
    pub choices: ColumnChoices,
    /// Whether invalid rows are left out (quarantined) on import.
    pub drop_invalid: bool,
    /// The opened file: detection, assignment, preview.
    pub session: Option<ImportSession>,
    /// The file is being opened.
    pub opening: bool,
    /// The latest check of the opened file.
    pub check: Option<CheckReport>,
    /// A check runs.
    pub checking: bool,
    /// The latest dry run of the opened file.
    pub summary: Option<ImportSummary>,
    /// A dry run runs.
    pub dry_running: bool,
    /// An import runs.
    pub importing: bool,
    /// „Abbrechen“ was pressed for the running import.
    pub cancelling: bool,
    /// The running import's latest progress.
    pub progress: Option<ImportProgress>,
    /// The latest import's result.
    pub outcome: Option<ImportOutcome>,
    /// Why the latest step failed, German / English.
    pub error: Option<String>,
    /// Every import, newest first, once read.
    pub history: Option<Vec<ImportRecord>>,
}

impl Default for ImportModel {
    fn default() -> Self {
        ImportModel {
            kind: ImportKind::Patients,
            location: None,
            path: None,
            choices: ColumnChoices::default(),
            drop_invalid: false,
            session: None,
            opening: false,
            check: None,
            checking: false,
            summary: None,
            dry_running: false,
            importing: false,
            cancelling: false,
            progress: None,
            outcome: None,
            error: None,
            history: None,
        }
    }
}

impl ImportModel {
    /// Whether a step is on its way (the buttons wait for it).
    pub fn busy(&self) -> bool {
        self.opening || self.checking || self.dry_running || self.importing
    }

    /// The opened session, when its assignment is complete.
    fn ready(&self) -> Option<&ImportSession> {
        self.session
            .as_ref()
            .filter(|s| s.preview.column_problems.is_empty())
    }

    /// Whether a session answers what is chosen now (answers may overtake
    /// each other).
    fn wanted(&self, session: &ImportSession) -> bool {
        self.asked(&session.request)
    }

    /// Whether `request` is what is chosen now.
    fn asked(&self, request: &ImportRequest) -> bool {
        Some(&request.path) == self.path.as_ref()
            && request.kind == self.kind
            && Some(&request.location) == self.location.as_ref()
            && request.choices == self.choices
    }
}

/// What the Import view wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportIntent {
    /// Read the history.
    LoadHistory,
    /// Choose what the file holds.
    SetKind(ImportKind),
    /// Choose the location.
    SetLocation(String),
    /// Open a file (dialog, typed path, dropped on the window).
    Open(PathBuf),
    /// Assign an unknown column.
    Assign {
        /// The column's header as in the file.
        header: String,
        /// Its field or „ignorieren“.
        target: Target,
    },
    /// „Ungültige Zeilen auslassen“.
    SetDropInvalid(bool),
    /// „Prüfen“.
    Check,
    /// „Probelauf“.
    DryRun,
    /// „Importieren“.
    Run,
    /// „Abbrechen“ of the running import.
    Cancel,
}

/// Changes the model for an intent and says what the engine is to do.
pub fn apply(model: &mut ImportModel, intent: ImportIntent) -> Vec<Command> {
    match intent {
        ImportIntent::LoadHistory => vec![Command::Import(ImportCommand::History)],
        ImportIntent::SetKind(kind) => {
            if kind == model.kind {
                return Vec::new();
            }
            model.kind = kind;
            model.choices = ColumnChoices::default();
            reopen(model)
        }
        ImportIntent::SetLocation(location) => {
            if model.location.as_ref() == Some(&location) {
                return Vec::new();
            }
            model.location = Some(location);
            reopen(model)
        }
        ImportIntent::Open(path) => {
            model.path = Some(path);
            model.choices = ColumnChoices::default();
            reopen(model)
        }
        ImportIntent::Assign { header, target } => {
            model.choices.0.insert(header, target);
            reopen(model)
        }
        ImportIntent::SetDropInvalid(drop) => {
            model.drop_invalid = drop;
            Vec::new()
        }
        ImportIntent::Check => match model.ready() {
            Some(session) if !model.busy() => {
                let session = Box::new(session.clone());
                model.checking = true;
                model.error = None;
                vec![Command::Import(ImportCommand::Check(session))]
            }
            _ => Vec::new(),
        },
        ImportIntent::DryRun => match model.ready() {
            Some(session) if !model.busy() => {
                let session = Box::new(session.clone());
                model.dry_running = true;
                model.summary = None;
                model.error = None;
                vec![Command::Import(ImportCommand::DryRun(session))]
            }
            _ => Vec::new(),
        },
        ImportIntent::Run => match model.ready() {
            Some(session) if !model.busy() => {
                let session = Box::new(session.clone());
                model.importing = true;
                model.cancelling = false;
                model.progress = None;
                model.outcome = None;
                model.error = None;
                let options = ImportOptions {
                    drop_invalid: model.drop_invalid,
                };
                vec![Command::Import(ImportCommand::Run { session, options })]
            }
            _ => Vec::new(),
        },
        ImportIntent::Cancel => {
            if model.importing {
                model.cancelling = true;
                vec![Command::CancelImport]
            } else {
                Vec::new()
            }
        }
    }
}

/// Opens the chosen file again with what is chosen now; what was found
/// for the previous choice no longer holds.
fn reopen(model: &mut ImportModel) -> Vec<Command> {
    model.session = None;
    model.check = None;
    model.summary = None;
    model.error = None;
    let (Some(path), Some(location)) = (model.path.clone(), model.location.clone()) else {
        return Vec::new();
    };
    model.opening = true;
    vec![Command::Import(ImportCommand::Open(Box::new(
        ImportRequest {
            path,
            kind: model.kind,
            location,
            choices: model.choices.clone(),
        },
    )))]
}

/// Takes an engine answer; returns what to ask next (the history and the
/// overview after an import).
pub fn on_event(model: &mut ImportModel, event: ImportEvent) -> Vec<Command> {
    match event {
        ImportEvent::History(records) => model.history = Some(records),
        ImportEvent::Opened(session) => {
            if model.wanted(&session) {
                model.opening = false;
                model.session = Some(*session);
            }
        }
        // A check or dry run of a choice changed meanwhile no longer holds.
        ImportEvent::Checked(answer) => {
            model.checking = false;
            let (request, report) = *answer;
            if model.asked(&request) {
                model.check = Some(report);
            }
        }
        ImportEvent::Summary(answer) => {
            model.dry_running = false;
            let (request, summary) = *answer;
            if model.asked(&request) {
                model.check = Some(summary.check.clone());
                model.summary = Some(summary);
            }
        }
        ImportEvent::Progress(progress) => model.progress = Some(progress),
        ImportEvent::Finished(outcome) => {
            model.importing = false;
            model.cancelling = false;
            model.outcome = Some(*outcome);
            return vec![Command::Import(ImportCommand::History), Command::Refresh];
        }
        ImportEvent::Failed { message, check } => {
            model.opening = false;
            model.checking = false;
            model.dry_running = false;
            model.importing = false;
            model.cancelling = false;
            model.error = Some(message);
            if let Some(report) = check {
                model.check = Some(*report);
            }
        }
        ImportEvent::Busy => {
            model.error =
                Some("Ein Import läuft bereits / An import is already running".to_owned());
        }
    }
    Vec::new()
}

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct ImportView {
    /// The path as typed (or as chosen / dropped).
    pub path: String,
}

/// Draws the Import view.
pub fn import_ui(ui: &mut egui::Ui, model: &Model, view: &mut ImportView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    let import = &model.import;
    ui.heading(lang.pick("Import", "Import"));
    ui.label(lang.pick(
        "Historische Übernahme aus CSV-Exporten von Ivoris: Datei wählen, prüfen, Probelauf, importieren. Die nächste Synchronisation sendet die Daten an HubSpot.",
        "Historical migration from Ivoris CSV exports: choose a file, check it, dry run, import. The next sync sends the data to HubSpot.",
    ));
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .id_salt("import_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            choice_ui(ui, model, view, &mut intents);
            if let Some(error) = &import.error {
                ui.colored_label(ui.visuals().error_fg_color, lang.half(error));
            }
            if import.opening {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(lang.pick("Datei wird gelesen …", "Reading the file …"));
                });
            }
            if let Some(session) = &import.session {
                ui.separator();
                preview_ui(ui, lang, session, &mut intents);
                ui.separator();
                actions_ui(ui, lang, import, &mut intents);
            }
            if let Some(check) = &import.check {
                ui.separator();
                check_ui(ui, lang, check);
            }
            if let Some(summary) = &import.summary {
                ui.separator();
                summary_ui(ui, lang, summary);
            }
            if let Some(outcome) = &import.outcome {
                ui.separator();
                outcome_ui(ui, lang, outcome);
            }
            ui.separator();
            history_ui(ui, lang, import.history.as_deref());
        });
    intents
}

/// Kind, location and file.
fn choice_ui(ui: &mut egui::Ui, model: &Model, view: &mut ImportView, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    let import = &model.import;
    let locations: Vec<(String, String)> = model
        .info
        .as_ref()
        .map(|info| {
            info.settings
                .locations
                .iter()
                .map(|l| (l.key.clone(), l.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    if import.location.is_none()
        && let Some((key, _)) = locations.first()
    {
        intents.push(import_intent(ImportIntent::SetLocation(key.clone())));
    }
    let enabled = !import.busy();
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Art:", "Kind:"));
        let mut kind = import.kind;
        ui.add_enabled_ui(enabled, |ui| {
            egui::ComboBox::from_id_salt("import_kind")
                .selected_text(kind_label(lang, kind))
                .show_ui(ui, |ui| {
                    for choice in ImportKind::ALL {
                        ui.selectable_value(&mut kind, choice, kind_label(lang, choice));
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if kind != import.kind {
            intents.push(import_intent(ImportIntent::SetKind(kind)));
        }
        ui.add_space(12.0);
        let label = ui.label(lang.pick("Standort:", "Location:"));
        let mut location = import.location.clone().unwrap_or_default();
        let shown = locations
            .iter()
            .find(|(key, _)| *key == location)
            .map_or(location.clone(), |(_, name)| name.clone());
        ui.add_enabled_ui(enabled, |ui| {
            egui::ComboBox::from_id_salt("import_location")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (key, name) in &locations {
                        ui.selectable_value(&mut location, key.clone(), name);
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if !location.is_empty() && Some(&location) != import.location.as_ref() {
            intents.push(import_intent(ImportIntent::SetLocation(location)));
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Datei:", "File:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.path)
                .hint_text(lang.pick("Pfad der CSV-Datei", "path of the CSV file"))
                .desired_width(360.0),
        )
        .labelled_by(label.id);
        if ui
            .add_enabled(
                enabled,
                egui::Button::new(lang.pick("Datei wählen …", "Choose file …")),
            )
            .on_hover_text(lang.pick(
                "Eine Datei kann auch ins Fenster gezogen werden",
                "A file can also be dropped on the window",
            ))
            .clicked()
        {
            intents.push(Intent::PickFile(Pick::ImportFile));
        }
        if ui
            .add_enabled(
                enabled && !view.path.trim().is_empty(),
                egui::Button::new(lang.pick("Öffnen", "Open")),
            )
            .clicked()
        {
            intents.push(import_intent(ImportIntent::Open(PathBuf::from(
                view.path.trim(),
            ))));
        }
    });
    if locations.is_empty() {
        ui.weak(lang.pick(
            "Noch kein Standort eingerichtet – zuerst in den Einstellungen anlegen.",
            "No location set up yet – add one in the settings first.",
        ));
    }
}

/// Detection, the first rows, each column's field.
fn preview_ui(ui: &mut egui::Ui, lang: Lang, session: &ImportSession, intents: &mut Vec<Intent>) {
    let preview = &session.preview;
    ui.strong(format!(
        "{} – {}",
        lang.pick("Vorschau", "Preview"),
        preview.file_name
    ));
    let notations = if preview.date_notations.is_empty() {
        "–".to_owned()
    } else {
        preview.date_notations.join(", ")
    };
    ui.label(format!(
        "{}: {} · {}: {} · {}: {} · {}: {}",
        lang.pick("Zeichensatz", "Encoding"),
        preview.encoding,
        lang.pick("Trennzeichen", "Delimiter"),
        preview.delimiter,
        lang.pick("Dezimalkomma", "Decimal comma"),
        if preview.decimal_comma {
            lang.pick("ja", "yes")
        } else {
            lang.pick("nein", "no")
        },
        lang.pick("Datumsformat", "Date notation"),
        notations,
    ));
    for problem in &preview.column_problems {
        ui.colored_label(ui.visuals().warn_fg_color, reason(lang, problem));
    }
    let kind = session.request.kind;
    let columns = &preview.assignment.columns;
    egui::ScrollArea::horizontal()
        .id_salt("import_preview_scroll")
        .show(ui, |ui| {
            let mut table = TableBuilder::new(ui)
                .id_salt("import_preview")
                .striped(true)
                .vscroll(false)
                .column(Column::auto().at_least(50.0));
            for _ in columns {
                table = table.column(Column::auto().at_least(110.0).clip(true));
            }
            table
                .column(Column::auto().at_least(200.0))
                .header(48.0, |mut header| {
                    header.col(|ui| {
                        ui.strong(lang.pick("Zeile", "Line"));
                    });
                    for column in columns {
                        header.col(|ui| {
                            ui.vertical(|ui| {
                                let label = ui.strong(&column.header);
                                column_field_ui(ui, lang, kind, column, label.id, intents);
                            });
                        });
                    }
                    header.col(|ui| {
                        ui.strong(lang.pick("Problem", "Problem"));
                    });
                })
                .body(|mut body| {
                    for row in &preview.rows {
                        body.row(20.0, |mut table_row| {
                            table_row.col(|ui| {
                                ui.label(row.line.to_string());
                            });
                            for index in 0..columns.len() {
                                table_row.col(|ui| {
                                    ui.label(row.cells.get(index).map_or("", String::as_str));
                                });
                            }
                            table_row.col(|ui| {
                                if let Some(error) = &row.error {
                                    ui.colored_label(
                                        ui.visuals().error_fg_color,
                                        reason(lang, error),
                                    );
                                }
                            });
                        });
                    }
                });
        });
}

/// A column's field: recognised ones as text, unknown or chosen ones as a
/// choice (a field of the kind or „ignorieren“).
fn column_field_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    kind: ImportKind,
    column: &crate::import::Column,
    label: egui::Id,
    intents: &mut Vec<Intent>,
) {
    let target_text = |target: Option<Target>| match target {
        None => lang.pick("Feld wählen …", "Choose field …").to_owned(),
        Some(Target::Ignore) => lang.pick("ignorieren", "ignore").to_owned(),
        Some(Target::Field(field)) => field.name(),
    };
    match column.source {
        Source::Alias | Source::Remembered => {
            let text = target_text(column.target);
            let hint = if column.source == Source::Alias {
                lang.pick("am Spaltennamen erkannt", "recognised by its name")
            } else {
                lang.pick(
                    "wie beim letzten Import dieses Exports",
                    "as in the last import of this export",
                )
            };
            ui.weak(text).on_hover_text(hint);
        }
        Source::Unknown | Source::Chosen => {
            let mut chosen = column.target;
            egui::ComboBox::from_id_salt(("import_column", &column.header))
                .selected_text(target_text(chosen))
                .show_ui(ui, |ui| {
                    ui.selectable_value(
                        &mut chosen,
                        Some(Target::Ignore),
                        lang.pick("ignorieren", "ignore"),
                    );
                    for (field, _) in kind.fields() {
                        ui.selectable_value(&mut chosen, Some(Target::Field(*field)), field.name());
                    }
                })
                .response
                .labelled_by(label);
            if chosen != column.target
                && let Some(target) = chosen
            {
                intents.push(import_intent(ImportIntent::Assign {
                    header: column.header.clone(),
                    target,
                }));
            }
        }
    }
}

/// „Prüfen“, „Probelauf“, „Importieren“ and the running import's progress.
fn actions_ui(ui: &mut egui::Ui, lang: Lang, import: &ImportModel, intents: &mut Vec<Intent>) {
    let ready = import.ready().is_some() && !import.busy();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(ready, egui::Button::new(lang.pick("Prüfen", "Check")))
            .on_hover_text(lang.pick(
                "Jede Zeile lesen und Fehler zeigen; nichts wird gespeichert",
                "Read every row and show errors; nothing is stored",
            ))
            .clicked()
        {
            intents.push(import_intent(ImportIntent::Check));
        }
        let mut drop_invalid = import.drop_invalid;
        if ui
            .add_enabled(
                !import.importing,
                egui::Checkbox::new(
                    &mut drop_invalid,
                    lang.pick(
                        "Ungültige Zeilen auslassen (in Quarantäne)",
                        "Leave out invalid rows (quarantined)",
                    ),
                ),
            )
            .changed()
        {
            intents.push(import_intent(ImportIntent::SetDropInvalid(drop_invalid)));
        }
        if ui
            .add_enabled(ready, egui::Button::new(lang.pick("Probelauf", "Dry run")))
            .on_hover_text(lang.pick(
                "Zeigt, was in HubSpot neu oder geändert würde; nichts wird gespeichert oder gesendet",
                "Shows what would be new or changed in HubSpot; nothing is stored or sent",
            ))
            .clicked()
        {
            intents.push(import_intent(ImportIntent::DryRun));
        }
        if ui
            .add_enabled(ready, egui::Button::new(lang.pick("Importieren", "Import")))
            .clicked()
        {
            intents.push(import_intent(ImportIntent::Run));
        }
        if import.checking || import.dry_running {
            ui.spinner();
        }
    });
    if import.importing {
        ui.horizontal(|ui| {
            let (fraction, text) = match &import.progress {
                Some(p) => (
                    if p.total_bytes > 0 {
                        p.bytes as f32 / p.total_bytes as f32
                    } else {
                        0.0
                    },
                    format!(
                        "{} {} · {} {}",
                        lang.number(p.rows),
                        lang.pick("Zeilen", "rows"),
                        lang.number(p.rows_per_second.round() as u64),
                        lang.pick("Zeilen/s", "rows/s"),
                    ),
                ),
                None => (
                    0.0,
                    lang.pick("Import beginnt …", "Import starting …")
                        .to_owned(),
                ),
            };
            ui.add(
                egui::ProgressBar::new(fraction)
                    .text(text)
                    .desired_width(420.0),
            );
            if ui
                .add_enabled(
                    !import.cancelling,
                    egui::Button::new(lang.pick("Abbrechen", "Cancel")),
                )
                .clicked()
            {
                intents.push(import_intent(ImportIntent::Cancel));
            }
        });
    }
}

/// The check's counts and problems.
fn check_ui(ui: &mut egui::Ui, lang: Lang, check: &CheckReport) {
    ui.strong(lang.pick("Prüfung", "Check"));
    ui.label(format!(
        "{} {} · {} {} · {} {}",
        lang.number(check.rows_read),
        lang.pick("Zeilen gelesen", "rows read"),
        lang.number(check.rows_valid),
        lang.pick("gültig", "valid"),
        lang.number(check.rows_invalid),
        lang.pick("ungültig", "invalid"),
    ));
    if check.warnings_total > 0 {
        ui.weak(format!(
            "{} {}",
            lang.number(check.warnings_total),
            lang.pick(
                "Zellen repariert (z. B. von Excel verändert)",
                "cells repaired (e.g. changed by Excel)"
            ),
        ));
    }
    let problems: Vec<_> = check
        .column_problems
        .iter()
        .chain(&check.errors)
        .take(LISTED_PROBLEMS)
        .collect();
    if problems.is_empty() {
        ui.label(lang.pick(
            "Alle Zeilen können importiert werden.",
            "Every row can be imported.",
        ));
        return;
    }
    egui::Grid::new("import_problems")
        .striped(true)
        .num_columns(3)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            ui.strong(lang.pick("Zeile", "Line"));
            ui.strong(lang.pick("Spalte", "Column"));
            ui.strong(lang.pick("Grund", "Reason"));
            ui.end_row();
            for problem in problems {
                ui.label(problem.line.to_string());
                ui.label(problem.column.as_deref().unwrap_or("–"));
                ui.label(reason(lang, problem));
                ui.end_row();
            }
        });
    let listed = (check.column_problems.len() + check.errors.len()).min(LISTED_PROBLEMS) as u64;
    let total = check.column_problems.len() as u64 + check.rows_invalid;
    if total > listed {
        ui.weak(format!(
            "… {} {}",
            lang.number(total - listed),
            lang.pick("weitere", "more")
        ));
    }
}

/// The dry run in HubSpot terms.
fn summary_ui(ui: &mut egui::Ui, lang: Lang, summary: &ImportSummary) {
    ui.strong(lang.pick(
        "Probelauf – nichts wurde gespeichert oder gesendet",
        "Dry run – nothing was stored or sent",
    ));
    let records = &summary.records;
    ui.label(format!(
        "Ledger: {} {} · {} {} · {} {} · {} {}",
        lang.number(records.inserted),
        lang.pick("neu", "new"),
        lang.number(records.updated),
        lang.pick("geändert", "changed"),
        lang.number(records.unchanged),
        lang.pick("unverändert", "unchanged"),
        lang.number(records.rows_left_out),
        lang.pick("ausgelassen", "left out"),
    ));
    egui::Grid::new("import_hubspot")
        .striped(true)
        .num_columns(4)
        .spacing([20.0, 4.0])
        .show(ui, |ui| {
            ui.strong("HubSpot");
            ui.strong(lang.pick("neu", "new"));
            ui.strong(lang.pick("geändert", "changed"));
            ui.strong(lang.pick("unverändert", "unchanged"));
            ui.end_row();
            for kind in OutboxKind::PHASES {
                let effect = summary.hubspot.get(&kind).copied().unwrap_or_default();
                ui.label(outbox_kind_label(lang, kind));
                ui.label(lang.number(effect.new));
                ui.label(lang.number(effect.changed));
                ui.label(lang.number(effect.unchanged));
                ui.end_row();
            }
        });
    ui.label(format!(
        "{} {} · {} {}",
        lang.number(summary.stage_changes),
        lang.pick("Deals mit anderer Phase", "deals with another stage"),
        lang.number(summary.revenue_changes),
        lang.pick("Deals mit anderem Umsatz", "deals with other revenue"),
    ));
    if summary.samples.is_empty() {
        return;
    }
    ui.collapsing(lang.pick("Beispiele", "Examples"), |ui| {
        egui::Grid::new("import_samples")
            .striped(true)
            .num_columns(4)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                ui.strong(lang.pick("Fall", "Case"));
                ui.strong(lang.pick("Eigenschaft", "Property"));
                ui.strong(lang.pick("vorher", "before"));
                ui.strong(lang.pick("nachher", "after"));
                ui.end_row();
                for sample in &summary.samples {
                    for change in &sample.changes {
                        ui.label(&sample.case_key);
                        ui.label(&change.property);
                        ui.label(&change.before);
                        ui.label(&change.after);
                        ui.end_row();
                    }
                }
            });
    });
}

/// What the latest import did.
fn outcome_ui(ui: &mut egui::Ui, lang: Lang, outcome: &ImportOutcome) {
    let counts = &outcome.counts;
    let head = if outcome.cancelled {
        lang.pick(
            "Import abgebrochen – nichts übernommen, die Datei kann erneut importiert werden",
            "Import cancelled – nothing taken, the file can be imported again",
        )
    } else {
        lang.pick("Import abgeschlossen", "Import finished")
    };
    ui.strong(head);
    ui.label(format!(
        "{} {} · {} {} · {} {} · {} {}",
        lang.number(counts.rows_read),
        lang.pick("Zeilen gelesen", "rows read"),
        lang.number(counts.rows_taken),
        lang.pick("übernommen", "taken"),
        lang.number(counts.rows_left_out),
        lang.pick("ausgelassen", "left out"),
        lang.number(counts.written()),
        lang.pick("Datensätze geschrieben", "records written"),
    ));
    if outcome.cancelled {
        return;
    }
    ui.weak(if counts.written() > 0 {
        lang.pick(
            "Die nächste Synchronisation sendet die Daten an HubSpot.",
            "The next sync sends the data to HubSpot.",
        )
    } else {
        lang.pick(
            "Nichts geändert – die Synchronisation hat daraus nichts zu senden.",
            "Nothing changed – nothing for the sync to send.",
        )
    });
}

/// Every import, newest first.
fn history_ui(ui: &mut egui::Ui, lang: Lang, history: Option<&[ImportRecord]>) {
    ui.strong(lang.pick("Bisherige Importe", "Earlier imports"));
    let Some(history) = history else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Wird gelesen …", "Reading …"));
        });
        return;
    };
    if history.is_empty() {
        ui.weak(lang.pick("Noch kein Import.", "No import yet."));
        return;
    }
    TableBuilder::new(ui)
        .id_salt("import_history")
        .striped(true)
        .vscroll(false)
        .column(Column::auto().at_least(180.0).clip(true))
        .columns(Column::auto().at_least(70.0), 6)
        .column(Column::remainder().at_least(140.0))
        .header(20.0, |mut header| {
            for title in [
                lang.pick("Datei", "File"),
                lang.pick("Art", "Kind"),
                lang.pick("Standort", "Location"),
                lang.pick("gelesen", "read"),
                lang.pick("übernommen", "taken"),
                lang.pick("ausgelassen", "left out"),
                lang.pick("wer", "who"),
                lang.pick("wann", "when"),
            ] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|mut body| {
            for record in history {
                body.row(20.0, |mut row| {
                    let kind = ImportKind::from_name(&record.kind)
                        .map_or(record.kind.clone(), |k| kind_label(lang, k).to_owned());
                    let mut file = record.file_name.clone();
                    if record.outcome == "cancelled" {
                        file.push_str(lang.pick(" (abgebrochen)", " (cancelled)"));
                    }
                    for text in [
                        file,
                        kind,
                        record.location_key.clone(),
                        lang.number(record.rows_read),
                        lang.number(record.rows_taken),
                        lang.number(record.rows_left_out),
                        record.actor.clone(),
                        local_time(&record.finished_at),
                    ] {
                        row.col(|ui| {
                            ui.label(text);
                        });
                    }
                });
            }
        });
}

/// A problem's reason in the chosen language.
fn reason(lang: Lang, problem: &crate::csvio::RowError) -> &str {
    match lang {
        Lang::De => &problem.reason_de,
        Lang::En => &problem.reason_en,
    }
}

fn import_intent(intent: ImportIntent) -> Intent {
    Intent::Import(intent)
}

/// „Patienten“, „Termine“, „Leistungen“.
fn kind_label(lang: Lang, kind: ImportKind) -> &'static str {
    match lang {
        Lang::De => kind.label_de(),
        Lang::En => match kind {
            ImportKind::Patients => "Patients",
            ImportKind::Appointments => "Appointments",
            ImportKind::Entries => "Billing lines",
        },
    }
}

/// A HubSpot kind as the practice knows it.
fn outbox_kind_label(lang: Lang, kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Merge => lang.pick("Zusammenführungen", "Merges"),
        OutboxKind::Erasure => lang.pick("Löschungen (DSGVO)", "Erasures (GDPR)"),
        OutboxKind::Contact => lang.pick("Kontakte", "Contacts"),
        OutboxKind::Deal => lang.pick("Deals", "Deals"),
        OutboxKind::Appointment => lang.pick("Termine", "Appointments"),
        OutboxKind::Association => lang.pick("Verknüpfungen", "Associations"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigning_a_column_opens_the_file_again_with_the_choice() {
        let mut model = ImportModel {
            location: Some("mag".into()),
            ..ImportModel::default()
        };
        let commands = apply(&mut model, ImportIntent::Open(PathBuf::from("p.csv")));
        assert!(model.opening);
        assert!(matches!(
            commands.as_slice(),
            [Command::Import(ImportCommand::Open(r))] if r.choices.0.is_empty()
        ));
        let commands = apply(
            &mut model,
            ImportIntent::Assign {
                header: "Hinweis".into(),
                target: Target::Ignore,
            },
        );
        assert!(matches!(
            commands.as_slice(),
            [Command::Import(ImportCommand::Open(r))]
                if r.choices.0.get("Hinweis") == Some(&Target::Ignore)
        ));
    }

    #[test]
    fn a_check_of_a_choice_changed_meanwhile_is_not_shown() {
        let mut model = ImportModel {
            location: Some("mag".into()),
            ..ImportModel::default()
        };
        let commands = apply(&mut model, ImportIntent::Open(PathBuf::from("p.csv")));
        let [Command::Import(ImportCommand::Open(asked))] = commands.as_slice() else {
            panic!("opens: {commands:?}");
        };
        let asked = (**asked).clone();
        model.checking = true;
        apply(
            &mut model,
            ImportIntent::Assign {
                header: "Hinweis".into(),
                target: Target::Ignore,
            },
        );
        let report = CheckReport {
            rows_read: 7,
            ..CheckReport::default()
        };
        on_event(
            &mut model,
            ImportEvent::Checked(Box::new((asked, report.clone()))),
        );
        assert!(!model.checking, "the engine is done with it");
        assert_eq!(model.check, None, "it checked the old assignment");

        // The answer to what is chosen now is shown.
        let now = ImportRequest {
            path: PathBuf::from("p.csv"),
            kind: model.kind,
            location: "mag".into(),
            choices: model.choices.clone(),
        };
        on_event(
            &mut model,
            ImportEvent::Checked(Box::new((now, report.clone()))),
        );
        assert_eq!(model.check, Some(report));
    }

    #[test]
    fn nothing_is_checked_before_a_file_is_open() {
        let mut model = ImportModel::default();
        assert!(apply(&mut model, ImportIntent::Check).is_empty());
        assert!(apply(&mut model, ImportIntent::Run).is_empty());
        assert!(!model.busy());
    }
}
