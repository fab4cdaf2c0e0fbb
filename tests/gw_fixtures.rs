//! The `gateway` program through BPF_PROG_TEST_RUN: both directions,
//! checksums verified by recomputation, service change, authorization,
//! pool exhaustion, ICMP error translation, malformed input and dry runs.

mod common;

use std::net::Ipv4Addr;

use dataplane_common::gateway::stat;
use dataplane_user::{verdict, Dataplane};
use testlab::fixtures::gateway::{self as fx, GW_ADDR};

const TERM: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const TERM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x22];
const UP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x33];

fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 7, 1000)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(TERM_MAC, UP_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
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

/// Every checksum of an Ethernet/IPv4/{TCP,UDP,ICMP} frame, recomputed.
fn checksums_ok(p: &[u8]) -> bool {
    let ihl = ((p[14] & 0x0f) as usize) * 4;
    let ip = &p[14..14 + ihl];
    if fold(sum16(ip)) != 0xffff {
        return false;
    }
    let total = u16::from_be_bytes([p[16], p[17]]) as usize;
    let l4 = &p[14 + ihl..14 + total];
    match p[23] {
        1 => fold(sum16(l4)) == 0xffff,
        proto => {
            if proto == 17 && l4[6] == 0 && l4[7] == 0 {
                return true;
            }
            let pseudo = sum16(&ip[12..20]) + proto as u32 + l4.len() as u32;
            fold(pseudo + sum16(l4)) == 0xffff
        }
    }
}

struct View<'a>(&'a [u8]);
impl View<'_> {
    fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[26], self.0[27], self.0[28], self.0[29])
    }
    fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[30], self.0[31], self.0[32], self.0[33])
    }
    fn sport(&self) -> u16 {
        u16::from_be_bytes([self.0[34], self.0[35]])
    }
    fn dport(&self) -> u16 {
        u16::from_be_bytes([self.0[36], self.0[37]])
    }
    fn ttl(&self) -> u8 {
        self.0[22]
    }
}

/// Run and check that `reason` moved by one.
fn run(dp: &mut Dataplane, name: &str, pkt: &[u8], want: u32, reason: u32) -> Vec<u8> {
    let before = dp.gw_stats().unwrap();
    let r = dp
        .test_run("gateway", pkt)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let after = dp.gw_stats().unwrap();
    assert_eq!(
        verdict::name(r.verdict),
        verdict::name(want),
        "{name}: verdict"
    );
    assert_eq!(
        common::moved(&before, &after, reason),
        1,
        "{name}: counter {} (moved: {:?})",
        stat::NAMES[reason as usize],
        (0..stat::COUNT)
            .filter(|&i| common::moved(&before, &after, i) > 0)
            .map(|i| stat::NAMES[i as usize])
            .collect::<Vec<_>>()
    );
    if want == verdict::PASS {
        assert_eq!(r.output, pkt, "{name}: a passed packet is untouched");
    }
    r.output
}

fn server_of(out: &[u8]) -> usize {
    let v = View(out);
    fx::SERVERS
        .iter()
        .position(|(_, a, p)| *a == v.dst() && *p == v.dport())
        .expect("a configured server")
}

