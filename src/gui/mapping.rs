//! Zuordnung: the mapping tables, edited in place (DESIGN.md §7).
//!
//! The editor holds the rows of every table as the CSV cells they are
//! exported as, and reads them back exactly as a CSV file would be read
//! (`mapping::table::mapping_from_draft`), so the problems shown inline
//! are the ones an import of the same rows would report, with the same
//! row numbers. Tables are virtualised (`egui_extras`); rows can be added,
//! edited, deleted, moved (order matters for the first-match category
//! table), sorted and filtered for viewing — a sorted view of the category
//! table can be taken as its row order in one step — and every edit can be
//! undone within the session. Warnings (a category row partly overlapped
//! by an earlier one) are shown like errors in the warning colour but do
//! not block saving.
//!
//! Saving makes a new version; the engine then computes the re-apply
//! preview, and only „Bestätigen“ puts the version in force and queues the
//! changed records. Versions can be compared with the draft and restored.
//! Values the ledger has seen that no row maps („Nicht zugeordnet“) are
//! listed beside their table, each one click from a prefilled row.

use egui_extras::{Column, TableBuilder};

use crate::engine::handle::Event;
use crate::engine::mapping_ops::{MappingCommand, MappingEvent, MappingState};
use crate::engine::reapply::ReapplyPreview;
use crate::mapping::diff::{RowChange, diff};
use crate::mapping::table::{
    DraftTables, FileImport, choices, draft_of, header, mapping_from_draft,
};
use crate::mapping::validate::{check_location_pipelines, check_stage_labels};
use crate::mapping::{Mapping, Problem, Severity, TableName};

use super::file_dialog::Pick;
use super::i18n::Lang;
use super::state::{Intent, Model, Notice, Panel};

/// Undo steps kept.
const UNDO_LIMIT: usize = 200;

/// What the engine told the mapping editor so far.
#[derive(Debug, Clone, Default)]
pub struct MappingModel {
    /// Versions, latest mapping, pipeline labels, unmapped values.
    pub state: Option<MappingState>,
    /// Counts `Loaded` answers, so the editor knows to take the new mapping.
    pub generation: u64,
    /// The preview of a saved version, waiting for confirmation.
    pub preview: Option<ReapplyPreview>,
    /// The version whose preview is being computed.
    pub preview_pending: Option<i64>,
    /// A version read for comparison with the draft.
    pub compare: Option<(i64, Mapping)>,
    /// A file read for import, waiting for the person's decision.
    pub import: Option<FileImport>,
    /// A request is on its way (save, confirm, import).
    pub busy: bool,
}

/// What the mapping editor wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingIntent {
    /// Read everything again.
    Load,
    /// Save the draft as a new version.
    Save {
        /// The validated mapping.
        mapping: Box<Mapping>,
        /// Why it changed.
        comment: String,
    },
    /// Show the preview of a saved version.
    Preview(i64),
    /// Apply the previewed version.
    Confirm(i64),
    /// Close the preview without applying.
    DismissPreview,
    /// Save an older version again as the newest.
    Restore(i64),
    /// Read a version to compare it with the draft.
    Compare(i64),
    /// Close the comparison.
    CloseCompare,
    /// Read a CSV or ZIP file.
    Import(std::path::PathBuf),
    /// Close the import preview.
    DismissImport,
    /// Write the draft's tables into a directory.
    Export {
        /// The draft's mapping.
        mapping: Box<Mapping>,
        /// Target directory.
        dir: std::path::PathBuf,
    },
}

/// Carries out an intent on the model; returns the commands for the engine.
pub fn apply(model: &mut MappingModel, intent: MappingIntent) -> Vec<MappingCommand> {
    match intent {
        MappingIntent::Load => vec![MappingCommand::Load],
        MappingIntent::Save { mapping, comment } => {
            model.busy = true;
            vec![MappingCommand::Save { mapping, comment }]
        }
        MappingIntent::Preview(version) => {
            model.preview = None;
            model.preview_pending = Some(version);
            vec![MappingCommand::Preview(version)]
        }
        MappingIntent::Confirm(version) => {
            model.busy = true;
            vec![MappingCommand::Confirm(version)]
        }
        MappingIntent::DismissPreview => {
            model.preview = None;
            model.preview_pending = None;
            Vec::new()
        }
        MappingIntent::Restore(version) => {
            model.busy = true;
            vec![MappingCommand::Restore(version)]
        }
        MappingIntent::Compare(version) => vec![MappingCommand::Version(version)],
        MappingIntent::CloseCompare => {
            model.compare = None;
            Vec::new()
        }
        MappingIntent::Import(path) => {
            model.busy = true;
            vec![MappingCommand::Import(path)]
        }
        MappingIntent::DismissImport => {
            model.import = None;
            Vec::new()
        }
        MappingIntent::Export { mapping, dir } => vec![MappingCommand::Export { mapping, dir }],
    }
}

