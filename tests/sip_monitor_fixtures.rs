//! The `sip-monitor` copy programs (XDP for what arrives, TC egress for
//! what leaves) through BPF_PROG_TEST_RUN: every packet passes unchanged; SIP packets on configured ports (either direction,
//! UDP or TCP, IPv4 or IPv6) are copied whole to the ring buffer, and the
//! copy parses.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane_common::sip_monitor::{stat, COPY_MAX};
use dataplane_user::{verdict, Dataplane};

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    edgeplane::packets::udp_packet(
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        sport,
        dport,
        payload,
    )
}

const UA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, 2);
const SRV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 6, 0, 0, 0, 0, 2);

fn udp6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv6(UA6.octets(), SRV6.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn tcp6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv6(UA6.octets(), SRV6.octets(), 64)
        .tcp(sport, dport, 1, 64240)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// `pkt` (IPv6) with an extension header of type `ext` (8 bytes) after
/// the fixed header.
fn with_ext6(pkt: &[u8], ext: u8) -> Vec<u8> {
    let mut v = pkt[..54].to_vec();
    let next = v[20];
    v[20] = ext;
    let plen = u16::from_be_bytes([v[18], v[19]]) + 8;
    v[18..20].copy_from_slice(&plen.to_be_bytes());
    if ext == 44 {
        // Fragment header: offset 0, more fragments.
        v.extend_from_slice(&[next, 0, 0, 1, 0, 0, 0, 7]);
    } else {
        // PadN over the 6 option bytes.
        v.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    v.extend_from_slice(&pkt[54..]);
    v
}

/// A frame cut inside the fixed IP header its ethertype names.
fn l3_cut(pkt: &[u8]) -> bool {
    let need = match [pkt[12], pkt[13]] {
        [0x08, 0x00] => 20,
        [0x86, 0xdd] => 40,
        _ => 0,
    };
    pkt.len() < 14 + need
}

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\nFrom: <sip:carol@example.com>;tag=1\r\nTo: <sip:carol@example.com>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n";

#[test]
fn sip_monitor_copies_sip_and_passes_everything() {
    if !common::kernel_available("sip_monitor_fixtures") {
        return;
    }
    let mut dp = Dataplane::load_private().expect("load");
    dp.add_sip_port(5060).unwrap();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("udp to 5060", udp(40000, 5060, REGISTER), true),
        ("udp from 5060", udp(5060, 40000, REGISTER), true),
        (
            "tcp to 5060",
            edgeplane::packets::tcp_packet(
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(10, 0, 0, 1),
                40001,
                5060,
                REGISTER,
            ),
            true,
        ),
        ("other port", udp(40000, 5070, REGISTER), false),
        (
            "ipv4 header under the ipv6 ethertype",
            {
                let mut v = udp(40000, 5060, REGISTER);
                v[12] = 0x86;
                v[13] = 0xdd;
                v
            },
            false,
        ),
        ("runt", udp(40000, 5060, REGISTER)[..30].to_vec(), false),
        ("ipv6 udp to 5060", udp6(40000, 5060, REGISTER), true),
        ("ipv6 udp from 5060", udp6(5060, 40000, REGISTER), true),
        ("ipv6 tcp to 5060", tcp6(40001, 5060, REGISTER), true),
        ("ipv6 other port", udp6(40000, 5070, REGISTER), false),
        (
            "ipv6 hop-by-hop then udp to 5060",
            with_ext6(&udp6(40000, 5060, REGISTER), 0),
            true,
        ),
        (
            "ipv6 destination options then tcp to 5060",
            with_ext6(&tcp6(40001, 5060, REGISTER), 60),
            true,
        ),
        (
            "ipv6 fragment (ports in the first only)",
            with_ext6(&udp6(40000, 5060, REGISTER), 44),
            false,
        ),
        (
            "ipv6 cut in the header",
            udp6(40000, 5060, REGISTER)[..40].to_vec(),
            false,
        ),
        (
            "ipv6 cut before the ports",
            udp6(40000, 5060, REGISTER)[..55].to_vec(),
            false,
        ),
        (
            "ipv6 payload length past the frame",
            {
                let mut v = udp6(40000, 5060, REGISTER);
                v[18..20].copy_from_slice(&[0xff, 0xff]);
                v
            },
            false,
        ),
    ];
    // What arrives (XDP) and what leaves (the TC egress companion) is
    // judged alike, into the one ring and the one set of counters.
    for egress in [false, true] {
        for (name, pkt, sip) in &cases {
            let name = format!("{name} ({})", if egress { "egress" } else { "ingress" });
            if egress && l3_cut(pkt) {
                // The kernel's skb harness refuses a frame without a whole
                // IP header (EINVAL), and no host sends one.
                assert!(dp.test_run_classifier("sip_monitor_egress", pkt).is_err());
                continue;
            }
            let before = dp.sip_stats().unwrap();
            let r = if egress {
                let r = dp
                    .test_run_classifier("sip_monitor_egress", pkt)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(r.verdict, 0, "{name}: TC_ACT_OK, every packet leaves");
                r
            } else {
                let r = dp.test_run("sip_monitor", pkt).unwrap();
                assert_eq!(r.verdict, verdict::PASS, "{name}: every packet passes");
                r
            };
            assert_eq!(&r.output, pkt, "{name}: unchanged");
            let after = dp.sip_stats().unwrap();
            let moved = |i: u32| after[i as usize].packets - before[i as usize].packets;
            assert_eq!(
                moved(stat::EGRESS_COPIES),
                (egress && *sip) as u64,
                "{name}: a copy made at egress counted"
            );
            let copies = dp.take_sip_copies().unwrap();
            if *sip {
                assert_eq!(moved(stat::COPIED), 1, "{name}");
                assert_eq!(copies.len(), 1, "{name}");
                assert_eq!(&copies[0].frame, pkt, "{name}: copied whole");
            } else {
                assert_eq!(moved(stat::NOT_SIP), 1, "{name}");
                assert!(copies.is_empty(), "{name}");
            }
        }
    }
    // The copy carries a parseable SIP message.
    dp.test_run("sip_monitor", &udp(40000, 5060, REGISTER))
        .unwrap();
    let c = dp.take_sip_copies().unwrap().remove(0);
    let (m, _) = control::sip_monitor::sip::parse(&c.frame[42..]).unwrap();
    assert_eq!(m.method(), "REGISTER");
    dp.test_run("sip_monitor", &udp6(40000, 5060, REGISTER))
        .unwrap();
    let c = dp.take_sip_copies().unwrap().remove(0);
    let (m, _) = control::sip_monitor::sip::parse(&c.frame[62..]).unwrap();
    assert_eq!(m.method(), "REGISTER", "the IPv6 copy parses");
    // Oversized: copied truncated, flagged, still passed.
    let big = udp(40000, 5060, &vec![b'x'; COPY_MAX + 100]);
    let r = dp.test_run("sip_monitor", &big).unwrap();
    assert_eq!(r.verdict, verdict::PASS);
    let c = dp.take_sip_copies().unwrap().remove(0);
    assert_eq!((c.len as usize, c.frame.len()), (big.len(), COPY_MAX));
    assert_eq!(dp.sip_stats().unwrap()[stat::TRUNCATED as usize].packets, 1);
    let r = dp.test_run_classifier("sip_monitor_egress", &big).unwrap();
    assert_eq!(r.verdict, 0);
    let c = dp.take_sip_copies().unwrap().remove(0);
    assert_eq!(
        (c.len as usize, c.frame.len()),
        (big.len(), COPY_MAX),
        "egress copies truncate alike"
    );
    assert_eq!(dp.sip_stats().unwrap()[stat::TRUNCATED as usize].packets, 2);

    // A full ring loses copies, counted, never packets.
    let pkt = udp(40000, 5060, REGISTER);
    let mut passed = 0;
    for _ in 0..5000 {
        if dp.test_run("sip_monitor", &pkt).unwrap().verdict == verdict::PASS {
            passed += 1;
        }
    }
    assert_eq!(passed, 5000);
    let st = dp.sip_stats().unwrap();
    assert!(
        st[stat::RING_FULL as usize].packets > 0,
        "8 MiB of 2 KiB copies fills before 5000"
    );
    let copies = dp.take_sip_copies().unwrap().len() as u64;
    assert_eq!(
        copies + st[stat::RING_FULL as usize].packets,
        5000,
        "every packet either copied or counted as lost copy"
    );
}
