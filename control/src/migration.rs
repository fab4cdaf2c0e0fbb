//! Process migration between networks (seed 000): the wire protocol
//! every part speaks, and the coordinator's sequence as a pure engine.
//!
//! Every message travels over TCP as a frame: a 4-byte big-endian length,
//! then a JSON object with the protocol version, a request ID, a deadline
//! and the body. Receivers answer a retried request ID with the answer
//! they gave before, so retries are idempotent.

use std::{
    collections::{HashMap, VecDeque},
    net::Ipv4Addr,
};

use serde::{Deserialize, Serialize};

pub const VERSION: u8 = 1;
/// Largest frame accepted (a checkpoint travels in chunks below this).
pub const MAX_FRAME: usize = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    pub name: String,
    pub address: Ipv4Addr,
    pub network: String,
    /// The agent's endpoint, "ADDR:PORT".
    pub agent: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    pub name: String,
    /// Network number the steering map uses.
    pub id: u32,
    /// The connection controller in front of this network, "ADDR:PORT"
    /// (default: the coordinator's `controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// How the controller reaches this network: its interface there and
    /// the next hop's MAC. A switch request carries them, so a controller
    /// can steer to a network it was not configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mac: Option<String>,
}

impl ServerInfo {
    /// Checks of one entry on its own; `Err((key, reason))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if self.agent.parse::<std::net::SocketAddr>().is_err() {
            return Err(("agent", format!("{:?} is not an address:port", self.agent)));
        }
        Ok(())
    }
}

impl NetworkInfo {
    /// Checks of one entry on its own; `default_controller`: whether the
    /// coordinator has one for networks without their own.
    pub fn check(&self, default_controller: bool) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if self.via.is_some() != self.next_hop_mac.is_some() {
            return Err(("via", "give both via and next_hop_mac (the egress), or neither".into()));
        }
        if let Some(v) = &self.via {
            crate::config::validate_ifname(v).map_err(|r| ("via", r))?;
        }
        if let Some(m) = &self.next_hop_mac {
            if crate::config::parse_mac(m).is_none() {
                return Err(("next_hop_mac", format!("{m:?} is not a MAC address")));
            }
        }
        match &self.controller {
            Some(a) if a.parse::<std::net::SocketAddr>().is_err() => Err(("controller", format!("{a:?} is not an address:port"))),
            None if !default_controller => Err(("controller", "no connection controller: set it here or set migration.coordinator.controller".into())),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    /// Coordinator → agent on server 1 (claim 1): pause, checkpoint,
    /// transfer to server 2, restore there, move the service address.
    MigrationStart { process: String, to: ServerInfo, service: Ipv4Addr },
    /// Agent → coordinator (claim 3).
    MigrationComplete { process: String },
    /// Coordinator → connection controller (claim 4): steer the
    /// terminal's traffic to network 2, releasing held packets there.
    SwitchRequest { service: Ipv4Addr, to: NetworkInfo },
    /// `switch_us`: request received to steering map updated; `released`:
    /// held packets sent on to the new network; `pause_us`: first held
    /// packet arrived to first packet sent on the new network (0 when
    /// nothing was held).
    SwitchDone {
        service: Ipv4Addr,
        #[serde(default)]
        switch_us: u64,
        #[serde(default)]
        released: u32,
        #[serde(default)]
        pause_us: u64,
    },
    /// Coordinator → controller, before the process pauses: hold the
    /// service's packets (released by the next SwitchRequest).
    Hold { service: Ipv4Addr },
    /// Agent on server 1 → agent on server 2: the checkpoint, restored
    /// there (paused), and the service address moved there (claim 5).
    /// `state` is the whole checkpoint, or empty when it came before in
    /// `CheckpointChunk`s of this `transfer` (`total` bytes).
    ImportState {
        process: String,
        state: String,
        service: Ipv4Addr,
        #[serde(default)]
        transfer: Option<u64>,
        #[serde(default)]
        total: u64,
    },
    /// Agent on server 1 → agent on server 2: the checkpoint streamed in
    /// pieces of at most `CHUNK` bytes, at `offset` in the whole.
    CheckpointChunk { process: String, transfer: u64, offset: u64, data: String },
    /// Coordinator → agent: resume the restored process (claim 4).
    Resume { process: String },
    /// Coordinator → agent or controller: undo (rollback) — resume on
    /// server 1; steer back to network 1.
    Abort {
        process: String,
        reason: String,
        /// To server 2: drop the imported copy (stay paused) instead of
        /// resuming.
        #[serde(default)]
        destination: bool,
    },
    /// Server 1's agent (or any client) → coordinator: move `process` to
    /// server `to` (claim 1's migration request).
    MigrateRequest { process: String, to: String },
    /// Coordinator → requester: how the migration ended.
    MigrateResult {
        process: String,
        step: Step,
        #[serde(default)]
        failure: Option<String>,
        #[serde(default)]
        log: Vec<String>,
    },
    Ok,
    Error { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub v: u8,
    pub id: u64,
    /// Unix milliseconds after which the request is void.
    pub deadline_ms: u64,
    pub body: Body,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unsupported protocol version {0}")]
    Version(u8),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("serializable");
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&json);
        out
    }

