//! Daisy chaining (seed 002 claim 20, `dataplane_common::chain`) through
//! BPF_PROG_TEST_RUN: the lb marks a moved slot's packets with the
//! previous owner; a gateway without the flow relays it there, serves a
//! relayed flow it holds, bounces one it does not, and creates a bounced
//! session with the lb's MAC as its reverse path. Malformed headers are
//! dropped and counted.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane_common::{
    chain::{self, ChainHdr, BOUNCE, HOPS, MOVED, RELAY},
    gateway::stat,
    lb,
};
use dataplane_user::{gateway::Flow, lb::KeyMode, verdict, Dataplane};
use testlab::fixtures::{
    self, gateway as fx,
    gateway::{GW_ADDR, GW_ADDR6},
};

/// The lb's MAC (the frame's source) and this gateway's (its destination).
const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0x1b, 1];
const ME: [u8; 6] = [2, 0, 0, 0, 0x90, 1];
/// The slot's previous owner and a third gateway.
const PREV: [u8; 6] = [2, 0, 0, 0, 0x90, 2];
const OTHER: [u8; 6] = [2, 0, 0, 0, 0x90, 3];

/// The frames of one address family: UDP to the dns service, a TCP SYN
/// to the web one, and where a translated frame has its source.
struct Family {
    v6: bool,
}

impl Family {
    /// Terminal `i`.
    fn term(&self, i: u8) -> IpAddr {
        if self.v6 {
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16).into()
        } else {
            Ipv4Addr::new(10, 0, 0, i).into()
        }
    }

    fn frame(
        &self,
        (src, sport): (IpAddr, u16),
        from: [u8; 6],
        dst: (IpAddr, u16),
        syn: bool,
    ) -> Vec<u8> {
        let eth = etherparse::PacketBuilder::ethernet2(from, ME);
        let ip = match (src, dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => unreachable!("one family"),
        };
        let mut v = Vec::new();
        if syn {
            ip.tcp(sport, dst.1, 1, 1000)
                .syn()
                .write(&mut v, b"")
                .unwrap();
        } else {
            ip.udp(sport, dst.1).write(&mut v, b"query").unwrap();
        }
        v
    }

    fn udp(&self, src: IpAddr, sport: u16, from: [u8; 6]) -> Vec<u8> {
        let dns: IpAddr = if self.v6 {
            fx::DNS6.into()
        } else {
            fx::DNS.into()
        };
        self.frame((src, sport), from, (dns, 53), false)
    }

    fn tcp_syn(&self, src: IpAddr, sport: u16) -> Vec<u8> {
        let web: IpAddr = if self.v6 {
            fx::WEB6.into()
        } else {
            fx::WEB.into()
        };
        self.frame((src, sport), LB_MAC, (web, 80), true)
    }

    fn l4(&self) -> usize {
        if self.v6 {
            14 + 40
        } else {
            14 + 20
        }
    }

    fn ethertype(&self) -> [u8; 2] {
        if self.v6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        }
    }

    /// The source address of a translated frame (no header).
    fn src_of(&self, out: &[u8]) -> IpAddr {
        if self.v6 {
            Ipv6Addr::from(<[u8; 16]>::try_from(&out[22..38]).unwrap()).into()
        } else {
            Ipv4Addr::new(out[26], out[27], out[28], out[29]).into()
        }
    }

    fn gw(&self) -> IpAddr {
        if self.v6 {
            GW_ADDR6.into()
        } else {
            GW_ADDR.into()
        }
    }

    fn port_of(&self, out: &[u8]) -> u16 {
        let at = self.l4();
        u16::from_be_bytes([out[at], out[at + 1]])
    }
}

/// `frame` with `hdr` between its source MAC and its EtherType.
fn with_hdr(frame: &[u8], hdr: &ChainHdr) -> Vec<u8> {
    let mut v = frame[..12].to_vec();
    v.extend_from_slice(&hdr.ethertype);
    v.extend_from_slice(&[hdr.kind, hdr.hops]);
    v.extend_from_slice(&hdr.next_mac);
    v.extend_from_slice(&hdr.origin_mac);
    v.extend_from_slice(&hdr.lb_mac);
    assert_eq!(v.len(), 12 + chain::HDR_LEN);
    v.extend_from_slice(&frame[12..]);
    v
}

