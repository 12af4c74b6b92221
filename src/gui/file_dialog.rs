//! „Datei wählen …“ and „Ordner wählen …“: the operating system's file
//! dialogs, through rfd.
//!
//! rfd blocks the thread that opens a dialog (on Linux it asks the desktop
//! portal over D-Bus, falling back to zenity), so each dialog runs on a
//! thread of its own and its answer is picked up by the app's logic like an
//! engine event; the GUI thread never waits. Tests type the path into the
//! field next to the button instead — they never open a dialog.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// What a dialog is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A mapping CSV or the ZIP of all tables, to import.
    MappingImport,
    /// The folder the mapping tables are exported into.
    MappingExportDir,
    /// The folder the dashboard's CSV files are written to.
    KpiExportDir,
    /// The file a backup of the ledger is written to.
    BackupTarget,
    /// A backup to restore.
    BackupSource,
    /// An Ivoris CSV export for the historical import.
    ImportFile,
}

/// The dialog that is open, if any.
#[derive(Default)]
pub struct FileDialogs {
    /// What the open dialog is for and where its answer arrives.
    open: Option<(Pick, Receiver<Option<PathBuf>>)>,
}

impl FileDialogs {
    /// Opens a dialog on its own thread; `wake` is called when it closes.
    /// A second request while one is open is ignored (the first is still on
    /// screen).
    pub fn open(&mut self, pick: Pick, title: &str, wake: impl Fn() + Send + 'static) {
        if self.open.is_some() {
            return;
        }
        let (answer, arrives) = mpsc::channel();
        let title = title.to_owned();
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let dialog = rfd::FileDialog::new().set_title(title);
                let chosen = match pick {
                    Pick::MappingImport => dialog
                        .add_filter("CSV / ZIP", &["csv", "CSV", "txt", "zip", "ZIP"])
                        .pick_file(),
                    Pick::ImportFile => dialog
                        .add_filter("CSV", &["csv", "CSV", "txt", "TXT"])
                        .pick_file(),
                    Pick::MappingExportDir | Pick::KpiExportDir => dialog.pick_folder(),
                    Pick::BackupTarget => {
                        dialog.set_file_name("ledger-sicherung.sqlite").save_file()
                    }
                    Pick::BackupSource => dialog.pick_file(),
                };
                let _ = answer.send(chosen);
                wake();
            });
        match spawned {
            Ok(_) => self.open = Some((pick, arrives)),
            Err(error) => tracing::warn!(%error, "file dialog thread not started"),
        }
    }

    /// Whether a dialog is on screen.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The chosen path once the dialog closed; `None` while it is open, when
    /// none is, or when the person cancelled.
    pub fn poll(&mut self) -> Option<(Pick, PathBuf)> {
        let (pick, arrives) = self.open.as_ref()?;
        let pick = *pick;
        match arrives.try_recv() {
            Err(TryRecvError::Empty) => None,
            Ok(chosen) => {
                self.open = None;
                chosen.map(|path| (pick, path))
            }
            Err(TryRecvError::Disconnected) => {
                self.open = None;
                None
            }
        }
    }
}
