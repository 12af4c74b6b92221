//! Duplikate › In HubSpot and › Protokoll der Entscheidungen: the second
//! part of the review (DESIGN.md §6). „HubSpot prüfen“ starts the scan on
//! the engine thread (progress, „Abbrechen“); its findings are grouped by
//! kind, one group side by side with the suggested primary first. Contacts
//! are merged into the primary after a confirmation (HubSpot's merge cannot
//! be undone), deals set lost „Duplikat“ (undoable), a group dismissed
//! („Kein Duplikat“). The „Verloren-Liste“ shows lost deals whose patient
//! booked again, with the booking and the deal of it. The decision log
//! shows keys masked.
//!
//! The panel has its own model, view state and intents; `app.rs` only
//! forwards events ([`on_event`]) and intents ([`commands`]).

use crate::duplicates::portal::{DealState, Members, PortalContact, PortalDeal, PortalGroup};
use crate::engine::handle::{Command, Event};
use crate::engine::portal_review::PortalReview;
use crate::engine::scan::{ScanProgress, ScanSummary};
use crate::ledger::AuditEntry;
use crate::ledger::portal::{DealMark, MergeRequest};
use crate::logging::Masked;

use super::i18n::Lang;

/// What the engine told this part of the panel.
#[derive(Debug, Default)]
pub struct PortalModel {
    /// The review, once read.
    pub review: Option<Result<PortalReview, String>>,
    /// Progress of the running scan; `None` when none runs.
    pub scanning: Option<ScanProgress>,
    /// How the last scan in this session ended.
    pub last_scan: Option<Result<ScanSummary, String>>,
    /// The decision log, once read.
    pub log: Option<Result<Vec<AuditEntry>, String>>,
}

/// The review's three parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tab {
    /// Patients recorded twice in Ivoris (the first part).
    #[default]
    Patients,
    /// Duplicates found in HubSpot.
    HubSpot,
    /// „Verloren-Liste“.
    Rebooked,
    /// „Protokoll der Entscheidungen“.
    Log,
}

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct PortalView {
    /// The part shown.
    pub tab: Tab,
    /// The group shown side by side (its key).
    pub selected: Option<String>,
    /// A merge waiting for its confirmation.
    pub confirm_merge: Option<MergeRequest>,
    /// The „Verloren-Liste“ entry whose new deal is shown (lost deal id).
    pub shown_new_deal: Option<String>,
}

/// What this part asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalIntent {
    /// Start the scan.
    Scan,
    /// Stop it.
    CancelScan,
    /// Read the findings and the log again.
    Reload,
    /// Read the log.
    LoadLog,
    /// Merge (confirmed).
    Merge(MergeRequest),
    /// Set a deal without our key lost „Duplikat“, or back.
    MarkDeal(DealMark, String),
    /// Mark a case (our deal) duplicate, or back.
    MarkCase {
        /// Case key.
        case_key: String,
        /// Mark or undo.
        duplicate: bool,
        /// The group.
        group: String,
    },
    /// „Kein Duplikat“.
    Dismiss(String),
    /// „Erneut senden“: repair what the scan found out of step.
    ResendDrift,
}

/// Takes the engine's events for this part; returns `false` for others.
/// Commands to send in response go to `send`.
pub fn on_event(model: &mut PortalModel, event: &Event, send: &mut dyn FnMut(Command)) -> bool {
    match event {
        Event::ScanProgress(progress) => model.scanning = Some(*progress),
        Event::ScanFinished(result) => {
            model.scanning = None;
            model.last_scan = Some((**result).clone());
            send(Command::PortalReview);
            // The Übersicht counts what the scan found out of step.
            send(Command::Refresh);
        }
        Event::PortalReview(result) => model.review = Some((**result).clone()),
        Event::DecisionLog(result) => model.log = Some((**result).clone()),
        Event::MergesSent(_) => {
            send(Command::PortalReview);
            send(Command::DecisionLog);
        }
        _ => return false,
    }
    true
}