/// Takes an engine answer; returns a notice to show and follow-up commands.
pub fn on_event(
    model: &mut MappingModel,
    event: MappingEvent,
    lang: Lang,
) -> (Option<Notice>, Vec<MappingCommand>) {
    let notice = |text: String, error: bool| Some(Notice { text, error });
    match event {
        MappingEvent::Loaded(state) => {
            model.state = Some(*state);
            model.generation += 1;
            (None, Vec::new())
        }
        MappingEvent::Saved(version) => {
            model.busy = false;
            model.preview = None;
            model.preview_pending = Some(version);
            (
                notice(
                    format!(
                        "{} {version} {}",
                        lang.pick("Als Version", "Saved as version"),
                        lang.pick(
                            "gespeichert. Die Vorschau wird berechnet …",
                            "– computing the preview …"
                        )
                    ),
                    false,
                ),
                vec![MappingCommand::Load, MappingCommand::Preview(version)],
            )
        }
        MappingEvent::Version(version, mapping) => {
            model.compare = Some((version, *mapping));
            (None, Vec::new())
        }
        MappingEvent::Preview(preview) => {
            if model.preview_pending == Some(preview.version) {
                model.preview_pending = None;
                model.preview = Some(*preview);
            }
            (None, Vec::new())
        }
        MappingEvent::Applied(outcome) => {
            model.busy = false;
            model.preview = None;
            model.preview_pending = None;
            let queued: u64 = outcome.queued.values().sum();
            (
                notice(
                    format!(
                        "{} {} {}: {} {}",
                        lang.pick("Version", "Version"),
                        outcome.version,
                        lang.pick("ist in Kraft", "is in force"),
                        lang.number(queued),
                        lang.pick(
                            "Änderungen warten auf die nächste Synchronisation.",
                            "changes wait for the next sync."
                        )
                    ),
                    false,
                ),
                vec![MappingCommand::Load],
            )
        }
        MappingEvent::Imported(import) => {
            model.busy = false;
            model.import = Some(*import);
            (None, Vec::new())
        }
        MappingEvent::Exported(files) => (
            notice(
                format!(
                    "{} {}",
                    lang.number(files.len() as u64),
                    lang.pick("Dateien geschrieben.", "files written.")
                ),
                false,
            ),
            Vec::new(),
        ),
        MappingEvent::Failed(message) => {
            model.busy = false;
            model.preview_pending = None;
            (notice(lang.half(&message), true), Vec::new())
        }
    }
}

/// Whether an engine event belongs to the mapping editor and changed the
/// ledger's outbox (the app then reloads the overview and queue).
pub fn changes_queue(event: &Event) -> bool {
    matches!(event, Event::Mapping(e) if matches!(**e, MappingEvent::Applied(_)))
}

/// A cell being typed into, so one word is one undo step.
type CellAt = (TableName, usize, usize);

/// What only the editor's drawing needs.
#[derive(Debug, Default)]
pub struct MappingView {
    /// The model generation the draft was taken from.
    generation: u64,
    /// The loaded mapping's rows (unchanged draft = nothing to save).
    base: DraftTables,
    /// The rows being edited.
    pub draft: DraftTables,
    /// The table shown.
    pub table: Option<TableName>,
    /// Text the visible rows must contain.
    pub filter: String,
    /// View order: column and ascending.
    pub sort: Option<(usize, bool)>,
    /// Earlier drafts.
    undo: Vec<DraftTables>,
    /// Drafts undone.
    redo: Vec<DraftTables>,
    /// The cell of the last edit.
    last_edit: Option<CellAt>,
    /// Comment for the next save.
    pub comment: String,
    /// File to import.
    pub import_path: String,
    /// Directory to export into.
    pub export_dir: String,
    /// Draft revision the cached check belongs to.
    revision: u64,
    /// The check of the draft at `revision`.
    checked: Option<(u64, Checked)>,
}

/// The draft read as a mapping, with everything wrong in it.
#[derive(Debug, Clone)]
struct Checked {
    /// The rows that could be read.
    mapping: Mapping,
    /// Every problem, including stage labels HubSpot does not have.
    problems: Vec<Problem>,
}

impl MappingView {
    fn table(&self) -> TableName {
        self.table.unwrap_or(TableName::TreatmentCategories)
    }

    /// Takes the engine's mapping unless the person has unsaved edits.
    fn adopt(&mut self, model: &MappingModel) {
        if self.generation == model.generation {
            return;
        }
        let Some(state) = &model.state else {
            return;
        };
        let loaded = draft_of(&state.mapping);
        if self.generation == 0 || self.draft == self.base {
            self.draft = loaded.clone();
            self.undo.clear();
            self.redo.clear();
            self.revision += 1;
        }
        self.base = loaded;
        self.generation = model.generation;
    }

    /// Records the draft before an edit.
    fn before_edit(&mut self, at: Option<CellAt>) {
        if at.is_none() || at != self.last_edit {
            self.undo.push(self.draft.clone());
            if self.undo.len() > UNDO_LIMIT {
                self.undo.remove(0);
            }
        }
        self.last_edit = at;
        self.redo.clear();
        self.revision += 1;
    }

    fn undo(&mut self) {
        if let Some(previous) = self.undo.pop() {
            self.redo.push(std::mem::replace(&mut self.draft, previous));
            self.last_edit = None;
            self.revision += 1;
        }
    }

    fn redo(&mut self) {
        if let Some(next) = self.redo.pop() {
            self.undo.push(std::mem::replace(&mut self.draft, next));
            self.last_edit = None;
            self.revision += 1;
        }
    }

    fn rows_mut(&mut self, table: TableName) -> &mut Vec<Vec<String>> {
        self.draft.entry(table).or_default()
    }

    /// Makes the view's sort the table's row order, as one undoable edit,
    /// and clears the sort (rows can then be moved one by one again). Every
    /// row is reordered, also those a filter hides.
    pub fn take_sorted_order(&mut self) {
        let Some((column, ascending)) = self.sort else {
            return;
        };
        let table = self.table();
        let rows = self.draft.get(&table).map_or(&[][..], Vec::as_slice);
        let reordered: Vec<Vec<String>> = sorted_order(rows, column, ascending)
            .into_iter()
            .map(|i| rows[i].clone())
            .collect();
        if reordered.as_slice() != rows {
            self.before_edit(None);
            *self.rows_mut(table) = reordered;
        }
        self.sort = None;
    }

    /// Adds a row (prefilled, or empty) at the end of a table.
    pub fn add_row(&mut self, table: TableName, cells: Vec<String>) {
        self.before_edit(None);
        let width = header(table).len();
        let mut cells = cells;
        cells.resize(width, String::new());
        self.rows_mut(table).push(cells);
    }

    /// The draft checked, recomputed only after an edit.
    fn check(&mut self, model: &MappingModel) -> Checked {
        if let Some((revision, checked)) = &self.checked
            && *revision == self.revision
        {
            return checked.clone();
        }
        let parsed = mapping_from_draft(&self.draft);
        let mut problems = parsed.problems;
        if let Some(state) = &model.state {
            if let Some(labels) = &state.pipeline_labels {
                problems.extend(check_stage_labels(&parsed.mapping, labels));
            }
            if !state.pipelines.is_empty() {
                problems.extend(check_location_pipelines(&parsed.mapping, &state.pipelines));
            }
        }
        let checked = Checked {
            mapping: parsed.mapping,
            problems,
        };
        self.checked = Some((self.revision, checked.clone()));
        checked
    }
}

