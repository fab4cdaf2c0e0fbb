//! `edgeplane demo`: the lb role end to end on a namespace topology (two
//! terminals, two LB ingress points, two gateways), torn down on exit or
//! Ctrl-C.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use control::api::{CounterView, Request};

use crate::topo::{self, gateway_name, Session, Topology};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn check_interrupt() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted; tearing the topology down");
    }
    Ok(())
}

pub fn run(hold: bool) -> anyhow::Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as usize);
        libc::signal(libc::SIGTERM, on_signal as *const () as usize);
    }
    let exe = crate::edgeplane_bin()?;
    let prefix = format!("epd{}", std::process::id() % 100000);
    println!(
        "== building topology {prefix}*: 2 terminals, 2 LBs, core bridge, 2 gateways, 4 servers"
    );
    let mut t = Topology::build(&prefix, 2, 2, &exe)?;
    t.add_server_network(4)?;
    // Dual stack: LB1's terminal side and the server network carry IPv6.
    t.add_ipv6(4)?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (mut servers, _) = t.echo_servers(stop.clone());
    servers.extend(t.echo_servers_ipv6(stop.clone()).0);
    for gi in 0..2 {
        check_interrupt()?;
        let ports = if gi == 0 {
            "20000-29999"
        } else {
            "30000-39999"
        };
        let cfg = t.gateway_config_dual(
            gi,
            ports,
            "[gateway.timeouts]\nudp = 30\ntcp = 300\ntcp_closing = 5\n",
        );
        t.start_daemon(&format!("g{gi}"), &cfg, &[])?;
        println!(
            "   {} packet gateway up (10.2.0.{} and 2001:db8:2::{}, ports {ports}; socket {})",
            gateway_name(gi),
            1 + gi,
            1 + gi,
            t.daemon_socket(&format!("g{gi}")).display()
        );
    }
    for lb in [1, 2] {
        check_interrupt()?;
        let cfg = t.lb_config(lb, &[0, 1], 2026);
        t.start_lb(lb, &cfg)?;
        println!(
            "   lb{lb} daemon up (netns {}, socket {})",
            t.ns(&format!("l{lb}")),
            t.socket(lb).display()
        );
    }
    println!("\n== Maglev table digests (equal = identical tables, seed 002 claim 20)");
    for lb in [1, 2] {
        let d = &t.call(lb, Request::LbDigest)?[0];
        println!(
            "   lb{lb}: {} (M={}, seed={})",
            d["digest"].as_str().unwrap_or(""),
            d["table_size"],
            d["seed"]
        );
    }
    check_interrupt()?;
    let sessions: Vec<Session> = (0..6)
        .map(|i| Session::Teid(0x0100_0000 + i * 7919))
        .chain((0..6).map(|i| Session::Flow(41000 + i as u16)))
        .collect();
    println!(
        "\n== sending {} sessions (GTP-U by TEID, plain UDP by 5-tuple) through each LB",
        sessions.len()
    );
    let via1 = t.placement(1, &sessions)?;
    check_interrupt()?;
    let via2 = t.placement(2, &sessions)?;
    println!("   {:<42} {:>8} {:>8}", "SESSION", "VIA LB1", "VIA LB2");
    let name = |m: &std::collections::HashMap<Session, usize>, s: &Session| {
        m.get(s)
            .map(|g| gateway_name(*g))
            .unwrap_or_else(|| "LOST".into())
    };
    for s in &sessions {
        let label = match s {
            Session::Teid(t) => format!("GTP-U TEID {t:#010x}"),
            Session::Flow(p) => format!(
                "UDP {}:{p} -> {}:{}",
                topo::TERMINAL,
                topo::SERVICE,
                topo::SERVICE_PORT
            ),
        };
        println!(
            "   {:<42} {:>8} {:>8}",
            label,
            name(&via1, s),
            name(&via2, s)
        );
    }
    let same = sessions
        .iter()
        .filter(|s| via1.contains_key(s) && via1.get(s) == via2.get(s))
        .count();
    println!(
        "   {same}/{} sessions reached the same gateway from both LBs",
        sessions.len()
    );
    check_interrupt()?;
    println!("\n== IPv6 flows through the same attached programs (lb lookup runs the XDP program on the flow)");
    println!(
        "   an IPv6 terminal is its source's /64 (the lb's terminal key): two flows per /64 below"
    );
    let mut same6 = 0;
    let flows6: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "[2001:db8:64:{}::{}]:{}-[2001:db8:c633:640a::10]:5000/udp",
                i / 2,
                2 + i % 2,
                30000 + i
            )
        })
        .collect();
    for flow in &flows6 {
        let spec: control::api::FlowSpec = flow.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut got = Vec::new();
        for lb in [1, 2] {
            let v = t.call(
                lb,
                Request::LbLookup {
                    interface: None,
                    key: control::api::LookupKey::Flow(spec.clone()),
                },
            )?;
            got.push(v["gateway"].as_str().unwrap_or("-").to_string());
        }
        if got[0] == got[1] && got[0] != "-" {
            same6 += 1;
        }
        println!("   {flow:<64} lb1 {:>6}  lb2 {:>6}", got[0], got[1]);
    }
    println!(
        "   {same6}/{} IPv6 flows placed the same by both LBs",
        flows6.len()
    );
    anyhow::ensure!(
        same6 == flows6.len(),
        "the LBs placed IPv6 flows differently"
    );
    check_interrupt()?;
    println!("\n== user sessions through LB1 and the packet gateways (seed 002 claims 3, 8, 13)");
    println!("   each server replies with the source it saw: the gateway's address and the session's own port");
    let term = format!("/run/netns/{}", t.ns("t1"));
    let v4 = (
        SocketAddr::new([198, 51, 100, 10].into(), 80),
        SocketAddr::new([198, 51, 100, 20].into(), 53),
    );
    let lines = std::thread::spawn(move || user_sessions(&term, v4))
        .join()
        .map_err(|_| anyhow::anyhow!("terminal thread panicked"))??;
    for l in &lines {
        println!("   {l}");
    }
    println!("   the same over IPv6 (groups web6 and dns6; one port pool for both families):");
    let term = format!("/run/netns/{}", t.ns("t1"));
    let v6 = (
        SocketAddr::new(crate::topo_ipv6::WEB6.into(), 80),
        SocketAddr::new(crate::topo_ipv6::DNS6.into(), 53),
    );
    let lines = std::thread::spawn(move || user_sessions(&term, v6))
        .join()
        .map_err(|_| anyhow::anyhow!("terminal thread panicked"))??;
    anyhow::ensure!(
        !lines.iter().any(|l| l.contains("LOST")),
        "an IPv6 user session got no reply"
    );
    for l in &lines {
        println!("   {l}");
    }
    for gi in 0..2 {
        let v = t.call_role(&format!("g{gi}"), Request::GwSessions)?;
        let rows: Vec<edgeplane::gateway::SessionView> = serde_json::from_value(v)?;
        println!(
            "   {} holds {} session(s): {}",
            gateway_name(gi),
            rows.len(),
            rows.iter()
                .map(|r| format!("{}->{}@{}", r.port, r.server, r.terminal))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("\n== per-program counters");
    for role in ["l1", "l2", "g0", "g1"] {
        let rows: Vec<CounterView> = serde_json::from_value(t.call_role(role, Request::Stats)?)?;
        let line: Vec<String> = rows
            .iter()
            .filter(|r| r.packets > 0)
            .map(|r| format!("{}={}", r.name, r.packets))
            .collect();
        let name = if let Some(n) = role.strip_prefix('l') {
            format!("lb{n}")
        } else {
            gateway_name(role[1..].parse().unwrap_or(0))
        };
        println!(
            "   {name} ({}): {}",
            rows.first().map(|r| r.program.as_str()).unwrap_or("-"),
            line.join(" ")
        );
    }
    if hold {
        println!("\n== holding the topology; try:");
        println!(
            "   edgeplane --socket {} lb gateways list",
            t.socket(1).display()
        );
        println!(
            "   edgeplane --socket {} lb lookup --teid 16777216",
            t.socket(1).display()
        );
        println!("   Ctrl-C tears it down.");
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("\n== tearing down the lb/gateway topology");
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        let _ = s.join();
    }
    drop(t);
    if hold && INTERRUPTED.load(Ordering::SeqCst) {
        // Ctrl-C ended the hold, as it said it would: a clean stop, not a
        // failure (the other parts of the demo are not run).
        println!("== stopped after the hold (Ctrl-C); the topology is down");
        return Ok(());
    }
    check_interrupt()?;
    let gtpu_ok = gtpu(&exe, &prefix)?;
    check_interrupt()?;
    let changes_ok = gateway_changes()?;
    check_interrupt()?;
    virtual_router(&exe, &prefix)?;
    check_interrupt()?;
    let presence_ok = crate::demo_presence::presence(&exe)?;
    check_interrupt()?;
    migration(&exe, false)?;
    check_interrupt()?;
    migration(&exe, true)?;
    println!("\n== done");
    anyhow::ensure!(
        same == sessions.len(),
        "some sessions were lost or placed differently"
    );
    anyhow::ensure!(gtpu_ok, "a GTP-U session broke when the gateway joined");
    anyhow::ensure!(
        presence_ok,
        "the presence server did not get the statuses the SIP traffic implies"
    );
    anyhow::ensure!(
        changes_ok,
        "a session broke or a packet was lost while the gateway set changed"
    );
    Ok(())
}

/// Seed 002 claim 20 for both kinds of session: GTP-U (TEID owners) and
/// plain IP (daisy chaining), through two LBs alternately, while a gateway
/// joins, a weight changes and a gateway drains (the `gateway-changes
/// --daemons` benchmark, small). Returns whether none broke and nothing
/// was lost.
fn gateway_changes() -> anyhow::Result<bool> {
    println!(
        "\n== sessions while the gateway set changes, entering by two LBs (seed 002 claim 20)"
    );
    let r = crate::bench::changes::run_daemons(600, 2000, 1.5, true)?;
    println!("   phases: {}", r.phases.join(" | "));
    println!(
        "   GTP-U sessions (PFCP, TEID owners): {} of {} broken",
        r.gtpu.broken, r.gtpu.sessions
    );
    println!(
        "   plain-IP sessions (terminal key, daisy chaining): {} of {} broken",
        r.plain.broken, r.plain.sessions
    );
    println!(
        "   packets: {} sent, {} lost",
        r.packets_sent, r.packets_lost
    );
    Ok(r.gtpu.broken + r.plain.broken + r.gtpu.unseen + r.plain.unseen == 0 && r.packets_lost == 0)
}

/// Seed 002 over GTP-U: sessions set up over PFCP by an SMF (scapy), G-PDUs
/// from an access node (scapy) through the lb to the gateway that owns the
/// TEID, decapsulated and NATed, replies encapsulated with the downlink
/// TEID; a third gateway joins the lb's table while traffic runs, and every
/// session keeps its gateway and its user session. Returns whether none
/// broke.
fn gtpu(exe: &std::path::Path, prefix: &str) -> anyhow::Result<bool> {
    use crate::gtp_lab::{self, exchange, Peer, ACCESS_NODE, SMF};
    use serde_json::json;
    use std::net::Ipv4Addr;
    println!(
        "\n== GTP-U through the lb and the gateways, sessions by PFCP (seed 002 claims 3-6, 8, 20)"
    );
    let mut t = Topology::build(&format!("{prefix}u"), 1, 3, exe)?;
    t.add_server_network(4)?;
    gtp_lab::add_smf(&mut t)?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (servers, _) = t.echo_servers(stop.clone());
    for gi in 0..3 {
        let ports = format!("{}-{}", 20000 + gi * 1000, 20999 + gi * 1000);
        let cfg = t.gateway_config(gi, &ports, &gtp_lab::gtp_sections(gi, None));
        t.start_daemon(&format!("g{gi}"), &cfg, &[])?;
    }
    t.start_lb(1, &gtp_lab::lb_config(&t, 1, &[0, 1], 7))?;
    println!("   gateways gw0, gw1 in the lb's table (TEID prefixes 1, 2); gw2 (prefix 3) up, not yet in it");
    let mut smf = Peer::start(&t.ns("smf"), "smf", SMF)?;
    let mut an = Peer::start(&t.ns("t1"), "an", ACCESS_NODE)?;
    // (gateway, UE, uplink TEID, downlink TEID)
    let mut sessions: Vec<(usize, Ipv4Addr, u32, u32)> = Vec::new();
    for gi in 0..2 {
        smf.call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(gi).to_string()}))?;
        for k in 0..3u8 {
            let ue = Ipv4Addr::new(10, 60, gi as u8, 10 + k);
            let dl = 0x100 * (gi as u32 + 1) + k as u32;
            let (_, teid) =
                gtp_lab::establish(&mut smf, gi, 100 + k as u64, ue, Some(dl), Some(9), None)?;
            sessions.push((gi, ue, teid, dl));
        }
    }
    println!(
        "   SMF {SMF}: 3 PFCP sessions at each of gw0 and gw1 (TEIDs allocated by the gateways)"
    );
    // One round: 5 G-PDUs per session; per session, the replies' downlink
    // TEIDs and the gateway:port the server saw.
    let round = |an: &mut Peer,
                 sessions: &[(usize, Ipv4Addr, u32, u32)]|
     -> anyhow::Result<Vec<(usize, bool, String)>> {
        let mut out = Vec::new();
        for (i, (_, ue, teid, dl)) in sessions.iter().enumerate() {
            let (_, got) = exchange(an, *teid, *ue, 7000 + i as u16, None, 5)?;
            let teid_ok = got.iter().all(|g| g["teid"].as_u64() == Some(*dl as u64));
            let seen: Vec<String> = got
                .iter()
                .filter_map(|g| {
                    g["inner"]["payload"]
                        .as_str()
                        .and_then(|p| p.split(' ').next())
                        .map(str::to_string)
                })
                .collect();
            let one = seen.first().cloned().unwrap_or_default();
            let consistent = seen.iter().all(|s| *s == one);
            out.push((got.len(), teid_ok && consistent, one));
        }
        Ok(out)
    };
    let before = round(&mut an, &sessions)?;
    // gw2 joins while the next round runs.
    let cfg = gtp_lab::lb_config(&t, 1, &[0, 1, 2], 7);
    std::fs::write(t.config_path(1), &cfg)?;
    let sock = t.socket(1);
    let join = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        edgeplane::client::call(&sock, &Request::Reload)
    });
    let during = round(&mut an, &sessions)?;
    join.join()
        .map_err(|_| anyhow::anyhow!("reload thread panicked"))??;
    let after = round(&mut an, &sessions)?;
    // A new session after the join, at gw2.
    smf.call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(2).to_string()}))?;
    let ue = Ipv4Addr::new(10, 60, 2, 10);
    let (_, teid) = gtp_lab::establish(&mut smf, 2, 200, ue, Some(0x300), Some(9), None)?;
    let fresh = round(&mut an, &[(2, ue, teid, 0x300)])?;
    println!("   gw2 joined the lb's table during the second round of traffic");
    println!(
        "   {:<10} {:<12} {:>7} {:>7} {:>7}   SERVER SAW (gateway:user-session port)",
        "UE", "TEID", "BEFORE", "DURING", "AFTER"
    );
    let mut broken = 0;
    for (i, (_, ue, teid, _)) in sessions.iter().enumerate() {
        let (b, d, a) = (&before[i], &during[i], &after[i]);
        let ok = b.0 == 5 && d.0 == 5 && a.0 == 5 && b.1 && d.1 && a.1 && b.2 == d.2 && d.2 == a.2;
        if !ok {
            broken += 1;
        }
        println!(
            "   {:<10} {:#010x}   {:>5}/5 {:>5}/5 {:>5}/5   {}{}",
            ue.to_string(),
            teid,
            b.0,
            d.0,
            a.0,
            a.2,
            if ok { "" } else { "  BROKEN" }
        );
    }
    println!(
        "   new session after the join: UE {ue} TEID {teid:#010x}: {}/5 replies, server saw {}",
        fresh[0].0, fresh[0].2
    );
    println!(
        "   {broken} of {} established sessions broke when gw2 joined",
        sessions.len()
    );
    let tree = t.call_role("g0", Request::GwSessionTree)?;
    if let Some(list) = tree["sessions"].as_array() {
        println!("   gw0's PFCP sessions and their user sessions (edgeplane gw sessions):");
        for s in list {
            let users: Vec<String> = s["user_sessions"]
                .as_array()
                .map(|u| u.iter().map(|u| format!("port {}", u["port"])).collect())
                .unwrap_or_default();
            println!(
                "     SEID {} UE {} TEID up {:#x} down {:#x}: {}",
                s["seid"],
                s["ue"].as_str().unwrap_or(""),
                s["ul_teid"].as_u64().unwrap_or(0),
                s["dl_teid"].as_u64().unwrap_or(0),
                users.join(", ")
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        let _ = s.join();
    }
    drop((smf, an));
    drop(t);
    Ok(broken == 0 && fresh[0].0 == 5 && fresh[0].1)
}

/// From the terminal: TCP requests to the web service and UDP queries to
/// the dns service, each on its own flow; returns one line per flow.
/// Four TCP and four UDP user sessions to the representative addresses
/// `web` and `dns` (one family), and what each server saw.
fn user_sessions(netns: &str, (web, dns): (SocketAddr, SocketAddr)) -> anyhow::Result<Vec<String>> {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpStream, UdpSocket};
    crate::topo::enter_netns(netns)?;
    let mut out = Vec::new();
    let any = if dns.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let mut conns = Vec::new();
    for i in 0..4 {
        let mut c = TcpStream::connect_timeout(&web, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(format!("hello {i}\n").as_bytes())?;
        let mut line = String::new();
        BufReader::new(c.try_clone()?).read_line(&mut line)?;
        let mut f = line.split_whitespace();
        out.push(format!(
            "TCP {} -> {web}: server {} saw {}",
            c.local_addr()?,
            f.nth(1).unwrap_or("?"),
            line.split_whitespace().next().unwrap_or("?")
        ));
        conns.push(c);
    }
    for i in 0..4 {
        let u = UdpSocket::bind(any)?;
        u.connect(dns)?;
        u.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut buf = [0u8; 512];
        let mut got = None;
        for _ in 0..3 {
            u.send(format!("query {i}").as_bytes())?;
            if let Ok(n) = u.recv(&mut buf) {
                got = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                break;
            }
        }
        let line = got.unwrap_or_else(|| "LOST".into());
        let mut f = line.split_whitespace();
        let seen = f.next().unwrap_or("?").to_string();
        out.push(format!(
            "UDP {} -> {dns}: server {} saw {seen}",
            u.local_addr()?,
            f.next().unwrap_or("?")
        ));
    }
    Ok(out)
}

/// The router role: three routers of one VRRPv3 virtual router share the
/// end systems' traffic; a third joins under traffic (seed 003).
fn virtual_router(exe: &std::path::Path, prefix: &str) -> anyhow::Result<()> {
    use crate::vrrp_lab::{count_loss, receiver, sender, VrrpLan};
    println!("\n== virtual router 10.3.0.100: routers r1-r3 sharing the load by end-system buckets (seed 003)");
    let mut lan = VrrpLan::new(&format!("{prefix}v"), 3, exe)?;
    lan.add_wan(3)?;
    let ls = |me: u8| {
        let peers: Vec<String> = (1..=3u8)
            .filter(|i| *i != me)
            .map(|i| format!("\"10.3.0.{i}\""))
            .collect();
        format!(
            "\n[router.load_sharing]\nkey = \"demo shared key\"\npeers = [{}]\nhello_ms = 50\n",
            peers.join(", ")
        )
    };
    // Dual stack: r1 and r2 also run an IPv6 virtual router on the same
    // interface (its own VRID space and virtual MAC).
    let v6 = format!(
        "\n[[router]]\ninterface = \"eth0\"\nvrid = 51\npriority = {{}}\nadvert_interval_ms = 1000\nvirtual_addresses = [\"{}/64\", \"{}/64\"]\n",
        crate::vrrp_lab::VIP6_LL,
        crate::vrrp_lab::VIP6
    );
    lan.start_edgeplane_with("r1", 200, 1000, &(ls(1) + &v6.replace("{}", "200")))?;
    lan.start_edgeplane_with("r2", 150, 1000, &(ls(2) + &v6.replace("{}", "150")))?;
    lan.wait_master("r1", &["r1", "r2", "r3"], true, Duration::from_secs(10))?;
    let owned = |lan: &VrrpLan, r: &str| {
        lan.status(r)
            .map(|v| v["load_sharing"]["owned"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    let t0 = std::time::Instant::now();
    // Each router's status is a snapshot published every 200 ms: wait
    // until both show the split.
    while (owned(&lan, "r2") == 0 || owned(&lan, "r1") + owned(&lan, "r2") != 256)
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "   r1 is master; buckets: r1 {} r2 {}",
        owned(&lan, "r1"),
        owned(&lan, "r2")
    );
    check_interrupt()?;
    println!("   32 end systems send 5 kpps to 10.4.0.100 for 4 s; r3 joins after 1.5 s");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let rx = receiver(
        format!("/run/netns/{}", lan.ns("rx")),
        seen.clone(),
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let tx = sender(format!("/run/netns/{}", lan.ns("x")), 5000, 4.0);
    std::thread::sleep(Duration::from_millis(1500));
    lan.start_edgeplane_with("r3", 100, 1000, &ls(3))?;
    let sent = tx.join().map_err(|_| anyhow::anyhow!("sender panicked"))?;
    stop.store(true, Ordering::SeqCst);
    let _ = rx.join();
    for r in ["r1", "r2", "r3"] {
        let v = lan.status(r)?;
        let l = &v["load_sharing"];
        println!(
            "   {r}: {:<6} buckets {:>3}, routed {:>6} packets; hand-off buffer: {} re-injected, {} dropped as already routed",
            v["state"].as_str().unwrap_or(""), l["owned"], l["routed_packets"], l["reinjected"], l["discarded"]
        );
    }
    let (lost, doubled) = count_loss(&sent, &seen);
    println!(
        "   receiver: {} sent, {lost} lost, {doubled} routed twice",
        sent.iter().sum::<u32>()
    );
    anyhow::ensure!(
        lost == 0 && doubled == 0,
        "the hand-off lost or doubled packets"
    );
    check_interrupt()?;
    // Its master is elected on its own timers: wait (bounded) for it.
    let t0 = std::time::Instant::now();
    let (all, v6) = loop {
        let all = edgeplane::client::call(&lan.socket("r1"), &Request::VrrpStatus)?;
        let v6 = all
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["virtual_mac"] == "00:00:5e:00:02:33")
            .cloned();
        let master = v6.as_ref().is_some_and(|v| v["state"] == "master");
        if master || t0.elapsed() > Duration::from_secs(6) {
            break (all, v6);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match v6 {
        Some(v) => println!(
            "\n== IPv6 virtual router {} on the same LAN: r1 {} (adverts from {} to ff02::12, virtual MAC {})",
            crate::vrrp_lab::VIP6,
            v["state"].as_str().unwrap_or(""),
            v["primary"].as_str().unwrap_or(""),
            v["virtual_mac"].as_str().unwrap_or("")
        ),
        None => anyhow::bail!("r1 shows no IPv6 virtual router: {all}"),
    }
    let answered = lan.ping_from_host(&crate::vrrp_lab::VIP6.to_string(), 2);
    println!(
        "   the host pings {} through it: {}",
        crate::vrrp_lab::VIP6,
        if answered { "answered" } else { "NO ANSWER" }
    );
    anyhow::ensure!(answered, "the IPv6 virtual address did not answer");
    Ok(())
}

/// Seed 000: the counter service moves from network 1 to network 2 while
/// a terminal keeps asking it.
fn migration(exe: &std::path::Path, ipv6: bool) -> anyhow::Result<()> {
    use std::sync::{atomic::AtomicU64, Arc};
    let mut lab = if ipv6 {
        crate::migration_lab::Lab::new_ipv6("d6", exe)
    } else {
        crate::migration_lab::Lab::new("d", exe)
    };
    println!(
        "\n== process migration: the counter service at {} moves from s1 (network 1) to s2 (network 2) (seed 000{})",
        lab.service_udp(),
        if ipv6 { ", IPv6" } else { "" }
    );
    lab.start();
    let sent = Arc::new(AtomicU64::new(0));
    let term = crate::migration_lab::terminal_to(
        format!("/run/netns/{}", lab.name("term")),
        lab.service_udp(),
        300,
        sent.clone(),
        Arc::new(AtomicBool::new(false)),
    );
    let t0 = std::time::Instant::now();
    while sent.load(Ordering::SeqCst) < 100 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "   terminal: 300 requests, one at a time; migrating after request {}",
        sent.load(Ordering::SeqCst)
    );
    let r = edgeplane::client::call(
        &lab.sock("edge"),
        &control::api::Request::MigrateStart {
            process: "counter".into(),
            to: "s2".into(),
            wait: true,
        },
    );
    let got = term
        .join()
        .map_err(|_| anyhow::anyhow!("terminal panicked"))?;
    let v = r.map_err(|e| anyhow::anyhow!("migration: {e}"))?;
    for l in v["log"].as_array().into_iter().flatten() {
        println!("   {}", l.as_str().unwrap_or(""));
    }
    let pause = v["pause_us"]
        .as_u64()
        .map(|us| format!(", {:.1} ms after the first was held", us as f64 / 1e3))
        .unwrap_or_default();
    println!("   done in {} ms; switch {} us; {} held packets released on network 2 through AF_XDP{pause}", v["elapsed_ms"], v["switch_us"], v["released"]);
    if let Some(g) = &lab.cgroup {
        let frozen = std::fs::read_to_string(g.join("cgroup.events"))
            .unwrap_or_default()
            .lines()
            .any(|l| l == "frozen 1");
        println!(
            "   s1's copy is {} in its cgroup ({})",
            if frozen { "frozen" } else { "NOT frozen" },
            g.display()
        );
    }
    let answered = got.iter().flatten().count();
    let continuous = got
        .iter()
        .enumerate()
        .all(|(i, a)| *a == Some(i as u64 + 1));
    println!(
        "   terminal: {answered} of {} answered; the count ran 1..={} {}",
        got.len(),
        got.len(),
        if continuous {
            "without a gap or repeat"
        } else {
            "WITH gaps or repeats"
        }
    );
    anyhow::ensure!(
        answered == got.len() && continuous,
        "the migration lost or repeated requests"
    );
    Ok(())
}
