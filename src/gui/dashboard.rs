//! Dashboard: the key figures per location and week or month (DESIGN.md
//! §9) — tiles for the whole time shown, a chart per subject with the table
//! behind it, and the CSV export for German Excel. The figures come from
//! the engine (`engine::dashboard`), computed from the ledger; they are
//! read again after every sync and every minute while the panel is open.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::Color32;
use egui_plot::{Bar, BarChart, GridMark, Legend, Plot};
use serde::{Deserialize, Serialize};

use super::file_dialog::Pick;
use super::i18n::Lang;
use super::state::{Intent, Model, Panel};
use crate::csvio::format_cents;
use crate::engine::dashboard::KpiRequest;
use crate::kpi::export::{all_locations, percent};
use crate::kpi::{Granularity, KpiReport, LocationFigures, PeriodFigures};
use crate::mapping::{Category, Stage};

/// How often the figures are read again while the dashboard is shown.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Period counts offered per granularity.
const WEEK_CHOICES: [u32; 4] = [8, 13, 26, 52];
const MONTH_CHOICES: [u32; 4] = [6, 12, 24, 36];

/// What the person chose; remembered between starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DashboardChoice {
    /// Weeks or months.
    pub granularity: Granularity,
    /// Weeks shown.
    pub weeks: u32,
    /// Months shown.
    pub months: u32,
    /// One location's figures; `None` for all together.
    pub location: Option<String>,
}

impl Default for DashboardChoice {
    fn default() -> Self {
        DashboardChoice {
            granularity: Granularity::Month,
            weeks: 13,
            months: 12,
            location: None,
        }
    }
}

impl DashboardChoice {
    /// What to ask the engine for.
    pub fn request(&self) -> KpiRequest {
        KpiRequest {
            granularity: self.granularity,
            periods: match self.granularity {
                Granularity::Week => self.weeks,
                Granularity::Month => self.months,
            },
        }
    }
}

/// The figures as far as the engine has sent them.
#[derive(Debug, Default)]
pub struct KpiModel {
    /// The latest figures, or why they could not be computed.
    pub report: Option<Result<KpiReport, String>>,
    /// A computation is on its way.
    pub loading: bool,
    /// When the shown figures were asked for (for the minute refresh).
    pub requested_at: Option<Instant>,
    /// The latest export's files, or why it failed.
    pub exported: Option<Result<Vec<PathBuf>, String>>,
}

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct DashboardView {
    /// Folder the CSV files are written to.
    pub export_dir: String,
}

/// What the dashboard asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum DashboardIntent {
    /// Another granularity, period count or location.
    Choose(DashboardChoice),
    /// Read the figures again.
    Reload,
    /// Write the figures shown into this folder.
    Export(PathBuf),
}

/// Draws the dashboard.
pub fn dashboard_ui(ui: &mut egui::Ui, model: &Model, view: &mut DashboardView) -> Vec<Intent> {
    let mut intents = Vec::new();
    let lang = model.lang();
    let choice = &model.ui.dashboard;
    controls_ui(ui, model, choice, &mut intents);
    ui.add_space(4.0);
    let report = match &model.kpi.report {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(lang.pick("Kennzahlen werden berechnet …", "Computing key figures …"));
            });
            return intents;
        }
        Some(Err(message)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!(
                    "{} {}",
                    lang.pick(
                        "Kennzahlen konnten nicht berechnet werden:",
                        "Key figures could not be computed:"
                    ),
                    lang.half(message)
                ),
            );
            return intents;
        }
        Some(Ok(report)) => report,
    };
    let german = lang == Lang::De;
    let Some(figures) = report.figures(choice.location.as_deref(), all_locations(german)) else {
        ui.weak(lang.pick(
            "Dieser Standort hat keine Daten.",
            "This location has no data.",
        ));
        return intents;
    };
    if report.locations.is_empty() {
        ui.weak(lang.pick(
            "Noch keine Daten – zuerst synchronisieren.",
            "No data yet – sync first.",
        ));
        return intents;
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            tiles_ui(ui, lang, report, &figures);
            ui.add_space(8.0);
            appointments_ui(ui, lang, report, &figures);
            patients_ui(ui, lang, report, &figures);
            revenue_ui(ui, lang, report, &figures);
            treatments_ui(ui, lang, report, &figures);
            funnel_ui(ui, lang, report, &figures);
            ui.add_space(8.0);
            export_ui(ui, model, view, &mut intents);
        });
    intents
}

