//! The agent's side of a migration, as a pure engine: requests and the
//! results of the edge's operations in, operations and answers out.
//!
//! Each process has two state machines, one per side of a move, because
//! one agent can be both ends of a move (two servers behind one agent):
//!
//! - source (`MigrationStart`, source `Abort`): Running → Pausing →
//!   Exporting → Freezing → Transferring → GivingUpAddress → Moved; a
//!   failure after the pause goes through Undoing (thaw, resume) back to
//!   Running; an Abort goes through Restoring (address back, thaw,
//!   resume) to Running.
//! - destination (chunks, `ImportState`, `Resume`, destination `Abort`):
//!   Idle → Pausing → TakingAddress → Importing → Imported → Resuming →
//!   Idle; a failed import drops the address again (DroppingAddress); an
//!   Abort goes through Discarding (pause, discard, address dropped) to
//!   Idle.
//!
//! What outlives a request is kept beside the states: the addresses given
//! away (`moved`, put back by a source Abort), the addresses taken with
//! an import (`imported`, dropped by a destination Abort), how the
//! process was frozen, and a checkpoint arriving in pieces.

use std::{collections::BTreeMap, net::Ipv4Addr, path::PathBuf};

use super::{
    checkpoint::Assembly,
    config::MigratableProcess,
    wire::{Body, ServerInfo},
};

/// Which side of a move a request is for. Requests of one process on one
/// side are handled one at a time (the edge locks per process and side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    /// The process and side a request is for; `None` for a body an agent
    /// does not take.
    pub fn of(body: &Body) -> Option<(&str, Side)> {
        match body {
            Body::MigrationStart { process, .. } => Some((process, Side::Source)),
            Body::Abort { process, destination, .. } => Some((process, if *destination { Side::Destination } else { Side::Source })),
            Body::CheckpointChunk { process, .. } | Body::ImportState { process, .. } | Body::Resume { process } => Some((process, Side::Destination)),
            _ => None,
        }
    }
}

/// An application-backend operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppOp {
    Pause,
    Export,
    Import,
    Resume,
    Discard,
}

impl AppOp {
    /// The operation's name on the control socket and in the config.
    pub fn name(self) -> &'static str {
        match self {
            AppOp::Pause => "pause",
            AppOp::Export => "export",
            AppOp::Import => "import",
            AppOp::Resume => "resume",
            AppOp::Discard => "discard",
        }
    }
}

/// How a process is held still while it is moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frozen {
    /// `cgroup.freeze` = 1 in this cgroup v2 directory.
    Cgroup(PathBuf),
    /// SIGSTOP to this pid.
    Stopped(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Not moving away: it runs here, or it is a copy that never left.
    Running,
    Pausing,
    Exporting,
    /// Exported; being frozen (cgroup or SIGSTOP) before it is sent.
    Freezing { state: String },
    /// The checkpoint is on its way to the destination agent.
    Transferring,
    GivingUpAddress,
    /// A start failed after the pause: thawing and resuming it here.
    Undoing { reason: String },
    /// Moved away: its addresses went with it (`moved`), its copy here is
    /// frozen; an Abort brings it back.
    Moved,
    /// An Abort: addresses back, thawed, resumed.
    Restoring,
}

impl Source {
    /// The state's name, for the log (without the data it carries).
    pub fn name(&self) -> &'static str {
        match self {
            Source::Running => "Running",
            Source::Pausing => "Pausing",
            Source::Exporting => "Exporting",
            Source::Freezing { .. } => "Freezing",
            Source::Transferring => "Transferring",
            Source::GivingUpAddress => "GivingUpAddress",
            Source::Undoing { .. } => "Undoing",
            Source::Moved => "Moved",
            Source::Restoring => "Restoring",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Nothing imported here waits for a resume.
    Idle,
    Thawing,
    Pausing,
    TakingAddress,
    Importing,
    /// The import failed: the address taken for it is dropped again.
    DroppingAddress { reason: String },
    /// Imported and paused, with its addresses (`imported`), until a
    /// Resume or an Abort.
    Imported,
    Resuming,
    /// An Abort: kept paused, what the import brought dropped, the
    /// addresses it took given up.
    Discarding,
}

impl Destination {
    pub fn name(&self) -> &'static str {
        match self {
            Destination::Idle => "Idle",
            Destination::Thawing => "Thawing",
            Destination::Pausing => "Pausing",
            Destination::TakingAddress => "TakingAddress",
            Destination::Importing => "Importing",
            Destination::DroppingAddress { .. } => "DroppingAddress",
            Destination::Imported => "Imported",
            Destination::Resuming => "Resuming",
            Destination::Discarding => "Discarding",
        }
    }
}

