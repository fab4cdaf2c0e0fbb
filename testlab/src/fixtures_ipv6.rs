//! The lb's IPv6 fixtures (issue 13): GTP-U over IPv6, the terminal and
//! flow keys, extension headers, fragments and malformed headers.

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane_common::lb::stat;
use edgeplane::packets::{self, gtpu_header, pdu_session_container};

use super::{fx, pass, teid, Expect, Fixture, SEED};

pub const TERM: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 2);
pub const SERVICE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc633, 0x640a, 0, 0, 0, 10);
pub const GTPU_ENDPOINT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x1, 0, 0, 0, 1);

/// An IPv6 frame: `next` header chain `exts` (raw extension headers, each
/// naming the next), then UDP or TCP with `payload`.
pub fn frame(src: Ipv6Addr, dst: Ipv6Addr, first_next: u8, exts: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&packets::LB_MAC);
    f.extend_from_slice(&packets::TERMINAL_MAC);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((exts.len() + l4.len()) as u16).to_be_bytes());
    f.push(first_next);
    f.push(64);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(exts);
    f.extend_from_slice(l4);
    f
}

/// A UDP header and payload (checksum left 0: the lb does not check it).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub fn flow(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, proto: u8) -> Expect {
    Expect::Forward {
        hash: dataplane_user::lb::flow_hash_v6(src, dst, sport, dport, proto, SEED),
        terminal: Some(dataplane_user::lb::terminal_hash_v6(src, SEED)),
    }
}

/// The lb's IPv6 cases (issue 13): GTP-U over IPv6, the terminal and flow
/// keys, extension headers walked, fragments and malformed headers passed
/// and counted.
pub fn fixtures() -> Vec<Fixture> {
    let inner = packets::inner_udp(
        Ipv4Addr::new(100, 64, 0, 9),
        Ipv4Addr::new(203, 0, 113, 7),
        b"x",
    );
    let gpdu = |teid: u32, exts: &[Vec<u8>]| {
        let mut g = gtpu_header(teid, 0xff, 0, exts, inner.len());
        g.extend_from_slice(&inner);
        udp(2152, 2152, &g)
    };
    let tcp = {
        let mut t = Vec::new();
        t.extend_from_slice(&40000u16.to_be_bytes());
        t.extend_from_slice(&443u16.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        t
    };
    // A hop-by-hop header (8 octets: next, len 0, PadN) and a routing
    // header (16 octets: next, len 1, type 0 left 0, ...), chained.
    let hbh = |next: u8| vec![next, 0, 1, 4, 0, 0, 0, 0];
    let routing = |next: u8| {
        let mut r = vec![next, 1, 4, 0, 0, 0, 0, 0];
        r.extend_from_slice(&[0; 8]);
        r
    };
    let mut exts = hbh(43);
    exts.extend(routing(17));
    let frag = vec![17, 0, 0, 1, 0, 0, 0, 7]; // offset 0, M set
    let mut v = vec![
        fx(
            "ipv6_gtpu_gpdu",
            frame(TERM, GTPU_ENDPOINT, 17, &[], &gpdu(0x6001, &[])),
            teid(0x6001),
        ),
        fx(
            "ipv6_gtpu_ext_pdu_session",
            frame(
                TERM,
                GTPU_ENDPOINT,
                17,
                &[],
                &gpdu(0x6002, &[pdu_session_container(5)]),
            ),
            teid(0x6002),
        ),
        fx(
            "ipv6_udp",
            frame(TERM, SERVICE, 17, &[], &udp(40000, 5000, b"hello")),
            flow(TERM, SERVICE, 40000, 5000, 17),
        ),
        fx(
            "ipv6_tcp",
            frame(TERM, SERVICE, 6, &[], &tcp),
            flow(TERM, SERVICE, 40000, 443, 6),
        ),
        fx(
            "ipv6_hop_by_hop_and_routing_headers",
            frame(TERM, SERVICE, 0, &exts, &udp(40001, 5000, b"x")),
            flow(TERM, SERVICE, 40001, 5000, 17),
        ),
        fx(
            "ipv6_fragment",
            frame(TERM, SERVICE, 44, &frag, &udp(40002, 5000, b"x")),
            pass(stat::FRAGMENT),
        ),
        fx(
            "ipv6_icmpv6_passes",
            frame(TERM, SERVICE, 58, &[], &[135, 0, 0, 0, 0, 0, 0, 0]),
            pass(stat::NOT_TCP_UDP),
        ),
    ];
    let mut cut = frame(TERM, SERVICE, 17, &[], &udp(40000, 5000, b"x"));
    cut.truncate(14 + 39);
    v.push(fx("ipv6_truncated_header", cut, pass(stat::TRUNC_IPV6)));
    let mut long = frame(TERM, SERVICE, 17, &[], &udp(40000, 5000, b"x"));
    long[18..20].copy_from_slice(&500u16.to_be_bytes());
    v.push(fx(
        "ipv6_payload_length_past_frame",
        long,
        pass(stat::IPV6_BAD_LENGTH),
    ));
    let mut jumbo = frame(TERM, SERVICE, 17, &[], &udp(40000, 5000, b"x"));
    jumbo[18..20].copy_from_slice(&0u16.to_be_bytes());
    v.push(fx(
        "ipv6_payload_length_zero",
        jumbo,
        pass(stat::IPV6_BAD_LENGTH),
    ));
    // A destination options header claiming 2048 octets.
    let past = frame(
        TERM,
        SERVICE,
        60,
        &[17, 255, 1, 4, 0, 0, 0, 0],
        &udp(1, 2, b"x"),
    );
    v.push(fx(
        "ipv6_extension_past_payload",
        past,
        pass(stat::IPV6_EXT_CHAIN),
    ));
    // More hop-by-hop headers than the walk's bound.
    let mut many = Vec::new();
    for _ in 0..dataplane_common::lb::IPV6_MAX_EXT {
        many.extend(hbh(0));
    }
    many.extend(hbh(17));
    let too_many = frame(TERM, SERVICE, 0, &many, &udp(1, 2, b"x"));
    v.push(fx(
        "ipv6_extension_chain_past_bound",
        too_many,
        pass(stat::IPV6_EXT_CHAIN),
    ));
    let mut bad_ver = frame(TERM, SERVICE, 17, &[], &udp(1, 2, b"x"));
    bad_ver[14] = 0x40;
    v.push(fx(
        "ipv6_ethertype_with_version_4",
        bad_ver,
        pass(stat::BAD_IP_VERSION),
    ));
    let mut l4_cut = frame(TERM, SERVICE, 6, &[], &tcp);
    l4_cut.truncate(14 + 40 + 10);
    l4_cut[18..20].copy_from_slice(&10u16.to_be_bytes());
    v.push(fx("ipv6_tcp_header_cut", l4_cut, pass(stat::TRUNC_L4)));
    v
}
