//! The `router` role's edge: VRRPv3 sockets, timers and virtual addresses
//! around the pure engine in `control::vrrp`.
//!
//! Adverts are received on a raw IP socket (protocol 112, joined to
//! 224.0.0.18, or ff02::12 for IPv6, on the interface) and sent as whole
//! frames on a packet socket, so their source MAC is the virtual MAC (RFC
//! 5798 §7.3). The master holds the virtual MAC and addresses on a
//! macvlan interface, which answers ARP (IPv4) or Neighbor Solicitations
//! (IPv6) for them with the virtual MAC; taking over, it announces them
//! with gratuitous ARP or unsolicited Neighbor Advertisements (§6.4.2).

pub(crate) mod accept;
pub mod cli;
mod io;
pub mod loadshare;
mod role;

pub use role::{check_interfaces, RouterRole};

use io::{advert_frame, garp_frame, na_frame, Io};

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context as _};
use control::{
    field::IpPrefix,
    router::config::Router,
    router::vrrp::{
        self, Action, Advert, Discard, Event, Params, VirtualRouter, VRRP_GROUP, VRRP_GROUP6,
    },
};
use serde::{Deserialize, Serialize};
use tokio::{sync::mpsc, time::Instant};
use tracing::{info, warn};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouterStatus {
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub priority: u8,
    pub primary: String,
    pub master: Option<String>,
    pub advert_interval_ms: u32,
    pub master_adver_interval_ms: u32,
    pub master_down_interval_ms: u32,
    pub virtual_addresses: Vec<IpPrefix>,
    pub virtual_mac: String,
    pub last_change: String,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub discarded: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_sharing: Option<crate::router::loadshare::LsStatus>,
    /// Accept_Mode: whether the master accepts packets to the virtual
    /// addresses (else the nftables table dropping them).
    #[serde(default)]
    pub accept: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_filter: Option<String>,
    /// Unicast peers adverts go to (empty: the multicast group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peers: Vec<String>,
}

/// How long a leaving load-sharing router waits for its buckets to be
/// handed over before it stops anyway (then the others lose its share
/// until the master notices, as after a crash).
const LEAVE_MAX: Duration = Duration::from_secs(3);

enum Cmd {
    Shutdown(tokio::sync::oneshot::Sender<()>),
    Rebalance,
}

pub struct RouterHandle {
    pub cfg: Router,
    pub status: Arc<Mutex<RouterStatus>>,
    cmd: mpsc::Sender<Cmd>,
}

/// What stops an instance, detached from the handle (sent to the event
/// loop while the daemon's state stays unlocked).
pub struct RouterStopper {
    cmd: mpsc::Sender<Cmd>,
}

impl RouterStopper {
    /// Leave the virtual router cleanly (priority 0, addresses released;
    /// a load-sharing router first hands its buckets over, for at most
    /// `LEAVE_MAX`).
    pub async fn shutdown(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.cmd.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(LEAVE_MAX + Duration::from_secs(2), rx).await;
        }
    }
}

impl RouterHandle {
    pub fn stopper(&self) -> RouterStopper {
        RouterStopper {
            cmd: self.cmd.clone(),
        }
    }

    /// Ask the load-sharing master to rebalance (ignored elsewhere).
    pub fn rebalance(&self) -> bool {
        self.cmd.try_send(Cmd::Rebalance).is_ok()
    }
}

