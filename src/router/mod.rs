//! The `router` role's edge: VRRPv3 sockets, timers and virtual addresses
//! around the pure engine in `control::vrrp`.
//!
//! Adverts are received on a raw IP socket (protocol 112, joined to
//! 224.0.0.18 on the interface) and sent as whole frames on a packet
//! socket, so their source MAC is the virtual MAC (RFC 5798 §7.3). The
//! master holds the virtual MAC and addresses on a macvlan interface, which
//! answers ARP for them with the virtual MAC.

pub mod cli;
pub mod loadshare;
mod role;

pub use role::{check_interfaces, RouterRole};

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context as _};
use control::{
    field::Ipv4Prefix,
    router::config::Router,
    router::vrrp::{
        self, Action, Advert, Discard, Event, Params, VirtualRouter, VRRP_GROUP, VRRP_PROTO,
        VRRP_TTL,
    },
};
use serde::{Deserialize, Serialize};
use tokio::{io::unix::AsyncFd, sync::mpsc, time::Instant};
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
    pub virtual_addresses: Vec<Ipv4Prefix>,
    pub virtual_mac: String,
    pub last_change: String,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub discarded: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_sharing: Option<crate::router::loadshare::LsStatus>,
}

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
    /// Leave the virtual router cleanly (priority 0, addresses released).
    pub async fn shutdown(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.cmd.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
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

fn vmac_name(vrid: u8) -> String {
    format!("vrrp{vrid}")
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

/// The interface's first IPv4 address and prefix length.
pub fn primary_address(iface: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    // SAFETY: getifaddrs/freeifaddrs pair; pointers read only while valid.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            bail!("getifaddrs: {}", std::io::Error::last_os_error());
        }
        let mut cur = head;
        let mut found = None;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null()
                && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET
                && std::ffi::CStr::from_ptr(ifa.ifa_name).to_bytes() == iface.as_bytes()
            {
                let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                let len = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
                found = Some((addr, len));
                break;
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
        found.ok_or_else(|| {
            anyhow::anyhow!("interface {iface} has no IPv4 address (VRRP needs a primary address)")
        })
    }
}

struct Io {
    rx: AsyncFd<OwnedFd>,
    tx: OwnedFd,
    ifindex: i32,
}

fn check(rc: libc::c_int, what: &str) -> anyhow::Result<()> {
    if rc < 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl Io {
    fn open(iface: &str) -> anyhow::Result<Self> {
        let ifindex = dataplane_user::ifindex(iface)? as i32;
        // SAFETY: plain socket calls with checked results and correctly
        // sized option values.
        unsafe {
            let fd = libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                VRRP_PROTO as i32,
            );
            check(fd, "raw socket (protocol 112)")?;
            let rx = OwnedFd::from_raw_fd(fd);
            let name = std::ffi::CString::new(iface)?;
            check(
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr().cast(),
                    iface.len() as u32 + 1,
                ),
                "SO_BINDTODEVICE",
            )?;
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(VRRP_GROUP).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex,
            };
            check(
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    (&mreq as *const libc::ip_mreqn).cast(),
                    std::mem::size_of::<libc::ip_mreqn>() as u32,
                ),
                "joining 224.0.0.18",
            )?;
            let tx = crate::packets::packet_socket().context("packet socket")?;
            // SAFETY: `rx` is an owned, open, non-blocking socket that the
            // AsyncFd keeps open for as long as it is registered.
            let rx = AsyncFd::register(rx)
                .map_err(|e| anyhow::anyhow!("registering the VRRP socket: {e}"))?;
            Ok(Self { rx, tx, ifindex })
        }
    }

    fn send_frame(&self, frame: &[u8]) -> anyhow::Result<()> {
        crate::packets::send_frame(&self.tx, self.ifindex, frame).context("sending a frame")
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut g = self.rx.readable().await?;
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.rx.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                g.clear_ready();
                continue;
            }
            return Err(e);
        }
    }
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An advertisement frame: virtual MAC → 01:00:5e:00:00:12, TTL 255.
fn advert_frame(vrid: u8, src: Ipv4Addr, msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
    f.extend_from_slice(&vrrp::virtual_mac(vrid));
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut h = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, VRRP_TTL, VRRP_PROTO, 0, 0];
    h[2..4].copy_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&VRRP_GROUP.octets());
    let c = ip_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(msg);
    f
}

/// A gratuitous ARP (request, sender = target = the address) from the
/// virtual MAC.
fn garp_frame(vrid: u8, addr: Ipv4Addr) -> Vec<u8> {
    let mac = vrrp::virtual_mac(vrid);
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&addr.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&addr.octets());
    f
}

pub struct Instance {
    cfg: Router,
    vr: VirtualRouter,
    io: Io,
    status: Arc<Mutex<RouterStatus>>,
    adver_at: Option<Instant>,
    down_at: Option<Instant>,
    ls: Option<crate::router::loadshare::LsEdge>,
}

fn ms(cs: u32) -> u32 {
    cs * 10
}

