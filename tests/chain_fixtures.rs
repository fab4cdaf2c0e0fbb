//! Daisy chaining (seed 002 claim 20, `dataplane_common::chain`) through
//! BPF_PROG_TEST_RUN: the lb marks a moved slot's packets with the
//! previous owner; a gateway without the flow relays it there, serves a
//! relayed flow it holds, bounces one it does not, and creates a bounced
//! session with the lb's MAC as its reverse path. Malformed headers are
//! dropped and counted.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::{
    chain::{self, ChainHdr, BOUNCE, HOPS, MOVED, RELAY},
    gateway::stat,
    lb,
};
use dataplane_user::{gateway::Flow, lb::KeyMode, verdict, Dataplane};
use testlab::fixtures::{self, gateway as fx, gateway::GW_ADDR};

/// The lb's MAC (the frame's source) and this gateway's (its destination).
const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0x1b, 1];
const ME: [u8; 6] = [2, 0, 0, 0, 0x90, 1];
/// The slot's previous owner and a third gateway.
const PREV: [u8; 6] = [2, 0, 0, 0, 0x90, 2];
const OTHER: [u8; 6] = [2, 0, 0, 0, 0x90, 3];

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, from: [u8; 6]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(from, ME)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut v, b"query")
        .unwrap();
    v
}

fn tcp_syn(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(LB_MAC, ME)
        .ipv4(src.octets(), fx::WEB.octets(), 64)
        .tcp(sport, 80, 1, 1000)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    v
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

fn relay_of(dp: &Dataplane, src: Ipv4Addr, port: u16) -> Option<[u8; 6]> {
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
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install(&mut dp, 1, (41000, 41009)).expect("install");
        let t1 = Ipv4Addr::new(10, 0, 0, 21);

        // 1. A moved slot's packet, flow unknown here: relayed to the
        //    previous owner, frame unchanged behind a RELAY header.
        let plain = udp(t1, 5001, fx::DNS, 53, LB_MAC);
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
            &udp(t1, 5001, fx::DNS, 53, PREV),
            &ChainHdr::new(BOUNCE, 0, [0; 6], ME, LB_MAC),
        );
        let out = common::gateway_run(
            &mut dp,
            "bounce",
            &bounce,
            verdict::TX,
            &[stat::CHAIN_IN, stat::CHAIN_ADOPTED, stat::NEW_SESSION],
        );
        assert_eq!(&out[12..14], &[0x08, 0x00], "sent on without a header");
        assert_eq!(&out[26..30], &GW_ADDR.octets(), "translated");
        let port = u16::from_be_bytes([out[34], out[35]]);
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
            &udp(t1, 5001, fx::DNS, 53, OTHER),
            &ChainHdr::new(RELAY, HOPS, [0; 6], OTHER, LB_MAC),
        );
        let out = common::gateway_run(
            &mut dp,
            "relayed, flow here",
            &relayed,
            verdict::TX,
            &[stat::CHAIN_SERVED, stat::FORWARD],
        );
        assert_eq!(u16::from_be_bytes([out[34], out[35]]), port, "its own port");

        // 5. A peer relays a flow nobody here knows: bounced to its origin.
        let t2 = Ipv4Addr::new(10, 0, 0, 22);
        let stray = udp(t2, 5002, fx::DNS, 53, OTHER);
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
        let t3 = Ipv4Addr::new(10, 0, 0, 23);
        common::gateway_run(
            &mut dp,
            "moved, t3",
            &with_hdr(
                &udp(t3, 5003, fx::DNS, 53, LB_MAC),
                &ChainHdr::new(MOVED, 0, PREV, [0; 6], [0; 6]),
            ),
            verdict::TX,
            &[stat::CHAIN_RELAY],
        );
        let t3_from_other = udp(t3, 5003, fx::DNS, 53, OTHER);
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
            &tcp_syn(Ipv4Addr::new(10, 0, 0, 24), 5004),
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
