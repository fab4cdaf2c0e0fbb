//! The agent's edge on each server: the requests of a move fed to the
//! pure engine (`control::migration::agent`), and the operations it asks
//! for carried out: the application backend (control socket or
//! commands), the cgroup freezer or SIGSTOP, the checkpoint streamed to
//! the destination agent, the service address moved with `ip`.

use std::{
    collections::{BTreeMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::{
    migration::agent::{Action, Agent, Frozen, Input, Outcome, Output, Side},
    migration::config::{MigratableProcess, MigrationAgent},
    migration::{Body, Frame, ServerInfo, VERSION},
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{
    app,
    journal::Journal,
    transport::{now_ms, request, serve, Auth},
};

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    // Adding an address that is there, or dropping one that is gone, is
    // done already: an Abort after a restart repeats steps that may have
    // happened.
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success()
        || err.contains("File exists")
        || err.contains("already assigned")
        || (args.contains(&"del") && err.contains("Cannot assign requested address"))
    {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The running agent: its engine, shared by the request handlers and
/// the daemon (status, reload).
#[derive(Clone)]
pub struct AgentHandle {
    engine: Arc<Mutex<Agent>>,
}

impl AgentHandle {
    /// Whether `processes` can replace the configured ones now (a process
    /// being migrated is neither removed nor changed).
    pub fn check(&self, processes: &[MigratableProcess]) -> Result<(), String> {
        self.engine.lock().unwrap().check(processes)
    }

    /// Replace the configured processes; what changed.
    pub fn configure(&self, processes: &[MigratableProcess]) -> Result<Vec<String>, String> {
        self.engine.lock().unwrap().configure(processes)
    }
}

/// Pause, checkpoint (application backend), transfer, restore, move the
/// service address, resume — and undo on Abort.
pub async fn run_agent(cfg: MigrationAgent, auth: Arc<Auth>) -> anyhow::Result<AgentHandle> {
    let l = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("agent listen {}", cfg.listen))?;
    info!(listen = %cfg.listen, "migration agent on");
    let (journal, records) = Journal::open(&cfg.state_file)?;
    let mut engine = Agent::new(&cfg.processes);
    for note in engine.restore(records) {
        warn!(state_file = %cfg.state_file.display(), "restored: {note}");
    }
    let handle = AgentHandle {
        engine: Arc::new(Mutex::new(engine)),
    };
    let engine = handle.engine.clone();
    let to_peers = auth.clone();
    let journal = Arc::new(journal);
    tokio::spawn(serve(l, auth, move |f: Frame| {
        let (engine, auth, journal) = (engine.clone(), to_peers.clone(), journal.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                agent(&engine, &journal, &auth, f.body, f.deadline_ms)
            })
            .await
            .unwrap_or_else(|e| Body::Error {
                reason: e.to_string(),
            })
        }
    }));
    Ok(handle)
}

/// How the process is to be frozen: its cgroup when one is configured,
/// else SIGSTOP to `pid` (the one that answered `export`) or its pid
/// file's.
fn freeze_target(p: &MigratableProcess, pid: Option<i32>) -> Result<Frozen, String> {
    match &p.cgroup {
        Some(g) => Ok(Frozen::Cgroup(g.clone())),
        None => pid_of(p, pid).map(Frozen::Stopped),
    }
}

/// Freeze the process (after its state is exported). Waits (≤ 1 s)
/// until the kernel reports it frozen/stopped; if it does not, the
/// freeze is undone.
fn freeze(p: &MigratableProcess, f: Frozen) -> Result<Frozen, String> {
    match &f {
        Frozen::Cgroup(g) => std::fs::write(g.join("cgroup.freeze"), "1").map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    " (the agent runs as uid {}: delegate the cgroup to it, e.g. chown its cgroup.freeze)",
                    unsafe { libc::geteuid() }
                )
            } else {
                String::new()
            };
            format!("{}: freezing {}: {e}{hint}", p.name, g.display())
        })?,
        Frozen::Stopped(pid) => {
            // SAFETY: plain syscall on a pid.
            if unsafe { libc::kill(*pid, libc::SIGSTOP) } != 0 {
                let e = std::io::Error::last_os_error();
                let hint = if e.raw_os_error() == Some(libc::EPERM) {
                    format!(
                        " (the process is another user's and the agent runs as uid {} without CAP_KILL: run the process as the agent's user, or give it a cgroup delegated to that user)",
                        unsafe { libc::geteuid() }
                    )
                } else {
                    String::new()
                };
                return Err(format!("{}: SIGSTOP to pid {pid}: {e}{hint}", p.name));
            }
        }
    }
    let t0 = Instant::now();
    while !is_frozen(&f) {
        if t0.elapsed() > Duration::from_secs(1) {
            thaw(&p.name, std::slice::from_ref(&f));
            return Err(format!("{}: not frozen after 1 s ({f:?})", p.name));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(f)
}

fn is_frozen(f: &Frozen) -> bool {
    match f {
        Frozen::Cgroup(g) => std::fs::read_to_string(g.join("cgroup.events"))
            .is_ok_and(|e| e.lines().any(|l| l == "frozen 1")),
        // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')'.
        Frozen::Stopped(pid) => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('T'))
            })
            .unwrap_or(false),
    }
}

