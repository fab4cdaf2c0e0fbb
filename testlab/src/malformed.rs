//! Malformed variants of well-formed frames (issue 15): the one table
//! every program's malformed-input fixtures are built from.
//!
//! A [`Stack`] is a well-formed frame and the offsets of its headers
//! (Ethernet, VLAN tags, IPv4 and its options or IPv6, TCP or UDP, a GTP-U
//! header chain and, when asked, the T-PDU's IPv4 and L4 headers).
//! [`Stack::cases`] builds from it:
//! - the frame cut at every byte of every header, as cut (the lengths
//!   still claim the whole) and with the lengths saying so (IPv4 total
//!   length and checksum, IPv6 payload length, UDP and GTP-U lengths);
//! - a third VLAN tag on a frame with two;
//! - for each IP header: a bad version; IHL 0, 4 and past the end; total
//!   (payload) length past the end, below the header and short of the L4
//!   header; fragments (first, middle, last);
//! - for each TCP header a data offset of 0, 4 and past the end; for each
//!   UDP header a length of 0, 7 and past the end;
//! - and two well-formed edges, to be taken as the frame is: Ethernet
//!   padding after the datagram, and DF set.
//!
//! What a program makes of each [`Fault`] is its test's to say.

/// A header of a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vlan,
    Ipv4,
    /// The options of the IPv4 header before it.
    Ipv4Options,
    Ipv6,
    Tcp,
    Udp,
    /// The GTP-U header chain (mandatory part, optional fields, extensions).
    Gtpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// In the T-PDU of a G-PDU.
    pub inner: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    /// MF set, offset 0.
    First,
    /// MF set, offset 1480.
    Middle,
    /// MF clear, offset 1480.
    Last,
}

/// What is wrong with a case (or, [`Fault::well_formed`], what is
/// unusual about it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut `at` bytes into the header; `consistent`: the length fields
    /// of the headers before the cut say where it ends.
    Cut {
        at: usize,
        consistent: bool,
    },
    ThirdVlan,
    BadVersion,
    IhlBelow5,
    /// IHL runs past the frame.
    IhlPastEnd,
    /// Total length (IPv6: payload length) past the frame.
    TotalPastEnd,
    /// Total length below the header (IPv6: payload length 0).
    TotalBelowHeader,
    /// Total (payload) length covers the ports only: the rest of the L4
    /// header lies past the datagram, in the frame.
    L4PastTotal,
    Fragment(Frag),
    TcpOffsetBelow5,
    TcpOffsetPastEnd,
    UdpLengthZero,
    UdpLengthBelow8,
    UdpLengthPastEnd,
    /// Well-formed: 24 bytes of Ethernet padding after the datagram.
    Padded,
    /// Well-formed: DF set.
    DontFragment,
}

impl Fault {
    pub fn well_formed(&self) -> bool {
        matches!(self, Fault::Padded | Fault::DontFragment)
    }
}

/// One input: the packet, its fault, the header the fault is in.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub packet: Vec<u8>,
    pub fault: Fault,
    pub header: Header,
    /// Offset of the stack's (outer) IP header.
    pub l3: usize,
    /// The stack's outer IP header is IPv6.
    pub v6: bool,
}

impl Case {
    /// The category of the case.
    pub fn category(&self) -> &'static str {
        match (self.fault, self.header.kind) {
            (Fault::Cut { .. }, Kind::Vlan) | (Fault::ThirdVlan, _) => "vlan",
            (Fault::Cut { .. }, Kind::Ipv4Options) => "ipv4 options",
            (Fault::Cut { .. }, _) => "truncation",
            (Fault::BadVersion, _) => "version",
            (Fault::IhlBelow5 | Fault::IhlPastEnd, _) => "ihl",
            (Fault::TotalPastEnd | Fault::TotalBelowHeader | Fault::L4PastTotal, _) => {
                "total length"
            }
            (Fault::Fragment(_), _) => "fragment",
            (Fault::TcpOffsetBelow5 | Fault::TcpOffsetPastEnd, _) => "tcp data offset",
            (Fault::UdpLengthZero | Fault::UdpLengthBelow8 | Fault::UdpLengthPastEnd, _) => {
                "udp length"
            }
            (Fault::Padded | Fault::DontFragment, _) => "well-formed edge",
        }
    }
}

/// The categories of the issue, as [`Case::category`] names them.
pub const CATEGORIES: [&str; 9] = [
    "truncation",
    "vlan",
    "ipv4 options",
    "version",
    "ihl",
    "total length",
    "fragment",
    "tcp data offset",
    "udp length",
];

