//! The `lb` role for real: daemons in network namespaces, veth, a bridge,
//! and UDP traffic received by sockets on the gateways.

mod common;

use std::{
    collections::HashMap,
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    thread,
    time::Duration,
};

use control::api::Request;
use testlab::topo::{self, gateway_name, Session, Topology};

/// The gateways here are sink namespaces, which cannot read a chain
/// header: what is tested is where the LB tier puts each session.
const SINKS_FLOW: &str = "key = \"flow\"\nchain = false\n";
const SINKS_DRAIN: &str = "drain_timeout = 600\nchain = false\n";

fn prefix(tag: &str) -> String {
    format!("ep{}{tag}", std::process::id() % 100000)
}

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

fn digest(t: &Topology, lb: usize) -> String {
    t.call(lb, Request::LbDigest).unwrap()[0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Seed 002 claim 20: whichever ingress point a session enters by, it
/// reaches the same gateway; and Maglev moves only the removed gateway's
/// sessions.
#[test]
fn two_lbs_agree_and_removal_moves_only_that_gateways_sessions() {
    if !common::kernel_available("two_lbs_agree") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&prefix("a"), 2, 3, &exe()).expect("topology");
    let all = [0, 1, 2];
    // The flow key: one terminal's flows spread like sessions of many.
    for lb in [1, 2] {
        t.start_lb(
            lb,
            &t.lb_config_with(lb, &all, 42, SINKS_FLOW, |_| String::new()),
        )
        .expect("daemon");
    }
    assert_eq!(digest(&t, 1), digest(&t, 2), "same config, same table");

    let sessions = topo::sessions(1000);
    let via1 = t.placement(1, &sessions).expect("traffic via lb1");
    let via2 = t.placement(2, &sessions).expect("traffic via lb2");
    assert_eq!(via1.len(), 1000, "every session reached a gateway via lb1");
    assert_eq!(via2.len(), 1000, "every session reached a gateway via lb2");
    let differ = sessions.iter().filter(|s| via1[s] != via2[s]).count();
    assert_eq!(differ, 0, "sessions placed differently by the two LBs");
    let mut per_gw = [0usize; 3];
    for g in via1.values() {
        per_gw[*g] += 1;
    }
    assert!(
        per_gw.iter().all(|&n| n > 200),
        "sessions spread over all gateways: {per_gw:?}"
    );

    // The CLI's lookup runs the attached program: it must agree with where
    // the traffic actually went.
    for s in sessions.iter().take(20) {
        let key = match s {
            Session::Teid(teid) => control::api::LookupKey::Teid(*teid),
            Session::Flow(p) => control::api::LookupKey::Flow(
                format!("10.0.0.2:{p}-198.51.100.10:5000/udp")
                    .parse()
                    .unwrap(),
            ),
        };
        let v = t
            .call(
                1,
                Request::LbLookup {
                    interface: None,
                    key,
                },
            )
            .unwrap();
        assert_eq!(
            v["gateway"].as_str(),
            Some(gateway_name(via1[s]).as_str()),
            "lookup of {s:?}"
        );
    }

    // IPv6 (issue 13): the lookup runs the attached program on an IPv6
    // flow, and lands where the shared table says (flow key here).
    let table = control::lb::maglev::MaglevTable::build(
        &(0..3)
            .map(|g| control::lb::maglev::Backend {
                name: gateway_name(g),
                weight: 1,
            })
            .collect::<Vec<_>>(),
        control::lb::maglev::DEFAULT_TABLE_SIZE,
        42,
    )
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    for p in 0..60u16 {
        let flow = format!(
            "[2001:db8:64::2]:{}-[2001:db8:c633:640a::10]:5000/udp",
            30000 + p
        );
        let spec: control::api::FlowSpec = flow.parse().unwrap();
        let h = dataplane_user::lb::flow_hash_v6(
            "2001:db8:64::2".parse().unwrap(),
            "2001:db8:c633:640a::10".parse().unwrap(),
            30000 + p,
            5000,
            17,
            42,
        );
        let want = table.owner(h).unwrap().name.clone();
        for lb in [1, 2] {
            let v = t
                .call(
                    lb,
                    Request::LbLookup {
                        interface: None,
                        key: control::api::LookupKey::Flow(spec.clone()),
                    },
                )
                .unwrap();
            assert_eq!(v["gateway"].as_str(), Some(want.as_str()), "lb{lb}: {flow}");
        }
        seen.insert(want);
    }
    assert_eq!(seen.len(), 3, "IPv6 flows spread over every gateway");

    // Remove gw3 on both LBs through the API.
    let removed = 2;
    for lb in [1, 2] {
        t.call(
            lb,
            Request::LbGatewayRemove {
                interface: None,
                name: gateway_name(removed),
            },
        )
        .expect("remove");
    }
    assert_eq!(
        digest(&t, 1),
        digest(&t, 2),
        "still equal after the removal"
    );
    let after1 = t.placement(1, &sessions).expect("traffic after removal");
    let after2 = t
        .placement(2, &sessions)
        .expect("traffic after removal via lb2");
    let mut moved_own = 0;
    let mut moved_other = 0;
    for s in &sessions {
        assert_ne!(
            after1[s], removed,
            "{s:?} still reaches the removed gateway"
        );
        assert_eq!(
            after1[s], after2[s],
            "{s:?} placed differently after removal"
        );
        if via1[s] == removed {
            moved_own += 1;
        } else if after1[s] != via1[s] {
            moved_other += 1;
        }
    }
    eprintln!(
        "removal: {moved_own} sessions of {} moved, {moved_other} others moved",
        gateway_name(removed)
    );
    assert_eq!(moved_own, per_gw[removed]);
    assert_eq!(
        moved_other, 0,
        "sessions of the remaining gateways must stay put"
    );

    // Counters: every session packet was redirected, none passed as malformed.
    let stats = t.call(1, Request::Stats).unwrap();
    let get = |name: &str| {
        stats
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["packets"]
            .as_u64()
            .unwrap()
    };
    // lb1 carried the 1000 sessions twice; lookups (test_run) count too.
    assert!(
        get("redirect") >= 2000,
        "redirect counter {}",
        get("redirect")
    );
    assert_eq!(
        get("key_terminal") + get("key_teid_owner"),
        0,
        "flow key, no TEID owners"
    );
    assert_eq!(
        get("key_teid") + get("key_flow"),
        get("redirect") + get("tx") + get("no_gateway") + get("redirect_failed")
    );
}

/// Seed 002 claims 4 and 20 with a drain: a terminal's plain flows stay on
/// one gateway (terminal key); G-PDUs whose TEID prefix gw1 owns keep
/// reaching gw1 while it drains, while TEIDs nobody owns go elsewhere;
/// when the drain runs out gw1 and its prefix are gone, and a reload
/// (the file still names gw1) brings both back, with a key change flipped
/// live.
#[test]
fn a_draining_gateway_keeps_its_teids_until_the_drain_ends() {
    if !common::kernel_available("a_draining_gateway") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&prefix("d"), 1, 2, &exe()).expect("topology");
    let prefixes = |g: usize| format!("teid_prefix = {}\n", 0x21 + g);
    let cfg = t.lb_config_with(1, &[0, 1], 7, SINKS_DRAIN, prefixes);
    t.start_lb(1, &cfg).expect("daemon");

    let owned: Vec<Session> = (0..40u32)
        .map(|i| Session::Teid(0x2100_0000 + i * 4099))
        .collect();
    let unowned: Vec<Session> = (0..200u32)
        .map(|i| Session::Teid(0x3000_0000 + i * 7919))
        .collect();
    let flows: Vec<Session> = (0..40u16).map(|i| Session::Flow(21000 + i)).collect();
    let all: Vec<Session> = owned
        .iter()
        .chain(&unowned)
        .chain(&flows)
        .copied()
        .collect();

    let gws = t.call(1, Request::LbGateways { interface: None }).unwrap();
    let prefix_of = |v: &serde_json::Value, name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .map(|g| g["teid_prefix"].clone())
    };
    assert_eq!(prefix_of(&gws, "gw1"), Some(serde_json::json!(0x21)));
    assert_eq!(prefix_of(&gws, "gw2"), Some(serde_json::json!(0x22)));

    let before = t.placement(1, &all).expect("traffic");
    assert!(
        owned.iter().all(|s| before[s] == 0),
        "gw1's TEIDs reach gw1"
    );
    let flow_gws: std::collections::HashSet<_> = flows.iter().map(|s| before[s]).collect();
    assert_eq!(
        flow_gws.len(),
        1,
        "terminal key: one terminal's flows on one gateway"
    );
    let unowned_on_gw1 = unowned.iter().filter(|s| before[*s] == 0).count();
    assert!(
        unowned_on_gw1 > 50 && unowned_on_gw1 < 150,
        "unowned TEIDs spread by Maglev: {unowned_on_gw1} on gw1"
    );

    // Drain gw1 for 4 s.
    let v = t
        .call(
            1,
            Request::LbGatewayDrain {
                interface: None,
                name: gateway_name(0),
                timeout: Some(4),
            },
        )
        .expect("drain");
    assert_eq!(v["key"], "terminal");
    let status = t.call(1, Request::Status).unwrap();
    let draining = &status["lb"][0]["draining"];
    assert_eq!(draining[0]["name"], "gw1", "{status}");
    assert!(draining[0]["seconds_left"].as_u64().unwrap() <= 4);
    let gws = t.call(1, Request::LbGateways { interface: None }).unwrap();
    let gw1 = gws
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "gw1")
        .unwrap()
        .clone();
    assert_eq!(
        (gw1["slots"].as_u64(), gw1["draining"].is_u64()),
        (Some(0), true),
        "{gw1}"
    );

    let during = t.placement(1, &all).expect("traffic while draining");
    assert!(
        owned.iter().all(|s| during[s] == 0),
        "gw1's TEIDs still reach gw1 while it drains"
    );
    assert!(
        unowned.iter().all(|s| during[s] == 1),
        "new TEIDs nobody owns go to gw2"
    );
    assert!(
        flows.iter().all(|s| during[s] == 1),
        "plain flows are remapped (no daisy chaining yet)"
    );
    let stats = t.call(1, Request::Stats).unwrap();
    let get = |v: &serde_json::Value, name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["packets"]
            .as_u64()
            .unwrap()
    };
    assert!(
        get(&stats, "key_teid_owner") >= 80,
        "owned TEIDs counted by owner"
    );
    assert!(
        get(&stats, "key_terminal") >= 80,
        "flows counted under the terminal key"
    );

    // The drain runs out (the daemon ticks once a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let gws = t.call(1, Request::LbGateways { interface: None }).unwrap();
        if prefix_of(&gws, "gw1").is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gw1 still listed after its drain: {gws}"
        );
        thread::sleep(Duration::from_millis(250));
    }
    let status = t.call(1, Request::Status).unwrap();
    assert_eq!(
        status["lb"][0]["draining"],
        serde_json::json!([]),
        "{status}"
    );
    let owner_before = get(&t.call(1, Request::Stats).unwrap(), "key_teid_owner");
    let after = t.placement(1, &all).expect("traffic after the drain");
    assert!(
        all.iter().all(|s| after[s] == 1),
        "everything on gw2 once gw1 left"
    );
    assert_eq!(
        get(&t.call(1, Request::Stats).unwrap(), "key_teid_owner"),
        owner_before,
        "gw1's prefix is gone"
    );
    assert!(
        t.call(
            1,
            Request::LbGatewayUndrain {
                interface: None,
                name: gateway_name(0)
            }
        )
        .is_err(),
        "nothing to undrain"
    );

    // Reload with the file (gw1 is in it) and the flow key: gw1 and its
    // prefix are back, the key flips with the table.
    std::fs::write(
        t.config_path(1),
        cfg.replace(
            "drain_timeout = 600\n",
            "drain_timeout = 600\nkey = \"flow\"\n",
        ),
    )
    .unwrap();
    t.call(1, Request::Reload).expect("reload");
    assert_eq!(t.call(1, Request::LbDigest).unwrap()[0]["key"], "flow");
    let reloaded = t.placement(1, &all).expect("traffic after reload");
    assert!(
        owned.iter().all(|s| reloaded[s] == 0),
        "gw1 owns its prefix again"
    );
    assert!(
        unowned.iter().all(|s| reloaded[s] == before[s]),
        "Maglev as before the drain"
    );
    let flow_gws: std::collections::HashSet<_> = flows.iter().map(|s| reloaded[s]).collect();
    assert_eq!(
        flow_gws.len(),
        2,
        "flow key: the terminal's flows spread again"
    );

    // Undrain before the timeout puts it back.
    t.call(
        1,
        Request::LbGatewayDrain {
            interface: None,
            name: gateway_name(0),
            timeout: None,
        },
    )
    .expect("drain");
    let status = t.call(1, Request::Status).unwrap();
    assert!(
        status["lb"][0]["draining"][0]["seconds_left"]
            .as_u64()
            .unwrap()
            > 590,
        "default from drain_timeout: {status}"
    );
    t.call(
        1,
        Request::LbGatewayUndrain {
            interface: None,
            name: gateway_name(0),
        },
    )
    .expect("undrain");
    let back = t.placement(1, &all).expect("traffic after undrain");
    assert!(
        unowned.iter().all(|s| back[s] == before[s]),
        "undrained: Maglev as before"
    );
}

