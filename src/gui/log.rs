//! Protokoll: the run history — start, duration, trigger, locations,
//! counts, outcome and message of every run, newest first — and below it
//! what the engine logged since the latest sync started, filterable by
//! level.

use std::collections::VecDeque;

use egui_extras::{Column, TableBuilder};

use crate::ledger::RunRecord;
use crate::logging::LiveLine;

use super::i18n::Lang;
use super::outcome::{outcome_color, outcome_text};
use super::state::{Intent, Model, Panel};
use super::top_bar::duration_text;

/// Lines of the current run kept for the Protokoll; older ones are
/// dropped (the log file keeps everything).
const LIVE_LINES_KEPT: usize = 10_000;

/// What only the log's drawing needs.
#[derive(Debug, Default)]
pub struct LogView {
    /// Whether dry runs are hidden.
    pub hide_dry_runs: bool,
    /// The least important level shown in the run's log.
    pub level: LevelChoice,
}

/// The level filter of the run's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LevelChoice {
    /// Errors only.
    Errors,
    /// Errors and warnings.
    Warnings,
    /// Everything a practice manager reads.
    #[default]
    Info,
    /// Also the details support asks for.
    Details,
}

impl LevelChoice {
    const ALL: [LevelChoice; 4] = [
        LevelChoice::Errors,
        LevelChoice::Warnings,
        LevelChoice::Info,
        LevelChoice::Details,
    ];

    fn label(self, lang: Lang) -> &'static str {
        match self {
            LevelChoice::Errors => lang.pick("Nur Fehler", "Errors only"),
            LevelChoice::Warnings => lang.pick("Fehler und Warnungen", "Errors and warnings"),
            LevelChoice::Info => lang.pick("Informationen", "Information"),
            LevelChoice::Details => lang.pick("Alle Details", "All details"),
        }
    }

    fn shows(self, level: tracing::Level) -> bool {
        let most_verbose = match self {
            LevelChoice::Errors => tracing::Level::ERROR,
            LevelChoice::Warnings => tracing::Level::WARN,
            LevelChoice::Info => tracing::Level::INFO,
            LevelChoice::Details => tracing::Level::TRACE,
        };
        // tracing orders more verbose levels as greater.
        level <= most_verbose
    }
}

/// What the engine logged since the latest sync started. Details (debug
/// lines) are kept apart from messages (info and above), so thousands of
/// request details never push a warning out of the view.
#[derive(Debug, Default)]
pub struct LiveLogLines {
    /// The newest [`LIVE_LINES_KEPT`] info, warning and error lines, oldest
    /// first, each with its arrival number.
    messages: VecDeque<(u64, LiveLine)>,
    /// The newest [`LIVE_LINES_KEPT`] detail lines, the same way.
    details: VecDeque<(u64, LiveLine)>,
    /// Arrival number of the next line.
    next: u64,
    /// Messages dropped to stay within the limit.
    dropped_messages: u64,
    /// Details dropped to stay within the limit.
    dropped_details: u64,
}

impl LiveLogLines {
    /// Forgets everything (a new run starts).
    pub fn clear(&mut self) {
        *self = LiveLogLines::default();
    }

    /// Appends new lines, dropping the oldest of their kind beyond the
    /// limit.
    pub fn extend(&mut self, new: impl Iterator<Item = LiveLine>) {
        for line in new {
            let (lines, dropped) = if line.level <= tracing::Level::INFO {
                (&mut self.messages, &mut self.dropped_messages)
            } else {
                (&mut self.details, &mut self.dropped_details)
            };
            if lines.len() == LIVE_LINES_KEPT {
                lines.pop_front();
                *dropped += 1;
            }
            lines.push_back((self.next, line));
            self.next += 1;
        }
    }

    /// The kept lines at `choice`, in the order they were logged.
    fn shown(&self, choice: LevelChoice) -> Vec<&LiveLine> {
        let messages = self
            .messages
            .iter()
            .filter(|(_, line)| choice.shows(line.level));
        if choice != LevelChoice::Details {
            return messages.map(|(_, line)| line).collect();
        }
        let mut all: Vec<&(u64, LiveLine)> = messages.chain(self.details.iter()).collect();
        all.sort_unstable_by_key(|(n, _)| *n);
        all.into_iter().map(|(_, line)| line).collect()
    }

    /// Lines at `choice` that were dropped (the log file has them).
    fn dropped(&self, choice: LevelChoice) -> u64 {
        if choice == LevelChoice::Details {
            self.dropped_messages + self.dropped_details
        } else {
            self.dropped_messages
        }
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.messages.len() + self.details.len()
    }