/// A problem's reason in the chosen language; a warning says so.
fn reason(lang: Lang, problem: &Problem) -> String {
    let text = match lang {
        Lang::De => &problem.reason_de,
        Lang::En => &problem.reason_en,
    };
    match problem.severity {
        Severity::Error => text.clone(),
        Severity::Warning => format!("{} {text}", lang.pick("Hinweis:", "Warning:")),
    }
}

/// The colour a problem is shown in: errors block saving, warnings do not.
fn problem_color(ui: &egui::Ui, problem: &Problem) -> egui::Color32 {
    match problem.severity {
        Severity::Error => ui.visuals().error_fg_color,
        Severity::Warning => ui.visuals().warn_fg_color,
    }
}

/// The table's name in the chosen language.
fn table_title(lang: Lang, table: TableName) -> &'static str {
    lang.pick(table.label(), table.label_en())
}

/// Draws the mapping editor.
pub fn mapping_ui(ui: &mut egui::Ui, model: &Model, view: &mut MappingView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    let mapping = &model.mapping;
    view.adopt(mapping);
    ui.heading(Panel::Mapping.title(lang));
    let Some(state) = &mapping.state else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Zuordnung wird gelesen …", "Reading the mapping …"));
        });
        return intents;
    };
    status_ui(ui, lang, state, &mut intents);
    let checked = view.check(mapping);

    if let Some(preview) = &mapping.preview {
        preview_ui(ui, lang, preview, mapping.busy, &mut intents);
        return intents;
    }
    if let Some(version) = mapping.preview_pending {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!(
                "{} {version} {}",
                lang.pick("Vorschau für Version", "Preview of version"),
                lang.pick(
                    "wird berechnet: jeder Fall wird neu bewertet …",
                    "is being computed: every case is evaluated again …"
                )
            ));
        });
    }
    if let Some(import) = &mapping.import {
        import_ui(ui, lang, import, view, &mut intents);
        return intents;
    }

    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        for table in TableName::ALL {
            let count = |severity: Severity| {
                checked
                    .problems
                    .iter()
                    .filter(|p| p.table == table && p.severity == severity)
                    .count() as u64
            };
            let mut title = table_title(lang, table).to_owned();
            let errors = count(Severity::Error);
            if errors > 0 {
                title.push_str(&format!(" ({})", lang.number(errors)));
            }
            let warnings = count(Severity::Warning);
            if warnings > 0 {
                title.push_str(&format!(
                    " ({} {})",
                    lang.number(warnings),
                    match (lang, warnings) {
                        (Lang::De, 1) => "Hinweis",
                        (Lang::De, _) => "Hinweise",
                        (Lang::En, 1) => "warning",
                        (Lang::En, _) => "warnings",
                    }
                ));
            }
            if ui.selectable_label(view.table() == table, title).clicked() {
                view.table = Some(table);
                view.sort = None;
            }
        }
    });
    ui.separator();
    toolbar_ui(ui, lang, view);

    let table = view.table();
    let problems: Vec<&Problem> = checked
        .problems
        .iter()
        .filter(|p| p.table == table)
        .collect();
    let unmapped = state.unmapped.for_table(table);
    let side_width = if unmapped.is_empty() { 0.0 } else { 260.0 };
    let bottom = 150.0;
    let height = (ui.available_height() - bottom).max(160.0);
    let full_width = ui.available_width();
    ui.allocate_ui_with_layout(
        egui::vec2(full_width, height),
        egui::Layout::left_to_right(egui::Align::Min),
        |ui| {
            ui.set_max_height(height);
            let width = (full_width - side_width).max(300.0);
            ui.allocate_ui_with_layout(
                egui::vec2(width, height),
                egui::Layout::top_down(egui::Align::Min),
                |ui| {
                    // Wide tables scroll sideways instead of squeezing
                    // their cells below readability.
                    egui::ScrollArea::horizontal()
                        .id_salt(("mapping_table_scroll", table))
                        .show(ui, |ui| {
                            table_ui(ui, lang, view, table, &problems, state, height);
                        });
                },
            );
            if !unmapped.is_empty() {
                ui.add_space(8.0);
                ui.allocate_ui_with_layout(
                    egui::vec2(side_width - 10.0, height),
                    egui::Layout::top_down(egui::Align::Min),
                    |ui| {
                        unmapped_ui(ui, lang, view, table, unmapped, &state.connections);
                    },
                );
            }
        },
    );
    ui.separator();
    problems_ui(ui, lang, &checked.problems, table);
    save_ui(ui, lang, view, &checked, mapping.busy, &mut intents);
    if let Some(error) = &state.pipeline_error {
        ui.weak(format!(
            "{} {}",
            lang.pick(
                "Phasen und Pipelines ungeprüft:",
                "Stages and pipelines unchecked:"
            ),
            lang.half(error)
        ));
    }
    versions_ui(
        ui,
        lang,
        state,
        view,
        &checked,
        &mapping.compare,
        &mut intents,
    );
    intents
}

/// Which version is saved and which is in force.
fn status_ui(ui: &mut egui::Ui, lang: Lang, state: &MappingState, intents: &mut Vec<Intent>) {
    let name = |v: Option<i64>| match v {
        Some(v) => format!("{} {v}", lang.pick("Version", "version")),
        None => lang.pick("Standard", "default").to_owned(),
    };
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} {} · {} {}",
            lang.pick("Gespeichert:", "Saved:"),
            name(state.latest),
            lang.pick("in Kraft:", "in force:"),
            name(state.applied)
        ));
        if let Some(latest) = state.latest
            && state.applied != Some(latest)
        {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                lang.pick(
                    "Die gespeicherte Version ist noch nicht übernommen.",
                    "The saved version is not applied yet.",
                ),
            );
            if ui
                .button(lang.pick("Vorschau und übernehmen …", "Preview and apply …"))
                .clicked()
            {
                intents.push(Intent::Mapping(MappingIntent::Preview(latest)));
            }
        }
    });
}

