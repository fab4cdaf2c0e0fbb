//! The router's wire at the edge: the VRRP sockets (a raw IP socket
//! joined to the group, a packet socket for whole frames) and the frames
//! it sends: adverts from the virtual MAC, gratuitous ARP, unsolicited
//! Neighbor Advertisements.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{bail, Context as _};
use control::router::vrrp::{self, Advert, Discard, VRRP_GROUP, VRRP_GROUP6, VRRP_PROTO, VRRP_TTL};
use tokio::io::unix::AsyncFd;

pub(super) struct Io {
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
pub(super) type Received = Result<(IpAddr, Advert), Discard>;

impl Io {
    pub(super) fn open(iface: &str, v6: bool) -> anyhow::Result<Self> {
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
        // Unicast adverts go out through this socket (the kernel builds the
        // IP header): TTL / hop limit 255 (§5.1.1.3, checked by every
        // receiver) and class 0xc0, as keepalived sends.
        let (ttl, tos): (libc::c_int, libc::c_int) = (VRRP_TTL as libc::c_int, 0xc0);
        if v6 {
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_UNICAST_HOPS,
                &ttl,
                "IPV6_UNICAST_HOPS",
            )?;
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_TCLASS,
                &tos,
                "IPV6_TCLASS",
            )?;
        } else {
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl, "IP_TTL")?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_TOS, &tos, "IP_TOS")?;
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

    /// A VRRP message to one unicast peer (checksummed for it).
    pub(super) fn send_to(&self, peer: IpAddr, msg: &[u8]) -> anyhow::Result<()> {
        let fd = self.rx.get_ref().as_raw_fd();
        // SAFETY: sendto with a buffer and a socket address valid for their
        // lengths.
        let n = unsafe {
            match peer {
                IpAddr::V4(a) => {
                    let sa = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(a).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    libc::sendto(
                        fd,
                        msg.as_ptr().cast(),
                        msg.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    )
                }
                IpAddr::V6(a) => {
                    let sa = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr {
                            s6_addr: a.octets(),
                        },
                        sin6_scope_id: self.ifindex as u32,
                    };
                    libc::sendto(
                        fd,
                        msg.as_ptr().cast(),
                        msg.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        std::mem::size_of::<libc::sockaddr_in6>() as u32,
                    )
                }
            }
        };
        if n < 0 {
            bail!(
                "sending an advert to {peer}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    pub(super) fn send_frame(&self, frame: &[u8]) -> anyhow::Result<()> {
        crate::packets::send_frame(&self.tx, self.ifindex, frame).context("sending a frame")
    }

    /// The next advert on the socket, decoded and checked.
    pub(super) async fn recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
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
pub(super) fn advert_frame(vrid: u8, src: IpAddr, msg: &[u8]) -> Vec<u8> {
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
pub(super) fn garp_frame(vrid: u8, addr: Ipv4Addr) -> Vec<u8> {
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
pub(super) fn na_frame(vrid: u8, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
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
