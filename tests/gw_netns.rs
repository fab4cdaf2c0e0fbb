//! The gateway for real: terminals → lb → gateway → two server groups
//! (a TCP service and a UDP service run by the test), with the daemons in
//! network namespaces. 200 concurrent terminal flows complete
//! request/response; every flow has its own gateway source port at the
//! servers; the accounting records add up to what the terminals sent.

mod common;

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::topo::{enter_netns, Topology};

const WEB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

fn gateway_config(t: &Topology, acct: &std::path::Path) -> String {
    let extra = format!(
        "[gateway.timeouts]\nudp = 2\ntcp = 60\ntcp_closing = 1\n\n[gateway.accounting]\nfile = \"{}\"\ninterim = 1\n",
        acct.display()
    );
    t.gateway_config(0, "20000-20999", &extra)
}

#[test]
fn two_hundred_flows_through_lb_and_gateway() {
    if !common::kernel_available("gateway_netns") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&format!("ep{}w", std::process::id() % 100000), 1, 1, &exe())
        .expect("topology");
    t.add_server_network(4).expect("server network");
    let stop = Arc::new(AtomicBool::new(false));
    let (servers, peers) = t.echo_servers(stop.clone());
    let acct = t.dir.join("accounting.jsonl");
    t.start_daemon("g0", &gateway_config(&t, &acct), &[])
        .expect("gateway daemon");
    let lbcfg = t.lb_config(1, &[0], 1);
    t.start_lb(1, &lbcfg).expect("lb daemon");

    // Lookup through the attached program (dry run) names a web server.
    let v = t
        .call_role(
            "g0",
            Request::GwLookup {
                flow: "10.0.0.2:1234-198.51.100.10:80/tcp".parse().unwrap(),
            },
        )
        .unwrap();
    assert_eq!(v["group"], "web", "{v}");
    assert!(v["session_port"].is_null());

    // 100 TCP + 100 UDP flows, all open at once.
    let term = format!("/run/netns/{}", t.ns("t1"));
    let (udp_bytes, udp_packets, tcp_ok, udp_ok, live) = {
        let sock = t.daemon_socket("g0");
        thread::spawn(move || {
            enter_netns(&term).unwrap();
            let mut conns: Vec<TcpStream> = (0..100)
                .map(|i| {
                    let s = TcpStream::connect_timeout(
                        &SocketAddr::V4(SocketAddrV4::new(WEB, 80)),
                        Duration::from_secs(10),
                    )
                    .unwrap_or_else(|e| panic!("tcp connect {i}: {e}"));
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s
                })
                .collect();
            let udps: Vec<UdpSocket> = (0..100)
                .map(|_| {
                    let u = UdpSocket::bind("0.0.0.0:0").unwrap();
                    u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    u
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
            let (mut udp_ok, mut udp_bytes, mut udp_packets) = (0, 0u64, 0u64);
            let mut buf = [0u8; 1500];
            for (i, u) in udps.iter().enumerate() {
                let msg = format!("query {i}");
                // Retry a lost datagram a few times; each send is counted.
                for _ in 0..3 {
                    u.send_to(msg.as_bytes(), SocketAddrV4::new(DNS, 53))
                        .unwrap();
                    udp_packets += 1;
                    udp_bytes += 14 + 20 + 8 + msg.len() as u64;
                    if let Ok((n, _)) = u.recv_from(&mut buf) {
                        if String::from_utf8_lossy(&buf[..n]).ends_with(&msg) {
                            udp_ok += 1;
                        }
                        break;
                    }
                }
            }
            // All 200 sessions are live now.
            let live = edgeplane::client::call(&sock, &Request::GwSessions).unwrap();
            drop(conns);
            (
                udp_bytes,
                udp_packets,
                tcp_ok,
                udp_ok,
                live.as_array().unwrap().len(),
            )
        })
        .join()
        .unwrap()
    };
    assert_eq!(
        (tcp_ok, udp_ok),
        (100, 100),
        "request/response over every flow"
    );
    assert_eq!(live, 200, "200 live user sessions at the gateway");

    // Server side: each flow came from the gateway with its own port.
    let all: Vec<SocketAddr> = peers
        .iter()
        .flat_map(|p| p.lock().unwrap().clone())
        .collect();
    let ports: HashSet<u16> = all.iter().map(|p| p.port()).collect();
    assert!(
        all.iter()
            .all(|p| p.ip() == std::net::IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1))),
        "servers see the gateway address"
    );
    assert!(
        ports.iter().all(|p| (20000..=20999).contains(p)),
        "ports from the pool"
    );
    let tcp_peers: HashSet<u16> = peers[0]
        .lock()
        .unwrap()
        .iter()
        .chain(peers[1].lock().unwrap().iter())
        .map(|p| p.port())
        .collect();
    let udp_peers: HashSet<u16> = peers[2]
        .lock()
        .unwrap()
        .iter()
        .chain(peers[3].lock().unwrap().iter())
        .map(|p| p.port())
        .collect();
    assert_eq!(
        tcp_peers.len(),
        100,
        "distinct gateway ports for the TCP flows"
    );
    assert_eq!(
        udp_peers.len(),
        100,
        "distinct gateway ports for the UDP flows"
    );
    assert!(
        tcp_peers.is_disjoint(&udp_peers),
        "one port, one user session"
    );
    assert!(
        peers.iter().all(|p| !p.lock().unwrap().is_empty()),
        "both servers of each group used"
    );

    // Accounting: wait for every session's end record.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ends: Vec<serde_json::Value>;
    loop {
        let text = std::fs::read_to_string(&acct).unwrap_or_default();
        ends = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["event"] == "end")
            .collect();
        if ends.len() >= 200 || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ends.len(), 200, "one end record per session");
    let starts = std::fs::read_to_string(&acct)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"event\":\"start\""))
        .count();
    assert_eq!(starts, 200, "one start record per session");
    let sum = |proto: &str, k: &str| {
        ends.iter()
            .filter(|r| r["proto"] == proto)
            .map(|r| r[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        sum("udp", "bytes_up"),
        udp_bytes,
        "UDP bytes accounted = bytes the terminals sent"
    );
    assert_eq!(sum("udp", "packets_up"), udp_packets);
    // Everything the LB forwarded for these sessions is accounted.
    let stats = t.call(1, Request::Stats).unwrap();
    let lb_bytes = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redirect")
        .unwrap()["bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(
        sum("udp", "bytes_up") + sum("tcp", "bytes_up"),
        lb_bytes,
        "accounted upstream bytes = bytes the LB forwarded"
    );
    let by_group: HashMap<String, usize> = ends.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r["group"].as_str().unwrap().to_string())
            .or_default() += 1;
        m
    });
    assert_eq!((by_group["web"], by_group["dns"]), (100, 100));
    assert!(
        ends.iter().all(|r| r["bytes_down"].as_u64().unwrap() > 0),
        "replies accounted"
    );
    eprintln!("sample end record: {}", ends[0]);
    let gs = t.call_role("g0", Request::Stats).unwrap();
    eprintln!(
        "gateway counters: {}",
        gs.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["packets"].as_u64().unwrap() > 0)
            .map(|c| format!("{}={}", c["name"].as_str().unwrap(), c["packets"]))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Ports went back to the pool: nothing is live.
    assert_eq!(
        t.call_role("g0", Request::GwSessions)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        s.join().unwrap();
    }
}

