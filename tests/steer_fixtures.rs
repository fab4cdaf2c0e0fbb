//! The migration's connection controller through BPF_PROG_TEST_RUN:
//! traffic to a service goes to the network its entry names (next hop MAC,
//! TX or REDIRECT), held traffic goes to the controller's AF_XDP socket in
//! order (dropped and counted when there is none), and everything else
//! passes untouched.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::migration::{stat, NetEgress, Steering, STEER_HOLD};
use dataplane_user::{
    verdict,
    xsk::{Xsk, XskOptions},
    Dataplane,
};

const SERVICE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const N1_MAC: [u8; 6] = [2, 0, 0, 0, 0x01, 1];
const N2_MAC: [u8; 6] = [2, 0, 0, 0, 0x02, 1];

fn pkt(dst: Ipv4Addr, seq: u32) -> Vec<u8> {
    edgeplane::packets::udp_packet(
        Ipv4Addr::new(10, 0, 0, 2),
        dst,
        40000,
        7000,
        &seq.to_be_bytes(),
    )
}

#[test]
fn steering_holding_and_switching() {
    if !common::kernel_available("steer_fixtures") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "n2", "type", "veth", "peer", "name", "n2p",
        ]);
        let n2 = dataplane_user::ifindex("n2").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        // Network 1 is behind the ingress port (TX), network 2 behind n2.
        dp.set_network(
            1,
            &NetEgress {
                dst_mac: N1_MAC,
                src_mac: [2, 0, 0, 0, 0xee, 1],
                ifindex: 1,
                valid: 1,
            },
        )
        .unwrap();
        dp.set_network(
            2,
            &NetEgress {
                dst_mac: N2_MAC,
                src_mac: [2, 0, 0, 0, 0xee, 2],
                ifindex: n2,
                valid: 1,
            },
        )
        .unwrap();
        let run = |dp: &mut Dataplane, p: &[u8]| dp.test_run("steer", p).unwrap();

        // Not a steered service: untouched.
        let other = pkt(Ipv4Addr::new(198, 51, 100, 1), 0);
        let r = run(&mut dp, &other);
        assert_eq!((r.verdict, &r.output), (verdict::PASS, &other));

        // On network 1.
        dp.set_steering(
            SERVICE,
            Steering {
                network: 1,
                flags: 0,
            },
        )
        .unwrap();
        let r = run(&mut dp, &pkt(SERVICE, 1));
        assert_eq!(r.verdict, verdict::TX);
        assert_eq!(&r.output[0..6], &N1_MAC);

        // Held, but no AF_XDP socket on the queue: dropped and counted,
        // never sent on.
        dp.set_steering(
            SERVICE,
            Steering {
                network: 1,
                flags: STEER_HOLD,
            },
        )
        .unwrap();
        assert_eq!(run(&mut dp, &pkt(SERVICE, 1)).verdict, verdict::DROP);
        assert_eq!(
            dp.steer_stats().unwrap()[stat::HOLD_NO_SOCKET as usize].packets,
            1
        );

        // Held during the migration: to the AF_XDP socket of the receiving
        // queue, whole and in order.
        let n2p = dataplane_user::ifindex("n2p").unwrap();
        for i in ["n2", "n2p"] {
            // Nothing but the test's frames on the link.
            common::sh(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{i}.disable_ipv6=1"),
            ]);
        }
        common::sh(&["ip", "link", "set", "n2", "up"]);
        common::sh(&["ip", "link", "set", "n2p", "up"]);
        let mut xsk = Xsk::open(
            n2p,
            0,
            &XskOptions {
                frames: 64,
                frame_size: 2048,
                rx: true,
                tx: false,
            },
        )
        .expect("AF_XDP socket");
        dp.set_steer_xsk(0, xsk.fd()).unwrap();
        // The frames arrive for real: sent out of n2, received on n2p,
        // where the program runs (test_run's live-frames mode is refused
        // on some kernels, EPERM).
        dp.attach_direct("steer", "n2p").expect("steer on n2p");
        let raw = edgeplane::packets::packet_socket().expect("packet socket");
        let held: Vec<Vec<u8>> = (2..6).map(|i| pkt(SERVICE, i)).collect();
        for p in &held {
            assert_eq!(run(&mut dp, p).verdict, verdict::REDIRECT);
            edgeplane::packets::send_frame(&raw, n2 as i32, p).expect("send on n2");
        }
        let mut got = Vec::new();
        let t0 = std::time::Instant::now();
        while got.len() < held.len() && t0.elapsed() < std::time::Duration::from_secs(2) {
            xsk.recv(16, |f| got.push(f.to_vec()));
        }
        assert_eq!(got, held, "held whole, in order");

        // Switched to network 2 (claim 4): redirected to its next hop.
        dp.set_steering(
            SERVICE,
            Steering {
                network: 2,
                flags: 0,
            },
        )
        .unwrap();
        let r = run(&mut dp, &pkt(SERVICE, 6));
        assert_eq!(r.verdict, verdict::REDIRECT);
        assert_eq!(&r.output[0..6], &N2_MAC);
        assert_eq!(
            dp.steering(SERVICE).unwrap(),
            Some(Steering {
                network: 2,
                flags: 0
            })
        );

        // A network without an egress: passed, counted, not misforwarded.
        dp.set_steering(
            SERVICE,
            Steering {
                network: 5,
                flags: 0,
            },
        )
        .unwrap();
        let p = pkt(SERVICE, 7);
        let r = run(&mut dp, &p);
        assert_eq!((r.verdict, &r.output), (verdict::PASS, &p));
        let st = dp.steer_stats().unwrap();
        // Held: 4 test runs and 4 frames received on n2p.
        assert_eq!(
            (
                st[stat::STEERED as usize].packets,
                st[stat::HELD as usize].packets,
                st[stat::NO_NETWORK as usize].packets
            ),
            (2, 8, 1)
        );
    })
    .join()
    .unwrap();
}

