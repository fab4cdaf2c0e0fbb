//! A namespace topology of the `lb` role, shared by the demo and the
//! integration tests: terminals → LB ingress points → a core bridge →
//! gateways. Everything it creates carries its prefix and is removed on
//! drop, also when a test fails.
//!
//! ```text
//!  {p}t1 term0 ── ingress {p}l1 core ──┐            ┌── core {p}g0
//!  {p}t2 term0 ── ingress {p}l2 core ──┤ {p}c br0 ├── core {p}g1 ...
//! ```
//! Both terminals use 10.0.0.2, so the same session can enter by either LB.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use edgeplane::packets::{self, GTPU_ENDPOINT, GTPU_PORT};

pub const TERMINAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const SERVICE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const SERVICE_PORT: u16 = 5000;

pub fn gateway_mac(i: usize) -> String {
    format!("02:00:00:01:00:{:02x}", i + 1)
}

pub fn gateway_name(i: usize) -> String {
    format!("gw{}", i + 1)
}

/// A session as the gateways see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Session {
    Teid(u32),
    /// A plain UDP flow, identified by the terminal's source port.
    Flow(u16),
}

pub struct Topology {
    pub prefix: String,
    pub lbs: usize,
    pub gateways: usize,
    namespaces: Vec<String>,
    pub pin_root: PathBuf,
    pub dir: PathBuf,
    daemons: std::sync::Mutex<HashMap<String, Child>>,
    exe: PathBuf,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Topology {
    pub fn ns(&self, role: &str) -> String {
        format!("{}{}", self.prefix, role)
    }

    pub(crate) fn exec(&self, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Build the topology. `exe` is the `edgeplane` binary the daemons run.
    pub fn build(prefix: &str, lbs: usize, gateways: usize, exe: &Path) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        let mut t = Self {
            prefix: prefix.into(),
            lbs,
            gateways,
            namespaces: Vec::new(),
            pin_root: PathBuf::from(format!("/sys/fs/bpf/edgeplane/{prefix}")),
            dir,
            daemons: Default::default(),
            exe: exe.into(),
        };
        t.create()
            .with_context(|| format!("building topology {prefix}"))?;
        Ok(t)
    }

    fn add_ns(&mut self, role: &str) -> anyhow::Result<String> {
        let ns = self.ns(role);
        run(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        self.exec(&ns, &["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> anyhow::Result<()> {
        run(&[
            "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ])?;
        self.exec(a, &["ip", "link", "set", a_if, "up"])?;
        self.exec(b, &["ip", "link", "set", b_if, "up"])
    }

    fn create(&mut self) -> anyhow::Result<()> {
        let core = self.add_ns("c")?;
        self.exec(&core, &["ip", "link", "add", "br0", "type", "bridge"])?;
        self.exec(&core, &["ip", "link", "set", "br0", "up"])?;
        for i in 0..self.gateways {
            let g = self.add_ns(&format!("g{i}"))?;
            let port = format!("g{i}p");
            self.veth(&g, "core", &core, &port)?;
            self.exec(&core, &["ip", "link", "set", &port, "master", "br0"])?;
            self.exec(
                &g,
                &["ip", "link", "set", "core", "address", &gateway_mac(i)],
            )?;
            self.exec(
                &g,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.1.0.{}/24", 11 + i),
                    "dev",
                    "core",
                ],
            )?;
            for a in [GTPU_ENDPOINT, SERVICE] {
                self.exec(&g, &["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
            }
            for k in ["all", "default", "core"] {
                self.exec(
                    &g,
                    &["sysctl", "-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")],
                )?;
            }
            self.exec(
                &g,
                &["ip", "route", "add", "10.0.0.0/24", "via", "10.1.0.1"],
            )?;
        }
        for l in 1..=self.lbs {
            let t = self.add_ns(&format!("t{l}"))?;
            let lb = self.add_ns(&format!("l{l}"))?;
            self.veth(&t, "term0", &lb, "ingress")?;
            self.exec(&t, &["ip", "addr", "add", "10.0.0.2/24", "dev", "term0"])?;
            // A veth hands its peer partially checksummed skbs (offload);
            // XDP forwards the frame as is, so the gateway would see a bad
            // UDP checksum. A NIC delivers complete checksums: do the same.
            self.exec(&t, &["ethtool", "-K", "term0", "tx", "off"])?;
            self.exec(&t, &["ip", "route", "add", "default", "via", "10.0.0.1"])?;
            self.exec(&lb, &["ip", "addr", "add", "10.0.0.1/24", "dev", "ingress"])?;
            let port = format!("l{l}p");
            self.veth(&lb, "core", &core, &port)?;
            self.exec(
                &lb,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.1.0.{l}/24"),
                    "dev",
                    "core",
                ],
            )?;
            self.exec(&core, &["ip", "link", "set", &port, "master", "br0"])?;
            // Native XDP_REDIRECT into a veth delivers only if its peer
            // runs an XDP program: attach the floor (pass) program there.
            let out = Command::new(&self.exe)
                .args([
                    "xdp-pass",
                    "--netns",
                    &core,
                    "--interface",
                    &port,
                    "--pin-root",
                ])
                .arg(self.pin_root.join("core"))
                .output()?;
            if !out.status.success() {
                bail!(
                    "attaching the pass program on {port}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(())
    }

    /// A namespace `{p}<role>` on the core bridge with `addr` ("A/LEN"),
    /// e.g. a control plane talking to the gateways' core addresses.
    pub fn add_core_member(&mut self, role: &str, addr: &str) -> anyhow::Result<String> {
        let ns = self.add_ns(role)?;
        let core = self.ns("c");
        let port = format!("{role}p");
        self.veth(&ns, "core", &core, &port)?;
        self.exec(&core, &["ip", "link", "set", &port, "master", "br0"])?;
        self.exec(&ns, &["ip", "addr", "add", addr, "dev", "core"])?;
        self.exec(&ns, &["ethtool", "-K", "core", "tx", "off"])?;
        Ok(ns)
    }

    pub fn socket(&self, lb: usize) -> PathBuf {
        self.daemon_socket(&format!("l{lb}"))
    }

    pub fn daemon_socket(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.sock"))
    }

    pub fn config_path(&self, lb: usize) -> PathBuf {
        self.daemon_config_path(&format!("l{lb}"))
    }

    pub fn daemon_config_path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.toml"))
    }

    pub fn node_section(&self, role: &str) -> String {
        format!(
            "[node]\nname = \"{p}{role}\"\nsocket = \"{sock}\"\npin_root = \"{pins}\"\n",
            p = self.prefix,
            sock = self.daemon_socket(role).display(),
            pins = self.pin_root.join(role).display(),
        )
    }

    /// Config of LB `lb` (1-based) with the given gateways (0-based).
    pub fn lb_config(&self, lb: usize, gateways: &[usize], seed: u32) -> String {
        self.lb_config_with(lb, gateways, seed, "", |_| String::new())
    }

    /// `lb_config` with more keys: `lb_extra` in the `[[lb]]` section,
    /// `gw_extra(g)` in gateway `g`'s.
    pub fn lb_config_with(
        &self,
        lb: usize,
        gateways: &[usize],
        seed: u32,
        lb_extra: &str,
        gw_extra: impl Fn(usize) -> String,
    ) -> String {
        let mut s = format!(
            "{}\n[[lb]]\ninterface = \"ingress\"\nseed = {seed}\n{lb_extra}",
            self.node_section(&format!("l{lb}"))
        );
        for &g in gateways {
            s.push_str(&format!(
                "\n[[lb.gateway]]\nname = \"{}\"\naddress = \"10.1.0.{}\"\nmac = \"{}\"\nvia = \"core\"\n{}",
                gateway_name(g),
                11 + g,
                gateway_mac(g),
                gw_extra(g)
            ));
        }
        s
    }

    /// Start (or restart) the daemon of LB `lb` and wait until it answers.
    pub fn start_lb(&mut self, lb: usize, config: &str) -> anyhow::Result<()> {
        self.start_lb_args(lb, config, &[])
    }

    /// `start_lb` with extra `edgeplane run` arguments.
    pub fn start_lb_args(&mut self, lb: usize, config: &str, args: &[&str]) -> anyhow::Result<()> {
        self.start_daemon(&format!("l{lb}"), config, args)
    }

    /// Start the daemon of namespace role `role` (e.g. "l1", "g0").
    pub fn start_daemon(&self, role: &str, config: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.daemon_config_path(role);
        std::fs::write(&path, config)?;
        let log = std::fs::File::create(self.dir.join(format!("{role}.log")))?;
        let child = Command::new(&self.exe)
            .args(["run", "--netns", &self.ns(role), "--config"])
            .arg(&path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.daemons.lock().unwrap().insert(role.to_string(), child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let socket = self.daemon_socket(role);
        while Instant::now() < deadline {
            if edgeplane::client::call(&socket, &control::api::Request::Status).is_ok() {
                return Ok(());
            }
            let exited = self
                .daemons
                .lock()
                .unwrap()
                .get_mut(role)
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(st) = exited {
                bail!("daemon {role} exited with {st}: {}", self.role_log(role));
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "daemon {role} did not answer within 30 s: {}",
            self.role_log(role)
        )
    }

    pub fn log(&self, lb: usize) -> String {
        self.role_log(&format!("l{lb}"))
    }

    pub fn role_log(&self, role: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{role}.log"))).unwrap_or_default()
    }

    /// SIGKILL the daemon of LB `lb`; its pinned program keeps forwarding.
    pub fn kill_lb(&mut self, lb: usize) {
        self.kill_daemon(&format!("l{lb}"));
    }

    /// SIGTERM the daemon of `role` and wait for it: it leaves cleanly
    /// (e.g. revokes its etcd lease).
    pub fn stop_daemon(&mut self, role: &str) {
        if let Some(mut c) = self.daemons.lock().unwrap().remove(role) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kill_daemon(&mut self, role: &str) {
        if let Some(mut c) = self.daemons.lock().unwrap().remove(role) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn call(&self, lb: usize, req: control::api::Request) -> anyhow::Result<serde_json::Value> {
        Ok(edgeplane::client::call(&self.socket(lb), &req)?)
    }

    pub fn call_role(
        &self,
        role: &str,
        req: control::api::Request,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(edgeplane::client::call(&self.daemon_socket(role), &req)?)
    }

    /// Make the gateways packet gateways (issue 3): a server network
    /// `{p}sv` (bridge br1) with `servers` server namespaces `{p}s<i>` at
    /// 10.2.0.<11+i>; gateway `g<i>` joins it as 10.2.0.<1+i> (`srv`), and
    /// the LBs route the gateways' replies back to the terminals.
    pub fn add_server_network(&mut self, servers: usize) -> anyhow::Result<()> {
        let sv = self.add_ns("sv")?;
        self.exec(&sv, &["ip", "link", "add", "br1", "type", "bridge"])?;
        self.exec(&sv, &["ip", "link", "set", "br1", "up"])?;
        let c = self.ns("c");
        let mut peers = Vec::new();
        for gi in 0..self.gateways {
            let g = self.ns(&format!("g{gi}"));
            let gwp = format!("gw{gi}p");
            self.veth(&g, "srv", &sv, &gwp)?;
            self.exec(&sv, &["ip", "link", "set", &gwp, "master", "br1"])?;
            self.exec(
                &g,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.2.0.{}/24", 1 + gi),
                    "dev",
                    "srv",
                ],
            )?;
            self.exec(&g, &["ethtool", "-K", "srv", "tx", "off"])?;
            // Peers of the gateway's two interfaces get the pass program,
            // so native XDP_REDIRECT into them delivers.
            peers.push((sv.clone(), gwp));
            peers.push((c.clone(), format!("g{gi}p")));
        }
        for i in 0..servers {
            let s = self.add_ns(&format!("s{i}"))?;
            let port = format!("s{i}p");
            self.veth(&s, "eth0", &sv, &port)?;
            self.exec(&sv, &["ip", "link", "set", &port, "master", "br1"])?;
            self.exec(
                &s,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.2.0.{}/24", 11 + i),
                    "dev",
                    "eth0",
                ],
            )?;
            self.exec(&s, &["ethtool", "-K", "eth0", "tx", "off"])?;
        }
        for (ns, port) in peers {
            let out = Command::new(&self.exe)
                .args([
                    "xdp-pass",
                    "--netns",
                    &ns,
                    "--interface",
                    &port,
                    "--pin-root",
                ])
                .arg(self.pin_root.join("peers"))
                .output()?;
            if !out.status.success() {
                bail!(
                    "attaching the pass program on {port}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        for l in 1..=self.lbs {
            let lb = self.ns(&format!("l{l}"));
            for k in [
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                "net.ipv4.conf.core.rp_filter=0",
            ] {
                self.exec(&lb, &["sysctl", "-qw", k])?;
            }
        }
        Ok(())
    }

    /// Config of packet gateway `g<gi>`: a web group (TCP 198.51.100.10:80)
    /// on servers 0 and 1 (port 8080) and a dns group (UDP
    /// 198.51.100.20:53) on servers 2 and 3 (port 5353).
    pub fn gateway_config(&self, gi: usize, ports: &str, extra: &str) -> String {
        let server = |i: usize, port: u16| {
            format!("[[gateway.group.server]]\nname = \"s{i}\"\naddress = \"10.2.0.{}\"\nport = {port}\n", 11 + i)
        };
        format!(
            "{node}\n[[gateway]]\ninterfaces = [\"core\", \"srv\"]\naddress = \"10.2.0.{addr}\"\nports = \"{ports}\"\n{extra}\n\
             [[gateway.group]]\nname = \"web\"\nservices = [\"198.51.100.10:80/tcp\"]\n{s0}{s1}\n\
             [[gateway.group]]\nname = \"dns\"\nservices = [\"198.51.100.20:53/udp\"]\n{s2}{s3}",
            node = self.node_section(&format!("g{gi}")),
            addr = 1 + gi,
            s0 = server(0, 8080),
            s1 = server(1, 8080),
            s2 = server(2, 5353),
            s3 = server(3, 5353),
        )
    }

    /// Echo servers on the server network: TCP on s0/s1 port 8080, UDP on
    /// s2/s3 port 5353. Each reply is "<peer addr:port> s<i> <request>",
    /// so a terminal learns which gateway port the server saw. Returns the
    /// threads and, per server, the peers it saw.
    pub fn echo_servers(&self, stop: Arc<AtomicBool>) -> (Vec<thread::JoinHandle<()>>, Vec<Peers>) {
        let peers: Vec<Peers> = (0..4)
            .map(|_| Arc::new(std::sync::Mutex::new(Vec::new())))
            .collect();
        let handles = (0..4)
            .map(|i| {
                let ns = format!("/run/netns/{}", self.ns(&format!("s{i}")));
                let (p, stop) = (peers[i].clone(), stop.clone());
                if i < 2 {
                    thread::spawn(move || tcp_echo(&ns, i, p, stop, "0.0.0.0:8080"))
                } else {
                    thread::spawn(move || udp_echo(&ns, i, p, stop, "0.0.0.0:5353"))
                }
            })
            .collect();
        (handles, peers)
    }

    /// Receive on every gateway until `stop` is set and then 300 ms of
    /// quiet; returns, per gateway, how many packets each session sent.
    pub fn receivers(
        &self,
        stop: Arc<AtomicBool>,
    ) -> Vec<thread::JoinHandle<anyhow::Result<HashMap<Session, u32>>>> {
        (0..self.gateways)
            .map(|g| {
                let path = format!("/run/netns/{}", self.ns(&format!("g{g}")));
                let stop = stop.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                let h = thread::spawn(move || {
                    enter_netns(&path)?;
                    let gtpu = bind_rx(GTPU_PORT)?;
                    let flow = bind_rx(SERVICE_PORT)?;
                    tx.send(()).ok();
                    receive(&gtpu, &flow, &stop)
                });
                let _ = rx.recv_timeout(Duration::from_secs(5));
                h
            })
            .collect()
    }

    /// Send one packet per session from terminal `lb`, `rounds` times, at
    /// `pps` packets per second overall. Returns packets sent.
    pub fn send(
        &self,
        lb: usize,
        sessions: &[Session],
        rounds: u32,
        pps: u32,
    ) -> anyhow::Result<u64> {
        let path = format!("/run/netns/{}", self.ns(&format!("t{lb}")));
        let sessions = sessions.to_vec();
        thread::spawn(move || -> anyhow::Result<u64> {
            enter_netns(&path)?;
            send_sessions(&sessions, rounds, pps)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))?
    }

    /// Where each session landed when sent through LB `lb`.
    pub fn placement(
        &self,
        lb: usize,
        sessions: &[Session],
    ) -> anyhow::Result<HashMap<Session, usize>> {
        let stop = Arc::new(AtomicBool::new(false));
        let rx = self.receivers(stop.clone());
        let sent = self.send(lb, sessions, 1, 5000);
        stop.store(true, Ordering::SeqCst);
        sent?;
        let mut out = HashMap::new();
        for (g, h) in rx.into_iter().enumerate() {
            let got = h
                .join()
                .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
            for s in got.keys() {
                if let Some(prev) = out.insert(*s, g) {
                    bail!(
                        "session {s:?} reached both {} and {}",
                        gateway_name(prev),
                        gateway_name(g)
                    );
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let roles: Vec<String> = self.daemons.lock().unwrap().keys().cloned().collect();
        for r in roles {
            self.kill_daemon(&r);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = remove_pins(&self.pin_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove a directory tree of pins (bpffs has no recursive removal).
pub fn remove_pins(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            remove_pins(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::remove_dir(dir)
}

pub type Peers = Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>;

pub(crate) fn tcp_echo(ns: &str, i: usize, peers: Peers, stop: Arc<AtomicBool>, bind: &str) {
    use std::io::{BufRead, BufReader, Write};
    enter_netns(ns).expect("server netns");
    let l = std::net::TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    l.set_nonblocking(true).expect("nonblocking");
    while !stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((mut s, peer)) => {
                peers.lock().unwrap().push(peer);
                thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                    let Ok(clone) = s.try_clone() else { return };
                    let mut r = BufReader::new(clone);
                    let mut line = String::new();
                    while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                        let _ = s.write_all(format!("{peer} s{i} {line}").as_bytes());
                        line.clear();
                    }
                });
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

pub(crate) fn udp_echo(ns: &str, i: usize, peers: Peers, stop: Arc<AtomicBool>, bind: &str) {
    enter_netns(ns).expect("server netns");
    let s = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    big_rcvbuf(&s).expect("server receive buffer");
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, peer)) = s.recv_from(&mut buf) {
            peers.lock().unwrap().push(peer);
            let mut reply = format!("{peer} s{i} ").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, peer);
        }
    }
}

/// Run `f` on a thread inside the namespace at `path`.
pub fn in_netns<T: Send>(
    path: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    thread::scope(|s| {
        s.spawn(|| {
            enter_netns(path)?;
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {path} panicked"))?
    })
}

pub fn enter_netns(path: &str) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| path.to_string())?;
    // SAFETY: valid fd; affects this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {path}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn bind_rx(port: u16) -> anyhow::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
    s.set_read_timeout(Some(Duration::from_millis(20)))?;
    big_rcvbuf(&s)?;
    Ok(s)
}

/// An 8 MiB receive buffer, past `net.core.rmem_max` (SO_RCVBUFFORCE, as
/// root): a receiver thread descheduled on a busy machine must not turn
/// into packets "lost" in the data plane.
pub fn big_rcvbuf(s: &impl AsRawFd) -> anyhow::Result<()> {
    let size: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with a valid int on a valid socket.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            4,
        )
    };
    if rc != 0 {
        bail!("SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn receive(
    gtpu: &UdpSocket,
    flow: &UdpSocket,
    stop: &AtomicBool,
) -> anyhow::Result<HashMap<Session, u32>> {
    let mut got: HashMap<Session, u32> = HashMap::new();
    let mut buf = [0u8; 2048];
    let mut quiet_since: Option<Instant> = None;
    let hard_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut any = false;
        while let Ok((n, _)) = gtpu.recv_from(&mut buf) {
            if n >= 8 && buf[1] == 0xff {
                let teid = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                *got.entry(Session::Teid(teid)).or_default() += 1;
            }
            any = true;
        }
        while let Ok((_, from)) = flow.recv_from(&mut buf) {
            *got.entry(Session::Flow(from.port())).or_default() += 1;
            any = true;
        }
        if stop.load(Ordering::SeqCst) {
            let q = *quiet_since.get_or_insert_with(Instant::now);
            if any {
                quiet_since = Some(Instant::now());
            } else if q.elapsed() > Duration::from_millis(300) {
                return Ok(got);
            }
        }
        if Instant::now() > hard_deadline {
            bail!("receiver ran past its deadline");
        }
    }
}

/// One packet per session, `rounds` times, at `pps` overall, from the
/// calling thread's namespace (paced against the start). Returns packets sent.
pub fn send_sessions(sessions: &[Session], rounds: u32, pps: u32) -> anyhow::Result<u64> {
    let gtpu = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, GTPU_PORT))?;
    let mut flows: HashMap<u16, UdpSocket> = HashMap::new();
    for s in sessions {
        if let Session::Flow(port) = s {
            flows.insert(
                *port,
                UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, *port))?,
            );
        }
    }
    let inner = packets::inner_udp(
        Ipv4Addr::new(100, 64, 0, 9),
        Ipv4Addr::new(203, 0, 113, 7),
        b"payload",
    );
    let gap = Duration::from_secs_f64(1.0 / pps.max(1) as f64);
    let start = Instant::now();
    let mut sent = 0u64;
    for r in 0..rounds {
        for s in sessions {
            match s {
                Session::Teid(t) => {
                    let mut p = packets::gtpu_header(*t, 0xff, 0, &[], inner.len() + 4);
                    p.extend_from_slice(&inner);
                    p.extend_from_slice(&r.to_be_bytes());
                    gtpu.send_to(&p, SocketAddrV4::new(GTPU_ENDPOINT, GTPU_PORT))?;
                }
                Session::Flow(port) => {
                    flows[port]
                        .send_to(&r.to_be_bytes(), SocketAddrV4::new(SERVICE, SERVICE_PORT))?;
                }
            }
            sent += 1;
            // Pace against the start time so scheduling hiccups do not
            // lower the average rate.
            let due = start + gap * sent as u32;
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
    }
    Ok(sent)
}

/// `n` sessions: half GTP-U TEIDs, half plain UDP flows.
pub fn sessions(n: usize) -> Vec<Session> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                Session::Teid(0x1000_0000 + i as u32 * 7919)
            } else {
                Session::Flow(20000 + i as u16)
            }
        })
        .collect()
}
