//! From the outbox to HubSpot: batches of at most 100 upserts per kind in
//! the order contacts → deals → appointments → associations, each row
//! removed only when HubSpot confirmed it (DESIGN.md §2, §3.1, §3.2).
//!
//! Per-input failures stay with their row: transient ones are due again
//! later, after `MAX_ATTEMPTS` failures the row becomes a dead letter with
//! HubSpot's reason. Contacts whose e-mail address another contact has are
//! resolved instead (adopted, linked or written without the address), in
//! bulk — see `load/contacts.rs`.
//!
//! HubSpot may refuse a whole batch over one input instead of answering per
//! input (the documents promise a 207 only for batch create). A batch
//! refused over a bad input is halved until the bad input stands alone, so
//! the good ones still go through at a few extra calls.
//!
//! [`load_following`] runs beside planning and sends in rounds what was
//! queued so far (full batches only, until planning is finished).

mod contacts;
mod erasure;
mod flight;
mod merges;

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::hubspot::provision::key_property;
use crate::hubspot::{
    BatchOutcome, ClientError, HubSpotClient, InputError, ObjectKind, UpsertInput,
};
use crate::ledger::{Confirmation, Ledger, LedgerError, OutboxItem, OutboxKind};

use super::extract::CancelFlag;
use flight::Flight;

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
    let mut loader = Loader::new(ledger, client, None, progress, cancel);
    round(&mut loader, true).await?;
    Ok(loader.report)
}

/// Sends only the merges due in the outbox (the review's „Zusammenführen“
/// right after it was decided); the caller holds the writer lock.
pub async fn load_merges(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    cancel: &CancelFlag,
) -> Result<LoadReport, LoadError> {
    let mut loader = Loader::new(ledger, client, None, &|_, _, _| {}, cancel);
    merges::pass(&mut loader).await?;
    Ok(loader.report)
}

/// Sends the queued erasures of forgotten patients (`forget-patient`)
/// right away, without the rest of the queue.
pub async fn erase(
    ledger: &mut Ledger,
    client: &HubSpotClient,
    cancel: &CancelFlag,
) -> Result<LoadReport, LoadError> {
    let mut loader = Loader::new(ledger, client, None, &|_, _, _| {}, cancel);
    let total = loader
        .ledger
        .outbox_counts()?
        .by_kind
        .iter()
        .find(|(k, _, _)| *k == OutboxKind::Erasure)
        .map_or(0, |(_, pending, _)| *pending);
    let mut progress = PhaseProgress {
        kind: OutboxKind::Erasure,
        total,
        done: 0,
    };
    erasure::pass(&mut loader, &mut progress).await?;
    Ok(loader.report)
}

/// One load: where rows come from and go, and what it learned on the way.
struct Loader<'a> {
    /// The outbox and the ids HubSpot confirmed.
    ledger: &'a mut Ledger,
    /// HubSpot.
    client: &'a HubSpotClient,
    /// Planning beside the load ([`load_following`]); `None` for [`load`].
    feed: Option<&'a LoadFeed>,
    /// Where progress goes.
    progress: LoadProgress<'a>,
    /// Stops the load at the next batch.
    cancel: &'a CancelFlag,
    /// What was done so far.
    report: LoadReport,
    /// What the contact phase learned about the portal, kept across rounds.
    contacts: contacts::Session,
}

impl<'a> Loader<'a> {
    fn new(
        ledger: &'a mut Ledger,
        client: &'a HubSpotClient,
        feed: Option<&'a LoadFeed>,
        progress: LoadProgress<'a>,
        cancel: &'a CancelFlag,
    ) -> Loader<'a> {
        Loader {
            ledger,
            client,
            feed,
            progress,
            cancel,
            report: LoadReport::default(),
            contacts: contacts::Session::default(),
        }
    }

    /// Rows of `kind` HubSpot confirmed so far.
    fn written(&self, kind: OutboxKind) -> u64 {
        self.report.written.get(&kind).copied().unwrap_or(0)
    }

    /// Rows dealt with so far (confirmed, failed, waiting), for progress.
    fn handled(&self, kind: OutboxKind) -> u64 {
        self.written(kind) + self.report.failed + self.report.waiting
    }

    /// Whether to stop before the next batch: cancelled by the user (an
    /// error) or planning failed (`true`).
    fn halted(&self) -> Result<bool, LoadError> {
        if self.cancel.is_cancelled() {
            return Err(LoadError::Cancelled);
        }
        Ok(self.feed.is_some_and(LoadFeed::is_aborted))
    }
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
    let mut loader = Loader::new(ledger, client, Some(feed), progress, cancel);
    let mut watch = feed.state.subscribe();
    loop {
        let state = *watch.borrow_and_update();
        if state.aborted {
            return Ok(loader.report);
        }
        let before = loader.report.written.values().sum::<u64>() + loader.report.failed;
        feed.set_busy(true);
        // Until the last round only full batches go out: rows queued later
        // fill the rest, so a run costs no more calls than loading after
        // planning would.
        round(&mut loader, state.finished).await?;
        if state.finished {
            return Ok(loader.report);
        }
        let after = loader.report.written.values().sum::<u64>() + loader.report.failed;
        if after == before {
            feed.set_busy(false);
        }
        if after == before && watch.changed().await.is_err() {
            // The feed is gone: whoever planned stopped; send what is there.
            round(&mut loader, true).await?;
            return Ok(loader.report);
        }
    }
}

