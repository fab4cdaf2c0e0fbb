//! Seed 002 end to end over GTP-U (claims 3-6, 8, 13, 20): sessions set up
//! by a control plane over PFCP (scapy's encoding), G-PDUs from an access
//! node (scapy's encoding) through the lb to the gateway that owns their
//! TEID, decapsulated and NATed to a server, the replies encapsulated back
//! with the downlink TEID and QFI; Echo, Error Indication, usage reports
//! byte-exact against what was sent, and a full table refusing with "no
//! resources" while the sessions it holds keep working.

mod common;

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    sync::{atomic::AtomicBool, Arc},
    thread,
    time::Duration,
};

use control::api::Request;
use serde_json::json;
use testlab::{
    gtp_lab::{self, exchange, Peer, ACCESS_NODE, N3, SMF, UDP_SERVICE},
    topo::Topology,
};

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

struct Lab {
    t: Topology,
    smf: Peer,
    an: Peer,
    _stop: Arc<AtomicBool>,
}

/// One LB, `gateways` GTP-U gateways (TEID prefix i + 1), the echo
/// servers, the SMF and the access node.
fn lab(tag: char, gateways: usize, max_sessions: Option<u32>) -> Lab {
    let mut t = Topology::build(
        &format!("ep{}{tag}", std::process::id() % 100000),
        1,
        gateways,
        &exe(),
    )
    .expect("topology");
    t.add_server_network(4).expect("server network");
    gtp_lab::add_smf(&mut t).expect("smf namespace");
    let stop = Arc::new(AtomicBool::new(false));
    let _ = t.echo_servers(stop.clone());
    for gi in 0..gateways {
        let acct = t.dir.join(format!("acct{gi}.jsonl"));
        let extra = format!(
            "{}\n[gateway.accounting]\nfile = \"{}\"\ninterim = 0\n",
            gtp_lab::gtp_sections(gi, max_sessions),
            acct.display()
        );
        let cfg = t.gateway_config(gi, "20000-20999", &extra);
        t.start_daemon(&format!("g{gi}"), &cfg, &[])
            .expect("gateway daemon");
    }
    let lbcfg = gtp_lab::lb_config(&t, 1, &(0..gateways).collect::<Vec<_>>(), 1);
    t.start_lb(1, &lbcfg).expect("lb daemon");
    let smf = Peer::start(&t.ns("smf"), "smf", SMF).expect("scapy smf");
    let an = Peer::start(&t.ns("t1"), "an", ACCESS_NODE).expect("scapy access node");
    Lab {
        t,
        smf,
        an,
        _stop: stop,
    }
}

fn counter(t: &Topology, role: &str, name: &str) -> u64 {
    let v = t.call_role(role, Request::Stats).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name && r["role"] == "gateway")
        .map(|r| r["packets"].as_u64().unwrap())
        .sum()
}

