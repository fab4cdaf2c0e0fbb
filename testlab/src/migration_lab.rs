//! Process migration (seed 000) in namespaces, for the test, the demo and
//! the benchmark: a terminal `term` (10.7.0.2) talks to the counter
//! service at 10.99.0.80 through the edge host `edge`, whose XDP steering
//! program sends the service's packets to network 1 (`s1`, 10.8.1.10) or
//! network 2 (`s2`, 10.8.2.10). `EDGE` configures the controller and the
//! coordinator there.

use std::{
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use control::api::Request;

use crate::sip_lab::sh;

pub(crate) use crate::migration_terminal::ask;
pub use crate::migration_terminal::{
    tcp_terminal, tcp_terminal_to, terminal, terminal_to, TcpClient,
};

pub struct Lab {
    pub prefix: String,
    pub dir: std::path::PathBuf,
    exe: std::path::PathBuf,
    ns: Vec<String>,
    children: Vec<(String, Child)>,
    /// The cgroup v2 directory s1's counter runs in (its agent freezes it
    /// there); s2's agent stops its counter with SIGSTOP instead.
    pub cgroup: Option<std::path::PathBuf>,
    /// The service is IPv6 (`SERVICE6`); the lab is dual stack either way.
    pub ipv6: bool,
    /// Each server's agent config (its `[migration]` part), to start it
    /// again after it was killed.
    agents: Vec<(String, String)>,
    /// Every daemon and counter runs as nobody (`Lab::new_unprivileged`).
    unprivileged: bool,
}

/// The unprivileged user of `Lab::new_unprivileged`.
pub const NOBODY: u32 = 65534;

/// The capabilities (as setpriv names them) each daemon of an
/// unprivileged lab gets, and no others: src/caps.rs's for its roles.
pub fn unprivileged_caps(role: &str) -> &'static str {
    match role {
        // The controller (XDP steering, AF_XDP hold and release) and the
        // coordinator (none of its own).
        "edge" => "+bpf,+perfmon,+net_admin,+net_raw,+ipc_lock",
        // An agent moves the service address (`ip addr`, which inherits
        // the ambient capability); its processes are nobody's too.
        _ => "+net_admin",
    }
}

/// The IPv6 service address (`Lab::new_ipv6`), on s1's `lo` at first.
pub const SERVICE6: &str = "2001:db8:99::80";

