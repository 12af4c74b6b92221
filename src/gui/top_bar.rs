//! The top bar — locations to sync, „Jetzt synchronisieren“ / „Abbrechen“,
//! the progress of the running sync and the last result at a glance — and
//! the banners under it (demo mode, notices, a failed start).

use crate::engine::run::Progress;
use crate::ledger::RunOutcome;

use super::i18n::Lang;
use super::outcome::{outcome_color, outcome_text};
use super::queue::kind_name;
use super::run_progress::location_line;
use super::state::{Intent, LastResult, Model, Notice, Panel};

/// Draws the top bar.
pub fn top_bar_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.heading("Ivoris-HubSpot-Sync");
        ui.separator();
        intents.extend(locations_ui(ui, model));
        let ready = model.info.is_some();
        if model.running {
            let label = if model.cancelling {
                lang.pick("Wird abgebrochen …", "Cancelling …")
            } else {
                lang.pick("Abbrechen", "Cancel")
            };
            let button = ui
                .add_enabled(!model.cancelling, egui::Button::new(label))
                .on_hover_text(lang.pick(
                    "Hält die Synchronisation am nächsten sicheren Punkt an (F5)",
                    "Stops the sync at its next safe point (F5)",
                ));
            if button.clicked() {
                intents.push(Intent::CancelSync);
            }
        } else {
            let button = ui
                .add_enabled(
                    ready,
                    egui::Button::new(
                        egui::RichText::new(lang.pick("Jetzt synchronisieren", "Sync now"))
                            .strong(),
                    ),
                )
                .on_hover_text(lang.pick(
                    "Liest Ivoris und schreibt die Änderungen nach HubSpot (F5)",
                    "Reads Ivoris and writes the changes to HubSpot (F5)",
                ));
            if button.clicked() {
                intents.push(Intent::StartSync);
            }
            let dry = ui
                .add_enabled(ready, egui::Button::new(lang.pick("Probelauf", "Dry run")))
                .on_hover_text(lang.pick(
                    "Liest Ivoris und HubSpot und zeigt, was geschrieben, übernommen und                      geschlossen würde – sendet nichts",
                    "Reads Ivoris and HubSpot and shows what would be written, adopted and                      closed – sends nothing",
                ));
            if dry.clicked() {
                intents.push(Intent::StartDryRun);
            }
        }
        ui.separator();
        if model.running {
            progress_ui(ui, model);
        } else if !ready && model.setup_error.is_none() {
            ui.spinner();
            ui.label(if model.demo() || model.info.is_none() {
                lang.pick("Wird vorbereitet …", "Preparing …")
            } else {
                ""
            });
        } else {
            last_result_ui(ui, lang, model.last.as_ref());
            pending_ui(ui, model);
            next_run_ui(ui, model);
        }
    });
    if model.running && !model.run_progress.locations.is_empty() {
        locations_progress_ui(ui, model);
    }
    ui.add_space(4.0);
    intents
}

/// The multi-select of locations.
fn locations_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    let Some(info) = &model.info else {
        return intents;
    };
    let all: Vec<&str> = info
        .settings
        .locations
        .iter()
        .map(|l| l.key.as_str())
        .collect();
    let chosen = &model.ui.locations;
    let summary = if chosen.is_empty() || chosen.len() == all.len() {
        format!(
            "{} ({})",
            lang.pick("Alle Standorte", "All locations"),
            all.len()
        )
    } else {
        format!("{} {} {}", chosen.len(), lang.pick("von", "of"), all.len())
            + lang.pick(" Standorten", " locations")
    };
    ui.add_enabled_ui(!model.running, |ui| {
        ui.menu_button(summary, |ui| {
            for location in &info.settings.locations {
                let mut on = chosen.is_empty() || chosen.contains(&location.key);
                if ui.checkbox(&mut on, &location.name).changed() {
                    let mut keys: Vec<String> = if chosen.is_empty() {
                        all.iter().map(|k| (*k).to_owned()).collect()
                    } else {
                        chosen.clone()
                    };
                    if on {
                        keys.push(location.key.clone());
                    } else {
                        keys.retain(|k| *k != location.key);
                    }
                    keys.sort();
                    keys.dedup();
                    // None chosen is no useful sync; all chosen is stored as
                    // "all" so a location added later is included.
                    if keys.len() == all.len() || keys.is_empty() {
                        keys.clear();
                    }
                    intents.push(Intent::SetLocations(keys));
                }
            }
        })
        .response
        .on_hover_text(lang.pick(
            "Standorte für „Jetzt synchronisieren“",
            "Locations for \"Sync now\"",
        ));
    });
    intents
}

