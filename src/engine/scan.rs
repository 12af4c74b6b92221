//! „HubSpot prüfen“: the scan for duplicates that exist in HubSpot
//! (DESIGN.md §6). It lists every contact and every deal (with its
//! associated contacts) through the list API — 100 records a call, paced
//! by the client's rate limiter — builds the ledger's facts, groups with
//! [`crate::duplicates::portal::find`] and caches the findings in the
//! ledger (`ledger::portal`), where the review reads them.
//!
//! The same listing reconciles the ledger with HubSpot
//! ([`crate::duplicates::drift`]): besides what the grouping needs it asks
//! for the properties the app wrote (their names from the values the
//! ledger kept with HubSpot's confirmations; as many as the list call's
//! URL takes), so records deleted, re-keyed or changed by hand are found
//! at no extra call. What the ledger believes is read before the listing;
//! values are compared only for records no write touched while it ran.
//!
//! The scan only reads: HubSpot is not changed and the ledger only gets
//! its cache, so it needs no writer lock and may run beside a sync.
//! Progress goes to a callback, a [`CancelFlag`] stops it between pages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::duplicates::drift::{DriftCounts, ValueProperties, compared, drift, settled};
use crate::duplicates::portal::{
    Booking, DealState, KnownPatient, LedgerFacts, PortalContact, PortalDeal, find,
};
use crate::hubspot::wire::{Pipeline, Record, SearchRequest};
use crate::hubspot::{ClientError, HubSpotClient, ObjectKind};
use crate::ledger::portal::PortalScan;
use crate::ledger::{Ledger, LedgerError};
use crate::mapping::AppointmentState;

use super::extract::CancelFlag;
use super::run::{SyncEnvironment, hubspot_client};

/// How far a scan is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanProgress {
    /// Contacts listed so far.
    pub contacts: u64,
    /// Deals listed so far.
    pub deals: u64,
    /// Contacts in the portal, when HubSpot said (one search).
    pub contacts_total: Option<u64>,
    /// Deals in the portal, when HubSpot said.
    pub deals_total: Option<u64>,
}

/// What a finished scan reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Contacts listed.
    pub contacts: u64,
    /// Deals listed.
    pub deals: u64,
    /// List calls made.
    pub calls: u64,
    /// Groups found.
    pub groups: u64,
    /// Entries of the „Verloren-Liste“.
    pub rebooked: u64,
    /// Records out of step with the ledger, by problem.
    pub drift: DriftCounts,
    /// Properties whose values could not be compared because HubSpot
    /// refused the list call's address as too long (see [`Asked`]).
    pub not_compared: u64,
    /// Time spent listing.
    pub listing: Duration,
    /// Time spent grouping.
    pub grouping: Duration,
}

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// HubSpot refused or failed.
    #[error("{} / {}", .0.explain_de(), .0.explain_en())]
    HubSpot(#[from] ClientError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The user stopped it.
    #[error("Prüfung abgebrochen / Scan cancelled")]
    Cancelled,
    /// A worker thread failed.
    #[error("Interner Fehler / Internal error: {0}")]
    Internal(String),
}

/// Contact properties the grouping needs.
const CONTACT_PROPERTIES: [&str; 6] = [
    "ivoris_patient_key",
    "ivoris_patient_keys",
    "ivoris_patient_id",
    "email",
    "firstname",
    "lastname",
];

/// Deal properties the grouping and the review need.
const DEAL_PROPERTIES: [&str; 8] = [
    "dealname",
    "pipeline",
    "dealstage",
    "amount",
    "verlustgrund",
    "ivoris_case_key",
    "ivoris_appointment_id",
    "closedate",
];