#[test]
fn gtpu_sessions_through_lb_and_gateways() {
    if !common::kernel_available("gtpu_netns") {
        return;
    }
    let _serial = common::serial();
    let Lab {
        t, mut smf, mut an, ..
    } = lab('u', 2, None);

    // Heartbeat and association with both gateways.
    assert_eq!(
        smf.call(json!({"cmd": "heartbeat", "gw": gtp_lab::pfcp_addr(0).to_string()}))
            .unwrap()["type"],
        2
    );
    for gi in 0..2 {
        let r = smf
            .call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(gi).to_string()}))
            .unwrap();
        assert_eq!(
            (r["type"].as_u64(), r["cause"].as_u64()),
            (Some(6), Some(1)),
            "association with g{gi}: {r}"
        );
    }

    // Two sessions per gateway: one with a QFI, one without; TEIDs chosen
    // by the gateway (CH) from its own range.
    let mut sessions = Vec::new();
    for gi in 0..2 {
        for k in 0..2u8 {
            let ue = Ipv4Addr::new(10, 60, gi as u8, 1 + k);
            let qfi = (k == 0).then_some(9);
            let dl = 0x1000 + (gi as u32) * 16 + k as u32;
            let (seid, teid) = gtp_lab::establish(
                &mut smf,
                gi,
                100 + (gi * 2) as u64 + k as u64,
                ue,
                Some(dl),
                qfi,
                None,
            )
            .unwrap();
            assert_eq!(
                teid >> 24,
                gi as u32 + 1,
                "g{gi} hands out TEIDs of its own prefix: {teid:#x}"
            );
            sessions.push((gi, seid, teid, ue, dl, qfi));
        }
    }
    let teids: HashSet<u32> = sessions.iter().map(|s| s.2).collect();
    assert_eq!(teids.len(), 4, "unique TEIDs");

    // Each session: 20 requests up, 20 replies down, encapsulated with its
    // downlink TEID and QFI, the inner packet restored (representative
    // address to the UE) with valid checksums.
    for (i, (gi, _, teid, ue, dl, qfi)) in sessions.iter().enumerate() {
        let (_, got) = exchange(&mut an, *teid, *ue, 4000 + i as u16, *qfi, 20).unwrap();
        assert_eq!(
            got.len(),
            20,
            "session {i} at g{gi}: 20 replies, got {got:?}"
        );
        for g in &got {
            assert_eq!(g["type"], 255, "{g}");
            assert_eq!(g["teid"].as_u64(), Some(*dl as u64), "downlink TEID: {g}");
            assert_eq!(g["from"], N3.to_string());
            assert_eq!(g["qfi"].as_u64(), qfi.map(|q| q as u64), "QFI: {g}");
            if qfi.is_some() {
                assert_eq!(g["pdu_type"], 0, "a downlink PDU session container: {g}");
            }
            let inner = &g["inner"];
            assert_eq!(inner["src"], UDP_SERVICE.0.to_string(), "{g}");
            assert_eq!(inner["dst"], ue.to_string(), "{g}");
            assert_eq!(
                (inner["sport"].as_u64(), inner["dport"].as_u64()),
                (Some(UDP_SERVICE.1 as u64), Some(4000 + i as u64))
            );
            assert_eq!(
                (inner["ip_csum_ok"].as_bool(), inner["l4_csum_ok"].as_bool()),
                (Some(true), Some(true)),
                "{g}"
            );
            // The server saw gateway:port, not the UE (the echo says whom).
            assert!(
                inner["payload"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("10.2.0.{}:", gi + 1)),
                "{g}"
            );
        }
    }

    // The hierarchy of claim 8 at each gateway: its PFCP sessions, each
    // with one user session (one port) for its one UE flow.
    for gi in 0..2 {
        let tree = t
            .call_role(&format!("g{gi}"), Request::GwSessionTree)
            .unwrap();
        let list = tree["sessions"].as_array().unwrap();
        assert_eq!(list.len(), 2, "g{gi}: {tree}");
        for s in list {
            let users = s["user_sessions"].as_array().unwrap();
            assert_eq!(users.len(), 1, "{s}");
            assert_eq!(users[0]["seid"], s["seid"]);
            assert!((20000..21000).contains(&users[0]["port"].as_u64().unwrap()));
        }
        assert!(tree["plain"].as_array().unwrap().is_empty());
        assert!(counter(&t, &format!("g{gi}"), "gtpu_uplink") >= 40);
        assert!(counter(&t, &format!("g{gi}"), "gtpu_downlink") >= 40);
        // What an operator reads: `edgeplane gw sessions`, each PFCP
        // session with its user session's port under it.
        let out = std::process::Command::new(exe())
            .arg("--socket")
            .arg(t.daemon_socket(&format!("g{gi}")))
            .args(["gw", "sessions"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for s in list {
            let head = format!("session seid {:#x} ", s["seid"].as_u64().unwrap());
            let line = text
                .lines()
                .position(|l| l.starts_with(&head))
                .unwrap_or_else(|| panic!("{head:?} in {text}"));
            let port = s["user_sessions"][0]["port"].as_u64().unwrap().to_string();
            // The session line, the user sessions' header, their rows.
            assert!(
                text.lines()
                    .nth(line + 2)
                    .is_some_and(|l| l.trim_start().starts_with(&port)),
                "port {port} under {head:?}: {text}"
            );
        }
    }

    // Echo: answered with the request's sequence number (through the LB,
    // by whichever gateway it reaches).
    let echo = an
        .call(json!({"cmd": "echo", "n3": N3.to_string(), "seq": 4242}))
        .unwrap();
    let r = &echo["received"][0];
    assert_eq!(
        (r["type"].as_u64(), r["seq"].as_u64()),
        (Some(2), Some(4242)),
        "{echo}"
    );

    // A G-PDU for a TEID no gateway holds: an Error Indication naming it,
    // counted; nothing reaches a server.
    let unknown = 0x0100_dead;
    let _ = an.call(json!({"cmd": "send", "n3": N3.to_string(), "teid": unknown, "ue": "10.60.9.9", "dst": UDP_SERVICE.0.to_string(),
                           "sport": 9, "dport": UDP_SERVICE.1, "count": 1})).unwrap();
    let got = an
        .call(json!({"cmd": "recv", "count": 1, "timeout": 3.0}))
        .unwrap();
    let ei = &got["received"][0];
    assert_eq!(ei["type"], 26, "Error Indication: {got}");
    let (teid, peer) =
        control::gateway::gtpu::parse_error_indication(&hex(ei["raw"].as_str().unwrap()))
            .expect("decodable");
    assert_eq!((teid, peer), (unknown, std::net::IpAddr::V4(N3)));
    assert_eq!(
        counter(&t, "g0", "gtpu_unknown_teid"),
        1,
        "prefix 1 is g0's"
    );

    // Deletion (the usage reports are checked in their own test).
    for (gi, seid, ..) in &sessions {
        let r = smf.call(json!({"cmd": "delete", "gw": gtp_lab::pfcp_addr(*gi).to_string(), "up_seid": seid})).unwrap();
        assert_eq!(
            (r["type"].as_u64(), r["cause"].as_u64()),
            (Some(55), Some(1)),
            "{r}"
        );
    }
    // Accounting: the user sessions end with their PFCP session, and
    // their records carry the SEID, the TEID and the port.
    thread::sleep(Duration::from_millis(2500));
    for gi in 0..2 {
        let text =
            std::fs::read_to_string(t.dir.join(format!("acct{gi}.jsonl"))).unwrap_or_default();
        let ends: Vec<control::gateway::AccountingRecord> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|r: &control::gateway::AccountingRecord| r.event == "end")
            .collect();
        assert_eq!(ends.len(), 2, "g{gi}: {text}");
        for e in &ends {
            let s = sessions
                .iter()
                .find(|s| s.0 == gi && Some(s.1) == e.seid)
                .unwrap_or_else(|| panic!("record of an unknown SEID: {e:?}"));
            assert_eq!(e.teid, Some(s.2));
            assert_eq!(
                e.end_reason,
                Some(control::gateway::EndReason::TunnelDeleted)
            );
            assert_eq!(e.packets_up, 20);
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn usage_reports_are_byte_exact() {
    if !common::kernel_available("gtpu_netns") {
        return;
    }
    let _serial = common::serial();
    let Lab {
        t: _t,
        mut smf,
        mut an,
        ..
    } = lab('y', 1, None);
    // (`t` bound: the topology lives as long as the test.)
    smf.call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(0).to_string()}))
        .unwrap();
    let ue = Ipv4Addr::new(10, 60, 0, 7);
    // A volume threshold of 4000 bytes: reports as the total crosses it.
    let (seid, teid) =
        gtp_lab::establish(&mut smf, 0, 7, ue, Some(0x77), None, Some(4000)).unwrap();
    let mut ul = 0;
    let mut dl = 0;
    for round in 0..3 {
        let (sent, got) = exchange(&mut an, teid, ue, 5000, None, 20).unwrap();
        assert_eq!(got.len(), 20, "round {round}");
        ul += sent["inner_bytes"].as_u64().unwrap();
        dl += got
            .iter()
            .map(|g| g["inner"]["len"].as_u64().unwrap())
            .sum::<u64>();
    }
    // The daemon checks thresholds once a second.
    let reports = smf
        .call(json!({"cmd": "reports", "count": 1, "timeout": 4.0}))
        .unwrap();
    let reports = reports["reports"].as_array().unwrap().clone();
    assert!(!reports.is_empty(), "a threshold report");
    let mut reported = (0, 0, 0);
    for r in &reports {
        for u in r["usage"].as_array().unwrap() {
            assert!(u["volth"].as_bool().unwrap(), "{u}");
            reported.0 += u["total"].as_u64().unwrap();
            reported.1 += u["uplink"].as_u64().unwrap();
            reported.2 += u["downlink"].as_u64().unwrap();
        }
    }
    assert!(reported.0 >= 4000, "{reported:?}");
    let r = smf
        .call(json!({"cmd": "delete", "gw": gtp_lab::pfcp_addr(0).to_string(), "up_seid": seid}))
        .unwrap();
    assert_eq!(r["cause"], 1, "{r}");
    let last = &r["usage"][0];
    assert!(last["termr"].as_bool().unwrap(), "{r}");
    // What was reported before plus the final report is exactly what
    // went through, each direction.
    assert_eq!(
        reported.1 + last["uplink"].as_u64().unwrap(),
        ul,
        "uplink bytes: {reports:?} {r}"
    );
    assert_eq!(
        reported.2 + last["downlink"].as_u64().unwrap(),
        dl,
        "downlink bytes: {reports:?} {r}"
    );
    assert_eq!(reported.0 + last["total"].as_u64().unwrap(), ul + dl);
}

