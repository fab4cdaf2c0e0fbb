//! GTP-U over IPv6 N3: Outer Header Creation and Removal for GTP-U/UDP/IPv6,
//! F-TEIDs with our IPv6 N3 address, chosen (CH) or given.

use std::net::{IpAddr, Ipv6Addr};

use super::super::ie::{IeWriter, Ohc, OHR_GTPU_UDP_IPV6};
use super::super::wire::Far;
use super::*;

const N3_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 9);
/// The access node's IPv6 address in `ESTABLISH_REQ_N3V6`.
const AN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 0x10);

fn cfg6() -> EngineConfig {
    EngineConfig {
        n3_addr6: Some(N3_6),
        ..cfg()
    }
}

fn associated(cfg: EngineConfig) -> Lab {
    let mut l = Lab::new(cfg);
    let (_, r, o) = l.send(&build::association_setup_request(1, CP, 7));
    assert_eq!(
        (o, r.cause),
        (
            Outcome::Accepted(Procedure::AssociationSetup),
            Some(Cause::ACCEPTED)
        )
    );
    l
}

fn incorrect(ie: u16) -> (Outcome, Option<u16>) {
    (
        rejected(Procedure::Establishment, Cause::MANDATORY_IE_INCORRECT),
        Some(ie),
    )
}

/// `typical_session` with the uplink PDI's F-TEID replaced.
fn with_fteid(cp_seid: u64, f: Fteid) -> SessionRequest {
    let mut req = build::typical_session(CP, cp_seid, UE, Some((0x1234, AN)), None, 9);
    req.create_pdrs[0].pdi.as_mut().expect("pdi").fteid = Some(f);
    req
}

fn ch(want_v4: bool, want_v6: bool) -> Fteid {
    Fteid {
        ch: true,
        want_v4,
        want_v6,
        ..Fteid::default()
    }
}

fn encoded_ohc(o: &Ohc) -> Vec<u8> {
    let mut w = IeWriter::default();
    o.encode(&mut w);
    w.buf
}

#[test]
fn ohc_gtpu_ipv6_round_trips_with_the_spec_layout() {
    let o = Ohc::gtpu_v6(0x1234_5678, AN6);
    let bytes = encoded_ohc(&o);
    // Type 84, length 22: description 0x0200, TEID, IPv6 address.
    let mut want = vec![0x00, 0x54, 0x00, 0x16, 0x02, 0x00, 0x12, 0x34, 0x56, 0x78];
    want.extend_from_slice(&AN6.octets());
    assert_eq!(bytes, want);
    let back = Ohc::decode(&bytes[4..]).expect("decodes");
    assert_eq!(back, o);
    assert_eq!(back.gtpu_peer(), Some((0x1234_5678, IpAddr::V6(AN6))));

    // Both GTP-U bits: TEID, then the IPv4, then the IPv6 address.
    let both = Ohc {
        description: Ohc::GTPU_UDP_IPV4 | Ohc::GTPU_UDP_IPV6,
        teid: Some(7),
        v4: Some(AN),
        v6: Some(AN6),
    };
    let bytes = encoded_ohc(&both);
    assert_eq!(&bytes[4..10], &[0x03, 0x00, 0, 0, 0, 7]);
    assert_eq!(&bytes[10..14], &AN.octets());
    assert_eq!(&bytes[14..], &AN6.octets());
    assert_eq!(Ohc::decode(&bytes[4..]), Ok(both));
    assert_eq!(both.gtpu_peer(), None, "not exactly one GTP-U family");
    // Short of its IPv6 address: Mandatory IE incorrect.
    assert_eq!(
        Ohc::decode(&encoded_ohc(&o)[4..20]).map_err(|e| (e.cause, e.ie)),
        Err((
            Cause::MANDATORY_IE_INCORRECT,
            Some(ty::OUTER_HEADER_CREATION)
        ))
    );
}