/// Undo [`freeze`]s of a process.
fn thaw(process: &str, frozen: &[Frozen]) {
    for f in frozen {
        match f {
            Frozen::Cgroup(g) => {
                if let Err(e) = std::fs::write(g.join("cgroup.freeze"), "0") {
                    warn!(process, "thawing {}: {e}", g.display());
                }
            }
            // SAFETY: plain syscall on a pid.
            Frozen::Stopped(pid) => unsafe {
                libc::kill(*pid, libc::SIGCONT);
            },
        }
    }
}

/// One application-backend operation (`pause`, `export`, `import`,
/// `resume`, `discard`) through the workload's control socket or its
/// configured command, within `deadline_ms`. Returns the answer (for
/// `export`, the state) and the pid that answered, when known.
fn app(
    p: &MigratableProcess,
    op: &str,
    state: Option<&str>,
    deadline_ms: u64,
) -> Result<(String, Option<i32>), String> {
    let fail = |e: String| format!("{}: {op}: {e}", p.name);
    if let Some(sock) = &p.control {
        let cmd = state
            .map(|s| format!("{op} {s}"))
            .unwrap_or_else(|| op.to_string());
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()).max(1));
        return app::control_peer_within(sock, &cmd, left)
            .map(|(a, pid)| (a, Some(pid)))
            .map_err(|e| fail(e.to_string()));
    }
    let c = p
        .commands
        .as_ref()
        .ok_or_else(|| fail("no control socket or commands configured".into()))?;
    let argv = match op {
        "pause" => &c.pause,
        "export" => &c.export,
        "import" => &c.import,
        "resume" => &c.resume,
        "discard" => match &c.discard {
            Some(d) => d,
            None => return Ok((String::new(), None)),
        },
        other => return Err(fail(format!("unknown operation {other:?}"))),
    };
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("{}: {e}", argv[0])))?;
    // Feed stdin and drain stdout/stderr on their own threads, so a large
    // state in either direction cannot fill a pipe and stall the command.
    let input = state.unwrap_or("").as_bytes().to_vec();
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).map(|_| b)
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    // Bounded by the request's deadline; a command still running then is
    // killed (which also ends the threads: its pipes close).
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(st) => break st,
            None if now_ms() > deadline_ms => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "{:?} still running at the deadline; killed",
                    argv.join(" ")
                )));
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    };
    let stdout = out
        .join()
        .map_err(|_| fail("reading stdout panicked".into()))?
        .map_err(|e| fail(format!("reading stdout: {e}")))?;
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!(
            "{:?} failed ({status}): {}",
            argv.join(" "),
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    // A command that exits without reading all its input is fine (EPIPE).
    let _ = writer.join();
    let text = String::from_utf8(stdout)
        .map_err(|_| fail("the state on stdout is not UTF-8 text".into()))?;
    Ok((text.trim_end_matches('\n').to_string(), None))
}