/// The engine commands for an intent.
pub fn commands(model: &mut PortalModel, intent: PortalIntent) -> Vec<Command> {
    match intent {
        PortalIntent::Scan => {
            model.scanning = Some(ScanProgress::default());
            vec![Command::ScanPortal]
        }
        PortalIntent::CancelScan => vec![Command::CancelScan],
        PortalIntent::Reload => vec![Command::PortalReview, Command::DecisionLog],
        PortalIntent::LoadLog => vec![Command::DecisionLog],
        PortalIntent::Merge(merge) => vec![Command::MergeContacts(merge)],
        PortalIntent::MarkDeal(mark, group) => vec![Command::MarkPortalDeal { mark, group }],
        PortalIntent::MarkCase {
            case_key,
            duplicate,
            group,
        } => vec![Command::MarkCase {
            case_key,
            duplicate,
            group,
        }],
        PortalIntent::Dismiss(key) => vec![Command::DismissDuplicate(key)],
        PortalIntent::ResendDrift => vec![Command::ResendDrift, Command::PortalReview],
    }
}

/// The tab row; returns the intents of switching.
pub fn tabs_ui(ui: &mut egui::Ui, lang: Lang, view: &mut PortalView) -> Vec<PortalIntent> {
    let mut intents = Vec::new();
    ui.horizontal(|ui| {
        ui.selectable_value(
            &mut view.tab,
            Tab::Patients,
            lang.pick("Ivoris-Patienten", "Ivoris patients"),
        );
        for (tab, de, en) in [
            (Tab::HubSpot, "In HubSpot", "In HubSpot"),
            (Tab::Rebooked, "Verloren-Liste", "Lost, booked again"),
            (Tab::Log, "Protokoll der Entscheidungen", "Decision log"),
        ] {
            if ui
                .selectable_value(&mut view.tab, tab, lang.pick(de, en))
                .clicked()
            {
                intents.push(if tab == Tab::Log {
                    PortalIntent::LoadLog
                } else {
                    PortalIntent::Reload
                });
            }
        }
    });
    ui.separator();
    intents
}

/// Draws the tab chosen (not the Ivoris part).
pub fn portal_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    model: &PortalModel,
    view: &mut PortalView,
) -> Vec<PortalIntent> {
    let mut intents = Vec::new();
    match view.tab {
        Tab::Patients => {}
        Tab::HubSpot => {
            scan_bar_ui(ui, lang, model, &mut intents);
            if let Some(review) = loaded(ui, lang, &model.review) {
                drift_ui(ui, lang, review, &mut intents);
                groups_ui(ui, lang, review, view, &mut intents);
            }
        }
        Tab::Rebooked => {
            scan_bar_ui(ui, lang, model, &mut intents);
            if let Some(review) = loaded(ui, lang, &model.review) {
                rebooked_ui(ui, lang, review, view);
            }
        }
        Tab::Log => log_ui(ui, lang, model, &mut intents),
    }
    confirm_merge_ui(ui, lang, view, &mut intents);
    intents
}