    /// Take one frame from the front of `buf`: `Ok(None)` when more bytes
    /// are needed; on success the frame's bytes are consumed.
    pub fn take(buf: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let f: Frame = serde_json::from_slice(&buf[4..4 + len]).map_err(|e| FrameError::Malformed(e.to_string()))?;
        buf.drain(..4 + len);
        if f.v != VERSION {
            return Err(FrameError::Version(f.v));
        }
        Ok(Some(f))
    }
}

/// Largest piece of a checkpoint in one frame: JSON escapes a control
/// byte as 6, so even the worst piece stays below `MAX_FRAME`.
pub const CHUNK: usize = 512 << 10;
/// Largest checkpoint a destination agent assembles.
pub const CHECKPOINT_MAX: u64 = 256 << 20;

/// Cut a checkpoint into pieces of at most `max` bytes, at character
/// boundaries, with their offsets.
pub fn chunks(state: &str, max: usize) -> Vec<(u64, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < state.len() {
        let mut end = (at + max.max(4)).min(state.len());
        while !state.is_char_boundary(end) {
            end -= 1;
        }
        out.push((at as u64, &state[at..end]));
        at = end;
    }
    out
}

/// A checkpoint arriving in pieces: each must continue where the last
/// ended; a piece sent again (a retry) is taken once.
#[derive(Debug, Default)]
pub struct Assembly {
    pub data: String,
}

impl Assembly {
    pub fn add(&mut self, offset: u64, piece: &str) -> Result<(), String> {
        let have = self.data.len() as u64;
        let end = offset.checked_add(piece.len() as u64).ok_or_else(|| format!("checkpoint piece at byte {offset} runs past the end of the numbers"))?;
        if end <= have && self.data.get(offset as usize..offset as usize + piece.len()) == Some(piece) {
            return Ok(()); // a retry of a piece already here
        }
        if offset != have {
            return Err(format!("checkpoint piece at byte {offset}, expected {have}"));
        }
        if have + piece.len() as u64 > CHECKPOINT_MAX {
            return Err(format!("checkpoint larger than {CHECKPOINT_MAX} bytes"));
        }
        self.data.push_str(piece);
        Ok(())
    }
}

/// Answers by request ID, so a retried request gets the first answer
/// instead of being carried out twice.
#[derive(Default)]
pub struct Replies {
    answers: HashMap<u64, Body>,
    order: VecDeque<u64>,
}

impl Replies {
    const KEEP: usize = 1024;

    pub fn get(&self, id: u64) -> Option<&Body> {
        self.answers.get(&id)
    }

    /// Record the answer to `id`; a later answer to the same ID is ignored
    /// (the first one stands).
    pub fn put(&mut self, id: u64, answer: Body) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.answers.entry(id) {
            e.insert(answer);
            self.order.push_back(id);
            while self.order.len() > Self::KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.answers.remove(&old);
                }
            }
        }
    }
}

