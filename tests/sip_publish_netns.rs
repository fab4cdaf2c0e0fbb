//! PUBLISH over a lossy path (issue 14, RFC 3261 §17.1.2.2): a presence
//! server stub in the `srv` namespace drops the first two copies of every
//! PUBLISH and answers the first one to reach it for each user with a
//! 500. The monitor retransmits on timer E until answered, retries a
//! failed PUBLISH with the terminal's newest status, stops retransmitting
//! a PUBLISH once a newer one is sent, and the server ends with each
//! terminal's last status. Over TCP, the monitor reconnects after the
//! presence server restarts.

mod common;

use std::{
    collections::HashMap,
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use control::{api::Request, sip_monitor::track::Status};
use testlab::{
    sip_lab::{run_ua, uas, Net},
    topo::enter_netns,
};

/// What the stub saw: each datagram's (user, Call-ID, status) in order,
/// and the statuses it answered 200 to, per user.
#[derive(Default)]
struct Seen {
    datagrams: Vec<(String, String, Status)>,
    accepted: HashMap<String, Vec<Status>>,
}

fn lossy_presence(
    ns: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> thread::JoinHandle<()> {
    let (ready, bound) = std::sync::mpsc::channel();
    let h = thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let s = UdpSocket::bind("10.6.0.2:5070").unwrap();
        let _ = ready.send(());
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut copies: HashMap<String, u32> = HashMap::new();
        let mut refused: Vec<String> = Vec::new();
        let mut buf = [0u8; 8192];
        let mut etag = 0;
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                continue;
            };
            let raw = &buf[..n];
            let Ok((m, _)) = control::sip_monitor::sip::parse(raw) else {
                continue;
            };
            let user = m.to.aor();
            let status = control::presence::pidf_status(&String::from_utf8_lossy(&m.body))
                .expect("a PIDF status");
            let mut seen = seen.lock().unwrap();
            seen.datagrams
                .push((user.clone(), m.call_id.to_string(), status));
            let c = copies.entry(m.call_id.to_string()).or_insert(0);
            *c += 1;
            if *c < 3 {
                continue; // lost
            }
            let reply = if !refused.contains(&user) {
                refused.push(user.clone());
                edgeplane::sip_monitor::response(&m, raw, 500, "Server Internal Error", "")
            } else {
                etag += 1;
                seen.accepted.entry(user).or_default().push(status);
                edgeplane::sip_monitor::response(
                    &m,
                    raw,
                    200,
                    "OK",
                    &format!("SIP-ETag: e{etag}\r\nExpires: 3600\r\n"),
                )
            };
            let _ = s.send_to(reply.as_bytes(), peer);
        }
    });
    let _ = bound.recv_timeout(Duration::from_secs(5));
    h
}

