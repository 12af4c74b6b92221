//! The settings panel driven through its accessibility tree: an invalid
//! Ivoris URL is refused with a visible message and nothing is written; a
//! valid form is saved to the (temporary) settings file with the secrets
//! only in the (memory) credential store; a saved token is never shown
//! again; „Verbindung testen“ reports what worked.

mod engine_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use engine_support::{Bed, bed, options};
use ivoris_hubspot_sync::engine::handle::{EngineSetup, SecretState, SettingsHome};
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::sandbox::credentials;
use ivoris_hubspot_sync::secrets::{MemorySecretStore, SecretKey, SecretStore};
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

/// A token that must never appear on screen once saved.
const TOKEN: &str = "pat-eu1-test-0000-geheim";

struct Setup {
    _runtime: tokio::runtime::Runtime,
    bed: Bed,
    store: Arc<MemorySecretStore>,
    settings_path: PathBuf,
    harness: Harness<'static, SyncApp>,
}

/// The app on the settings panel with an empty settings file in a temp
/// directory and an empty memory credential store.
fn app(seed: u64) -> Setup {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(seed)));
    let store = Arc::new(MemorySecretStore::new());
    let dirs = DataDirs::under(bed.dir.path());
    let settings_path = dirs.settings_file();
    let mut file = Settings::default();
    // Saved settings point at the sandbox, never at the real HubSpot.
    file.hubspot.base_url = bed.sandbox.hubspot_url.clone();
    file.ledger = Some(bed.dir.path().join("saved-ledger.sqlite"));
    let home = SettingsHome {
        path: settings_path.clone(),
        dirs,
        store: store.clone(),
        env: HashMap::new(),
    };
    let env = bed.env.clone();
    let harness = Harness::builder()
        .with_size([1280.0, 1000.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    home: Some(home),
                    settings_file: Ok(file),
                    panel: Some(Panel::Settings),
                    mapping_table: None,
                    screenshot: None,
                    live_log: None,
                },
            )
            .expect("app starts")
        });
    Setup {
        _runtime: runtime,
        bed,
        store,
        settings_path,
        harness,
    }
}

fn step_until(harness: &mut Harness<'_, SyncApp>, what: &str, done: impl Fn(&SyncApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

/// Replaces the text of the field with this accessible name.
fn fill(harness: &mut Harness<'_, SyncApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(1);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

/// Nodes whose label or value shows the token.
fn token_shown(harness: &Harness<'_, SyncApp>) -> usize {
    harness
        .query_all(By::new().predicate(|node| {
            node.value().is_some_and(|v| v.contains(TOKEN))
                || node.label().is_some_and(|l| l.contains(TOKEN))
        }))
        .count()
}

#[test]
fn an_invalid_ivoris_url_is_refused_visibly_and_a_valid_form_is_saved_with_secrets_in_the_store() {
    let Setup {
        _runtime,
        bed,
        store,
        settings_path,
        mut harness,
    } = app(51);
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());
    let location = bed.sandbox.locations[0].clone();

    harness.get_by_label("Standort hinzufügen").click();
    harness.run_steps(2);
    fill(&mut harness, "Schlüssel", &location.key);
    fill(&mut harness, "Name", &location.name);
    fill(&mut harness, "Ivoris-Adresse", "relay/ohne-schema");
    fill(&mut harness, "Ivoris-Benutzer", credentials::IVORIS_USER);
    fill(&mut harness, "Zugriffstoken", TOKEN);
    fill(
        &mut harness,
        "Ivoris-Passwort",
        credentials::IVORIS_PASSWORD,
    );
    fill(
        &mut harness,
        "Ivoris-API-Schlüssel",
        credentials::IVORIS_API_KEY,
    );
    assert_eq!(token_shown(&harness), 0, "a typed token is masked");

    harness.get_by_label("Speichern").click();
    harness.run_steps(3);
    assert!(
        harness
            .query_by_label("„relay/ohne-schema“ ist keine http(s)-Adresse")
            .is_some(),
        "the refusal is shown next to the field"
    );
    assert!(
        harness
            .query_by_label("Nicht gespeichert: bitte die markierten Felder korrigieren.")
            .is_some()
    );
    assert!(
        !harness.state().model.saving,
        "nothing was sent to be saved"
    );
    assert!(!settings_path.exists(), "nothing was written");
    assert_eq!(
        store.get(&SecretKey::HubSpotToken).expect("store"),
        None,
        "no secret was stored"
    );

    // Plain HTTP to a practice server is refused like in the file: the
    // password would travel in clear text.
    fill(
        &mut harness,
        "Ivoris-Adresse",
        "http://192.0.2.10/relay/x/webservice/api",
    );
    harness.get_by_label("Speichern").click();
    harness.run_steps(3);
    let unencrypted = harness
        .query_all(By::new().predicate(|node| {
            [node.label(), node.value()]
                .into_iter()
                .flatten()
                .any(|text| {
                    text.contains("ist unverschlüsselt") && text.contains("allow_insecure_http")
                })
        }))
        .count();
    assert!(
        unencrypted > 0,
        "the http refusal is shown next to the field"
    );
    assert!(
        !harness.state().model.saving,
        "nothing was sent to be saved"
    );
    assert!(!settings_path.exists(), "nothing was written");

    fill(&mut harness, "Ivoris-Adresse", &location.ivoris_url);
    assert!(
        harness
            .query_by_label("„relay/ohne-schema“ ist keine http(s)-Adresse")
            .is_none(),
        "the message goes once the field is right"
    );
    harness.get_by_label("Speichern").click();
    step_until(&mut harness, "the saved settings", |app| {
        !app.model.saving
            && app
                .model
                .info
                .as_ref()
                .is_some_and(|info| info.settings.locations.len() == 1 && !info.demo)
    });

    let text = std::fs::read_to_string(&settings_path).expect("settings file written");
    let saved = Settings::parse(&text, "test").expect("the file reads back");
    assert_eq!(saved.locations[0].key, location.key);
    assert_eq!(saved.locations[0].ivoris_url, location.ivoris_url);
    assert_eq!(saved.locations[0].ivoris_user, credentials::IVORIS_USER);
    for secret in [
        TOKEN,
        credentials::IVORIS_PASSWORD,
        credentials::IVORIS_API_KEY,
    ] {
        assert!(!text.contains(secret), "no secret in the file:\n{text}");
    }
    assert_eq!(
        store
            .get(&SecretKey::HubSpotToken)
            .expect("store")
            .map(|s| s.expose().to_owned()),
        Some(TOKEN.to_owned())
    );
    assert_eq!(
        store
            .get(&SecretKey::IvorisPassword(location.key.clone()))
            .expect("store")
            .map(|s| s.expose().to_owned()),
        Some(credentials::IVORIS_PASSWORD.to_owned())
    );

    // The saved token is never shown again: „gespeichert“ instead.
    step_until(&mut harness, "the secret states", |app| {
        app.model.secret_states.get(&SecretKey::HubSpotToken) == Some(&SecretState::Stored)
    });
    assert!(harness.query_all_by_label("gespeichert").count() >= 3);
    assert!(harness.query_by_label("Zugriffstoken").is_some());
    assert_eq!(token_shown(&harness), 0, "the saved token is not shown");
    harness
        .query_all_by_label("Ersetzen")
        .next()
        .expect("replace the token")
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness
            .get_by_label("Zugriffstoken")
            .value()
            .unwrap_or_default(),
        "",
        "replacing starts from an empty field"
    );
    assert_eq!(token_shown(&harness), 0);

    // The connection test of the saved location asks the sandbox.
    harness.get_by_label("Verbindung testen").click();
    step_until(&mut harness, "the connection test", |app| {
        app.model
            .testing
            .get(&location.key)
            .is_some_and(Option::is_some)
    });
    assert!(
        harness
            .query_by_label("Die Verbindung funktioniert.")
            .is_some(),
        "{:?}",
        harness.state().model.testing
    );
}