/// The header of a chained frame, and the frame without it.
fn split(out: &[u8]) -> (ChainHdr, Vec<u8>) {
    assert_eq!(
        u16::from_be_bytes([out[12], out[13]]),
        chain::ETHERTYPE,
        "a chain header follows the MACs"
    );
    let h = &out[12..12 + chain::HDR_LEN];
    let mac = |o: usize| <[u8; 6]>::try_from(&h[o..o + 6]).unwrap();
    let hdr = ChainHdr::new(h[2], h[3], mac(4), mac(10), mac(16));
    let mut rest = out[..12].to_vec();
    rest.extend_from_slice(&out[12 + chain::HDR_LEN..]);
    (hdr, rest)
}

fn relay_of(dp: &Dataplane, src: IpAddr, port: u16) -> Option<[u8; 6]> {
    dp.relays()
        .unwrap()
        .into_iter()
        .find(|(f, _, _)| f.addr == src && f.port == port && f.proto == 17)
        .map(|(_, next, _)| next)
}

#[test]
fn gateway_relays_serves_bounces_and_adopts() {
    if !common::kernel_available("gateway_relays_serves_bounces_and_adopts") {
        return;
    }
    relays_serves_bounces_and_adopts(Family { v6: false });
}

/// The same chain over IPv6 (`gateway6`, `GW_RELAYS6`).
#[test]
fn gateway_chains_ipv6_flows_too() {
    if !common::kernel_available("gateway_chains_ipv6_flows_too") {
        return;
    }
    relays_serves_bounces_and_adopts(Family { v6: true });
}