#[test]
fn gateway_fixture_table() {
    if !common::kernel_available("gateway_fixture_table") {
        return;
    }
    std::thread::spawn(|| {
        common::private_netns();
        let mut dp = Dataplane::load_private().expect("load");
        fx::install(&mut dp, 1, (40000, 40029)).expect("install");

        // New TCP session: src = gateway:port, dst = a web server, TTL - 1.
        let syn = tcp(TERM, 33000, fx::WEB, 80, b"GET /");
        let out = run(&mut dp, "forward new", &syn, verdict::TX, stat::NEW_SESSION);
        let v = View(&out);
        assert_eq!(v.src(), GW_ADDR);
        let port = v.sport();
        assert!((40000..=40029).contains(&port));
        let srv = server_of(&out);
        assert_eq!(fx::SERVERS[srv].0, 0, "a server of the web group");
        assert_eq!(v.ttl(), 63);
        assert!(checksums_ok(&out), "forward checksums");
        assert_eq!(&out[0..6], &fx::server_mac(srv));
        assert_eq!(&out[6..12], &fx::EGRESS_MAC);
        assert_eq!(&out[54..], b"GET /", "payload untouched");
        let s = dp.session(port).unwrap();
        let c = dp.session_counters(port).unwrap();
        assert_eq!(
            (s.active, c.pkts_up, c.bytes_up),
            (true, 1, syn.len() as u64)
        );
        assert_eq!(
            (s.terminal, s.representative),
            (
                std::net::SocketAddrV4::new(TERM, 33000).into(),
                std::net::SocketAddrV4::new(fx::WEB, 80).into()
            )
        );

        // Same flow again: same port, same server.
        let out2 = run(
            &mut dp,
            "forward established",
            &syn,
            verdict::TX,
            stat::FORWARD,
        );
        assert_eq!((View(&out2).sport(), server_of(&out2)), (port, srv));
        assert_eq!(dp.session_counters(port).unwrap().pkts_up, 2);

        // Reply from the server to gateway:port → representative → terminal.
        let (_, saddr, sport) = fx::SERVERS[srv];
        let reply = tcp(saddr, sport, GW_ADDR, port, b"200 OK");
        let back = run(&mut dp, "reverse", &reply, verdict::TX, stat::REVERSE);
        let b = View(&back);
        assert_eq!(
            (b.src(), b.sport(), b.dst(), b.dport()),
            (fx::WEB, 80, TERM, 33000)
        );
        assert!(checksums_ok(&back), "reverse checksums");
        assert_eq!(
            &back[0..6],
            &TERM_MAC,
            "back to the neighbour the session came from"
        );
        assert_eq!(&back[6..12], &UP_MAC);
        assert_eq!(dp.session_counters(port).unwrap().pkts_down, 1);

        // A reply from another address to the same port is refused.
        let spoof = tcp(Ipv4Addr::new(10, 2, 0, 99), sport, GW_ADDR, port, b"x");
        run(
            &mut dp,
            "reverse spoofed",
            &spoof,
            verdict::DROP,
            stat::REVERSE_SPOOFED,
        );
        // A port with no session goes to the kernel.
        let stray = tcp(saddr, sport, GW_ADDR, 40029, b"x");
        run(
            &mut dp,
            "reverse no session",
            &stray,
            verdict::PASS,
            stat::NO_SESSION,
        );

        // Claim 4: the terminal addresses another service in the same
        // user session: same port, a server of the new group.
        let change = tcp(TERM, 33000, fx::WEB2, 80, b"GET /b");
        let out3 = run(
            &mut dp,
            "service change",
            &change,
            verdict::TX,
            stat::SERVICE_CHANGE,
        );
        assert_eq!(View(&out3).sport(), port, "the session keeps its port");
        let srv3 = server_of(&out3);
        assert_eq!(fx::SERVERS[srv3].0, 3);
        assert!(checksums_ok(&out3));
        let (_, a3, p3) = fx::SERVERS[srv3];
        let back3 = run(
            &mut dp,
            "reverse after change",
            &tcp(a3, p3, GW_ADDR, port, b"ok"),
            verdict::TX,
            stat::REVERSE,
        );
        assert_eq!(View(&back3).src(), fx::WEB2);
        // The old server can no longer answer for this session.
        run(
            &mut dp,
            "old server after change",
            &reply,
            verdict::DROP,
            stat::REVERSE_SPOOFED,
        );

        // A group that admits everyone is marked open (no trie lookup);
        // taking 0.0.0.0/0 away unmarks it first, and the trie decides.
        assert!(dp.group_open(0).unwrap() && !dp.group_open(2).unwrap());
        dp.auth_remove(0, Ipv4Addr::UNSPECIFIED.into(), 0).unwrap();
        assert!(!dp.group_open(0).unwrap());
        run(
            &mut dp,
            "open group closed",
            &tcp(TERM, 33050, fx::WEB, 80, b""),
            verdict::DROP,
            stat::UNAUTHORIZED,
        );
        dp.auth_allow(0, Ipv4Addr::UNSPECIFIED.into(), 0).unwrap();
        assert!(dp.group_open(0).unwrap());

        // Claim 5: no right to the restricted group.
        let pool_before = dp.flows().unwrap().len();
        run(
            &mut dp,
            "unauthorized",
            &tcp(TERM, 33001, fx::RESTRICTED, 80, b""),
            verdict::DROP,
            stat::UNAUTHORIZED,
        );
        assert_eq!(
            dp.flows().unwrap().len(),
            pool_before,
            "a refused terminal takes no port"
        );
        run(
            &mut dp,
            "authorized prefix",
            &tcp(Ipv4Addr::new(10, 9, 3, 4), 33001, fx::RESTRICTED, 80, b""),
            verdict::TX,
            stat::NEW_SESSION,
        );

        // UDP: a new session; an ICMP port unreachable from the server about
        // it is translated back to the terminal's view.
        let q = udp(TERM, 5000, fx::DNS, 53, b"query");
        let fwd = run(&mut dp, "udp forward", &q, verdict::TX, stat::NEW_SESSION);
        assert!(checksums_ok(&fwd));
        let uport = View(&fwd).sport();
        let quote = &fwd[14..];
        let icmp = {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0x5e, 2], fx::EGRESS_MAC)
                .ipv4([10, 2, 0, 21], GW_ADDR.octets(), 64)
                .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::Port,
                ));
            let mut v = Vec::new();
            b.write(&mut v, quote).unwrap();
            v
        };
        let ie = run(
            &mut dp,
            "icmp error",
            &icmp,
            verdict::TX,
            stat::ICMP_REVERSE,
        );
        let e = View(&ie);
        assert_eq!((e.src(), e.dst()), (fx::DNS, TERM));
        assert!(checksums_ok(&ie), "outer and ICMP checksums");
        let inner = &ie[14 + 20 + 8..];
        assert_eq!(&inner[12..16], &TERM.octets());
        assert_eq!(&inner[16..20], &fx::DNS.octets());
        assert_eq!(u16::from_be_bytes([inner[20], inner[21]]), 5000);
        assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), 53);
        let mut quoted = vec![0u8; 14];
        quoted.extend_from_slice(inner);
        assert!(checksums_ok(&quoted), "quoted IP and UDP checksums");
        let _ = uport;

        // Claim 9: the session type picks among the group's servers.
        let mut ef = udp(TERM, 5100, fx::DNS, 53, b"rtp");
        ef[15] = 46 << 2;
        let fix = |p: &mut Vec<u8>| {
            p[24] = 0;
            p[25] = 0;
            let c = !fold(sum16(&p[14..34]));
            p[24..26].copy_from_slice(&c.to_be_bytes());
        };
        fix(&mut ef);
        let o = run(
            &mut dp,
            "voice session type",
            &ef,
            verdict::TX,
            stat::NEW_SESSION,
        );
        assert_eq!(
            server_of(&o),
            fx::VOICE_SERVER,
            "type 1 goes to the voice server"
        );
        assert_eq!(dp.session(View(&o).sport()).unwrap().session_type, 1);
        for sp in 5200..5210 {
            let o = run(
                &mut dp,
                "default session type",
                &udp(TERM, sp, fx::DNS, 53, b"q"),
                verdict::TX,
                stat::NEW_SESSION,
            );
            assert_ne!(
                server_of(&o),
                fx::VOICE_SERVER,
                "type 0 never reaches the voice server"
            );
        }

        // UDP without a checksum stays without one.
        let mut nocsum = udp(TERM, 5001, fx::DNS, 53, b"q");
        nocsum[40] = 0;
        nocsum[41] = 0;
        let o = run(
            &mut dp,
            "udp no checksum",
            &nocsum,
            verdict::TX,
            stat::NEW_SESSION,
        );
        assert_eq!((o[40], o[41]), (0, 0));

        // Dry run (lookups): decides, rewrites, changes nothing.
        let flows = dp.flows().unwrap().len();
        let r = dp.gw_dry_run(&tcp(TERM, 34000, fx::WEB, 80, b"")).unwrap();
        assert_eq!(r.verdict, verdict::TX);
        assert_eq!(View(&r.output).sport(), 0, "no port taken by a dry run");
        assert_eq!(fx::SERVERS[server_of(&r.output)].0, 0);
        assert_eq!(dp.flows().unwrap().len(), flows);
        let r = dp.gw_dry_run(&syn).unwrap();
        assert_eq!(
            View(&r.output).sport(),
            port,
            "a dry run shows an existing session's port"
        );
        assert_eq!(
            dp.session_counters(port).unwrap().pkts_up,
            3,
            "and does not count"
        );

        // Malformed and not ours: passed, counted, untouched.
        let mut short = tcp(TERM, 33000, fx::WEB, 80, b"");
        short.truncate(14 + 20 + 10);
        short[17] = 30;
        run(
            &mut dp,
            "truncated tcp",
            &short,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut frag = udp(TERM, 5000, fx::DNS, 53, b"f");
        frag[20] = 0x20;
        run(&mut dp, "fragment", &frag, verdict::PASS, stat::FRAGMENT);
        // An IPv4 packet under the IPv6 ethertype is a bad IPv6 header.
        let mut v6 = udp(TERM, 5000, fx::DNS, 53, b"f");
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        run(
            &mut dp,
            "ipv6 ethertype",
            &v6,
            verdict::PASS,
            stat::MALFORMED,
        );
        let mut arp = udp(TERM, 5000, fx::DNS, 53, b"f");
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        run(&mut dp, "not ip", &arp, verdict::PASS, stat::NOT_IP);
        run(
            &mut dp,
            "not a service",
            &tcp(TERM, 1, Ipv4Addr::new(1, 1, 1, 1), 80, b""),
            verdict::PASS,
            stat::NOT_FOR_US,
        );
        let mut ttl1 = tcp(TERM, 33000, fx::WEB, 80, b"");
        ttl1[22] = 1;
        run(&mut dp, "ttl 1", &ttl1, verdict::PASS, stat::NOT_FOR_US);

        // Pool exhaustion: new sessions are refused, existing ones carry on.
        let mut taken = dp.flows().unwrap().len();
        let mut sport = 35000;
        while taken < 30 {
            run(
                &mut dp,
                "fill pool",
                &tcp(TERM, sport, fx::WEB, 80, b""),
                verdict::TX,
                stat::NEW_SESSION,
            );
            sport += 1;
            taken += 1;
        }
        run(
            &mut dp,
            "pool exhausted",
            &tcp(TERM, sport, fx::WEB, 80, b""),
            verdict::DROP,
            stat::POOL_EXHAUSTED,
        );
        let again = run(
            &mut dp,
            "existing after exhaustion",
            &syn,
            verdict::TX,
            stat::FORWARD,
        );
        assert_eq!(View(&again).sport(), port);
        let ports: std::collections::HashSet<u16> =
            dp.flows().unwrap().iter().map(|(_, p)| *p).collect();
        assert_eq!(ports.len(), 30, "thirty sessions, thirty distinct ports");
    })
    .join()
    .unwrap();
}
