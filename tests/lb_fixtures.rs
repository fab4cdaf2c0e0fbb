//! The `lb` program on the fixture table, through BPF_PROG_TEST_RUN:
//! verdict, output bytes and the counter that must move, for every fixture
//! and for every truncation length of three header stacks, under both key
//! modes; the terminal key and the TEID owners.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::lb::stat;
use dataplane_user::{lb::KeyMode, verdict, Dataplane};
use edgeplane::packets;
use testlab::fixtures::{self, Expect};

fn check(
    dp: &mut Dataplane,
    table: &control::lb::maglev::MaglevTable,
    name: &str,
    pkt: &[u8],
    expect: &Expect,
    seen: &mut [u32; 5],
) {
    let before = dp.lb_stats().unwrap();
    let r = dp
        .test_run("lb", pkt)
        .unwrap_or_else(|e| panic!("{name}: test_run: {e}"));
    let after = dp.lb_stats().unwrap();
    let moved = |i: u32| after[i as usize].packets - before[i as usize].packets;
    seen[r.verdict as usize] += 1;
    match expect {
        Expect::Forward { hash, .. } => {
            let (gw, out) = fixtures::expected_output(pkt, table, *hash);
            let want = if gw == "gw-a" {
                verdict::TX
            } else {
                verdict::REDIRECT
            };
            assert_eq!(
                verdict::name(r.verdict),
                verdict::name(want),
                "{name}: verdict (expected gateway {gw})"
            );
            assert_eq!(
                r.output, out,
                "{name}: output bytes (expected gateway {gw})"
            );
            let stat_v = if want == verdict::TX {
                stat::TX
            } else {
                stat::REDIRECT
            };
            assert_eq!(moved(stat_v), 1, "{name}: verdict counter");
        }
        Expect::Pass { reason } => {
            assert_eq!(verdict::name(r.verdict), "pass", "{name}: verdict");
            assert_eq!(r.output, pkt, "{name}: a passed packet is untouched");
            assert_eq!(
                moved(*reason),
                1,
                "{name}: reason {} not counted; moved: {:?}",
                stat::NAMES[*reason as usize],
                (0..stat::COUNT)
                    .filter(|&i| moved(i) > 0)
                    .map(|i| stat::NAMES[i as usize])
                    .collect::<Vec<_>>()
            );
            assert_eq!(moved(stat::PASS), 1, "{name}: pass counter");
        }
    }
    assert_eq!(
        after[stat::TX as usize].bytes - before[stat::TX as usize].bytes
            + after[stat::REDIRECT as usize].bytes
            - before[stat::REDIRECT as usize].bytes
            + after[stat::PASS as usize].bytes
            - before[stat::PASS as usize].bytes,
        pkt.len() as u64,
        "{name}: bytes counted once"
    );
}

#[test]
fn lb_fixture_table() {
    if !common::kernel_available("lb_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1",
        ]);
        common::sh(&["ip", "link", "set", "fx0", "up"]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        // The flow key is the behaviour before the terminal key; the
        // terminal key changes only where a packet without a TEID goes.
        for key in [KeyMode::Flow, KeyMode::Terminal] {
            let mut dp = Dataplane::load_private().expect("load");
            let table =
                fixtures::install_keyed(&mut dp, 1, Some(redirect_if), key).expect("install");
            let mut seen = [0u32; 5];
            let all = fixtures::fixtures();
            assert!(all.len() >= 25);
            for f in &all {
                check(
                    &mut dp,
                    &table,
                    &format!("{} ({key:?} key)", f.name),
                    &f.packet,
                    &f.expect.under(key),
                    &mut seen,
                );
            }
            assert!(
                seen[verdict::TX as usize] > 0 && seen[verdict::REDIRECT as usize] > 0,
                "both egress paths exercised: {seen:?}"
            );
            for t in fixtures::truncations() {
                let end = t.bounds.last().unwrap().0;
                for len in 0..=t.packet.len() {
                    let name = format!("{} cut at {len} ({key:?} key)", t.name);
                    let reason = t
                        .bounds
                        .iter()
                        .rev()
                        .find(|(first, _)| *first <= len)
                        .unwrap()
                        .1;
                    let pkt = &t.packet[..len];
                    if len < 14 {
                        // The kernel refuses test_run input shorter than an
                        // Ethernet header; such frames never reach XDP either.
                        assert!(
                            dp.test_run("lb", pkt).is_err(),
                            "{name}: kernel accepted a runt"
                        );
                        continue;
                    }
                    let expect = if len >= end {
                        t.full.under(key)
                    } else {
                        Expect::Pass { reason }
                    };
                    check(&mut dp, &table, &name, pkt, &expect, &mut seen);
                }
            }
        }
    })
    .join()
    .unwrap();
}

