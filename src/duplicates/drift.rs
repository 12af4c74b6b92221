//! Reconciliation against HubSpot itself: what the ledger believes
//! HubSpot holds, compared with what a scan listed.
//!
//! - **missing**: the ledger has a HubSpot id for a contact or a case's
//!   deal that the portal no longer lists — deleted (or archived) by hand;
//! - **key changed**: the record is there, but our key on it is gone or
//!   another one (edited by hand) — the next upsert by key would create a
//!   second record;
//! - **value changed**: the record is there with our key, but a property
//!   the app wrote holds another value than HubSpot confirmed (changed in
//!   HubSpot by hand). Compared are only the values the ledger kept with
//!   HubSpot's last confirmation (`hubspot_records.confirmed_values`) of
//!   the properties the scan listed, in the notation an independent
//!   HubSpot may use (`super::values`). Not compared: our keys (see key
//!   changed), properties HubSpot computes (`hs_…`), properties we never
//!   sent, records without kept values (written before the ledger kept
//!   them, adopted and not written yet, a patient linked to another's
//!   contact), a contact several patient keys point at (linked or merged:
//!   their values meet on one record), and records whose write is under
//!   way (the caller passes them without values). Closures and marks of
//!   deals without our key are decisions, not case deals: the ledger does
//!   not count them among the believed records.
//!
//! All three are repaired the same way on request („Erneut senden“,
//! `duplicates resend`): a missing record loses its id and hash, so the
//! next sync creates it again by key; a record whose key or values changed
//! keeps its id and loses its hash, so the next sync writes it — our key
//! and all our values — by id, as for a record adopted from the previous
//! integration. For a value changed by hand that means: „In HubSpot von
//! Hand geändert – erneut senden überschreibt die Änderung mit den Werten
//! aus Ivoris“.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::portal::{PortalContact, PortalDeal};
use super::values::same_value;

/// Our unique keys: checked as keys, never as values.
const KEY_PROPERTIES: [&str; 4] = [
    "ivoris_patient_key",
    "ivoris_patient_keys",
    "ivoris_case_key",
    "ivoris_appointment_key",
];

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriftKind {
    /// The portal does not list it any more.
    Missing,
    /// It is there, but without our key, or with another one.
    KeyChanged {
        /// The key found on it, if any.
        found: Option<String>,
    },
    /// It is there with our key, but values we wrote were changed.
    ValueChanged {
        /// Each property changed, by name.
        changes: Vec<ValueChange>,
    },
}

/// One property whose value HubSpot holds differs from what it confirmed.
/// The values are personal data: shown masked, never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueChange {
    /// Property name.
    pub property: String,
    /// What the app wrote and HubSpot confirmed (`None`: empty).
    pub ours: Option<String>,
    /// What HubSpot holds now (`None`: empty).
    pub found: Option<String>,
}

/// One record where the ledger and HubSpot disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// `contact` or `deal` (the ledger's kind).
    pub kind: String,
    /// Our key (patient key or case key).
    pub record_key: String,
    /// The HubSpot id the ledger has.
    pub hubspot_id: String,
    /// What is wrong.
    pub problem: DriftKind,
}

/// A record the ledger believes HubSpot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Believed {
    /// `contact` or `deal`.
    pub kind: String,
    /// Our key (patient key or case key).
    pub record_key: String,
    /// The HubSpot id the ledger has.
    pub hubspot_id: String,
    /// The values HubSpot confirmed for the properties the app wrote, if
    /// the ledger kept them; `None`: not compared.
    pub confirmed: Option<BTreeMap<String, String>>,
}

/// The properties whose values the scan listed, per kind: only these are
/// compared (a property left out of the listing is not known to differ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueProperties {
    /// Contact properties.
    pub contacts: BTreeSet<String>,
    /// Deal properties.
    pub deals: BTreeSet<String>,
}

/// Whether a property the app wrote is compared as a value: not one of
/// our keys, not one HubSpot computes.
pub fn compared(property: &str) -> bool {
    !KEY_PROPERTIES.contains(&property) && !property.starts_with("hs_")
}

