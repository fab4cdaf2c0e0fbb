//! The migration's connection controller through BPF_PROG_TEST_RUN:
//! traffic to a service goes to the network its entry names (next hop MAC,
//! TX or REDIRECT), held traffic is copied aside in order and dropped, and
//! everything else passes untouched.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::steer::{stat, NetEgress, Steering, STEER_HOLD};
use dataplane_user::{verdict, Dataplane};

const SERVICE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const N1_MAC: [u8; 6] = [2, 0, 0, 0, 0x01, 1];
const N2_MAC: [u8; 6] = [2, 0, 0, 0, 0x02, 1];

fn pkt(dst: Ipv4Addr, seq: u32) -> Vec<u8> {
    edgeplane::packets::udp_packet(Ipv4Addr::new(10, 0, 0, 2), dst, 40000, 7000, &seq.to_be_bytes())
}

fn ne(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

#[test]
fn steering_holding_and_switching() {
    if !common::kernel_available("steer_fixtures") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&["ip", "link", "add", "n2", "type", "veth", "peer", "name", "n2p"]);
        let n2 = dataplane_user::ifindex("n2").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        // Network 1 is behind the ingress port (TX), network 2 behind n2.
        dp.set_network(1, &NetEgress { dst_mac: N1_MAC, src_mac: [2, 0, 0, 0, 0xee, 1], ifindex: 1, valid: 1 }).unwrap();
        dp.set_network(2, &NetEgress { dst_mac: N2_MAC, src_mac: [2, 0, 0, 0, 0xee, 2], ifindex: n2, valid: 1 }).unwrap();
        let run = |dp: &mut Dataplane, p: &[u8]| dp.test_run("steer", p).unwrap();

        // Not a steered service: untouched.
        let other = pkt(Ipv4Addr::new(198, 51, 100, 1), 0);
        let r = run(&mut dp, &other);
        assert_eq!((r.verdict, &r.output), (verdict::PASS, &other));

        // On network 1.
        dp.set_steering(ne(SERVICE), Steering { network: 1, flags: 0 }).unwrap();
        let r = run(&mut dp, &pkt(SERVICE, 1));
        assert_eq!(r.verdict, verdict::TX);
        assert_eq!(&r.output[0..6], &N1_MAC);

        // Held during the migration: copied in order, dropped.
        dp.set_steering(ne(SERVICE), Steering { network: 1, flags: STEER_HOLD }).unwrap();
        let held: Vec<Vec<u8>> = (2..6).map(|i| pkt(SERVICE, i)).collect();
        for p in &held {
            assert_eq!(run(&mut dp, p).verdict, verdict::DROP);
        }
        let copies = dp.take_steer_held().unwrap();
        assert_eq!(copies.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(), held, "held whole, in order");
        assert!(copies.iter().all(|(s, _)| *s == ne(SERVICE)));

        // Switched to network 2 (claim 4): redirected to its next hop.
        dp.set_steering(ne(SERVICE), Steering { network: 2, flags: 0 }).unwrap();
        let r = run(&mut dp, &pkt(SERVICE, 6));
        assert_eq!(r.verdict, verdict::REDIRECT);
        assert_eq!(&r.output[0..6], &N2_MAC);
        assert_eq!(dp.steering(ne(SERVICE)).unwrap(), Some(Steering { network: 2, flags: 0 }));

        // A network without an egress: passed, counted, not misforwarded.
        dp.set_steering(ne(SERVICE), Steering { network: 5, flags: 0 }).unwrap();
        let p = pkt(SERVICE, 7);
        let r = run(&mut dp, &p);
        assert_eq!((r.verdict, &r.output), (verdict::PASS, &p));
        let st = dp.steer_stats().unwrap();
        assert_eq!((st[stat::STEERED as usize].packets, st[stat::HELD as usize].packets, st[stat::NO_NETWORK as usize].packets), (2, 4, 1));
    })
    .join()
    .unwrap();
}
