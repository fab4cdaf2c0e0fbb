//! Issue 12 with a real etcd (three members of Debian's etcd-server) and
//! real daemons in namespaces: three LBs take their gateway set from
//! etcd, gateways register themselves under leases, and every change
//! (join, leave, weight, drain, SIGKILL) ends with every LB's live table
//! (read from its BPF maps) being the one the new set gives.

mod common;

use std::time::Duration;

use testlab::cluster_lab::ClusterLab;

const TTL: u64 = 2;

fn prefix(tag: &str) -> String {
    format!("ep{tag}{}", std::process::id() % 100_000)
}

#[test]
fn every_lb_follows_the_gateway_set_in_etcd() {
    if !common::kernel_available("every_lb_follows_the_gateway_set_in_etcd") {
        return;
    }
    let _serial = common::serial();
    let mut lab = ClusterLab::build(&prefix("k"), 3, 3, 3, TTL).expect("lab");
    let within = Duration::from_secs(15);
    for lb in 1..=3 {
        lab.start_lb(lb).expect("lb");
    }
    lab.start_gateway(0, 1).expect("gw1");
    lab.start_gateway(1, 1).expect("gw2");
    lab.wait_tables(&[("gw1", 1), ("gw2", 1)], within)
        .expect("two registered gateways");

    // A gateway joins.
    lab.start_gateway(2, 1).expect("gw3");
    lab.wait_tables(&[("gw1", 1), ("gw2", 1), ("gw3", 1)], within)
        .expect("gw3 joined");
    let st = lab.cli_json(&["status"]).expect("status");
    assert_eq!(st["agree"], true, "{st:#}");
    assert_eq!(st["lbs"].as_array().unwrap().len(), 3, "{st:#}");
    assert_eq!(
        st["members"].as_array().unwrap().len(),
        6,
        "3 LBs and 3 gateways: {st:#}"
    );

    // An operator changes a weight, with compare-and-swap.
    let w = lab
        .cli_json(&["gateways", "weight", "gw2", "3"])
        .expect("weight");
    assert!(w["revision"].as_i64().unwrap() > 0, "{w}");
    lab.wait_tables(&[("gw1", 1), ("gw2", 3), ("gw3", 1)], within)
        .expect("weight 3");

    // A drain: out of the Maglev table (weight 0), entry kept.
    lab.cli_json(&["gateways", "drain", "gw1", "--timeout", "60"])
        .expect("drain");
    lab.wait_tables(&[("gw1", 0), ("gw2", 3), ("gw3", 1)], within)
        .expect("gw1 draining");
    lab.cli_json(&["gateways", "undrain", "gw1"])
        .expect("undrain");
    lab.wait_tables(&[("gw1", 1), ("gw2", 3), ("gw3", 1)], within)
        .expect("gw1 back");

    // A gateway leaves cleanly (SIGTERM revokes its lease at once).
    lab.topo.stop_daemon("g2");
    let t = lab
        .wait_tables(&[("gw1", 1), ("gw2", 3)], Duration::from_secs(TTL))
        .expect("gw3 left before its lease would have run out");
    eprintln!("clean leave reached every LB in {t:?}");

    // SIGKILL: nothing is revoked; the lease runs out.
    lab.topo.kill_daemon("g1");
    let t = lab
        .wait_tables(&[("gw1", 1)], Duration::from_secs(TTL * 4))
        .expect("gw2 gone after its lease");
    eprintln!("SIGKILLed gateway left every LB table {t:?} after the kill (TTL {TTL} s)");

    // The record outlives the lease: the operator's weight comes back
    // with the gateway.
    lab.start_gateway(1, 1).expect("gw2 again");
    lab.wait_tables(&[("gw1", 1), ("gw2", 3)], within)
        .expect("gw2 back with weight 3");
    let st = lab.cli_json(&["status"]).expect("status");
    assert_eq!(st["agree"], true, "{st:#}");
}

