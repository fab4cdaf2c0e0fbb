//! Causes, tables, usage reporting, retransmissions and malformed input.

use super::*;

#[test]
fn session_requests_without_association_get_72() {
    let mut l = Lab::new(cfg());
    let (h, r, o) = l.send(&hex(ESTABLISH_REQ));
    assert_eq!(
        (o, h.seid),
        (
            rejected(Procedure::Establishment, Cause::NO_ASSOCIATION),
            Some(0x1111)
        )
    );
    assert_eq!(r.node_id, Some(NodeId::V4(cfg().node_id)));
    let (_, _, o) = l.send(&build::association_release_request(1, CP));
    assert_eq!(
        o,
        rejected(Procedure::AssociationRelease, Cause::NO_ASSOCIATION)
    );
    assert!(l.t.live.is_empty());
}

#[test]
fn mandatory_ie_missing_names_the_ie() {
    let full = build::typical_session(CP, 1, UE, None, None, 9);
    let cases: Vec<(SessionRequest, u16)> = vec![
        (
            SessionRequest {
                node_id: None,
                ..full.clone()
            },
            ty::NODE_ID,
        ),
        (
            SessionRequest {
                cp_fseid: None,
                ..full.clone()
            },
            ty::F_SEID,
        ),
        (
            SessionRequest {
                create_pdrs: vec![],
                ..full.clone()
            },
            ty::CREATE_PDR,
        ),
        (
            SessionRequest {
                create_fars: vec![],
                ..full.clone()
            },
            ty::CREATE_FAR,
        ),
        (
            {
                let mut r = full.clone();
                r.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = None;
                r
            },
            ty::F_TEID,
        ),
        (
            {
                let mut r = full.clone();
                r.create_pdrs[1].pdi.as_mut().expect("pdi").ue_ip = None;
                r
            },
            ty::UE_IP_ADDRESS,
        ),
        (
            {
                let mut r = full.clone();
                r.create_fars[0].apply_action = None;
                r
            },
            ty::APPLY_ACTION,
        ),
    ];
    let mut l = Lab::associated();
    for (req, ie) in cases {
        let (_, r, o) = l.establish(&req);
        assert_eq!(
            (o, r.offending_ie),
            (
                rejected(Procedure::Establishment, Cause::MANDATORY_IE_MISSING),
                Some(ie)
            )
        );
    }
    assert!(l.e.sessions().is_empty() && l.t.live.is_empty());
}

#[test]
fn mandatory_ie_not_understood_is_69() {
    let full = build::typical_session(CP, 1, UE, None, None, 9);
    let mut l = Lab::associated();
    let mut v6_teid = full.clone();
    v6_teid.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = Some(Fteid {
        teid: 5,
        v6: Some("::1".parse().expect("v6")),
        ..Fteid::default()
    });
    // A UE IP Address with neither an IPv4 address nor an IPv6 prefix (an
    // IPv6 one alone is an IPv6 PDU session, accepted).
    let mut no_ue = full.clone();
    no_ue.create_pdrs[1].pdi.as_mut().expect("pdi").ue_ip = Some(super::super::ie::UeIp {
        v4: None,
        v6: None,
        destination: true,
    });
    let mut udp_ohc = full.clone();
    udp_ohc.create_fars[1] = build::downlink_far(Some((1, AN)));
    udp_ohc.create_fars[1]
        .forwarding
        .as_mut()
        .expect("fw")
        .ohc
        .as_mut()
        .expect("ohc")
        .description = 0x0400;
    let mut unknown_node = full.clone();
    unknown_node.node_id = Some(NodeId::Unknown(5));
    for (req, ie) in [
        (v6_teid, ty::F_TEID),
        (no_ue, ty::UE_IP_ADDRESS),
        (udp_ohc, ty::OUTER_HEADER_CREATION),
        (unknown_node, ty::NODE_ID),
    ] {
        let (_, r, o) = l.establish(&req);
        assert_eq!(
            (o, r.offending_ie),
            (
                rejected(Procedure::Establishment, Cause::MANDATORY_IE_INCORRECT),
                Some(ie)
            )
        );
    }
    assert!(l.e.sessions().is_empty() && l.t.live.is_empty());
}