/// The gateway (by name) a packet was sent to, from its rewritten MAC.
fn reached(dp: &mut Dataplane, pkt: &[u8]) -> &'static str {
    let r = dp.test_run("lb", pkt).unwrap();
    assert!(
        matches!(r.verdict, verdict::TX | verdict::REDIRECT),
        "forwarded, got {}",
        verdict::name(r.verdict)
    );
    match r.output[..6].try_into().unwrap() {
        fixtures::GW_A_MAC => "gw-a",
        fixtures::GW_B_MAC => "gw-b",
        other => panic!("unknown gateway mac {other:02x?}"),
    }
}

fn moved(dp: &Dataplane, before: &[dataplane_common::Counter], i: u32) -> u64 {
    dp.lb_stats().unwrap()[i as usize].packets - before[i as usize].packets
}

/// Seed 002 claim 4: under the terminal key every user session of a
/// terminal, whatever its destination (a change of representative
/// address) or ports, reaches one gateway; terminals spread over the
/// gateways. The flow key spreads one terminal's sessions as before.
#[test]
fn the_terminal_key_keeps_a_terminal_on_one_gateway() {
    if !common::kernel_available("the_terminal_key_keeps_a_terminal_on_one_gateway") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1",
        ]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install_keyed(&mut dp, 1, Some(redirect_if), KeyMode::Terminal)
            .expect("install");
        let (svc1, svc2) = (
            Ipv4Addr::new(198, 51, 100, 10),
            Ipv4Addr::new(203, 0, 113, 80),
        );
        let mut per_gw = std::collections::HashMap::new();
        let before = dp.lb_stats().unwrap();
        for i in 0..300u32 {
            let src = Ipv4Addr::from(0x0a00_0000 + i * 257 + 2);
            let a = reached(&mut dp, &packets::udp_packet(src, svc1, 40000, 5000, b"a"));
            let b = reached(&mut dp, &packets::udp_packet(src, svc2, 41234, 53, b"b"));
            let c = reached(&mut dp, &packets::tcp_packet(src, svc2, 50000, 443, b""));
            assert_eq!(
                (a, b),
                (a, a),
                "{src}: one terminal, two destinations, two gateways"
            );
            assert_eq!(c, a, "{src}: a TCP session of the same terminal elsewhere");
            let (want, _) = fixtures::expected_output(
                &packets::udp_packet(src, svc1, 1, 2, b""),
                &table,
                dataplane_user::lb::terminal_hash(src, fixtures::SEED),
            );
            assert_eq!(
                a, want,
                "{src}: userspace terminal_hash agrees with the program"
            );
            *per_gw.entry(a).or_insert(0u32) += 1;
        }
        assert!(
            per_gw.len() == 2 && per_gw.values().all(|&n| n > 90),
            "terminals spread over both gateways: {per_gw:?}"
        );
        assert_eq!(moved(&dp, &before, stat::KEY_TERMINAL), 900);
        assert_eq!(moved(&dp, &before, stat::KEY_FLOW), 0);

        // IPv6 (issue 13): a terminal is its /64, so every address it
        // picks inside it, to any destination, reaches one gateway.
        let mut per_gw = std::collections::HashMap::new();
        let before = dp.lb_stats().unwrap();
        for i in 0..200u16 {
            let prefix = [0x2001, 0xdb8, 0x100 + i, 7];
            let addr = |iid: u16| {
                std::net::Ipv6Addr::new(
                    prefix[0],
                    prefix[1],
                    prefix[2],
                    prefix[3],
                    0,
                    0,
                    iid >> 8,
                    iid,
                )
            };
            let udp = |src, dst, sport, dport| {
                fixtures::ipv6::frame(src, dst, 17, &[], &fixtures::ipv6::udp(sport, dport, b"6"))
            };
            let a = reached(&mut dp, &udp(addr(1), fixtures::ipv6::SERVICE, 40000, 5000));
            let b = reached(&mut dp, &udp(addr(0x5a5a), fixtures::ipv6::TERM, 41000, 53));
            assert_eq!(b, a, "{}: two addresses of one /64, one gateway", addr(1));
            let (want, _) = fixtures::expected_output(
                &udp(addr(1), fixtures::ipv6::SERVICE, 1, 2),
                &table,
                dataplane_user::lb::terminal_hash_v6(addr(1), fixtures::SEED),
            );
            assert_eq!(
                a, want,
                "userspace terminal_hash_v6 agrees with the program"
            );
            *per_gw.entry(a).or_insert(0u32) += 1;
        }
        assert!(
            per_gw.len() == 2 && per_gw.values().all(|&n| n > 60),
            "IPv6 terminals spread over both gateways: {per_gw:?}"
        );
        assert_eq!(moved(&dp, &before, stat::IPV6), 400);
        assert_eq!(moved(&dp, &before, stat::KEY_TERMINAL), 400);

        // The same table under the flow key: one terminal's sessions spread.
        let mut dp = Dataplane::load_private().expect("load");
        fixtures::install_keyed(&mut dp, 1, Some(redirect_if), KeyMode::Flow).expect("install");
        let before = dp.lb_stats().unwrap();
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let mut per_gw = std::collections::HashMap::new();
        for port in 40000..40200u16 {
            *per_gw
                .entry(reached(
                    &mut dp,
                    &packets::udp_packet(src, svc1, port, 5000, b"a"),
                ))
                .or_insert(0u32) += 1;
        }
        assert_eq!(
            per_gw.len(),
            2,
            "flow key: one terminal's sessions on both gateways: {per_gw:?}"
        );
        assert_eq!(
            (
                moved(&dp, &before, stat::KEY_FLOW),
                moved(&dp, &before, stat::KEY_TERMINAL)
            ),
            (200, 0)
        );
    })
    .join()
    .unwrap();
}

