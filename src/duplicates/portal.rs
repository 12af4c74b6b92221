//! Duplicates that exist in HubSpot (DESIGN.md §3.3, §6) as a pure
//! function over a listing of the portal and what the ledger knows.
//!
//! The scan (`engine::scan`) lists every contact and deal; this module
//! groups them:
//! - **deals of one case**: several deals that are not lost for one
//!   treatment case — our deal (`ivoris_case_key`) and deals of the
//!   previous integration whose `ivoris_appointment_id` is an appointment of
//!   that case (or, without a case, of the same appointment);
//! - **open deals of one contact**: several open deals with our case key
//!   at one location associated with one contact (invariant 3);
//! - **one person, several contacts**: contacts with our patient key with
//!   the same e-mail address in HubSpot (another address field of HubSpot's
//!   may hold it), or whose patients have the same normalised name and
//!   birthday — not the patients' addresses alone: families share one;
//! - **Altdaten**: contacts without our key that match a patient — the old
//!   integration's `ivoris_patient_id` (with the first name, where both are
//!   known) or the patient's e-mail address — grouped with that patient's
//!   own contact.
//!
//! It also finds the „Verloren-Liste“: lost deals (not lost as „Duplikat“)
//! whose patient has an open booking again, with the booking and the deal
//! of that booking.
//!
//! A group's key names its kind and its members' HubSpot ids, so „kein
//! Duplikat“ holds for exactly that group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::normalise_name;

/// The loss reason that marks a deal already handled as a duplicate.
pub const DUPLICATE_REASON: &str = "Duplikat";

/// A contact as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalContact {
    /// HubSpot id.
    pub id: String,
    /// `ivoris_patient_key`, when the sync wrote or adopted it.
    pub patient_key: Option<String>,
    /// `ivoris_patient_keys`: every patient key a linked contact stands for.
    pub patient_keys: Vec<String>,
    /// The previous integration's `ivoris_patient_id` (bare Ivoris id).
    pub legacy_patient_id: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `firstname`.
    pub firstname: Option<String>,
    /// `lastname`.
    pub lastname: Option<String>,
    /// The listed values of the properties the app writes (what the
    /// reconciliation compares, `super::drift`); personal, so never cached.
    #[serde(skip)]
    pub values: BTreeMap<String, String>,
}

/// Where a deal's stage stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DealState {
    /// Not closed.
    #[default]
    Open,
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
}

/// A deal as listed, with its associated contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDeal {
    /// HubSpot id.
    pub id: String,
    /// `ivoris_case_key`, when the sync wrote or adopted it.
    pub case_key: Option<String>,
    /// The previous integration's `ivoris_appointment_id`.
    pub legacy_appointment_id: Option<String>,
    /// `dealname`.
    pub name: Option<String>,
    /// `pipeline` id.
    pub pipeline: Option<String>,
    /// `dealstage` id.
    pub stage: Option<String>,
    /// Stage label (from the pipelines read), for the review.
    pub stage_label: Option<String>,
    /// Whether the stage is open, won or lost.
    pub state: DealState,
    /// `verlustgrund`.
    pub loss_reason: Option<String>,
    /// `amount`.
    pub amount: Option<String>,
    /// The lost stage of the deal's pipeline, for marking it lost.
    pub lost_stage: Option<String>,
    /// HubSpot ids of the associated contacts.
    pub contacts: Vec<String>,
    /// The listed values of the properties the app writes (what the
    /// reconciliation compares, `super::drift`); not cached.
    #[serde(skip)]
    pub values: BTreeMap<String, String>,
}

impl PortalDeal {
    /// Lost as a confirmed duplicate already.
    fn handled(&self) -> bool {
        self.state == DealState::Lost
            && self
                .loss_reason
                .as_deref()
                .is_some_and(|r| r.trim() == DUPLICATE_REASON)
    }
}

/// A patient as the ledger knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownPatient {
    /// `<location>:<patient id>`.
    pub key: String,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// Birthday as `YYYY-MM-DD`.
    pub birthday: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// An open booking of a patient (a future appointment that is booked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Location key.
    pub location: String,
    /// Ivoris appointment id.
    pub appointment_id: String,
    /// Start, local time as the practice sees it.
    pub start: String,
    /// Appointment type as Ivoris names it.
    pub type_label: Option<String>,
    /// The case the booking joined, if planned already.
    pub case_key: Option<String>,
}

