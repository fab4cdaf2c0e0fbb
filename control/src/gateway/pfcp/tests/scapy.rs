//! Interop with scapy: its requests through the engine, our responses as
//! scapy parsed them.

use super::*;

#[test]
fn scapy_heartbeat_is_answered_with_our_recovery_time_stamp() {
    let mut l = Lab::new(cfg());
    let (h, r, o) = l.send(&hex(HEARTBEAT_REQ));
    assert_eq!(o, Outcome::Accepted(Procedure::Heartbeat));
    assert_eq!(
        (h.msg_type, h.seq, h.seid),
        (msg::HEARTBEAT_RESPONSE, 1, None)
    );
    assert_eq!(r.recovery_ts, Some(3_800_000_000));
}

#[test]
fn scapy_session_lifecycle_establish_modify_report_delete_release() {
    let mut l = Lab::new(cfg());
    let (h, r, _) = l.send(&hex(ASSOC_SETUP_REQ));
    assert_eq!(
        (h.msg_type, h.seq, r.cause, r.node_id),
        (
            msg::ASSOCIATION_SETUP_RESPONSE,
            2,
            Some(Cause::ACCEPTED),
            Some(NodeId::V4(cfg().node_id))
        )
    );
    assert_eq!(r.up_features, Some(0x1000), "FTUP: we allocate F-TEIDs");

    // 5G: establishment without the downlink, then a modification adds it.
    let (h, r, o) = l.send(&hex(ESTABLISH_REQ_NO_OHC));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert_eq!(
        (h.msg_type, h.seid, h.seq),
        (msg::SESSION_ESTABLISHMENT_RESPONSE, Some(0x1111), 3)
    );
    assert_eq!(
        r.fseid.map(|f| (f.seid, f.v4)),
        Some((1, Some(cfg().node_id)))
    );
    let created = r.created_pdrs[0];
    assert_eq!(
        (created.pdr_id, created.fteid.map(|f| (f.teid, f.v4))),
        (1, Some((100, Some(cfg().n3_addr))))
    );
    let spec = l.t.first().0;
    assert_eq!(
        spec,
        TunnelSpec {
            ul_teid: 100,
            ue_addr: UE,
            ue_addr6: None,
            dl_teid: None,
            an_addr: None,
            qfi: Some(9)
        }
    );

    let (h, r, o) = l.send(&hex(MODIFY_REQ));
    assert_eq!(
        (o, h.seid, r.cause),
        (
            Outcome::Accepted(Procedure::Modification),
            Some(0x1111),
            Some(Cause::ACCEPTED)
        )
    );
    assert_eq!(
        l.t.first().0,
        TunnelSpec {
            dl_teid: Some(0x5678),
            an_addr: Some(Ipv4Addr::new(192, 168, 1, 20).into()),
            ..spec
        }
    );

    // The threshold is 1,000,000 bytes in total.
    l.t.first_mut().1 = Volume {
        ul_bytes: 600_000,
        dl_bytes: 400_000,
        ul_pkts: 500,
        dl_pkts: 400,
    };
    let out = l.e.poll_reports(&mut l.t);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer());
    let (rh, Message::Flat(rr)) = decode(&out[0].1).expect("report decodes") else {
        panic!()
    };
    assert_eq!(
        (rh.msg_type, rh.seid, rh.seq),
        (msg::SESSION_REPORT_REQUEST, Some(0x1111), 1)
    );
    assert_eq!(rr.report_type, Some(REPORT_USAR));
    let h2 = l.e.handle(peer(), &hex(REPORT_RSP), &mut l.t);
    assert_eq!(
        (h2.reply, h2.outcome),
        (None, Outcome::Accepted(Procedure::Report))
    );

    l.t.first_mut().1 = Volume {
        ul_bytes: 600_010,
        dl_bytes: 400_020,
        ul_pkts: 501,
        dl_pkts: 402,
    };
    let (h, r, o) = l.send(&hex(DELETE_REQ));
    assert_eq!(
        (o, h.seid),
        (Outcome::Accepted(Procedure::Deletion), Some(0x1111))
    );
    let u = r.usage_reports[0];
    assert_eq!((u.urr_id, u.ur_seqn, u.trigger), (1, 1, trigger::TERMR));
    let v = u.volume.expect("volume");
    assert_eq!(
        (v.total, v.ul, v.dl, v.total_pkts, v.ul_pkts, v.dl_pkts),
        (Some(30), Some(10), Some(20), Some(3), Some(1), Some(2))
    );
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());

    let (h, r, o) = l.send(&hex(ASSOC_RELEASE_REQ));
    assert_eq!(
        (o, h.msg_type, r.cause),
        (
            Outcome::Accepted(Procedure::AssociationRelease),
            msg::ASSOCIATION_RELEASE_RESPONSE,
            Some(Cause::ACCEPTED)
        )
    );
}

