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

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

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
            Body::Abort {
                process,
                destination,
                ..
            } => Some((
                process,
                if *destination {
                    Side::Destination
                } else {
                    Side::Source
                },
            )),
            Body::CheckpointChunk { process, .. }
            | Body::ImportState { process, .. }
            | Body::Resume { process } => Some((process, Side::Destination)),
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    Freezing {
        state: String,
    },
    /// The checkpoint is on its way to the destination agent.
    Transferring,
    GivingUpAddress,
    /// A start failed after the pause: thawing and resuming it here.
    Undoing {
        reason: String,
    },
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
    DroppingAddress {
        reason: String,
    },
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
    Transfer {
        to: ServerInfo,
        service: IpAddr,
        state: String,
    },
    /// `ip addr add ADDRESS/32 dev DEV`; answered with [`Outcome::Address`].
    AddAddress { address: IpAddr, dev: String },
    /// `ip addr del ADDRESS/32 dev DEV`; answered with [`Outcome::Address`].
    DelAddress { address: IpAddr, dev: String },
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
    Done {
        process: String,
        side: Side,
        outcome: Outcome,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Do {
        process: String,
        side: Side,
        action: Action,
    },
    /// The answer to the request being handled on this side.
    Answer {
        process: String,
        side: Side,
        body: Body,
    },
    /// A state changed (for the log).
    Changed {
        process: String,
        side: Side,
        from: String,
        to: String,
        cause: String,
    },
}

/// One process this agent can move.
#[derive(Clone, Debug)]
pub struct Process {
    pub config: MigratableProcess,
    pub source: Source,
    pub destination: Destination,
    /// Addresses given away in moves that may still roll back.
    pub moved: Vec<IpAddr>,
    /// Addresses taken with an import that is not resumed yet.
    pub imported: Vec<IpAddr>,
    /// Freezes made and not undone; a thaw clears them once it is done.
    pub frozen: Vec<Frozen>,
    /// The freeze being made ([`Agent::freezing`]), until its outcome.
    freezing: Option<Frozen>,
    /// A checkpoint arriving in pieces: (transfer, what came so far).
    incoming: Option<(u64, Assembly)>,
    /// The start being handled: where to and which address.
    start: Option<(ServerInfo, IpAddr)>,
    /// The import being handled: its address and state.
    import: Option<(IpAddr, String)>,
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
            freezing: None,
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
        !matches!(self.source, Source::Running | Source::Moved)
            || self.destination != Destination::Idle
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
    /// Restored records of processes not configured (kept, not lost).
    orphans: BTreeMap<String, Durable>,
}