/// The reconciliation with HubSpot: records the ledger believes HubSpot
/// holds that were deleted there, lost our key or had values changed by
/// hand, with „Erneut senden“ and the changed values (masked).
fn drift_ui(ui: &mut egui::Ui, lang: Lang, review: &PortalReview, intents: &mut Vec<PortalIntent>) {
    use crate::duplicates::drift::DriftCounts;
    if review.drift.is_empty() {
        ui.weak(lang.pick(
            "Abgleich: HubSpot hat alle Kontakte und Deals so, wie der Ledger sie kennt.",
            "Reconciliation: HubSpot holds every contact and deal as the ledger knows them.",
        ));
        return;
    }
    let counts = DriftCounts::of(&review.drift);
    ui.horizontal_wrapped(|ui| {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "{}: {} {}, {} {}, {} {}.",
                lang.pick("Abgleich", "Reconciliation"),
                lang.number(counts.missing),
                lang.pick(
                    "in HubSpot gelöscht (von Hand?)",
                    "deleted in HubSpot (by hand?)"
                ),
                lang.number(counts.key_changed),
                lang.pick("ohne unseren Schlüssel", "without our key"),
                lang.number(counts.value_changed),
                lang.pick("in HubSpot von Hand geändert", "changed by hand in HubSpot"),
            ),
        );
        if ui
            .button(lang.pick("Erneut senden", "Send again"))
            .on_hover_text(lang.pick(
                "Die nächste Synchronisation legt Gelöschtes neu an, schreibt den Schlüssel zurück und überschreibt von Hand geänderte Werte mit den Werten aus Ivoris",
                "The next sync creates deleted records again, writes the key back and overwrites values changed by hand with the values from Ivoris",
            ))
            .clicked()
        {
            intents.push(PortalIntent::ResendDrift);
        }
    });
    if counts.value_changed > 0 {
        value_changes_ui(ui, lang, review);
    }
}

/// The records whose values were changed by hand: property names in
/// clear, personal values masked as the keys are.
fn value_changes_ui(ui: &mut egui::Ui, lang: Lang, review: &PortalReview) {
    use crate::duplicates::drift::DriftKind;
    egui::CollapsingHeader::new(lang.pick(
        "In HubSpot von Hand geändert – erneut senden überschreibt die Änderung mit den Werten aus Ivoris",
        "Changed by hand in HubSpot – sending again overwrites the change with the values from Ivoris",
    ))
    .id_salt("portal_value_drift")
    .show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt("portal_value_drift_list")
            .max_height(160.0)
            .show(ui, |ui| {
                for item in &review.drift {
                    let DriftKind::ValueChanged { changes } = &item.problem else {
                        continue;
                    };
                    for change in changes {
                        ui.label(format!(
                            "{} {} · {} · {}: {} -> {}",
                            drift_kind_label(lang, &item.kind),
                            item.hubspot_id,
                            mask_key(&item.record_key),
                            change.property,
                            shown_value(&item.kind, &change.property, change.ours.as_deref()),
                            shown_value(&item.kind, &change.property, change.found.as_deref()),
                        ));
                    }
                }
            });
    });
}

/// `contact` / `deal` in words.
fn drift_kind_label(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "contact" => lang.pick("Kontakt", "Contact"),
        _ => lang.pick("Deal", "Deal"),
    }
}

/// A value of a record out of step as shown and printed: masked like a
/// key where it is personal (`duplicates::drift::is_personal`), else in
/// clear; `–` for none.
pub fn shown_value(kind: &str, property: &str, value: Option<&str>) -> String {
    match value {
        None => "–".to_owned(),
        Some(value) if crate::duplicates::drift::is_personal(kind, property) => Masked(value).tag(),
        Some(value) => value.to_owned(),
    }
}

/// The review once read, else a spinner or the error.
fn loaded<'a>(
    ui: &mut egui::Ui,
    lang: Lang,
    review: &'a Option<Result<PortalReview, String>>,
) -> Option<&'a PortalReview> {
    match review {
        None => {
            ui.spinner();
            None
        }
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, lang.half(message));
            None
        }
        Some(Ok(review)) if review.scan.is_none() => {
            ui.label(lang.pick(
                "HubSpot wurde noch nicht geprüft. „HubSpot prüfen“ liest alle Kontakte und Deals (nur lesend).",
                "HubSpot has not been checked yet. \"Check HubSpot\" reads every contact and deal (read only).",
            ));
            None
        }
        Some(Ok(review)) => Some(review),
    }
}