/// What the ledger contributes to the grouping.
#[derive(Debug, Clone, Default)]
pub struct LedgerFacts {
    /// Every mirrored patient.
    pub patients: Vec<KnownPatient>,
    /// Ivoris appointment id → (location, case key), for planned appointments.
    pub appointment_cases: HashMap<String, (String, String)>,
    /// Ivoris appointment id → patient key, for every mirrored appointment.
    pub appointment_patients: HashMap<String, String>,
    /// Patient key → the patient's open bookings, earliest first.
    pub bookings: HashMap<String, Vec<Booking>>,
}

/// The kinds of group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PortalKind {
    /// Several deals for one case.
    CaseDeals,
    /// Several open deals for one contact and location.
    ContactDeals,
    /// Several contacts of one person.
    PersonContacts,
    /// Unkeyed contacts matching a patient.
    Legacy,
}

impl PortalKind {
    /// Stored name, also the prefix of a group key.
    pub fn as_str(self) -> &'static str {
        match self {
            PortalKind::CaseDeals => "case_deals",
            PortalKind::ContactDeals => "contact_deals",
            PortalKind::PersonContacts => "person_contacts",
            PortalKind::Legacy => "legacy",
        }
    }

    /// German / English label.
    pub fn label(self, german: bool) -> &'static str {
        match (self, german) {
            (PortalKind::CaseDeals, true) => "Mehrere Deals für einen Fall",
            (PortalKind::CaseDeals, false) => "Several deals for one case",
            (PortalKind::ContactDeals, true) => "Mehrere offene Deals eines Kontakts",
            (PortalKind::ContactDeals, false) => "Several open deals of one contact",
            (PortalKind::PersonContacts, true) => "Eine Person, mehrere Kontakte",
            (PortalKind::PersonContacts, false) => "One person, several contacts",
            (PortalKind::Legacy, true) => "Altdaten",
            (PortalKind::Legacy, false) => "Legacy records",
        }
    }

    /// Whether the members are contacts (else deals).
    pub fn contacts(self) -> bool {
        matches!(self, PortalKind::PersonContacts | PortalKind::Legacy)
    }
}

/// Records of one group, the suggested primary first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Members {
    /// Contacts.
    Contacts(Vec<PortalContact>),
    /// Deals.
    Deals(Vec<PortalDeal>),
}

impl Members {
    /// The members' HubSpot ids in order.
    pub fn ids(&self) -> Vec<String> {
        match self {
            Members::Contacts(c) => c.iter().map(|c| c.id.clone()).collect(),
            Members::Deals(d) => d.iter().map(|d| d.id.clone()).collect(),
        }
    }
}

/// One group found in HubSpot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalGroup {
    /// `hubspot:<kind>:<sorted ids>`: stable for a decision.
    pub key: String,
    /// What kind of duplicate.
    pub kind: PortalKind,
    /// The patient (or case) key the members stand for, if known.
    pub subject: Option<String>,
    /// The records, suggested primary first.
    pub members: Members,
}

/// A lost deal whose patient booked again („Verloren-Liste“).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebooked {
    /// Patient key.
    pub patient_key: String,
    /// The lost deal.
    pub lost: PortalDeal,
    /// The patient's next open booking.
    pub booking: Booking,
    /// The deal of that booking (its case's deal, or the old integration's
    /// deal of the appointment), if HubSpot has it.
    pub new_deal: Option<PortalDeal>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalFindings {
    /// Groups, by kind then key.
    pub groups: Vec<PortalGroup>,
    /// The „Verloren-Liste“, by patient key.
    pub rebooked: Vec<Rebooked>,
    /// Where the ledger and HubSpot disagree (`duplicates::drift`).
    #[serde(default)]
    pub drift: Vec<super::drift::Drift>,
}

/// Groups the portal's records and finds the „Verloren-Liste“.
pub fn find(
    contacts: &[PortalContact],
    deals: &[PortalDeal],
    facts: &LedgerFacts,
) -> PortalFindings {
    let index = Index::new(contacts, deals, facts);
    let mut groups = case_deal_groups(deals, facts);
    groups.extend(contact_deal_groups(deals));
    groups.extend(person_groups(contacts, &index));
    groups.extend(legacy_groups(contacts, &index));
    groups.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    let rebooked = rebooked(deals, facts, &index);
    PortalFindings {
        groups,
        rebooked,
        drift: Vec::new(),
    }
}