/// Seed 002 claim 20: a G-PDU whose TEID prefix has an owner goes to the
/// owner whatever the Maglev table says; without one (or with an owner
/// whose entry is not in use) Maglev by TEID as before.
#[test]
fn an_owned_teid_prefix_goes_to_its_owner() {
    if !common::kernel_available("an_owned_teid_prefix_goes_to_its_owner") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1",
        ]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install_keyed(&mut dp, 1, Some(redirect_if), KeyMode::Terminal)
            .expect("install");
        assert!(
            dp.teid_owners().unwrap().iter().all(Option::is_none),
            "fresh maps own nothing"
        );
        let term = Ipv4Addr::new(10, 0, 0, 2);
        let maglev = |teid: u32| {
            table
                .owner(dataplane_common::hash::teid_hash(teid, fixtures::SEED))
                .unwrap()
                .name
                .clone()
        };
        // TEIDs of prefix 0x42 that Maglev sends to gw-b, and of 0x43.
        let owned: Vec<u32> = (0..5000u32)
            .map(|i| 0x4200_0000 | (i * 131))
            .filter(|t| maglev(*t) == "gw-b")
            .take(50)
            .collect();
        let unowned: Vec<u32> = (0..50u32).map(|i| 0x4300_0000 | (i * 977)).collect();
        assert_eq!(owned.len(), 50);
        dp.set_teid_owner(0x42, Some(0)).unwrap(); // gw-a's entry
        assert_eq!(dp.teid_owners().unwrap()[0x42], Some(0));
        let before = dp.lb_stats().unwrap();
        for &t in &owned {
            assert_eq!(
                reached(&mut dp, &packets::gtpu_packet(t, term, &[])),
                "gw-a",
                "teid {t:#x}: to its owner, not Maglev's gw-b"
            );
        }
        for &t in &unowned {
            assert_eq!(
                reached(&mut dp, &packets::gtpu_packet(t, term, &[])),
                maglev(t),
                "teid {t:#x}: unowned prefix, Maglev"
            );
        }
        assert_eq!(
            (
                moved(&dp, &before, stat::KEY_TEID_OWNER),
                moved(&dp, &before, stat::KEY_TEID)
            ),
            (50, 50)
        );
        // An owner whose entry is not in use is ignored.
        dp.set_teid_owner(0x42, Some(7)).unwrap();
        assert_eq!(
            reached(&mut dp, &packets::gtpu_packet(owned[0], term, &[])),
            "gw-b",
            "invalid owner entry: Maglev"
        );
        // Cleared: back to Maglev.
        dp.set_teid_owner(0x42, None).unwrap();
        assert_eq!(dp.teid_owners().unwrap()[0x42], None);
        for &t in &owned {
            assert_eq!(
                reached(&mut dp, &packets::gtpu_packet(t, term, &[])),
                "gw-b",
                "teid {t:#x}: cleared prefix, Maglev"
            );
        }
        assert!(
            dp.set_teid_owner(1, Some(dataplane_common::lb::GATEWAYS_MAX))
                .is_err(),
            "index out of range refused"
        );
    })
    .join()
    .unwrap();
}

/// The program and the userspace hash agree for many keys: what the
/// control plane (and the CLI digest) believes is what the fast path does.
#[test]
fn program_and_table_agree_on_many_sessions() {
    if !common::kernel_available("program_and_table_agree_on_many_sessions") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1",
        ]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install(&mut dp, 1, Some(redirect_if)).expect("install");
        let mut per_gw = std::collections::HashMap::new();
        for teid in (0..2000u32).map(|i| i.wrapping_mul(2654435761)) {
            let pkt =
                edgeplane::packets::gtpu_packet(teid, std::net::Ipv4Addr::new(10, 0, 0, 2), &[]);
            let r = dp.test_run("lb", &pkt).unwrap();
            let (gw, out) = fixtures::expected_output(&pkt, &table, fixtures::teid(teid).hash());
            assert_eq!(r.output, out, "teid {teid:#x}");
            *per_gw.entry(gw).or_insert(0u32) += 1;
        }
        assert_eq!(
            per_gw.len(),
            2,
            "sessions spread over both gateways: {per_gw:?}"
        );
    })
    .join()
    .unwrap();
}
