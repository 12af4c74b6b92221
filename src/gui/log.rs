//! Protokoll: the run history — start, duration, trigger, locations,
//! counts, outcome and message of every run, newest first.

use egui_extras::{Column, TableBuilder};

use crate::ledger::RunRecord;

use super::app::{Intent, Model, Panel, outcome_color, outcome_text};
use super::i18n::Lang;
use super::top_bar::duration_text;

/// What only the log's drawing needs.
#[derive(Debug, Default)]
pub struct LogView {
    /// Whether dry runs are hidden.
    pub hide_dry_runs: bool,
}

/// Draws the run history.
pub fn log_ui(ui: &mut egui::Ui, model: &Model, view: &mut LogView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.horizontal(|ui| {
        ui.heading(Panel::Log.title(lang));
        if ui
            .small_button(lang.pick("Aktualisieren", "Refresh"))
            .clicked()
        {
            intents.push(Intent::LoadRuns);
        }
        ui.checkbox(
            &mut view.hide_dry_runs,
            lang.pick("Probeläufe ausblenden", "Hide dry runs"),
        );
    });
    ui.add_space(6.0);
    let Some(runs) = &model.runs else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Protokoll wird gelesen …", "Reading the log …"));
        });
        return intents;
    };
    let shown: Vec<RunRecord> = runs
        .iter()
        .filter(|run| !(view.hide_dry_runs && run.dry_run))
        .cloned()
        .collect();
    if shown.is_empty() {
        ui.weak(lang.pick("Noch keine Läufe.", "No runs yet."));
        return intents;
    }
    runs_table_ui(ui, lang, &shown, true);
    intents
}

/// A table of runs; `full` adds the call counts and lets the table fill
/// the panel with its own scrolling.
pub fn runs_table_ui(ui: &mut egui::Ui, lang: Lang, runs: &[RunRecord], full: bool) {
    let mut table = TableBuilder::new(ui)
        .striped(true)
        .column(Column::auto().at_least(120.0))
        .column(Column::auto().at_least(60.0))
        .column(Column::auto().at_least(60.0))
        .column(Column::auto().at_least(150.0).clip(true))
        .columns(Column::auto().at_least(60.0), 5)
        .column(Column::auto().at_least(100.0))
        .column(Column::remainder().clip(true));
    table = if full {
        table.auto_shrink([false, false])
    } else {
        table.vscroll(false)
    };
    table
        .header(22.0, |mut header| {
            for title in [
                lang.pick("Start", "Start"),
                lang.pick("Dauer", "Duration"),
                lang.pick("Auslöser", "Trigger"),
                lang.pick("Standorte", "Locations"),
                lang.pick("Gelesen", "Read"),
                lang.pick("Geschrieben", "Written"),
                lang.pick("Unverändert", "Unchanged"),
                lang.pick("Fehlgeschl.", "Failed"),
                lang.pick("Quarantäne", "Quarantined"),
                lang.pick("Ergebnis", "Outcome"),
                lang.pick("Meldung", "Message"),
            ] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(20.0, runs.len(), |mut row| {
                let Some(run) = runs.get(row.index()) else {
                    return;
                };
                row.col(|ui| {
                    ui.label(local_time(&run.started_at));
                });
                row.col(|ui| {
                    ui.label(
                        run.duration_ms
                            .map(|ms| duration_text(lang, (ms.max(0) as u64).div_ceil(1000)))
                            .unwrap_or_else(|| "–".to_owned()),
                    );
                });
                row.col(|ui| {
                    ui.label(trigger_text(lang, &run.trigger, run.dry_run));
                });
                row.col(|ui| {
                    ui.label(&run.locations);
                });
                for value in [
                    run.counts.read,
                    run.counts.written,
                    run.counts.unchanged,
                    run.counts.failed,
                    run.counts.quarantined,
                ] {
                    row.col(|ui| {
                        ui.label(lang.number(value));
                    });
                }
                row.col(|ui| {
                    ui.colored_label(
                        outcome_color(ui, run.outcome),
                        outcome_text(lang, run.outcome),
                    );
                });
                row.col(|ui| {
                    let message = run.message.as_deref().map(|m| lang.half(m));
                    let text = message.clone().unwrap_or_default();
                    let response = ui.add(egui::Label::new(text).truncate());
                    if let Some(message) = message {
                        response.on_hover_text(message);
                    }
                });
            });
        });
}

/// Who started a run, in words.
fn trigger_text(lang: Lang, trigger: &str, dry_run: bool) -> String {
    let name = match trigger {
        "manual" => lang.pick("von Hand", "manual"),
        "schedule" => lang.pick("Zeitplan", "schedule"),
        "cli" => lang.pick("Kommandozeile", "command line"),
        other => return other.to_owned(),
    };
    if dry_run {
        format!("{name} ({})", lang.pick("Probe", "dry"))
    } else {
        name.to_owned()
    }
}

/// A stored UTC time as local Berlin time, `27.11.2026 14:05`.
pub fn local_time(utc: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(utc)
        .map(|time| {
            time.with_timezone(&chrono_tz::Europe::Berlin)
                .format("%d.%m.%Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| utc.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_shown_in_berlin_time() {
        assert_eq!(local_time("2026-11-27T13:05:00.000Z"), "27.11.2026 14:05");
        assert_eq!(local_time("kaputt"), "kaputt");
    }
}