/// Add, undo, redo, filter.
fn toolbar_ui(ui: &mut egui::Ui, lang: Lang, view: &mut MappingView) {
    ui.horizontal(|ui| {
        let table = view.table();
        if ui
            .button(lang.pick("+ Zeile", "+ Row"))
            .on_hover_text(lang.pick("Neue Zeile am Ende", "New row at the end"))
            .clicked()
        {
            view.add_row(table, Vec::new());
        }
        if ui
            .add_enabled(
                !view.undo.is_empty(),
                egui::Button::new(lang.pick("Rückgängig", "Undo")),
            )
            .clicked()
            || ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z))
        {
            view.undo();
        }
        if ui
            .add_enabled(
                !view.redo.is_empty(),
                egui::Button::new(lang.pick("Wiederholen", "Redo")),
            )
            .clicked()
            || ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y))
        {
            view.redo();
        }
        ui.separator();
        let label = ui.label(lang.pick("Filter:", "Filter:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.filter)
                .hint_text(lang.pick("Text in einer Zelle", "text in a cell"))
                .desired_width(180.0),
        )
        .labelled_by(label.id);
        if view.sort.is_some()
            && ui
                .button(lang.pick("Tabellenreihenfolge", "Table order"))
                .on_hover_text(lang.pick(
                    "Sortierung aufheben; erst dann lassen sich Zeilen verschieben",
                    "Clear the sorting; rows can be moved only then",
                ))
                .clicked()
        {
            view.sort = None;
        }
        // Where the order decides (first match wins), the sorted view can
        // become the order in one step instead of many moves.
        if view.sort.is_some()
            && first_match(table)
            && ui
                .button(lang.pick(
                    "Sortierung als Reihenfolge übernehmen",
                    "Use sorted order as row order",
                ))
                .on_hover_text(lang.pick(
                    "Alle Zeilen (auch ausgefilterte) in dieser Sortierung speichern; rückgängig machbar",
                    "Put every row (also filtered-out ones) in this sorted order; can be undone",
                ))
                .clicked()
        {
            view.take_sorted_order();
        }
    });
    if first_match(view.table()) {
        ui.weak(lang.pick(
            "Reihenfolge zählt: die erste passende Zeile bestimmt die Kategorie.",
            "Order matters: the first matching row decides the category.",
        ));
    }
}

/// Whether the table's row order decides the result (first match wins).
fn first_match(table: TableName) -> bool {
    table == TableName::TreatmentCategories
}

/// Every row index in the order of one column (case-insensitive); equal
/// cells keep their table order.
fn sorted_order(rows: &[Vec<String>], column: usize, ascending: bool) -> Vec<usize> {
    let keys: Vec<Option<String>> = rows
        .iter()
        .map(|row| row.get(column).map(|c| c.to_lowercase()))
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let order = keys[a].cmp(&keys[b]);
        if ascending { order } else { order.reverse() }
    });
    order
}

/// Row indices in view order (filtered, maybe sorted).
fn visible_rows(view: &MappingView, table: TableName) -> Vec<usize> {
    let rows = view.draft.get(&table).map_or(&[][..], Vec::as_slice);
    let needle = view.filter.trim().to_lowercase();
    let order = match view.sort {
        Some((column, ascending)) => sorted_order(rows, column, ascending),
        None => (0..rows.len()).collect(),
    };
    order
        .into_iter()
        .filter(|&i| {
            needle.is_empty() || rows[i].iter().any(|c| c.to_lowercase().contains(&needle))
        })
        .collect()
}

/// Column of the location table holding the HubSpot pipeline.
const LOCATION_PIPELINE_COLUMN: usize = 3;
/// Column of the location table holding the deal owner.
const LOCATION_OWNER_COLUMN: usize = 4;

/// The values a cell may take with what is shown for each, or `None` for
/// free text. A location's pipeline and deal owner are chosen by name once
/// HubSpot's pipelines and owners are known (a value HubSpot does not list
/// stays shown as it is).
fn cell_options(
    table: TableName,
    column: usize,
    state: &MappingState,
    lang: Lang,
) -> Option<Vec<(String, String)>> {
    if table == TableName::Locations && column == LOCATION_OWNER_COLUMN && !state.owners.is_empty()
    {
        let mut list = vec![(String::new(), "-".to_owned())];
        list.extend(
            state
                .owners
                .iter()
                .map(|(id, name)| (id.clone(), format!("{name} ({id})"))),
        );
        return Some(list);
    }
    if table == TableName::Locations
        && column == LOCATION_PIPELINE_COLUMN
        && !state.pipelines.is_empty()
    {
        let mut list = vec![(
            String::new(),
            lang.pick("- (aus den Einstellungen)", "- (from the settings)")
                .to_owned(),
        )];
        list.extend(
            state
                .pipelines
                .keys()
                .map(|label| (label.clone(), label.clone())),
        );
        return Some(list);
    }
    choices(table, column).map(|list| {
        list.into_iter()
            .map(|option| {
                let shown = if option.is_empty() { "-" } else { option };
                (option.to_owned(), shown.to_owned())
            })
            .collect()
    })
}

/// A row action chosen in the table.
enum RowAction {
    /// Move the row up by one.
    Up(usize),
    /// Move the row down by one.
    Down(usize),
    /// Delete the row.
    Delete(usize),
}