/// HubSpot's progress bar: provisioning, then writing with counts, rate
/// and remaining time.
fn progress_ui(ui: &mut egui::Ui, model: &Model) {
    let lang = model.lang();
    let run = &model.run_progress;
    let (fraction, text) = match &run.hubspot {
        None if run.locations.is_empty() => {
            (None, lang.pick("Wird gestartet …", "Starting …").to_owned())
        }
        None => (
            None,
            lang.pick(
                "HubSpot: wartet auf die ersten Datensätze …",
                "HubSpot: waiting for the first records …",
            )
            .to_owned(),
        ),
        Some(Progress::Loading {
            kind,
            done,
            total,
            per_second,
            remaining_secs,
        }) => {
            let mut text = format!(
                "HubSpot: {} {} · {}/{}",
                kind_name(lang, *kind),
                lang.pick("schreiben", "writing"),
                lang.number(*done),
                lang.number(*total)
            );
            if *per_second > 0.0 {
                text.push_str(&format!(" · {:.0}/s", per_second));
            }
            if let Some(secs) = remaining_secs {
                text.push_str(&format!(
                    " · {} {}",
                    lang.pick("noch", "about"),
                    duration_text(lang, *secs)
                ));
            }
            ((*total > 0).then(|| *done as f32 / *total as f32), text)
        }
        Some(_) => (
            None,
            lang.pick("HubSpot-Einrichtung prüfen …", "Checking HubSpot setup …")
                .to_owned(),
        ),
    };
    let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0).clamp(0.0, 1.0))
        .desired_width(260.0)
        .animate(fraction.is_none());
    ui.add(bar);
    if model.dry_running {
        ui.strong(lang.pick("Probelauf", "Dry run"));
    }
    ui.label(text);
    if let Some(started) = model.started {
        ui.weak(duration_text(lang, started.elapsed().as_secs()));
    }
}

/// One small bar per location being read: the locations are extracted at
/// the same time, each from its own Ivoris installation.
fn locations_progress_ui(ui: &mut egui::Ui, model: &Model) {
    let lang = model.lang();
    ui.horizontal_wrapped(|ui| {
        ui.weak(lang.pick("Ivoris:", "Ivoris:"));
        for (key, step) in &model.run_progress.locations {
            let name = model
                .info
                .as_ref()
                .and_then(|info| info.settings.location(key))
                .map_or(key.as_str(), |l| l.name.as_str());
            let (fraction, text) = location_line(lang, name, step);
            ui.add(
                egui::ProgressBar::new(fraction.unwrap_or(0.0).clamp(0.0, 1.0))
                    .desired_width(90.0)
                    .animate(fraction.is_none()),
            );
            ui.label(text);
            ui.add_space(12.0);
        }
    });
}

/// The last run in one line, coloured by outcome.
fn last_result_ui(ui: &mut egui::Ui, lang: Lang, last: Option<&LastResult>) {
    let Some(last) = last else {
        ui.weak(lang.pick("Noch keine Synchronisation", "No sync yet"));
        return;
    };
    let (outcome, details) = match last {
        LastResult::Summary(summary) if summary.dry_run => {
            let would: u64 = summary
                .locations
                .iter()
                .filter_map(|l| l.plan.as_ref())
                .map(|plan| plan.to_write())
                .sum();
            (
                Some(summary.outcome),
                format!(
                    "{}: {} {}",
                    lang.pick("Probelauf", "Dry run"),
                    lang.number(would),
                    lang.pick(
                        "würden geschrieben, nichts gesendet",
                        "would be written, nothing sent"
                    )
                ),
            )
        }
        LastResult::Summary(summary) => {
            let mut parts = vec![format!(
                "{} {}",
                lang.number(summary.counts.written),
                lang.pick("geschrieben", "written")
            )];
            if summary.dead_letters > 0 {
                parts.push(format!(
                    "{} {}",
                    lang.number(summary.dead_letters),
                    lang.pick("fehlgeschlagen", "failed")
                ));
            }
            if summary.quarantined > 0 {
                parts.push(format!(
                    "{} {}",
                    lang.number(summary.quarantined),
                    lang.pick("in Quarantäne", "quarantined")
                ));
            }
            let deleted: u64 = summary
                .locations
                .iter()
                .filter_map(|l| l.extract.as_ref())
                .map(|e| e.deleted.total())
                .sum();
            if deleted > 0 {
                parts.push(format!(
                    "{} {}",
                    lang.number(deleted),
                    lang.pick("in Ivoris gelöscht", "deleted in Ivoris")
                ));
            }
            if summary.outcome == RunOutcome::Failed
                && let Some(message) = &summary.message
            {
                parts = vec![lang.half(message)];
            }
            // Plain HTTP is repeated with every run, not only in the overview.
            for (de, en) in &summary.warnings {
                parts.push(match lang {
                    Lang::De => de.clone(),
                    Lang::En => en.clone(),
                });
            }
            (Some(summary.outcome), parts.join(", "))
        }
        LastResult::Recorded(run) => {
            let details = match (run.outcome, &run.message) {
                (Some(RunOutcome::Failed), Some(message)) => lang.half(message),
                _ if run.dry_run => format!(
                    "{}: {}",
                    lang.pick("Probelauf", "Dry run"),
                    lang.pick("nichts gesendet", "nothing sent")
                ),
                _ => format!(
                    "{} {}, {} {}",
                    lang.number(run.counts.written),
                    lang.pick("geschrieben", "written"),
                    lang.number(run.counts.failed),
                    lang.pick("fehlgeschlagen", "failed")
                ),
            };
            (run.outcome, details)
        }
        LastResult::Error(message) => (Some(RunOutcome::Failed), lang.half(message)),
    };
    let color = outcome_color(ui, outcome);
    // A status light: the bundled fonts have no check marks, and colour
    // alone would be read the same way.
    let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter().circle_filled(dot.center(), 5.0, color);
    ui.colored_label(
        color,
        egui::RichText::new(outcome_text(lang, outcome)).strong(),
    );
    ui.add(egui::Label::new(details.as_str()).truncate())
        .on_hover_text(details);
}