/// Compares the ledger's records (`believed`, contacts and case deals
/// only) with the listed portal. `merged` are patient keys written by id
/// onto a contact that carries another patient's key (a merge): their
/// own key is not expected on it. `listed` names the properties whose
/// values the listing read.
pub fn drift(
    believed: &[Believed],
    contacts: &[PortalContact],
    deals: &[PortalDeal],
    merged: &HashSet<String>,
    listed: &ValueProperties,
) -> Vec<Drift> {
    let contacts: HashMap<&str, &PortalContact> =
        contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let deals: HashMap<&str, &PortalDeal> = deals.iter().map(|d| (d.id.as_str(), d)).collect();
    let shared = shared_contacts(believed);
    let mut found = Vec::new();
    for record in believed {
        let id = record.hubspot_id.as_str();
        let problem = match record.kind.as_str() {
            "contact" => contacts
                .get(id)
                .map_or(Some(DriftKind::Missing), |contact| {
                    contact_problem(record, contact, merged, &shared, listed)
                }),
            "deal" => deals.get(id).map_or(Some(DriftKind::Missing), |deal| {
                deal_problem(record, deal, listed)
            }),
            _ => None,
        };
        if let Some(problem) = problem {
            found.push(Drift {
                kind: record.kind.clone(),
                record_key: record.record_key.clone(),
                hubspot_id: record.hubspot_id.clone(),
                problem,
            });
        }
    }
    found.sort_by(|a, b| (&a.kind, &a.record_key).cmp(&(&b.kind, &b.record_key)));
    found
}

/// HubSpot ids of contacts that several believed records point at.
fn shared_contacts(believed: &[Believed]) -> HashSet<&str> {
    let mut seen = HashSet::new();
    let mut shared = HashSet::new();
    for record in believed.iter().filter(|r| r.kind == "contact") {
        if !seen.insert(record.hubspot_id.as_str()) {
            shared.insert(record.hubspot_id.as_str());
        }
    }
    shared
}

fn contact_problem(
    record: &Believed,
    contact: &PortalContact,
    merged: &HashSet<String>,
    shared: &HashSet<&str>,
    listed: &ValueProperties,
) -> Option<DriftKind> {
    let key = record.record_key.as_str();
    let carries = contact.patient_key.as_deref() == Some(key)
        || contact.patient_keys.iter().any(|k| k == key)
        || merged.contains(key);
    if !carries {
        return Some(DriftKind::KeyChanged {
            found: contact.patient_key.clone(),
        });
    }
    if shared.contains(contact.id.as_str()) {
        return None;
    }
    changed_values(record, &contact.values, &listed.contacts)
}

fn deal_problem(
    record: &Believed,
    deal: &PortalDeal,
    listed: &ValueProperties,
) -> Option<DriftKind> {
    if deal.case_key.as_deref() != Some(record.record_key.as_str()) {
        return Some(DriftKind::KeyChanged {
            found: deal.case_key.clone(),
        });
    }
    changed_values(record, &deal.values, &listed.deals)
}

/// The compared properties whose listed value is not the confirmed one.
fn changed_values(
    record: &Believed,
    values: &BTreeMap<String, String>,
    listed: &BTreeSet<String>,
) -> Option<DriftKind> {
    let confirmed = record.confirmed.as_ref()?;
    let present = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
    let changes: Vec<ValueChange> = confirmed
        .iter()
        .filter(|(name, _)| compared(name) && listed.contains(*name))
        .filter_map(|(name, ours)| {
            let found = values.get(name).map(String::as_str);
            (!same_value(Some(ours), found)).then(|| ValueChange {
                property: name.clone(),
                ours: present(ours),
                found: found.and_then(present),
            })
        })
        .collect();
    (!changes.is_empty()).then_some(DriftKind::ValueChanged { changes })
}

/// How many records of each problem a list has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftCounts {
    /// Deleted in HubSpot.
    pub missing: u64,
    /// Our key gone or another.
    pub key_changed: u64,
    /// Values changed by hand.
    pub value_changed: u64,
}

impl DriftCounts {
    /// Counts `drift` by problem.
    pub fn of(drift: &[Drift]) -> DriftCounts {
        let mut counts = DriftCounts::default();
        for item in drift {
            match item.problem {
                DriftKind::Missing => counts.missing += 1,
                DriftKind::KeyChanged { .. } => counts.key_changed += 1,
                DriftKind::ValueChanged { .. } => counts.value_changed += 1,
            }
        }
        counts
    }

    /// All records out of step.
    pub fn total(&self) -> u64 {
        self.missing + self.key_changed + self.value_changed
    }
}

