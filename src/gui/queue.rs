//! Warteschlange: the writes waiting for HubSpot and the dead letters
//! waiting for a person, with a second tab for quarantined Ivoris records.
//!
//! The table is virtualised: only the visible rows are drawn, and their
//! pages are asked of the engine as they scroll into view. The payload of
//! the selected row shows property names but masks personal values, so the
//! screen can be shared in a support call.

use egui_extras::{Column, TableBuilder};
use serde_json::Value;

use crate::ledger::{OutboxFilter, OutboxItem, OutboxKind};

use super::i18n::Lang;
use super::outcome::outcome_color;
use super::state::{Intent, Model, Panel, QUEUE_PAGE};

/// Properties whose values are personal data; masked in the details.
const PERSONAL: [&str; 10] = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "date_of_birth",
    "address",
    "zip",
    "city",
    "dealname",
];

/// The mask shown instead of a personal value.
const MASK: &str = "••••••";

/// The queue's two tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueTab {
    /// Outbox rows.
    #[default]
    Outbox,
    /// Quarantined records.
    Quarantine,
}

/// What only the queue's drawing needs.
#[derive(Debug, Default)]
pub struct QueueView {
    /// The tab shown.
    pub tab: QueueTab,
    /// The filter being edited (sent as an intent when it changes).
    pub filter: OutboxFilter,
    /// The selected row's id.
    pub selected: Option<i64>,
    /// A dead letter waiting for the confirmation of „Verwerfen“.
    pub confirm_discard: Option<i64>,
}

/// A kind of write in words.
pub fn kind_name(lang: Lang, kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Contact => lang.pick("Kontakte", "contacts"),
        OutboxKind::Deal => lang.pick("Deals", "deals"),
        OutboxKind::Appointment => lang.pick("Termine", "appointments"),
        OutboxKind::Association => lang.pick("Verknüpfungen", "associations"),
        OutboxKind::Merge => lang.pick("Zusammenführungen", "merges"),
        OutboxKind::Erasure => lang.pick("Löschungen (DSGVO)", "erasures (GDPR)"),
    }
}

/// One row's kind in words.
fn kind_single(lang: Lang, kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Contact => lang.pick("Kontakt", "contact"),
        OutboxKind::Deal => lang.pick("Deal", "deal"),
        OutboxKind::Appointment => lang.pick("Termin", "appointment"),
        OutboxKind::Association => lang.pick("Verknüpfung", "association"),
        OutboxKind::Merge => lang.pick("Zusammenführung", "merge"),
        OutboxKind::Erasure => lang.pick("Löschung (DSGVO)", "erasure (GDPR)"),
    }
}

/// The payload with the values of personal properties replaced by a mask,
/// at any depth; names and everything else stay readable.
pub fn mask_personal(payload: &Value) -> Value {
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let masked = if PERSONAL.contains(&key.as_str()) && !value.is_null() {
                        Value::String(MASK.to_owned())
                    } else {
                        mask_personal(value)
                    };
                    (key.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_personal).collect()),
        other => other.clone(),
    }
}

/// Draws the queue.
pub fn queue_ui(ui: &mut egui::Ui, model: &Model, view: &mut QueueView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.heading(Panel::Queue.title(lang));
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.selectable_value(
            &mut view.tab,
            QueueTab::Outbox,
            lang.pick("Schreibvorgänge", "Writes"),
        );
        let quarantined = model
            .quarantine
            .as_ref()
            .map(|q| format!(" ({})", lang.number(q.len() as u64)))
            .unwrap_or_default();
        if ui
            .selectable_value(
                &mut view.tab,
                QueueTab::Quarantine,
                format!("{}{quarantined}", lang.pick("Quarantäne", "Quarantine")),
            )
            .clicked()
        {
            intents.push(Intent::LoadQuarantine);
        }
    });
    ui.separator();
    match view.tab {
        QueueTab::Outbox => intents.extend(outbox_ui(ui, model, view)),
        QueueTab::Quarantine => quarantine_ui(ui, model),
    }
    intents
}

