//! Key figures of the dashboard (DESIGN.md §9), per location and week or
//! month, as a pure fold over each patient's facts and derived cases.
//!
//! The engine hands every patient of a location to [`LocationFigures::add_patient`]
//! with the cases and stages the planning rules derive at `now` (the very
//! functions a sync uses, so the dashboard and HubSpot never disagree);
//! nothing here reads the ledger or the clock. What each figure counts:
//!
//! - **Termine** (appointments): members of no ignored type whose start
//!   falls in the period, by normalised state — stattgefunden (arrived,
//!   completed or clarified: the patient was there), abgesagt, nicht
//!   erschienen, offen (booked or confirmed). States the mapping does not
//!   know are counted apart, never guessed.
//! - **Ausfallquote** (no-show rate) = nicht erschienen ÷ (stattgefunden +
//!   nicht erschienen): of the appointments that were due and not cancelled
//!   in advance, the share the patient missed.
//! - **Neupatienten**: patients whose first appointment that took place
//!   falls in the period.
//! - **Erstberatungen**: consultation appointments that took place.
//!   **Konversion**: of the cases whose first consultation took place in the
//!   period, the share whose treatment has started (`behandlungsstart`) by
//!   `now` — a cohort figure, so recent periods still grow.
//! - **Umsatz**: billing lines dated in the period that count as revenue,
//!   per treatment category, exactly as a deal's revenue is summed
//!   ([`crate::plan::revenue`]); „separat“ lines are shown apart.
//! - **Abgeschlossene Behandlungen**: cases won („Behandlung
//!   abgeschlossen“) whose treatment ended in the period; **Umsatz je Fall**
//!   is their average revenue.
//! - **Offene Fälle je Phase** (funnel): cases open at `now`, by stage; a
//!   snapshot, not per period.

pub mod export;

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::mapping::{AppointmentKind, AppointmentState, Category, Mapping, Stage};
use crate::plan::{AppointmentFacts, CaseEntries, EntryFacts, PatientCases, StageOutcome, revenue};

/// How the dashboard splits time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Granularity {
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    #[default]
    Month,
}

impl Granularity {
    /// Both, in the order the dashboard offers them.
    pub const ALL: [Granularity; 2] = [Granularity::Week, Granularity::Month];

    /// The first day of the period `day` lies in.
    pub fn period_start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Week => day
                .week(chrono::Weekday::Mon)
                .checked_first_day()
                .unwrap_or(NaiveDate::MIN),
            Granularity::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the period after the one starting at `start`
    /// (the last representable day at the end of the calendar).
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Week => start.checked_add_days(chrono::Days::new(7)),
            Granularity::Month => start.checked_add_months(Months::new(1)),
        }
        .unwrap_or(NaiveDate::MAX)
    }

    /// The first day of the period `count` periods before the one starting
    /// at `start` (the first representable day at the calendar's start).
    pub fn back(self, start: NaiveDate, count: u32) -> NaiveDate {
        match self {
            Granularity::Week => start.checked_sub_days(chrono::Days::new(7 * u64::from(count))),
            Granularity::Month => start.checked_sub_months(Months::new(count)),
        }
        .unwrap_or(NaiveDate::MIN)
    }

    /// How the period starting at `start` is named: `KW 05/2026` (English
    /// `Wk 05/2026`, the ISO week and its year) or `01/2026`.
    pub fn label(self, start: NaiveDate, german: bool) -> String {
        match self {
            Granularity::Week => {
                let week = start.iso_week();
                let prefix = if german { "KW" } else { "Wk" };
                format!("{prefix} {:02}/{}", week.week(), week.year())
            }
            Granularity::Month => format!("{:02}/{}", start.month(), start.year()),
        }
    }

    /// Name for choosers and the CLI.
    pub fn name(self, german: bool) -> &'static str {
        match (self, german) {
            (Granularity::Week, true) => "Woche",
            (Granularity::Week, false) => "Week",
            (Granularity::Month, true) => "Monat",
            (Granularity::Month, false) => "Month",
        }
    }
}

/// The periods a report covers: `count` periods ending with the one that
/// contains `today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods {
    /// Week or month.
    pub granularity: Granularity,
    /// First day of each period, oldest first.
    pub starts: Vec<NaiveDate>,
}

