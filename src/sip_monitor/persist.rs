//! The monitor's state file: the tracker's snapshot and each terminal's
//! publication (ETag, CSeq, status, sessions), with the copy program's
//! `ring_full` counter at the time. Written durably (temporary file,
//! fsync, rename) at most every `state_interval_ms` when something
//! changed; what happens in between is in the journal (`journal.rs`),
//! appended before it is acted on. A restart reads the snapshot and
//! replays the journal over it, so a SIGKILLed monitor loses nothing it
//! took off the ring or sent.

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
    /// The last journal record this snapshot holds.
    #[serde(default)]
    pub journal_seq: u64,
    /// The monitor's clock (ms) when saved: the journal's copies are
    /// timed on it.
    #[serde(default)]
    pub saved_now: u64,
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

/// Write `saved` in place of the file, durably (its directory made if
/// missing).
pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    crate::durable::write_with(path, |w| {
        serde_json::to_writer(w, saved).map_err(std::io::Error::other)
    })
}

/// What a restore hands the monitor.
pub(super) struct Restored {
    pub terminals: HashMap<String, Terminal>,
    /// Changes still to be noted (dialogs ended: the downtime was not
    /// seen).
    pub ended: Vec<Change>,
    /// The last journal record read (the journal goes on after it).
    pub journal_last: u64,
    /// Where the monitor's clock starts: the restored times count from
    /// the snapshot, so this is the time since it.
    pub clock_ms: u64,
}

