//! Übersicht: per location what the ledger holds against what HubSpot
//! confirmed, quarantine and dead letters, the records the last scan found
//! out of step with HubSpot itself, the latest runs, and the days where the
//! reconciliation report found Ivoris, ledger and HubSpot apart.

use egui_extras::{Column, TableBuilder};

use super::i18n::Lang;
use super::log::{local_time, runs_table_ui};
use super::outcome::outcome_color;
use super::state::{Intent, Model, Panel};
use crate::duplicates::drift::DriftCounts;
use crate::ledger::{Health, RunOutcome};

/// Draws the overview.
pub fn overview_ui(ui: &mut egui::Ui, model: &Model) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    ui.horizontal(|ui| {
        ui.heading(Panel::Overview.title(lang));
        if ui
            .small_button(lang.pick("Aktualisieren", "Refresh"))
            .clicked()
        {
            intents.push(Intent::Refresh);
        }
    });
    let Some(overview) = &model.overview else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(lang.pick("Daten werden gelesen …", "Reading data …"));
        });
        return intents;
    };
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            insecure_http_ui(ui, model, lang);
            ui.horizontal(|ui| {
                ui.strong("HubSpot:");
                health_ui(ui, lang, overview.hubspot.as_ref());
            });
            ui.add_space(6.0);
            ui.strong(lang.pick("Standorte", "Locations"));
            if overview.locations.is_empty() {
                ui.weak(lang.pick(
                    "Noch keine Daten – „Jetzt synchronisieren“ liest die Praxen ein.",
                    "No data yet – \"Sync now\" reads the practices.",
                ));
            } else {
                locations_table_ui(ui, model, lang);
                portal_check_ui(ui, model, lang, &mut intents);
            }
            ui.add_space(12.0);
            ui.strong(lang.pick(
                "Abgleich: abweichende Tage",
                "Reconciliation: differing days",
            ));
            differences_ui(ui, model, lang);
            ui.add_space(12.0);
            ui.horizontal(|ui| {
                ui.strong(lang.pick("Letzte Läufe", "Latest runs"));
                if ui
                    .small_button(lang.pick("Ganzes Protokoll", "Full log"))
                    .clicked()
                {
                    intents.push(Intent::Navigate(Panel::Log));
                }
            });
            if overview.runs.is_empty() {
                ui.weak(lang.pick("Noch keine Läufe.", "No runs yet."));
            } else {
                ui.push_id("overview_runs", |ui| {
                    runs_table_ui(ui, lang, &overview.runs, false);
                });
            }
        });
    intents
}

/// A warning per location whose Ivoris is reached over plain HTTP (the
/// settings' `allow_insecure_http`), above everything else.
fn insecure_http_ui(ui: &mut egui::Ui, model: &Model, lang: Lang) {
    let Some(info) = &model.info else {
        return;
    };
    let warn = outcome_color(ui, Some(RunOutcome::Warnings));
    for (de, en) in info.settings.insecure_http_warnings() {
        let text = match lang {
            Lang::De => de,
            Lang::En => en,
        };
        ui.colored_label(
            warn,
            format!("{} {text}", lang.pick("Warnung:", "Warning:")),
        );
    }
}