/// The macvlan holding the virtual MAC: `vrrp{VRID}` for IPv4,
/// `vrrp6-{VRID}` for IPv6 (the families have VRIDs and MACs of their own).
fn vmac_name(v6: bool, vrid: u8) -> String {
    if v6 {
        format!("vrrp6-{vrid}")
    } else {
        format!("vrrp{vrid}")
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Run `ip -batch -` with `lines` (each an `ip` command without the
/// `ip`); stops at the first that fails, whose message is the error.
fn ip_batch(lines: &[String]) -> anyhow::Result<()> {
    run_batch(&["-batch", "-"], lines)
}

fn run_batch(args: &[&str], lines: &[String]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running ip")?;
    {
        let mut stdin = child.stdin.take().context("ip's stdin")?;
        for l in lines {
            writeln!(stdin, "{l}")?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ip: {}: {}",
            lines.join("; "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The interface's addresses with their prefix lengths, in the order the
/// kernel lists them.
pub fn interface_addresses(iface: &str) -> anyhow::Result<Vec<(IpAddr, u8)>> {
    // SAFETY: getifaddrs/freeifaddrs pair; pointers read only while valid.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            bail!("getifaddrs: {}", std::io::Error::last_os_error());
        }
        let mut cur = head;
        let mut found = Vec::new();
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null()
                && !ifa.ifa_netmask.is_null()
                && std::ffi::CStr::from_ptr(ifa.ifa_name).to_bytes() == iface.as_bytes()
            {
                match (*ifa.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                        found.push((
                            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into(),
                            u32::from_be(m.sin_addr.s_addr).count_ones() as u8,
                        ));
                    }
                    libc::AF_INET6 => {
                        let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                        found.push((
                            Ipv6Addr::from(a.sin6_addr.s6_addr).into(),
                            u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones() as u8,
                        ));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
        Ok(found)
    }
}

/// The address a virtual router sends its adverts from, with its prefix
/// length: the interface's first IPv4 address, or for IPv6 its link-local
/// address (RFC 5798 §5.1.2.1).
pub fn primary_address(iface: &str, v6: bool) -> anyhow::Result<(IpAddr, u8)> {
    let all = interface_addresses(iface)?;
    let found = all.into_iter().find(|(a, _)| match a {
        IpAddr::V4(_) => !v6,
        IpAddr::V6(a) => v6 && vrrp::is_link_local(*a),
    });
    found.ok_or_else(|| {
        if v6 {
            anyhow::anyhow!(
                "interface {iface} has no IPv6 link-local address (an IPv6 virtual router sends from it; is IPv6 disabled, or addrgenmode none?)"
            )
        } else {
            anyhow::anyhow!("interface {iface} has no IPv4 address (VRRP needs a primary address)")
        }
    })
}

/// The address the load-sharing extension speaks from: the interface's
/// first address of its peers' family (for IPv6 a global one: the peers
/// are configured by address, without a scope).
pub fn loadshare_address(iface: &str, v6: bool) -> anyhow::Result<IpAddr> {
    interface_addresses(iface)?
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(a) => v6 && !vrrp::is_link_local(*a),
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "interface {iface} has no {} address for the load-sharing peers",
                if v6 { "global IPv6" } else { "IPv4" }
            )
        })
}

pub struct Instance {
    cfg: Router,
    vr: VirtualRouter,
    io: Io,
    status: Arc<Mutex<RouterStatus>>,
    adver_at: Option<Instant>,
    down_at: Option<Instant>,
    ls: Option<crate::router::loadshare::LsEdge>,
    /// Takeover requests (macvlan up, addresses) in process.
    rtnl: crate::netlink::Rtnl,
    /// The macvlan's interface index (0 until made).
    vmac_ifindex: u32,
    /// Accept_Mode off: the table dropping packets to the virtual
    /// addresses, removed with the instance.
    accept_filter: Option<accept::AcceptFilter>,
}

fn ms(cs: u32) -> u32 {
    cs * 10
}

impl Instance {
    pub fn start(cfg: Router, opts: &dataplane_user::LoadOptions) -> anyhow::Result<RouterHandle> {
        let v6 = cfg.is_ipv6();
        let (primary, len) = primary_address(&cfg.interface, v6)?;
        let subnet = match primary {
            IpAddr::V4(p) => Some((
                Ipv4Addr::from(u32::from(p) & u32::MAX.checked_shl(32 - len as u32).unwrap_or(0)),
                len,
            )),
            IpAddr::V6(_) => None,
        };
        let addresses: Vec<IpAddr> = cfg.virtual_addresses.iter().map(|a| a.addr).collect();
        let params = Params {
            vrid: cfg.vrid,
            priority: cfg.priority,
            adver_int: (cfg.advert_interval_ms / 10) as u16,
            preempt: cfg.preempt,
            accept: cfg.accept,
            primary,
            subnet,
            addresses,
        };
        // A daemon killed while master leaves its macvlan behind.
        let _ = ip(&["link", "del", &vmac_name(v6, cfg.vrid)]);
        if !v6 {
            // Only the macvlan may answer ARP for the virtual addresses
            // (with the virtual MAC); by default Linux answers on every
            // interface. (IPv6 answers Neighbor Solicitations only on the
            // interface holding the address.)
            for (k, v) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                let key = format!("/proc/sys/net/ipv4/conf/{}/{k}", cfg.interface);
                std::fs::write(&key, v).with_context(|| format!("setting {key}"))?;
            }
        }
        let io = Io::open(&cfg.interface, v6)?;
        // The owner (priority 255) always accepts (§6.1).
        let accept_filter = if !cfg.accept && cfg.priority != vrrp::OWNER_PRIORITY {
            Some(accept::AcceptFilter::install(
                &cfg.interface,
                cfg.vrid,
                v6,
                &params.addresses,
            )?)
        } else {
            None
        };
        let ls = match &cfg.load_sharing {
            Some(l) => {
                let ls_v6 = l.peers.first().map(|p| p.is_ipv6()).unwrap_or(v6);
                let me = loadshare_address(&cfg.interface, ls_v6)?;
                Some(crate::router::loadshare::LsEdge::start(
                    &cfg.interface,
                    vrrp::virtual_mac_for(primary, cfg.vrid),
                    me,
                    cfg.priority,
                    l,
                    opts,
                )?)
            }
            None => None,
        };
        let status = Arc::new(Mutex::new(RouterStatus::default()));
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let handle_cfg = cfg.clone();
        let mut inst = Self {
            cfg,
            vr: VirtualRouter::new(params),
            io,
            status: status.clone(),
            adver_at: None,
            down_at: None,
            ls,
            rtnl: crate::netlink::Rtnl::open().context("rtnetlink socket")?,
            vmac_ifindex: 0,
            accept_filter,
        };
        // The macvlan is made now, so a takeover only brings it up with
        // the addresses. Every router of a load-sharing virtual router
        // receives the frames for the virtual MAC (the filter decides
        // which it routes): up at once there; otherwise down (a down
        // macvlan receives nothing) until this router is master.
        inst.vmac_ifindex = inst.add_vmac(inst.ls.is_some())?;
        inst.publish();
        tokio::spawn(async move { inst.run(cmd_rx).await });
        Ok(RouterHandle {
            cfg: handle_cfg,
            status,
            cmd: cmd_tx,
        })
    }

    /// The macvlan with the virtual MAC (answers ARP or Neighbor
    /// Solicitations for the addresses it holds, and receives the frames
    /// sent to the MAC when up), without addresses; up when `up`.
    fn add_vmac(&self, up: bool) -> anyhow::Result<u32> {
        let name = self.vmac_name();
        let mac = dataplane_user::format_mac(&self.vmac());
        // No link-local address of its own: every router of a load-sharing
        // virtual router holds the same MAC, so the same EUI-64 address
        // would fail duplicate address detection.
        ip_batch(&[
            format!(
                "link add link {} name {name} address {mac} type macvlan mode bridge",
                self.cfg.interface
            ),
            format!("link set {name} addrgenmode none"),
        ])?;
        // ARP only for the addresses it holds: by default Linux answers
        // for any local address on any interface, and an IPv6 router's
        // macvlan (holding no IPv4 address) would answer for an IPv4
        // virtual address with the IPv6 virtual MAC, taking the IPv4
        // traffic past the load-sharing filter.
        for (k, v) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let key = format!("/proc/sys/net/ipv4/conf/{name}/{k}");
            std::fs::write(&key, v).with_context(|| format!("setting {key}"))?;
        }
        if up {
            ip_batch(&[format!("link set {name} up")])?;
        }
        Ok(dataplane_user::ifindex(&name)?)
    }

    fn v6(&self) -> bool {
        self.vr.params.primary.is_ipv6()
    }

    fn vmac_name(&self) -> String {
        vmac_name(self.v6(), self.cfg.vrid)
    }

    fn vmac(&self) -> [u8; 6] {
        vrrp::virtual_mac_for(self.vr.params.primary, self.cfg.vrid)
    }

    fn publish(&self) {
        let mut s = self.status.lock().unwrap();
        let p = &self.vr.params;
        s.interface = self.cfg.interface.clone();
        s.vrid = p.vrid;
        s.state = format!("{:?}", self.vr.state).to_lowercase();
        s.priority = p.priority;
        s.primary = p.primary.to_string();
        s.master = self.vr.master.map(|m| m.to_string());
        s.advert_interval_ms = ms(p.adver_int as u32);
        s.master_adver_interval_ms = ms(self.vr.master_adver_int as u32);
        s.master_down_interval_ms = ms(self.vr.master_down_interval());
        s.virtual_addresses = self.cfg.virtual_addresses.clone();
        s.virtual_mac = dataplane_user::format_mac(&self.vmac());
        s.last_change = self.vr.last_cause.clone();
        s.load_sharing = self.ls.as_ref().map(|l| l.status());
        s.accept = self.accept_filter.is_none();
        s.accept_filter = self.accept_filter.as_ref().map(|f| f.table.clone());
        s.unicast_peers = self
            .cfg
            .unicast_peers
            .iter()
            .map(|p| p.to_string())
            .collect();
        for d in Discard::ALL {
            s.discarded.entry(d.name().into()).or_insert(0);
        }
    }

    async fn event(&mut self, ev: Event) {
        let before = self.vr.state;
        let actions = self.vr.handle(ev);
        if self.vr.state != before {
            info!(interface = %self.cfg.interface, vrid = self.cfg.vrid, from = ?before, to = ?self.vr.state, cause = %self.vr.last_cause, "vrrp state change");
            self.status.lock().unwrap().transitions += 1;
        }
        for a in actions {
            if let Err(e) = self.act(a) {
                warn!(interface = %self.cfg.interface, vrid = self.cfg.vrid, error = %e, "vrrp action failed");
            }
        }
        if self.vr.state != before {
            let master = self.vr.state == control::router::vrrp::State::Master;
            if let Some(ls) = self.ls.as_mut() {
                let now = ls.now();
                ls.event(control::router::loadshare::Event::Role { now, master })
                    .await;
            }
        }
        self.publish();
    }

    fn act(&mut self, a: Action) -> anyhow::Result<()> {
        let now = Instant::now();
        match a {
            Action::SendAdvert { priority } => {
                let p = &self.vr.params;
                let msg = Advert {
                    vrid: p.vrid,
                    priority,
                    max_adver_int: p.adver_int,
                    addresses: p.addresses.clone(),
                };
                if self.cfg.unicast_peers.is_empty() {
                    let group = if self.v6() {
                        VRRP_GROUP6.into()
                    } else {
                        VRRP_GROUP.into()
                    };
                    let msg = msg.encode(p.primary, group);
                    self.io.send_frame(&advert_frame(p.vrid, p.primary, &msg))?;
                } else {
                    // One copy per peer, each checksummed for its
                    // destination; a peer that cannot be reached now does
                    // not keep the others from theirs.
                    let mut failed = None;
                    for peer in &self.cfg.unicast_peers {
                        if let Err(e) = self.io.send_to(*peer, &msg.encode(p.primary, *peer)) {
                            failed = Some(e);
                        }
                    }
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
                self.status.lock().unwrap().adverts_sent += 1;
            }
            Action::BecomeMaster => {
                // In process over rtnetlink: a takeover waits for these.
                // IPv6 addresses without duplicate address detection (the
                // master owns them now, and a tentative address answers
                // nothing; keepalived does the same).
                let ifindex = self.vmac_ifindex;
                if self.ls.is_none() {
                    self.rtnl
                        .set_up(ifindex, true)
                        .with_context(|| format!("{} up", self.vmac_name()))?;
                }
                for a in &self.cfg.virtual_addresses {
                    match self.rtnl.add_address(ifindex, a.addr, a.len, true) {
                        Ok(()) => {}
                        // Held already (a master that lost no state).
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => anyhow::bail!("adding {a} on {}: {e}", self.vmac_name()),
                    }
                }
                for a in self.vr.params.addresses.clone() {
                    match (a, self.vr.params.primary) {
                        (IpAddr::V4(a), _) => self.io.send_frame(&garp_frame(self.cfg.vrid, a))?,
                        (IpAddr::V6(a), IpAddr::V6(src)) => {
                            self.io.send_frame(&na_frame(self.cfg.vrid, src, a))?
                        }
                        (IpAddr::V6(_), IpAddr::V4(_)) => {}
                    }
                }
            }
            Action::StopBeingMaster => {
                // The addresses go; without load sharing the macvlan goes
                // down (it must not take frames for the virtual MAC), with
                // it every router keeps receiving them for the filter.
                let ifindex = self.vmac_ifindex;
                for a in &self.cfg.virtual_addresses {
                    let _ = self.rtnl.del_address(ifindex, a.addr, a.len);
                }
                if self.ls.is_none() {
                    let _ = self.rtnl.set_up(ifindex, false);
                }
            }
            Action::StartAdverTimer { cs } => {
                self.adver_at = Some(now + Duration::from_millis(ms(cs as u32) as u64))
            }
            Action::StartMasterDownTimer { cs } => {
                self.down_at = Some(now + Duration::from_millis(ms(cs) as u64))
            }
            Action::CancelAdverTimer => self.adver_at = None,
            Action::CancelMasterDownTimer => self.down_at = None,
            Action::Discard(d) => {
                *self
                    .status
                    .lock()
                    .unwrap()
                    .discarded
                    .entry(d.name().into())
                    .or_insert(0) += 1;
            }
        }
        Ok(())
    }

    async fn run(mut self, mut cmd: mpsc::Receiver<Cmd>) {
        self.event(Event::Startup).await;
        let mut buf = vec![0u8; 2048];
        let mut lbuf = vec![0u8; 65536];
        let far = || Instant::now() + Duration::from_secs(3600);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut publish = tokio::time::interval(Duration::from_millis(200));
        // Shutting down, waiting for the buckets to go: the ack and when
        // to stop waiting.
        let mut leaving: Option<(tokio::sync::oneshot::Sender<()>, Instant)> = None;
        loop {
            let adver = self.adver_at.unwrap_or_else(far);
            let down = self.down_at.unwrap_or_else(far);
            let has_ls = self.ls.is_some();
            tokio::select! {
                r = self.io.recv(&mut buf) => match r {
                    Ok(got) => match got {
                        Ok((src, _)) if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&src) => {
                            let _ = self.act(Action::Discard(Discard::NotAPeer));
                        }
                        Ok((src, advert)) => {
                            self.status.lock().unwrap().adverts_received += 1;
                            self.event(Event::Advert { src, advert }).await;
                        }
                        Err(d) => { let _ = self.act(Action::Discard(d)); }
                    },
                    Err(e) => {
                        warn!(error = %e, "vrrp receive failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = tokio::time::sleep_until(adver), if self.adver_at.is_some() => {
                    self.adver_at = None;
                    self.event(Event::AdverTimer).await;
                }
                _ = tokio::time::sleep_until(down), if self.down_at.is_some() => {
                    self.down_at = None;
                    self.event(Event::MasterDownTimer).await;
                }
                r = async { self.ls.as_ref().expect("guarded").sock.recv_from(&mut lbuf).await }, if has_ls => {
                    if let Ok((n, _)) = r {
                        let ls = self.ls.as_mut().expect("guarded");
                        if let Some(msg) = ls.decode(&lbuf[..n]) {
                            let now = ls.now();
                            ls.event(control::router::loadshare::Event::Received { now, msg }).await;
                        } else {
                            *self.status.lock().unwrap().discarded.entry("extension_rejected".into()).or_insert(0) += 1;
                        }
                    }
                }
                _ = tick.tick(), if has_ls => {
                    let ls = self.ls.as_mut().expect("guarded");
                    if let Err(e) = ls.renew_lease() {
                        warn!(error = %e, "renewing the filter lease failed");
                    }
                    if let Err(e) = ls.drain() {
                        warn!(error = %e, "draining held frames failed");
                    }
                    let now = ls.now();
                    ls.event(control::router::loadshare::Event::Tick { now }).await;
                    if let Err(e) = ls.sample_rates().await {
                        warn!(error = %e, "reading bucket rates failed");
                    }
                    if let Some((_, until)) = &leaving {
                        let gone = ls.engine.routes_nothing();
                        if gone || Instant::now() >= *until {
                            if gone {
                                info!("load sharing: every bucket handed over; leaving");
                            } else {
                                warn!("load sharing: buckets not handed over within {LEAVE_MAX:?}; leaving anyway");
                            }
                            self.shutdown().await;
                            if let Some((ack, _)) = leaving.take() {
                                let _ = ack.send(());
                            }
                            return;
                        }
                    }
                }
                _ = publish.tick() => self.publish(),
                c = cmd.recv() => match c {
                    Some(Cmd::Rebalance) => {
                        if let Some(ls) = self.ls.as_mut() {
                            ls.event(control::router::loadshare::Event::Rebalance).await;
                        }
                    }
                    Some(Cmd::Shutdown(ack)) => {
                        match self.ls.as_mut() {
                            Some(ls) if !ls.engine.routes_nothing() && leaving.is_none() => {
                                info!("load sharing: handing the buckets over before leaving");
                                let now = ls.now();
                                ls.event(control::router::loadshare::Event::Leave { now }).await;
                                leaving = Some((ack, Instant::now() + LEAVE_MAX));
                            }
                            _ => {
                                self.shutdown().await;
                                let _ = ack.send(());
                                return;
                            }
                        }
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
            }
        }
    }

    /// Priority 0 and addresses released; a load-sharing router stops
    /// routing its buckets, which the next master then hands out.
    async fn shutdown(&mut self) {
        self.event(Event::Shutdown).await;
        if let Some(ls) = self.ls.as_mut() {
            for b in 0..dataplane_common::router::BUCKETS {
                ls.engine.mine[b as usize] = dataplane_common::router::BUCKET_NOT_MINE;
                let _ = ls.set_bucket(b as u8, dataplane_common::router::BUCKET_NOT_MINE);
            }
        }
        let _ = ip(&["link", "del", &self.vmac_name()]);
    }
}