/// Replay the journal's `records` (those after the snapshot) over the
/// restored tracker and terminals, as the monitor acted on them: copies
/// through the tracker, their changes noted; a request sent takes its
/// status and CSeq; an answer its entity-tag and refresh. What was sent
/// and not answered is sent again. `saved`: the snapshot's clock and
/// wall time.
fn replay(
    records: Vec<super::journal::Record>,
    (saved_now, saved_unix_ms): (u64, u64),
    tracker: &mut Tracker,
    terminals: &mut HashMap<String, Terminal>,
) {
    use super::journal::Record;
    let mut tcp = control::sip_monitor::stream::Reassembler::default();
    let mut unanswered = std::collections::BTreeSet::new();
    for rec in records {
        match rec {
            Record::Copies { now, frames, .. } => {
                let at = now.saturating_sub(saved_now);
                let mut changes = Vec::new();
                for f in &frames {
                    for m in super::frame::messages(&mut tcp, f).into_iter().flatten() {
                        changes.extend(tracker.handle(&m, at));
                    }
                }
                changes.extend(tracker.tick(at));
                for ch in changes {
                    let t = terminals.entry(ch.user.clone()).or_default();
                    let status = t.state.apply(&ch);
                    t.pending = Some(status);
                }
            }
            Record::Sent {
                user, cseq, status, ..
            } => {
                let t = terminals.entry(user.clone()).or_default();
                t.cseq = t.cseq.max(cseq);
                if status.is_some() {
                    t.pending = None;
                    t.status = status;
                }
                unanswered.insert(user);
            }
            Record::Answered {
                user,
                etag,
                refresh_unix_ms,
                ..
            } => {
                let t = terminals.entry(user.clone()).or_default();
                t.etag = etag;
                t.refresh_at = refresh_unix_ms.map(|u| u.saturating_sub(saved_unix_ms));
                unanswered.remove(&user);
            }
        }
    }
    for user in unanswered {
        if let Some(t) = terminals.get_mut(&user) {
            t.pending = t.pending.or(t.status);
        }
    }
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
) -> anyhow::Result<Restored> {
    use anyhow::Context as _;
    let ring_full = ring_full(dp);
    let saved = load(&cfg.state_file)?;
    let mut out = Restored {
        terminals: HashMap::new(),
        ended: Vec::new(),
        journal_last: 0,
        clock_ms: 0,
    };
    let Some(saved) = saved else {
        // A previous daemon's copies, without its state.
        let _ = dp.take_sip_copies()?;
        // A journal without its snapshot is not this state's.
        super::journal::remove_below(&cfg.state_file, u64::MAX)
            .with_context(|| format!("sip_monitor journal of {}", cfg.state_file.display()))?;
        return Ok(out);
    };
    let down = unix_ms().saturating_sub(saved.saved_unix_ms);
    let (records, torn) = super::journal::read(&cfg.state_file, saved.journal_seq)
        .with_context(|| format!("sip_monitor journal of {}", cfg.state_file.display()))?;
    let mut st = status.lock().unwrap();
    st.restored_journal = records.len();
    st.restored_after_ms = Some(down);
    // Times count from the snapshot (0); the clock then starts at `down`.
    tracker.restore(saved.tracker, 0, 0);
    for t in saved.terminals {
        out.terminals.insert(
            t.user,
            Terminal {
                etag: t.etag,
                cseq: t.cseq,
                // What was outstanding died with the old monitor: sent
                // again.
                pending: t.status.filter(|_| t.unconfirmed),
                refresh_at: t.refresh_in_ms,
                status: t.status,
                state: TerminalState {
                    sessions: t.sessions.into_iter().map(Arc::new).collect(),
                    contact: t.contact,
                },
                ..Default::default()
            },
        );
    }
    out.journal_last = records.last().map_or(saved.journal_seq, |r| r.seq());
    replay(
        records,
        (saved.saved_now, saved.saved_unix_ms),
        tracker,
        &mut out.terminals,
    );
    if let Some(why) = torn {
        warn!("{why}: the journal is replayed up to it");
    }
    // What was taken up: the snapshot with the journal over it.
    st.restored_dialogs = tracker.dialogs();
    st.restored_registrations = tracker.registrations();
    st.restored_terminals = out.terminals.len();
    out.clock_ms = down;
    // The ring kept what arrived while no monitor ran (the first poll
    // reads it), unless it overflowed or is new.
    let blind = if !dp.took_over {
        Some("the copy program was loaded afresh: what happened while the monitor was down was not seen")
    } else if ring_full != saved.ring_full {
        Some("copies were lost while the monitor was down (ring_full moved)")
    } else {
        None
    };
    if let Some(why) = blind {
        out.ended = tracker.end_dialogs(down);
        st.restore_note = Some(format!("restored dialogs ended: {why}"));
        warn!("{why}; ending the {} restored dialogs", st.restored_dialogs);
    }
    info!(
        dialogs = st.restored_dialogs,
        registrations = st.restored_registrations,
        terminals = st.restored_terminals,
        journal = st.restored_journal,
        down_ms = down,
        "sip monitor state restored"
    );
    Ok(out)
}

/// A snapshot being written on its thread.
pub(super) type Saving = std::thread::JoinHandle<std::io::Result<()>>;

