//! A small SIP network in namespaces for the tests, the demo and the
//! latency benchmark: a user agent `{p}ua` (10.5.0.2, 2001:db8:5::2), the
//! monitored host `{p}mon` routing between 10.5.0.0/24 and 10.6.0.0/24
//! (2001:db8:5::/64 and 2001:db8:6::/64), and `{p}srv` (10.6.0.2,
//! 2001:db8:6::2) for the UAS, the presence server or Kamailio. Dual stack,
//! duplicate address detection off.

use std::{
    net::UdpSocket,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use control::api::Request;

use crate::topo::enter_netns;

pub struct Net {
    pub prefix: String,
    pub dir: std::path::PathBuf,
    exe: std::path::PathBuf,
    ns: Vec<String>,
    daemons: Vec<(String, Child)>,
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// `exe`: the edgeplane binary the daemons run.
    pub fn new(tag: &str, exe: &std::path::Path) -> Self {
        let prefix = format!("ep{}{tag}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = Self {
            prefix,
            dir,
            exe: exe.into(),
            ns: vec![],
            daemons: vec![],
        };
        for r in ["ua", "mon", "srv"] {
            let ns = n.name(r);
            sh(&["ip", "netns", "add", &ns]);
            n.ns.push(ns.clone());
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            crate::links::no_dad(&ns).unwrap();
        }
        let (ua, mon, srv) = (n.name("ua"), n.name("mon"), n.name("srv"));
        sh(&[
            "ip", "link", "add", "eth0", "netns", &ua, "type", "veth", "peer", "name", "eth0",
            "netns", &mon,
        ]);
        sh(&[
            "ip", "link", "add", "eth1", "netns", &mon, "type", "veth", "peer", "name", "eth0",
            "netns", &srv,
        ]);
        for (ns, dev, a, a6) in [
            (&ua, "eth0", "10.5.0.2/24", "2001:db8:5::2/64"),
            (&mon, "eth0", "10.5.0.1/24", "2001:db8:5::1/64"),
            (&mon, "eth1", "10.6.0.1/24", "2001:db8:6::1/64"),
            (&srv, "eth0", "10.6.0.2/24", "2001:db8:6::2/64"),
        ] {
            for a in [a, a6] {
                sh(&[
                    "ip", "netns", "exec", ns, "ip", "addr", "add", a, "dev", dev,
                ]);
            }
            sh(&["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
        }
        for (ns, via) in [(&ua, "2001:db8:5::1"), (&srv, "2001:db8:6::1")] {
            sh(&[
                "ip", "netns", "exec", ns, "ip", "-6", "route", "add", "default", "via", via,
            ]);
        }
        sh(&[
            "ip",
            "netns",
            "exec",
            &mon,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        sh(&[
            "ip", "netns", "exec", &ua, "ip", "route", "add", "default", "via", "10.5.0.1",
        ]);
        sh(&[
            "ip", "netns", "exec", &srv, "ip", "route", "add", "default", "via", "10.6.0.1",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &mon,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        for ns in [&ua, &srv] {
            sh(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off",
            ]);
        }
        for ns in [&ua, &mon, &srv] {
            crate::links::wait_links_ready(ns, Duration::from_secs(3)).unwrap();
        }
        n
    }

    pub fn name(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    pub fn daemon(&mut self, role: &str, config: &str) {
        let ns = self.name(role);
        self.daemon_in(role, &ns, config)
    }

    /// `daemon` in namespace `netns` (e.g. a second server beside `srv`).
    pub fn daemon_in(&mut self, role: &str, netns: &str, config: &str) {
        let path = self.dir.join(format!("{role}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{role}.log"))).unwrap();
        let c = Command::new(&self.exe)
            .args(["run", "--netns", netns, "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemons.push((role.to_string(), c));
        let sock = self.dir.join(format!("{role}.sock"));
        let t0 = Instant::now();
        while edgeplane::client::call(&sock, &Request::Status).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{role} did not start: {}",
                std::fs::read_to_string(self.dir.join(format!("{role}.log"))).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of `role`'s daemon.
    pub fn pid(&self, role: &str) -> Option<u32> {
        self.daemons
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, c)| c.id())
    }

    /// SIGKILL the daemon of `role`.
    pub fn kill(&mut self, role: &str) {
        for (r, c) in self.daemons.iter_mut() {
            if r == role {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.daemons.retain(|(r, _)| r != role);
    }

    fn node(&self, role: &str) -> String {
        format!(
            "[node]\nname = \"{role}\"\nsocket = \"{}\"\npin_root = \"/sys/fs/bpf/edgeplane/{}/{role}\"\n\n",
            self.dir.join(format!("{role}.sock")).display(),
            self.prefix
        )
    }

    /// Config of the presence server on `srv` (10.6.0.2:5070, open to
    /// 10/8); `database` defaults to a SQLite file in the lab directory.
    pub fn presence_config(&self, database: Option<&str>) -> String {
        let db = database
            .map(str::to_string)
            .unwrap_or_else(|| self.dir.join("presence.db").display().to_string());
        self.presence_config_at("srv", "10.6.0.2:5070", &db)
    }

    /// A presence server's config as daemon `role`, on `listen`.
    pub fn presence_config_at(&self, role: &str, listen: &str, database: &str) -> String {
        format!("{}[presence]\nlisten = \"{listen}\"\ndatabase = \"{database}\"\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n", self.node(role))
    }

    /// Config of the monitor on `mon` (both interfaces), publishing to
    /// `presence`, with `extra` keys of the [sip_monitor] section.
    pub fn monitor_config(&self, domain: &str, presence: &str, extra: &str) -> String {
        self.monitor_config_on(&["eth0", "eth1"], domain, presence, extra)
    }

    /// `monitor_config` on `interfaces` of `mon`.
    pub fn monitor_config_on(
        &self,
        interfaces: &[&str],
        domain: &str,
        presence: &str,
        extra: &str,
    ) -> String {
        format!(
            "{}[sip_monitor]\ninterfaces = {interfaces:?}\ndomain = \"{domain}\"\npresence = \"{presence}\"\npublish_interval_ms = 20\nstate_file = {:?}\n{extra}",
            self.node("mon"),
            self.dir.join("mon-state.json").display().to_string()
        )
    }

    /// Kamailio with `cfg` (its config text) in `role`'s namespace,
    /// returned once it listens on UDP `port` (bounded: 15 s), its log in
    /// `<dir>/<name>.log`. It forks workers, so it leads a process group
    /// the guard kills whole, also when a test fails.
    pub fn kamailio(&self, role: &str, name: &str, cfg: &str, port: u16) -> ProcessGroup {
        use std::os::unix::process::CommandExt;
        let path = self.dir.join(format!("{name}.cfg"));
        std::fs::write(&path, cfg).unwrap();
        let log = self.dir.join(format!("{name}.log"));
        let mut kam = ProcessGroup(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.name(role),
                    "kamailio",
                    "-DD",
                    "-E",
                    "-f",
                ])
                .arg(&path)
                .arg("-P")
                .arg(self.dir.join(format!("{name}.pid")))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .process_group(0)
                .spawn()
                .expect("kamailio (cargo xtask setup installs it)"),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let filter = format!("sport = :{port}");
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.name(role), "ss", "-Hlun", &filter])
                .output()
                .expect("ss");
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                break;
            }
            let exited = kam.0.try_wait().ok().flatten();
            assert!(
                Instant::now() < deadline && exited.is_none(),
                "kamailio did not listen on {port} ({exited:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(100));
        }
        // Its workers take a moment after the socket is bound.
        thread::sleep(Duration::from_millis(300));
        kam
    }

    /// The sum of `role`'s counters on `host` whose name `name` accepts
    /// (`edgeplane stats`; 0 when there are none).
    pub fn counters(&self, host: &str, role: &str, name: impl Fn(&str) -> bool) -> u64 {
        self.call(host, Request::Stats)
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["role"] == role && c["name"].as_str().is_some_and(&name))
            .map(|c| c["packets"].as_u64().unwrap_or(0))
            .sum()
    }

    /// `counters` of the one counter `name`.
    pub fn counter(&self, host: &str, role: &str, name: &str) -> u64 {
        self.counters(host, role, |n| n == name)
    }

    /// The statuses the presence server on `srv` stored for `user`,
    /// oldest first.
    /// The UA registers `user` (Call-ID `call`, Expires `expires`; 0
    /// de-registers) with the registrar at 10.6.0.2:5060, and waits for
    /// its 200.
    pub fn register(&self, user: &str, call: &str, expires: u32) {
        let ua = format!("/run/netns/{}", self.name("ua"));
        let reg = sip(
            "REGISTER sip:example.com SIP/2.0",
            user,
            user,
            call,
            "1 REGISTER",
            &format!("Expires: {expires}\r\n"),
            "",
        );
        thread::spawn(move || {
            enter_netns(&ua).unwrap();
            let s = UdpSocket::bind("10.5.0.2:5060").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(reg.as_bytes(), "10.6.0.2:5060").unwrap();
            let mut buf = [0u8; 2048];
            s.recv(&mut buf).expect("the registrar's 200");
        })
        .join()
        .unwrap();
    }

    /// TCP connections established from `role`'s namespace to `dst`.
    pub fn tcp_established(&self, role: &str, dst: &str) -> usize {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name(role),
                "ss",
                "-Htn",
                "state",
                "established",
                "dst",
                dst,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    pub fn history(&self, user: &str) -> Vec<String> {
        self.call("srv", Request::PresenceHistory { user: user.into() })
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn call(&self, role: &str, req: Request) -> serde_json::Value {
        edgeplane::client::call(&self.dir.join(format!("{role}.sock")), &req).unwrap()
    }
}

/// Kamailio as a registrar (usrloc in memory) and a record-routing
/// stateful proxy on 10.5.0.1:5060 (in `mon`): the session control
/// server the monitor runs on.
pub const REGISTRAR: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:10.5.0.1:5060
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not here"); exit;
  }
  if (is_method("REGISTER")) { save("location"); exit; }
  if (is_method("INVITE")) { record_route(); }
  if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
  t_relay();
}
"#;

/// A sipp scenario of the repository's (`tests/sip/NAME`).
pub fn scenario(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/sip")
        .join(name)
        .display()
        .to_string()
}

/// A sipp UAS waiting for one call, killed when dropped.
pub struct SippUas(Child);

impl Drop for SippUas {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Net {
    /// The monitor where the claims put it: the presence server on `srv`
    /// (10.6.0.2:5070, SQLite in the lab directory), Kamailio as registrar
    /// and proxy in `mon` (`REGISTRAR`), the monitor on `mon`'s eth0 only.
    /// Returns Kamailio's guard and the monitor's config (to restart it).
    pub fn on_registrar(&mut self) -> (ProcessGroup, String) {
        let db = self.dir.join("presence.db").display().to_string();
        let srv_cfg = self.presence_config_at("srv", "10.6.0.2:5070", &db);
        self.daemon("srv", &srv_cfg);
        let kam = self.kamailio("mon", "registrar", REGISTRAR, 5060);
        let mon_cfg = self.monitor_config_on(&["eth0"], "example.com", "10.6.0.2:5070", "");
        self.daemon("mon", &mon_cfg);
        (kam, mon_cfg)
    }

    /// sipp in `ua` running scenario `xml` once as `user` from
    /// 10.5.0.2:`port`, toward the registrar (10.5.0.1:5060).
    fn sipp_command(&self, xml: &str, user: &str, port: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name("ua"), "sipp", "-sf"])
            .arg(scenario(xml))
            .args(["-s", user, "-i", "10.5.0.2", "-p", port, "-m", "1"])
            .args(["-nostdin", "-timeout", "15s", "10.5.0.1:5060"])
            .current_dir(&self.dir);
        c
    }

    /// Run `xml` as `user` to its end (bounded by its 15 s timeout);
    /// panics with sipp's screens when it fails.
    pub fn sipp(&self, xml: &str, user: &str, port: &str) -> std::process::Output {
        let out = self
            .sipp_command(xml, user, port)
            .output()
            .expect("sipp (cargo xtask setup installs sip-tester)");
        assert!(
            out.status.success(),
            "sipp {xml} as {user}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Start `xml` (a callee) as `user` on `port`, returned once bound
    /// (bounded: 5 s).
    pub fn sipp_uas(&self, xml: &str, user: &str, port: &str) -> SippUas {
        let c = self
            .sipp_command(xml, user, port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (cargo xtask setup installs sip-tester)");
        let deadline = Instant::now() + Duration::from_secs(5);
        let filter = format!("sport = :{port}");
        while Instant::now() < deadline {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.name("ua"), "ss", "-Hlun", &filter])
                .output()
                .expect("ss");
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        SippUas(c)
    }
}

/// A child leading its own process group; dropping it kills the group.
pub struct ProcessGroup(pub Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: plain syscall; the group is the child's own.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, c) in self.daemons.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = crate::topo::remove_pins(&std::path::PathBuf::from(format!(
            "/sys/fs/bpf/edgeplane/{}",
            self.prefix
        )));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn sip(
    first: &str,
    from: &str,
    to: &str,
    call: &str,
    cseq: &str,
    extra: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 10.5.0.2:5060;branch=z9hG4bK{call}{}\r\nMax-Forwards: 70\r\nFrom: <sip:{from}>;tag=u{call}\r\nTo: <sip:{to}>\r\nCall-ID: {call}\r\nCSeq: {cseq}\r\nContact: <sip:{from}>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        cseq.replace(' ', ""),
        body.len()
    )
}

/// A minimal UAS/registrar: 200 to REGISTER (echoing Expires), 180 + 200
/// to INVITE, 200 to BYE.
pub fn uas(
    ns: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> thread::JoinHandle<()> {
    let (ready, bound) = std::sync::mpsc::channel();
    let h = thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let s = UdpSocket::bind("10.6.0.2:5060").unwrap();
        let _ = ready.send(());
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 4096];
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                continue;
            };
            let raw = &buf[..n];
            let Ok((m, _)) = control::sip_monitor::sip::parse(raw) else {
                continue;
            };
            let send = |code: u16, reason: &str, extra: &str| {
                let _ = s.send_to(
                    edgeplane::sip_monitor::response(&m, raw, code, reason, extra).as_bytes(),
                    peer,
                );
            };
            match m.method() {
                "REGISTER" => send(
                    200,
                    "OK",
                    &format!("Expires: {}\r\n", m.expires.unwrap_or(60)),
                ),
                "INVITE" => {
                    // A UAS's 18x and 2xx to an INVITE carry its Contact
                    // (RFC 3261 12.1.1); Kamailio's dialog module needs it.
                    let contact = "Contact: <sip:uas@10.6.0.2:5060>\r\n";
                    send(180, "Ringing", contact);
                    send(200, "OK", contact);
                }
                "BYE" => send(200, "OK", ""),
                _ => {}
            }
        }
    });
    // Only return once it listens, so a UA that starts next is answered.
    let _ = bound.recv_timeout(Duration::from_secs(5));
    h
}