/// Scans the portal of `env` and stores the findings in its ledger.
pub async fn scan(
    env: &SyncEnvironment,
    progress: &(dyn Fn(ScanProgress) + Sync),
    cancel: &CancelFlag,
) -> Result<ScanSummary, ScanError> {
    let client = hubspot_client(env)?;
    let now = (env.clock)();
    // What the ledger believes HubSpot holds is read before the listing
    // starts: a record a sync confirms meanwhile is not taken for missing.
    let (before, merged, names) = blocking(&env.ledger_path, |ledger| {
        Ok((
            ledger.believed_records()?,
            ledger.merged_patient_keys()?,
            ledger.confirmed_property_names()?,
        ))
    })
    .await?;
    let values = value_properties(&names);
    let ledger_path = env.ledger_path.clone();
    let facts =
        tokio::task::spawn_blocking(move || ledger_facts(&Ledger::open(&ledger_path)?, now));
    let listed = list_portal(&client, &values, progress, cancel).await?;
    let facts = facts
        .await
        .map_err(|e| ScanError::Internal(e.to_string()))??;
    // Values a sync wrote while the listing ran are not compared.
    let (after, queued) = blocking(&env.ledger_path, |ledger| {
        Ok((ledger.believed_records()?, ledger.queued_records()?))
    })
    .await?;
    let believed = settled(before, &after, &queued);
    let started = Instant::now();
    let mut findings = find(&listed.contacts, &listed.deals, &facts);
    findings.drift = drift(
        &believed,
        &listed.contacts,
        &listed.deals,
        &merged,
        &listed.compared,
    );
    let grouping = started.elapsed();
    let summary = ScanSummary {
        contacts: listed.contacts.len() as u64,
        deals: listed.deals.len() as u64,
        calls: listed.calls,
        groups: findings.groups.len() as u64,
        rebooked: findings.rebooked.len() as u64,
        drift: DriftCounts::of(&findings.drift),
        not_compared: listed.given_up,
        listing: listed.took,
        grouping,
    };
    let ledger_path = env.ledger_path.clone();
    let stored = PortalScan {
        finished_at: chrono::Utc::now().to_rfc3339(),
        contacts: summary.contacts,
        deals: summary.deals,
        calls: summary.calls,
        findings,
    };
    tokio::task::spawn_blocking(move || Ledger::open(&ledger_path)?.store_portal_scan(&stored))
        .await
        .map_err(|e| ScanError::Internal(e.to_string()))??;
    tracing::info!(
        contacts = summary.contacts,
        deals = summary.deals,
        calls = summary.calls,
        groups = summary.groups,
        rebooked = summary.rebooked,
        missing = summary.drift.missing,
        key_changed = summary.drift.key_changed,
        value_changed = summary.drift.value_changed,
        not_compared = summary.not_compared,
        "portal scanned for duplicates and reconciled with the ledger"
    );
    Ok(summary)
}

/// Runs `read` on the ledger at `path` on a blocking thread.
async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    read: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, ScanError> {
    let path = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || read(&Ledger::open(&path)?))
        .await
        .map_err(|e| ScanError::Internal(e.to_string()))?;
    Ok(result?)
}

/// At most this many characters of property names in one list call's
/// `properties` parameter: the list endpoints take them in the URL.
/// HubSpot documents the 414 answer to a too long address but not the
/// length, so this is a first guess well below the common 8 KiB request
/// line; should HubSpot still answer 414, the listing gives up half of
/// the further properties and asks again ([`Asked::shrink`]).
const MAX_PROPERTIES_PARAM: usize = 2_000;

/// The properties whose values the listing reads to compare them: the
/// names of the values the ledger kept (`names`, by kind), without keys
/// and HubSpot's own, as far as the URL of the list call allows (the
/// grouping's properties always go first). Left-out properties are not
/// compared; how many is logged.
pub fn value_properties(names: &BTreeMap<String, BTreeSet<String>>) -> ValueProperties {
    let pick = |kind: &str, base: &[&str]| {
        let mut length: usize = base.iter().map(|name| name.len() + 1).sum();
        let mut chosen = BTreeSet::new();
        let mut left_out = 0_u64;
        for name in names.get(kind).into_iter().flatten() {
            if !compared(name) {
                continue;
            }
            if !base.contains(&name.as_str()) {
                if length + name.len() + 1 > MAX_PROPERTIES_PARAM {
                    left_out += 1;
                    continue;
                }
                length += name.len() + 1;
            }
            chosen.insert(name.clone());
        }
        if left_out > 0 {
            tracing::warn!(
                kind,
                left_out,
                "properties not compared with HubSpot: the list call's address would be too long"
            );
        }
        chosen
    };
    ValueProperties {
        contacts: pick("contact", &CONTACT_PROPERTIES),
        deals: pick("deal", &DEAL_PROPERTIES),
    }
}