#[test]
fn etcd_outages_change_no_table_and_the_lbs_catch_up() {
    if !common::kernel_available("etcd_outages_change_no_table_and_the_lbs_catch_up") {
        return;
    }
    let _serial = common::serial();
    // Two gateway namespaces (sinks: their kernels receive what the LBs
    // send to their MACs) behind static records.
    let mut lab = ClusterLab::build(&prefix("o"), 3, 2, 3, TTL).expect("lab");
    let within = Duration::from_secs(15);
    for lb in 1..=3 {
        lab.start_lb(lb).expect("lb");
    }
    for (n, mac) in [("gw1", "02:00:00:01:00:01"), ("gw2", "02:00:00:01:00:02")] {
        lab.cli_json(&["gateways", "add", n, "--address", "10.1.0.11", "--mac", mac])
            .expect("static gateway");
    }
    lab.wait_tables(&[("gw1", 1), ("gw2", 1)], within)
        .expect("two static gateways");

    // The leader of three down: the quorum stands. A change given at
    // once waits out the election (no "no leader" error), and converges.
    let leader = lab.etcd.leader().expect("leader");
    lab.etcd.kill(leader);
    lab.cli_json(&["gateways", "weight", "gw1", "2"])
        .expect("weight just after the leader died");
    lab.wait_tables(&[("gw1", 2), ("gw2", 1)], within)
        .expect("converged");

    // Two of three down: the one left has no leader. A change given now
    // waits while a second member comes back and a leader is elected.
    let other = (leader + 1) % 3;
    lab.etcd.kill(other);
    std::thread::sleep(Duration::from_millis(1500));
    let waiting = lab
        .cli_command(&["gateways", "weight", "gw1", "3"])
        .unwrap()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    lab.etcd.restart(leader).expect("a member back");
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "weight during the election: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_tables(&[("gw1", 3), ("gw2", 1)], within)
        .expect("converged after the election");
    lab.etcd.restart(other).expect("three members again");

    // All down: every table stays and forwards as before; status and
    // metrics say so.
    let sessions = testlab::topo::sessions(64);
    let placed = lab.topo.placement(1, &sessions).expect("placement before");
    assert_eq!(
        placed.len(),
        sessions.len(),
        "every session reached a gateway"
    );
    assert!(
        placed.values().any(|g| *g == 0) && placed.values().any(|g| *g == 1),
        "{placed:?}"
    );
    let before = lab.live_digests().unwrap();
    lab.etcd.kill_all();
    std::thread::sleep(Duration::from_secs(TTL * 2));
    assert_eq!(
        lab.live_digests().unwrap(),
        before,
        "no table changed while etcd was away"
    );
    for lb in 1..=3 {
        let during = lab
            .topo
            .placement(lb, &sessions)
            .expect("placement during the outage");
        assert_eq!(during, placed, "lb {lb} forwards every session as before");
    }
    for lb in 1..=3 {
        let st = lab.topo.call(lb, control::api::Request::Status).unwrap();
        assert_eq!(st["cluster"]["connected"], false, "lb {lb}: {st:#}");
        assert!(st["cluster"]["last_error"].is_string(), "lb {lb}: {st:#}");
    }
    let out = lab.cli(&["status"]).unwrap();
    assert!(!out.status.success(), "the CLI says etcd is unreachable");

    // Back: the LBs reconnect and follow the next change.
    lab.etcd.restart_all().expect("etcd back");
    lab.cli_json(&["gateways", "weight", "gw2", "4"])
        .expect("weight after the outage");
    lab.wait_tables(&[("gw1", 3), ("gw2", 4)], within)
        .expect("caught up");
    for lb in 1..=3 {
        let st = lab.topo.call(lb, control::api::Request::Status).unwrap();
        assert_eq!(st["cluster"]["connected"], true, "lb {lb}: {st:#}");
        assert!(
            st["cluster"]["disconnects"].as_u64().unwrap() >= 1,
            "lb {lb}: {st:#}"
        );
    }
}

