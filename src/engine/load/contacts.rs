//! The contact phase of the load, and what it does about e-mail addresses.
//!
//! HubSpot keeps a contact's e-mail address unique, Ivoris does not. When
//! another contact has a patient's address:
//! - the other contact carries no patient key (created by an older
//!   integration or by hand), no name other than the patient's and — where
//!   both are known — no other birthday (in the contact property the
//!   mapping names for it, in any date notation): it is adopted — our key
//!   is set on it and the upsert then lands on it (with another name or
//!   birthday it is someone else's, see below);
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
//! Such contacts (conflicts) are set aside while a pass runs and resolved
//! together afterwards: the contacts in the way that HubSpot only named are
//! read (100 a call), the conflicts are decided in order (each with the
//! view the ones before left), then the adopted and linked contacts are
//! updated by id — one update per contact, 100 a call — and the adopted and
//! withheld patients upserted, 100 a call; the calls of each step go out
//! several at once (`bisecting_in_flight`), the upserts only after every
//! update, since they land on the contacts the updates gave our keys.
//!
//! Finding the conflicts: where HubSpot answers per input (207) it names
//! each conflicting contact. A portal may instead refuse the whole batch and
//! name only the first contact in the way. Then one batch read by e-mail
//! address finds every conflict of the batch at once, and from then on the
//! addresses of contacts HubSpot has never confirmed are read *before*
//! they are sent, so no further call is wasted on a refusal; the read's
//! properties serve the resolution, and the rows without conflict are
//! gathered into full batches again. The read is a batch read by a unique
//! value, not a search: it sees what was just written.
//!
//! Reading 100 addresses per call costs one call per 100 contacts still to
//! create. When the portal holds fewer contacts with an address than that
//! (one search counts them), the first refusal lists them instead, once,
//! through the list endpoint ([`survey`]); the listing, kept current with
//! this load's own writes, then screens every row before it is sent. A row
//! the listing passed and HubSpot still refuses (someone added a contact
//! meanwhile) is read as before: the listing saves calls, it never decides
//! what the read would have decided differently.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;

use chrono::{NaiveDate, Utc};

use super::flight::{CALLS_IN_FLIGHT, Flight};
use super::{
    Adopted, BATCH, Loader, PhaseProgress, apply_outcome, bisecting_in_flight, confirmation, fail,
    input_reason, properties, refused, splits, stamp, upsert_inputs, upsert_parts,
    whole_call_failed, without_email,
};
use crate::duplicates::normalise_name;
use crate::duplicates::values::date_of;
use crate::hubspot::provision::key_property;
use crate::hubspot::wire::{Filter, FilterGroup, SearchRequest};
use crate::hubspot::{BatchOutcome, ClientError, HubSpotClient, ObjectKind, UpsertInput};
use crate::ledger::audit::os_user;
use crate::ledger::{Confirmation, Ledger, LedgerError, NewAuditEntry, OutboxItem, OutboxKind};
use crate::mapping::PatientField;

use super::LoadError;

/// A contact's properties by name.
type Props = BTreeMap<String, String>;

/// The contact property HubSpot keeps unique besides our key.
pub(super) const EMAIL: &str = "email";
/// Every patient key a contact stands for (linked patients).
const PATIENT_KEYS: &str = "ivoris_patient_keys";

/// What a conflict's resolution needs to know about the contact in the
/// way: keys, names, address and — where the mapping names a property for
/// it — the birthday.
fn wanted(birthday: Option<&str>) -> Vec<String> {
    [
        key_property(ObjectKind::Contacts),
        PATIENT_KEYS,
        "firstname",
        "lastname",
        EMAIL,
    ]
    .into_iter()
    .chain(birthday)
    .map(String::from)
    .collect()
}

/// What the contact phase learned about the portal during one load; kept
/// across the rounds of [`super::load_following`].
#[derive(Debug, Default)]
pub(super) struct Session {
    /// HubSpot refused a whole contact batch over an e-mail address: from
    /// now on the addresses of contacts it has never confirmed are read
    /// before they are sent.
    read_first: bool,
    /// Rows whose address was read and found free or on their own contact,
    /// key → payload hash: not read again while the payload stays.
    checked: HashMap<String, String>,
    /// Rows passed over because a row before them in their pass has the
    /// same address: key → (payload hash, that row's key). Until that row
    /// is written they count as read; afterwards they are read again (and
    /// conflict with it).
    behind: HashMap<String, (String, String)>,
    /// Conflicts found but not resolved yet, by key: while planning still
    /// queues, a last chunk under 100 waits for the next round.
    held: HashMap<String, Conflict>,
    /// The contacts in the way by HubSpot id, as read and then as this
    /// load's own resolutions changed them (nothing else writes to them
    /// meanwhile), so the resolution reads none twice.
    seen: HashMap<String, Props>,
    /// The portal's contacts by address (lower case) → HubSpot id, when
    /// [`survey`] listed them; their properties are in `seen`. This load's
    /// own writes are added as they are confirmed.
    portal: Option<HashMap<String, String>>,
    /// Whether [`survey`] has weighed listing the portal in this load.
    surveyed: bool,
    /// Whether HubSpot answered a contact batch in this load: until then
    /// one batch at a time, so that a portal refusing whole batches is
    /// known before several batches meet the same refusal.
    answered: bool,
    /// The contact property that holds the birthday in the mapping in
    /// force (enabled or not: the previous integration may have filled
    /// it), once read; `Some(None)` when the mapping names none.
    birthday: Option<Option<String>>,
}

