//! No status stuck (issue 14, claim 18): calls end when their session
//! expires unrefreshed, or at the ceiling without Session-Expires; a BYE
//! never answered and an INVITE never answered are given up; the
//! terminal's contact address rides on its changes (claim 30).

use super::tests::msg;
use super::*;
use crate::sip_monitor::sip::parse;

const A: &str = "alice@example.com";
const B: &str = "bob@example.com";

fn tracker(off: TerminatedOn, ceiling_ms: u64) -> Tracker {
    Tracker::new(TrackerConfig {
        domain: "example.com".into(),
        talking_on: TalkingOn::Ok200,
        terminated_on: off,
        default_expires: 3600,
        max_call_ms: ceiling_ms,
    })
}

fn feed(t: &mut Tracker, raw: Vec<u8>, now: u64) -> Vec<Change> {
    let (m, _) = parse(&raw).unwrap();
    t.handle(&m, now)
}

fn statuses(v: &[Change]) -> Vec<(&str, Status)> {
    v.iter().map(|c| (c.user.as_str(), c.status)).collect()
}

/// An INVITE (Session-Expires `se_invite`) answered by a 200
/// (`se_ok`) at t = 1000 ms.
fn answered(t: &mut Tracker, call: &str, se_invite: Option<u32>, se_ok: Option<u32>) {
    let se = |s: Option<u32>| {
        s.map(|s| format!("Session-Expires: {s};refresher=uac\r\n"))
            .unwrap_or_default()
    };
    let inv = format!("Contact: <sip:alice@10.0.0.2:5062>\r\n{}", se(se_invite));
    assert!(feed(
        t,
        msg(
            "INVITE sip:bob@example.com SIP/2.0",
            A,
            B,
            call,
            "1 INVITE",
            &inv
        ),
        0
    )
    .is_empty());
    let ok = format!("Contact: <sip:bob@10.0.0.3>\r\n{}", se(se_ok));
    let ch = feed(t, msg("SIP/2.0 200 OK", A, B, call, "1 INVITE", &ok), 1000);
    assert_eq!(
        statuses(&ch),
        vec![(A, Status::Talking), (B, Status::Talking)]
    );
}

#[test]
fn a_call_whose_session_expires_unrefreshed_ends() {
    let mut t = tracker(TerminatedOn::Bye, 7_200_000);
    // The 200's interval (90 s) wins over the INVITE's (1800 s).
    answered(&mut t, "se1", Some(1800), Some(90));
    assert!(t.tick(1000 + 89_999).is_empty(), "not before it expires");
    let ch = t.tick(1000 + 90_000);
    assert_eq!(
        statuses(&ch),
        vec![(A, Status::Terminated), (B, Status::Terminated)]
    );
    assert_eq!(ch[0].session.as_ref().unwrap().peer_of(&ch[0].user), B);
    assert_eq!(t.dialogs(), 0);
    assert!(t.tick(10_000_000).is_empty(), "ended once");
}

#[test]
fn a_refresh_keeps_the_call_and_a_bye_still_ends_it() {
    let mut t = tracker(TerminatedOn::Bye, 7_200_000);
    answered(&mut t, "se2", Some(90), None);
    // A re-INVITE answered at 60 s refreshes for another 90 s; an UPDATE
    // answered at 140 s with 120 s moves it again.
    feed(
        &mut t,
        msg(
            "INVITE sip:bob@10.0.0.3 SIP/2.0",
            A,
            B,
            "se2",
            "2 INVITE",
            "Session-Expires: 90\r\n",
        ),
        60_000,
    );
    assert!(
        feed(
            &mut t,
            msg(
                "SIP/2.0 200 OK",
                A,
                B,
                "se2",
                "2 INVITE",
                "Session-Expires: 90\r\n"
            ),
            60_000
        )
        .is_empty(),
        "a refresh is no change"
    );
    assert!(t.tick(91_000).is_empty(), "refreshed: still talking");
    feed(
        &mut t,
        msg(
            "SIP/2.0 200 OK",
            A,
            B,
            "se2",
            "3 UPDATE",
            "Session-Expires: 120\r\n",
        ),
        140_000,
    );
    assert!(t.tick(259_999).is_empty());
    let ch = feed(
        &mut t,
        msg("BYE sip:bob@10.0.0.3 SIP/2.0", A, B, "se2", "4 BYE", ""),
        200_000,
    );
    assert_eq!(
        statuses(&ch),
        vec![(A, Status::Terminated), (B, Status::Terminated)]
    );
    assert!(
        t.tick(10_000_000).is_empty(),
        "the BYE ended it, the timer does not again"
    );
}

#[test]
fn without_session_expires_the_ceiling_ends_a_call() {
    let mut t = tracker(TerminatedOn::Bye, 600_000);
    answered(&mut t, "c1", None, None);
    assert!(t.tick(600_999).is_empty());
    assert_eq!(
        statuses(&t.tick(601_000)),
        vec![(A, Status::Terminated), (B, Status::Terminated)]
    );
}

