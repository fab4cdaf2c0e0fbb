//! The load-sharing extension for real: three routers of one virtual
//! router on a LAN whose switch floods the virtual MAC to all of them, end
//! systems sending a steady 10 kpps through the virtual address to a
//! receiver that counts every packet by sequence number.

mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use testlab::vrrp_lab::{count_loss, receiver, sender, sender_from, Seen, VrrpLan, SOURCES};

fn ls_config(me: u8, routers: u8) -> String {
    let peers: Vec<String> = (1..=routers)
        .filter(|i| *i != me)
        .map(|i| format!("\"10.3.0.{i}\""))
        .collect();
    format!(
        "\n[router.load_sharing]\nkey = \"lab shared key\"\npeers = [{}]\nhello_ms = 50\n",
        peers.join(", ")
    )
}

fn owned(lan: &VrrpLan, r: &str) -> u64 {
    lan.status(r).unwrap()["load_sharing"]["owned"]
        .as_u64()
        .unwrap_or(0)
}

/// r1 (200) and r2 (150) split the buckets 128/128; then 10 kpps for 6 s
/// from the 32 end systems (IPv6 when `v6`), and after 2 s r3 (100) joins
/// and takes its share through hand-offs while the traffic flows. Returns
/// what was sent per source and what the receiver saw.
fn join_under_traffic(lan: &mut VrrpLan, cfg: fn(u8, u8) -> String, v6: bool) -> (Vec<u32>, Seen) {
    lan.start_edgeplane_with("r1", 200, 1000, &cfg(1, 3))
        .unwrap();
    lan.start_edgeplane_with("r2", 150, 1000, &cfg(2, 3))
        .unwrap();
    lan.wait_master("r1", &["r1", "r2", "r3"], true, Duration::from_secs(10))
        .unwrap();
    let t0 = Instant::now();
    while owned(lan, "r1") + owned(lan, "r2") != 256 || owned(lan, "r2") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no balance: {} / {}",
            lan.status("r1").unwrap(),
            lan.status("r2").unwrap()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!((owned(lan, "r1"), owned(lan, "r2")), (128, 128));
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let tx = testlab::vrrp_lab::sender_family(
        format!("/run/netns/{}", lan.ns("x")),
        v6,
        (0..SOURCES).collect(),
        10_000,
        6.0,
    );
    thread::sleep(Duration::from_secs(2));
    lan.start_edgeplane_with("r3", 100, 1000, &cfg(3, 3))
        .unwrap();
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();
    let shares: Vec<u64> = ["r1", "r2", "r3"].iter().map(|r| owned(lan, r)).collect();
    let mut sorted = shares.clone();
    sorted.sort();
    assert_eq!(sorted, vec![85, 85, 86], "after the join: {shares:?}");
    (sent, seen)
}

#[test]
fn three_routers_share_and_a_rebalance_loses_and_doubles_nothing() {
    if !common::kernel_available("loadshare") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}l", std::process::id() % 100000), 3, &exe).expect("lan");
    lan.add_wan(3).expect("wan");
    let (sent, seen) = join_under_traffic(&mut lan, ls_config, false);
    let st3 = lan.status("r3").unwrap();
    eprintln!("r3 after joining: {}", st3["load_sharing"]);
    let routed: Vec<u64> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| {
            lan.status(r).unwrap()["load_sharing"]["routed_packets"]
                .as_u64()
                .unwrap()
        })
        .collect();
    eprintln!("routed per router: {routed:?}");
    assert!(
        routed.iter().all(|&n| n > 0),
        "each router routes a share: {routed:?}"
    );
    // `stats` shows the same from the filter's own counters (a snapshot at
    // most 200 ms old, so at least what the status said a moment ago), and
    // the VRRP engine's.
    thread::sleep(Duration::from_millis(300));
    for (r, n) in ["r1", "r2", "r3"].iter().zip(&routed) {
        let filter_routed = lan.counter(r, "router", "routed").unwrap();
        assert!(
            filter_routed >= *n,
            "{r}: filter counted {filter_routed} routed, buckets {n}"
        );
    }
    assert!(
        lan.counter("r1", "vrrp", "adverts_sent").unwrap() > 0,
        "the master sends adverts"
    );
    assert!(
        lan.counter("r2", "vrrp", "adverts_received").unwrap() > 0,
        "a backup hears them"
    );
    assert!(
        lan.counter("r3", "load_sharing", "handoffs_done").unwrap()
            + lan.counter("r1", "load_sharing", "handoffs_done").unwrap()
            > 0,
        "the join went through hand-offs"
    );

    // Every packet arrived exactly once.
    let (lost, doubled) = count_loss(&sent, &seen);
    let total: u32 = sent.iter().sum();
    eprintln!("sent {total}, lost {lost}, routed twice {doubled}");
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "a planned rebalance under 10 kpps loses and doubles nothing"
    );
}

