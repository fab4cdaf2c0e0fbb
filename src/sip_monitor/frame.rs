//! The SIP segment of a copied frame: the UDP payload, or the TCP
//! segment with its connection, of an Ethernet frame carrying IPv4 or
//! IPv6 (at most two VLAN tags, as the copy programs read them).

use std::net::IpAddr;

pub(super) enum Segment<'a> {
    Udp(&'a [u8]),
    Tcp {
        key: control::sip_monitor::stream::ConnKey,
        seq: u32,
        fin: bool,
        payload: &'a [u8],
    },
}

/// The SIP messages a copied frame carries (a UDP datagram's one, or what
/// a TCP segment completes in its stream), or the errors of what is not
/// SIP; none for a frame with no SIP segment or a bare ACK.
pub(super) fn messages<'a>(
    tcp: &mut control::sip_monitor::stream::Reassembler,
    f: &'a [u8],
) -> Vec<Result<control::sip_monitor::sip::Message<'a>, control::sip_monitor::sip::SipError>> {
    match segment(f) {
        Some(Segment::Udp(payload)) => {
            vec![control::sip_monitor::sip::parse(payload).map(|(m, _)| m)]
        }
        Some(Segment::Tcp {
            key,
            seq,
            fin,
            payload,
        }) if fin || !payload.is_empty() => tcp.push(key, seq, payload, fin),
        _ => Vec::new(),
    }
}

/// The UDP payload, or the TCP segment, of an Ethernet frame carrying
/// IPv4 or IPv6 (hop-by-hop, routing and destination options headers
/// walked, at most 6, as the XDP program does; a fragment is not SIP the
/// monitor can read).
pub(super) fn segment(f: &[u8]) -> Option<Segment<'_>> {
    if f.len() < 14 {
        return None;
    }
    // 802.1Q and QinQ (802.1ad) tags, at most two, as the XDP program
    // copies them.
    let mut l2 = 14;
    let mut ethertype = u16::from_be_bytes([f[12], f[13]]);
    for _ in 0..2 {
        if !matches!(ethertype, 0x8100 | 0x88a8) || f.len() < l2 + 4 {
            break;
        }
        ethertype = u16::from_be_bytes([f[l2 + 2], f[l2 + 3]]);
        l2 += 4;
    }
    let (src, dst, proto, l4, end) = match ethertype {
        0x0800 if f.len() >= l2 + 20 => {
            let ihl = ((f[l2] & 0x0f) as usize) * 4;
            let total = (u16::from_be_bytes([f[l2 + 2], f[l2 + 3]]) as usize + l2).min(f.len());
            let addr = |o: usize| IpAddr::from([f[o], f[o + 1], f[o + 2], f[o + 3]]);
            (addr(l2 + 12), addr(l2 + 16), f[l2 + 9], l2 + ihl, total)
        }
        0x86dd if f.len() >= l2 + 40 => {
            let end = (u16::from_be_bytes([f[l2 + 4], f[l2 + 5]]) as usize + l2 + 40).min(f.len());
            let addr =
                |o: usize| IpAddr::from(<[u8; 16]>::try_from(&f[o..o + 16]).expect("16 bytes"));
            let (mut next, mut at) = (f[l2 + 6], l2 + 40);
            for _ in 0..dataplane_common::IPV6_MAX_EXT {
                if !matches!(next, 0 | 43 | 60) || at + 2 > end {
                    break;
                }
                next = f[at];
                at += (f[at + 1] as usize + 1) * 8;
            }
            (addr(l2 + 8), addr(l2 + 24), next, at, end)
        }
        _ => return None,
    };
    let be32 = |o: usize| u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let be16 = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
    match proto {
        17 if end >= l4 + 8 => Some(Segment::Udp(&f[l4 + 8..end])),
        6 if end >= l4 + 20 => {
            let off = ((f[l4 + 12] >> 4) as usize) * 4;
            if end < l4 + off {
                return None;
            }
            let flags = f[l4 + 13];
            Some(Segment::Tcp {
                key: (src, be16(l4), dst, be16(l4 + 2)),
                seq: be32(l4 + 4),
                fin: flags & 0x05 != 0, // FIN or RST
                payload: &f[l4 + off..end],
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(i: u16) -> std::net::Ipv6Addr {
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, i)
    }

    fn frame6(tcp: bool, payload: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv6(
            v6(2).octets(),
            v6(1).octets(),
            64,
        );
        let mut out = Vec::new();
        if tcp {
            b.tcp(40001, 5060, 77, 64240)
                .write(&mut out, payload)
                .unwrap();
        } else {
            b.udp(40000, 5060).write(&mut out, payload).unwrap();
        }
        out
    }

    #[test]
    fn ipv6_segments_udp_tcp_and_extension_headers() {
        let f = frame6(false, b"OPTIONS");
        assert!(matches!(segment(&f), Some(Segment::Udp(p)) if p == b"OPTIONS"));
        let t = frame6(true, b"REGISTER");
        match segment(&t) {
            Some(Segment::Tcp {
                key,
                seq,
                fin,
                payload,
            }) => {
                assert_eq!(key, (v6(2).into(), 40001, v6(1).into(), 5060));
                assert_eq!((seq, fin, payload), (77, false, &b"REGISTER"[..]));
            }
            _ => panic!("not a TCP segment"),
        }
        // A destination options header before UDP is walked.
        let mut d = f[..54].to_vec();
        d[20] = 60;
        let plen = u16::from_be_bytes([d[18], d[19]]) + 8;
        d[18..20].copy_from_slice(&plen.to_be_bytes());
        d.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        d.extend_from_slice(&f[54..]);
        assert!(matches!(segment(&d), Some(Segment::Udp(p)) if p == b"OPTIONS"));
        // A fragment, or a frame cut short, is nothing.
        let mut frag = d.clone();
        frag[20] = 44;
        assert!(segment(&frag).is_none());
        for cut in [14, 40, 54, 60] {
            assert!(
                !matches!(segment(&f[..cut]), Some(Segment::Udp(p)) if !p.is_empty()),
                "cut at {cut}"
            );
        }
        // The payload ends where the payload length says (padding after).
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 6]);
        assert!(matches!(segment(&padded), Some(Segment::Udp(p)) if p == b"OPTIONS"));
    }
}

#[cfg(test)]
mod segment_tests {
    use super::*;

    #[test]
    fn vlan_and_qinq_copies_are_read() {
        let sip = b"OPTIONS sip:a@x SIP/2.0\r\n\r\n";
        let plain = crate::packets::udp_packet(
            std::net::Ipv4Addr::new(10, 0, 0, 2),
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            5060,
            5060,
            sip,
        );
        let tag = |f: &[u8], tpid: u16, vid: u16| {
            let mut v = f[..12].to_vec();
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&vid.to_be_bytes());
            v.extend_from_slice(&f[12..]);
            v
        };
        let one = tag(&plain, 0x8100, 10);
        let two = tag(&one, 0x88a8, 20);
        for f in [&plain, &one, &two] {
            match segment(f) {
                Some(Segment::Udp(p)) => assert_eq!(&p[..sip.len()], sip),
                _ => panic!("not read: {f:02x?}"),
            }
        }
        // Three tags: past what is walked, not read as SIP.
        assert!(segment(&tag(&two, 0x8100, 30)).is_none());
    }
}