/// The virtualised table of one mapping table.
fn table_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut MappingView,
    table: TableName,
    problems: &[&Problem],
    state: &MappingState,
    height: f32,
) {
    let names = header(table);
    // The location table shows which Ivoris connection of the settings each
    // key references; it is edited there, with its credentials.
    let shows_connection = table == TableName::Locations;
    let connection_width = if shows_connection { 170.0 } else { 0.0 };
    // Columns share the width left beside row number, actions, problems
    // and the connection (and the spacing between all of them), so the
    // table never pushes the side list out.
    let columns = names.len() + 3;
    let spacing = ui.spacing().item_spacing.x * columns as f32;
    let cell_width = ((ui.available_width() - 34.0 - 84.0 - 120.0 - spacing)
        / names.len().max(1) as f32)
        .clamp(120.0, 150.0);
    let visible = visible_rows(view, table);
    let sorted = view.sort.is_some();
    let mut action = None;
    let mut edit: Option<(usize, usize, String)> = None;
    let mut sort_click = None;
    let mut builder = TableBuilder::new(ui)
        .id_salt(("mapping_table", table))
        .striped(true)
        .max_scroll_height(height - 30.0)
        .min_scrolled_height(height - 30.0)
        .column(Column::exact(34.0));
    for _ in &names {
        builder = builder.column(
            Column::initial(cell_width)
                .at_least(70.0)
                .resizable(true)
                .clip(true),
        );
    }
    builder = builder.column(Column::exact(84.0));
    // The connection comes last: it is only shown here, so it is what a
    // narrow window may scroll away, not the problems.
    builder = if shows_connection {
        builder
            .column(
                Column::initial(260.0)
                    .at_least(120.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(Column::remainder().at_least(connection_width).clip(true))
    } else {
        builder.column(Column::remainder().at_least(120.0).clip(true))
    };
    builder
        .header(24.0, |mut row| {
            row.col(|ui| {
                ui.strong("#");
            });
            for (column, name) in names.iter().enumerate() {
                row.col(|ui| {
                    let arrow = match view.sort {
                        Some((c, true)) if c == column => " ^",
                        Some((c, false)) if c == column => " v",
                        _ => "",
                    };
                    if ui
                        .add(
                            egui::Button::new(
                                egui::RichText::new(format!("{name}{arrow}")).strong(),
                            )
                            .frame(false),
                        )
                        .on_hover_text(
                            lang.pick("Nach dieser Spalte sortieren", "Sort by this column"),
                        )
                        .clicked()
                    {
                        sort_click = Some(column);
                    }
                });
            }
            row.col(|ui| {
                ui.strong(lang.pick("Zeile", "Row"));
            });
            row.col(|ui| {
                ui.strong(lang.pick("Meldung", "Message"));
            });
            if shows_connection {
                row.col(|ui| {
                    ui.strong(lang.pick("Ivoris-Verbindung", "Ivoris connection"))
                        .on_hover_text(lang.pick(
                            "Aus den Einstellungen (Adresse, Benutzer; Zugangsdaten im Anmeldespeicher des Systems); dort ändern",
                            "From the settings (address, user; credentials in the system's credential store); change it there",
                        ));
                });
            }
        })
        .body(|body| {
            body.rows(26.0, visible.len(), |mut row| {
                let index = visible[row.index()];
                let line = index + 2;
                let cells = view
                    .draft
                    .get(&table)
                    .and_then(|rows| rows.get(index))
                    .cloned()
                    .unwrap_or_default();
                row.col(|ui| {
                    ui.weak((index + 1).to_string());
                });
                for (column, name) in names.iter().enumerate() {
                    let mut value = cells.get(column).cloned().unwrap_or_default();
                    row.col(|ui| {
                        let accessible = format!("{name} {}", index + 1);
                        let changed = match cell_options(table, column, state, lang) {
                            Some(options) => {
                                let mut changed = false;
                                let selected = options
                                    .iter()
                                    .find(|(v, _)| *v == value)
                                    .map_or(value.clone(), |(_, shown)| shown.clone());
                                let response = egui::ComboBox::from_id_salt((table, index, column))
                                    .selected_text(selected)
                                    .width(ui.available_width() - 4.0)
                                    // Every category fits without scrolling the list.
                                    .height(360.0)
                                    .show_ui(ui, |ui| {
                                        for (option, shown) in &options {
                                            if ui
                                                .selectable_label(value == *option, shown)
                                                .clicked()
                                            {
                                                value = option.clone();
                                                changed = true;
                                            }
                                        }
                                    })
                                    .response;
                                response.widget_info(|| {
                                    egui::WidgetInfo::labeled(
                                        egui::accesskit::Role::ComboBox,
                                        true,
                                        &accessible,
                                    )
                                });
                                changed
                            }
                            None => {
                                let response = ui.add(
                                    egui::TextEdit::singleline(&mut value)
                                        .id_salt((table, index, column))
                                        .desired_width(f32::INFINITY),
                                );
                                response.widget_info(|| {
                                    egui::WidgetInfo::labeled(
                                        egui::accesskit::Role::TextInput,
                                        true,
                                        &accessible,
                                    )
                                });
                                response.changed()
                            }
                        };
                        if changed {
                            edit = Some((index, column, value.clone()));
                        }
                    });
                }
                row.col(|ui| {
                    ui.spacing_mut().item_spacing.x = 2.0;
                    ui.horizontal(|ui| {
                        let can_move = !sorted;
                        if ui
                            .add_enabled(can_move, egui::Button::new("^").small())
                            .on_hover_text(lang.pick("Nach oben", "Move up"))
                            .clicked()
                        {
                            action = Some(RowAction::Up(index));
                        }
                        if ui
                            .add_enabled(can_move, egui::Button::new("v").small())
                            .on_hover_text(lang.pick("Nach unten", "Move down"))
                            .clicked()
                        {
                            action = Some(RowAction::Down(index));
                        }
                        let delete = ui
                            .small_button("x")
                            .on_hover_text(lang.pick("Zeile löschen", "Delete row"));
                        delete.widget_info(|| {
                            egui::WidgetInfo::labeled(
                                egui::accesskit::Role::Button,
                                true,
                                format!(
                                    "{} {}",
                                    lang.pick("Zeile löschen", "Delete row"),
                                    index + 1
                                ),
                            )
                        });
                        if delete.clicked() {
                            action = Some(RowAction::Delete(index));
                        }
                    });
                });
                row.col(|ui| {
                    let here: Vec<&&Problem> = problems.iter().filter(|p| p.row == line).collect();
                    // An error outweighs a warning of the same row.
                    if let Some(worst) = here.iter().min_by_key(|p| p.severity) {
                        let reasons: Vec<String> = here.iter().map(|p| reason(lang, p)).collect();
                        ui.colored_label(problem_color(ui, worst), reasons.join(" · "))
                            .on_hover_text(reasons.join("\n"));
                    }
                });
                if shows_connection {
                    row.col(|ui| {
                        let key = cells.first().map_or("", |k| k.trim());
                        match state.connections.iter().find(|c| c.key == key) {
                            Some(c) => {
                                ui.label(&c.ivoris_url).on_hover_text(format!(
                                    "{} {} · {}",
                                    lang.pick("Benutzer", "User"),
                                    c.ivoris_user,
                                    c.name
                                ));
                            }
                            None => {
                                ui.weak(lang.pick(
                                    "nicht in den Einstellungen",
                                    "not in the settings",
                                ));
                            }
                        }
                    });
                }
            });
        });
    if let Some(column) = sort_click {
        view.sort = match view.sort {
            Some((c, true)) if c == column => Some((column, false)),
            Some((c, false)) if c == column => None,
            _ => Some((column, true)),
        };
    }
    if let Some((index, column, value)) = edit {
        view.before_edit(Some((table, index, column)));
        if let Some(cell) = view
            .rows_mut(table)
            .get_mut(index)
            .and_then(|row| row.get_mut(column))
        {
            *cell = value;
        }
    }
    if let Some(action) = action {
        view.before_edit(None);
        let rows = view.rows_mut(table);
        match action {
            RowAction::Up(i) if i > 0 && i < rows.len() => rows.swap(i, i - 1),
            RowAction::Down(i) if i + 1 < rows.len() => rows.swap(i, i + 1),
            RowAction::Delete(i) if i < rows.len() => {
                rows.remove(i);
            }
            _ => {}
        }
    }
}

/// „Nicht zugeordnet“: seen in the ledger, mapped by no row.
fn unmapped_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut MappingView,
    table: TableName,
    unmapped: &[crate::engine::mapping_ops::UnmappedValue],
    connections: &[crate::engine::mapping_ops::LocationConnection],
) {
    ui.strong(lang.pick("Nicht zugeordnet", "Not mapped"));
    if table == TableName::Locations {
        ui.weak(lang.pick(
            "Eingerichtet oder im Ledger gesehen, ohne Zeile:",
            "Configured or seen in the ledger, without a row:",
        ));
    } else {
        ui.weak(lang.pick(
            "Im Ledger gesehen, von keiner Zeile erfasst:",
            "Seen in the ledger, matched by no row:",
        ));
    }
    egui::ScrollArea::vertical()
        .id_salt(("unmapped", table))
        .max_height(ui.available_height().min(320.0))
        .show(ui, |ui| {
            for (i, value) in unmapped.iter().enumerate() {
                ui.horizontal(|ui| {
                    let shown = match &value.catalogue {
                        Some(catalogue) => format!("{catalogue} {}", value.value),
                        None => value.value.clone(),
                    };
                    let amount = if value.cents != 0 {
                        format!(" · {} €", crate::csvio::format_cents(value.cents))
                    } else {
                        String::new()
                    };
                    let add = ui
                        .small_button("+")
                        .on_hover_text(lang.pick("Als Zeile hinzufügen", "Add as a row"));
                    add.widget_info(|| {
                        egui::WidgetInfo::labeled(
                            egui::accesskit::Role::Button,
                            true,
                            format!("{} {shown}", lang.pick("Hinzufügen", "Add")),
                        )
                    });
                    if value.count > 0 {
                        ui.label(format!("{shown} ({}×{amount})", lang.number(value.count)));
                    } else {
                        ui.label(shown);
                    }
                    if add.clicked() {
                        let cells = match table {
                            TableName::AppointmentTypes => {
                                vec![value.value.clone(), "Behandlung".into(), "ja".into()]
                            }
                            TableName::TreatmentCategories => vec![
                                value.catalogue.clone().unwrap_or_else(|| "*".into()),
                                value.value.clone(),
                                String::new(),
                            ],
                            TableName::EntryTypes => vec![value.value.clone(), "separat".into()],
                            // Name and brand as the settings have them, to
                            // correct here; pipeline and owner to choose.
                            TableName::Locations => {
                                let known = connections.iter().find(|c| c.key == value.value);
                                vec![
                                    value.value.clone(),
                                    known.map(|c| c.name.clone()).unwrap_or_default(),
                                    known.and_then(|c| c.brand.clone()).unwrap_or_default(),
                                ]
                            }
                            _ => vec![value.value.clone()],
                        };
                        view.add_row(table, cells);
                        view.filter.clear();
                        view.sort = None;
                    }
                });
                if i > 200 {
                    break;
                }
            }
        });
}

/// Problems of the other tables (the shown table's are inline).
fn problems_ui(ui: &mut egui::Ui, lang: Lang, problems: &[Problem], shown: TableName) {
    let whole: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.table != shown || p.row == 0)
        .collect();
    if whole.is_empty() {
        return;
    }
    for problem in whole.iter().take(4) {
        ui.colored_label(
            problem_color(ui, problem),
            format!(
                "{}{}: {}",
                table_title(lang, problem.table),
                if problem.row > 0 {
                    format!(", {} {}", lang.pick("Zeile", "row"), problem.row - 1)
                } else {
                    String::new()
                },
                reason(lang, problem)
            ),
        );
    }
}