/// SIGKILL of the master: its filter's lease runs out, so it stops routing
/// within 200 ms; the backup takes over as VRRP master after
/// Master_Down_Interval and hands the dead router's buckets out. Only the
/// dead router's share of the traffic is lost, for at most
/// Master_Down_Interval; nothing is routed twice.
#[test]
fn a_failed_master_loses_only_its_share_for_the_takeover() {
    if !common::kernel_available("loadshare_failover") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}m", std::process::id() % 100000), 3, &exe).expect("lan");
    lan.add_wan(3).expect("wan");
    for (r, prio, me) in [("r1", 200u8, 1u8), ("r2", 150, 2), ("r3", 100, 3)] {
        lan.start_edgeplane_with(r, prio, 1000, &ls_config(me, 3))
            .unwrap();
    }
    lan.wait_master("r1", &["r1", "r2", "r3"], true, Duration::from_secs(10))
        .unwrap();
    let t0 = Instant::now();
    while ["r1", "r2", "r3"]
        .iter()
        .map(|r| owned(&lan, r))
        .sum::<u64>()
        != 256
        || owned(&lan, "r3") == 0
        || owned(&lan, "r2") == 0
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no balance");
        thread::sleep(Duration::from_millis(100));
    }
    let failed_share = owned(&lan, "r1") as f64 / 256.0;

    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let pps = 10_000u32;
    let tx = sender(format!("/run/netns/{}", lan.ns("x")), pps, 8.0);
    thread::sleep(Duration::from_secs(2));
    lan.signal("r1", libc::SIGKILL);
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();
    assert_eq!(lan.status("r2").unwrap()["state"], "master");
    let shares: Vec<u64> = ["r2", "r3"].iter().map(|r| owned(&lan, r)).collect();
    assert_eq!(
        shares.iter().sum::<u64>(),
        256,
        "the failed router's buckets were handed out: {shares:?}"
    );

    let (lost, doubled) = count_loss(&sent, &seen);
    // Lost packets of the failed share, as time: the outage its end
    // systems saw.
    let outage_ms = lost as f64 / (pps as f64 * failed_share) * 1000.0;
    let mdi_ms = 3000.0 + (106.0 * 1000.0) / 256.0;
    eprintln!("failed share {failed_share:.2}: lost {lost} packets = {outage_ms:.0} ms of its traffic (Master_Down_Interval {mdi_ms:.0} ms), routed twice {doubled}");
    assert_eq!(doubled, 0);
    // The takeover comes Master_Down_Interval after the last advert, which
    // may have left just before the kill; the hand-off of the dead
    // router's buckets adds a few round trips on the LAN.
    assert!(
        outage_ms <= mdi_ms + 150.0,
        "outage {outage_ms:.0} ms > Master_Down_Interval {mdi_ms:.0} ms + 150 ms"
    );
}

