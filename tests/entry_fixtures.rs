//! Two roles on one interface (ARCHITECTURE §5): the interface runs the
//! entry program, which tail-calls the role stages in order; a stage that
//! passes a packet hands it to the next. The sip-monitor copy (a stage
//! that only observes) runs before the lb (which forwards), so a SIP
//! datagram is both copied and forwarded.

mod common;

use std::{net::Ipv4Addr, path::PathBuf};

use dataplane_common::{entry, lb, sip_monitor};
use dataplane_user::{verdict, Dataplane, LoadOptions, XdpMode};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKe1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: e1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

/// Removes the test's pin root, also when the test fails.
struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = testlab::topo::remove_pins(&self.0);
    }
}

fn moved(after: &[dataplane_common::Counter], before: &[dataplane_common::Counter], i: u32) -> u64 {
    after[i as usize].packets - before[i as usize].packets
}

#[test]
fn a_sip_monitor_and_an_lb_share_one_interface() {
    if !common::kernel_available("entry_fixtures") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        common::sh(&["ip", "link", "set", "v0", "up"]);
        common::sh(&["ip", "link", "set", "v1", "up"]);
        let pins = Pins(PathBuf::from(format!(
            "/sys/fs/bpf/edgeplane-test-entry-{}",
            std::process::id()
        )));
        let opts = LoadOptions {
            pin_root: pins.0.clone(),
            mode: XdpMode::Skb,
            ..Default::default()
        };

        let mut mon = Dataplane::attach("sip_monitor", "v0", &opts).expect("sip-monitor stage");
        mon.add_sip_port(5060).unwrap();
        let mut lbd = Dataplane::attach("lb", "v0", &opts).expect("lb stage on the same interface");
        assert!(lbd.took_over, "the second role shares the interface's pins");
        // The gateway is behind the ingress port (XDP_TX); test_run's
        // ingress is this namespace's loopback.
        testlab::fixtures::install(&mut lbd, 1, None).unwrap();
        // One link on the interface, running the entry program.
        assert!(pins.0.join("v0/link").exists());
        let link =
            String::from_utf8(common::sh(&["ip", "-d", "link", "show", "v0"]).stdout).unwrap();
        assert!(link.contains("xdp"), "{link}");

        let udp = |dport: u16| {
            edgeplane::packets::udp_packet(
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(198, 51, 100, 10),
                40000,
                dport,
                INVITE,
            )
        };
        let (s0, l0) = (mon.sip_stats().unwrap(), lbd.lb_stats().unwrap());

        // SIP: copied by the first stage, forwarded by the second.
        let r = lbd.test_run("entry", &udp(5060)).unwrap();
        assert_eq!(r.verdict, verdict::TX, "the lb stage forwarded it");
        let copies = mon.take_sip_copies().unwrap();
        assert_eq!(copies.len(), 1, "the sip-monitor stage copied it first");
        assert_eq!(copies[0].frame, udp(5060));
        // Not SIP: passed on by the monitor, forwarded by the lb.
        assert_eq!(
            lbd.test_run("entry", &udp(5070)).unwrap().verdict,
            verdict::TX
        );
        // Not IPv4: each stage passes it, and nothing comes after the lb.
        let mut arp = udp(5060);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let r = lbd.test_run("entry", &arp).unwrap();
        assert_eq!(
            (r.verdict, &r.output),
            (verdict::PASS, &arp),
            "passed untouched"
        );

        let (s1, l1) = (mon.sip_stats().unwrap(), lbd.lb_stats().unwrap());
        assert_eq!(
            (
                moved(&s1, &s0, sip_monitor::stat::COPIED),
                moved(&s1, &s0, sip_monitor::stat::NOT_SIP),
                moved(&s1, &s0, sip_monitor::stat::PASS)
            ),
            (1, 2, 3)
        );
        assert_eq!(
            (
                moved(&l1, &l0, lb::stat::TX),
                moved(&l1, &l0, lb::stat::PASS)
            ),
            (2, 1)
        );

        // A real frame arriving on v0 takes the same chain: sent from the
        // peer, it reaches the attached entry program (and the gateway is
        // now behind v0).
        testlab::fixtures::install(&mut lbd, dataplane_user::ifindex("v0").unwrap(), None).unwrap();
        let tx = edgeplane::packets::packet_socket().unwrap();
        let v1 = dataplane_user::ifindex("v1").unwrap() as i32;
        edgeplane::packets::send_frame(&tx, v1, &udp(5060)).unwrap();
        let t0 = std::time::Instant::now();
        let mut copies = Vec::new();
        while copies.is_empty() && t0.elapsed() < std::time::Duration::from_secs(2) {
            copies = mon.take_sip_copies().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            copies.len(),
            1,
            "the attached entry ran the sip-monitor stage"
        );
        let l2 = lbd.lb_stats().unwrap();
        assert_eq!(moved(&l2, &l1, lb::stat::TX), 1, "and then the lb stage");

        // A role whose first interface is elsewhere cannot take v0 as its
        // second: v0's stages live under v0.
        let err = Dataplane::attach_many("gateway", &["v1", "v0"], &opts)
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("interface v0 has stages of its own"),
            "{err}"
        );
        assert_eq!(
            entry::role::of_program("gateway"),
            Some(entry::role::GATEWAY)
        );

        // A restarted lb daemon takes its stage over; the sip-monitor's
        // stays in the chain before it.
        drop(lbd);
        let mut lbd = Dataplane::attach("lb", "v0", &opts).expect("lb stage again");
        testlab::fixtures::install(&mut lbd, 1, None).unwrap();
        assert_eq!(
            lbd.test_run("entry", &udp(5060)).unwrap().verdict,
            verdict::TX
        );
        assert_eq!(
            mon.take_sip_copies().unwrap().len(),
            1,
            "still copied first"
        );
        drop((mon, lbd));
        drop(pins);
    })
    .join()
    .unwrap();
}

