//! The previous run's provisioning, for a run started right after it.
//!
//! Provisioning reads the portal's groups, properties, pipelines and the
//! appointment object: about ten calls. A run started within half a minute of
//! a run that provisioned the same portal with the same spec and wrote
//! without a failure would read back exactly what that run found — and
//! after a sync at full speed those calls only wait for HubSpot's
//! 10-second window. So a successful run keeps its report beside the
//! ledger, and a run started within [`FRESH_FOR`] takes it instead of
//! asking again. The file is taken (removed) when read: a run that fails
//! leaves nothing behind, and the run after it provisions again.
//!
//! The file holds ids, labels and property names of the portal and hashes
//! of the portal and the spec; no personal data.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hubspot::HubSpotClient;
use crate::hubspot::provision::{ProvisionReport, ProvisionSpec};

/// File name beside the ledger.
pub const FILE_NAME: &str = "hubspot-provisioned.json";

/// How long after a run its provisioning is taken as still true.
pub const FRESH_FOR: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// What is kept.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// [`HubSpotClient::portal_fingerprint`] of the client that provisioned.
    portal: String,
    /// Hash of the spec provisioned.
    spec: String,
    /// When the run that provisioned ended.
    ended: DateTime<Utc>,
    /// What it found and did.
    report: ProvisionReport,
}

/// Hash of a spec: its derived `Debug` rendering lists every field in a
/// fixed order, so any change (a property, a label, a pipeline) gives
/// another hash.
fn spec_hash(spec: &ProvisionSpec) -> String {
    blake3::hash(format!("{spec:?}").as_bytes())
        .to_hex()
        .to_string()
}

fn path_beside(ledger_path: &Path) -> PathBuf {
    ledger_path.with_file_name(FILE_NAME)
}

/// Takes the kept report when it is of this portal and spec and younger
/// than [`FRESH_FOR`]; the file is removed either way. The report
/// says "found" for what the earlier run created.
pub fn take(
    ledger_path: &Path,
    client: &HubSpotClient,
    spec: &ProvisionSpec,
) -> Option<ProvisionReport> {
    let path = path_beside(ledger_path);
    let bytes = std::fs::read(&path).ok()?;
    forget(ledger_path);
    let kept: Kept = serde_json::from_slice(&bytes).ok()?;
    // The client's clock: the system's, and the simulation's in tests.
    let age = client.wall_now().signed_duration_since(kept.ended);
    let fresh = age >= chrono::TimeDelta::zero() && age < FRESH_FOR;
    (fresh && kept.portal == client.portal_fingerprint() && kept.spec == spec_hash(spec))
        .then(|| kept.report.as_found())
}

/// Keeps `report` for a run started within [`FRESH_FOR`] from now.
pub fn keep(
    ledger_path: &Path,
    client: &HubSpotClient,
    spec: &ProvisionSpec,
    report: &ProvisionReport,
) {
    let kept = Kept {
        portal: client.portal_fingerprint(),
        spec: spec_hash(spec),
        ended: client.wall_now(),
        report: report.clone(),
    };
    let written = serde_json::to_vec(&kept)
        .map_err(std::io::Error::other)
        .and_then(|bytes| crate::files::write_private(&path_beside(ledger_path), &bytes));
    if let Err(error) = written {
        tracing::debug!(%error, "hubspot provisioning not kept for the next run");
    }
}

/// Removes a kept report, if any.
pub fn forget(ledger_path: &Path) {
    let _ = std::fs::remove_file(path_beside(ledger_path));
}
