//! The erasure phase of the load: a forgotten patient's HubSpot records
//! (`ledger/erasure.rs` queued them) go away.
//!
//! - Deals lose their name first (`dealname` is the patient's name plus
//!   type and date; it becomes „Gelöscht (DSGVO)“ and the deal's HubSpot
//!   id), then they are archived, as
//!   appointment records are — HubSpot keeps archived records restorable
//!   for 90 days, so nothing personal may stay on them.
//! - The contact is deleted for good by HubSpot's GDPR delete.
//!
//! Every step can be repeated: an archive of an archived record succeeds,
//! and a GDPR delete of a contact that is already gone (404) counts as done
//! (`HubSpotClient::gdpr_delete_contact`), so a lost answer costs nothing.
//! A record queued without a HubSpot id (its write was sent, the answer
//! lost) is looked up by its unique key first; not found means it never
//! reached HubSpot. A row leaves the outbox when its erasure is done.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;

use super::{BATCH, LoadError, Loader, PhaseProgress, refused, stamp};
use crate::hubspot::provision::key_property;
use crate::hubspot::{ClientError, HubSpotClient, ObjectKind};
use crate::ledger::erasure::{ERASE_APPOINTMENT, ERASE_CONTACT, ERASE_DEAL};
use crate::ledger::{OutboxItem, OutboxKind};

/// One queued erasure: the row, the object kind, the unique key and the
/// HubSpot id once known.
struct Target {
    item: OutboxItem,
    kind: ObjectKind,
    key: String,
    id: Option<String>,
}

impl Target {
    fn from_item(item: OutboxItem) -> Option<Target> {
        let field = |name: &str| {
            item.payload
                .get(name)
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        let kind = match field("object")?.as_str() {
            ERASE_CONTACT => ObjectKind::Contacts,
            ERASE_DEAL => ObjectKind::Deals,
            ERASE_APPOINTMENT => ObjectKind::Appointments,
            _ => return None,
        };
        let key = field("key")?;
        let id = field("id");
        Some(Target {
            item,
            kind,
            key,
            id,
        })
    }
}

/// One pass over the due erasures, 100 at a time. Returns whether the load
/// was halted.
pub(super) async fn pass(
    loader: &mut Loader<'_>,
    progress: &mut PhaseProgress,
) -> Result<bool, LoadError> {
    let mut after = String::new();
    loop {
        if loader.halted()? {
            return Ok(true);
        }
        let items =
            loader
                .ledger
                .due_after(OutboxKind::Erasure, &stamp(Utc::now()), &after, BATCH)?;
        let Some(last) = items.last() else {
            return Ok(false);
        };
        after = last.record_key.clone();
        let before = loader.handled(OutboxKind::Erasure);
        let mut by_kind: BTreeMap<&'static str, Vec<Target>> = BTreeMap::new();
        for item in items {
            match Target::from_item(item.clone()) {
                Some(target) => by_kind
                    .entry(target.kind.path_segment())
                    .or_default()
                    .push(target),
                None => super::fail(
                    loader,
                    &item,
                    "Unlesbarer Löschauftrag / Unreadable erasure",
                )?,
            }
        }
        for (_, mut targets) in by_kind {
            if !resolve_ids(loader, &mut targets).await? {
                continue;
            }
            erase(loader, targets).await?;
        }
        progress.advance(loader, before);
    }
}

/// Looks up by unique key the targets queued without a HubSpot id. Returns
/// false when the read failed (the rows counted an attempt).
async fn resolve_ids(loader: &mut Loader<'_>, targets: &mut [Target]) -> Result<bool, LoadError> {
    let missing: Vec<String> = targets
        .iter()
        .filter(|t| t.id.is_none())
        .map(|t| t.key.clone())
        .collect();
    let Some(kind) = targets.first().map(|t| t.kind) else {
        return Ok(true);
    };
    if missing.is_empty() {
        return Ok(true);
    }
    match loader
        .client
        .batch_read_by_property(kind, key_property(kind), &missing, &[])
        .await
    {
        Ok(outcome) => {
            let found: HashMap<&str, &str> = outcome
                .results
                .iter()
                .filter_map(|r| missing.get(r.index).map(|k| (k.as_str(), r.id.as_str())))
                .collect();
            for target in targets.iter_mut().filter(|t| t.id.is_none()) {
                target.id = found.get(target.key.as_str()).map(|id| (*id).to_owned());
            }
            Ok(true)
        }
        Err(error) => {
            let rows: Vec<&OutboxItem> = targets.iter().map(|t| &t.item).collect();
            refused(loader, &rows, error)?;
            Ok(false)
        }
    }
}

/// Erases targets of one kind whose ids are resolved; a target without id
/// never reached HubSpot and is done.
async fn erase(loader: &mut Loader<'_>, targets: Vec<Target>) -> Result<(), LoadError> {
    let Some(kind) = targets.first().map(|t| t.kind) else {
        return Ok(());
    };
    let ids: Vec<String> = targets.iter().filter_map(|t| t.id.clone()).collect();
    let client = loader.client;
    let result = match kind {
        ObjectKind::Contacts => delete_contacts(client, &ids).await,
        ObjectKind::Deals => archive_deals(client, &ids).await,
        ObjectKind::Appointments => loader.client.batch_archive(kind, &ids).await,
    };
    match result {
        Ok(()) => {
            let done: Vec<(i64, String, Option<String>)> = targets
                .into_iter()
                .map(|t| (t.item.id, t.key, t.id))
                .collect();
            loader.ledger.erased(kind.path_segment(), &done)?;
            *loader
                .report
                .written
                .entry(OutboxKind::Erasure)
                .or_default() += done.len() as u64;
            Ok(())
        }
        Err(error) => {
            let rows: Vec<&OutboxItem> = targets.iter().map(|t| &t.item).collect();
            refused(loader, &rows, error)
        }
    }
}

/// GDPR delete, contact by contact (HubSpot has no batch form). The same
/// contact twice (a person forgotten at two locations) is deleted once.
async fn delete_contacts(client: &HubSpotClient, ids: &[String]) -> Result<(), ClientError> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    for id in &unique {
        client.gdpr_delete_contact(id).await?;
    }
    Ok(())
}

/// Takes the patient's name off the deals, then archives them. A deal already archived by an earlier attempt
/// whose answer was lost cannot be renamed any more; that is no reason to
/// stop.
async fn archive_deals(client: &HubSpotClient, ids: &[String]) -> Result<(), ClientError> {
    if ids.is_empty() {
        return Ok(());
    }
    let renames: Vec<(String, BTreeMap<String, String>)> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                BTreeMap::from([("dealname".to_owned(), format!("Gelöscht (DSGVO) {id}"))]),
            )
        })
        .collect();
    match client.batch_update_by_id(ObjectKind::Deals, &renames).await {
        Ok(_) | Err(ClientError::NotFound { .. } | ClientError::Validation { .. }) => {}
        Err(error) => return Err(error),
    }
    client.batch_archive(ObjectKind::Deals, ids).await
}