impl Session {
    /// The birthday's contact property (see [`Session::birthday`]); a
    /// mapping that cannot be read names none (names alone decide).
    fn birthday_property(&mut self, ledger: &Ledger) -> Option<String> {
        self.birthday
            .get_or_insert_with(|| {
                crate::mapping::store::load_applied(ledger)
                    .ok()
                    .and_then(|(_, mapping)| {
                        mapping
                            .contact_fields
                            .iter()
                            .find(|rule| rule.field == PatientField::Birthday)
                            .map(|rule| rule.property.clone())
                    })
            })
            .clone()
    }

    fn is_checked(&self, row: &OutboxItem) -> bool {
        self.checked.get(&row.record_key) == Some(&row.payload_hash)
    }

    fn check(&mut self, row: &OutboxItem) {
        self.checked
            .insert(row.record_key.clone(), row.payload_hash.clone());
    }

    /// Rows that wait for a row with the same address, named by key.
    fn defer(&mut self, rows: Vec<(OutboxItem, String)>) {
        for (row, first) in rows {
            self.behind
                .insert(row.record_key, (row.payload_hash, first));
        }
    }

    /// Whether a row needs no read: its address was found free (or on its
    /// own contact), or the row with the same address before it is not
    /// written yet.
    fn known_free(&mut self, ledger: &Ledger, row: &OutboxItem) -> Result<bool, LedgerError> {
        if let Some((hash, first)) = self.behind.get(&row.record_key)
            && *hash == row.payload_hash
        {
            let written = ledger
                .confirmed(OutboxKind::Contact, first)?
                .and_then(|c| c.hubspot_id)
                .is_some();
            if !written {
                return Ok(true);
            }
            self.behind.remove(&row.record_key);
            self.checked.remove(&row.record_key);
            return Ok(false);
        }
        Ok(self.is_checked(row))
    }

    /// Adds the contacts a batch wrote (input index, HubSpot id) to the
    /// portal's listing, if there is one, with the properties just sent.
    fn note_written(&mut self, batch: &[OutboxItem], written: &[(usize, String)]) {
        let Some(portal) = &mut self.portal else {
            return;
        };
        for (index, id) in written {
            let Some(row) = batch.get(*index) else {
                continue;
            };
            if let Some(email) = email_of(row) {
                portal.insert(email, id.clone());
                let mut written = properties(row);
                written.insert(
                    key_property(ObjectKind::Contacts).to_owned(),
                    row.record_key.clone(),
                );
                self.seen.insert(id.clone(), written);
            }
        }
    }

    /// Whether a refused batch can learn something from reading this row's
    /// address.
    fn unread(&self, row: &OutboxItem) -> bool {
        email_of(row).is_some() && !self.is_checked(row)
    }
}

/// A contact row whose e-mail address another contact has.
#[derive(Debug, Clone)]
pub(super) struct Conflict {
    /// The outbox row.
    item: OutboxItem,
    /// HubSpot id of the contact holding the address; what is known about
    /// it is in [`Session::seen`].
    existing_id: String,
}

impl Conflict {
    /// A conflict HubSpot reported, naming only the contact in the way.
    pub(super) fn named(item: OutboxItem, existing_id: String) -> Conflict {
        Conflict { item, existing_id }
    }
}

/// A row's e-mail address as HubSpot compares it, if it has one.
fn email_of(row: &OutboxItem) -> Option<String> {
    row.payload
        .get(EMAIL)
        .and_then(serde_json::Value::as_str)
        .map(|email| email.trim().to_lowercase())
        .filter(|email| !email.is_empty())
}

/// Rows ready to be sent, gathered into full batches.
#[derive(Debug, Default)]
struct Ready {
    /// Rows in the order they came.
    rows: VecDeque<OutboxItem>,
    /// Addresses of the rows waiting here or sent in this pass, with the
    /// key of the row.
    emails: HashMap<String, String>,
}

