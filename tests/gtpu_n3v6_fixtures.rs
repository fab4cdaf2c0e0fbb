//! GTP-U over IPv6 transport (issue 13: an IPv6 N3 address), through
//! BPF_PROG_TEST_RUN: G-PDUs to the IPv6 N3 address are decapsulated
//! whether their T-PDU is IPv4 (`gateway6` → `gateway_gtpu4`) or IPv6
//! (`gateway6` → `gateway6_gtpu`), also behind a hop-by-hop header;
//! replies toward an IPv6 access node leave in GTP-U/UDP/IPv6 from the
//! N3 address (`gateway_encap6`) with a valid UDP checksum, or a zero one
//! (counted) where the inner packet cannot give it. Malformed outer
//! headers are dropped and counted; signalling and unknown TEIDs go to
//! the kernel untouched.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane_common::gateway::stat;
use dataplane_user::{
    gateway::{TunnelDownlink, TunnelEntry},
    verdict, Dataplane,
};
use testlab::{
    fixtures::gateway::{self as fx, GW_ADDR, GW_ADDR6},
    fixtures_gtpu6::{fold, g_pdu6 as gpdu6, over_ipv6 as outer6, sum16, AN_ADDR6, N3_ADDR6},
};

/// (index, uplink TEID, UE, downlink TEID, QFI): a dual-stack tunnel with
/// a QFI, an IPv4 one without.
const DUAL: (u32, u32, Ipv4Addr, u32, Option<u8>) = (
    8,
    0x1008,
    Ipv4Addr::new(100, 64, 0, 20),
    0x3000_0008,
    Some(9),
);
const PLAIN: (u32, u32, Ipv4Addr, u32, Option<u8>) =
    (9, 0x1009, Ipv4Addr::new(100, 64, 0, 21), 0x3000_0009, None);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 8, 0, 0, 0, 0);
const UE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 8, 0, 0, 0, 0x77);

fn addr6(p: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap())
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// The UDP checksum of the datagram at `udp` inside the IPv6 packet at
/// `ip` (its pseudo-header from the fixed header).
fn udp6_sum_ok(p: &[u8], ip: usize, udp: usize) -> bool {
    let len = be16(p, udp + 4) as usize;
    let seg = &p[udp..udp + len];
    fold(sum16(&p[ip + 8..ip + 40]) + 17 + len as u32 + sum16(seg)) == 0xffff
}

/// The L4 checksum of an IPv4 packet at `ip` (TCP or UDP).
fn l4v4_ok(p: &[u8], ip: usize) -> bool {
    let ihl = (p[ip] & 0x0f) as usize * 4;
    let total = be16(p, ip + 2) as usize;
    let seg = &p[ip + ihl..ip + total];
    fold(sum16(&p[ip + 12..ip + 20]) + p[ip + 9] as u32 + seg.len() as u32 + sum16(seg)) == 0xffff
}

fn inner6_tcp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, b"GET /").unwrap();
    v
}

/// The reply of `server` (IPv4) to the gateway's `port`, as a frame.
fn reply4(server: usize, port: u16, udp: bool, payload: &[u8]) -> Vec<u8> {
    let (_, saddr, sport) = fx::SERVERS[server];
    let b = etherparse::PacketBuilder::ethernet2(fx::server_mac(server), fx::EGRESS_MAC).ipv4(
        saddr.octets(),
        GW_ADDR.octets(),
        64,
    );
    let mut v = Vec::new();
    if udp {
        b.udp(sport, port).write(&mut v, payload).unwrap();
    } else {
        b.tcp(sport, port, 5, 1000)
            .ack(1)
            .write(&mut v, payload)
            .unwrap();
    }
    v
}