#[test]
fn ch_fteid_flags_round_trip() {
    for (want_v4, want_v6, flags) in [(true, false, 0x05), (false, true, 0x06), (true, true, 0x07)]
    {
        let f = ch(want_v4, want_v6);
        let mut w = IeWriter::default();
        f.encode(ty::F_TEID, &mut w);
        assert_eq!(w.buf, vec![0x00, 0x15, 0x00, 0x01, flags]);
        assert_eq!(Fteid::decode(&w.buf[4..]), Ok(f));
    }
}

#[test]
fn scapy_ipv6_n3_session_gets_our_ipv6_fteid_and_the_access_nodes_ipv6_address() {
    let mut l = associated(cfg6());
    let (_, r, o) = l.send(&hex(ESTABLISH_REQ_N3V6));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert_eq!(r.created_pdrs.len(), 1);
    assert_eq!(
        (r.created_pdrs[0].pdr_id, r.created_pdrs[0].fteid),
        (
            1,
            Some(Fteid {
                teid: 100,
                v4: None,
                v6: Some(N3_6),
                ..Fteid::default()
            })
        ),
        "V6 asked only: our IPv6 N3 address only"
    );
    let spec = l.t.first().0;
    assert_eq!(
        spec,
        TunnelSpec {
            ul_teid: 100,
            ue_addr: UE,
            ue_addr6: None,
            dl_teid: Some(0x1234),
            an_addr: Some(IpAddr::V6(AN6)),
            qfi: Some(9)
        }
    );
    // The kept (IPv6-only) F-TEID passes the modification's checks; the
    // access node moves to IPv4.
    let (_, r, o) = l.send(&hex(MODIFY_REQ));
    assert_eq!(o, Outcome::Accepted(Procedure::Modification), "{r:?}");
    assert_eq!(
        l.t.first().0,
        TunnelSpec {
            dl_teid: Some(0x5678),
            an_addr: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20))),
            ..spec
        }
    );
}

/// Our answer to `ESTABLISH_REQ_N3V6`: a Created PDR whose F-TEID has
/// only V6 (flags 0x02) and our IPv6 N3 address; parsed by scapy
/// (`scapy_fixtures.py --check`).
const OUR_ESTABLISH_RSP_N3V6: &str = "2133004e000000000000111100000300003c0005000a00000900130001010039000d0200000000000000010a0000090008001f00380002000100150015020000006420010db8000100000000000000000009";

#[test]
fn our_ipv6_fteid_is_the_bytes_scapy_parsed() {
    let mut l = associated(cfg6());
    let h = l.e.handle(peer(), &hex(ESTABLISH_REQ_N3V6), &mut l.t);
    assert_eq!(to_hex(&h.reply.expect("reply")), OUR_ESTABLISH_RSP_N3V6);
}

#[test]
fn ch_ipv6_only_without_an_ipv6_n3_address_is_69_on_the_fteid() {
    let mut l = Lab::associated();
    let (h, r, o) = l.send(&hex(ESTABLISH_REQ_N3V6));
    assert_eq!((o, r.offending_ie), incorrect(ty::F_TEID));
    assert_eq!(h.seid, Some(0x1111));
    assert!(r.created_pdrs.is_empty() && r.fseid.is_none());
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());
}

#[test]
fn ch_both_families_gets_each_address_we_have() {
    // IPv6 N3 configured: both addresses.
    let mut l = associated(cfg6());
    let (_, r, o) = l.establish(&with_fteid(1, ch(true, true)));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    let f = r.created_pdrs[0].fteid.expect("F-TEID");
    assert_eq!(
        (f.ch, f.teid, f.v4, f.v6),
        (false, 100, Some(cfg().n3_addr), Some(N3_6))
    );
    // V4 only with IPv6 configured: IPv4 only.
    let (_, r, _) = l.establish(&with_fteid(2, ch(true, false)));
    let f = r.created_pdrs[0].fteid.expect("F-TEID");
    assert_eq!((f.teid, f.v4, f.v6), (101, Some(cfg().n3_addr), None));
    // No IPv6 N3: both asked, IPv4 given.
    let mut l = Lab::associated();
    let (_, r, o) = l.establish(&with_fteid(1, ch(true, true)));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    let f = r.created_pdrs[0].fteid.expect("F-TEID");
    assert_eq!((f.teid, f.v4, f.v6), (100, Some(cfg().n3_addr), None));
}

