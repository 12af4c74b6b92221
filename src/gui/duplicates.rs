//! Duplikate: patients recorded twice (DESIGN.md §6), each group side by
//! side with the differing fields highlighted and the fullest record
//! suggested as primary. Staff dismiss a group („Kein Duplikat“, never
//! shown again) or mark a duplicate record's cases lost „Duplikat“ (undoable;
//! the next sync moves the deals). Every decision is audited by the engine.
//! The tabs lead to the second part (`portal_duplicates.rs`): duplicates
//! found in HubSpot, the „Verloren-Liste“ and the decision log.

use super::i18n::Lang;
use super::portal_duplicates::{PortalView, Tab, portal_ui, tabs_ui};
use super::state::{Intent, Model, Panel};
use crate::duplicates::{Field, Scope};
use crate::engine::duplicates::ReviewGroup;

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct DuplicatesView {
    /// The group shown side by side (its key).
    pub selected: Option<String>,
    /// The review's second part: HubSpot, the „Verloren-Liste“, the log.
    pub portal: PortalView,
}

/// What the review asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicatesIntent {
    /// Read the groups again.
    Reload,
    /// „Kein Duplikat“ for the group with this key.
    Dismiss(String),
    /// Mark (or unmark) a record's cases as confirmed duplicates.
    Mark {
        /// Location key.
        location: String,
        /// Ivoris patient Id.
        patient_id: String,
        /// Mark or undo.
        duplicate: bool,
    },
}

/// Draws the review.
pub fn duplicates_ui(ui: &mut egui::Ui, model: &Model, view: &mut DuplicatesView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.horizontal(|ui| {
        ui.heading(Panel::Duplicates.title(lang));
        if ui
            .small_button(lang.pick("Aktualisieren", "Refresh"))
            .clicked()
        {
            intents.push(Intent::Duplicates(DuplicatesIntent::Reload));
        }
    });
    intents.extend(
        tabs_ui(ui, lang, &mut view.portal)
            .into_iter()
            .map(Intent::Portal),
    );
    if view.portal.tab != Tab::Patients {
        let portal = portal_ui(ui, lang, &model.portal, &mut view.portal);
        intents.extend(portal.into_iter().map(Intent::Portal));
        return intents;
    }
    ui.weak(lang.pick(
        "Patienten, die doppelt erfasst sind: gleicher Name und Geburtstag, oder an einem anderen Standort dieselbe E-Mail mit gleichem Geburtstag oder Vornamen.",
        "Patients recorded twice: same name and birthday, or at another location the same e-mail with the same birthday or first name.",
    ));
    ui.add_space(6.0);
    let groups = match &model.duplicates {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(lang.pick("Patienten werden verglichen …", "Comparing patients …"));
            });
            return intents;
        }
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, lang.half(message));
            return intents;
        }
        Some(Ok(groups)) => groups,
    };
    if groups.is_empty() {
        ui.label(lang.pick("Keine offenen Duplikate.", "No open duplicates."));
        return intents;
    }
    let selected = view
        .selected
        .as_ref()
        .and_then(|key| groups.iter().find(|g| &g.group.key == key))
        .unwrap_or(&groups[0]);
    let selected_key = selected.group.key.clone();
    ui.columns(2, |columns| {
        list_ui(&mut columns[0], lang, groups, &selected_key, view);
        detail_ui(&mut columns[1], model, selected, &mut intents);
    });
    intents
}

/// The open groups, one line each.
fn list_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    groups: &[ReviewGroup],
    selected: &str,
    view: &mut DuplicatesView,
) {
    let german = lang == Lang::De;
    ui.strong(format!(
        "{} {}",
        lang.number(groups.len() as u64),
        lang.pick("offene Gruppen", "open groups")
    ));
    // Only the visible rows are drawn: a big chain may have many groups.
    let row_height = ui.spacing().interact_size.y;
    egui::ScrollArea::vertical()
        .id_salt("duplicate_groups")
        .auto_shrink([false, false])
        .show_rows(ui, row_height, groups.len(), |ui, rows| {
            for review in &groups[rows] {
                let group = &review.group;
                let first = &group.members[0];
                let name = format!(
                    "{}, {}",
                    first.lastname.as_deref().unwrap_or("–"),
                    first.firstname.as_deref().unwrap_or("–")
                );
                let text = format!(
                    "{name} · {} {} · {}",
                    group.members.len(),
                    lang.pick("Datensätze", "records"),
                    group.scope.label(german)
                );
                if ui.selectable_label(group.key == selected, text).clicked() {
                    view.selected = Some(group.key.clone());
                }
            }
        });
}

