//! The `lb` packet table (Katran style): description, input packet (built,
//! not pasted), expected verdict or pass reason. The fixtures test and the
//! `bench xdp` command run the same table.

use std::net::Ipv4Addr;

use control::lb::maglev::{Backend, MaglevTable};
use dataplane_common::{hash, lb::stat};
use dataplane_user::{lb::KeyMode, Dataplane};

use edgeplane::packets::{self, gtpu_header, pdu_session_container};

pub const GW_A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
pub const GW_B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];
pub const SEED: u32 = 0x5eed;
pub const TABLE_SIZE: u32 = 65_537;

#[path = "fixtures_ipv6.rs"]
pub mod ipv6;

/// What the program must do with a fixture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Forwarded to the gateway Maglev assigns to this session hash (under
    /// the flow key); `terminal` is the hash under the terminal key of a
    /// packet without a TEID.
    Forward { hash: u32, terminal: Option<u32> },
    /// Passed to the kernel, counted under this `lb::stat` reason.
    Pass { reason: u32 },
}

impl Expect {
    /// The session hash of a `Forward` expectation.
    pub fn hash(&self) -> u32 {
        match self {
            Expect::Forward { hash, .. } => *hash,
            Expect::Pass { .. } => panic!("not a forwarded fixture"),
        }
    }