/// Checks the GTP-U/UDP/IPv6 downlink frame `d` toward the access node:
/// its headers, its UDP checksum (`csum`: valid, else zero), and returns
/// where the inner packet starts.
fn check_down(d: &[u8], teid: u32, qfi: Option<u8>, csum: bool) -> usize {
    assert_eq!(&d[0..6], &fx::AN_MAC, "to the access node's MAC");
    assert_eq!(&d[6..12], &fx::N3_MAC);
    assert_eq!(&d[12..14], &[0x86, 0xdd], "IPv6 transport");
    assert_eq!(d[14] >> 4, 6);
    assert_eq!((d[20], d[21]), (17, 64), "UDP, hop limit 64");
    assert_eq!((addr6(d, 22), addr6(d, 38)), (N3_ADDR6, AN_ADDR6));
    let udp_len = be16(d, 58) as usize;
    assert_eq!(be16(d, 18) as usize, udp_len, "payload length = UDP length");
    assert_eq!((be16(d, 54), be16(d, 56)), (2152, 2152));
    let ext = qfi.is_some();
    assert_eq!(d[62], if ext { 0x34 } else { 0x30 }, "GTP-U flags");
    assert_eq!(d[63], 255, "G-PDU");
    assert_eq!(be16(d, 64) as usize, udp_len - 16, "GTP-U length");
    assert_eq!(u32::from_be_bytes(d[66..70].try_into().unwrap()), teid);
    let inner = if let Some(q) = qfi {
        assert_eq!((d[73], d[74], d[75]), (0x85, 1, 0), "PDU session container");
        assert_eq!(d[76] & 0x3f, q, "the QFI");
        78
    } else {
        70
    };
    assert!(d.len() >= 54 + udp_len, "the datagram inside the frame");
    if csum {
        assert_ne!(be16(d, 60), 0, "a UDP checksum over IPv6");
        assert!(udp6_sum_ok(d, 14, 54), "the outer UDP checksum is valid");
    } else {
        assert_eq!(be16(d, 60), 0, "a zero UDP checksum");
    }
    inner
}

fn tunnel(ul: u32, ue: Ipv4Addr, dl: u32, qfi: Option<u8>, v6: bool) -> TunnelEntry {
    TunnelEntry {
        ul_teid: ul,
        ue_addr: ue,
        ue_addr6: v6.then_some(PREFIX),
        downlink: Some(TunnelDownlink {
            teid: dl,
            an_addr: IpAddr::V6(AN_ADDR6),
            qfi,
            mac: fx::AN_MAC,
            src_mac: fx::N3_MAC,
            ifindex: 1,
        }),
    }
}

fn load() -> Dataplane {
    let mut dp = Dataplane::load_private().expect("load");
    fx::install_gtpu(&mut dp, 1, (40000, 40029)).expect("install");
    let mut s = dp.gw_config().unwrap();
    s.n3_addr6 = Some(N3_ADDR6);
    dp.set_gw_config(&s).unwrap();
    for (idx, ul, ue, dl, qfi) in [DUAL, PLAIN] {
        dp.set_tunnel(idx, &tunnel(ul, ue, dl, qfi, idx == DUAL.0))
            .unwrap();
    }
    dp
}

