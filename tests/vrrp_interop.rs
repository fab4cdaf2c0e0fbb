//! VRRPv3 against keepalived (Debian's 2.2.7) in the same virtual router:
//! election, preemption, failover after SIGKILL, priority-0 handover on a
//! clean stop, in both directions, for IPv4 and for IPv6 (RFC 5798 over
//! ff02::12 from link-local addresses, unsolicited Neighbor Advertisements
//! on takeover). And spoofed adverts change nothing, in both families.

mod common;

use std::{thread, time::Duration};

use testlab::vrrp_lab::{VrrpLan, VIP, VIP6};

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

#[test]
fn edgeplane_and_keepalived_elect_preempt_and_fail_over() {
    if !common::kernel_available("vrrp_interop") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan("v");
    // keepalived alone becomes master.
    lan.start_keepalived(KA, 100, 1000).unwrap();
    lan.wait_master(KA, &BOTH, true, secs(10)).unwrap();
    // edgeplane with a higher priority preempts it.
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    let st = lan.status(EP).unwrap();
    assert_eq!(st["state"], "master");
    assert!(
        st["adverts_received"].as_u64().unwrap() >= 1,
        "heard keepalived: {st}"
    );
    assert_eq!(
        st["discarded"]["bad_checksum"], 0,
        "keepalived's checksums verify: {st}"
    );
    failover_both_ways(&mut lan, "IPv4", "10.3.0.1", |_| true);
}

/// From edgeplane as master (priority 150) over keepalived (100): SIGKILL
/// → keepalived takes over after Master_Down_Interval (3 × 1 s + skew
/// 0.61 s; the killed daemon's macvlan stays until it restarts, so only
/// keepalived's side is checked); restarted, edgeplane clears its stale
/// macvlan and preempts; a clean stop sends priority 0 and keepalived
/// takes over after Skew_Time. Then the other direction: edgeplane lower
/// and backup, knowing keepalived's address (starting with `ka_addr`) as
/// the master's; keepalived stops, edgeplane takes over (`reaches` checks
/// the host reaches the virtual address through it); keepalived returns
/// and preempts.
fn failover_both_ways(
    lan: &mut VrrpLan,
    family: &str,
    ka_addr: &str,
    reaches: impl Fn(&VrrpLan) -> bool,
) {
    lan.signal(EP, libc::SIGKILL);
    let gap = lan.wait_master(KA, &BOTH, false, secs(6)).unwrap();
    eprintln!("{family}: keepalived took over {gap:?} after edgeplane was killed");
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    lan.signal(EP, libc::SIGTERM);
    let gap = lan.wait_master(KA, &BOTH, true, secs(3)).unwrap();
    eprintln!("{family}: keepalived took over {gap:?} after edgeplane left with priority 0");
    assert!(gap < Duration::from_millis(2500), "{gap:?}");

    lan.start_edgeplane(EP, 50, 1000).unwrap();
    thread::sleep(secs(2));
    let st = lan.status(EP).unwrap();
    assert_eq!(st["state"], "backup", "{st}");
    assert!(
        st["master"].as_str().unwrap_or("").starts_with(ka_addr),
        "{family}: keepalived is the master edgeplane knows: {st}"
    );
    assert!(lan.has_vip(KA));
    lan.signal(KA, libc::SIGTERM);
    lan.wait_master(EP, &BOTH, true, secs(5)).unwrap();
    assert!(
        reaches(lan),
        "{family}: the host reaches the virtual address via edgeplane"
    );
    lan.start_keepalived(KA, 100, 1000).unwrap();
    lan.wait_master(KA, &BOTH, true, secs(10)).unwrap();
    assert_eq!(lan.status(EP).unwrap()["state"], "backup");
}