#[test]
fn an_unanswered_bye_and_an_unanswered_invite_are_given_up() {
    let mut t = tracker(TerminatedOn::ByeOk, 7_200_000);
    answered(&mut t, "b1", None, None);
    assert!(feed(
        &mut t,
        msg("BYE sip:bob@10.0.0.3 SIP/2.0", A, B, "b1", "2 BYE", ""),
        5000
    )
    .is_empty());
    assert!(t.tick(5000 + 31_999).is_empty());
    assert_eq!(
        statuses(&t.tick(5000 + 32_000)),
        vec![(A, Status::Terminated), (B, Status::Terminated)],
        "no 200 to the BYE: over after 64*T1"
    );
    // An INVITE with a 180 and nothing after: forgotten 3 min after the
    // last response, never talking.
    feed(
        &mut t,
        msg(
            "INVITE sip:bob@example.com SIP/2.0",
            A,
            B,
            "i1",
            "1 INVITE",
            "",
        ),
        100_000,
    );
    feed(
        &mut t,
        msg("SIP/2.0 180 Ringing", A, B, "i1", "1 INVITE", ""),
        110_000,
    );
    assert_eq!(t.dialogs(), 1);
    assert!(t.tick(289_999).is_empty());
    assert!(
        t.tick(290_000).is_empty(),
        "never talking: nothing to report"
    );
    assert_eq!(t.dialogs(), 0);
}

#[test]
fn changes_carry_the_terminals_contact_address() {
    let mut t = tracker(TerminatedOn::Bye, 7_200_000);
    answered(&mut t, "k1", None, None);
    let ch = feed(
        &mut t,
        msg("BYE sip:bob@10.0.0.3 SIP/2.0", A, B, "k1", "2 BYE", ""),
        2000,
    );
    let contact = |u: &str| {
        ch.iter()
            .find(|c| c.user == u)
            .and_then(|c| c.contact.clone())
    };
    assert_eq!(contact(A).as_deref(), Some("sip:alice@10.0.0.2:5062"));
    assert_eq!(contact(B).as_deref(), Some("sip:bob@10.0.0.3"));
    // A registration's contact: the binding the registrar confirmed.
    feed(
        &mut t,
        msg(
            "REGISTER sip:example.com SIP/2.0",
            "carol@example.com",
            "carol@example.com",
            "r1",
            "1 REGISTER",
            "Contact: <sip:carol@10.0.0.9:5070>\r\n",
        ),
        3000,
    );
    let ch = feed(
        &mut t,
        msg(
            "SIP/2.0 200 OK",
            "carol@example.com",
            "carol@example.com",
            "r1",
            "1 REGISTER",
            "Contact: <sip:carol@10.0.0.9:5070>;expires=60\r\n",
        ),
        3001,
    );
    assert_eq!(statuses(&ch), vec![("carol@example.com", Status::Online)]);
    assert_eq!(ch[0].contact.as_deref(), Some("sip:carol@10.0.0.9:5070"));
    // Its expiry: offline once, at 60 s, with the address it had.
    assert!(t.tick(63_000).is_empty());
    let ch = t.tick(63_001);
    assert_eq!(statuses(&ch), vec![("carol@example.com", Status::Offline)]);
    assert_eq!(ch[0].contact.as_deref(), Some("sip:carol@10.0.0.9:5070"));
    assert!(t.tick(1_000_000).is_empty());
}

/// A monitor restarted from a snapshot: a call and a registration carry
/// on, the time it was down counts against them, and a restart that
/// could not see its dialogs ends them, reporting the talking ones.
#[test]
fn a_restored_tracker_counts_its_downtime() {
    let mut t = tracker(TerminatedOn::Bye, 7_200_000);
    answered(&mut t, "c1", None, None);
    let u = "carol@example.com";
    feed(
        &mut t,
        msg(
            "REGISTER sip:example.com SIP/2.0",
            u,
            u,
            "r1",
            "1 REGISTER",
            "Expires: 60\r\n",
        ),
        1000,
    );
    let ch = feed(
        &mut t,
        msg(
            "SIP/2.0 200 OK",
            u,
            u,
            "r1",
            "1 REGISTER",
            "Contact: <sip:carol@10.0.0.9>;expires=60\r\n",
        ),
        1000,
    );
    assert_eq!(statuses(&ch), vec![(u, Status::Online)]);
    let snap = t.snapshot(2000);
    let json = serde_json::to_string(&snap).unwrap();
    let back: TrackerSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap, "round trip: {json}");

    // Down 30 s, started again at its own t = 0: 29 s of the
    // registration are left, the call still talks and its BYE ends it.
    let mut r = tracker(TerminatedOn::Bye, 7_200_000);
    r.restore(back.clone(), 0, 30_000);
    assert_eq!(r.dialogs(), 1);
    assert!(r.tick(28_000).is_empty(), "not lapsed yet");
    assert_eq!(statuses(&r.tick(29_001)), vec![(u, Status::Offline)]);
    let bye = feed(
        &mut r,
        msg("BYE sip:bob@example.com SIP/2.0", A, B, "c1", "2 BYE", ""),
        29_500,
    );
    assert_eq!(
        statuses(&bye),
        vec![(A, Status::Terminated), (B, Status::Terminated)]
    );

    // Down longer than the registration: it lapses at the first tick.
    let mut r = tracker(TerminatedOn::Bye, 7_200_000);
    r.restore(back.clone(), 0, 120_000);
    assert_eq!(statuses(&r.tick(0)), vec![(u, Status::Offline)]);

    // A restart that may have missed messages ends the dialogs.
    let mut r = tracker(TerminatedOn::Bye, 7_200_000);
    r.restore(back, 0, 1000);
    assert_eq!(
        statuses(&r.end_dialogs(5)),
        vec![(A, Status::Terminated), (B, Status::Terminated)]
    );
    assert_eq!(r.dialogs(), 0);
    assert!(r.tick(10).is_empty(), "the registration stays");
}
