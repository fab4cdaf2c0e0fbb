//! Request builders, as a CP function sends them: for tests and the
//! benchmark client.

use super::*;

pub fn heartbeat_request(seq: u32, recovery_ts: u32) -> Vec<u8> {
    let r = Reply {
        recovery_ts: Some(recovery_ts),
        ..Reply::default()
    };
    Header::node(msg::HEARTBEAT_REQUEST, seq).encode(&r.encode(0))
}
pub fn association_setup_request(seq: u32, node: Ipv4Addr, recovery_ts: u32) -> Vec<u8> {
    let r = Reply {
        node_id: Some(NodeId::V4(node)),
        recovery_ts: Some(recovery_ts),
        ..Reply::default()
    };
    Header::node(msg::ASSOCIATION_SETUP_REQUEST, seq).encode(&r.encode(0))
}
pub fn association_release_request(seq: u32, node: Ipv4Addr) -> Vec<u8> {
    let r = Reply {
        node_id: Some(NodeId::V4(node)),
        ..Reply::default()
    };
    Header::node(msg::ASSOCIATION_RELEASE_REQUEST, seq).encode(&r.encode(0))
}
/// Header SEID 0 (§7.2.2.4.2: the UP's SEID is not known yet).
pub fn establishment_request(seq: u32, req: &SessionRequest) -> Vec<u8> {
    Header::session(msg::SESSION_ESTABLISHMENT_REQUEST, 0, seq).encode(&req.encode())
}
pub fn modification_request(seq: u32, up_seid: u64, req: &SessionRequest) -> Vec<u8> {
    Header::session(msg::SESSION_MODIFICATION_REQUEST, up_seid, seq).encode(&req.encode())
}
pub fn deletion_request(seq: u32, up_seid: u64) -> Vec<u8> {
    Header::session(msg::SESSION_DELETION_REQUEST, up_seid, seq).encode(&[])
}
pub fn report_response(seq: u32, up_seid: u64, cause: Cause) -> Vec<u8> {
    let r = Reply {
        cause: Some(cause),
        ..Reply::default()
    };
    Header::session(msg::SESSION_REPORT_RESPONSE, up_seid, seq).encode(&r.encode(0))
}

/// The session this gateway supports, as a 5G SMF sends it: uplink
/// PDR 1 from Access with CH F-TEID and GTP-U removal, downlink PDR 2
/// from Core for the UE address, FAR 1 forwarding to Core, FAR 2 to
/// Access (with OHC when `downlink` is given, else buffering), URR 1
/// measuring volume with an optional total threshold, QER 1 with QFI.
pub fn typical_session(
    cp_node: Ipv4Addr,
    cp_seid: u64,
    ue: Ipv4Addr,
    downlink: Option<(u32, Ipv4Addr)>,
    threshold: Option<u64>,
    qfi: u8,
) -> SessionRequest {
    let fteid = Fteid {
        ch: true,
        want_v4: true,
        ..Fteid::default()
    };
    let ue_ip = UeIp {
        v4: Some(ue),
        v6: None,
        destination: true,
    };
    SessionRequest {
        node_id: Some(NodeId::V4(cp_node)),
        cp_fseid: Some(Fseid {
            seid: cp_seid,
            v4: Some(cp_node),
            v6: None,
        }),
        create_pdrs: vec![
            Pdr {
                pdr_id: Some(1),
                precedence: Some(100),
                pdi: Some(Pdi {
                    source_interface: Some(IFACE_ACCESS),
                    fteid: Some(fteid),
                    ue_ip: None,
                    qfi: Some(qfi),
                }),
                outer_header_removal: Some(OHR_GTPU_UDP_IPV4),
                far_id: Some(1),
                urr_ids: vec![1],
                qer_ids: vec![1],
            },
            Pdr {
                pdr_id: Some(2),
                precedence: Some(100),
                pdi: Some(Pdi {
                    source_interface: Some(IFACE_CORE),
                    fteid: None,
                    ue_ip: Some(ue_ip),
                    qfi: None,
                }),
                outer_header_removal: None,
                far_id: Some(2),
                urr_ids: vec![1],
                qer_ids: vec![1],
            },
        ],
        create_fars: vec![
            Far {
                far_id: Some(1),
                apply_action: Some(action::FORW),
                forwarding: Some(Forwarding {
                    destination_interface: Some(IFACE_CORE),
                    ohc: None,
                }),
            },
            downlink_far(downlink),
        ],
        create_urrs: vec![Urr {
            urr_id: Some(1),
            measurement_method: Some(MEASURE_VOLUM),
            reporting_triggers: threshold.map(|_| REPORTING_VOLTH),
            volume_threshold: threshold.map(|t| Volumes {
                total: Some(t),
                ..Volumes::default()
            }),
        }],
        create_qers: vec![Qer {
            qer_id: Some(1),
            gate_status: Some(0),
            qfi: Some(qfi),
        }],
        ..SessionRequest::default()
    }
}

/// FAR 2 of [`typical_session`]: to Access through GTP-U, or buffering.
pub fn downlink_far(downlink: Option<(u32, Ipv4Addr)>) -> Far {
    use {action, IFACE_ACCESS};
    match downlink {
        Some((teid, an)) => Far {
            far_id: Some(2),
            apply_action: Some(action::FORW),
            forwarding: Some(Forwarding {
                destination_interface: Some(IFACE_ACCESS),
                ohc: Some(Ohc::gtpu_v4(teid, an)),
            }),
        },
        None => Far {
            far_id: Some(2),
            apply_action: Some(action::BUFF),
            forwarding: None,
        },
    }
}

/// The 5G path switch / first downlink: Update FAR 2 with the access
/// node's F-TEID.
pub fn set_downlink(teid: u32, an: Ipv4Addr) -> SessionRequest {
    SessionRequest {
        update_fars: vec![downlink_far(Some((teid, an)))],
        ..SessionRequest::default()
    }
}
