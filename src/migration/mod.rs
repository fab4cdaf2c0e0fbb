//! Process migration between networks (seed 000): the agent on each
//! server, the connection controller on the edge host, and the
//! coordinator, all speaking `control::migration` frames over TCP.

pub mod cli;
pub mod app;
mod role;

pub use role::MigrationRole;

use std::{
    collections::{HashMap, VecDeque},
    net::{Ipv4Addr, SocketAddrV4},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use control::{
    migration::config::{MigratableProcess, MigrationAgent, MigrationController, MigrationCoordinator},
    migration::{Body, Frame, Input, Migration, Output, Replies, Step, VERSION},
};
use dataplane_common::steer::{NetEgress, Steering, STEER_HOLD};
use dataplane_user::{
    xsk::{Xsk, XskOptions},
    Dataplane,
};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tracing::{info, warn};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Send one request and wait for its answer until its deadline.
pub async fn request(addr: &str, frame: &Frame) -> Result<Body, String> {
    let left = Duration::from_millis(frame.deadline_ms.saturating_sub(now_ms()).max(1));
    let work = async {
        let mut c = TcpStream::connect(addr).await.map_err(|e| format!("{addr}: {e}"))?;
        c.write_all(&frame.encode()).await.map_err(|e| format!("{addr}: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(f) = Frame::take(&mut buf).map_err(|e| e.to_string())? {
                if f.id == frame.id {
                    return Ok(f.body);
                }
                // ID 0: the peer could not read our frame at all.
                if let (0, Body::Error { reason }) = (f.id, &f.body) {
                    return Err(format!("{addr} refused the request: {reason}"));
                }
                continue;
            }
            let n = c.read(&mut chunk).await.map_err(|e| format!("{addr}: {e}"))?;
            if n == 0 {
                return Err(format!("{addr} closed the connection"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("{addr}: deadline exceeded")),
    }
}

/// Serve frames on `listener`, answering each with `handle`; a retried
/// request ID gets the first answer again.
async fn serve<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(Frame) -> F + Send + Sync + Clone + 'static,
    F: std::future::Future<Output = Body> + Send,
{
    let replies = Arc::new(tokio::sync::Mutex::new(Replies::default()));
    loop {
        let Ok((mut c, _)) = listener.accept().await else { continue };
        let (handle, replies) = (handle.clone(), replies.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                match Frame::take(&mut buf) {
                    Ok(Some(f)) => {
                        let id = f.id;
                        let cached = replies.lock().await.get(id).cloned();
                        let body = match cached {
                            Some(b) => b,
                            None if f.deadline_ms < now_ms() => Body::Error { reason: "deadline passed before handling".into() },
                            None => {
                                let b = handle(f).await;
                                replies.lock().await.put(id, b.clone());
                                b
                            }
                        };
                        let out = Frame { v: VERSION, id, deadline_ms: 0, body };
                        if c.write_all(&out.encode()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = c.write_all(&Frame { v: VERSION, id: 0, deadline_ms: 0, body: Body::Error { reason: e.to_string() } }.encode()).await;
                        return;
                    }
                }
                match c.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("File exists") || String::from_utf8_lossy(&out.stderr).contains("already assigned") {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

// ---- agent -------------------------------------------------------------

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

// ---- connection controller ----------------------------------------------

/// Frames one service may have held at once; more are dropped and counted.
pub const HOLD_FRAMES_MAX: usize = 65536;

/// Packets held during migrations: the AF_XDP sockets the steering
/// program hands them to (one per receive queue of the terminal-side
/// interface), and the frames taken off them, per service, in order.
struct Held {
    rx: Vec<Xsk>,
    frames: HashMap<u32, VecDeque<Vec<u8>>>,
    /// When each service's first held frame was taken off a socket.
    first: HashMap<u32, Instant>,
    overflow: u64,
}

impl Held {
    /// Move every frame waiting on the sockets into `frames`.
    fn drain(&mut self) {
        let Held { rx, frames, first, overflow } = self;
        // Bounded per call (64 × 256 frames a socket), so a flood to a
        // held service cannot keep the lock from a switch.
        for x in rx.iter_mut() {
            for _ in 0..64 {
                let n = x.recv(256, |f| match ipv4_dst(f) {
                    Some(dst) => {
                        first.entry(dst).or_insert_with(Instant::now);
                        let q = frames.entry(dst).or_default();
                        if q.len() < HOLD_FRAMES_MAX {
                            q.push_back(f.to_vec());
                        } else {
                            *overflow += 1;
                        }
                    }
                    None => *overflow += 1,
                });
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// The destination address (network order, as the steering map keys it)
/// of an IPv4 frame, behind up to two VLAN tags.
fn ipv4_dst(f: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    for _ in 0..2 {
        if proto != 0x8100 && proto != 0x88a8 {
            break;
        }
        off += 4;
        proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    if proto != 0x0800 {
        return None;
    }
    let d = f.get(off + 2 + 16..off + 2 + 20)?;
    Some(u32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
}

struct Controller {
    dp: Dataplane,
    /// Network id → (next hop MAC, egress MAC, egress ifindex).
    nets: HashMap<u32, ([u8; 6], [u8; 6], u32)>,
    /// AF_XDP sockets that send released frames, by interface (networks
    /// behind the terminal-side interface use its receive socket).
    tx: HashMap<u32, Xsk>,
    ingress: u32,
    held: Arc<Mutex<Held>>,
    current: HashMap<Ipv4Addr, u32>,
    pub last_switch_us: Option<u64>,
}

impl Controller {
    /// Program network `id`'s egress (map entry, and a TX socket on its
    /// interface unless one is open already).
    fn add_network(&mut self, id: u32, name: &str, via: &str, next_hop_mac: &str) -> Result<(), String> {
        if id >= dataplane_common::steer::NETWORKS_MAX {
            return Err(format!("network {name}: id {id} is out of range (0..{})", dataplane_common::steer::NETWORKS_MAX));
        }
        let mac = control::field::parse_mac(next_hop_mac).ok_or_else(|| format!("network {name}: {next_hop_mac:?} is not a MAC address"))?;
        let ifindex = dataplane_user::ifindex(via).map_err(|e| format!("network {name}: {e}"))?;
        let src = dataplane_user::mac_of(via).map_err(|e| format!("network {name}: {e}"))?;
        if ifindex != self.ingress && !self.tx.contains_key(&ifindex) {
            let x = Xsk::open(ifindex, 0, &xsk_options(false)).map_err(|e| format!("AF_XDP socket on {via} (network {name}): {e}"))?;
            self.tx.insert(ifindex, x);
        }
        self.dp.set_network(id, &NetEgress { dst_mac: mac, src_mac: src, ifindex, valid: 1 }).map_err(|e| format!("network {name}: {e}"))?;
        self.nets.insert(id, (mac, src, ifindex));
        Ok(())
    }
}

fn xsk_options(rx: bool) -> XskOptions {
    XskOptions { frames: 4096, frame_size: 2048, rx, tx: true }
}

/// The running controller, for `status` and `stats`.
#[derive(Clone)]
/// What the controller is doing now: the services it steers (address,
/// network) and the frames it holds.
pub struct ControllerStatus {
    pub queues: usize,
    pub networks: Vec<u32>,
    pub services: Vec<(String, u32)>,
    pub held_frames: usize,
    pub last_switch_us: Option<u64>,
}

pub struct ControllerHandle {
    c: Arc<Mutex<Controller>>,
    pub interface: String,
}

impl ControllerHandle {
    /// The steer program's counters by reason, then the AF_XDP sockets'
    /// drops (summed over the receive queues).
    pub fn counters(&self) -> anyhow::Result<Vec<(String, u64, u64)>> {
        let c = self.c.lock().unwrap();
        let mut out: Vec<(String, u64, u64)> =
            c.dp.steer_stats()?.iter().enumerate().map(|(i, k)| (dataplane_common::steer::stat::NAMES[i].to_string(), k.packets, k.bytes)).collect();
        let h = c.held.lock().unwrap();
        let mut sum = dataplane_user::xsk::XskStats::default();
        for x in &h.rx {
            let st = x.stats()?;
            sum.rx_dropped += st.rx_dropped;
            sum.rx_ring_full += st.rx_ring_full;
            sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
        }
        out.push(("xsk_rx_dropped".into(), sum.rx_dropped, 0));
        out.push(("xsk_rx_ring_full".into(), sum.rx_ring_full, 0));
        out.push(("xsk_fill_ring_empty".into(), sum.rx_fill_ring_empty_descs, 0));
        Ok(out)
    }

    pub fn summary(&self) -> ControllerStatus {
        let c = self.c.lock().unwrap();
        let h = c.held.lock().unwrap();
        let mut services: Vec<(String, u32)> = c.current.iter().map(|(a, n)| (a.to_string(), *n)).collect();
        services.sort();
        let mut networks: Vec<u32> = c.nets.keys().copied().collect();
        networks.sort();
        ControllerStatus { queues: h.rx.len(), networks, services, held_frames: h.frames.values().map(|q| q.len()).sum(), last_switch_us: c.last_switch_us }
    }
}

pub async fn run_controller(cfg: MigrationController, opts: &dataplane_user::LoadOptions) -> anyhow::Result<ControllerHandle> {
    let dp = Dataplane::attach("steer", &cfg.interface, opts)?;
    // One AF_XDP socket per receive queue (copy mode): held packets wait
    // there until the switch.
    let ingress = dataplane_user::ifindex(&cfg.interface)?;
    let queues = std::fs::read_dir(format!("/sys/class/net/{}/queues", cfg.interface))
        .with_context(|| format!("{}: receive queues", cfg.interface))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("rx-")))
        .count()
        .max(1) as u32;
    anyhow::ensure!(queues <= dataplane_common::steer::QUEUES_MAX, "{}: {queues} receive queues, at most {} are supported", cfg.interface, dataplane_common::steer::QUEUES_MAX);
    let mut rx = Vec::new();
    for q in 0..queues {
        rx.push(Xsk::open(ingress, q, &xsk_options(true)).with_context(|| format!("AF_XDP socket on {} queue {q}", cfg.interface))?);
    }
    // After a restart the pinned steering map says where each service
    // went (the config only says where it started); a hold there died with
    // the old sockets, so it is cleared.
    let mut current = HashMap::new();
    for sv in &cfg.services {
        let key = u32::from_ne_bytes(sv.address.octets());
        let net = match dp.steering(key)? {
            Some(st) => {
                if st.network != sv.network || st.flags != 0 {
                    info!(service = %sv.address, network = st.network, held = st.flags & STEER_HOLD != 0, "steering kept from before the restart");
                }
                st.network
            }
            None => sv.network,
        };
        current.insert(sv.address, net);
    }
    let fds: Vec<i32> = rx.iter().map(|x| x.fd()).collect();
    let held = Arc::new(Mutex::new(Held { rx, frames: HashMap::new(), first: HashMap::new(), overflow: 0 }));
    let mut c = Controller { dp, nets: HashMap::new(), tx: HashMap::new(), ingress, held: held.clone(), current, last_switch_us: None };
    for n in &cfg.networks {
        c.add_network(n.id, &n.name, &n.via, &n.next_hop_mac).map_err(|e| anyhow::anyhow!(e))?;
    }
    for (addr, net) in c.current.clone() {
        c.dp.set_steering(u32::from_ne_bytes(addr.octets()), Steering { network: net, flags: 0 })?;
    }
    // Only now (no hold left from before a restart) do held packets reach
    // the new sockets.
    for (q, fd) in fds.iter().enumerate() {
        c.dp.set_steer_xsk(q as u32, *fd)?;
    }
    {
        // Take held frames off the sockets as they come, so a long hold is
        // bounded by HOLD_FRAMES_MAX, not by the ring size.
        let held = held.clone();
        std::thread::Builder::new().name("steer-hold".into()).spawn(move || loop {
            let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            // SAFETY: `p` is a valid array of pollfd for the call.
            let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, 20) };
            if n > 0 {
                held.lock().unwrap().drain();
            }
        })?;
    }
    let l = TcpListener::bind(cfg.listen).await.with_context(|| format!("controller listen {}", cfg.listen))?;
    info!(listen = %cfg.listen, interface = %cfg.interface, queues, "connection controller on");
    let c = Arc::new(Mutex::new(c));
    let handle = ControllerHandle { c: c.clone(), interface: cfg.interface.clone() };
    tokio::spawn(serve(l, move |f: Frame| {
        let c = c.clone();
        async move { tokio::task::spawn_blocking(move || controller(&mut c.lock().unwrap(), f.body)).await.unwrap_or_else(|e| Body::Error { reason: e.to_string() }) }
    }));
    Ok(handle)
}

/// Take `service`'s held frames off the sockets and send them to network
/// `net` in order; `pause` gets the time from the first held frame to the
/// first sent. Returns how many were sent.
fn release(c: &mut Controller, service: u32, net: u32, pause: &mut Option<u64>) -> Result<u32, String> {
    let Controller { nets, tx, held, .. } = c;
    let (mac, src, ifindex) = *nets.get(&net).ok_or_else(|| format!("no network {net}"))?;
    let mut h = held.lock().unwrap();
    h.drain();
    let frames = h.frames.remove(&service).unwrap_or_default();
    let first = h.first.remove(&service);
    let overflow = std::mem::take(&mut h.overflow);
    if overflow > 0 {
        warn!(overflow, "held frames dropped: a hold was full");
    }
    if frames.is_empty() {
        return Ok(0);
    }
    let x = match tx.get_mut(&ifindex) {
        Some(x) => x,
        None => h.rx.first_mut().ok_or("no AF_XDP socket on the terminal side")?,
    };
    let mut sent = 0;
    for mut frame in frames {
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&src);
        x.send(&frame).map_err(|e| format!("releasing a held frame: {e}"))?;
        if pause.is_none() {
            *pause = Some(first.map(|t| t.elapsed().as_micros() as u64).unwrap_or(0));
        }
        sent += 1;
    }
    let left = x.flush(Duration::from_millis(200));
    if left > 0 {
        return Err(format!("{left} released frames did not leave within 200 ms"));
    }
    Ok(sent)
}

fn controller(c: &mut Controller, body: Body) -> Body {
    let r: Result<Body, String> = (|| match body {
        Body::Hold { service } => {
            let net = *c.current.get(&service).ok_or_else(|| format!("{service} is not steered here"))?;
            // Frames left from an earlier hold (raced past its release)
            // are stale now: drop them.
            {
                let key = u32::from_ne_bytes(service.octets());
                let mut h = c.held.lock().unwrap();
                h.drain();
                let stale = h.frames.remove(&key).map_or(0, |f| f.len());
                h.first.remove(&key);
                if stale > 0 {
                    warn!(%service, stale, "dropped frames left from an earlier hold");
                }
            }
            c.dp.set_steering(u32::from_ne_bytes(service.octets()), Steering { network: net, flags: STEER_HOLD }).map_err(|e| e.to_string())?;
            Ok(Body::Ok)
        }
        Body::SwitchRequest { service, to } => {
            let t0 = Instant::now();
            if !c.nets.contains_key(&to.id) {
                match (&to.via, &to.next_hop_mac) {
                    (Some(via), Some(mac)) => {
                        // Claim 4: the request carries network 2's information.
                        c.add_network(to.id, &to.name, via, mac)?;
                        info!(network = %to.name, id = to.id, via, "network learned from a switch request");
                    }
                    _ => return Err(format!("no network {} ({}) here, and the request does not say how to reach it", to.id, to.name)),
                }
            }
            let key = u32::from_ne_bytes(service.octets());
            // Release what was held, in order, to the new network while the
            // service is still held (so nothing new overtakes it), then let
            // the service's packets go to the new network directly, then
            // send what raced in before that.
            c.dp.set_steering(key, Steering { network: to.id, flags: STEER_HOLD }).map_err(|e| e.to_string())?;
            let mut pause = None;
            let mut released = 0;
            for _ in 0..64 {
                let n = release(c, key, to.id, &mut pause)?;
                released += n;
                if n == 0 {
                    break;
                }
            }
            c.dp.set_steering(key, Steering { network: to.id, flags: 0 }).map_err(|e| e.to_string())?;
            c.last_switch_us = Some(t0.elapsed().as_micros() as u64);
            c.current.insert(service, to.id);
            released += release(c, key, to.id, &mut pause)?;
            let pause_us = pause.unwrap_or(0);
            Ok(Body::SwitchDone { service, switch_us: c.last_switch_us.unwrap_or(0), released, pause_us })
        }
        other => Err(format!("a connection controller does not take {other:?}")),
    })();
    r.unwrap_or_else(|reason| Body::Error { reason })
}

// ---- coordinator ----------------------------------------------------------

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct MigrationView {
    /// 1, 2, … in the order requested since the coordinator started.
    pub id: u64,
    pub process: String,
    pub from: String,
    pub to: String,
    pub step: Step,
    pub failure: Option<String>,
    pub log: Vec<String>,
    pub elapsed_ms: u64,
    /// The controller's switch time, the held packets it released, and
    /// the pause it saw (first held packet to first packet released).
    pub switch_us: Option<u64>,
    pub released: Option<u32>,
    pub pause_us: Option<u64>,
}

pub struct Coordinator {
    pub cfg: MigrationCoordinator,
    db: rusqlite::Connection,
    pub migrations: Vec<MigrationView>,
    next_id: u64,
    /// Processes being moved now: a second request for one is refused.
    busy: std::collections::HashSet<String>,
}

impl Coordinator {
    pub fn open(cfg: MigrationCoordinator) -> anyhow::Result<Self> {
        let db = rusqlite::Connection::open(&cfg.database).with_context(|| cfg.database.display().to_string())?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS servers (name TEXT PRIMARY KEY, address TEXT NOT NULL, network TEXT NOT NULL, agent TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS networks (name TEXT PRIMARY KEY, id INTEGER NOT NULL, controller TEXT, via TEXT, next_hop_mac TEXT);
             CREATE TABLE IF NOT EXISTS processes (name TEXT PRIMARY KEY, server TEXT NOT NULL, service TEXT NOT NULL);",
        )?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, plan TEXT NOT NULL, view TEXT NOT NULL);",
        )?;
        // A store from before networks named their controller and egress.
        for col in ["controller", "via", "next_hop_mac"] {
            if db.prepare(&format!("SELECT {col} FROM networks LIMIT 0")).is_err() {
                db.execute_batch(&format!("ALTER TABLE networks ADD COLUMN {col} TEXT"))?;
            }
        }
        for s in &cfg.servers {
            db.execute("INSERT OR REPLACE INTO servers VALUES (?1, ?2, ?3, ?4)", rusqlite::params![s.name, s.address.to_string(), s.network, s.agent])?;
        }
        for n in &cfg.networks {
            let controller = n.controller.clone().or(cfg.controller.map(|c| c.to_string()));
            db.execute(
                "INSERT OR REPLACE INTO networks (name, id, controller, via, next_hop_mac) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![n.name, n.id, controller, n.via, n.next_hop_mac],
            )?;
        }
        for p in &cfg.processes {
            // The store keeps where a process moved to across restarts.
            db.execute("INSERT OR IGNORE INTO processes VALUES (?1, ?2, ?3)", rusqlite::params![p.name, p.server, p.service.to_string()])?;
        }
        // Past migrations (the last HISTORY), and any a previous run left
        // unfinished: `recover` finishes or rolls those back.
        db.execute("DELETE FROM migrations WHERE id <= (SELECT MAX(id) FROM migrations) - ?1", [HISTORY])?;
        let mut migrations = Vec::new();
        {
            let mut q = db.prepare("SELECT view FROM migrations ORDER BY id")?;
            for v in q.query_map([], |r| r.get::<_, String>(0))? {
                migrations.push(serde_json::from_str::<MigrationView>(&v?)?);
            }
        }
        Ok(Self { cfg, db, migrations, next_id: now_ms() << 8, busy: Default::default() })
    }

    pub fn servers(&self) -> anyhow::Result<Vec<control::migration::ServerInfo>> {
        let mut q = self.db.prepare("SELECT name, address, network, agent FROM servers ORDER BY name")?;
        let rows = q.query_map([], |r| {
            let a: String = r.get(1)?;
            Ok(control::migration::ServerInfo { name: r.get(0)?, address: a.parse().unwrap_or(Ipv4Addr::UNSPECIFIED), network: r.get(2)?, agent: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn networks(&self) -> anyhow::Result<Vec<control::migration::NetworkInfo>> {
        let mut q = self.db.prepare("SELECT name, id, controller, via, next_hop_mac FROM networks ORDER BY id")?;
        let rows = q.query_map([], |r| {
            Ok(control::migration::NetworkInfo { name: r.get(0)?, id: r.get(1)?, controller: r.get(2)?, via: r.get(3)?, next_hop_mac: r.get(4)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Write a migration's view to the store (best effort: the run goes
    /// on if the disk fails, and says so in the log).
    fn save(&self, view_id: u64) {
        if let Some(v) = self.migrations.iter().find(|v| v.id == view_id) {
            let json = serde_json::to_string(v).unwrap_or_default();
            if let Err(e) = self.db.execute("UPDATE migrations SET view = ?2 WHERE id = ?1", rusqlite::params![view_id, json]) {
                warn!(view_id, "storing the migration's progress: {e}");
            }
        }
    }

    pub fn add_server(&mut self, s: &control::migration::ServerInfo) -> Result<(), String> {
        s.check().map_err(|(k, r)| format!("{k}: {r}"))?;
        if !self.networks().map_err(|e| e.to_string())?.iter().any(|n| n.name == s.network) {
            return Err(format!("network: no network {:?} (add it first)", s.network));
        }
        let n = self
            .db
            .execute("INSERT OR IGNORE INTO servers VALUES (?1, ?2, ?3, ?4)", rusqlite::params![s.name, s.address.to_string(), s.network, s.agent])
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("a server {:?} exists already (remove it first)", s.name));
        }
        Ok(())
    }

    pub fn remove_server(&mut self, name: &str) -> Result<(), String> {
        let on: Vec<String> = self.query_names("SELECT name FROM processes WHERE server = ?1", name)?;
        if !on.is_empty() {
            return Err(format!("{} run on {name:?}; move them first", on.join(", ")));
        }
        if self.migrations.iter().any(|m| self.busy.contains(&m.process) && (m.from == name || m.to == name)) {
            return Err(format!("a migration from or to {name:?} is running"));
        }
        match self.db.execute("DELETE FROM servers WHERE name = ?1", [name]).map_err(|e| e.to_string())? {
            0 => Err(format!("no server {name:?}")),
            _ => Ok(()),
        }
    }

    pub fn add_network(&mut self, n: &control::migration::NetworkInfo) -> Result<(), String> {
        n.check(self.cfg.controller.is_some()).map_err(|(k, r)| format!("{k}: {r}"))?;
        if self.networks().map_err(|e| e.to_string())?.iter().any(|m| m.name == n.name || m.id == n.id) {
            return Err(format!("a network named {:?} or with id {} exists already", n.name, n.id));
        }
        let controller = n.controller.clone().or(self.cfg.controller.map(|c| c.to_string()));
        self.db
            .execute(
                "INSERT INTO networks (name, id, controller, via, next_hop_mac) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![n.name, n.id, controller, n.via, n.next_hop_mac],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn remove_network(&mut self, name: &str) -> Result<(), String> {
        let on: Vec<String> = self.query_names("SELECT name FROM servers WHERE network = ?1", name)?;
        if !on.is_empty() {
            return Err(format!("servers {} are on {name:?}; remove them first", on.join(", ")));
        }
        match self.db.execute("DELETE FROM networks WHERE name = ?1", [name]).map_err(|e| e.to_string())? {
            0 => Err(format!("no network {name:?}")),
            _ => Ok(()),
        }
    }

    fn query_names(&self, sql: &str, arg: &str) -> Result<Vec<String>, String> {
        let mut q = self.db.prepare(sql).map_err(|e| e.to_string())?;
        let rows = q.query_map([arg], |r| r.get(0)).map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| e.to_string())
    }

    /// (current server, service address) of a process.
    fn place(&self, process: &str) -> anyhow::Result<(String, Ipv4Addr)> {
        let (s, a): (String, String) = self
            .db
            .query_row("SELECT server, service FROM processes WHERE name = ?1", [process], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|_| anyhow::anyhow!("no process {process:?} in the store"))?;
        Ok((s, a.parse()?))
    }
}

/// Clears a process's busy mark however its migration ends.
struct Busy(Arc<Mutex<Coordinator>>, String);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.lock().unwrap().busy.remove(&self.1);
    }
}

/// A migration checked and recorded, ready to run.
pub struct Prepared {
    m: Migration,
    /// Request IDs below the engine's own (it counts up from here + 1).
    first_id: u64,
    controller: String,
    timeout: u64,
    t0: Instant,
    busy: Busy,
    pub id: u64,
}

/// Run one migration to its end (done or rolled back).
pub async fn migrate(coord: Arc<Mutex<Coordinator>>, process: String, to: String) -> anyhow::Result<MigrationView> {
    let p = prepare(&coord, &process, &to)?;
    run(coord, p).await
}

/// Check a migration request against the store and record it (step
/// `starting`): errors here mean nothing was touched.
pub fn prepare(coord: &Arc<Mutex<Coordinator>>, process: &str, to: &str) -> anyhow::Result<Prepared> {
    let t0 = Instant::now();
    let (process, to) = (process.to_string(), to.to_string());
    let (m, first_id, controller, timeout, view_id) = {
        let mut c = coord.lock().unwrap();
        let (from_name, service) = c.place(&process)?;
        let servers = c.servers()?;
        let networks = c.networks()?;
        let find = |n: &str| servers.iter().find(|s| s.name == n).cloned().ok_or_else(|| anyhow::anyhow!("no server {n:?}"));
        let (from, to_s) = (find(&from_name)?, find(&to)?);
        anyhow::ensure!(from.name != to_s.name, "{process} already runs on {to}");
        let net = |n: &str| networks.iter().find(|x| x.name == n).cloned().ok_or_else(|| anyhow::anyhow!("no network {n:?}"));
        let (n1, n2) = (net(&from.network)?, net(&to_s.network)?);
        // Hold, switch and any switch back go to one controller: the one
        // in front of both networks.
        let (c1, c2) = (n1.controller.clone().unwrap_or_default(), n2.controller.clone().unwrap_or_default());
        anyhow::ensure!(
            c1 == c2 && !c1.is_empty(),
            "networks {} and {} have different connection controllers ({c1:?}, {c2:?}); a migration needs one controller in front of both",
            n1.name,
            n2.name
        );
        if c.busy.contains(&process) {
            let step = c.migrations.iter().rev().find(|v| v.process == process).map(|v| format!("{:?}", v.step).to_lowercase()).unwrap_or_default();
            anyhow::bail!("a migration of {process} is already running (step {step}); wait for it to end");
        }
        c.next_id += 100;
        let id = c.next_id;
        let view_id = c.migrations.last().map_or(1, |v| v.id + 1);
        let plan = Plan { process: process.clone(), service, from: from.clone(), to: to_s.clone(), n1: n1.clone(), n2: n2.clone(), controller: c1.clone(), first_id: id, timeout_ms: c.cfg.timeout_ms };
        c.migrations.push(MigrationView {
            id: view_id,
            process: process.clone(),
            from: from.name.clone(),
            to: to_s.name.clone(),
            step: Step::Starting,
            failure: None,
            log: vec![],
            elapsed_ms: 0,
            switch_us: None,
            released: None,
            pause_us: None,
        });
        if let Err(e) = c.db.execute("INSERT INTO migrations (id, plan, view) VALUES (?1, ?2, '{}')", rusqlite::params![view_id, serde_json::to_string(&plan)?]) {
            c.migrations.pop();
            anyhow::bail!("storing the migration: {e}");
        }
        c.save(view_id);
        // Marked busy last, with nothing left to fail under the lock (the
        // mark's guard takes the lock when dropped).
        c.busy.insert(process.clone());
        (plan.migration(), id, c1, c.cfg.timeout_ms, view_id)
    };
    let busy = Busy(coord.clone(), process);
    Ok(Prepared { m, first_id, controller, timeout, t0, busy, id: view_id })
}

/// Drive a prepared migration to its end (done or rolled back).
pub async fn run(coord: Arc<Mutex<Coordinator>>, p: Prepared) -> anyhow::Result<MigrationView> {
    let Prepared { mut m, first_id, controller, timeout, t0, busy: _busy, id: view_id } = p;
    // Hold the service's packets before the process pauses.
    let hold = Frame { v: VERSION, id: first_id, deadline_ms: now_ms() + timeout, body: Body::Hold { service: m.service } };
    let pending: Vec<Output> = match request(&controller, &hold).await {
        Ok(Body::Ok) => {
            record(&coord, view_id, t0, &m, Some("controller holds the service's packets".into()));
            m.begin(now_ms())
        }
        other => {
            // Nothing paused yet; if the hold took effect after all (a
            // late answer), the switch back to network 1 releases it.
            let why = match other {
                Ok(Body::Error { reason }) | Err(reason) => reason,
                Ok(b) => format!("unexpected answer {b:?}"),
            };
            let back = Frame { v: VERSION, id: first_id + 99, deadline_ms: now_ms() + timeout, body: Body::SwitchRequest { service: m.service, to: m.network1.clone() } };
            let _ = request(&controller, &back).await;
            m.step = Step::RolledBack;
            m.failure = Some(format!("the connection controller would not hold the traffic: {why}"));
            vec![]
        }
    };
    drive(&coord, &mut m, &controller, view_id, t0, pending).await;
    finish(&coord, &m, view_id, t0)
}

/// What a migration needs to be re-created after a restart.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct Plan {
    process: String,
    service: Ipv4Addr,
    from: control::migration::ServerInfo,
    to: control::migration::ServerInfo,
    n1: control::migration::NetworkInfo,
    n2: control::migration::NetworkInfo,
    controller: String,
    first_id: u64,
    timeout_ms: u64,
}

impl Plan {
    fn migration(&self) -> Migration {
        Migration::new(&self.process, self.service, self.from.clone(), self.to.clone(), self.n1.clone(), self.n2.clone(), self.first_id, self.timeout_ms)
    }
}

/// Migrations kept in the store's history.
const HISTORY: u64 = 10_000;

/// Finish or roll back the migrations a previous run of the coordinator
/// left unfinished (it was stopped or crashed mid-way).
pub async fn recover(coord: Arc<Mutex<Coordinator>>) -> anyhow::Result<usize> {
    let todo: Vec<(u64, Plan, Step)> = {
        let mut c = coord.lock().unwrap();
        let open: Vec<(u64, Step)> = c.migrations.iter().filter(|v| !matches!(v.step, Step::Done | Step::RolledBack)).map(|v| (v.id, v.step)).collect();
        let mut todo = Vec::new();
        for (id, step) in open {
            let plan: String = c.db.query_row("SELECT plan FROM migrations WHERE id = ?1", [id], |r| r.get(0))?;
            let plan: Plan = serde_json::from_str(&plan).with_context(|| format!("stored migration {id}"))?;
            todo.push((id, plan, step));
        }
        for (_, plan, _) in &todo {
            c.busy.insert(plan.process.clone());
        }
        todo
    };
    let n = todo.len();
    let guards: Vec<Busy> = todo.iter().map(|(_, p, _)| Busy(coord.clone(), p.process.clone())).collect();
    for (view_id, plan, step) in todo {
        let t0 = Instant::now();
        // Request IDs of this attempt must not collide with the first run's.
        let mut m = Plan { first_id: now_ms() << 8, ..plan.clone() }.migration();
        warn!(process = %plan.process, ?step, "finishing a migration the previous coordinator left");
        let out = m.recover(now_ms(), step);
        drive(&coord, &mut m, &plan.controller, view_id, t0, out).await;
        finish(&coord, &m, view_id, t0)?;
    }
    drop(guards);
    Ok(n)
}

/// Update a migration's view (and its stored copy) from the engine.
fn record(coord: &Arc<Mutex<Coordinator>>, view_id: u64, t0: Instant, m: &Migration, note: Option<String>) {
    let mut c = coord.lock().unwrap();
    if m.step == Step::Done {
        // Where the process runs is stored before the step: a crash in
        // between leaves the step at resuming, which a restart re-sends.
        if let Err(e) = c.db.execute("UPDATE processes SET server = ?2 WHERE name = ?1", rusqlite::params![m.process, m.to.name]) {
            warn!(process = %m.process, "storing where the process runs: {e}");
        }
    }
    if let Some(v) = c.migrations.iter_mut().find(|v| v.id == view_id) {
        v.step = m.step;
        v.failure = m.failure.clone();
        v.elapsed_ms = t0.elapsed().as_millis() as u64;
        if let Some(n) = note {
            v.log.push(n);
        }
    }
    c.save(view_id);
}

/// Send the engine's requests and feed it the answers until it is done.
async fn drive(coord: &Arc<Mutex<Coordinator>>, m: &mut Migration, controller: &str, view_id: u64, t0: Instant, mut pending: Vec<Output>) {
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut calls = Vec::new();
        for o in pending {
            match o {
                Output::Progress { note, .. } => {
                    info!(process = %m.process, "{note}");
                    record(coord, view_id, t0, m, Some(note));
                }
                Output::ToAgent { addr, frame } => calls.push((addr, frame)),
                Output::ToController { frame } => calls.push((controller.to_string(), frame)),
            }
        }
        for (addr, frame) in calls {
            let id = frame.id;
            let input = match request(&addr, &frame).await {
                Ok(body) => {
                    if let Body::SwitchDone { switch_us, released, pause_us, .. } = body {
                        let mut c = coord.lock().unwrap();
                        if let Some(v) = c.migrations.iter_mut().find(|v| v.id == view_id) {
                            v.switch_us = Some(switch_us);
                            v.released = Some(released);
                            v.pause_us = (released > 0).then_some(pause_us);
                        }
                    }
                    Input::Answer { id, body }
                }
                Err(reason) => Input::Failed { id, reason },
            };
            next.extend(m.handle(now_ms(), input));
        }
        pending = next;
    }
}

/// Record the end; a completed move updates where the process runs.
fn finish(coord: &Arc<Mutex<Coordinator>>, m: &Migration, view_id: u64, t0: Instant) -> anyhow::Result<MigrationView> {
    record(coord, view_id, t0, m, None);
    if m.step != Step::Done {
        warn!(process = %m.process, failure = ?m.failure, "migration rolled back");
    }
    let c = coord.lock().unwrap();
    Ok(c.migrations.iter().find(|v| v.id == view_id).cloned().expect("recorded"))
}

/// Take migration requests over TCP (claim 1: from server 1's agent).
pub async fn run_coordinator_listener(coord: Arc<Mutex<Coordinator>>, listen: SocketAddrV4) -> anyhow::Result<()> {
    let l = TcpListener::bind(listen).await.with_context(|| format!("coordinator listen {listen}"))?;
    info!(%listen, "migration coordinator takes requests");
    tokio::spawn(serve(l, move |f: Frame| {
        let coord = coord.clone();
        async move {
            match f.body {
                Body::MigrateRequest { process, to } => match migrate(coord, process.clone(), to).await {
                    Ok(v) => Body::MigrateResult { process, step: v.step, failure: v.failure, log: v.log },
                    Err(e) => Body::Error { reason: format!("{e:#}") },
                },
                other => Body::Error { reason: format!("a coordinator does not take {other:?}") },
            }
        }
    }));
    Ok(())
}

/// How long an agent waits for the coordinator to finish a migration it
/// asked for.
pub const FORWARD_TIMEOUT_MS: u64 = 60_000;

/// `edgeplane migrate` on a server without a coordinator: its agent sends
/// the request to the coordinator and relays the result.
pub async fn forward(agent: &MigrationAgent, process: String, to: String) -> anyhow::Result<MigrationView> {
    let coordinator = agent.coordinator.ok_or_else(|| anyhow::anyhow!("no [migration.coordinator] here, and [migration.agent] names no coordinator to ask"))?;
    anyhow::ensure!(agent.processes.iter().any(|p| p.name == process), "this server's agent does not know a process {process:?}");
    let t0 = Instant::now();
    let f = Frame { v: VERSION, id: now_ms() << 8 | 0x42, deadline_ms: now_ms() + FORWARD_TIMEOUT_MS, body: Body::MigrateRequest { process: process.clone(), to: to.clone() } };
    match request(&coordinator.to_string(), &f).await {
        Ok(Body::MigrateResult { process, step, failure, log }) => Ok(MigrationView {
            id: 0,
            process,
            from: "here".into(),
            to,
            step,
            failure,
            log: std::iter::once(format!("asked coordinator {coordinator}")).chain(log).collect(),
            elapsed_ms: t0.elapsed().as_millis() as u64,
            switch_us: None,
            released: None,
            pause_us: None,
        }),
        Ok(Body::Error { reason }) => anyhow::bail!("coordinator {coordinator}: {reason}"),
        Ok(other) => anyhow::bail!("coordinator {coordinator}: unexpected answer {other:?}"),
        Err(e) => anyhow::bail!("coordinator: {e}"),
    }
}

pub fn addr(s: &str) -> Option<SocketAddrV4> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::migration::{NetworkInfo, ServerInfo};

    fn net(name: &str, id: u32) -> NetworkInfo {
        NetworkInfo { name: name.into(), id, controller: None, via: None, next_hop_mac: None }
    }

    fn server(name: &str, network: &str) -> ServerInfo {
        ServerInfo { name: name.into(), address: Ipv4Addr::new(10, 0, 0, 1), network: network.into(), agent: "10.0.0.1:7600".into() }
    }

    /// The store's servers and networks change at runtime, kept across a
    /// restart, and nothing is removed that something still uses.
    #[test]
    fn servers_and_networks_are_added_and_removed_safely() {
        let dir = std::env::temp_dir().join(format!("ep-coord-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = MigrationCoordinator {
            controller: Some("127.0.0.1:7700".parse().unwrap()),
            listen: None,
            database: dir.join("m.db"),
            timeout_ms: 1000,
            servers: vec![server("s1", "n1")],
            networks: vec![net("n1", 1)],
            processes: vec![control::migration::config::ProcessPlace { name: "p".into(), server: "s1".into(), service: Ipv4Addr::new(192, 0, 2, 80) }],
        };
        let mut c = Coordinator::open(cfg.clone()).unwrap();
        assert!(c.add_server(&server("s2", "n2")).unwrap_err().contains("no network \"n2\""));
        c.add_network(&NetworkInfo { via: Some("eth2".into()), next_hop_mac: Some("02:00:00:00:02:0a".into()), ..net("n2", 2) }).unwrap();
        assert!(c.add_network(&net("n2b", 2)).unwrap_err().contains("id 2 exists"));
        assert!(c.add_network(&NetworkInfo { via: Some("eth2".into()), ..net("n3", 3) }).unwrap_err().starts_with("via:"));
        c.add_server(&server("s2", "n2")).unwrap();
        assert!(c.add_server(&server("s2", "n2")).unwrap_err().contains("exists already"));
        assert!(c.add_server(&ServerInfo { agent: "nowhere".into(), ..server("s3", "n2") }).unwrap_err().starts_with("agent:"));
        assert!(c.remove_server("s1").unwrap_err().contains("p run on \"s1\""), "a server with a process stays");
        assert!(c.remove_network("n2").unwrap_err().contains("s2"), "a network with a server stays");
        drop(c);
        // Kept across a restart, with the default controller filled in.
        let mut c = Coordinator::open(cfg).unwrap();
        let n2 = c.networks().unwrap().into_iter().find(|n| n.name == "n2").unwrap();
        assert_eq!((n2.controller.as_deref(), n2.via.as_deref()), (Some("127.0.0.1:7700"), Some("eth2")));
        c.remove_server("s2").unwrap();
        c.remove_network("n2").unwrap();
        assert!(c.remove_network("n2").unwrap_err().contains("no network"));
        assert_eq!(c.servers().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