/// The pid to stop: the one that answered the control socket, else the
/// pid file's.
fn pid_of(p: &MigratableProcess, answered: Option<i32>) -> Result<i32, String> {
    if let Some(pid) = answered {
        return Ok(pid);
    }
    let f = p.pid_file.as_ref().ok_or_else(|| {
        format!(
            "{}: no pid to stop (no control socket, no pid_file)",
            p.name
        )
    })?;
    let text =
        std::fs::read_to_string(f).map_err(|e| format!("{}: {}: {e}", p.name, f.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: {}: not a pid: {:?}", p.name, f.display(), text.trim()))
}

/// Stream the checkpoint to `to`'s agent in pieces, then ask it to
/// import it: its answer to the import (or to the first piece it
/// refused).
fn transfer(
    auth: &Auth,
    process: &str,
    to: &ServerInfo,
    service: IpAddr,
    state: &str,
    deadline_ms: u64,
) -> Result<Body, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let transfer = now_ms() << 16 ^ u64::from(std::process::id() as u16);
    let mut sent = Ok(Body::Ok);
    for (i, (offset, data)) in control::migration::chunks(state, control::migration::CHUNK)
        .into_iter()
        .enumerate()
    {
        let body = Body::CheckpointChunk {
            process: process.to_string(),
            transfer,
            offset,
            data: data.to_string(),
        };
        sent = rt.block_on(request(
            auth,
            &to.agent.to_string(),
            &Frame {
                v: VERSION,
                id: transfer + 1 + i as u64,
                deadline_ms,
                body,
            },
        ));
        if !matches!(sent, Ok(Body::Ok)) {
            break;
        }
    }
    let total = state.len() as u64;
    let f = Frame {
        v: VERSION,
        id: transfer,
        deadline_ms,
        body: Body::ImportState {
            process: process.to_string(),
            state: String::new(),
            service,
            transfer: Some(transfer),
            total,
        },
    };
    if matches!(sent, Ok(Body::Ok)) {
        sent = rt.block_on(request(auth, &to.agent.to_string(), &f));
    }
    sent
}

/// Carry out one of the engine's actions for process `p`.
fn perform(p: &MigratableProcess, auth: &Auth, action: Action, deadline_ms: u64) -> Outcome {
    // A host address on `dev`; an IPv6 one without duplicate address
    // detection, which would keep it tentative (unusable) for a second
    // while the held packets wait.
    let addr = |verb: &str, a: IpAddr, dev: &str| match a {
        IpAddr::V4(_) => ip(&["addr", verb, &format!("{a}/32"), "dev", dev]),
        IpAddr::V6(_) if verb == "add" => {
            ip(&["-6", "addr", verb, &format!("{a}/128"), "dev", dev, "nodad"])
        }
        IpAddr::V6(_) => ip(&["-6", "addr", verb, &format!("{a}/128"), "dev", dev]),
    };
    match action {
        Action::App { op, state } => Outcome::App(app(p, op.name(), state.as_deref(), deadline_ms)),
        Action::Freeze { pid } => Outcome::Frozen(freeze_target(p, pid).and_then(|f| freeze(p, f))),
        Action::Thaw { frozen } => {
            thaw(&p.name, &frozen);
            Outcome::Thawed
        }
        Action::Transfer { to, service, state } => {
            Outcome::Transfer(transfer(auth, &p.name, &to, service, &state, deadline_ms))
        }
        Action::AddAddress { address, dev } => Outcome::Address(addr("add", address, &dev)),
        Action::DelAddress { address, dev } => Outcome::Address(addr("del", address, &dev)),
    }
}

/// One lock per (process, side): requests for a process on the same side
/// of a move run one at a time, so an Abort waits for the start it undoes
/// instead of racing it. The source side (start, source abort) and the
/// destination side (checkpoint, import, resume, destination abort) lock
/// apart, so an agent can be both ends of a move.
fn process_lock(body: &Body) -> Option<Arc<Mutex<()>>> {
    type Locks = BTreeMap<(String, Side), Arc<Mutex<()>>>;
    static LOCKS: Mutex<Locks> = Mutex::new(BTreeMap::new());
    let (process, side) = Side::of(body)?;
    Some(
        LOCKS
            .lock()
            .unwrap()
            .entry((process.to_string(), side))
            .or_default()
            .clone(),
    )
}

/// The failpoint name of an action: `agent:SIDE:WHEN:OP`.
fn point(side: Side, when: &str, action: &Action) -> String {
    let op = match action {
        Action::App { op, .. } => op.name(),
        Action::Freeze { .. } => "freeze",
        Action::Thaw { .. } => "thaw",
        Action::Transfer { .. } => "transfer",
        Action::AddAddress { .. } => "add_address",
        Action::DelAddress { .. } => "del_address",
    };
    let side = match side {
        Side::Source => "source",
        Side::Destination => "destination",
    };
    format!("agent:{side}:{when}:{op}")
}

/// An action not carried out because its record could not be written.
fn not_done(action: &Action, e: String) -> Outcome {
    match action {
        Action::App { .. } => Outcome::App(Err(e)),
        Action::Freeze { .. } => Outcome::Frozen(Err(e)),
        Action::Thaw { .. } => Outcome::Thawed,
        Action::Transfer { .. } => Outcome::Transfer(Err(e)),
        Action::AddAddress { .. } | Action::DelAddress { .. } => Outcome::Address(Err(e)),
    }
}

/// Handle one request: feed it to the engine, carry out what it asks
/// (without holding the engine: the destination of a move may be this
/// agent), feed back the outcomes, until it answers. Before each
/// operation the engine's record is written to the state file (a freeze
/// is recorded before it is made); an operation whose record cannot be
/// written is not carried out, and fails.
fn agent(
    engine: &Mutex<Agent>,
    journal: &Journal,
    auth: &Auth,
    body: Body,
    deadline_ms: u64,
) -> Body {
    let lock = process_lock(&body);
    let _serial = lock
        .as_ref()
        .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()));
    let mut queue: VecDeque<Output> = engine.lock().unwrap().handle(Input::Request(body)).into();
    while let Some(o) = queue.pop_front() {
        match o {
            Output::Answer { body, .. } => {
                if let Err(e) = journal.save(engine) {
                    warn!("{e}");
                }
                return body;
            }
            Output::Changed {
                process,
                side,
                from,
                to,
                cause,
            } => info!(process, ?side, "{from} → {to}: {cause}"),
            Output::Do {
                process,
                side,
                action,
            } => {
                let config = engine
                    .lock()
                    .unwrap()
                    .process(&process)
                    .map(|p| p.config.clone());
                let Some(config) = config else {
                    return Body::Error {
                        reason: format!("no process {process:?} here"),
                    };
                };
                crate::failpoint::hit(&point(side, "before", &action));
                let outcome = match &action {
                    Action::Freeze { pid } => match freeze_target(&config, *pid) {
                        Ok(f) => {
                            engine.lock().unwrap().freezing(&process, f.clone());
                            match journal.save(engine) {
                                Ok(()) => Outcome::Frozen(freeze(&config, f)),
                                Err(e) => not_done(&action, e),
                            }
                        }
                        Err(e) => Outcome::Frozen(Err(e)),
                    },
                    _ => match journal.save(engine) {
                        Ok(()) => perform(&config, auth, action.clone(), deadline_ms),
                        Err(e) => not_done(&action, e),
                    },
                };
                crate::failpoint::hit(&point(side, "after", &action));
                queue.extend(engine.lock().unwrap().handle(Input::Done {
                    process,
                    side,
                    outcome,
                }));
            }
        }
    }
    Body::Error {
        reason: "internal: the agent gave no answer".into(),
    }
}
