//! The gateway as a GTP-U user plane (TS 29.281) through BPF_PROG_TEST_RUN:
//! uplink G-PDUs decapsulated and translated (output checked byte by byte
//! against an expectation built here, checksums recomputed), downlink
//! replies encapsulated toward the access node (with and without a PDU
//! Session Container), signalling and unknown TEIDs passed, and every
//! malformed input dropped with its reason and nothing forwarded or
//! counted. Some inputs are scapy's (an independent encoder), pasted as
//! hex with the expression that made them.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane_common::gateway::{stat, TunnelCounters};
use dataplane_user::{verdict, Dataplane};
use edgeplane::packets::pdu_session_container;
use testlab::fixtures::gateway::{self as fx, GW_ADDR};

// scapy 2.5 (/usr/bin/python3), with
//   E = Ether(src="02:00:00:00:04:02", dst="02:00:00:00:03:01")
//   O = IP(src="10.4.0.2", dst="10.3.0.1", id=7) / UDP(sport=2152, dport=2152)
//   from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

/// E/O/GTP_U_Header(teid=0x1000)/IP(src="100.64.0.9", dst="198.51.100.10", id=1)
///   /TCP(sport=40000, dport=80, flags="S", seq=1000)/b"hello"
const SCAPY_GPDU_TCP: &str = "020000000301020000000402080045000051000700004011668c0a0400020a03000108680868003d281530ff002d000010004500002d000100004006ec4364400009c633640a9c400050000003e800000000500220001d0c000068656c6c6f";
/// E/O/GTP_U_Header(teid=0x1000, E=1, next_ex=0x85)/GTPPDUSessionContainer(type=1, QFI=9)
///   /IP(src="100.64.0.9", dst="198.51.100.20", id=2)/UDP(sport=40001, dport=53)/b"query"
const SCAPY_GPDU_PSC_UDP: &str = "02000000030102000000040208004500004d00070000401166900a0400020a030001086808680039199534ff002900001000000000850110090045000021000200004011ec3964400009c63364149c410035000d84e47175657279";
/// E/O/GTP_U_Header(teid=0x1000, S=1, PN=1, seq=0x1234, npdu=5)
///   /IP(src="100.64.0.9", dst="198.51.100.20", id=3)/UDP(sport=40002, dport=53)/b"seq+pn"
const SCAPY_GPDU_SEQ_PN: &str = "02000000030102000000040208004500004a00070000401166930a0400020a0300010868086800360e0033ff0026000010001234050045000022000300004011ec3764400009c63364149c420035000e7fca7365712b706e";
/// E/O/GTP_U_Header(teid=0, gtp_type=1, S=1, seq=1)
const SCAPY_ECHO_REQUEST: &str = "02000000030102000000040208004500002800070000401166b50a0400020a030001086808680014a8e6320100040000000000010000";

const SERVER_PORT_WEB: u16 = 8080;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn tunnel_total(dp: &Dataplane) -> TunnelCounters {
    let mut t = TunnelCounters::default();
    for idx in [fx::TUN.0, fx::TUN_QFI.0, fx::TUN_NO_DL.0, fx::TUN_TWIN.0] {
        let c = dp.tunnel_counters(idx).unwrap();
        t.pkts_ul += c.pkts_ul;
        t.bytes_ul += c.bytes_ul;
        t.pkts_dl += c.pkts_dl;
        t.bytes_dl += c.bytes_dl;
    }
    t
}

/// A refused input: `want` (DROP or PASS) with `reason`, no tunnel
/// counted, no flow made, nothing sent.
fn refused(dp: &mut Dataplane, name: &str, pkt: &[u8], want: u32, reason: u32) {
    let (flows, tun) = (dp.flows().unwrap().len(), tunnel_total(dp));
    let before = dp.gw_stats().unwrap();
    common::gateway_run(dp, name, pkt, want, &[reason]);
    let after = dp.gw_stats().unwrap();
    assert_eq!(
        common::moved(&before, &after, stat::GTPU_UPLINK),
        0,
        "{name}: not counted as uplink"
    );
    assert_eq!(
        common::moved(&before, &after, stat::GTPU_DOWNLINK),
        0,
        "{name}: not counted as downlink"
    );
    assert_eq!(dp.flows().unwrap().len(), flows, "{name}: no session made");
    assert_eq!(tunnel_total(dp), tun, "{name}: no tunnel usage counted");
}