/// One row per location.
fn locations_table_ui(ui: &mut egui::Ui, model: &Model, lang: Lang) {
    let Some(overview) = &model.overview else {
        return;
    };
    let warn = outcome_color(ui, Some(crate::ledger::RunOutcome::Warnings));
    let bad = ui.visuals().error_fg_color;
    ui.push_id("overview_locations", |ui| {
        TableBuilder::new(ui)
            .striped(true)
            .vscroll(false)
            .column(Column::auto().at_least(200.0))
            .column(Column::auto().at_least(110.0))
            .columns(Column::auto().at_least(70.0), 10)
            .header(36.0, |mut header| {
                for title in [
                    lang.pick("Standort", "Location"),
                    lang.pick("Ivoris-\nVerbindung", "Ivoris\nconnection"),
                    lang.pick("Patienten\n(Ledger)", "Patients\n(ledger)"),
                    lang.pick("Kontakte\n(HubSpot)", "Contacts\n(HubSpot)"),
                    lang.pick("Termine\n(Ledger)", "Appointments\n(ledger)"),
                    lang.pick("Termine\n(HubSpot)", "Appointments\n(HubSpot)"),
                    lang.pick("Fälle\n(Ledger)", "Cases\n(ledger)"),
                    lang.pick("Deals\n(HubSpot)", "Deals\n(HubSpot)"),
                    lang.pick("Wartend", "Pending"),
                    lang.pick("Fehl-\ngeschlagen", "Dead\nletters"),
                    lang.pick("Quarantäne", "Quarantined"),
                    lang.pick("Abweichend\n(HubSpot)", "Out of step\n(HubSpot)"),
                ] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|mut body| {
                for location in &overview.locations {
                    body.row(22.0, |mut row| {
                        row.col(|ui| {
                            let hover = match &location.brand {
                                Some(brand) => format!("{} · {brand}", location.key),
                                None => location.key.clone(),
                            };
                            ui.label(&location.name).on_hover_text(hover);
                        });
                        row.col(|ui| health_ui(ui, lang, location.ivoris.as_ref()));
                        let numbers = [
                            (location.counts.patients, None),
                            (location.confirmed.contacts, None),
                            (location.counts.appointments, None),
                            (location.confirmed.appointments, None),
                            (location.cases, None),
                            (location.confirmed.deals, None),
                            (location.pending, None),
                            (location.dead, Some(bad)),
                            (location.counts.quarantined, Some(warn)),
                        ];
                        for (value, alert) in numbers {
                            row.col(|ui| {
                                let text = lang.number(value);
                                match alert {
                                    Some(color) if value > 0 => {
                                        ui.colored_label(color, egui::RichText::new(text).strong());
                                    }
                                    _ => {
                                        ui.label(text);
                                    }
                                }
                            });
                        }
                        row.col(|ui| {
                            drift_cell_ui(ui, lang, overview.portal.is_some(), location.drift)
                        });
                    });
                }
            });
    });
}

/// A location's records out of step with HubSpot at the last scan, the
/// kinds on hover; a dash before the first scan.
fn drift_cell_ui(ui: &mut egui::Ui, lang: Lang, scanned: bool, drift: DriftCounts) {
    if !scanned {
        ui.weak("–").on_hover_text(lang.pick(
            "HubSpot wurde noch nicht geprüft (Duplikate → „HubSpot prüfen“).",
            "HubSpot was not checked yet (Duplicates → \"Check HubSpot\").",
        ));
        return;
    }
    let total = drift.missing + drift.key_changed + drift.value_changed;
    let text = lang.number(total);
    let response = if total > 0 {
        let warn = outcome_color(ui, Some(RunOutcome::Warnings));
        ui.colored_label(warn, egui::RichText::new(text).strong())
    } else {
        ui.label(text)
    };
    response.on_hover_text(drift_text(lang, drift));
}

/// „N in HubSpot gelöscht, N ohne unseren Schlüssel, N von Hand geändert“.
fn drift_text(lang: Lang, drift: DriftCounts) -> String {
    format!(
        "{} {}, {} {}, {} {}",
        lang.number(drift.missing),
        lang.pick("in HubSpot gelöscht", "deleted in HubSpot"),
        lang.number(drift.key_changed),
        lang.pick("ohne unseren Schlüssel", "without our key"),
        lang.number(drift.value_changed),
        lang.pick("von Hand geändert", "changed by hand"),
    )
}

/// What the last scan found: HubSpot as it is against what the ledger
/// believes it holds — the other columns count HubSpot's confirmations.
fn portal_check_ui(ui: &mut egui::Ui, model: &Model, lang: Lang, intents: &mut Vec<Intent>) {
    let Some(overview) = &model.overview else {
        return;
    };
    ui.horizontal_wrapped(|ui| {
        match &overview.portal {
            None => {
                ui.weak(lang.pick(
                    "HubSpot selbst wurde noch nicht geprüft: die Spalten „(HubSpot)“ zählen, was HubSpot bestätigt hat.",
                    "HubSpot itself was not checked yet: the \"(HubSpot)\" columns count what HubSpot confirmed.",
                ));
            }
            Some(check) => {
                let total = check.drift.missing + check.drift.key_changed + check.drift.value_changed;
                let scanned = format!(
                    "{} {} ({} {})",
                    lang.pick("Letzte Prüfung", "Last check"),
                    local_time(&check.finished_at),
                    lang.number(check.listed),
                    lang.pick("Kontakte und Deals gelesen", "contacts and deals read"),
                );
                if total == 0 {
                    ui.colored_label(
                        outcome_color(ui, Some(RunOutcome::Success)),
                        lang.pick(
                            "HubSpot hält alle Kontakte und Deals so, wie der Ledger sie kennt.",
                            "HubSpot holds every contact and deal as the ledger knows them.",
                        ),
                    );
                } else {
                    ui.colored_label(
                        outcome_color(ui, Some(RunOutcome::Warnings)),
                        format!(
                            "{}: {}.",
                            lang.pick("Abweichend", "Out of step"),
                            drift_text(lang, check.drift)
                        ),
                    );
                }
                ui.weak(scanned);
            }
        }
        if ui
            .small_button(lang.pick("Zu den Duplikaten", "Open duplicates"))
            .clicked()
        {
            intents.push(Intent::Navigate(Panel::Duplicates));
        }
    });
}

/// A connection's last known state: a coloured dot and a word, the details
/// (when last tried, when it last worked, why not) on hover.
fn health_ui(ui: &mut egui::Ui, lang: Lang, health: Option<&Health>) {
    let Some(health) = health else {
        ui.weak(lang.pick("noch nicht geprüft", "not checked yet"));
        return;
    };
    let checked = format!(
        "{} {}",
        lang.pick("Zuletzt geprüft:", "Last checked:"),
        local_time(&health.checked_at)
    );
    if health.ok {
        let color = outcome_color(ui, Some(RunOutcome::Success));
        ui.horizontal(|ui| {
            status_light(ui, color);
            ui.colored_label(color, lang.pick("erreichbar", "reachable"))
                .on_hover_text(checked);
        });
        return;
    }
    let last_ok = health.last_ok_at.as_deref().map_or_else(
        || lang.pick("Noch nie erreicht.", "Never reached.").to_owned(),
        |at| {
            format!(
                "{} {}",
                lang.pick("Zuletzt erreichbar:", "Last reachable:"),
                local_time(at)
            )
        },
    );
    let reason = health
        .message
        .as_deref()
        .map(|message| lang.half(message))
        .unwrap_or_default();
    let color = ui.visuals().error_fg_color;
    ui.horizontal(|ui| {
        status_light(ui, color);
        ui.colored_label(color, lang.pick("gestört", "failing"))
            .on_hover_text(format!("{reason}\n{checked}\n{last_ok}"));
    });
}

/// A small filled circle (the bundled fonts have no bullet glyph).
fn status_light(ui: &mut egui::Ui, color: egui::Color32) {
    let (dot, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(dot.center(), 4.0, color);
}

/// The differing days of the latest reconciliation report.
fn differences_ui(ui: &mut egui::Ui, model: &Model, lang: Lang) {
    let Some(overview) = &model.overview else {
        return;
    };
    if overview.differences.is_empty() {
        ui.colored_label(
            outcome_color(ui, Some(crate::ledger::RunOutcome::Success)),
            lang.pick(
                "Ivoris, Ledger und HubSpot stimmen überein (letzter Abgleich).",
                "Ivoris, ledger and HubSpot agree (latest reconciliation).",
            ),
        );
        return;
    }
    let bad = ui.visuals().error_fg_color;
    ui.push_id("overview_differences", |ui| {
        TableBuilder::new(ui)
            .striped(true)
            .vscroll(true)
            .max_scroll_height(220.0)
            .columns(Column::auto().at_least(90.0), 6)
            .header(22.0, |mut header| {
                for title in [
                    lang.pick("Standort", "Location"),
                    lang.pick("Tag", "Day"),
                    lang.pick("Art", "Kind"),
                    "Ivoris",
                    "Ledger",
                    "HubSpot",
                ] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(20.0, overview.differences.len(), |mut row| {
                    let Some(diff) = overview.differences.get(row.index()) else {
                        return;
                    };
                    row.col(|ui| {
                        ui.label(&diff.location_key);
                    });
                    row.col(|ui| {
                        ui.label(&diff.day);
                    });
                    row.col(|ui| {
                        ui.label(match diff.kind.as_str() {
                            "appointments" => lang.pick("Termine", "appointments"),
                            "entries" => lang.pick("Leistungen", "billing lines"),
                            other => other,
                        });
                    });
                    let hubspot = diff.hubspot;
                    for (value, differs) in [
                        (Some(diff.ivoris), false),
                        (Some(diff.ledger), diff.ledger != diff.ivoris),
                        (hubspot, hubspot.is_some_and(|h| h != diff.ledger)),
                    ] {
                        row.col(|ui| {
                            let text = value.map_or("–".to_owned(), |v| lang.number(v));
                            if differs {
                                ui.colored_label(bad, egui::RichText::new(text).strong());
                            } else {
                                ui.label(text);
                            }
                        });
                    }
                });
            });
    });
}
