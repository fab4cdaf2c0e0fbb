//! A LAN of VRRP routers in network namespaces for the interop tests and
//! the failover benchmark: a bridge in `{p}lan`, routers `{p}r1`,
//! `{p}r2`… at 10.3.0.1, .2… and 2001:db8:3::1, ::2…, and a host `{p}x` at
//! 10.3.0.9 and 2001:db8:3::9 (dual stack, duplicate address detection off
//! so addresses are usable at once). Each router runs keepalived or
//! edgeplane, for an IPv4 virtual router or (`new_ipv6`) an IPv6 one.
//! Everything is removed on drop.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use control::api::Request;

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 100);
/// The IPv6 virtual router's addresses: its link-local address first (RFC
/// 5798 §5.2.9), then the global one hosts route through.
pub const VIP6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x100);
pub const VRID: u8 = 51;

pub struct VrrpLan {
    pub prefix: String,
    pub dir: PathBuf,
    exe: PathBuf,
    namespaces: Vec<String>,
    children: HashMap<String, Child>,
    /// The virtual router is IPv6 (the LAN is dual stack either way).
    pub ipv6: bool,
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

impl VrrpLan {
    /// An IPv6 virtual router on the dual-stack LAN.
    pub fn new_ipv6(prefix: &str, routers: usize, exe: &std::path::Path) -> anyhow::Result<Self> {
        let mut l = Self::new(prefix, routers, exe)?;
        l.ipv6 = true;
        Ok(l)
    }