fn relays_serves_bounces_and_adopts(f: Family) {
    std::thread::spawn(move || {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install(&mut dp, 1, (41000, 41009)).expect("install");
        let t1 = f.term(21);

        // 1. A moved slot's packet, flow unknown here: relayed to the
        //    previous owner, frame unchanged behind a RELAY header.
        let plain = f.udp(t1, 5001, LB_MAC);
        let moved_in = with_hdr(&plain, &ChainHdr::new(MOVED, 0, PREV, [0; 6], [0; 6]));
        let out = common::gateway_run(
            &mut dp,
            "moved, unknown flow",
            &moved_in,
            verdict::TX,
            &[stat::CHAIN_IN, stat::CHAIN_RELAY],
        );
        let (hdr, rest) = split(&out);
        assert_eq!(hdr, ChainHdr::new(RELAY, HOPS, [0; 6], ME, LB_MAC));
        assert_eq!(
            (&out[0..6], &out[6..12]),
            (&PREV[..], &ME[..]),
            "to the previous owner"
        );
        assert_eq!(&rest[12..], &plain[12..], "IP packet untouched");
        assert_eq!(relay_of(&dp, t1, 5001), Some(PREV), "relay entry kept");
        assert!(dp.flows().unwrap().is_empty(), "no session here");

        // 2. The same flow without a header (the lb's table changed
        //    again): the relay entry still sends it on.
        let out = common::gateway_run(
            &mut dp,
            "relay entry",
            &plain,
            verdict::TX,
            &[stat::CHAIN_RELAY],
        );
        assert_eq!(&out[0..6], &PREV);
        assert_eq!(split(&out).0.kind, RELAY);

        // 3. The previous owner did not have it: the bounce creates the
        //    session here, its reverse path the lb's MAC from the header.
        let bounce = with_hdr(
            &f.udp(t1, 5001, PREV),
            &ChainHdr::new(BOUNCE, 0, [0; 6], ME, LB_MAC),
        );
        let out = common::gateway_run(
            &mut dp,
            "bounce",
            &bounce,
            verdict::TX,
            &[stat::CHAIN_IN, stat::CHAIN_ADOPTED, stat::NEW_SESSION],
        );
        assert_eq!(&out[12..14], &f.ethertype(), "sent on without a header");
        assert_eq!(f.src_of(&out), f.gw(), "translated");
        let port = f.port_of(&out);
        let s = dp.session(port).unwrap();
        assert!(s.active);
        assert_eq!(s.up_mac, LB_MAC, "replies go to the lb, not to the peer");
        assert_eq!(s.up_src_mac, ME);
        assert_eq!(relay_of(&dp, t1, 5001), None, "relay entry gone");
        // Now held here: a marked packet is served, not relayed.
        common::gateway_run(
            &mut dp,
            "moved, flow here",
            &moved_in,
            verdict::TX,
            &[stat::FORWARD],
        );

        // 4. A peer relays a flow this gateway holds: served.
        let relayed = with_hdr(
            &f.udp(t1, 5001, OTHER),
            &ChainHdr::new(RELAY, HOPS, [0; 6], OTHER, LB_MAC),
        );
        let out = common::gateway_run(
            &mut dp,
            "relayed, flow here",
            &relayed,
            verdict::TX,
            &[stat::CHAIN_SERVED, stat::FORWARD],
        );
        assert_eq!(f.port_of(&out), port, "its own port");

        // 5. A peer relays a flow nobody here knows: bounced to its origin.
        let t2 = f.term(22);
        let stray = f.udp(t2, 5002, OTHER);
        let out = common::gateway_run(
            &mut dp,
            "relayed, unknown",
            &with_hdr(&stray, &ChainHdr::new(RELAY, HOPS, [0; 6], OTHER, LB_MAC)),
            verdict::TX,
            &[stat::CHAIN_BOUNCE],
        );
        let (hdr, rest) = split(&out);
        assert_eq!(hdr, ChainHdr::new(BOUNCE, 0, [0; 6], OTHER, LB_MAC));
        assert_eq!((&out[0..6], &out[6..12]), (&OTHER[..], &ME[..]));
        assert_eq!(&rest[12..], &stray[12..]);
        assert_eq!(relay_of(&dp, t2, 5002), None, "a bounce keeps nothing");

        // 6. Chains: a relayed flow this gateway relays itself goes on,
        //    one hop less, origin kept; out of hops it bounces.
        let t3 = f.term(23);
        common::gateway_run(
            &mut dp,
            "moved, t3",
            &with_hdr(
                &f.udp(t3, 5003, LB_MAC),
                &ChainHdr::new(MOVED, 0, PREV, [0; 6], [0; 6]),
            ),
            verdict::TX,
            &[stat::CHAIN_RELAY],
        );
        let t3_from_other = f.udp(t3, 5003, OTHER);
        let out = common::gateway_run(
            &mut dp,
            "chain through",
            &with_hdr(
                &t3_from_other,
                &ChainHdr::new(RELAY, 3, [0; 6], OTHER, LB_MAC),
            ),
            verdict::TX,
            &[stat::CHAIN_RELAY],
        );
        assert_eq!(
            split(&out).0,
            ChainHdr::new(RELAY, 2, [0; 6], OTHER, LB_MAC)
        );
        assert_eq!(&out[0..6], &PREV);
        let out = common::gateway_run(
            &mut dp,
            "out of hops",
            &with_hdr(
                &t3_from_other,
                &ChainHdr::new(RELAY, 1, [0; 6], OTHER, LB_MAC),
            ),
            verdict::TX,
            &[stat::CHAIN_BOUNCE],
        );
        assert_eq!(&out[0..6], &OTHER);

        // 7. A TCP SYN in a moved slot is a new connection: it starts here.
        let syn = with_hdr(
            &f.tcp_syn(f.term(24), 5004),
            &ChainHdr::new(MOVED, 0, PREV, [0; 6], [0; 6]),
        );
        common::gateway_run(
            &mut dp,
            "moved SYN",
            &syn,
            verdict::TX,
            &[stat::NEW_SESSION],
        );

        // 8. Malformed headers: dropped, counted, nothing kept.
        let relays = dp.relays().unwrap().len();
        common::gateway_run(
            &mut dp,
            "header cut short",
            &moved_in[..12 + chain::HDR_LEN - 1],
            verdict::DROP,
            &[stat::CHAIN_MALFORMED],
        );
        let mut bad = moved_in.clone();
        bad[14] = 9;
        common::gateway_run(
            &mut dp,
            "unknown kind",
            &bad,
            verdict::DROP,
            &[stat::CHAIN_MALFORMED],
        );
        assert_eq!(dp.relays().unwrap().len(), relays);

        // The sweeper's view: every relay entry names its next gateway.
        let all: Vec<(Flow, [u8; 6], u64)> = dp.relays().unwrap();
        assert!(all.iter().all(|(_, next, seen)| *next == PREV && *seen > 0));
    })
    .join()
    .unwrap();
}