/// Granularity, period count, location, refresh.
fn controls_ui(
    ui: &mut egui::Ui,
    model: &Model,
    choice: &DashboardChoice,
    intents: &mut Vec<Intent>,
) {
    let lang = model.lang();
    let german = lang == Lang::De;
    ui.horizontal(|ui| {
        ui.heading(Panel::Dashboard.title(lang));
        ui.add_space(12.0);
        let mut next = choice.clone();
        for granularity in Granularity::ALL {
            ui.selectable_value(&mut next.granularity, granularity, granularity.name(german));
        }
        let (count, choices) = match next.granularity {
            Granularity::Week => (&mut next.weeks, WEEK_CHOICES),
            Granularity::Month => (&mut next.months, MONTH_CHOICES),
        };
        let unit = match next.granularity {
            Granularity::Week => lang.pick("Wochen", "weeks"),
            Granularity::Month => lang.pick("Monate", "months"),
        };
        egui::ComboBox::from_id_salt("kpi_periods")
            .selected_text(format!("{count} {unit}"))
            .show_ui(ui, |ui| {
                for n in choices {
                    ui.selectable_value(count, n, format!("{n} {unit}"));
                }
            })
            .response
            .on_hover_text(lang.pick("Zeitraum", "Time range"));
        let names: Vec<(String, String)> = match &model.kpi.report {
            Some(Ok(report)) => report
                .locations
                .iter()
                .map(|l| (l.key.clone(), l.name.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let shown = next
            .location
            .as_ref()
            .and_then(|key| names.iter().find(|(k, _)| k == key))
            .map_or_else(
                || all_locations(german).to_owned(),
                |(_, name)| name.clone(),
            );
        egui::ComboBox::from_id_salt("kpi_location")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut next.location, None, all_locations(german));
                for (key, name) in &names {
                    ui.selectable_value(&mut next.location, Some(key.clone()), name);
                }
            })
            .response
            .on_hover_text(lang.pick("Standort", "Location"));
        if next != *choice {
            intents.push(Intent::Dashboard(DashboardIntent::Choose(next)));
        }
        if ui
            .small_button(lang.pick("Aktualisieren", "Refresh"))
            .clicked()
        {
            intents.push(Intent::Dashboard(DashboardIntent::Reload));
        }
        if model.kpi.loading {
            ui.spinner();
        }
        if let Some(Ok(report)) = &model.kpi.report {
            ui.weak(format!(
                "{} {}",
                lang.pick("Stand", "As of"),
                report.now.format("%d.%m.%Y %H:%M")
            ));
        }
    });
}

/// Euros as the practice reads them: `1.234,56 €`.
fn euros(cents: i64) -> String {
    format!("{} €", format_cents(cents))
}

/// A share in percent, or a dash without a basis.
fn shown_percent(rate: Option<f64>) -> String {
    let text = percent(rate);
    if text.is_empty() {
        "–".to_owned()
    } else {
        format!("{text} %")
    }
}