/// A terminal, an lb and one gateway daemon (accounting to `acct.jsonl`)
/// before four echo servers: the topology, the servers' stop flag and
/// threads, and the gateway's config.
fn one_gateway(
    tag: &str,
) -> (
    Topology,
    Arc<AtomicBool>,
    Vec<thread::JoinHandle<()>>,
    String,
) {
    let mut t = Topology::build(
        &format!("ep{}{tag}", std::process::id() % 100000),
        1,
        1,
        &exe(),
    )
    .expect("topology");
    t.add_server_network(4).expect("server network");
    let stop = Arc::new(AtomicBool::new(false));
    let (servers, _) = t.echo_servers(stop.clone());
    let acct = t.dir.join("acct.jsonl");
    let cfg = gateway_config(&t, &acct);
    t.start_daemon("g0", &cfg, &[]).expect("gateway daemon");
    let lbcfg = t.lb_config(1, &[0], 1);
    t.start_lb(1, &lbcfg).expect("lb daemon");
    (t, stop, servers, cfg)
}

/// SIGKILL of the gateway daemon does not disturb a live session; the
/// restarted daemon takes the pinned sessions over.
#[test]
fn gateway_restart_keeps_sessions() {
    if !common::kernel_available("gateway_restart") {
        return;
    }
    let _serial = common::serial();
    let (mut t, stop, servers, cfg) = one_gateway("k");

    // A terminal holding one TCP connection, asked to exchange on demand.
    let (ask, asked) = std::sync::mpsc::channel::<String>();
    let (tell, told) = std::sync::mpsc::channel::<String>();
    let term = format!("/run/netns/{}", t.ns("t1"));
    let terminal = thread::spawn(move || {
        enter_netns(&term).unwrap();
        let mut c = TcpStream::connect_timeout(
            &SocketAddr::V4(SocketAddrV4::new(WEB, 80)),
            Duration::from_secs(10),
        )
        .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        for msg in asked {
            c.write_all(format!("{msg}\n").as_bytes()).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            tell.send(line).unwrap();
        }
    });
    let exchange = |m: &str| {
        ask.send(m.to_string()).unwrap();
        let line = told.recv_timeout(Duration::from_secs(15)).expect("reply");
        assert!(line.trim_end().ends_with(m), "{line}");
        line.split_whitespace().next().unwrap().to_string() // gateway addr:port the server saw
    };
    let seen = exchange("before");
    t.kill_daemon("g0");
    assert_eq!(
        exchange("while-dead"),
        seen,
        "the session carries on without its daemon"
    );
    t.start_daemon("g0", &cfg, &[]).expect("restart");
    let st = t.call_role("g0", Request::Status).unwrap();
    assert_eq!(st["gateway"][0]["took_over_pins"], true);
    assert_eq!(exchange("after"), seen, "same port after the restart");
    let live = t.call_role("g0", Request::GwSessions).unwrap();
    let port: u16 = seen.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        live.as_array().unwrap().iter().any(|s| s["port"] == port),
        "{live}"
    );

    // The accounting CLI prints the records written so far.
    let out = std::process::Command::new(exe())
        .arg("--socket")
        .arg(t.daemon_socket("g0"))
        .args(["gw", "accounting"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("\"event\":\"start\"") && l.contains(&format!("\"port\":{port}"))),
        "{text}"
    );

    // Remove the web server this session does not use: new sessions avoid
    // it, the live session is undisturbed.
    let line = {
        ask.send("probe".into()).unwrap();
        told.recv_timeout(Duration::from_secs(15)).unwrap()
    };
    let mine = line.split_whitespace().nth(1).unwrap().to_string(); // s0 or s1
    let other = if mine == "s0" { "s1" } else { "s0" };
    let out = std::process::Command::new(exe())
        .arg("--socket")
        .arg(t.daemon_socket("g0"))
        .args(["gw", "servers", "remove", "--group", "web", other])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let term = format!("/run/netns/{}", t.ns("t1"));
    let fresh: Vec<String> = thread::spawn(move || {
        enter_netns(&term).unwrap();
        (0..6)
            .map(|i| {
                let mut c = TcpStream::connect_timeout(
                    &SocketAddr::V4(SocketAddrV4::new(WEB, 80)),
                    Duration::from_secs(10),
                )
                .unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(format!("new {i}\n").as_bytes()).unwrap();
                let mut l = String::new();
                BufReader::new(c).read_line(&mut l).unwrap();
                l.split_whitespace().nth(1).unwrap().to_string()
            })
            .collect()
    })
    .join()
    .unwrap();
    assert!(
        fresh.iter().all(|s| *s == mine),
        "new sessions avoid the removed server: {fresh:?}"
    );
    assert_eq!(exchange("still"), seen, "the live session is undisturbed");

    drop(ask);
    terminal.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        s.join().unwrap();
    }
}

