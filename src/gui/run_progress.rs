//! The running sync's progress as the top bar shows it: HubSpot's side
//! (provisioning, writing) and each location's own step, because the
//! locations are read at the same time, each from its own Ivoris.

use std::collections::BTreeMap;

use crate::engine::extract::{ExtractProgress, Phase};
use crate::engine::run::Progress;

use super::i18n::Lang;

/// Where one location's extraction stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationStep {
    /// Reading from Ivoris.
    Reading(ExtractProgress),
    /// Cases and changes being computed.
    Planning,
}

/// The latest event of every side of a running sync.
#[derive(Debug, Clone, Default)]
pub struct RunProgress {
    /// Provisioning or writing to HubSpot, the latest such event.
    pub hubspot: Option<Progress>,
    /// Each location's latest step, by location key.
    pub locations: BTreeMap<String, LocationStep>,
}

impl RunProgress {
    /// Takes one engine event.
    pub fn apply(&mut self, progress: &Progress) {
        match progress {
            Progress::Extract(step) => {
                self.locations
                    .insert(step.location.clone(), LocationStep::Reading(step.clone()));
            }
            Progress::Planning { location } => {
                self.locations
                    .insert(location.clone(), LocationStep::Planning);
            }
            Progress::Provisioning | Progress::Loading { .. } => {
                self.hubspot = Some(progress.clone());
            }
        }
    }
}

/// The fraction done and the text of one location's step, with the
/// location's name as staff know it.
pub fn location_line(lang: Lang, name: &str, step: &LocationStep) -> (Option<f32>, String) {
    match step {
        LocationStep::Reading(p) => {
            let counts = match p.total {
                Some(total) if total > 0 => {
                    format!("{}/{}", lang.number(p.done), lang.number(total))
                }
                _ => lang.number(p.done),
            };
            (
                p.total.filter(|t| *t > 0).map(|t| p.done as f32 / t as f32),
                format!("{name}: {} · {counts}", phase_name(lang, p.phase)),
            )
        }
        LocationStep::Planning => (
            None,
            format!("{name}: {}", lang.pick("Fälle planen", "planning cases")),
        ),
    }
}

/// A step's name as staff read it.
pub fn phase_name(lang: Lang, phase: Phase) -> &'static str {
    match phase {
        Phase::Stammdaten => lang.pick("Stammdaten", "master data"),
        Phase::Patienten => lang.pick("Patienten", "patients"),
        Phase::Termine => lang.pick("Termine", "appointments"),
        Phase::Leistungen => lang.pick("Leistungen", "billing lines"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(location: &str, phase: Phase, done: u64, total: Option<u64>) -> Progress {
        Progress::Extract(ExtractProgress {
            location: location.into(),
            phase,
            done,
            total,
        })
    }

    #[test]
    fn every_location_keeps_its_own_step_beside_hubspot() {
        let mut run = RunProgress::default();
        run.apply(&reading("mag", Phase::Patienten, 3, None));
        run.apply(&reading("hal", Phase::Termine, 5, Some(10)));
        run.apply(&Progress::Loading {
            kind: crate::ledger::OutboxKind::Contact,
            done: 100,
            total: 400,
            per_second: 19.0,
            remaining_secs: Some(16),
        });
        run.apply(&reading("mag", Phase::Leistungen, 25, Some(100)));
        run.apply(&Progress::Planning {
            location: "hal".into(),
        });
        assert_eq!(run.locations.len(), 2);
        assert_eq!(run.locations.get("hal"), Some(&LocationStep::Planning));
        let Some(step) = run.locations.get("mag") else {
            panic!("mag has a step");
        };
        let (fraction, text) = location_line(Lang::De, "Magdeburg", step);
        assert_eq!(fraction, Some(0.25));
        assert_eq!(text, "Magdeburg: Leistungen · 25/100");
        assert!(matches!(
            run.hubspot,
            Some(Progress::Loading { done: 100, .. })
        ));
    }
}