/// Look-ups shared by the rules.
struct Index<'a> {
    /// Patients by key.
    patients: HashMap<&'a str, &'a KnownPatient>,
    /// Patient keys by bare Ivoris id.
    by_bare_id: HashMap<&'a str, Vec<&'a str>>,
    /// Patient keys by e-mail (lower case).
    by_email: HashMap<String, Vec<&'a str>>,
    /// Contact by patient key (own key, or linked keys).
    contact_of: HashMap<&'a str, &'a PortalContact>,
    /// Deals by case key.
    deal_of_case: HashMap<&'a str, &'a PortalDeal>,
    /// Deals by legacy appointment id.
    legacy_deal_of: HashMap<&'a str, &'a PortalDeal>,
}

impl<'a> Index<'a> {
    fn new(contacts: &'a [PortalContact], deals: &'a [PortalDeal], facts: &'a LedgerFacts) -> Self {
        let mut index = Index {
            patients: HashMap::new(),
            by_bare_id: HashMap::new(),
            by_email: HashMap::new(),
            contact_of: HashMap::new(),
            deal_of_case: HashMap::new(),
            legacy_deal_of: HashMap::new(),
        };
        for patient in &facts.patients {
            index.patients.insert(&patient.key, patient);
            if let Some((_, bare)) = patient.key.split_once(':') {
                index.by_bare_id.entry(bare).or_default().push(&patient.key);
            }
            if let Some(email) = lower(&patient.email) {
                index.by_email.entry(email).or_default().push(&patient.key);
            }
        }
        for contact in contacts {
            for key in contact.patient_key.iter().chain(&contact.patient_keys) {
                index.contact_of.entry(key).or_insert(contact);
            }
        }
        for deal in deals {
            if let Some(key) = &deal.case_key {
                index.deal_of_case.insert(key, deal);
            }
            if let Some(id) = &deal.legacy_appointment_id
                && deal.state == DealState::Open
            {
                index.legacy_deal_of.entry(id).or_insert(deal);
            }
        }
        index
    }
}

fn lower(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
}

fn group_key(kind: PortalKind, ids: &[String]) -> String {
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort();
    let joined: Vec<&str> = sorted.into_iter().map(String::as_str).collect();
    format!("hubspot:{}:{}", kind.as_str(), joined.join(" "))
}

/// HubSpot ids compare as numbers where they are numbers (older first).
fn id_order(id: &str) -> (u64, &str) {
    (id.parse().unwrap_or(u64::MAX), id)
}

/// Suggested primary deal: ours (keyed), then open before won before lost,
/// then the oldest.
fn sort_deals(deals: &mut [PortalDeal]) {
    deals.sort_by(|a, b| {
        let rank = |d: &PortalDeal| {
            (
                d.case_key.is_none(),
                match d.state {
                    DealState::Open => 0,
                    DealState::Won => 1,
                    DealState::Lost => 2,
                },
            )
        };
        (rank(a), id_order(&a.id)).cmp(&(rank(b), id_order(&b.id)))
    });
}

