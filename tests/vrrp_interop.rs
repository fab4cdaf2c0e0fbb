//! VRRPv3 against keepalived (Debian's 2.2.7) in the same virtual router:
//! election, preemption, failover after SIGKILL, priority-0 handover on a
//! clean stop, in both directions. And spoofed adverts change nothing.

mod common;

use std::{
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use control::api::Request;

const VIP: &str = "10.3.0.100";

struct Lan {
    prefix: String,
    dir: std::path::PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Lan {
    /// A bridge in `{p}lan` with routers `{p}ka` (10.3.0.1, keepalived),
    /// `{p}ep` (10.3.0.2, edgeplane) and a host `{p}x` (10.3.0.9).
    fn new(tag: &str) -> Self {
        let prefix = format!("ep{}{tag}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut l = Self { prefix, dir, namespaces: vec![], children: vec![] };
        for r in ["lan", "ka", "ep", "x"] {
            let ns = l.ns(r);
            sh(&["ip", "netns", "add", &ns]);
            l.namespaces.push(ns.clone());
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        let lan = l.ns("lan");
        sh(&["ip", "netns", "exec", &lan, "ip", "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "netns", "exec", &lan, "ip", "link", "set", "br0", "up"]);
        for (r, a) in [("ka", "10.3.0.1/24"), ("ep", "10.3.0.2/24"), ("x", "10.3.0.9/24")] {
            let ns = l.ns(r);
            let port = format!("{r}p");
            sh(&["ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &lan]);
            sh(&["ip", "netns", "exec", &lan, "ip", "link", "set", &port, "master", "br0", "up"]);
            sh(&["ip", "netns", "exec", &ns, "ip", "addr", "add", a, "dev", "eth0"]);
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up"]);
        }
        l
    }

    fn ns(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    fn keepalived(&mut self, priority: u8) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id ka\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let d = &self.dir;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("ka"), "keepalived", "-n", "-l", "-P", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(d.join("ka.pid"))
            .arg("-r")
            .arg(d.join("ka-vrrp.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("ka.log")).unwrap())
            .spawn()
            .expect("keepalived (cargo xtask setup installs it)");
        self.children.push(("ka".into(), child));
    }

    fn edgeplane(&mut self, priority: u8) {
        let conf = self.dir.join("ep.toml");
        std::fs::write(
            &conf,
            format!(
                "[node]\nname = \"ep\"\nsocket = \"{}\"\npin_root = \"/sys/fs/bpf/edgeplane/{}\"\n\n[[router]]\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\nadvert_interval_ms = 1000\nvirtual_addresses = [\"{VIP}/24\"]\n",
                self.dir.join("ep.sock").display(),
                self.prefix
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args(["run", "--netns", &self.ns("ep"), "--config"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("ep.log")).unwrap())
            .spawn()
            .unwrap();
        self.children.push(("ep".into(), child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while edgeplane::client::call(&self.dir.join("ep.sock"), &Request::Status).is_err() {
            assert!(Instant::now() < deadline, "edgeplane did not start: {}", std::fs::read_to_string(self.dir.join("ep.log")).unwrap_or_default());
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&mut self, who: &str, sig: i32) {
        if let Some(i) = self.children.iter().position(|(n, _)| n == who) {
            let (_, mut c) = self.children.remove(i);
            // keepalived runs under `ip netns exec`, which execs it: the
            // child's pid is keepalived's.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }

    fn has_vip(&self, r: &str) -> bool {
        let out = Command::new("ip").args(["netns", "exec", &self.ns(r), "ip", "-4", "-o", "addr", "show"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
    }

    /// Wait until exactly `r` holds the virtual address (at most `secs`).
    fn wait_master(&self, r: &str, secs: u64) -> Duration {
        let other = if r == "ka" { "ep" } else { "ka" };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if self.has_vip(r) && !self.has_vip(other) {
                return t0.elapsed();
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{r} did not become the only master within {secs} s (ka vip {}, ep vip {});\nep log:\n{}\nka log:\n{}",
            self.has_vip("ka"),
            self.has_vip("ep"),
            std::fs::read_to_string(self.dir.join("ep.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("ka.log")).unwrap_or_default()
        );
    }

    fn status(&self) -> serde_json::Value {
        edgeplane::client::call(&self.dir.join("ep.sock"), &Request::VrrpStatus).unwrap()[0].clone()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn edgeplane_and_keepalived_elect_preempt_and_fail_over() {
    if !common::kernel_available("vrrp_interop") {
        return;
    }
    let mut lan = Lan::new("v");
    // keepalived alone becomes master.
    lan.keepalived(100);
    lan.wait_master("ka", 10);
    // edgeplane with a higher priority preempts it.
    lan.edgeplane(150);
    lan.wait_master("ep", 10);
    let st = lan.status();
    assert_eq!(st["state"], "master");
    assert!(st["adverts_received"].as_u64().unwrap() >= 1, "heard keepalived: {st}");
    assert_eq!(st["discarded"]["bad_checksum"], 0, "keepalived's checksums verify: {st}");
    // SIGKILL: keepalived takes over within Master_Down_Interval
    // (3 x 1 s + skew 0.61 s), plus the time to notice.
    lan.signal("ep", libc::SIGKILL);
    let gap = lan.wait_master_any_stale("ka", 6);
    eprintln!("keepalived took over {gap:?} after edgeplane was killed");
    // Restarted, edgeplane preempts again.
    lan.edgeplane(150);
    lan.wait_master("ep", 10);
    // A clean stop sends priority 0: keepalived takes over at once
    // (Skew_Time, 0.61 s), well before Master_Down_Interval.
    lan.signal("ep", libc::SIGTERM);
    let gap = lan.wait_master("ka", 3);
    eprintln!("keepalived took over {gap:?} after edgeplane left with priority 0");
    assert!(gap < Duration::from_millis(2500), "{gap:?}");

    // The other direction: edgeplane lower, keepalived master; keepalived
    // stops, edgeplane takes over; keepalived returns and preempts.
    lan.edgeplane(50);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(lan.status()["state"], "backup");
    assert!(lan.has_vip("ka"));
    lan.signal("ka", libc::SIGTERM);
    lan.wait_master("ep", 5);
    lan.keepalived(100);
    lan.wait_master("ka", 10);
    assert_eq!(lan.status()["state"], "backup");
}

impl Lan {
    /// As `wait_master`, for a takeover after SIGKILL: the killed daemon's
    /// macvlan (and address) stay behind until it restarts, so only the
    /// new master's side is checked.
    fn wait_master_any_stale(&self, r: &str, secs: u64) -> Duration {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if self.has_vip(r) {
                return t0.elapsed();
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("{r} did not take over within {secs} s");
    }
}

/// An advertisement frame as a spoofer on the LAN would send it.
fn spoof_frame(src: [u8; 4], ttl: u8, priority: u8, corrupt_checksum: bool) -> Vec<u8> {
    use control::vrrp::{Advert, VRRP_GROUP};
    let src_ip = std::net::Ipv4Addr::from(src);
    let mut msg = Advert { vrid: 51, priority, max_adver_int: 100, addresses: vec![VIP.parse().unwrap()] }.encode(src_ip, VRRP_GROUP);
    if corrupt_checksum {
        msg[7] ^= 0x55;
    }
    let mut f = vec![0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0, 0, 0, 0, 0x66, 0x08, 0x00];
    let mut h = vec![0x45, 0xc0, 0, (20 + msg.len()) as u8, 0, 0, 0, 0, ttl, 112, 0, 0];
    h.extend_from_slice(&src);
    h.extend_from_slice(&VRRP_GROUP.octets());
    let mut s: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&msg);
    f
}

fn send_from(ns: &str, frames: Vec<Vec<u8>>) {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        edgeplane::topo::enter_netns(&path).unwrap();
        let ifindex = dataplane_user::ifindex("eth0").unwrap() as i32;
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0);
            for f in frames {
                let mut sa: libc::sockaddr_ll = std::mem::zeroed();
                sa.sll_family = libc::AF_PACKET as u16;
                sa.sll_ifindex = ifindex;
                sa.sll_halen = 6;
                sa.sll_addr[..6].copy_from_slice(&f[..6]);
                let n = libc::sendto(fd, f.as_ptr().cast(), f.len(), 0, (&sa as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32);
                assert_eq!(n as usize, f.len());
            }
            libc::close(fd);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn spoofed_adverts_change_nothing() {
    if !common::kernel_available("vrrp_spoof") {
        return;
    }
    let mut lan = Lan::new("s");
    lan.edgeplane(150);
    lan.wait_master_any_stale("ep", 10);
    let x = lan.ns("x");
    let count = |st: &serde_json::Value, k: &str| st["discarded"][k].as_u64().unwrap();
    // Higher priority, but TTL 254 / wrong subnet / bad checksum /
    // claiming 255 without owning the address: each is discarded.
    for (frame, reason) in [
        (spoof_frame([10, 3, 0, 9], 254, 254, false), "bad_ttl"),
        (spoof_frame([192, 0, 2, 9], 255, 254, false), "wrong_subnet"),
        (spoof_frame([10, 3, 0, 9], 255, 254, true), "bad_checksum"),
        (spoof_frame([10, 3, 0, 9], 255, 255, false), "false_owner"),
    ] {
        let before = lan.status();
        send_from(&x, vec![frame; 5]);
        thread::sleep(Duration::from_millis(300));
        let after = lan.status();
        assert_eq!(after["state"], "master", "{reason}: {after}");
        assert_eq!(after["transitions"], before["transitions"], "{reason}");
        assert_eq!(count(&after, reason), count(&before, reason) + 5, "{reason}: {after}");
    }
    assert!(lan.has_vip("ep"));
    // The same injector with a valid higher advert does move the master:
    // the checks above are what stopped the spoofs.
    send_from(&x, vec![spoof_frame([10, 3, 0, 9], 255, 254, false)]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lan.status()["state"], "backup");
}