/// The figures of the whole time shown, as tiles.
fn tiles_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let sum = figures.sum();
    let first = report.periods.label(0, lang == Lang::De);
    let last = report.periods.label(
        report.periods.starts.len().saturating_sub(1),
        lang == Lang::De,
    );
    ui.weak(format!(
        "{} {first} – {last}",
        lang.pick("Summe über", "Total over")
    ));
    let tiles: [(&str, String, &str); 8] = [
        (
            lang.pick("Termine", "Appointments"),
            lang.number(sum.appointments.total()),
            lang.pick(
                "Termine mit Beginn im Zeitraum (Terminarten „ignorieren“ nicht mitgezählt)",
                "Appointments starting in the time shown (types mapped to „ignorieren“ left out)",
            ),
        ),
        (
            lang.pick("Ausfallquote", "No-show rate"),
            shown_percent(sum.appointments.no_show_rate()),
            lang.pick(
                "Nicht erschienen ÷ (stattgefunden + nicht erschienen)",
                "No-shows ÷ (attended + no-shows)",
            ),
        ),
        (
            lang.pick("Neupatienten", "New patients"),
            lang.number(sum.new_patients),
            lang.pick(
                "Patienten, deren erster stattgefundener Termin im Zeitraum liegt – der erste, den der Ledger kennt: am Anfang der Historie zählen auch frühere Patienten",
                "Patients whose first attended appointment is in the time shown – the first the ledger knows: at the start of the history earlier patients count too",
            ),
        ),
        (
            lang.pick("Konversion", "Conversion"),
            shown_percent(sum.conversion_rate()),
            lang.pick(
                "Anteil der Fälle mit Erstberatung im Zeitraum, deren Behandlung begonnen hat",
                "Share of the cases consulted in the time shown whose treatment started",
            ),
        ),
        (
            lang.pick("Umsatz", "Revenue"),
            euros(sum.revenue_cents),
            lang.pick(
                "Leistungen mit Datum im Zeitraum, die als Umsatz zählen",
                "Billing lines dated in the time shown that count as revenue",
            ),
        ),
        (
            lang.pick("Umsatz je Fall", "Revenue per case"),
            sum.revenue_per_case_cents()
                .map_or_else(|| "–".to_owned(), euros),
            lang.pick(
                "Durchschnittlicher Umsatz der im Zeitraum abgeschlossenen Behandlungen",
                "Average revenue of the treatments completed in the time shown",
            ),
        ),
        (
            lang.pick("Abgeschlossene Behandlungen", "Completed treatments"),
            lang.number(sum.completed_treatments),
            lang.pick(
                "Fälle „Behandlung abgeschlossen“, deren Behandlung im Zeitraum endete",
                "Cases won whose treatment ended in the time shown",
            ),
        ),
        (
            lang.pick("Offene Fälle", "Open cases"),
            lang.number(figures.funnel.open()),
            lang.pick(
                "Fälle, die heute weder gewonnen noch verloren sind",
                "Cases neither won nor lost today",
            ),
        ),
    ];
    // Rows of equally wide tiles that always fit the width: a frame does
    // not wrap by itself.
    let spacing = ui.spacing().item_spacing.x;
    let available = ui.available_width();
    let per_row = ((available + spacing) / (TILE_MIN_WIDTH + spacing))
        .floor()
        .max(1.0) as usize;
    let per_row = per_row.min(tiles.len());
    let rows = tiles.len().div_ceil(per_row);
    let per_row = tiles.len().div_ceil(rows);
    let width = (available + spacing) / per_row as f32 - spacing;
    for row in tiles.chunks(per_row) {
        ui.horizontal(|ui| {
            for (title, value, hint) in row {
                egui::Frame::group(ui.style())
                    .inner_margin(egui::Margin::symmetric(12, 8))
                    .show(ui, |ui| {
                        // The frame's margin and stroke come on top.
                        ui.set_width(width - 26.0);
                        ui.vertical(|ui| {
                            ui.weak(*title).on_hover_text(*hint);
                            ui.heading(value);
                        });
                    });
            }
        });
    }
}

/// The narrowest a tile gets before the row wraps.
const TILE_MIN_WIDTH: f32 = 190.0;

