//! The merge phase of the load: contacts the duplicate review decided to
//! merge (DESIGN.md §6), and legacy deals the switch-over merges into the
//! deal their case adopted (`sync.legacy_duplicates = "merge"`), sent
//! before every other kind so the writes after them land on the survivor.
//!
//! A merge cannot be undone and must never be sent twice — also not after
//! HubSpot carried it out and the answer was lost. The outbox row is the
//! intent, stored before anything is sent; every attempt first reads the
//! contact to be merged: when HubSpot answers with another record (a
//! merged id resolves to its survivor), the merge happened already and is
//! only recorded. Only a contact that still stands on its own is merged.

use chrono::Utc;

use super::{LoadError, Loader, fail, stamp, stops_run};
use crate::hubspot::provision::key_property;
use crate::hubspot::{ClientError, HubSpotClient, ObjectKind};
use crate::ledger::portal::MergeRequest;
use crate::ledger::{OutboxItem, OutboxKind};

/// Rows read per step.
const STEP: usize = 100;

/// What a merge came to: the survivor's id, its own patient key (if it
/// has one) and whether the merge had happened before this attempt.
struct Merged {
    survivor: String,
    main_key: Option<String>,
    already: bool,
}

/// Sends every due merge, one call each (after one or two reads).
/// Returns whether the load was halted.
pub(super) async fn pass(loader: &mut Loader<'_>) -> Result<bool, LoadError> {
    let mut after = String::new();
    loop {
        if loader.halted()? {
            return Ok(true);
        }
        let rows = loader
            .ledger
            .due_after(OutboxKind::Merge, &stamp(Utc::now()), &after, STEP)?;
        let Some(last) = rows.last() else {
            return Ok(false);
        };
        after = last.record_key.clone();
        for row in rows {
            let Some((object, merge)) = request(&row) else {
                fail(loader, &row, "Ungültiger Auftrag / Invalid request")?;
                continue;
            };
            match execute(loader.client, object, &merge).await {
                Ok(merged) if object == ObjectKind::Deals => {
                    loader.ledger.confirm_deal_merge(
                        row.id,
                        &merge,
                        &merged.survivor,
                        merged.already,
                    )?;
                    *loader.report.written.entry(OutboxKind::Merge).or_default() += 1;
                }
                Ok(merged) => {
                    loader.ledger.confirm_merge(
                        row.id,
                        &merge,
                        &merged.survivor,
                        merged.main_key.as_deref(),
                        merged.already,
                    )?;
                    *loader.report.written.entry(OutboxKind::Merge).or_default() += 1;
                }
                Err(error) if stops_run(&error) => return Err(LoadError::HubSpot(error)),
                Err(error) => {
                    let reason = format!("{} / {}", error.explain_de(), error.explain_en());
                    fail(loader, &row, &reason)?;
                }
            }
        }
    }
}

/// The merge an outbox row asks for: contacts (the duplicate review's), or
/// deals (`"object": "deals"`, a legacy deal into the deal its case
/// adopted, `engine::adopt`).
fn request(row: &OutboxItem) -> Option<(ObjectKind, MergeRequest)> {
    let text = |name: &str| row.payload.get(name)?.as_str().map(str::to_owned);
    let object = match text("object").as_deref() {
        None | Some("contacts") => ObjectKind::Contacts,
        Some("deals") => ObjectKind::Deals,
        Some(_) => return None,
    };
    Some((
        object,
        MergeRequest {
            primary: text("primary")?,
            secondary: text("secondary")?,
            group: text("group").unwrap_or_else(|| row.record_key.clone()),
        },
    ))
}

/// Reads the record to be merged; merges it unless that already happened.
async fn execute(
    client: &HubSpotClient,
    object: ObjectKind,
    merge: &MergeRequest,
) -> Result<Merged, ClientError> {
    let key = key_property(object);
    let wanted = [key.to_owned()];
    let own_key = |record: &crate::hubspot::wire::Record| {
        record
            .properties
            .get(key)
            .filter(|k| !k.trim().is_empty())
            .cloned()
    };
    let secondary = client.get(object, &merge.secondary, &wanted).await?;
    if secondary.id != merge.secondary {
        // HubSpot resolves a merged id to its survivor: done before.
        return Ok(Merged {
            main_key: own_key(&secondary),
            survivor: secondary.id,
            already: true,
        });
    }
    let primary = client.get(object, &merge.primary, &wanted).await?;
    let merged = client.merge(object, &primary.id, &merge.secondary).await?;
    Ok(Merged {
        main_key: own_key(&primary).or_else(|| own_key(&merged)),
        survivor: merged.id,
        already: false,
    })
}