/// The coordinator's steps (claims 1, 3, 4, 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Starting,
    Switching,
    Resuming,
    Done,
    RollingBack,
    RolledBack,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An answer to the request with this ID.
    Answer { id: u64, body: Body },
    /// The request with this ID got no answer before its deadline (or
    /// its connection failed).
    Failed { id: u64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    ToAgent { addr: String, frame: Frame },
    ToController { frame: Frame },
    Progress { step: Step, note: String },
}

/// One migration, driven by answers and failures (sans I/O).
pub struct Migration {
    pub process: String,
    pub service: Ipv4Addr,
    pub from: ServerInfo,
    pub to: ServerInfo,
    pub network1: NetworkInfo,
    pub network2: NetworkInfo,
    pub step: Step,
    /// Why it rolled back.
    pub failure: Option<String>,
    next_id: u64,
    waiting: Option<u64>,
    /// Rollback requests still unanswered.
    undo: Vec<u64>,
    timeout_ms: u64,
}

impl Migration {
    pub fn new(process: &str, service: Ipv4Addr, from: ServerInfo, to: ServerInfo, network1: NetworkInfo, network2: NetworkInfo, first_id: u64, timeout_ms: u64) -> Self {
        Self {
            process: process.into(),
            service,
            from,
            to,
            network1,
            network2,
            step: Step::Starting,
            failure: None,
            next_id: first_id,
            waiting: None,
            undo: Vec::new(),
            timeout_ms,
        }
    }

    fn frame(&mut self, now_ms: u64, body: Body) -> Frame {
        self.next_id += 1;
        Frame { v: VERSION, id: self.next_id, deadline_ms: now_ms + self.timeout_ms, body }
    }

    /// The first request: start the migration on server 1's agent.
    pub fn begin(&mut self, now_ms: u64) -> Vec<Output> {
        let f = self.frame(now_ms, Body::MigrationStart { process: self.process.clone(), to: self.to.clone(), service: self.service });
        self.waiting = Some(f.id);
        vec![
            Output::Progress { step: Step::Starting, note: format!("migration start → agent {} ({})", self.from.name, self.from.agent) },
            Output::ToAgent { addr: self.from.agent.clone(), frame: f },
        ]
    }

    /// Pick up a migration a previous coordinator left at `step` (it
    /// stopped or crashed): one that had switched and asked for the resume
    /// asks again (the resume is idempotent, the traffic is already on
    /// network 2); any earlier step rolls back.
    pub fn recover(&mut self, now_ms: u64, step: Step) -> Vec<Output> {
        match step {
            Step::Done | Step::RolledBack => {
                self.step = step;
                vec![]
            }
            Step::Resuming => {
                self.step = Step::Resuming;
                let f = self.frame(now_ms, Body::Resume { process: self.process.clone() });
                self.waiting = Some(f.id);
                vec![
                    Output::Progress { step: Step::Resuming, note: format!("coordinator restarted; resume → agent {} again", self.to.name) },
                    Output::ToAgent { addr: self.to.agent.clone(), frame: f },
                ]
            }
            _ => {
                self.step = Step::Switching; // so that the rollback runs whole
                self.rollback(now_ms, format!("the coordinator restarted during the migration (step {step:?})"))
            }
        }
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        match input {
            Input::Answer { id, body } if Some(id) == self.waiting => self.advance(now_ms, body),
            Input::Failed { id, reason } if Some(id) == self.waiting => self.rollback(now_ms, reason),
            Input::Answer { id, ref body } if self.undo.contains(&id) => {
                let failed = match body {
                    Body::Error { reason } => Some(reason.clone()),
                    _ => None,
                };
                self.undone(id, failed)
            }
            Input::Failed { id, reason } if self.undo.contains(&id) => self.undone(id, Some(reason)),
            _ => vec![], // a late answer to a request already given up
        }
    }

