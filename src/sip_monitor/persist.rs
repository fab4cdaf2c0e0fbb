//! The monitor's state file: the tracker's snapshot and each terminal's
//! publication (ETag, CSeq, status, sessions), with the copy program's
//! `ring_full` counter at the time. Written (temporary file, rename)
//! after each batch of copies that changed anything, so a SIGKILLed
//! monitor loses at most the batch it was handling; read back at start.

use std::path::Path;

use control::sip_monitor::track::{SessionInfo, Status, TrackerSnapshot};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    /// Wall clock of the save (unix ms): the time down counts against
    /// what is restored.
    pub saved_unix_ms: u64,
    /// The copy program's `ring_full` when saved. If it moved while no
    /// monitor ran, copies were lost and the dialogs cannot be trusted.
    pub ring_full: u64,
    pub tracker: TrackerSnapshot,
    pub terminals: Vec<SavedTerminal>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTerminal {
    pub user: String,
    pub etag: Option<String>,
    pub cseq: u32,
    /// What it was last published as, or is to be.
    pub status: Option<Status>,
    /// That status is not known to have reached the presence server (it
    /// waited, or its request was outstanding): sent again on restart.
    pub unconfirmed: bool,
    /// ms left until its publication is refreshed, if one is due.
    pub refresh_in_ms: Option<u64>,
    pub sessions: Vec<SessionInfo>,
    pub contact: Option<String>,
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a previous run left, if anything; a file that cannot be read or
/// parsed is an error naming it (the monitor does not start blind over
/// it: remove the file to start afresh).
pub fn load(path: &Path) -> anyhow::Result<Option<Saved>> {
    use anyhow::Context as _;
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "sip_monitor.state_file {}: not a state file this monitor wrote (remove it to start afresh)",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("sip_monitor.state_file {}", path.display())),
    }
}

/// Write `saved` in place of the file (its directory made if missing).
pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(saved).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}