#[test]
fn unsupported_rules_are_73_and_change_nothing() {
    let mut l = Lab::associated();
    l.typical(1, UE, None);
    let before = l.snapshot();
    let mut two_ul = build::typical_session(CP, 2, Ipv4Addr::new(10, 45, 0, 3), None, None, 9);
    let mut extra = two_ul.create_pdrs[0].clone();
    extra.pdr_id = Some(3);
    two_ul.create_pdrs.push(extra);
    let (_, r, o) = l.establish(&two_ul);
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Establishment, Cause::RULE_FAILURE),
            Some(ty::CREATE_PDR)
        )
    );
    // A TEID the CP chose that another session holds.
    let mut dup = build::typical_session(CP, 3, Ipv4Addr::new(10, 45, 0, 4), None, None, 9);
    dup.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = Some(Fteid {
        teid: 100,
        v4: Some(cfg().n3_addr),
        ..Fteid::default()
    });
    let (_, r, o) = l.establish(&dup);
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Establishment, Cause::RULE_FAILURE),
            Some(ty::F_TEID)
        )
    );
    // A PDR pointing at a FAR that does not exist.
    let mut dangling = build::typical_session(CP, 4, Ipv4Addr::new(10, 45, 0, 5), None, None, 9);
    dangling.create_pdrs[1].far_id = Some(77);
    let (_, _, o) = l.establish(&dangling);
    assert_eq!(o, rejected(Procedure::Establishment, Cause::RULE_FAILURE));
    assert_eq!(l.snapshot(), before);
}

#[test]
fn a_given_teid_is_used_as_is() {
    let mut l = Lab::associated();
    let mut req = build::typical_session(CP, 3, UE, None, None, 9);
    req.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = Some(Fteid {
        teid: 5000,
        v4: Some(cfg().n3_addr),
        ..Fteid::default()
    });
    let (_, r, o) = l.establish(&req);
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment));
    assert!(r.created_pdrs.is_empty(), "no Created PDR without CH");
    assert_eq!(l.t.first().0.ul_teid, 5000);
    // A tunnel sits at its TEID's slot (`teid % TUNNELS_MAX`); a TEID
    // whose slot is taken gets the lowest free index instead.
    let slots = dataplane_common::gateway::TUNNELS_MAX;
    assert_eq!(
        l.t.live.keys().copied().collect::<Vec<_>>(),
        vec![5000 % slots]
    );
    let mut twin = build::typical_session(CP, 4, Ipv4Addr::new(10, 45, 0, 8), None, None, 9);
    twin.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = Some(Fteid {
        teid: 5000 + slots,
        v4: Some(cfg().n3_addr),
        ..Fteid::default()
    });
    let (_, _, o) = l.establish(&twin);
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment));
    assert_eq!(l.t.live[&0].0.ul_teid, 5000 + slots, "slot taken: index 0");
    assert_eq!(l.t.live[&(5000 % slots)].0.ul_teid, 5000);
}

#[test]
fn full_table_is_75_and_the_first_two_are_untouched() {
    let mut l = Lab::new(EngineConfig {
        max_sessions: 2,
        ..cfg()
    });
    l.send(&build::association_setup_request(1, CP, 7));
    l.typical(1, UE, None);
    l.typical(2, Ipv4Addr::new(10, 45, 0, 3), None);
    let before = l.snapshot();
    let (h, r, o) = l.establish(&build::typical_session(
        CP,
        3,
        Ipv4Addr::new(10, 45, 0, 4),
        None,
        None,
        9,
    ));
    assert_eq!(
        (o, h.seid, r.fseid),
        (
            rejected(Procedure::Establishment, Cause::NO_RESOURCES),
            Some(3),
            None
        )
    );
    assert_eq!(l.snapshot(), before);
    // A deletion frees a slot for the next one.
    let (_, _, o) = l.send(&build::deletion_request(50, 1));
    assert_eq!(o, Outcome::Accepted(Procedure::Deletion));
    l.typical(4, Ipv4Addr::new(10, 45, 0, 5), None);
    let seids: Vec<u64> =
        l.t.live
            .keys()
            .filter_map(|i| l.e.session_by_tunnel(*i).map(|s| s.cp_seid))
            .collect();
    assert_eq!(seids, vec![2, 4], "the freed slot's successor holds it");
}