/// The properties one listing asks for: the grouping's, then the further
/// ones to compare — fewer of those after HubSpot refused the address as
/// too long (414), which [`MAX_PROPERTIES_PARAM`] only guesses at.
struct Asked {
    /// The grouping's properties, always asked.
    base: &'static [&'static str],
    /// The properties compared (some may be in `base`).
    values: BTreeSet<String>,
    /// Compared properties given up after a 414.
    given_up: u64,
}

impl Asked {
    fn new(base: &'static [&'static str], values: &BTreeSet<String>) -> Asked {
        Asked {
            base,
            values: values.clone(),
            given_up: 0,
        }
    }

    /// The grouping's properties, then the further ones to compare.
    fn properties(&self) -> Vec<String> {
        self.base
            .iter()
            .map(|name| (*name).to_owned())
            .chain(self.further().cloned())
            .collect()
    }

    fn further(&self) -> impl Iterator<Item = &String> {
        self.values
            .iter()
            .filter(|name| !self.base.contains(&name.as_str()))
    }

    /// Gives up the later half of the further properties after a 414;
    /// `false` when there are none left to give up.
    fn shrink(&mut self) -> bool {
        let further: Vec<String> = self.further().cloned().collect();
        if further.is_empty() {
            return false;
        }
        let dropped = further.len().div_ceil(2);
        for name in &further[further.len() - dropped..] {
            self.values.remove(name);
        }
        self.given_up += dropped as u64;
        tracing::warn!(
            given_up = dropped,
            left = further.len() - dropped,
            "HubSpot refused the list call's address as too long; fewer properties compared"
        );
        true
    }
}

/// The values of `wanted` a listed record holds.
fn listed_values(record: &Record, wanted: &BTreeSet<String>) -> BTreeMap<String, String> {
    wanted
        .iter()
        .filter_map(|name| Some((name.clone(), record.properties.get(name)?.clone())))
        .collect()
}

/// The portal as listed.
#[derive(Debug, Default)]
pub struct Listed {
    /// Every contact.
    pub contacts: Vec<PortalContact>,
    /// Every deal with its contacts.
    pub deals: Vec<PortalDeal>,
    /// The properties whose values were listed for every record, and so
    /// compared: those asked for, less any given up after a 414.
    pub compared: ValueProperties,
    /// Properties to compare that were given up because HubSpot refused
    /// the list call's address as too long.
    pub given_up: u64,
    /// List calls made (pipelines and counts not included).
    pub calls: u64,
    /// Time the listing took.
    pub took: Duration,
}

/// Lists contacts and deals side by side (the rate limiter paces both),
/// with the values of `values` besides what the grouping needs.
pub async fn list_portal(
    client: &HubSpotClient,
    values: &ValueProperties,
    progress: &(dyn Fn(ScanProgress) + Sync),
    cancel: &CancelFlag,
) -> Result<Listed, ScanError> {
    let started = Instant::now();
    let stages = stage_table(&client.pipelines(ObjectKind::Deals).await?);
    let (contacts_total, deals_total) = tokio::join!(
        count(client, ObjectKind::Contacts),
        count(client, ObjectKind::Deals)
    );
    let counters = Counters {
        contacts: AtomicU64::new(0),
        deals: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        contacts_total,
        deals_total,
        progress,
    };
    let (contacts, deals) = tokio::join!(
        list_contacts(client, &values.contacts, &counters, cancel),
        list_deals(client, &values.deals, &stages, &counters, cancel)
    );
    let ((contacts, contacts_asked), (deals, deals_asked)) = (contacts?, deals?);
    Ok(Listed {
        contacts,
        deals,
        compared: ValueProperties {
            contacts: contacts_asked.values,
            deals: deals_asked.values,
        },
        given_up: contacts_asked.given_up + deals_asked.given_up,
        calls: counters.calls.load(Ordering::Relaxed),
        took: started.elapsed(),
    })
}