#[test]
fn scapy_establishment_with_downlink_ohc_installs_the_whole_tunnel() {
    let mut l = Lab::associated();
    let (_, r, o) = l.send(&hex(ESTABLISH_REQ));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert_eq!(
        l.t.first().0,
        TunnelSpec {
            ul_teid: 100,
            ue_addr: UE,
            ue_addr6: None,
            dl_teid: Some(0x1234),
            an_addr: Some(AN.into()),
            qfi: Some(9)
        }
    );
    // The tunnel sits at its TEID's slot (the fast path looks there first).
    let s = l.e.session_by_tunnel(100).expect("session");
    assert_eq!(
        (
            s.up_seid,
            s.cp_seid,
            s.cp,
            s.urrs[0].threshold.and_then(|t| t.total)
        ),
        (1, 0x1111, peer(), Some(1_000_000))
    );
}

/// Our responses, byte for byte as scapy parsed them.
#[test]
fn our_responses_are_the_bytes_scapy_parsed() {
    let mut l = Lab::new(cfg());
    let mut out = Vec::new();
    for req in [ASSOC_SETUP_REQ, HEARTBEAT_REQ, ESTABLISH_REQ, MODIFY_REQ] {
        out.push(to_hex(
            &l.e.handle(peer(), &hex(req), &mut l.t)
                .reply
                .expect("reply"),
        ));
    }
    l.t.first_mut().1 = Volume {
        ul_bytes: 700_000,
        dl_bytes: 300_000,
        ul_pkts: 7,
        dl_pkts: 3,
    };
    out.push(to_hex(&l.e.poll_reports(&mut l.t)[0].1));
    out.push(to_hex(
        &l.e.handle(peer(), &hex(DELETE_REQ), &mut l.t)
            .reply
            .expect("reply"),
    ));
    // The same deletion again is a retransmission: the same answer.
    out.push(to_hex(
        &l.e.handle(peer(), &hex(DELETE_REQ), &mut l.t)
            .reply
            .expect("reply"),
    ));
    // Under a new sequence number it is a new request, for a session
    // that is gone.
    let mut again = hex(DELETE_REQ);
    again[14] = 6;
    out.push(to_hex(
        &l.e.handle(peer(), &again, &mut l.t).reply.expect("reply"),
    ));
    let not_found = OUR_DELETE_RSP_NOT_FOUND.replace("0000000000000005", "0000000000000006");
    let expected = [
        OUR_ASSOC_SETUP_RSP,
        OUR_HEARTBEAT_RSP,
        OUR_ESTABLISH_RSP,
        OUR_MODIFY_RSP,
        OUR_REPORT_REQ,
        OUR_DELETE_RSP,
        OUR_DELETE_RSP,
        &not_found,
    ];
    assert_eq!(out, expected);
}

const OUR_ASSOC_SETUP_RSP: &str =
    "2006002000000200003c0005000a000009001300010100600004e27f6600002b00021000";
const OUR_HEARTBEAT_RSP: &str = "2002000c0000010000600004e27f6600";
const OUR_ESTABLISH_RSP: &str = "21330042000000000000111100000300003c0005000a00000900130001010039000d0200000000000000010a000009000800130038000200010015000901000000640a000109";
const OUR_MODIFY_RSP: &str = "213500110000000000001111000004000013000101";
const OUR_REPORT_REQ: &str = "2138006100000000000011110000010000270001020050004c00510004000000010068000400000000003f0003020000004200313f00000000000f424000000000000aae6000000000000493e0000000000000000a00000000000000070000000000000003";
const OUR_DELETE_RSP: &str = "213700610000000000001111000005000013000101004f004c00510004000000010068000400000001003f0003000800004200313f000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const OUR_DELETE_RSP_NOT_FOUND: &str = "213700110000000000000000000005000013000141";

#[test]
fn request_builders_round_trip() {
    let req = build::typical_session(CP, 42, UE, Some((7, AN)), Some(5000), 5);
    let bytes = build::establishment_request(9, &req);
    let (h, m) = decode(&bytes).expect("decodes");
    assert_eq!(
        (h.msg_type, h.seid, h.seq),
        (msg::SESSION_ESTABLISHMENT_REQUEST, Some(0), 9)
    );
    assert_eq!(m, Message::Session(req));
    let m2 = build::set_downlink(8, AN);
    let (_, back) = decode(&build::modification_request(3, 5, &m2)).expect("decodes");
    assert_eq!(back, Message::Session(m2));
}

#[test]
fn scapy_dual_stack_and_ipv6_sessions_carry_the_ue_prefix() {
    let prefix: std::net::Ipv6Addr = "2001:db8:cafe:1::".parse().unwrap();
    for (req, v4) in [
        (ESTABLISH_REQ_DUAL, UE),
        (ESTABLISH_REQ_V6, std::net::Ipv4Addr::UNSPECIFIED),
    ] {
        let mut l = Lab::associated();
        let (_, r, o) = l.send(&hex(req));
        assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
        let spec = l.t.first().0;
        assert_eq!((spec.ue_addr, spec.ue_addr6), (v4, Some(prefix)));
    }
}