/// In another order (`node.stage_order = ["lb"]`) the lb sees the packet
/// first and forwards it: the sip-monitor after it never does. A daemon
/// that comes back with the default order while the other stage is still
/// linked in the old one is refused, naming both orders.
#[test]
fn the_stage_order_is_the_configured_one() {
    if !common::kernel_available("entry_fixtures_order") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        common::sh(&["ip", "link", "set", "v0", "up"]);
        let pins = Pins(PathBuf::from(format!(
            "/sys/fs/bpf/edgeplane-test-order-{}",
            std::process::id()
        )));
        let lb_first = [
            entry::role::LB,
            entry::role::SIP_MONITOR,
            entry::role::ROUTER,
            entry::role::STEER,
            entry::role::GATEWAY,
        ];
        let opts = LoadOptions {
            pin_root: pins.0.clone(),
            mode: XdpMode::Skb,
            stage_order: lb_first,
            ..Default::default()
        };
        let mut mon = Dataplane::attach("sip_monitor", "v0", &opts).expect("sip-monitor stage");
        mon.add_sip_port(5060).unwrap();
        let mut lbd = Dataplane::attach("lb", "v0", &opts).expect("lb stage");
        testlab::fixtures::install(&mut lbd, 1, None).unwrap();
        let udp = |dport: u16| {
            edgeplane::packets::udp_packet(
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(198, 51, 100, 10),
                40000,
                dport,
                INVITE,
            )
        };
        assert_eq!(
            lbd.test_run("entry", &udp(5060)).unwrap().verdict,
            verdict::TX,
            "the lb stage forwarded it"
        );
        assert!(
            mon.take_sip_copies().unwrap().is_empty(),
            "the sip-monitor stage after it never saw it"
        );
        // What the lb passes (not IPv4) goes on to the sip-monitor.
        let s0 = mon.sip_stats().unwrap();
        let mut arp = udp(5060);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(lbd.test_run("entry", &arp).unwrap().verdict, verdict::PASS);
        assert_eq!(
            moved(&mon.sip_stats().unwrap(), &s0, sip_monitor::stat::NOT_SIP),
            1
        );

        drop(lbd);
        let err = Dataplane::attach(
            "lb",
            "v0",
            &LoadOptions {
                stage_order: entry::DEFAULT_ORDER,
                ..opts.clone()
            },
        )
        .err()
        .expect("refused");
        assert!(
            err.to_string()
                .contains("linked in the order lb, sip_monitor"),
            "{err}"
        );
        drop(mon);
        drop(pins);
    })
    .join()
    .unwrap();
}