/// „HubSpot prüfen“, the progress of a running scan, and when the last ran.
fn scan_bar_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    model: &PortalModel,
    intents: &mut Vec<PortalIntent>,
) {
    ui.horizontal(|ui| match &model.scanning {
        Some(progress) => {
            let done = progress.contacts + progress.deals;
            let total = progress.contacts_total.zip(progress.deals_total).map(|(c, d)| c + d);
            let text = format!(
                "{} {} · {} {}",
                lang.number(progress.contacts),
                lang.pick("Kontakte", "contacts"),
                lang.number(progress.deals),
                lang.pick("Deals gelesen", "deals read"),
            );
            match total.filter(|t| *t > 0) {
                Some(total) => {
                    let bar = egui::ProgressBar::new(done as f32 / total as f32)
                        .desired_width(240.0)
                        .text(text);
                    ui.add(bar);
                }
                None => {
                    ui.spinner();
                    ui.label(text);
                }
            }
            if ui.button(lang.pick("Prüfung abbrechen", "Cancel check")).clicked() {
                intents.push(PortalIntent::CancelScan);
            }
        }
        None => {
            if ui
                .button(lang.pick("HubSpot prüfen", "Check HubSpot"))
                .on_hover_text(lang.pick(
                    "Liest alle Kontakte und Deals über die Listen-API (nur lesend) und sucht Duplikate.",
                    "Reads every contact and deal through the list API (read only) and looks for duplicates.",
                ))
                .clicked()
            {
                intents.push(PortalIntent::Scan);
            }
            match &model.last_scan {
                Some(Err(message)) => {
                    ui.colored_label(ui.visuals().error_fg_color, lang.half(message));
                }
                Some(Ok(summary)) if summary.not_compared > 0 => {
                    let count = lang.number(summary.not_compared);
                    let text = match lang {
                        Lang::De => format!(
                            "{count} Eigenschaften wurden nicht verglichen: HubSpot lehnte die lange Abfrage ab (414)."
                        ),
                        Lang::En => format!(
                            "{count} properties were not compared: HubSpot refused the long request (414)."
                        ),
                    };
                    ui.colored_label(ui.visuals().warn_fg_color, text);
                }
                _ => {}
            }
            if let Some(Ok(review)) = &model.review
                && let Some(scan) = &review.scan
            {
                ui.weak(format!(
                    "{} {} · {} {} · {} {}",
                    lang.pick("Zuletzt geprüft", "Last checked"),
                    scan.finished_at.get(..16).unwrap_or(&scan.finished_at).replace('T', " "),
                    lang.number(scan.contacts),
                    lang.pick("Kontakte", "contacts"),
                    lang.number(scan.deals),
                    lang.pick("Deals", "deals"),
                ));
            }
        }
    });
    ui.add_space(4.0);
}

/// The groups, one line each, and the selected one side by side.
fn groups_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    review: &PortalReview,
    view: &mut PortalView,
    intents: &mut Vec<PortalIntent>,
) {
    if review.groups.is_empty() {
        ui.label(lang.pick("Keine Duplikate in HubSpot.", "No duplicates in HubSpot."));
        return;
    }
    let german = lang == Lang::De;
    let selected = view
        .selected
        .as_ref()
        .and_then(|key| review.groups.iter().find(|g| &g.key == key))
        .unwrap_or(&review.groups[0]);
    let selected_key = selected.key.clone();
    ui.columns(2, |columns| {
        let (left, right) = columns.split_at_mut(1);
        let ui = &mut left[0];
        ui.strong(format!(
            "{} {}",
            lang.number(review.groups.len() as u64),
            lang.pick("offene Gruppen", "open groups")
        ));
        let row_height = ui.spacing().interact_size.y;
        egui::ScrollArea::vertical()
            .id_salt("portal_groups")
            .auto_shrink([false, false])
            .show_rows(ui, row_height, review.groups.len(), |ui, rows| {
                for group in &review.groups[rows] {
                    let text = format!(
                        "{} · {} · {} {}",
                        group.kind.label(german),
                        first_name(group),
                        group.members.ids().len(),
                        lang.pick("Datensätze", "records"),
                    );
                    if ui
                        .selectable_label(group.key == selected_key, text)
                        .clicked()
                    {
                        view.selected = Some(group.key.clone());
                    }
                }
            });
        group_ui(&mut right[0], lang, review, selected, view, intents);
    });
}

