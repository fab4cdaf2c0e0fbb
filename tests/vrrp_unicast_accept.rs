//! VRRP on a segment without multicast (unicast peers) and Accept_Mode
//! (RFC 5798 §6.1), each with keepalived (Debian's) in the same virtual
//! router.

mod common;

use std::{process::Command, thread, time::Duration};

use testlab::vrrp_lab::{VrrpLan, VIP};

const KA: &str = "r1";
const EP: &str = "r2";
const BOTH: [&str; 2] = [KA, EP];

fn lan(tag: &str) -> VrrpLan {
    VrrpLan::new(
        &format!("ep{}{tag}", std::process::id() % 100000),
        2,
        env!("CARGO_BIN_EXE_edgeplane").as_ref(),
    )
    .expect("lan")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const KA_UNICAST: &str = "  unicast_src_ip 10.3.0.1\n  unicast_peer {\n    10.3.0.2\n  }\n";
const EP_UNICAST: &str = "unicast_peers = [\"10.3.0.1\"]\n";

/// Multicast VRRP is dropped by the LAN's bridge; edgeplane and keepalived
/// advertise to each other's address: they elect one master, edgeplane
/// preempts, and each takes over when the other goes.
#[test]
fn unicast_peers_elect_and_fail_over_without_multicast() {
    if !common::kernel_available("vrrp_unicast") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan("u");
    lan.block_vrrp_multicast().unwrap();
    lan.start_keepalived_with(KA, 100, 1000, KA_UNICAST)
        .unwrap();
    lan.wait_master(KA, &BOTH, true, secs(10)).unwrap();
    // Backup first (lower priority): it hears keepalived's unicast adverts.
    lan.start_edgeplane_with(EP, 50, 1000, EP_UNICAST).unwrap();
    thread::sleep(secs(3));
    let st = lan.status(EP).unwrap();
    assert_eq!(st["state"], "backup", "{st}");
    assert!(st["adverts_received"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(st["master"], "10.3.0.1", "{st}");
    assert_eq!(st["discarded"]["bad_checksum"], 0, "{st}");
    assert_eq!(st["unicast_peers"][0], "10.3.0.1", "{st}");
    lan.signal(EP, libc::SIGTERM);
    // Then higher: edgeplane preempts, and keepalived (hearing its unicast
    // adverts) stays backup.
    lan.start_edgeplane_with(EP, 150, 1000, EP_UNICAST).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    thread::sleep(secs(4));
    assert!(
        !lan.has_vip(KA),
        "keepalived hears edgeplane's unicast adverts (no split brain)"
    );
    assert!(lan.status(EP).unwrap()["adverts_sent"].as_u64().unwrap() >= 3);
    // Edgeplane leaves (priority 0 to its peer): keepalived takes over.
    lan.signal(EP, libc::SIGTERM);
    let gap = lan.wait_master(KA, &BOTH, true, secs(3)).unwrap();
    eprintln!("unicast: keepalived took over {gap:?} after edgeplane left");
    assert!(gap < Duration::from_millis(2500), "{gap:?}");
}

fn accept_tables(lan: &VrrpLan) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", &lan.ns(EP), "nft", "list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Accept_Mode off: edgeplane as master answers ARP for the virtual
/// address but drops what is addressed to it (a ping goes unanswered,
/// counted); stopped, its filter goes and keepalived (accepting) answers;
/// with accept on, edgeplane as master answers too.
#[test]
fn accept_mode_off_drops_what_is_addressed_to_the_virtual_address() {
    if !common::kernel_available("vrrp_accept") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan("a");
    lan.start_keepalived(KA, 100, 1000).unwrap();
    lan.start_edgeplane_with(EP, 150, 1000, "accept = false\n")
        .unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    let st = lan.status(EP).unwrap();
    assert_eq!(st["accept"], false, "{st}");
    assert!(accept_tables(&lan).contains("edgeplane_vrrp_eth0_"));
    assert!(
        !lan.ping_from_host(&VIP.to_string(), 1),
        "the master does not accept a ping to the virtual address"
    );
    let neigh = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan.ns("x"),
            "ip",
            "neigh",
            "show",
            &VIP.to_string(),
        ])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(
        neigh.contains("00:00:5e:00:01:"),
        "ARP for the virtual address is answered with the virtual MAC: {neigh}"
    );
    let dropped = lan.counter(EP, "vrrp", "accept_mode_dropped").unwrap();
    assert!(dropped >= 1, "dropped {dropped}");
    lan.signal(EP, libc::SIGTERM);
    lan.wait_master(KA, &BOTH, true, secs(3)).unwrap();
    assert!(
        !accept_tables(&lan).contains("edgeplane_vrrp_"),
        "the filter goes with the instance"
    );
    assert!(
        lan.ping_from_host(&VIP.to_string(), 2),
        "keepalived accepts"
    );
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.status(EP).unwrap()["accept"], true);
    assert!(
        lan.ping_from_host(&VIP.to_string(), 2),
        "with accept (the default) edgeplane's master answers"
    );
}

