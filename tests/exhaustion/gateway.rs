//! The gateway's port pool and flow table, through BPF_PROG_TEST_RUN on
//! the loaded `gateway` program.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use dataplane_common::gateway::stat;
use dataplane_user::{
    gateway::{Flow, SessionEntry},
    verdict, Dataplane, LoadOptions, XdpMode,
};
use edgeplane::packets::{tcp_packet, udp6_packet};
use testlab::fixtures::gateway as fx;

use super::{common, counts, moved};

/// A terminal's packet that starts a session: IPv4 TCP to the web
/// service, or IPv6 UDP to the IPv6 DNS service, from port `sport` of
/// terminal `n`.
fn new_flow(n: u32, v6: bool) -> Vec<u8> {
    let sport = 10_000 + (n % 50_000) as u16;
    let host = n / 50_000;
    if v6 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2 + host as u16);
        udp6_packet(src, fx::DNS6, sport, 53, b"q")
    } else {
        let src = Ipv4Addr::new(10, 0, (host >> 8) as u8, 2 + host as u8);
        tcp_packet(src, fx::WEB, sport, 80, b"")
    }
}

/// The source port of a translated IPv4 or IPv6 packet.
fn sport_of(out: &[u8]) -> u16 {
    let l4 = match u16::from_be_bytes([out[12], out[13]]) {
        0x86dd => 14 + 40,
        _ => 14 + ((out[14] & 0x0f) as usize) * 4,
    };
    u16::from_be_bytes([out[l4], out[l4 + 1]])
}

/// What the gateway holds: every flow (sorted) and every session and its
/// counters, by port.
#[derive(Debug, PartialEq)]
struct GwState {
    flows: Vec<(Flow, u16)>,
    sessions: BTreeMap<u16, SessionEntry>,
    counters: BTreeMap<u16, dataplane_common::gateway::SessionCounters>,
}

fn gw_state(dp: &Dataplane, ports: impl Iterator<Item = u16>) -> GwState {
    let mut flows = dp.flows().unwrap();
    flows.sort();
    let mut sessions = BTreeMap::new();
    let mut counters = BTreeMap::new();
    for p in ports {
        sessions.insert(p, dp.session(p).unwrap());
        counters.insert(p, dp.session_counters(p).unwrap());
    }
    GwState {
        flows,
        sessions,
        counters,
    }
}

/// Start `n` sessions (IPv6 every `v6_every`-th); returns each one's
/// packet and port.
fn fill(dp: &mut Dataplane, n: u32, v6_every: u32) -> Vec<(Vec<u8>, u16)> {
    (0..n)
        .map(|i| {
            let pkt = new_flow(i, v6_every != 0 && i % v6_every == 0);
            let r = dp.test_run("gateway", &pkt).unwrap();
            assert_eq!(
                verdict::name(r.verdict),
                "tx",
                "session {i} of {n} starts while the pool has ports"
            );
            (pkt, sport_of(&r.output))
        })
        .collect()
}

/// Run each of `pkts`; every verdict must be a drop. Returns what moved.
fn refuse(dp: &mut Dataplane, pkts: &[Vec<u8>]) -> BTreeMap<String, u64> {
    let before = dp.gw_stats().unwrap();
    for (i, p) in pkts.iter().enumerate() {
        let r = dp.test_run("gateway", p).unwrap();
        assert_eq!(verdict::name(r.verdict), "drop", "refused packet {i}");
    }
    moved(&stat::NAMES, &before, &dp.gw_stats().unwrap())
}

/// Every existing session's packet again: forwarded from its own port.
fn existing_carry_on(dp: &mut Dataplane, sessions: &[(Vec<u8>, u16)]) {
    let before = dp.gw_stats().unwrap();
    for (pkt, port) in sessions {
        let r = dp.test_run("gateway", pkt).unwrap();
        assert_eq!(verdict::name(r.verdict), "tx");
        assert_eq!(sport_of(&r.output), *port, "the session keeps its port");
    }
    let n = sessions.len() as u64;
    assert_eq!(
        moved(&stat::NAMES, &before, &dp.gw_stats().unwrap()),
        counts(&[("tx", n), ("forward", n)]),
        "every existing session forwarded"
    );
}

