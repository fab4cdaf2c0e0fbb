//! The `lb` program on the fixture table, through BPF_PROG_TEST_RUN:
//! verdict, output bytes and the counter that must move, for every fixture
//! and for every truncation length of three header stacks.

mod common;

use dataplane_common::lb::stat;
use dataplane_user::{verdict, Dataplane};
use testlab::fixtures::{self, Expect};

fn check(dp: &mut Dataplane, table: &control::lb::maglev::MaglevTable, name: &str, pkt: &[u8], expect: &Expect, seen: &mut [u32; 5]) {
    let before = dp.lb_stats().unwrap();
    let r = dp.test_run("lb", pkt).unwrap_or_else(|e| panic!("{name}: test_run: {e}"));
    let after = dp.lb_stats().unwrap();
    let moved = |i: u32| after[i as usize].packets - before[i as usize].packets;
    seen[r.verdict as usize] += 1;
    match expect {
        Expect::Forward { hash } => {
            let (gw, out) = fixtures::expected_output(pkt, table, *hash);
            let want = if gw == "gw-a" { verdict::TX } else { verdict::REDIRECT };
            assert_eq!(verdict::name(r.verdict), verdict::name(want), "{name}: verdict (expected gateway {gw})");
            assert_eq!(r.output, out, "{name}: output bytes (expected gateway {gw})");
            let stat_v = if want == verdict::TX { stat::TX } else { stat::REDIRECT };
            assert_eq!(moved(stat_v), 1, "{name}: verdict counter");
        }
        Expect::Pass { reason } => {
            assert_eq!(verdict::name(r.verdict), "pass", "{name}: verdict");
            assert_eq!(r.output, pkt, "{name}: a passed packet is untouched");
            assert_eq!(moved(*reason), 1, "{name}: reason {} not counted; moved: {:?}", stat::NAMES[*reason as usize],
                (0..stat::COUNT).filter(|&i| moved(i) > 0).map(|i| stat::NAMES[i as usize]).collect::<Vec<_>>());
            assert_eq!(moved(stat::PASS), 1, "{name}: pass counter");
        }
    }
    assert_eq!(after[stat::TX as usize].bytes - before[stat::TX as usize].bytes
        + after[stat::REDIRECT as usize].bytes - before[stat::REDIRECT as usize].bytes
        + after[stat::PASS as usize].bytes - before[stat::PASS as usize].bytes, pkt.len() as u64, "{name}: bytes counted once");
}

#[test]
fn lb_fixture_table() {
    if !common::kernel_available("lb_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&["ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1"]);
        common::sh(&["ip", "link", "set", "fx0", "up"]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install(&mut dp, 1, Some(redirect_if)).expect("install");
        let mut seen = [0u32; 5];
        let all = fixtures::fixtures();
        assert!(all.len() >= 25);
        for f in &all {
            check(&mut dp, &table, &f.name, &f.packet, &f.expect, &mut seen);
        }
        assert!(seen[verdict::TX as usize] > 0 && seen[verdict::REDIRECT as usize] > 0, "both egress paths exercised: {seen:?}");
        for t in fixtures::truncations() {
            let end = t.bounds.last().unwrap().0;
            for len in 0..=t.packet.len() {
                let name = format!("{} cut at {len}", t.name);
                let reason = t.bounds.iter().rev().find(|(first, _)| *first <= len).unwrap().1;
                let pkt = &t.packet[..len];
                if len < 14 {
                    // The kernel refuses test_run input shorter than an
                    // Ethernet header; such frames never reach XDP either.
                    assert!(dp.test_run("lb", pkt).is_err(), "{name}: kernel accepted a runt");
                    continue;
                }
                let expect = if len >= end { t.full.clone() } else { Expect::Pass { reason } };
                check(&mut dp, &table, &name, pkt, &expect, &mut seen);
            }
        }
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
        common::sh(&["ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1"]);
        let redirect_if = dataplane_user::ifindex("fx0").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install(&mut dp, 1, Some(redirect_if)).expect("install");
        let mut per_gw = std::collections::HashMap::new();
        for teid in (0..2000u32).map(|i| i.wrapping_mul(2654435761)) {
            let pkt = edgeplane::packets::gtpu_packet(teid, std::net::Ipv4Addr::new(10, 0, 0, 2), &[]);
            let r = dp.test_run("lb", &pkt).unwrap();
            let (gw, out) = fixtures::expected_output(&pkt, &table, fixtures::teid(teid).hash());
            assert_eq!(r.output, out, "teid {teid:#x}");
            *per_gw.entry(gw).or_insert(0u32) += 1;
        }
        assert_eq!(per_gw.len(), 2, "sessions spread over both gateways: {per_gw:?}");
    })
    .join()
    .unwrap();
}
