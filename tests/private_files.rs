//! Private files on Unix: the data directory is `0700`, the ledger, its WAL
//! and shared-memory files, the writer lock and its holder file and the log
//! files are `0600` — when the real binary creates them, and again after
//! someone widened them (`chmod 644`), with one log line per fix.

#![cfg(unix)]

mod engine_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use engine_support::{bed, options, sync_command};
use ivoris_hubspot_sync::ledger::Ledger;
use ivoris_hubspot_sync::ledger::lock::WriterLock;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Every file in the logs directory.
fn log_files(logs: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(logs)
        .expect("logs directory")
        .map(|entry| entry.expect("entry").path())
        .collect()
}

/// Everything the log files say.
fn logged(logs: &Path) -> String {
    log_files(logs)
        .iter()
        .map(|file| std::fs::read_to_string(file).expect("log file"))
        .collect()
}

fn sync_ok(bed: &engine_support::Bed) {
    let out = sync_command(bed).output().expect("sync runs");
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_ledger_lock_and_logs_are_private_and_widened_ones_are_narrowed_once() {
    let bed = bed(options(61)).await;
    let data = bed.dir.path().join("data");
    let logs = data.join("logs");
    let ledger = bed.env.ledger_path.clone();
    let lock = with_suffix(&ledger, ".lock");

    sync_ok(&bed);
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&logs), 0o700, "logs directory");
    assert_eq!(mode(&ledger), 0o600, "ledger");
    assert_eq!(mode(&lock), 0o600, "lock file");
    let files = log_files(&logs);
    assert!(!files.is_empty(), "a log file was written");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert!(
        !logged(&logs).contains("permissions narrowed"),
        "nothing to narrow on a fresh start"
    );

    // Someone (an older version, a copy, a restore) widened everything.
    chmod(&data, 0o755);
    chmod(&logs, 0o755);
    for path in [&ledger, &lock].into_iter().chain(&files) {
        chmod(path, 0o644);
    }
    sync_ok(&bed);
    assert_eq!(mode(&data), 0o700, "data directory narrowed");
    assert_eq!(mode(&logs), 0o700, "logs directory narrowed");
    assert_eq!(mode(&ledger), 0o600, "ledger narrowed");
    assert_eq!(mode(&lock), 0o600, "lock file narrowed");
    for file in log_files(&logs) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let text = logged(&logs);
    let fixes = text.matches("permissions narrowed").count();
    for name in [
        "file=data",
        "file=logs",
        "file=ledger.sqlite ",
        "file=ledger.sqlite.lock",
    ] {
        assert!(text.contains(name), "{name} not logged:\n{text}");
    }
    assert!(
        !text.contains(&bed.dir.path().display().to_string()),
        "the log names files, not paths:\n{text}"
    );

    // Once: the next run finds nothing to fix.
    sync_ok(&bed);
    assert_eq!(logged(&logs).matches("permissions narrowed").count(), fixes);
}

#[test]
fn wal_shared_memory_and_the_lock_holder_file_are_private_and_narrowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("praxis").join("ledger.sqlite");
    let ledger = Ledger::open(&path).expect("ledger");
    let (wal, shm) = (with_suffix(&path, "-wal"), with_suffix(&path, "-shm"));
    assert_eq!(
        mode(path.parent().expect("dir")),
        0o700,
        "created directory"
    );
    for file in [&path, &wal, &shm] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // Widened while the first connection keeps them: the next open narrows.
    for file in [&path, &wal, &shm] {
        chmod(file, 0o644);
    }
    let second = Ledger::open(&path).expect("second connection");
    for file in [&path, &wal, &shm] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop((ledger, second));

    let info = with_suffix(&path, ".lock.info");
    let held = WriterLock::acquire(&path, "sync").expect("lock");
    assert_eq!(mode(&info), 0o600, "holder file");
    drop(held);
    std::fs::write(&info, "{}").expect("stale holder file");
    chmod(&info, 0o644);
    let _held = WriterLock::acquire(&path, "sync").expect("lock");
    assert_eq!(mode(&info), 0o600, "holder file narrowed");
}