/// The port pool (`[gateway] ports`): 1,024 ports, filled by 1,000 IPv4
/// and 24 IPv6 sessions (the families share it); 50 more new sessions of
/// both families are dropped and counted `pool_exhausted`, and no flow,
/// session or session counter changes.
#[test]
fn gateway_port_pool_full_refuses_new_sessions() {
    if !common::kernel_available("gateway_port_pool_full_refuses_new_sessions") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        let (lo, hi) = (40_000u16, 41_023u16);
        let size = u32::from(hi - lo) + 1;
        fx::install(&mut dp, 1, (lo, hi)).expect("install");
        let sessions = fill(&mut dp, size, 43);
        let ports: std::collections::BTreeSet<u16> = sessions.iter().map(|s| s.1).collect();
        assert_eq!(ports.len(), size as usize, "one distinct port each");
        assert!(ports.iter().all(|p| (lo..=hi).contains(p)));
        let v6 = sessions
            .iter()
            .filter(|(p, _)| p[12..14] == [0x86, 0xdd])
            .count();
        let before = gw_state(&dp, ports.iter().copied());
        assert_eq!(before.flows.len(), size as usize);

        let refused: Vec<Vec<u8>> = (size..size + 50)
            .map(|i| new_flow(i, i % 5 == 0))
            .collect();
        let m = refuse(&mut dp, &refused);
        assert_eq!(
            m,
            counts(&[("drop", 50), ("pool_exhausted", 50)]),
            "each refusal counted once, as pool_exhausted"
        );
        let after = gw_state(&dp, ports.iter().copied());
        let changed = before
            .sessions
            .iter()
            .filter(|(p, s)| after.sessions[p] != **s || after.counters[p] != before.counters[p])
            .count();
        assert_eq!(after, before, "no flow, session or counter changed");
        existing_carry_on(&mut dp, &sessions);
        println!(
            "port pool: {}/{size} in use ({v6} IPv6), {} refused (pool_exhausted +{}), {changed} existing changed, {} existing forwarded after",
            before.flows.len(),
            refused.len(),
            m["pool_exhausted"],
            sessions.len()
        );
    })
    .join()
    .unwrap();
}

/// Removes a test's pin root, also when the test fails.
struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = testlab::topo::remove_pins(&self.0);
    }
}

/// The flow table (`GW_FLOWS`, `FLOWS_MAX` = 65,536 entries a family)
/// holds one entry per session, and the largest pool (1024-65535) has
/// 64,512 ports: traffic exhausts the pool first, with the table 1,024
/// entries short of full, and the refusals are `pool_exhausted`.
#[test]
fn gateway_the_largest_pool_runs_out_before_the_flow_table() {
    if !common::kernel_available("gateway_the_largest_pool_runs_out_before_the_flow_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install(&mut dp, 1, (1024, 65_535)).expect("install");
        let sessions = fill(&mut dp, 64_512, 0);
        let flows = dp.flows().unwrap().len();
        assert_eq!(flows, 64_512);
        assert!(flows < dataplane_common::gateway::FLOWS_MAX as usize);
        let m = refuse(
            &mut dp,
            &(64_512..64_522).map(|i| new_flow(i, false)).collect::<Vec<_>>(),
        );
        assert_eq!(m, counts(&[("drop", 10), ("pool_exhausted", 10)]));
        println!(
            "largest pool: {}/64512 ports in use, flow table {flows}/{} entries, 10 refused as pool_exhausted, 0 as flows_full",
            sessions.len(),
            dataplane_common::gateway::FLOWS_MAX
        );
    })
    .join()
    .unwrap();
}