impl Instance {
    pub fn start(cfg: Router, opts: &dataplane_user::LoadOptions) -> anyhow::Result<RouterHandle> {
        let (primary, len) = primary_address(&cfg.interface)?;
        let net = Ipv4Addr::from(
            u32::from(primary)
                & if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - len as u32)
                },
        );
        let addresses: Vec<Ipv4Addr> = cfg.virtual_addresses.iter().map(|a| a.addr).collect();
        let params = Params {
            vrid: cfg.vrid,
            priority: cfg.priority,
            adver_int: (cfg.advert_interval_ms / 10) as u16,
            preempt: cfg.preempt,
            accept: cfg.accept,
            primary,
            subnet: (net, len),
            addresses,
        };
        // A daemon killed while master leaves its macvlan behind.
        let _ = ip(&["link", "del", &vmac_name(cfg.vrid)]);
        // Only the macvlan may answer ARP for the virtual addresses (with
        // the virtual MAC); by default Linux answers on every interface.
        for (k, v) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let key = format!("/proc/sys/net/ipv4/conf/{}/{k}", cfg.interface);
            std::fs::write(&key, v).with_context(|| format!("setting {key}"))?;
        }
        let io = Io::open(&cfg.interface)?;
        let ls = match &cfg.load_sharing {
            Some(l) => Some(crate::router::loadshare::LsEdge::start(
                &cfg.interface,
                cfg.vrid,
                primary,
                cfg.priority,
                l,
                opts,
            )?),
            None => None,
        };
        let status = Arc::new(Mutex::new(RouterStatus::default()));
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let handle_cfg = cfg.clone();
        let inst = Self {
            cfg,
            vr: VirtualRouter::new(params),
            io,
            status: status.clone(),
            adver_at: None,
            down_at: None,
            ls,
        };
        if inst.ls.is_some() {
            // Every router of a load-sharing virtual router receives the
            // frames for the virtual MAC; the filter decides which it routes.
            inst.add_vmac()?;
        }
        inst.publish();
        tokio::spawn(async move { inst.run(cmd_rx).await });
        Ok(RouterHandle {
            cfg: handle_cfg,
            status,
            cmd: cmd_tx,
        })
    }

    /// The macvlan with the virtual MAC (answers ARP for the addresses the
    /// master adds to it, and receives the frames sent to the MAC).
    fn add_vmac(&self) -> anyhow::Result<()> {
        let name = vmac_name(self.cfg.vrid);
        let mac = dataplane_user::format_mac(&vrrp::virtual_mac(self.cfg.vrid));
        let _ = ip(&["link", "del", &name]);
        ip(&[
            "link",
            "add",
            "link",
            &self.cfg.interface,
            "name",
            &name,
            "address",
            &mac,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])?;
        ip(&["link", "set", &name, "up"])
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
        s.virtual_mac = dataplane_user::format_mac(&vrrp::virtual_mac(p.vrid));
        s.last_change = self.vr.last_cause.clone();
        s.load_sharing = self.ls.as_ref().map(|l| l.status());
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
                }
                .encode(p.primary, VRRP_GROUP);
                self.io.send_frame(&advert_frame(p.vrid, p.primary, &msg))?;
                self.status.lock().unwrap().adverts_sent += 1;
            }
            Action::BecomeMaster => {
                let name = vmac_name(self.cfg.vrid);
                if self.ls.is_none() {
                    self.add_vmac()?;
                }
                for a in &self.cfg.virtual_addresses {
                    ip(&["addr", "add", &a.to_string(), "dev", &name])?;
                }
                for a in self.vr.params.addresses.clone() {
                    self.io.send_frame(&garp_frame(self.cfg.vrid, a))?;
                }
            }
            Action::StopBeingMaster => {
                if self.ls.is_none() {
                    let _ = ip(&["link", "del", &vmac_name(self.cfg.vrid)]);
                } else {
                    // Load sharing: every router keeps the virtual MAC; only
                    // the master holds the addresses.
                    for a in &self.cfg.virtual_addresses {
                        let _ = ip(&[
                            "addr",
                            "del",
                            &a.to_string(),
                            "dev",
                            &vmac_name(self.cfg.vrid),
                        ]);
                    }
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
        loop {
            let adver = self.adver_at.unwrap_or_else(far);
            let down = self.down_at.unwrap_or_else(far);
            let has_ls = self.ls.is_some();
            tokio::select! {
                r = self.io.recv(&mut buf) => match r {
                    Ok(n) => match Advert::decode_ipv4(&buf[..n]) {
                        Ok((src, _, advert)) => {
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
                }
                _ = publish.tick() => self.publish(),
                c = cmd.recv() => match c {
                    Some(Cmd::Rebalance) => {
                        if let Some(ls) = self.ls.as_mut() {
                            ls.event(control::router::loadshare::Event::Rebalance).await;
                        }
                    }
                    Some(Cmd::Shutdown(ack)) => {
                        self.shutdown().await;
                        let _ = ack.send(());
                        return;
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
    }
}
