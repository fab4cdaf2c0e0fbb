//! The gateway's IPv6 path (`gateway6`, issue 13) through
//! BPF_PROG_TEST_RUN: user sessions with a port from the shared pool,
//! reverse translation, service change, authorization, session types,
//! ICMPv6 errors translated back, checksums recomputed over the IPv6
//! pseudo-header, and malformed IPv6 passed and counted, never
//! translated.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use dataplane_common::gateway::stat;
use dataplane_user::{gateway::TypeRuleEntry, verdict, Dataplane};
use testlab::fixtures::gateway::{self as fx, GW_ADDR6};

const TERM: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const TERM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x22];
const UP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x33];
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x5e, 0x40];

fn tcp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 7, 1000)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn sum16(d: &[u8]) -> u32 {
    d.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The upper-layer header of an IPv6 packet at `ip`: (next header, offset)
/// after any extension headers.
fn upper(p: &[u8], ip: usize) -> (u8, usize) {
    let (mut next, mut at) = (p[ip + 6], ip + 40);
    while matches!(next, 0 | 43 | 60) {
        next = p[at];
        at += (p[at + 1] as usize + 1) * 8;
    }
    (next, at)
}

/// The checksum of the TCP, UDP or ICMPv6 message of the IPv6 packet at
/// `ip` (to the end of `p`), recomputed over the pseudo-header.
fn l4_checksum_ok(p: &[u8], ip: usize) -> bool {
    let (proto, at) = upper(p, ip);
    let end = ip + 40 + u16::from_be_bytes([p[ip + 4], p[ip + 5]]) as usize;
    let l4 = &p[at..end.min(p.len())];
    let pseudo = sum16(&p[ip + 8..ip + 40]) + proto as u32 + l4.len() as u32;
    fold(pseudo + sum16(l4)) == 0xffff
}

struct View<'a>(&'a [u8]);
impl View<'_> {
    fn addr(&self, at: usize) -> Ipv6Addr {
        let b: [u8; 16] = self.0[at..at + 16].try_into().unwrap();
        Ipv6Addr::from(b)
    }
    fn src(&self) -> Ipv6Addr {
        self.addr(22)
    }
    fn dst(&self) -> Ipv6Addr {
        self.addr(38)
    }
    fn port(&self, i: usize) -> u16 {
        let (_, at) = upper(self.0, 14);
        u16::from_be_bytes([self.0[at + i], self.0[at + i + 1]])
    }
    fn sport(&self) -> u16 {
        self.port(0)
    }
    fn dport(&self) -> u16 {
        self.port(2)
    }
    fn hop_limit(&self) -> u8 {
        self.0[21]
    }
}

fn run(dp: &mut Dataplane, name: &str, pkt: &[u8], want: u32, reason: u32) -> Vec<u8> {
    let out = common::gateway_run(dp, name, pkt, want, &[reason]);
    if want == verdict::PASS {
        assert_eq!(out, pkt, "{name}: a passed packet is untouched");
    }
    out
}

/// The IPv6 server a translated frame goes to (index into `SERVERS6`).
fn server_of(out: &[u8]) -> usize {
    let v = View(out);
    fx::SERVERS6
        .iter()
        .position(|(_, a, p)| *a == v.dst() && *p == v.dport())
        .expect("a configured IPv6 server")
}

/// Extension headers: hop-by-hop (PadN), then a routing header with no
/// segment left, then the upper layer.
fn with_extensions(mut f: Vec<u8>) -> Vec<u8> {
    let upper = f[20];
    let exts = [
        [43, 0, 1, 4, 0, 0, 0, 0],    // hop-by-hop: PadN, next routing
        [upper, 0, 0, 0, 0, 0, 0, 0], // routing: type 0 with 0 segments left
    ];
    f[20] = 0;
    let plen = u16::from_be_bytes([f[18], f[19]]) + 16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    let tail = f.split_off(54);
    f.extend(exts.iter().flatten());
    f.extend(tail);
    f
}