/// The believed records whose values this scan may compare: those without
/// a write in the outbox (`queued`: kind, key) whose kept values are the
/// same before (`before`) and after (`after`) the listing. Any other record
/// may be listed with values a sync was writing meanwhile, so its values
/// are dropped (its id and key are still checked).
pub fn settled(
    before: Vec<Believed>,
    after: &[Believed],
    queued: &HashSet<(String, String)>,
) -> Vec<Believed> {
    let after: HashMap<(&str, &str), &Option<BTreeMap<String, String>>> = after
        .iter()
        .map(|r| ((r.kind.as_str(), r.record_key.as_str()), &r.confirmed))
        .collect();
    before
        .into_iter()
        .map(|mut record| {
            let key = (record.kind.as_str(), record.record_key.as_str());
            let steady = after.get(&key).is_some_and(|v| **v == record.confirmed)
                && !queued.contains(&(record.kind.clone(), record.record_key.clone()));
            if !steady {
                record.confirmed = None;
            }
            record
        })
        .collect()
}

/// Whether a property's values are shown masked: every contact value (the
/// allow-list holds personal fields only) and a deal's name (it carries the
/// patient's name). Property names are always shown.
pub fn is_personal(kind: &str, property: &str) -> bool {
    kind == "contact" || property == "dealname"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, key: Option<&str>) -> PortalContact {
        PortalContact {
            id: id.into(),
            patient_key: key.map(String::from),
            ..PortalContact::default()
        }
    }

    fn deal(id: &str, key: Option<&str>) -> PortalDeal {
        PortalDeal {
            id: id.into(),
            case_key: key.map(String::from),
            ..PortalDeal::default()
        }
    }

    fn believed(kind: &str, key: &str, id: &str) -> Believed {
        Believed {
            kind: kind.into(),
            record_key: key.into(),
            hubspot_id: id.into(),
            confirmed: None,
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn with_values(mut record: Believed, pairs: &[(&str, &str)]) -> Believed {
        record.confirmed = Some(values(pairs));
        record
    }

    fn listed(contacts: &[&str], deals: &[&str]) -> ValueProperties {
        ValueProperties {
            contacts: contacts.iter().map(|s| (*s).to_owned()).collect(),
            deals: deals.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn missing_and_rekeyed_records_are_found_and_nothing_else() {
        let believed = [
            believed("contact", "a:1", "10"),
            believed("contact", "a:2", "11"),
            believed("contact", "a:3", "12"),
            believed("contact", "a:4", "13"),
            believed("deal", "a:c1", "20"),
            believed("deal", "a:c2", "21"),
        ];
        let contacts = [
            contact("10", Some("a:1")),
            contact("11", None),
            // a:4 was merged onto a contact that keeps another key.
            contact("13", Some("a:9")),
        ];
        let deals = [deal("20", Some("a:c1")), deal("21", Some("a:cX"))];
        let merged: HashSet<String> = ["a:4".to_string()].into();
        let found = drift(
            &believed,
            &contacts,
            &deals,
            &merged,
            &ValueProperties::default(),
        );
        let summary: Vec<(&str, &str, &DriftKind)> = found
            .iter()
            .map(|d| (d.kind.as_str(), d.record_key.as_str(), &d.problem))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("contact", "a:2", &DriftKind::KeyChanged { found: None }),
                ("contact", "a:3", &DriftKind::Missing),
                (
                    "deal",
                    "a:c2",
                    &DriftKind::KeyChanged {
                        found: Some("a:cX".into())
                    }
                ),
            ]
        );
        assert_eq!(
            DriftCounts::of(&found),
            DriftCounts {
                missing: 1,
                key_changed: 2,
                value_changed: 0
            }
        );
    }

    #[test]
    fn values_changed_by_hand_are_found_in_the_listed_properties_only() {
        let believed = [
            with_values(
                believed("contact", "a:1", "10"),
                &[
                    ("lastname", "Müller"),
                    ("email", "anna@beispiel.test"),
                    ("ivoris_patient_key", "a:1"),
                ],
            ),
            with_values(
                believed("deal", "a:c1", "20"),
                &[
                    ("dealstage", "booked"),
                    ("amount", "120.50"),
                    ("closedate", ""),
                    ("behandlungsstart", "2024-01-02"),
                    // Not listed: not compared.
                    ("umsatz_prophylaxe", "10.00"),
                ],
            ),
            // Same values in HubSpot's notation: nothing.
            with_values(
                believed("deal", "a:c2", "21"),
                &[("amount", "120.50"), ("behandlungsstart", "2024-01-02")],
            ),
            // No kept values: not compared.
            believed("deal", "a:c3", "22"),
        ];
        let mut anna = contact("10", Some("a:1"));
        anna.values = values(&[("lastname", "Mueller"), ("email", "Anna@Beispiel.test")]);
        let mut first = deal("20", Some("a:c1"));
        first.values = values(&[
            ("dealstage", "lost"),
            ("amount", "99"),
            ("behandlungsstart", "1704153600000"),
        ]);
        let mut second = deal("21", Some("a:c2"));
        second.values = values(&[
            ("amount", "120.5"),
            ("behandlungsstart", "2024-01-02T00:00:00.000Z"),
        ]);
        let mut third = deal("22", Some("a:c3"));
        third.values = values(&[("amount", "1")]);
        let listed = listed(
            &["lastname", "email", "ivoris_patient_key"],
            &["dealstage", "amount", "closedate", "behandlungsstart"],
        );
        let found = drift(
            &believed,
            &[anna],
            &[first, second, third],
            &HashSet::new(),
            &listed,
        );
        let change = |property: &str, ours: &str, found: Option<&str>| ValueChange {
            property: property.into(),
            ours: Some(ours.into()),
            found: found.map(String::from),
        };
        assert_eq!(
            found,
            vec![
                Drift {
                    kind: "contact".into(),
                    record_key: "a:1".into(),
                    hubspot_id: "10".into(),
                    problem: DriftKind::ValueChanged {
                        changes: vec![change("lastname", "Müller", Some("Mueller"))]
                    },
                },
                Drift {
                    kind: "deal".into(),
                    record_key: "a:c1".into(),
                    hubspot_id: "20".into(),
                    problem: DriftKind::ValueChanged {
                        changes: vec![
                            change("amount", "120.50", Some("99")),
                            change("dealstage", "booked", Some("lost")),
                        ]
                    },
                },
            ]
        );
        assert_eq!(DriftCounts::of(&found).value_changed, 2);
        assert_eq!(DriftCounts::of(&found).total(), 2);
    }

    #[test]
    fn a_contact_several_patients_point_at_is_not_compared_by_value() {
        let believed = [
            with_values(believed("contact", "a:1", "10"), &[("phone", "1")]),
            with_values(believed("contact", "b:7", "10"), &[("phone", "2")]),
        ];
        let mut shared = contact("10", Some("a:1"));
        shared.patient_keys = vec!["a:1".into(), "b:7".into()];
        shared.values = values(&[("phone", "2")]);
        let found = drift(
            &believed,
            &[shared],
            &[],
            &HashSet::new(),
            &listed(&["phone"], &[]),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn values_a_sync_wrote_during_the_listing_are_not_compared() {
        let kept =
            |key: &str, value: &str| with_values(believed("deal", key, "1"), &[("amount", value)]);
        let before = vec![kept("a:1", "1"), kept("a:2", "1"), kept("a:3", "1")];
        // a:1 unchanged; a:2 confirmed anew meanwhile; a:3 queued.
        let after = vec![kept("a:1", "1"), kept("a:2", "2"), kept("a:3", "1")];
        let queued: HashSet<(String, String)> = [("deal".to_owned(), "a:3".to_owned())].into();
        let settled = settled(before, &after, &queued);
        let compared: Vec<(&str, bool)> = settled
            .iter()
            .map(|r| (r.record_key.as_str(), r.confirmed.is_some()))
            .collect();
        assert_eq!(
            compared,
            vec![("a:1", true), ("a:2", false), ("a:3", false)]
        );
    }

    #[test]
    fn keys_and_computed_properties_are_not_values() {
        assert!(!compared("ivoris_patient_key"));
        assert!(!compared("ivoris_patient_keys"));
        assert!(!compared("ivoris_case_key"));
        assert!(!compared("hs_lastmodifieddate"));
        assert!(compared("dealstage"));
        assert!(compared("lastname"));
        assert!(is_personal("contact", "zip"));
        assert!(is_personal("deal", "dealname"));
        assert!(!is_personal("deal", "amount"));
    }
}