/// Claims 7-13: a backup whose traffic passes its threshold asks for a
/// review (once per hold-down); the master collects the rates and moves
/// hot buckets to the idle router, under traffic, losing and doubling
/// nothing.
#[test]
fn a_busy_backup_gets_a_rate_review() {
    if !common::kernel_available("loadshare_rates") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}q", std::process::id() % 100000), 2, &exe).expect("lan");
    lan.add_wan(2).expect("wan");
    lan.start_edgeplane_with("r1", 200, 1000, &ls_config(1, 2))
        .unwrap();
    let review = format!(
        "{}review_pps = 3000\nreview_holddown_ms = 60000\n",
        ls_config(2, 2)
    );
    lan.start_edgeplane_with("r2", 150, 1000, &review).unwrap();
    lan.wait_master("r1", &["r1", "r2"], true, Duration::from_secs(10))
        .unwrap();
    let t0 = Instant::now();
    while owned(&lan, "r2") != 128 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no balance");
        thread::sleep(Duration::from_millis(100));
    }
    // The end systems whose buckets r2 routes.
    let r2: std::collections::BTreeSet<u32> = lan.status("r2").unwrap()["load_sharing"]
        ["bucket_packets"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    let sources: Vec<u32> = (0..SOURCES)
        .filter(|i| {
            r2.contains(&u32::from(dataplane_user::router::bucket_of(
                testlab::vrrp_lab::source(false, *i),
            )))
        })
        .collect();
    assert!(sources.len() >= 4, "{sources:?}");

    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let routed_before = lan.status("r1").unwrap()["load_sharing"]["routed_packets"]
        .as_u64()
        .unwrap();
    let tx = sender_from(format!("/run/netns/{}", lan.ns("x")), sources, 6000, 8.0);
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();

    let s1 = lan.status("r1").unwrap()["load_sharing"].clone();
    let s2 = lan.status("r2").unwrap()["load_sharing"].clone();
    eprintln!(
        "r1: collections {} rate_rebalances {} owned {}; r2: reviews {} owned {}",
        s1["collections"], s1["rate_rebalances"], s1["owned"], s2["reviews_requested"], s2["owned"]
    );
    assert_eq!(s2["reviews_requested"], 1, "one request per hold-down");
    assert!(
        s1["collections"].as_u64().unwrap() >= 1 && s1["rate_rebalances"].as_u64().unwrap() >= 1
    );
    let routed_by_r1 = s1["routed_packets"].as_u64().unwrap() - routed_before;
    let total: u32 = sent.iter().sum();
    eprintln!("r1 routed {routed_by_r1} of {total} after the review");
    assert!(
        routed_by_r1 > total as u64 / 10,
        "the master took hot buckets"
    );
    let (lost, doubled) = count_loss(&sent, &seen);
    eprintln!("lost {lost}, routed twice {doubled}");
    assert_eq!((lost, doubled), (0, 0));
}

fn ls_config6(me: u8, routers: u8) -> String {
    let peers: Vec<String> = (1..=routers)
        .filter(|i| *i != me)
        .map(|i| format!("\"2001:db8:3::{i}\""))
        .collect();
    format!(
        "\n[router.load_sharing]\nkey = \"lab shared key\"\npeers = [{}]\nhello_ms = 50\n",
        peers.join(", ")
    )
}

/// The same over IPv6: an IPv6 virtual router (link-local adverts, the
/// IPv6 virtual MAC), the extension between the routers' global
/// addresses, buckets of the end systems' whole IPv6 addresses; a third
/// router joins under 10 kpps of IPv6 traffic and nothing is lost or
/// routed twice.
#[test]
fn ipv6_end_systems_are_shared_and_a_join_loses_and_doubles_nothing() {
    if !common::kernel_available("loadshare_ipv6") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new_ipv6(&format!("ep{}s", std::process::id() % 100000), 3, &exe).expect("lan");
    lan.add_wan(3).expect("wan");
    let (sent, seen) = join_under_traffic(&mut lan, ls_config6, true);
    let routed: Vec<u64> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| lan.counter(r, "router", "routed").unwrap())
        .collect();
    eprintln!("IPv6 routed per router: {routed:?}");
    assert!(
        routed.iter().all(|&n| n > 0),
        "each router routes a share: {routed:?}"
    );
    let (lost, doubled) = count_loss(&sent, &seen);
    let total: u32 = sent.iter().sum();
    eprintln!("IPv6: sent {total}, lost {lost}, routed twice {doubled}");
    assert!(total > 50_000, "{total}");
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "a join under 10 kpps of IPv6 loses and doubles nothing"
    );
}

