//! The desktop app (DESIGN.md §1, §11): egui on the main thread, the engine
//! on its own thread.
//!
//! Invariants: the GUI thread never does I/O or SQLite — every number it
//! shows arrives as an engine event, and every change it makes is a
//! command; the engine knows nothing about egui and wakes the GUI through a
//! closure. One file per panel; panels draw from a read-only model and
//! return intents (both in `state.rs`) that [`app::SyncApp::apply`]
//! carries out.

pub mod about;
pub mod app;
pub mod dashboard;
pub mod dry_run;
pub mod duplicates;
pub mod file_dialog;
pub mod i18n;
pub mod import;
pub mod log;
pub mod mapping;
pub mod nav;
pub mod outcome;
pub mod overview;
pub mod portal_duplicates;
pub mod privacy;
pub mod queue;
pub mod run_progress;
pub mod schedule;
pub mod settings;
pub mod state;
pub mod top_bar;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use app::{AppOptions, SyncApp};
pub use state::Panel;

use crate::engine::handle::{EngineSetup, SettingsHome};
use crate::mapping::TableName;
use crate::settings::Settings;

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    #[error("Fenster kann nicht geöffnet werden / Cannot open the window: {0}")]
    Window(String),
    #[error("Bildschirmfoto nicht gespeichert / Screenshot not saved: {0}")]
    Screenshot(String),
}

/// How the binary starts the app.
pub struct Launch {
    /// What the engine syncs against.
    pub setup: EngineSetup,
    /// Where settings and secrets are saved from the settings panel.
    pub home: Option<SettingsHome>,
    /// The settings file as read, or why it could not be (German / English).
    pub settings_file: Result<Settings, String>,
    /// Panel to show first.
    pub panel: Option<Panel>,
    /// Table the Zuordnung shows first.
    pub mapping_table: Option<TableName>,
    /// Save a screenshot of the loaded window to this PNG and close.
    pub screenshot: Option<PathBuf>,
    /// The engine's log lines for the Protokoll (see `logging::live_log`).
    pub live_log: Option<std::sync::mpsc::Receiver<crate::logging::LiveLine>>,
}

/// Opens the window and runs until it is closed.
pub fn run(launch: Launch) -> Result<(), GuiError> {
    let done: app::ScreenshotDone = Arc::new(Mutex::new(None));
    let screenshot = launch.screenshot.clone().map(|path| (path, done.clone()));
    let taking_screenshot = screenshot.is_some();
    let icon = window_icon().map_err(GuiError::Window)?;
    let viewport = egui::ViewportBuilder::default()
        .with_title("Ivoris → HubSpot Sync")
        .with_icon(Arc::new(icon))
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([900.0, 560.0]);
    let options = eframe::NativeOptions {
        viewport,
        // A screenshot run must neither read nor overwrite what the user's
        // own window remembered.
        persist_window: !taking_screenshot,
        ..eframe::NativeOptions::default()
    };
    let app_options = AppOptions {
        setup: launch.setup,
        home: launch.home,
        settings_file: launch.settings_file,
        panel: launch.panel,
        mapping_table: launch.mapping_table,
        screenshot,
        live_log: launch.live_log,
    };
    eframe::run_native(
        if taking_screenshot {
            "ivoris-hubspot-sync-screenshot"
        } else {
            "ivoris-hubspot-sync"
        },
        options,
        Box::new(move |cc| {
            let app = SyncApp::new(cc, app_options)?;
            Ok(Box::new(app) as Box<dyn eframe::App>)
        }),
    )
    .map_err(|e| GuiError::Window(e.to_string()))?;
    if taking_screenshot {
        return match done.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(Ok(())) => Ok(()),
            Some(Err(reason)) => Err(GuiError::Screenshot(reason)),
            None => Err(GuiError::Screenshot(
                "das Fenster wurde vorher geschlossen / the window closed first".into(),
            )),
        };
    }
    Ok(())
}

/// The window's icon: the app icon rendered at 256 px (`packaging/icons.sh`).
pub fn window_icon() -> Result<egui::IconData, String> {
    eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icons/icon-256.png"))
        .map_err(|e| format!("Fenstersymbol / window icon: {e}"))
}

/// Writes a screenshot as an RGB PNG (no alpha: smaller files).
pub fn save_png(path: &Path, image: &egui::ColorImage) -> Result<(), String> {
    let [width, height] = image.size;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for pixel in &image.pixels {
        rgb.extend_from_slice(&[pixel.r(), pixel.g(), pixel.b()]);
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}
