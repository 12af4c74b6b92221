//! From the outbox to HubSpot: batches of at most 100 upserts per kind in
//! the order contacts → deals → appointments → associations, each row
//! removed only when HubSpot confirmed it (DESIGN.md §2, §3.1, §3.2).
//!
//! Per-input failures stay with their row: transient ones are due again
//! later, after `MAX_ATTEMPTS` failures the row becomes a dead letter with
//! HubSpot's reason. One case is resolved here instead, HubSpot refusing a
//! contact because another contact already has the e-mail address
//! (HubSpot's e-mail is unique):
//! - the other contact carries no patient key (created by an older
//!   integration or by hand): it is adopted — our key is set on it and the
//!   upsert then lands on it;
//! - it belongs to the same person at another location (same name; same
//!   birthday where the ledger knows both): the patient is linked to that
//!   contact, which records every patient key in `ivoris_patient_keys`;
//! - it belongs to someone else (a family sharing one address): the
//!   patient's contact is written without the e-mail and listed for review.
//!
//! Adopting and linking apply only while the patient has no contact of its
//! own in HubSpot (or is already linked to that one): a patient whose new
//! address another contact holds keeps its contact, written without the
//! address and listed for review like a family member.
//!
//! Such contacts are set aside while the contact phase runs and resolved
//! together afterwards, 100 at a time: one read, one update, one upsert per
//! hundred conflicts instead of two or three calls each.
//!
//! A whole-call refusal over one bad input is split up so the good inputs
//! still go through.
//!
//! [`load_following`] runs beside planning and sends in rounds what was
//! queued so far (full batches only, until planning is finished).

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::hubspot::provision::key_property;
use crate::hubspot::{
    BatchOutcome, ClientError, HubSpotClient, InputError, ObjectKind, UpsertInput,
};
use crate::ledger::audit::os_user;
use crate::ledger::{Ledger, LedgerError, NewAuditEntry, OutboxItem, OutboxKind};

use super::extract::CancelFlag;

/// Failed attempts after which a row becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 5;
/// Inputs per HubSpot batch call.
const BATCH: usize = 100;

/// What the load step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows HubSpot confirmed, per kind.
    pub written: BTreeMap<OutboxKind, u64>,
    /// Failed attempts this run (rows stay queued or became dead letters).
    pub failed: u64,
    /// Rows that became dead letters this run.
    pub dead: u64,
    /// Unkeyed contacts that got a patient key.
    pub adopted: u64,
    /// Patients linked to the contact of the same person at another location.
    pub linked: u64,
    /// Patients written without e-mail because someone else has it.
    pub email_withheld: u64,
    /// Associations waiting for one of their records.
    pub waiting: u64,
}

/// Why the load step stopped before the outbox was empty.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// HubSpot refused the whole run (token, scopes, daily limit).
    #[error("{}", .0.explain_de())]
    HubSpot(ClientError),
    /// The user stopped the run.
    #[error("Abgebrochen / Cancelled")]
    Cancelled,
}

/// Progress of the load step: kind, rows done, rows queued at its start.
pub type LoadProgress<'a> = &'a (dyn Fn(OutboxKind, u64, u64) + Sync);

/// Sends every due outbox row.
pub async fn load(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    progress: LoadProgress<'_>,
    cancel: &CancelFlag,
) -> Result<LoadReport, LoadError> {
    let mut report = LoadReport::default();
    round(ledger, client, None, progress, cancel, &mut report, true).await?;
    Ok(report)
}

/// What planning tells a load that runs beside it ([`load_following`]):
/// more rows were queued, or nothing more will come.
#[derive(Debug)]
pub struct LoadFeed {
    /// Bumped on every change; the load waits on it when it ran dry.
    state: tokio::sync::watch::Sender<FeedState>,
    /// Whether the load is sending (not waiting for rows), for progress.
    busy: std::sync::atomic::AtomicBool,
}

/// The state behind a [`LoadFeed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FeedState {
    /// How often rows were queued.
    generation: u64,
    /// No more rows will be queued: one last round, then the load ends.
    finished: bool,
    /// Planning failed: the load stops after the batch it is sending.
    aborted: bool,
}

