//! Process migration of an IPv6 service (seed 000 over IPv6): the lab of
//! tests/migration_netns.rs with the service at 2001:db8:99::80, over UDP
//! and over one TCP connection carried by TCP repair.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::migration_lab::Lab;

/// An IPv6 service: the terminal asks [2001:db8:99::80]:9000 through the
/// edge host over IPv6; the steering program's IPv6 map sends it to network
/// 1, the process moves to s2 (the agents move the /128 on `lo`), the
/// switch steers it to network 2 and releases what was held, and every
/// request is answered once with the count continuing.
#[test]
fn an_ipv6_service_moves_without_losing_a_request() {
    if !common::kernel_available("migration_netns_ipv6") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new_ipv6("6", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();
    const TOTAL: u64 = 300;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let term = testlab::migration_lab::terminal_to(
        format!("/run/netns/{}", lab.name("term")),
        lab.service_udp(),
        TOTAL,
        sent.clone(),
        stop.clone(),
    );
    let t0 = Instant::now();
    while sent.load(Ordering::SeqCst) < 100 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "terminal stalled before the migration: edge {}",
            lab.log("edge")
        );
        thread::sleep(Duration::from_millis(5));
    }
    let r = edgeplane::client::call(
        &lab.sock("edge"),
        &Request::MigrateStart {
            process: "counter".into(),
            to: "s2".into(),
            wait: true,
        },
    );
    let at_switch = sent.load(Ordering::SeqCst);
    let v = match r {
        Ok(v) => v,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            let _ = term.join();
            panic!(
                "IPv6 migration failed: {e}\nedge: {}\ns1: {}\ns2: {}",
                lab.log("edge"),
                lab.log("s1"),
                lab.log("s2")
            );
        }
    };
    assert_eq!(v["step"], "done", "{v}");
    let got = term.join().unwrap();
    let lost: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_none())
        .map(|(i, _)| i)
        .collect();
    assert!(
        lost.is_empty(),
        "requests {lost:?} were not answered (migration around request {at_switch}): {v}"
    );
    let counts: Vec<u64> = got.iter().map(|a| a.unwrap()).collect();
    assert_eq!(counts, (1..=TOTAL).collect::<Vec<_>>());
    assert!(
        at_switch > 100 && at_switch < TOTAL,
        "mid-stream ({at_switch})"
    );
    assert_eq!(lab.status("s2")["count"], TOTAL);
    // The IPv6 address moved: on s2's lo, gone from s1's.
    let has = |s: &str| {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.name(s),
                "ip",
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                "lo",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(testlab::migration_lab::SERVICE6)
    };
    assert!(has("s2") && !has("s1"), "the service address moved to s2");
    // Every request went through the steering program's IPv6 map: steered
    // to a network, or held during the switch and released after it.
    let stats = edgeplane::client::call(&lab.sock("edge"), &Request::Stats).unwrap();
    let count = |program: &str, name: &str| {
        stats
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["program"] == program && r["name"] == name)
            .map(|r| r["packets"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let (steered, held) = (count("steer", "steered"), count("steer", "held"));
    assert_eq!(
        steered + held,
        TOTAL,
        "steered {steered} + held {held}: {stats}"
    );
    assert_eq!(
        count("coordinator", "held_packets_released"),
        held,
        "what was held was released: {stats}"
    );

    // TCP over IPv6: one connection to [2001:db8:99::80]:9001 stays open
    // while the process moves s2 → s1 → s2; TCP repair carries the IPv6
    // socket, so every request on it is answered once, the count going on.
    const TCP_TOTAL: u64 = 150;
    let sent = Arc::new(AtomicU64::new(0));
    let tcp = testlab::migration_lab::tcp_terminal_to(
        format!("/run/netns/{}", lab.name("term")),
        lab.service_tcp(),
        TCP_TOTAL,
        sent.clone(),
    );
    let migrate_at = |n: u64, to: &str| {
        let t0 = Instant::now();
        while sent.load(Ordering::SeqCst) < n && t0.elapsed() < Duration::from_secs(20) {
            thread::sleep(Duration::from_millis(2));
        }
        edgeplane::client::call(
            &lab.sock("edge"),
            &Request::MigrateStart {
                process: "counter".into(),
                to: to.into(),
                wait: true,
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "IPv6 TCP, migration to {to}: {e}\nedge: {}\ns1: {}\ns2: {}",
                lab.log("edge"),
                lab.log("s1"),
                lab.log("s2")
            )
        })
    };
    let v = migrate_at(40, "s1");
    assert_eq!(v["step"], "done", "{v}");
    assert_eq!(
        lab.status("s1")["tcp"],
        1,
        "the IPv6 connection was restored on s1"
    );
    let v = migrate_at(90, "s2");
    assert_eq!(v["step"], "done", "{v}");
    let got = tcp.join().unwrap();
    assert_eq!(
        got,
        (TOTAL + 1..=TOTAL + TCP_TOTAL)
            .map(Some)
            .collect::<Vec<_>>(),
        "one IPv6 TCP connection, answered throughout, count continuing"
    );
    assert!(has("s2") && !has("s1"), "the service address is back on s2");
}