/// One group side by side, with its actions.
fn detail_ui(ui: &mut egui::Ui, model: &Model, review: &ReviewGroup, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    let german = lang == Lang::De;
    // Locations by their display name where the overview knows it.
    let location_name = |key: &str| -> String {
        model
            .overview
            .as_ref()
            .and_then(|o| o.locations.iter().find(|l| l.key == key))
            .map_or_else(|| key.to_owned(), |l| l.name.clone())
    };
    let group = &review.group;
    let reasons: Vec<&str> = group.reasons.iter().map(|r| r.label(german)).collect();
    ui.strong(group.scope.label(german));
    ui.weak(reasons.join(", "));
    ui.label(match group.scope {
        Scope::SamePractice => lang.pick(
            "Bitte in Ivoris zusammenführen – die App schreibt nie nach Ivoris. Bis dahin die Fälle des Duplikats als verloren markieren, damit HubSpot keine doppelten Deals zeigt.",
            "Please merge them in Ivoris – the app never writes to Ivoris. Until then mark the duplicate's cases lost, so HubSpot shows no duplicate deals.",
        ),
        Scope::AcrossLocations => lang.pick(
            "Dieselbe Person an mehreren Standorten: je Standort ein eigener Deal ist richtig. Nur wenn ein Standort die Person doppelt führt, die Fälle dort als verloren markieren.",
            "The same person at several locations: one deal per location is right. Only where a location keeps the person twice, mark the cases there lost.",
        ),
    });
    ui.add_space(6.0);
    let differing = group.differing();
    let highlight = ui.visuals().warn_fg_color;
    egui::ScrollArea::horizontal()
        .id_salt("duplicate_side_by_side")
        .show(ui, |ui| {
            egui::Grid::new(("duplicate_grid", &group.key))
                .striped(true)
                .num_columns(group.members.len() + 1)
                .spacing([16.0, 4.0])
                .show(ui, |ui| {
                    ui.label("");
                    for index in 0..group.members.len() {
                        if index == 0 {
                            ui.strong(lang.pick("Vorschlag: Hauptdatensatz", "Suggested primary"));
                        } else {
                            ui.strong(format!("{} {}", lang.pick("Datensatz", "Record"), index + 1));
                        }
                    }
                    ui.end_row();
                    for field in Field::ALL {
                        let differs = differing.contains(&field);
                        let title = field.label(german);
                        if differs {
                            ui.colored_label(highlight, title)
                                .on_hover_text(lang.pick("Werte unterscheiden sich", "Values differ"));
                        } else {
                            ui.label(title);
                        }
                        for member in &group.members {
                            let value = if field == Field::Location {
                                location_name(&member.location)
                            } else {
                                field.value(member)
                            };
                            let shown = if value.is_empty() { "–".to_owned() } else { value };
                            if differs {
                                ui.colored_label(highlight, shown);
                            } else {
                                ui.label(shown);
                            }
                        }
                        ui.end_row();
                    }
                    ui.strong(lang.pick("Fälle", "Cases"));
                    for (cases, marked) in &review.cases {
                        ui.label(if *marked > 0 {
                            format!(
                                "{} ({} {})",
                                lang.number(*cases),
                                lang.number(*marked),
                                lang.pick("als Duplikat verloren", "lost as duplicate")
                            )
                        } else {
                            lang.number(*cases)
                        });
                    }
                    ui.end_row();
                    ui.label("");
                    for (index, (member, (cases, marked))) in
                        group.members.iter().zip(&review.cases).enumerate()
                    {
                        let mark = |duplicate| {
                            Intent::Duplicates(DuplicatesIntent::Mark {
                                location: member.location.clone(),
                                patient_id: member.id.clone(),
                                duplicate,
                            })
                        };
                        if *marked > 0 {
                            if ui
                                .button(lang.pick("Markierung zurücknehmen", "Undo the mark"))
                                .on_hover_text(lang.pick(
                                    "Die nächste Synchronisation leitet die Phasen wieder aus den Terminen ab.",
                                    "The next sync derives the stages from the appointments again.",
                                ))
                                .clicked()
                            {
                                intents.push(mark(false));
                            }
                        } else if index > 0 && *cases > 0 {
                            if ui
                                .button(lang.pick("Fälle als Duplikat verlieren", "Lose cases as duplicate"))
                                .on_hover_text(lang.pick(
                                    "Die Deals dieses Datensatzes werden bei der nächsten Synchronisation „Verloren“ mit Grund „Duplikat“. Rückgängig machbar.",
                                    "This record's deals become lost with reason \"Duplikat\" with the next sync. Can be undone.",
                                ))
                                .clicked()
                            {
                                intents.push(mark(true));
                            }
                        } else {
                            ui.label("");
                        }
                    }
                    ui.end_row();
                });
        });
    ui.add_space(8.0);
    // The column is justified; the button keeps its own width.
    ui.with_layout(egui::Layout::left_to_right(egui::Align::Min), |ui| {
        if ui
            .button(lang.pick("Kein Duplikat", "Not a duplicate"))
            .on_hover_text(lang.pick(
                "Diese Gruppe wird nicht wieder angezeigt (im Prüfprotokoll vermerkt).",
                "This group is not shown again (recorded in the audit log).",
            ))
            .clicked()
        {
            intents.push(Intent::Duplicates(DuplicatesIntent::Dismiss(
                group.key.clone(),
            )));
        }
    });
}