impl Periods {
    /// `count` (at least one) periods up to and including today's.
    pub fn ending(granularity: Granularity, today: NaiveDate, count: u32) -> Periods {
        let last = granularity.period_start(today);
        let first = granularity.back(last, count.max(1) - 1);
        let mut starts = Vec::new();
        let mut start = first;
        while start <= last {
            starts.push(start);
            let next = granularity.next(start);
            if next <= start {
                // The end of the calendar.
                break;
            }
            start = next;
        }
        Periods {
            granularity,
            starts,
        }
    }

    /// Index of the period `day` lies in, if the report covers it.
    pub fn index_of(&self, day: NaiveDate) -> Option<usize> {
        let start = self.granularity.period_start(day);
        self.starts.binary_search(&start).ok()
    }

    /// The label of period `index` (see [`Granularity::label`]).
    pub fn label(&self, index: usize, german: bool) -> String {
        self.starts
            .get(index)
            .map(|start| self.granularity.label(*start, german))
            .unwrap_or_default()
    }
}

/// Appointments of one period by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentCounts {
    /// Took place: arrived, completed or clarified.
    pub attended: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// The patient did not come.
    pub no_show: u64,
    /// Still booked or confirmed.
    pub open: u64,
    /// State not in the mapping; counted apart, never guessed.
    pub unmapped: u64,
}

impl AppointmentCounts {
    /// Every appointment of the period.
    pub fn total(&self) -> u64 {
        self.attended + self.cancelled + self.no_show + self.open + self.unmapped
    }

    /// No-shows among the appointments that were due and not cancelled;
    /// `None` when there were none.
    pub fn no_show_rate(&self) -> Option<f64> {
        ratio(self.no_show, self.attended + self.no_show)
    }

    fn add(&mut self, other: &AppointmentCounts) {
        self.attended += other.attended;
        self.cancelled += other.cancelled;
        self.no_show += other.no_show;
        self.open += other.open;
        self.unmapped += other.unmapped;
    }
}

/// The figures of one location (or of all) in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodFigures {
    /// Appointments starting in the period.
    pub appointments: AppointmentCounts,
    /// Patients whose first attended appointment is in the period.
    pub new_patients: u64,
    /// Consultation appointments that took place.
    pub consultations: u64,
    /// Cases whose first consultation took place in the period.
    pub consulted_cases: u64,
    /// Of those, the cases whose treatment has started.
    pub converted_cases: u64,
    /// Revenue of the lines dated in the period, in cents.
    pub revenue_cents: i64,
    /// The same per treatment category (every category present).
    pub revenue_by_category: BTreeMap<Category, i64>,
    /// Lines counted „separat“, in cents (not in the revenue).
    pub separate_cents: i64,
    /// Cases won whose treatment ended in the period.
    pub completed_treatments: u64,
    /// Their revenue, in cents.
    pub completed_revenue_cents: i64,
    /// Cases lost in the period.
    pub lost_cases: u64,
}

impl PeriodFigures {
    fn empty() -> PeriodFigures {
        PeriodFigures {
            revenue_by_category: Category::ALL.into_iter().map(|c| (c, 0)).collect(),
            ..PeriodFigures::default()
        }
    }

    /// Share of consulted cases whose treatment started.
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.converted_cases, self.consulted_cases)
    }

    /// Average revenue of a completed treatment, in cents (rounded).
    pub fn revenue_per_case_cents(&self) -> Option<i64> {
        let cases = i64::try_from(self.completed_treatments).ok()?;
        if cases == 0 {
            return None;
        }
        let cents = i128::from(self.completed_revenue_cents);
        let cases = i128::from(cases);
        // Round half away from zero.
        let rounded = (2 * cents + cents.signum() * cases) / (2 * cases);
        i64::try_from(rounded).ok()
    }

    fn add(&mut self, other: &PeriodFigures) {
        self.appointments.add(&other.appointments);
        self.new_patients += other.new_patients;
        self.consultations += other.consultations;
        self.consulted_cases += other.consulted_cases;
        self.converted_cases += other.converted_cases;
        self.revenue_cents = self.revenue_cents.saturating_add(other.revenue_cents);
        for (category, cents) in &other.revenue_by_category {
            let slot = self.revenue_by_category.entry(*category).or_insert(0);
            *slot = slot.saturating_add(*cents);
        }
        self.separate_cents = self.separate_cents.saturating_add(other.separate_cents);
        self.completed_treatments += other.completed_treatments;
        self.completed_revenue_cents = self
            .completed_revenue_cents
            .saturating_add(other.completed_revenue_cents);
        self.lost_cases += other.lost_cases;
    }
}