/// The T-PDU (inner IP packet) of a G-PDU built without VLAN tags.
fn tpdu(pkt: &[u8]) -> Vec<u8> {
    let flags = pkt[42];
    let mut off = 50;
    if flags & 0x07 != 0 {
        let mut next = pkt[53];
        off = 54;
        if flags & 0x04 != 0 {
            while next != 0 {
                let len = pkt[off] as usize * 4;
                next = pkt[off + len - 1];
                off += len;
            }
        }
    }
    pkt[off..].to_vec()
}

/// What an uplink G-PDU must come out as: the inner packet, translated to
/// gateway:port → server (TTL - 1, checksums recomputed from scratch),
/// behind an untagged Ethernet header toward the server.
fn expected_uplink(inner: &[u8], port: u16, server: usize) -> Vec<u8> {
    let (_, saddr, sport) = fx::SERVERS[server];
    let mut ip = inner.to_vec();
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    ip[8] -= 1;
    ip[12..16].copy_from_slice(&GW_ADDR.octets());
    ip[16..20].copy_from_slice(&saddr.octets());
    ip[ihl..ihl + 2].copy_from_slice(&port.to_be_bytes());
    ip[ihl + 2..ihl + 4].copy_from_slice(&sport.to_be_bytes());
    fx::fix_checksums(&mut ip);
    let mut out = fx::server_mac(server).to_vec();
    out.extend_from_slice(&fx::EGRESS_MAC);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out
}

fn server_at(out: &[u8]) -> usize {
    let dst = Ipv4Addr::new(out[30], out[31], out[32], out[33]);
    let dport = u16::from_be_bytes([out[36], out[37]]);
    fx::SERVERS
        .iter()
        .position(|(_, a, p)| *a == dst && *p == dport)
        .expect("a configured server")
}

/// Send an uplink G-PDU that must open or use a session; check the output
/// byte by byte and return the session's port.
fn uplink(dp: &mut Dataplane, name: &str, pkt: &[u8], reason: u32, tunnel: u32) -> u16 {
    let inner = tpdu(pkt);
    let inner_len = u16::from_be_bytes([inner[2], inner[3]]) as u64;
    let c0 = dp.tunnel_counters(tunnel).unwrap();
    let out = common::gateway_run(dp, name, pkt, verdict::TX, &[reason, stat::GTPU_UPLINK]);
    let port = u16::from_be_bytes([out[34], out[35]]);
    assert!((40000..=40029).contains(&port), "{name}: a pool port");
    assert_eq!(
        out,
        expected_uplink(&inner, port, server_at(&out)),
        "{name}: decapsulated and translated"
    );
    assert!(fx::checksums_ok(&out, 14), "{name}: checksums");
    let c = dp.tunnel_counters(tunnel).unwrap();
    assert_eq!(
        (c.pkts_ul - c0.pkts_ul, c.bytes_ul - c0.bytes_ul),
        (1, inner_len),
        "{name}: tunnel usage is the inner length"
    );
    let s = dp.session(port).unwrap();
    assert_eq!(
        s.tunnel,
        Some(tunnel),
        "{name}: the session is the tunnel's"
    );
    port
}

