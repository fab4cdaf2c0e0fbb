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
            // eth 14, ip 20, udp 8, gtp 8 + opt 4 + ext 4
            bounds: vec![
                (0, stat::TRUNC_ETH),
                (14, stat::TRUNC_IPV4),
                (34, stat::TRUNC_L4),
                (42, stat::TRUNC_GTPU),
                (58, u32::MAX),
            ],
            full: teid(0xabcd),
        },
        Truncation {
            name: "tcp",
            packet: tcp,
            bounds: vec![
                (0, stat::TRUNC_ETH),
                (14, stat::TRUNC_IPV4),
                (34, stat::TRUNC_L4),
                (54, u32::MAX),
            ],
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
                (42, stat::TRUNC_L4),
                (50, u32::MAX),
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

/// The gateway's fixture world: groups, servers and a small port pool,
/// written straight into the maps (the same calls the daemon makes).
pub mod gateway {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use control::gateway::selection;
    use dataplane_user::{
        gateway::{ServerEntry, Service, Settings, TypeRuleEntry},
        Dataplane,
    };

    pub const GW_ADDR: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
    pub const WEB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    pub const WEB2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
    pub const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
    pub const RESTRICTED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 30);
    pub const EGRESS_MAC: [u8; 6] = [2, 0, 0, 0, 0xcc, 1];

    /// (group, address, port) of each server, by index.
    pub const SERVERS: [(u32, Ipv4Addr, u16); 6] = [
        (0, Ipv4Addr::new(10, 2, 0, 11), 8080),
        (0, Ipv4Addr::new(10, 2, 0, 12), 8080),
        (1, Ipv4Addr::new(10, 2, 0, 21), 5353),
        (2, Ipv4Addr::new(10, 2, 0, 31), 8080),
        (3, Ipv4Addr::new(10, 2, 0, 41), 8081),
        // dns group, session type 1 (voice: UDP with DSCP EF) only
        (1, Ipv4Addr::new(10, 2, 0, 22), 5353),
    ];
    /// The server index that takes session type 1 in the dns group.
    pub const VOICE_SERVER: usize = 5;

    // IPv6: the gateway's address, representative addresses and servers
    // (indices after the IPv4 ones), groups 4-6.
    pub const GW_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
    pub const WEB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x10);
    pub const DNS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x20);
    pub const RESTRICTED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x30);
    pub const WEB6B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x11);
    /// The prefix allowed into RESTRICTED6's group.
    pub const ALLOWED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 0);
    pub const SERVERS6: [(u32, Ipv6Addr, u16); 5] = [
        (4, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11), 8080),
        (4, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x12), 8080),
        (5, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x21), 5353),
        (6, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x31), 8080),
        (7, Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x41), 8081),
    ];
    /// Index of the first IPv6 server.
    pub const SERVERS6_AT: usize = SERVERS.len();

    pub fn server_mac(i: usize) -> [u8; 6] {
        [2, 0, 0, 0, 0x5e, i as u8]
    }

    /// Groups: 0 web (WEB:80/tcp, two servers), 1 dns (DNS:53/udp),
    /// 2 restricted (RESTRICTED:80/tcp, only 10.9.0.0/16), 3 web2
    /// (WEB2:80/tcp); IPv6: 4 web6 ([WEB6]:80/tcp, two servers), 5 dns6
    /// ([DNS6]:53/udp), 6 restricted6 (only ALLOWED6/48), 7 web6b
    /// ([WEB6B]:80/tcp). Servers are reached through `egress_ifindex`.
    pub fn install(
        dp: &mut Dataplane,
        egress_ifindex: u32,
        ports: (u16, u16),
    ) -> anyhow::Result<()> {
        let all = SERVERS
            .iter()
            .map(|(g, a, p)| (*g, IpAddr::from(*a), *p))
            .chain(SERVERS6.iter().map(|(g, a, p)| (*g, IpAddr::from(*a), *p)));
        for (i, (_, addr, port)) in all.clone().enumerate() {
            dp.set_server(
                i as u32,
                &ServerEntry {
                    addr,
                    port,
                    mac: server_mac(i),
                    src_mac: EGRESS_MAC,
                    ifindex: egress_ifindex,
                },
            )?;
        }
        // Every type's table as the daemon writes it: empty (falls back
        // to the group's type 0) unless set below.
        for grp in 0..8u32 {
            for t in 1..dataplane_common::gateway::TYPES_MAX {
                dp.set_selection(grp, t, &selection(&[]))?;
            }
        }
        for grp in 0..8u32 {
            let members: Vec<(u16, u32)> = all
                .clone()
                .enumerate()
                .filter(|(i, s)| s.0 == grp && *i != VOICE_SERVER)
                .map(|(i, _)| (i as u16, 1))
                .collect();
            dp.set_selection(grp, 0, &selection(&members))?;
        }
        dp.set_selection(1, 1, &selection(&[(VOICE_SERVER as u16, 1)]))?;
        for (addr, port, proto, grp) in [
            (IpAddr::from(WEB), 80u16, 6u8, 0u32),
            (DNS.into(), 53, 17, 1),
            (RESTRICTED.into(), 80, 6, 2),
            (WEB2.into(), 80, 6, 3),
            (WEB6.into(), 80, 6, 4),
            (DNS6.into(), 53, 17, 5),
            (RESTRICTED6.into(), 80, 6, 6),
            (WEB6B.into(), 80, 6, 7),
        ] {
            dp.set_service(&Service { addr, port, proto }, grp)?;
        }
        for grp in [0u32, 1, 3] {
            dp.auth_allow(grp, Ipv4Addr::UNSPECIFIED.into(), 0)?;
        }
        for grp in [4u32, 5, 7] {
            dp.auth_allow(grp, Ipv6Addr::UNSPECIFIED.into(), 0)?;
        }
        dp.auth_allow(2, Ipv4Addr::new(10, 9, 0, 0).into(), 16)?;
        dp.auth_allow(6, ALLOWED6.into(), 48)?;
        // Claim 9: UDP marked EF (DSCP 46) is session type 1.
        dp.set_type_rules(&[TypeRuleEntry {
            proto: 17,
            dscp: Some(46),
            session_type: 1,
            terminals: Ipv4Addr::UNSPECIFIED.into(),
            terminals_len: 0,
        }])?;
        for p in ports.0..=ports.1 {
            dp.pool_push(p)?;
        }
        dp.set_gw_config(&Settings {
            address: GW_ADDR,
            port_min: ports.0,
            port_max: ports.1,
            enabled: true,
            n3_addr: None,
            address6: Some(GW_ADDR6),
            n3_addr6: None,
        })?;
        Ok(())
    }

    // ---- GTP-U (seed 002, TS 29.281) -------------------------------------

    use dataplane_common::gateway::TUNNELS_MAX;
    use dataplane_user::gateway::{TunnelDownlink, TunnelEntry};

    /// The gateway's N3 address, the access node and its MACs.
    pub const N3_ADDR: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
    pub const AN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 4, 0, 2);
    pub const AN_MAC: [u8; 6] = [2, 0, 0, 0, 4, 2];
    pub const N3_MAC: [u8; 6] = [2, 0, 0, 0, 3, 1];

    /// (index, uplink TEID, UE address, downlink TEID, QFI) of the fixture
    /// tunnels; `NO_DL` has no downlink yet, `TWIN` a UE address another
    /// tunnel's UE also has. `TUN` and `TUN_QFI` sit at their TEID's
    /// direct slot, as the PFCP engine places them (the fast path finds
    /// them without `GW_TEIDS`); `NO_DL` and `TWIN` do not (found through
    /// it).
    pub const TUN: (u32, u32, Ipv4Addr, u32, Option<u8>) = (
        0x1000 % TUNNELS_MAX,
        0x1000,
        Ipv4Addr::new(100, 64, 0, 9),
        0x2000_0003,
        None,
    );
    pub const TUN_QFI: (u32, u32, Ipv4Addr, u32, Option<u8>) = (
        0x1001 % TUNNELS_MAX,
        0x1001,
        Ipv4Addr::new(100, 64, 0, 10),
        0x2000_0004,
        Some(9),
    );
    pub const TUN_NO_DL: (u32, u32, Ipv4Addr) = (5, 0x1002, Ipv4Addr::new(100, 64, 0, 11));
    pub const TUN_TWIN: (u32, u32, Ipv4Addr, u32, Option<u8>) =
        (6, 0x1003, Ipv4Addr::new(100, 64, 0, 9), 0x2000_0006, None);

    /// [`install`], then the N3 address and the fixture tunnels, the
    /// access node reached through `an_ifindex`.
    pub fn install_gtpu(
        dp: &mut Dataplane,
        an_ifindex: u32,
        ports: (u16, u16),
    ) -> anyhow::Result<()> {
        install(dp, an_ifindex, ports)?;
        install_tunnels(dp, an_ifindex)
    }

    /// The N3 address and the fixture tunnels, over an [`install`]ed world.
    pub fn install_tunnels(dp: &mut Dataplane, an_ifindex: u32) -> anyhow::Result<()> {
        let mut s = dp.gw_config()?;
        s.n3_addr = Some(N3_ADDR);
        dp.set_gw_config(&s)?;
        for (idx, ul, ue, dl, qfi) in [TUN, TUN_QFI, TUN_TWIN] {
            let downlink = Some(TunnelDownlink {
                teid: dl,
                an_addr: AN_ADDR.into(),
                qfi,
                mac: AN_MAC,
                src_mac: N3_MAC,
                ifindex: an_ifindex,
            });
            dp.set_tunnel(
                idx,
                &TunnelEntry {
                    ul_teid: ul,
                    ue_addr: ue,
                    ue_addr6: None,
                    downlink,
                },
            )?;
        }
        let (idx, ul, ue) = TUN_NO_DL;
        dp.set_tunnel(
            idx,
            &TunnelEntry {
                ul_teid: ul,
                ue_addr: ue,
                ue_addr6: None,
                downlink: None,
            },
        )?;
        Ok(())
    }

    /// An inner IPv4/TCP packet (no Ethernet).
    pub fn inner_tcp(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .tcp(sport, dport, 1000, 64240)
            .ack(1);
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("write");
        v
    }

    /// An inner IPv4/UDP packet (no Ethernet).
    pub fn inner_udp(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("write");
        v
    }

    /// A GTP-U message from the access node to N3: `flags_extra` (E/S/PN
    /// bits) and extension headers as `packets::gtpu_header` takes them,
    /// `body` after the header chain.
    pub fn gtpu(teid: u32, msg: u8, flags_extra: u8, exts: &[Vec<u8>], body: &[u8]) -> Vec<u8> {
        let mut payload = edgeplane::packets::gtpu_header(teid, msg, flags_extra, exts, body.len());
        payload.extend_from_slice(body);
        let b = etherparse::PacketBuilder::ethernet2(AN_MAC, N3_MAC)
            .ipv4(AN_ADDR.octets(), N3_ADDR.octets(), 64)
            .udp(2152, 2152);
        let mut v = Vec::new();
        b.write(&mut v, &payload).expect("write");
        v
    }

    /// A G-PDU carrying `inner`.
    pub fn g_pdu(teid: u32, flags_extra: u8, exts: &[Vec<u8>], inner: &[u8]) -> Vec<u8> {
        gtpu(teid, 255, flags_extra, exts, inner)
    }

    /// Cut an Ethernet/IPv4/UDP frame at `len`. With `fix`, the outer IP
    /// total length, its checksum and the UDP length say so (a short but
    /// consistent datagram); without, they still claim the original.
    pub fn cut(pkt: &[u8], len: usize, fix: bool) -> Vec<u8> {
        let mut p = pkt[..len].to_vec();
        if fix {
            p[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
            fix_ip_checksum(&mut p, 14);
            p[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
        }
        p
    }

    /// Recompute the IPv4 header checksum at `l3`.
    pub fn fix_ip_checksum(p: &mut [u8], l3: usize) {
        let ihl = ((p[l3] & 0x0f) as usize * 4).max(20);
        p[l3 + 10] = 0;
        p[l3 + 11] = 0;
        let c = !fold(sum16(&p[l3..l3 + ihl]));
        p[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }

    pub fn sum16(d: &[u8]) -> u32 {
        d.chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
            .sum()
    }

    pub fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// Recompute the IPv4 header checksum and the TCP/UDP checksum (a UDP
    /// checksum of 0 stays "none") of the IP packet `ip`, in place.
    pub fn fix_checksums(ip: &mut [u8]) {
        fix_ip_checksum(ip, 0);
        let ihl = ((ip[0] & 0x0f) as usize) * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let proto = ip[9];
        let coff = match proto {
            6 => 16,
            17 => 6,
            _ => return,
        };
        if proto == 17 && ip[ihl + 6] == 0 && ip[ihl + 7] == 0 {
            return;
        }
        ip[ihl + coff] = 0;
        ip[ihl + coff + 1] = 0;
        let pseudo = sum16(&ip[12..20]) + proto as u32 + (total - ihl) as u32;
        let mut c = !fold(pseudo + sum16(&ip[ihl..total]));
        if proto == 17 && c == 0 {
            c = 0xffff;
        }
        ip[ihl + coff..ihl + coff + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Whether the IPv4 header at `l3` and its TCP/UDP/ICMP checksum
    /// are right, recomputed (UDP checksum 0: none, accepted).
    pub fn checksums_ok(p: &[u8], l3: usize) -> bool {
        let ihl = ((p[l3] & 0x0f) as usize) * 4;
        let ip = &p[l3..l3 + ihl];
        if fold(sum16(ip)) != 0xffff {
            return false;
        }
        let total = u16::from_be_bytes([p[l3 + 2], p[l3 + 3]]) as usize;
        let l4 = &p[l3 + ihl..l3 + total];
        match p[l3 + 9] {
            1 => fold(sum16(l4)) == 0xffff,
            proto => {
                if proto == 17 && l4[6] == 0 && l4[7] == 0 {
                    return true;
                }
                let pseudo = sum16(&ip[12..20]) + proto as u32 + l4.len() as u32;
                fold(pseudo + sum16(l4)) == 0xffff
            }
        }
    }
}