#[test]
fn lb_marks_only_moved_slots_and_never_teids() {
    if !common::kernel_available("lb_marks_only_moved_slots_and_never_teids") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        let table = fixtures::install_keyed(&mut dp, 1, None, KeyMode::Terminal).unwrap();
        assert!(table.slots.iter().all(|s| *s == 0), "one gateway: gw-a");
        // The same table, every even slot marked as moved from gateway 1
        // (gw-b's MAC), which must be a valid entry.
        dp.set_gateway(
            1,
            &dataplane_user::lb::Gateway {
                name: "gw-b".into(),
                address: Ipv4Addr::UNSPECIFIED.into(),
                dst_mac: fixtures::GW_B_MAC,
                src_mac: [2, 0, 0, 0, 0xee, 1],
                ifindex: 1,
                weight: 1,
            },
        )
        .unwrap();
        let values: Vec<u32> = (0..table.slots.len())
            .map(|i| lb::slot(0, i.is_multiple_of(2).then_some(1)))
            .collect();
        dp.install_table(&values, fixtures::SEED, table.digest(), KeyMode::Terminal)
            .unwrap();
        assert_eq!(
            dp.live_slots().unwrap(),
            table.slots,
            "gateways read back plain"
        );
        let mut marked = 0;
        let mut plain = 0;
        for i in 0..40u8 {
            let src = Ipv4Addr::new(10, 0, 1, i);
            let mut pkt = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
                .ipv4(src.octets(), [198, 51, 100, 10], 64)
                .udp(4000, 53)
                .write(&mut pkt, b"x")
                .unwrap();
            let h = fixtures::flow(src, Ipv4Addr::new(198, 51, 100, 10), 4000, 53, 17)
                .under(KeyMode::Terminal)
                .hash();
            let slot = (h % fixtures::TABLE_SIZE) as usize;
            let before = dp.lb_stats().unwrap();
            let r = dp.test_run("lb", &pkt).unwrap();
            let after = dp.lb_stats().unwrap();
            let chained = after[lb::stat::CHAINED as usize].packets
                - before[lb::stat::CHAINED as usize].packets;
            assert_eq!(verdict::name(r.verdict), "tx");
            assert_eq!(&r.output[0..6], &fixtures::GW_A_MAC, "to the slot's owner");
            if slot.is_multiple_of(2) {
                let (hdr, rest) = split(&r.output);
                assert_eq!(
                    hdr,
                    ChainHdr::new(MOVED, 0, fixtures::GW_B_MAC, [0; 6], [0; 6])
                );
                assert_eq!(&rest[12..], &pkt[12..], "the packet itself untouched");
                assert_eq!(chained, 1);
                marked += 1;
            } else {
                assert_eq!(r.output.len(), pkt.len(), "an unmoved slot: no header");
                assert_eq!(chained, 0);
                plain += 1;
            }
        }
        assert!(
            marked > 5 && plain > 5,
            "both kinds seen: {marked} / {plain}"
        );
        // IPv6 flows are chained the same way (keyed by the terminal's /64).
        let (mut marked6, mut plain6) = (0, 0);
        for i in 0..40u16 {
            let src = Ipv6Addr::new(0x2001, 0xdb8, 0x100 + i, 0, 0, 0, 0, 2);
            let mut pkt = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
                .ipv6(src.octets(), fx::DNS6.octets(), 64)
                .udp(4000, 53)
                .write(&mut pkt, b"x")
                .unwrap();
            let h = dataplane_user::lb::terminal_hash_v6(src, fixtures::SEED);
            let slot = (h % fixtures::TABLE_SIZE) as usize;
            let r = dp.test_run("lb", &pkt).unwrap();
            assert_eq!(verdict::name(r.verdict), "tx");
            if slot.is_multiple_of(2) {
                let (hdr, rest) = split(&r.output);
                assert_eq!(
                    hdr,
                    ChainHdr::new(MOVED, 0, fixtures::GW_B_MAC, [0; 6], [0; 6])
                );
                assert_eq!(&rest[12..], &pkt[12..], "the IPv6 packet untouched");
                marked6 += 1;
            } else {
                assert_eq!(r.output.len(), pkt.len(), "an unmoved slot: no header");
                plain6 += 1;
            }
        }
        assert!(
            marked6 > 5 && plain6 > 5,
            "IPv6: both kinds seen: {marked6} / {plain6}"
        );
        // G-PDUs are placed by their TEID and never chained, though half
        // of them hash to marked slots.
        let inner = edgeplane::packets::inner_udp(
            Ipv4Addr::new(10, 60, 0, 9),
            Ipv4Addr::new(203, 0, 113, 7),
            b"x",
        );
        let mut marked_teids = 0;
        for teid in 0x0100_0001..0x0100_0001 + 24u32 {
            let mut g = edgeplane::packets::gtpu_header(teid, 0xff, 0, &[], inner.len());
            g.extend_from_slice(&inner);
            let mut pkt = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
                .ipv4(
                    [10, 0, 0, 2],
                    edgeplane::packets::GTPU_ENDPOINT.octets(),
                    64,
                )
                .udp(2152, 2152)
                .write(&mut pkt, &g)
                .unwrap();
            let r = dp.test_run("lb", &pkt).unwrap();
            assert_eq!(verdict::name(r.verdict), "tx");
            assert_eq!(r.output.len(), pkt.len(), "TEID {teid:#x}: not chained");
            if (fixtures::teid(teid).hash() % fixtures::TABLE_SIZE).is_multiple_of(2) {
                marked_teids += 1;
            }
        }
        assert!(marked_teids > 0, "some TEIDs hash to marked slots");
    })
    .join()
    .unwrap();
}
