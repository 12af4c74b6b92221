//! The second part of the duplicate review (DESIGN.md §6): what the last
//! scan of HubSpot found (`engine::scan`, cached in the ledger), without
//! the groups staff dismissed, with the marks and merges already decided;
//! the „Protokoll der Entscheidungen“; and sending queued merges at once
//! under the writer lock (the sync's load sends whatever is left).

use std::collections::{HashMap, HashSet};

use crate::duplicates::portal::{Members, PortalGroup, Rebooked};
use crate::ledger::lock::{LockError, WriterLock};
use crate::ledger::portal::MarkedDeal;
use crate::ledger::{AuditEntry, Ledger, LedgerError};

use super::extract::CancelFlag;
use super::load::load_merges;
use super::run::{SyncEnvironment, hubspot_client};

/// Entries the „Protokoll der Entscheidungen“ shows.
pub const LOG_ENTRIES: usize = 500;

/// What the last scan read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanInfo {
    /// When it finished (UTC, RFC 3339).
    pub finished_at: String,
    /// Contacts listed.
    pub contacts: u64,
    /// Deals listed.
    pub deals: u64,
    /// List calls made.
    pub calls: u64,
}

/// The review of HubSpot's duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalReview {
    /// The last scan; `None` before the first.
    pub scan: Option<ScanInfo>,
    /// Open groups (not dismissed), by kind.
    pub groups: Vec<PortalGroup>,
    /// The „Verloren-Liste“.
    pub rebooked: Vec<Rebooked>,
    /// Deals without our key marked in the review, by HubSpot id.
    pub marked_deals: HashMap<String, MarkedDeal>,
    /// Cases marked duplicate.
    pub marked_cases: HashSet<String>,
    /// Contacts whose merge waits to be sent.
    pub queued_merges: HashSet<String>,
    /// Records out of step with HubSpot (deleted or re-keyed by hand).
    pub drift: Vec<crate::duplicates::drift::Drift>,
}

/// Reads the review from the ledger: the cached findings without the
/// dismissed groups and without the contacts merged since.
pub fn review(ledger: &Ledger) -> Result<PortalReview, LedgerError> {
    let Some(scan) = ledger.portal_scan()? else {
        return Ok(PortalReview::default());
    };
    let dismissed = ledger.dismissed_duplicates()?;
    // Contacts merged since the scan are gone from HubSpot.
    let merged = ledger.merged_contacts()?;
    let mut groups: Vec<PortalGroup> = scan
        .findings
        .groups
        .into_iter()
        .filter(|g| !dismissed.contains(&g.key))
        .collect();
    for group in &mut groups {
        if let Members::Contacts(contacts) = &mut group.members {
            contacts.retain(|c| !merged.contains(&c.id));
        }
    }
    groups.retain(|g| g.members.ids().len() > 1);
    Ok(PortalReview {
        scan: Some(ScanInfo {
            finished_at: scan.finished_at,
            contacts: scan.contacts,
            deals: scan.deals,
            calls: scan.calls,
        }),
        groups,
        rebooked: scan.findings.rebooked,
        drift: scan.findings.drift,
        marked_deals: ledger.marked_deals()?,
        marked_cases: ledger.marked_cases()?,
        queued_merges: ledger.queued_merges()?,
    })
}

/// The „Protokoll der Entscheidungen“, newest first.
pub fn decision_log(ledger: &Ledger) -> Result<Vec<AuditEntry>, LedgerError> {
    ledger.decision_log(LOG_ENTRIES)
}

/// What sending the queued merges came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergesSent {
    /// Merges carried out (or found done) and still waiting (failed).
    Done {
        /// Confirmed.
        merged: u64,
        /// Failed this time (retried by the next sync).
        failed: u64,
    },
    /// A sync holds the ledger; its load sends them.
    SyncRunning,
}

/// Sends the merges waiting in the outbox now, under the writer lock.
pub async fn send_merges(env: &SyncEnvironment) -> Result<MergesSent, String> {
    let _lock = match WriterLock::acquire(&env.ledger_path, "Zusammenführung / merge") {
        Ok(lock) => lock,
        Err(LockError::Held { .. }) => return Ok(MergesSent::SyncRunning),
        Err(error) => return Err(error.to_string()),
    };
    let client = hubspot_client(env)
        .map_err(|error| format!("{} / {}", error.explain_de(), error.explain_en()))?;
    let mut ledger = Ledger::open(&env.ledger_path).map_err(|e| e.to_string())?;
    let report = load_merges(&mut ledger, &client, &CancelFlag::new())
        .await
        .map_err(|e| e.to_string())?;
    Ok(MergesSent::Done {
        merged: report
            .written
            .get(&crate::ledger::OutboxKind::Merge)
            .copied()
            .unwrap_or(0),
        failed: report.failed,
    })
}