/// A group's line title: its primary's name.
fn first_name(group: &PortalGroup) -> String {
    match &group.members {
        Members::Contacts(c) => c.first().map(contact_name).unwrap_or_default(),
        Members::Deals(d) => d
            .first()
            .and_then(|d| d.name.clone())
            .unwrap_or_else(|| "–".into()),
    }
}

fn contact_name(contact: &PortalContact) -> String {
    format!(
        "{}, {}",
        contact.lastname.as_deref().unwrap_or("–"),
        contact.firstname.as_deref().unwrap_or("–")
    )
}

/// One group side by side with its actions.
fn group_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    review: &PortalReview,
    group: &PortalGroup,
    view: &mut PortalView,
    intents: &mut Vec<PortalIntent>,
) {
    ui.strong(group.kind.label(lang == Lang::De));
    // The grid may be wider than the column; the actions stay outside its
    // scroll area, where a press is never taken for scrolling.
    egui::ScrollArea::horizontal()
        .id_salt("portal_side_by_side")
        .show(ui, |ui| match &group.members {
            Members::Contacts(contacts) => contacts_grid(ui, lang, group, contacts),
            Members::Deals(deals) => deals_grid(ui, lang, group, deals),
        });
    match &group.members {
        Members::Contacts(contacts) => contact_actions_ui(ui, lang, review, group, contacts, view),
        Members::Deals(deals) => {
            for (index, deal) in deals.iter().enumerate().skip(1) {
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "{} {} · {}",
                        lang.pick("Datensatz", "Record"),
                        index + 1,
                        deal.id
                    ));
                    deal_action_ui(ui, lang, review, group, deal, intents);
                });
            }
        }
    }
    ui.add_space(8.0);
    ui.with_layout(egui::Layout::left_to_right(egui::Align::Min), |ui| {
        if ui
            .button(lang.pick("Kein Duplikat", "Not a duplicate"))
            .on_hover_text(lang.pick(
                "Diese Gruppe wird nicht wieder angezeigt (im Prüfprotokoll vermerkt).",
                "This group is not shown again (recorded in the audit log).",
            ))
            .clicked()
        {
            intents.push(PortalIntent::Dismiss(group.key.clone()));
        }
    });
}

/// A row of a side-by-side grid: German and English title, the value.
type Row<T> = (&'static str, &'static str, fn(&T) -> String);

/// Contacts side by side, differing fields highlighted.
fn contacts_grid(ui: &mut egui::Ui, lang: Lang, group: &PortalGroup, contacts: &[PortalContact]) {
    let rows: [Row<PortalContact>; 6] = [
        ("HubSpot-ID", "HubSpot id", |c| c.id.clone()),
        ("Vorname", "First name", |c| {
            c.firstname.clone().unwrap_or_default()
        }),
        ("Nachname", "Last name", |c| {
            c.lastname.clone().unwrap_or_default()
        }),
        ("E-Mail", "E-mail", |c| c.email.clone().unwrap_or_default()),
        ("Patientenschlüssel", "Patient key", |c| {
            c.patient_key.clone().unwrap_or_default()
        }),
        ("Alt-ID", "Legacy id", |c| {
            c.legacy_patient_id.clone().unwrap_or_default()
        }),
    ];
    let highlight = ui.visuals().warn_fg_color;
    egui::Grid::new(("portal_contacts", &group.key))
        .striped(true)
        .num_columns(contacts.len() + 1)
        .show(ui, |ui| {
            ui.label("");
            for index in 0..contacts.len() {
                ui.strong(if index == 0 {
                    lang.pick("Vorschlag: Hauptdatensatz", "Suggested primary")
                        .to_owned()
                } else {
                    format!("{} {}", lang.pick("Datensatz", "Record"), index + 1)
                });
            }
            ui.end_row();
            for (de, en, value) in rows {
                let values: Vec<String> = contacts.iter().map(value).collect();
                let differs = values.iter().any(|v| v != &values[0]);
                if differs {
                    ui.colored_label(highlight, lang.pick(de, en));
                } else {
                    ui.label(lang.pick(de, en));
                }
                for shown in values {
                    let shown = if shown.is_empty() {
                        "–".to_owned()
                    } else {
                        shown
                    };
                    if differs {
                        ui.colored_label(highlight, shown);
                    } else {
                        ui.label(shown);
                    }
                }
                ui.end_row();
            }
        });
}