/// The link-local address of `r`'s eth0 (its VRRP source over IPv6).
fn link_local(lan: &VrrpLan, r: &str) -> String {
    let o = Command::new("ip")
        .args([
            "-n",
            &lan.ns(r),
            "-6",
            "-o",
            "addr",
            "show",
            "dev",
            "eth0",
            "scope",
            "link",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    text.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on {r}: {text}"))
        .to_string()
}

/// IPv6 VRRP by unicast between link-local peers (multicast dropped):
/// edgeplane and keepalived elect one master, edgeplane preempts, and
/// keepalived takes over when it leaves.
#[test]
fn ipv6_unicast_peers_elect_and_fail_over_without_multicast() {
    if !common::kernel_available("vrrp_unicast6") {
        return;
    }
    let _serial = common::serial();
    let mut lan = VrrpLan::new_ipv6(
        &format!("ep{}w", std::process::id() % 100000),
        2,
        env!("CARGO_BIN_EXE_edgeplane").as_ref(),
    )
    .expect("lan");
    lan.block_vrrp_multicast().unwrap();
    let (ka, ep) = (link_local(&lan, KA), link_local(&lan, EP));
    // keepalived sends IPv6 unicast adverts with the default hop limit
    // unless told; RFC 5798 §5.1.2.3 wants 255, and edgeplane refuses the
    // rest (counted as bad_ttl).
    let ka_unicast =
        format!("  unicast_src_ip {ka}\n  unicast_ttl 255\n  unicast_peer {{\n    {ep}\n  }}\n");
    let ep_unicast = format!("unicast_peers = [\"{ka}\"]\n");
    lan.start_keepalived_with(KA, 100, 1000, &ka_unicast)
        .unwrap();
    lan.wait_master(KA, &BOTH, true, secs(10)).unwrap();
    lan.start_edgeplane_with(EP, 50, 1000, &ep_unicast).unwrap();
    thread::sleep(secs(3));
    let st = lan.status(EP).unwrap();
    assert_eq!(st["state"], "backup", "{st}");
    assert!(st["adverts_received"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(st["discarded"]["bad_checksum"], 0, "{st}");
    lan.signal(EP, libc::SIGTERM);
    lan.start_edgeplane_with(EP, 150, 1000, &ep_unicast)
        .unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    thread::sleep(secs(4));
    assert!(
        !lan.has_vip(KA),
        "keepalived hears edgeplane's IPv6 unicast adverts"
    );
    lan.signal(EP, libc::SIGTERM);
    let gap = lan.wait_master(KA, &BOTH, true, secs(3)).unwrap();
    eprintln!("IPv6 unicast: keepalived took over {gap:?} after edgeplane left");
    assert!(gap < Duration::from_millis(2500), "{gap:?}");
}