#[test]
fn teid_exhaustion_and_fast_path_refusal_are_75_without_leaks() {
    let mut l = Lab::new(EngineConfig {
        teid_first: 0,
        teid_last: 1,
        ..cfg()
    });
    l.send(&build::association_setup_request(1, CP, 7));
    l.typical(1, UE, None);
    let before = l.snapshot();
    assert_eq!(before.1.first().0.ul_teid, 1, "TEID 0 is never handed out");
    let (_, _, o) = l.establish(&build::typical_session(
        CP,
        2,
        Ipv4Addr::new(10, 45, 0, 3),
        None,
        None,
        9,
    ));
    assert_eq!(o, rejected(Procedure::Establishment, Cause::NO_RESOURCES));
    assert_eq!(l.snapshot(), before);

    let mut l = Lab::associated();
    l.t.refuse = true;
    for i in 0..3 {
        let (_, _, o) = l.establish(&build::typical_session(CP, i, UE, None, None, 9));
        assert_eq!(o, rejected(Procedure::Establishment, Cause::NO_RESOURCES));
    }
    l.t.refuse = false;
    l.typical(9, UE, None);
    let s = l.e.sessions();
    assert_eq!(
        (s.len(), s[0].tunnel, s[0].spec.ul_teid),
        (1, 100, 100),
        "no tunnel index or TEID leaked (the first TEID, at its slot)"
    );
}

#[test]
fn unknown_seid_is_65_with_seid_0() {
    let mut l = Lab::associated();
    l.typical(0x77, UE, None);
    let before = l.snapshot();
    let (h, r, o) = l.send(&build::modification_request(
        5,
        999,
        &build::set_downlink(1, AN),
    ));
    assert_eq!(
        (o, h.seid, r.cause),
        (
            rejected(Procedure::Modification, Cause::SESSION_CONTEXT_NOT_FOUND),
            Some(0),
            Some(Cause::SESSION_CONTEXT_NOT_FOUND)
        )
    );
    let (h, _, o) = l.send(&build::deletion_request(6, 999));
    assert_eq!(
        (o, h.seid),
        (
            rejected(Procedure::Deletion, Cause::SESSION_CONTEXT_NOT_FOUND),
            Some(0)
        )
    );
    assert_eq!(l.snapshot(), before);
}

#[test]
fn a_failed_modification_changes_nothing() {
    let mut l = Lab::associated();
    let seid = l.typical(1, UE, Some(100));
    let before = l.snapshot();
    let bad = SessionRequest {
        update_fars: vec![build::downlink_far(Some((1, AN)))],
        remove_urrs: vec![9],
        ..SessionRequest::default()
    };
    let (h, _, o) = l.send(&build::modification_request(5, seid, &bad));
    assert_eq!(
        (o, h.seid),
        (
            rejected(Procedure::Modification, Cause::RULE_FAILURE),
            Some(1)
        )
    );
    l.t.refuse = true;
    let (_, _, o) = l.send(&build::modification_request(
        6,
        seid,
        &build::set_downlink(2, AN),
    ));
    assert_eq!(o, rejected(Procedure::Modification, Cause::RULE_FAILURE));
    l.t.refuse = false;
    assert_eq!(l.snapshot(), before);
}