/// A chart's series: its name, color and one value per period.
struct Series {
    name: String,
    color: Color32,
    values: Vec<f64>,
}

/// A plot over the report's periods: one bar slot per period, marked with
/// the period names (every n-th when there are many), not zoomable.
fn period_plot<'a>(id: &str, report: &KpiReport, height: f32, lang: Lang) -> Plot<'a> {
    let german = lang == Lang::De;
    let labels: Vec<String> = (0..report.periods.starts.len())
        .map(|i| report.periods.label(i, german))
        .collect();
    let count = labels.len();
    let step = count / 13 + 1;
    Plot::new(id)
        .height(height)
        .legend(Legend::default().follow_insertion_order(true))
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_x(false)
        .include_y(0.0)
        .x_grid_spacer(move |_| {
            (0..count)
                .step_by(step)
                .map(|i| GridMark {
                    value: i as f64,
                    step_size: step as f64,
                })
                .collect()
        })
        .x_axis_formatter(move |mark, _| {
            let index = mark.value.round();
            if (mark.value - index).abs() > 1e-6 || index < 0.0 {
                return String::new();
            }
            labels.get(index as usize).cloned().unwrap_or_default()
        })
}

/// Stacked bars per period, labelled with the period names.
fn stacked_chart_ui(
    ui: &mut egui::Ui,
    id: &str,
    report: &KpiReport,
    series: Vec<Series>,
    money: bool,
    lang: Lang,
) {
    period_plot(id, report, 200.0, lang)
        .y_axis_formatter(move |mark, _| {
            if money {
                format!("{:.0} €", mark.value)
            } else {
                format!("{:.0}", mark.value)
            }
        })
        .show(ui, |plot| {
            let mut below: Vec<BarChart> = Vec::new();
            for s in series {
                let bars = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Bar::new(i as f64, *v).width(0.7))
                    .collect();
                let others: Vec<&BarChart> = below.iter().collect();
                let chart = BarChart::new(s.name, bars).color(s.color).stack_on(&others);
                below.push(chart);
            }
            for chart in below {
                plot.bar_chart(chart);
            }
        });
}

/// A titled section: chart, then the table behind it (collapsed).
fn section_ui(
    ui: &mut egui::Ui,
    title: &str,
    lang: Lang,
    chart: impl FnOnce(&mut egui::Ui),
    table: impl FnOnce(&mut egui::Ui),
) {
    ui.add_space(6.0);
    ui.strong(title);
    chart(ui);
    egui::CollapsingHeader::new(lang.pick("Tabelle", "Table"))
        .id_salt(("kpi_table", title))
        .show(ui, table);
}

/// One column of a chart's table: its title and how a period's cell reads.
type TableColumn<'a> = (&'a str, &'a dyn Fn(&PeriodFigures) -> String);

