//! One writer per ledger (DESIGN.md §3.6).
//!
//! A sync takes an exclusive OS file lock on `<ledger>.lock` for as long as
//! it runs; the operating system releases it when the process ends, however
//! it ends (also on a crash or `kill -9`), so a stale lock cannot block the
//! next run. Who holds the lock is written beside it (`<ledger>.lock.info`,
//! a separate file because Windows forbids reading a locked file), so a
//! refused second run can say which process has been writing since when.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who holds the writer lock, as recorded by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id, to find the process in the task manager.
    pub pid: u32,
    /// OS user that started it.
    pub user: String,
    /// What it is doing (`sync`, `GUI`, …), in the user's words.
    pub command: String,
    /// When it took the lock.
    pub since: DateTime<Utc>,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", held_message(.holder.as_ref()))]
    Held { holder: Option<LockHolder> },
    #[error(
        "Sperrdatei {path} kann nicht geöffnet werden / Cannot open the lock file {path}: {source}",
        path = .path.display()
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn held_message(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => {
            let since = h
                .since
                .with_timezone(&chrono_tz::Europe::Berlin)
                .format("%d.%m.%Y %H:%M");
            format!(
                "Eine andere Synchronisation schreibt bereits in diesen Ledger ({}, Prozess {}, Benutzer {}, seit {since}). \
                 Bitte warten, bis sie fertig ist. / Another sync is already writing to this ledger ({}, process {}, user {}, since {since}). \
                 Wait until it has finished.",
                h.command, h.pid, h.user, h.command, h.pid, h.user
            )
        }
        None => "Eine andere Synchronisation schreibt bereits in diesen Ledger. Bitte warten, bis sie fertig ist. / \
                 Another sync is already writing to this ledger. Wait until it has finished."
            .to_owned(),
    }
}

/// The held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock {
    /// The locked file; the OS lock lives as long as this handle.
    _file: File,
    /// Holder information, removed on release so it never describes a
    /// process that is gone.
    info_path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of the ledger at `ledger`, or says who has it.
    pub fn acquire(ledger: &Path, command: &str) -> Result<WriterLock, LockError> {
        let path = sibling(ledger, "lock");
        let info_path = sibling(ledger, "lock.info");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::files::create_dir(parent).map_err(io)?;
        }
        // Private like the ledger: the holder's user name is in the info file.
        let file = crate::files::open_private(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    holder: read_holder(&info_path),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let holder = LockHolder {
            pid: std::process::id(),
            user: crate::ledger::audit::os_user(),
            command: command.to_owned(),
            since: Utc::now(),
        };
        // Best effort: the lock itself is what protects the ledger.
        if let Ok(text) = serde_json::to_string(&holder) {
            let _ = crate::files::write_private(&info_path, text.as_bytes());
        }
        Ok(WriterLock {
            _file: file,
            info_path,
        })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info_path);
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn sibling(ledger: &Path, suffix: &str) -> PathBuf {
    let mut name = ledger
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "ledger".into());
    name.push(".");
    name.push(suffix);
    ledger.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_details() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = dir.path().join("ledger.sqlite");
        let first = WriterLock::acquire(&ledger, "sync").expect("first lock");
        let error = WriterLock::acquire(&ledger, "GUI").expect_err("second must be refused");
        let text = error.to_string();
        assert!(
            matches!(&error, LockError::Held { holder: Some(h) } if h.pid == std::process::id() && h.command == "sync")
        );
        assert!(
            text.contains("Eine andere Synchronisation") && text.contains("Another sync"),
            "{text}"
        );
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(first);
        WriterLock::acquire(&ledger, "GUI").expect("free again after release");
    }

    #[test]
    fn holder_details_disappear_with_the_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = dir.path().join("ledger.sqlite");
        let lock = WriterLock::acquire(&ledger, "sync").expect("lock");
        assert!(read_holder(&sibling(&ledger, "lock.info")).is_some());
        drop(lock);
        assert!(read_holder(&sibling(&ledger, "lock.info")).is_none());
    }
}
