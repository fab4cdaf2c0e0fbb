//! `edgeplane reload` applies a changed file to the router, sip-monitor and
//! presence roles of a running daemon, and a change it cannot apply is
//! refused naming the key, with nothing changed.

mod common;

use std::{
    net::UdpSocket,
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::{
    sip_lab::{run_ua, uas, Net},
    topo::enter_netns,
    vrrp_lab::VrrpLan,
};

fn reload(sock: &std::path::Path) -> Result<String, String> {
    match edgeplane::client::call(sock, &Request::Reload) {
        Ok(v) => Ok(v["message"].as_str().unwrap_or("").to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn a_router_instance_takes_a_new_priority_and_refuses_a_missing_interface() {
    if !common::kernel_available("reload_router") {
        return;
    }
    let exe: std::path::PathBuf = env!("CARGO_BIN_EXE_edgeplane").into();
    let mut lan =
        VrrpLan::new(&format!("ep{}rv", std::process::id() % 100000), 1, &exe).expect("lan");
    lan.start_edgeplane("r1", 150, 100).unwrap();
    lan.wait_master("r1", &["r1"], true, Duration::from_secs(10))
        .unwrap();
    let conf = lan.dir.join("r1.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("priority = 150"), "{text}");

    std::fs::write(&conf, text.replace("priority = 150", "priority = 200")).unwrap();
    let msg = reload(&lan.socket("r1")).expect("reload");
    assert!(msg.contains("1 restarted"), "{msg}");
    let t0 = Instant::now();
    while lan.status("r1").unwrap()["state"] != "master" {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "r1 did not come back as master: {}",
            lan.status("r1").unwrap()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lan.status("r1").unwrap()["priority"], 200);

    // A file naming an interface that does not exist changes nothing.
    std::fs::write(
        &conf,
        text.replace("priority = 150", "priority = 120")
            .replace("interface = \"eth0\"", "interface = \"nosuch0\""),
    )
    .unwrap();
    let err = reload(&lan.socket("r1")).unwrap_err();
    assert!(
        err.contains("router[0]") && err.contains("nosuch0"),
        "{err}"
    );
    let st = lan.status("r1").unwrap();
    assert_eq!(
        (st["priority"].as_u64(), st["state"].as_str()),
        (Some(200), Some("master")),
        "{st}"
    );

    // An IPv6 router with the same VRID joins by reload: started, and the
    // IPv4 one (another family, another instance) is left alone; then a
    // change of the IPv6 one restarts it alone.
    let v4 = text.replace("priority = 150", "priority = 200");
    let v6 = |prio: u8| {
        format!("\n[[router]]\ninterface = \"eth0\"\nvrid = 51\npriority = {prio}\nvirtual_addresses = [\"fe80::51/64\"]\n")
    };
    let transitions = |i: usize| {
        edgeplane::client::call(&lan.socket("r1"), &Request::VrrpStatus).unwrap()[i]["transitions"]
            .as_u64()
            .unwrap()
    };
    let before = transitions(0);
    std::fs::write(&conf, format!("{v4}{}", v6(100))).unwrap();
    let msg = reload(&lan.socket("r1")).expect("reload");
    assert!(
        msg.contains("1 instance(s) started, 0 stopped, 0 restarted"),
        "{msg}"
    );
    std::fs::write(&conf, format!("{v4}{}", v6(120))).unwrap();
    let msg = reload(&lan.socket("r1")).expect("reload");
    assert!(
        msg.contains("0 instance(s) started, 0 stopped, 1 restarted"),
        "{msg}"
    );
    let all = edgeplane::client::call(&lan.socket("r1"), &Request::VrrpStatus).unwrap();
    assert_eq!(all[1]["priority"], 120, "{all}");
    assert_eq!(all[1]["virtual_mac"], "00:00:5e:00:02:33", "{all}");
    assert_eq!(
        transitions(0),
        before,
        "the IPv4 router was not touched: {all}"
    );
}

/// The monitor's copied counter, read from `stats` (refreshed every 200 ms).
fn copied(net: &Net) -> u64 {
    thread::sleep(Duration::from_millis(300));
    let rows = net.call("mon", Request::Stats);
    rows.as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "sip-monitor" && c["name"] == "copied")
        .expect("copied counter")["packets"]
        .as_u64()
        .unwrap()
}

fn presence_count(net: &Net, name: &str) -> u64 {
    let rows = net.call("srv", Request::Stats);
    rows.as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "presence" && c["name"] == name)
        .and_then(|c| c["packets"].as_u64())
        .unwrap_or(0)
}

/// One SIP datagram from the terminal's side through the monitor, to the
/// server's address on `port` (nobody needs to listen there).
fn send_options(net: &Net, port: u16) {
    let ua = format!("/run/netns/{}", net.name("ua"));
    thread::spawn(move || {
        enter_netns(&ua).unwrap();
        let s = UdpSocket::bind("10.5.0.2:0").unwrap();
        let msg = "OPTIONS sip:probe@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.5.0.2;branch=z9hG4bKo1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag=1\r\nTo: <sip:probe@example.com>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        s.send_to(msg.as_bytes(), ("10.6.0.2", port)).unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn the_monitor_and_the_presence_server_take_a_new_config_live() {
    if !common::kernel_available("reload_sip") {
        return;
    }
    let mut net = Net::new("rl", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let srv_cfg = net.presence_config(None);
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config("example.com", "10.6.0.2:5070", "");
    net.daemon("mon", &mon_cfg);
    let (mon_sock, srv_sock) = (net.dir.join("mon.sock"), net.dir.join("srv.sock"));

    // Port 5090 is not monitored: the datagram passes uncopied.
    let before = copied(&net);
    send_options(&net, 5090);
    assert_eq!(copied(&net), before, "5090 is not a SIP port yet");

    // Monitor it: the next datagram is copied, by the same running monitor.
    std::fs::write(
        net.dir.join("mon.toml"),
        net.monitor_config("example.com", "10.6.0.2:5070", "ports = [5060, 5090]\n"),
    )
    .unwrap();
    assert_eq!(
        reload(&mon_sock).expect("reload"),
        "reloaded; sip-monitor reconfigured"
    );
    // The monitor watches both interfaces of the host the datagram
    // crosses: copied arriving on eth0 (XDP) and leaving by eth1 (TC
    // egress).
    send_options(&net, 5090);
    assert_eq!(
        copied(&net),
        before + 2,
        "5090 copied after the reload, both ways"
    );

    // The interfaces cannot change live; the ports stay as they are.
    let moved = net
        .monitor_config("example.com", "10.6.0.2:5070", "ports = [5060]\n")
        .replace("[\"eth0\", \"eth1\"]", "[\"eth0\"]");
    std::fs::write(net.dir.join("mon.toml"), moved).unwrap();
    let err = reload(&mon_sock).unwrap_err();
    assert!(err.contains("sip_monitor.interfaces"), "{err}");
    send_options(&net, 5090);
    assert_eq!(copied(&net), before + 4, "the refused file changed nothing");

    // The presence server stops accepting the monitor's address: its next
    // publications are refused (403) and nothing is stored.
    let narrowed = srv_cfg.replace(
        "allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
        "allow = [\"192.0.2.0/24\"]",
    );
    assert_ne!(narrowed, srv_cfg, "the lab's allow line changed: {srv_cfg}");
    std::fs::write(net.dir.join("srv.toml"), narrowed).unwrap();
    assert_eq!(
        reload(&srv_sock).expect("reload"),
        "reloaded; presence: allowed sources replaced"
    );
    let updates = presence_count(&net, "updates");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    run_ua(format!("/run/netns/{}", net.name("ua")));
    let t0 = Instant::now();
    while presence_count(&net, "answers_403") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no publication was refused: {}",
            net.call("srv", Request::Stats)
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        presence_count(&net, "updates"),
        updates,
        "a refused source stores nothing"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();

    // Its listen address cannot change live.
    std::fs::write(
        net.dir.join("srv.toml"),
        srv_cfg.replace("10.6.0.2:5070", "10.6.0.2:5071"),
    )
    .unwrap();
    let err = reload(&srv_sock).unwrap_err();
    assert!(err.contains("presence.listen"), "{err}");
}