/// The table behind a chart: a row per period.
fn period_table_ui(
    ui: &mut egui::Ui,
    id: &str,
    report: &KpiReport,
    figures: &LocationFigures,
    columns: &[TableColumn<'_>],
    lang: Lang,
) {
    egui::Grid::new(id)
        .striped(true)
        .num_columns(columns.len() + 1)
        .spacing([18.0, 4.0])
        .show(ui, |ui| {
            ui.strong(lang.pick("Zeitraum", "Period"));
            for (title, _) in columns {
                ui.strong(*title);
            }
            ui.end_row();
            for (index, period) in figures.periods.iter().enumerate() {
                ui.label(report.periods.label(index, lang == Lang::De));
                for (_, cell) in columns {
                    ui.label(cell(period));
                }
                ui.end_row();
            }
        });
}

const GREEN: Color32 = Color32::from_rgb(76, 160, 90);
const ORANGE: Color32 = Color32::from_rgb(230, 150, 50);
const RED: Color32 = Color32::from_rgb(210, 70, 60);
const BLUE: Color32 = Color32::from_rgb(80, 130, 200);
const GRAY: Color32 = Color32::from_rgb(150, 150, 150);

fn values(figures: &LocationFigures, value: impl Fn(&PeriodFigures) -> f64) -> Vec<f64> {
    figures.periods.iter().map(value).collect()
}

fn appointments_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let title = lang.pick("Termine", "Appointments");
    let attended = lang.pick("Stattgefunden", "Attended");
    let cancelled = lang.pick("Abgesagt", "Cancelled");
    let no_show = lang.pick("Nicht erschienen", "No-show");
    let open = lang.pick("Offen", "Open");
    section_ui(
        ui,
        title,
        lang,
        |ui| {
            let series = vec![
                Series {
                    name: attended.into(),
                    color: GREEN,
                    values: values(figures, |p| p.appointments.attended as f64),
                },
                Series {
                    name: cancelled.into(),
                    color: ORANGE,
                    values: values(figures, |p| p.appointments.cancelled as f64),
                },
                Series {
                    name: no_show.into(),
                    color: RED,
                    values: values(figures, |p| p.appointments.no_show as f64),
                },
                Series {
                    name: open.into(),
                    color: BLUE,
                    values: values(figures, |p| p.appointments.open as f64),
                },
            ];
            stacked_chart_ui(ui, "kpi_appointments", report, series, false, lang);
        },
        |ui| {
            period_table_ui(
                ui,
                "kpi_appointments_table",
                report,
                figures,
                &[
                    (title, &|p| lang.number(p.appointments.total())),
                    (attended, &|p| lang.number(p.appointments.attended)),
                    (cancelled, &|p| lang.number(p.appointments.cancelled)),
                    (no_show, &|p| lang.number(p.appointments.no_show)),
                    (open, &|p| lang.number(p.appointments.open)),
                    (
                        lang.pick("Status nicht zugeordnet", "State not mapped"),
                        &|p| lang.number(p.appointments.unmapped),
                    ),
                    (lang.pick("Ausfallquote", "No-show rate"), &|p| {
                        shown_percent(p.appointments.no_show_rate())
                    }),
                ],
                lang,
            );
        },
    );
}

fn patients_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let title = lang.pick(
        "Neupatienten, Erstberatungen und Konversion",
        "New patients, consultations and conversion",
    );
    let new = lang.pick("Neupatienten", "New patients");
    let consultations = lang.pick("Erstberatungen", "Consultations");
    section_ui(
        ui,
        title,
        lang,
        |ui| {
            // Side by side, not stacked: they count different things.
            period_plot("kpi_patients", report, 180.0, lang).show(ui, |plot| {
                let side = |offset: f64, value: &dyn Fn(&PeriodFigures) -> u64| -> Vec<Bar> {
                    figures
                        .periods
                        .iter()
                        .enumerate()
                        .map(|(i, p)| Bar::new(i as f64 + offset, value(p) as f64).width(0.35))
                        .collect()
                };
                plot.bar_chart(BarChart::new(new, side(-0.18, &|p| p.new_patients)).color(BLUE));
                plot.bar_chart(
                    BarChart::new(consultations, side(0.18, &|p| p.consultations)).color(GREEN),
                );
            });
        },
        |ui| {
            period_table_ui(
                ui,
                "kpi_patients_table",
                report,
                figures,
                &[
                    (new, &|p| lang.number(p.new_patients)),
                    (consultations, &|p| lang.number(p.consultations)),
                    (
                        lang.pick("Fälle mit Erstberatung", "Consulted cases"),
                        &|p| lang.number(p.consulted_cases),
                    ),
                    (lang.pick("Davon in Behandlung", "Of which treated"), &|p| {
                        lang.number(p.converted_cases)
                    }),
                    (lang.pick("Konversion", "Conversion"), &|p| {
                        shown_percent(p.conversion_rate())
                    }),
                ],
                lang,
            );
        },
    );
}