/// Suggested primary contact: ours (keyed), then the fullest, then the oldest.
fn sort_contacts(contacts: &mut [PortalContact]) {
    let filled = |c: &PortalContact| {
        [&c.email, &c.firstname, &c.lastname]
            .iter()
            .filter(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
            .count()
    };
    contacts.sort_by(|a, b| {
        let rank = |c: &PortalContact| (c.patient_key.is_none(), usize::MAX - filled(c));
        (rank(a), id_order(&a.id)).cmp(&(rank(b), id_order(&b.id)))
    });
}

fn deal_group(
    kind: PortalKind,
    subject: Option<String>,
    mut deals: Vec<PortalDeal>,
) -> PortalGroup {
    sort_deals(&mut deals);
    let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
    PortalGroup {
        key: group_key(kind, &ids),
        kind,
        subject,
        members: Members::Deals(deals),
    }
}

fn contact_group(
    kind: PortalKind,
    subject: Option<String>,
    mut contacts: Vec<PortalContact>,
) -> PortalGroup {
    sort_contacts(&mut contacts);
    let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
    PortalGroup {
        key: group_key(kind, &ids),
        kind,
        subject,
        members: Members::Contacts(contacts),
    }
}

/// The case (or, unplanned, the appointment) a deal stands for.
fn case_of(deal: &PortalDeal, facts: &LedgerFacts) -> Option<String> {
    if let Some(key) = &deal.case_key {
        return Some(key.clone());
    }
    let appointment = deal.legacy_appointment_id.as_deref()?.trim();
    Some(match facts.appointment_cases.get(appointment) {
        Some((_, case)) => case.clone(),
        None => format!("termin:{appointment}"),
    })
}

/// Several deals that are not lost for one case.
fn case_deal_groups(deals: &[PortalDeal], facts: &LedgerFacts) -> Vec<PortalGroup> {
    let mut by_case: BTreeMap<String, Vec<PortalDeal>> = BTreeMap::new();
    for deal in deals.iter().filter(|d| d.state != DealState::Lost) {
        if let Some(case) = case_of(deal, facts) {
            by_case.entry(case).or_default().push(deal.clone());
        }
    }
    by_case
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(case, members)| deal_group(PortalKind::CaseDeals, Some(case), members))
        .collect()
}

/// Several open deals with our case key for one contact and location.
fn contact_deal_groups(deals: &[PortalDeal]) -> Vec<PortalGroup> {
    let mut by_contact: BTreeMap<(String, String), Vec<PortalDeal>> = BTreeMap::new();
    for deal in deals.iter().filter(|d| d.state == DealState::Open) {
        let Some((location, _)) = deal.case_key.as_deref().and_then(|k| k.split_once(':')) else {
            continue;
        };
        for contact in &deal.contacts {
            by_contact
                .entry((contact.clone(), location.to_owned()))
                .or_default()
                .push(deal.clone());
        }
    }
    let mut seen = BTreeSet::new();
    by_contact
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|((contact, _), members)| {
            deal_group(
                PortalKind::ContactDeals,
                Some(format!("contact:{contact}")),
                members,
            )
        })
        // Deals shared by two contacts of one person are one group.
        .filter(|group| seen.insert(group.key.clone()))
        .collect()
}

/// Union-find over contact positions.
struct Links(Vec<usize>);