/// SIGKILL of the gateway daemon under 10 kpps of UDP: every datagram of
/// eight live sessions reaches its server and its echo comes back, before,
/// while and after the daemon is dead, each session on the one gateway
/// source port it had.
#[test]
fn gateway_sigkill_under_10kpps_loses_nothing() {
    if !common::kernel_available("gateway_sigkill_10kpps") {
        return;
    }
    let _serial = common::serial();
    let (mut t, stop, servers, cfg) = one_gateway("q");

    const FLOWS: usize = 8;
    const ROUNDS: u32 = 5000; // x 8 sessions at 10 kpps: 4 s
    let term = format!("/run/netns/{}", t.ns("t1"));
    let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
    let terminal = thread::spawn(move || {
        enter_netns(&term).unwrap();
        let socks: Vec<UdpSocket> = (0..FLOWS)
            .map(|_| {
                let u = UdpSocket::bind("0.0.0.0:0").unwrap();
                testlab::topo::big_rcvbuf(&u).unwrap();
                u.connect(SocketAddrV4::new(DNS, 53)).unwrap();
                u.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                u
            })
            .collect();
        // Open each session (the first datagram is retried) before timing.
        let mut buf = [0u8; 1500];
        for u in &socks {
            let opened = (0..5).any(|_| {
                u.send(&u32::MAX.to_be_bytes()).unwrap();
                u.recv(&mut buf).is_ok()
            });
            assert!(opened, "a UDP session would not open");
        }
        thread::sleep(Duration::from_millis(100));
        while socks.iter().any(|u| u.recv(&mut buf).is_ok()) {}
        ready_tx.send(()).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let receivers: Vec<_> = socks
            .iter()
            .map(|u| {
                let (u, done) = (u.try_clone().unwrap(), done.clone());
                thread::spawn(move || {
                    // Echo: "<gateway addr:port> s<i> " then the 4-byte seq.
                    let (mut seqs, mut ports) = (HashSet::new(), HashSet::new());
                    let mut dup = 0u32;
                    let mut buf = [0u8; 1500];
                    let mut quiet = None::<Instant>;
                    let hard = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < hard {
                        match u.recv(&mut buf) {
                            Ok(n) if n > 4 => {
                                quiet = None;
                                let seq = u32::from_be_bytes(buf[n - 4..n].try_into().unwrap());
                                let text = String::from_utf8_lossy(&buf[..n - 4]);
                                ports.insert(text.split(' ').next().unwrap().to_string());
                                if !seqs.insert(seq) {
                                    dup += 1;
                                }
                            }
                            _ if done.load(Ordering::SeqCst) => {
                                let q = *quiet.get_or_insert_with(Instant::now);
                                if q.elapsed() > Duration::from_millis(500) {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    (seqs.len() as u64, dup, ports)
                })
            })
            .collect();
        let gap = Duration::from_secs_f64(1.0 / 10_000.0);
        let start = Instant::now();
        let mut sent = 0u64;
        for r in 0..ROUNDS {
            for u in &socks {
                u.send(&r.to_be_bytes()).unwrap();
                sent += 1;
                let due = start + gap * sent as u32;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
        }
        let took = start.elapsed();
        done.store(true, Ordering::SeqCst);
        let got: Vec<_> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        (sent, took, got)
    });
    ready
        .recv_timeout(Duration::from_secs(30))
        .expect("sessions open");
    thread::sleep(Duration::from_millis(1000));
    let killed = Instant::now();
    t.kill_daemon("g0");
    thread::sleep(Duration::from_millis(800));
    t.start_daemon("g0", &cfg, &[]).expect("restart");
    let down = killed.elapsed();
    let st = t.call_role("g0", Request::Status).unwrap();
    assert_eq!(st["gateway"][0]["took_over_pins"], true, "{st}");
    let (sent, took, got) = terminal.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        s.join().unwrap();
    }
    let echoed: u64 = got.iter().map(|g| g.0).sum();
    let doubled: u32 = got.iter().map(|g| g.1).sum();
    eprintln!(
        "gateway SIGKILL under {:.0} pps: daemon down {} ms, {echoed} of {sent} echoed, {doubled} doubled",
        sent as f64 / took.as_secs_f64(),
        down.as_millis()
    );
    assert_eq!(sent, FLOWS as u64 * ROUNDS as u64);
    for (i, (n, _, ports)) in got.iter().enumerate() {
        assert_eq!(
            ports.len(),
            1,
            "session {i} changed gateway port: {ports:?}"
        );
        assert_eq!(*n, ROUNDS as u64, "session {i}: datagrams lost");
    }
    assert_eq!(echoed, sent, "datagrams lost across SIGKILL + restart");
    assert_eq!(doubled, 0, "datagrams doubled");
}
