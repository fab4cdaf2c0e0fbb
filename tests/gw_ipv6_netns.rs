//! The gateway over IPv6 for real (issue 13): an IPv6 terminal → lb →
//! gateway → IPv6 server groups, beside IPv4 flows through the same
//! daemons. Real TCP connections and UDP exchanges over IPv6 complete;
//! each flow reaches its server from the gateway's IPv6 address with a
//! port of its own from the pool both families share; the sessions view,
//! the lookup and the accounting records name IPv6 terminals.

mod common;

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::{
    topo::{enter_netns, Topology},
    topo_ipv6::{DNS6, GW6, TERM6, WEB6},
};

const FLOWS: usize = 40;

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

#[test]
fn ipv6_flows_through_lb_and_gateway() {
    if !common::kernel_available("gateway_ipv6_netns") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&format!("ep{}x", std::process::id() % 100000), 1, 1, &exe())
        .expect("topology");
    t.add_server_network(4).expect("server network");
    t.add_ipv6(4).expect("ipv6");
    let stop = Arc::new(AtomicBool::new(false));
    let (servers4, _) = t.echo_servers(stop.clone());
    let (servers6, peers) = t.echo_servers_ipv6(stop.clone());
    let acct = t.dir.join("accounting.jsonl");
    let extra = format!(
        "[gateway.timeouts]\nudp = 2\ntcp = 60\ntcp_closing = 1\n\n[gateway.accounting]\nfile = \"{}\"\ninterim = 1\n",
        acct.display()
    );
    t.start_daemon("g0", &t.gateway_config_dual(0, "20000-20999", &extra), &[])
        .expect("gateway daemon");
    t.start_lb(1, &t.lb_config(1, &[0], 1)).expect("lb daemon");

    // The lookup runs an IPv6 packet through the attached program.
    let v = t
        .call_role(
            "g0",
            Request::GwLookup {
                flow: format!("[{TERM6}]:1234-[{WEB6}]:80/tcp").parse().unwrap(),
            },
        )
        .unwrap();
    assert_eq!(v["group"], "web6", "{v}");
    assert!(
        v["translated"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{GW6}]:0 -> ")),
        "{v}"
    );

    let term = format!("/run/netns/{}", t.ns("t1"));
    let sock = t.daemon_socket("g0");
    let (tcp_ok, udp_ok, v4_ok, live) = thread::spawn(move || {
        enter_netns(&term).unwrap();
        let mut conns: Vec<TcpStream> = (0..FLOWS)
            .map(|i| {
                let s = TcpStream::connect_timeout(
                    &SocketAddr::new(WEB6.into(), 80),
                    Duration::from_secs(10),
                )
                .unwrap_or_else(|e| panic!("tcp connect {i} over IPv6: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s
            })
            .collect();
        let mut tcp_ok = 0;
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(format!("req {i}\n").as_bytes()).unwrap();
            let mut line = String::new();
            BufReader::new(c.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            if line.trim_end().ends_with(&format!("req {i}")) {
                tcp_ok += 1;
            }
        }
        let mut udp_ok = 0;
        let mut buf = [0u8; 1500];
        let udps: Vec<UdpSocket> = (0..FLOWS)
            .map(|_| {
                let u = UdpSocket::bind("[::]:0").unwrap();
                u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                u
            })
            .collect();
        for (i, u) in udps.iter().enumerate() {
            let msg = format!("query {i}");
            for _ in 0..3 {
                u.send_to(msg.as_bytes(), SocketAddr::new(DNS6.into(), 53))
                    .unwrap();
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    assert_eq!(
                        from,
                        SocketAddr::new(DNS6.into(), 53),
                        "from the representative"
                    );
                    if String::from_utf8_lossy(&buf[..n]).ends_with(&msg) {
                        udp_ok += 1;
                    }
                    break;
                }
            }
        }
        // IPv4 through the same daemons at the same time.
        let mut v4 = TcpStream::connect_timeout(
            &SocketAddr::new(Ipv4Addr::new(198, 51, 100, 10).into(), 80),
            Duration::from_secs(10),
        )
        .expect("ipv4 beside");
        v4.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        v4.write_all(b"v4\n").unwrap();
        let mut line = String::new();
        BufReader::new(v4.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        let live = edgeplane::client::call(&sock, &Request::GwSessions).unwrap();
        drop(conns);
        (tcp_ok, udp_ok, line.trim_end().ends_with("v4"), live)
    })
    .join()
    .unwrap();
    assert_eq!(
        (tcp_ok, udp_ok),
        (FLOWS, FLOWS),
        "request/response over IPv6"
    );
    assert!(v4_ok, "an IPv4 flow beside them");
    let plain = live.as_array().expect("the sessions");
    let terminals6 = plain
        .iter()
        .filter(|s| {
            s["terminal"]
                .as_str()
                .unwrap()
                .starts_with(&format!("[{TERM6}]:"))
        })
        .count();
    assert_eq!(
        terminals6,
        2 * FLOWS,
        "{FLOWS} TCP and {FLOWS} UDP IPv6 sessions: {live}"
    );
    assert_eq!(plain.len(), 2 * FLOWS + 1, "and the IPv4 one");
    let ports: HashSet<u64> = plain.iter().map(|s| s["port"].as_u64().unwrap()).collect();
    assert_eq!(
        ports.len(),
        plain.len(),
        "one port per session, both families"
    );

    // The servers saw the gateway's IPv6 address, a distinct port per flow.
    let all: Vec<SocketAddr> = peers
        .iter()
        .flat_map(|p| p.lock().unwrap().clone())
        .collect();
    assert!(
        all.iter().all(|p| p.ip() == IpAddr::from(GW6)),
        "servers see the gateway's IPv6 address: {all:?}"
    );
    let seen: HashSet<u16> = all.iter().map(|p| p.port()).collect();
    assert_eq!(seen.len(), 2 * FLOWS, "distinct gateway ports");
    assert!(seen.iter().all(|p| (20000..=20999).contains(p)));
    assert!(
        peers.iter().all(|p| !p.lock().unwrap().is_empty()),
        "both servers of each group"
    );

    // Accounting: every IPv6 UDP session ends (2 s idle) with its bytes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ends = loop {
        let text = std::fs::read_to_string(&acct).unwrap_or_default();
        let ends: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["event"] == "end" && r["proto"] == "udp")
            .collect();
        if ends.len() >= FLOWS || Instant::now() > deadline {
            break ends;
        }
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ends.len(), FLOWS, "an end record per IPv6 UDP session");
    for r in &ends {
        assert_eq!(r["gateway"], GW6.to_string(), "{r}");
        assert!(
            r["terminal"]
                .as_str()
                .unwrap()
                .starts_with(&format!("[{TERM6}]:")),
            "{r}"
        );
        assert_eq!(r["representative"], format!("[{DNS6}]:53"), "{r}");
        assert_eq!(
            (r["packets_up"].as_u64(), r["packets_down"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
    }
    let stats = t.call_role("g0", Request::Stats).unwrap();
    let count = |name: &str| {
        stats
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["role"] == "gateway" && c["name"] == name)
            .map(|c| c["packets"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("malformed"), 0, "{stats}");
    stop.store(true, Ordering::SeqCst);
    for h in servers4.into_iter().chain(servers6) {
        let _ = h.join();
    }
}