#[test]
fn a_given_ipv6_fteid_must_be_ours() {
    let foreign: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
    let given = |teid, v4, v6| Fteid {
        teid,
        v4,
        v6,
        ..Fteid::default()
    };
    let n3 = Some(cfg().n3_addr);
    let mut l = associated(cfg6());
    for (i, f) in [
        given(5000, None, Some(foreign)),
        given(5000, n3, Some(foreign)),
        given(5000, Some(Ipv4Addr::new(10, 0, 1, 99)), Some(N3_6)),
        given(0, None, Some(N3_6)),
        given(5000, None, None),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, r, o) = l.establish(&with_fteid(i as u64 + 1, f));
        assert_eq!((o, r.offending_ie), incorrect(ty::F_TEID), "{f:?}");
    }
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());

    let (_, r, o) = l.establish(&with_fteid(10, given(5000, None, Some(N3_6))));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert!(r.created_pdrs.is_empty(), "no Created PDR without CH");
    assert_eq!(l.t.first().0.ul_teid, 5000);
    let (_, r, o) = l.establish(&with_fteid(11, given(5001, n3, Some(N3_6))));
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert_eq!(l.e.sessions().len(), 2);

    // Without an IPv6 N3 address no IPv6 F-TEID is ours.
    let mut l = Lab::associated();
    let (_, r, o) = l.establish(&with_fteid(1, given(5000, None, Some(N3_6))));
    assert_eq!((o, r.offending_ie), incorrect(ty::F_TEID));
    assert!(l.t.live.is_empty());
}

#[test]
fn a_modification_to_a_foreign_ipv6_fteid_is_69_and_changes_nothing() {
    let mut l = associated(cfg6());
    let seid = l.typical(1, UE, None);
    let before = l.snapshot();
    let mut pdi = build::typical_session(CP, 1, UE, None, None, 9).create_pdrs[0]
        .pdi
        .clone()
        .expect("pdi");
    pdi.fteid = Some(Fteid {
        teid: 100,
        v6: Some("2001:db8:1::99".parse().unwrap()),
        ..Fteid::default()
    });
    let m = SessionRequest {
        update_pdrs: vec![super::super::wire::Pdr {
            pdr_id: Some(1),
            pdi: Some(pdi.clone()),
            ..Default::default()
        }],
        ..SessionRequest::default()
    };
    let (_, r, o) = l.send(&build::modification_request(5, seid, &m));
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Modification, Cause::MANDATORY_IE_INCORRECT),
            Some(ty::F_TEID)
        )
    );
    assert_eq!(l.snapshot(), before);
    // Onto our IPv6 N3 address: accepted, same TEID.
    pdi.fteid = Some(Fteid {
        teid: 100,
        v6: Some(N3_6),
        ..Fteid::default()
    });
    let m = SessionRequest {
        update_pdrs: vec![super::super::wire::Pdr {
            pdr_id: Some(1),
            pdi: Some(pdi),
            ..Default::default()
        }],
        ..SessionRequest::default()
    };
    let (_, r, o) = l.send(&build::modification_request(6, seid, &m));
    assert_eq!(o, Outcome::Accepted(Procedure::Modification), "{r:?}");
    assert_eq!(l.t.first().0.ul_teid, 100);
}

#[test]
fn outer_header_removal_gtpu_ipv6_is_accepted_and_others_are_73() {
    let mut l = associated(cfg6());
    let mut req = with_fteid(1, ch(false, true));
    req.create_pdrs[0].outer_header_removal = Some(OHR_GTPU_UDP_IPV6);
    let (_, r, o) = l.establish(&req);
    assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
    assert_eq!(l.t.live.len(), 1);
    // 2: UDP/IPv4, not a GTP-U tunnel.
    let mut req = with_fteid(2, ch(true, false));
    req.create_pdrs[0].outer_header_removal = Some(2);
    let (_, r, o) = l.establish(&req);
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Establishment, Cause::RULE_FAILURE),
            Some(ty::OUTER_HEADER_REMOVAL)
        )
    );
    assert_eq!(l.t.live.len(), 1);
}

