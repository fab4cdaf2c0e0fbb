//! The gateway's fixture world: groups, servers and a small port pool,
//! written straight into the maps (the same calls the daemon makes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::gateway::selection;
use dataplane_user::{
    gateway::{ServerEntry, Service, Settings, TypeRuleEntry},
    Dataplane,
};

pub const GW_ADDR: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
pub const WEB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const WEB2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
pub const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
pub const RESTRICTED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 30);
pub const EGRESS_MAC: [u8; 6] = [2, 0, 0, 0, 0xcc, 1];

/// (group, address, port) of each server, by index.
pub const SERVERS: [(u32, Ipv4Addr, u16); 6] = [
    (0, Ipv4Addr::new(10, 2, 0, 11), 8080),
    (0, Ipv4Addr::new(10, 2, 0, 12), 8080),
    (1, Ipv4Addr::new(10, 2, 0, 21), 5353),
    (2, Ipv4Addr::new(10, 2, 0, 31), 8080),
    (3, Ipv4Addr::new(10, 2, 0, 41), 8081),
    // dns group, session type 1 (voice: UDP with DSCP EF) only
    (1, Ipv4Addr::new(10, 2, 0, 22), 5353),
];
/// The server index that takes session type 1 in the dns group.
pub const VOICE_SERVER: usize = 5;

// IPv6: the gateway's address, representative addresses and servers
// (indices after the IPv4 ones), groups 4-6.
pub const GW_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
pub const WEB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x10);
pub const DNS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x20);
pub const RESTRICTED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x30);
pub const WEB6B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x11);
/// The prefix allowed into RESTRICTED6's group.
pub const ALLOWED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 0);
pub const SERVERS6: [(u32, Ipv6Addr, u16); 5] = [
    (4, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11), 8080),
    (4, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x12), 8080),
    (5, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x21), 5353),
    (6, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x31), 8080),
    (7, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x41), 8081),
];
/// Index of the first IPv6 server.
pub const SERVERS6_AT: usize = SERVERS.len();

pub fn server_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0x5e, i as u8]
}

/// Groups: 0 web (WEB:80/tcp, two servers), 1 dns (DNS:53/udp),
/// 2 restricted (RESTRICTED:80/tcp, only 10.9.0.0/16), 3 web2
/// (WEB2:80/tcp); IPv6: 4 web6 ([WEB6]:80/tcp, two servers), 5 dns6
/// ([DNS6]:53/udp), 6 restricted6 (only ALLOWED6/48), 7 web6b
/// ([WEB6B]:80/tcp). Servers are reached through `egress_ifindex`.
pub fn install(dp: &mut Dataplane, egress_ifindex: u32, ports: (u16, u16)) -> anyhow::Result<()> {
    let all = SERVERS
        .iter()
        .map(|(g, a, p)| (*g, IpAddr::from(*a), *p))
        .chain(SERVERS6.iter().map(|(g, a, p)| (*g, IpAddr::from(*a), *p)));
    for (i, (_, addr, port)) in all.clone().enumerate() {
        dp.set_server(
            i as u32,
            &ServerEntry {
                addr,
                port,
                mac: server_mac(i),
                src_mac: EGRESS_MAC,
                ifindex: egress_ifindex,
            },
        )?;
    }
    // Every type's table as the daemon writes it: empty (falls back
    // to the group's type 0) unless set below.
    for grp in 0..8u32 {
        for t in 1..dataplane_common::gateway::TYPES_MAX {
            dp.set_selection(grp, t, &selection(&[]))?;
        }
    }
    for grp in 0..8u32 {
        let members: Vec<(u16, u32)> = all
            .clone()
            .enumerate()
            .filter(|(i, s)| s.0 == grp && *i != VOICE_SERVER)
            .map(|(i, _)| (i as u16, 1))
            .collect();
        dp.set_selection(grp, 0, &selection(&members))?;
    }
    dp.set_selection(1, 1, &selection(&[(VOICE_SERVER as u16, 1)]))?;
    for (addr, port, proto, grp) in [
        (IpAddr::from(WEB), 80u16, 6u8, 0u32),
        (DNS.into(), 53, 17, 1),
        (RESTRICTED.into(), 80, 6, 2),
        (WEB2.into(), 80, 6, 3),
        (WEB6.into(), 80, 6, 4),
        (DNS6.into(), 53, 17, 5),
        (RESTRICTED6.into(), 80, 6, 6),
        (WEB6B.into(), 80, 6, 7),
    ] {
        dp.set_service(&Service { addr, port, proto }, grp)?;
    }
    for grp in [0u32, 1, 3] {
        dp.auth_allow(grp, Ipv4Addr::UNSPECIFIED.into(), 0)?;
    }
    for grp in [4u32, 5, 7] {
        dp.auth_allow(grp, Ipv6Addr::UNSPECIFIED.into(), 0)?;
    }
    dp.auth_allow(2, Ipv4Addr::new(10, 9, 0, 0).into(), 16)?;
    dp.auth_allow(6, ALLOWED6.into(), 48)?;
    // Claim 9: UDP marked EF (DSCP 46) is session type 1.
    dp.set_type_rules(&[TypeRuleEntry {
        proto: 17,
        dscp: Some(46),
        session_type: 1,
        terminals: Ipv4Addr::UNSPECIFIED.into(),
        terminals_len: 0,
    }])?;
    for p in ports.0..=ports.1 {
        dp.pool_push(p)?;
    }
    dp.set_gw_config(&Settings {
        address: GW_ADDR,
        port_min: ports.0,
        port_max: ports.1,
        enabled: true,
        n3_addr: None,
        address6: Some(GW_ADDR6),
        n3_addr6: None,
    })?;
    Ok(())
}