    /// An undo request ended; a failed one is reported with the reason
    /// the migration rolled back (the rollback is then incomplete).
    fn undone(&mut self, id: u64, failed: Option<String>) -> Vec<Output> {
        self.undo.retain(|u| *u != id);
        let mut out = Vec::new();
        if let Some(why) = failed {
            let f = self.failure.get_or_insert_with(String::new);
            f.push_str(&format!("; rollback incomplete: {why}"));
            out.push(Output::Progress { step: self.step, note: format!("rollback step failed: {why}") });
        }
        if self.undo.is_empty() && self.step == Step::RollingBack {
            self.step = Step::RolledBack;
            out.push(Output::Progress { step: Step::RolledBack, note: format!("rolled back: {}", self.failure.clone().unwrap_or_default()) });
        }
        out
    }

    fn advance(&mut self, now_ms: u64, body: Body) -> Vec<Output> {
        match (self.step, body) {
            (Step::Starting, Body::MigrationComplete { .. }) => {
                // Claim 4: only after completion is the network switched.
                self.step = Step::Switching;
                let f = self.frame(now_ms, Body::SwitchRequest { service: self.service, to: self.network2.clone() });
                self.waiting = Some(f.id);
                vec![
                    Output::Progress { step: Step::Switching, note: format!("switch request → connection controller (network {})", self.network2.name) },
                    Output::ToController { frame: f },
                ]
            }
            (Step::Switching, Body::SwitchDone { .. }) => {
                self.step = Step::Resuming;
                let f = self.frame(now_ms, Body::Resume { process: self.process.clone() });
                self.waiting = Some(f.id);
                vec![Output::Progress { step: Step::Resuming, note: format!("resume → agent {}", self.to.name) }, Output::ToAgent { addr: self.to.agent.clone(), frame: f }]
            }
            (Step::Resuming, Body::Ok) => {
                self.step = Step::Done;
                self.waiting = None;
                vec![Output::Progress { step: Step::Done, note: format!("{} runs on {} behind network {}", self.process, self.to.name, self.network2.name) }]
            }
            (_, Body::Error { reason }) => self.rollback(now_ms, reason),
            (_, other) => self.rollback(now_ms, format!("unexpected answer {other:?}")),
        }
    }

