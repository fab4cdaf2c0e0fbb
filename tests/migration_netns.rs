//! Process migration between networks (seed 000) in namespaces: a
//! terminal `term` (10.7.0.2) talks to the counter service at 10.99.0.80
//! through the edge host `edge`, whose XDP steering program sends the
//! service's packets to network 1 (`s1`, 10.8.1.10) or network 2 (`s2`,
//! 10.8.2.10). The coordinator moves the process from s1 to s2 while the
//! terminal keeps asking; every request must be answered once, with the
//! count continuing. Then six failed moves on (refused switch twice, exceeded
//! deadline, destination cannot restore, destination unreachable, source
//! agent dead) must each roll back with the service still answering. The
//! move is asked for on server 1 (its agent relays it to the coordinator);
//! s1's agent freezes its counter through cgroup v2, s2's with SIGSTOP, so
//! the rollbacks from s2 also show that a stopped process is continued.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::{
    migration_lab::{terminal, Lab},
    topo::enter_netns,
};

/// One TCP connection from the terminal, kept open: each request sent on
/// the channel goes out as a line; its answer's count comes back.
fn tcp_probe(ns: String) -> (mpsc::Sender<String>, mpsc::Receiver<Option<u64>>) {
    let (tx, rx) = mpsc::channel::<String>();
    let (atx, arx) = mpsc::channel();
    thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let mut c = testlab::migration_lab::TcpClient::connect(Duration::from_secs(5)).unwrap();
        for req in rx {
            if atx.send(c.ask(&req)).is_err() {
                return;
            }
        }
    });
    (tx, arx)
}

