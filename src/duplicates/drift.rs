//! Reconciliation against HubSpot itself: what the ledger believes
//! HubSpot holds, compared with what a scan listed.
//!
//! - **missing**: the ledger has a HubSpot id for a contact or a case's
//!   deal that the portal no longer lists — deleted (or archived) by hand;
//! - **key changed**: the record is there, but our key on it is gone or
//!   another one (edited by hand) — the next upsert by key would create a
//!   second record.
//!
//! Both are repaired the same way on request („Erneut senden“,
//! `duplicates resend`): a missing record loses its id and hash, so the
//! next sync creates it again by key; a record whose key changed keeps its
//! id and loses its hash, so the next sync writes it — our key included —
//! by id, as for a record adopted from the previous integration.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::portal::{PortalContact, PortalDeal};

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

/// A record the ledger believes HubSpot holds: kind, key, HubSpot id.
pub type Believed = (String, String, String);

/// Compares the ledger's records (`believed`, contacts and case deals
/// only) with the listed portal. `merged` are patient keys written by id
/// onto a contact that carries another patient's key (a merge): their
/// own key is not expected on it.
pub fn drift(
    believed: &[Believed],
    contacts: &[PortalContact],
    deals: &[PortalDeal],
    merged: &HashSet<String>,
) -> Vec<Drift> {
    let contacts: HashMap<&str, &PortalContact> =
        contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let deals: HashMap<&str, &PortalDeal> = deals.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut found = Vec::new();
    for (kind, key, id) in believed {
        let problem = match kind.as_str() {
            "contact" => match contacts.get(id.as_str()) {
                None => Some(DriftKind::Missing),
                Some(contact) => {
                    let carries = contact.patient_key.as_deref() == Some(key.as_str())
                        || contact.patient_keys.iter().any(|k| k == key)
                        || merged.contains(key);
                    (!carries).then(|| DriftKind::KeyChanged {
                        found: contact.patient_key.clone(),
                    })
                }
            },
            "deal" => match deals.get(id.as_str()) {
                None => Some(DriftKind::Missing),
                Some(deal) => (deal.case_key.as_deref() != Some(key.as_str())).then(|| {
                    DriftKind::KeyChanged {
                        found: deal.case_key.clone(),
                    }
                }),
            },
            _ => None,
        };
        if let Some(problem) = problem {
            found.push(Drift {
                kind: kind.clone(),
                record_key: key.clone(),
                hubspot_id: id.clone(),
                problem,
            });
        }
    }
    found.sort_by(|a, b| (&a.kind, &a.record_key).cmp(&(&b.kind, &b.record_key)));
    found
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
        (kind.into(), key.into(), id.into())
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
        let found = drift(&believed, &contacts, &deals, &merged);
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
    }
}