/// Progress shared by the two listings.
struct Counters<'a> {
    contacts: AtomicU64,
    deals: AtomicU64,
    calls: AtomicU64,
    contacts_total: Option<u64>,
    deals_total: Option<u64>,
    progress: &'a (dyn Fn(ScanProgress) + Sync),
}

impl Counters<'_> {
    fn page(&self, counter: &AtomicU64, records: usize) {
        counter.fetch_add(records as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        (self.progress)(ScanProgress {
            contacts: self.contacts.load(Ordering::Relaxed),
            deals: self.deals.load(Ordering::Relaxed),
            contacts_total: self.contacts_total,
            deals_total: self.deals_total,
        });
    }
}

/// How many records of a kind the portal holds (one search, its own rate
/// limit); `None` when HubSpot does not say.
async fn count(client: &HubSpotClient, kind: ObjectKind) -> Option<u64> {
    let request = SearchRequest {
        limit: 1,
        ..SearchRequest::default()
    };
    client
        .search(kind, &request)
        .await
        .ok()
        .map(|page| page.total)
}

async fn list_contacts(
    client: &HubSpotClient,
    values: &BTreeSet<String>,
    counters: &Counters<'_>,
    cancel: &CancelFlag,
) -> Result<(Vec<PortalContact>, Asked), ScanError> {
    let mut asked = Asked::new(&CONTACT_PROPERTIES, values);
    let mut contacts = Vec::new();
    let mut after: Option<String> = None;
    loop {
        if cancel.is_cancelled() {
            return Err(ScanError::Cancelled);
        }
        let page = match client
            .list_page(ObjectKind::Contacts, &asked.properties(), after.as_deref())
            .await
        {
            Err(ClientError::AddressTooLong) if asked.shrink() => continue,
            page => page?,
        };
        counters.page(&counters.contacts, page.records.len());
        contacts.extend(
            page.records
                .into_iter()
                .map(|record| contact(record, &asked.values)),
        );
        match page.next_after {
            Some(next) if Some(&next) != after.as_ref() => after = Some(next),
            _ => return Ok((contacts, asked)),
        }
    }
}

async fn list_deals(
    client: &HubSpotClient,
    values: &BTreeSet<String>,
    stages: &StageTable,
    counters: &Counters<'_>,
    cancel: &CancelFlag,
) -> Result<(Vec<PortalDeal>, Asked), ScanError> {
    let mut asked = Asked::new(&DEAL_PROPERTIES, values);
    let mut deals = Vec::new();
    let mut after: Option<String> = None;
    loop {
        if cancel.is_cancelled() {
            return Err(ScanError::Cancelled);
        }
        let (records, next) = match client
            .list_page_associated(
                ObjectKind::Deals,
                &asked.properties(),
                ObjectKind::Contacts,
                after.as_deref(),
            )
            .await
        {
            Err(ClientError::AddressTooLong) if asked.shrink() => continue,
            page => page?,
        };
        counters.page(&counters.deals, records.len());
        deals.extend(
            records
                .into_iter()
                .map(|(record, contacts)| deal(record, contacts, stages, &asked.values)),
        );
        match next {
            Some(next) if Some(&next) != after.as_ref() => after = Some(next),
            _ => return Ok((deals, asked)),
        }
    }
}