/// What the edge does for the engine; each is answered with
/// [`Input::Done`] for the same process and side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// An application-backend operation; answered with
    /// [`Outcome::App`] (for `export`, the state and the pid that
    /// answered).
    App { op: AppOp, state: Option<String> },
    /// Freeze the process: its cgroup when one is configured, else
    /// SIGSTOP to `pid` (the one that answered `export`) or its pid
    /// file's; answered with [`Outcome::Frozen`].
    Freeze { pid: Option<i32> },
    /// Undo these freezes; answered with [`Outcome::Thawed`].
    Thaw { frozen: Vec<Frozen> },
    /// Stream the checkpoint to `to`'s agent and ask it to import it;
    /// answered with [`Outcome::Transfer`] (its answer to the import).
    Transfer { to: ServerInfo, service: Ipv4Addr, state: String },
    /// `ip addr add ADDRESS/32 dev DEV`; answered with [`Outcome::Address`].
    AddAddress { address: Ipv4Addr, dev: String },
    /// `ip addr del ADDRESS/32 dev DEV`; answered with [`Outcome::Address`].
    DelAddress { address: Ipv4Addr, dev: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    App(Result<(String, Option<i32>), String>),
    Frozen(Result<Frozen, String>),
    Thawed,
    /// The destination's answer to the import, or why none came.
    Transfer(Result<Body, String>),
    Address(Result<(), String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A request (its deadline is the edge's business).
    Request(Body),
    /// The result of the last action for this process and side.
    Done { process: String, side: Side, outcome: Outcome },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Do { process: String, side: Side, action: Action },
    /// The answer to the request being handled on this side.
    Answer { process: String, side: Side, body: Body },
    /// A state changed (for the log).
    Changed { process: String, side: Side, from: String, to: String, cause: String },
}

/// One process this agent can move.
#[derive(Clone, Debug)]
pub struct Process {
    pub config: MigratableProcess,
    pub source: Source,
    pub destination: Destination,
    /// Addresses given away in moves that may still roll back.
    pub moved: Vec<Ipv4Addr>,
    /// Addresses taken with an import that is not resumed yet.
    pub imported: Vec<Ipv4Addr>,
    pub frozen: Vec<Frozen>,
    /// A checkpoint arriving in pieces: (transfer, what came so far).
    incoming: Option<(u64, Assembly)>,
    /// The start being handled: where to and which address.
    start: Option<(ServerInfo, Ipv4Addr)>,
    /// The import being handled: its address and state.
    import: Option<(Ipv4Addr, String)>,
    /// The abort being handled: what is left to do, and what failed.
    abort: Vec<Action>,
    abort_last: Option<Action>,
    errors: Vec<String>,
}

impl Process {
    fn new(config: MigratableProcess) -> Self {
        Self {
            config,
            source: Source::Running,
            destination: Destination::Idle,
            moved: vec![],
            imported: vec![],
            frozen: vec![],
            incoming: None,
            start: None,
            import: None,
            abort: vec![],
            abort_last: None,
            errors: vec![],
        }
    }

    /// Whether a request is being handled for it on either side, or an
    /// import waits for its resume: a reload must not remove or change it.
    pub fn busy(&self) -> bool {
        !matches!(self.source, Source::Running | Source::Moved) || self.destination != Destination::Idle
    }

    /// The source state between requests.
    fn source_at_rest(&self) -> Source {
        if self.moved.is_empty() {
            Source::Running
        } else {
            Source::Moved
        }
    }

    fn destination_at_rest(&self) -> Destination {
        if self.imported.is_empty() {
            Destination::Idle
        } else {
            Destination::Imported
        }
    }
}

/// The agent: its processes and their states.
#[derive(Debug, Default)]
pub struct Agent {
    processes: BTreeMap<String, Process>,
}

impl Agent {
    pub fn new(processes: &[MigratableProcess]) -> Self {
        Self { processes: processes.iter().map(|p| (p.name.clone(), Process::new(p.clone()))).collect() }
    }

    pub fn process(&self, name: &str) -> Option<&Process> {
        self.processes.get(name)
    }

    /// Whether `processes` can replace the configured ones now: a process
    /// being migrated must not be removed or changed. `Err` names it.
    pub fn check(&self, processes: &[MigratableProcess]) -> Result<(), String> {
        for (name, p) in &self.processes {
            if !p.busy() {
                continue;
            }
            let refused = |what: &str| Err(format!("{name} is being migrated (source {}, destination {}); it cannot be {what} now", p.source.name(), p.destination.name()));
            match processes.iter().find(|q| q.name == *name) {
                None => return refused("removed"),
                Some(q) if *q != p.config => return refused("changed"),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Replace the configured processes (after [`Agent::check`]); a kept
    /// process keeps its state. Returns what changed.
    pub fn configure(&mut self, processes: &[MigratableProcess]) -> Result<Vec<String>, String> {
        self.check(processes)?;
        let mut changed = Vec::new();
        self.processes.retain(|name, _| {
            let keep = processes.iter().any(|q| q.name == *name);
            if !keep {
                changed.push(format!("process {name} removed"));
            }
            keep
        });
        for q in processes {
            match self.processes.get_mut(&q.name) {
                Some(p) if p.config == *q => {}
                Some(p) => {
                    p.config = q.clone();
                    changed.push(format!("process {} changed", q.name));
                }
                None => {
                    self.processes.insert(q.name.clone(), Process::new(q.clone()));
                    changed.push(format!("process {} added", q.name));
                }
            }
        }
        Ok(changed)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Request(body) => self.request(body),
            Input::Done { process, side, outcome } => match self.processes.get_mut(&process) {
                Some(p) => match side {
                    Side::Source => source_done(p, outcome),
                    Side::Destination => destination_done(p, outcome),
                },
                None => vec![Output::Answer { process: process.clone(), side, body: Body::Error { reason: format!("no process {process:?} here") } }],
            },
        }
    }

    fn request(&mut self, body: Body) -> Vec<Output> {
        let Some((name, side)) = Side::of(&body).map(|(n, s)| (n.to_string(), s)) else {
            return vec![Output::Answer { process: String::new(), side: Side::Source, body: Body::Error { reason: format!("an agent does not take {body:?}") } }];
        };
        let Some(p) = self.processes.get_mut(&name) else {
            return vec![Output::Answer { process: name.clone(), side, body: Body::Error { reason: format!("no process {name:?} here") } }];
        };
        let in_flight = match side {
            Side::Source => !matches!(p.source, Source::Running | Source::Moved),
            Side::Destination => !matches!(p.destination, Destination::Idle | Destination::Imported),
        };
        if in_flight {
            // The edge serialises requests per process and side; this
            // only guards the engine's own state.
            return vec![Output::Answer { process: name.clone(), side, body: Body::Error { reason: format!("a request for {name} is being handled on this side") } }];
        }
        match body {
            Body::MigrationStart { to, service, .. } => {
                p.start = Some((to, service));
                let mut out = vec![source_to(p, Source::Pausing, "migration start")];
                out.push(act(p, Side::Source, Action::App { op: AppOp::Pause, state: None }));
                out
            }
            Body::Abort { destination: false, reason, .. } => {
                // The process runs here again, with its address; an
                // address that cannot be restored stays listed for a
                // retry, and the process resumes regardless.
                p.imported.clear();
                let mut out = Vec::new();
                if p.destination == Destination::Imported {
                    out.push(destination_to(p, Destination::Idle, "the source aborted: the process runs here"));
                }
                let dev = p.config.service_dev.clone();
                p.abort = std::mem::take(&mut p.moved).into_iter().map(|address| Action::AddAddress { address, dev: dev.clone() }).collect();
                p.abort.push(Action::Thaw { frozen: vec![] });
                p.abort.push(Action::App { op: AppOp::Resume, state: None });
                p.errors.clear();
                out.push(source_to(p, Source::Restoring, &format!("abort: {reason}")));
                out.extend(next_abort(p, Side::Source));
                out
            }
            Body::Abort { destination: true, reason, .. } => {
                // Keep the copy paused, drop (silently) the connections
                // restored with it and the address taken with it.
                let dev = p.config.service_dev.clone();
                p.abort = vec![Action::App { op: AppOp::Pause, state: None }, Action::App { op: AppOp::Discard, state: None }];
                p.abort.extend(std::mem::take(&mut p.imported).into_iter().map(|address| Action::DelAddress { address, dev: dev.clone() }));
                p.errors.clear();
                let mut out = vec![destination_to(p, Destination::Discarding, &format!("abort: {reason}"))];
                out.extend(next_abort(p, Side::Destination));
                out
            }
            Body::CheckpointChunk { transfer, offset, data, .. } => {
                // One transfer per process at a time: a new one replaces
                // an abandoned one.
                if p.incoming.as_ref().is_none_or(|(t, _)| *t != transfer) {
                    p.incoming = Some((transfer, Assembly::default()));
                }
                let a = &mut p.incoming.as_mut().expect("set above").1;
                let body = match a.add(offset, &data) {
                    Ok(()) => Body::Ok,
                    Err(reason) => Body::Error { reason },
                };
                vec![Output::Answer { process: name, side, body }]
            }
            Body::ImportState { state, service, transfer, total, .. } => {
                let state = match transfer {
                    None => state,
                    Some(t) => {
                        let a = match p.incoming.take() {
                            Some((u, a)) if u == t => a,
                            other => {
                                p.incoming = other;
                                Assembly::default()
                            }
                        };
                        if a.data.len() as u64 != total {
                            let reason = format!("checkpoint incomplete: {} of {total} bytes arrived", a.data.len());
                            return vec![Output::Answer { process: name, side, body: Body::Error { reason } }];
                        }
                        a.data
                    }
                };
                // The process comes (back) here: an earlier move away is
                // not coming back.
                p.moved.clear();
                let mut out = Vec::new();
                if p.source == Source::Moved {
                    out.push(source_to(p, Source::Running, "moved back here"));
                }
                p.import = Some((service, state));
                // The copy here may be frozen from an earlier move away.
                let frozen = std::mem::take(&mut p.frozen);
                out.push(destination_to(p, Destination::Thawing, "import"));
                out.push(act(p, Side::Destination, Action::Thaw { frozen }));
                out
            }
            Body::Resume { .. } => {
                let mut out = vec![destination_to(p, Destination::Resuming, "resume")];
                out.push(act(p, Side::Destination, Action::App { op: AppOp::Resume, state: None }));
                out
            }
            other => vec![Output::Answer { process: name, side, body: Body::Error { reason: format!("an agent does not take {other:?}") } }],
        }
    }
}

fn act(p: &Process, side: Side, action: Action) -> Output {
    Output::Do { process: p.config.name.clone(), side, action }
}

fn answer(p: &Process, side: Side, body: Body) -> Output {
    Output::Answer { process: p.config.name.clone(), side, body }
}

fn source_to(p: &mut Process, to: Source, cause: &str) -> Output {
    let from = std::mem::replace(&mut p.source, to);
    Output::Changed { process: p.config.name.clone(), side: Side::Source, from: from.name().into(), to: p.source.name().into(), cause: cause.into() }
}

fn destination_to(p: &mut Process, to: Destination, cause: &str) -> Output {
    let from = std::mem::replace(&mut p.destination, to);
    Output::Changed { process: p.config.name.clone(), side: Side::Destination, from: from.name().into(), to: p.destination.name().into(), cause: cause.into() }
}

/// A start failed after the pause: thaw and resume (best effort), then
/// answer with the failure.
fn undo_start(p: &mut Process, reason: String) -> Vec<Output> {
    let mut out = vec![source_to(p, Source::Undoing { reason: reason.clone() }, &reason)];
    let frozen = std::mem::take(&mut p.frozen);
    out.push(act(p, Side::Source, Action::Thaw { frozen }));
    out
}

/// Back to rest on the source side with this answer.
fn source_end(p: &mut Process, body: Body, cause: &str) -> Vec<Output> {
    p.start = None;
    let rest = p.source_at_rest();
    vec![source_to(p, rest, cause), answer(p, Side::Source, body)]
}

fn destination_end(p: &mut Process, body: Body, cause: &str) -> Vec<Output> {
    p.import = None;
    let rest = p.destination_at_rest();
    vec![destination_to(p, rest, cause), answer(p, Side::Destination, body)]
}

/// The next step of an abort, or its answer: every step is tried, and
/// the answer lists what failed.
fn next_abort(p: &mut Process, side: Side) -> Vec<Output> {
    if p.abort.is_empty() {
        let body = if p.errors.is_empty() { Body::Ok } else { Body::Error { reason: p.errors.join("; ") } };
        return match side {
            Side::Source => source_end(p, body, "abort handled"),
            Side::Destination => destination_end(p, body, "abort handled"),
        };
    }
    let mut a = p.abort.remove(0);
    if let Action::Thaw { frozen } = &mut a {
        *frozen = std::mem::take(&mut p.frozen);
    }
    p.abort_last = Some(a.clone());
    vec![act(p, side, a)]
}

/// The outcome of an abort step, recorded; an address that could not be
/// put back (or given up) stays listed for a retry.
fn abort_step(p: &mut Process, side: Side, outcome: Outcome, last: &Action) {
    let failed = match outcome {
        Outcome::App(Err(e)) | Outcome::Address(Err(e)) => Some(e),
        _ => None,
    };
    if let Some(e) = failed {
        p.errors.push(e);
        match (side, last) {
            (Side::Source, Action::AddAddress { address, .. }) => p.moved.push(*address),
            (Side::Destination, Action::DelAddress { address, .. }) => p.imported.push(*address),
            _ => {}
        }
    }
}

fn source_done(p: &mut Process, outcome: Outcome) -> Vec<Output> {
    let source = p.source.clone();
    match (source, outcome) {
        (Source::Pausing, Outcome::App(Err(e))) => source_end(p, Body::Error { reason: e }, "pause failed"),
        (Source::Pausing, Outcome::App(Ok(_))) => {
            let mut out = vec![source_to(p, Source::Exporting, "paused")];
            out.push(act(p, Side::Source, Action::App { op: AppOp::Export, state: None }));
            out
        }
        (Source::Exporting, Outcome::App(Err(e))) => undo_start(p, e),
        (Source::Exporting, Outcome::App(Ok((state, answered)))) => {
            // The application backend needs the process to answer
            // `export`; from here on it is held still.
            if p.config.freeze {
                let mut out = vec![source_to(p, Source::Freezing { state }, "exported")];
                out.push(act(p, Side::Source, Action::Freeze { pid: answered }));
                out
            } else {
                transfer(p, state, "exported")
            }
        }
        (Source::Freezing { state }, Outcome::Frozen(Ok(f))) => {
            p.frozen.push(f);
            transfer(p, state, "frozen")
        }
        (Source::Freezing { .. }, Outcome::Frozen(Err(e))) => undo_start(p, e),
        (Source::Transferring, Outcome::Transfer(answer)) => {
            let to = p.start.as_ref().map(|(t, _)| t.name.clone()).unwrap_or_default();
            match answer {
                Ok(Body::Ok) => {
                    // The service address now lives on the destination
                    // (claim 5); an Abort puts it back. If it cannot be
                    // given up, the move fails (it must not answer from
                    // two servers); the coordinator's rollback then has
                    // the destination drop its copy.
                    let address = p.start.as_ref().map(|(_, s)| *s).unwrap_or(Ipv4Addr::UNSPECIFIED);
                    let dev = p.config.service_dev.clone();
                    let mut out = vec![source_to(p, Source::GivingUpAddress, &format!("server {to} took the checkpoint"))];
                    out.push(act(p, Side::Source, Action::DelAddress { address, dev }));
                    out
                }
                Ok(Body::Error { reason }) | Err(reason) => undo_start(p, format!("server {to} did not take the checkpoint: {reason}")),
                Ok(other) => undo_start(p, format!("unexpected answer {other:?}")),
            }
        }
        (Source::GivingUpAddress, Outcome::Address(Err(e))) => undo_start(p, format!("giving up the service address: {e}")),
        (Source::GivingUpAddress, Outcome::Address(Ok(()))) => {
            if let Some((_, s)) = p.start.take() {
                p.moved.push(s);
            }
            let process = p.config.name.clone();
            source_end(p, Body::MigrationComplete { process }, "address given up")
        }
        (Source::Undoing { .. }, Outcome::Thawed) => vec![act(p, Side::Source, Action::App { op: AppOp::Resume, state: None })],
        (Source::Undoing { reason }, Outcome::App(_)) => source_end(p, Body::Error { reason }, "resumed after a failed start"),
        (Source::Restoring, outcome) => {
            if let Some(last) = p.abort_last.take() {
                abort_step(p, Side::Source, outcome, &last);
            }
            next_abort(p, Side::Source)
        }
        (s, o) => source_end(p, Body::Error { reason: format!("internal: {o:?} in source state {s:?}") }, "unexpected outcome"),
    }
}

/// Exported (and frozen): stream the checkpoint, then ask for the import.
fn transfer(p: &mut Process, state: String, cause: &str) -> Vec<Output> {
    let (to, service) = p.start.clone().expect("a start is being handled");
    let mut out = vec![source_to(p, Source::Transferring, cause)];
    out.push(act(p, Side::Source, Action::Transfer { to, service, state }));
    out
}

fn destination_done(p: &mut Process, outcome: Outcome) -> Vec<Output> {
    let destination = p.destination.clone();
    let dev = p.config.service_dev.clone();
    match (destination, outcome) {
        (Destination::Thawing, Outcome::Thawed) => {
            let mut out = vec![destination_to(p, Destination::Pausing, "thawed")];
            out.push(act(p, Side::Destination, Action::App { op: AppOp::Pause, state: None }));
            out
        }
        (Destination::Pausing, Outcome::App(Err(e))) => destination_end(p, Body::Error { reason: e }, "pause failed"),
        (Destination::Pausing, Outcome::App(Ok(_))) => {
            // The address first: restored TCP connections speak from it.
            let address = p.import.as_ref().map(|(a, _)| *a).unwrap_or(Ipv4Addr::UNSPECIFIED);
            let mut out = vec![destination_to(p, Destination::TakingAddress, "paused")];
            out.push(act(p, Side::Destination, Action::AddAddress { address, dev }));
            out
        }
        (Destination::TakingAddress, Outcome::Address(Err(e))) => destination_end(p, Body::Error { reason: e }, "taking the address failed"),
        (Destination::TakingAddress, Outcome::Address(Ok(()))) => {
            let state = p.import.as_ref().map(|(_, s)| s.clone());
            let mut out = vec![destination_to(p, Destination::Importing, "address taken")];
            out.push(act(p, Side::Destination, Action::App { op: AppOp::Import, state }));
            out
        }
        (Destination::Importing, Outcome::App(Err(e))) => {
            let address = p.import.as_ref().map(|(a, _)| *a).unwrap_or(Ipv4Addr::UNSPECIFIED);
            let mut out = vec![destination_to(p, Destination::DroppingAddress { reason: e.clone() }, &e)];
            out.push(act(p, Side::Destination, Action::DelAddress { address, dev }));
            out
        }
        (Destination::DroppingAddress { reason }, Outcome::Address(_)) => destination_end(p, Body::Error { reason }, "address dropped after a failed import"),
        (Destination::Importing, Outcome::App(Ok(_))) => {
            if let Some((a, _)) = p.import.take() {
                p.imported.push(a);
            }
            destination_end(p, Body::Ok, "imported")
        }
        (Destination::Resuming, Outcome::App(Err(e))) => destination_end(p, Body::Error { reason: e }, "resume failed"),
        (Destination::Resuming, Outcome::App(Ok(_))) => {
            // A completed move: the source's address is not coming back,
            // and the import here is for good.
            p.moved.clear();
            p.imported.clear();
            let mut out = Vec::new();
            if p.source == Source::Moved {
                out.push(source_to(p, Source::Running, "the move ended here"));
            }
            out.extend(destination_end(p, Body::Ok, "resumed"));
            out
        }
        (Destination::Discarding, outcome) => {
            if let Some(last) = p.abort_last.take() {
                abort_step(p, Side::Destination, outcome, &last);
            }
            next_abort(p, Side::Destination)
        }
        (d, o) => destination_end(p, Body::Error { reason: format!("internal: {o:?} in destination state {d:?}") }, "unexpected outcome"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

    fn config(name: &str, freeze: bool) -> MigratableProcess {
        MigratableProcess { name: name.into(), control: Some("/run/x.ctl".into()), commands: None, pid_file: None, service_dev: "lo".into(), cgroup: None, freeze }
    }

    fn to() -> ServerInfo {
        ServerInfo { name: "s2".into(), address: Ipv4Addr::new(10, 8, 2, 10), network: "n2".into(), agent: "10.8.2.10:7600".parse().unwrap() }
    }

    fn start() -> Body {
        Body::MigrationStart { process: "p".into(), to: to(), service: SVC }
    }

    fn abort(destination: bool) -> Body {
        Body::Abort { process: "p".into(), reason: "switch refused".into(), destination }
    }

    /// Handle one request, answering each action with `outcome`; the
    /// actions asked for and the answer.
    fn run(a: &mut Agent, body: Body, outcome: impl FnMut(&Action) -> Outcome) -> (Vec<Action>, Body) {
        let (actions, answer, _) = run_logged(a, body, outcome);
        (actions, answer)
    }

    /// Like [`run`], also giving the state changes, "side: from → to".
    fn run_logged(a: &mut Agent, body: Body, mut outcome: impl FnMut(&Action) -> Outcome) -> (Vec<Action>, Body, Vec<String>) {
        let mut queue: std::collections::VecDeque<Output> = a.handle(Input::Request(body)).into();
        let (mut actions, mut changes) = (Vec::new(), Vec::new());
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Answer { body, .. } => {
                    assert!(queue.is_empty(), "the answer is the last output: {queue:?}");
                    return (actions, body, changes);
                }
                Output::Changed { side, from, to, .. } => {
                    assert_ne!(from, to, "a change changes something");
                    changes.push(format!("{side:?}: {from} → {to}"));
                }
                Output::Do { process, side, action } => {
                    let o = outcome(&action);
                    actions.push(action);
                    queue.extend(a.handle(Input::Done { process, side, outcome: o }));
                }
            }
        }
        panic!("no answer; actions {actions:?}");
    }

    /// Every action succeeds; `export` gives "STATE" and pid 42.
    fn ok(a: &Action) -> Outcome {
        match a {
            Action::App { op: AppOp::Export, .. } => Outcome::App(Ok(("STATE".into(), Some(42)))),
            Action::App { .. } => Outcome::App(Ok((String::new(), Some(42)))),
            Action::Freeze { pid } => Outcome::Frozen(Ok(Frozen::Stopped(pid.unwrap()))),
            Action::Thaw { .. } => Outcome::Thawed,
            Action::Transfer { .. } => Outcome::Transfer(Ok(Body::Ok)),
            Action::AddAddress { .. } | Action::DelAddress { .. } => Outcome::Address(Ok(())),
        }
    }

    fn app(op: AppOp) -> Action {
        Action::App { op, state: None }
    }

    fn agent() -> Agent {
        Agent::new(&[config("p", true)])
    }

    fn moved_agent() -> Agent {
        let mut a = agent();
        assert_eq!(run(&mut a, start(), ok).1, Body::MigrationComplete { process: "p".into() });
        a
    }

    #[test]
    fn a_start_pauses_exports_freezes_transfers_and_gives_up_the_address() {
        let mut a = agent();
        let (actions, answer) = run(&mut a, start(), ok);
        assert_eq!(
            actions,
            [
                app(AppOp::Pause),
                app(AppOp::Export),
                Action::Freeze { pid: Some(42) },
                Action::Transfer { to: to(), service: SVC, state: "STATE".into() },
                Action::DelAddress { address: SVC, dev: "lo".into() },
            ]
        );
        assert_eq!(answer, Body::MigrationComplete { process: "p".into() });
        let p = a.process("p").unwrap();
        assert_eq!((&p.source, &p.moved, &p.frozen), (&Source::Moved, &vec![SVC], &vec![Frozen::Stopped(42)]));
        assert!(!p.busy(), "a process moved away may be removed");
    }

    #[test]
    fn each_change_is_reported_old_to_new() {
        let mut a = agent();
        let (_, _, changes) = run_logged(&mut a, start(), ok);
        assert_eq!(
            changes,
            ["Source: Running → Pausing", "Source: Pausing → Exporting", "Source: Exporting → Freezing", "Source: Freezing → Transferring", "Source: Transferring → GivingUpAddress", "Source: GivingUpAddress → Moved"]
        );
        let (_, _, changes) = run_logged(&mut a, Body::ImportState { process: "p".into(), state: "S".into(), service: SVC, transfer: None, total: 0 }, ok);
        assert_eq!(
            changes,
            ["Source: Moved → Running", "Destination: Idle → Thawing", "Destination: Thawing → Pausing", "Destination: Pausing → TakingAddress", "Destination: TakingAddress → Importing", "Destination: Importing → Imported"]
        );
        let (_, _, changes) = run_logged(&mut a, abort(true), ok);
        assert_eq!(changes, ["Destination: Imported → Discarding", "Destination: Discarding → Idle"]);
    }

    #[test]
    fn without_freeze_the_state_goes_straight_out() {
        let mut a = Agent::new(&[config("p", false)]);
        let (actions, _) = run(&mut a, start(), ok);
        assert!(!actions.iter().any(|x| matches!(x, Action::Freeze { .. })), "{actions:?}");
        assert!(a.process("p").unwrap().frozen.is_empty());
    }

    #[test]
    fn unknown_processes_and_bodies_are_refused() {
        let mut a = agent();
        let (actions, answer) = run(&mut a, Body::Resume { process: "q".into() }, ok);
        assert!(actions.is_empty());
        assert_eq!(answer, Body::Error { reason: "no process \"q\" here".into() });
        let (_, answer) = run(&mut a, Body::Hold { service: SVC }, ok);
        assert!(matches!(answer, Body::Error { reason } if reason.starts_with("an agent does not take Hold")));
    }

    #[test]
    fn a_failed_pause_answers_without_undoing() {
        let mut a = agent();
        let (actions, answer) = run(&mut a, start(), |x| match x {
            Action::App { op: AppOp::Pause, .. } => Outcome::App(Err("p: pause: refused".into())),
            x => ok(x),
        });
        assert_eq!(actions, [app(AppOp::Pause)]);
        assert_eq!(answer, Body::Error { reason: "p: pause: refused".into() });
        assert_eq!(a.process("p").unwrap().source, Source::Running);
    }

    /// A start that fails after the pause thaws what it froze and resumes
    /// the process; the answer says why (export, freeze, transfer refused
    /// or unanswered or odd, address kept).
    #[test]
    fn a_start_failing_after_the_pause_thaws_and_resumes() {
        type Fail = fn(&Action) -> Option<Outcome>;
        let cases: [(Fail, &str, bool); 6] = [
            (|x| matches!(x, Action::App { op: AppOp::Export, .. }).then(|| Outcome::App(Err("p: export: gone".into()))), "p: export: gone", false),
            (|x| matches!(x, Action::Freeze { .. }).then(|| Outcome::Frozen(Err("p: not frozen after 1 s".into()))), "p: not frozen after 1 s", false),
            (|x| matches!(x, Action::Transfer { .. }).then(|| Outcome::Transfer(Ok(Body::Error { reason: "checkpoint incomplete".into() }))), "server s2 did not take the checkpoint: checkpoint incomplete", true),
            (|x| matches!(x, Action::Transfer { .. }).then(|| Outcome::Transfer(Err("10.8.2.10:7600: deadline exceeded".into()))), "server s2 did not take the checkpoint: 10.8.2.10:7600: deadline exceeded", true),
            (|x| matches!(x, Action::Transfer { .. }).then(|| Outcome::Transfer(Ok(Body::Resume { process: "p".into() }))), "unexpected answer Resume { process: \"p\" }", true),
            (|x| matches!(x, Action::DelAddress { .. }).then(|| Outcome::Address(Err("ip addr del: no".into()))), "giving up the service address: ip addr del: no", true),
        ];
        for (fail, reason, froze) in cases {
            let mut a = agent();
            let (actions, answer) = run(&mut a, start(), |x| fail(x).unwrap_or_else(|| ok(x)));
            assert_eq!(answer, Body::Error { reason: reason.into() });
            let thawed = if froze { vec![Frozen::Stopped(42)] } else { vec![] };
            assert_eq!(actions[actions.len() - 2..], [Action::Thaw { frozen: thawed }, app(AppOp::Resume)], "{reason}");
            let p = a.process("p").unwrap();
            assert_eq!((&p.source, p.moved.len(), p.frozen.len()), (&Source::Running, 0, 0), "{reason}");
        }
    }

    #[test]
    fn a_source_abort_puts_the_address_back_thaws_and_resumes() {
        let mut a = moved_agent();
        let (actions, answer) = run(&mut a, abort(false), ok);
        assert_eq!(actions, [Action::AddAddress { address: SVC, dev: "lo".into() }, Action::Thaw { frozen: vec![Frozen::Stopped(42)] }, app(AppOp::Resume)]);
        assert_eq!(answer, Body::Ok);
        let p = a.process("p").unwrap();
        assert_eq!((&p.source, p.moved.len(), p.frozen.len()), (&Source::Running, 0, 0));
        // Nothing moved (a start that never came): it still resumes.
        let (actions, answer) = run(&mut a, abort(false), ok);
        assert_eq!((actions, answer), (vec![Action::Thaw { frozen: vec![] }, app(AppOp::Resume)], Body::Ok));
    }

    #[test]
    fn a_source_abort_keeps_an_address_it_could_not_restore() {
        let mut a = moved_agent();
        let (actions, answer) = run(&mut a, abort(false), |x| match x {
            Action::AddAddress { .. } => Outcome::Address(Err("ip addr add: no such device".into())),
            Action::App { op: AppOp::Resume, .. } => Outcome::App(Err("p: resume: gone".into())),
            x => ok(x),
        });
        assert_eq!(actions.len(), 3, "every step is tried: {actions:?}");
        assert_eq!(answer, Body::Error { reason: "ip addr add: no such device; p: resume: gone".into() });
        let p = a.process("p").unwrap();
        assert_eq!((&p.source, &p.moved), (&Source::Moved, &vec![SVC]), "listed for a retry");
        let (actions, answer) = run(&mut a, abort(false), ok);
        assert_eq!((actions[0].clone(), answer), (Action::AddAddress { address: SVC, dev: "lo".into() }, Body::Ok));
    }

    fn chunk(transfer: u64, offset: u64, data: &str) -> Body {
        Body::CheckpointChunk { process: "p".into(), transfer, offset, data: data.into() }
    }

    fn import(transfer: u64, total: u64) -> Body {
        Body::ImportState { process: "p".into(), state: String::new(), service: SVC, transfer: Some(transfer), total }
    }

    fn imported_agent() -> Agent {
        let mut a = agent();
        assert_eq!(run(&mut a, chunk(7, 0, "ST"), ok).1, Body::Ok);
        assert_eq!(run(&mut a, chunk(7, 2, "ATE"), ok).1, Body::Ok);
        let (actions, answer) = run(&mut a, import(7, 5), ok);
        assert_eq!(
            actions,
            [Action::Thaw { frozen: vec![] }, app(AppOp::Pause), Action::AddAddress { address: SVC, dev: "lo".into() }, Action::App { op: AppOp::Import, state: Some("STATE".into()) }]
        );
        assert_eq!(answer, Body::Ok);
        a
    }

    #[test]
    fn a_destination_assembles_pauses_takes_the_address_and_imports() {
        let a = imported_agent();
        let p = a.process("p").unwrap();
        assert_eq!((&p.destination, &p.imported), (&Destination::Imported, &vec![SVC]));
        assert!(p.busy(), "an import waiting for its resume may not be removed");
        // A whole checkpoint in the request, no pieces.
        let mut a = agent();
        let body = Body::ImportState { process: "p".into(), state: "WHOLE".into(), service: SVC, transfer: None, total: 0 };
        let (actions, _) = run(&mut a, body, ok);
        assert_eq!(actions[3], Action::App { op: AppOp::Import, state: Some("WHOLE".into()) });
    }

    #[test]
    fn pieces_out_of_order_and_incomplete_checkpoints_are_refused() {
        let mut a = agent();
        assert_eq!(run(&mut a, chunk(7, 0, "ST"), ok).1, Body::Ok);
        assert_eq!(run(&mut a, chunk(7, 0, "ST"), ok).1, Body::Ok, "a retried piece is taken once");
        assert_eq!(run(&mut a, chunk(7, 5, "X"), ok).1, Body::Error { reason: "checkpoint piece at byte 5, expected 2".into() });
        // A new transfer replaces an abandoned one.
        assert_eq!(run(&mut a, chunk(8, 0, "NEW"), ok).1, Body::Ok);
        let (actions, answer) = run(&mut a, import(8, 5), ok);
        assert!(actions.is_empty());
        assert_eq!(answer, Body::Error { reason: "checkpoint incomplete: 3 of 5 bytes arrived".into() });
        assert_eq!(run(&mut a, import(8, 3), ok).1, Body::Error { reason: "checkpoint incomplete: 0 of 3 bytes arrived".into() }, "taken by the first import");
        assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
    }

    #[test]
    fn a_failed_import_gives_the_address_up_again() {
        let mut a = agent();
        let body = Body::ImportState { process: "p".into(), state: "S".into(), service: SVC, transfer: None, total: 0 };
        let (actions, answer) = run(&mut a, body.clone(), |x| match x {
            Action::App { op: AppOp::Import, .. } => Outcome::App(Err("p: import: bad state".into())),
            x => ok(x),
        });
        assert_eq!(actions.last(), Some(&Action::DelAddress { address: SVC, dev: "lo".into() }));
        assert_eq!(answer, Body::Error { reason: "p: import: bad state".into() });
        assert_eq!((&a.process("p").unwrap().destination, a.process("p").unwrap().imported.len()), (&Destination::Idle, 0));
        // A refused pause or address: answered, nothing taken.
        let (actions, answer) = run(&mut a, body.clone(), |x| match x {
            Action::App { op: AppOp::Pause, .. } => Outcome::App(Err("p: pause: no".into())),
            x => ok(x),
        });
        assert_eq!((actions.len(), answer), (2, Body::Error { reason: "p: pause: no".into() }));
        let (actions, answer) = run(&mut a, body, |x| match x {
            Action::AddAddress { .. } => Outcome::Address(Err("ip addr add: no".into())),
            x => ok(x),
        });
        assert_eq!((actions.len(), answer), (3, Body::Error { reason: "ip addr add: no".into() }));
        assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
    }

    #[test]
    fn a_resume_makes_the_import_for_good() {
        let mut a = imported_agent();
        let (actions, answer) = run(&mut a, Body::Resume { process: "p".into() }, ok);
        assert_eq!((actions, answer), (vec![app(AppOp::Resume)], Body::Ok));
        let p = a.process("p").unwrap();
        assert_eq!((&p.destination, p.imported.len()), (&Destination::Idle, 0));
        // A failed resume keeps the import waiting.
        let mut a = imported_agent();
        let (_, answer) = run(&mut a, Body::Resume { process: "p".into() }, |_| Outcome::App(Err("p: resume: no".into())));
        assert_eq!(answer, Body::Error { reason: "p: resume: no".into() });
        assert_eq!(a.process("p").unwrap().destination, Destination::Imported);
    }

    #[test]
    fn a_destination_abort_keeps_it_paused_and_drops_what_came() {
        let mut a = imported_agent();
        let (actions, answer) = run(&mut a, abort(true), ok);
        assert_eq!(actions, [app(AppOp::Pause), app(AppOp::Discard), Action::DelAddress { address: SVC, dev: "lo".into() }]);
        assert_eq!(answer, Body::Ok);
        assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
        // An address it cannot give up stays listed for a retry.
        let mut a = imported_agent();
        let (_, answer) = run(&mut a, abort(true), |x| match x {
            Action::DelAddress { .. } => Outcome::Address(Err("ip addr del: busy".into())),
            x => ok(x),
        });
        assert_eq!(answer, Body::Error { reason: "ip addr del: busy".into() });
        let p = a.process("p").unwrap();
        assert_eq!((&p.destination, &p.imported), (&Destination::Imported, &vec![SVC]));
    }

    /// One agent as both ends (two servers behind it): the import here
    /// thaws the copy the start froze, and its resume ends the move.
    #[test]
    fn one_agent_can_be_both_ends() {
        let mut a = moved_agent();
        let body = Body::ImportState { process: "p".into(), state: "S".into(), service: SVC, transfer: None, total: 0 };
        let (actions, _) = run(&mut a, body, ok);
        assert_eq!(actions[0], Action::Thaw { frozen: vec![Frozen::Stopped(42)] });
        let p = a.process("p").unwrap();
        assert_eq!((&p.source, p.moved.len()), (&Source::Running, 0), "the move away is not coming back");
        run(&mut a, Body::Resume { process: "p".into() }, ok);
        // A source abort (switch refused) drops the import's addresses
        // unasked: the process runs here again.
        let mut a = imported_agent();
        run(&mut a, abort(false), ok);
        assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
    }

    #[test]
    fn a_second_request_on_a_busy_side_is_refused() {
        let mut a = agent();
        let out = a.handle(Input::Request(start()));
        assert!(matches!(out.last(), Some(Output::Do { action: Action::App { op: AppOp::Pause, .. }, .. })));
        let out = a.handle(Input::Request(start()));
        assert!(matches!(&out[..], [Output::Answer { body: Body::Error { reason }, .. }] if reason.contains("being handled")), "{out:?}");
        // The other side is free.
        assert_eq!(run(&mut a, chunk(1, 0, "x"), ok).1, Body::Ok);
    }

    #[test]
    fn a_reload_keeps_a_process_being_migrated() {
        let mut a = agent();
        a.handle(Input::Request(start()));
        let e = a.check(&[config("q", true)]).unwrap_err();
        assert!(e.starts_with("p is being migrated (source Pausing") && e.ends_with("cannot be removed now"), "{e}");
        let e = a.check(&[config("p", false)]).unwrap_err();
        assert!(e.ends_with("cannot be changed now"), "{e}");
        assert!(a.configure(&[config("q", true)]).is_err());
        assert!(a.process("q").is_none(), "a refused reload changes nothing");
        a.check(&[config("p", true), config("q", true)]).unwrap();
        // At rest (here: moved away) it may go; others come and change.
        let mut a = moved_agent();
        assert_eq!(a.configure(&[config("q", true)]).unwrap(), ["process p removed", "process q added"]);
        assert_eq!(a.configure(&[config("q", false)]).unwrap(), ["process q changed"]);
        assert!(a.configure(&[config("q", false)]).unwrap().is_empty());
        assert_eq!(run(&mut a, Body::Resume { process: "p".into() }, ok).1, Body::Error { reason: "no process \"p\" here".into() });
    }
}