const SERVICE6: &str = "2001:db8:99::80";

fn pkt6(dst: &str, seq: u32) -> Vec<u8> {
    edgeplane::packets::udp6_packet(
        "2001:db8:7::2".parse().unwrap(),
        dst.parse().unwrap(),
        40000,
        7000,
        &seq.to_be_bytes(),
    )
}

/// IPv6 services are steered by their own map: to network 1 (TX), to
/// network 2 (REDIRECT), held (dropped and counted without a socket);
/// other IPv6 destinations, an IPv4 service's address as an IPv6 one, and
/// malformed IPv6 pass untouched.
#[test]
fn ipv6_services_are_steered_and_held() {
    if !common::kernel_available("steer_fixtures_ipv6") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "n2", "type", "veth", "peer", "name", "n2p",
        ]);
        let n2 = dataplane_user::ifindex("n2").unwrap();
        let mut dp = Dataplane::load_private().expect("load");
        for (id, mac, ifindex) in [(1, N1_MAC, 1), (2, N2_MAC, n2)] {
            dp.set_network(
                id,
                &NetEgress {
                    dst_mac: mac,
                    src_mac: [2, 0, 0, 0, 0xee, id as u8],
                    ifindex,
                    valid: 1,
                },
            )
            .unwrap();
        }
        let run = |dp: &mut Dataplane, p: &[u8]| dp.test_run("steer", p).unwrap();
        let service: std::net::Ipv6Addr = SERVICE6.parse().unwrap();
        let steer = |dp: &mut Dataplane, network, flags| {
            dp.set_steering(service, Steering { network, flags })
                .unwrap()
        };
        steer(&mut dp, 1, 0);
        // The IPv4 map is not consulted for IPv6, nor the IPv6 map for IPv4.
        dp.set_steering(
            SERVICE,
            Steering {
                network: 2,
                flags: 0,
            },
        )
        .unwrap();
        let r = run(&mut dp, &pkt6(SERVICE6, 1));
        assert_eq!(r.verdict, verdict::TX);
        assert_eq!(&r.output[0..6], &N1_MAC);
        assert_eq!(
            &r.output[12..],
            &pkt6(SERVICE6, 1)[12..],
            "only the MACs change"
        );
        steer(&mut dp, 2, 0);
        let r = run(&mut dp, &pkt6(SERVICE6, 2));
        assert_eq!(
            (r.verdict, &r.output[0..6]),
            (verdict::REDIRECT, &N2_MAC[..])
        );
        assert_eq!(
            dp.steering(service).unwrap(),
            Some(Steering {
                network: 2,
                flags: 0
            })
        );
        steer(&mut dp, 2, STEER_HOLD);
        assert_eq!(run(&mut dp, &pkt6(SERVICE6, 3)).verdict, verdict::DROP);
        let before = dp.steer_stats().unwrap();
        let mut bad_version = pkt6(SERVICE6, 4);
        bad_version[14] = 0x45;
        let mut long = pkt6(SERVICE6, 5);
        long[18..20].copy_from_slice(&[0x05, 0xdc]);
        let untouched = [
            ("other IPv6 destination", pkt6("2001:db8:99::81", 6)),
            (
                "the IPv4 service's address, mapped",
                pkt6("::ffff:192.0.2.80", 7),
            ),
            ("version 4 under the IPv6 EtherType", bad_version),
            ("payload length past the frame", long),
            ("cut in the fixed header", pkt6(SERVICE6, 8)[..40].to_vec()),
        ];
        for (name, p) in &untouched {
            let r = run(&mut dp, p);
            assert_eq!((r.verdict, &r.output), (verdict::PASS, p), "{name}");
        }
        let after = dp.steer_stats().unwrap();
        assert_eq!(
            after[stat::NOT_STEERED as usize].packets - before[stat::NOT_STEERED as usize].packets,
            untouched.len() as u64
        );
        assert_eq!(after[stat::HOLD_NO_SOCKET as usize].packets, 1);
        dp.remove_steering(service).unwrap();
        assert_eq!(dp.steering(service).unwrap(), None);
        assert_eq!(run(&mut dp, &pkt6(SERVICE6, 9)).verdict, verdict::PASS);
    })
    .join()
    .unwrap();
}