/// Progress of one kind within a round.
struct PhaseProgress {
    /// The kind being sent.
    kind: OutboxKind,
    /// Rows queued when the phase started.
    total: u64,
    /// Rows dealt with since.
    done: u64,
}

impl PhaseProgress {
    /// Counts what was dealt with since `before` (a [`Loader::handled`]
    /// reading) and reports it.
    fn advance(&mut self, loader: &Loader<'_>, before: u64) {
        self.done += loader.handled(self.kind).saturating_sub(before);
        (loader.progress)(self.kind, self.done.min(self.total), self.total);
    }
}

/// One round over the queue: every kind in phase order, passes over its
/// due rows until a pass confirms nothing more. Without `partial_batches`
/// the rows after the last full batch of a kind wait for a later round.
async fn round(loader: &mut Loader<'_>, partial_batches: bool) -> Result<(), LoadError> {
    // Associations waiting for an end are counted by the last round.
    loader.report.waiting = 0;
    for kind in OutboxKind::PHASES {
        if loader.halted()? {
            return Ok(());
        }
        let total = loader
            .ledger
            .outbox_counts()?
            .by_kind
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or(0, |(_, pending, _)| *pending);
        if total == 0 || (!partial_batches && total < BATCH as u64) {
            continue;
        }
        let mut progress = PhaseProgress {
            kind,
            total,
            done: 0,
        };
        (loader.progress)(kind, 0, total);
        // Passes over the due rows in key order; another pass only while the
        // last one got something confirmed (rows a refused batch left
        // unapplied or passed on, contacts whose e-mail conflict was resolved).
        loop {
            let confirmed_before = loader.written(kind);
            let halted = match kind {
                OutboxKind::Contact => {
                    contacts::pass(loader, partial_batches, &mut progress).await?
                }
                OutboxKind::Association => {
                    association_pass(loader, partial_batches, &mut progress).await?
                }
                OutboxKind::Merge => merges::pass(loader).await?,
                OutboxKind::Erasure => erasure::pass(loader, &mut progress).await?,
                _ => pass(loader, kind, partial_batches, &mut progress).await?,
            };
            if halted {
                return Ok(());
            }
            if loader.written(kind) == confirmed_before {
                break;
            }
        }
    }
    Ok(())
}

/// One pass over the due deals or appointment records, 100 at a time.
/// Returns whether the load was halted.
async fn pass(
    loader: &mut Loader<'_>,
    kind: OutboxKind,
    partial_batches: bool,
    progress: &mut PhaseProgress,
) -> Result<bool, LoadError> {
    let Some(object) = object_kind(kind) else {
        return Ok(false);
    };
    let client = loader.client;
    let mut flight = Flight::new();
    let mut after = String::new();
    let mut upserts: Vec<OutboxItem> = Vec::new();
    let mut adopted = Adopted::default();
    loop {
        let halted = loader.halted();
        if !matches!(halted, Ok(false)) {
            land(loader, &mut flight).await?;
            return halted;
        }
        let items = loader
            .ledger
            .due_after(kind, &stamp(Utc::now()), &after, BATCH)?;
        if !partial_batches && items.len() < BATCH {
            break;
        }
        let Some(last) = items.last() else {
            break;
        };
        after = last.record_key.clone();
        let before = loader.handled(kind);
        upserts.extend(adopted.take_from(loader.ledger, kind, items)?);
        // Only contacts have a second unique value (the e-mail address);
        // anything else HubSpot refuses is a bad input.
        while upserts.len() >= BATCH {
            let batch: Vec<OutboxItem> = upserts.drain(..BATCH).collect();
            dispatch(
                loader,
                &mut flight,
                send_upserts(client, kind, object, batch),
            )
            .await?;
        }
        adopted.send_full(loader, kind).await?;
        progress.advance(loader, before);
    }
    if partial_batches {
        let before = loader.handled(kind);
        for batch in upserts.chunks(BATCH) {
            let call = send_upserts(client, kind, object, batch.to_vec());
            dispatch(loader, &mut flight, call).await?;
        }
        adopted.send_rest(loader, kind).await?;
        land(loader, &mut flight).await?;
        progress.advance(loader, before);
    }
    land(loader, &mut flight).await?;
    Ok(false)
}