#[test]
fn gateway_ipv6_fixture_table() {
    if !common::kernel_available("gateway_ipv6_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install(&mut dp, 1, (40000, 40029)).expect("install");

        // New TCP session: src = [gateway]:port, dst = a web6 server,
        // hop limit - 1, the TCP checksum right over the new pseudo-header.
        let syn = tcp(TERM, 33000, fx::WEB6, 80, b"GET /");
        let out = run(&mut dp, "forward new", &syn, verdict::TX, stat::NEW_SESSION);
        let v = View(&out);
        assert_eq!(v.src(), GW_ADDR6);
        let port = v.sport();
        assert!((40000..=40029).contains(&port));
        let srv = server_of(&out);
        assert_eq!(fx::SERVERS6[srv].0, 4, "a server of the web6 group");
        assert_eq!(v.hop_limit(), 63);
        assert!(l4_checksum_ok(&out, 14), "forward TCP checksum");
        assert_eq!(&out[0..6], &fx::server_mac(fx::SERVERS6_AT + srv));
        assert_eq!(&out[6..12], &fx::EGRESS_MAC);
        assert_eq!(&out[out.len() - 5..], b"GET /", "payload untouched");
        let s = dp.session(port).unwrap();
        let c = dp.session_counters(port).unwrap();
        assert_eq!(
            (s.active, c.pkts_up, c.bytes_up),
            (true, 1, syn.len() as u64)
        );
        assert_eq!(
            (s.terminal, s.representative),
            (
                SocketAddr::new(TERM.into(), 33000),
                SocketAddr::new(fx::WEB6.into(), 80)
            )
        );
        assert!(dp
            .flows()
            .unwrap()
            .iter()
            .any(|(f, p)| *p == port && f.addr == IpAddr::from(TERM) && f.port == 33000));

        let out2 = run(
            &mut dp,
            "forward established",
            &syn,
            verdict::TX,
            stat::FORWARD,
        );
        assert_eq!((View(&out2).sport(), server_of(&out2)), (port, srv));
        assert_eq!(dp.session_counters(port).unwrap().pkts_up, 2);

        // The server's reply: representative → terminal.
        let (_, saddr, sport) = fx::SERVERS6[srv];
        let reply = tcp(saddr, sport, GW_ADDR6, port, b"200 OK");
        let back = run(&mut dp, "reverse", &reply, verdict::TX, stat::REVERSE);
        let b = View(&back);
        assert_eq!(
            (b.src(), b.sport(), b.dst(), b.dport()),
            (fx::WEB6, 80, TERM, 33000)
        );
        assert!(l4_checksum_ok(&back, 14), "reverse TCP checksum");
        assert_eq!(
            &back[0..6],
            &TERM_MAC,
            "back to where the session came from"
        );
        assert_eq!(&back[6..12], &UP_MAC);
        assert_eq!(dp.session_counters(port).unwrap().pkts_down, 1);

        let spoof = tcp(
            "2001:db8:2::99".parse().unwrap(),
            sport,
            GW_ADDR6,
            port,
            b"x",
        );
        run(
            &mut dp,
            "reverse spoofed",
            &spoof,
            verdict::DROP,
            stat::REVERSE_SPOOFED,
        );
        run(
            &mut dp,
            "reverse no session",
            &tcp(saddr, sport, GW_ADDR6, 40029, b"x"),
            verdict::PASS,
            stat::NO_SESSION,
        );
        // An IPv4 packet to the IPv6 session's port finds no IPv4 session.
        let v4 = {
            let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
                .ipv4([10, 2, 0, 11], fx::GW_ADDR.octets(), 64)
                .tcp(8080, port, 7, 1000);
            let mut v = Vec::new();
            b.write(&mut v, b"x").unwrap();
            v
        };
        run(
            &mut dp,
            "ipv4 on an ipv6 port",
            &v4,
            verdict::PASS,
            stat::NO_SESSION,
        );

        // Claim 4 over IPv6: another service, same port, its group's server.
        let change = tcp(TERM, 33000, fx::WEB6B, 80, b"GET /b");
        let out3 = run(
            &mut dp,
            "service change",
            &change,
            verdict::TX,
            stat::SERVICE_CHANGE,
        );
        assert_eq!(View(&out3).sport(), port, "the session keeps its port");
        let srv3 = server_of(&out3);
        assert_eq!(fx::SERVERS6[srv3].0, 7);
        assert!(l4_checksum_ok(&out3, 14));
        let (_, a3, p3) = fx::SERVERS6[srv3];
        let back3 = run(
            &mut dp,
            "reverse after change",
            &tcp(a3, p3, GW_ADDR6, port, b"ok"),
            verdict::TX,
            stat::REVERSE,
        );
        assert_eq!(View(&back3).src(), fx::WEB6B);
        assert_eq!(
            dp.session(port).unwrap().representative,
            SocketAddr::new(fx::WEB6B.into(), 80)
        );
        run(
            &mut dp,
            "old server after change",
            &reply,
            verdict::DROP,
            stat::REVERSE_SPOOFED,
        );

        // Claim 5: only ALLOWED6/48 may use restricted6.
        let flows = dp.flows().unwrap().len();
        run(
            &mut dp,
            "unauthorized",
            &tcp(TERM, 33001, fx::RESTRICTED6, 80, b""),
            verdict::DROP,
            stat::UNAUTHORIZED,
        );
        assert_eq!(
            dp.flows().unwrap().len(),
            flows,
            "no port for a refused terminal"
        );
        let allowed: Ipv6Addr = "2001:db8:9:ff::5".parse().unwrap();
        run(
            &mut dp,
            "authorized prefix",
            &tcp(allowed, 33001, fx::RESTRICTED6, 80, b""),
            verdict::TX,
            stat::NEW_SESSION,
        );

        // UDP, and an ICMPv6 port unreachable about it from the server:
        // the terminal sees its own flow quoted, from the representative.
        let q = udp(TERM, 5000, fx::DNS6, 53, b"query");
        let fwd = run(&mut dp, "udp forward", &q, verdict::TX, stat::NEW_SESSION);
        assert!(l4_checksum_ok(&fwd, 14), "UDP checksum");
        let (_, dns_addr, _) = fx::SERVERS6[server_of(&fwd)];
        for (name, icmp_type) in [
            (
                "icmpv6 port unreachable",
                etherparse::Icmpv6Type::DestinationUnreachable(
                    etherparse::icmpv6::DestUnreachableCode::Port,
                ),
            ),
            (
                "icmpv6 packet too big",
                etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 },
            ),
        ] {
            let icmp = {
                let b = etherparse::PacketBuilder::ethernet2(SERVER_MAC, fx::EGRESS_MAC)
                    .ipv6(dns_addr.octets(), GW_ADDR6.octets(), 64)
                    .icmpv6(icmp_type);
                let mut v = Vec::new();
                b.write(&mut v, &fwd[14..]).unwrap();
                v
            };
            let ie = run(&mut dp, name, &icmp, verdict::TX, stat::ICMP_REVERSE);
            let e = View(&ie);
            assert_eq!((e.src(), e.dst()), (fx::DNS6, TERM), "{name}");
            assert!(l4_checksum_ok(&ie, 14), "{name}: ICMPv6 checksum");
            let quoted = View(&ie[14 + 40 + 8 - 14..]);
            assert_eq!(
                (quoted.src(), quoted.dst(), quoted.sport(), quoted.dport()),
                (TERM, fx::DNS6, 5000, 53),
                "{name}: the quote"
            );
            assert!(
                l4_checksum_ok(&ie, 14 + 40 + 8),
                "{name}: quoted UDP checksum"
            );
            assert_eq!(&ie[0..6], &TERM_MAC);
        }
        // An ICMPv6 error quoting a flow of no session is the kernel's.
        let mut stray = fwd[14..].to_vec();
        stray[40..42].copy_from_slice(&40029u16.to_be_bytes());
        let icmp = {
            let b = etherparse::PacketBuilder::ethernet2(SERVER_MAC, fx::EGRESS_MAC)
                .ipv6(dns_addr.octets(), GW_ADDR6.octets(), 64)
                .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                    etherparse::icmpv6::DestUnreachableCode::Port,
                ));
            let mut v = Vec::new();
            b.write(&mut v, &stray).unwrap();
            v
        };
        run(
            &mut dp,
            "icmpv6 no session",
            &icmp,
            verdict::PASS,
            stat::NO_SESSION,
        );

        // Claim 9: DSCP EF makes type 1 (a rule without a prefix matches
        // both families); an IPv6 prefix rule matches its prefix only, an
        // IPv4 prefix never an IPv6 terminal.
        let mut ef = udp(TERM, 5100, fx::DNS6, 53, b"rtp");
        // Traffic class 46 << 2 = 0xb8: version 6, TC in the next 8 bits.
        ef[14] = 0x60 | (0xb8 >> 4);
        ef[15] = (0xb8 & 0x0f) << 4;
        let o = run(&mut dp, "ef session", &ef, verdict::TX, stat::NEW_SESSION);
        assert_eq!(dp.session(View(&o).sport()).unwrap().session_type, 1);
        dp.set_type_rules(&[
            TypeRuleEntry {
                proto: 6,
                dscp: None,
                session_type: 3,
                terminals: "10.0.0.0".parse().unwrap(),
                terminals_len: 8,
            },
            TypeRuleEntry {
                proto: 6,
                dscp: None,
                session_type: 2,
                terminals: "2001:db8:9::".parse().unwrap(),
                terminals_len: 48,
            },
        ])
        .unwrap();
        let o = run(
            &mut dp,
            "prefix rule",
            &tcp(allowed, 33002, fx::WEB6, 80, b""),
            verdict::TX,
            stat::NEW_SESSION,
        );
        assert_eq!(dp.session(View(&o).sport()).unwrap().session_type, 2);
        let o = run(
            &mut dp,
            "outside the prefix",
            &tcp(TERM, 33003, fx::WEB6, 80, b""),
            verdict::TX,
            stat::NEW_SESSION,
        );
        assert_eq!(dp.session(View(&o).sport()).unwrap().session_type, 0);

        // Extension headers are walked and left as they are.
        let ext = with_extensions(tcp(TERM, 33004, fx::WEB6, 80, b"ext"));
        let o = run(
            &mut dp,
            "extension headers",
            &ext,
            verdict::TX,
            stat::NEW_SESSION,
        );
        assert_eq!(View(&o).src(), GW_ADDR6);
        assert_eq!(&o[54..70], &ext[54..70], "the extension headers untouched");
        assert!(
            l4_checksum_ok(&o, 14),
            "checksum past the extension headers"
        );

        // Dry run: decides, rewrites, takes no port.
        let flows = dp.flows().unwrap().len();
        let r = dp.gw_dry_run(&tcp(TERM, 34000, fx::WEB6, 80, b"")).unwrap();
        assert_eq!(r.verdict, verdict::TX);
        assert_eq!(View(&r.output).sport(), 0, "no port taken by a dry run");
        assert_eq!(fx::SERVERS6[server_of(&r.output)].0, 4);
        assert_eq!(dp.flows().unwrap().len(), flows);

        // Malformed, fragments and not ours: passed, counted, untouched.
        let mut nocsum = udp(TERM, 5001, fx::DNS6, 53, b"q");
        nocsum[60..62].copy_from_slice(&[0, 0]);
        run(
            &mut dp,
            "udp without checksum",
            &nocsum,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut short = tcp(TERM, 33000, fx::WEB6, 80, b"");
        short.truncate(14 + 30);
        run(
            &mut dp,
            "truncated header",
            &short,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut long = tcp(TERM, 33000, fx::WEB6, 80, b"");
        long[18..20].copy_from_slice(&200u16.to_be_bytes());
        run(
            &mut dp,
            "payload length past the frame",
            &long,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut cut = tcp(TERM, 33000, fx::WEB6, 80, b"");
        cut[18..20].copy_from_slice(&10u16.to_be_bytes());
        run(
            &mut dp,
            "tcp header past the payload",
            &cut,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut ver = tcp(TERM, 33000, fx::WEB6, 80, b"");
        ver[14] = 0x40;
        run(&mut dp, "bad version", &ver, verdict::PASS, stat::MALFORMED);
        let mut chain = with_extensions(tcp(TERM, 33005, fx::WEB6, 80, b""));
        chain[63] = 200; // the routing header's length runs past the packet
        run(
            &mut dp,
            "extension past the packet",
            &chain,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut deep = udp(TERM, 5002, fx::DNS6, 53, b"q");
        let upper6 = deep[20];
        deep[20] = 60;
        let n = dataplane_common::IPV6_MAX_EXT + 1;
        let mut opts = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { upper6 } else { 60 };
            opts.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        let tail = deep.split_off(54);
        deep.extend(opts);
        deep.extend(tail);
        let plen = (deep.len() - 54) as u16;
        deep[18..20].copy_from_slice(&plen.to_be_bytes());
        run(
            &mut dp,
            "past the extension bound",
            &deep,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut frag = udp(TERM, 5003, fx::DNS6, 53, b"fragment");
        let upper_f = frag[20];
        frag[20] = 44;
        let tail = frag.split_off(54);
        frag.extend_from_slice(&[upper_f, 0, 0, 1, 0, 0, 0, 7]);
        frag.extend(tail);
        let plen = (frag.len() - 54) as u16;
        frag[18..20].copy_from_slice(&plen.to_be_bytes());
        run(&mut dp, "fragment", &frag, verdict::PASS, stat::FRAGMENT);
        let mut hop1 = tcp(TERM, 33000, fx::WEB6, 80, b"");
        hop1[21] = 1;
        run(
            &mut dp,
            "hop limit 1",
            &hop1,
            verdict::PASS,
            stat::NOT_FOR_US,
        );
        run(
            &mut dp,
            "not a service",
            &tcp(TERM, 1, "2001:db8:77::1".parse().unwrap(), 80, b""),
            verdict::PASS,
            stat::NOT_FOR_US,
        );
        let echo = {
            let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
                .ipv6(TERM.octets(), GW_ADDR6.octets(), 64)
                .icmpv6_echo_request(1, 1);
            let mut v = Vec::new();
            b.write(&mut v, b"ping").unwrap();
            v
        };
        run(
            &mut dp,
            "echo to the gateway",
            &echo,
            verdict::PASS,
            stat::NOT_FOR_US,
        );

        // One pool for both families: IPv4 and IPv6 sessions never share
        // a port.
        let v4 = {
            let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
                .ipv4([10, 0, 0, 2], fx::WEB.octets(), 64)
                .tcp(33000, 80, 7, 1000);
            let mut v = Vec::new();
            b.write(&mut v, b"").unwrap();
            v
        };
        run(
            &mut dp,
            "an ipv4 session beside",
            &v4,
            verdict::TX,
            stat::NEW_SESSION,
        );
        let all = dp.flows().unwrap();
        let ports: std::collections::HashSet<u16> = all.iter().map(|(_, p)| *p).collect();
        assert_eq!(
            ports.len(),
            all.len(),
            "one port per session, both families"
        );
        assert!(
            all.iter().any(|(f, _)| f.addr.is_ipv4()) && all.iter().any(|(f, _)| f.addr.is_ipv6())
        );

        // Without an IPv6 address the gateway passes IPv6.
        let mut s = dp.gw_config().unwrap();
        s.address6 = None;
        dp.set_gw_config(&s).unwrap();
        run(&mut dp, "no address6", &syn, verdict::PASS, stat::NOT_IP);
    })
    .join()
    .unwrap();
}