#[test]
fn gtpu_over_ipv6_transport_fixture_table() {
    if !common::kernel_available("gtpu_over_ipv6_transport_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = load();
        let (idx, ul, ue, dl, qfi) = DUAL;

        // Uplink, inner IPv4: the outer Ethernet/IPv6/UDP/GTP-U (78
        // bytes with the container-less header) cut off, translated.
        let inner = fx::inner_tcp(ue, 41000, fx::WEB, 80, b"GET /");
        let out = common::gateway_run(
            &mut dp,
            "uplink ipv4 t-pdu",
            &gpdu6(ul, &inner),
            verdict::TX,
            &[stat::NEW_SESSION, stat::GTPU_UPLINK],
        );
        assert_eq!(out.len(), 14 + inner.len(), "outer headers cut off");
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        assert_eq!(&out[26..30], &GW_ADDR.octets(), "from the gateway");
        let srv = fx::SERVERS
            .iter()
            .position(|(g, a, p)| *g == 0 && a.octets() == out[30..34] && *p == be16(&out, 36))
            .expect("a web server");
        assert!(l4v4_ok(&out, 14), "inner TCP checksum after NAT");
        let port4 = be16(&out, 34);
        let s = dp.session(port4).unwrap();
        assert_eq!(s.tunnel, Some(idx), "the session lives in its tunnel");
        assert_eq!(
            dp.tunnel_counters(idx).unwrap().bytes_ul,
            inner.len() as u64,
            "inner bytes counted"
        );
        common::gateway_run(
            &mut dp,
            "uplink established",
            &gpdu6(ul, &inner),
            verdict::TX,
            &[stat::FORWARD, stat::GTPU_UPLINK],
        );

        // Uplink, inner IPv6, the outer header with a hop-by-hop header.
        let inner6 = inner6_tcp(UE6, 41001, fx::WEB6, 80);
        let mut g = edgeplane::packets::gtpu_header(ul, 255, 0, &[], inner6.len());
        g.extend_from_slice(&inner6);
        let out6 = common::gateway_run(
            &mut dp,
            "uplink ipv6 t-pdu behind hop-by-hop",
            &outer6(&g, true),
            verdict::TX,
            &[stat::NEW_SESSION, stat::GTPU_UPLINK],
        );
        assert_eq!(out6.len(), 14 + inner6.len());
        assert_eq!(&out6[12..14], &[0x86, 0xdd]);
        assert_eq!(addr6(&out6, 22), GW_ADDR6);
        let port6 = be16(&out6, 54);
        assert_eq!(dp.session(port6).unwrap().tunnel, Some(idx));

        // Downlink of the IPv4 session: GTP-U/UDP/IPv6 with the QFI, the
        // checksum from the inner packet's own.
        let ul_before = dp.tunnel_counters(idx).unwrap().bytes_dl;
        let reply = reply4(srv, port4, false, b"200 OK");
        let d = common::gateway_run(
            &mut dp,
            "downlink ipv4 inner",
            &reply,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let at = check_down(&d, dl, qfi, true);
        assert_eq!(d[at] >> 4, 4);
        assert_eq!(&d[at + 12..at + 16], &fx::WEB.octets(), "from the service");
        assert_eq!(&d[at + 16..at + 20], &ue.octets(), "to the UE");
        assert_eq!((be16(&d, at + 20), be16(&d, at + 22)), (80, 41000));
        assert!(l4v4_ok(&d, at));
        let inner_len = be16(&d, at + 2) as u64;
        assert_eq!(
            dp.tunnel_counters(idx).unwrap().bytes_dl - ul_before,
            inner_len
        );

        // Downlink of the IPv6 session.
        let (_, s6, sp6) = fx::SERVERS6
            .iter()
            .copied()
            .find(|(_, a, p)| *a == addr6(&out6, 38) && *p == be16(&out6, 56))
            .expect("a web6 server");
        let reply6 = {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0x5e, 9], fx::EGRESS_MAC)
                .ipv6(s6.octets(), GW_ADDR6.octets(), 64)
                .tcp(sp6, port6, 5, 1000)
                .ack(1);
            let mut v = Vec::new();
            b.write(&mut v, b"200 OK, odd").unwrap();
            v
        };
        let d6 = common::gateway_run(
            &mut dp,
            "downlink ipv6 inner",
            &reply6,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let at = check_down(&d6, dl, qfi, true);
        assert_eq!((addr6(&d6, at + 8), addr6(&d6, at + 24)), (fx::WEB6, UE6));

        // A tunnel without a QFI: no extension header; a UDP reply
        // without a checksum leaves with a zero one, counted.
        let (pidx, pul, pue, pdl, _) = PLAIN;
        let q = fx::inner_udp(pue, 5300, fx::DNS, 53, b"query");
        let o = common::gateway_run(
            &mut dp,
            "uplink udp",
            &gpdu6(pul, &q),
            verdict::TX,
            &[stat::NEW_SESSION, stat::GTPU_UPLINK],
        );
        let (uport, dns_srv) = (
            be16(&o, 34),
            fx::SERVERS
                .iter()
                .position(|(_, a, _)| a.octets() == o[30..34])
                .unwrap(),
        );
        assert_eq!(dp.session(uport).unwrap().tunnel, Some(pidx));
        let with_sum = reply4(dns_srv, uport, true, b"answer");
        let d = common::gateway_run(
            &mut dp,
            "downlink udp with checksum",
            &with_sum,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let at = check_down(&d, pdl, None, true);
        assert_eq!(at, 70);
        let mut no_sum = reply4(dns_srv, uport, true, b"answer!");
        no_sum[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
        let d = common::gateway_run(
            &mut dp,
            "downlink udp without checksum",
            &no_sum,
            verdict::TX,
            &[
                stat::REVERSE,
                stat::GTPU_DOWNLINK,
                stat::GTPU_ZERO_CHECKSUM6,
            ],
        );
        check_down(&d, pdl, None, false);

        // Signalling and unknown TEIDs go to the kernel untouched (the
        // daemon's socket on [n3]:2152 answers them).
        let mut echo = edgeplane::packets::gtpu_header(0, 1, 0x02, &[], 4);
        echo.extend_from_slice(&[0, 7, 0, 0]);
        common::gateway_run(
            &mut dp,
            "echo request",
            &outer6(&echo, false),
            verdict::PASS,
            &[stat::GTPU_SIGNALLING],
        );
        common::gateway_run(
            &mut dp,
            "unknown teid",
            &gpdu6(0x0bad_0001, &inner),
            verdict::PASS,
            &[stat::GTPU_UNKNOWN_TEID],
        );

        // Malformed: dropped and counted, never forwarded.
        let good = gpdu6(ul, &inner);
        let mut long_udp = good.clone();
        long_udp[58..60].copy_from_slice(&(be16(&good, 58) + 4).to_be_bytes());
        common::gateway_run(
            &mut dp,
            "udp length past the payload",
            &long_udp,
            verdict::DROP,
            &[stat::GTPU_TRUNCATED],
        );
        let mut short_udp = good.clone();
        short_udp[58..60].copy_from_slice(&4u16.to_be_bytes());
        common::gateway_run(
            &mut dp,
            "udp length under its header",
            &short_udp,
            verdict::DROP,
            &[stat::GTPU_TRUNCATED],
        );
        let mut v2 = good.clone();
        v2[62] = 0x50;
        common::gateway_run(
            &mut dp,
            "gtp version 2",
            &v2,
            verdict::DROP,
            &[stat::GTPU_BAD_VERSION],
        );
        let mut bad_len = good.clone();
        bad_len[64..66].copy_from_slice(&(be16(&good, 64) - 1).to_be_bytes());
        common::gateway_run(
            &mut dp,
            "gtp length",
            &bad_len,
            verdict::DROP,
            &[stat::GTPU_BAD_LENGTH],
        );
        let mut not_ip = inner.clone();
        not_ip[0] = 0x55;
        common::gateway_run(
            &mut dp,
            "t-pdu neither ipv4 nor ipv6",
            &gpdu6(ul, &not_ip),
            verdict::DROP,
            &[stat::GTPU_INNER_MALFORMED],
        );
        let stranger = fx::inner_tcp(Ipv4Addr::new(100, 64, 9, 9), 41002, fx::WEB, 80, b"");
        common::gateway_run(
            &mut dp,
            "t-pdu from another ue",
            &gpdu6(ul, &stranger),
            verdict::DROP,
            &[stat::GTPU_UE_MISMATCH],
        );
        let mut cut_inner = inner.clone();
        cut_inner[2..4].copy_from_slice(&200u16.to_be_bytes());
        common::gateway_run(
            &mut dp,
            "t-pdu past the g-pdu",
            &gpdu6(ul, &cut_inner),
            verdict::DROP,
            &[stat::GTPU_INNER_MALFORMED],
        );
        // A UDP header cut after its destination port is GTP-U cut short;
        // before it, it cannot be told apart (malformed, to the kernel).
        for (cut, want, reason) in [
            (6, verdict::DROP, stat::GTPU_TRUNCATED),
            (3, verdict::PASS, stat::MALFORMED),
        ] {
            let mut t = good[..14 + 40 + cut].to_vec();
            t[18..20].copy_from_slice(&(cut as u16).to_be_bytes());
            common::gateway_run(
                &mut dp,
                &format!("udp header cut at {cut}"),
                &t,
                want,
                &[reason],
            );
        }
        let mut past = good.clone();
        past[18..20].copy_from_slice(&(be16(&good, 18) + 20).to_be_bytes());
        common::gateway_run(
            &mut dp,
            "ipv6 payload length past the frame",
            &past,
            verdict::PASS,
            &[stat::MALFORMED],
        );

        // Without an IPv6 N3 address the same frame is not GTP-U to us.
        let mut s = dp.gw_config().unwrap();
        s.n3_addr6 = None;
        dp.set_gw_config(&s).unwrap();
        common::gateway_run(
            &mut dp,
            "no n3 address6",
            &good,
            verdict::PASS,
            &[stat::NOT_FOR_US],
        );
        // An IPv6 access node without an IPv6 N3 address: no source for
        // the downlink, dropped and counted.
        common::gateway_run(
            &mut dp,
            "downlink without n3 address6",
            &reply4(srv, port4, false, b"more"),
            verdict::DROP,
            &[stat::GTPU_NO_TUNNEL],
        );
    })
    .join()
    .unwrap();
}