impl Agent {
    pub fn new(processes: &[MigratableProcess]) -> Self {
        Self {
            processes: processes
                .iter()
                .map(|p| (p.name.clone(), Process::new(p.clone())))
                .collect(),
            orphans: BTreeMap::new(),
        }
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
            let refused = |what: &str| {
                Err(format!(
                    "{name} is being migrated (source {}, destination {}); it cannot be {what} now",
                    p.source.name(),
                    p.destination.name()
                ))
            };
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
                    self.processes
                        .insert(q.name.clone(), Process::new(q.clone()));
                    changed.push(format!("process {} added", q.name));
                }
            }
        }
        Ok(changed)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Request(body) => self.request(body),
            Input::Done {
                process,
                side,
                outcome,
            } => match self.processes.get_mut(&process) {
                Some(p) => match side {
                    Side::Source => source_done(p, outcome),
                    Side::Destination => destination_done(p, outcome),
                },
                None => vec![Output::Answer {
                    process: process.clone(),
                    side,
                    body: Body::Error {
                        reason: format!("no process {process:?} here"),
                    },
                }],
            },
        }
    }

    fn request(&mut self, body: Body) -> Vec<Output> {
        let Some((name, side)) = Side::of(&body).map(|(n, s)| (n.to_string(), s)) else {
            return vec![Output::Answer {
                process: String::new(),
                side: Side::Source,
                body: Body::Error {
                    reason: format!("an agent does not take {body:?}"),
                },
            }];
        };
        let Some(p) = self.processes.get_mut(&name) else {
            return vec![Output::Answer {
                process: name.clone(),
                side,
                body: Body::Error {
                    reason: format!("no process {name:?} here"),
                },
            }];
        };
        let in_flight = match side {
            Side::Source => !matches!(p.source, Source::Running | Source::Moved),
            Side::Destination => {
                !matches!(p.destination, Destination::Idle | Destination::Imported)
            }
        };
        if in_flight {
            // The edge serialises requests per process and side; this
            // only guards the engine's own state.
            return vec![Output::Answer {
                process: name.clone(),
                side,
                body: Body::Error {
                    reason: format!("a request for {name} is being handled on this side"),
                },
            }];
        }
        match body {
            Body::MigrationStart { to, service, .. } => {
                p.start = Some((to, service));
                let mut out = vec![source_to(p, Source::Pausing, "migration start")];
                out.push(act(
                    p,
                    Side::Source,
                    Action::App {
                        op: AppOp::Pause,
                        state: None,
                    },
                ));
                out
            }
            Body::Abort {
                destination: false,
                reason,
                ..
            } => {
                // The process runs here again, with its address; an
                // address that cannot be restored stays listed for a
                // retry, and the process resumes regardless.
                p.imported.clear();
                let mut out = Vec::new();
                if p.destination == Destination::Imported {
                    out.push(destination_to(
                        p,
                        Destination::Idle,
                        "the source aborted: the process runs here",
                    ));
                }
                let dev = p.config.service_dev.clone();
                p.abort = std::mem::take(&mut p.moved)
                    .into_iter()
                    .map(|address| Action::AddAddress {
                        address,
                        dev: dev.clone(),
                    })
                    .collect();
                p.abort.push(Action::Thaw { frozen: vec![] });
                p.abort.push(Action::App {
                    op: AppOp::Resume,
                    state: None,
                });
                p.errors.clear();
                out.push(source_to(p, Source::Restoring, &format!("abort: {reason}")));
                out.extend(next_abort(p, Side::Source));
                out
            }
            Body::Abort {
                destination: true,
                reason,
                ..
            } => {
                // Keep the copy paused, drop (silently) the connections
                // restored with it and the address taken with it.
                let dev = p.config.service_dev.clone();
                p.abort = vec![
                    Action::App {
                        op: AppOp::Pause,
                        state: None,
                    },
                    Action::App {
                        op: AppOp::Discard,
                        state: None,
                    },
                ];
                p.abort
                    .extend(std::mem::take(&mut p.imported).into_iter().map(|address| {
                        Action::DelAddress {
                            address,
                            dev: dev.clone(),
                        }
                    }));
                p.errors.clear();
                let mut out = vec![destination_to(
                    p,
                    Destination::Discarding,
                    &format!("abort: {reason}"),
                )];
                out.extend(next_abort(p, Side::Destination));
                out
            }
            Body::CheckpointChunk {
                transfer,
                offset,
                data,
                ..
            } => {
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
                vec![Output::Answer {
                    process: name,
                    side,
                    body,
                }]
            }
            Body::ImportState {
                state,
                service,
                transfer,
                total,
                ..
            } => {
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
                            let reason = format!(
                                "checkpoint incomplete: {} of {total} bytes arrived",
                                a.data.len()
                            );
                            return vec![Output::Answer {
                                process: name,
                                side,
                                body: Body::Error { reason },
                            }];
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
                let frozen = p.frozen.clone();
                out.push(destination_to(p, Destination::Thawing, "import"));
                out.push(act(p, Side::Destination, Action::Thaw { frozen }));
                out
            }
            Body::Resume { .. } => {
                let mut out = vec![destination_to(p, Destination::Resuming, "resume")];
                out.push(act(
                    p,
                    Side::Destination,
                    Action::App {
                        op: AppOp::Resume,
                        state: None,
                    },
                ));
                out
            }
            other => vec![Output::Answer {
                process: name,
                side,
                body: Body::Error {
                    reason: format!("an agent does not take {other:?}"),
                },
            }],
        }
    }
}

fn act(p: &Process, side: Side, action: Action) -> Output {
    Output::Do {
        process: p.config.name.clone(),
        side,
        action,
    }
}

fn answer(p: &Process, side: Side, body: Body) -> Output {
    Output::Answer {
        process: p.config.name.clone(),
        side,
        body,
    }
}

fn source_to(p: &mut Process, to: Source, cause: &str) -> Output {
    let from = std::mem::replace(&mut p.source, to);
    Output::Changed {
        process: p.config.name.clone(),
        side: Side::Source,
        from: from.name().into(),
        to: p.source.name().into(),
        cause: cause.into(),
    }
}

fn destination_to(p: &mut Process, to: Destination, cause: &str) -> Output {
    let from = std::mem::replace(&mut p.destination, to);
    Output::Changed {
        process: p.config.name.clone(),
        side: Side::Destination,
        from: from.name().into(),
        to: p.destination.name().into(),
        cause: cause.into(),
    }
}

/// A start failed after the pause: thaw and resume (best effort), then
/// answer with the failure.
fn undo_start(p: &mut Process, reason: String) -> Vec<Output> {
    let mut out = vec![source_to(
        p,
        Source::Undoing {
            reason: reason.clone(),
        },
        &reason,
    )];
    let frozen = p.frozen.clone();
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
    vec![
        destination_to(p, rest, cause),
        answer(p, Side::Destination, body),
    ]
}

/// The next step of an abort, or its answer: every step is tried, and
/// the answer lists what failed.
fn next_abort(p: &mut Process, side: Side) -> Vec<Output> {
    if p.abort.is_empty() {
        let body = if p.errors.is_empty() {
            Body::Ok
        } else {
            Body::Error {
                reason: p.errors.join("; "),
            }
        };
        return match side {
            Side::Source => source_end(p, body, "abort handled"),
            Side::Destination => destination_end(p, body, "abort handled"),
        };
    }
    let mut a = p.abort.remove(0);
    if let Action::Thaw { frozen } = &mut a {
        *frozen = p.frozen.clone();
    }
    p.abort_last = Some(a.clone());
    vec![act(p, side, a)]
}

/// The outcome of an abort step, recorded; an address that could not be
/// put back (or given up) stays listed for a retry.
fn abort_step(p: &mut Process, side: Side, outcome: Outcome, last: &Action) {
    if let (Outcome::Thawed, Action::Thaw { .. }) = (&outcome, last) {
        p.frozen.clear();
    }
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

mod durable;
mod steps;

pub use durable::Durable;
use steps::{destination_done, source_done};

#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod tests;