/// Comment, save, import and export.
fn save_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut MappingView,
    checked: &Checked,
    busy: bool,
    intents: &mut Vec<Intent>,
) {
    let changed = view.draft != view.base;
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Kommentar:", "Comment:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.comment)
                .hint_text(lang.pick(
                    "Warum ändert sich die Zuordnung?",
                    "Why does the mapping change?",
                ))
                .desired_width(320.0),
        )
        .labelled_by(label.id);
        // Warnings are shown but never block saving.
        let errors = checked.problems.iter().any(Problem::is_error);
        let can_save = changed && !errors && !view.comment.trim().is_empty() && !busy;
        let save = ui
            .add_enabled(can_save, egui::Button::new(lang.pick("Speichern", "Save")))
            .on_disabled_hover_text(if !changed {
                lang.pick("Nichts geändert", "Nothing changed")
            } else if errors {
                lang.pick(
                    "Erst die markierten Zeilen korrigieren",
                    "Fix the marked rows first",
                )
            } else {
                lang.pick("Bitte einen Kommentar angeben", "Please give a comment")
            });
        if save.clicked() {
            intents.push(Intent::Mapping(MappingIntent::Save {
                mapping: Box::new(checked.mapping.clone()),
                comment: view.comment.trim().to_owned(),
            }));
            view.comment.clear();
        }
        if changed && ui.button(lang.pick("Verwerfen", "Discard")).clicked() {
            view.before_edit(None);
            view.draft = view.base.clone();
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("CSV/ZIP importieren:", "Import CSV/ZIP:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.import_path)
                .hint_text(lang.pick("Pfad der Datei", "path of the file"))
                .desired_width(260.0),
        )
        .labelled_by(label.id);
        if ui
            .add_enabled(!busy, egui::Button::new(lang.pick("Datei wählen …", "Choose file …")))
            .on_hover_text(lang.pick(
                "CSV einer Tabelle oder zuordnung.zip; eine Datei kann auch ins Fenster gezogen werden",
                "CSV of one table or zuordnung.zip; a file can also be dropped on the window",
            ))
            .clicked()
        {
            intents.push(Intent::PickFile(Pick::MappingImport));
        }
        if ui
            .add_enabled(
                !view.import_path.trim().is_empty() && !busy,
                egui::Button::new(lang.pick("Lesen", "Read")),
            )
            .clicked()
        {
            intents.push(Intent::Mapping(MappingIntent::Import(
                view.import_path.trim().into(),
            )));
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Exportieren nach:", "Export to:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.export_dir)
                .hint_text(lang.pick("Ordner", "folder"))
                .desired_width(200.0),
        )
        .labelled_by(label.id);
        if ui
            .button(lang.pick("Ordner wählen …", "Choose folder …"))
            .clicked()
        {
            intents.push(Intent::PickFile(Pick::MappingExportDir));
        }
        if ui
            .add_enabled(
                !view.export_dir.trim().is_empty(),
                egui::Button::new(lang.pick("Exportieren", "Export")),
            )
            .on_hover_text(lang.pick(
                "Eine CSV je Tabelle (für Excel) und alle als zuordnung.zip",
                "One CSV per table (for Excel) and all as zuordnung.zip",
            ))
            .clicked()
        {
            intents.push(Intent::Mapping(MappingIntent::Export {
                mapping: Box::new(checked.mapping.clone()),
                dir: view.export_dir.trim().into(),
            }));
        }
    });
}