    /// The expectation of a table installed with `key`.
    pub fn under(&self, key: KeyMode) -> Expect {
        match (self, key) {
            (
                Expect::Forward {
                    terminal: Some(t), ..
                },
                KeyMode::Terminal,
            ) => Expect::Forward {
                hash: *t,
                terminal: Some(*t),
            },
            _ => self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fixture {
    pub name: String,
    pub packet: Vec<u8>,
    pub expect: Expect,
}

fn fx(name: impl Into<String>, packet: Vec<u8>, expect: Expect) -> Fixture {
    Fixture {
        name: name.into(),
        packet,
        expect,
    }
}

const TERM: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVICE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

pub fn teid(t: u32) -> Expect {
    Expect::Forward {
        hash: hash::teid_hash(t, SEED),
        terminal: None,
    }
}

pub fn flow(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> Expect {
    Expect::Forward {
        hash: dataplane_user::lb::flow_hash(src, dst, sport, dport, proto, SEED),
        terminal: Some(dataplane_user::lb::terminal_hash(src, SEED)),
    }
}

fn pass(reason: u32) -> Expect {
    Expect::Pass { reason }
}

/// Insert VLAN tags (outer first) after the MAC addresses.
pub fn with_vlans(pkt: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = pkt[..12].to_vec();
    for (tpid, vid) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    out.extend_from_slice(&pkt[12..]);
    out
}

/// Recompute the IPv4 header checksum at `l3` after editing the header.
fn fix_ip_csum(pkt: &mut [u8], l3: usize) {
    let ihl = ((pkt[l3] & 0x0f) as usize * 4).max(20);
    pkt[l3 + 10] = 0;
    pkt[l3 + 11] = 0;
    let mut sum = 0u32;
    for i in (l3..l3 + ihl).step_by(2) {
        sum += u16::from_be_bytes([pkt[i], pkt[i + 1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    pkt[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn gtpu_custom(teid: u32, msg: u8, flags_extra: u8, exts: &[Vec<u8>]) -> Vec<u8> {
    let inner = packets::inner_udp(
        Ipv4Addr::new(100, 64, 0, 9),
        Ipv4Addr::new(203, 0, 113, 7),
        b"x",
    );
    let mut payload = gtpu_header(teid, msg, flags_extra, exts, inner.len());
    payload.extend_from_slice(&inner);
    packets::udp_packet(
        TERM,
        packets::GTPU_ENDPOINT,
        packets::GTPU_PORT,
        packets::GTPU_PORT,
        &payload,
    )
}

/// Header length of a fixture packet's headers the program must see whole
/// (Ethernet .. end of the GTP-U header chain or the L4 header).
pub struct Truncation {
    pub name: &'static str,
    pub packet: Vec<u8>,
    /// (first length, reason) pairs: a cut at length `l` is counted under
    /// the reason of the last pair with `first <= l`; at or past the last
    /// boundary the packet is forwarded.
    pub bounds: Vec<(usize, u32)>,
    pub full: Expect,
}

pub fn truncations() -> Vec<Truncation> {
    let ext = gtpu_custom(0xabcd, 0xff, 0, &[pdu_session_container(9)]);
    let tcp = packets::tcp_packet(TERM, SERVICE, 40001, 443, b"");
    let vlan_udp = with_vlans(
        &packets::udp_packet(TERM, SERVICE, 40002, 53, b"q"),
        &[(0x88a8, 100), (0x8100, 200)],
    );
    vec![
        Truncation {
            name: "gtpu_ext",
            packet: ext,
            // eth 14, ip 20, udp 8, gtp 8 + opt 4 + ext 4, T-PDU 29. The
            // cut frame's total length claims more, so every cut past the
            // fixed IPv4 header is a truncated datagram (as the IPv6
            // payload length below); `malformed` also cuts with the
            // lengths fixed, where the cut header is the reason.
            bounds: vec![
                (0, stat::TRUNC_ETH),
                (14, stat::TRUNC_IPV4),
                (14 + 20 + 8 + 16 + 29, u32::MAX),
            ],
            full: teid(0xabcd),
        },
        Truncation {
            name: "tcp",
            packet: tcp,
            bounds: vec![(0, stat::TRUNC_ETH), (14, stat::TRUNC_IPV4), (54, u32::MAX)],
            full: flow(TERM, SERVICE, 40001, 443, 6),
        },
        Truncation {
            // IPv6: a cut past the fixed header is caught by the payload
            // length before any upper header is read.
            name: "ipv6_gtpu_ext",
            packet: ipv6::frame(ipv6::TERM, ipv6::GTPU_ENDPOINT, 17, &[], &{
                let inner = packets::inner_udp(
                    Ipv4Addr::new(100, 64, 0, 9),
                    Ipv4Addr::new(203, 0, 113, 7),
                    b"x",
                );
                let mut g = gtpu_header(0xabce, 0xff, 0, &[pdu_session_container(9)], inner.len());
                g.extend_from_slice(&inner);
                ipv6::udp(2152, 2152, &g)
            }),
            bounds: vec![
                (0, stat::TRUNC_ETH),
                (14, stat::TRUNC_IPV6),
                (54, stat::IPV6_BAD_LENGTH),
                (14 + 40 + 8 + 16 + 29, u32::MAX),
            ],
            full: teid(0xabce),
        },
        Truncation {
            name: "qinq_udp",
            packet: vlan_udp,
            bounds: vec![
                (0, stat::TRUNC_ETH),
                (14, stat::TRUNC_VLAN),
                (22, stat::TRUNC_IPV4),
                (51, u32::MAX),
            ],
            full: flow(TERM, SERVICE, 40002, 53, 17),
        },
    ]
}

pub fn fixtures() -> Vec<Fixture> {
    let mut v = vec![
        fx(
            "gtpu_gpdu",
            packets::gtpu_packet(0x1234, TERM, &[]),
            teid(0x1234),
        ),
        fx(
            "gtpu_gpdu_teid0",
            packets::gtpu_packet(0, TERM, &[]),
            teid(0),
        ),
        fx(
            "gtpu_seq_flag",
            gtpu_custom(0x55, 0xff, 0x02, &[]),
            teid(0x55),
        ),
        fx(
            "gtpu_pn_flag",
            gtpu_custom(0x56, 0xff, 0x01, &[]),
            teid(0x56),
        ),
        fx(
            "gtpu_ext_pdu_session",
            packets::gtpu_packet(0x77, TERM, &[pdu_session_container(5)]),
            teid(0x77),
        ),
    ];
    let mut two = pdu_session_container(5);
    two[3] = 0x85; // chain another
    v.push(fx(
        "gtpu_two_ext",
        gtpu_custom(0x78, 0xff, 0, &[two, vec![2, 0x10, 1, 2, 3, 4, 5, 0]]),
        teid(0x78),
    ));
    v.push(fx(
        "gtpu_same_teid_other_source",
        packets::gtpu_packet(0x1234, Ipv4Addr::new(10, 9, 9, 9), &[]),
        teid(0x1234),
    ));
    v.push(fx(
        "udp_5tuple",
        packets::udp_packet(TERM, SERVICE, 40000, 5000, b"hello"),
        flow(TERM, SERVICE, 40000, 5000, 17),
    ));
    v.push(fx(
        "tcp_5tuple",
        packets::tcp_packet(TERM, SERVICE, 40000, 80, b""),
        flow(TERM, SERVICE, 40000, 80, 6),
    ));
    v.push(fx(
        "vlan_udp",
        with_vlans(
            &packets::udp_packet(TERM, SERVICE, 40000, 5000, b"v"),
            &[(0x8100, 10)],
        ),
        flow(TERM, SERVICE, 40000, 5000, 17),
    ));
    v.push(fx(
        "qinq_gtpu",
        with_vlans(
            &packets::gtpu_packet(0x99, TERM, &[]),
            &[(0x88a8, 10), (0x8100, 20)],
        ),
        teid(0x99),
    ));
    v.push(fx(
        "three_vlans",
        with_vlans(
            &packets::udp_packet(TERM, SERVICE, 1, 2, b""),
            &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
        ),
        pass(stat::TOO_MANY_VLANS),
    ));
    v.extend(ipv6::fixtures());
    let mut arp = packets::udp_packet(TERM, SERVICE, 1, 2, b"");
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    v.push(fx("arp_passes", arp, pass(stat::NOT_IP)));
    let mut mf = packets::udp_packet(TERM, SERVICE, 40000, 5000, b"frag");
    mf[14 + 6] = 0x20; // MF
    fix_ip_csum(&mut mf, 14);
    v.push(fx("fragment_first", mf, pass(stat::FRAGMENT)));
    let mut later = packets::udp_packet(TERM, SERVICE, 40000, 5000, b"frag");
    later[14 + 7] = 0x10; // offset 16 * 8
    fix_ip_csum(&mut later, 14);
    v.push(fx("fragment_later", later, pass(stat::FRAGMENT)));
    let mut ihl = packets::udp_packet(TERM, SERVICE, 40000, 5000, b"x");
    ihl[14] = 0x44;
    fix_ip_csum(&mut ihl, 14);
    v.push(fx("bad_ihl_4", ihl, pass(stat::BAD_IHL)));
    let mut ver = packets::udp_packet(TERM, SERVICE, 40000, 5000, b"x");
    ver[14] = 0x65;
    v.push(fx(
        "ip_version_6_in_ipv4_frame",
        ver,
        pass(stat::BAD_IP_VERSION),
    ));
    // IHL 6 (4 option bytes: NOP x4): ports must be read after the options.
    let opts = {
        let base = packets::udp_packet(TERM, SERVICE, 40003, 5000, b"opt");
        let mut p = base[..34].to_vec();
        p[14] = 0x46;
        let tot = u16::from_be_bytes([p[16], p[17]]) + 4;
        p[16..18].copy_from_slice(&tot.to_be_bytes());
        p.extend_from_slice(&[1, 1, 1, 1]);
        p.extend_from_slice(&base[34..]);
        fix_ip_csum(&mut p, 14);
        p
    };
    v.push(fx(
        "ipv4_options_udp",
        opts,
        flow(TERM, SERVICE, 40003, 5000, 17),
    ));
    let mut opts_cut = packets::udp_packet(TERM, SERVICE, 40003, 5000, b"");
    opts_cut[14] = 0x4f; // claims 60 bytes of header; the frame has 42
    opts_cut.truncate(14 + 28);
    v.push(fx("ihl_past_end", opts_cut, pass(stat::TRUNC_IPV4)));
    let icmp = {
        let b = etherparse::PacketBuilder::ethernet2(packets::TERMINAL_MAC, packets::LB_MAC)
            .ipv4(TERM.octets(), SERVICE.octets(), 64)
            .icmpv4_echo_request(1, 1);
        let mut out = Vec::new();
        b.write(&mut out, b"ping").unwrap();
        out
    };
    v.push(fx("icmp_passes", icmp, pass(stat::NOT_TCP_UDP)));
    v.push(fx(
        "gtpu_echo_request",
        gtpu_custom(0, 1, 0x02, &[]),
        flow(TERM, packets::GTPU_ENDPOINT, 2152, 2152, 17),
    ));
    v.push(fx(
        "gtpu_error_indication",
        gtpu_custom(0x10, 26, 0, &[]),
        flow(TERM, packets::GTPU_ENDPOINT, 2152, 2152, 17),
    ));
    v.push(fx(
        "gtpu_end_marker",
        gtpu_custom(0x10, 254, 0, &[]),
        flow(TERM, packets::GTPU_ENDPOINT, 2152, 2152, 17),
    ));
    let mut v2 = packets::gtpu_packet(0x10, TERM, &[]);
    v2[42] = 0x48; // version 2
    v.push(fx("gtpu_version_2", v2, pass(stat::GTPU_BAD_VERSION)));
    let mut prime = packets::gtpu_packet(0x10, TERM, &[]);
    prime[42] = 0x20; // PT = 0: GTP'
    v.push(fx("gtpu_prime", prime, pass(stat::GTPU_BAD_VERSION)));
    let mut ext0 = gtpu_custom(0x11, 0xff, 0, &[pdu_session_container(1)]);
    ext0[42 + 12] = 0; // extension length 0
    v.push(fx("gtpu_ext_len_zero", ext0, pass(stat::TRUNC_GTPU)));
    let mut e_missing = packets::udp_packet(
        TERM,
        packets::GTPU_ENDPOINT,
        2152,
        2152,
        &gtpu_header(0x12, 0xff, 0x04, &[], 0),
    );
    e_missing.truncate(42 + 12); // E set, next type 0x00 present but no more
    v.push(fx(
        "gtpu_e_flag_no_ext_is_fine_if_next_is_zero",
        e_missing,
        teid(0x12),
    ));
    let mut chain_cut = gtpu_custom(0x13, 0xff, 0, &[pdu_session_container(1)]);
    chain_cut[42 + 12 + 3] = 0x85; // says another extension follows: the inner IP bytes are read as one
    chain_cut[42 + 12 + 4] = 0xff; // ... claiming 1020 bytes
    v.push(fx(
        "gtpu_ext_chain_past_end",
        chain_cut,
        pass(stat::TRUNC_GTPU),
    ));
    v
}

/// Load the gateways the fixtures expect: `gw-a` reached through
/// `tx_ifindex` (the test_run ingress, so XDP_TX) and `gw-b` through
/// `redirect_ifindex` (XDP_REDIRECT), flow key. Returns the table.
pub fn install(
    dp: &mut Dataplane,
    tx_ifindex: u32,
    redirect_ifindex: Option<u32>,
) -> anyhow::Result<MaglevTable> {
    install_keyed(dp, tx_ifindex, redirect_ifindex, KeyMode::Flow)
}

/// `install` with the table's key mode.
pub fn install_keyed(
    dp: &mut Dataplane,
    tx_ifindex: u32,
    redirect_ifindex: Option<u32>,
    key: KeyMode,
) -> anyhow::Result<MaglevTable> {
    use dataplane_user::lb::Gateway;
    let mut backends = vec![Backend {
        name: "gw-a".into(),
        weight: 1,
    }];
    let mut entries = vec![(GW_A_MAC, tx_ifindex)];
    if let Some(r) = redirect_ifindex {
        backends.push(Backend {
            name: "gw-b".into(),
            weight: 1,
        });
        entries.push((GW_B_MAC, r));
        dp.add_tx_port(r)?;
    }
    for (i, (mac, ifindex)) in entries.iter().enumerate() {
        dp.set_gateway(
            i as u32,
            &Gateway {
                name: backends[i].name.clone(),
                address: std::net::Ipv4Addr::UNSPECIFIED.into(),
                dst_mac: *mac,
                src_mac: [2, 0, 0, 0, 0xee, i as u8],
                ifindex: *ifindex,
                weight: 1,
            },
        )?;
    }
    let table = MaglevTable::build(&backends, TABLE_SIZE, SEED)?;
    // backends are sorted by name, which is the order written above.
    dp.install_table(&table.slots, SEED, table.digest(), key)?;
    Ok(table)
}

/// The bytes a forwarded fixture must come out as.
pub fn expected_output(input: &[u8], table: &MaglevTable, hash: u32) -> (String, Vec<u8>) {
    let gw = table.owner(hash).expect("table has gateways");
    let idx = table
        .backends
        .iter()
        .position(|b| b.name == gw.name)
        .unwrap();
    let mut out = input.to_vec();
    out[..6].copy_from_slice(if idx == 0 { &GW_A_MAC } else { &GW_B_MAC });
    out[6..12].copy_from_slice(&[2, 0, 0, 0, 0xee, idx as u8]);
    (gw.name.clone(), out)
}

#[path = "fixtures_gateway.rs"]
pub mod gateway;