#[test]
fn a_wrong_password_fails_the_connection_test_with_what_to_do() {
    let Setup {
        _runtime,
        bed,
        mut harness,
        ..
    } = app(52);
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());
    let location = bed.sandbox.locations[0].clone();
    harness.get_by_label("Standort hinzufügen").click();
    harness.run_steps(2);
    fill(&mut harness, "Schlüssel", "test-standort");
    fill(&mut harness, "Name", "Test");
    fill(&mut harness, "Ivoris-Adresse", &location.ivoris_url);
    fill(&mut harness, "Ivoris-Benutzer", credentials::IVORIS_USER);
    fill(&mut harness, "Ivoris-Passwort", "falsch");
    fill(
        &mut harness,
        "Ivoris-API-Schlüssel",
        credentials::IVORIS_API_KEY,
    );
    harness.get_by_label("Verbindung testen").click();
    step_until(&mut harness, "the connection test", |app| {
        app.model
            .testing
            .get("test-standort")
            .is_some_and(Option::is_some)
    });
    assert!(
        harness
            .query_by_label("Die Verbindung funktioniert.")
            .is_none()
    );
    assert!(
        harness
            .query_all_by_label_contains("lehnt die Anmeldung ab")
            .next()
            .is_some(),
        "says the login was refused and what to check"
    );
    assert!(
        harness
            .query_all_by_label_contains(": Fehler")
            .next()
            .is_some(),
        "the failed step is marked"
    );
}

#[test]
fn check_setup_reports_what_provisioning_created_and_then_found() {
    // The runtime and the bed (sandbox, temp dir) must outlive the app.
    let Setup {
        _runtime,
        bed: _bed,
        mut harness,
        ..
    } = app(53);
    step_until(&mut harness, "the engine", |app| app.model.info.is_some());
    harness.get_by_label("Einrichtung prüfen").click();
    step_until(&mut harness, "the first check", |app| {
        app.model.provision.is_some()
    });
    let created = match &harness.state().model.provision {
        Some(Ok(report)) => report.created_properties.len(),
        other => panic!("provisioning failed: {other:?}"),
    };
    assert!(created > 0, "a new portal gets the sync's properties");
    assert!(
        harness
            .query_all_by_label_contains("Einrichtung in Ordnung")
            .next()
            .is_some()
    );
    assert!(harness.query_by_label_contains("Neu angelegt:").is_some());

    harness.get_by_label("Einrichtung prüfen").click();
    harness.run_steps(1);
    step_until(&mut harness, "the second check", |app| {
        !app.model.provisioning && app.model.provision.is_some()
    });
    let Some(Ok(report)) = &harness.state().model.provision else {
        panic!("second check failed")
    };
    assert!(report.created_properties.is_empty(), "nothing twice");
    assert!(!report.found_properties.is_empty());
    assert!(harness.query_by_label_contains("Neu angelegt:").is_none());
}
