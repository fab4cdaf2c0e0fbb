//! GTP-U over IPv6 transport end to end (issue 13): scapy as the SMF
//! asks for an IPv6 F-TEID (CH with V6) and gives the access node's IPv6
//! address in the Outer Header Creation; the access node, a kernel UDP
//! socket on [2001:db8:1::2]:2152, sends G-PDUs through the lb to the
//! gateway's IPv6 N3 address carrying IPv4 and IPv6 T-PDUs; the replies
//! come back in GTP-U/UDP/IPv6 (the kernel socket drops any datagram
//! whose UDP checksum is wrong or zero, so each one received had a valid
//! one), with the downlink TEID, the QFI and valid inner checksums. A
//! G-PDU of an unknown TEID gets an Error Indication naming the IPv6 N3
//! address.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{atomic::AtomicBool, Arc};

use control::api::Request;
use serde_json::json;
use testlab::{
    gtp_lab::{self, Peer, N3_6, SMF, UDP_SERVICE},
    topo::Topology,
    topo_ipv6::{DNS6, TERM6},
};

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

const UE: Ipv4Addr = Ipv4Addr::new(10, 60, 10, 1);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 10, 0, 0, 0, 0);
const UE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xcafe, 10, 0, 0, 0, 0x42);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn gtpu_over_ipv6_transport_through_the_lb() {
    if !common::kernel_available("gtpu_n3v6_netns") {
        return;
    }
    let _serial = common::serial();
    let mut t = Topology::build(&format!("ep{}n", std::process::id() % 100000), 1, 1, &exe())
        .expect("topology");
    t.add_server_network(4).expect("server network");
    t.add_ipv6(4).expect("ipv6");
    gtp_lab::add_ipv6_n3(&t).expect("ipv6 on the core link");
    gtp_lab::add_smf(&mut t).expect("smf namespace");
    let stop = Arc::new(AtomicBool::new(false));
    let _v4 = t.echo_servers(stop.clone());
    let _v6 = t.echo_servers_ipv6(stop.clone());
    let cfg = t.gateway_config_dual(0, "20000-20999", &gtp_lab::gtp_sections6(0, None));
    t.start_daemon("g0", &cfg, &[]).expect("gateway daemon");
    t.start_lb(1, &gtp_lab::lb_config(&t, 1, &[0], 1))
        .expect("lb daemon");
    let mut smf = Peer::start(&t.ns("smf"), "smf", SMF).expect("scapy smf");
    let mut an = Peer::start(&t.ns("t1"), "an", TERM6).expect("scapy access node");

    let r = smf
        .call(json!({"cmd": "associate", "gw": gtp_lab::pfcp_addr(0).to_string()}))
        .unwrap();
    assert_eq!(r["cause"], 1, "association: {r}");
    let dl_teid = 0x7101u32;
    let r = smf
        .call(json!({
            "cmd": "establish", "gw": gtp_lab::pfcp_addr(0).to_string(), "cp_seid": 78,
            "ue": UE.to_string(), "ue6": PREFIX.to_string(), "dl_teid": dl_teid,
            "an": TERM6.to_string(), "qfi": 5, "n3v6": true,
        }))
        .unwrap();
    assert_eq!(r["cause"], 1, "establishment over IPv6 transport: {r}");
    assert_eq!(
        r["n3v6"],
        N3_6.to_string(),
        "the F-TEID carries the IPv6 N3 address: {r}"
    );
    assert!(r["n3"].is_null(), "no IPv4 address was asked for: {r}");
    let teid = r["teid"].as_u64().expect("created F-TEID") as u32;
    let tree = t.call_role("g0", Request::GwSessionTree).unwrap();
    assert!(tree.to_string().contains(&TERM6.to_string()), "{tree}");

    for (ue, dst, dport) in [
        (UE.to_string(), UDP_SERVICE.0.to_string(), UDP_SERVICE.1),
        (UE6.to_string(), DNS6.to_string(), 53u16),
    ] {
        let count = 10;
        let sent = an
            .call(json!({"cmd": "send", "n3": N3_6.to_string(), "teid": teid, "ue": ue, "dst": dst,
                         "sport": 42000, "dport": dport, "qfi": 5, "count": count, "payload": "q", "pps": 100}))
            .unwrap();
        assert_eq!(sent["sent"], count, "{sent}");
        let got = an
            .call(json!({"cmd": "recv", "count": count, "timeout": 4.0}))
            .unwrap();
        let got = got["received"].as_array().cloned().expect("received");
        assert_eq!(
            got.len(),
            count as usize,
            "every request answered into the tunnel over IPv6 ({ue}): {got:?}"
        );
        for g in &got {
            assert_eq!(g["from"], N3_6.to_string(), "from the IPv6 N3 address: {g}");
            assert_eq!(
                (g["type"].as_u64(), g["teid"].as_u64(), g["qfi"].as_u64()),
                (Some(255), Some(dl_teid as u64), Some(5)),
                "{g}"
            );
            let inner = &g["inner"];
            assert_eq!(
                (inner["src"].as_str(), inner["dst"].as_str()),
                (Some(dst.as_str()), Some(ue.as_str())),
                "{g}"
            );
            assert_eq!(
                (inner["sport"].as_u64(), inner["dport"].as_u64()),
                (Some(dport as u64), Some(42000)),
                "{g}"
            );
            assert_eq!(inner["l4_csum_ok"], true, "{g}");
            assert!(
                inner["payload"].as_str().unwrap().contains(" q"),
                "the echo: {g}"
            );
        }
    }

    // An unknown TEID of this gateway's prefix: the daemon's socket on
    // [n3]:2152 answers with an Error Indication naming that address.
    let unknown = (1u32 << 24) | 0xabcd;
    let mut gtp = edgeplane::packets::gtpu_header(unknown, 255, 0, &[], 4);
    gtp.extend_from_slice(b"lost");
    an.call(json!({"cmd": "raw", "n3": N3_6.to_string(), "hex": gtp.iter().map(|b| format!("{b:02x}")).collect::<String>()}))
        .unwrap();
    let got = an
        .call(json!({"cmd": "recv", "count": 1, "timeout": 3.0}))
        .unwrap();
    let ei = &got["received"][0];
    assert_eq!(ei["type"], 26, "Error Indication: {got}");
    let parsed = control::gateway::gtpu::parse_error_indication(&hex(ei["raw"].as_str().unwrap()))
        .expect("decodable");
    assert_eq!(parsed, (unknown, IpAddr::V6(N3_6)));

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
    assert_eq!(count("gtpu_unknown_teid"), 1, "{stats}");
    for bad in [
        "gtpu_ue_mismatch",
        "gtpu_inner_malformed",
        "gtpu_truncated",
        "gtpu_zero_checksum6",
        "malformed",
    ] {
        assert_eq!(count(bad), 0, "{bad}: {stats}");
    }
    drop(stop);
}