#[test]
fn scapy_ohc_with_both_gtpu_bits_is_69() {
    let mut l = associated(cfg6());
    let (_, r, o) = l.send(&hex(ESTABLISH_REQ_OHC_BOTH));
    assert_eq!((o, r.offending_ie), incorrect(ty::OUTER_HEADER_CREATION));
    assert!(l.t.live.is_empty() && l.e.sessions().is_empty());
}

#[test]
fn an_ohc_other_than_exactly_one_gtpu_family_is_69() {
    // Shapes only code can build (on the wire the description decides
    // what is read): an address of the other family, or no TEID.
    for ohc in [
        Ohc {
            description: Ohc::GTPU_UDP_IPV6,
            teid: Some(1),
            v4: Some(AN),
            v6: None,
        },
        Ohc {
            v6: Some(AN6),
            ..Ohc::gtpu_v4(1, AN)
        },
        Ohc {
            v4: Some(AN),
            ..Ohc::gtpu_v6(1, AN6)
        },
        Ohc {
            teid: None,
            ..Ohc::gtpu_v6(1, AN6)
        },
    ] {
        assert_eq!(ohc.gtpu_peer(), None, "{ohc:?}");
    }
    // On the wire: UDP/IPv6, IPv6, and GTP-U/UDP/IPv6 with a C-TAG.
    let mut l = associated(cfg6());
    for (i, description) in [0x0800, 0x2000, Ohc::GTPU_UDP_IPV6 | 0x4000]
        .into_iter()
        .enumerate()
    {
        let mut req = with_fteid(i as u64 + 1, ch(true, false));
        req.create_fars[1] = build::downlink_far(Some((1, AN)));
        let ohc = Ohc {
            description,
            ..Ohc::gtpu_v6(1, AN6)
        };
        req.create_fars[1].forwarding.as_mut().expect("fw").ohc = Some(ohc);
        let (_, r, o) = l.establish(&req);
        assert_eq!(
            (o, r.offending_ie),
            incorrect(ty::OUTER_HEADER_CREATION),
            "{description:#06x}"
        );
    }
    assert!(l.t.live.is_empty());
}

#[test]
fn a_modification_moves_the_downlink_to_an_ipv6_access_node() {
    let mut l = associated(cfg6());
    let seid = l.typical(1, UE, None);
    let before = l.t.first().0;
    assert_eq!(before.an_addr, Some(IpAddr::V4(AN)));
    let far = |ohc| Far {
        far_id: Some(2),
        apply_action: Some(super::super::ie::action::FORW),
        forwarding: Some(super::super::wire::Forwarding {
            destination_interface: Some(super::super::ie::IFACE_ACCESS),
            ohc: Some(ohc),
        }),
    };
    // Both GTP-U bits in an Update FAR: refused, nothing changes.
    let both = SessionRequest {
        update_fars: vec![far(Ohc {
            description: Ohc::GTPU_UDP_IPV4 | Ohc::GTPU_UDP_IPV6,
            v6: Some(AN6),
            ..Ohc::gtpu_v4(9, AN)
        })],
        ..SessionRequest::default()
    };
    let (_, r, o) = l.send(&build::modification_request(5, seid, &both));
    assert_eq!(
        (o, r.offending_ie),
        (
            rejected(Procedure::Modification, Cause::MANDATORY_IE_INCORRECT),
            Some(ty::OUTER_HEADER_CREATION)
        )
    );
    assert_eq!(l.t.first().0, before);
    let m = SessionRequest {
        update_fars: vec![far(Ohc::gtpu_v6(0x9abc, AN6))],
        ..SessionRequest::default()
    };
    let (_, r, o) = l.send(&build::modification_request(6, seid, &m));
    assert_eq!(o, Outcome::Accepted(Procedure::Modification), "{r:?}");
    assert_eq!(
        l.t.first().0,
        TunnelSpec {
            dl_teid: Some(0x9abc),
            an_addr: Some(IpAddr::V6(AN6)),
            ..before
        }
    );
}