#[test]
fn urrs_are_removed_and_created_by_modification_byte_exact() {
    let mut l = Lab::associated();
    let seid = l.typical(1, UE, None);
    l.t.first_mut().1 = Volume {
        ul_bytes: 1000,
        dl_bytes: 2000,
        ul_pkts: 1,
        dl_pkts: 2,
    };
    // URR 1 goes (its report: everything so far), URR 2 comes and counts
    // from now; the PDRs move to URR 2.
    let mut m = SessionRequest {
        remove_urrs: vec![1],
        ..SessionRequest::default()
    };
    m.create_urrs.push(super::super::wire::Urr {
        urr_id: Some(2),
        measurement_method: Some(2),
        reporting_triggers: None,
        volume_threshold: None,
    });
    for id in [1, 2] {
        m.update_pdrs.push(super::super::wire::Pdr {
            pdr_id: Some(id),
            urr_ids: vec![2],
            ..Default::default()
        });
    }
    let (_, r, o) = l.send(&build::modification_request(5, seid, &m));
    assert_eq!(o, Outcome::Accepted(Procedure::Modification), "{r:?}");
    let v = r.usage_reports[0].volume.expect("volume");
    assert_eq!(
        (
            r.usage_reports[0].urr_id,
            r.usage_reports[0].trigger,
            v.total,
            v.ul,
            v.dl
        ),
        (1, trigger::TERMR, Some(3000), Some(1000), Some(2000))
    );
    l.t.first_mut().1 = Volume {
        ul_bytes: 1500,
        dl_bytes: 2100,
        ul_pkts: 3,
        dl_pkts: 3,
    };
    let (_, r, _) = l.send(&build::deletion_request(6, seid));
    let v = r.usage_reports[0].volume.expect("volume");
    assert_eq!(
        (r.usage_reports[0].urr_id, v.ul, v.dl, v.ul_pkts, v.dl_pkts),
        (2, Some(500), Some(100), Some(2), Some(1))
    );
}

#[test]
fn threshold_reports_across_polls_are_byte_exact() {
    let mut l = Lab::associated();
    l.typical(0xabc, UE, Some(1000));
    let set = |l: &mut Lab, ul, dl| {
        l.t.first_mut().1 = Volume {
            ul_bytes: ul,
            dl_bytes: dl,
            ul_pkts: ul / 100,
            dl_pkts: dl / 100,
        }
    };
    set(&mut l, 400, 500);
    assert!(l.e.poll_reports(&mut l.t).is_empty(), "900 < 1000");
    set(&mut l, 600, 500);
    let first = l.e.poll_reports(&mut l.t);
    assert!(l.e.poll_reports(&mut l.t).is_empty(), "reported already");
    set(&mut l, 1600, 1000);
    let second = l.e.poll_reports(&mut l.t);
    let read = |b: &[u8]| {
        let (h, Message::Flat(r)) = decode(b).expect("decodes") else {
            panic!()
        };
        let u = r.usage_reports[0];
        let v: Volumes = u.volume.expect("volume");
        (
            h.seid, h.seq, u.ur_seqn, u.trigger, v.total, v.ul, v.dl, v.ul_pkts, v.dl_pkts,
        )
    };
    assert_eq!(
        read(&first[0].1),
        (
            Some(0xabc),
            1,
            0,
            trigger::VOLTH,
            Some(1100),
            Some(600),
            Some(500),
            Some(6),
            Some(5)
        )
    );
    assert_eq!(
        read(&second[0].1),
        (
            Some(0xabc),
            2,
            1,
            trigger::VOLTH,
            Some(1500),
            Some(1000),
            Some(500),
            Some(10),
            Some(5)
        )
    );
    // The CP refuses the second; counted, never answered.
    let h =
        l.e.handle(peer(), &build::report_response(2, 1, Cause(64)), &mut l.t);
    assert_eq!(
        (h.reply, h.outcome),
        (None, rejected(Procedure::Report, Cause(64)))
    );
    let h = l.e.handle(
        peer(),
        &build::report_response(2, 1, Cause::ACCEPTED),
        &mut l.t,
    );
    assert_eq!(h.outcome, Outcome::Discarded(Discard::UnknownReport));
    assert!(l
        .e
        .counters()
        .contains(&("pfcp_report_not_accepted_by_cp", 1)));
}

#[test]
fn association_release_and_restart_remove_the_nodes_sessions() {
    let mut l = Lab::associated();
    l.typical(1, UE, None);
    // Same recovery time stamp: the sessions stay.
    l.send(&build::association_setup_request(2, CP, 7));
    assert_eq!(l.t.live.len(), 1);
    // A new one: the CP restarted, its sessions are gone.
    l.send(&build::association_setup_request(3, CP, 8));
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());
    l.typical(2, UE, None);
    l.typical(3, Ipv4Addr::new(10, 45, 0, 3), None);
    let (_, _, o) = l.send(&build::association_release_request(4, CP));
    assert_eq!(o, Outcome::Accepted(Procedure::AssociationRelease));
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());
    let (_, _, o) = l.establish(&build::typical_session(CP, 5, UE, None, None, 9));
    assert_eq!(o, rejected(Procedure::Establishment, Cause::NO_ASSOCIATION));
}

