//! Settings file: defaults, validation with located bilingual messages,
//! refusal of secrets, round trip, sandbox settings.

use std::path::PathBuf;

use ivoris_hubspot_sync::hubspot::Tier;
use ivoris_hubspot_sync::sandbox::{SandboxLocation, credentials};
use ivoris_hubspot_sync::settings::{
    ApiVersion, AppointmentsMode, DataDirs, Language, Settings, SettingsError,
};

const EXAMPLE: &str = r#"
ledger = "/var/lib/praxis/ledger.sqlite"
language = "en"

[hubspot]
base_url = "https://api.hubapi.com/"
api_version = "2026-03"
tier = "enterprise"
pipeline = "Patientenreise"
appointments = "off"

[sync]
entry_sweep_days = 3
simulated_now = "2026-10-01T10:15:00"

[[location]]
key = "magdeburg"
name = "Praxis Magdeburg"
ivoris_url = "https://relay.computer-konkret.de/relay/LINK/webservice/api"
ivoris_user = "sync"
ivoris_app = "ivoris-hubspot-sync"
ivoris_app_version = "1.0"
profile_id = ""

[[location]]
key = "halle-2"
name = "Zahnwerk Halle"
brand = "Zahnwerk"
ivoris_url = "http://192.168.0.10:8080/api"
ivoris_user = "sync"
profile_id = "p-7"
allow_insecure_http = true
"#;

fn parse(text: &str) -> Result<Settings, SettingsError> {
    Settings::parse(text, "settings.toml")
}