impl Ready {
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds rows at the back, or at the front (rows a refused batch gives
    /// back). With `one_per_address` a row whose address a row of this
    /// pass already has is returned instead, with that row's key: HubSpot
    /// would refuse the batch, or the second row conflicts with the first
    /// once it is written, which a later pass finds by reading.
    fn add(
        &mut self,
        rows: Vec<OutboxItem>,
        front: bool,
        one_per_address: bool,
    ) -> Vec<(OutboxItem, String)> {
        let mut deferred = Vec::new();
        let mut accepted = Vec::with_capacity(rows.len());
        for row in rows {
            let first = email_of(&row).and_then(|email| match self.emails.get(&email) {
                Some(first) if *first != row.record_key => Some(first.clone()),
                Some(_) => None,
                None => {
                    self.emails.insert(email, row.record_key.clone());
                    None
                }
            });
            match first {
                Some(first) if one_per_address => deferred.push((row, first)),
                _ => accepted.push(row),
            }
        }
        if front {
            for row in accepted.into_iter().rev() {
                self.rows.push_front(row);
            }
        } else {
            self.rows.extend(accepted);
        }
        deferred
    }

    /// Up to one batch from the front.
    fn take(&mut self) -> Vec<OutboxItem> {
        let count = self.rows.len().min(BATCH);
        self.rows.drain(..count).collect()
    }

    /// A refused batch wrote nothing: its addresses are free again.
    fn release(&mut self, rows: &[OutboxItem]) {
        for row in rows {
            if let Some(email) = email_of(row)
                && self.emails.get(&email) == Some(&row.record_key)
            {
                self.emails.remove(&email);
            }
        }
    }
}

/// One pass over the due contacts, 100 at a time, then the resolution of
/// the conflicts found. Returns whether the load was halted.
pub(super) async fn pass(
    loader: &mut Loader<'_>,
    partial_batches: bool,
    progress: &mut PhaseProgress,
) -> Result<bool, LoadError> {
    let mut ready = Ready::default();
    let mut adopted = Adopted::default();
    let mut conflicts = Vec::new();
    let mut after = String::new();
    let mut flight = Flight::with_capacity(if loader.contacts.answered {
        CALLS_IN_FLIGHT
    } else {
        1
    });
    loop {
        let halted = loader.halted();
        if !matches!(halted, Ok(false)) {
            land(loader, &mut flight, &mut ready, &mut conflicts).await?;
            return halted;
        }
        let items =
            loader
                .ledger
                .due_after(OutboxKind::Contact, &stamp(Utc::now()), &after, BATCH)?;
        if !partial_batches && items.len() < BATCH {
            break;
        }
        let Some(last) = items.last() else {
            break;
        };
        after = last.record_key.clone();
        let before = loader.handled(OutboxKind::Contact);
        let fresh = take_held(loader, items, &mut conflicts);
        // Adopted contacts are written by id, apart from the upserts.
        let fresh = adopted.take_from(loader.ledger, OutboxKind::Contact, fresh)?;
        let fresh = if loader.contacts.read_first {
            screen(loader, fresh, false, &mut conflicts).await?
        } else {
            fresh
        };
        let one_per_address = loader.contacts.read_first;
        let deferred = ready.add(fresh, false, one_per_address);
        loader.contacts.defer(deferred);
        while ready.len() >= BATCH {
            let batch = ready.take();
            let sending = call(loader.client, batch);
            dispatch(loader, &mut flight, sending, &mut ready, &mut conflicts).await?;
        }
        adopted.send_full(loader, OutboxKind::Contact).await?;
        progress.advance(loader, before);
    }
    land(loader, &mut flight, &mut ready, &mut conflicts).await?;
    while partial_batches && ready.len() > 0 {
        while ready.len() > 0 {
            let batch = ready.take();
            let sending = call(loader.client, batch);
            dispatch(loader, &mut flight, sending, &mut ready, &mut conflicts).await?;
        }
        // A refused batch may give rows back to `ready`.
        land(loader, &mut flight, &mut ready, &mut conflicts).await?;
    }
    if partial_batches {
        adopted.send_rest(loader, OutboxKind::Contact).await?;
    }
    resolve(loader, conflicts, partial_batches).await?;
    Ok(false)
}

/// Rows whose conflict an earlier round found and held go to `conflicts`
/// (unless their payload changed); the others are returned.
fn take_held(
    loader: &mut Loader<'_>,
    items: Vec<OutboxItem>,
    conflicts: &mut Vec<Conflict>,
) -> Vec<OutboxItem> {
    let mut fresh = Vec::with_capacity(items.len());
    for item in items {
        match loader.contacts.held.remove(&item.record_key) {
            Some(conflict) if conflict.item.payload_hash == item.payload_hash => {
                conflicts.push(Conflict::named(item, conflict.existing_id));
            }
            _ => fresh.push(item),
        }
    }
    fresh
}

/// Whether a refusal is about an e-mail address: a conflict (the only other
/// unique contact property is our key, which an upsert by key cannot
/// clash on) or a validation error naming the address.
fn about_email(error: &ClientError) -> bool {
    match error {
        ClientError::Conflict { .. } => true,
        ClientError::Validation { message, .. } => message.to_lowercase().contains(EMAIL),
        _ => false,
    }
}

/// A contact batch and HubSpot's answer to its upsert.
struct Sent {
    batch: Vec<OutboxItem>,
    answer: Result<BatchOutcome, ClientError>,
}

/// Upserts one batch of contacts without touching the ledger, so that
/// several can be on their way ([`dispatch`]).
async fn call(client: &HubSpotClient, batch: Vec<OutboxItem>) -> Sent {
    let contacts = ObjectKind::Contacts;
    let inputs = upsert_inputs(&batch);
    let answer = client
        .batch_upsert(contacts, key_property(contacts), &inputs)
        .await;
    Sent { batch, answer }
}

/// Puts a batch on its way ([`call`]); when the flight is full, settles
/// the oldest answer. After the first answer of the load, batches go out
/// together.
async fn dispatch<F>(
    loader: &mut Loader<'_>,
    flight: &mut Flight<F>,
    sending: F,
    ready: &mut Ready,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), LoadError>
where
    F: Future<Output = Sent>,
{
    if let Some(sent) = flight.push(sending).await {
        settle(loader, sent, ready, conflicts).await?;
        loader.contacts.answered = true;
        flight.widen();
    }
    Ok(())
}

/// Settles the answers of every batch still on its way.
async fn land<F>(
    loader: &mut Loader<'_>,
    flight: &mut Flight<F>,
    ready: &mut Ready,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), LoadError>
where
    F: Future<Output = Sent>,
{
    while let Some(sent) = flight.next().await {
        settle(loader, sent, ready, conflicts).await?;
        loader.contacts.answered = true;
        flight.widen();
    }
    Ok(())
}

/// Records the answer to one batch of contacts. A batch refused whole over
/// an e-mail address is read once ([`screen`]): the conflicts are set
/// aside and the rest goes back to `ready` to fill the next full batch. A
/// batch refused although every address in it was read has a bad input
/// and is halved.
async fn settle(
    loader: &mut Loader<'_>,
    sent: Sent,
    ready: &mut Ready,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), LoadError> {
    let Sent { batch, answer } = sent;
    match answer {
        Ok(outcome) => {
            let written: Vec<(usize, String)> = outcome
                .results
                .iter()
                .map(|r| (r.index, r.id.clone()))
                .collect();
            let found = apply_outcome(loader, OutboxKind::Contact, &batch, outcome)?;
            loader.contacts.note_written(&batch, &written);
            conflicts.extend(found);
        }
        Err(error) if about_email(&error) && batch.iter().any(|r| loader.contacts.unread(r)) => {
            if !loader.contacts.read_first {
                tracing::info!(
                    "hubspot refused a whole contact batch over an e-mail address; reading addresses before sending from now on"
                );
            }
            loader.contacts.read_first = true;
            survey(loader).await?;
            ready.release(&batch);
            let rest = screen(loader, batch, true, conflicts).await?;
            let deferred = ready.add(rest, true, true);
            loader.contacts.defer(deferred);
        }
        Err(error) if splits(&error) && batch.len() > 1 => {
            let found = upsert_parts(loader, OutboxKind::Contact, &batch, true).await?;
            conflicts.extend(found);
        }
        Err(error) => whole_call_failed(loader, &batch, error)?,
    }
    Ok(())
}

/// Reads in one call the e-mail addresses of the rows that need it and
/// sets aside, as conflicts, the rows whose address another contact holds;
/// returns the rest, ready to send. Before a refusal only rows HubSpot has
/// never confirmed are read (a confirmed contact normally keeps its
/// address), after one (`after_refusal`) every row not read yet.
async fn screen(
    loader: &mut Loader<'_>,
    rows: Vec<OutboxItem>,
    after_refusal: bool,
    conflicts: &mut Vec<Conflict>,
) -> Result<Vec<OutboxItem>, LoadError> {
    let mut ready = Vec::with_capacity(rows.len());
    let mut to_read: Vec<(OutboxItem, String)> = Vec::new();
    for row in rows {
        let Some(email) = email_of(&row) else {
            ready.push(row);
            continue;
        };
        // After a refusal only what a read found counts: every row left
        // unread is read now, so a second refusal of the same rows halves
        // them instead of reading again.
        let skip = if after_refusal {
            loader.contacts.is_checked(&row)
        } else {
            loader
                .ledger
                .confirmed(OutboxKind::Contact, &row.record_key)?
                .and_then(|c| c.hubspot_id)
                .is_some()
                || loader.contacts.known_free(loader.ledger, &row)?
        };
        if skip {
            ready.push(row);
        } else {
            to_read.push((row, email));
        }
    }
    if !after_refusal {
        to_read = screen_listed(loader, to_read, &mut ready, conflicts);
    }
    if to_read.is_empty() {
        return Ok(ready);
    }
    let mut emails: Vec<String> = to_read.iter().map(|(_, email)| email.clone()).collect();
    emails.sort();
    emails.dedup();
    let wanted = wanted(loader.contacts.birthday_property(loader.ledger).as_deref());
    let holders: HashMap<String, (String, Props)> = match loader
        .client
        .batch_read_by_property(ObjectKind::Contacts, EMAIL, &emails, &wanted)
        .await
    {
        Ok(outcome) => outcome
            .results
            .into_iter()
            .filter_map(|r| Some((emails.get(r.index)?.clone(), (r.id, r.properties))))
            .collect(),
        Err(error) => {
            let rows: Vec<&OutboxItem> = to_read.iter().map(|(row, _)| row).collect();
            refused(loader, &rows, error)?;
            return Ok(ready);
        }
    };
    let key_name = key_property(ObjectKind::Contacts);
    for (row, email) in to_read {
        match holders.get(&email) {
            // Another contact has the address: set aside.
            Some((id, other)) if other.get(key_name) != Some(&row.record_key) => {
                loader.contacts.seen.insert(id.clone(), other.clone());
                conflicts.push(Conflict::named(row, id.clone()));
            }
            // Free, or already on the patient's own contact.
            _ => {
                loader.contacts.check(&row);
                ready.push(row);
            }
        }
    }
    Ok(ready)
}

/// Screens rows against the portal's listing, if [`survey`] made one:
/// a row whose address another contact holds is set aside as a conflict,
/// the others are ready (not marked as read: should HubSpot refuse them
/// after all, they are read). Rows waiting behind another row with the
/// same address, and every row when there is no listing, are returned to
/// be read.
fn screen_listed(
    loader: &mut Loader<'_>,
    rows: Vec<(OutboxItem, String)>,
    ready: &mut Vec<OutboxItem>,
    conflicts: &mut Vec<Conflict>,
) -> Vec<(OutboxItem, String)> {
    let session = &mut loader.contacts;
    let Some(portal) = &session.portal else {
        return rows;
    };
    let key_name = key_property(ObjectKind::Contacts);
    let mut to_read = Vec::new();
    for (row, email) in rows {
        if session.behind.contains_key(&row.record_key) {
            to_read.push((row, email));
            continue;
        }
        let holder = portal.get(&email).filter(|id| {
            session
                .seen
                .get(*id)
                .is_none_or(|other| other.get(key_name) != Some(&row.record_key))
        });
        match holder {
            Some(id) => conflicts.push(Conflict::named(row, id.clone())),
            None => ready.push(row),
        }
    }
    to_read
}

/// At the first whole-batch refusal: lists the portal's contacts once
/// (list endpoint, only the properties a resolution needs) when that costs
/// fewer calls than reading the addresses of the contacts still to create
/// 100 at a time. One search counts the contacts with an address; a count
/// that is missing or a listing that fails leaves the reads as they are.
async fn survey(loader: &mut Loader<'_>) -> Result<(), LoadError> {
    if std::mem::replace(&mut loader.contacts.surveyed, true) {
        return Ok(());
    }
    let reads = loader
        .ledger
        .patients_without_contact()?
        .div_ceil(BATCH as u64);
    let Some(holders) = count_with_email(loader.client).await else {
        return Ok(());
    };
    let pages = holders.div_ceil(BATCH as u64).max(1);
    if pages >= reads {
        return Ok(());
    }
    let wanted = wanted(loader.contacts.birthday_property(loader.ledger).as_deref());
    let records = match loader.client.list_all(ObjectKind::Contacts, &wanted).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(
                "listing the portal's contacts failed, reading addresses instead: {error}"
            );
            return Ok(());
        }
    };
    tracing::info!(
        "listed {} contacts of the portal in {pages} pages instead of about {reads} address reads",
        records.len()
    );
    let mut portal = HashMap::with_capacity(records.len());
    for record in records {
        if let Some(email) = record
            .properties
            .get(EMAIL)
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
        {
            portal.insert(email, record.id.clone());
            loader
                .contacts
                .seen
                .entry(record.id)
                .or_insert(record.properties);
        }
    }
    loader.contacts.portal = Some(portal);
    Ok(())
}