/// An advertisement frame as a spoofer on the LAN would send it.
fn spoof_frame(src: [u8; 4], ttl: u8, priority: u8, corrupt_checksum: bool) -> Vec<u8> {
    use control::router::vrrp::{Advert, VRRP_GROUP};
    let src_ip = std::net::Ipv4Addr::from(src);
    let mut msg = Advert {
        vrid: 51,
        priority,
        max_adver_int: 100,
        addresses: vec![VIP.into()],
    }
    .encode(src_ip.into(), VRRP_GROUP.into());
    if corrupt_checksum {
        msg[7] ^= 0x55;
    }
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0, 0, 0, 0, 0x66, 0x08, 0x00,
    ];
    let mut h = vec![
        0x45,
        0xc0,
        0,
        (20 + msg.len()) as u8,
        0,
        0,
        0,
        0,
        ttl,
        112,
        0,
        0,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&VRRP_GROUP.octets());
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&msg);
    f
}

fn send_from(ns: &str, frames: Vec<Vec<u8>>) {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        testlab::topo::enter_netns(&path).unwrap();
        let ifindex = dataplane_user::ifindex("eth0").unwrap() as i32;
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0);
            for f in frames {
                let mut sa: libc::sockaddr_ll = std::mem::zeroed();
                sa.sll_family = libc::AF_PACKET as u16;
                sa.sll_ifindex = ifindex;
                sa.sll_halen = 6;
                sa.sll_addr[..6].copy_from_slice(&f[..6]);
                let n = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sa as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(n as usize, f.len());
            }
            libc::close(fd);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn spoofed_adverts_change_nothing() {
    if !common::kernel_available("vrrp_spoof") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan("s");
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    let x = lan.ns("x");
    let count = |st: &serde_json::Value, k: &str| st["discarded"][k].as_u64().unwrap();
    // Higher priority, but TTL 254 / wrong subnet / bad checksum /
    // claiming 255 without owning the address: each is discarded.
    for (frame, reason) in [
        (spoof_frame([10, 3, 0, 9], 254, 254, false), "bad_ttl"),
        (spoof_frame([192, 0, 2, 9], 255, 254, false), "wrong_subnet"),
        (spoof_frame([10, 3, 0, 9], 255, 254, true), "bad_checksum"),
        (spoof_frame([10, 3, 0, 9], 255, 255, false), "false_owner"),
    ] {
        let before = lan.status(EP).unwrap();
        send_from(&x, vec![frame; 5]);
        thread::sleep(Duration::from_millis(300));
        let after = lan.status(EP).unwrap();
        assert_eq!(after["state"], "master", "{reason}: {after}");
        assert_eq!(after["transitions"], before["transitions"], "{reason}");
        assert_eq!(
            count(&after, reason),
            count(&before, reason) + 5,
            "{reason}: {after}"
        );
    }
    assert!(lan.has_vip(EP));
    // The same injector with a valid higher advert does move the master:
    // the checks above are what stopped the spoofs.
    send_from(&x, vec![spoof_frame([10, 3, 0, 9], 255, 254, false)]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lan.status(EP).unwrap()["state"], "backup");
}

fn lan6(tag: &str) -> VrrpLan {
    VrrpLan::new_ipv6(
        &format!("ep{}{tag}", std::process::id() % 100000),
        2,
        env!("CARGO_BIN_EXE_edgeplane").as_ref(),
    )
    .expect("lan")
}

