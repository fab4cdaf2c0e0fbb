//! A migration agent SIGKILLed at each step of a move (issue 15), on
//! the namespace lab of `migration_netns`: s1's agent (the source, which
//! freezes its counter through cgroup v2) or s2's (the destination)
//! kills itself at a named step (`EDGEPLANE_FAILPOINT`), is started
//! again at once, and takes up its state file. The coordinator's
//! rollback reaches it: every time the service address ends on exactly
//! one server (s1), s1's counter runs (not paused, not frozen) with its
//! count, and nothing is left recorded as half done.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::migration_lab::{terminal, Lab};

/// The servers whose namespace holds the service address.
fn holders(lab: &Lab) -> Vec<&'static str> {
    ["s1", "s2"]
        .into_iter()
        .filter(|s| {
            let out = std::process::Command::new("ip")
                .args(["-n", &lab.name(s), "-o", "-4", "addr", "show"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).contains(" 10.99.0.80/")
        })
        .collect()
}

/// Whether server `s`'s counter is held still (cgroup frozen or stopped).
fn held_still(lab: &Lab, s: &str) -> bool {
    if s == "s1" {
        if let Some(g) = &lab.cgroup {
            let ev = std::fs::read_to_string(g.join("cgroup.events")).unwrap();
            if ev.lines().any(|l| l == "frozen 1") {
                return true;
            }
        }
    }
    let pid = std::fs::read_to_string(lab.dir.join(format!("{s}.pid"))).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap();
    let state = stat.rsplit_once(')').unwrap().1.trim_start();
    state.starts_with('T')
}

#[test]
fn an_agent_killed_at_each_step_still_rolls_back_to_one_server() {
    if !common::kernel_available("migration_agent_crash") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new("k", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();
    let points = [
        ("s1", "agent:source:after:pause"),
        ("s1", "agent:source:after:export"),
        ("s1", "agent:source:before:freeze"),
        ("s1", "agent:source:after:freeze"),
        ("s1", "agent:source:after:transfer"),
        ("s1", "agent:source:before:del_address"),
        ("s1", "agent:source:after:del_address"),
        ("s2", "agent:destination:after:thaw"),
        ("s2", "agent:destination:after:pause"),
        ("s2", "agent:destination:after:add_address"),
        ("s2", "agent:destination:after:import"),
        ("s2", "agent:destination:before:resume"),
        ("s2", "agent:destination:after:resume"),
    ];
    let mut count = lab.status("s1")["count"].as_u64().unwrap();
    for (server, point) in points {
        lab.restart_agent(server, Some(point));
        let t0 = Instant::now();
        let sock = lab.sock("edge");
        let asked = thread::spawn(move || {
            edgeplane::client::call(
                &sock,
                &Request::MigrateStart {
                    process: "counter".into(),
                    to: "s2".into(),
                    wait: true,
                },
            )
        });
        let tag = format!("daemon-{server}");
        assert!(
            lab.exited_within(&tag, Duration::from_secs(20)),
            "{point}: the agent was not killed there\n{}",
            lab.log(server)
        );
        let killed = t0.elapsed();
        lab.restart_agent(server, None);
        let e = asked
            .join()
            .unwrap()
            .expect_err("a move whose agent died rolls back");
        let took = t0.elapsed();
        assert!(e.to_string().contains("rolled back"), "{point}: {e}");
        let all = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
        let last = all.as_array().unwrap().last().cloned().unwrap();
        assert_eq!(last["step"], "rolled_back", "{point}: {last}");
        let failure = last["failure"].as_str().unwrap_or("");
        assert!(
            !failure.contains("rollback incomplete"),
            "{point}: {failure}\n{}: {}",
            server,
            lab.log(server)
        );
        assert_eq!(holders(&lab), ["s1"], "{point}: the service address");
        assert!(
            !held_still(&lab, "s1"),
            "{point}: s1's counter still frozen"
        );
        assert!(
            !held_still(&lab, "s2"),
            "{point}: s2's counter still stopped"
        );
        let st = lab.status("s1");
        assert_eq!(st["paused"], false, "{point}: s1's counter paused: {st}");
        let got = terminal(
            format!("/run/netns/{}", lab.name("term")),
            10,
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        )
        .join()
        .unwrap();
        let want: Vec<Option<u64>> = (count + 1..=count + 10).map(Some).collect();
        assert_eq!(got, want, "{point}: s1 serves on with its count");
        count += 10;
        let record = std::fs::read_to_string(lab.dir.join(format!("{server}-agent-state.json")))
            .unwrap_or_else(|_| "{}".into());
        assert_eq!(record.trim(), "{}", "{point}: left recorded: {record}");
        eprintln!(
            "{point:<40} killed after {:>4} ms, rolled back after {:>5} ms, served by s1 only",
            killed.as_millis(),
            took.as_millis()
        );
    }
    // And the move itself still works, with no failpoint.
    let v = edgeplane::client::call(
        &lab.sock("edge"),
        &Request::MigrateStart {
            process: "counter".into(),
            to: "s2".into(),
            wait: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.log("edge")));
    assert_eq!(v["step"], "done", "{v}");
    assert_eq!(holders(&lab), ["s2"]);
    eprintln!(
        "{} kill points, each rolled back to one server",
        points.len()
    );
}
