//! Process migration with every daemon unprivileged (issue 16): the edge
//! host's controller and coordinator, and both servers' agents, run as
//! nobody with only the capabilities src/caps.rs names for them
//! (`migration_lab::unprivileged_caps`: the controller's XDP and AF_XDP
//! ones, an agent's CAP_NET_ADMIN for the service address), through
//! setpriv, and so do the counter services. s1's agent freezes its counter
//! through a cgroup delegated to nobody, s2's would SIGSTOP its own
//! user's process. The terminal keeps asking while the process moves from
//! s1 to s2 and back; every request is answered once, the count going on.

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
use testlab::migration_lab::{terminal, unprivileged_caps, Lab, NOBODY};

/// The capability set (a CapEff mask) setpriv's "+bpf,+net_admin" names.
fn mask(caps: &str) -> u64 {
    caps.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| match c.trim_start_matches('+') {
            "net_admin" => 12,
            "net_raw" => 13,
            "ipc_lock" => 14,
            "perfmon" => 38,
            "bpf" => 39,
            other => panic!("no number for {other}"),
        })
        .fold(0, |m, bit| m | 1u64 << bit)
}

/// (uids, CapEff) of a process, from /proc.
fn identity(pid: u32) -> (Vec<u32>, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} in {status}"))
            .trim()
            .to_string()
    };
    let uids = field("Uid:")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    (uids, u64::from_str_radix(&field("CapEff:"), 16).unwrap())
}

#[test]
fn a_process_moves_and_back_with_every_daemon_unprivileged() {
    if !common::kernel_available("migration_unprivileged_netns") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new_unprivileged("u", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();
    for role in ["edge", "s1", "s2"] {
        let pid = lab.pid(&format!("daemon-{role}")).unwrap();
        let (uids, eff) = identity(pid);
        assert_eq!(
            uids,
            vec![NOBODY; 4],
            "{role}'s daemon (pid {pid}) runs as nobody"
        );
        assert_eq!(
            eff,
            mask(unprivileged_caps(role)),
            "{role}'s daemon has exactly {}",
            unprivileged_caps(role)
        );
    }
    for s in ["s1", "s2"] {
        let (uids, eff) = identity(lab.pid(&format!("counter-{s}")).unwrap());
        assert_eq!((uids, eff), (vec![NOBODY; 4], 0), "{s}'s counter");
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(lab.cgroup.is_some(), "CI=true: cgroup v2 must be mounted");
    }

    const TOTAL: u64 = 300;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let term = terminal(
        format!("/run/netns/{}", lab.name("term")),
        TOTAL,
        sent.clone(),
        stop.clone(),
    );
    let mut moves = Vec::new();
    for (at, to) in [(80, "s2"), (180, "s1")] {
        let t0 = Instant::now();
        while sent.load(Ordering::SeqCst) < at {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the terminal stalled"
            );
            thread::sleep(Duration::from_millis(5));
        }
        let r = edgeplane::client::call(
            &lab.sock("edge"),
            &Request::MigrateStart {
                process: "counter".into(),
                to: to.into(),
                wait: true,
            },
        );
        match r {
            Ok(v) => {
                assert_eq!(v["step"], "done", "to {to}: {v}");
                moves.push(sent.load(Ordering::SeqCst));
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                let _ = term.join();
                panic!(
                    "migration to {to} as nobody failed: {e}\nedge: {}\ns1: {}\ns2: {}",
                    lab.log("edge"),
                    lab.log("s1"),
                    lab.log("s2")
                );
            }
        }
    }
    let got = term.join().unwrap();
    assert_eq!(got.len() as u64, TOTAL);
    let counts: Vec<Option<u64>> = got;
    assert_eq!(
        counts,
        (1..=TOTAL).map(Some).collect::<Vec<_>>(),
        "every request answered once, the count going on across both moves (at {moves:?})"
    );
    assert!(
        moves.iter().all(|m| *m < TOTAL),
        "both moves happened mid-stream: {moves:?}"
    );
    // Back on s1: its counter was frozen by nobody through the cgroup and
    // thawed again, and holds the count.
    assert_eq!(lab.status("s1")["count"], TOTAL);
    if let Some(g) = &lab.cgroup {
        let events = std::fs::read_to_string(g.join("cgroup.events")).unwrap();
        assert!(events.lines().any(|l| l == "frozen 0"), "{events}");
    }
    println!(
        "migration as nobody: s1 -> s2 at request {}, back at {}; {TOTAL} of {TOTAL} answered in order",
        moves[0], moves[1]
    );
}