    /// Whether nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    let history_height = (ui.available_height() * 0.45).max(120.0);
    match &model.runs {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(lang.pick("Protokoll wird gelesen …", "Reading the log …"));
            });
        }
        Some(runs) => {
            let shown: Vec<RunRecord> = runs
                .iter()
                .filter(|run| !(view.hide_dry_runs && run.dry_run))
                .cloned()
                .collect();
            if shown.is_empty() {
                ui.weak(lang.pick("Noch keine Läufe.", "No runs yet."));
            } else {
                ui.push_id("run_history", |ui| {
                    ui.set_max_height(history_height);
                    runs_table_ui(ui, lang, &shown, true);
                });
            }
        }
    }
    ui.separator();
    live_log_ui(ui, model, view);
    intents
}

/// The lines the engine logged since the latest sync started.
fn live_log_ui(ui: &mut egui::Ui, model: &Model, view: &mut LogView) {
    let lang = model.lang();
    let log = &model.live_log;
    ui.horizontal(|ui| {
        ui.strong(if model.running {
            lang.pick(
                "Meldungen des laufenden Laufs",
                "Messages of the running sync",
            )
        } else {
            lang.pick("Meldungen des letzten Laufs", "Messages of the latest sync")
        });
        egui::ComboBox::from_id_salt("log_level")
            .selected_text(view.level.label(lang))
            .show_ui(ui, |ui| {
                for choice in LevelChoice::ALL {
                    ui.selectable_value(&mut view.level, choice, choice.label(lang));
                }
            })
            .response
            .on_hover_text(lang.pick("Stufe", "Level"));
        let dropped = log.dropped(view.level);
        if dropped > 0 {
            ui.weak(format!(
                "{} {}",
                lang.number(dropped),
                lang.pick(
                    "ältere Zeilen nur in der Protokolldatei",
                    "older lines only in the log file"
                )
            ));
        }
    });
    let shown = log.shown(view.level);
    if shown.is_empty() {
        ui.weak(if log.is_empty() {
            lang.pick(
                "Noch keine Meldungen in dieser Sitzung – sie erscheinen hier, sobald synchronisiert wird.",
                "No messages in this session yet – they appear here once a sync runs.",
            )
        } else {
            lang.pick(
                "Keine Meldungen dieser Stufe.",
                "No messages at this level.",
            )
        });
        return;
    }
    let error = ui.visuals().error_fg_color;
    let warn = ui.visuals().warn_fg_color;
    ui.push_id("live_log", |ui| {
        TableBuilder::new(ui)
            .striped(true)
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .column(Column::auto().at_least(70.0))
            .column(Column::auto().at_least(80.0))
            .column(Column::remainder().clip(true))
            .body(|body| {
                body.rows(18.0, shown.len(), |mut row| {
                    let Some(line) = shown.get(row.index()) else {
                        return;
                    };
                    row.col(|ui| {
                        ui.label(
                            line.at
                                .with_timezone(&chrono_tz::Europe::Berlin)
                                .format("%H:%M:%S")
                                .to_string(),
                        );
                    });
                    row.col(|ui| {
                        let (text, color) = match line.level {
                            tracing::Level::ERROR => (lang.pick("Fehler", "Error"), Some(error)),
                            tracing::Level::WARN => (lang.pick("Warnung", "Warning"), Some(warn)),
                            tracing::Level::INFO => (lang.pick("Info", "Info"), None),
                            _ => (lang.pick("Detail", "Detail"), None),
                        };
                        match color {
                            Some(color) => ui.colored_label(color, text),
                            None => ui.label(text),
                        };
                    });
                    row.col(|ui| {
                        ui.add(egui::Label::new(&line.text).truncate())
                            .on_hover_text(&line.text);
                    });
                });
            });
    });
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
        table.auto_shrink([false, true])
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

    fn line(level: tracing::Level, text: &str) -> LiveLine {
        LiveLine {
            at: chrono::Utc::now(),
            level,
            text: text.to_owned(),
        }
    }

    #[test]
    fn details_never_push_messages_out_and_details_show_in_order() {
        let mut log = LiveLogLines::default();
        log.extend(std::iter::once(line(tracing::Level::WARN, "first")));
        log.extend((0..LIVE_LINES_KEPT + 10).map(|n| line(tracing::Level::DEBUG, &n.to_string())));
        log.extend(std::iter::once(line(tracing::Level::INFO, "last")));

        let messages: Vec<&str> = log
            .shown(LevelChoice::Info)
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(messages, ["first", "last"]);
        assert_eq!(log.dropped(LevelChoice::Info), 0);
        let warnings: Vec<&str> = log
            .shown(LevelChoice::Warnings)
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(warnings, ["first"]);

        let all = log.shown(LevelChoice::Details);
        assert_eq!(all.len(), LIVE_LINES_KEPT + 2);
        assert_eq!(all[0].text, "first");
        assert_eq!(all[1].text, "10", "the oldest details were dropped");
        assert_eq!(all[all.len() - 1].text, "last");
        assert_eq!(log.dropped(LevelChoice::Details), 10);

        log.clear();
        assert!(log.is_empty());
    }
}