/// How many contacts of the portal have an e-mail address (one search,
/// limit 1); `None` when the search fails or gives no total.
async fn count_with_email(client: &HubSpotClient) -> Option<u64> {
    let request = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![Filter {
                property_name: EMAIL.into(),
                operator: "HAS_PROPERTY".into(),
                value: None,
                values: None,
                high_value: None,
            }],
        }],
        sorts: Vec::new(),
        properties: vec![EMAIL.into()],
        limit: 1,
        after: None,
    };
    match client.search(ObjectKind::Contacts, &request).await {
        Ok(page) if page.total > 0 => Some(page.total),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!("counting the portal's contacts failed: {error}");
            None
        }
    }
}

/// Resolves a pass's conflicts 100 at a time. While planning still queues
/// (not `partial_batches`), a last chunk under 100 is held for the next
/// round, so it does not cost calls of its own.
async fn resolve(
    loader: &mut Loader<'_>,
    mut conflicts: Vec<Conflict>,
    partial_batches: bool,
) -> Result<(), LoadError> {
    if !partial_batches {
        let keep = conflicts.len() % BATCH;
        for conflict in conflicts.split_off(conflicts.len() - keep) {
            loader
                .contacts
                .held
                .insert(conflict.item.record_key.clone(), conflict);
        }
    }
    // Reading first and deciding in order gives every chunk the view the
    // chunks before it left (`decide` keeps `seen` current); a contact
    // several chunks update gets one update with all of it.
    let mut decisions = Decisions::default();
    let mut readable = Vec::new();
    for chunk in conflicts.chunks(BATCH) {
        if read_unseen(loader, chunk).await? {
            readable.push(chunk);
        }
    }
    let birthday = loader.contacts.birthday_property(loader.ledger);
    for chunk in readable {
        decisions.absorb(decide(
            loader.ledger,
            chunk,
            &mut loader.contacts.seen,
            birthday.as_deref(),
        )?);
    }
    update_others(loader, &mut decisions).await?;
    upsert_resolved(loader, &decisions).await
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

/// What a chunk of conflicts comes to; rows with the HubSpot id of the
/// contact in the way.
#[derive(Default)]
struct Decisions<'c> {
    /// Updates of other contacts by id (several patients may link to one).
    updates: BTreeMap<String, Props>,
    /// Patients whose key goes onto an unkeyed contact.
    adopted: Vec<(&'c OutboxItem, String)>,
    /// Patients linked to the same person's contact.
    linked: Vec<(&'c OutboxItem, String)>,
    /// Patients written without the address.
    withheld: Vec<(&'c OutboxItem, String)>,
}

impl<'c> Decisions<'c> {
    /// Takes the decisions of the next chunk. An update of a contact that
    /// is already to be updated is merged into it: the later chunk decided
    /// with the earlier one's view, so its values come on top.
    fn absorb(&mut self, next: Decisions<'c>) {
        for (id, update) in next.updates {
            self.updates.entry(id).or_default().extend(update);
        }
        self.adopted.extend(next.adopted);
        self.linked.extend(next.linked);
        self.withheld.extend(next.withheld);
    }
}

/// Reads in one call the contacts in the way the load knows nothing about
/// yet (HubSpot only named them). `false` when that read was refused (the
/// rows count a failed attempt).
async fn read_unseen(loader: &mut Loader<'_>, chunk: &[Conflict]) -> Result<bool, LoadError> {
    let mut ids: Vec<String> = chunk
        .iter()
        .map(|c| c.existing_id.clone())
        .filter(|id| !loader.contacts.seen.contains_key(id))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(true);
    }
    let wanted = wanted(loader.contacts.birthday_property(loader.ledger).as_deref());
    match loader
        .client
        .batch_read_by_id(ObjectKind::Contacts, &ids, &wanted)
        .await
    {
        Ok(outcome) => {
            let seen = &mut loader.contacts.seen;
            seen.extend(outcome.results.into_iter().map(|r| (r.id, r.properties)));
            Ok(true)
        }
        Err(error) => {
            let rows: Vec<&OutboxItem> = chunk.iter().map(|c| &c.item).collect();
            refused(loader, &rows, error)?;
            Ok(false)
        }
    }
}

/// Adopt, link or withhold, conflict by conflict. `seen` follows the
/// decisions, so a second patient with the address of a contact the first
/// one adopts is linked to it or withheld in the same chunk. `birthday` is
/// the contact property holding the birthday, if the mapping names one.
fn decide<'c>(
    ledger: &Ledger,
    chunk: &'c [Conflict],
    seen: &mut HashMap<String, Props>,
    birthday: Option<&str>,
) -> Result<Decisions<'c>, LedgerError> {
    let key_name = key_property(ObjectKind::Contacts);
    let mut decisions = Decisions::default();
    for conflict in chunk {
        let item = &conflict.item;
        let existing = conflict.existing_id.clone();
        let other = seen.get(&existing).cloned().unwrap_or_default();
        let mine = properties(item);
        // A contact another patient adopted from the previous integration
        // carries no key in HubSpot until that patient's write is sent,
        // but it is not free.
        let other_key = match other.get(key_name).filter(|k| !k.is_empty()) {
            Some(key) => Some(key.clone()),
            None => ledger.adopted_by(OutboxKind::Contact, &existing)?,
        };
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
            // An unkeyed contact is this patient's only if its name and
            // birthday do not say otherwise: a family's shared address may
            // sit on a parent's contact entered by hand.
            None if !may_be_patient(&mine, &other, born(ledger, item, &other, birthday)?) => {
                Resolution::Withhold
            }
            None => Resolution::Adopt,
            Some(key) if same_person(ledger, &mine, &item.record_key, key, &other)? => {
                Resolution::Link
            }
            Some(_) => Resolution::Withhold,
        };
        let view = seen.entry(existing.clone()).or_default();
        match action {
            Resolution::Adopt => {
                let update = BTreeMap::from([
                    (key_name.to_owned(), item.record_key.clone()),
                    (PATIENT_KEYS.to_owned(), item.record_key.clone()),
                ]);
                // The patient's upsert then lands on the contact.
                view.extend(update.clone());
                view.extend(mine);
                decisions.updates.insert(existing.clone(), update);
                decisions.adopted.push((item, existing));
            }
            Resolution::Link => {
                let update = decisions
                    .updates
                    .entry(existing.clone())
                    .or_insert_with(|| {
                        let keys = other.get(PATIENT_KEYS).cloned().unwrap_or_default();
                        BTreeMap::from([(PATIENT_KEYS.to_owned(), keys)])
                    });
                add_keys(
                    update,
                    &[
                        other_key.clone().unwrap_or_default(),
                        item.record_key.clone(),
                    ],
                );
                view.extend(update.clone());
                decisions.linked.push((item, existing));
            }
            Resolution::Withhold => decisions.withheld.push((item, existing)),
        }
    }
    Ok(decisions)
}