/// Counts, filter, table and details of the outbox.
fn outbox_ui(ui: &mut egui::Ui, model: &Model, view: &mut QueueView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    counts_ui(ui, model, &mut intents);
    ui.add_space(6.0);
    filter_ui(ui, model, view);
    if view.filter != model.queue.filter {
        intents.push(Intent::SetQueueFilter(view.filter.clone()));
    }
    ui.add_space(4.0);
    let Some(total) = model.queue.total else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Warteschlange wird gelesen …", "Reading the queue …"));
        });
        return intents;
    };
    if total == 0 {
        ui.weak(lang.pick(
            "Keine Einträge – alles ist bei HubSpot angekommen.",
            "No entries – everything reached HubSpot.",
        ));
        return intents;
    }
    let table_height = (ui.available_height() * 0.55).max(120.0);
    ui.push_id("queue_table", |ui| {
        table_ui(ui, model, view, table_height, total, &mut intents);
    });
    ui.separator();
    details_ui(ui, model, view, &mut intents);
    intents
}

/// Pending and dead rows per kind.
fn counts_ui(ui: &mut egui::Ui, model: &Model, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    let Some(overview) = &model.overview else {
        return;
    };
    let queue = &overview.queue;
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{}: {}",
            lang.pick("Wartend", "Pending"),
            lang.number(queue.pending())
        ));
        ui.separator();
        let dead = queue.dead();
        let text = format!(
            "{}: {}",
            lang.pick("Fehlgeschlagen", "Dead letters"),
            lang.number(dead)
        );
        if dead > 0 {
            ui.colored_label(ui.visuals().error_fg_color, text);
        } else {
            ui.label(text);
        }
        for (kind, pending, dead) in &queue.by_kind {
            ui.separator();
            // One piece: moves to the next line whole instead of breaking.
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!(
                        "{}: {} {}, {} {}",
                        kind_name(lang, *kind),
                        lang.number(*pending),
                        lang.pick("wartend", "pending"),
                        lang.number(*dead),
                        lang.pick("fehlgeschl.", "dead")
                    ))
                    .weak(),
                )
                .extend(),
            );
        }
        if dead > 0
            && ui
                .button(lang.pick(
                    "Alle fehlgeschlagenen erneut versuchen",
                    "Retry all dead letters",
                ))
                .clicked()
        {
            intents.push(Intent::RetryDead(Vec::new()));
        }
    });
}

/// State, kind, location and text filter.
fn filter_ui(ui: &mut egui::Ui, model: &Model, view: &mut QueueView) {
    let lang = model.lang();
    ui.horizontal_wrapped(|ui| {
        let state_text = |dead: Option<bool>| match dead {
            None => lang.pick("Alle Zustände", "All states"),
            Some(false) => lang.pick("Wartend", "Pending"),
            Some(true) => lang.pick("Fehlgeschlagen", "Dead letters"),
        };
        egui::ComboBox::from_label(lang.pick("Zustand", "State"))
            .selected_text(state_text(view.filter.dead))
            .show_ui(ui, |ui| {
                for dead in [None, Some(false), Some(true)] {
                    ui.selectable_value(&mut view.filter.dead, dead, state_text(dead));
                }
            });
        let kind_text = |kind: Option<OutboxKind>| match kind {
            None => lang.pick("Alle Arten", "All kinds"),
            Some(kind) => kind_name(lang, kind),
        };
        egui::ComboBox::from_label(lang.pick("Art", "Kind"))
            .selected_text(kind_text(view.filter.kind))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut view.filter.kind, None, kind_text(None));
                for kind in OutboxKind::PHASES {
                    ui.selectable_value(&mut view.filter.kind, Some(kind), kind_text(Some(kind)));
                }
            });
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
        let location_text = view
            .filter
            .location
            .as_ref()
            .and_then(|key| locations.iter().find(|(k, _)| k == key))
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| lang.pick("Alle Standorte", "All locations").to_owned());
        egui::ComboBox::from_label(lang.pick("Standort", "Location"))
            .selected_text(location_text)
            .show_ui(ui, |ui| {
                ui.selectable_value(
                    &mut view.filter.location,
                    None,
                    lang.pick("Alle Standorte", "All locations"),
                );
                for (key, name) in &locations {
                    ui.selectable_value(&mut view.filter.location, Some(key.clone()), name);
                }
            });
        let label = ui.label(lang.pick("Suche:", "Search:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.filter.text)
                .hint_text(lang.pick("Schlüssel oder Fehler", "key or error"))
                .desired_width(200.0),
        )
        .labelled_by(label.id);
    });
}