/// Check an encapsulated downlink frame toward the access node: outer
/// headers, lengths, checksum, TEID, the container when `qfi` is set;
/// returns the inner packet.
fn check_downlink(name: &str, out: &[u8], dl_teid: u32, qfi: Option<u8>) -> Vec<u8> {
    assert_eq!(&out[0..6], &fx::AN_MAC, "{name}: to the access node");
    assert_eq!(&out[6..12], &fx::N3_MAC, "{name}: from the N3 interface");
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let o = &out[14..34];
    assert_eq!(o[0], 0x45, "{name}: IPv4, no options");
    assert_eq!(&o[4..8], &[0, 0, 0x40, 0], "{name}: ID 0, DF");
    assert_eq!((o[8], o[9]), (64, 17), "{name}: TTL 64, UDP");
    assert_eq!(&o[12..16], &fx::N3_ADDR.octets());
    assert_eq!(&o[16..20], &fx::AN_ADDR.octets());
    assert_eq!(fx::fold(fx::sum16(o)), 0xffff, "{name}: outer IP checksum");
    let ip_len = u16::from_be_bytes([o[2], o[3]]) as usize;
    assert_eq!(ip_len, out.len() - 14, "{name}: outer IP length");
    let u = &out[34..42];
    assert_eq!(&u[0..4], &[0x08, 0x68, 0x08, 0x68], "{name}: 2152 → 2152");
    assert_eq!(
        u16::from_be_bytes([u[4], u[5]]) as usize,
        ip_len - 20,
        "{name}: UDP length"
    );
    assert_eq!(&u[6..8], &[0, 0], "{name}: no UDP checksum");
    let g = &out[42..50];
    assert_eq!(g[1], 255, "{name}: G-PDU");
    assert_eq!(
        u32::from_be_bytes([g[4], g[5], g[6], g[7]]),
        dl_teid,
        "{name}: the access node's TEID"
    );
    assert_eq!(
        u16::from_be_bytes([g[2], g[3]]) as usize,
        ip_len - 20 - 8 - 8,
        "{name}: GTP-U length"
    );
    let inner_off = match qfi {
        None => {
            assert_eq!(g[0], 0x30, "{name}: flags");
            50
        }
        Some(q) => {
            assert_eq!(g[0], 0x34, "{name}: flags with E");
            assert_eq!(
                &out[50..54],
                &[0, 0, 0, 0x85],
                "{name}: seq 0, N-PDU 0, next: PDU Session Container"
            );
            assert_eq!(
                &out[54..58],
                &[1, 0x00, q, 0],
                "{name}: DL PDU SESSION INFORMATION with the QFI"
            );
            58
        }
    };
    let inner = out[inner_off..].to_vec();
    assert_eq!(
        u16::from_be_bytes([inner[2], inner[3]]) as usize,
        inner.len(),
        "{name}: the inner packet is the rest"
    );
    inner
}