/// The patient's birthday (from the ledger) and the one the contact in
/// the way holds in `birthday` (the mapping's property), each if known.
fn born(
    ledger: &Ledger,
    item: &OutboxItem,
    other: &Props,
    birthday: Option<&str>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), LedgerError> {
    let theirs = birthday
        .and_then(|property| other.get(property))
        .and_then(|value| date_of(value));
    let mine = match theirs {
        Some(_) => patient_birthday(ledger, &item.record_key)?.and_then(|b| date_of(&b)),
        None => None,
    };
    Ok((mine, theirs))
}

/// Whether an unkeyed contact may stand for the patient: the names it has
/// (first, last) match the patient's, compared normalised (case, umlauts,
/// accents, spaces and punctuation do not count), and so does the
/// birthday where both are known (`born`: the patient's, the contact's);
/// a name or birthday it lacks says nothing against it.
fn may_be_patient(
    mine: &Props,
    other: &Props,
    born: (Option<NaiveDate>, Option<NaiveDate>),
) -> bool {
    let names = ["firstname", "lastname"].iter().all(|field| {
        let theirs = other
            .get(*field)
            .map(|v| normalise_name(v))
            .unwrap_or_default();
        theirs.is_empty() || mine.get(*field).map(|v| normalise_name(v)) == Some(theirs)
    });
    let birthday = match born {
        (Some(mine), Some(theirs)) => mine == theirs,
        _ => true,
    };
    names && birthday
}