/// Colors of the treatment categories, in `Category::ALL` order.
const CATEGORY_COLORS: [Color32; 12] = [
    Color32::from_rgb(90, 170, 200),
    Color32::from_rgb(80, 130, 200),
    Color32::from_rgb(200, 120, 60),
    Color32::from_rgb(120, 180, 100),
    Color32::from_rgb(200, 80, 80),
    Color32::from_rgb(150, 100, 190),
    Color32::from_rgb(220, 180, 60),
    Color32::from_rgb(60, 160, 140),
    Color32::from_rgb(230, 130, 170),
    Color32::from_rgb(130, 130, 200),
    Color32::from_rgb(160, 140, 110),
    GRAY,
];

fn revenue_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let title = lang.pick(
        "Umsatz je Behandlungskategorie",
        "Revenue per treatment category",
    );
    let cents =
        |p: &PeriodFigures, c: Category| p.revenue_by_category.get(&c).copied().unwrap_or(0);
    // Only categories with revenue in the time shown get a series.
    let used: Vec<Category> = Category::ALL
        .into_iter()
        .filter(|c| figures.periods.iter().any(|p| cents(p, *c) != 0))
        .collect();
    section_ui(
        ui,
        title,
        lang,
        |ui| {
            let series = Category::ALL
                .into_iter()
                .zip(CATEGORY_COLORS)
                .filter(|(c, _)| used.contains(c))
                .map(|(c, color)| Series {
                    name: c.label().to_owned(),
                    color,
                    values: values(figures, |p| cents(p, c) as f64 / 100.0),
                })
                .collect();
            stacked_chart_ui(ui, "kpi_revenue", report, series, true, lang);
        },
        |ui| {
            let total_title = lang.pick("Umsatz", "Revenue");
            let separate_title = lang.pick("Separat", "Separate");
            type Cell = Box<dyn Fn(&PeriodFigures) -> String>;
            let mut columns: Vec<(&str, Cell)> =
                vec![(total_title, Box::new(|p| euros(p.revenue_cents)))];
            for c in &used {
                let c = *c;
                columns.push((c.label(), Box::new(move |p| euros(cents(p, c)))));
            }
            columns.push((separate_title, Box::new(|p| euros(p.separate_cents))));
            let borrowed: Vec<TableColumn<'_>> =
                columns.iter().map(|(t, f)| (*t, f.as_ref())).collect();
            egui::ScrollArea::horizontal()
                .id_salt("kpi_revenue_scroll")
                .show(ui, |ui| {
                    period_table_ui(ui, "kpi_revenue_table", report, figures, &borrowed, lang);
                });
        },
    );
}

fn treatments_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let title = lang.pick("Abgeschlossene Behandlungen", "Completed treatments");
    let lost = lang.pick("Verlorene Fälle", "Lost cases");
    section_ui(
        ui,
        title,
        lang,
        |ui| {
            let series = vec![
                Series {
                    name: title.into(),
                    color: GREEN,
                    values: values(figures, |p| p.completed_treatments as f64),
                },
                Series {
                    name: lost.into(),
                    color: GRAY,
                    values: values(figures, |p| p.lost_cases as f64),
                },
            ];
            stacked_chart_ui(ui, "kpi_treatments", report, series, false, lang);
        },
        |ui| {
            period_table_ui(
                ui,
                "kpi_treatments_table",
                report,
                figures,
                &[
                    (title, &|p| lang.number(p.completed_treatments)),
                    (lang.pick("Umsatz je Fall", "Revenue per case"), &|p| {
                        p.revenue_per_case_cents()
                            .map_or_else(|| "–".to_owned(), euros)
                    }),
                    (lost, &|p| lang.number(p.lost_cases)),
                ],
                lang,
            );
        },
    );
}

