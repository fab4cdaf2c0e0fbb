//! The VRRPv3 advertisement decoders (IPv4 packets, IPv6 messages) never
//! panic; what they accept has a version-3 advertisement's shape and
//! re-encodes into a message that decodes to the same advertisement (the
//! same bytes, when the reserved bits were clear). The decoded adverts,
//! mixed with timer and startup/shutdown events, drive a virtual router
//! (§6.4), which keeps its rules: a discard changes nothing, it becomes
//! (stops being) master exactly when it enters (leaves) Master, its timers
//! are its own advertisement interval or the master's down interval, and
//! its own advert, as sent, decodes and is discarded as its own.
//!
//! Input: one octet of router configuration (family, priority, preempt,
//! interval), then events: an octet whose low 3 bits pick Startup,
//! Shutdown, AdverTimer, MasterDownTimer or (4-7) a packet, which follows
//! as a 2-octet big-endian length and that many octets. Bit 3 of a packet
//! event has the harness fix its checksum, so mutations get past it. An
//! IPv4 packet is the whole IP packet; an IPv6 one is source (16),
//! destination (16), hop limit (1), then the VRRP message.
//! (`cargo +nightly fuzz run vrrp_advert`)
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::router::vrrp::{
    Action, Advert, Discard, Event, Params, State, VirtualRouter, VERSION, VRRP_GROUP,
    VRRP_GROUP6, VRRP_PROTO, VRRP_TTL,
};
use libfuzzer_sys::fuzz_target;

const ME: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 100);
const ME6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x100);

/// The Internet checksum of `bytes` after a pseudo-header sum, written
/// here independently of the decoder's.
fn checksum(pseudo: u32, bytes: &[u8]) -> u16 {
    let mut sum = pseudo as u64;
    for c in bytes.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn words(b: &[u8]) -> u32 {
    b.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum()
}

fn pseudo(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let a = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => words(&s.octets()) + words(&d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => words(&s.octets()) + words(&d.octets()),
        _ => unreachable!("one family"),
    };
    a + VRRP_PROTO as u32 + (len as u32 >> 16) + (len as u32 & 0xffff)
}

/// Rewrite the checksum of a VRRP message for `src` → `dst`.
fn fix(m: &mut [u8], src: IpAddr, dst: IpAddr) {
    if m.len() >= 8 {
        m[6..8].fill(0);
        let c = checksum(pseudo(src, dst, m.len()), m);
        m[6..8].copy_from_slice(&c.to_be_bytes());
    }
}

/// The bounds of the VRRP message in an IPv4 packet, as the decoder takes
/// them (None where it gives up on the length first).
fn v4_message(p: &[u8]) -> Option<std::ops::Range<usize>> {
    if p.len() < 20 {
        return None;
    }
    let ihl = ((p[0] & 0x0f) as usize) * 4;
    if ihl < 20 || p.len() < ihl + 8 {
        return None;
    }
    let total = (u16::from_be_bytes([p[2], p[3]]) as usize).min(p.len());
    Some(ihl..total.max(ihl))
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, m: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, VRRP_TTL, VRRP_PROTO, 0, 0];
    p[2..4].copy_from_slice(&((20 + m.len()) as u16).to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(m);
    p
}

/// What every accepted advert satisfies, whatever its source: the shape,
/// and that its encoding decodes to it again (byte for byte when the
/// reserved bits were clear and the checksum not the other zero).
fn check_accepted(m: &[u8], src: IpAddr, dst: IpAddr, a: &Advert) {
    assert_eq!(m[0], (VERSION << 4) | 1, "a version 3 advertisement");
    assert!(a.max_adver_int <= 0x0fff, "12 bits: {a:?}");
    assert_eq!(a.addresses.len(), m[3] as usize);
    assert!(a.addresses.iter().all(|x| x.is_ipv6() == src.is_ipv6()), "{a:?}");
    let again = a.encode(src, dst);
    assert_eq!(again.len(), m.len());
    if m[4] & 0xf0 == 0 {
        assert_eq!(again[..6], m[..6]);
        assert_eq!(again[8..], m[8..]);
        if m[6..8] != [0xff, 0xff] {
            assert_eq!(again[6..8], m[6..8], "the same checksum");
        }
    }
    let back = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (s2, d2, b) = Advert::decode_ipv4(&ipv4_packet(s, d, &again)).expect("re-encoded decodes");
            assert_eq!((s2, d2), (s, d));
            b
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => Advert::decode_ipv6(s, d, VRRP_TTL, &again).expect("re-encoded decodes"),
        _ => unreachable!(),
    };
    assert_eq!(&back, a);
}

/// Decode one packet event for a router of the family `v6`.
fn decode(v6: bool, fix_sum: bool, payload: &[u8]) -> Option<(IpAddr, Result<Advert, Discard>)> {
    if v6 {
        if payload.len() < 33 {
            return None;
        }
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&payload[..16]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&payload[16..32]).unwrap());
        let hop = payload[32];
        let mut m = payload[33..].to_vec();
        if fix_sum {
            fix(&mut m, src.into(), dst.into());
        }
        let r = Advert::decode_ipv6(src, dst, hop, &m);
        if let Ok(a) = &r {
            assert_eq!(hop, VRRP_TTL);
            check_accepted(&m, src.into(), dst.into(), a);
        }
        Some((src.into(), r))
    } else {
        let mut p = payload.to_vec();
        if fix_sum && p.len() >= 20 {
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            if let Some(r) = v4_message(&p) {
                fix(&mut p[r], src.into(), dst.into());
            }
        }
        let r = Advert::decode_ipv4(&p);
        match r {
            Ok((src, dst, a)) => {
                assert_eq!(p[8], VRRP_TTL);
                let range = v4_message(&p).expect("an accepted packet has a message");
                check_accepted(&p[range], src.into(), dst.into(), &a);
                Some((src.into(), Ok(a)))
            }
            Err(d) => Some((IpAddr::V4(Ipv4Addr::UNSPECIFIED), Err(d))),
        }
    }
}

