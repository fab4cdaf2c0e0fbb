//! Daemon behaviour an operator relies on: whole-file validation on
//! reload, refusal of foreign pins, the CLI without a daemon, `--json`
//! output and the Prometheus endpoint.

mod common;

use std::process::Command;

use control::api::Request;
use testlab::topo::Topology;

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

fn prefix(tag: &str) -> String {
    format!("ep{}{tag}", std::process::id() % 100000)
}

fn cli(t: &Topology, args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .arg("--socket")
        .arg(t.socket(1))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_without_a_daemon_says_so_in_one_line() {
    let out = Command::new(exe())
        .args(["--socket", "/nonexistent/edgeplane.sock", "lb", "digest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no edgeplane daemon is running at /nonexistent/edgeplane.sock"),
        "{err}"
    );
}

#[test]
fn check_names_the_bad_key() {
    let dir = std::env::temp_dir().join(format!("ep-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[[lb]]\ninterface = \"eth0\"\ntable_size = 1000\n").unwrap();
    let out = Command::new(exe()).arg("check").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("lb[0].table_size") && err.contains("prime"),
        "{err}"
    );
    std::fs::write(&f, "[[lb]]\ninterface = \"eth0\"\n").unwrap();
    assert!(Command::new(exe())
        .arg("check")
        .arg(&f)
        .output()
        .unwrap()
        .status
        .success());
    std::fs::remove_dir_all(&dir).ok();
}

/// IPv6 routers in `check`: mixed families are refused naming the key; a
/// first address that is not link-local passes with a warning (RFC 5798
/// §5.2.9 SHOULD; keepalived runs that way too).
#[test]
fn check_takes_ipv6_routers_and_warns_of_a_global_first_address() {
    let dir = std::env::temp_dir().join(format!("ep-check6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("r.toml");
    let router = |addrs: &str| {
        format!("[[router]]\ninterface = \"eth0\"\nvrid = 7\nvirtual_addresses = [{addrs}]\n")
    };
    std::fs::write(&f, router("\"2001:db8::7/64\", \"10.0.0.7/24\"")).unwrap();
    let out = Command::new(exe()).arg("check").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("router[0].virtual_addresses[1]"), "{err}");
    std::fs::write(&f, router("\"2001:db8::7/64\"")).unwrap();
    let out = Command::new(exe()).arg("check").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: router[0].virtual_addresses[0]") && err.contains("not link-local"),
        "{err}"
    );
    std::fs::write(&f, router("\"fe80::7/64\", \"2001:db8::7/64\"")).unwrap();
    let out = Command::new(exe()).arg("check").arg(&f).output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reload_validates_the_whole_file_and_changes_nothing_on_error() {
    if !common::kernel_available("reload") {
        return;
    }
    let mut t = Topology::build(&prefix("v"), 1, 2, &exe()).expect("topology");
    let good = t.lb_config(1, &[0, 1], 5);
    t.start_lb(1, &good).expect("daemon");
    let d0 = t.call(1, Request::LbDigest).unwrap()[0].clone();

    // One bad key among good ones: refused, naming the key; nothing moves.
    let bad = good.replacen("02:00:00:01:00:02", "02:00:00:01:00", 1);
    std::fs::write(t.config_path(1), &bad).unwrap();
    let out = cli(&t, &["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("lb[0].gateway[1].mac"), "{err}");
    assert_eq!(
        t.call(1, Request::LbDigest).unwrap()[0],
        d0,
        "a refused reload changed the table"
    );
    // An interface that does not exist is caught before anything applies.
    std::fs::write(
        t.config_path(1),
        good.replacen("via = \"core\"", "via = \"nosuch0\"", 1),
    )
    .unwrap();
    assert!(!cli(&t, &["reload"]).status.success());
    assert_eq!(t.call(1, Request::LbDigest).unwrap()[0], d0);

    // A good file applies.
    std::fs::write(t.config_path(1), t.lb_config(1, &[0], 5)).unwrap();
    let out = cli(&t, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d1 = t.call(1, Request::LbDigest).unwrap()[0].clone();
    assert_ne!(d1["digest"], d0["digest"]);
    assert_eq!(d1["gateways"], 1);
    assert_eq!(
        d1["generation"].as_u64().unwrap(),
        d0["generation"].as_u64().unwrap() + 1
    );

    // --json prints the daemon's data as is.
    let out = cli(&t, &["lb", "gateways", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "gw1");
    assert_eq!(v[0]["slots"], 65537);
    // Adding an existing name is refused; a bad MAC is refused by the CLI.
    let out = cli(
        &t,
        &[
            "lb",
            "gateways",
            "add",
            "--name",
            "gw1",
            "--address",
            "10.1.0.11",
            "--mac",
            "02:00:00:01:00:01",
            "--via",
            "core",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = cli(
        &t,
        &[
            "lb",
            "gateways",
            "add",
            "--name",
            "gw9",
            "--address",
            "10.1.0.19",
            "--mac",
            "zz",
            "--via",
            "core",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mac"));
    let out = cli(
        &t,
        &[
            "lb",
            "gateways",
            "add",
            "--name",
            "gw2",
            "--address",
            "10.1.0.12",
            "--mac",
            "02:00:00:01:00:02",
            "--via",
            "core",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        t.call(1, Request::LbDigest).unwrap()[0]["digest"],
        d0["digest"],
        "back to the first table"
    );
}

#[test]
fn pins_of_another_layout_are_refused_until_replaced() {
    if !common::kernel_available("pins") {
        return;
    }
    let mut t = Topology::build(&prefix("p"), 1, 1, &exe()).expect("topology");
    let cfg = t.lb_config(1, &[0], 1);
    t.start_lb(1, &cfg).expect("daemon");
    t.kill_lb(1);
    let dir = t.pin_root.join("l1").join("ingress");
    assert!(dir.join("link").exists() && dir.join("LB_MAGLEV").exists());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "pin directory mode");

    // A map of the wrong shape where LB_STATS should be.
    std::fs::remove_file(dir.join("LB_STATS")).unwrap();
    let meta = aya::maps::MapData::from_pin(dir.join("META")).unwrap();
    meta.pin(dir.join("LB_STATS")).unwrap();
    let err = t.start_lb(1, &cfg).expect_err("must refuse").to_string();
    assert!(
        err.contains("LB_STATS") && err.contains("--replace-pins"),
        "{err}"
    );

    // --replace-pins discards them and forwarding state is rebuilt.
    t.start_lb_args(1, &cfg, &["--replace-pins"])
        .expect("replace");
    assert_eq!(
        t.call(1, Request::Status).unwrap()["lb"][0]["took_over_pins"],
        false
    );
    t.kill_lb(1);

    // A layout version from another build.
    {
        let data = aya::maps::MapData::from_pin(dir.join("META")).unwrap();
        let mut map = aya::maps::Map::Array(data);
        let mut arr: aya::maps::Array<_, dataplane_common::LayoutMeta> =
            aya::maps::Array::try_from(&mut map).unwrap();
        arr.set(
            0,
            dataplane_common::LayoutMeta {
                magic: dataplane_common::LAYOUT_MAGIC,
                version: 999,
            },
            0,
        )
        .unwrap();
    }
    let err = t.start_lb(1, &cfg).expect_err("must refuse").to_string();
    assert!(err.contains("layout version 999"), "{err}");

    // A partial set is refused too.
    std::fs::remove_file(dir.join("LB_STATS")).unwrap();
    let err = t.start_lb(1, &cfg).expect_err("must refuse").to_string();
    assert!(
        err.contains("maps are pinned") || err.contains("layout version"),
        "{err}"
    );
    t.start_lb_args(1, &cfg, &["--replace-pins"])
        .expect("replace");
}

#[test]
fn metrics_endpoint_serves_the_same_counters() {
    if !common::kernel_available("metrics") {
        return;
    }
    let mut t = Topology::build(&prefix("m"), 1, 1, &exe()).expect("topology");
    let cfg =
        t.lb_config(1, &[0], 3)
            .replacen("[node]\n", "[node]\nmetrics = \"127.0.0.1:9464\"\n", 1);
    t.start_lb(1, &cfg).expect("daemon");
    t.send(1, &testlab::topo::sessions(10), 1, 1000).unwrap();
    let path = format!("/run/netns/{}", t.ns("l1"));
    let body = std::thread::spawn(move || {
        testlab::topo::enter_netns(&path).unwrap();
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9464").unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    })
    .join()
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("# TYPE edgeplane_xdp_packets_total counter"));
    // Each role's state as gauges, and the daemon's own.
    assert!(body.contains("# TYPE edgeplane_up gauge"), "{body}");
    assert!(
        body.contains(&format!(
            "edgeplane_lb_gateways{{node=\"{}l1\",interface=\"ingress\"}} 1",
            t.prefix
        )),
        "{body}"
    );
    let digest = t.call(1, Request::LbDigest).unwrap()[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains(&format!(
            "edgeplane_lb_table_digest{{node=\"{}l1\",interface=\"ingress\",digest=\"{digest}\"}}",
            t.prefix
        )),
        "{body}"
    );
    let redirect: u64 = body
        .lines()
        .find(|l| {
            l.starts_with("edgeplane_xdp_packets_total") && l.contains("counter=\"redirect\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("redirect counter line");
    let stats = t.call(1, Request::Stats).unwrap();
    let api_redirect = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redirect")
        .unwrap()["packets"]
        .as_u64()
        .unwrap();
    assert_eq!(redirect, api_redirect);
    assert_eq!(redirect, 10);
    // The interface's entry program is counted once, beside the stages: the
    // lb stage took every packet, so none went without a stage.
    let entry = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["program"] == "entry" && c["name"] == "no_stage")
        .expect("entry counters");
    assert_eq!(
        (
            entry["role"].as_str(),
            entry["interface"].as_str(),
            entry["packets"].as_u64()
        ),
        (Some("node"), Some("ingress"), Some(0)),
        "{entry}"
    );
    assert!(
        body.contains("program=\"entry\",interface=\"ingress\",counter=\"no_stage\"} 0"),
        "{body}"
    );
}

#[test]
fn the_shipped_example_configs_are_valid() {
    for f in [
        "lb.toml",
        "gateway.toml",
        "gateway-gtpu.toml",
        "sip.toml",
        "cluster-lb.toml",
        "cluster-gateway.toml",
    ] {
        let path = format!("{}/examples/{f}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(exe()).args(["check", &path]).output().unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sip_parse_prints_messages_and_fails_on_invalid_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sip");
    let ok = Command::new(exe())
        .args(["sip", "parse", &format!("{dir}/invite.sip")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("INVITE sip:bob@example.com")
            && text.contains("from alice@example.com tag 1928301774")
            && text.contains("codecs PCMU"),
        "{text}"
    );
    let bad = Command::new(exe())
        .args([
            "sip",
            "parse",
            &format!("{dir}/invite.sip"),
            &format!("{dir}/garbage.sip"),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("garbage.sip: not valid SIP"));
    let json = Command::new(exe())
        .args(["sip", "parse", "--json", &format!("{dir}/invite.sip")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["message"]["cseq"], 314159);
}