#[test]
fn gtpu_fixture_table() {
    if !common::kernel_available("gtpu_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install_gtpu(&mut dp, 1, (40000, 40029)).expect("install");
        let dp = &mut dp;
        let (t_idx, t_teid, ue, dl_teid, _) = fx::TUN;
        assert_eq!(dp.tunnels().unwrap().len(), 4);
        assert_eq!(dp.tunnel(t_idx).unwrap().unwrap().ue_addr, ue);

        // ---- uplink --------------------------------------------------------
        // 1. scapy: a G-PDU without optional fields, TCP to the web service.
        let syn = hex(SCAPY_GPDU_TCP);
        let port = uplink(
            dp,
            "uplink new session (scapy)",
            &syn,
            stat::NEW_SESSION,
            t_idx,
        );
        let s = dp.session(port).unwrap();
        assert_eq!(
            (s.terminal, s.representative),
            (
                SocketAddrV4::new(ue, 40000).into(),
                SocketAddrV4::new(fx::WEB, 80).into()
            ),
            "the terminal is the UE"
        );
        let flow = dp
            .flows()
            .unwrap()
            .into_iter()
            .find(|(_, p)| *p == port)
            .unwrap()
            .0;
        assert_eq!(
            (flow.addr, flow.port, flow.tunnel),
            (ue.into(), 40000, Some(t_idx))
        );
        // 2. The same flow again: the same port.
        assert_eq!(
            uplink(dp, "uplink established", &syn, stat::FORWARD, t_idx),
            port
        );
        // 3. scapy: PDU Session Container (UL, QFI 9), UDP to DNS.
        let dns_port = uplink(
            dp,
            "uplink with PDU session container (scapy)",
            &hex(SCAPY_GPDU_PSC_UDP),
            stat::NEW_SESSION,
            t_idx,
        );
        // 4. scapy: S and PN set, the optional fields present.
        uplink(
            dp,
            "uplink with S and PN (scapy)",
            &hex(SCAPY_GPDU_SEQ_PN),
            stat::NEW_SESSION,
            t_idx,
        );
        // 5. Our builder: container on the QFI tunnel.
        let (q_idx, q_teid, q_ue, q_dl, q_qfi) = fx::TUN_QFI;
        let q_in = fx::inner_tcp(q_ue, 41000, fx::WEB, 80, b"GET /");
        let q_port = uplink(
            dp,
            "uplink qfi tunnel",
            &fx::g_pdu(q_teid, 0, &[pdu_session_container(9)], &q_in),
            stat::NEW_SESSION,
            q_idx,
        );
        // 6. A chain of exactly four extensions is walked.
        let four: Vec<Vec<u8>> = (0..4)
            .map(|i| vec![1, 0x10, 9, if i < 3 { 0x85 } else { 0 }])
            .collect();
        uplink(
            dp,
            "uplink four extensions",
            &fx::g_pdu(
                t_teid,
                0,
                &four,
                &fx::inner_udp(ue, 40010, fx::DNS, 53, b"q"),
            ),
            stat::NEW_SESSION,
            t_idx,
        );
        // 7. Another tunnel's UE with the same address and port: its own session.
        let (w_idx, w_teid, w_ue, _, _) = fx::TUN_TWIN;
        let twin = fx::g_pdu(w_teid, 0, &[], &tpdu(&syn));
        let w_port = uplink(
            dp,
            "same UE address, other tunnel",
            &twin,
            stat::NEW_SESSION,
            w_idx,
        );
        assert_ne!(w_port, port, "two tunnels never share a session");
        assert_eq!(w_ue, ue);
        // 8. Q-in-Q on the N3 side: the inner packet leaves untagged.
        let tagged = testlab::fixtures::with_vlans(
            &fx::g_pdu(t_teid, 0, &[], &fx::inner_tcp(ue, 40020, fx::WEB, 80, b"v")),
            &[(0x88a8, 10), (0x8100, 20)],
        );
        let before = dp.gw_stats().unwrap();
        let out = dp.test_run("gateway", &tagged).unwrap();
        assert_eq!(out.verdict, verdict::TX, "tagged uplink");
        assert_eq!(
            common::moved(&before, &dp.gw_stats().unwrap(), stat::GTPU_UPLINK),
            1
        );
        assert_eq!(
            &out.output[12..14],
            &[0x08, 0x00],
            "untagged toward the server"
        );
        assert!(fx::checksums_ok(&out.output, 14));
        // 9. The tunnel with no downlink yet serves the uplink.
        let (n_idx, n_teid, n_ue) = fx::TUN_NO_DL;
        let n_port = uplink(
            dp,
            "uplink, tunnel without downlink",
            &fx::g_pdu(
                n_teid,
                0,
                &[],
                &fx::inner_tcp(n_ue, 42000, fx::WEB, 80, b""),
            ),
            stat::NEW_SESSION,
            n_idx,
        );

        // ---- downlink ------------------------------------------------------
        // 10. The web server answers the first session: encapsulated with the
        // downlink TEID, no container.
        let srv = dp.session(port).unwrap().server as usize;
        let (_, saddr, sport) = fx::SERVERS[srv];
        assert_eq!(sport, SERVER_PORT_WEB);
        let reply = fx_reply(saddr, sport, port, b"200 OK");
        let c0 = dp.tunnel_counters(t_idx).unwrap();
        let out = common::gateway_run(
            dp,
            "downlink",
            &reply,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let inner = check_downlink("downlink", &out, dl_teid, None);
        let mut want = reply[14..].to_vec();
        want[8] -= 1;
        want[12..16].copy_from_slice(&fx::WEB.octets());
        want[16..20].copy_from_slice(&ue.octets());
        want[20..22].copy_from_slice(&80u16.to_be_bytes());
        want[22..24].copy_from_slice(&40000u16.to_be_bytes());
        fx::fix_checksums(&mut want);
        assert_eq!(
            inner, want,
            "downlink: the reply, translated back to WEB:80 → UE:40000"
        );
        let c = dp.tunnel_counters(t_idx).unwrap();
        assert_eq!(
            (c.pkts_dl - c0.pkts_dl, c.bytes_dl - c0.bytes_dl),
            (1, want.len() as u64),
            "downlink usage is the inner length"
        );
        assert_eq!(dp.session_counters(port).unwrap().pkts_down, 1);
        // 11. The QFI tunnel: with the container.
        let q_srv = dp.session(q_port).unwrap().server as usize;
        let (_, qa, qp) = fx::SERVERS[q_srv];
        let out = common::gateway_run(
            dp,
            "downlink with QFI",
            &fx_reply(qa, qp, q_port, b"ok"),
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let inner = check_downlink("downlink with QFI", &out, q_dl, q_qfi);
        assert_eq!(&inner[16..20], &q_ue.octets());
        assert!(
            fx::checksums_ok(&[&[0u8; 14][..], &inner].concat(), 14),
            "downlink with QFI: inner checksums"
        );
        // 12. A UDP reply (DNS) keeps a valid UDP checksum inside.
        let d_srv = dp.session(dns_port).unwrap().server as usize;
        let (_, da, dpp) = fx::SERVERS[d_srv];
        let dns_reply = {
            let b = etherparse::PacketBuilder::ethernet2(
                [2, 0, 0, 0, 0x5e, d_srv as u8],
                fx::EGRESS_MAC,
            )
            .ipv4(da.octets(), GW_ADDR.octets(), 64)
            .udp(dpp, dns_port);
            let mut v = Vec::new();
            b.write(&mut v, b"answer").unwrap();
            v
        };
        let out = common::gateway_run(
            dp,
            "downlink udp",
            &dns_reply,
            verdict::TX,
            &[stat::REVERSE, stat::GTPU_DOWNLINK],
        );
        let inner = check_downlink("downlink udp", &out, dl_teid, None);
        assert!(
            fx::checksums_ok(&[&[0u8; 14][..], &inner].concat(), 14),
            "downlink udp: inner checksums"
        );
        // 13. No downlink yet: dropped, nothing counted.
        let n_srv = dp.session(n_port).unwrap().server as usize;
        let (_, na, np) = fx::SERVERS[n_srv];
        refused(
            dp,
            "downlink, tunnel without downlink",
            &fx_reply(na, np, n_port, b"x"),
            verdict::DROP,
            stat::GTPU_NO_TUNNEL,
        );
        // 14. An ICMP error from the server about the first session goes
        // into the tunnel too, translated.
        let quote = &expected_uplink(&tpdu(&syn), port, srv)[14..];
        let icmp = {
            let b = etherparse::PacketBuilder::ethernet2(fx::server_mac(srv), fx::EGRESS_MAC)
                .ipv4(saddr.octets(), GW_ADDR.octets(), 64)
                .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::Port,
                ));
            let mut v = Vec::new();
            b.write(&mut v, quote).unwrap();
            v
        };
        let out = common::gateway_run(
            dp,
            "icmp error into the tunnel",
            &icmp,
            verdict::TX,
            &[stat::ICMP_REVERSE, stat::GTPU_DOWNLINK],
        );
        let inner = check_downlink("icmp error", &out, dl_teid, None);
        assert_eq!(
            (&inner[12..16], &inner[16..20]),
            (&fx::WEB.octets()[..], &ue.octets()[..])
        );
        assert!(
            fx::checksums_ok(&[&[0u8; 14][..], &inner].concat(), 14),
            "icmp error: checksums"
        );
        assert_eq!(
            &inner[28 + 12..28 + 20],
            &[ue.octets(), fx::WEB.octets()].concat()[..],
            "the quote as the UE sent it"
        );

        // ---- to the daemon -------------------------------------------------
        // 15. scapy: Echo Request.
        refused(
            dp,
            "echo request (scapy)",
            &hex(SCAPY_ECHO_REQUEST),
            verdict::PASS,
            stat::GTPU_SIGNALLING,
        );
        // 16, 17. Error Indication, End Marker.
        refused(
            dp,
            "error indication",
            &fx::gtpu(t_teid, 26, 0, &[], b""),
            verdict::PASS,
            stat::GTPU_SIGNALLING,
        );
        refused(
            dp,
            "end marker",
            &fx::gtpu(t_teid, 254, 0, &[], b""),
            verdict::PASS,
            stat::GTPU_SIGNALLING,
        );
        // 18. Unknown TEID.
        refused(
            dp,
            "unknown teid",
            &fx::g_pdu(0xdead, 0, &[], &tpdu(&syn)),
            verdict::PASS,
            stat::GTPU_UNKNOWN_TEID,
        );
        // 19. UDP to N3 on another port: not GTP-U, the plain path's.
        let mut other = syn.clone();
        other[36..38].copy_from_slice(&2153u16.to_be_bytes());
        refused(
            dp,
            "n3, another port",
            &other,
            verdict::PASS,
            stat::NOT_FOR_US,
        );

        // ---- malformed -----------------------------------------------------
        let psc = hex(SCAPY_GPDU_PSC_UDP);
        let seqpn = hex(SCAPY_GPDU_SEQ_PN);
        // 20. Cut inside the outer IP header: not recognisable as GTP-U.
        refused(
            dp,
            "cut in outer IP",
            &syn[..14 + 16],
            verdict::PASS,
            stat::MALFORMED,
        );
        // 21. Cut inside the UDP header.
        refused(
            dp,
            "cut in UDP",
            &fx::cut(&syn, 14 + 20 + 6, false),
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        // 22. Cut in the payload (IP length claims more).
        refused(
            dp,
            "cut in the T-PDU",
            &fx::cut(&syn, syn.len() - 3, false),
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        // 23-25. Short but consistent datagrams, cut in the mandatory header,
        // the optional fields, and where the announced extension would be.
        refused(
            dp,
            "short GTP-U header",
            &fx::cut(&syn, 42 + 6, true),
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        refused(
            dp,
            "short optional fields",
            &fx::cut(&seqpn, 50 + 2, true),
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        refused(
            dp,
            "extension announced, absent",
            &fx::cut(&psc, 54, true),
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        // 26. UDP length past the IP datagram.
        let mut ulen = syn.clone();
        ulen[38..40].copy_from_slice(&(u16::from_be_bytes([syn[38], syn[39]]) + 4).to_be_bytes());
        refused(
            dp,
            "udp length past ip",
            &ulen,
            verdict::DROP,
            stat::GTPU_TRUNCATED,
        );
        // 27, 28. Version 2; PT 0 (GTP').
        let mut v2 = syn.clone();
        v2[42] = 0x50;
        refused(dp, "version 2", &v2, verdict::DROP, stat::GTPU_BAD_VERSION);
        let mut prime = syn.clone();
        prime[42] = 0x20;
        refused(dp, "PT 0", &prime, verdict::DROP, stat::GTPU_BAD_VERSION);
        // 29. Extension length 0.
        let mut ext0 = psc.clone();
        ext0[54] = 0;
        refused(
            dp,
            "extension length 0",
            &ext0,
            verdict::DROP,
            stat::GTPU_BAD_EXTENSION,
        );
        // 30. Extension past the packet.
        let mut past = psc.clone();
        past[54] = 0xff;
        refused(
            dp,
            "extension past the packet",
            &past,
            verdict::DROP,
            stat::GTPU_BAD_EXTENSION,
        );
        // 31. A chain of five: longer than the bound.
        let five: Vec<Vec<u8>> = (0..5)
            .map(|i| vec![1, 0x10, 9, if i < 4 { 0x85 } else { 0 }])
            .collect();
        refused(
            dp,
            "chain of five",
            &fx::g_pdu(t_teid, 0, &five, &tpdu(&syn)),
            verdict::DROP,
            stat::GTPU_BAD_EXTENSION,
        );
        // 32, 33. GTP-U length larger, then smaller than the datagram says.
        let mut over = syn.clone();
        over[44..46].copy_from_slice(&(u16::from_be_bytes([syn[44], syn[45]]) + 10).to_be_bytes());
        refused(
            dp,
            "gtp length oversize",
            &over,
            verdict::DROP,
            stat::GTPU_BAD_LENGTH,
        );
        let mut under = syn.clone();
        under[44..46].copy_from_slice(&(u16::from_be_bytes([syn[44], syn[45]]) - 1).to_be_bytes());
        refused(
            dp,
            "gtp length undersize",
            &under,
            verdict::DROP,
            stat::GTPU_BAD_LENGTH,
        );
        // 34. Inner not IPv4.
        let mut v6 = tpdu(&syn);
        v6[0] = 0x65;
        refused(
            dp,
            "inner not ipv4",
            &fx::g_pdu(t_teid, 0, &[], &v6),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );
        // 35. Inner IHL 4.
        let mut ihl = tpdu(&syn);
        ihl[0] = 0x44;
        refused(
            dp,
            "inner ihl 4",
            &fx::g_pdu(t_teid, 0, &[], &ihl),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );
        // 36. Inner total length past the T-PDU.
        let mut long = tpdu(&syn);
        let claim = (long.len() + 20) as u16;
        long[2..4].copy_from_slice(&claim.to_be_bytes());
        refused(
            dp,
            "inner length past the t-pdu",
            &fx::g_pdu(t_teid, 0, &[], &long),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );
        // 37. Inner TCP header cut (total length consistent).
        let mut short = tpdu(&syn)[..30].to_vec();
        short[2..4].copy_from_slice(&30u16.to_be_bytes());
        refused(
            dp,
            "inner tcp header cut",
            &fx::g_pdu(t_teid, 0, &[], &short),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );
        // 38. Inner fragment.
        let mut frag = tpdu(&syn);
        frag[6] = 0x20;
        refused(
            dp,
            "inner fragment",
            &fx::g_pdu(t_teid, 0, &[], &frag),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );
        // 39. Inner source is not the tunnel's UE.
        let spoof = fx::inner_tcp(Ipv4Addr::new(100, 64, 0, 99), 40000, fx::WEB, 80, b"");
        refused(
            dp,
            "ue mismatch",
            &fx::g_pdu(t_teid, 0, &[], &spoof),
            verdict::DROP,
            stat::GTPU_UE_MISMATCH,
        );
        // 40. Empty T-PDU.
        refused(
            dp,
            "empty t-pdu",
            &fx::g_pdu(t_teid, 0, &[], &[]),
            verdict::DROP,
            stat::GTPU_INNER_MALFORMED,
        );

        // ---- inner policy: the plain path's reasons, never passed ---------
        // 41. Not a service; 42. not authorized; 43. ICMP.
        refused(
            dp,
            "inner not a service",
            &fx::g_pdu(
                t_teid,
                0,
                &[],
                &fx::inner_tcp(ue, 1, Ipv4Addr::new(1, 1, 1, 1), 80, b""),
            ),
            verdict::DROP,
            stat::NOT_FOR_US,
        );
        refused(
            dp,
            "inner unauthorized",
            &fx::g_pdu(
                t_teid,
                0,
                &[],
                &fx::inner_tcp(ue, 2, fx::RESTRICTED, 80, b""),
            ),
            verdict::DROP,
            stat::UNAUTHORIZED,
        );
        let ping = {
            let b = etherparse::PacketBuilder::ipv4(ue.octets(), fx::WEB.octets(), 64)
                .icmpv4_echo_request(1, 1);
            let mut v = Vec::new();
            b.write(&mut v, b"ping").unwrap();
            v
        };
        refused(
            dp,
            "inner icmp",
            &fx::g_pdu(t_teid, 0, &[], &ping),
            verdict::DROP,
            stat::NOT_FOR_US,
        );
        // 44. Inner TTL 1: the kernel cannot answer into the tunnel.
        let mut ttl1 = fx::inner_tcp(ue, 40000, fx::WEB, 80, b"");
        ttl1[8] = 1;
        fx::fix_ip_checksum(&mut ttl1, 0);
        let before = dp.gw_stats().unwrap();
        common::gateway_run(
            dp,
            "inner ttl 1",
            &fx::g_pdu(t_teid, 0, &[], &ttl1),
            verdict::DROP,
            &[stat::NOT_FOR_US],
        );
        assert_eq!(
            common::moved(&before, &dp.gw_stats().unwrap(), stat::GTPU_UPLINK),
            0
        );

        // ---- dry run -------------------------------------------------------
        // 45. A lookup decides and decapsulates, and changes no map.
        let (flows, tun) = (dp.flows().unwrap().len(), tunnel_total(dp));
        let r = dp
            .gw_dry_run(&fx::g_pdu(
                t_teid,
                0,
                &[],
                &fx::inner_tcp(ue, 43000, fx::WEB, 80, b""),
            ))
            .unwrap();
        assert_eq!(r.verdict, verdict::TX, "dry run of a new tunnel session");
        assert_eq!(
            u16::from_be_bytes([r.output[34], r.output[35]]),
            0,
            "no port taken by a dry run"
        );
        let r = dp.gw_dry_run(&syn).unwrap();
        assert_eq!(
            (r.verdict, u16::from_be_bytes([r.output[34], r.output[35]])),
            (verdict::TX, port),
            "a dry run shows the tunnel session's port"
        );
        assert_eq!(
            (dp.flows().unwrap().len(), tunnel_total(dp)),
            (flows, tun),
            "a dry run counts and creates nothing"
        );

        // ---- removal -------------------------------------------------------
        // 46. The usage is final once the TEID is gone: zeroed, and the
        // uplink is unknown, the downlink has no tunnel.
        let before = dp.tunnel_counters(t_idx).unwrap();
        let last = dp.remove_tunnel(t_idx).unwrap();
        assert_eq!(last, before);
        assert!(last.pkts_ul >= 5 && last.pkts_dl == 3, "{last:?}");
        assert_eq!(
            dp.tunnel_counters(t_idx).unwrap(),
            TunnelCounters::default()
        );
        assert_eq!(dp.tunnel(t_idx).unwrap(), None);
        assert_eq!(dp.tunnels().unwrap().len(), 3);
        refused(
            dp,
            "uplink after removal",
            &syn,
            verdict::PASS,
            stat::GTPU_UNKNOWN_TEID,
        );
        refused(
            dp,
            "downlink after removal",
            &reply,
            verdict::DROP,
            stat::GTPU_NO_TUNNEL,
        );
        // Plain IP still works beside it.
        let plain =
            edgeplane::packets::tcp_packet(Ipv4Addr::new(10, 0, 0, 2), fx::WEB, 33000, 80, b"");
        let out = common::gateway_run(
            dp,
            "plain beside tunnels",
            &plain,
            verdict::TX,
            &[stat::NEW_SESSION],
        );
        let p = u16::from_be_bytes([out[34], out[35]]);
        assert_eq!(dp.session(p).unwrap().tunnel, None);
        let _ = (w_port, n_port);
    })
    .join()
    .unwrap();
}

/// A reply from the server `saddr:sport` to the gateway's `port`.
fn fx_reply(saddr: Ipv4Addr, sport: u16, port: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0x5e, 0], fx::EGRESS_MAC)
        .ipv4(saddr.octets(), GW_ADDR.octets(), 64)
        .tcp(sport, port, 7, 1000)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}
