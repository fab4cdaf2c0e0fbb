//! The monitor's state file: the tracker's snapshot and each terminal's
//! publication (ETag, CSeq, status, sessions), with the copy program's
//! `ring_full` counter at the time. Written (temporary file, rename)
//! after each batch of copies that changed anything, so a SIGKILLed
//! monitor loses at most the batch it was handling; read back at start.

use std::path::Path;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use control::sip_monitor::{
    config::SipMonitor,
    terminal::TerminalState,
    track::{Change, SessionInfo, Status, Tracker, TrackerSnapshot},
};
use dataplane_user::Dataplane;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Monitor, MonitorStatus, Terminal};

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

/// The copy program's `ring_full` counter (copies lost to a full ring).
pub(super) fn ring_full(dp: &Dataplane) -> u64 {
    dp.sip_stats()
        .ok()
        .and_then(|c| {
            c.get(dataplane_common::sip_monitor::stat::RING_FULL as usize)
                .map(|c| c.packets)
        })
        .unwrap_or(0)
}

/// Take up what a previous run left in the state file into `tracker` and
/// `status`: the terminals' publications, and the changes of dialogs
/// ended because the downtime could not be seen. Without a state file,
/// what the ring holds is a previous daemon's and is dropped.
pub(super) fn restore(
    cfg: &SipMonitor,
    dp: &mut Dataplane,
    tracker: &mut Tracker,
    status: &Arc<Mutex<MonitorStatus>>,
) -> anyhow::Result<(HashMap<String, Terminal>, Vec<Change>)> {
    let ring_full = ring_full(dp);
    let saved = load(&cfg.state_file)?;
    let mut ended = Vec::new();
    let mut terminals = HashMap::new();
    match saved {
        None => {
            let _ = dp.take_sip_copies()?; // a previous daemon's, without its state
        }
        Some(saved) => {
            let down = unix_ms().saturating_sub(saved.saved_unix_ms);
            let mut st = status.lock().unwrap();
            st.restored_dialogs = saved.tracker.dialogs.len();
            st.restored_registrations = saved.tracker.registered.len();
            st.restored_terminals = saved.terminals.len();
            st.restored_after_ms = Some(down);
            tracker.restore(saved.tracker, 0, down);
            // The ring kept what arrived while no monitor ran (the
            // first poll reads it), unless it overflowed or is new.
            let blind = if !dp.took_over {
                Some("the copy program was loaded afresh: what happened while the monitor was down was not seen")
            } else if ring_full != saved.ring_full {
                Some("copies were lost while the monitor was down (ring_full moved)")
            } else {
                None
            };
            if let Some(why) = blind {
                ended = tracker.end_dialogs(0);
                st.restore_note = Some(format!("restored dialogs ended: {why}"));
                warn!("{why}; ending the {} restored dialogs", st.restored_dialogs);
            }
            for t in saved.terminals {
                terminals.insert(
                    t.user,
                    Terminal {
                        etag: t.etag,
                        cseq: t.cseq,
                        // What was outstanding died with the old
                        // monitor: sent again.
                        pending: t.status.filter(|_| t.unconfirmed),
                        refresh_at: t.refresh_in_ms.map(|left| left.saturating_sub(down)),
                        status: t.status,
                        state: TerminalState {
                            sessions: t.sessions.into_iter().map(Arc::new).collect(),
                            contact: t.contact,
                        },
                        ..Default::default()
                    },
                );
            }
            info!(
                dialogs = st.restored_dialogs,
                registrations = st.restored_registrations,
                terminals = st.restored_terminals,
                down_ms = down,
                "sip monitor state restored"
            );
        }
    }
    Ok((terminals, ended))
}

impl Monitor {
    /// Write the state file if something changed since it was.
    pub(super) fn save_state(&mut self) {
        if !self.state_dirty {
            return;
        }
        self.state_dirty = false;
        let now = self.now();
        let saved = Saved {
            saved_unix_ms: unix_ms(),
            ring_full: ring_full(&self.dp),
            tracker: self.tracker.snapshot(now),
            terminals: self
                .terminals
                .iter()
                .map(|(user, t)| SavedTerminal {
                    user: user.clone(),
                    etag: t.etag.clone(),
                    cseq: t.cseq,
                    status: t.pending.or(t.status),
                    unconfirmed: t.pending.is_some() || self.outstanding_of.contains_key(user),
                    refresh_in_ms: t.refresh_at.map(|at| at.saturating_sub(now)),
                    sessions: t.state.sessions.iter().map(|s| (**s).clone()).collect(),
                    contact: t.state.contact.clone(),
                })
                .collect(),
        };
        let r = save(&self.cfg.state_file, &saved);
        let mut st = self.status.lock().unwrap();
        match r {
            Ok(()) => st.state_saves += 1,
            Err(e) => {
                st.state_save_failed += 1;
                warn!(file = %self.cfg.state_file.display(), "state file not written: {e}");
            }
        }
    }
}