/// A well-formed frame and its headers.
#[derive(Clone, Debug)]
pub struct Stack {
    pub name: String,
    pub packet: Vec<u8>,
    pub headers: Vec<Header>,
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn put16(p: &mut [u8], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Recompute the IPv4 header checksum at `l3` over the header IHL
/// announces (at least 20 bytes, at most what the frame has).
pub fn ip_csum(p: &mut [u8], l3: usize) {
    if p.len() < l3 + 20 {
        return;
    }
    let ihl = (((p[l3] & 0x0f) as usize) * 4).clamp(20, p.len() - l3) & !1;
    put16(p, l3 + 10, 0);
    let mut sum: u32 = p[l3..l3 + ihl]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    put16(p, l3 + 10, !(sum as u16));
}

/// `pkt` (an IPv4 frame, header at `l3`) with `opts` (a multiple of 4
/// bytes) as IPv4 options: IHL, total length and checksum follow.
pub fn with_ipv4_options(pkt: &[u8], l3: usize, opts: &[u8]) -> Vec<u8> {
    assert!(opts.len().is_multiple_of(4) && opts.len() <= 40);
    let mut p = pkt[..l3 + 20].to_vec();
    p[l3] = 0x40 | (5 + opts.len() / 4) as u8;
    let tot = be16(&p, l3 + 2) + opts.len() as u16;
    put16(&mut p, l3 + 2, tot);
    p.extend_from_slice(opts);
    p.extend_from_slice(&pkt[l3 + 20..]);
    ip_csum(&mut p, l3);
    p
}

impl Stack {
    /// Parse `packet`'s headers; with `tpdu`, a G-PDU's T-PDU (IPv4 and
    /// its L4 header) too. The datagram must fill the frame (no padding).
    pub fn new(name: impl Into<String>, packet: Vec<u8>, tpdu: bool) -> Stack {
        let p = &packet;
        let mut headers = Vec::new();
        let push = |h: &mut Vec<Header>, kind, start, end, inner| {
            h.push(Header {
                kind,
                start,
                end,
                inner,
            })
        };
        let mut l3 = 14;
        let mut ethertype = be16(p, 12);
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            push(&mut headers, Kind::Vlan, l3, l3 + 4, false);
            ethertype = be16(p, l3 + 2);
            l3 += 4;
        }
        let ipv4 = |h: &mut Vec<Header>, at: usize, inner: bool| {
            let ihl = ((p[at] & 0x0f) as usize) * 4;
            push(h, Kind::Ipv4, at, at + 20, inner);
            if ihl > 20 {
                push(h, Kind::Ipv4Options, at + 20, at + ihl, inner);
            }
            (p[at + 9], at + ihl, at + be16(p, at + 2) as usize)
        };
        let (proto, l4, end) = match ethertype {
            0x0800 => ipv4(&mut headers, l3, false),
            0x86dd => {
                push(&mut headers, Kind::Ipv6, l3, l3 + 40, false);
                (p[l3 + 6], l3 + 40, l3 + 40 + be16(p, l3 + 4) as usize)
            }
            other => panic!("{other:#06x}: not IP"),
        };
        assert_eq!(end, p.len(), "the datagram fills the frame");
        let l4_header = |h: &mut Vec<Header>, proto: u8, at: usize, inner: bool| match proto {
            6 => push(
                h,
                Kind::Tcp,
                at,
                at + ((p[at + 12] >> 4) as usize) * 4,
                inner,
            ),
            17 => push(h, Kind::Udp, at, at + 8, inner),
            other => panic!("protocol {other}: neither TCP nor UDP"),
        };
        l4_header(&mut headers, proto, l4, false);
        if proto == 17 && be16(p, l4 + 2) == 2152 {
            let g = l4 + 8;
            let mut at = g + 8;
            if p[g] & 0x07 != 0 {
                at += 4;
                if p[g] & 0x04 != 0 {
                    let mut next = p[at - 1];
                    while next != 0 {
                        at += p[at] as usize * 4;
                        next = p[at - 1];
                    }
                }
            }
            push(&mut headers, Kind::Gtpu, g, at, false);
            if tpdu {
                let (proto, l4, _) = ipv4(&mut headers, at, true);
                l4_header(&mut headers, proto, l4, true);
            }
        }
        Stack {
            name: name.into(),
            packet,
            headers,
        }
    }

    /// Where the last header ends.
    pub fn end(&self) -> usize {
        self.headers.last().map_or(14, |h| h.end)
    }

    fn outer_ip(&self) -> &Header {
        self.headers
            .iter()
            .find(|h| matches!(h.kind, Kind::Ipv4 | Kind::Ipv6))
            .expect("an IP header")
    }

    fn case(&self, what: String, packet: Vec<u8>, fault: Fault, header: Header) -> Case {
        let ip = self.outer_ip();
        Case {
            name: format!("{}: {what}", self.name),
            packet,
            fault,
            header,
            l3: ip.start,
            v6: ip.kind == Kind::Ipv6,
        }
    }

    /// The frame cut at `len`, the length fields of every header before
    /// the cut saying where it ends.
    pub fn cut_consistent(&self, len: usize) -> Vec<u8> {
        let mut p = self.packet[..len].to_vec();
        for h in self.headers.iter().filter(|h| h.start < len) {
            let left = len - h.start;
            match h.kind {
                Kind::Ipv4 if left >= 4 => {
                    put16(&mut p, h.start + 2, left.min(0xffff) as u16);
                    ip_csum(&mut p, h.start);
                }
                Kind::Ipv6 if left >= 6 => {
                    put16(&mut p, h.start + 4, left.saturating_sub(40) as u16)
                }
                Kind::Udp if left >= 6 => put16(&mut p, h.start + 4, left as u16),
                Kind::Gtpu if left >= 4 => {
                    put16(&mut p, h.start + 2, left.saturating_sub(8) as u16)
                }
                _ => {}
            }
        }
        p
    }

    /// Every case of the stack (see the module's documentation).
    pub fn cases(&self) -> Vec<Case> {
        let mut v = Vec::new();
        for len in 14..self.end() {
            let h = *self
                .headers
                .iter()
                .find(|h| h.start <= len && len < h.end)
                .expect("headers follow each other");
            let at = len - h.start;
            let inner = if h.inner { "inner " } else { "" };
            let kind = format!("{inner}{:?}", h.kind).to_lowercase();
            let raw = self.packet[..len].to_vec();
            let fixed = self.cut_consistent(len);
            if fixed != raw {
                v.push(self.case(
                    format!("cut at {len} ({kind} + {at}), lengths fixed"),
                    fixed,
                    Fault::Cut {
                        at,
                        consistent: true,
                    },
                    h,
                ));
            }
            v.push(self.case(
                format!("cut at {len} ({kind} + {at})"),
                raw,
                Fault::Cut {
                    at,
                    consistent: false,
                },
                h,
            ));
        }
        let vlans: Vec<&Header> = self
            .headers
            .iter()
            .filter(|h| h.kind == Kind::Vlan)
            .collect();
        if vlans.len() == 2 {
            let mut p = self.packet.clone();
            p.splice(vlans[1].end - 2..vlans[1].end - 2, [0x81, 0x00, 0x00, 0x03]);
            v.push(self.case("three vlan tags".into(), p, Fault::ThirdVlan, *vlans[1]));
        }
        for (i, h) in self.headers.iter().enumerate() {
            let next = self.headers[i + 1..]
                .iter()
                .find(|n| n.kind != Kind::Ipv4Options);
            match h.kind {
                Kind::Ipv4 => self.ipv4_cases(&mut v, h, next),
                Kind::Ipv6 => self.ipv6_cases(&mut v, h),
                Kind::Tcp => self.tcp_cases(&mut v, h),
                Kind::Udp => self.udp_cases(&mut v, h),
                _ => {}
            }
        }
        v
    }

    fn edit(
        &self,
        v: &mut Vec<Case>,
        h: &Header,
        what: &str,
        fault: Fault,
        f: impl FnOnce(&mut Vec<u8>),
    ) {
        let mut p = self.packet.clone();
        f(&mut p);
        let inner = if h.inner { "inner " } else { "" };
        v.push(self.case(format!("{inner}{what}"), p, fault, *h));
    }

    fn ipv4_cases(&self, v: &mut Vec<Case>, h: &Header, next: Option<&Header>) {
        let s = h.start;
        let left = self.packet.len() - s;
        let ihl = ((self.packet[s] & 0x0f) as usize) * 4;
        let set = |p: &mut Vec<u8>, at: usize, val: u16| {
            put16(p, s + at, val);
            ip_csum(p, s);
        };
        let version = if h.inner { 7 } else { 6 };
        self.edit(
            v,
            h,
            &format!("version {version}"),
            Fault::BadVersion,
            |p| {
                p[s] = (version << 4) | (p[s] & 0x0f);
                ip_csum(p, s);
            },
        );
        for words in [0u8, 4] {
            self.edit(v, h, &format!("ihl {words}"), Fault::IhlBelow5, |p| {
                p[s] = 0x40 | words;
                ip_csum(p, s);
            });
        }
        // IHL 15 with fewer than 60 bytes left (cut, lengths fixed, when
        // the packet has more).
        let cut = (left >= 60).then(|| self.cut_consistent(s + 56));
        self.edit(v, h, "ihl 15 past the end", Fault::IhlPastEnd, |p| {
            if let Some(c) = cut {
                *p = c;
            }
            p[s] = 0x4f;
            ip_csum(p, s);
        });
        for (what, val) in [("1 past the end", left + 1), ("65535", 0xffff)] {
            self.edit(
                v,
                h,
                &format!("total length {what}"),
                Fault::TotalPastEnd,
                |p| set(p, 2, val as u16),
            );
        }
        for val in [0, ihl - 1] {
            self.edit(
                v,
                h,
                &format!("total length {val}, below the header"),
                Fault::TotalBelowHeader,
                |p| set(p, 2, val as u16),
            );
        }
        if next.is_some_and(|n| matches!(n.kind, Kind::Tcp | Kind::Udp)) {
            self.edit(
                v,
                h,
                "total length to the ports only",
                Fault::L4PastTotal,
                |p| set(p, 2, (ihl + 4) as u16),
            );
        }
        for (what, frag, val) in [
            ("first fragment", Frag::First, 0x2000),
            ("middle fragment", Frag::Middle, 0x2000 | 185),
            ("last fragment", Frag::Last, 185),
        ] {
            self.edit(v, h, what, Fault::Fragment(frag), |p| set(p, 6, val));
        }
        self.edit(v, h, "DF set", Fault::DontFragment, |p| set(p, 6, 0x4000));
        if !h.inner {
            self.edit(v, h, "24 bytes of padding", Fault::Padded, |p| {
                p.extend_from_slice(&[0; 24])
            });
        }
    }

    fn ipv6_cases(&self, v: &mut Vec<Case>, h: &Header) {
        let s = h.start;
        let plen = self.packet.len() - s - 40;
        self.edit(v, h, "version 4", Fault::BadVersion, |p| {
            p[s] = 0x40 | (p[s] & 0x0f)
        });
        for (what, val) in [("1 past the end", plen + 1), ("65535", 0xffff)] {
            self.edit(
                v,
                h,
                &format!("payload length {what}"),
                Fault::TotalPastEnd,
                |p| put16(p, s + 4, val as u16),
            );
        }
        self.edit(v, h, "payload length 0", Fault::TotalBelowHeader, |p| {
            put16(p, s + 4, 0)
        });
        self.edit(
            v,
            h,
            "payload length to the ports only",
            Fault::L4PastTotal,
            |p| put16(p, s + 4, 4),
        );
        self.edit(v, h, "24 bytes of padding", Fault::Padded, |p| {
            p.extend_from_slice(&[0; 24])
        });
    }

    fn tcp_cases(&self, v: &mut Vec<Case>, h: &Header) {
        let s = h.start;
        for words in [0u8, 4] {
            self.edit(
                v,
                h,
                &format!("tcp data offset {words}"),
                Fault::TcpOffsetBelow5,
                |p| p[s + 12] = (words << 4) | (p[s + 12] & 0x0f),
            );
        }
        // Past the end by a word at most: the segment is cut (lengths
        // fixed) when it has 60 bytes or more.
        let left = self.packet.len() - s;
        let (cut, words) = if left >= 60 {
            (Some(self.cut_consistent(s + 40)), 11)
        } else {
            (None, left / 4 + 1)
        };
        self.edit(
            v,
            h,
            &format!("tcp data offset {words} past the end"),
            Fault::TcpOffsetPastEnd,
            |p| {
                if let Some(c) = cut {
                    *p = c;
                }
                p[s + 12] = ((words as u8) << 4) | (p[s + 12] & 0x0f);
            },
        );
    }

    fn udp_cases(&self, v: &mut Vec<Case>, h: &Header) {
        let s = h.start;
        let left = self.packet.len() - s;
        for (what, fault, val) in [
            ("0", Fault::UdpLengthZero, 0),
            ("7", Fault::UdpLengthBelow8, 7),
            ("1 past the end", Fault::UdpLengthPastEnd, left + 1),
        ] {
            self.edit(v, h, &format!("udp length {what}"), fault, |p| {
                put16(p, s + 4, val as u16)
            });
        }
    }
}