impl Links {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

/// Keyed contacts whose patients share an e-mail address, or a normalised
/// name and birthday.
fn person_groups(contacts: &[PortalContact], index: &Index<'_>) -> Vec<PortalGroup> {
    let keyed: Vec<(&PortalContact, &KnownPatient)> = contacts
        .iter()
        .filter_map(|c| {
            let key = c.patient_key.as_deref()?;
            Some((c, *index.patients.get(key)?))
        })
        .collect();
    let mut links = Links((0..keyed.len()).collect());
    let mut first_of: HashMap<String, usize> = HashMap::new();
    for (at, (contact, patient)) in keyed.iter().enumerate() {
        // HubSpot's address only: the patients' may be a family's, which
        // the load wrote onto one of them (`email_withheld`).
        let email = lower(&contact.email);
        let name = match (&patient.firstname, &patient.lastname, &patient.birthday) {
            (Some(first), Some(last), Some(born)) => Some(format!(
                "{}|{}|{born}",
                normalise_name(first),
                normalise_name(last)
            )),
            _ => None,
        };
        for token in [email.map(|e| format!("@{e}")), name].into_iter().flatten() {
            match first_of.get(&token) {
                Some(first) => links.join(*first, at),
                None => {
                    first_of.insert(token, at);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<PortalContact>> = BTreeMap::new();
    for (at, (contact, _)) in keyed.iter().enumerate() {
        let root = links.root(at);
        groups.entry(root).or_default().push((*contact).clone());
    }
    groups
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|members| contact_group(PortalKind::PersonContacts, None, members))
        .collect()
}

/// The patient an unkeyed contact stands for: the old integration's id
/// (with a matching first name where both are known), else the e-mail
/// address of exactly one patient.
fn legacy_patient<'a>(contact: &PortalContact, index: &Index<'a>) -> Option<&'a str> {
    if let Some(bare) = contact.legacy_patient_id.as_deref().map(str::trim) {
        let first = contact.firstname.as_deref().map(normalise_name);
        let matching: Vec<&str> = index
            .by_bare_id
            .get(bare)
            .into_iter()
            .flatten()
            .copied()
            .filter(|key| {
                let known = index.patients.get(key).and_then(|p| p.firstname.as_deref());
                match (&first, known) {
                    (Some(a), Some(b)) => *a == normalise_name(b),
                    _ => true,
                }
            })
            .collect();
        if let [only] = matching.as_slice() {
            return Some(only);
        }
    }
    match index
        .by_email
        .get(&lower(&contact.email)?)
        .map(Vec::as_slice)
    {
        Some([only]) => Some(only),
        _ => None,
    }
}

/// Unkeyed contacts matching a patient, with that patient's contact.
fn legacy_groups(contacts: &[PortalContact], index: &Index<'_>) -> Vec<PortalGroup> {
    let mut by_patient: BTreeMap<&str, Vec<PortalContact>> = BTreeMap::new();
    for contact in contacts
        .iter()
        .filter(|c| c.patient_key.is_none() && c.patient_keys.is_empty())
    {
        if let Some(key) = legacy_patient(contact, index) {
            by_patient.entry(key).or_default().push(contact.clone());
        }
    }
    by_patient
        .into_iter()
        .filter_map(|(key, mut members)| {
            if let Some(own) = index.contact_of.get(key) {
                members.push((*own).clone());
            }
            (members.len() > 1)
                .then(|| contact_group(PortalKind::Legacy, Some(key.to_owned()), members))
        })
        .collect()
}

/// The patient a deal stands for: its case key's, or its legacy
/// appointment's.
fn patient_of_deal(deal: &PortalDeal, facts: &LedgerFacts) -> Option<String> {
    if let Some(appointment) = deal.legacy_appointment_id.as_deref() {
        return facts.appointment_patients.get(appointment.trim()).cloned();
    }
    let case = deal.case_key.as_deref()?;
    let (location, opening) = case.split_once(':')?;
    let patient = facts.appointment_patients.get(opening)?;
    patient
        .starts_with(&format!("{location}:"))
        .then(|| patient.clone())
}

/// Lost deals (not lost as „Duplikat“) whose patient has an open booking.
fn rebooked(deals: &[PortalDeal], facts: &LedgerFacts, index: &Index<'_>) -> Vec<Rebooked> {
    let mut found: Vec<Rebooked> = deals
        .iter()
        .filter(|d| d.state == DealState::Lost && !d.handled())
        .filter_map(|deal| {
            let patient = patient_of_deal(deal, facts)?;
            let booking = facts.bookings.get(&patient)?.first()?.clone();
            let new_deal = booking
                .case_key
                .as_deref()
                .and_then(|case| index.deal_of_case.get(case))
                .or_else(|| index.legacy_deal_of.get(booking.appointment_id.as_str()))
                .map(|d| (*d).clone())
                .filter(|d| d.id != deal.id);
            Some(Rebooked {
                patient_key: patient,
                lost: deal.clone(),
                booking,
                new_deal,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.patient_key, id_order(&a.lost.id)).cmp(&(&b.patient_key, id_order(&b.lost.id)))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(
        id: &str,
        key: Option<&str>,
        legacy: Option<&str>,
        first: &str,
        last: &str,
    ) -> PortalContact {
        PortalContact {
            id: id.into(),
            patient_key: key.map(String::from),
            legacy_patient_id: legacy.map(String::from),
            firstname: Some(first.into()),
            lastname: Some(last.into()),
            ..PortalContact::default()
        }
    }

    fn deal(id: &str, case: Option<&str>, legacy: Option<&str>, state: DealState) -> PortalDeal {
        PortalDeal {
            id: id.into(),
            case_key: case.map(String::from),
            legacy_appointment_id: legacy.map(String::from),
            state,
            ..PortalDeal::default()
        }
    }

    fn patient(key: &str, first: &str, last: &str, born: &str) -> KnownPatient {
        KnownPatient {
            key: key.into(),
            firstname: Some(first.into()),
            lastname: Some(last.into()),
            birthday: Some(born.into()),
            email: None,
        }
    }

    fn check(found: &PortalFindings, expected: &[(PortalKind, &[&str])]) {
        let got: Vec<(PortalKind, Vec<String>)> = found
            .groups
            .iter()
            .map(|g| (g.kind, g.members.ids()))
            .collect();
        let want: Vec<(PortalKind, Vec<String>)> = expected
            .iter()
            .map(|(k, ids)| (*k, ids.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_legacy_deal_of_a_cases_appointment_joins_the_case_deal() {
        let facts = LedgerFacts {
            appointment_cases: HashMap::from([("a2".into(), ("m".into(), "m:a1".into()))]),
            ..LedgerFacts::default()
        };
        let deals = [
            deal("9", None, Some("a2"), DealState::Open),
            deal("5", Some("m:a1"), None, DealState::Open),
            deal("7", None, Some("a2"), DealState::Lost),
        ];
        check(
            &find(&[], &deals, &facts),
            &[(PortalKind::CaseDeals, &["5", "9"])],
        );
    }

    #[test]
    fn open_deals_of_one_contact_at_one_location() {
        let mut a = deal("1", Some("m:a1"), None, DealState::Open);
        let mut b = deal("2", Some("m:a5"), None, DealState::Open);
        let mut c = deal("3", Some("l:a9"), None, DealState::Open);
        for d in [&mut a, &mut b, &mut c] {
            d.contacts = vec!["10".into()];
        }
        check(
            &find(&[], &[a, b, c], &LedgerFacts::default()),
            &[(PortalKind::ContactDeals, &["1", "2"])],
        );
    }

    #[test]
    fn one_person_by_name_and_birthday_but_not_a_family_by_address() {
        let facts = LedgerFacts {
            patients: vec![
                patient("m:1", "Jörg", "Müller", "1970-01-02"),
                patient("l:7", "Joerg", "Mueller", "1970-01-02"),
                patient("m:2", "Anna", "Müller", "1999-03-04"),
            ],
            ..LedgerFacts::default()
        };
        let contacts = [
            contact("1", Some("m:1"), None, "Jörg", "Müller"),
            contact("2", Some("l:7"), None, "Joerg", "Mueller"),
            contact("3", Some("m:2"), None, "Anna", "Müller"),
        ];
        check(
            &find(&contacts, &[], &facts),
            &[(PortalKind::PersonContacts, &["1", "2"])],
        );
    }

    #[test]
    fn an_unkeyed_twin_is_grouped_with_the_patients_contact() {
        let facts = LedgerFacts {
            patients: vec![patient("m:p1", "Jörg", "Müller", "1970-01-02")],
            ..LedgerFacts::default()
        };
        let contacts = [
            contact("4", None, Some("p1"), "Jörg", "Müllerr"),
            contact("8", Some("m:p1"), Some("p1"), "Jörg", "Müller"),
            contact("9", None, Some("p1"), "Anna", "Müller"),
            contact("12", None, None, "Interessent", "Website 1"),
        ];
        check(
            &find(&contacts, &[], &facts),
            &[(PortalKind::Legacy, &["8", "4"])],
        );
    }

    #[test]
    fn a_lost_deal_of_a_patient_who_booked_again() {
        let facts = LedgerFacts {
            appointment_patients: HashMap::from([
                ("a1".into(), "m:p1".into()),
                ("a2".into(), "m:p1".into()),
            ]),
            bookings: HashMap::from([(
                "m:p1".into(),
                vec![Booking {
                    location: "m".into(),
                    appointment_id: "a2".into(),
                    start: "2026-05-01T09:00:00".into(),
                    type_label: None,
                    case_key: Some("m:a2".into()),
                }],
            )]),
            ..LedgerFacts::default()
        };
        let mut duplicate = deal("3", None, Some("a1"), DealState::Lost);
        duplicate.loss_reason = Some(DUPLICATE_REASON.into());
        let deals = [
            deal("1", Some("m:a1"), None, DealState::Lost),
            deal("2", Some("m:a2"), None, DealState::Open),
            duplicate,
        ];
        let found = find(&[], &deals, &facts);
        let listed: Vec<(&str, Option<&str>)> = found
            .rebooked
            .iter()
            .map(|r| {
                (
                    r.lost.id.as_str(),
                    r.new_deal.as_ref().map(|d| d.id.as_str()),
                )
            })
            .collect();
        assert_eq!(listed, vec![("1", Some("2"))]);
    }
}