#[test]
fn malformed_headers_and_lengths() {
    let mut l = Lab::associated();
    let h = l.e.handle(peer(), &hex("2101"), &mut l.t);
    assert_eq!(
        (h.reply, h.outcome),
        (None, Outcome::Discarded(Discard::ShortHeader))
    );
    // Version 2.
    let mut v2 = hex(HEARTBEAT_REQ);
    v2[0] = 0x40;
    let (h, r, o) = l.send(&v2);
    assert_eq!(
        (o, h.msg_type, h.seq, r),
        (
            Outcome::VersionNotSupported,
            msg::VERSION_NOT_SUPPORTED,
            1,
            Reply::default()
        )
    );
    // The length field runs past the datagram.
    let mut long = hex(ESTABLISH_REQ);
    long[3] += 1;
    let (h, r, o) = l.send(&long);
    assert_eq!(
        (o, h.msg_type),
        (
            rejected(Procedure::Establishment, Cause::INVALID_LENGTH),
            msg::SESSION_ESTABLISHMENT_RESPONSE
        )
    );
    assert_eq!(r.cause, Some(Cause::INVALID_LENGTH));
    // An IE running past its group: the message shrunk by one octet.
    let mut cut = hex(ESTABLISH_REQ);
    cut.pop();
    let n = cut.len() as u16 - 4;
    cut[2..4].copy_from_slice(&n.to_be_bytes());
    let (_, r, o) = l.send(&cut);
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Establishment, Cause::INVALID_LENGTH),
            Some(ty::CREATE_QER)
        )
    );
    // PFD Management (3) is not handled: discarded.
    let h =
        l.e.handle(peer(), &Header::node(3, 1).encode(&[]), &mut l.t);
    assert_eq!(
        (h.reply, h.outcome),
        (None, Outcome::Discarded(Discard::UnknownType(3)))
    );
    // A session message without a SEID.
    let (_, _, o) = l.send(&Header::node(msg::SESSION_DELETION_REQUEST, 1).encode(&[]));
    assert_eq!(o, rejected(Procedure::Deletion, Cause::REJECTED));
    assert!(l.t.live.is_empty());
}

#[test]
fn enterprise_and_unknown_ies_are_skipped() {
    let mut l = Lab::associated();
    let mut ies = build::typical_session(CP, 1, UE, None, None, 9).encode();
    ies.extend_from_slice(&[0x80, 0x10, 0x00, 0x03, 0x4a, 0x4b, 0xff]);
    ies.extend_from_slice(&[0x01, 0x00, 0x00, 0x01, 0x00]);
    let (_, r, o) = l.send(&Header::session(msg::SESSION_ESTABLISHMENT_REQUEST, 0, 1).encode(&ies));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
}

/// No panic on 10,000 mutations of valid messages; every reply decodes.
#[test]
fn mutated_messages_never_panic_and_replies_decode() {
    let seeds: Vec<Vec<u8>> = [
        HEARTBEAT_REQ,
        ASSOC_SETUP_REQ,
        ESTABLISH_REQ,
        ESTABLISH_REQ_NO_OHC,
        ESTABLISH_REQ_N3V6,
        ESTABLISH_REQ_OHC_BOTH,
        MODIFY_REQ,
        DELETE_REQ,
        REPORT_RSP,
        ASSOC_RELEASE_REQ,
    ]
    .iter()
    .map(|h| hex(h))
    .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut l = Lab::associated();
    for i in 0..10_000 {
        let mut m = seeds[(rnd() % seeds.len() as u64) as usize].clone();
        match i % 4 {
            0 => m.truncate((rnd() % (m.len() as u64 + 1)) as usize),
            1 => {
                for _ in 0..=(rnd() % 4) {
                    let at = (rnd() % m.len() as u64) as usize;
                    m[at] = rnd() as u8;
                }
            }
            2 => {
                let at = (rnd() % m.len() as u64) as usize;
                m.insert(at, rnd() as u8);
            }
            _ => m = (0..(rnd() % 64)).map(|_| rnd() as u8).collect(),
        }
        let h = l.e.handle(peer(), &m, &mut l.t);
        if let Some(r) = h.reply {
            decode(&r).unwrap_or_else(|e| panic!("reply to {} does not decode: {e}", to_hex(&m)));
        }
        if i % 97 == 0 {
            for (_, r) in l.e.poll_reports(&mut l.t) {
                decode(&r).expect("report decodes");
            }
        }
    }
    assert!(l
        .e
        .counters()
        .iter()
        .any(|(k, _)| *k == "pfcp_rejected_invalid_length"));
}