/// The versions with compare and restore, and a comparison if one is open.
fn versions_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    state: &MappingState,
    view: &MappingView,
    checked: &Checked,
    compare: &Option<(i64, Mapping)>,
    intents: &mut Vec<Intent>,
) {
    egui::CollapsingHeader::new(format!(
        "{} ({})",
        lang.pick("Versionen", "Versions"),
        state.versions.len()
    ))
    .id_salt("mapping_versions")
    .default_open(compare.is_some())
    .show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt("mapping_versions_list")
            .max_height(140.0)
            .show(ui, |ui| {
                egui::Grid::new("mapping_versions_grid")
                    .striped(true)
                    .spacing([14.0, 4.0])
                    .show(ui, |ui| {
                        for version in state.versions.iter().rev() {
                            ui.label(format!("{}", version.version));
                            ui.label(
                                version
                                    .created_at
                                    .replace('T', " ")
                                    .chars()
                                    .take(16)
                                    .collect::<String>(),
                            );
                            ui.label(&version.author);
                            ui.label(&version.comment);
                            if state.applied == Some(version.version) {
                                ui.strong(lang.pick("in Kraft", "in force"));
                            } else {
                                ui.label("");
                            }
                            let compare_button = ui.button(lang.pick("Vergleichen", "Compare"));
                            compare_button.widget_info(|| {
                                egui::WidgetInfo::labeled(
                                    egui::accesskit::Role::Button,
                                    true,
                                    format!(
                                        "{} {}",
                                        lang.pick("Vergleichen", "Compare"),
                                        version.version
                                    ),
                                )
                            });
                            if compare_button.clicked() {
                                intents
                                    .push(Intent::Mapping(MappingIntent::Compare(version.version)));
                            }
                            let restore = ui.button(lang.pick("Wiederherstellen", "Restore"));
                            restore.widget_info(|| {
                                egui::WidgetInfo::labeled(
                                    egui::accesskit::Role::Button,
                                    true,
                                    format!(
                                        "{} {}",
                                        lang.pick("Wiederherstellen", "Restore"),
                                        version.version
                                    ),
                                )
                            });
                            if restore.clicked() {
                                intents
                                    .push(Intent::Mapping(MappingIntent::Restore(version.version)));
                            }
                            ui.end_row();
                        }
                    });
            });
        if let Some((version, older)) = compare {
            ui.horizontal(|ui| {
                ui.strong(format!(
                    "{} {version} -> {}",
                    lang.pick("Version", "Version"),
                    lang.pick("Entwurf", "draft")
                ));
                if ui.button(lang.pick("Schließen", "Close")).clicked() {
                    intents.push(Intent::Mapping(MappingIntent::CloseCompare));
                }
            });
            let changes = diff(older, &checked.mapping);
            if changes.is_empty() {
                ui.weak(lang.pick("Keine Unterschiede.", "No differences."));
            }
            egui::ScrollArea::vertical()
                .id_salt("mapping_diff")
                .max_height(160.0)
                .show(ui, |ui| {
                    for table in changes {
                        ui.strong(table_title(lang, table.table));
                        for change in &table.changes {
                            match change {
                                RowChange::Added(row) => {
                                    ui.label(format!("+ {}", row.join(" ; ")));
                                }
                                RowChange::Removed(row) => {
                                    ui.label(format!("- {}", row.join(" ; ")));
                                }
                                RowChange::Changed { before, after } => {
                                    ui.label(format!(
                                        "~ {}  ->  {}",
                                        before.join(" ; "),
                                        after.join(" ; ")
                                    ));
                                }
                            }
                        }
                        if table.reordered {
                            ui.weak(lang.pick("Reihenfolge geändert", "Order changed"));
                        }
                    }
                });
        }
        let _ = view;
    });
}