/// Handle `ev` and check the rules of §6.4 on what happened.
fn step(vr: &mut VirtualRouter, ev: Event) {
    let before = vr.state;
    let p = vr.params.priority;
    let is = |e: &Event| *e == ev;
    let acts = vr.handle(ev.clone());
    let after = vr.state;
    if let Some(d) = acts.iter().find_map(|a| match a {
        Action::Discard(d) => Some(*d),
        _ => None,
    }) {
        assert_eq!(acts.len(), 1, "a discard is all that happens: {acts:?}");
        assert_eq!(before, after);
        assert!(Discard::ALL.contains(&d) && !d.name().is_empty());
        assert!(matches!(ev, Event::Advert { .. }));
    }
    let became = acts.contains(&Action::BecomeMaster);
    let stopped = acts.contains(&Action::StopBeingMaster);
    assert_eq!(became, before != State::Master && after == State::Master, "{before:?} -> {after:?}: {acts:?}");
    assert_eq!(stopped, before == State::Master && after != State::Master, "{before:?} -> {after:?}: {acts:?}");
    if before == State::Initialize && !is(&Event::Startup) {
        assert!(acts.is_empty() && after == State::Initialize, "{acts:?}");
    }
    if before == State::Initialize && is(&Event::Startup) {
        assert_ne!(after, State::Initialize);
    }
    if is(&Event::Shutdown) {
        assert_eq!(after, State::Initialize);
    }
    if before != State::Initialize && after == State::Initialize {
        assert!(is(&Event::Shutdown));
    }
    if after == State::Master {
        assert_eq!(vr.master, Some(vr.params.primary));
    }
    assert!(vr.master_adver_int <= 0x0fff);
    for a in &acts {
        match a {
            Action::StartAdverTimer { cs } => assert_eq!(*cs, vr.params.adver_int),
            Action::StartMasterDownTimer { cs } => {
                assert!(*cs == vr.master_down_interval() || *cs == vr.skew_time(), "{cs} {vr:?}")
            }
            Action::SendAdvert { priority } => {
                assert!(*priority == p || (*priority == 0 && is(&Event::Shutdown)));
                own_advert(vr, *priority);
            }
            _ => {}
        }
    }
}

/// The advert `vr` sends decodes to what it meant, and heard back it is
/// discarded as its own.
fn own_advert(vr: &VirtualRouter, priority: u8) {
    let a = Advert {
        vrid: vr.params.vrid,
        priority,
        max_adver_int: vr.params.adver_int,
        addresses: vr.params.addresses.clone(),
    };
    let back = match vr.params.primary {
        IpAddr::V4(me) => {
            let m = a.encode(me.into(), VRRP_GROUP.into());
            let (s, d, b) = Advert::decode_ipv4(&ipv4_packet(me, VRRP_GROUP, &m)).expect("our advert decodes");
            assert_eq!((s, d), (me, VRRP_GROUP));
            b
        }
        IpAddr::V6(me) => {
            let m = a.encode(me.into(), VRRP_GROUP6.into());
            Advert::decode_ipv6(me, VRRP_GROUP6, VRRP_TTL, &m).expect("our advert decodes")
        }
    };
    assert_eq!(back, a);
    let mut echo = vr.clone();
    let acts = echo.handle(Event::Advert { src: vr.params.primary, advert: a });
    if vr.state == State::Initialize {
        assert!(acts.is_empty());
    } else {
        assert_eq!(acts, vec![Action::Discard(Discard::OwnAddress)]);
    }
}

fuzz_target!(|data: &[u8]| {
    // The decoders on the bytes as they are.
    let _ = Advert::decode_ipv4(data);
    if data.len() >= 33 {
        let _ = decode(true, false, data);
    }
    let Some((&cfg, mut rest)) = data.split_first() else { return };
    let v6 = cfg & 1 != 0;
    let priority = [100, 255, 1, 254][usize::from((cfg >> 1) & 3)];
    let adver_int = [100, 1, 4095, 0, 250, 33, 1000, 7][usize::from(cfg >> 5)];
    let (primary, subnet, vip): (IpAddr, _, IpAddr) = if v6 {
        (ME6.into(), None, VIP6.into())
    } else {
        (ME.into(), Some((Ipv4Addr::new(10, 3, 0, 0), 24)), VIP.into())
    };
    let mut vr = VirtualRouter::new(Params {
        vrid: 51,
        priority,
        adver_int,
        preempt: cfg & 8 != 0,
        accept: cfg & 16 != 0,
        primary,
        subnet,
        addresses: vec![vip],
    });
    let mut events = 0;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        events += 1;
        if events > 64 {
            break;
        }
        let ev = match op & 7 {
            0 => Event::Startup,
            1 => Event::Shutdown,
            2 => Event::AdverTimer,
            3 => Event::MasterDownTimer,
            _ => {
                let len = match rest {
                    [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
                    _ => rest.len(),
                };
                rest = rest.get(2..).unwrap_or(&[]);
                let (payload, tail) = rest.split_at(len.min(rest.len()));
                rest = tail;
                match decode(v6, op & 8 != 0, payload) {
                    Some((src, Ok(advert))) => Event::Advert { src, advert },
                    _ => continue,
                }
            }
        };
        step(&mut vr, ev);
    }
});