/// Cases by their stage at `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// Cases per stage (every stage present).
    pub by_stage: BTreeMap<Stage, u64>,
}

impl Funnel {
    fn empty() -> Funnel {
        Funnel {
            by_stage: Stage::ALL.into_iter().map(|s| (s, 0)).collect(),
        }
    }

    /// Cases in `stage`.
    pub fn count(&self, stage: Stage) -> u64 {
        self.by_stage.get(&stage).copied().unwrap_or(0)
    }

    /// Open cases (deals not yet won or lost).
    pub fn open(&self) -> u64 {
        self.by_stage
            .iter()
            .filter(|(stage, _)| !stage.is_closed())
            .map(|(_, n)| n)
            .sum()
    }
}

/// One patient as the dashboard sees it: facts plus what the planning
/// rules derived from them.
#[derive(Debug, Clone, Copy)]
pub struct PatientView<'a> {
    /// Every mirrored appointment of the patient, by start.
    pub appointments: &'a [AppointmentFacts],
    /// Every billing line of the patient, by date.
    pub entries: &'a [EntryFacts],
    /// The patient's cases as planning forms them.
    pub cases: &'a PatientCases,
    /// The stage of each case, in the order of `cases.cases`.
    pub outcomes: &'a [StageOutcome],
    /// The billing lines per case.
    pub spans: &'a CaseEntries,
}

/// The figures of one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationFigures {
    /// Location key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// One entry per period of the report.
    pub periods: Vec<PeriodFigures>,
    /// Cases by stage now.
    pub funnel: Funnel,
}

impl LocationFigures {
    /// No figures yet for `periods`.
    pub fn new(key: &str, name: &str, periods: &Periods) -> LocationFigures {
        LocationFigures {
            key: key.to_owned(),
            name: name.to_owned(),
            periods: vec![PeriodFigures::empty(); periods.starts.len()],
            funnel: Funnel::empty(),
        }
    }

    /// Adds one patient.
    pub fn add_patient(&mut self, patient: PatientView<'_>, periods: &Periods, mapping: &Mapping) {
        self.add_appointments(patient.appointments, periods, mapping);
        self.add_revenue(patient.entries, periods, mapping);
        self.add_cases(patient, periods, mapping);
    }

    fn slot(&mut self, periods: &Periods, day: NaiveDate) -> Option<&mut PeriodFigures> {
        let index = periods.index_of(day)?;
        self.periods.get_mut(index)
    }

    fn add_appointments(
        &mut self,
        appointments: &[AppointmentFacts],
        periods: &Periods,
        mapping: &Mapping,
    ) {
        let mut first_attended: Option<NaiveDate> = None;
        for appointment in appointments {
            let kind = mapping
                .appointment_type(
                    appointment.type_label.as_deref(),
                    appointment.template_id.as_deref(),
                )
                .kind;
            if kind == AppointmentKind::Ignore {
                continue;
            }
            let state = mapping.appointment_state(&appointment.state);
            let day = appointment.start.date();
            if state.is_some_and(attended) {
                first_attended = Some(first_attended.map_or(day, |first| first.min(day)));
            }
            let Some(slot) = self.slot(periods, day) else {
                continue;
            };
            let counts = &mut slot.appointments;
            match state {
                None => counts.unmapped += 1,
                Some(AppointmentState::Cancelled) => counts.cancelled += 1,
                Some(AppointmentState::NoShow) => counts.no_show += 1,
                Some(state) if state.is_pending() => counts.open += 1,
                Some(_) => counts.attended += 1,
            }
            if kind == AppointmentKind::Consultation && state.is_some_and(attended) {
                slot.consultations += 1;
            }
        }
        if let Some(slot) = first_attended.and_then(|day| self.slot(periods, day)) {
            slot.new_patients += 1;
        }
    }

