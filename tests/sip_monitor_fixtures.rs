//! The `sip-monitor` copy program through BPF_PROG_TEST_RUN: every packet
//! passes unchanged; SIP packets on configured ports (either direction,
//! UDP or TCP) are copied whole to the ring buffer, and the copy parses.

mod common;

use std::net::Ipv4Addr;

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

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKr1\r\nFrom: <sip:carol@example.com>;tag=1\r\nTo: <sip:carol@example.com>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n";

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
            "ipv6 frame",
            {
                let mut v = udp(40000, 5060, REGISTER);
                v[12] = 0x86;
                v[13] = 0xdd;
                v
            },
            false,
        ),
        ("runt", udp(40000, 5060, REGISTER)[..30].to_vec(), false),
    ];
    for (name, pkt, sip) in &cases {
        let before = dp.sip_stats().unwrap();
        let r = dp.test_run("sip_monitor", pkt).unwrap();
        assert_eq!(r.verdict, verdict::PASS, "{name}: every packet passes");
        assert_eq!(&r.output, pkt, "{name}: unchanged");
        let after = dp.sip_stats().unwrap();
        let moved = |i: u32| after[i as usize].packets - before[i as usize].packets;
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
    // The copy carries a parseable SIP message.
    dp.test_run("sip_monitor", &udp(40000, 5060, REGISTER))
        .unwrap();
    let c = dp.take_sip_copies().unwrap().remove(0);
    let (m, _) = control::sip_monitor::sip::parse(&c.frame[42..]).unwrap();
    assert_eq!(m.method(), "REGISTER");
    // Oversized: copied truncated, flagged, still passed.
    let big = udp(40000, 5060, &vec![b'x'; COPY_MAX + 100]);
    let r = dp.test_run("sip_monitor", &big).unwrap();
    assert_eq!(r.verdict, verdict::PASS);
    let c = dp.take_sip_copies().unwrap().remove(0);
    assert_eq!((c.len as usize, c.frame.len()), (big.len(), COPY_MAX));
    assert_eq!(dp.sip_stats().unwrap()[stat::TRUNCATED as usize].packets, 1);

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
