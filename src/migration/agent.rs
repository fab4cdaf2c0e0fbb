//! The agent on each server: pause, checkpoint (application backend),
//! transfer, restore, move the service address, resume, and undo on
//! Abort; the process held still by the cgroup freezer or SIGSTOP.

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::{
    migration::config::{MigratableProcess, MigrationAgent},
    migration::{Body, Frame, VERSION},
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{
    app,
    transport::{now_ms, request, serve},
};

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("File exists") || String::from_utf8_lossy(&out.stderr).contains("already assigned") {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Pause, checkpoint (application backend), transfer, restore, move the
/// service address, resume — and undo on Abort.
pub async fn run_agent(cfg: MigrationAgent) -> anyhow::Result<()> {
    let l = TcpListener::bind(cfg.listen).await.with_context(|| format!("agent listen {}", cfg.listen))?;
    info!(listen = %cfg.listen, "migration agent on");
    let cfg = Arc::new(cfg);
    tokio::spawn(serve(l, move |f: Frame| {
        let cfg = cfg.clone();
        async move { tokio::task::spawn_blocking(move || agent(&cfg, f.body, f.deadline_ms)).await.unwrap_or_else(|e| Body::Error { reason: e.to_string() }) }
    }));
    Ok(())
}

/// Service addresses this agent gave away in migrations that may still
/// roll back, by process.
static MOVED: Mutex<Vec<(String, Ipv4Addr)>> = Mutex::new(Vec::new());
/// Checkpoints arriving in pieces, by (process, transfer).
type Incoming = std::collections::BTreeMap<(String, u64), control::migration::Assembly>;
static INCOMING: Mutex<Incoming> = Mutex::new(std::collections::BTreeMap::new());

/// Service addresses this agent took with an imported checkpoint that is
/// not resumed yet, by process.
static IMPORTED: Mutex<Vec<(String, Ipv4Addr)>> = Mutex::new(Vec::new());

fn take(list: &Mutex<Vec<(String, Ipv4Addr)>>, process: &str) -> Vec<Ipv4Addr> {
    let mut m = list.lock().unwrap();
    let (gone, kept): (Vec<_>, Vec<_>) = m.drain(..).partition(|(n, _)| n == process);
    *m = kept;
    gone.into_iter().map(|(_, a)| a).collect()
}

/// How a process is held still while it is moved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Frozen {
    /// `cgroup.freeze` = 1 in this cgroup v2 directory.
    Cgroup(std::path::PathBuf),
    /// SIGSTOP to this pid.
    Stopped(i32),
}

/// Processes this agent froze, by process name.
static FROZEN: Mutex<Vec<(String, Frozen)>> = Mutex::new(Vec::new());

/// Freeze the process (after its state is exported): its cgroup when one
/// is configured, else SIGSTOP to the pid that answered its control
/// socket. Waits (≤ 1 s) until the kernel reports it frozen/stopped.
fn freeze(p: &MigratableProcess, pid: i32) -> Result<(), String> {
    let f = match &p.cgroup {
        Some(g) => {
            std::fs::write(g.join("cgroup.freeze"), "1").map_err(|e| format!("{}: freezing {}: {e}", p.name, g.display()))?;
            Frozen::Cgroup(g.clone())
        }
        None => {
            // SAFETY: plain syscall on a pid.
            if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
                return Err(format!("{}: SIGSTOP to pid {pid}: {}", p.name, std::io::Error::last_os_error()));
            }
            Frozen::Stopped(pid)
        }
    };
    FROZEN.lock().unwrap().push((p.name.clone(), f.clone()));
    let t0 = Instant::now();
    while !is_frozen(&f) {
        if t0.elapsed() > Duration::from_secs(1) {
            thaw(&p.name);
            return Err(format!("{}: not frozen after 1 s ({f:?})", p.name));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn is_frozen(f: &Frozen) -> bool {
    match f {
        Frozen::Cgroup(g) => std::fs::read_to_string(g.join("cgroup.events")).is_ok_and(|e| e.lines().any(|l| l == "frozen 1")),
        // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')'.
        Frozen::Stopped(pid) => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('T')))
            .unwrap_or(false),
    }
}

/// Undo [`freeze`] for a process, if this agent froze it.
fn thaw(process: &str) {
    let mut m = FROZEN.lock().unwrap();
    m.retain(|(n, f)| {
        if n != process {
            return true;
        }
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
        false
    });
}

/// One application-backend operation (`pause`, `export`, `import`,
/// `resume`, `discard`) through the workload's control socket or its
/// configured command, within `deadline_ms`. Returns the answer (for
/// `export`, the state) and the pid that answered, when known.
fn app(p: &MigratableProcess, op: &str, state: Option<&str>, deadline_ms: u64) -> Result<(String, Option<i32>), String> {
    let fail = |e: String| format!("{}: {op}: {e}", p.name);
    if let Some(sock) = &p.control {
        let cmd = state.map(|s| format!("{op} {s}")).unwrap_or_else(|| op.to_string());
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()).max(1));
        return app::control_peer_within(sock, &cmd, left).map(|(a, pid)| (a, Some(pid))).map_err(|e| fail(e.to_string()));
    }
    let c = p.commands.as_ref().ok_or_else(|| fail("no control socket or commands configured".into()))?;
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
                return Err(fail(format!("{:?} still running at the deadline; killed", argv.join(" "))));
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    };
    let stdout = out.join().map_err(|_| fail("reading stdout panicked".into()))?.map_err(|e| fail(format!("reading stdout: {e}")))?;
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!("{:?} failed ({status}): {}", argv.join(" "), String::from_utf8_lossy(&stderr).trim())));
    }
    // A command that exits without reading all its input is fine (EPIPE).
    let _ = writer.join();
    let text = String::from_utf8(stdout).map_err(|_| fail("the state on stdout is not UTF-8 text".into()))?;
    Ok((text.trim_end_matches('\n').to_string(), None))
}

