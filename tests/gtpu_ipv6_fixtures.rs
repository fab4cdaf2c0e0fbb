//! GTP-U with an IPv6 T-PDU (issue 13), through BPF_PROG_TEST_RUN: a
//! dual-stack PDU session's inner IPv6 flows are decapsulated and
//! translated like plain IPv6 ones (`gateway` hands the T-PDU to
//! `gateway6_gtpu`), replies are translated back and encapsulated toward
//! the access node over the IPv4 transport; a source outside the UE's /64
//! and a cut T-PDU are dropped and counted, never passed.

mod common;

use std::net::Ipv6Addr;

use dataplane_common::gateway::stat;
use dataplane_user::{
    gateway::{TunnelDownlink, TunnelEntry},
    verdict, Dataplane,
};
use testlab::fixtures::gateway::{self as fx, GW_ADDR6};

/// A dual-stack tunnel (index, uplink TEID, downlink TEID, QFI) and its
/// UE's /64.
const TUN6: (u32, u32, u32, u8) = (7, 0x1004, 0x2000_0007, 9);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 1, 0, 0, 0, 0);
const UE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 1, 0x5a, 0x11, 0x22, 0x33);

fn inner_tcp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn gpdu(teid: u32, inner: &[u8]) -> Vec<u8> {
    fx::gtpu(teid, 255, 0, &[], inner)
}

fn sum16(d: &[u8]) -> u32 {
    d.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The TCP checksum of the IPv6 packet at `ip` (no extension headers).
fn tcp6_ok(p: &[u8], ip: usize) -> bool {
    let end = ip + 40 + u16::from_be_bytes([p[ip + 4], p[ip + 5]]) as usize;
    let l4 = &p[ip + 40..end];
    fold(sum16(&p[ip + 8..ip + 40]) + 6 + l4.len() as u32 + sum16(l4)) == 0xffff
}

fn addr(p: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap())
}