/// Adds patient keys to the `ivoris_patient_keys` of an update, sorted,
/// each once.
fn add_keys(update: &mut Props, keys: &[String]) {
    let current = update.get(PATIENT_KEYS).cloned().unwrap_or_default();
    let mut all: Vec<String> = current
        .split(';')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    for key in keys {
        if !key.is_empty() && !all.contains(key) {
            all.push(key.clone());
        }
    }
    all.sort();
    update.insert(PATIENT_KEYS.to_owned(), all.join(";"));
}

/// One update by id of the adopted and linked contacts (halved where
/// HubSpot refuses it whole). Rows whose update failed count an attempt
/// and drop out; linked rows are confirmed with the contact they now share.
async fn update_others(
    loader: &mut Loader<'_>,
    decisions: &mut Decisions<'_>,
) -> Result<(), LoadError> {
    if decisions.updates.is_empty() {
        return Ok(());
    }
    let inputs: Vec<(String, Props)> = std::mem::take(&mut decisions.updates).into_iter().collect();
    let client = loader.client;
    let sent = bisecting_in_flight(&inputs, |part| {
        client.batch_update_by_id(ObjectKind::Contacts, part)
    })
    .await;
    let mut failed: HashMap<String, Option<String>> = HashMap::new();
    for error in &sent.outcome.errors {
        if let Some((id, _)) = error.index.and_then(|i| inputs.get(i)) {
            failed.insert(id.clone(), Some(input_reason(error)));
        }
    }
    let mut stop = None;
    for (part, error) in sent.refused {
        let ids: HashSet<&str> = inputs
            .get(part)
            .unwrap_or_default()
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let rows: Vec<&OutboxItem> = decisions
            .adopted
            .iter()
            .chain(&decisions.linked)
            .filter(|(_, id)| ids.contains(id.as_str()))
            .map(|(item, _)| *item)
            .collect();
        failed.extend(ids.iter().map(|id| ((*id).to_owned(), None)));
        if let Err(error) = refused(loader, &rows, error) {
            stop = Some(error);
        }
    }
    for (item, id) in decisions.adopted.iter().chain(&decisions.linked) {
        if let Some(Some(reason)) = failed.get(id) {
            fail(loader, item, reason)?;
        }
    }
    // What those contacts look like now is not known.
    for id in failed.keys() {
        loader.contacts.seen.remove(id);
    }
    if let Some(error) = stop {
        return Err(error);
    }
    decisions.adopted.retain(|(_, id)| !failed.contains_key(id));
    decisions.linked.retain(|(_, id)| !failed.contains_key(id));
    loader.report.adopted += decisions.adopted.len() as u64;
    // A linked patient's values were not written: the contact holds the
    // other patient's.
    let confirmed: Vec<Confirmation> = decisions
        .linked
        .iter()
        .map(|(item, id)| Confirmation {
            values: None,
            ..confirmation(item, id)
        })
        .collect();
    loader.ledger.confirm(OutboxKind::Contact, &confirmed)?;
    *loader
        .report
        .written
        .entry(OutboxKind::Contact)
        .or_default() += confirmed.len() as u64;
    loader.report.linked += confirmed.len() as u64;
    Ok(())
}