// ---- GTP-U (seed 002, TS 29.281) -------------------------------------

use dataplane_common::gateway::TUNNELS_MAX;
use dataplane_user::gateway::{TunnelDownlink, TunnelEntry};

/// The gateway's N3 address, the access node and its MACs.
pub const N3_ADDR: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
pub const AN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 2);
pub const AN_MAC: [u8; 6] = [2, 0, 0, 0, 4, 2];
pub const N3_MAC: [u8; 6] = [2, 0, 0, 0, 3, 1];

/// (index, uplink TEID, UE address, downlink TEID, QFI) of the fixture
/// tunnels; `NO_DL` has no downlink yet, `TWIN` a UE address another
/// tunnel's UE also has. `TUN` and `TUN_QFI` sit at their TEID's
/// direct slot, as the PFCP engine places them (the fast path finds
/// them without `GW_TEIDS`); `NO_DL` and `TWIN` do not (found through
/// it).
pub const TUN: (u32, u32, Ipv4Addr, u32, Option<u8>) = (
    0x1000 % TUNNELS_MAX,
    0x1000,
    Ipv4Addr::new(100, 64, 0, 9),
    0x2000_0003,
    None,
);
pub const TUN_QFI: (u32, u32, Ipv4Addr, u32, Option<u8>) = (
    0x1001 % TUNNELS_MAX,
    0x1001,
    Ipv4Addr::new(100, 64, 0, 10),
    0x2000_0004,
    Some(9),
);
pub const TUN_NO_DL: (u32, u32, Ipv4Addr) = (5, 0x1002, Ipv4Addr::new(100, 64, 0, 11));
pub const TUN_TWIN: (u32, u32, Ipv4Addr, u32, Option<u8>) =
    (6, 0x1003, Ipv4Addr::new(100, 64, 0, 9), 0x2000_0006, None);

/// [`install`], then the N3 address and the fixture tunnels, the
/// access node reached through `an_ifindex`.
pub fn install_gtpu(dp: &mut Dataplane, an_ifindex: u32, ports: (u16, u16)) -> anyhow::Result<()> {
    install(dp, an_ifindex, ports)?;
    install_tunnels(dp, an_ifindex)
}

/// The N3 address and the fixture tunnels, over an [`install`]ed world.
pub fn install_tunnels(dp: &mut Dataplane, an_ifindex: u32) -> anyhow::Result<()> {
    let mut s = dp.gw_config()?;
    s.n3_addr = Some(N3_ADDR);
    dp.set_gw_config(&s)?;
    for (idx, ul, ue, dl, qfi) in [TUN, TUN_QFI, TUN_TWIN] {
        let downlink = Some(TunnelDownlink {
            teid: dl,
            an_addr: AN_ADDR.into(),
            qfi,
            mac: AN_MAC,
            src_mac: N3_MAC,
            ifindex: an_ifindex,
        });
        dp.set_tunnel(
            idx,
            &TunnelEntry {
                ul_teid: ul,
                ue_addr: ue,
                ue_addr6: None,
                downlink,
            },
        )?;
    }
    let (idx, ul, ue) = TUN_NO_DL;
    dp.set_tunnel(
        idx,
        &TunnelEntry {
            ul_teid: ul,
            ue_addr: ue,
            ue_addr6: None,
            downlink: None,
        },
    )?;
    Ok(())
}

