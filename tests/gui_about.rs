//! „Über“ driven through the accessibility tree: opened from the
//! navigation, it shows the version, the ledger, log and settings paths and
//! the licences of the bundled fonts and crates; Esc and „Schließen“ close it.

mod engine_support;

use std::collections::HashMap;
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine_support::{bed, options};
use ivoris_hubspot_sync::engine::handle::{EngineSetup, SettingsHome};
use ivoris_hubspot_sync::gui::about::{FONTS, VERSION, crate_licences};
use ivoris_hubspot_sync::gui::{AppOptions, Panel, SyncApp};
use ivoris_hubspot_sync::secrets::MemorySecretStore;
use ivoris_hubspot_sync::settings::{DataDirs, Settings};

/// Steps frames until the engine is ready (at most a minute).
fn until_ready(harness: &mut Harness<'_, SyncApp>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while harness.state().model.info.is_none() {
        assert!(std::time::Instant::now() < deadline, "engine not ready");
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    harness.run_steps(2);
}

#[test]
fn about_shows_version_paths_and_licences_and_closes() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bed = runtime.block_on(bed(options(71)));
    let dirs = DataDirs::under(bed.dir.path());
    let home = SettingsHome {
        path: dirs.settings_file(),
        dirs: dirs.clone(),
        store: Arc::new(MemorySecretStore::new()),
        env: HashMap::new(),
    };
    let env = bed.env.clone();
    let ledger = env.ledger_path.display().to_string();
    let mut harness = Harness::builder()
        .with_size([1280.0, 900.0])
        .build_eframe(move |cc| {
            SyncApp::new(
                cc,
                AppOptions {
                    setup: EngineSetup::Configured(Box::new(env)),
                    home: Some(home),
                    settings_file: Ok(Settings::default()),
                    panel: Some(Panel::Overview),
                    mapping_table: None,
                    screenshot: None,
                    live_log: None,
                },
            )
            .expect("app starts")
        });
    until_ready(&mut harness);

    harness.get_by_label(&format!("Über · {VERSION}")).click();
    harness.run_steps(3);
    assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
    for text in [
        format!("Version {VERSION}"),
        ledger.clone(),
        dirs.logs_dir().display().to_string(),
        dirs.settings_file().display().to_string(),
        format!(
            "Verwendete Bibliotheken ({})",
            ivoris_hubspot_sync::gui::i18n::Lang::De.number(crate_licences().len() as u64)
        ),
    ] {
        assert!(
            harness.query_by_label(&text).is_some(),
            "„Über“ shows {text}"
        );
    }
    for font in FONTS {
        assert!(harness.query_by_label(font.font).is_some(), "{}", font.font);
    }
    assert!(
        harness
            .query_by_label("SIL Open Font License 1.1")
            .is_some()
    );
    assert!(harness.query_by_label("Ubuntu Font Licence 1.0").is_some());

    harness.key_press(egui::Key::Escape);
    harness.run_steps(3);
    assert!(
        harness.query_by_label(&ledger).is_none(),
        "Esc closes „Über“"
    );

    harness.get_by_label(&format!("Über · {VERSION}")).click();
    harness.run_steps(3);
    harness.get_by_label("Schließen").click();
    harness.run_steps(3);
    assert!(
        harness.query_by_label(&ledger).is_none(),
        "„Schließen“ closes „Über“"
    );
}