impl Default for LoadFeed {
    fn default() -> Self {
        LoadFeed {
            state: tokio::sync::watch::Sender::new(FeedState::default()),
            busy: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl LoadFeed {
    /// A feed before anything was queued.
    pub fn new() -> LoadFeed {
        LoadFeed::default()
    }

    /// Rows were queued (committed to the outbox).
    pub fn queued(&self) {
        self.state.send_modify(|state| state.generation += 1);
    }

    /// Nothing more will be queued.
    pub fn finish(&self) {
        self.state.send_modify(|state| state.finished = true);
    }

    /// Whether the load is sending rather than waiting for rows.
    pub fn is_busy(&self) -> bool {
        self.busy.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_busy(&self, busy: bool) {
        self.busy.store(busy, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether planning failed.
    fn is_aborted(&self) -> bool {
        self.state.borrow().aborted
    }

    /// Planning failed; the load should stop soon.
    pub fn abort(&self) {
        self.state.send_modify(|state| {
            state.finished = true;
            state.aborted = true;
        });
    }
}

/// Sends outbox rows while planning still queues more, in rounds: each
/// round is a [`load`] over every due row; when a round confirms nothing
/// the load waits for the next rows. After [`LoadFeed::finish`] one last
/// round sends what is left, so the end is the same as a plain [`load`]
/// after planning. Rows are only ever read from the outbox, which planning
/// has committed before it tells the feed (invariant 2).
pub async fn load_following(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    feed: &LoadFeed,
    progress: LoadProgress<'_>,
    cancel: &CancelFlag,
) -> Result<LoadReport, LoadError> {
    let mut report = LoadReport::default();
    let mut watch = feed.state.subscribe();
    loop {
        let state = *watch.borrow_and_update();
        if state.aborted {
            return Ok(report);
        }
        let before = report.written.values().sum::<u64>() + report.failed;
        feed.set_busy(true);
        // Until the last round only full batches go out: rows queued later
        // fill the rest, so a run costs no more calls than loading after
        // planning would.
        round(
            ledger,
            client,
            Some(feed),
            progress,
            cancel,
            &mut report,
            state.finished,
        )
        .await?;
        if state.finished {
            return Ok(report);
        }
        let after = report.written.values().sum::<u64>() + report.failed;
        if after == before {
            feed.set_busy(false);
        }
        if after == before && watch.changed().await.is_err() {
            // The feed is gone: whoever planned stopped; send what is there.
            round(
                ledger,
                client,
                Some(feed),
                progress,
                cancel,
                &mut report,
                true,
            )
            .await?;
            return Ok(report);
        }
    }
}

/// One round over the queue: every kind in phase order, passes over its
/// due rows until a pass confirms nothing more. Without `partial_batches`
/// the rows after the last full batch of a kind wait for a later round.
async fn round(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    feed: Option<&LoadFeed>,
    progress: LoadProgress<'_>,
    cancel: &CancelFlag,
    report: &mut LoadReport,
    partial_batches: bool,
) -> Result<(), LoadError> {
    // Associations waiting for an end are counted by the last round.
    report.waiting = 0;
    for kind in OutboxKind::PHASES {
        if cancel.is_cancelled() {
            return Err(LoadError::Cancelled);
        }
        let total = ledger
            .outbox_counts()?
            .by_kind
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or(0, |(_, pending, _)| *pending);
        if total == 0 || (!partial_batches && total < BATCH as u64) {
            continue;
        }
        let mut done = 0;
        progress(kind, 0, total);
        // Passes over the due rows in key order; another pass only while the
        // last one got something confirmed (rows a refused batch left
        // unapplied, contacts whose e-mail conflict was resolved).
        loop {
            let confirmed_before = report.written.get(&kind).copied().unwrap_or(0);
            let mut conflicts = EmailConflicts::new();
            let mut after = String::new();
            loop {
                if cancel.is_cancelled() {
                    return Err(LoadError::Cancelled);
                }
                if feed.is_some_and(LoadFeed::is_aborted) {
                    return Ok(());
                }
                let items = ledger.due_after(kind, &stamp(Utc::now()), &after, BATCH)?;
                if !partial_batches && items.len() < BATCH {
                    break;
                }
                let Some(last) = items.last() else { break };
                after = last.record_key.clone();
                let before = report.written.get(&kind).copied().unwrap_or(0)
                    + report.failed
                    + report.waiting;
                match kind {
                    OutboxKind::Association => {
                        send_associations(ledger, client, &items, report).await?
                    }
                    _ => send_upserts(ledger, client, kind, &items, &mut conflicts, report).await?,
                }
                done += report.written.get(&kind).copied().unwrap_or(0)
                    + report.failed
                    + report.waiting
                    - before;
                progress(kind, done.min(total), total);
            }
            resolve_email_conflicts(ledger, client, &conflicts, report).await?;
            if report.written.get(&kind).copied().unwrap_or(0) == confirmed_before {
                break;
            }
        }
    }
    Ok(())
}

fn object_kind(kind: OutboxKind) -> Option<ObjectKind> {
    match kind {
        OutboxKind::Contact => Some(ObjectKind::Contacts),
        OutboxKind::Deal => Some(ObjectKind::Deals),
        OutboxKind::Appointment => Some(ObjectKind::Appointments),
        OutboxKind::Association => None,
    }
}

fn kind_named(name: &str) -> Option<OutboxKind> {
    match name {
        "contact" => Some(OutboxKind::Contact),
        "deal" => Some(OutboxKind::Deal),
        "appointment" => Some(OutboxKind::Appointment),
        _ => None,
    }
}

fn properties(item: &OutboxItem) -> BTreeMap<String, String> {
    match &item.payload {
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

async fn send_upserts(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    kind: OutboxKind,
    items: &[OutboxItem],
    conflicts: &mut EmailConflicts,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let Some(object) = object_kind(kind) else {
        return Ok(());
    };
    let inputs: Vec<UpsertInput> = items
        .iter()
        .map(|item| UpsertInput {
            key: item.record_key.clone(),
            properties: properties(item),
        })
        .collect();
    let outcome = match client
        .batch_upsert(object, key_property(object), &inputs)
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            return whole_call_failed(ledger, client, kind, items, error, conflicts, report).await;
        }
    };
    apply_outcome(ledger, kind, items, outcome, conflicts, report)
}

/// A refused call: stop the run for account-wide problems, split a batch
/// one bad input spoiled, otherwise count a failed attempt for every row.
async fn whole_call_failed(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    kind: OutboxKind,
    items: &[OutboxItem],
    error: ClientError,
    conflicts: &mut EmailConflicts,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    match &error {
        ClientError::Unauthorized
        | ClientError::Forbidden { .. }
        | ClientError::DailyLimit { .. }
        | ClientError::RateLimited => return Err(LoadError::HubSpot(error)),
        ClientError::Validation { .. } | ClientError::Conflict { .. } if items.len() > 1 => {
            for item in items {
                Box::pin(send_upserts(
                    ledger,
                    client,
                    kind,
                    std::slice::from_ref(item),
                    conflicts,
                    report,
                ))
                .await?;
            }
            return Ok(());
        }
        _ => {}
    }
    let reason = format!("{} / {}", error.explain_de(), error.explain_en());
    for item in items {
        fail(ledger, item, &reason, report)?;
    }
    Ok(())
}

fn apply_outcome(
    ledger: &mut Ledger,
    kind: OutboxKind,
    items: &[OutboxItem],
    outcome: BatchOutcome,
    conflicts: &mut EmailConflicts,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let confirmed: Vec<(i64, String, String, String)> = outcome
        .results
        .iter()
        .filter_map(|result| {
            let item = items.get(result.index)?;
            Some((
                item.id,
                item.record_key.clone(),
                item.payload_hash.clone(),
                result.id.clone(),
            ))
        })
        .collect();
    *report.written.entry(kind).or_default() += confirmed.len() as u64;
    ledger.confirm(kind, &confirmed)?;

    for error in outcome.errors {
        let Some(item) = error.index.and_then(|i| items.get(i)) else {
            continue;
        };
        if kind == OutboxKind::Contact && error.status == 409 && error.existing_id.is_some() {
            // Set aside until this pass is through (not an attempt).
            conflicts.push((item.clone(), error));
        } else {
            fail(ledger, item, &input_reason(&error), report)?;
        }
    }
    // `not_applied` rows are still due and go out with the next batch.
    Ok(())
}

fn input_reason(error: &InputError) -> String {
    format!(
        "HubSpot hat den Datensatz abgelehnt ({} {}): {} / HubSpot refused the record ({} {}): {}",
        error.status, error.category, error.message, error.status, error.category, error.message
    )
}

fn fail(
    ledger: &mut Ledger,
    item: &OutboxItem,
    reason: &str,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    // Backoff across runs: 1, 2, 4, 8 … minutes.
    let wait = Duration::minutes(1_i64 << item.attempts.min(10));
    let dead = ledger.fail(item.id, reason, &stamp(Utc::now() + wait), MAX_ATTEMPTS)?;
    report.failed += 1;
    if dead {
        report.dead += 1;
    }
    Ok(())
}

/// What to do about a contact whose e-mail address another contact has.
enum Resolution {
    /// The other contact has no patient key: give it ours.
    Adopt,
    /// The other contact is the same person at another location.
    Link,
    /// Someone else: write ours without the e-mail.
    Withhold,
}

/// Contacts HubSpot refused because another contact has their e-mail
/// address, with HubSpot's answer. They are set aside while the contact
/// phase runs and resolved together afterwards, 100 at a time, so a few
/// hundred families sharing an address cost a handful of calls instead of
/// two or three each.
type EmailConflicts = Vec<(OutboxItem, InputError)>;

/// Resolves e-mail conflicts set aside during the contact phase.
async fn resolve_email_conflicts(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    conflicts: &[(OutboxItem, InputError)],
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    for chunk in conflicts.chunks(BATCH) {
        resolve_chunk(ledger, client, chunk, report).await?;
    }
    Ok(())
}

/// A refused resolution call: stop the run for account-wide problems,
/// otherwise count a failed attempt for each row concerned.
fn refused(
    ledger: &mut Ledger,
    items: &[&OutboxItem],
    error: ClientError,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    if matches!(
        error,
        ClientError::Unauthorized
            | ClientError::Forbidden { .. }
            | ClientError::DailyLimit { .. }
            | ClientError::RateLimited
    ) {
        return Err(LoadError::HubSpot(error));
    }
    let reason = format!("{} / {}", error.explain_de(), error.explain_en());
    for item in items {
        fail(ledger, item, &reason, report)?;
    }
    Ok(())
}

/// One call reads every other contact of the chunk, one call updates the
/// adopted and linked ones, one upsert writes the adopted and withheld
/// patients.
async fn resolve_chunk(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    chunk: &[(OutboxItem, InputError)],
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let key_name = key_property(ObjectKind::Contacts);
    let mut ids: Vec<String> = chunk
        .iter()
        .filter_map(|(_, error)| error.existing_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    let items: Vec<&OutboxItem> = chunk.iter().map(|(item, _)| item).collect();
    let wanted = [key_name, "ivoris_patient_keys", "firstname", "lastname"].map(String::from);
    let others: HashMap<String, BTreeMap<String, String>> = match client
        .batch_read_by_id(ObjectKind::Contacts, &ids, &wanted)
        .await
    {
        Ok(outcome) => outcome
            .results
            .into_iter()
            .map(|r| (r.id, r.properties))
            .collect(),
        Err(error) => return refused(ledger, &items, error, report),
    };

    // Updates of other contacts by id (several patients may link to one),
    // and the rows each update stands for.
    let mut updates: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut adopted: Vec<(&OutboxItem, String)> = Vec::new();
    let mut linked: Vec<(&OutboxItem, String)> = Vec::new();
    let mut withheld: Vec<(&OutboxItem, String)> = Vec::new();
    for (item, error) in chunk {
        let Some(existing) = error.existing_id.clone() else {
            continue;
        };
        let other = others.get(&existing).cloned().unwrap_or_default();
        let mine = properties(item);
        let other_key = other.get(key_name).filter(|k| !k.is_empty()).cloned();
        // A patient whose contact already exists keeps it: adopting or linking
        // another contact would put the patient key on two contacts (HubSpot
        // refuses the adoption, so the row would fail until it is a dead
        // letter). The new address is withheld and listed; merging the two
        // contacts is the duplicate review's decision. A patient already linked
        // to the other contact stays linked.
        let own = ledger
            .confirmed(OutboxKind::Contact, &item.record_key)?
            .and_then(|c| c.hubspot_id);
        let action = match &other_key {
            _ if own.as_ref().is_some_and(|own| *own != existing) => Resolution::Withhold,
            None if updates.contains_key(&existing) => {
                // Another patient of this chunk adopts it; this one is
                // upserted in a later run and resolved then.
                continue;
            }
            None => Resolution::Adopt,
            Some(key) if same_person(ledger, &mine, &item.record_key, key, &other)? => {
                Resolution::Link
            }
            Some(_) => Resolution::Withhold,
        };
        match action {
            Resolution::Adopt => {
                updates.insert(
                    existing.clone(),
                    BTreeMap::from([
                        (key_name.to_owned(), item.record_key.clone()),
                        ("ivoris_patient_keys".to_owned(), item.record_key.clone()),
                    ]),
                );
                adopted.push((item, existing));
            }
            Resolution::Link => {
                let update = updates.entry(existing.clone()).or_insert_with(|| {
                    let keys = other
                        .get("ivoris_patient_keys")
                        .cloned()
                        .unwrap_or_default();
                    BTreeMap::from([("ivoris_patient_keys".to_owned(), keys)])
                });
                let current = update
                    .get("ivoris_patient_keys")
                    .cloned()
                    .unwrap_or_default();
                let mut keys: Vec<String> = current
                    .split(';')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect();
                for key in [
                    other_key.clone().unwrap_or_default(),
                    item.record_key.clone(),
                ] {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                keys.sort();
                update.insert("ivoris_patient_keys".to_owned(), keys.join(";"));
                linked.push((item, existing));
            }
            Resolution::Withhold => withheld.push((item, existing)),
        }
    }

    if !updates.is_empty() {
        let inputs: Vec<(String, BTreeMap<String, String>)> = updates.into_iter().collect();
        let concerned: Vec<&OutboxItem> = adopted
            .iter()
            .chain(&linked)
            .map(|(item, _)| *item)
            .collect();
        let outcome = match client
            .batch_update_by_id(ObjectKind::Contacts, &inputs)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                refused(ledger, &concerned, error, report)?;
                adopted.clear();
                linked.clear();
                BatchOutcome::default()
            }
        };
        let mut failed_ids: HashMap<&str, String> = HashMap::new();
        for error in &outcome.errors {
            if let Some((id, _)) = error.index.and_then(|i| inputs.get(i)) {
                failed_ids.insert(id.as_str(), input_reason(error));
            }
        }
        for (item, id) in adopted.iter().chain(&linked) {
            if let Some(reason) = failed_ids.get(id.as_str()) {
                fail(ledger, item, reason, report)?;
            }
        }
        adopted.retain(|(_, id)| !failed_ids.contains_key(id.as_str()));
        linked.retain(|(_, id)| !failed_ids.contains_key(id.as_str()));
        report.adopted += adopted.len() as u64;
        let confirmed: Vec<(i64, String, String, String)> = linked
            .iter()
            .map(|(item, id)| {
                (
                    item.id,
                    item.record_key.clone(),
                    item.payload_hash.clone(),
                    id.clone(),
                )
            })
            .collect();
        ledger.confirm(OutboxKind::Contact, &confirmed)?;
        *report.written.entry(OutboxKind::Contact).or_default() += confirmed.len() as u64;
        report.linked += confirmed.len() as u64;
    }

    // Adopted patients land on the contact that now carries their key;
    // withheld ones are written without the e-mail address.
    let mut rows: Vec<&OutboxItem> = adopted.iter().map(|(item, _)| *item).collect();
    let mut inputs: Vec<UpsertInput> = rows
        .iter()
        .map(|item| UpsertInput {
            key: item.record_key.clone(),
            properties: properties(item),
        })
        .collect();
    for (item, _) in &withheld {
        let mut without = properties(item);
        without.remove("email");
        rows.push(item);
        inputs.push(UpsertInput {
            key: item.record_key.clone(),
            properties: without,
        });
    }
    if inputs.is_empty() {
        return Ok(());
    }
    let outcome = match client
        .batch_upsert(ObjectKind::Contacts, key_name, &inputs)
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => return refused(ledger, &rows, error, report),
    };
    let mut confirmed = Vec::new();
    for result in &outcome.results {
        let Some(item) = rows.get(result.index) else {
            continue;
        };
        confirmed.push((
            item.id,
            item.record_key.clone(),
            item.payload_hash.clone(),
            result.id.clone(),
        ));
        if let Some((_, other)) = withheld.iter().find(|(w, _)| w.id == item.id) {
            report.email_withheld += 1;
            ledger.audit(&NewAuditEntry {
                actor: os_user(),
                action: "email_withheld".into(),
                subject: item.record_key.clone(),
                details: serde_json::json!({
                    "other_contact": other,
                    "reason_de": "E-Mail-Adresse gehört bereits einem anderen Kontakt; ohne E-Mail geschrieben, bitte prüfen",
                    "reason_en": "e-mail address already belongs to another contact; written without e-mail, please review",
                }),
            })?;
        }
    }
    *report.written.entry(OutboxKind::Contact).or_default() += confirmed.len() as u64;
    ledger.confirm(OutboxKind::Contact, &confirmed)?;
    for error in &outcome.errors {
        if let Some(item) = error.index.and_then(|i| rows.get(i)) {
            fail(ledger, item, &input_reason(error), report)?;
        }
    }
    Ok(())
}

/// Whether the contact holding `other_key` is the same person as the
/// patient of `my_key`: same first and last name, and the same birthday
/// where the ledger knows both patients.
fn same_person(
    ledger: &Ledger,
    mine: &BTreeMap<String, String>,
    my_key: &str,
    other_key: &str,
    other: &BTreeMap<String, String>,
) -> Result<bool, LedgerError> {
    let names_match =
        ["firstname", "lastname"]
            .iter()
            .all(|field| match (mine.get(*field), other.get(*field)) {
                (Some(a), Some(b)) => normalise(a) == normalise(b) && !a.trim().is_empty(),
                _ => false,
            });
    if !names_match {
        return Ok(false);
    }
    let birthday = |key: &str| -> Result<Option<String>, LedgerError> {
        let Some((location, id)) = key.split_once(':') else {
            return Ok(None);
        };
        Ok(ledger
            .connection()
            .query_row(
                "SELECT birthday FROM patients WHERE location_key = ?1 AND ivoris_id = ?2",
                [location, id],
                |row| row.get::<_, Option<String>>(0),
            )
            .ok()
            .flatten())
    };
    Ok(match (birthday(my_key)?, birthday(other_key)?) {
        (Some(a), Some(b)) => a.get(..10) == b.get(..10),
        _ => true,
    })
}

fn normalise(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .replace('ä', "ae")
        .replace('ö', "oe")
        .replace('ü', "ue")
        .replace('ß', "ss")
}

/// An association row with the HubSpot ids of both ends.
type Resolved<'a> = (&'a OutboxItem, String, String);

async fn send_associations(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    items: &[OutboxItem],
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    // Group by (from kind, to kind); resolve both ends' HubSpot ids.
    let mut groups: HashMap<(OutboxKind, OutboxKind), Vec<Resolved<'_>>> = HashMap::new();
    for item in items {
        let end = |kind: &str, key: &str| -> Result<Option<(OutboxKind, String)>, LedgerError> {
            let Some(kind) = item
                .payload
                .get(kind)
                .and_then(Value::as_str)
                .and_then(kind_named)
            else {
                return Ok(None);
            };
            let Some(key) = item.payload.get(key).and_then(Value::as_str) else {
                return Ok(None);
            };
            Ok(ledger
                .confirmed(kind, key)?
                .and_then(|c| c.hubspot_id)
                .map(|id| (kind, id)))
        };
        match (end("from_kind", "from_key")?, end("to_kind", "to_key")?) {
            (Some((from, from_id)), Some((to, to_id))) => {
                groups
                    .entry((from, to))
                    .or_default()
                    .push((item, from_id, to_id));
            }
            _ => {
                // An end is not in HubSpot yet (its upsert failed or waits):
                // passed over, tried again by the next run; not an attempt.
                report.waiting += 1;
            }
        }
    }
    for ((from, to), members) in groups {
        let (Some(from_object), Some(to_object)) = (object_kind(from), object_kind(to)) else {
            continue;
        };
        let pairs: Vec<(String, String)> = members
            .iter()
            .map(|(_, f, t)| (f.clone(), t.clone()))
            .collect();
        match client
            .associate_default_batch(from_object, to_object, &pairs)
            .await
        {
            Ok(results) => {
                let mut confirmed = Vec::new();
                for ((item, from_id, _), result) in members.iter().zip(results) {
                    match result {
                        Ok(()) => confirmed.push((
                            item.id,
                            item.record_key.clone(),
                            item.payload_hash.clone(),
                            from_id.clone(),
                        )),
                        Err(error) => fail(ledger, item, &input_reason(&error), report)?,
                    }
                }
                *report.written.entry(OutboxKind::Association).or_default() +=
                    confirmed.len() as u64;
                ledger.confirm(OutboxKind::Association, &confirmed)?;
            }
            Err(error) => {
                if matches!(
                    error,
                    ClientError::Unauthorized
                        | ClientError::Forbidden { .. }
                        | ClientError::DailyLimit { .. }
                        | ClientError::RateLimited
                ) {
                    return Err(LoadError::HubSpot(error));
                }
                let reason = format!("{} / {}", error.explain_de(), error.explain_en());
                for (item, _, _) in &members {
                    fail(ledger, item, &reason, report)?;
                }
            }
        }
    }
    Ok(())
}

/// ISO-8601 UTC as the outbox stores due times.
pub fn stamp(time: chrono::DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