#[test]
fn two_writers_racing_on_one_gateway_get_one_success_and_one_conflict() {
    if !common::kernel_available("two_writers_racing") {
        return;
    }
    let _serial = common::serial();
    let lab = ClusterLab::build(&prefix("r"), 1, 0, 1, TTL).expect("lab");
    let added = lab
        .cli_json(&[
            "gateways",
            "add",
            "gw1",
            "--address",
            "10.1.0.11",
            "--mac",
            "02:00:00:01:00:01",
        ])
        .expect("add");
    let rev = added["revision"].as_i64().unwrap().to_string();
    // Both read revision `rev` and write against it, at the same time.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| lab.cli(&["gateways", "weight", "gw1", "5", "--revision", &rev]));
        let b = s.spawn(|| lab.cli(&["gateways", "weight", "gw1", "7", "--revision", &rev]));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let ok: Vec<_> = [&a, &b]
        .iter()
        .filter(|o| o.status.success())
        .map(|o| o.stdout.clone())
        .collect();
    let failed: Vec<String> = [&a, &b]
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!((ok.len(), failed.len()), (1, 1), "one wins: {a:?} {b:?}");
    assert!(
        failed[0].contains("conflict"),
        "a clear conflict error: {}",
        failed[0]
    );
    let list = lab.cli_json(&["gateways", "list"]).unwrap();
    let w = list[0]["weight"].as_u64().unwrap();
    assert!(
        String::from_utf8_lossy(&ok[0]).contains(&format!("weight {w}")),
        "the winner's value stands: {list}"
    );
    // Adding what exists is refused too.
    let again = lab
        .cli(&[
            "gateways",
            "add",
            "gw1",
            "--address",
            "10.1.0.12",
            "--mac",
            "02:00:00:01:00:02",
        ])
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// `[cluster.tls]` and etcd authentication against a real etcd that
/// requires client certificates: with the CA, certificate and key (and
/// then the user and password) the CLI works; without them it fails with
/// a clear error.
#[test]
fn tls_with_client_certificates_and_authentication() {
    if !common::kernel_available("cluster_tls") {
        return;
    }
    let _serial = common::serial();
    let exe = testlab::edgeplane_bin().unwrap();
    let mut t = testlab::topo::Topology::build(&prefix("t"), 1, 0, &exe).expect("topology");
    let ns = t.add_core_member("e", "10.1.0.201/24").unwrap();
    let mut etcd =
        testlab::etcd_lab::EtcdLab::start_tls(&ns, &["10.1.0.201".parse().unwrap()], &prefix("t"))
            .expect("etcd over TLS");
    let (ca, cert, key) = etcd.tls_files();
    let dir = std::env::temp_dir().join(format!("edgeplane-{}-tls", prefix("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, extra: &str, with_cert: bool| {
        let certs = if with_cert {
            format!(
                "cert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            )
        } else {
            String::new()
        };
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[cluster]\nendpoints = [\"https://10.1.0.201:2379\"]\ntimeout_ms = 2000\n{extra}[cluster.tls]\nca = \"{}\"\n{certs}",
                ca.display()
            ),
        )
        .unwrap();
        path
    };
    let cli = |cfg: &std::path::Path, args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(&exe)
            .args(["cluster", "--config"])
            .arg(cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let good = write("good.toml", "", true);
    let add = cli(
        &good,
        &[
            "gateways",
            "add",
            "gw1",
            "--address",
            "10.1.0.11",
            "--mac",
            "02:00:00:01:00:01",
        ],
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let no_cert = write("nocert.toml", "", false);
    let out = cli(&no_cert, &["gateways", "list"]);
    assert!(!out.status.success(), "etcd requires a client certificate");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no etcd endpoint answered"));

    // Authentication on: the user and its password file, or nothing.
    etcd.enable_auth("edgeplane", "s3cret").expect("auth");
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
    let with_user = write(
        "user.toml",
        &format!(
            "user = \"edgeplane\"\npassword_file = \"{}\"\n",
            dir.join("pw").display()
        ),
        true,
    );
    let out = cli(&with_user, &["gateways", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("gw1"));
    let out = cli(&good, &["gateways", "list"]);
    assert!(!out.status.success(), "without the user etcd refuses");
    std::fs::write(dir.join("pw"), "wrong\n").unwrap();
    let out = cli(&with_user, &["gateways", "list"]);
    assert!(!out.status.success(), "a wrong password is refused");
    std::fs::remove_dir_all(&dir).ok();
    drop(t);
}