/// The virtualised table of rows.
fn table_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &mut QueueView,
    height: f32,
    total: u64,
    intents: &mut Vec<Intent>,
) {
    let lang = model.lang();
    let bad = ui.visuals().error_fg_color;
    let mut clicked = None;
    // A click on a cell's text selects the row, not the text.
    ui.style_mut().interaction.selectable_labels = false;
    TableBuilder::new(ui)
        .striped(true)
        .sense(egui::Sense::click())
        .max_scroll_height(height)
        .min_scrolled_height(height)
        .auto_shrink([false, true])
        .column(Column::auto().at_least(60.0))
        .column(Column::auto().at_least(90.0))
        .column(Column::auto().at_least(220.0).clip(true))
        .column(Column::auto().at_least(90.0))
        .column(Column::auto().at_least(110.0))
        .column(Column::auto().at_least(60.0))
        .column(Column::remainder().clip(true))
        .header(22.0, |mut header| {
            for title in [
                "#",
                lang.pick("Art", "Kind"),
                lang.pick("Schlüssel", "Key"),
                lang.pick("Standort", "Location"),
                lang.pick("Zustand", "State"),
                lang.pick("Versuche", "Attempts"),
                lang.pick("Letzter Fehler", "Last error"),
            ] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(20.0, total as usize, |mut row| {
                let index = row.index();
                let Some(item) = model.queue.row(index) else {
                    let page = index - index % QUEUE_PAGE;
                    if !model.queue.requested.contains(&page) {
                        intents.push(Intent::LoadQueuePage(page));
                    }
                    row.col(|ui| {
                        ui.weak("…");
                    });
                    return;
                };
                row.set_selected(view.selected == Some(item.id));
                row.col(|ui| {
                    ui.label(item.id.to_string());
                });
                row.col(|ui| {
                    ui.label(kind_single(lang, item.kind));
                });
                row.col(|ui| {
                    ui.label(&item.record_key);
                });
                row.col(|ui| {
                    ui.label(item.location_key.as_deref().unwrap_or("–"));
                });
                row.col(|ui| {
                    if item.dead {
                        ui.colored_label(bad, lang.pick("Fehlgeschlagen", "Dead letter"));
                    } else {
                        ui.label(lang.pick("Wartend", "Pending"));
                    }
                });
                row.col(|ui| {
                    ui.label(item.attempts.to_string());
                });
                row.col(|ui| {
                    let error = item.last_error.as_deref().map(|e| lang.half(e));
                    ui.add(egui::Label::new(error.unwrap_or_default()).truncate());
                });
                if row.response().clicked() {
                    clicked = Some(item.id);
                }
            });
        });
    if let Some(id) = clicked {
        view.selected = Some(id);
    }
}

/// Details and actions of the selected row.
fn details_ui(ui: &mut egui::Ui, model: &Model, view: &mut QueueView, intents: &mut Vec<Intent>) {
    let lang = model.lang();
    let Some(item) = view.selected.and_then(|id| model.queue.find(id)) else {
        ui.weak(lang.pick(
            "Eine Zeile auswählen, um Einzelheiten zu sehen.",
            "Select a row to see its details.",
        ));
        return;
    };
    let item: OutboxItem = item.clone();
    ui.horizontal(|ui| {
        ui.strong(format!("#{} · {}", item.id, item.record_key));
        if item.dead {
            if ui
                .button(lang.pick("Erneut versuchen", "Retry"))
                .on_hover_text(lang.pick(
                    "Wird mit der nächsten Synchronisation erneut gesendet",
                    "Sent again with the next sync",
                ))
                .clicked()
            {
                intents.push(Intent::RetryDead(vec![item.id]));
            }
            if ui.button(lang.pick("Verwerfen", "Discard")).clicked() {
                view.confirm_discard = Some(item.id);
            }
        }
    });
    egui::Grid::new("queue_details")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label(lang.pick("Art", "Kind"));
            ui.label(kind_single(lang, item.kind));
            ui.end_row();
            ui.label(lang.pick("Versuche", "Attempts"));
            ui.label(item.attempts.to_string());
            ui.end_row();
            ui.label(lang.pick("Letzter Fehler", "Last error"));
            ui.label(
                item.last_error
                    .as_deref()
                    .map(|e| lang.half(e))
                    .unwrap_or_else(|| "–".to_owned()),
            );
            ui.end_row();
        });
    ui.label(lang.pick(
        "Inhalt (persönliche Angaben verdeckt):",
        "Payload (personal data masked):",
    ));
    let text = serde_json::to_string_pretty(&mask_personal(&item.payload)).unwrap_or_default();
    egui::ScrollArea::vertical()
        .id_salt("queue_payload")
        .auto_shrink([false, true])
        .show(ui, |ui| {
            ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
        });
    if view.confirm_discard == Some(item.id) {
        confirm_discard_ui(ui, lang, view, item.id, intents);
    }
}