/// Every member but the primary can be merged into it.
fn contact_actions_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    review: &PortalReview,
    group: &PortalGroup,
    contacts: &[PortalContact],
    view: &mut PortalView,
) {
    let primary = &contacts[0];
    for (index, contact) in contacts.iter().enumerate().skip(1) {
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} {} · {}",
                lang.pick("Datensatz", "Record"),
                index + 1,
                contact.id
            ));
            if review.queued_merges.contains(&contact.id) {
                ui.weak(lang.pick("Zusammenführung vorgemerkt", "Merge queued"));
            } else if ui
                .button(lang.pick("In Hauptdatensatz zusammenführen", "Merge into primary"))
                .clicked()
            {
                view.confirm_merge = Some(MergeRequest {
                    primary: primary.id.clone(),
                    secondary: contact.id.clone(),
                    group: group.key.clone(),
                });
            }
        });
    }
}

/// Deals side by side.
fn deals_grid(ui: &mut egui::Ui, lang: Lang, group: &PortalGroup, deals: &[PortalDeal]) {
    let rows: [Row<PortalDeal>; 6] = [
        ("HubSpot-ID", "HubSpot id", |d| d.id.clone()),
        ("Dealname", "Deal name", |d| {
            d.name.clone().unwrap_or_default()
        }),
        ("Phase", "Stage", |d| {
            d.stage_label.clone().unwrap_or_default()
        }),
        ("Betrag", "Amount", |d| d.amount.clone().unwrap_or_default()),
        ("Fallschlüssel", "Case key", |d| {
            d.case_key.clone().unwrap_or_default()
        }),
        ("Alt-Termin-ID", "Legacy appointment id", |d| {
            d.legacy_appointment_id.clone().unwrap_or_default()
        }),
    ];
    egui::Grid::new(("portal_deals", &group.key))
        .striped(true)
        .num_columns(deals.len() + 1)
        .show(ui, |ui| {
            ui.label("");
            for index in 0..deals.len() {
                ui.strong(if index == 0 {
                    lang.pick("Vorschlag: Hauptdatensatz", "Suggested primary")
                        .to_owned()
                } else {
                    format!("{} {}", lang.pick("Datensatz", "Record"), index + 1)
                });
            }
            ui.end_row();
            for (de, en, value) in rows {
                ui.label(lang.pick(de, en));
                for deal in deals {
                    let shown = value(deal);
                    ui.label(if shown.is_empty() {
                        "–".to_owned()
                    } else {
                        shown
                    });
                }
                ui.end_row();
            }
        });
}

/// A member deal set lost „Duplikat“ (ours through its case, others by
/// id), or back.
fn deal_action_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    review: &PortalReview,
    group: &PortalGroup,
    deal: &PortalDeal,
    intents: &mut Vec<PortalIntent>,
) {
    let marked = match &deal.case_key {
        Some(case) => review.marked_cases.contains(case),
        None => review.marked_deals.get(&deal.id).is_some_and(|m| m.marked),
    };
    let label = if marked {
        lang.pick("Markierung zurücknehmen", "Undo the mark")
    } else {
        lang.pick("Als Duplikat verlieren", "Lose as duplicate")
    };
    let enabled = marked || deal.case_key.is_some() || deal.lost_stage.is_some();
    if !ui.add_enabled(enabled, egui::Button::new(label)).clicked() {
        return;
    }
    intents.push(match &deal.case_key {
        Some(case) => PortalIntent::MarkCase {
            case_key: case.clone(),
            duplicate: !marked,
            group: group.key.clone(),
        },
        None => PortalIntent::MarkDeal(
            DealMark {
                deal: deal.id.clone(),
                lost_stage: deal.lost_stage.clone().unwrap_or_default(),
                stage: deal.stage.clone().unwrap_or_default(),
                reason: deal.loss_reason.clone().unwrap_or_default(),
                duplicate: !marked,
            },
            group.key.clone(),
        ),
    });
}