fn text(record: &Record, name: &str) -> Option<String> {
    record
        .properties
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn contact(record: Record, values: &BTreeSet<String>) -> PortalContact {
    PortalContact {
        values: listed_values(&record, values),
        patient_key: text(&record, "ivoris_patient_key"),
        patient_keys: text(&record, "ivoris_patient_keys")
            .map(|keys| {
                keys.split(';')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        legacy_patient_id: text(&record, "ivoris_patient_id"),
        email: text(&record, "email"),
        firstname: text(&record, "firstname"),
        lastname: text(&record, "lastname"),
        id: record.id,
    }
}

/// Per stage id: its label and state; per pipeline id: its lost stage.
#[derive(Debug, Default)]
pub struct StageTable {
    stages: HashMap<String, (String, DealState)>,
    lost: HashMap<String, String>,
}

/// Reads stage states from the pipelines: closed with probability 0 is
/// lost, other closed stages are won.
pub fn stage_table(pipelines: &[Pipeline]) -> StageTable {
    let mut table = StageTable::default();
    for pipeline in pipelines.iter().filter(|p| !p.archived) {
        if let Some(lost) = pipeline.lost_stage() {
            table.lost.insert(pipeline.id.clone(), lost.id.clone());
        }
        for stage in &pipeline.stages {
            let state = match (stage.is_closed(), stage.is_lost()) {
                (false, _) => DealState::Open,
                (true, true) => DealState::Lost,
                (true, false) => DealState::Won,
            };
            table
                .stages
                .insert(stage.id.clone(), (stage.label.clone(), state));
        }
    }
    table
}

fn deal(
    record: Record,
    contacts: Vec<String>,
    stages: &StageTable,
    values: &BTreeSet<String>,
) -> PortalDeal {
    let stage = text(&record, "dealstage");
    let pipeline = text(&record, "pipeline");
    let known = stage.as_ref().and_then(|s| stages.stages.get(s));
    PortalDeal {
        values: listed_values(&record, values),
        case_key: text(&record, "ivoris_case_key"),
        legacy_appointment_id: text(&record, "ivoris_appointment_id"),
        name: text(&record, "dealname"),
        stage_label: known.map(|(label, _)| label.clone()),
        state: known.map_or(DealState::Open, |(_, state)| *state),
        loss_reason: text(&record, "verlustgrund"),
        amount: text(&record, "amount"),
        lost_stage: pipeline.as_ref().and_then(|p| stages.lost.get(p)).cloned(),
        pipeline,
        stage,
        contacts,
        id: record.id,
    }
}

/// What the ledger knows that the grouping needs: patients, which case
/// every planned appointment joined, whose every appointment is, and each
/// patient's open bookings (booked or confirmed, after `now`).
pub fn ledger_facts(
    ledger: &Ledger,
    now: chrono::NaiveDateTime,
) -> Result<LedgerFacts, LedgerError> {
    let conn = ledger.connection();
    let mapping = crate::mapping::store::load_applied(ledger)
        .ok()
        .map(|(_, mapping)| mapping);
    let mut facts = LedgerFacts::default();
    let mut statement = conn.prepare(
        "SELECT location_key, ivoris_id, firstname, lastname, birthday, email FROM patients",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(KnownPatient {
            key: format!("{}:{}", row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            firstname: row.get(2)?,
            lastname: row.get(3)?,
            birthday: row
                .get::<_, Option<String>>(4)?
                .map(|b| b.chars().take(10).collect()),
            email: row.get(5)?,
        })
    })?;
    for patient in rows {
        facts.patients.push(patient?);
    }
    let mut statement =
        conn.prepare("SELECT location_key, appointment_id, case_key FROM case_members WHERE case_key IS NOT NULL")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (location, appointment, case) = row?;
        facts
            .appointment_cases
            .insert(appointment, (location, case));
    }
    let mut statement = conn.prepare(
        "SELECT location_key, ivoris_id, patient_id, start, state, type_label
         FROM appointments WHERE patient_id IS NOT NULL ORDER BY start",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, Option<String>>(5)?,
        ))
    })?;
    let now_text = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut bookings: BTreeMap<String, Vec<Booking>> = BTreeMap::new();
    for row in rows {
        let (location, id, patient, start, state, type_label) = row?;
        let patient_key = format!("{location}:{patient}");
        facts
            .appointment_patients
            .insert(id.clone(), patient_key.clone());
        let normalised = match (&mapping, state.as_deref()) {
            (Some(mapping), Some(raw)) => mapping.appointment_state(raw),
            _ => None,
        };
        let open = matches!(
            normalised,
            Some(AppointmentState::Booked | AppointmentState::Confirmed)
        );
        let Some(start) = start.filter(|s| open && s.as_str() > now_text.as_str()) else {
            continue;
        };
        bookings.entry(patient_key).or_default().push(Booking {
            case_key: facts.appointment_cases.get(&id).map(|(_, c)| c.clone()),
            location,
            appointment_id: id,
            start,
            type_label,
        });
    }
    facts.bookings = bookings.into_iter().collect();
    Ok(facts)
}