/// The pid to stop: the one that answered the control socket, else the
/// pid file's.
fn pid_of(p: &MigratableProcess, answered: Option<i32>) -> Result<i32, String> {
    if let Some(pid) = answered {
        return Ok(pid);
    }
    let f = p.pid_file.as_ref().ok_or_else(|| format!("{}: no pid to stop (no control socket, no pid_file)", p.name))?;
    let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {}: {e}", p.name, f.display()))?;
    text.trim().parse().map_err(|_| format!("{}: {}: not a pid: {:?}", p.name, f.display(), text.trim()))
}

/// One lock per (process, side): requests for a process on the same side
/// of a move run one at a time, so an Abort waits for the start it undoes
/// instead of racing it. The source side (start, source abort) and the
/// destination side (checkpoint, import, resume, destination abort) lock
/// apart, so an agent can be both ends of a move.
fn process_lock(body: &Body) -> Option<Arc<Mutex<()>>> {
    static LOCKS: Mutex<std::collections::BTreeMap<(String, bool), Arc<Mutex<()>>>> = Mutex::new(std::collections::BTreeMap::new());
    let key = match body {
        Body::MigrationStart { process, .. } => (process.clone(), true),
        Body::Abort { process, destination, .. } => (process.clone(), !*destination),
        Body::CheckpointChunk { process, .. } | Body::ImportState { process, .. } | Body::Resume { process } => (process.clone(), false),
        _ => return None,
    };
    Some(LOCKS.lock().unwrap().entry(key).or_default().clone())
}