/// The confirmation of a merge: it cannot be undone.
fn confirm_merge_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: &mut PortalView,
    intents: &mut Vec<PortalIntent>,
) {
    let Some(merge) = view.confirm_merge.clone() else {
        return;
    };
    let modal = egui::Modal::new(egui::Id::unique("confirm_portal_merge")).show(ui.ctx(), |ui| {
        ui.heading(lang.pick("Kontakte zusammenführen?", "Merge contacts?"));
        ui.label(match lang {
            Lang::De => format!(
                "Kontakt {} wird in den Hauptdatensatz {} übernommen.",
                merge.secondary, merge.primary
            ),
            Lang::En => format!(
                "Contact {} is merged into the primary {}.",
                merge.secondary, merge.primary
            ),
        });
        ui.colored_label(
            ui.visuals().warn_fg_color,
            lang.pick(
                "HubSpot führt die Kontakte endgültig zusammen – das kann nicht rückgängig gemacht werden.",
                "HubSpot merges the contacts for good – this cannot be undone.",
            ),
        );
        ui.horizontal(|ui| {
            if ui.button(lang.pick("Endgültig zusammenführen", "Merge for good")).clicked() {
                intents.push(PortalIntent::Merge(merge.clone()));
                view.confirm_merge = None;
            }
            if ui.button(lang.pick("Abbrechen", "Cancel")).clicked() {
                view.confirm_merge = None;
            }
        });
    });
    if modal.should_close() {
        view.confirm_merge = None;
    }
}

/// The „Verloren-Liste“.
fn rebooked_ui(ui: &mut egui::Ui, lang: Lang, review: &PortalReview, view: &mut PortalView) {
    ui.weak(lang.pick(
        "Verlorene Deals, deren Patient wieder einen offenen Termin hat.",
        "Lost deals whose patient has an open booking again.",
    ));
    if review.rebooked.is_empty() {
        ui.label(lang.pick("Keine Einträge.", "No entries."));
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("portal_rebooked")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("portal_rebooked_grid")
                .striped(true)
                .show(ui, |ui| {
                    for title in [
                        lang.pick("Verlorener Deal", "Lost deal"),
                        lang.pick("Grund", "Reason"),
                        lang.pick("Neuer Termin", "New booking"),
                        lang.pick("Neuer Deal", "New deal"),
                    ] {
                        ui.strong(title);
                    }
                    ui.end_row();
                    for entry in &review.rebooked {
                        ui.label(
                            entry
                                .lost
                                .name
                                .clone()
                                .unwrap_or_else(|| entry.lost.id.clone()),
                        );
                        ui.label(entry.lost.loss_reason.clone().unwrap_or_default());
                        ui.label(format!(
                            "{} {}",
                            entry
                                .booking
                                .start
                                .replace('T', " ")
                                .get(..16)
                                .unwrap_or(""),
                            entry.booking.type_label.as_deref().unwrap_or("")
                        ));
                        match &entry.new_deal {
                            Some(deal)
                                if view.shown_new_deal.as_deref() == Some(&entry.lost.id) =>
                            {
                                ui.label(format!(
                                    "{} · {} · {}",
                                    deal.id,
                                    deal.name.as_deref().unwrap_or("–"),
                                    deal.stage_label.as_deref().unwrap_or("–"),
                                ));
                            }
                            Some(_) => {
                                if ui
                                    .small_button(
                                        lang.pick("Neuen Deal zeigen", "Show the new deal"),
                                    )
                                    .clicked()
                                {
                                    view.shown_new_deal = Some(entry.lost.id.clone());
                                }
                            }
                            None => {
                                ui.weak(lang.pick("noch nicht in HubSpot", "not in HubSpot yet"));
                            }
                        }
                        ui.end_row();
                    }
                });
        });
}