#[test]
fn process_moves_to_network_2_without_losing_a_request() {
    if !common::kernel_available("migration_netns") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new("t", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();

    let servers = edgeplane::client::call(&lab.sock("edge"), &Request::Servers).unwrap();
    assert_eq!(servers.as_array().map(|a| a.len()), Some(6), "{servers}");
    let networks = edgeplane::client::call(&lab.sock("edge"), &Request::Networks).unwrap();
    assert_eq!(networks[1]["name"], "net2", "{networks}");
    assert_eq!(
        networks[1]["controller"], "127.0.0.1:7700",
        "the store keeps each network's controller: {networks}"
    );
    assert_eq!(
        (networks[4]["name"].as_str(), networks[4]["via"].as_str()),
        (Some("net5"), Some("eth2")),
        "and its egress: {networks}"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            lab.cgroup.is_some(),
            "CI=true: cgroup v2 must be mounted (the agent freezes s1's counter there)"
        );
    }

    // Unknown destination, and a destination behind another controller:
    // refused before anything moves.
    let e = edgeplane::client::call(
        &lab.sock("edge"),
        &Request::MigrateStart {
            process: "counter".into(),
            to: "s9".into(),
            wait: true,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("s9"), "{e}");
    let e = edgeplane::client::call(
        &lab.sock("edge"),
        &Request::MigrateStart {
            process: "counter".into(),
            to: "s5".into(),
            wait: true,
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("different connection controllers"),
        "{e}"
    );
    assert_eq!(lab.status("s1")["count"], 0, "nothing moved");

    const TOTAL: u64 = 400;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let term = terminal(
        format!("/run/netns/{}", lab.name("term")),
        TOTAL,
        sent.clone(),
        stop.clone(),
    );
    let t0 = Instant::now();
    while sent.load(Ordering::SeqCst) < 100 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "terminal stalled before the migration"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // Asked on server 1: its agent sends the request to the coordinator
    // (claim 1).
    let r = edgeplane::client::call(
        &lab.sock("s1"),
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
                "migration failed: {e}\nedge: {}\ns1: {}\ns2: {}",
                lab.log("edge"),
                lab.log("s1"),
                lab.log("s2")
            );
        }
    };
    assert_eq!(v["step"], "done", "{v}");
    assert!(
        v["log"][0]
            .as_str()
            .unwrap_or("")
            .contains("asked coordinator"),
        "{v}"
    );
    let got = term.join().unwrap();
    assert_eq!(got.len() as u64, TOTAL);
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
    assert_eq!(
        counts,
        (1..=TOTAL).collect::<Vec<_>>(),
        "the count must continue across the move, each request counted once"
    );
    // The state lives on server 2 now; server 1's copy stays frozen in its
    // cgroup with the count it exported.
    assert_eq!(lab.status("s2")["count"], TOTAL);
    if let Some(g) = &lab.cgroup {
        let events = std::fs::read_to_string(g.join("cgroup.events")).unwrap();
        assert!(
            events.lines().any(|l| l == "frozen 1"),
            "s1's counter must be frozen after the move: {events}"
        );
    }
    assert!(
        at_switch > 100 && at_switch < TOTAL,
        "the migration happened mid-stream ({at_switch})"
    );
    let status = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
    assert_eq!(status[0]["to"], "s2", "{status}");

    // TCP: one connection stays open while the process moves s2 → s1 → s2;
    // the kernel's TCP repair carries it, so every request on it is
    // answered once with the count continuing.
    const TCP_TOTAL: u64 = 150;
    let sent = Arc::new(AtomicU64::new(0));
    let tcp = testlab::migration_lab::tcp_terminal(
        format!("/run/netns/{}", lab.name("term")),
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
                "TCP phase, migration to {to}: {e}\nedge: {}\ns1: {}\ns2: {}",
                lab.log("edge"),
                lab.log("s1"),
                lab.log("s2")
            )
        })
    };
    migrate_at(40, "s1");
    assert_eq!(
        lab.status("s1")["tcp"],
        1,
        "the connection was restored on s1"
    );
    // To s2 again, but as network 5, which the controller learns from the
    // switch request.
    let v = migrate_at(90, "s2b");
    assert_eq!(v["step"], "done", "{v}");
    assert!(
        lab.log("edge")
            .contains("network learned from a switch request"),
        "{}",
        lab.log("edge")
    );
    let got = tcp.join().unwrap();
    assert_eq!(
        got,
        (TOTAL + 1..=TOTAL + TCP_TOTAL)
            .map(Some)
            .collect::<Vec<_>>(),
        "one TCP connection, answered throughout, count continuing"
    );
    let t0 = Instant::now();
    while lab.status("s2")["tcp"] != 0 && t0.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lab.status("s2")["tcp"], 0, "the terminal closed it");

    // A TCP connection stays open through the failures below: each rollback
    // must give it back to s2 (out of repair mode), answering on it.
    let (probe, answers) = tcp_probe(format!("/run/netns/{}", lab.name("term")));

    // Failure injection, moving on from s2. Each must roll back: the
    // process runs on s2 with its state and the terminal is answered.
    let mut next = TOTAL + TCP_TOTAL;
    let mut answered_after = |lab: &Lab, what: &str| {
        let got = terminal(
            format!("/run/netns/{}", lab.name("term")),
            20,
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        )
        .join()
        .unwrap();
        let counts: Vec<Option<u64>> = got;
        let want: Vec<Option<u64>> = (next + 1..=next + 20).map(Some).collect();
        assert_eq!(
            counts, want,
            "s2 must serve on with its count after: {what}"
        );
        probe.send(format!("p{next}")).unwrap();
        let a = answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            a,
            Some(next + 21),
            "the open TCP connection must be answered after: {what}"
        );
        next += 21;
    };
    let migrate = |lab: &Lab, to: &str| {
        edgeplane::client::call(
            &lab.sock("edge"),
            &Request::MigrateStart {
                process: "counter".into(),
                to: to.into(),
                wait: true,
            },
        )
    };
    // 1. The switch is refused (the controller has no network 3); by then
    //    s2 had given its address away, so the rollback must restore it.
    let e = migrate(&lab, "s3").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a refused switch");
    // 1b. The same after server 1 took the checkpoint and the address: it
    //     must give the address up again (its copy stays paused).
    let e = migrate(&lab, "s4").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    let lo = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.name("s1"),
            "ip",
            "-4",
            "addr",
            "show",
            "dev",
            "lo",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&lo.stdout).contains("10.99.0.80"),
        "s1 kept the service address: {}",
        String::from_utf8_lossy(&lo.stdout)
    );
    answered_after(&lab, "a refused switch after the destination restored");
    // 1c. The edge host's daemon (coordinator and controller) is killed
    //     mid-migration and started again: the steering it had survives in
    //     the pinned maps, and the restarted coordinator finds the
    //     unfinished migration in its store and rolls it back.
    lab.signal("daemon-s1", "STOP");
    let hung = thread::spawn({
        let sock = lab.sock("edge");
        move || {
            edgeplane::client::call(
                &sock,
                &Request::MigrateStart {
                    process: "counter".into(),
                    to: "s1".into(),
                    wait: true,
                },
            )
        }
    });
    thread::sleep(Duration::from_millis(300));
    lab.restart_edge();
    lab.signal("daemon-s1", "CONT");
    assert!(
        hung.join().unwrap().is_err(),
        "the request died with the daemon"
    );
    let t0 = Instant::now();
    let last = loop {
        let all = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
        let last = all.as_array().unwrap().last().cloned().unwrap();
        if last["step"] == "rolled_back" || t0.elapsed() > Duration::from_secs(15) {
            break last;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(last["step"], "rolled_back", "{last}\n{}", lab.log("edge"));
    assert!(
        last["failure"]
            .as_str()
            .unwrap_or("")
            .contains("coordinator restarted"),
        "{last}"
    );
    answered_after(&lab, "a coordinator restart mid-migration");
    // 2. Server 1's agent hangs (stopped): the deadline passes. Meanwhile a
    //    second request for the same process is refused, not run twice.
    lab.signal("daemon-s1", "STOP");
    let e = thread::scope(|sc| {
        let first = sc.spawn(|| migrate(&lab, "s1").unwrap_err());
        thread::sleep(Duration::from_millis(500));
        let second = migrate(&lab, "s1").unwrap_err();
        assert!(second.to_string().contains("already running"), "{second}");
        first.join().unwrap()
    });
    lab.signal("daemon-s1", "CONT");
    assert!(
        e.to_string().contains("rolled back") && e.to_string().contains("deadline"),
        "{e}"
    );
    answered_after(&lab, "an exceeded deadline");
    // 3. Server 1 cannot take the checkpoint (its process is gone).
    lab.kill("counter-s1");
    let _ = std::fs::remove_file(lab.ctl("s1"));
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a destination that cannot restore");
    // 4. Server 1 is unreachable (its agent is killed).
    lab.kill("daemon-s1");
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(
        e.to_string().contains("rolled back") && e.to_string().contains("10.8.1.10:7600"),
        "{e}"
    );
    answered_after(&lab, "an unreachable destination agent");
    // 5. The source's agent is killed: nothing was paused, nothing moves.
    lab.kill("daemon-s2");
    let e = migrate(&lab, "s1").unwrap_err();
    assert!(e.to_string().contains("rolled back"), "{e}");
    answered_after(&lab, "a dead source agent");
    let status = edgeplane::client::call(&lab.sock("edge"), &Request::MigrateStatus).unwrap();
    let steps: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "done",
            "done",
            "done",
            "rolled_back",
            "rolled_back",
            "rolled_back",
            "rolled_back",
            "rolled_back",
            "rolled_back",
            "rolled_back"
        ],
        "{status}"
    );
    // The CLI shows the same, for people and for scripts.
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .arg("--socket")
            .arg(lab.sock("edge"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let text = cli(&["migrate", "status"]);
    assert!(
        text.contains("migration 1 of counter: s1 -> s2: done") && text.contains("rolled_back"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli(&["migrate", "status", "--json"])).unwrap();
    assert!(
        json[1]["released"].is_u64() && json[1]["pause_us"].is_u64(),
        "{json}"
    );
    // Without --wait the command returns once the migration has started;
    // the status then follows it to its end (here a rollback: the source
    // agent is dead).
    let started: serde_json::Value =
        serde_json::from_str(&cli(&["migrate", "counter", "--to", "s1", "--json"])).unwrap();
    assert_eq!(started["step"], "starting", "{started}");
    let t0 = Instant::now();
    let end = loop {
        let all: serde_json::Value =
            serde_json::from_str(&cli(&["migrate", "status", "--json"])).unwrap();
        let m = all
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == started["id"])
            .cloned()
            .unwrap();
        if m["step"] == "rolled_back"
            || m["step"] == "done"
            || t0.elapsed() > Duration::from_secs(15)
        {
            break m;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(end["step"], "rolled_back", "{end}");
    // --wait prints each step as it happens and fails on a rollback.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .arg("--socket")
        .arg(lab.sock("edge"))
        .args(["migrate", "counter", "--to", "s1", "--wait"])
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        !o.status.success() && err.contains("rolled back"),
        "{out}\n{err}"
    );
    assert!(
        out.contains("migration start → agent s2") && out.contains("rolling back"),
        "{out}"
    );
    // The controller shows up in status and its counters in stats.
    let status = cli(&["status"]);
    assert!(
        status.contains("connection controller on eth0") && status.contains("10.99.0.80 → network"),
        "{status}"
    );
    let stats: serde_json::Value = serde_json::from_str(&cli(&["stats", "--json"])).unwrap();
    let held = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["program"] == "steer" && r["name"] == "held")
        .cloned()
        .unwrap();
    assert!(held["packets"].as_u64().unwrap() > 0, "{held}");
    assert!(cli(&["servers"]).contains("s3"));
    assert!(cli(&["networks", "--json"]).contains("net3"));
    // The store changes at runtime, refusing what would strand a process.
    assert!(cli(&[
        "networks",
        "add",
        "net6",
        "--id",
        "6",
        "--via",
        "eth1",
        "--next-hop-mac",
        "02:00:00:00:01:0a"
    ])
    .contains("net6 added"));
    assert!(cli(&[
        "servers",
        "add",
        "s6",
        "--address",
        "10.8.1.10",
        "--network",
        "net6",
        "--agent",
        "10.8.1.10:7600"
    ])
    .contains("s6 added"));
    assert!(
        cli(&["networks"])
            .contains("net6         controller 127.0.0.1:7700 via eth1 to 02:00:00:00:01:0a"),
        "{}",
        cli(&["networks"])
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .arg("--socket")
        .arg(lab.sock("edge"))
        .args(["servers", "remove", "s2b"])
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("counter run on \"s2b\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    cli(&["servers", "remove", "s6"]);
    cli(&["networks", "remove", "net6"]);
    assert!(!cli(&["servers"]).contains("s6"));
}

/// `edgeplane reload` applies what it can of `[migration]` live: the
/// coordinator's servers and networks (a new one usable at once, a
/// removed one gone), the controller's networks and services, the
/// agent's processes; it refuses what needs a restart, and a process
/// being migrated, changing nothing.
#[test]
fn reload_applies_migration_changes_live() {
    if !common::kernel_available("migration_netns") {
        return;
    }
    let _serial = common::serial();
    let mut lab = Lab::new("r", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    lab.start();
    let call = |role: &str, r: &Request| edgeplane::client::call(&lab.sock(role), r);
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let edge = std::fs::read_to_string(lab.config("edge")).unwrap();

    // The agent on s1 learns a second process; naming the one being
    // migrated away (its pause held up: the counter is stopped) is refused.
    let s1 = std::fs::read_to_string(lab.config("s1")).unwrap();
    let second = "\n[[migration.agent.process]]\nname = \"counter2\"\ncontrol = \"/run/nowhere.ctl\"\nfreeze = false\n";
    std::fs::write(lab.config("s1"), format!("{s1}{second}")).unwrap();
    let m = call("s1", &Request::Reload).unwrap();
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("agent: process counter2 added"),
        "{m}"
    );
    let st = call("s1", &Request::Status).unwrap();
    assert!(st.to_string().contains("counter2"), "{st}");
    lab.signal("counter-s1", "STOP");
    let moving = thread::spawn({
        let sock = lab.sock("edge");
        move || {
            edgeplane::client::call(
                &sock,
                &Request::MigrateStart {
                    process: "counter".into(),
                    to: "s2".into(),
                    wait: true,
                },
            )
        }
    });
    thread::sleep(Duration::from_millis(500));
    let without_counter = s1.replace("name = \"counter\"", "name = \"counter3\"");
    std::fs::write(lab.config("s1"), format!("{without_counter}{second}")).unwrap();
    let e = call("s1", &Request::Reload).unwrap_err();
    assert!(
        e.to_string().contains("counter is being migrated")
            && e.to_string().contains("nothing was changed"),
        "{e}"
    );
    lab.signal("counter-s1", "CONT");
    let v = moving
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("the held-up migration: {e}\n{}", lab.log("s1")));
    assert_eq!(v["step"], "done", "{v}");
    let st = call("s1", &Request::Status).unwrap();
    assert!(
        !st.to_string().contains("counter3"),
        "the refused reload changed nothing: {st}"
    );

    // The edge: a new network and a server on it, another network and the
    // server on it removed, a controller network and service added.
    let grown = edge.replace("database =", "timeout_ms = 4000\ndatabase =")
        + "\n[[migration.coordinator.network]]\nname = \"net7\"\nid = 7\ncontroller = \"127.0.0.1:7700\"\nvia = \"eth1\"\nnext_hop_mac = \"02:00:00:00:01:0a\"\n"
        + "[[migration.coordinator.server]]\nname = \"s7\"\naddress = \"10.8.1.10\"\nnetwork = \"net7\"\nagent = \"10.8.1.10:7600\"\n";
    let grown = grown.replace(
        "[[migration.controller.service]]",
        "[[migration.controller.network]]\nid = 6\nname = \"net6\"\nvia = \"eth1\"\nnext_hop_mac = \"02:00:00:00:01:0a\"\n[[migration.controller.service]]\naddress = \"10.99.0.81\"\nnetwork = 6\n[[migration.controller.service]]",
    );
    let cut = |s: &str, from: &str, to: &str| {
        let a = s.find(from).unwrap();
        let b = a + s[a..].find(to).unwrap();
        format!("{}{}", &s[..a], &s[b..])
    };
    // net4 and s5 (behind another controller) go.
    let grown = cut(
        &grown,
        "# Behind another edge host's controller",
        "# Known to the coordinator but not to the controller",
    );
    std::fs::write(lab.config("edge"), &grown).unwrap();
    let m = call("edge", &Request::Reload)
        .unwrap_or_else(|e| panic!("reload: {e}\n{}", lab.log("edge")));
    let m = m["message"].as_str().unwrap().to_string();
    for part in [
        "coordinator: server s5 removed",
        "network net4 removed",
        "network net7 added",
        "server s7 added",
        "timeout_ms 3000 → 4000",
        "controller: network net6 (6) via eth1 programmed",
    ] {
        assert!(m.contains(part), "{part:?} in {m}");
    }
    let servers = names(call("edge", &Request::Servers).unwrap());
    assert!(
        servers.contains(&"s7".to_string()) && !servers.contains(&"s5".to_string()),
        "{servers:?}"
    );
    let networks = names(call("edge", &Request::Networks).unwrap());
    assert!(
        networks.contains(&"net7".to_string()) && !networks.contains(&"net4".to_string()),
        "{networks:?}"
    );
    let st = call("edge", &Request::Status).unwrap();
    let services = st["migration"]["controller"]["services"].to_string();
    assert!(
        services.contains("10.99.0.81") && services.contains("10.99.0.80"),
        "{st}"
    );
    assert!(
        st["migration"]["controller"]["networks"]
            .as_array()
            .unwrap()
            .contains(&6.into()),
        "{st}"
    );
    // The new server is usable at once: the counter moves s2 → s7 (s1's
    // agent, behind network 7, which the controller learns from the
    // switch request).
    let v = call(
        "edge",
        &Request::MigrateStart {
            process: "counter".into(),
            to: "s7".into(),
            wait: true,
        },
    )
    .unwrap_or_else(|e| panic!("to s7: {e}\n{}", lab.log("edge")));
    assert_eq!(v["step"], "done", "{v}");
    let got = terminal(
        format!("/run/netns/{}", lab.name("term")),
        5,
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    )
    .join()
    .unwrap();
    assert!(
        got.iter().all(Option::is_some),
        "the service answers after the move: {got:?}"
    );

    // What needs a restart is refused, naming the key, and nothing of the
    // file is applied (here also a new server).
    for (key, changed) in [
        (
            "migration.controller.interface",
            grown.replace("interface = \"eth0\"", "interface = \"eth1\""),
        ),
        (
            "migration.coordinator.database",
            grown.replace("coordinator.db", "other.db"),
        ),
        (
            "migration.controller.listen",
            grown.replace("listen = \"127.0.0.1:7700\"", "listen = \"127.0.0.1:7701\""),
        ),
    ] {
        let changed = changed + "[[migration.coordinator.server]]\nname = \"s8\"\naddress = \"10.8.1.10\"\nnetwork = \"net1\"\nagent = \"10.8.1.10:7600\"\n";
        std::fs::write(lab.config("edge"), changed).unwrap();
        let e = call("edge", &Request::Reload).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{key} changed; restart the daemon")),
            "{key}: {e}"
        );
        assert!(
            !names(call("edge", &Request::Servers).unwrap()).contains(&"s8".to_string()),
            "{key}: nothing applied"
        );
    }
    // Removing the server the counter runs on is refused as `servers
    // remove` refuses it, and nothing changes.
    let stranded = grown.replace("name = \"s7\"", "name = \"s9\"");
    std::fs::write(lab.config("edge"), stranded).unwrap();
    let e = call("edge", &Request::Reload).unwrap_err().to_string();
    assert!(
        e.contains("migration.coordinator.server \"s7\"") && e.contains("counter run on \"s7\""),
        "{e}"
    );
    let servers = names(call("edge", &Request::Servers).unwrap());
    assert!(
        servers.contains(&"s7".to_string()) && !servers.contains(&"s9".to_string()),
        "{servers:?}"
    );
}