    fn add_revenue(&mut self, entries: &[EntryFacts], periods: &Periods, mapping: &Mapping) {
        // Lines come by date, so each period's lines are one run.
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let start = periods.granularity.period_start(first.date);
            let end = periods.granularity.next(start);
            // The first line always belongs to the run (also where `end`
            // saturates at the end of the calendar).
            let split = rest
                .iter()
                .skip(1)
                .position(|e| e.date >= end || e.date < start)
                .map(|at| at + 1);
            let (run, tail) = rest.split_at(split.unwrap_or(rest.len()));
            rest = tail;
            let Some(slot) = self.slot(periods, start) else {
                continue;
            };
            let sums = revenue(run, mapping);
            slot.revenue_cents = slot.revenue_cents.saturating_add(sums.total_cents);
            slot.separate_cents = slot.separate_cents.saturating_add(sums.separate_cents);
            for (category, cents) in sums.per_category {
                let cell = slot.revenue_by_category.entry(category).or_insert(0);
                *cell = cell.saturating_add(cents);
            }
        }
    }

    fn add_cases(&mut self, patient: PatientView<'_>, periods: &Periods, mapping: &Mapping) {
        for (case, outcome) in patient.cases.cases.iter().zip(patient.outcomes) {
            *self.funnel.by_stage.entry(outcome.stage).or_insert(0) += 1;
            let first_consultation = case
                .members
                .iter()
                .filter(|member| {
                    let kind = mapping
                        .appointment_type(
                            member.type_label.as_deref(),
                            member.template_id.as_deref(),
                        )
                        .kind;
                    kind == AppointmentKind::Consultation
                        && mapping
                            .appointment_state(&member.state)
                            .is_some_and(attended)
                })
                .map(|member| member.start.date())
                .min();
            if let Some(slot) = first_consultation.and_then(|day| self.slot(periods, day)) {
                slot.consulted_cases += 1;
                if outcome.behandlungsstart.is_some() {
                    slot.converted_cases += 1;
                }
            }
            let Some(closed_on) = outcome.closed_on else {
                continue;
            };
            let case_revenue = if outcome.stage == Stage::Won {
                let lines = patient
                    .spans
                    .by_case
                    .get(&case.key)
                    .map_or(&[][..], Vec::as_slice);
                revenue(lines, mapping).total_cents
            } else {
                0
            };
            let Some(slot) = self.slot(periods, closed_on) else {
                continue;
            };
            match outcome.stage {
                Stage::Won => {
                    slot.completed_treatments += 1;
                    slot.completed_revenue_cents =
                        slot.completed_revenue_cents.saturating_add(case_revenue);
                }
                Stage::Lost => slot.lost_cases += 1,
                _ => {}
            }
        }
    }

    /// Every period added up: the figures of the whole report's time.
    pub fn sum(&self) -> PeriodFigures {
        let mut sum = PeriodFigures::empty();
        for period in &self.periods {
            sum.add(period);
        }
        sum
    }

    /// Adds figures of the same periods: another location's (for the
    /// chain's total) or another part of this location's patients.
    pub fn absorb(&mut self, other: &LocationFigures) {
        for (mine, theirs) in self.periods.iter_mut().zip(&other.periods) {
            mine.add(theirs);
        }
        for (stage, n) in &other.funnel.by_stage {
            *self.funnel.by_stage.entry(*stage).or_insert(0) += n;
        }
    }
}

/// The patient was there.
fn attended(state: AppointmentState) -> bool {
    matches!(
        state,
        AppointmentState::Arrived | AppointmentState::Completed | AppointmentState::Clarified
    )
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    // Counts stay far below 2^52, where f64 is exact.
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The dashboard: figures of every selected location over the periods.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiReport {
    /// When the stages were derived (local Berlin time).
    pub now: NaiveDateTime,
    /// The periods, oldest first.
    pub periods: Periods,
    /// Per location, in the order of the settings.
    pub locations: Vec<LocationFigures>,
    /// Each stage's name as the mapping gives it (the HubSpot label).
    pub stage_labels: BTreeMap<Stage, String>,
}

impl KpiReport {
    /// The name of `stage` as the practice calls it.
    pub fn stage_label(&self, stage: Stage) -> String {
        self.stage_labels
            .get(&stage)
            .cloned()
            .unwrap_or_else(|| stage.key().to_owned())
    }

    /// All locations together („Alle Standorte“).
    pub fn total(&self, name: &str) -> LocationFigures {
        let mut total = LocationFigures::new("", name, &self.periods);
        for location in &self.locations {
            total.absorb(location);
        }
        total
    }

    /// One location's figures, or all together for `None`.
    pub fn figures(&self, location: Option<&str>, all_name: &str) -> Option<LocationFigures> {
        match location {
            None => Some(self.total(all_name)),
            Some(key) => self.locations.iter().find(|l| l.key == key).cloned(),
        }
    }
}

#[cfg(test)]
mod tests;