/// The re-apply preview: counts, examples, confirm or not.
fn preview_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    preview: &ReapplyPreview,
    busy: bool,
    intents: &mut Vec<Intent>,
) {
    ui.add_space(6.0);
    ui.group(|ui| {
        ui.heading(format!(
            "{} {} {}",
            lang.pick("Vorschau: Version", "Preview: version"),
            preview.version,
            lang.pick("übernehmen", "to apply")
        ));
        ui.label(lang.pick(
            "Jeder Fall wurde mit der neuen Zuordnung neu bewertet. In HubSpot ändert sich erst etwas, wenn Sie bestätigen.",
            "Every case was evaluated with the new mapping. Nothing changes in HubSpot until you confirm.",
        ));
        egui::Grid::new("mapping_preview_counts")
            .spacing([24.0, 4.0])
            .show(ui, |ui| {
                let rows = [
                    (lang.pick("Deals insgesamt", "Deals in all"), preview.deals),
                    (lang.pick("Phase oder Pipeline ändert sich", "Stage or pipeline changes"), preview.stage_changes),
                    (lang.pick("Kategorie ändert sich", "Category changes"), preview.category_changes),
                    (lang.pick("Umsatz ändert sich", "Revenue changes"), preview.revenue_changes),
                    (lang.pick("Schreibvorgänge an HubSpot", "Writes to HubSpot"), preview.total_to_write()),
                ];
                for (label, value) in rows {
                    ui.label(label);
                    ui.strong(lang.number(value));
                    ui.end_row();
                }
            });
        if !preview.cleared_contact_fields.is_empty() {
            ui.add_space(4.0);
            ui.label(format!(
                "{} {}",
                lang.pick(
                    "Ausgeschaltete Kontaktfelder werden in HubSpot geleert:",
                    "Contact fields switched off are cleared in HubSpot:"
                ),
                preview.cleared_contact_fields.join(", ")
            ));
        }
        if !preview.samples.is_empty() {
            ui.add_space(4.0);
            ui.strong(lang.pick("Beispiele (ohne Personendaten)", "Examples (no personal data)"));
            egui::ScrollArea::vertical()
                .id_salt("mapping_preview_samples")
                .max_height(220.0)
                .show(ui, |ui| {
                    egui::Grid::new("mapping_preview_samples_grid")
                        .striped(true)
                        .spacing([16.0, 3.0])
                        .show(ui, |ui| {
                            for sample in &preview.samples {
                                for change in &sample.changes {
                                    ui.monospace(&sample.case_key);
                                    ui.label(&change.property);
                                    ui.label(if change.before.is_empty() { "-" } else { &change.before });
                                    ui.label("->");
                                    ui.strong(if change.after.is_empty() { "-" } else { &change.after });
                                    ui.end_row();
                                }
                            }
                        });
                });
        }
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!busy, egui::Button::new(lang.pick("Bestätigen und einreihen", "Confirm and queue")))
                .clicked()
            {
                intents.push(Intent::Mapping(MappingIntent::Confirm(preview.version)));
            }
            if ui.button(lang.pick("Noch nicht", "Not yet")).clicked() {
                intents.push(Intent::Mapping(MappingIntent::DismissPreview));
            }
        });
    });
}

/// An import read from a file: per-row problems, then take it or not.
fn import_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    import: &FileImport,
    view: &mut MappingView,
    intents: &mut Vec<Intent>,
) {
    ui.add_space(6.0);
    ui.group(|ui| {
        ui.heading(lang.pick("Import prüfen", "Check the import"));
        for unknown in &import.unknown {
            ui.colored_label(ui.visuals().error_fg_color, lang.half(unknown));
        }
        for table in &import.tables {
            ui.label(format!(
                "{}: {} / {} {} ({}, {})",
                table_title(lang, table.table),
                table.rows_kept,
                table.rows_in_file,
                lang.pick("Zeilen lesbar", "rows readable"),
                table.encoding.label(),
                lang.half(crate::csvio::delimiter_label(table.delimiter)),
            ));
            egui::ScrollArea::vertical()
                .id_salt(("import_problems", table.table))
                .max_height(200.0)
                .show(ui, |ui| {
                    for problem in &table.problems {
                        ui.colored_label(
                            problem_color(ui, problem),
                            format!(
                                "{} {}{}: {}",
                                lang.pick("Zeile", "Line"),
                                problem.row,
                                problem
                                    .column
                                    .as_ref()
                                    .map(|c| format!(", {} „{c}“", lang.pick("Spalte", "column")))
                                    .unwrap_or_default(),
                                reason(lang, problem)
                            ),
                        );
                    }
                });
        }
        let clean = import.is_clean();
        if !clean {
            ui.label(lang.pick(
                "Die Datei hat ungültige Zeilen: es wird nichts übernommen, außer Sie lassen sie ausdrücklich weg.",
                "The file has invalid rows: nothing is taken unless you explicitly leave them out.",
            ));
        }
        ui.horizontal(|ui| {
            let take = |view: &mut MappingView| {
                view.before_edit(None);
                view.draft = draft_of(&import.mapping);
            };
            if clean && ui.button(lang.pick("In den Entwurf übernehmen", "Take into the draft")).clicked() {
                take(view);
                intents.push(Intent::Mapping(MappingIntent::DismissImport));
            }
            if !clean
                && import.unknown.is_empty()
                && ui
                    .button(lang.pick("Ungültige Zeilen weglassen und übernehmen", "Leave invalid rows out and take the rest"))
                    .clicked()
            {
                take(view);
                intents.push(Intent::Mapping(MappingIntent::DismissImport));
            }
            if ui.button(lang.pick("Verwerfen", "Discard")).clicked() {
                intents.push(Intent::Mapping(MappingIntent::DismissImport));
            }
        });
    });
}