    /// Any failure: the process resumes on server 1, traffic goes (back)
    /// to network 1 with the held packets released there.
    fn rollback(&mut self, now_ms: u64, reason: String) -> Vec<Output> {
        if matches!(self.step, Step::RollingBack | Step::RolledBack | Step::Done) {
            return vec![];
        }
        self.failure = Some(reason.clone());
        self.step = Step::RollingBack;
        self.waiting = None;
        let mut out = vec![Output::Progress { step: Step::RollingBack, note: format!("rolling back: {reason}") }];
        let a = self.frame(now_ms, Body::Abort { process: self.process.clone(), reason: reason.clone(), destination: false });
        self.undo.push(a.id);
        out.push(Output::ToAgent { addr: self.from.agent.clone(), frame: a });
        // The controller releases held packets to network 1 (and steers
        // back if it had switched).
        let s = self.frame(now_ms, Body::SwitchRequest { service: self.service, to: self.network1.clone() });
        self.undo.push(s.id);
        out.push(Output::ToController { frame: s });
        // Server 2's agent drops what it may have imported (best effort, and last: it
        // may be the part that failed, and must not delay the steps above).
        if self.to.agent != self.from.agent {
            let d = self.frame(now_ms, Body::Abort { process: self.process.clone(), reason: reason.clone(), destination: true });
            self.undo.push(d.id);
            out.push(Output::ToAgent { addr: self.to.agent.clone(), frame: d });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(n: &str, net: &str, i: u8) -> ServerInfo {
        ServerInfo { name: n.into(), address: Ipv4Addr::new(10, i, 0, 10), network: net.into(), agent: format!("10.{i}.0.10:7600") }
    }

    fn migration() -> Migration {
        Migration::new(
            "counter",
            Ipv4Addr::new(192, 0, 2, 80),
            server("s1", "n1", 1),
            server("s2", "n2", 2),
            NetworkInfo { name: "n1".into(), id: 1, controller: None, via: None, next_hop_mac: None },
            NetworkInfo { name: "n2".into(), id: 2, controller: None, via: None, next_hop_mac: None },
            100,
            2000,
        )
    }

    fn ids(out: &[Output]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Output::ToAgent { frame, .. } | Output::ToController { frame } => Some(frame.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let f = Frame { v: VERSION, id: 7, deadline_ms: 99, body: Body::SwitchRequest { service: Ipv4Addr::new(192, 0, 2, 80), to: NetworkInfo { name: "n2".into(), id: 2, controller: None, via: None, next_hop_mac: None } } };
        let mut buf = f.encode();
        buf.extend(Frame { id: 8, body: Body::Ok, ..f.clone() }.encode());
        let half = buf.len() - 3;
        let mut partial = buf[..half].to_vec();
        assert_eq!(Frame::take(&mut partial).unwrap(), Some(f.clone()));
        assert_eq!(Frame::take(&mut partial).unwrap(), None, "the second is incomplete");
        assert_eq!(Frame::take(&mut buf).unwrap().unwrap().id, 7);
        assert_eq!(Frame::take(&mut buf).unwrap().unwrap().body, Body::Ok);
        assert!(buf.is_empty());
        let mut big = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        assert_eq!(Frame::take(&mut big), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{oops");
        assert!(matches!(Frame::take(&mut junk), Err(FrameError::Malformed(_))));
        let mut v2 = Frame { v: 2, ..f }.encode();
        assert_eq!(Frame::take(&mut v2), Err(FrameError::Version(2)));
    }

    #[test]
    fn the_worst_piece_fits_a_frame() {
        let piece = "\u{1}".repeat(CHUNK);
        let f = Frame { v: VERSION, id: 1, deadline_ms: 1, body: Body::CheckpointChunk { process: "p".into(), transfer: 1, offset: 0, data: piece } };
        assert!(f.encode().len() < MAX_FRAME);
        assert!(Assembly::default().add(u64::MAX, "x").is_err());
    }

    #[test]
    fn checkpoints_stream_in_pieces_and_reassemble() {
        let state = format!("{{\"n\":\"{}\"}}", "é".repeat(3000) + &"x".repeat(5001));
        let pieces = chunks(&state, 1000);
        assert!(pieces.len() > 10 && pieces.iter().all(|(_, p)| p.len() <= 1000 && !p.is_empty()));
        let mut a = Assembly::default();
        for (off, p) in &pieces {
            a.add(*off, p).unwrap();
            a.add(*off, p).unwrap(); // retried: taken once
        }
        assert_eq!(a.data, state);
        assert!(a.add(0, "X").unwrap_err().contains("expected"), "a different piece over what arrived is refused");
        let mut b = Assembly::default();
        assert!(b.add(1000, "late").unwrap_err().contains("expected 0"), "a gap is refused");
        assert!(chunks("", 10).is_empty());
    }

    #[test]
    fn a_failed_undo_is_reported() {
        let mut m = migration();
        let out = m.begin(0);
        let out = m.handle(5, Input::Failed { id: ids(&out)[0], reason: "agent killed".into() });
        let undo = ids(&out);
        m.handle(6, Input::Answer { id: undo[0], body: Body::Error { reason: "ip addr add: no such device".into() } });
        for id in &undo[1..] {
            m.handle(7, Input::Answer { id: *id, body: Body::Ok });
        }
        assert_eq!(m.step, Step::RolledBack);
        assert_eq!(m.failure.as_deref(), Some("agent killed; rollback incomplete: ip addr add: no such device"));
    }

    #[test]
    fn a_restarted_coordinator_finishes_or_rolls_back() {
        let mut m = migration();
        let out = m.recover(0, Step::Resuming);
        assert!(matches!(&out[1], Output::ToAgent { addr, frame } if addr == "10.2.0.10:7600" && matches!(frame.body, Body::Resume { .. })));
        m.handle(1, Input::Answer { id: ids(&out)[0], body: Body::Ok });
        assert_eq!(m.step, Step::Done);
        for step in [Step::Starting, Step::Switching, Step::RollingBack] {
            let mut m = migration();
            let out = m.recover(0, step);
            assert_eq!(m.step, Step::RollingBack, "{step:?}");
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { frame, .. } if matches!(frame.body, Body::Abort { destination: false, .. }))));
            assert!(out.iter().any(|o| matches!(o, Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 1))));
            for id in ids(&out) {
                m.handle(1, Input::Answer { id, body: Body::Ok });
            }
            assert_eq!(m.step, Step::RolledBack);
            assert!(m.failure.as_deref().unwrap_or("").contains("restarted"));
        }
        assert!(migration().recover(0, Step::Done).is_empty());
    }

    #[test]
    fn retries_get_the_first_answer() {
        let mut r = Replies::default();
        r.put(5, Body::MigrationComplete { process: "p".into() });
        r.put(5, Body::Error { reason: "second attempt".into() });
        assert_eq!(r.get(5), Some(&Body::MigrationComplete { process: "p".into() }));
        for i in 0..2000 {
            r.put(1000 + i, Body::Ok);
        }
        assert!(r.get(5).is_none(), "bounded");
    }

    #[test]
    fn the_happy_path_follows_claims_1_3_4() {
        let mut m = migration();
        let out = m.begin(0);
        assert!(matches!(&out[1], Output::ToAgent { addr, frame } if addr == "10.1.0.10:7600" && matches!(frame.body, Body::MigrationStart { .. })));
        let id = ids(&out)[0];
        let out = m.handle(10, Input::Answer { id, body: Body::MigrationComplete { process: "counter".into() } });
        assert!(matches!(&out[1], Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 2)));
        let id = ids(&out)[0];
        let out = m.handle(20, Input::Answer { id, body: Body::SwitchDone { service: Ipv4Addr::new(192, 0, 2, 80), switch_us: 3, released: 0, pause_us: 0 } });
        assert!(matches!(&out[1], Output::ToAgent { addr, frame } if addr == "10.2.0.10:7600" && matches!(frame.body, Body::Resume { .. })));
        let id = ids(&out)[0];
        m.handle(30, Input::Answer { id, body: Body::Ok });
        assert_eq!(m.step, Step::Done);
    }