/// Adopted patients land on the contact that now carries their key;
/// withheld ones are written without the e-mail address and listed in the
/// audit log for review. One upsert (halved where HubSpot refuses it whole).
async fn upsert_resolved(
    loader: &mut Loader<'_>,
    decisions: &Decisions<'_>,
) -> Result<(), LoadError> {
    let mut rows: Vec<&OutboxItem> = decisions.adopted.iter().map(|(item, _)| *item).collect();
    let mut inputs: Vec<UpsertInput> = rows
        .iter()
        .map(|item| UpsertInput {
            key: item.record_key.clone(),
            properties: properties(item),
        })
        .collect();
    for (item, _) in &decisions.withheld {
        rows.push(item);
        inputs.push(UpsertInput {
            key: item.record_key.clone(),
            properties: properties(&without_email(item)),
        });
    }
    if inputs.is_empty() {
        return Ok(());
    }
    let client = loader.client;
    let contacts = ObjectKind::Contacts;
    let sent = bisecting_in_flight(&inputs, |part| {
        client.batch_upsert(contacts, key_property(contacts), part)
    })
    .await;
    confirm_resolved(loader, decisions, &rows, &sent.outcome)?;
    for (part, error) in sent.refused {
        let concerned: Vec<&OutboxItem> = rows.get(part).unwrap_or_default().to_vec();
        refused(loader, &concerned, error)?;
    }
    Ok(())
}