/// Writes still waiting for HubSpot, so a green last run does not hide them.
fn pending_ui(ui: &mut egui::Ui, model: &Model) {
    let lang = model.lang();
    let Some(overview) = &model.overview else {
        return;
    };
    let (pending, dead) = (overview.queue.pending(), overview.queue.dead());
    if pending + dead == 0 {
        return;
    }
    ui.separator();
    let mut parts = Vec::new();
    if pending > 0 {
        parts.push(format!(
            "{} {}",
            lang.number(pending),
            lang.pick("warten auf HubSpot", "waiting for HubSpot")
        ));
    }
    if dead > 0 {
        parts.push(format!(
            "{} {}",
            lang.number(dead),
            lang.pick("brauchen eine Entscheidung", "need a decision")
        ));
    }
    ui.colored_label(
        outcome_color(ui, Some(RunOutcome::Warnings)),
        parts.join(", "),
    );
}

/// When the automatic sync runs next.
fn next_run_ui(ui: &mut egui::Ui, model: &Model) {
    if let Some(at) = model.schedule.next_label() {
        ui.separator();
        ui.weak(format!(
            "{} {at}",
            model.lang().pick(
                "Nächste automatische Synchronisation:",
                "Next automatic sync:"
            )
        ));
    }
}

/// The demo banner with a way to the settings.
pub fn demo_banner_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.add_space(2.0);
    ui.horizontal(|ui| {
        let amber = outcome_color(ui, Some(RunOutcome::Warnings));
        ui.colored_label(
            amber,
            egui::RichText::new(lang.pick(
                "Demo-Modus – simulierte Praxisdaten, keine echten Patienten",
                "Demo mode – simulated practice data, no real patients",
            ))
            .strong(),
        );
        if ui
            .button(lang.pick("Zu den Einstellungen", "Open settings"))
            .clicked()
        {
            intents.push(Intent::Navigate(Panel::Settings));
        }
    });
    ui.add_space(2.0);
    intents
}

/// A notice (an action's result or an error).
pub fn notice_ui(ui: &mut egui::Ui, notice: &Notice) {
    if notice.error {
        ui.colored_label(ui.visuals().error_fg_color, &notice.text);
    } else {
        ui.label(&notice.text);
    }
    ui.add_space(4.0);
}

/// The engine could not start; the settings are where it is fixed.
pub fn setup_error_ui(ui: &mut egui::Ui, lang: Lang, error: &str) -> Vec<Intent> {
    let mut intents = Vec::new();
    ui.heading(lang.pick("Start nicht möglich", "Cannot start"));
    ui.colored_label(ui.visuals().error_fg_color, lang.half(error));
    if ui
        .button(lang.pick("Zu den Einstellungen", "Open settings"))
        .clicked()
    {
        intents.push(Intent::Navigate(Panel::Settings));
    }
    intents
}

/// Seconds as „1 min 05 s“.
pub fn duration_text(lang: Lang, secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!(
            "{} {} {:02} min",
            secs / 3600,
            lang.pick("Std.", "h"),
            (secs % 3600) / 60
        ),
    }
}