    /// Failure at each step (agent killed, server 2 unreachable, switch
    /// refused, deadline exceeded): abort to server 1's agent, steer to
    /// network 1, and report why.
    #[test]
    fn any_failure_rolls_back() {
        for fail_at in 0..3 {
            let mut m = migration();
            let mut out = m.begin(0);
            let answers = [
                Body::MigrationComplete { process: "counter".into() },
                Body::SwitchDone { service: Ipv4Addr::new(192, 0, 2, 80), switch_us: 3, released: 0, pause_us: 0 },
            ];
            for a in answers.iter().take(fail_at) {
                let id = ids(&out)[0];
                out = m.handle(5, Input::Answer { id, body: a.clone() });
            }
            let id = ids(&out)[0];
            let reason = ["agent killed", "switch refused", "deadline exceeded"][fail_at];
            let input = if fail_at == 1 { Input::Answer { id, body: Body::Error { reason: reason.into() } } } else { Input::Failed { id, reason: reason.into() } };
            let out = m.handle(50, input);
            assert_eq!(m.step, Step::RollingBack, "step {fail_at}");
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { addr, frame } if addr == "10.1.0.10:7600" && matches!(frame.body, Body::Abort { destination: false, .. }))));
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { addr, frame } if addr == "10.2.0.10:7600" && matches!(frame.body, Body::Abort { destination: true, .. }))), "server 2 drops its copy");
            assert!(out.iter().any(|o| matches!(o, Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 1))));
            for id in ids(&out) {
                m.handle(60, Input::Answer { id, body: Body::Ok });
            }
            assert_eq!(m.step, Step::RolledBack);
            assert_eq!(m.failure.as_deref(), Some(reason));
            // A late answer to the request given up changes nothing.
            assert!(m.handle(70, Input::Answer { id, body: Body::Ok }).is_empty());
        }
    }
}
