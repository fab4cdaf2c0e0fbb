//! The monitor on the session control server itself (claim 1): Kamailio
//! is the registrar and proxy in `mon` (10.5.0.1:5060), and the monitor
//! watches that namespace's interface toward the UAs, `eth0`, and nothing
//! else. sipp UAs in `ua` register, call, cancel, hang up and de-register
//! through Kamailio with the XML scenarios in `tests/sip/`.
//!
//! What Kamailio sends itself (the 200s to REGISTER, the forwarded INVITE
//! and its answers, the proxied BYE) leaves through eth0 and only the TC
//! egress program sees it: a registration becomes online only through the
//! registrar's 200, which never arrives at the host.

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use control::api::Request;
use testlab::sip_lab::Net;

#[test]
fn the_monitor_on_kamailios_own_interface_sees_both_directions() {
    if !common::kernel_available("sip_kamailio_registrar") {
        return;
    }
    let mut net = Net::new("r", env!("CARGO_BIN_EXE_edgeplane").as_ref());
    let (kam, mon_cfg) = net.on_registrar();

    // alice, bob and carol register; bob answers a call, carol rings
    // until the caller gives up.
    net.sipp("register.xml", "alice", "5061");
    net.sipp("register.xml", "bob", "5062");
    net.sipp("register.xml", "carol", "5063");
    let bob = net.sipp_uas("uas_answer.xml", "bob", "5062");
    let carol = net.sipp_uas("uas_ring.xml", "carol", "5063");
    net.sipp("call.xml", "bob", "5061");
    net.sipp("cancel.xml", "carol", "5061");
    net.sipp("unregister.xml", "alice", "5061");
    drop((bob, carol));

    // Everything published and answered (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mon = loop {
        let mon = net.call("mon", Request::SipMonitorStatus);
        let done = net.history("alice@example.com").last().map(String::as_str) == Some("offline")
            && mon["publish_ok"] == mon["published"];
        if done || Instant::now() > deadline {
            break mon;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let log = || std::fs::read_to_string(net.dir.join("registrar.log")).unwrap_or_default();
    assert_eq!(
        net.history("alice@example.com"),
        vec!["online", "talking", "terminated", "offline"],
        "monitor: {mon}\n{}",
        log()
    );
    assert_eq!(
        net.history("bob@example.com"),
        vec!["online", "talking", "terminated"],
        "monitor: {mon}"
    );
    assert_eq!(
        net.history("carol@example.com"),
        vec!["online"],
        "a cancelled call never talks: {mon}"
    );
    assert_eq!(mon["dialogs"], 0, "the cancelled call is forgotten: {mon}");
    assert_eq!(mon["publish_ok"], mon["published"], "{mon}");
    assert_eq!(
        mon["invalid"],
        serde_json::json!({}),
        "Kamailio's and sipp's messages all parse: {mon}"
    );

    // Both programs fed the one ring: the egress count includes what
    // Kamailio sent (its three 200s to REGISTER and its share of both
    // calls), and the monitor read every copy the programs made.
    thread::sleep(Duration::from_millis(300));
    let rows = net.call("mon", Request::Stats);
    let count = |name: &str| net.counter("mon", "sip-monitor", name);
    assert!(
        count("egress_copies") >= 10,
        "Kamailio's own messages seen leaving: {rows}"
    );
    assert!(
        count("copies_read") >= count("copied"),
        "every copy read: {rows}"
    );

    // A monitor restarted takes the pinned egress link over: still one
    // classifier on eth0, and what Kamailio sends is seen again.
    net.kill("mon");
    net.daemon("mon", &mon_cfg);
    let ns = format!("/run/netns/{}", net.name("mon"));
    let on_eth0 = thread::spawn(move || {
        testlab::topo::enter_netns(&ns).unwrap();
        dataplane_user::egress::attached("eth0").unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(on_eth0, vec!["sip_monitor_egr"], "one egress program");
    net.sipp("register.xml", "alice", "5061");
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.history("alice@example.com").last().map(String::as_str) != Some("online")
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        net.history("alice@example.com").last().map(String::as_str),
        Some("online"),
        "the restarted monitor saw the registrar's 200"
    );
    drop(kam);
}
