//! SIP traffic through a monitored host: a UA registers, calls, hangs up
//! and de-registers through `mon`, whose XDP program copies the SIP
//! packets; the monitor PUBLISHes status changes to the presence server,
//! which stores them. Foreign-domain users are not published.

mod common;

use std::{
    net::UdpSocket,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::{
    sip_lab::{run_ua, uas, Net},
    topo::enter_netns,
};

#[test]
fn registration_and_call_become_presence() {
    if !common::kernel_available("sip_netns") {
        return;
    }
    presence_flow("s", "carrier = \"publish\"\n", None);
}

/// The same flow with the presence server on PostgreSQL.
#[test]
fn registration_and_call_become_presence_on_postgresql() {
    if !common::kernel_available("sip_postgres") {
        return;
    }
    let pg = testlab::pg_lab::PgLab::start("flow").expect("private PostgreSQL server");
    presence_flow("g", "carrier = \"publish\"\n", Some(pg.url()));
}

/// Claim 20: the same statuses carried by REGISTER instead of PUBLISH.
#[test]
fn statuses_carried_by_register() {
    if !common::kernel_available("sip_register_carrier") {
        return;
    }
    presence_flow("r", "carrier = \"register\"\n", None);
}

/// The same flow with the monitor's requests on one TCP connection to
/// the presence server (`presence_transport = "tcp"`), answered on it.
#[test]
fn registration_and_call_become_presence_over_tcp() {
    if !common::kernel_available("sip_netns_tcp_publish") {
        return;
    }
    presence_flow("q", "presence_transport = \"tcp\"\n", None);
}

/// `extra`: keys of the monitor's section (carrier, transport).
fn presence_flow(tag: &str, extra: &str, database: Option<String>) {
    let mut net = Net::new(tag, env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let database = database.unwrap_or_else(|| net.dir.join("presence.db").display().to_string());
    let srv_cfg = net.presence_config(Some(&database));
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config("example.com", "10.6.0.2:5070", extra);
    net.daemon("mon", &mon_cfg);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());

    run_ua(format!("/run/netns/{}", net.name("ua")));

    // The last PUBLISH reaches the server within a moment.
    let t0 = Instant::now();
    let history = |user: &str| -> Vec<String> {
        net.call("srv", Request::PresenceHistory { user: user.into() })
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    while history("alice@example.com").last().map(String::as_str) != Some("offline")
        && t0.elapsed() < Duration::from_secs(5)
    {
        thread::sleep(Duration::from_millis(50));
    }
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(
        history("alice@example.com"),
        vec!["online", "talking", "terminated", "offline"],
        "monitor: {mon}"
    );
    assert_eq!(history("bob@example.com"), vec!["talking", "terminated"]);
    assert!(
        history("mallory@foreign.net").is_empty(),
        "foreign domain published"
    );
    assert_eq!(
        net.call(
            "srv",
            Request::PresenceShow {
                user: Some("alice@example.com".into())
            }
        )[0]["status"],
        "offline"
    );
    assert_eq!(mon["publish_ok"], mon["published"], "{mon}");
    assert!(mon["parsed"].as_u64().unwrap() >= 11, "{mon}");
    // Both roles' counters are in `stats`: the copy program's and the
    // monitor's on the monitor, the server's on the presence host.
    let count = |host: &str, role: &str, name: &str| -> u64 {
        let rows = net.call(host, Request::Stats);
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["role"] == role && c["name"] == name)
            .cloned();
        row.unwrap_or_else(|| panic!("no {role} counter {name} on {host}: {rows}"))["packets"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        count("mon", "sip-monitor", "messages_parsed"),
        mon["parsed"].as_u64().unwrap()
    );
    assert_eq!(
        count("mon", "sip-monitor", "published"),
        mon["published"].as_u64().unwrap()
    );
    // The monitor reads the copy program's counters every 200 ms at most.
    thread::sleep(Duration::from_millis(300));
    assert!(
        count("mon", "sip-monitor", "copied") >= mon["copied"].as_u64().unwrap(),
        "every copy read was counted by the program"
    );
    let updates = count("srv", "presence", "updates");
    assert!(
        (6..=mon["published"].as_u64().unwrap()).contains(&updates),
        "alice's four statuses and bob's two were stored, and only what was published: {updates}"
    );
    assert!(count("srv", "presence", "answers_200") >= 6);
    if extra.contains("tcp") {
        // One connection carried every request and its answer; nothing
        // was retransmitted over it.
        let conns = net.tcp_established("mon", "10.6.0.2:5070");
        assert_eq!(conns, 1, "one TCP connection to the presence server");
        assert_eq!(mon["publish_retransmitted"], 0, "{mon}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
}

/// A real peer: sipp's built-in UAC calls sipp's UAS through the monitored
/// host. The callee (service@10.6.0.2, in the monitored domain) goes
/// talking → terminated; the caller (another domain) is not published.
#[test]
fn a_sipp_call_through_the_monitored_host() {
    if !common::kernel_available("sip_sipp") {
        return;
    }
    sipp_call("p", "u1");
}

/// The same call over TCP: the monitor reassembles each connection.
#[test]
fn a_sipp_call_over_tcp_through_the_monitored_host() {
    if !common::kernel_available("sip_sipp_tcp") {
        return;
    }
    sipp_call("t", "t1");
}

/// Over IPv6: sipp's UAs on 2001:db8:5::2 and 2001:db8:6::2 (SDP with
/// c=IN IP6), the monitor copying IPv6 frames, PUBLISH to the presence
/// server on [2001:db8:6::2]:5070.
#[test]
fn a_sipp_call_over_ipv6_through_the_monitored_host() {
    if !common::kernel_available("sip_sipp_ipv6") {
        return;
    }
    sipp_call("6", "u1");
}

#[test]
fn a_sipp_call_over_ipv6_tcp_through_the_monitored_host() {
    if !common::kernel_available("sip_sipp_ipv6_tcp") {
        return;
    }
    sipp_call("7", "t1");
}

/// The lab's addresses for a call: (uas, uac, presence, callee, caller),
/// IPv6 for the tags "6" and "7".
fn call_addresses(tag: &str) -> [&'static str; 5] {
    if tag == "6" || tag == "7" {
        [
            "2001:db8:6::2",
            "2001:db8:5::2",
            "[2001:db8:6::2]:5070",
            "service@[2001:db8:6::2]",
            "sipp@[2001:db8:5::2]",
        ]
    } else {
        [
            "10.6.0.2",
            "10.5.0.2",
            "10.6.0.2:5070",
            "service@10.6.0.2",
            "sipp@10.5.0.2",
        ]
    }
}

fn sipp_call(tag: &str, transport: &str) {
    let [uas_ip, uac_ip, presence, callee, caller] = call_addresses(tag);
    let mut net = Net::new(tag, env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let db = net.dir.join("presence.db").display().to_string();
    let srv_cfg = net.presence_config_at("srv", presence, &db);
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config(uas_ip, presence, "");
    net.daemon("mon", &mon_cfg);
    let target = if uas_ip.contains(':') {
        format!("[{uas_ip}]:5060")
    } else {
        format!("{uas_ip}:5060")
    };
    let mut uas = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.name("srv"),
            "sipp",
            "-sn",
            "uas",
            "-t",
            transport,
            "-i",
            uas_ip,
            "-p",
            "5060",
            "-nostdin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (cargo xtask setup installs sip-tester)");
    thread::sleep(Duration::from_millis(500));
    let uac = Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            &net.name("ua"),
            "sipp",
            "-sn",
            "uac",
            "-t",
            transport,
            "-i",
            uac_ip,
            "-p",
            "5061",
            &target,
            "-m",
            "1",
            "-d",
            "500",
            "-nostdin",
        ])
        .output()
        .unwrap();
    let _ = uas.kill();
    let _ = uas.wait();
    assert!(
        uac.status.success(),
        "sipp uac: {}",
        String::from_utf8_lossy(&uac.stderr)
    );
    let t0 = Instant::now();
    let history = |user: &str| -> Vec<String> {
        net.call("srv", Request::PresenceHistory { user: user.into() })
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    while history(callee).len() < 2 && t0.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        history(callee),
        vec!["talking", "terminated"],
        "monitor: {}",
        net.call("mon", Request::SipMonitorStatus)
    );
    assert!(
        history(caller).is_empty(),
        "the caller's domain is not monitored"
    );
}

/// The monitor's PUBLISHes go to Kamailio's presence module (Debian's
/// kamailio with presence, presence_xml and db_sqlite): every PUBLISH,
/// initial and the later ones carrying SIP-If-Match, is answered 200 with
/// a SIP-ETag, and Kamailio stores the presentity.
#[test]
fn kamailio_accepts_the_monitors_publish() {
    if !common::kernel_available("sip_kamailio") {
        return;
    }
    let mut net = Net::new("k", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    // Kamailio's SQLite schema, as its packages ship it.
    let db = net.dir.join("kamailio.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        for f in ["standard-create.sql", "presence-create.sql"] {
            let sql = std::fs::read_to_string(format!("/usr/share/kamailio/db_sqlite/{f}"))
                .expect("kamailio-sqlite-modules (cargo xtask setup installs it)");
            c.execute_batch(&sql).unwrap();
        }
    }
    let cfg = format!(
            "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren=1\nlisten=udp:10.6.0.2:5080\nmpath=\"/usr/lib/x86_64-linux-gnu/kamailio/modules/\"\n\
             loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"pv.so\"\nloadmodule \"maxfwd.so\"\nloadmodule \"textops.so\"\nloadmodule \"siputils.so\"\n\
             loadmodule \"db_sqlite.so\"\nloadmodule \"presence.so\"\nloadmodule \"presence_xml.so\"\n\
             modparam(\"presence\", \"db_url\", \"sqlite://{db}\")\nmodparam(\"presence_xml\", \"db_url\", \"sqlite://{db}\")\nmodparam(\"presence_xml\", \"force_active\", 1)\n\
             request_route {{\n  if (is_method(\"PUBLISH\")) {{ handle_publish(); exit; }}\n  sl_send_reply(\"405\", \"Method Not Allowed\");\n}}\n",
            db = db.display()
        );
    let kam = net.kamailio("srv", "kamailio", &cfg, 5080);
    let mon_cfg = net.monitor_config("example.com", "10.6.0.2:5080", "");
    net.daemon("mon", &mon_cfg);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    run_ua(format!("/run/netns/{}", net.name("ua")));
    // Every PUBLISH answered (bounded: a loaded machine answers later).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mon = loop {
        let mon = net.call("mon", Request::SipMonitorStatus);
        let answered =
            mon["publish_ok"].as_u64().unwrap_or(0) + mon["publish_failed"].as_u64().unwrap_or(0);
        if (mon["published"].as_u64().unwrap_or(0) >= 6
            && answered >= mon["published"].as_u64().unwrap_or(0))
            || Instant::now() > deadline
        {
            break mon;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(net.dir.join("kamailio.log")).unwrap_or_default();
    drop(kam);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
    // alice: online, talking, terminated, offline; bob: talking, terminated.
    assert_eq!(mon["published"], 6, "{mon}");
    assert_eq!(
        mon["publish_ok"], 6,
        "Kamailio answered every PUBLISH with 200: {mon}\n{log}"
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM presentity WHERE username = 'bob' AND domain = 'example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(n >= 1, "Kamailio stored bob's presentity\n{log}");
}

/// RFC 3856: a sipp watcher SUBSCRIBEs to alice at the edgeplane presence
/// server, gets the current state, and then a NOTIFY saying she is
/// talking once a PUBLISH says so.
#[test]
fn a_sipp_watcher_is_notified() {
    if !common::kernel_available("sip_watcher") {
        return;
    }
    watcher("w", false, false);
}

/// The same SUBSCRIBE/NOTIFY and PUBLISH over IPv6.
#[test]
fn a_sipp_watcher_is_notified_over_ipv6() {
    if !common::kernel_available("sip_watcher_ipv6") {
        return;
    }
    watcher("x", true, false);
}

/// Over TCP: the 200 and every NOTIFY come back on the watcher's own
/// connection (the server opens none of its own), Via naming TCP.
#[test]
fn a_sipp_watcher_over_tcp_is_notified_on_its_connection() {
    if !common::kernel_available("sip_watcher_tcp") {
        return;
    }
    watcher("y", false, true);
}

fn watcher(tag: &str, v6: bool, tcp: bool) {
    let (ua_ip, srv) = if v6 {
        ("2001:db8:5::2", "[2001:db8:6::2]:5070")
    } else {
        ("10.5.0.2", "10.6.0.2:5070")
    };
    let ua_pub = if v6 {
        "[2001:db8:5::2]:5064"
    } else {
        "10.5.0.2:5064"
    };
    let mut net = Net::new(tag, env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let db = net.dir.join("presence.db").display().to_string();
    let srv_cfg = net.presence_config_at("srv", srv, &db);
    net.daemon("srv", &srv_cfg);
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sip/watcher.xml");
    let watcher = Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            &net.name("ua"),
            "sipp",
            "-sf",
            scenario,
            "-i",
            ua_ip,
            "-p",
            "5062",
            srv,
            "-m",
            "1",
            "-nostdin",
            "-trace_msg",
            "-message_file",
        ])
        .arg(net.dir.join("watcher-messages.log"))
        .args(["-t", if tcp { "t1" } else { "u1" }])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp");
    // The watcher's SUBSCRIBE in and its first NOTIFY out before the
    // PUBLISH (bounded: sipp may start slowly on a loaded machine).
    let counter = |name: &str| {
        net.call("srv", Request::Stats)
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["name"] == name)
            .map(|r| r["packets"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while (counter("requests_subscribe") == 0 || counter("notifies") == 0)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(200));
    // alice starts talking: a PUBLISH, as the monitor would send it.
    let ua = format!("/run/netns/{}", net.name("ua"));
    thread::spawn(move || {
        enter_netns(&ua).unwrap();
        let s = UdpSocket::bind(ua_pub).unwrap();
        let body = control::presence::pidf(
            "alice@example.com",
            control::sip_monitor::track::Status::Talking,
            &[],
        );
        let m = control::presence::publish(
            "alice@example.com",
            srv,
            ua_pub,
            "pubw",
            1,
            None,
            3600,
            &body,
        );
        s.send_to(m.as_bytes(), srv).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).expect("PUBLISH answered");
        assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    })
    .join()
    .unwrap();
    let out = watcher.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the sipp watcher did not complete: {}\nmessages:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(net.dir.join("watcher-messages.log")).unwrap_or_default()
    );
}

/// PUBLISH over TCP is answered on the connection; a modification naming
/// an ETag the server never issued gets 412 (RFC 3903 §6), one naming an
/// issued ETag is accepted.
#[test]
fn publish_over_tcp_and_conditional_requests() {
    if !common::kernel_available("sip_tcp_412") {
        return;
    }
    let mut net = Net::new("c", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let srv_cfg = net.presence_config(None);
    net.daemon("srv", &srv_cfg);
    let ua = format!("/run/netns/{}", net.name("ua"));
    let (tcp_reply, bad, good) = thread::spawn(move || {
        use std::io::{Read, Write};
        enter_netns(&ua).unwrap();
        let body = control::presence::pidf(
            "carol@example.com",
            control::sip_monitor::track::Status::Online,
            &[],
        );
        let m = control::presence::publish(
            "carol@example.com",
            "10.6.0.2:5070",
            "10.5.0.2:5066",
            "tcp1",
            1,
            None,
            3600,
            &body,
        );
        let mut c = std::net::TcpStream::connect("10.6.0.2:5070").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(m.as_bytes()).unwrap();
        let mut buf = [0u8; 2048];
        let n = c.read(&mut buf).unwrap();
        let tcp_reply = String::from_utf8_lossy(&buf[..n]).to_string();
        let etag = control::sip_monitor::sip::parse(&buf[..n])
            .unwrap()
            .0
            .etag
            .unwrap()
            .into_owned();
        let u = UdpSocket::bind("10.5.0.2:5066").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut ask = |tag: &str, n: u32| {
            let m = control::presence::publish(
                "carol@example.com",
                "10.6.0.2:5070",
                "10.5.0.2:5066",
                &format!("u{n}"),
                n,
                Some(tag),
                3600,
                &body,
            );
            u.send_to(m.as_bytes(), "10.6.0.2:5070").unwrap();
            let k = u.recv(&mut buf).unwrap();
            control::sip_monitor::sip::parse(&buf[..k])
                .unwrap()
                .0
                .status()
                .unwrap()
        };
        (tcp_reply, ask("never-issued", 2), ask(&etag, 3))
    })
    .join()
    .unwrap();
    assert!(
        tcp_reply.starts_with("SIP/2.0 200 OK") && tcp_reply.contains("SIP-ETag:"),
        "{tcp_reply}"
    );
    assert_eq!((bad, good), (412, 200));
    let h = net.call(
        "srv",
        Request::PresenceHistory {
            user: "carol@example.com".into(),
        },
    );
    assert_eq!(
        h.as_array().unwrap().len(),
        2,
        "the TCP PUBLISH and the accepted modification: {h}"
    );
}

/// Issue 12: two presence servers on one PostgreSQL serve one store, and
/// the entity-tags live in the database: a refresh sent to the other
/// server, or to a restarted one, is answered 200 (not 412); a replaced
/// tag is refused by both.
#[test]
fn two_presence_servers_share_one_postgresql_store_and_its_etags() {
    if !common::kernel_available("presence_two_servers") {
        return;
    }
    let pg = testlab::pg_lab::PgLab::start("two").expect("private PostgreSQL server");
    let mut net = Net::new("p2", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let cfg_a = net.presence_config_at("srv", "10.6.0.2:5070", &pg.url());
    let cfg_b = net.presence_config_at("srv2", "10.6.0.2:5071", &pg.url());
    net.daemon("srv", &cfg_a);
    let srv_ns = net.name("srv");
    net.daemon_in("srv2", &srv_ns, &cfg_b);
    let ua = format!("/run/netns/{}", net.name("ua"));
    let user = "dave@example.com";
    // One PUBLISH to `to`: its status code and SIP-ETag.
    let publish = move |to: &'static str,
                        etag: Option<String>,
                        status: Option<control::sip_monitor::track::Status>,
                        n: u32| {
        let ua = ua.clone();
        thread::spawn(move || {
            enter_netns(&ua).unwrap();
            let body = status
                .map(|s| control::presence::pidf(user, s, &[]))
                .unwrap_or_default();
            let m = control::presence::publish(
                user,
                to,
                "10.5.0.2:5066",
                &format!("p2-{n}"),
                n,
                etag.as_deref(),
                3600,
                &body,
            );
            let u = UdpSocket::bind("10.5.0.2:5066").unwrap();
            u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            u.send_to(m.as_bytes(), to).unwrap();
            let mut buf = [0u8; 2048];
            let k = u.recv(&mut buf).unwrap();
            let (r, _) = control::sip_monitor::sip::parse(&buf[..k]).unwrap();
            (r.status().unwrap(), r.etag.map(|e| e.into_owned()))
        })
        .join()
        .unwrap()
    };
    use control::sip_monitor::track::Status;
    let (c1, e1) = publish("10.6.0.2:5070", None, Some(Status::Online), 1);
    assert_eq!(c1, 200);
    // A refresh of A's tag, at B.
    let (c2, e2) = publish("10.6.0.2:5071", e1.clone(), None, 2);
    assert_eq!(c2, 200, "B knows the tag A issued");
    assert_ne!(e1, e2, "a new tag for each refresh");
    // A modification at A with B's tag; the replaced one is refused by both.
    let (c3, e3) = publish("10.6.0.2:5070", e2.clone(), Some(Status::Talking), 3);
    assert_eq!(c3, 200);
    assert_eq!(publish("10.6.0.2:5071", e1.clone(), None, 4).0, 412);
    assert_eq!(publish("10.6.0.2:5070", e2.clone(), None, 5).0, 412);
    // One store: both servers show the status A stored last.
    for role in ["srv", "srv2"] {
        let rows = net.call(
            role,
            Request::PresenceShow {
                user: Some(user.into()),
            },
        );
        assert_eq!(rows[0]["status"], "talking", "{role}: {rows}");
    }
    // A restart (failover back to A) still knows the live tag.
    net.kill("srv");
    net.daemon("srv", &cfg_a);
    let (c6, _) = publish("10.6.0.2:5070", e3.clone(), None, 6);
    assert_eq!(c6, 200, "a restarted server answers the refresh");
}
