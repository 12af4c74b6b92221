//! Decisions made outside a sync — the duplicate review's „kein Duplikat“,
//! duplicate marks and merges (queued in the outbox, sent by the load),
//! retry and discard of dead letters — applied under
//! the writer lock (DESIGN.md §3.6), so no decision lands in the middle of
//! a run.
//!
//! The desktop engine hands every decision to one [`DecisionQueue`]: a
//! single worker applies them in the order they were made. While a sync
//! (of this app or another process) holds the lock, the worker says so once
//! („Eine Synchronisation läuft – die Entscheidung wird danach
//! gespeichert“) and waits for the lock, then applies the decision; a
//! decision is never dropped because a sync was running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::ledger::lock::{LockError, WriterLock};
use crate::ledger::portal::{DealMark, MergeRequest};
use crate::ledger::{Ledger, LedgerError};

/// How often a waiting decision asks for the lock again.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// What the lock holder's record says a decision is doing.
const HOLDER: &str = "Entscheidung / decision";

/// Told once when a decision has to wait for a running sync.
pub const DEFERRED: &str = "Eine Synchronisation läuft – die Entscheidung wird danach gespeichert / \
     A sync is running – the decision will be saved after it";

/// A ledger-changing action taken by a person outside a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Remember that a duplicate group (by its key) is not a duplicate.
    Dismiss(String),
    /// Mark (or unmark) every case of one patient record as a duplicate.
    Mark {
        /// Location key.
        location: String,
        /// Ivoris patient Id.
        patient_id: String,
        /// Mark (`true`) or undo (`false`).
        duplicate: bool,
    },
    /// Make these dead letters pending again (none: all of them).
    RetryDead(Vec<i64>),
    /// Remove one dead letter for good.
    DiscardDead(i64),
    /// Merge one HubSpot contact into another (queued in the outbox).
    Merge(MergeRequest),
    /// Set a HubSpot deal without our key lost „Duplikat“, or back.
    MarkPortalDeal {
        /// What to write.
        mark: DealMark,
        /// The group it belongs to.
        group: String,
    },
    /// Make the records the last scan found out of step with HubSpot due
    /// again (`Ledger::resend_drift`).
    ResendDrift,
    /// Mark (or unmark) one case as a confirmed duplicate.
    MarkCase {
        /// Case key.
        case_key: String,
        /// Mark or undo.
        duplicate: bool,
        /// The group it belongs to.
        group: String,
    },
}

/// What a decision changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A group was dismissed.
    Dismissed,
    /// Cases were marked (`true`) or unmarked, and how many.
    Marked {
        /// Mark or undo, as asked.
        duplicate: bool,
        /// Cases that changed.
        cases: u64,
    },
    /// Dead letters made pending again.
    Retried(usize),
    /// Whether the dead letter was still there to remove.
    Discarded(bool),
    /// A merge was queued (`false`: it was queued already).
    MergeQueued(bool),
    /// A deal (by id or by its case) was marked (`true`) or unmarked.
    DealMarked(bool),
    /// Records out of step with HubSpot made due again.
    Resent(u64),
}

/// Why a decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// A sync holds the writer lock.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The ledger refused the change.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Decision {
    /// Applies the decision if the writer lock is free; the lock is held
    /// for the one transaction only.
    pub fn apply(&self, ledger_path: &Path, actor: &str) -> Result<Applied, DecisionError> {
        let _lock = WriterLock::acquire(ledger_path, HOLDER)?;
        let mut ledger = Ledger::open(ledger_path)?;
        Ok(self.apply_to(&mut ledger, actor)?)
    }

    /// Applies the decision to an open ledger whose lock the caller holds.
    fn apply_to(&self, ledger: &mut Ledger, actor: &str) -> Result<Applied, LedgerError> {
        Ok(match self {
            Decision::Dismiss(key) => {
                ledger.dismiss_duplicate(key, actor)?;
                Applied::Dismissed
            }
            Decision::Mark {
                location,
                patient_id,
                duplicate,
            } => Applied::Marked {
                duplicate: *duplicate,
                cases: ledger.mark_patient_duplicate(location, patient_id, *duplicate, actor)?,
            },
            Decision::RetryDead(ids) => Applied::Retried(ledger.retry_dead(ids)?),
            Decision::DiscardDead(id) => Applied::Discarded(ledger.discard_dead(*id)?),
            Decision::Merge(merge) => Applied::MergeQueued(ledger.queue_merge(merge, actor)?),
            Decision::ResendDrift => {
                let drift = ledger
                    .portal_scan()?
                    .map(|scan| scan.findings.drift)
                    .unwrap_or_default();
                Applied::Resent(ledger.resend_drift(&drift, actor)?)
            }
            Decision::MarkPortalDeal { mark, group } => {
                ledger.mark_portal_deal(mark, group, actor)?;
                Applied::DealMarked(mark.duplicate)
            }
            Decision::MarkCase {
                case_key,
                duplicate,
                group,
            } => {
                ledger.mark_case_duplicate(case_key, *duplicate, group, actor)?;
                Applied::DealMarked(*duplicate)
            }
        })
    }
}