/// Dual stack on one interface: an IPv4 load-sharing virtual router and
/// an IPv6 virtual router with the same VRID. The IPv6 one's macvlan must
/// not answer ARP for the IPv4 virtual address (Linux answers for any
/// local address by default), or the host would send its IPv4 traffic to
/// the IPv6 virtual MAC, past the filter, all through the master.
#[test]
fn an_ipv6_virtual_router_beside_does_not_take_the_ipv4_traffic() {
    if !common::kernel_available("loadshare_dual_stack") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}z", std::process::id() % 100000), 2, &exe).expect("lan");
    lan.add_wan(2).expect("wan");
    let v6 = "\n[[router]]\ninterface = \"eth0\"\nvrid = 51\nvirtual_addresses = [\"fe80::100/64\", \"2001:db8:3::100/64\"]\n";
    lan.start_edgeplane_with("r1", 200, 1000, &(ls_config(1, 2) + v6))
        .unwrap();
    lan.start_edgeplane_with("r2", 150, 1000, &(ls_config(2, 2) + v6))
        .unwrap();
    lan.wait_master("r1", &["r1", "r2"], true, Duration::from_secs(10))
        .unwrap();
    let t0 = Instant::now();
    while owned(&lan, "r2") == 0 || owned(&lan, "r1") + owned(&lan, "r2") != 256 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no balance");
        thread::sleep(Duration::from_millis(100));
    }
    // Both IPv6 instances up, and the IPv6 master holding its macvlan.
    let t0 = Instant::now();
    let v6_state = |r: &str| {
        edgeplane::client::call(&lan.socket(r), &control::api::Request::VrrpStatus)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["virtual_mac"] == "00:00:5e:00:02:33")
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
    };
    while v6_state("r1").as_deref() != Some("master") {
        assert!(t0.elapsed() < Duration::from_secs(6), "no IPv6 master");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(v6_state("r2").as_deref(), Some("backup"));
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let tx = sender(format!("/run/netns/{}", lan.ns("x")), 2000, 2.0);
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();
    thread::sleep(Duration::from_millis(300));
    let routed: Vec<u64> = ["r1", "r2"]
        .iter()
        .map(|r| lan.counter(r, "router", "routed").unwrap())
        .collect();
    let (lost, doubled) = count_loss(&sent, &seen);
    eprintln!("dual stack: routed per router {routed:?}, lost {lost}, doubled {doubled}");
    assert!(
        routed.iter().all(|&n| n > 0),
        "both routers route their share (the IPv4 traffic reaches the filter): {routed:?}"
    );
    assert_eq!((lost, doubled), (0, 0));
}

/// Three routers sharing, until every one owns its share of 256.
fn start_three(lan: &mut VrrpLan) {
    for (r, prio, me) in [("r1", 200u8, 1u8), ("r2", 150, 2), ("r3", 100, 3)] {
        lan.start_edgeplane_with(r, prio, 1000, &ls_config(me, 3))
            .unwrap();
    }
    lan.wait_master("r1", &["r1", "r2", "r3"], true, Duration::from_secs(10))
        .unwrap();
    wait_shared(lan, &["r1", "r2", "r3"]);
}