#[test]
fn a_retransmitted_establishment_gets_the_same_answer_and_makes_no_second_session() {
    let mut l = Lab::associated();
    let req = build::establishment_request(
        500,
        &build::typical_session(
            CP,
            0x5555,
            Ipv4Addr::new(10, 60, 5, 5),
            Some((0x1234, AN)),
            None,
            9,
        ),
    );
    let first = l.e.handle(peer(), &req, &mut l.t);
    assert_eq!(first.outcome, Outcome::Accepted(Procedure::Establishment));
    let again = l.e.handle(peer(), &req, &mut l.t);
    assert_eq!(
        again.outcome,
        Outcome::Retransmission(Procedure::Establishment)
    );
    assert_eq!(again.reply, first.reply, "byte for byte the first answer");
    assert_eq!(l.e.sessions().len(), 1);
    assert_eq!(l.t.live.len(), 1);
    assert!(l.e.counters().contains(&("pfcp_retransmitted", 1)));
    // The same sequence number from another peer is another request.
    let other: std::net::SocketAddr = "192.0.2.99:8805".parse().unwrap();
    let h = l.e.handle(other, &req, &mut l.t);
    assert_eq!(h.outcome, Outcome::Accepted(Procedure::Establishment));
    assert_eq!(l.e.sessions().len(), 2);
    // A new sequence number is a new request: a second session.
    let req2 = build::establishment_request(
        501,
        &build::typical_session(
            CP,
            0x5556,
            Ipv4Addr::new(10, 60, 5, 6),
            Some((0x1234, AN)),
            None,
            9,
        ),
    );
    assert_eq!(
        l.e.handle(peer(), &req2, &mut l.t).outcome,
        Outcome::Accepted(Procedure::Establishment)
    );
    assert_eq!(l.e.sessions().len(), 3);
}

#[test]
fn an_unanswered_report_is_sent_again_after_t1_and_given_up_after_n1() {
    let mut l = Lab::associated();
    let seid = l.typical(0xabd, UE, Some(1000));
    l.t.first_mut().1 = Volume {
        ul_bytes: 2000,
        dl_bytes: 0,
        ul_pkts: 20,
        dl_pkts: 0,
    };
    let first = l.e.poll_reports(&mut l.t);
    assert_eq!(first.len(), 1);
    // Two quiet polls, then the same bytes again (T1 = 3 polls).
    assert!(l.e.poll_reports(&mut l.t).is_empty());
    assert!(l.e.poll_reports(&mut l.t).is_empty());
    let again = l.e.poll_reports(&mut l.t);
    assert_eq!(again, first, "a retransmission is the same request");
    // Answered: never again.
    let (h, _) = Header::decode(&first[0].1).expect("header");
    let rsp = build::report_response(h.seq, seid, Cause::ACCEPTED);
    assert!(l.e.handle(peer(), &rsp, &mut l.t).reply.is_none());
    for _ in 0..10 {
        assert!(l.e.poll_reports(&mut l.t).is_empty());
    }
    // A second report the CP never answers: 3 retransmissions, then given up.
    l.t.first_mut().1.ul_bytes = 4000;
    assert_eq!(l.e.poll_reports(&mut l.t).len(), 1);
    let sent: usize = (0..20).map(|_| l.e.poll_reports(&mut l.t).len()).sum();
    assert_eq!(sent, 3);
    let c = l.e.counters();
    assert!(c.contains(&("pfcp_reports_retransmitted", 4)), "{c:?}");
    assert!(c.contains(&("pfcp_reports_unanswered", 1)), "{c:?}");
    assert!(
        l.e.sessions().iter().any(|s| s.up_seid == seid),
        "the session stays"
    );
}