#[test]
fn a_full_table_refuses_with_no_resources_and_keeps_what_it_has() {
    if !common::kernel_available("gtpu_netns") {
        return;
    }
    let _serial = common::serial();
    let Lab {
        t, mut smf, mut an, ..
    } = lab('f', 1, Some(2));
    let gw = gtp_lab::pfcp_addr(0).to_string();

    // Before association: no session.
    let r = smf.call(json!({"cmd": "establish", "gw": gw, "cp_seid": 1, "ue": "10.60.0.1", "dl_teid": 1, "an": ACCESS_NODE.to_string()})).unwrap();
    assert_eq!(r["cause"], 72, "No established PFCP Association: {r}");
    smf.call(json!({"cmd": "associate", "gw": gw})).unwrap();
    let a = gtp_lab::establish(
        &mut smf,
        0,
        1,
        Ipv4Addr::new(10, 60, 0, 1),
        Some(0x11),
        None,
        None,
    )
    .unwrap();
    let b = gtp_lab::establish(
        &mut smf,
        0,
        2,
        Ipv4Addr::new(10, 60, 0, 2),
        Some(0x12),
        None,
        None,
    )
    .unwrap();
    let r = smf.call(json!({"cmd": "establish", "gw": gw, "cp_seid": 3, "ue": "10.60.0.3", "dl_teid": 0x13, "an": ACCESS_NODE.to_string()})).unwrap();
    assert_eq!(r["cause"], 75, "No resources available: {r}");
    // Both sessions still carry traffic.
    for (i, (_, teid)) in [a, b].iter().enumerate() {
        let (_, got) = exchange(
            &mut an,
            *teid,
            Ipv4Addr::new(10, 60, 0, 1 + i as u8),
            6000,
            None,
            5,
        )
        .unwrap();
        assert_eq!(got.len(), 5, "session {i} after the refusal");
    }
    // Unknown SEID: Session context not found, in a response with SEID 0.
    let r = smf
        .call(json!({"cmd": "delete", "gw": gw, "up_seid": 0xdead_beef_u64}))
        .unwrap();
    assert_eq!(
        (r["cause"].as_u64(), r["seid"].as_u64()),
        (Some(65), Some(0)),
        "{r}"
    );
    // Modification adds a downlink to a session that had none.
    let (c_seid, c_teid) = {
        smf.call(json!({"cmd": "delete", "gw": gw, "up_seid": b.0}))
            .unwrap();
        gtp_lab::establish(
            &mut smf,
            0,
            4,
            Ipv4Addr::new(10, 60, 0, 4),
            None,
            None,
            None,
        )
        .unwrap()
    };
    let (_, got) = exchange(&mut an, c_teid, Ipv4Addr::new(10, 60, 0, 4), 6100, None, 3).unwrap();
    assert!(
        got.is_empty(),
        "no downlink before the modification: {got:?}"
    );
    assert!(counter(&t, "g0", "gtpu_no_tunnel") >= 3);
    let r = smf.call(json!({"cmd": "modify", "gw": gw, "up_seid": c_seid, "dl_teid": 0x14, "an": ACCESS_NODE.to_string()})).unwrap();
    assert_eq!(r["cause"], 1, "{r}");
    let (_, got) = exchange(&mut an, c_teid, Ipv4Addr::new(10, 60, 0, 4), 6100, None, 3).unwrap();
    assert_eq!(got.len(), 3, "downlink after the modification");
    assert!(got.iter().all(|g| g["teid"] == 0x14));
    // Malformed PFCP: a short header gets nothing (no response can be
    // built) and is counted; an unknown message type likewise.
    let before = counter(&t, "g0", "pfcp_discarded_short_header");
    let _ = smf
        .call(json!({"cmd": "raw", "gw": gw, "hex": "2101", "timeout": 0.5}))
        .unwrap();
    let rows = t.call_role("g0", Request::Stats).unwrap();
    assert_eq!(
        counter(&t, "g0", "pfcp_discarded_short_header"),
        before + 1,
        "{rows}"
    );
}