/// An inner IPv4/TCP packet (no Ethernet).
pub fn inner_tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("write");
    v
}

/// An inner IPv4/UDP packet (no Ethernet).
pub fn inner_udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("write");
    v
}

/// A GTP-U message from the access node to N3: `flags_extra` (E/S/PN
/// bits) and extension headers as `packets::gtpu_header` takes them,
/// `body` after the header chain.
pub fn gtpu(teid: u32, msg: u8, flags_extra: u8, exts: &[Vec<u8>], body: &[u8]) -> Vec<u8> {
    let mut payload = edgeplane::packets::gtpu_header(teid, msg, flags_extra, exts, body.len());
    payload.extend_from_slice(body);
    let b = etherparse::PacketBuilder::ethernet2(AN_MAC, N3_MAC)
        .ipv4(AN_ADDR.octets(), N3_ADDR.octets(), 64)
        .udp(2152, 2152);
    let mut v = Vec::new();
    b.write(&mut v, &payload).expect("write");
    v
}

/// A G-PDU carrying `inner`.
pub fn g_pdu(teid: u32, flags_extra: u8, exts: &[Vec<u8>], inner: &[u8]) -> Vec<u8> {
    gtpu(teid, 255, flags_extra, exts, inner)
}

/// Cut an Ethernet/IPv4/UDP frame at `len`. With `fix`, the outer IP
/// total length, its checksum and the UDP length say so (a short but
/// consistent datagram); without, they still claim the original.
pub fn cut(pkt: &[u8], len: usize, fix: bool) -> Vec<u8> {
    let mut p = pkt[..len].to_vec();
    if fix {
        p[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        fix_ip_checksum(&mut p, 14);
        p[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    }
    p
}

/// Recompute the IPv4 header checksum at `l3`.
pub fn fix_ip_checksum(p: &mut [u8], l3: usize) {
    let ihl = ((p[l3] & 0x0f) as usize * 4).max(20);
    p[l3 + 10] = 0;
    p[l3 + 11] = 0;
    let c = !fold(sum16(&p[l3..l3 + ihl]));
    p[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

pub fn sum16(d: &[u8]) -> u32 {
    d.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Recompute the IPv4 header checksum and the TCP/UDP checksum (a UDP
/// checksum of 0 stays "none") of the IP packet `ip`, in place.
pub fn fix_checksums(ip: &mut [u8]) {
    fix_ip_checksum(ip, 0);
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let proto = ip[9];
    let coff = match proto {
        6 => 16,
        17 => 6,
        _ => return,
    };
    if proto == 17 && ip[ihl + 6] == 0 && ip[ihl + 7] == 0 {
        return;
    }
    ip[ihl + coff] = 0;
    ip[ihl + coff + 1] = 0;
    let pseudo = sum16(&ip[12..20]) + proto as u32 + (total - ihl) as u32;
    let mut c = !fold(pseudo + sum16(&ip[ihl..total]));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    ip[ihl + coff..ihl + coff + 2].copy_from_slice(&c.to_be_bytes());
}

/// Whether the IPv4 header at `l3` and its TCP/UDP/ICMP checksum
/// are right, recomputed (UDP checksum 0: none, accepted).
pub fn checksums_ok(p: &[u8], l3: usize) -> bool {
    let ihl = ((p[l3] & 0x0f) as usize) * 4;
    let ip = &p[l3..l3 + ihl];
    if fold(sum16(ip)) != 0xffff {
        return false;
    }
    let total = u16::from_be_bytes([p[l3 + 2], p[l3 + 3]]) as usize;
    let l4 = &p[l3 + ihl..l3 + total];
    match p[l3 + 9] {
        1 => fold(sum16(l4)) == 0xffff,
        proto => {
            if proto == 17 && l4[6] == 0 && l4[7] == 0 {
                return true;
            }
            let pseudo = sum16(&ip[12..20]) + proto as u32 + l4.len() as u32;
            fold(pseudo + sum16(l4)) == 0xffff
        }
    }
}