#[test]
fn a_lost_or_refused_publish_is_sent_again_with_the_newest_status() {
    if !common::kernel_available("sip_publish_netns") {
        return;
    }
    let mut net = Net::new("p", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = lossy_presence(
        format!("/run/netns/{}", net.name("srv")),
        stop.clone(),
        seen.clone(),
    );
    let mon_cfg = net.monitor_config("example.com", "10.6.0.2:5070", "");
    net.daemon("mon", &mon_cfg);
    let _server = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    run_ua(format!("/run/netns/{}", net.name("ua")));

    let last = |u: &str| {
        seen.lock()
            .unwrap()
            .accepted
            .get(u)
            .and_then(|v| v.last().copied())
    };
    let t0 = Instant::now();
    while (last("alice@example.com") != Some(Status::Offline)
        || last("bob@example.com") != Some(Status::Terminated))
        && t0.elapsed() < Duration::from_secs(20)
    {
        thread::sleep(Duration::from_millis(100));
    }
    let mon = net.call("mon", Request::SipMonitorStatus);
    stop.store(true, Ordering::SeqCst);
    let _ = stub.join();
    let (alice, bob) = (last("alice@example.com"), last("bob@example.com"));
    let seen = seen.lock().unwrap();
    assert_eq!(alice, Some(Status::Offline), "monitor: {mon}");
    assert_eq!(bob, Some(Status::Terminated), "monitor: {mon}");
    // What the server took is alice's story in order (coalescing may
    // skip a status, never reorder one).
    let order = [
        Status::Online,
        Status::Talking,
        Status::Terminated,
        Status::Offline,
    ];
    let mut at = 0;
    for s in &seen.accepted["alice@example.com"] {
        let i = order[at..].iter().position(|o| o == s).expect("in order") + at;
        at = i;
    }
    // Never stale: once a newer PUBLISH of a user is on the wire, an
    // older one is not retransmitted.
    let mut first: HashMap<&str, Vec<&str>> = HashMap::new();
    for (u, id, _) in &seen.datagrams {
        let ids = first.entry(u).or_default();
        match ids.iter().position(|x| x == id) {
            Some(i) => assert_eq!(
                i,
                ids.len() - 1,
                "{u}: {id} retransmitted after a newer PUBLISH"
            ),
            None => ids.push(id),
        }
    }
    // Every PUBLISH answered was sent three times (two lost): the copies
    // are the monitor's retransmissions, counted.
    let retrans = mon["publish_retransmitted"].as_u64().unwrap();
    let answered = seen.accepted.values().map(Vec::len).sum::<usize>() as u64 + 2;
    assert!(
        retrans >= 2 * answered,
        "{retrans} retransmissions for {answered} answered: {mon}"
    );
    assert_eq!(mon["publish_failed"], 2, "one 500 per user: {mon}");
    assert_eq!(mon["publish_ok"].as_u64().unwrap(), answered - 2, "{mon}");
    assert_eq!(mon["publish_timeouts"], 0, "{mon}");
}

/// Publications live as long as their Expires (RFC 3903 §4.1): with the
/// monitor asking for 2 s, it refreshes each one before it lapses (the
/// status stays online, no new history), and once the monitor is gone the
/// presence server turns the status offline itself, cause "expired".
#[test]
fn publications_are_refreshed_and_lapse_when_the_monitor_is_gone() {
    if !common::kernel_available("sip_publish_expiry") {
        return;
    }
    let mut net = Net::new("x", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let srv_cfg = net.presence_config(None);
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config("example.com", "10.6.0.2:5070", "publish_expires_secs = 2\n");
    net.daemon("mon", &mon_cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    net.register("alice@example.com", "reg-x", 600);

    let show = |net: &Net| -> serde_json::Value {
        net.call(
            "srv",
            Request::PresenceShow {
                user: Some("alice@example.com".into()),
            },
        )[0]
        .clone()
    };
    // Past two lifetimes: still online, refreshed, one history row.
    thread::sleep(Duration::from_millis(4500));
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(show(&net)["status"], "online", "{mon}");
    assert!(
        mon["publish_refreshed"].as_u64().unwrap() >= 2,
        "refreshed at 1.8 s and 3.6 s: {mon}"
    );
    let history = |net: &Net| -> Vec<(String, String)> {
        net.call(
            "srv",
            Request::PresenceHistory {
                user: "alice@example.com".into(),
            },
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                r["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect()
    };
    assert_eq!(
        history(&net),
        vec![("online".to_string(), "published".to_string())],
        "a refresh is not a change"
    );
    let left = show(&net)["expires"].as_f64().unwrap() - now_unix();
    assert!((0.0..=2.5).contains(&left), "expires within 2 s: {left}");

    // The monitor goes away: within a lifetime and a sweep, offline.
    net.kill("mon");
    let deadline = Instant::now() + Duration::from_secs(6);
    while show(&net)["status"] != "offline" && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(show(&net)["status"], "offline");
    assert!(show(&net)["expires"].is_null(), "offline is final");
    assert_eq!(
        history(&net).last().unwrap(),
        &("offline".to_string(), "expired".to_string())
    );
    let rows = net.call("srv", Request::Stats);
    let expired = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "presence" && c["name"] == "expired")
        .unwrap_or_else(|| panic!("no presence counter expired: {rows}"))["packets"]
        .as_u64()
        .unwrap();
    assert_eq!(expired, 1, "{rows}");
    stop.store(true, Ordering::SeqCst);
    registrar.join().unwrap();
}

/// Over TCP the monitor holds one connection to the presence server.
/// The server is SIGKILLed: a change made while it is down is retried
/// until a new connection takes it, once the server is back (same SQLite
/// store). A change after that goes over the new connection. Nothing is
/// lost, nothing is stored twice, and one connection is left.
#[test]
fn over_tcp_the_monitor_reconnects_after_the_presence_server_restarts() {
    if !common::kernel_available("sip_publish_tcp_restart") {
        return;
    }
    let mut net = Net::new("r", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let srv_cfg = net.presence_config(None);
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config(
        "example.com",
        "10.6.0.2:5070",
        "presence_transport = \"tcp\"\n",
    );
    net.daemon("mon", &mon_cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    let wait_for = |net: &Net, user: &str, want: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while net.history(user) != want && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        let mon = net.call("mon", Request::SipMonitorStatus);
        assert_eq!(net.history(user), want, "{user}; monitor: {mon}");
    };

    net.register("alice@example.com", "r-a1", 600);
    wait_for(&net, "alice@example.com", &["online"]);
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(mon["presence_connections"], 1, "{mon}");

    // The server dies; bob registers while it is down.
    net.kill("srv");
    net.register("bob@example.com", "r-b1", 600);
    thread::sleep(Duration::from_millis(1500));
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(mon["publish_ok"], 1, "nothing answered while down: {mon}");
    net.daemon("srv", &srv_cfg);
    wait_for(&net, "bob@example.com", &["online"]);

    // After the restart: alice de-registers over the new connection.
    net.register("alice@example.com", "r-a2", 0);
    wait_for(&net, "alice@example.com", &["online", "offline"]);
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(mon["publish_ok"], 3, "alice twice and bob once: {mon}");
    assert_eq!(mon["publish_timeouts"], 0, "{mon}");
    assert_eq!(
        mon["presence_connections"], 2,
        "one before the restart, one after: {mon}"
    );
    assert_eq!(
        net.tcp_established("mon", "10.6.0.2:5070"),
        1,
        "one connection left"
    );
    stop.store(true, Ordering::SeqCst);
    registrar.join().unwrap();
}

/// A connection that closes under a request sent on it (the server took
/// it and went away without an answer): the request goes again on a new
/// connection at its next timer E, not after timer F's 32 s.
#[test]
fn over_tcp_a_request_whose_connection_closes_is_sent_again_on_a_new_one() {
    if !common::kernel_available("sip_publish_tcp_resend") {
        return;
    }
    let mut net = Net::new("c", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    // The stub: the first connection reads one request and closes; the
    // next ones answer every request with a 200.
    let (ready, bound) = std::sync::mpsc::channel();
    let ns = format!("/run/netns/{}", net.name("srv"));
    let stub = thread::spawn(move || -> Vec<Vec<String>> {
        use std::io::{Read, Write};
        enter_netns(&ns).unwrap();
        let l = std::net::TcpListener::bind("10.6.0.2:5070").unwrap();
        let _ = ready.send(());
        let mut seen: Vec<Vec<String>> = Vec::new();
        for conn in 0..2 {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut calls = Vec::new();
            let (mut stream, mut buf) = (Vec::new(), [0u8; 8192]);
            'conn: while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                stream.extend_from_slice(&buf[..n]);
                if let Ok(Some((m, raw))) = control::sip_monitor::stream::next_message(&mut stream)
                {
                    calls.push(m.call_id.to_string());
                    if conn == 0 {
                        break 'conn; // taken, never answered
                    }
                    let reply = edgeplane::sip_monitor::response(
                        &m,
                        &raw,
                        200,
                        "OK",
                        "SIP-ETag: e1\r\nExpires: 3600\r\n",
                    );
                    c.write_all(reply.as_bytes()).unwrap();
                    break 'conn; // one is all this test sends
                }
            }
            seen.push(calls);
            if conn == 1 {
                thread::sleep(Duration::from_millis(500));
            }
        }
        seen
    });
    bound.recv_timeout(Duration::from_secs(5)).unwrap();
    let mon_cfg = net.monitor_config(
        "example.com",
        "10.6.0.2:5070",
        "presence_transport = \"tcp\"\n",
    );
    net.daemon("mon", &mon_cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    net.register("alice@example.com", "r-c1", 600);
    let t0 = Instant::now();
    let seen = stub.join().unwrap();
    let took = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut mon = net.call("mon", Request::SipMonitorStatus);
    while mon["publish_ok"] != 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        mon = net.call("mon", Request::SipMonitorStatus);
    }
    stop.store(true, Ordering::SeqCst);
    registrar.join().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].len(),
        1,
        "one request on the first connection: {seen:?}"
    );
    assert_eq!(
        seen[1], seen[0],
        "the same request again on the second: {seen:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "resent at timer E, not timer F: {took:?}"
    );
    assert_eq!(mon["publish_ok"], 1, "{mon}");
    assert_eq!(mon["publish_resent"], 1, "{mon}");
    assert_eq!(mon["presence_connections"], 2, "{mon}");
    assert_eq!(mon["publish_timeouts"], 0, "{mon}");
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
