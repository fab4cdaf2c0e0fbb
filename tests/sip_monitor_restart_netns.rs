//! The sip-monitor SIGKILLed during calls (issue 15): started again, it
//! takes up its state (dialogs, registrations, publications: once all
//! from the journal, once all from the snapshot) and reads the copies
//! its ring kept while it was down, so the presence
//! server ends with every terminal as it is: a call hung up meanwhile
//! terminated, a call still going still talking (and not published
//! again), a de-registration meanwhile offline, a registration meanwhile
//! online. A restart that cannot have seen the downtime (the copy
//! program loaded afresh) ends the dialogs it restored rather than leave
//! a terminal talking wrongly.

mod common;

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::{
    sip_lab::{sip, uas, Net},
    topo::enter_netns,
};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.5.0.2\r\ns=-\r\nc=IN IP4 10.5.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Send each message from the UA (10.5.0.2:5060) to the UAS and wait for
/// its number of replies.
fn exchange(net: &Net, msgs: Vec<(String, usize)>) {
    let ua = format!("/run/netns/{}", net.name("ua"));
    thread::spawn(move || {
        enter_netns(&ua).unwrap();
        let s = UdpSocket::bind("10.5.0.2:5060").unwrap();
        s.connect("10.6.0.2:5060").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        for (m, replies) in msgs {
            s.send(m.as_bytes()).unwrap();
            for _ in 0..replies {
                s.recv(&mut buf).expect("a reply from the UAS");
            }
        }
    })
    .join()
    .unwrap();
}

fn call(net: &Net, a: &str, b: &str, id: &str) {
    exchange(
        net,
        vec![
            (
                sip("INVITE sip:x SIP/2.0", a, b, id, "1 INVITE", "", SDP),
                2,
            ),
            (sip("ACK sip:x SIP/2.0", a, b, id, "1 ACK", "", ""), 0),
        ],
    );
}

fn hang_up(net: &Net, a: &str, b: &str, id: &str) {
    exchange(
        net,
        vec![(sip("BYE sip:x SIP/2.0", a, b, id, "2 BYE", "", ""), 1)],
    );
}

fn wait_for(net: &Net, want: &[(&str, &[&str])]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let ok = || want.iter().all(|(u, h)| net.history(u) == *h);
    while !ok() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    for (u, h) in want {
        let mon = net.call("mon", Request::SipMonitorStatus);
        assert_eq!(net.history(u), *h, "{u}; monitor: {mon}");
    }
}

/// Killed with everything since its start in the journal (the snapshot
/// is rewritten once a minute at most: it holds nothing yet).
#[test]
fn a_monitor_killed_during_calls_carries_on_from_its_journal() {
    killed_during_calls("y", 60_000);
}

/// Killed with everything in its snapshot (rewritten every 10 ms at most,
/// and given the time to be).
#[test]
fn a_monitor_killed_during_calls_carries_on_from_its_snapshot() {
    killed_during_calls("z", 10);
}

/// The snapshot the monitor left: its dialogs.
fn snapshot_dialogs(net: &Net) -> usize {
    let text = std::fs::read_to_string(net.dir.join("mon-state.json")).expect("a snapshot");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tracker"]["dialogs"].as_array().map_or(0, Vec::len)
}

fn killed_during_calls(tag: &str, state_interval_ms: u64) {
    if !common::kernel_available("sip_monitor_restart") {
        return;
    }
    let mut net = Net::new(tag, env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let srv_cfg = net.presence_config(None);
    net.daemon("srv", &srv_cfg);
    let mon_cfg = net.monitor_config(
        "example.com",
        "10.6.0.2:5070",
        &format!("state_interval_ms = {state_interval_ms}\n"),
    );
    net.daemon("mon", &mon_cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    let (a, b, c, d, e) = (
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
        "erin@example.com",
    );
    for (i, u) in [a, b, c, d].into_iter().enumerate() {
        net.register(u, &format!("r{i}"), 600);
    }
    call(&net, a, b, "c1");
    call(&net, c, d, "c2");
    let talking: &[&str] = &["online", "talking"];
    wait_for(
        &net,
        &[(a, talking), (b, talking), (c, talking), (d, talking)],
    );

    let from_journal = state_interval_ms >= 60_000;
    if !from_journal {
        thread::sleep(Duration::from_millis(200)); // a snapshot or more
    }
    // Killed; meanwhile alice hangs up, bob de-registers, erin registers.
    net.kill("mon");
    let in_snapshot = snapshot_dialogs(&net);
    assert_eq!(in_snapshot, if from_journal { 0 } else { 2 });
    hang_up(&net, a, b, "c1");
    net.register(b, "r1-off", 0);
    net.register(e, "r4", 600);
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    net.daemon("mon", &mon_cfg);
    wait_for(
        &net,
        &[
            (a, &["online", "talking", "terminated"]),
            (b, &["online", "talking", "terminated", "offline"]),
            (e, &["online"]),
        ],
    );
    let caught_up = t0.elapsed();
    // The call still going is neither ended nor published again.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(net.history(c), talking);
    assert_eq!(net.history(d), talking);
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert_eq!(
        (
            &mon["restored_dialogs"],
            &mon["restored_registrations"],
            &mon["restore_note"]
        ),
        (&2.into(), &4.into(), &serde_json::Value::Null),
        "{mon}"
    );
    assert_eq!(mon["dialogs"], 1, "c2 only: {mon}");
    let replayed = mon["restored_journal"].as_u64().unwrap();
    if from_journal {
        assert!(replayed > 0, "the journal carried it: {mon}");
    }
    eprintln!(
        "monitor SIGKILLed with 2 calls up ({in_snapshot} dialogs in its snapshot, {replayed} journal records replayed); restarted, it caught up on 3 changes made while it was down in {} ms",
        caught_up.as_millis()
    );
    // Tracking goes on: erin de-registers.
    net.register(e, "r4-off", 0);
    wait_for(&net, &[(e, &["online", "offline"])]);

    // Killed again, and the copy program with it (its pins removed): the
    // restarted monitor cannot know whether c2 went on, so it ends it.
    net.kill("mon");
    testlab::topo::remove_pins(&std::path::PathBuf::from(format!(
        "/sys/fs/bpf/edgeplane/{}/mon",
        net.prefix
    )))
    .unwrap();
    net.daemon("mon", &mon_cfg);
    let ended: &[&str] = &["online", "talking", "terminated"];
    wait_for(&net, &[(c, ended), (d, ended)]);
    let mon = net.call("mon", Request::SipMonitorStatus);
    assert!(
        mon["restore_note"]
            .as_str()
            .is_some_and(|n| n.contains("loaded afresh")),
        "{mon}"
    );
    assert_eq!(mon["dialogs"], 0, "{mon}");
    stop.store(true, Ordering::SeqCst);
    registrar.join().unwrap();
}