fn agent(cfg: &MigrationAgent, body: Body, deadline_ms: u64) -> Body {
    let lock = process_lock(&body);
    let _serial = lock.as_ref().map(|l| l.lock().unwrap_or_else(|e| e.into_inner()));
    let proc_of = |name: &str| cfg.processes.iter().find(|p| p.name == name).ok_or_else(|| format!("no process {name:?} here"));
    let ctl = |p: &MigratableProcess, op: &str| app(p, op, None, deadline_ms);
    let r: Result<Body, String> = (|| match body {
        Body::MigrationStart { process, to, service } => {
            let p = proc_of(&process)?;
            ctl(p, "pause")?;
            let undo = |p: &MigratableProcess| {
                thaw(&p.name);
                let _ = ctl(p, "resume");
            };
            let state = match ctl(p, "export") {
                Ok((s, answered)) => {
                    // The application backend needs the process to answer
                    // `export`; from here on it is held still.
                    if p.freeze {
                        if let Err(e) = (if p.cgroup.is_some() { Ok(0) } else { pid_of(p, answered) }).and_then(|pid| freeze(p, pid)) {
                            undo(p);
                            return Err(e);
                        }
                    }
                    s
                }
                Err(e) => {
                    undo(p);
                    return Err(e);
                }
            };
            // Stream the checkpoint in pieces, then ask for the import.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let transfer = now_ms() << 16 ^ u64::from(std::process::id() as u16);
            let mut sent = Ok(Body::Ok);
            for (i, (offset, data)) in control::migration::chunks(&state, control::migration::CHUNK).into_iter().enumerate() {
                let body = Body::CheckpointChunk { process: process.clone(), transfer, offset, data: data.to_string() };
                sent = rt.block_on(request(&to.agent, &Frame { v: VERSION, id: transfer + 1 + i as u64, deadline_ms, body }));
                if !matches!(sent, Ok(Body::Ok)) {
                    break;
                }
            }
            let total = state.len() as u64;
            let f = Frame { v: VERSION, id: transfer, deadline_ms, body: Body::ImportState { process: process.clone(), state: String::new(), service, transfer: Some(transfer), total } };
            if matches!(sent, Ok(Body::Ok)) {
                sent = rt.block_on(request(&to.agent, &f));
            }
            match sent {
                Ok(Body::Ok) => {}
                Ok(Body::Error { reason }) | Err(reason) => {
                    undo(p);
                    return Err(format!("server {} did not take the checkpoint: {reason}", to.name));
                }
                Ok(other) => {
                    undo(p);
                    return Err(format!("unexpected answer {other:?}"));
                }
            }
            // The service address now lives on server 2 (claim 5); an Abort
            // puts it back. If it cannot be given up, the move fails (it
            // must not answer from two servers); the coordinator's rollback
            // then has server 2 drop its copy.
            if let Err(e) = ip(&["addr", "del", &format!("{service}/32"), "dev", &p.service_dev]) {
                undo(p);
                return Err(format!("giving up the service address: {e}"));
            }
            MOVED.lock().unwrap().push((process.clone(), service));
            Ok(Body::MigrationComplete { process })
        }
        Body::CheckpointChunk { process, transfer, offset, data } => {
            proc_of(&process)?;
            let mut m = INCOMING.lock().unwrap();
            // One transfer per process at a time: a new one replaces an
            // abandoned one.
            m.retain(|(p, t), _| *p != process || *t == transfer);
            m.entry((process, transfer)).or_default().add(offset, &data)?;
            Ok(Body::Ok)
        }
        Body::ImportState { process, state, service, transfer, total } => {
            let p = proc_of(&process)?;
            let state = match transfer {
                None => state,
                Some(t) => {
                    let a = INCOMING.lock().unwrap().remove(&(process.clone(), t)).unwrap_or_default();
                    if a.data.len() as u64 != total {
                        return Err(format!("checkpoint incomplete: {} of {total} bytes arrived", a.data.len()));
                    }
                    a.data
                }
            };
            MOVED.lock().unwrap().retain(|(n, _)| *n != process);
            // The copy here may be frozen from an earlier move away.
            thaw(&process);
            ctl(p, "pause")?;
            // The address first: restored TCP connections speak from it.
            ip(&["addr", "add", &format!("{service}/32"), "dev", &p.service_dev])?;
            if let Err(e) = app(p, "import", Some(&state), deadline_ms) {
                ip(&["addr", "del", &format!("{service}/32"), "dev", &p.service_dev]).ok();
                return Err(e);
            }
            IMPORTED.lock().unwrap().push((process, service));
            Ok(Body::Ok)
        }
        Body::Resume { process } => {
            ctl(proc_of(&process)?, "resume")?;
            // A completed move: the source's address is not coming back,
            // and the import here is for good.
            MOVED.lock().unwrap().retain(|(n, _)| *n != process);
            IMPORTED.lock().unwrap().retain(|(n, _)| *n != process);
            Ok(Body::Ok)
        }
        Body::Abort { process, destination, .. } => {
            let p = proc_of(&process)?;
            let mut errors = Vec::new();
            if destination {
                // Keep the copy paused, drop (silently) the connections
                // restored with it and the address taken with it.
                for op in ["pause", "discard"] {
                    if let Err(e) = ctl(p, op) {
                        errors.push(e);
                    }
                }
                for a in take(&IMPORTED, &process) {
                    if let Err(e) = ip(&["addr", "del", &format!("{a}/32"), "dev", &p.service_dev]) {
                        errors.push(e);
                        IMPORTED.lock().unwrap().push((process.clone(), a));
                    }
                }
            } else {
                // The source: the process runs here again, with its
                // address; an address that cannot be restored stays listed
                // for a retry, and the process resumes regardless.
                take(&IMPORTED, &process);
                for a in take(&MOVED, &process) {
                    if let Err(e) = ip(&["addr", "add", &format!("{a}/32"), "dev", &p.service_dev]) {
                        errors.push(e);
                        MOVED.lock().unwrap().push((process.clone(), a));
                    }
                }
                thaw(&process);
                if let Err(e) = ctl(p, "resume") {
                    errors.push(e);
                }
            }
            if errors.is_empty() {
                Ok(Body::Ok)
            } else {
                Err(errors.join("; "))
            }
        }
        other => Err(format!("an agent does not take {other:?}")),
    })();
    r.unwrap_or_else(|reason| Body::Error { reason })
}