fn port(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn tunnel_ul_bytes(dp: &Dataplane) -> (u64, u64) {
    let c = dp.tunnel_counters(TUN6.0).unwrap();
    (c.bytes_ul, c.bytes_dl)
}

#[test]
fn gtpu_ipv6_fixture_table() {
    if !common::kernel_available("gtpu_ipv6_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install_gtpu(&mut dp, 1, (40000, 40029)).expect("install");
        let (idx, ul, dl, qfi) = TUN6;
        dp.set_tunnel(
            idx,
            &TunnelEntry {
                ul_teid: ul,
                ue_addr: "100.64.0.12".parse().unwrap(),
                ue_addr6: Some(PREFIX),
                downlink: Some(TunnelDownlink {
                    teid: dl,
                    an_addr: fx::AN_ADDR.into(),
                    qfi: Some(qfi),
                    mac: fx::AN_MAC,
                    src_mac: fx::N3_MAC,
                    ifindex: 1,
                }),
            },
        )
        .unwrap();

        // Uplink: decapsulated and translated; the frame is the inner IPv6
        // packet from [gateway]:port to a web6 server.
        let inner = inner_tcp(UE6, 40000, fx::WEB6, 80, b"GET /");
        let pkt = gpdu(ul, &inner);
        let out = common::gateway_run(
            &mut dp,
            "uplink new",
            &pkt,
            verdict::TX,
            &[stat::NEW_SESSION, stat::GTPU_UPLINK],
        );
        assert_eq!(out.len(), 14 + inner.len(), "outer headers cut off");
        assert_eq!(&out[12..14], &[0x86, 0xdd]);
        assert_eq!(addr(&out, 22), GW_ADDR6);
        let srv = fx::SERVERS6
            .iter()
            .position(|(g, a, p)| *g == 4 && *a == addr(&out, 38) && *p == port(&out, 56))
            .expect("a web6 server");
        assert_eq!(out[21], 63, "hop limit - 1");
        assert!(tcp6_ok(&out, 14), "TCP checksum over the new pseudo-header");
        let gw_port = port(&out, 54);
        let s = dp.session(gw_port).unwrap();
        assert_eq!(s.tunnel, Some(idx), "the session lives in its tunnel");
        assert_eq!(s.terminal, std::net::SocketAddr::new(UE6.into(), 40000));
        assert_eq!(
            dp.session_counters(gw_port).unwrap().bytes_up,
            (14 + inner.len()) as u64
        );
        assert_eq!(
            tunnel_ul_bytes(&dp),
            (inner.len() as u64, 0),
            "inner bytes counted"
        );
        common::gateway_run(
            &mut dp,
            "uplink established",
            &pkt,
            verdict::TX,
            &[stat::FORWARD],
        );

        // Downlink: the server's reply is translated back and encapsulated
        // toward the access node with its TEID and QFI, over IPv4.
        let (_, saddr, sport) = fx::SERVERS6[srv];
        let reply = {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0x5e, 9], fx::EGRESS_MAC)
                .ipv6(saddr.octets(), GW_ADDR6.octets(), 64)
                .tcp(sport, gw_port, 5, 1000)
                .ack(1);
            let mut v = Vec::new();
            b.write(&mut v, b"200 OK").unwrap();
            v
        };
        let down = common::gateway_run(
            &mut dp,
            "downlink",
            &reply,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        assert_eq!(&down[0..6], &fx::AN_MAC);
        assert_eq!(&down[12..14], &[0x08, 0x00], "IPv4 transport");
        assert_eq!(&down[26..30], &fx::N3_ADDR.octets());
        assert_eq!(&down[30..34], &fx::AN_ADDR.octets());
        assert_eq!((port(&down, 34), port(&down, 36)), (2152, 2152));
        assert_eq!(
            (down[42], down[43]),
            (0x34, 255),
            "G-PDU with an extension header"
        );
        assert_eq!(u32::from_be_bytes(down[46..50].try_into().unwrap()), dl);
        assert_eq!(down[56] & 0x3f, qfi, "the QFI in the PDU session container");
        let ip6 = 14 + 20 + 8 + 16;
        assert_eq!(down[ip6] >> 4, 6, "the inner packet is IPv6");
        assert_eq!(
            (addr(&down, ip6 + 8), addr(&down, ip6 + 24)),
            (fx::WEB6, UE6)
        );
        assert_eq!((port(&down, ip6 + 40), port(&down, ip6 + 42)), (80, 40000));
        assert!(tcp6_ok(&down, ip6), "inner TCP checksum");
        let inner_len = down.len() - ip6;
        assert_eq!(tunnel_ul_bytes(&dp).1, inner_len as u64);
        assert_eq!(
            u16::from_be_bytes([down[16], down[17]]) as usize,
            down.len() - 14,
            "outer total length"
        );

        // The UE's /64 only; a tunnel without an IPv6 prefix takes no
        // IPv6; a cut T-PDU; never passed.
        let other = inner_tcp(
            "2001:db8:cafe:2::1".parse().unwrap(),
            40001,
            fx::WEB6,
            80,
            b"",
        );
        common::gateway_run(
            &mut dp,
            "outside the prefix",
            &gpdu(ul, &other),
            verdict::DROP,
            &[stat::GTPU_UE_MISMATCH],
        );
        common::gateway_run(
            &mut dp,
            "ipv4-only tunnel",
            &gpdu(fx::TUN.1, &inner),
            verdict::DROP,
            &[stat::GTPU_UE_MISMATCH],
        );
        let mut cut = inner.clone();
        cut[4..6].copy_from_slice(&200u16.to_be_bytes());
        common::gateway_run(
            &mut dp,
            "t-pdu past the g-pdu",
            &gpdu(ul, &cut),
            verdict::DROP,
            &[stat::GTPU_INNER_MALFORMED],
        );
        let not_service = inner_tcp(UE6, 40002, "2001:db8:77::1".parse().unwrap(), 80, b"");
        common::gateway_run(
            &mut dp,
            "not a service",
            &gpdu(ul, &not_service),
            verdict::DROP,
            &[stat::NOT_FOR_US],
        );

        // Without an IPv6 address the gateway cannot translate it.
        let mut s = dp.gw_config().unwrap();
        s.address6 = None;
        dp.set_gw_config(&s).unwrap();
        common::gateway_run(
            &mut dp,
            "no address6",
            &gpdu(ul, &inner),
            verdict::DROP,
            &[stat::NOT_IP],
        );
    })
    .join()
    .unwrap();
}