/// A full flow table (filled here through its pin with entries that have
/// no session behind them, the one way it can fill before the pool) with
/// ports left in the pool: 50 new sessions are dropped and counted
/// `flows_full`, the port each one took goes back to the pool, and no
/// flow (real or filler), session or counter changes.
#[test]
fn gateway_flow_table_full_refuses_new_sessions_and_keeps_the_ports() {
    if !common::kernel_available("gateway_flow_table_full_refuses_new_sessions_and_keeps_the_ports")
    {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        common::sh(&["ip", "link", "set", "v0", "up"]);
        common::sh(&["ip", "link", "set", "v1", "up"]);
        let pins = Pins(PathBuf::from(format!(
            "/sys/fs/bpf/edgeplane-test-exhaustion-flows-{}",
            std::process::id()
        )));
        let opts = LoadOptions {
            pin_root: pins.0.clone(),
            mode: XdpMode::Skb,
            ..Default::default()
        };
        let mut dp = Dataplane::attach("gateway", "v0", &opts).expect("attach");
        let (lo, hi) = (40_000u16, 41_023u16);
        fx::install(&mut dp, 1, (lo, hi)).expect("install");
        let sessions = fill(&mut dp, 100, 10);
        let ports: Vec<u16> = sessions.iter().map(|s| s.1).collect();

        // The rest of the IPv4 table: flows of 172.16.0.0/16, port 0.
        let max = dataplane_common::gateway::FLOWS_MAX;
        let md = aya::maps::MapData::from_pin(pins.0.join("v0/GW_FLOWS")).expect("pinned GW_FLOWS");
        let mut table: aya::maps::HashMap<_, dataplane_common::gateway::FlowKey, u16> =
            aya::maps::HashMap::try_from(aya::maps::Map::HashMap(md)).unwrap();
        let v4 = table.keys().count() as u32;
        for i in 0..max - v4 {
            let k = dataplane_common::gateway::FlowKey {
                addr: u32::from(Ipv4Addr::new(172, 16, (i >> 8) as u8, i as u8)).to_be(),
                port: 1 + (i >> 16) as u16,
                proto: 6,
                _pad: 0,
                tunnel: 0,
            };
            table.insert(k, 0, 0).expect("room for a filler");
        }
        assert_eq!(table.keys().count() as u32, max, "the IPv4 flow table is full");
        let before = gw_state(&dp, lo..=hi);

        let refused: Vec<Vec<u8>> = (1000..1050).map(|i| new_flow(i, false)).collect();
        let m = refuse(&mut dp, &refused);
        assert_eq!(
            m,
            counts(&[("drop", 50), ("flows_full", 50)]),
            "each refusal counted once, as flows_full"
        );
        let after = gw_state(&dp, lo..=hi);
        assert_eq!(after.flows, before.flows, "no flow added or changed");
        let changed = ports
            .iter()
            .filter(|p| after.sessions[p] != before.sessions[p] || after.counters[p] != before.counters[p])
            .count();
        assert_eq!(changed, 0, "no existing session or counter changed");
        // A refused session's port was taken, written and given back: it
        // is free, and nothing of it counted.
        for p in (lo..=hi).filter(|p| !ports.contains(p)) {
            assert!(!after.sessions[&p].active, "port {p} is free");
            assert_eq!(after.counters[&p], Default::default(), "port {p}");
        }
        existing_carry_on(&mut dp, &sessions);
        // IPv6 flows have their own table: they still start.
        let r = dp.test_run("gateway", &new_flow(2000, true)).unwrap();
        assert_eq!(verdict::name(r.verdict), "tx", "an IPv6 session starts");
        // No port was lost: the pool holds every port not in use.
        let mut free = dp.pool_drain().unwrap();
        free.sort();
        let in_use: std::collections::BTreeSet<u16> = dp.flows().unwrap().iter().map(|f| f.1).collect();
        let want: Vec<u16> = (lo..=hi).filter(|p| !in_use.contains(p)).collect();
        assert_eq!(free, want, "every refused session's port is back in the pool");
        println!(
            "flow table: {max}/{max} IPv4 entries ({} sessions, {} fillers), {} refused (flows_full +{}), 0 existing changed, {} ports back in the pool",
            v4,
            max - v4,
            refused.len(),
            m["flows_full"],
            free.len()
        );
        dp.detach_and_unpin().unwrap();
    })
    .join()
    .unwrap();
}
