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

pub mod cli;
pub mod loadshare;
mod role;

pub use role::{check_interfaces, RouterRole};

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context as _};
use control::{
    field::IpPrefix,
    router::config::Router,
    router::vrrp::{
        self, Action, Advert, Discard, Event, Params, VirtualRouter, VRRP_GROUP, VRRP_GROUP6,
        VRRP_PROTO, VRRP_TTL,
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
    pub virtual_addresses: Vec<IpPrefix>,
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

struct Io {
    rx: AsyncFd<OwnedFd>,
    tx: OwnedFd,
    ifindex: i32,
    v6: bool,
}

fn check(rc: libc::c_int, what: &str) -> anyhow::Result<()> {
    if rc < 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, v: &T, what: &str) -> anyhow::Result<()> {
    // SAFETY: `v` is a valid value of the option's type and size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    check(rc, what)
}

/// What one received advert gives: its source and the advert, or why it
/// was discarded.
type Received = Result<(IpAddr, Advert), Discard>;

impl Io {
    fn open(iface: &str, v6: bool) -> anyhow::Result<Self> {
        let ifindex = dataplane_user::ifindex(iface)? as i32;
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket calls with checked results.
        let fd = unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                VRRP_PROTO as i32,
            )
        };
        check(fd, "raw socket (protocol 112)")?;
        // SAFETY: a new, open socket that nothing else owns.
        let rx = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(iface)?;
        // SAFETY: the name is NUL-terminated and its length given.
        check(
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr().cast(),
                    iface.len() as u32 + 1,
                )
            },
            "SO_BINDTODEVICE",
        )?;
        if v6 {
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: VRRP_GROUP6.octets(),
                },
                ipv6mr_interface: ifindex as u32,
            };
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                &mreq,
                "joining ff02::12",
            )?;
            // The hop limit and the destination come as ancillary data: a
            // raw IPv6 socket does not deliver the header.
            let on: libc::c_int = 1;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVHOPLIMIT,
                &on,
                "IPV6_RECVHOPLIMIT",
            )?;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVPKTINFO,
                &on,
                "IPV6_RECVPKTINFO",
            )?;
        } else {
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(VRRP_GROUP).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex,
            };
            setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                &mreq,
                "joining 224.0.0.18",
            )?;
        }
        let tx = crate::packets::packet_socket().context("packet socket")?;
        // SAFETY: `rx` is an owned, open, non-blocking socket that the
        // AsyncFd keeps open for as long as it is registered.
        let rx = unsafe { AsyncFd::register(rx) }
            .map_err(|e| anyhow::anyhow!("registering the VRRP socket: {e}"))?;
        Ok(Self {
            rx,
            tx,
            ifindex,
            v6,
        })
    }

    fn send_frame(&self, frame: &[u8]) -> anyhow::Result<()> {
        crate::packets::send_frame(&self.tx, self.ifindex, frame).context("sending a frame")
    }

    /// The next advert on the socket, decoded and checked.
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        loop {
            let mut g = self.rx.readable().await?;
            let fd = self.rx.get_ref().as_raw_fd();
            let got = if self.v6 {
                recv_v6(fd, buf)
            } else {
                // SAFETY: buf is valid for its length.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n >= 0 {
                    Ok(Advert::decode_ipv4(&buf[..n as usize])
                        .map(|(src, _, a)| (IpAddr::V4(src), a)))
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            match got {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    g.clear_ready();
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One datagram from the raw IPv6 socket: the source from the socket
/// address, the destination and hop limit from the ancillary data.
fn recv_v6(fd: i32, buf: &mut [u8]) -> std::io::Result<Received> {
    // SAFETY: recvmsg with buffers valid for their lengths; the control
    // messages are walked with the CMSG macros within `controllen`.
    unsafe {
        let mut src: libc::sockaddr_in6 = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut src as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (mut hop_limit, mut dst) = (None, None);
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::IPPROTO_IPV6 {
                let data = libc::CMSG_DATA(c);
                if h.cmsg_type == libc::IPV6_HOPLIMIT {
                    hop_limit = Some(std::ptr::read_unaligned(data as *const libc::c_int));
                } else if h.cmsg_type == libc::IPV6_PKTINFO {
                    let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let src_ip = Ipv6Addr::from(src.sin6_addr.s6_addr);
        // Without the hop limit the TTL check cannot pass.
        let hop_limit = hop_limit.map(|h| h as u8).unwrap_or(0);
        let dst = dst.unwrap_or(VRRP_GROUP6);
        Ok(
            Advert::decode_ipv6(src_ip, dst, hop_limit, &buf[..n as usize])
                .map(|a| (IpAddr::V6(src_ip), a)),
        )
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

/// An advertisement frame from the virtual MAC: IPv4 to 224.0.0.18
/// (01:00:5e:00:00:12), or IPv6 to ff02::12 (33:33:00:00:00:12), TTL or
/// hop limit 255, class 0xc0 (internetwork control) as keepalived sends.
fn advert_frame(vrid: u8, src: IpAddr, msg: &[u8]) -> Vec<u8> {
    match src {
        IpAddr::V4(src) => {
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
        IpAddr::V6(src) => {
            let mut f = vec![0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
            f.extend_from_slice(&vrrp::virtual_mac6(vrid));
            f.extend_from_slice(&ipv6_header(src, VRRP_GROUP6, VRRP_PROTO, msg.len()));
            f.extend_from_slice(msg);
            f
        }
    }
}

/// The EtherType and IPv6 header of a packet with hop limit 255.
fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: usize) -> Vec<u8> {
    let mut h = 0x86ddu16.to_be_bytes().to_vec();
    h.extend_from_slice(&[0x6c, 0, 0, 0]);
    h.extend_from_slice(&(payload as u16).to_be_bytes());
    h.extend_from_slice(&[next, 255]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
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

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An unsolicited Neighbor Advertisement for `target` (RFC 5798 §6.4.2,
/// RFC 4861 §4.4, §7.2.6): to all nodes from the router's link-local
/// address, Router and Override set, Solicited clear, the target
/// link-layer address option carrying the virtual MAC.
fn na_frame(vrid: u8, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mac = vrrp::virtual_mac6(vrid);
    let mut icmp = vec![136, 0, 0, 0, 0xa0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let c = icmpv6_checksum(src, ALL_NODES, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ipv6_header(src, ALL_NODES, 58, icmp.len()));
    f.extend_from_slice(&icmp);
    f
}

/// The ICMPv6 checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut pseudo = src.octets().to_vec();
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(msg);
    if pseudo.len() % 2 == 1 {
        pseudo.push(0);
    }
    ip_checksum(&pseudo)
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
                .encode(
                    p.primary,
                    if self.v6() {
                        VRRP_GROUP6.into()
                    } else {
                        VRRP_GROUP.into()
                    },
                );
                self.io.send_frame(&advert_frame(p.vrid, p.primary, &msg))?;
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
        loop {
            let adver = self.adver_at.unwrap_or_else(far);
            let down = self.down_at.unwrap_or_else(far);
            let has_ls = self.ls.is_some();
            tokio::select! {
                r = self.io.recv(&mut buf) => match r {
                    Ok(got) => match got {
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
        let _ = ip(&["link", "del", &self.vmac_name()]);
    }
}
