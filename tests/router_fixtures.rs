//! The `router` load-sharing filter through BPF_PROG_TEST_RUN: owned
//! buckets are routed (re-addressed to this router), others dropped, held
//! buckets copied to the ring buffer; anything not for the virtual MAC is
//! untouched.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::router::stat;
use dataplane_user::{
    router::{bucket_of, frame_matches, BucketState, EndSystem, FilterConfig},
    verdict, Dataplane,
};

const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 51];
const OWN: [u8; 6] = [2, 0, 0, 0, 0xaa, 1];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0xbb, 1];

fn frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, seq: u32) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(HOST_MAC, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(40000, 9000);
    let mut v = Vec::new();
    b.write(&mut v, &seq.to_be_bytes()).unwrap();
    v
}

fn run(dp: &mut Dataplane, name: &str, pkt: &[u8], want: u32, reason: u32) -> Vec<u8> {
    let before = dp.router_stats().unwrap();
    let r = dp.test_run("router", pkt).unwrap();
    let after = dp.router_stats().unwrap();
    assert_eq!(verdict::name(r.verdict), verdict::name(want), "{name}");
    let moved: Vec<&str> = (0..stat::COUNT)
        .filter(|&i| after[i as usize].packets > before[i as usize].packets)
        .map(|i| stat::NAMES[i as usize])
        .collect();
    assert!(
        moved.contains(&stat::NAMES[reason as usize]),
        "{name}: moved {moved:?}"
    );
    r.output
}

#[test]
fn router_filter_fixture_table() {
    if !common::kernel_available("router_filter_fixture_table") {
        return;
    }
    let mut dp = Dataplane::load_private().expect("load");
    let server = Ipv4Addr::new(10, 4, 0, 100);
    // Two end systems in different buckets.
    let a = Ipv4Addr::new(10, 3, 0, 50);
    let b = (51..=250u8)
        .map(|i| Ipv4Addr::new(10, 3, 0, i))
        .find(|x| bucket_of(*x) != bucket_of(a))
        .unwrap();
    let (ba, bb) = (bucket_of(a), bucket_of(b));

    // Not configured yet: everything passes.
    let f = frame(VMAC, a, server, 1);
    run(&mut dp, "disabled", &f, verdict::PASS, stat::NOT_VMAC);
    dp.set_router_cfg(&FilterConfig {
        vmac: VMAC,
        own_mac: Some(OWN),
        end_system: EndSystem::Source,
    })
    .unwrap();
    // No lease yet (a daemon that never started or died): nothing routed.
    run(
        &mut dp,
        "lease expired",
        &f,
        verdict::DROP,
        stat::LEASE_EXPIRED,
    );
    dp.set_router_lease(u64::MAX).unwrap();
    dp.set_bucket(ba, BucketState::Mine).unwrap();
    dp.set_bucket(bb, BucketState::NotMine).unwrap();

    // Owned: routed, only the destination MAC changes.
    let out = run(&mut dp, "owned bucket", &f, verdict::PASS, stat::ROUTED);
    assert_eq!(&out[0..6], &OWN);
    assert_eq!(&out[6..], &f[6..]);
    let fp = dp.last_routed(ba).unwrap();
    // Addresses, IP id and checksum and ports: the frame routed.
    assert!(frame_matches(&f, &fp), "{fp:?}");
    assert_eq!(fp.count, 1);
    assert_eq!(dp.bucket_rates().unwrap()[ba as usize].packets, 1);

    // Not owned: dropped (another router routes it).
    run(
        &mut dp,
        "other bucket",
        &frame(VMAC, b, server, 2),
        verdict::DROP,
        stat::NOT_OWNER,
    );

    // Held: dropped here, copied whole to the ring buffer.
    dp.set_bucket(bb, BucketState::Hold).unwrap();
    let h1 = frame(VMAC, b, server, 3);
    let h2 = frame(VMAC, b, server, 4);
    run(&mut dp, "held 1", &h1, verdict::DROP, stat::HELD);
    run(&mut dp, "held 2", &h2, verdict::DROP, stat::HELD);
    let held = dp.take_held().unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!((held[0].bucket, &held[0].frame), (u32::from(bb), &h1));
    assert_eq!(&held[1].frame, &h2, "in arrival order");
    assert!(dp.take_held().unwrap().is_empty());

    // Not for the virtual MAC, or not IPv4, or too short: untouched.
    let other = frame(OWN, b, server, 5);
    assert_eq!(
        run(
            &mut dp,
            "not the virtual MAC",
            &other,
            verdict::PASS,
            stat::NOT_VMAC
        ),
        other
    );
    let mut arp = frame(VMAC, a, server, 6);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(
        run(
            &mut dp,
            "arp to the vmac",
            &arp,
            verdict::PASS,
            stat::NOT_IPV4
        ),
        arp
    );
    let short = &f[..30];
    assert_eq!(
        run(&mut dp, "truncated", short, verdict::PASS, stat::MALFORMED),
        short
    );

    // Downstream mode: the bucket is the destination's.
    dp.set_router_cfg(&FilterConfig {
        vmac: VMAC,
        own_mac: Some(OWN),
        end_system: EndSystem::Destination,
    })
    .unwrap();
    run(
        &mut dp,
        "downstream owned",
        &frame(VMAC, server, a, 7),
        verdict::PASS,
        stat::ROUTED,
    );
    dp.set_bucket(bb, BucketState::NotMine).unwrap();
    run(
        &mut dp,
        "downstream not owned",
        &frame(VMAC, server, b, 8),
        verdict::DROP,
        stat::NOT_OWNER,
    );
}

#[test]
fn buckets_spread_end_systems() {
    // Pure: 4096 addresses over 256 buckets, no bucket empty or crowded.
    let mut n = [0u32; 256];
    for i in 0..4096u32 {
        n[bucket_of(Ipv4Addr::from(0x0a00_0000 + i)) as usize] += 1;
    }
    assert!(n.iter().all(|&c| (4..=32).contains(&c)), "{:?}", n);
}
