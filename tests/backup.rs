//! `backup FILE` and `restore FILE` through the real binary: a backup taken
//! while a sync writes is consistent; restoring is refused (exit code 4)
//! while the sync holds the ledger; the restored ledger syncs with zero
//! HubSpot writes. A file that is no ledger, or one of a newer schema, is
//! refused.

mod engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::{assert_same_state, bed, bin_command, keyed_state, options, run, wait_until};
use ivoris_hubspot_sync::ledger::backup::{self, BackupError};
use ivoris_hubspot_sync::ledger::schema::LATEST_VERSION;
use ivoris_hubspot_sync::ledger::{Ledger, RunOutcome};
use ivoris_hubspot_sync::sandbox::ivoris::FaultUpdate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_a_sync_restores_to_a_ledger_that_syncs_with_zero_writes() {
    let bed = bed(options(71)).await;
    let first = run(&bed.env).await;
    assert!(first.counts.written > 0);
    let expected = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;

    // Every Ivoris answer takes a while: the next sync reads (and writes its
    // cursors to the ledger) for several seconds.
    bed.sandbox.ivoris.update_faults(&FaultUpdate {
        latency_ms: Some(150),
        ..FaultUpdate::default()
    });
    let info = bed.dir.path().join("ledger.sqlite.lock.info");
    let mut syncing = bin_command(&bed, "sync")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync starts");
    let pid = syncing.id().to_string();
    assert!(
        wait_until(Duration::from_secs(60), || {
            std::fs::read_to_string(&info).is_ok_and(|t| t.contains(&pid))
        })
        .await,
        "the sync took the lock"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let file = bed
        .dir
        .path()
        .join("sicherungen")
        .join("ledger-backup.sqlite");
    let saved = bin_command(&bed, "backup")
        .arg(&file)
        .output()
        .expect("backup runs");
    assert!(saved.status.success(), "{saved:?}");
    assert!(String::from_utf8_lossy(&saved.stdout).contains("Gesichert"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is private");
    }
    assert!(
        !bed.dir
            .path()
            .join("sicherungen")
            .join("ledger-backup.sqlite-wal")
            .exists(),
        "one self-contained file"
    );

    let refused = bin_command(&bed, "restore")
        .arg(&file)
        .output()
        .expect("restore runs");
    assert!(
        syncing.try_wait().expect("status").is_none(),
        "the sync was still running during backup and refused restore"
    );
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("Eine andere Synchronisation") && message.contains(&pid),
        "{message}"
    );

    bed.sandbox.ivoris.update_faults(&FaultUpdate {
        latency_ms: Some(0),
        ..FaultUpdate::default()
    });
    let status = tokio::task::spawn_blocking(move || syncing.wait().expect("sync ends"))
        .await
        .expect("joined");
    assert_eq!(status.code(), Some(0));

    let restored = bin_command(&bed, "restore")
        .arg(&file)
        .output()
        .expect("restore runs");
    assert!(restored.status.success(), "{restored:?}");
    assert!(
        bed.dir.path().join("ledger.sqlite.before-restore").exists(),
        "the replaced ledger is kept"
    );

    let after = run(&bed.env).await;
    assert_eq!(after.outcome, RunOutcome::Success, "{:?}", after.message);
    assert_eq!(after.counts.written, 0, "{:?}", after.load);
    let state = keyed_state(&bed.sandbox.hubspot, &bed.sandbox.hubspot_url).await;
    assert_same_state(&state, &expected);
}

#[test]
fn restore_refuses_what_is_no_ledger_or_of_a_newer_schema_and_leaves_the_ledger_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = dir.path().join("ledger.sqlite");
    Ledger::open(&ledger).expect("ledger");

    let text = dir.path().join("notiz.txt");
    std::fs::write(&text, "keine Datenbank").expect("file");
    let error = backup::restore(&ledger, &text).expect_err("not a ledger");
    assert!(matches!(error, BackupError::NotALedger { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("keine lesbare Ledger-Sicherung") && message.contains("not a readable"),
        "{message}"
    );

    let empty = dir.path().join("leer.sqlite");
    rusqlite::Connection::open(&empty)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x);"))
        .expect("some database");
    let error = backup::restore(&ledger, &empty).expect_err("no ledger tables");
    assert!(matches!(error, BackupError::NotALedger { .. }), "{error:?}");

    let newer = dir.path().join("neuer.sqlite");
    backup::backup(&ledger, &newer).expect("backup");
    rusqlite::Connection::open(&newer)
        .and_then(|c| c.pragma_update(None, "user_version", LATEST_VERSION as i64 + 1))
        .expect("bumped");
    let error = backup::restore(&ledger, &newer).expect_err("too new");
    assert!(
        matches!(error, BackupError::TooNew { found, known } if found == LATEST_VERSION + 1 && known == LATEST_VERSION),
        "{error:?}"
    );
    assert!(error.to_string().contains("neueren Programmversion"));

    assert_eq!(
        Ledger::open(&ledger)
            .expect("ledger")
            .schema_version()
            .expect("version"),
        LATEST_VERSION,
        "the ledger was left alone"
    );
    assert!(!dir.path().join("ledger.sqlite.before-restore").exists());
}