/// Records the answer to the upsert of resolved rows, with an
/// `email_withheld` audit entry for every patient written without the
/// address.
fn confirm_resolved(
    loader: &mut Loader<'_>,
    decisions: &Decisions<'_>,
    rows: &[&OutboxItem],
    outcome: &BatchOutcome,
) -> Result<(), LoadError> {
    let mut confirmed = Vec::new();
    for result in &outcome.results {
        let Some(item) = rows.get(result.index) else {
            continue;
        };
        let withheld = decisions.withheld.iter().find(|(w, _)| w.id == item.id);
        let written = match withheld {
            Some(_) => without_email(item),
            None => (*item).clone(),
        };
        confirmed.push(confirmation(&written, &result.id));
        if let Some((_, other)) = withheld {
            loader.report.email_withheld += 1;
            loader.ledger.audit(&NewAuditEntry {
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
    *loader
        .report
        .written
        .entry(OutboxKind::Contact)
        .or_default() += confirmed.len() as u64;
    loader.ledger.confirm(OutboxKind::Contact, &confirmed)?;
    for error in &outcome.errors {
        if let Some(item) = error.index.and_then(|i| rows.get(i)) {
            fail(loader, item, &input_reason(error))?;
        }
    }
    Ok(())
}

/// Whether the contact holding `other_key` is the same person as the
/// patient of `my_key`: same first and last name, and the same birthday
/// where the ledger knows both patients.
fn same_person(
    ledger: &Ledger,
    mine: &Props,
    my_key: &str,
    other_key: &str,
    other: &Props,
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
    Ok(
        match (
            patient_birthday(ledger, my_key)?,
            patient_birthday(ledger, other_key)?,
        ) {
            (Some(a), Some(b)) => a.get(..10) == b.get(..10),
            _ => true,
        },
    )
}

/// The birthday the ledger has for a patient key, as stored.
fn patient_birthday(ledger: &Ledger, key: &str) -> Result<Option<String>, LedgerError> {
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
}

fn normalise(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .replace('ä', "ae")
        .replace('ö', "oe")
        .replace('ü', "ue")
        .replace('ß', "ss")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_unkeyed_contact_is_the_patients_if_names_and_a_known_birthday_match() {
        let mine = props(&[("firstname", "Erika"), ("lastname", "Altbestand")]);
        let same = props(&[("firstname", "ERIKA"), ("lastname", "Altbestand")]);
        let day = |d| NaiveDate::from_ymd_opt(1971, 4, d);
        assert!(may_be_patient(&mine, &same, (None, None)));
        assert!(may_be_patient(&mine, &same, (day(12), None)));
        assert!(may_be_patient(&mine, &same, (None, day(12))));
        assert!(may_be_patient(&mine, &same, (day(12), day(12))));
        assert!(!may_be_patient(&mine, &same, (day(12), day(13))));
        let other = props(&[("firstname", "Petra")]);
        assert!(!may_be_patient(&mine, &other, (day(12), day(12))));
        assert!(may_be_patient(&mine, &Props::new(), (None, None)));
    }
}