/// Asks before a dead letter is removed for good.
fn confirm_discard_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut QueueView,
    id: i64,
    intents: &mut Vec<Intent>,
) {
    let modal = egui::Modal::new(egui::Id::unique("confirm_discard")).show(ui.ctx(), |ui| {
        ui.heading(lang.pick("Eintrag verwerfen?", "Discard entry?"));
        ui.label(lang.pick(
            "Der Schreibvorgang wird nicht mehr an HubSpot gesendet. Ändert sich der Datensatz in Ivoris, wird er neu geplant.",
            "The write will no longer be sent to HubSpot. If the record changes in Ivoris, it is planned again.",
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button(lang.pick("Verwerfen", "Discard")).clicked() {
                intents.push(Intent::DiscardDead(id));
                view.confirm_discard = None;
                view.selected = None;
            }
            if ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                view.confirm_discard = None;
            }
        });
    });
    if modal.should_close() {
        view.confirm_discard = None;
    }
}

/// Open quarantine entries with their reasons (raw values stay hidden).
fn quarantine_ui(ui: &mut egui::Ui, model: &Model) {
    let lang = model.lang();
    let Some(entries) = &model.quarantine else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Quarantäne wird gelesen …", "Reading quarantine …"));
        });
        return;
    };
    if entries.is_empty() {
        ui.colored_label(
            outcome_color(ui, Some(crate::ledger::RunOutcome::Success)),
            lang.pick(
                "Keine Datensätze in Quarantäne.",
                "No records in quarantine.",
            ),
        );
        return;
    }
    ui.label(lang.pick(
        "Diese Ivoris-Datensätze wurden nicht übernommen. Sie lösen sich selbst, sobald die Ursache in Ivoris behoben ist.",
        "These Ivoris records were not taken over. They resolve themselves once the cause is fixed in Ivoris.",
    ));
    ui.add_space(4.0);
    ui.push_id("quarantine_table", |ui| {
        TableBuilder::new(ui)
            .striped(true)
            .auto_shrink([false, false])
            .column(Column::auto().at_least(90.0))
            .column(Column::auto().at_least(100.0))
            .column(Column::auto().at_least(90.0))
            .column(Column::auto().at_least(90.0))
            .column(Column::auto().at_least(120.0))
            .column(Column::remainder().clip(true))
            .header(22.0, |mut header| {
                for title in [
                    lang.pick("Standort", "Location"),
                    lang.pick("Quelle", "Source"),
                    lang.pick("Datensatz", "Record"),
                    lang.pick("Feld", "Field"),
                    lang.pick("Seit", "Since"),
                    lang.pick("Grund", "Reason"),
                ] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(20.0, entries.len(), |mut row| {
                    let Some(entry) = entries.get(row.index()) else {
                        return;
                    };
                    row.col(|ui| {
                        ui.label(&entry.item.location_key);
                    });
                    row.col(|ui| {
                        ui.label(&entry.item.source);
                    });
                    row.col(|ui| {
                        ui.label(entry.item.record_id.as_deref().unwrap_or("–"));
                    });
                    row.col(|ui| {
                        ui.label(entry.item.field.as_deref().unwrap_or("–"));
                    });
                    row.col(|ui| {
                        ui.label(super::log::local_time(&entry.created_at));
                    });
                    row.col(|ui| {
                        let reason = match lang {
                            Lang::De => &entry.item.reason_de,
                            Lang::En => &entry.item.reason_en,
                        };
                        ui.add(egui::Label::new(reason).truncate())
                            .on_hover_text(reason);
                    });
                });
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_values_are_masked_and_names_kept() {
        let payload = json!({
            "properties": {
                "firstname": "Erika",
                "lastname": "Musterfrau",
                "email": "erika@example.org",
                "date_of_birth": "1970-01-01",
                "ivoris_patient_key": "nord:17",
                "dealname": "Erika Musterfrau – Prophylaxe",
                "phone": null
            }
        });
        let masked = mask_personal(&payload);
        let properties = &masked["properties"];
        for name in [
            "firstname",
            "lastname",
            "email",
            "date_of_birth",
            "dealname",
        ] {
            assert_eq!(properties[name], MASK, "{name}");
        }
        assert_eq!(properties["ivoris_patient_key"], "nord:17");
        assert!(properties["phone"].is_null());
        let text = masked.to_string();
        assert!(!text.contains("Erika"));
    }
}