    pub fn new(prefix: &str, routers: usize, exe: &std::path::Path) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        let mut l = Self {
            prefix: prefix.into(),
            dir,
            exe: exe.into(),
            namespaces: vec![],
            children: HashMap::new(),
            ipv6: false,
        };
        let mut members: Vec<(String, String, String)> = (1..=routers)
            .map(|i| {
                (
                    format!("r{i}"),
                    format!("10.3.0.{i}/24"),
                    format!("2001:db8:3::{i}/64"),
                )
            })
            .collect();
        members.push(("x".into(), "10.3.0.9/24".into(), "2001:db8:3::9/64".into()));
        for r in std::iter::once("lan").chain(members.iter().map(|m| m.0.as_str())) {
            let ns = l.ns(r);
            run(&["ip", "netns", "add", &ns])?;
            l.namespaces.push(ns.clone());
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            crate::links::no_dad(&ns)?;
        }
        let lan = l.ns("lan");
        run(&[
            "ip", "netns", "exec", &lan, "ip", "link", "add", "br0", "type", "bridge",
        ])?;
        run(&[
            "ip", "netns", "exec", &lan, "ip", "link", "set", "br0", "up",
        ])?;
        for (r, a, a6) in &members {
            let ns = l.ns(r);
            let port = format!("{r}p");
            run(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &lan,
            ])?;
            run(&[
                "ip", "netns", "exec", &lan, "ip", "link", "set", &port, "master", "br0", "up",
            ])?;
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", a, "dev", "eth0",
            ])?;
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", a6, "dev", "eth0",
            ])?;
            run(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up",
            ])?;
        }
        for (r, _, _) in &members {
            crate::links::wait_links_ready(&l.ns(r), Duration::from_secs(3))?;
        }
        Ok(l)
    }

    /// The virtual addresses as keepalived's `virtual_ipaddress` lines
    /// and as edgeplane's `virtual_addresses` list.
    fn vips(&self) -> (String, String) {
        if self.ipv6 {
            (
                format!("    {VIP6_LL}/64\n    {VIP6}/64\n"),
                format!("[\"{VIP6_LL}/64\", \"{VIP6}/64\"]"),
            )
        } else {
            (format!("    {VIP}/24\n"), format!("[\"{VIP}/24\"]"))
        }
    }

    pub fn ns(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    pub fn start_keepalived(
        &mut self,
        r: &str,
        priority: u8,
        advert_ms: u32,
    ) -> anyhow::Result<()> {
        self.start_keepalived_with(r, priority, advert_ms, "")
    }

    /// Drop VRRP multicast (01:00:5e:00:00:12, 33:33:00:00:00:12) on the
    /// LAN's bridge: a segment without multicast.
    pub fn block_vrrp_multicast(&self) -> anyhow::Result<()> {
        let rules = "table bridge nomcast {\n chain forward_mcast {\n  type filter hook forward priority 0; policy accept;\n  ether daddr { 01:00:5e:00:00:12, 33:33:00:00:00:12 } counter drop\n }\n}\n";
        let f = self.dir.join("nomcast.nft");
        std::fs::write(&f, rules)?;
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("lan"),
            "nft",
            "-f",
            f.to_str().unwrap(),
        ])
    }

    /// `start_keepalived` with `extra` lines in its vrrp_instance.
    pub fn start_keepalived_with(
        &mut self,
        r: &str,
        priority: u8,
        advert_ms: u32,
        extra: &str,
    ) -> anyhow::Result<()> {
        let conf = self.dir.join(format!("{r}-ka.conf"));
        let adv = if advert_ms.is_multiple_of(1000) {
            format!("{}", advert_ms / 1000)
        } else {
            format!("{:.2}", advert_ms as f64 / 1000.0)
        };
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id {r}\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int {adv}\n  virtual_ipaddress {{\n{}  }}\n{extra}}}\n",
                self.vips().0
            ),
        )?;
        let d = &self.dir;
        // `ip netns exec` execs keepalived, so the child pid is its pid.
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(r),
                "keepalived",
                "-n",
                "-l",
                "-P",
                "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(d.join(format!("{r}-ka.pid")))
            .arg("-r")
            .arg(d.join(format!("{r}-ka-vrrp.pid")))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join(format!("{r}.log")))?)
            .spawn()
            .context("starting keepalived (cargo xtask setup installs it)")?;
        self.children.insert(r.into(), child);
        Ok(())
    }

    pub fn socket(&self, r: &str) -> PathBuf {
        self.dir.join(format!("{r}.sock"))
    }

    pub fn start_edgeplane(&mut self, r: &str, priority: u8, advert_ms: u32) -> anyhow::Result<()> {
        self.start_edgeplane_with(r, priority, advert_ms, "")
    }

    /// A WAN side for load-sharing tests: bridge `{p}wan`, each router's
    /// `wan0` at 10.4.0.<i>, a receiver `{p}rx` at 10.4.0.100; routers
    /// forward; router ports of the LAN bridge do not learn, so frames for
    /// the virtual MAC flood to every router (the segment the extension
    /// needs). The host `{p}x` gets end-system addresses 10.3.0.64-95 and
    /// 2001:db8:3::1:0-31 (see `source`) and the virtual addresses as its
    /// default gateways; the receiver is also 2001:db8:4::100.
    pub fn add_wan(&mut self, routers: usize) -> anyhow::Result<()> {
        for r in ["wan", "rx"] {
            let ns = self.ns(r);
            run(&["ip", "netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            crate::links::no_dad(&ns)?;
        }
        let wan = self.ns("wan");
        run(&[
            "ip", "netns", "exec", &wan, "ip", "link", "add", "br1", "type", "bridge",
        ])?;
        run(&[
            "ip", "netns", "exec", &wan, "ip", "link", "set", "br1", "up",
        ])?;
        let mut members: Vec<(String, String, String, String)> = (1..=routers)
            .map(|i| {
                (
                    format!("r{i}"),
                    "wan0".to_string(),
                    format!("10.4.0.{i}/24"),
                    format!("2001:db8:4::{i}/64"),
                )
            })
            .collect();
        members.push((
            "rx".into(),
            "eth0".into(),
            "10.4.0.100/24".into(),
            "2001:db8:4::100/64".into(),
        ));
        for (r, dev, a, a6) in &members {
            let ns = self.ns(r);
            let port = format!("w{r}");
            run(&[
                "ip", "link", "add", dev, "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &wan,
            ])?;
            run(&[
                "ip", "netns", "exec", &wan, "ip", "link", "set", &port, "master", "br1", "up",
            ])?;
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", a, "dev", dev,
            ])?;
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", a6, "dev", dev,
            ])?;
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", dev, "up"])?;
        }
        let lan = self.ns("lan");
        for i in 1..=routers {
            let r = self.ns(&format!("r{i}"));
            run(&[
                "ip",
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])?;
            run(&[
                "ip",
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.forwarding=1",
            ])?;
            run(&[
                "ip",
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.send_redirects=0",
            ])?;
            run(&[
                "ip",
                "netns",
                "exec",
                &lan,
                "bridge",
                "link",
                "set",
                "dev",
                &format!("r{i}p"),
                "learning",
                "off",
            ])?;
        }
        let x = self.ns("x");
        // Complete checksums from the host, as a NIC delivers them (veth
        // offload would hand the routers partial ones that XDP cannot
        // finish).
        run(&[
            "ip", "netns", "exec", &x, "ethtool", "-K", "eth0", "tx", "off",
        ])?;
        for i in 0..SOURCES {
            for a in [
                format!("{}/24", source(false, i)),
                format!("{}/64", source(true, i)),
            ] {
                run(&[
                    "ip", "netns", "exec", &x, "ip", "addr", "add", &a, "dev", "eth0",
                ])?;
            }
        }
        run(&[
            "ip",
            "netns",
            "exec",
            &x,
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            &VIP6.to_string(),
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("rx"),
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:4::1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &x,
            "ip",
            "route",
            "add",
            "default",
            "via",
            &VIP.to_string(),
        ])?;
        // Replies are not needed; the receiver only counts.
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns("rx"),
            "ip",
            "route",
            "add",
            "default",
            "via",
            "10.4.0.1",
        ])?;
        Ok(())
    }

    /// `start_edgeplane` with extra TOML appended to the router section.
    pub fn start_edgeplane_with(
        &mut self,
        r: &str,
        priority: u8,
        advert_ms: u32,
        extra: &str,
    ) -> anyhow::Result<()> {
        let conf = self.dir.join(format!("{r}.toml"));
        std::fs::write(
            &conf,
            format!(
                "[node]\nname = \"{r}\"\nsocket = \"{}\"\npin_root = \"/sys/fs/bpf/edgeplane/{}{r}\"\n\n[[router]]\ninterface = \"eth0\"\nvrid = {VRID}\npriority = {priority}\nadvert_interval_ms = {advert_ms}\nvirtual_addresses = {}\n{extra}",
                self.socket(r).display(),
                self.prefix,
                self.vips().1
            ),
        )?;
        let child = Command::new(&self.exe)
            .args(["run", "--netns", &self.ns(r), "--config"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(format!("{r}.log")))?)
            .spawn()?;
        self.children.insert(r.into(), child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while edgeplane::client::call(&self.socket(r), &Request::Status).is_err() {
            if Instant::now() > deadline {
                bail!("edgeplane on {r} did not start: {}", self.log(r));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn log(&self, r: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{r}.log"))).unwrap_or_default()
    }

    /// Signal a router's daemon and reap it. For keepalived, every process
    /// of the router gets the signal (it forks a VRRP child).
    pub fn signal(&mut self, r: &str, sig: i32) {
        if let Some(mut c) = self.children.remove(r) {
            // SAFETY: plain kill(2) on our child.
            unsafe { libc::kill(c.id() as i32, sig) };
            if sig == libc::SIGKILL {
                kill_all_in(&self.ns(r));
            }
            let _ = c.wait();
        }
    }

    /// A node failure: the link goes down and every process of the router
    /// dies at once (keepalived's VRRP child included), so nothing can
    /// announce the departure; a dead router's stale address cannot answer.
    pub fn fail(&mut self, r: &str) -> anyhow::Result<()> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns(r),
            "ip",
            "link",
            "set",
            "eth0",
            "down",
        ])?;
        kill_all_in(&self.ns(r));
        if let Some(mut c) = self.children.remove(r) {
            let _ = c.wait();
        }
        Ok(())
    }

    /// One ping from the host `x` to `addr` (IPv4 or IPv6), waiting at most
    /// `wait_s` seconds for the answer.
    pub fn ping_from_host(&self, addr: &str, wait_s: u32) -> bool {
        let family = if addr.contains(':') { "-6" } else { "-4" };
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("x"),
                "ping",
                family,
                "-c",
                "1",
                "-W",
            ])
            .arg(wait_s.to_string())
            .arg(addr)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Whether `r` holds the virtual address (for IPv6, the global one).
    pub fn has_vip(&self, r: &str) -> bool {
        let (family, vip) = if self.ipv6 {
            ("-6", VIP6.to_string())
        } else {
            ("-4", VIP.to_string())
        };
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(r),
                "ip",
                family,
                "-o",
                "addr",
                "show",
                "up",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {vip}/")))
            .unwrap_or(false)
    }

    /// Wait until `r` holds the virtual address and, when `alone`, no other
    /// router does. Returns how long it took.
    pub fn wait_master(
        &self,
        r: &str,
        routers: &[&str],
        alone: bool,
        within: Duration,
    ) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.has_vip(r)
                && (!alone
                    || routers
                        .iter()
                        .filter(|o| **o != r)
                        .all(|o| !self.has_vip(o)))
            {
                return Ok(t0.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{r} did not become master within {within:?}; logs:\n{}",
            routers
                .iter()
                .map(|o| format!("--- {o}\n{}", self.log(o)))
                .collect::<String>()
        )
    }

    pub fn status(&self, r: &str) -> anyhow::Result<serde_json::Value> {
        Ok(edgeplane::client::call(&self.socket(r), &Request::VrrpStatus)?[0].clone())
    }

    /// Router `r`'s counter `name` from `edgeplane stats` (the role's rows
    /// of `program`: "router" for the XDP filter, "vrrp", "load_sharing").
    pub fn counter(&self, r: &str, program: &str, name: &str) -> anyhow::Result<u64> {
        let rows = edgeplane::client::call(&self.socket(r), &Request::Stats)?;
        let row = rows
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["role"] == "router" && c["program"] == program && c["name"] == name);
        row.and_then(|c| c["packets"].as_u64())
            .ok_or_else(|| anyhow::anyhow!("{r}: no router counter {program}/{name} in {rows}"))
    }
}

