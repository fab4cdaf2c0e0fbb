//! Packet builders (etherparse) shared by the fixtures, the benchmarks and
//! the `lookup` commands, so every path builds packets one way.

use std::net::Ipv4Addr;

use control::field::Protocol;
use etherparse::PacketBuilder;

pub const TERMINAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// A GTP-U endpoint address (the anycast address the LBs share).
pub const GTPU_ENDPOINT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const GTPU_PORT: u16 = 2152;

/// GTP-U header (TS 29.281 §5.1) for a G-PDU carrying `inner`, with the
/// optional fields and the given extension headers (each a full header:
/// length octet .. next-type octet).
pub fn gtpu_header(
    teid: u32,
    msg_type: u8,
    flags_extra: u8,
    exts: &[Vec<u8>],
    inner_len: usize,
) -> Vec<u8> {
    let mut opt = Vec::new();
    let mut flags = 0x30 | flags_extra;
    if !exts.is_empty() {
        flags |= 0x04;
    }
    if flags & 0x07 != 0 {
        // sequence number, N-PDU number, next extension header type
        opt.extend_from_slice(&[0, 1, 0, if exts.is_empty() { 0 } else { 0x85 }]);
        for e in exts {
            opt.extend_from_slice(e);
        }
    }
    let len = (opt.len() + inner_len) as u16;
    let mut h = vec![flags, msg_type];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&teid.to_be_bytes());
    h.extend_from_slice(&opt);
    h
}

/// A PDU session container extension (type 0x85), 4 octets, last in chain.
pub fn pdu_session_container(qfi: u8) -> Vec<u8> {
    vec![1, 0x10, qfi & 0x3f, 0]
}

/// An inner user packet (what the terminal sent), for GTP-U payloads.
pub fn inner_udp(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(40000, 53);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("write");
    out
}

/// Ethernet + IPv4 + UDP to port 2152 carrying a G-PDU.
pub fn gtpu_packet(teid: u32, src: Ipv4Addr, exts: &[Vec<u8>]) -> Vec<u8> {
    let inner = inner_udp(
        Ipv4Addr::new(100, 64, 0, 9),
        Ipv4Addr::new(203, 0, 113, 7),
        b"user-data",
    );
    let mut payload = gtpu_header(teid, 0xff, 0, exts, inner.len());
    payload.extend_from_slice(&inner);
    udp_packet(src, GTPU_ENDPOINT, GTPU_PORT, GTPU_PORT, &payload)
}

pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(TERMINAL_MAC, LB_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("write");
    out
}

/// An Ethernet/IPv6/UDP packet, terminal → LB MACs, hop limit 64.
pub fn udp6_packet(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(TERMINAL_MAC, LB_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("write");
    out
}

pub fn tcp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(TERMINAL_MAC, LB_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .syn();
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("write");
    out
}

/// An Ethernet/IPv6/TCP SYN, terminal → LB MACs, hop limit 64.
pub fn tcp6_packet(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(TERMINAL_MAC, LB_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .syn();
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("write");
    out
}

/// The packet a `lookup` runs through the program for a key.
pub fn lookup_packet(key: &control::api::LookupKey) -> Vec<u8> {
    use std::net::IpAddr;
    match key {
        control::api::LookupKey::Teid(teid) => gtpu_packet(*teid, Ipv4Addr::new(10, 0, 0, 2), &[]),
        control::api::LookupKey::Flow(f) => match (f.src, f.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => match f.proto {
                Protocol::Tcp => tcp_packet(src, dst, f.sport, f.dport, &[]),
                Protocol::Udp => udp_packet(src, dst, f.sport, f.dport, b"lookup"),
            },
            (src, dst) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a.octets(),
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                };
                let b = PacketBuilder::ethernet2(TERMINAL_MAC, LB_MAC).ipv6(v6(src), v6(dst), 64);
                let mut out = Vec::new();
                match f.proto {
                    Protocol::Tcp => b
                        .tcp(f.sport, f.dport, 1, 65535)
                        .syn()
                        .write(&mut out, &[])
                        .expect("write"),
                    Protocol::Udp => b
                        .udp(f.sport, f.dport)
                        .write(&mut out, b"lookup")
                        .expect("write"),
                }
                out
            }
        },
    }
}

/// A raw packet socket for sending whole Ethernet frames.
pub fn packet_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket call; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, open descriptor nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Send `frame` as is out of interface `ifindex` on packet socket `fd`.
pub fn send_frame(fd: &std::os::fd::OwnedFd, ifindex: i32, frame: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if frame.len() < 14 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "frame shorter than an Ethernet header",
        ));
    }
    // SAFETY: sockaddr_ll fully initialised; frame is a valid buffer.
    let n = unsafe {
        let mut sa: libc::sockaddr_ll = std::mem::zeroed();
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = ifindex;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&frame[..6]);
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