/// The UA's script, from `ua`: alice registers, a foreign user registers,
/// alice calls bob (INVITE with SDP, ACK), hangs up, de-registers.
pub fn run_ua(ua: String) {
    thread::spawn(move || {
        enter_netns(&ua).unwrap();
        let s = UdpSocket::bind("10.5.0.2:5060").unwrap();
        s.connect("10.6.0.2:5060").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let mut exchange = |msg: String, replies: usize| {
            s.send(msg.as_bytes()).unwrap();
            for _ in 0..replies {
                s.recv(&mut buf).expect("reply from the UAS");
            }
            thread::sleep(Duration::from_millis(150));
        };
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.5.0.2\r\ns=-\r\nc=IN IP4 10.5.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let (a, b) = ("alice@example.com", "bob@example.com");
        exchange(sip("REGISTER sip:example.com SIP/2.0", a, a, "reg1", "1 REGISTER", "Expires: 60\r\n", ""), 1);
        exchange(sip("REGISTER sip:foreign.net SIP/2.0", "mallory@foreign.net", "mallory@foreign.net", "reg2", "1 REGISTER", "Expires: 60\r\n", ""), 1);
        exchange(sip("INVITE sip:bob@example.com SIP/2.0", a, b, "call1", "1 INVITE", "", sdp), 2);
        exchange(sip("ACK sip:bob@example.com SIP/2.0", a, b, "call1", "1 ACK", "", ""), 0);
        exchange(sip("BYE sip:bob@example.com SIP/2.0", a, b, "call1", "2 BYE", "", ""), 1);
        exchange(sip("REGISTER sip:example.com SIP/2.0", a, a, "reg1", "2 REGISTER", "Expires: 0\r\n", ""), 1);
    })
    .join()
    .unwrap();
}