impl Lab {
    /// `tag` keeps concurrent labs apart; `exe` is the edgeplane binary.
    /// The lab with an IPv6 service (UDP): the terminal asks
    /// [2001:db8:99::80]:9000 through the edge host over IPv6.
    pub fn new_ipv6(tag: &str, exe: &std::path::Path) -> Self {
        let mut l = Self::new(tag, exe);
        l.ipv6 = true;
        sh(&[
            "ip",
            "netns",
            "exec",
            &l.name("s1"),
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{SERVICE6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        l
    }

    /// Where the terminal opens its TCP connections to the service.
    pub fn service_tcp(&self) -> std::net::SocketAddr {
        let mut a = self.service_udp();
        a.set_port(9001);
        a
    }

    /// Where the terminal asks the service (UDP).
    pub fn service_udp(&self) -> std::net::SocketAddr {
        if self.ipv6 {
            format!("[{SERVICE6}]:9000").parse().unwrap()
        } else {
            "10.99.0.80:9000".parse().unwrap()
        }
    }

    pub fn new(tag: &str, exe: &std::path::Path) -> Self {
        let prefix = format!("ep{}m{tag}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Self {
            prefix,
            dir,
            exe: exe.into(),
            ns: vec![],
            children: vec![],
            cgroup: None,
            ipv6: false,
            agents: vec![],
            unprivileged: false,
        };
        for r in ["term", "edge", "s1", "s2"] {
            let ns = l.name(r);
            sh(&["ip", "netns", "add", &ns]);
            l.ns.push(ns.clone());
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            crate::links::no_dad(&ns).unwrap();
        }
        let n = |r: &str| l.name(r);
        let (term, edge, s1, s2) = (n("term"), n("edge"), n("s1"), n("s2"));
        sh(&[
            "ip", "link", "add", "eth0", "netns", &term, "type", "veth", "peer", "name", "eth0",
            "netns", &edge,
        ]);
        sh(&[
            "ip",
            "link",
            "add",
            "eth1",
            "netns",
            &edge,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &s1,
            "address",
            "02:00:00:00:01:0a",
        ]);
        sh(&[
            "ip",
            "link",
            "add",
            "eth2",
            "netns",
            &edge,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &s2,
            "address",
            "02:00:00:00:02:0a",
        ]);
        for (ns, dev, a, a6) in [
            (&term, "eth0", "10.7.0.2/24", "2001:db8:7::2/64"),
            (&edge, "eth0", "10.7.0.1/24", "2001:db8:7::1/64"),
            (&edge, "eth1", "10.8.1.1/24", "2001:db8:81::1/64"),
            (&edge, "eth2", "10.8.2.1/24", "2001:db8:82::1/64"),
            (&s1, "eth0", "10.8.1.10/24", "2001:db8:81::10/64"),
            (&s2, "eth0", "10.8.2.10/24", "2001:db8:82::10/64"),
        ] {
            for a in [a, a6] {
                sh(&[
                    "ip", "netns", "exec", ns, "ip", "addr", "add", a, "dev", dev,
                ]);
            }
            sh(&["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
        }
        for (ns, via) in [
            (&term, "2001:db8:7::1"),
            (&s1, "2001:db8:81::1"),
            (&s2, "2001:db8:82::1"),
        ] {
            sh(&[
                "ip", "netns", "exec", ns, "ip", "-6", "route", "add", "default", "via", via,
            ]);
        }
        sh(&[
            "ip",
            "netns",
            "exec",
            &edge,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        sh(&[
            "ip", "netns", "exec", &term, "ip", "route", "add", "default", "via", "10.7.0.1",
        ]);
        sh(&[
            "ip", "netns", "exec", &s1, "ip", "route", "add", "default", "via", "10.8.1.1",
        ]);
        sh(&[
            "ip", "netns", "exec", &s2, "ip", "route", "add", "default", "via", "10.8.2.1",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &edge,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        sh(&[
            "ip", "netns", "exec", &term, "ethtool", "-K", "eth0", "tx", "off",
        ]);
        // The service address starts on server 1.
        sh(&[
            "ip",
            "netns",
            "exec",
            &s1,
            "ip",
            "addr",
            "add",
            "10.99.0.80/32",
            "dev",
            "lo",
        ]);
        for ns in [&term, &edge, &s1, &s2] {
            crate::links::wait_links_ready(ns, Duration::from_secs(3)).unwrap();
        }
        // Native XDP_REDIRECT into a veth needs a program on its peer.
        for s in [&s1, &s2] {
            let pins = format!("/sys/fs/bpf/edgeplane/{}/peer-{s}", l.prefix);
            let exe = l.exe.display().to_string();
            sh(&[
                &exe,
                "xdp-pass",
                "--netns",
                s,
                "--interface",
                "eth0",
                "--pin-root",
                &pins,
            ]);
        }
        l
    }

    /// The counter service on both servers, their agents, and the
    /// controller and coordinator on the edge host; the process runs on s1.
    /// As in the test: s1's agent uses the control socket, s2's commands.
    pub fn start(&mut self) {
        self.start_with(true)
    }

    /// The lab with every daemon and counter service run as nobody, each
    /// daemon with only its capabilities (`unprivileged_caps`), the way
    /// the service unit runs them: the lab's directory, the pin directory
    /// and s1's cgroup (cgroup.freeze, the delegation systemd would make)
    /// are nobody's.
    pub fn new_unprivileged(tag: &str, exe: &std::path::Path) -> Self {
        let mut l = Self::new(tag, exe);
        l.unprivileged = true;
        // Its own pin root, not under the shared /sys/fs/bpf/edgeplane
        // (root's 0700): a service's is made the user's the same way.
        let pins = l.pins();
        std::fs::create_dir_all(&pins).unwrap();
        for d in [&l.dir, &pins] {
            std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        l
    }

    /// `ip netns exec NS`; in an unprivileged lab, `nsenter --net` (ip
    /// would mount a sysfs of the namespace over /sys, hiding bpffs) and
    /// setpriv to nobody with `caps` only.
    fn in_ns(&self, ns: &str, caps: &str) -> Command {
        if !self.unprivileged {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.name(ns)]);
            return c;
        }
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name(ns)));
        crate::setpriv_nobody(&mut c, caps);
        c
    }

    /// The daemons' pins: /sys/fs/bpf/edgeplane/PREFIX, or /sys/fs/bpf/PREFIX
    /// in an unprivileged lab.
    fn pins(&self) -> std::path::PathBuf {
        if self.unprivileged {
            format!("/sys/fs/bpf/{}", self.prefix).into()
        } else {
            format!("/sys/fs/bpf/edgeplane/{}", self.prefix).into()
        }
    }

    /// The pid of the child started as `tag` (a daemon is `daemon-ROLE`).
    pub fn pid(&self, tag: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, c)| c.id())
    }

    /// `commands_on_s2`: s2's agent runs `counter-ctl` commands (else it
    /// uses the control socket, like s1's).
    pub fn start_with(&mut self, commands_on_s2: bool) {
        for s in ["s1", "s2"] {
            let ctl = self.ctl(s).display().to_string();
            let pid = self.dir.join(format!("{s}.pid")).display().to_string();
            self.spawn_lab(
                &format!("counter-{s}"),
                s,
                &[
                    "counter-service",
                    "--udp",
                    if self.ipv6 {
                        "[::]:9000"
                    } else {
                        "0.0.0.0:9000"
                    },
                    "--tcp",
                    if self.ipv6 {
                        "[::]:9001"
                    } else {
                        "0.0.0.0:9001"
                    },
                    "--control",
                    &ctl,
                    "--pid-file",
                    &pid,
                ],
            );
        }
        let t0 = Instant::now();
        while !(self.ctl("s1").exists() && self.ctl("s2").exists()) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "counter services did not start"
            );
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(root) = cgroup2_root() {
            let g = root.join(format!("edgeplane-{}-s1", self.prefix));
            std::fs::create_dir_all(&g).unwrap();
            self.cgroup = Some(g.clone());
            for (_, c) in self.children.iter().filter(|(t, _)| t == "counter-s1") {
                std::fs::write(g.join("cgroup.procs"), c.id().to_string()).unwrap();
            }
            if self.unprivileged {
                std::os::unix::fs::chown(g.join("cgroup.freeze"), Some(NOBODY), Some(NOBODY))
                    .unwrap();
            }
        }
        // s1's agent talks to the counter's control socket and freezes its
        // cgroup; s2's runs `counter-ctl` commands and stops the pid in the
        // pid file with SIGSTOP.
        let mut s1 = format!("control = \"{}\"\n", self.ctl("s1").display());
        if let Some(g) = &self.cgroup {
            s1 += &format!("cgroup = \"{}\"\n", g.display());
        }
        let cmd = |op: &str| {
            format!(
                "[{:?}, \"counter-ctl\", \"--control\", {:?}, \"{op}\"]",
                crate::lab_bin(&self.exe).display().to_string(),
                self.ctl("s2").display().to_string()
            )
        };
        let s2 = format!(
            "pid_file = \"{}\"\n[migration.agent.process.commands]\npause = {}\nexport = {}\nimport = {}\nresume = {}\ndiscard = {}\n",
            self.dir.join("s2.pid").display(),
            cmd("pause"),
            cmd("export"),
            cmd("import"),
            cmd("resume"),
            cmd("discard")
        );
        let s2 = if commands_on_s2 {
            s2
        } else {
            format!("control = \"{}\"\n", self.ctl("s2").display())
        };
        for (s, addr, coordinator, backend) in [
            ("s1", "10.8.1.10", "10.8.1.1", &s1),
            ("s2", "10.8.2.10", "10.8.2.1", &s2),
        ] {
            let state = self.dir.join(format!("{s}-agent-state.json"));
            let body = agent_config(addr, coordinator, &state, backend);
            self.agents.push((s.into(), body.clone()));
            self.daemon(s, &body);
        }
        self.daemon("edge", &self.edge_config());
    }

    fn edge_config(&self) -> String {
        let c = EDGE.replace("DB", &self.dir.join("coordinator.db").display().to_string());
        if self.ipv6 {
            c.replace("\"10.99.0.80\"", &format!("\"{SERVICE6}\""))
        } else {
            c
        }
    }

    /// SIGKILL the edge host's daemon (controller and coordinator) and
    /// start it again on the same pins and store.
    pub fn restart_edge(&mut self) {
        self.kill("daemon-edge");
        self.daemon("edge", &self.edge_config());
    }

    pub fn name(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    /// Run `edgeplane ARGS` in namespace `ns`.
    pub fn spawn(&mut self, tag: &str, ns: &str, args: &[&str]) {
        let exe = self.exe.clone();
        self.spawn_bin(tag, ns, &exe, args);
    }

    /// Run the demo workload (`edgeplane-lab ARGS`) in namespace `ns`.
    pub fn spawn_lab(&mut self, tag: &str, ns: &str, args: &[&str]) {
        let lab = crate::lab_bin(&self.exe);
        self.spawn_bin(tag, ns, &lab, args);
    }

    fn spawn_bin(&mut self, tag: &str, ns: &str, bin: &std::path::Path, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{tag}.log"))).unwrap();
        let c = self
            .in_ns(ns, "")
            .arg(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((tag.into(), c));
    }

    pub fn kill(&mut self, tag: &str) {
        for (t, c) in self.children.iter_mut().filter(|(t, _)| t == tag) {
            let _ = c.kill();
            let _ = c.wait();
            let _ = t;
        }
    }

    /// Send `sig` (e.g. "STOP", "CONT") to a child started here.
    pub fn signal(&self, tag: &str, sig: &str) {
        for (_, c) in self.children.iter().filter(|(t, _)| t == tag) {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .output();
        }
    }

    /// The config file a daemon was started with (a test edits it and
    /// sends a reload).
    pub fn config(&self, role: &str) -> std::path::PathBuf {
        self.dir.join(format!("{role}.toml"))
    }

    pub fn sock(&self, role: &str) -> std::path::PathBuf {
        self.dir.join(format!("{role}.sock"))
    }

    pub fn ctl(&self, server: &str) -> std::path::PathBuf {
        self.dir.join(format!("{server}.ctl"))
    }

    pub fn daemon(&mut self, role: &str, body: &str) {
        self.daemon_env(role, body, None)
    }

    fn daemon_env(&mut self, role: &str, body: &str, env: Option<(&str, &str)>) {
        let cfg = format!(
            "[node]\nname = \"{role}\"\nsocket = \"{}\"\npin_root = \"{}/{role}\"\n\n[migration]\nkey = \"{KEY}\"\n{body}",
            self.sock(role).display(),
            self.pins().display()
        );
        let path = self.config(role);
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{role}.log"))).unwrap();
        let mut cmd = if self.unprivileged {
            // `--netns` needs CAP_SYS_ADMIN: entered before, by ip.
            let mut c = self.in_ns(role, unprivileged_caps(role));
            c.arg(&self.exe).args(["run", "--config"]);
            c
        } else {
            let mut c = Command::new(&self.exe);
            c.args(["run", "--netns", &self.name(role), "--config"]);
            c
        };
        cmd.arg(&path).stdout(Stdio::null()).stderr(log);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let c = cmd.spawn().unwrap();
        self.children.push((format!("daemon-{role}"), c));
        let t0 = Instant::now();
        while edgeplane::client::call(&self.sock(role), &Request::Status).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{role} did not start: {}",
                self.log(role)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start server `s`'s agent again (killed, or to be armed): with
    /// `failpoint`, it SIGKILLs itself there (`EDGEPLANE_FAILPOINT`).
    pub fn restart_agent(&mut self, s: &str, failpoint: Option<&str>) {
        self.kill(&format!("daemon-{s}"));
        let body = self
            .agents
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, b)| b.clone())
            .expect("an agent of the lab");
        self.daemon_env(s, &body, failpoint.map(|f| ("EDGEPLANE_FAILPOINT", f)));
    }

    /// Whether the child `tag` exits within `wait`.
    pub fn exited_within(&mut self, tag: &str, wait: Duration) -> bool {
        let t0 = Instant::now();
        loop {
            let alive = self
                .children
                .iter_mut()
                .filter(|(t, _)| t == tag)
                .any(|(_, c)| c.try_wait().ok().flatten().is_none());
            if !alive {
                return true;
            }
            if t0.elapsed() > wait {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self, tag: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{tag}.log"))).unwrap_or_default()
    }

    pub fn counter(&self, server: &str, cmd: &str) -> anyhow::Result<String> {
        edgeplane::migration::app::control(&self.ctl(server), cmd)
    }

    /// The counter service's `status` on a server: count, paused, open
    /// TCP connections.
    pub fn status(&self, server: &str) -> serde_json::Value {
        serde_json::from_str(&self.counter(server, "status").unwrap()).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if let Some(g) = &self.cgroup {
            // Thaw first: a frozen cgroup's killed process may linger.
            let _ = std::fs::write(g.join("cgroup.freeze"), "0");
            let t0 = Instant::now();
            while std::fs::remove_dir(g).is_err() && t0.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = crate::topo::remove_pins(&self.pins());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on a hybrid host).
pub fn cgroup2_root() -> Option<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| f[1].into())
        })
}

/// A server's agent: it moves `counter` (its backend keys in `backend`)
/// and asks the coordinator at `coordinator` (port 7800) for moves
/// requested on this server.
pub fn agent_config(
    addr: &str,
    coordinator: &str,
    state_file: &std::path::Path,
    backend: &str,
) -> String {
    format!("[migration.agent]\nlisten = \"{addr}:7600\"\ncoordinator = \"{coordinator}:7800\"\nstate_file = {:?}\n[[migration.agent.process]]\nname = \"counter\"\n{backend}", state_file.display().to_string())
}

/// The `migration.key` every daemon of the lab shares.
pub const KEY: &str = "lab migration key, shared";

pub const EDGE: &str = r#"
[migration.controller]
listen = "127.0.0.1:7700"
interface = "eth0"
[[migration.controller.network]]
id = 1
name = "net1"
via = "eth1"
next_hop_mac = "02:00:00:00:01:0a"
[[migration.controller.network]]
id = 2
name = "net2"
via = "eth2"
next_hop_mac = "02:00:00:00:02:0a"
[[migration.controller.service]]
address = "10.99.0.80"
network = 1

[migration.coordinator]
controller = "127.0.0.1:7700"
listen = "0.0.0.0:7800"
database = "DB"
rollback_retry_ms = 5000
[[migration.coordinator.server]]
name = "s1"
address = "10.8.1.10"
network = "net1"
agent = "10.8.1.10:7600"
[[migration.coordinator.server]]
name = "s2"
address = "10.8.2.10"
network = "net2"
agent = "10.8.2.10:7600"
[[migration.coordinator.network]]
name = "net1"
id = 1
controller = "127.0.0.1:7700"
[[migration.coordinator.network]]
name = "net2"
id = 2
controller = "127.0.0.1:7700"
# Unknown to the controller's config: the switch request carries how to
# reach it (the egress), and the controller steers there.
[[migration.coordinator.network]]
name = "net5"
id = 5
controller = "127.0.0.1:7700"
via = "eth2"
next_hop_mac = "02:00:00:00:02:0a"
[[migration.coordinator.server]]
name = "s2b"
address = "10.8.2.10"
network = "net5"
agent = "10.8.2.10:7600"
# Behind another edge host's controller: a move there is refused up front.
[[migration.coordinator.network]]
name = "net4"
id = 4
controller = "127.0.0.1:7799"
[[migration.coordinator.server]]
name = "s5"
address = "10.8.4.10"
network = "net4"
agent = "10.8.4.10:7600"
# Known to the coordinator but not to the controller: a switch to it is
# refused (failure injection).
[[migration.coordinator.server]]
name = "s3"
address = "10.8.2.10"
network = "net3"
agent = "10.8.2.10:7600"
# Server 1's agent behind the unknown network: it takes the checkpoint,
# then the switch is refused.
[[migration.coordinator.server]]
name = "s4"
address = "10.8.1.10"
network = "net3"
agent = "10.8.1.10:7600"
[[migration.coordinator.network]]
name = "net3"
id = 3
[[migration.coordinator.process]]
name = "counter"
server = "s1"
service = "10.99.0.80"
"#;