/// Parses `text`, expects a validation error and returns its message.
fn invalid(text: &str) -> String {
    match parse(text) {
        Err(error @ SettingsError::Invalid { .. }) => error.to_string(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn example_file_parses_into_validated_settings() {
    let settings = parse(EXAMPLE).expect("valid");
    assert_eq!(
        settings.ledger,
        Some(PathBuf::from("/var/lib/praxis/ledger.sqlite"))
    );
    assert_eq!(settings.language, Language::En);
    assert_eq!(settings.hubspot.base_url, "https://api.hubapi.com");
    assert_eq!(
        settings.hubspot.api_version,
        ApiVersion::Dated {
            year: 2026,
            month: 3
        }
    );
    assert_eq!(settings.hubspot.tier, Tier::Enterprise);
    assert_eq!(settings.hubspot.appointments, AppointmentsMode::Off);
    assert_eq!(settings.sync.entry_sweep_days, 3);
    assert_eq!(
        settings.sync.simulated_now,
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).and_then(|d| d.and_hms_opt(10, 15, 0))
    );
    assert_eq!(settings.locations.len(), 2);
    let magdeburg = &settings.locations[0];
    assert_eq!(magdeburg.key, "magdeburg");
    assert_eq!(magdeburg.profile_id, None, "empty profile id means none");
    let halle = settings.location("halle-2").expect("halle");
    assert_eq!(halle.brand.as_deref(), Some("Zahnwerk"));
    assert_eq!(halle.ivoris_app, credentials::IVORIS_APP, "defaulted");
    assert!(halle.allow_insecure_http && halle.uses_insecure_http());
    assert!(!magdeburg.allow_insecure_http && !magdeburg.uses_insecure_http());
    assert!(!settings.is_demo());
}

#[test]
fn empty_file_means_defaults_and_demo_mode() {
    let settings = parse("").expect("valid");
    assert_eq!(settings, Settings::default());
    assert!(settings.is_demo());
    assert_eq!(settings.hubspot.pipeline, "Patientenreise");
    assert_eq!(settings.hubspot.tier, Tier::Professional);
    assert_eq!(settings.language, Language::De);
}

#[test]
fn missing_default_file_gives_defaults_but_missing_explicit_file_is_an_error() {
    let root = tempfile::tempdir().expect("temp dir");
    let dirs = DataDirs::under(root.path());
    let settings = Settings::load(None, &dirs).expect("defaults");
    assert!(settings.is_demo());
    assert_eq!(
        settings.ledger_path(&dirs),
        root.path().join("data").join("ledger.sqlite")
    );

    let explicit = root.path().join("elsewhere.toml");
    let error = Settings::load(Some(&explicit), &dirs).expect_err("missing");
    assert!(matches!(error, SettingsError::NotFound { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("nicht gefunden") && text.contains("not found"),
        "{text}"
    );
}

#[test]
fn relative_ledger_path_is_next_to_the_settings_file() {
    let root = tempfile::tempdir().expect("temp dir");
    let dirs = DataDirs::under(root.path());
    let file = root.path().join("site").join("settings.toml");
    std::fs::create_dir_all(root.path().join("site")).expect("dir");
    std::fs::write(&file, "ledger = \"ledger.sqlite\"\n").expect("write");
    let settings = Settings::load(Some(&file), &dirs).expect("loaded");
    assert_eq!(
        settings.ledger_path(&dirs),
        root.path().join("site").join("ledger.sqlite")
    );
}

#[test]
fn settings_round_trip_through_the_file() {
    let root = tempfile::tempdir().expect("temp dir");
    let dirs = DataDirs::under(root.path());
    let settings = parse(EXAMPLE).expect("valid");
    settings.save(&dirs.settings_file()).expect("saved");
    assert_eq!(Settings::load(None, &dirs).expect("loaded"), settings);

    let v3 = Settings {
        hubspot: ivoris_hubspot_sync::settings::HubSpotSettings {
            api_version: ApiVersion::V3,
            ..Default::default()
        },
        ..Default::default()
    };
    let text = v3.to_toml_string().expect("toml");
    assert_eq!(parse(&text).expect("valid"), v3);
}

#[test]
fn unknown_keys_are_reported_with_their_line() {
    let error = parse("[hubspot]\npipline = \"Patientenreise\"\n").expect_err("typo");
    let SettingsError::Syntax { line, message, .. } = &error else {
        panic!("expected a syntax error, got {error:?}");
    };
    assert_eq!(*line, 2);
    assert!(message.contains("pipline"), "{message}");
    let text = error.to_string();
    assert!(text.contains("Zeile/line 2"), "{text}");
}

#[test]
fn malformed_toml_is_reported_with_its_line() {
    let error = parse("language = \"de\"\n[hubspot\n").expect_err("broken");
    assert!(
        matches!(error, SettingsError::Syntax { line: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn bad_values_are_all_reported_in_german_and_english_with_lines() {
    let text = invalid(
        r#"language = "fr"
[hubspot]
base_url = "ftp://example.com"
api_version = "2026-13"
tier = "gold"
[sync]
entry_sweep_days = 0
[[location]]
key = "Magdeburg"
ivoris_url = "relay"
ivoris_user = "sync"
[[location]]
key = "halle"
ivoris_url = "https://h.example/api"
ivoris_user = "sync"
[[location]]
key = "halle"
ivoris_url = "https://h2.example/api"
"#,
    );
    for expected in [
        "Zeile/line 1, language",
        "Zeile/line 3, hubspot.base_url",
        "keine http(s)-Adresse",
        "is not an http(s) URL",
        "Zeile/line 4, hubspot.api_version",
        "Zeile/line 5, hubspot.tier",
        "Zeile/line 7, sync.entry_sweep_days",
        "Zeile/line 9, location[1].key",
        "nur Kleinbuchstaben",
        "only lower-case letters",
        "Zeile/line 10, location[1].ivoris_url",
        "Zeile/line 17, location[3].key",
        "kommt doppelt vor",
        "appears twice",
        "location[3].ivoris_user: fehlt / is missing",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }
}

/// A file with this HubSpot address and one location at `ivoris_url`,
/// with `extra` lines in the location's table.
fn with_urls(hubspot: &str, ivoris_url: &str, extra: &str) -> String {
    format!(
        "[hubspot]\nbase_url = \"{hubspot}\"\n\n[[location]]\nkey = \"halle\"\nivoris_url = \"{ivoris_url}\"\nivoris_user = \"sync\"\n{extra}"
    )
}

#[test]
fn plain_http_is_refused_with_key_and_line_except_on_loopback() {
    let text = invalid(&with_urls(
        "http://api.hubapi.com",
        "http://192.0.2.10/relay/x/webservice/api",
        "",
    ));
    for expected in [
        "Zeile/line 2, hubspot.base_url",
        "„http://api.hubapi.com“ ist unverschlüsselt: HubSpot nur über https://",
        "HubSpot only over https://",
        "Zeile/line 6, location[1].ivoris_url",
        "das Ivoris-Passwort ginge im Klartext",
        "allow_insecure_http = true in diesem [[location]]",
        "set allow_insecure_http = true in this [[location]]",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }

    // Loopback is the sandbox on this PC: plain HTTP never leaves it.
    for host in [
        "127.0.0.1:8400",
        "127.1.2.3",
        "[::1]:8401",
        "localhost:8400",
        "LOCALHOST",
    ] {
        let url = format!("http://{host}/api");
        let settings = parse(&with_urls(&url, &url, "")).expect(&url);
        assert!(!settings.locations[0].uses_insecure_http(), "{url}");
        assert!(settings.insecure_http_warnings().is_empty(), "{url}");
    }
    // Hosts that only look local are not loopback.
    for host in ["localhost.example.com", "128.0.0.1", "[::2]", "10.0.0.1"] {
        let url = format!("http://{host}/api");
        invalid(&with_urls("https://api.hubapi.com", &url, ""));
    }
}

#[test]
fn a_location_may_opt_in_to_plain_http_but_hubspot_may_not() {
    let url = "http://192.0.2.10/relay/x/webservice/api";
    let settings = parse(&with_urls(
        "https://api.hubapi.com",
        url,
        "allow_insecure_http = true\n",
    ))
    .expect("the opt-in allows plain HTTP on the practice network");
    let location = &settings.locations[0];
    assert!(location.allow_insecure_http && location.uses_insecure_http());
    let warnings = settings.insecure_http_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].0.contains("Standort „halle“") && warnings[0].0.contains("unverschlüsselt")
    );
    assert!(warnings[0].1.contains("location \"halle\"") && warnings[0].1.contains("unencrypted"));
    // The opt-in survives saving, and without it the file is refused again.
    assert_eq!(
        parse(&settings.to_toml_string().expect("toml")).expect("round trip"),
        settings
    );
    invalid(&with_urls(
        "https://api.hubapi.com",
        url,
        "allow_insecure_http = false\n",
    ));
    // An https address with the opt-in is not warned about.
    let safe = parse(&with_urls(
        "https://api.hubapi.com",
        "https://relay.example/api",
        "allow_insecure_http = true\n",
    ))
    .expect("valid");
    assert!(safe.insecure_http_warnings().is_empty());

    // HubSpot has no opt-in: the key is unknown there.
    let error =
        parse("[hubspot]\nbase_url = \"http://api.hubapi.com\"\nallow_insecure_http = true\n")
            .expect_err("no opt-in for HubSpot");
    assert!(
        matches!(&error, SettingsError::Syntax { line: 3, message, .. } if message.contains("allow_insecure_http")),
        "{error:?}"
    );
}

#[test]
fn api_version_accepts_only_year_month_or_v3() {
    for good in ["2026-03", "2025-12", "v3"] {
        let text = format!("[hubspot]\napi_version = \"{good}\"\n");
        assert!(parse(&text).is_ok(), "{good}");
    }
    for bad in ["2026-3", "26-03", "v4", "2026-00", "latest"] {
        invalid(&format!("[hubspot]\napi_version = \"{bad}\"\n"));
    }
}

#[test]
fn secrets_in_the_file_are_refused_with_directions() {
    for (text, key, line) in [
        ("[hubspot]\ntoken = \"pat-na1-123\"\n", "hubspot.token", 2),
        (
            "[[location]]\nkey = \"m\"\n\nivoris_url = \"https://x.de\"\nPassword = \"geheim\"\n",
            "location[1].Password",
            5,
        ),
        ("api_key = \"k\"\n", "api_key", 1),
    ] {
        let error = parse(text).expect_err("secret in file");
        let SettingsError::SecretInFile {
            key: found,
            line: found_line,
            ..
        } = &error
        else {
            panic!("expected SecretInFile, got {error:?}");
        };
        assert_eq!(found, key);
        assert_eq!(*found_line, Some(line), "{text}");
        let message = error.to_string();
        assert!(message.contains("Anmeldeinformationsspeicher"), "{message}");
        assert!(message.contains("environment variable"), "{message}");
        assert!(!message.contains("geheim\""), "{message}");
        assert!(!message.contains("pat-na1-123"), "{message}");
    }
}

#[test]
fn sandbox_settings_use_sandbox_fields_and_validate() {
    let locations = vec![
        SandboxLocation {
            key: "magdeburg".into(),
            name: "Praxis Magdeburg".into(),
            brand: "Zahnärzte am Dom".into(),
            ivoris_url: "http://127.0.0.1:4001/relay/magdeburg/webservice/api".into(),
            profile_id: "1".into(),
        },
        SandboxLocation {
            key: "halle".into(),
            name: "Zahnwerk Halle".into(),
            brand: String::new(),
            ivoris_url: "http://127.0.0.1:4001/relay/halle/webservice/api".into(),
            profile_id: String::new(),
        },
    ];
    let ledger = PathBuf::from("/tmp/sandbox-ledger.sqlite");
    let settings =
        Settings::for_sandbox("http://127.0.0.1:4000/", &locations, Some(ledger.clone()));
    assert_eq!(settings.hubspot.base_url, "http://127.0.0.1:4000");
    assert_eq!(settings.ledger, Some(ledger));
    assert_eq!(settings.locations[0].ivoris_user, credentials::IVORIS_USER);
    assert_eq!(
        settings.locations[0].ivoris_app_version,
        credentials::IVORIS_APP_VERSION
    );
    assert_eq!(
        settings.locations[0].brand.as_deref(),
        Some("Zahnärzte am Dom")
    );
    assert_eq!(settings.locations[1].brand, None);
    assert_eq!(settings.locations[1].profile_id, None);

    let text = settings.to_toml_string().expect("toml");
    assert!(!text.contains(credentials::IVORIS_PASSWORD), "{text}");
    assert!(!text.contains(credentials::HUBSPOT_TOKEN), "{text}");
    assert_eq!(parse(&text).expect("valid"), settings);
}

#[test]
fn the_ivoris_ceiling_is_validated_and_zero_means_none() {
    let ceiling = |text: &str| {
        parse(text)
            .expect("valid")
            .sync
            .ivoris_max_requests_per_second
    };
    assert_eq!(
        ceiling("[sync]\nivoris_max_requests_per_second = 8\n"),
        Some(8)
    );
    assert_eq!(
        ceiling("[sync]\nivoris_max_requests_per_second = 0\n"),
        None
    );
    assert_eq!(ceiling(""), None, "no ceiling by default");
    for bad in ["-1", "1001"] {
        let text = invalid(&format!("[sync]\nivoris_max_requests_per_second = {bad}\n"));
        for expected in [
            "Zeile/line 2, sync.ivoris_max_requests_per_second",
            "muss zwischen 0 und 1000 liegen",
            "must be between 0 and 1000",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
    }
}

#[test]
fn files_with_the_old_fixed_pause_still_load_as_a_ceiling() {
    // 100 ms was the default every saved file carried: no ceiling, so the
    // adaptive pacing is not held to the old rate. Other pauses were chosen
    // on purpose and become one request per pause.
    for (pause, ceiling) in [
        (100, None),
        (0, None),
        (250, Some(4)),
        (300, Some(3)),
        (5_000, Some(1)),
    ] {
        let settings = parse(&format!("[sync]\nivoris_pause_ms = {pause}\n")).expect("valid");
        assert_eq!(
            settings.sync.ivoris_max_requests_per_second, ceiling,
            "{pause}"
        );
    }
    let both = parse("[sync]\nivoris_pause_ms = 500\nivoris_max_requests_per_second = 7\n")
        .expect("valid");
    assert_eq!(
        both.sync.ivoris_max_requests_per_second,
        Some(7),
        "the new key wins"
    );
    let text = invalid("[sync]\nivoris_pause_ms = -5\n");
    assert!(
        text.contains("Zeile/line 2, sync.ivoris_pause_ms"),
        "{text}"
    );

    let saved = Settings::default().to_toml_string().expect("toml");
    assert!(
        saved.contains("ivoris_max_requests_per_second = 0"),
        "{saved}"
    );
    assert!(!saved.contains("ivoris_pause_ms"), "{saved}");
}
