//! The real binary in a temp dir: version, help, and the `sandbox` command
//! serving both simulated APIs at the addresses it writes into its settings.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ivoris-hubspot-sync");

fn run(args: &[&str]) -> std::process::Output {
    let data = tempfile::tempdir().expect("temp dir");
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .output()
        .expect("binary runs")
}

#[test]
fn version_names_the_package_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn help_lists_the_sandbox_and_the_app_options() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["sandbox", "--screenshot", "--panel"] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

/// Without a subcommand the window opens; without a display that fails at
/// once with a readable message instead of hanging.
#[cfg(target_os = "linux")]
#[test]
fn without_arguments_and_without_a_display_the_app_says_it_cannot_open_a_window() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_CONFIG_HOME", data.path())
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Fenster kann nicht geöffnet werden"),
        "{text}"
    );
}

#[test]
fn an_unknown_panel_is_a_usage_error() {
    let out = run(&["--panel", "nirgendwo"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unknown_size_is_a_usage_error() {
    let out = run(&["sandbox", "--size", "gigantic"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Kills the sandbox child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn sandbox_command_serves_both_apis_at_the_written_addresses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    let child = Command::new(BIN)
        .args([
            "sandbox",
            "--size",
            "small",
            "--port",
            "0",
            "--write-config",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox starts");
    let _running = Running(child);

    let text = wait_for_file(&config);
    let settings: toml::Table = text.parse().expect("written settings are TOML");
    assert!(
        !text.contains("sandbox-password") && !text.contains("sandbox-hubspot-token"),
        "secrets in {text}"
    );

    let hubspot = settings["hubspot"]["base_url"].as_str().expect("base_url");
    let client = reqwest::Client::new();
    let pipelines = client
        .get(format!("{hubspot}/crm/v3/pipelines/deals"))
        .bearer_auth("sandbox-hubspot-token")
        .send()
        .await
        .expect("HubSpot answers");
    assert_eq!(pipelines.status(), 200);

    let locations = settings["location"].as_array().expect("locations");
    assert!(locations.len() >= 3, "{} locations", locations.len());
    for location in locations {
        let url = location["ivoris_url"].as_str().expect("ivoris_url");
        let ping = client
            .get(format!("{url}/About/v1/Ping"))
            .basic_auth("sync", Some("sandbox-password"))
            .query(&[
                ("app", "ivoris-hubspot-sync"),
                ("app_version", "1.0"),
                ("api_key", "sandbox-api-key"),
            ])
            .send()
            .await
            .expect("Ivoris answers");
        assert_eq!(ping.status(), 200, "{url}");
    }
}

#[test]
fn status_without_a_ledger_says_no_sync_yet() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .arg("status")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Noch keine Synchronisation") && text.contains("No sync yet"),
        "{text}"
    );
}

#[test]
fn status_with_a_missing_explicit_settings_file_fails_clearly() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--config", "/nonexistent/settings.toml", "status"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("nicht gefunden") && text.contains("not found"),
        "{text}"
    );
}

#[test]
fn status_shows_queue_dead_letters_and_runs_of_an_existing_ledger() {
    use ivoris_hubspot_sync::ledger::{Ledger, RunCounts, RunOutcome};
    let data = tempfile::tempdir().expect("temp dir");
    let mut ledger = Ledger::open(&data.path().join("ledger.sqlite")).expect("ledger");
    let run = ledger
        .start_run("cli", &["magdeburg".into()], false)
        .expect("run");
    let counts = RunCounts {
        read: 42,
        written: 7,
        ..RunCounts::default()
    };
    ledger
        .finish_run(run, RunOutcome::Success, None, &counts, 900)
        .expect("finish");
    drop(ledger);

    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .arg("status")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gelesen 42 geschrieben 7"), "{text}");
    assert!(
        text.contains("success") && text.contains("magdeburg"),
        "{text}"
    );
}

#[test]
fn retry_makes_dead_letters_pending_again_and_is_audited() {
    use ivoris_hubspot_sync::ledger::outbox::enqueue;
    use ivoris_hubspot_sync::ledger::{Ledger, OutboxKind};
    let data = tempfile::tempdir().expect("temp dir");
    let path = data.path().join("ledger.sqlite");
    let mut ledger = Ledger::open(&path).expect("ledger");
    ledger
        .transaction(|tx| {
            enqueue(
                tx,
                OutboxKind::Deal,
                "magdeburg:a1",
                None,
                &serde_json::json!({"amount": "1.00"}),
                "h1",
            )
        })
        .expect("queued");
    let row = ledger.due(OutboxKind::Deal, "9999", 10).expect("due")[0].id;
    for _ in 0..5 {
        ledger.fail(row, "HubSpot 400", "2000", 5).expect("fail");
    }
    assert_eq!(ledger.outbox_counts().expect("counts").dead(), 1);
    drop(ledger);

    let status = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .arg("status")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("magdeburg:a1") && text.contains("HubSpot 400"),
        "{text}"
    );

    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .arg("retry")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ledger = Ledger::open(&path).expect("ledger");
    let counts = ledger.outbox_counts().expect("counts");
    assert_eq!((counts.pending(), counts.dead()), (1, 0));
    assert_eq!(
        ledger.audit_log(None, 10).expect("audit")[0].entry.action,
        "outbox.retry"
    );
}