/// SIGKILL of the daemon does not stop forwarding; a restarted daemon takes
/// the pinned state over. 10 kpps across the kill and the restart: every
/// packet arrives, on the gateway it was going to before.
#[test]
fn daemon_sigkill_and_restart_lose_no_packets() {
    if !common::kernel_available("daemon_restart") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&prefix("r"), 1, 2, &exe()).expect("topology");
    let cfg = t.lb_config(1, &[0, 1], 9);
    t.start_lb(1, &cfg).expect("daemon");
    let digest_before = digest(&t, 1);

    let probe: Vec<Session> = (0..10).map(|i| Session::Flow(30000 + i)).collect();
    let placed = t.placement(1, &probe).expect("placement before");
    let stop = Arc::new(AtomicBool::new(false));
    let rx = t.receivers(stop.clone());
    const ROUNDS: u32 = 4000; // x 10 flows at 10 kpps: 4 s of traffic
    let sender = {
        let path = format!("/run/netns/{}", t.ns("t1"));
        let probe = probe.clone();
        thread::spawn(move || {
            topo::enter_netns(&path).unwrap();
            let start = std::time::Instant::now();
            let sent = topo::send_sessions(&probe, ROUNDS, 10_000).unwrap();
            (sent, start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(1000));
    let killed = std::time::Instant::now();
    t.kill_lb(1);
    thread::sleep(Duration::from_millis(800));
    t.start_lb(1, &cfg).expect("restart");
    let down = killed.elapsed();
    let status = t.call(1, Request::Status).unwrap();
    assert_eq!(
        status["lb"][0]["took_over_pins"], true,
        "restarted daemon took over the pins"
    );
    assert_eq!(
        digest(&t, 1),
        digest_before,
        "table unchanged by the restart"
    );
    let (sent, took) = sender.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut got: HashMap<Session, u32> = HashMap::new();
    for (g, h) in rx.into_iter().enumerate() {
        for (s, n) in h.join().unwrap().unwrap() {
            assert_eq!(placed[&s], g, "{s:?} arrived on another gateway");
            *got.entry(s).or_default() += n;
        }
    }
    let received: u64 = got.values().map(|&n| n as u64).sum();
    eprintln!(
        "lb SIGKILL under {:.0} pps: daemon down {} ms, {received} of {sent} received",
        sent as f64 / took.as_secs_f64(),
        down.as_millis()
    );
    assert_eq!(sent, 10 * ROUNDS as u64);
    assert_eq!(received, sent, "packets lost across SIGKILL + restart");
}