/// Reports of the queue's worker.
pub type Report = Arc<dyn Fn(Result<Applied, String>) + Send + Sync>;

/// Applies decisions one after the other, each as soon as the writer lock
/// is free.
#[derive(Debug, Clone)]
pub struct DecisionQueue {
    /// Decisions and the ledger each is for, to the worker, in the order
    /// they were made.
    sender: tokio::sync::mpsc::UnboundedSender<(PathBuf, Decision)>,
}

impl DecisionQueue {
    /// Starts the worker on the current tokio runtime. `deferred` is told
    /// when a decision waits for a sync, `report` how each one ended
    /// (errors German / English). The worker ends when every queue handle
    /// is dropped and the decisions already made are applied.
    pub fn start(
        actor: String,
        deferred: Arc<dyn Fn(&str) + Send + Sync>,
        report: Report,
    ) -> (DecisionQueue, tokio::task::JoinHandle<()>) {
        let (sender, mut inbox) = tokio::sync::mpsc::unbounded_channel::<(PathBuf, Decision)>();
        let worker = tokio::spawn(async move {
            while let Some((ledger_path, decision)) = inbox.recv().await {
                let outcome = apply_when_free(&ledger_path, &actor, decision, &*deferred).await;
                report(outcome);
            }
        });
        (DecisionQueue { sender }, worker)
    }

    /// Queues a decision on the ledger at `ledger_path`; never blocks.
    pub fn push(&self, ledger_path: PathBuf, decision: Decision) {
        let _ = self.sender.send((ledger_path, decision));
    }
}

/// Applies `decision`, waiting for the writer lock as long as a sync holds
/// it (telling `deferred` once).
async fn apply_when_free(
    ledger_path: &Path,
    actor: &str,
    decision: Decision,
    deferred: &(dyn Fn(&str) + Send + Sync),
) -> Result<Applied, String> {
    let mut told = false;
    loop {
        let attempt = {
            let (path, actor, decision) =
                (ledger_path.to_owned(), actor.to_owned(), decision.clone());
            tokio::task::spawn_blocking(move || decision.apply(&path, &actor)).await
        };
        match attempt {
            Ok(Err(DecisionError::Locked(LockError::Held { .. }))) => {
                if !told {
                    deferred(DEFERRED);
                    told = true;
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
            Ok(Ok(applied)) => return Ok(applied),
            Ok(Err(error)) => return Err(error.to_string()),
            Err(error) => return Err(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_refused_while_the_lock_is_held_and_applied_after() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = dir.path().join("ledger.sqlite");
        Ledger::open(&ledger).expect("ledger");
        let decision = Decision::Dismiss("a:1 a:2".into());
        let sync = WriterLock::acquire(&ledger, "sync").expect("lock");
        let refused = decision.apply(&ledger, "tester").expect_err("held");
        assert!(matches!(refused, DecisionError::Locked(_)), "{refused:?}");
        assert!(
            Ledger::open(&ledger)
                .expect("ledger")
                .dismissed_duplicates()
                .expect("read")
                .is_empty()
        );
        drop(sync);
        assert_eq!(
            decision.apply(&ledger, "tester").expect("free"),
            Applied::Dismissed
        );
        assert!(
            Ledger::open(&ledger)
                .expect("ledger")
                .dismissed_duplicates()
                .expect("read")
                .contains("a:1 a:2")
        );
    }

    #[tokio::test]
    async fn the_queue_waits_for_the_lock_tells_once_and_keeps_the_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = dir.path().join("ledger.sqlite");
        Ledger::open(&ledger).expect("ledger");
        let told = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sync = WriterLock::acquire(&ledger, "sync").expect("lock");
        let (queue, worker) = DecisionQueue::start(
            "tester".into(),
            {
                let told = told.clone();
                Arc::new(move |text: &str| told.lock().expect("told").push(text.to_owned()))
            },
            {
                let reports = reports.clone();
                Arc::new(move |r| reports.lock().expect("reports").push(r))
            },
        );
        queue.push(ledger.clone(), Decision::Dismiss("g1".into()));
        queue.push(ledger.clone(), Decision::Dismiss("g2".into()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            reports.lock().expect("reports").is_empty(),
            "waits for the lock"
        );
        assert_eq!(*told.lock().expect("told"), vec![DEFERRED.to_owned()]);
        drop(sync);
        drop(queue);
        worker.await.expect("worker ends");
        assert_eq!(
            *reports.lock().expect("reports"),
            vec![Ok(Applied::Dismissed), Ok(Applied::Dismissed)]
        );
        let audit = Ledger::open(&ledger)
            .expect("ledger")
            .dismissed_duplicates()
            .expect("read");
        assert!(audit.contains("g1") && audit.contains("g2"));
    }
}
