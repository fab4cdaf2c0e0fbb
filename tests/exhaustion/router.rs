//! The router's hold: the `router` filter's ring and the daemon's hold
//! buffer it is drained into.

use std::net::Ipv4Addr;

use dataplane_user::{verdict, Dataplane};

use super::{common, counts, moved};

/// The router's hold (load-sharing hand-off): the `router` filter copies a
/// held bucket's frames to `RT_HELD` (4 MiB, whole 1,544-byte records)
/// until it is full; then each frame is dropped and counted
/// `hold_overflow`, and the records already in the ring are kept (a frame
/// longer than a record is `hold_too_long`, and takes no room). The
/// daemon's buffer they are drained into (`HoldBuffer`, at most
/// `load_sharing.hold_max_frames`) refuses what is beyond its bound the
/// same way, and counts it (`held_refused_full`).
#[test]
fn router_hold_ring_and_buffer_full_refuse_new_frames() {
    if !common::kernel_available("router_hold_ring_and_buffer_full_refuse_new_frames") {
        return;
    }
    std::thread::spawn(router_hold_fills).join().unwrap();
}

fn router_hold_fills() {
    use dataplane_common::router::{stat as rstat, HeldFrame};
    use dataplane_user::router::{bucket_of, BucketState, EndSystem, FilterConfig};
    use edgeplane::router::loadshare::HoldBuffer;

    common::private_netns();
    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 51];
    let mut dp = Dataplane::load_private().expect("load");
    dp.set_router_cfg(&FilterConfig {
        vmac: VMAC,
        own_mac: Some([2, 0, 0, 0, 0xaa, 1]),
        end_system: EndSystem::Source,
    })
    .unwrap();
    dp.set_router_lease(u64::MAX).unwrap();
    let host = Ipv4Addr::new(10, 3, 0, 50);
    let bucket = bucket_of(host.into());
    dp.set_bucket(bucket, BucketState::Hold).unwrap();
    let frame = |seq: u32| {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0xbb, 1], VMAC)
            .ipv4(host.octets(), [10, 4, 0, 100], 64)
            .udp(40000, 9000);
        let mut v = Vec::new();
        b.write(&mut v, &seq.to_be_bytes()).unwrap();
        v
    };
    let run = |dp: &mut Dataplane, seq: u32| {
        let r = dp.test_run("router", &frame(seq)).unwrap();
        assert_eq!(
            verdict::name(r.verdict),
            "drop",
            "a held frame is not routed"
        );
    };
    // Each record is reserved whole, behind the ring's 8-byte header.
    let record = (size_of::<HeldFrame>() + 8).next_multiple_of(8);
    let capacity = dataplane_common::maps::RT_HELD.max as usize / record;
    // A frame longer than a record is refused as that, not as a full
    // ring, and takes no room in it.
    let long = {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0xbb, 1], VMAC)
            .ipv4(host.octets(), [10, 4, 0, 100], 64)
            .udp(40000, 9000);
        let mut v = Vec::new();
        b.write(&mut v, &[7u8; 1600]).unwrap();
        v
    };
    let before = dp.router_stats().unwrap();
    let r = dp.test_run("router", &long).unwrap();
    assert_eq!(verdict::name(r.verdict), "drop");
    assert_eq!(
        moved(&rstat::NAMES, &before, &dp.router_stats().unwrap()),
        counts(&[("drop", 1), ("hold_too_long", 1)]),
        "a {}-byte frame is too long to hold",
        long.len()
    );
    let s0 = dp.router_stats().unwrap();
    for seq in 0..capacity as u32 {
        run(&mut dp, seq);
    }
    let s1 = dp.router_stats().unwrap();
    assert_eq!(
        moved(&rstat::NAMES, &s0, &s1),
        counts(&[("drop", capacity as u64), ("held", capacity as u64)]),
        "the ring takes {capacity} frames"
    );
    for seq in capacity as u32..capacity as u32 + 50 {
        run(&mut dp, seq);
    }
    let s2 = dp.router_stats().unwrap();
    assert_eq!(
        moved(&rstat::NAMES, &s1, &s2),
        counts(&[("drop", 50), ("hold_overflow", 50)]),
        "the ring is full: 50 refused"
    );
    let held = dp.take_held().unwrap();
    let sent: Vec<Vec<u8>> = (0..capacity as u32).map(frame).collect();
    assert_eq!(held.len(), capacity);
    assert!(
        held.iter()
            .zip(&sent)
            .all(|(h, f)| h.frame == *f && h.bucket == u32::from(bucket)),
        "the ring kept the first {capacity} frames whole, in order"
    );
    // Drained, the ring takes frames again.
    run(&mut dp, 1_000_000);
    assert_eq!(
        moved(&rstat::NAMES, &s2, &dp.router_stats().unwrap()),
        counts(&[("drop", 1), ("held", 1)])
    );

    // The daemon's buffer, smaller than one ring here (the default is
    // 65,536 frames): the drain fills it, the rest is refused.
    let max = 2_000;
    let mut buf = HoldBuffer::new(max);
    let refused = buf.extend(held);
    assert_eq!(
        (buf.len(), refused, buf.refused),
        (max, (capacity - max) as u64, (capacity - max) as u64)
    );
    let kept = buf.frames().to_vec();
    assert!(
        kept.iter().zip(&sent).all(|(k, f)| k.frame == *f),
        "the first {max} kept, in order"
    );
    let again = buf.extend(dp.take_held().unwrap());
    assert_eq!(
        (again, buf.len()),
        (1, max),
        "full: the next drain is refused too"
    );
    assert_eq!(buf.frames(), &kept[..], "and changes nothing held");
    println!(
        "router hold: a {}-byte frame refused as too long (hold_too_long +1), no room taken; ring {capacity}/{capacity} records, 50 refused (hold_overflow +50), {capacity} kept whole; daemon buffer {max}/{max} frames, {} refused (held_refused_full), 0 held frames changed",
        long.len(),
        buf.refused
    );
}