fn funnel_ui(ui: &mut egui::Ui, lang: Lang, report: &KpiReport, figures: &LocationFigures) {
    let title = lang.pick("Fälle je Phase (heute)", "Cases per stage (today)");
    let stages = [Stage::Booked, Stage::Consulted, Stage::InTreatment];
    section_ui(
        ui,
        title,
        lang,
        |ui| {
            let labels: Vec<String> = stages.iter().map(|s| report.stage_label(*s)).collect();
            let bars: Vec<Bar> = stages
                .iter()
                .enumerate()
                .map(|(i, stage)| {
                    // The first stage on top, as a funnel reads.
                    Bar::new(
                        (stages.len() - 1 - i) as f64,
                        figures.funnel.count(*stage) as f64,
                    )
                    .width(0.6)
                    .name(report.stage_label(*stage))
                })
                .collect();
            let n = stages.len();
            Plot::new("kpi_funnel")
                .height(130.0)
                .allow_zoom(false)
                .allow_drag(false)
                .allow_scroll(false)
                .allow_boxed_zoom(false)
                .allow_double_click_reset(false)
                .show_y(false)
                .include_x(0.0)
                .y_grid_spacer(move |_| {
                    (0..n)
                        .map(|i| GridMark {
                            value: i as f64,
                            step_size: 1.0,
                        })
                        .collect()
                })
                .y_axis_formatter(move |mark, _| {
                    let index = mark.value.round();
                    if (mark.value - index).abs() > 1e-6 || index < 0.0 {
                        return String::new();
                    }
                    let from_top = n.checked_sub(1 + index as usize);
                    from_top
                        .and_then(|i| labels.get(i))
                        .cloned()
                        .unwrap_or_default()
                })
                .show(ui, |plot| {
                    plot.bar_chart(BarChart::new(title, bars).color(BLUE).horizontal());
                });
        },
        |ui| {
            egui::Grid::new("kpi_funnel_table")
                .striped(true)
                .num_columns(2)
                .spacing([18.0, 4.0])
                .show(ui, |ui| {
                    ui.strong(lang.pick("Phase", "Stage"));
                    ui.strong(lang.pick("Fälle", "Cases"));
                    ui.end_row();
                    for stage in Stage::ALL {
                        ui.label(report.stage_label(stage));
                        ui.label(lang.number(figures.funnel.count(stage)));
                        ui.end_row();
                    }
                });
        },
    );
}

/// Folder field, dialog button and „Als CSV exportieren“.
fn export_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &mut DashboardView,
    intents: &mut Vec<Intent>,
) {
    let lang = model.lang();
    ui.separator();
    ui.strong(lang.pick("Export für Excel", "Export for Excel"));
    ui.horizontal(|ui| {
        let label = ui.label(lang.pick("Ordner:", "Folder:"));
        ui.add(
            egui::TextEdit::singleline(&mut view.export_dir)
                .desired_width(360.0)
                .hint_text(lang.pick("Ordner für die CSV-Dateien", "Folder for the CSV files")),
        )
        .labelled_by(label.id);
        if ui
            .button(lang.pick("Ordner wählen …", "Choose folder …"))
            .clicked()
        {
            intents.push(Intent::PickFile(Pick::KpiExportDir));
        }
        if ui
            .add_enabled(
                !view.export_dir.trim().is_empty(),
                egui::Button::new(lang.pick("Als CSV exportieren", "Export as CSV")),
            )
            .clicked()
        {
            intents.push(Intent::Dashboard(DashboardIntent::Export(
                view.export_dir.trim().into(),
            )));
        }
    });
    match &model.kpi.exported {
        Some(Ok(files)) => {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            ui.label(format!(
                "{} {}",
                lang.pick("Geschrieben:", "Written:"),
                names.join(", ")
            ));
        }
        Some(Err(message)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!(
                    "{} {}",
                    lang.pick("Export fehlgeschlagen:", "Export failed:"),
                    lang.half(message)
                ),
            );
        }
        None => {}
    }
}