impl Monitor {
    /// Start writing the snapshot if something changed since the last one,
    /// `state_interval_ms` has passed, and the last write is done: taken
    /// here (a copy of the state), serialized and flushed on a thread of
    /// its own while the monitor goes on in a new journal generation; the
    /// generations before it are removed once it is on disk.
    pub(super) fn save_state(&mut self) {
        if self.saving.as_ref().is_some_and(|h| h.is_finished()) {
            let r = self
                .saving
                .take()
                .expect("checked")
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the writer panicked")));
            let mut st = self.status.lock().unwrap();
            match r {
                Ok(()) => st.state_saves += 1,
                Err(e) => {
                    st.state_save_failed += 1;
                    // Its journal generations stay: nothing is lost, and
                    // the next snapshot tries again.
                    self.state_dirty = true;
                    warn!(file = %self.cfg.state_file.display(), "state file not written: {e}");
                }
            }
        }
        let interval = std::time::Duration::from_millis(self.cfg.state_interval_ms);
        if !self.state_dirty
            || self.saving.is_some()
            || self.saved_at.is_some_and(|t| t.elapsed() < interval)
        {
            return;
        }
        self.state_dirty = false;
        self.saved_at = Some(std::time::Instant::now());
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
            journal_seq: self.journal.last,
            saved_now: now,
        };
        let gen = self.journal.rotate();
        let path = self.cfg.state_file.clone();
        let spawned = std::thread::Builder::new()
            .name("sip-state".into())
            .spawn(move || {
                save(&path, &saved)?;
                super::journal::remove_below(&path, gen)
            });
        match spawned {
            Ok(h) => self.saving = Some(h),
            Err(e) => {
                self.status.lock().unwrap().state_save_failed += 1;
                self.state_dirty = true;
                warn!("state file writer not started: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use control::sip_monitor::track::{TalkingOn, TerminatedOn, TrackerConfig};

    use super::super::journal::Record;
    use super::*;

    fn sip(first: &str, cseq: &str) -> Vec<u8> {
        let text = format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKc1{}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
            cseq.len()
        );
        crate::packets::udp_packet(
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3),
            5060,
            5060,
            text.as_bytes(),
        )
    }

    fn tracker() -> Tracker {
        Tracker::new(TrackerConfig {
            domain: "example.com".into(),
            talking_on: TalkingOn::Ok200,
            terminated_on: TerminatedOn::Bye,
            default_expires: 3600,
            max_call_ms: 7_200_000,
        })
    }

    /// A snapshot taken with a call ringing, and a journal of what came
    /// after it: the 200 and ACK (both talking), alice's PUBLISH sent and
    /// answered, bob's sent and not answered. Replayed, the call is up,
    /// alice's talking is confirmed (not sent again, her CSeq and
    /// entity-tag kept), and bob's is sent again.
    #[test]
    fn a_journal_replays_over_its_snapshot_as_the_monitor_acted() {
        let (a, b) = ("alice@example.com", "bob@example.com");
        let mut before = tracker();
        for (now, (first, cseq)) in [
            ("INVITE sip:bob@example.com SIP/2.0", "1 INVITE"),
            ("SIP/2.0 180 Ringing", "1 INVITE"),
        ]
        .into_iter()
        .enumerate()
        {
            for m in super::super::frame::messages(&mut Default::default(), &sip(first, cseq)) {
                assert!(before.handle(&m.unwrap(), now as u64).is_empty());
            }
        }
        let snap = before.snapshot(10);
        let saved_unix = 1_000_000;
        let records = vec![
            Record::Copies {
                seq: 5,
                now: 20,
                lens: vec![],
                frames: vec![
                    sip("SIP/2.0 200 OK", "1 INVITE"),
                    sip("ACK sip:bob@example.com SIP/2.0", "1 ACK"),
                ],
            },
            Record::Sent {
                seq: 6,
                user: a.into(),
                cseq: 7,
                status: Some(Status::Talking),
            },
            Record::Answered {
                seq: 7,
                user: a.into(),
                etag: Some("e7".into()),
                refresh_unix_ms: Some(saved_unix + 5_000),
            },
            Record::Sent {
                seq: 8,
                user: b.into(),
                cseq: 3,
                status: Some(Status::Talking),
            },
        ];
        let mut after = tracker();
        after.restore(snap, 0, 0);
        let mut terminals = HashMap::new();
        terminals.insert(
            a.to_string(),
            Terminal {
                cseq: 6,
                etag: Some("e6".into()),
                ..Default::default()
            },
        );
        replay(records, (10, saved_unix), &mut after, &mut terminals);
        assert_eq!(after.dialogs(), 1, "the call is up");
        let (ta, tb) = (&terminals[a], &terminals[b]);
        assert_eq!(
            (
                ta.status,
                ta.pending,
                ta.cseq,
                ta.etag.as_deref(),
                ta.refresh_at
            ),
            (Some(Status::Talking), None, 7, Some("e7"), Some(5_000)),
            "alice's talking reached the server"
        );
        assert_eq!(
            (tb.status, tb.pending, tb.cseq, tb.etag.as_deref()),
            (Some(Status::Talking), Some(Status::Talking), 3, None),
            "bob's is sent again, with a CSeq past the one that went out"
        );
        assert_eq!(ta.state.sessions.len(), 1);
    }
}