fn wait_shared(lan: &VrrpLan, routers: &[&str]) {
    let t0 = Instant::now();
    loop {
        let shares: Vec<u64> = routers.iter().map(|r| owned(lan, r)).collect();
        if shares.iter().sum::<u64>() == 256 && shares.iter().all(|s| *s >= 85) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no even split: {shares:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A backup restarted (SIGTERM, then started again) while 10 kpps flow:
/// leaving, it hands its buckets to the others; started again, it counts
/// its sequence numbers from 1 under a new incarnation, which its peers
/// take as new, and it gets its share back. Nothing is lost or doubled
/// across the restart.
#[test]
fn a_restarted_router_loses_and_doubles_nothing() {
    if !common::kernel_available("loadshare_restart") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}t", std::process::id() % 100000), 3, &exe).expect("lan");
    lan.add_wan(3).expect("wan");
    start_three(&mut lan);
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let tx = sender(format!("/run/netns/{}", lan.ns("x")), 10_000, 10.0);
    thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    lan.signal("r3", libc::SIGTERM);
    let left_in = t.elapsed();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ["r1", "r2"].iter().map(|r| owned(&lan, r)).sum::<u64>(),
        256,
        "r3 left only after its buckets were handed over"
    );
    thread::sleep(Duration::from_millis(500));
    lan.start_edgeplane_with("r3", 100, 1000, &ls_config(3, 3))
        .unwrap();
    wait_shared(&lan, &["r1", "r2", "r3"]);
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();
    let master = lan.status("r1").unwrap()["load_sharing"].clone();
    eprintln!(
        "r3 left in {left_in:?}; master: peer restarts {}, hand-offs {} done {} aborted, refused {} stale {} replayed",
        master["peer_restarts"], master["handoffs_done"], master["handoffs_aborted"], master["stale"], master["replayed"]
    );
    assert!(
        left_in < Duration::from_secs(3),
        "the hand-over took {left_in:?}"
    );
    assert_eq!(
        master["peer_restarts"], 1,
        "the master saw r3's new incarnation"
    );
    assert_eq!(
        lan.counter("r1", "load_sharing", "peer_restarts").unwrap(),
        1
    );
    let (lost, doubled) = count_loss(&sent, &seen);
    let total: u32 = sent.iter().sum();
    eprintln!("sent {total}, lost {lost}, routed twice {doubled}");
    assert_eq!((lost, doubled), (0, 0), "a restart under 10 kpps");
}

/// A backup SIGKILLed and started again: its share is lost only until the
/// master finds it dead, nothing is doubled, and the restarted router (its
/// sequence numbers from 1 again) gets its share back.
#[test]
fn a_crashed_router_started_again_gets_its_share_back() {
    if !common::kernel_available("loadshare_crash_restart") {
        return;
    }
    let _serial = common::serial();
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}k", std::process::id() % 100000), 3, &exe).expect("lan");
    lan.add_wan(3).expect("wan");
    start_three(&mut lan);
    let failed_share = owned(&lan, "r3") as f64 / 256.0;
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    thread::sleep(Duration::from_millis(200));
    let pps = 10_000u32;
    let tx = sender(format!("/run/netns/{}", lan.ns("x")), pps, 8.0);
    thread::sleep(Duration::from_secs(2));
    lan.signal("r3", libc::SIGKILL);
    thread::sleep(Duration::from_millis(1000));
    lan.start_edgeplane_with("r3", 100, 1000, &ls_config(3, 3))
        .unwrap();
    wait_shared(&lan, &["r1", "r2", "r3"]);
    let sent = tx.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    rx.join().unwrap();
    assert_eq!(
        lan.status("r1").unwrap()["load_sharing"]["peer_restarts"],
        1
    );
    let (lost, doubled) = count_loss(&sent, &seen);
    // hello_ms 50: found dead 300 ms after its last hello (not before its
    // filter's 200 ms lease ran out), then one hand-off. Before the
    // dead interval waited for the lease, the new owners routed held
    // packets the dead router had routed too.
    let outage_ms = lost as f64 / (pps as f64 * failed_share) * 1000.0;
    eprintln!("crashed share {failed_share:.2}: lost {lost} = {outage_ms:.0} ms of its traffic, routed twice {doubled}");
    assert_eq!(
        doubled, 0,
        "nothing routed by both the dead and a new owner"
    );
    assert!(outage_ms < 500.0, "outage {outage_ms:.0} ms");
}