/// SIGKILL every process in a namespace this lab made.
fn kill_all_in(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid listed in our own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for VrrpLan {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            kill_all_in(ns);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for i in 1..=8 {
            let _ = crate::topo::remove_pins(&PathBuf::from(format!(
                "/sys/fs/bpf/edgeplane/{}r{i}",
                self.prefix
            )));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- traffic for the load-sharing lab ----------------------------------

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

/// End-system addresses of the host: 10.3.0.64 + index, or
/// 2001:db8:3::1:index.
pub const SOURCES: u32 = 32;

/// End system `i`'s address in the family asked for.
pub fn source(v6: bool, i: u32) -> IpAddr {
    if v6 {
        Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 1, i as u16).into()
    } else {
        Ipv4Addr::new(10, 3, 0, 64 + i as u8).into()
    }
}

/// The receiver's address in the family asked for.
pub fn receiver_addr(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0x100).into(),
            9000,
        )
    } else {
        SocketAddr::new(Ipv4Addr::new(10, 4, 0, 100).into(), 9000)
    }
}

/// Per source index, the sequence numbers received.
pub type Seen = Arc<Mutex<HashMap<u32, Vec<u32>>>>;

/// Counts what arrives on port 9000 over both families (one dual-stack
/// socket).
pub fn receiver(ns: String, seen: Seen, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        crate::topo::enter_netns(&ns).unwrap();
        let s = UdpSocket::bind("[::]:9000").unwrap();
        let size: libc::c_int = 8 << 20;
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                4,
            )
        };
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 64];
        let mut quiet = 0;
        loop {
            match s.recv_from(&mut buf) {
                Ok((n, _)) if n >= 8 => {
                    let src = u32::from_be_bytes(buf[0..4].try_into().unwrap());
                    let seq = u32::from_be_bytes(buf[4..8].try_into().unwrap());
                    seen.lock().unwrap().entry(src).or_default().push(seq);
                    quiet = 0;
                }
                _ => {
                    if stop.load(Ordering::SeqCst) {
                        quiet += 1;
                        if quiet > 10 {
                            return;
                        }
                    }
                }
            }
        }
    })
}

