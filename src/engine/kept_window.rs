//! HubSpot's 10-second window across processes of the app.
//!
//! The window is the portal's, not the process's: a headless run started
//! right after the app's own run (or the other way round) would learn only
//! from the first answer's headers that the window is used, and then has
//! to assume it was used just now — ten seconds of waiting for a run that
//! needs a handful of calls. So a run keeps the send times still in the
//! window beside the ledger, and the next process's client takes them in.
//! The file holds timestamps and a hash of the portal, nothing else.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hubspot::HubSpotClient;

/// File name beside the ledger.
pub const FILE_NAME: &str = "hubspot-window.json";

/// What is kept.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// [`HubSpotClient::portal_fingerprint`] of the client that sent.
    portal: String,
    /// Send times still in the window when the run ended.
    sends: Vec<DateTime<Utc>>,
}

/// Takes the previous process's sends into a client; when dropped, keeps
/// the client's own for the next one.
pub struct KeptWindow<'a> {
    client: &'a HubSpotClient,
    path: PathBuf,
}

impl<'a> KeptWindow<'a> {
    /// Reads the file beside `ledger_path`; a missing, unreadable or other
    /// portal's file is passed over (the headers still tell the client).
    pub fn recall(client: &'a HubSpotClient, ledger_path: &Path) -> KeptWindow<'a> {
        let path = ledger_path.with_file_name(FILE_NAME);
        let kept = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Kept>(&bytes).ok());
        if let Some(kept) = kept
            && kept.portal == client.portal_fingerprint()
        {
            client.recall_sends(&kept.sends);
        }
        KeptWindow { client, path }
    }
}

impl Drop for KeptWindow<'_> {
    fn drop(&mut self) {
        let kept = Kept {
            portal: self.client.portal_fingerprint(),
            sends: self.client.recent_sends(),
        };
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::files::write_private(&self.path, &bytes));
        if let Err(error) = written {
            tracing::debug!(%error, "hubspot window not kept for the next run");
        }
    }
}
