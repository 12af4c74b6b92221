//! The dry run in the app (DESIGN.md §6): before the first real sync of a
//! location the app offers a „Probelauf“ — Ivoris is read, HubSpot's
//! portal is read, the plan is made and rolled back, nothing is sent — and
//! shows what would be adopted from the previous integration, closed lost
//! „Duplikat“, created and written, per location. From the result the real
//! sync is one click.

use crate::engine::adopt::AdoptionReport;
use crate::engine::run::{LocationSummary, SyncSummary};
use crate::ledger::OutboxKind;

use super::i18n::Lang;
use super::state::{Intent, Model};

/// The chosen locations (all when none is chosen) that HubSpot has
/// confirmed nothing of yet and no finished sync covered: their first sync
/// would adopt, close and create. Empty while the overview is not known.
pub fn never_synced(model: &Model) -> Vec<String> {
    let (Some(info), Some(overview)) = (&model.info, &model.overview) else {
        return Vec::new();
    };
    let chosen = &model.ui.locations;
    info.settings
        .locations
        .iter()
        .filter(|l| chosen.is_empty() || chosen.contains(&l.key))
        .filter(|l| {
            overview
                .locations
                .iter()
                .find(|o| o.key == l.key)
                .is_none_or(|o| {
                    o.confirmed.contacts + o.confirmed.deals + o.confirmed.appointments == 0
                })
        })
        .map(|l| l.name.clone())
        .collect()
}

/// The question before a first sync, while `model.first_sync_prompt` holds
/// the locations concerned.
pub fn prompt_ui(ctx: &egui::Context, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(names) = &model.first_sync_prompt else {
        return intents;
    };
    let lang = model.lang();
    egui::Modal::new(egui::Id::unique("first_sync_prompt")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading(lang.pick("Erste Synchronisation", "First sync"));
        ui.label(format!(
            "{} {}",
            lang.pick(
                "Zum ersten Mal synchronisiert werden:",
                "Synchronised for the first time:"
            ),
            names.join(", ")
        ));
        ui.add_space(4.0);
        ui.label(lang.pick(
            "HubSpot kann schon Kontakte und Deals der bisherigen Integration enthalten. \
             Ein Probelauf liest Ivoris und HubSpot und zeigt, was übernommen, als „Duplikat“ \
             geschlossen und neu angelegt würde – ohne etwas an HubSpot zu senden.",
            "HubSpot may already hold contacts and deals of the previous integration. \
             A dry run reads Ivoris and HubSpot and shows what would be adopted, closed \
             lost \"Duplikat\" and created – without sending anything to HubSpot.",
        ));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui
                .button(
                    egui::RichText::new(lang.pick("Probelauf starten", "Start dry run")).strong(),
                )
                .clicked()
            {
                intents.push(Intent::StartDryRun);
            }
            if ui
                .button(lang.pick("Direkt synchronisieren", "Sync without dry run"))
                .clicked()
            {
                intents.push(Intent::StartSyncNow);
            }
            if ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                intents.push(Intent::CloseDryRun);
            }
        });
    });
    intents
}

/// The result of the latest dry run, while `model.dry_run_result` holds it.
pub fn result_ui(ctx: &egui::Context, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let Some(summary) = &model.dry_run_result else {
        return intents;
    };
    let lang = model.lang();
    egui::Modal::new(egui::Id::unique("dry_run_result")).show(ctx, |ui| {
        ui.set_max_width(640.0);
        ui.heading(lang.pick("Ergebnis des Probelaufs", "Dry run result"));
        ui.label(lang.pick(
            "Nichts wurde an HubSpot gesendet. So würde die Synchronisation ausgehen:",
            "Nothing was sent to HubSpot. This is what the sync would do:",
        ));
        if let Some(message) = &summary.message {
            ui.colored_label(ui.visuals().warn_fg_color, lang.half(message));
        }
        ui.add_space(6.0);
        result_grid(ui, lang, summary, model);
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui
                .button(
                    egui::RichText::new(lang.pick("Synchronisieren wie gezeigt", "Sync as shown"))
                        .strong(),
                )
                .clicked()
            {
                intents.push(Intent::StartSyncNow);
            }
            if ui.button(lang.pick("Schließen", "Close")).clicked() {
                intents.push(Intent::CloseDryRun);
            }
        });
    });
    intents
}