/// `pps` packets a second round-robin over the end-system addresses for
/// `secs`; returns the packets sent per source.
pub fn sender(ns: String, pps: u32, secs: f64) -> thread::JoinHandle<Vec<u32>> {
    sender_from(ns, (0..SOURCES).collect(), pps, secs)
}

/// As `sender`, from the end systems `sources` (indices into
/// 10.3.0.64-95) only; the result is indexed like `sources`'s addresses.
pub fn sender_from(
    ns: String,
    sources: Vec<u32>,
    pps: u32,
    secs: f64,
) -> thread::JoinHandle<Vec<u32>> {
    sender_family(ns, false, sources, pps, secs)
}

/// As `sender_from`, over IPv6 when `v6`.
pub fn sender_family(
    ns: String,
    v6: bool,
    sources: Vec<u32>,
    pps: u32,
    secs: f64,
) -> thread::JoinHandle<Vec<u32>> {
    thread::spawn(move || {
        crate::topo::enter_netns(&ns).unwrap();
        let mut socks: Vec<Option<UdpSocket>> = (0..SOURCES).map(|_| None).collect();
        for i in &sources {
            socks[*i as usize] =
                Some(UdpSocket::bind(SocketAddr::new(source(v6, *i), 40000)).unwrap());
        }
        let dst = receiver_addr(v6);
        let mut sent = vec![0u32; SOURCES as usize];
        let total = (pps as f64 * secs) as u64;
        let gap = Duration::from_secs_f64(1.0 / pps as f64);
        let start = Instant::now();
        for k in 0..total {
            let i = sources[(k % sources.len() as u64) as usize] as usize;
            let mut p = [0u8; 8];
            p[0..4].copy_from_slice(&(i as u32).to_be_bytes());
            p[4..8].copy_from_slice(&sent[i].to_be_bytes());
            socks[i].as_ref().unwrap().send_to(&p, dst).unwrap();
            sent[i] += 1;
            let due = start + gap * (k as u32 + 1);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        sent
    })
}

/// (lost, received twice) over every source.
pub fn count_loss(sent: &[u32], seen: &Seen) -> (u64, u64) {
    let seen = seen.lock().unwrap();
    let (mut lost, mut doubled) = (0u64, 0u64);
    for (i, n) in sent.iter().enumerate() {
        let mut got = seen.get(&(i as u32)).cloned().unwrap_or_default();
        got.sort();
        let before = got.len();
        got.dedup();
        doubled += (before - got.len()) as u64;
        lost += (*n as usize - got.len()) as u64;
    }
    (lost, doubled)
}