/// A call's rows and HubSpot's answer, to be recorded in the ledger.
trait Answer {
    fn record(self, loader: &mut Loader<'_>) -> Result<(), LoadError>;
}

/// Puts a call on its way; when the flight is full, records the oldest
/// answer.
async fn dispatch<F>(
    loader: &mut Loader<'_>,
    flight: &mut Flight<F>,
    call: F,
) -> Result<(), LoadError>
where
    F: Future,
    F::Output: Answer,
{
    if let Some(answer) = flight.push(call).await {
        answer.record(loader)?;
    }
    Ok(())
}

/// Records the answers of every call still on its way.
async fn land<F>(loader: &mut Loader<'_>, flight: &mut Flight<F>) -> Result<(), LoadError>
where
    F: Future,
    F::Output: Answer,
{
    while let Some(answer) = flight.next().await {
        answer.record(loader)?;
    }
    Ok(())
}

/// Rows of records adopted from the previous integration (DESIGN.md §6)
/// whose first write is still to be sent: a HubSpot id is known, HubSpot
/// never confirmed our content. They go as updates by that id — our key
/// written onto the existing record — gathered into full batches; every
/// later write is an upsert by key that lands on the same record.
#[derive(Default)]
struct Adopted {
    /// Rows with the HubSpot id they are written to.
    rows: Vec<(OutboxItem, String)>,
}

impl Adopted {
    /// Takes the adopted rows out of `items`; returns the others.
    fn take_from(
        &mut self,
        ledger: &Ledger,
        kind: OutboxKind,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<OutboxItem>, LedgerError> {
        let mut others = Vec::with_capacity(items.len());
        for mut item in items {
            // A patient whose contact was merged into one carrying another
            // patient's key: written by id, without overwriting that key.
            if kind == OutboxKind::Contact
                && let Some(id) = ledger.merged_into(&item.record_key)?
            {
                if let Some(map) = item.payload.as_object_mut() {
                    map.remove(key_property(ObjectKind::Contacts));
                }
                self.rows.push((item, id));
                continue;
            }
            match ledger.confirmed(kind, &item.record_key)? {
                Some(crate::ledger::Confirmed {
                    hubspot_id: Some(id),
                    hash: None,
                }) => self.rows.push((item, id)),
                _ => others.push(item),
            }
        }
        Ok(others)
    }

    /// Sends every full batch gathered so far.
    async fn send_full(
        &mut self,
        loader: &mut Loader<'_>,
        kind: OutboxKind,
    ) -> Result<(), LoadError> {
        while self.rows.len() >= BATCH {
            let batch: Vec<(OutboxItem, String)> = self.rows.drain(..BATCH).collect();
            update_adopted(loader, kind, &batch).await?;
        }
        Ok(())
    }

    /// Sends everything gathered.
    async fn send_rest(
        &mut self,
        loader: &mut Loader<'_>,
        kind: OutboxKind,
    ) -> Result<(), LoadError> {
        let rows = std::mem::take(&mut self.rows);
        for batch in rows.chunks(BATCH) {
            update_adopted(loader, kind, batch).await?;
        }
        Ok(())
    }
}

/// Writes adopted rows by HubSpot id (halved where HubSpot refuses the
/// call whole) and records the answers as an upsert's: confirmed rows
/// leave the outbox with their id and hash, refused ones count an attempt.
/// An adopted contact refused because another contact has its e-mail
/// address (the same person entered at two locations) is written once
/// more without the address and listed for review, as the load does for
/// families sharing one. Sent again after a lost answer it writes the
/// same values onto the same records.
async fn update_adopted(
    loader: &mut Loader<'_>,
    kind: OutboxKind,
    rows: &[(OutboxItem, String)],
) -> Result<(), LoadError> {
    let Some(object) = object_kind(kind) else {
        return Ok(());
    };
    let items: Vec<OutboxItem> = rows.iter().map(|(item, _)| item.clone()).collect();
    // The payload carries our key (a closure of a legacy deal none).
    let inputs: Vec<(String, BTreeMap<String, String>)> = rows
        .iter()
        .map(|(item, id)| (id.clone(), properties(item)))
        .collect();
    let client = loader.client;
    let sent = bisecting(&inputs, false, |part| {
        client.batch_update_by_id(object, part)
    })
    .await;
    let mut outcome = sent.outcome;
    let mut taken = Vec::new();
    outcome.errors.retain(|error| {
        let conflict = kind == OutboxKind::Contact && error.status == 409;
        if let Some(index) = error.index.filter(|_| conflict) {
            taken.push(index);
        }
        !conflict
    });
    for error in &mut outcome.errors {
        error.existing_id = None;
    }
    apply_outcome(loader, kind, &items, outcome)?;
    for (part, error) in sent.refused {
        let concerned = items.get(part).unwrap_or_default();
        whole_call_failed(loader, concerned, error)?;
    }
    if !taken.is_empty() {
        update_without_email(loader, rows, &taken).await?;
    }
    Ok(())
}

/// Writes adopted contacts whose e-mail address another contact has
/// without it, confirmed with the whole payload's hash (the address stays
/// withheld until it changes) and the values sent, and audited as
/// `email_withheld`.
async fn update_without_email(
    loader: &mut Loader<'_>,
    rows: &[(OutboxItem, String)],
    taken: &[usize],
) -> Result<(), LoadError> {
    let chosen: Vec<&(OutboxItem, String)> = taken.iter().filter_map(|i| rows.get(*i)).collect();
    // Confirmed with the values sent: the address is not among them.
    let items: Vec<OutboxItem> = chosen.iter().map(|(item, _)| without_email(item)).collect();
    let inputs: Vec<(String, BTreeMap<String, String>)> = items
        .iter()
        .zip(&chosen)
        .map(|(item, (_, id))| (id.clone(), properties(item)))
        .collect();
    let client = loader.client;
    let sent = bisecting(&inputs, false, |part| {
        client.batch_update_by_id(ObjectKind::Contacts, part)
    })
    .await;
    for result in &sent.outcome.results {
        if let Some(item) = items.get(result.index) {
            loader.report.email_withheld += 1;
            loader.ledger.audit(&crate::ledger::NewAuditEntry {
                actor: crate::ledger::audit::os_user(),
                action: "email_withheld".into(),
                subject: item.record_key.clone(),
                details: serde_json::json!({
                    "contact": result.id,
                    "reason_de": "Übernommener Kontakt: E-Mail-Adresse gehört bereits einem anderen Kontakt; ohne E-Mail geschrieben, bitte prüfen",
                    "reason_en": "adopted contact: e-mail address already belongs to another contact; written without e-mail, please review",
                }),
            })?;
        }
    }
    let mut outcome = sent.outcome;
    for error in &mut outcome.errors {
        error.existing_id = None;
    }
    apply_outcome(loader, OutboxKind::Contact, &items, outcome)?;
    for (part, error) in sent.refused {
        let concerned = items.get(part).unwrap_or_default();
        whole_call_failed(loader, concerned, error)?;
    }
    Ok(())
}

/// A contact row as written without its e-mail address (someone else's
/// contact has it).
fn without_email(item: &OutboxItem) -> OutboxItem {
    let mut item = item.clone();
    if let Some(map) = item.payload.as_object_mut() {
        map.remove(contacts::EMAIL);
    }
    item
}

fn object_kind(kind: OutboxKind) -> Option<ObjectKind> {
    match kind {
        OutboxKind::Contact => Some(ObjectKind::Contacts),
        OutboxKind::Deal => Some(ObjectKind::Deals),
        OutboxKind::Appointment => Some(ObjectKind::Appointments),
        OutboxKind::Association | OutboxKind::Merge | OutboxKind::Erasure => None,
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

/// The upserts of outbox rows, in their order.
fn upsert_inputs(items: &[OutboxItem]) -> Vec<UpsertInput> {
    items
        .iter()
        .map(|item| UpsertInput {
            key: item.record_key.clone(),
            properties: properties(item),
        })
        .collect()
}

/// Refusals that stop the whole run: the token, its scopes, the portal's
/// budget. Nothing another batch could do better.
fn stops_run(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Unauthorized
            | ClientError::Forbidden { .. }
            | ClientError::DailyLimit { .. }
            | ClientError::RateLimited
    )
}

/// Whole-call refusals over something in the inputs, which sending fewer
/// inputs can get past.
fn splits(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Validation { .. } | ClientError::Conflict { .. }
    )
}

/// What a batch call, halved where HubSpot refused it whole, came to.
#[derive(Debug, Default)]
struct Bisected {
    /// Per-input answers, at the inputs' positions in the whole batch.
    outcome: BatchOutcome,
    /// Parts refused as a whole for a reason halving cannot get past (a
    /// server error after every retry, an account-wide refusal).
    refused: Vec<(Range<usize>, ClientError)>,
}

impl Bisected {
    /// Takes the outcome of the part starting at `offset`.
    fn absorb(&mut self, offset: usize, outcome: BatchOutcome) {
        let BatchOutcome {
            results,
            errors,
            not_applied,
        } = outcome;
        self.outcome
            .results
            .extend(results.into_iter().map(|mut result| {
                result.index += offset;
                result
            }));
        self.outcome
            .errors
            .extend(errors.into_iter().map(|mut error| {
                error.index = error.index.map(|index| index + offset);
                error
            }));
        self.outcome
            .not_applied
            .extend(not_applied.into_iter().map(|index| index + offset));
    }
}

/// Sends `inputs` through `call`. A part HubSpot refuses as a whole over
/// something in it (a validation error or a conflict it pins on no input)
/// is sent again as two halves, down to single inputs, whose refusal the
/// client reports per input: one bad input costs about 2·log₂ n further
/// calls instead of n, and the good inputs still go through. With
/// `split_first` the whole batch is known to be refused and its halves go
/// out first. An account-wide refusal ends it at once.
async fn bisecting<'i, T, F, Fut>(inputs: &'i [T], split_first: bool, mut call: F) -> Bisected
where
    F: FnMut(&'i [T]) -> Fut,
    Fut: Future<Output = Result<BatchOutcome, ClientError>>,
{
    let mut sent = Bisected::default();
    // A stack: the first half is on top, so inputs go out in their order.
    let mut parts: Vec<Range<usize>> = Vec::new();
    if split_first && inputs.len() > 1 {
        let middle = inputs.len() / 2;
        parts.extend([middle..inputs.len(), 0..middle]);
    } else {
        parts.push(0..inputs.len());
    }
    while let Some(part) = parts.pop() {
        let slice = inputs.get(part.clone()).unwrap_or_default();
        if slice.is_empty() {
            continue;
        }
        match call(slice).await {
            Ok(outcome) => sent.absorb(part.start, outcome),
            Err(error) if splits(&error) && part.len() > 1 => {
                let middle = part.start + part.len() / 2;
                parts.push(middle..part.end);
                parts.push(part.start..middle);
            }
            Err(error) => {
                let stop = stops_run(&error);
                sent.refused.push((part, error));
                if stop {
                    break;
                }
            }
        }
    }
    sent
}

/// [`bisecting`] over any number of inputs: 100 a call, up to
/// [`flight::CALLS_IN_FLIGHT`] calls on their way at once; the answers and
/// refused parts at the inputs' positions, as one call would give them.
async fn bisecting_in_flight<'i, T, F, Fut>(inputs: &'i [T], call: F) -> Bisected
where
    F: Fn(&'i [T]) -> Fut,
    Fut: Future<Output = Result<BatchOutcome, ClientError>>,
{
    let mut sent = Bisected::default();
    let mut flight = Flight::new();
    let mut take = |(offset, part): (usize, Bisected)| {
        sent.absorb(offset, part.outcome);
        sent.refused.extend(
            part.refused
                .into_iter()
                .map(|(range, error)| (range.start + offset..range.end + offset, error)),
        );
    };
    for (n, part) in inputs.chunks(BATCH).enumerate() {
        if let Some(answered) = flight.push(bisected_at(n * BATCH, part, &call)).await {
            take(answered);
        }
    }
    while let Some(answered) = flight.next().await {
        take(answered);
    }
    sent
}

/// [`bisecting`] of the part of the inputs starting at `offset`.
async fn bisected_at<'i, T, F, Fut>(offset: usize, part: &'i [T], call: &F) -> (usize, Bisected)
where
    F: Fn(&'i [T]) -> Fut,
    Fut: Future<Output = Result<BatchOutcome, ClientError>>,
{
    (offset, bisecting(part, false, call).await)
}

/// Upserts outbox rows of one kind, halving a batch HubSpot refuses whole
/// ([`bisecting`]), and records HubSpot's answers. Returns the contacts set
/// aside because another contact has their e-mail address.
async fn upsert_parts(
    loader: &mut Loader<'_>,
    kind: OutboxKind,
    items: &[OutboxItem],
    split_first: bool,
) -> Result<Vec<contacts::Conflict>, LoadError> {
    let Some(object) = object_kind(kind) else {
        return Ok(Vec::new());
    };
    let client = loader.client;
    let inputs = upsert_inputs(items);
    let sent = bisecting(&inputs, split_first, |part| {
        client.batch_upsert(object, key_property(object), part)
    })
    .await;
    record_upserts(loader, kind, items, sent)
}

/// Upsert rows and what HubSpot answered, to be recorded.
struct SentUpserts {
    kind: OutboxKind,
    items: Vec<OutboxItem>,
    sent: Bisected,
}

impl Answer for SentUpserts {
    fn record(self, loader: &mut Loader<'_>) -> Result<(), LoadError> {
        // Only contacts have a second unique value; these are not contacts.
        record_upserts(loader, self.kind, &self.items, self.sent).map(drop)
    }
}

/// Sends upsert rows of one object kind (halved where refused whole)
/// without touching the ledger, so that several can be on their way.
async fn send_upserts(
    client: &HubSpotClient,
    kind: OutboxKind,
    object: ObjectKind,
    items: Vec<OutboxItem>,
) -> SentUpserts {
    let inputs = upsert_inputs(&items);
    let sent = bisecting(&inputs, false, |part| {
        client.batch_upsert(object, key_property(object), part)
    })
    .await;
    SentUpserts { kind, items, sent }
}

/// Records the answers of an upsert call; returns the contacts set aside
/// because another contact has their e-mail address.
fn record_upserts(
    loader: &mut Loader<'_>,
    kind: OutboxKind,
    items: &[OutboxItem],
    sent: Bisected,
) -> Result<Vec<contacts::Conflict>, LoadError> {
    let conflicts = apply_outcome(loader, kind, items, sent.outcome)?;
    for (part, error) in sent.refused {
        let rows = items.get(part).unwrap_or_default();
        whole_call_failed(loader, rows, error)?;
    }
    Ok(conflicts)
}

/// A refused call: stop the run for account-wide problems, otherwise
/// count a failed attempt for every row.
fn whole_call_failed(
    loader: &mut Loader<'_>,
    items: &[OutboxItem],
    error: ClientError,
) -> Result<(), LoadError> {
    let rows: Vec<&OutboxItem> = items.iter().collect();
    refused(loader, &rows, error)
}

/// A refused call: stop the run for account-wide problems, otherwise count
/// a failed attempt for each row concerned.
fn refused(
    loader: &mut Loader<'_>,
    items: &[&OutboxItem],
    error: ClientError,
) -> Result<(), LoadError> {
    if stops_run(&error) {
        return Err(LoadError::HubSpot(error));
    }
    let reason = format!("{} / {}", error.explain_de(), error.explain_en());
    for item in items {
        fail(loader, item, &reason)?;
    }
    Ok(())
}

/// Records HubSpot's answer per input: confirmed rows leave the outbox,
/// failed ones count an attempt, contacts refused over an e-mail address
/// another contact has are returned as conflicts (not an attempt).
fn apply_outcome(
    loader: &mut Loader<'_>,
    kind: OutboxKind,
    items: &[OutboxItem],
    outcome: BatchOutcome,
) -> Result<Vec<contacts::Conflict>, LoadError> {
    let confirmed: Vec<Confirmation> = outcome
        .results
        .iter()
        .filter_map(|result| Some(confirmation(items.get(result.index)?, &result.id)))
        .collect();
    *loader.report.written.entry(kind).or_default() += confirmed.len() as u64;
    loader.ledger.confirm(kind, &confirmed)?;

    let mut conflicts = Vec::new();
    for error in outcome.errors {
        let Some(item) = error.index.and_then(|i| items.get(i)) else {
            continue;
        };
        match &error.existing_id {
            Some(existing) if kind == OutboxKind::Contact && error.status == 409 => {
                conflicts.push(contacts::Conflict::named(item.clone(), existing.clone()));
            }
            _ => fail(loader, item, &input_reason(&error))?,
        }
    }
    // `not_applied` rows are still due and go out with a later batch.
    Ok(conflicts)
}

/// HubSpot confirmed `item` as the record `hubspot_id`, with the
/// properties of its payload (as sent: callers that send fewer strip them
/// from the item first).
fn confirmation(item: &OutboxItem, hubspot_id: &str) -> Confirmation {
    Confirmation {
        row: item.id,
        record_key: item.record_key.clone(),
        hash: item.payload_hash.clone(),
        hubspot_id: hubspot_id.to_owned(),
        values: Some(properties(item)),
    }
}

fn input_reason(error: &InputError) -> String {
    format!(
        "HubSpot hat den Datensatz abgelehnt ({} {}): {} / HubSpot refused the record ({} {}): {}",
        error.status, error.category, error.message, error.status, error.category, error.message
    )
}

fn fail(loader: &mut Loader<'_>, item: &OutboxItem, reason: &str) -> Result<(), LoadError> {
    // Backoff across runs: 1, 2, 4, 8 … minutes.
    let wait = Duration::minutes(1_i64 << item.attempts.min(10));
    let dead = loader
        .ledger
        .fail(item.id, reason, &stamp(Utc::now() + wait), MAX_ATTEMPTS)?;
    loader.report.failed += 1;
    if dead {
        loader.report.dead += 1;
    }
    Ok(())
}

/// An association row with the HubSpot ids of both ends.
type Resolved = (OutboxItem, String, String);

/// Association rows whose ends HubSpot confirmed, by kind pair, gathering
/// into full batches.
type AssociationGroups = BTreeMap<(OutboxKind, OutboxKind), Vec<Resolved>>;

/// One pass over the due associations. Rows whose ends are both in HubSpot
/// are gathered per kind pair and sent 100 at a time, so rows that wait
/// for an end (or a change of kind pair in the queue) leave no half-full
/// calls behind; the rest of each pair goes out at the end of the pass
/// (only in the last round while planning still queues). Returns whether
/// the load was halted.
async fn association_pass(
    loader: &mut Loader<'_>,
    partial_batches: bool,
    progress: &mut PhaseProgress,
) -> Result<bool, LoadError> {
    let kind = OutboxKind::Association;
    let client = loader.client;
    let mut flight = Flight::new();
    let mut groups = AssociationGroups::new();
    let mut after = String::new();
    loop {
        let halted = loader.halted();
        if !matches!(halted, Ok(false)) {
            land(loader, &mut flight).await?;
            return halted;
        }
        let items = loader
            .ledger
            .due_after(kind, &stamp(Utc::now()), &after, BATCH)?;
        if !partial_batches && items.len() < BATCH {
            break;
        }
        let Some(last) = items.last() else {
            break;
        };
        after = last.record_key.clone();
        let before = loader.handled(kind);
        gather_associations(loader, items, &mut groups)?;
        for (pair, members) in groups.iter_mut() {
            while members.len() >= BATCH {
                let batch: Vec<Resolved> = members.drain(..BATCH).collect();
                dispatch(loader, &mut flight, send_associations(client, *pair, batch)).await?;
            }
        }
        progress.advance(loader, before);
    }
    if partial_batches {
        for (pair, members) in groups {
            if !members.is_empty() {
                let call = send_associations(client, pair, members);
                dispatch(loader, &mut flight, call).await?;
            }
        }
    }
    land(loader, &mut flight).await?;
    Ok(false)
}

/// Adds association rows to their kind pair's group with the HubSpot ids
/// of both ends; rows with an end HubSpot has not confirmed yet are
/// counted as waiting.
fn gather_associations(
    loader: &mut Loader<'_>,
    items: Vec<OutboxItem>,
    groups: &mut AssociationGroups,
) -> Result<(), LoadError> {
    for item in items {
        let ledger = &*loader.ledger;
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
                loader.report.waiting += 1;
            }
        }
    }
    Ok(())
}

/// Association rows and what HubSpot answered, to be recorded.
struct SentAssociations {
    members: Vec<Resolved>,
    /// `None` for a kind pair HubSpot has no objects for (nothing sent).
    answer: Option<Result<Vec<Result<(), InputError>>, ClientError>>,
}

/// One default-association call for rows of one kind pair, without
/// touching the ledger, so that several can be on their way.
async fn send_associations(
    client: &HubSpotClient,
    (from, to): (OutboxKind, OutboxKind),
    members: Vec<Resolved>,
) -> SentAssociations {
    let (Some(from_object), Some(to_object)) = (object_kind(from), object_kind(to)) else {
        return SentAssociations {
            members,
            answer: None,
        };
    };
    let pairs: Vec<(String, String)> = members
        .iter()
        .map(|(_, f, t)| (f.clone(), t.clone()))
        .collect();
    let answer = client
        .associate_default_batch(from_object, to_object, &pairs)
        .await;
    SentAssociations {
        members,
        answer: Some(answer),
    }
}

impl Answer for SentAssociations {
    /// Confirms the rows HubSpot associated and counts an attempt for the
    /// others (or stops the run over an account-wide refusal).
    fn record(self, loader: &mut Loader<'_>) -> Result<(), LoadError> {
        let SentAssociations { members, answer } = self;
        let results = match answer {
            None => return Ok(()),
            Some(Ok(results)) => results,
            Some(Err(error)) => {
                let rows: Vec<&OutboxItem> = members.iter().map(|(item, _, _)| item).collect();
                return refused(loader, &rows, error);
            }
        };
        confirm_associations(loader, &members, results)
    }
}

/// Records per row what HubSpot answered to an association call.
fn confirm_associations(
    loader: &mut Loader<'_>,
    members: &[Resolved],
    results: Vec<Result<(), InputError>>,
) -> Result<(), LoadError> {
    let mut confirmed = Vec::new();
    for ((item, from_id, _), result) in members.iter().zip(results) {
        match result {
            Ok(()) => confirmed.push(Confirmation {
                values: None,
                ..confirmation(item, from_id)
            }),
            Err(error) => fail(loader, item, &input_reason(&error))?,
        }
    }
    *loader
        .report
        .written
        .entry(OutboxKind::Association)
        .or_default() += confirmed.len() as u64;
    loader.ledger.confirm(OutboxKind::Association, &confirmed)?;
    Ok(())
}

/// ISO-8601 UTC as the outbox stores due times.
pub fn stamp(time: chrono::DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::hubspot::InputResult;

    /// A portal that refuses any call with more than one input if it holds
    /// one of `bad` (the client reports a single bad input per input).
    fn portal<'c>(
        bad: &'c [u32],
        calls: &'c Cell<u32>,
    ) -> impl FnMut(&[u32]) -> std::future::Ready<Result<BatchOutcome, ClientError>> + 'c {
        move |part: &[u32]| {
            calls.set(calls.get() + 1);
            let spoiled: Vec<usize> = (0..part.len())
                .filter(|i| part.get(*i).is_some_and(|v| bad.contains(v)))
                .collect();
            let answer = if spoiled.is_empty() {
                Ok(BatchOutcome {
                    results: (0..part.len())
                        .map(|index| InputResult {
                            index,
                            id: part.get(index).map(u32::to_string).unwrap_or_default(),
                            new: true,
                            properties: BTreeMap::new(),
                        })
                        .collect(),
                    ..BatchOutcome::default()
                })
            } else if part.len() == 1 {
                Ok(BatchOutcome {
                    errors: vec![InputError {
                        index: Some(0),
                        status: 400,
                        category: "VALIDATION_ERROR".into(),
                        message: "bad".into(),
                        existing_id: None,
                        context: BTreeMap::new(),
                    }],
                    ..BatchOutcome::default()
                })
            } else {
                Err(ClientError::Validation {
                    message: "Property values were not valid".into(),
                    category: "VALIDATION_ERROR".into(),
                })
            };
            std::future::ready(answer)
        }
    }

    fn check(bad: &[u32], split_first: bool, most_calls: u32) {
        let inputs: Vec<u32> = (0..100).collect();
        let calls = Cell::new(0);
        let sent = block_on(bisecting(&inputs, split_first, portal(bad, &calls)));
        let written: Vec<(usize, String)> = sent
            .outcome
            .results
            .iter()
            .map(|r| (r.index, r.id.clone()))
            .collect();
        let expected: Vec<(usize, String)> = inputs
            .iter()
            .filter(|v| !bad.contains(v))
            .map(|v| (*v as usize, v.to_string()))
            .collect();
        let mut written_sorted = written.clone();
        written_sorted.sort();
        assert_eq!(written_sorted, expected, "every good input at its position");
        let mut refused: Vec<usize> = sent.outcome.errors.iter().filter_map(|e| e.index).collect();
        refused.sort();
        let bad_positions: Vec<usize> = bad.iter().map(|b| *b as usize).collect();
        assert_eq!(refused, bad_positions, "each bad input named");
        assert!(sent.refused.is_empty());
        assert!(
            calls.get() <= most_calls,
            "{} calls for {bad:?}",
            calls.get()
        );
    }

    /// Runs a future that never waits on I/O.
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_batch_refused_over_one_bad_input_is_halved_not_split_into_singles() {
        // Whole batch, then two halves per level down to the bad input.
        check(&[], false, 1);
        check(&[37], false, 1 + 2 * 7);
        check(&[0], true, 2 * 7);
        check(&[99], true, 2 * 7);
        check(&[3, 71], true, 4 * 7);
    }

    #[test]
    fn an_account_wide_refusal_ends_the_halving() {
        let inputs: Vec<u32> = (0..10).collect();
        let calls = Cell::new(0);
        let sent = block_on(bisecting(&inputs, true, |_part: &[u32]| {
            calls.set(calls.get() + 1);
            std::future::ready(Err(ClientError::Unauthorized))
        }));
        assert_eq!(calls.get(), 1);
        assert_eq!(sent.refused.len(), 1);
        assert!(stops_run(&sent.refused[0].1));
    }
}