/// One row per figure, one column per location.
fn result_grid(ui: &mut egui::Ui, lang: Lang, summary: &SyncSummary, model: &Model) {
    let rows = result_rows(lang, summary);
    egui::Grid::new("dry_run_grid")
        .striped(true)
        .num_columns(summary.locations.len() + 1)
        .show(ui, |ui| {
            ui.label("");
            for location in &summary.locations {
                ui.strong(location_name(model, &location.key));
            }
            ui.end_row();
            for (label, values) in rows {
                ui.label(label);
                for value in values {
                    ui.label(value);
                }
                ui.end_row();
            }
        });
}

/// The location's display name from the settings, else its key.
fn location_name(model: &Model, key: &str) -> String {
    model
        .info
        .as_ref()
        .and_then(|info| info.settings.locations.iter().find(|l| l.key == key))
        .map_or_else(|| key.to_owned(), |l| l.name.clone())
}

/// The figures of a dry run: label, then one value per location (`–`
/// where a location did not get as far as planning, with its problem).
pub fn result_rows(lang: Lang, summary: &SyncSummary) -> Vec<(String, Vec<String>)> {
    type Figure = fn(&AdoptionReport) -> u64;
    let adoption: [(&str, &str, Figure); 6] = [
        ("Kontakte übernommen", "Contacts adopted", |a| {
            a.contacts_adopted
        }),
        ("Kontakte neu", "Contacts created", |a| a.contacts_created),
        ("Deals übernommen", "Deals adopted", |a| a.deals_adopted),
        (
            "Alte Deals als „Duplikat“ geschlossen",
            "Old deals closed lost \"Duplikat\"",
            |a| a.deals_closed,
        ),
        (
            "Alte Deals in den Deal ihres Falls zusammengeführt",
            "Old deals merged into their case's deal",
            |a| a.deals_merged,
        ),
        ("Deals neu", "Deals created", |a| a.deals_created),
    ];
    let mut rows = Vec::new();
    for (de, en, figure) in adoption {
        let values = summary
            .locations
            .iter()
            .map(|l| cell(lang, l, |plan| figure(&plan.adoption)))
            .collect();
        rows.push((lang.pick(de, en).to_owned(), values));
    }
    for kind in OutboxKind::PLANNED {
        let values = summary
            .locations
            .iter()
            .map(|l| {
                cell(lang, l, |plan| {
                    plan.queued.get(&kind).map_or(0, |q| q.to_write())
                })
            })
            .collect();
        rows.push((
            format!(
                "{} {}",
                kind_label(lang, kind),
                lang.pick("zu schreiben", "to write")
            ),
            values,
        ));
    }
    rows
}

/// A location's figure, or why it has none.
fn cell(
    lang: Lang,
    location: &LocationSummary,
    figure: impl Fn(&crate::engine::planner::PlanReport) -> u64,
) -> String {
    match (&location.plan, &location.problem) {
        (Some(plan), _) => lang.number(figure(plan)),
        (None, Some(problem)) => format!("– ({})", lang.half(problem)),
        (None, None) => "–".to_owned(),
    }
}

/// The record kind in words.
fn kind_label(lang: Lang, kind: OutboxKind) -> String {
    let (de, en) = match kind {
        OutboxKind::Contact => ("Kontakte", "Contacts"),
        OutboxKind::Deal => ("Deals", "Deals"),
        OutboxKind::Appointment => ("Termine", "Appointments"),
        OutboxKind::Association => ("Verknüpfungen", "Associations"),
        OutboxKind::Merge => ("Zusammenführungen", "Merges"),
        OutboxKind::Erasure => ("Löschungen (DSGVO)", "Erasures (GDPR)"),
    };
    lang.pick(de, en).to_owned()
}
