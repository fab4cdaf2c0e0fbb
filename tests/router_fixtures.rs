//! The `router` load-sharing filter through BPF_PROG_TEST_RUN: owned
//! buckets are routed (re-addressed to this router), others dropped, held
//! buckets copied to the ring buffer; anything not for the virtual MAC is
//! untouched. The same for IPv6 (IPv6 virtual MAC, whole-address buckets,
//! Neighbor Discovery passed, malformed IPv6 passed and counted).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        .find(|x| bucket_of((*x).into()) != bucket_of(a.into()))
        .unwrap();
    let (ba, bb) = (bucket_of(a.into()), bucket_of(b.into()));

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

    // Not for the virtual MAC, or not IP, or too short: untouched.
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
            stat::NOT_IP
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
        n[bucket_of(Ipv4Addr::from(0x0a00_0000 + i).into()) as usize] += 1;
    }
    assert!(n.iter().all(|&c| (4..=32).contains(&c)), "{:?}", n);
}

const VMAC6: [u8; 6] = [0, 0, 0x5e, 0, 2, 51];

fn frame6(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, seq: u32) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(HOST_MAC, dst_mac)
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(40000, 9000);
    let mut v = Vec::new();
    b.write(&mut v, &seq.to_be_bytes()).unwrap();
    v
}

/// An ICMPv6 message of `ty` (checksum not needed by the filter).
fn icmp6(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, ty: u8) -> Vec<u8> {
    let mut body = vec![ty, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&dst.octets());
    let mut f = HOST_MAC.to_vec();
    f.splice(0..0, dst_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&body);
    f
}

#[test]
fn router_filter_ipv6_fixture_table() {
    if !common::kernel_available("router_filter_ipv6_fixture_table") {
        return;
    }
    let mut dp = Dataplane::load_private().expect("load");
    dp.set_router_cfg(&FilterConfig {
        vmac: VMAC6,
        own_mac: Some(OWN),
        end_system: EndSystem::Source,
    })
    .unwrap();
    dp.set_router_lease(u64::MAX).unwrap();
    let server = Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0x100);
    let host = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, i);
    let a = host(50);
    let b = (51..=250)
        .map(host)
        .find(|x| bucket_of((*x).into()) != bucket_of(a.into()))
        .unwrap();
    let (ba, bb) = (bucket_of(a.into()), bucket_of(b.into()));
    dp.set_bucket(ba, BucketState::Mine).unwrap();
    dp.set_bucket(bb, BucketState::NotMine).unwrap();

    // Owned: routed, only the destination MAC changes; the fingerprint
    // is the packet's.
    let f = frame6(VMAC6, a, server, 1);
    let out = run(&mut dp, "v6 owned", &f, verdict::PASS, stat::ROUTED);
    assert_eq!(&out[0..6], &OWN);
    assert_eq!(&out[6..], &f[6..]);
    let fp = dp.last_routed(ba).unwrap();
    assert_eq!((fp.family, fp.count), (6, 1));
    assert!(frame_matches(&f, &fp), "{fp:?}");
    assert!(
        !frame_matches(&frame6(VMAC6, a, server, 2), &fp),
        "the next packet of the flow has another fingerprint"
    );
    run(
        &mut dp,
        "v6 other bucket",
        &frame6(VMAC6, b, server, 3),
        verdict::DROP,
        stat::NOT_OWNER,
    );
    // Held: copied whole.
    dp.set_bucket(bb, BucketState::Hold).unwrap();
    let h = frame6(VMAC6, b, server, 4);
    run(&mut dp, "v6 held", &h, verdict::DROP, stat::HELD);
    let held = dp.take_held().unwrap();
    assert_eq!((held.len(), &held[0].frame), (1, &h));
    dp.set_bucket(bb, BucketState::NotMine).unwrap();

    // Neighbor Discovery to the virtual MAC is the kernel's whatever the
    // bucket; other ICMPv6 (echo) is bucketed as any packet.
    for ty in 133..=137u8 {
        let nd = icmp6(VMAC6, b, server, ty);
        assert_eq!(
            run(
                &mut dp,
                &format!("nd type {ty}"),
                &nd,
                verdict::PASS,
                stat::NEIGHBOR_DISCOVERY
            ),
            nd
        );
    }
    run(
        &mut dp,
        "v6 echo, not owned",
        &icmp6(VMAC6, b, server, 128),
        verdict::DROP,
        stat::NOT_OWNER,
    );

    // The bucket is the whole address: a hop-by-hop header or a fragment
    // header does not change it (no port is read for the bucket).
    let mut hbh = f.clone();
    hbh[20] = 0; // next header: hop-by-hop (the UDP header is its bytes)
    run(
        &mut dp,
        "v6 ext header, owned",
        &hbh,
        verdict::PASS,
        stat::ROUTED,
    );
    let mut frag = frame6(VMAC6, b, server, 5);
    frag[20] = 44;
    run(
        &mut dp,
        "v6 fragment, not owned",
        &frag,
        verdict::DROP,
        stat::NOT_OWNER,
    );

    // Malformed: passed untouched and counted.
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [14, 20, 53, 54, 57, 61] {
        cases.push((format!("cut at {cut}"), f[..cut].to_vec()));
    }
    let mut plen0 = f.clone();
    plen0[18..20].copy_from_slice(&[0, 0]);
    cases.push(("payload length 0".into(), plen0));
    let mut long = f.clone();
    long[18..20].copy_from_slice(&[0x05, 0xdc]);
    cases.push(("payload length past the frame".into(), long));
    let mut v4 = f.clone();
    v4[14] = 0x45;
    cases.push(("version 4 under the IPv6 EtherType".into(), v4));
    for (name, pkt) in &cases {
        assert_eq!(
            &run(&mut dp, name, pkt, verdict::PASS, stat::MALFORMED),
            pkt,
            "{name}"
        );
    }
    // An IPv4 frame to the IPv6 virtual MAC is still bucketed (the MAC
    // picks the frames; the family of each packet its parse).
    let v4 = frame(
        VMAC6,
        Ipv4Addr::new(10, 3, 0, 50),
        Ipv4Addr::new(10, 4, 0, 1),
        9,
    );
    let bucket4 = bucket_of(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 50)));
    dp.set_bucket(bucket4, BucketState::Mine).unwrap();
    run(
        &mut dp,
        "v4 under the v6 vmac",
        &v4,
        verdict::PASS,
        stat::ROUTED,
    );
    eprintln!("router ipv6 fixtures: {} malformed cases", cases.len());
}

#[test]
fn ipv6_buckets_spread_hosts_of_one_prefix() {
    let mut n = [0u32; 256];
    for i in 0..4096u32 {
        let a = Ipv6Addr::from((0x2001_0db8_0003_0000u128 << 64) | u128::from(i));
        n[bucket_of(a.into()) as usize] += 1;
    }
    assert!(n.iter().all(|&c| (4..=32).contains(&c)), "{:?}", n);
}
