//! A dual-stack PDU session end to end (issue 13): scapy as the SMF sets
//! it up over PFCP with the UE's IPv4 address and IPv6 /64, scapy as the
//! access node sends G-PDUs (IPv4 transport, through the lb) carrying
//! IPv6 and IPv4 T-PDUs; the gateway translates both to its server
//! groups and encapsulates the replies back with the downlink TEID, each
//! inner packet's checksums recomputed by scapy.

mod common;

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::{atomic::AtomicBool, Arc},
};

use control::api::Request;
use serde_json::json;
use testlab::{
    gtp_lab::{self, Peer, ACCESS_NODE, N3, SMF, UDP_SERVICE},
    topo::Topology,
    topo_ipv6::DNS6,
};

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

const UE: Ipv4Addr = Ipv4Addr::new(10, 60, 9, 1);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 7, 0, 0, 0, 0);
const UE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 7, 0x1c, 0x2d, 0x3e, 0x4f);

#[test]
fn a_dual_stack_pdu_session_carries_ipv6_and_ipv4() {
    if !common::kernel_available("gtpu_ipv6_netns") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&format!("ep{}y", std::process::id() % 100000), 1, 1, &exe())
        .expect("topology");
    t.add_server_network(4).expect("server network");
    t.add_ipv6(4).expect("ipv6");
    gtp_lab::add_smf(&mut t).expect("smf namespace");
    let stop = Arc::new(AtomicBool::new(false));
    let _v4 = t.echo_servers(stop.clone());
    let _v6 = t.echo_servers_ipv6(stop.clone());
    let cfg = t.gateway_config_dual(0, "20000-20999", &gtp_lab::gtp_sections(0, None));
    t.start_daemon("g0", &cfg, &[]).expect("gateway daemon");
    t.start_lb(1, &gtp_lab::lb_config(&t, 1, &[0], 1))
        .expect("lb daemon");
    let mut smf = Peer::start(&t.ns("smf"), "smf", SMF).expect("scapy smf");
    let mut an = Peer::start(&t.ns("t1"), "an", ACCESS_NODE).expect("scapy access node");

    let r = smf
        .call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(0).to_string()}))
        .unwrap();
    assert_eq!(r["cause"], 1, "association: {r}");
    let dl_teid = 0x7001u32;
    let r = smf
        .call(json!({
            "cmd": "establish", "gw": gtp_lab::pfcp_addr(0).to_string(), "cp_seid": 77,
            "ue": UE.to_string(), "ue6": PREFIX.to_string(), "dl_teid": dl_teid,
            "an": ACCESS_NODE.to_string(), "qfi": 9,
        }))
        .unwrap();
    assert_eq!(r["cause"], 1, "establishment of a dual-stack session: {r}");
    let teid = r["teid"].as_u64().expect("created F-TEID") as u32;
    let tree = t.call_role("g0", Request::GwSessionTree).unwrap();
    assert!(tree.to_string().contains(&PREFIX.to_string()), "{tree}");

    // IPv6 T-PDUs to the IPv6 DNS service, then IPv4 ones in the same
    // session to the IPv4 one.
    for (ue, dst, dport, from) in [
        (UE6.to_string(), DNS6.to_string(), 53u16, DNS6.to_string()),
        (
            UE.to_string(),
            UDP_SERVICE.0.to_string(),
            UDP_SERVICE.1,
            UDP_SERVICE.0.to_string(),
        ),
    ] {
        let count = 10;
        let sent = an
            .call(json!({"cmd": "send", "n3": N3.to_string(), "teid": teid, "ue": ue, "dst": dst,
                         "sport": 41000, "dport": dport, "qfi": 9, "count": count, "payload": "q", "pps": 100}))
            .unwrap();
        assert_eq!(sent["sent"], count, "{sent}");
        let got = an
            .call(json!({"cmd": "recv", "count": count, "timeout": 4.0}))
            .unwrap();
        let got = got["received"].as_array().cloned().expect("received");
        assert_eq!(
            got.len(),
            count as usize,
            "every request answered into the tunnel: {got:?}"
        );
        for g in &got {
            assert_eq!(
                (g["type"].as_u64(), g["teid"].as_u64()),
                (Some(255), Some(dl_teid as u64)),
                "{g}"
            );
            assert_eq!(g["qfi"], 9, "{g}");
            let inner = &g["inner"];
            assert_eq!(
                (inner["src"].as_str(), inner["dst"].as_str()),
                (Some(from.as_str()), Some(ue.as_str())),
                "{g}"
            );
            assert_eq!(
                (inner["sport"].as_u64(), inner["dport"].as_u64()),
                (Some(dport as u64), Some(41000)),
                "{g}"
            );
            assert_eq!(
                (inner["ip_csum_ok"].as_bool(), inner["l4_csum_ok"].as_bool()),
                (Some(true), Some(true)),
                "{g}"
            );
            assert!(
                inner["payload"].as_str().unwrap().contains(" q"),
                "the echo: {g}"
            );
        }
    }
    let stats = t.call_role("g0", Request::Stats).unwrap();
    let count = |name: &str| {
        stats
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["role"] == "gateway" && c["name"] == name)
            .map(|c| c["packets"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("gtpu_uplink"), 20, "{stats}");
    assert_eq!(count("gtpu_downlink"), 20, "{stats}");
    for bad in ["gtpu_ue_mismatch", "gtpu_inner_malformed", "malformed"] {
        assert_eq!(count(bad), 0, "{bad}: {stats}");
    }
    drop(stop);
}