/// Whether a deal is open (for the review's texts).
pub fn is_open(deal: &PortalDeal) -> bool {
    deal.state == DealState::Open
}

/// The decision log with keys masked.
fn log_ui(ui: &mut egui::Ui, lang: Lang, model: &PortalModel, intents: &mut Vec<PortalIntent>) {
    ui.horizontal(|ui| {
        if ui
            .small_button(lang.pick("Aktualisieren", "Refresh"))
            .clicked()
        {
            intents.push(PortalIntent::LoadLog);
        }
    });
    let entries = match &model.log {
        None => {
            ui.spinner();
            return;
        }
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, lang.half(message));
            return;
        }
        Some(Ok(entries)) => entries,
    };
    if entries.is_empty() {
        ui.label(lang.pick("Noch keine Entscheidungen.", "No decisions yet."));
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("decision_log")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            egui::Grid::new("decision_log_grid")
                .striped(true)
                .show(ui, |ui| {
                    for title in [
                        lang.pick("Zeit", "Time"),
                        lang.pick("Wer", "Who"),
                        lang.pick("Entscheidung", "Decision"),
                        lang.pick("Betrifft", "Subject"),
                        lang.pick("HubSpot-IDs", "HubSpot ids"),
                    ] {
                        ui.strong(title);
                    }
                    ui.end_row();
                    for entry in entries {
                        ui.label(entry.at.get(..16).unwrap_or(&entry.at).replace('T', " "));
                        ui.label(&entry.entry.actor);
                        ui.label(action_label(lang, &entry.entry.action));
                        ui.label(mask_key(&entry.entry.subject));
                        ui.label(hubspot_ids(&entry.entry.details));
                    }
                });
        });
}

/// German / English name of an audited action.
pub fn action_label(lang: Lang, action: &str) -> String {
    let (de, en) = match action {
        "duplicate.not_duplicate" => ("Kein Duplikat", "Not a duplicate"),
        "duplicate.mark_lost" => ("Fälle als Duplikat verloren", "Cases lost as duplicate"),
        "duplicate.unmark" => ("Markierung zurückgenommen", "Mark undone"),
        "duplicate.merge_requested" => ("Zusammenführung vorgemerkt", "Merge queued"),
        "duplicate.merged" => ("Kontakte zusammengeführt", "Contacts merged"),
        "duplicate.deal_lost" | "duplicate.case_lost" => {
            ("Deal als Duplikat verloren", "Deal lost as duplicate")
        }
        "duplicate.deal_unmark" | "duplicate.case_unmark" => {
            ("Deal-Markierung zurückgenommen", "Deal mark undone")
        }
        "email_withheld" => (
            "Ohne E-Mail geschrieben (Adresse geteilt)",
            "Written without e-mail (shared address)",
        ),
        other => return other.to_owned(),
    };
    lang.pick(de, en).to_owned()
}

/// A subject as the log shows it: HubSpot group keys keep their kind and
/// ids (no personal data), every key with a location keeps the location
/// and masks the rest.
pub fn mask_key(subject: &str) -> String {
    if let Some(rest) = subject.strip_prefix("hubspot:") {
        return format!("HubSpot {}", rest.replace(':', " · "));
    }
    subject
        .split(' ')
        .map(|key| match key.split_once(':') {
            Some((location, rest)) => format!("{location}:{}", Masked(rest).tag()),
            None => Masked(key).tag(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HubSpot ids an entry names (not personal).
fn hubspot_ids(details: &serde_json::Value) -> String {
    ["primary", "merged", "survivor", "deal", "other_contact"]
        .iter()
        .filter_map(|name| {
            let value = details.get(*name)?.as_str()?;
            Some(format!("{name} {value}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
