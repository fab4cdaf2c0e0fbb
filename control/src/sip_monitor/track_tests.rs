//! The tracker's dialog and registration tests (the expiry ones are in
//! `track_expiry_tests.rs`); `msg` builds the messages both use.

use super::*;
use crate::sip_monitor::sip::parse;

pub fn msg(first: &str, from: &str, to: &str, call: &str, cseq: &str, extra: &str) -> Vec<u8> {
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:{from}>;tag=f\r\nTo: <sip:{to}>\r\nCall-ID: {call}\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn run(t: &mut Tracker, raw: &[u8], now: u64) -> Vec<(String, Status)> {
    let (m, _) = parse(raw).unwrap();
    t.handle(&m, now)
        .into_iter()
        .map(|c| (c.user, c.status))
        .collect()
}

fn tracker(on: TalkingOn, off: TerminatedOn) -> Tracker {
    Tracker::new(TrackerConfig {
        domain: "example.com".into(),
        talking_on: on,
        terminated_on: off,
        default_expires: 3600,
        max_call_ms: 7_200_000,
    })
}

fn call(t: &mut Tracker) -> Vec<Vec<(String, Status)>> {
    let (a, b) = ("alice@example.com", "bob@example.com");
    vec![
        run(
            t,
            &msg(
                "INVITE sip:bob@example.com SIP/2.0",
                a,
                b,
                "c1",
                "1 INVITE",
                "",
            ),
            1,
        ),
        run(
            t,
            &msg("SIP/2.0 180 Ringing", a, b, "c1", "1 INVITE", ""),
            2,
        ),
        run(t, &msg("SIP/2.0 200 OK", a, b, "c1", "1 INVITE", ""), 3),
        run(
            t,
            &msg("ACK sip:bob@example.com SIP/2.0", a, b, "c1", "1 ACK", ""),
            4,
        ),
        run(
            t,
            &msg("BYE sip:bob@example.com SIP/2.0", a, b, "c1", "2 BYE", ""),
            5,
        ),
        run(t, &msg("SIP/2.0 200 OK", a, b, "c1", "2 BYE", ""), 6),
    ]
}

#[test]
fn talking_and_terminated_at_the_configured_moments() {
    let both = |s: Status| {
        vec![
            ("alice@example.com".to_string(), s),
            ("bob@example.com".to_string(), s),
        ]
    };
    let e: Vec<(String, Status)> = vec![];
    let mut t = tracker(TalkingOn::Ok200, TerminatedOn::Bye);
    assert_eq!(
        call(&mut t),
        vec![
            e.clone(),
            e.clone(),
            both(Status::Talking),
            e.clone(),
            both(Status::Terminated),
            e.clone()
        ]
    );
    let mut t = tracker(TalkingOn::Ack, TerminatedOn::ByeOk);
    assert_eq!(
        call(&mut t),
        vec![
            e.clone(),
            e.clone(),
            e.clone(),
            both(Status::Talking),
            e.clone(),
            both(Status::Terminated)
        ]
    );
    assert_eq!(t.dialogs(), 0);
}

#[test]
fn rejected_and_cancelled_calls_never_talk() {
    let mut t = tracker(TalkingOn::Ok200, TerminatedOn::Bye);
    let (a, b) = ("alice@example.com", "bob@example.com");
    run(
        &mut t,
        &msg("INVITE sip:b SIP/2.0", a, b, "c2", "1 INVITE", ""),
        1,
    );
    assert!(run(
        &mut t,
        &msg("SIP/2.0 486 Busy Here", a, b, "c2", "1 INVITE", ""),
        2
    )
    .is_empty());
    run(
        &mut t,
        &msg("INVITE sip:b SIP/2.0", a, b, "c3", "1 INVITE", ""),
        3,
    );
    run(
        &mut t,
        &msg("CANCEL sip:b SIP/2.0", a, b, "c3", "1 CANCEL", ""),
        4,
    );
    assert!(run(
        &mut t,
        &msg("SIP/2.0 487 Request Terminated", a, b, "c3", "1 INVITE", ""),
        5
    )
    .is_empty());
    assert_eq!(t.dialogs(), 0);
}

#[test]
fn registrations_online_refresh_offline_and_expiry() {
    let mut t = tracker(TalkingOn::Ok200, TerminatedOn::Bye);
    let u = "carol@example.com";
    run(
        &mut t,
        &msg(
            "REGISTER sip:example.com SIP/2.0",
            u,
            u,
            "r1",
            "1 REGISTER",
            "Expires: 60\r\n",
        ),
        0,
    );
    assert_eq!(
        run(
            &mut t,
            &msg(
                "SIP/2.0 200 OK",
                u,
                u,
                "r1",
                "1 REGISTER",
                "Contact: <sip:carol@10.0.0.9>;expires=60\r\n"
            ),
            1
        ),
        vec![(u.into(), Status::Online)]
    );
    run(
        &mut t,
        &msg(
            "REGISTER sip:example.com SIP/2.0",
            u,
            u,
            "r1",
            "2 REGISTER",
            "",
        ),
        30_000,
    );
    assert!(
        run(
            &mut t,
            &msg(
                "SIP/2.0 200 OK",
                u,
                u,
                "r1",
                "2 REGISTER",
                "Contact: <sip:carol@10.0.0.9>;expires=60\r\n"
            ),
            30_001
        )
        .is_empty(),
        "a refresh changes nothing"
    );
    assert!(
        t.tick(60_000).is_empty(),
        "refreshed at 30 s, valid until 90 s"
    );
    assert_eq!(
        t.tick(90_001)
            .into_iter()
            .map(|c| c.status)
            .collect::<Vec<_>>(),
        vec![Status::Offline]
    );
    run(
        &mut t,
        &msg(
            "REGISTER sip:example.com SIP/2.0",
            u,
            u,
            "r2",
            "1 REGISTER",
            "",
        ),
        100_000,
    );
    run(
        &mut t,
        &msg(
            "SIP/2.0 200 OK",
            u,
            u,
            "r2",
            "1 REGISTER",
            "Contact: <sip:carol@10.0.0.9>;expires=60\r\n",
        ),
        100_001,
    );
    run(
        &mut t,
        &msg(
            "REGISTER sip:example.com SIP/2.0",
            u,
            u,
            "r2",
            "2 REGISTER",
            "Expires: 0\r\n",
        ),
        100_002,
    );
    assert_eq!(
        run(
            &mut t,
            &msg("SIP/2.0 200 OK", u, u, "r2", "2 REGISTER", "Expires: 0\r\n"),
            100_003
        ),
        vec![(u.into(), Status::Offline)]
    );
}

/// A registrar that lists the bindings left (Kamailio's): the
/// de-registration's 200 names no Contact and no Expires; a query
/// (no Contact, no Expires) answered the same way changes nothing.
#[test]
fn a_removal_answered_with_no_bindings_is_offline() {
    let mut t = tracker(TalkingOn::Ok200, TerminatedOn::Bye);
    let u = "dora@example.com";
    let contact = "Contact: <sip:dora@10.0.0.7:5062>\r\n";
    let reg =
        |cseq: &str, extra: &str| msg("REGISTER sip:example.com SIP/2.0", u, u, "r9", cseq, extra);
    let ok = |cseq: &str, extra: &str| msg("SIP/2.0 200 OK", u, u, "r9", cseq, extra);
    run(
        &mut t,
        &reg("1 REGISTER", &format!("{contact}Expires: 3600\r\n")),
        0,
    );
    assert_eq!(
        run(
            &mut t,
            &ok(
                "1 REGISTER",
                "Contact: <sip:dora@10.0.0.7:5062>;expires=3600\r\n"
            ),
            1
        ),
        vec![(u.into(), Status::Online)]
    );
    run(&mut t, &reg("2 REGISTER", ""), 2);
    assert!(
        run(&mut t, &ok("2 REGISTER", ""), 3).is_empty(),
        "a query's answer changes nothing"
    );
    run(
        &mut t,
        &reg("3 REGISTER", &format!("{contact}Expires: 0\r\n")),
        4,
    );
    assert_eq!(
        run(&mut t, &ok("3 REGISTER", ""), 5),
        vec![(u.into(), Status::Offline)]
    );
    run(
        &mut t,
        &reg(
            "4 REGISTER",
            "Contact: <sip:dora@10.0.0.7:5062>;expires=60\r\n",
        ),
        6,
    );
    assert_eq!(
        run(&mut t, &ok("4 REGISTER", ""), 7),
        vec![(u.into(), Status::Online)],
        "a binding answered without the list stands for what it asked"
    );
    assert_eq!(
        t.tick(60_008)
            .into_iter()
            .map(|c| c.status)
            .collect::<Vec<_>>(),
        vec![Status::Offline],
        "for 60 s, the contact's own expires"
    );
    run(
        &mut t,
        &reg("5 REGISTER", &format!("{contact}Expires: 60\r\n")),
        70_000,
    );
    run(&mut t, &ok("5 REGISTER", ""), 70_001);
    run(
        &mut t,
        &reg("6 REGISTER", "Contact: *\r\nExpires: 0\r\n"),
        70_002,
    );
    assert_eq!(
        run(&mut t, &ok("6 REGISTER", ""), 70_003),
        vec![(u.into(), Status::Offline)],
        "Contact: * removes every binding"
    );
}

#[test]
fn only_our_domain_is_reported() {
    let mut t = tracker(TalkingOn::Ok200, TerminatedOn::Bye);
    let (a, b) = ("alice@example.com", "dave@elsewhere.net");
    run(
        &mut t,
        &msg(
            "INVITE sip:dave@elsewhere.net SIP/2.0",
            a,
            b,
            "c9",
            "1 INVITE",
            "",
        ),
        1,
    );
    assert_eq!(
        run(
            &mut t,
            &msg("SIP/2.0 200 OK", a, b, "c9", "1 INVITE", ""),
            2
        ),
        vec![(a.into(), Status::Talking)]
    );
}

#[test]
fn an_ipv6_call_carries_its_sdp_media_address() {
    let mut t = Tracker::new(TrackerConfig {
        domain: crate::sip_monitor::sip::domain_of("2001:db8:6::2"),
        talking_on: TalkingOn::Ok200,
        terminated_on: TerminatedOn::Bye,
        default_expires: 3600,
        max_call_ms: 7_200_000,
    });
    let (a, b) = ("sipp@[2001:db8:5::2]", "service@[2001:DB8:6:0::2]:5060");
    let sdp = "v=0\r\no=- 1 1 IN IP6 2001:db8:5::2\r\ns=-\r\nc=IN IP6 2001:db8:5::2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:service@[2001:db8:6::2]:5060 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8:5::2]:5061;branch=z9hG4bK6\r\nMax-Forwards: 70\r\nFrom: <sip:{a}>;tag=f\r\nTo: <sip:{b}>\r\nCall-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let (m, _) = parse(invite.as_bytes()).unwrap();
    assert!(t.handle(&m, 1).is_empty());
    let raw = msg("SIP/2.0 200 OK", a, b, "v6", "1 INVITE", "");
    let (ok, _) = parse(&raw).unwrap();
    let changes = t.handle(&ok, 2);
    // Only the callee is in the (IPv6 literal) domain; its AOR is the
    // canonical form whatever the UA wrote.
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].user, "service@[2001:db8:6::2]");
    assert_eq!(changes[0].status, Status::Talking);
    let s = changes[0].session.as_ref().unwrap();
    assert_eq!(s.media_address, Some("2001:db8:5::2".parse().unwrap()));
    assert_eq!(s.codecs, vec!["PCMU"]);
}
