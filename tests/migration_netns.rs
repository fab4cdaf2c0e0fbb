//! Process migration between networks (seed 000) in namespaces: a
//! terminal `term` (10.7.0.2) talks to the counter service at 10.99.0.80
//! through the edge host `edge`, whose XDP steering program sends the
//! service's packets to network 1 (`s1`, 10.8.1.10) or network 2 (`s2`,
//! 10.8.2.10). The coordinator moves the process from s1 to s2 while the
//! terminal keeps asking; every request must be answered once, with the
//! count continuing. Then a migration back to s1 whose destination cannot
//! take the checkpoint must roll back with the service still answering.

mod common;

use std::{
    net::UdpSocket,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use edgeplane::topo::enter_netns;

struct Lab {
    prefix: String,
    dir: std::path::PathBuf,
    ns: Vec<String>,
    children: Vec<(String, Child)>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const EXE: &str = env!("CARGO_BIN_EXE_edgeplane");

impl Lab {
    fn new() -> Self {
        let prefix = format!("ep{}mg", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Self { prefix, dir, ns: vec![], children: vec![] };
        for r in ["term", "edge", "s1", "s2"] {
            let ns = l.name(r);
            sh(&["ip", "netns", "add", &ns]);
            l.ns.push(ns.clone());
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        let n = |r: &str| l.name(r);
        let (term, edge, s1, s2) = (n("term"), n("edge"), n("s1"), n("s2"));
        sh(&["ip", "link", "add", "eth0", "netns", &term, "type", "veth", "peer", "name", "eth0", "netns", &edge]);
        sh(&["ip", "link", "add", "eth1", "netns", &edge, "type", "veth", "peer", "name", "eth0", "netns", &s1, "address", "02:00:00:00:01:0a"]);
        sh(&["ip", "link", "add", "eth2", "netns", &edge, "type", "veth", "peer", "name", "eth0", "netns", &s2, "address", "02:00:00:00:02:0a"]);
        for (ns, dev, a) in [
            (&term, "eth0", "10.7.0.2/24"),
            (&edge, "eth0", "10.7.0.1/24"),
            (&edge, "eth1", "10.8.1.1/24"),
            (&edge, "eth2", "10.8.2.1/24"),
            (&s1, "eth0", "10.8.1.10/24"),
            (&s2, "eth0", "10.8.2.10/24"),
        ] {
            sh(&["ip", "netns", "exec", ns, "ip", "addr", "add", a, "dev", dev]);
            sh(&["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
        }
        sh(&["ip", "netns", "exec", &term, "ip", "route", "add", "default", "via", "10.7.0.1"]);
        sh(&["ip", "netns", "exec", &s1, "ip", "route", "add", "default", "via", "10.8.1.1"]);
        sh(&["ip", "netns", "exec", &s2, "ip", "route", "add", "default", "via", "10.8.2.1"]);
        sh(&["ip", "netns", "exec", &edge, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        sh(&["ip", "netns", "exec", &term, "ethtool", "-K", "eth0", "tx", "off"]);
        // The service address starts on server 1.
        sh(&["ip", "netns", "exec", &s1, "ip", "addr", "add", "10.99.0.80/32", "dev", "lo"]);
        // Native XDP_REDIRECT into a veth needs a program on its peer.
        for s in [&s1, &s2] {
            let pins = format!("/sys/fs/bpf/edgeplane/{}/peer-{s}", l.prefix);
            sh(&[EXE, "xdp-pass", "--netns", s, "--interface", "eth0", "--pin-root", &pins]);
        }
        l
    }

    fn name(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    fn spawn(&mut self, tag: &str, ns: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{tag}.log"))).unwrap();
        let c = Command::new("ip").args(["netns", "exec", &self.name(ns), EXE]).args(args).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.children.push((tag.into(), c));
    }

    fn kill(&mut self, tag: &str) {
        for (t, c) in self.children.iter_mut().filter(|(t, _)| t == tag) {
            let _ = c.kill();
            let _ = c.wait();
            let _ = t;
        }
    }

    fn sock(&self, role: &str) -> std::path::PathBuf {
        self.dir.join(format!("{role}.sock"))
    }

    fn ctl(&self, server: &str) -> std::path::PathBuf {
        self.dir.join(format!("{server}.ctl"))
    }

    fn daemon(&mut self, role: &str, body: &str) {
        let cfg = format!(
            "[node]\nname = \"{role}\"\nsocket = \"{}\"\npin_root = \"/sys/fs/bpf/edgeplane/{}/{role}\"\n\n{body}",
            self.sock(role).display(),
            self.prefix
        );
        let path = self.dir.join(format!("{role}.toml"));
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{role}.log"))).unwrap();
        let c = Command::new(EXE).args(["run", "--netns", &self.name(role), "--config"]).arg(&path).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.children.push((format!("daemon-{role}"), c));
        let t0 = Instant::now();
        while edgeplane::client::call(&self.sock(role), &Request::Status).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "{role} did not start: {}", self.log(role));
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self, tag: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{tag}.log"))).unwrap_or_default()
    }

    fn counter(&self, server: &str, cmd: &str) -> String {
        edgeplane::counter::control(&self.ctl(server), cmd).unwrap()
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
        let _ = edgeplane::topo::remove_pins(&std::path::PathBuf::from(format!("/sys/fs/bpf/edgeplane/{}", self.prefix)));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn agent_config(addr: &str, ctl: &std::path::Path) -> String {
    format!("[migration.agent]\nlisten = \"{addr}:7600\"\n[[migration.agent.process]]\nname = \"counter\"\ncontrol = \"{}\"\n", ctl.display())
}

const EDGE: &str = r#"
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
database = "DB"
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
[[migration.coordinator.network]]
name = "net2"
id = 2
# Known to the coordinator but not to the controller: a switch to it is
# refused (failure injection).
[[migration.coordinator.server]]
name = "s3"
address = "10.8.2.10"
network = "net3"
agent = "10.8.2.10:7600"
[[migration.coordinator.network]]
name = "net3"
id = 3
[[migration.coordinator.process]]
name = "counter"
server = "s1"
service = "10.99.0.80"
"#;

/// The terminal: `total` requests one after another, each waiting for its
/// answer (at most 2 s); returns the counts answered, in order.
fn terminal(ns: String, total: u64, sent: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> thread::JoinHandle<Vec<Option<u64>>> {
    thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let s = UdpSocket::bind("10.7.0.2:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for i in 0..total {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let req = format!("req{i}");
            s.send_to(req.as_bytes(), "10.99.0.80:9000").unwrap();
            sent.fetch_add(1, Ordering::SeqCst);
            let answer = loop {
                match s.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let t = String::from_utf8_lossy(&buf[..n]).to_string();
                        // Ignore a late answer to an earlier request.
                        if let Some(v) = t.strip_prefix(&format!("{req} n=")) {
                            break v.parse::<u64>().ok();
                        }
                    }
                    Err(_) => break None,
                }
            };
            got.push(answer);
            thread::sleep(Duration::from_millis(2));
        }
        got
    })
}

#[test]
fn process_moves_to_network_2_without_losing_a_request() {
    if !common::kernel_available("migration_netns") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new();
    for s in ["s1", "s2"] {
        let ctl = lab.ctl(s).display().to_string();
        lab.spawn(&format!("counter-{s}"), s, &["counter-service", "--udp", "0.0.0.0:9000", "--control", &ctl]);
    }
    let t0 = Instant::now();
    while !(lab.ctl("s1").exists() && lab.ctl("s2").exists()) {
        assert!(t0.elapsed() < Duration::from_secs(10), "counter services did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let (c1, c2) = (lab.ctl("s1"), lab.ctl("s2"));
    lab.daemon("s1", &agent_config("10.8.1.10", &c1));
    lab.daemon("s2", &agent_config("10.8.2.10", &c2));
    let db = lab.dir.join("coordinator.db").display().to_string();
    lab.daemon("edge", &EDGE.replace("DB", &db));

    let servers = edgeplane::client::call(&lab.sock("edge"), &Request::Servers).unwrap();
    assert_eq!(servers.as_array().map(|a| a.len()), Some(3), "{servers}");
    let networks = edgeplane::client::call(&lab.sock("edge"), &Request::Networks).unwrap();
    assert_eq!(networks[1]["name"], "net2", "{networks}");

    // Unknown destination: refused before anything moves.
    let e = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStart { process: "counter".into(), to: "s9".into() }).unwrap_err();
    assert!(e.to_string().contains("s9"), "{e}");

    const TOTAL: u64 = 400;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let term = terminal(format!("/run/netns/{}", lab.name("term")), TOTAL, sent.clone(), stop.clone());
    let t0 = Instant::now();
    while sent.load(Ordering::SeqCst) < 100 {
        assert!(t0.elapsed() < Duration::from_secs(20), "terminal stalled before the migration");
        thread::sleep(Duration::from_millis(5));
    }
    let r = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStart { process: "counter".into(), to: "s2".into() });
    let at_switch = sent.load(Ordering::SeqCst);
    let v = match r {
        Ok(v) => v,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = term.join();
            panic!("migration failed: {e}\nedge: {}\ns1: {}\ns2: {}", lab.log("edge"), lab.log("s1"), lab.log("s2"));
        }
    };
    assert_eq!(v["step"], "done", "{v}");
    let got = term.join().unwrap();
    assert_eq!(got.len() as u64, TOTAL);
    let lost: Vec<usize> = got.iter().enumerate().filter(|(_, a)| a.is_none()).map(|(i, _)| i).collect();
    assert!(lost.is_empty(), "requests {lost:?} were not answered (migration around request {at_switch}): {v}");
    let counts: Vec<u64> = got.iter().map(|a| a.unwrap()).collect();
    assert_eq!(counts, (1..=TOTAL).collect::<Vec<_>>(), "the count must continue across the move, each request counted once");
    // The state lives on server 2 now; server 1 stays paused with the
    // count it exported.
    assert_eq!(lab.counter("s2", "export"), format!("{{\"count\":{TOTAL}}}"));
    assert!(at_switch > 100 && at_switch < TOTAL, "the migration happened mid-stream ({at_switch})");
    let status = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
    assert_eq!(status[0]["to"], "s2", "{status}");

    // Failure injection, moving on from s2. Each must roll back: the
    // process runs on s2 with its state and the terminal is answered.
    let mut next = TOTAL;
    let mut answered_after = |lab: &Lab, what: &str| {
        let got = terminal(format!("/run/netns/{}", lab.name("term")), 20, Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false))).join().unwrap();
        let counts: Vec<Option<u64>> = got;
        let want: Vec<Option<u64>> = (next + 1..=next + 20).map(Some).collect();
        assert_eq!(counts, want, "s2 must serve on with its count after: {what}");
        next += 20;
    };
    let migrate = |lab: &Lab, to: &str| edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStart { process: "counter".into(), to: to.into() });
    // 1. The switch is refused (the controller has no network 3); by then
    //    s2 had given its address away, so the rollback must restore it.
    let e = migrate(&lab, "s3").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a refused switch");
    // 2. Server 1 cannot take the checkpoint (its process is gone).
    lab.kill("counter-s1");
    let _ = std::fs::remove_file(lab.ctl("s1"));
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a destination that cannot restore");
    // 3. Server 1 is unreachable (its agent is killed).
    lab.kill("daemon-s1");
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(e.to_string().contains("rolled back") && e.to_string().contains("10.8.1.10:7600"), "{e}");
    answered_after(&lab, "an unreachable destination agent");
    // 4. The source's agent is killed: nothing was paused, nothing moves.
    lab.kill("daemon-s2");
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a dead source agent");
    let status = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
    let steps: Vec<&str> = status.as_array().unwrap().iter().map(|m| m["step"].as_str().unwrap_or("")).collect();
    assert_eq!(steps, ["done", "rolled_back", "rolled_back", "rolled_back", "rolled_back"], "{status}");
}