/// The MAC host `x` has for `addr` in its neighbour table, if any.
fn neighbour(lan: &VrrpLan, addr: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan.ns("x"),
            "ip",
            "-6",
            "neigh",
            "show",
            addr,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

/// One ping from host `x` to `addr` (creates its neighbour entry).
fn ping6(lan: &VrrpLan, addr: &str) -> bool {
    lan.ping_from_host(addr, 1)
}

#[test]
fn edgeplane_and_keepalived_over_ipv6_elect_preempt_fail_over_and_announce() {
    if !common::kernel_available("vrrp_interop_ipv6") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan6("6");
    let vip = VIP6.to_string();
    // keepalived alone becomes master; the host reaches the virtual
    // address through it (keepalived answers with its own MAC).
    lan.start_keepalived(KA, 100, 1000).unwrap();
    lan.wait_master(KA, &BOTH, true, secs(10)).unwrap();
    assert!(ping6(&lan, &vip), "the host reaches {vip} via keepalived");
    let before = neighbour(&lan, &vip);
    // edgeplane with a higher priority preempts it, from its link-local
    // address, and announces the virtual MAC with an unsolicited NA: the
    // host's entry moves to 00:00:5e:00:02:33 without asking.
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    let st = lan.status(EP).unwrap();
    assert_eq!(st["state"], "master");
    assert!(
        st["primary"].as_str().unwrap().starts_with("fe80::"),
        "adverts from the link-local address: {st}"
    );
    assert_eq!(st["virtual_mac"], "00:00:5e:00:02:33", "{st}");
    assert!(
        st["adverts_received"].as_u64().unwrap() >= 1,
        "heard keepalived: {st}"
    );
    assert_eq!(
        st["discarded"]["bad_checksum"], 0,
        "keepalived's checksums verify: {st}"
    );
    assert_eq!(
        st["discarded"]["address_mismatch"], 0,
        "same addresses: {st}"
    );
    let t0 = std::time::Instant::now();
    while neighbour(&lan, &vip).as_deref() != Some("00:00:5e:00:02:33") {
        assert!(
            t0.elapsed() < secs(2),
            "the host still has {:?} (was {before:?}) for {vip}",
            neighbour(&lan, &vip)
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(ping6(&lan, &vip), "the new master answers for {vip}");
    // keepalived, now backup, hears edgeplane's adverts: it stays backup
    // (it would go master after 3.6 s of silence).
    thread::sleep(secs(4));
    assert!(
        !lan.has_vip(KA),
        "keepalived stays backup under our adverts"
    );
    // As a backup, edgeplane follows keepalived's link-local address.
    failover_both_ways(&mut lan, "IPv6", "fe80::", |l| ping6(l, &vip));
}

/// An IPv6 advertisement frame as a spoofer would send it.
fn spoof6_frame(src: std::net::Ipv6Addr, hop_limit: u8, priority: u8, corrupt: bool) -> Vec<u8> {
    use control::router::vrrp::{Advert, VRRP_GROUP6};
    let mut msg = Advert {
        vrid: 51,
        priority,
        max_adver_int: 100,
        addresses: vec![testlab::vrrp_lab::VIP6_LL.into(), VIP6.into()],
    }
    .encode(src.into(), VRRP_GROUP6.into());
    if corrupt {
        msg[7] ^= 0x55;
    }
    let mut f = vec![
        0x33, 0x33, 0, 0, 0, 0x12, 0x02, 0, 0, 0, 0, 0x66, 0x86, 0xdd,
    ];
    f.extend_from_slice(&[0x6c, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[112, hop_limit]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&VRRP_GROUP6.octets());
    f.extend_from_slice(&msg);
    f
}

#[test]
fn spoofed_ipv6_adverts_change_nothing() {
    if !common::kernel_available("vrrp_spoof_ipv6") {
        return;
    }
    let _serial = common::serial();
    let mut lan = lan6("t");
    lan.start_edgeplane(EP, 150, 1000).unwrap();
    lan.wait_master(EP, &BOTH, true, secs(10)).unwrap();
    let x = lan.ns("x");
    let count = |st: &serde_json::Value, k: &str| st["discarded"][k].as_u64().unwrap();
    let ll: std::net::Ipv6Addr = "fe80::66".parse().unwrap();
    let global: std::net::Ipv6Addr = "2001:db8:3::66".parse().unwrap();
    for (frame, reason) in [
        (spoof6_frame(ll, 254, 254, false), "bad_ttl"),
        (spoof6_frame(global, 255, 254, false), "not_link_local"),
        (spoof6_frame(ll, 255, 254, true), "bad_checksum"),
        (spoof6_frame(ll, 255, 255, false), "false_owner"),
    ] {
        let before = lan.status(EP).unwrap();
        send_from(&x, vec![frame; 5]);
        thread::sleep(Duration::from_millis(300));
        let after = lan.status(EP).unwrap();
        assert_eq!(after["state"], "master", "{reason}: {after}");
        assert_eq!(after["transitions"], before["transitions"], "{reason}");
        assert_eq!(
            count(&after, reason),
            count(&before, reason) + 5,
            "{reason}: {after}"
        );
    }
    assert!(lan.has_vip(EP));
    // A valid higher advert from the same injector does move the master.
    send_from(&x, vec![spoof6_frame(ll, 255, 254, false)]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lan.status(EP).unwrap()["state"], "backup");
}
