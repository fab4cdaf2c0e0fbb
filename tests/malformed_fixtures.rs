//! Every XDP program's malformed packets (issue 15), through
//! BPF_PROG_TEST_RUN: the lb, the gateway, the router's filter, the
//! sip-monitor's copy and the migration's steering each run the cases
//! `testlab::malformed` builds from their well-formed header stacks
//! (truncation at every byte, VLAN tags, IPv4 options, bad version, IHL
//! and total length, fragments, TCP data offset, UDP length). A malformed
//! case must get the verdict the program's design gives it, move exactly
//! its reason counter and its verdict counter (nothing transmitted or
//! redirected), and come out byte for byte as it went in (no copy made,
//! for the sip-monitor). A case the program need not refuse (a fragment
//! for the router, a TCP header for the steering, which never read it,
//! Ethernet padding for all) must be taken as the frame it came from is.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane_common::{verdict, Counter};
use dataplane_user::Dataplane;
use edgeplane::packets;
use testlab::fixtures::{self, gateway as gw, with_vlans};
use testlab::malformed::{Case, Fault, Kind, Stack, CATEGORIES};

/// What a program must do with a case.
enum Want {
    /// This verdict, exactly these reasons moved (by one), the bytes
    /// untouched.
    Reject(u32, Vec<u32>),
    /// The verdict and reasons of the well-formed frame.
    AsBase,
}

fn reject(verdict: u32, reason: u32) -> Want {
    Want::Reject(verdict, vec![reason])
}

/// A program under test: its name, its counters.
struct Prog {
    name: &'static str,
    program: &'static str,
    stats: fn(&Dataplane) -> Vec<Counter>,
    names: &'static [&'static str],
    verdicts: u32,
    /// Copies the program made of the last packet (the sip-monitor's ring).
    copies: fn(&mut Dataplane) -> usize,
    /// A TC classifier (the sip-monitor's egress companion): run as an
    /// skb, TC_ACT_OK taken for a pass.
    tc: bool,
}

/// The program on `pkt`; `None` when the skb harness refuses an IP frame
/// cut inside its fixed header (EINVAL: no host sends one).
fn test_run(
    dp: &mut Dataplane,
    p: &Prog,
    pkt: &[u8],
) -> Option<dataplane_user::testrun::RunResult> {
    if !p.tc {
        return Some(
            dp.test_run(p.program, pkt)
                .unwrap_or_else(|e| panic!("{}: test_run: {e}", p.name)),
        );
    }
    let fixed = match pkt.get(12..14) {
        Some([0x08, 0x00]) => 20,
        Some([0x86, 0xdd]) => 40,
        _ => 0,
    };
    match dp.test_run_classifier(p.program, pkt) {
        Ok(mut r) => {
            assert_eq!(r.verdict, 0, "{}: TC_ACT_OK, every packet leaves", p.name);
            r.verdict = verdict::PASS;
            Some(r)
        }
        Err(_) if pkt.len() < 14 + fixed => None,
        Err(e) => panic!("{}: test_run: {e}", p.name),
    }
}

fn no_copies(_: &mut Dataplane) -> usize {
    0
}

/// What one run did.
struct Outcome {
    verdict: u32,
    output: Vec<u8>,
    verdicts: BTreeMap<u32, u64>,
    reasons: BTreeMap<u32, u64>,
    copies: usize,
}

impl Outcome {
    fn describe(&self, p: &Prog) -> String {
        let names = |m: &BTreeMap<u32, u64>| {
            m.iter()
                .map(|(i, n)| format!("{}x{n}", p.names[*i as usize]))
                .collect::<Vec<_>>()
        };
        format!(
            "verdict {}, counters {:?} {:?}, {} copies",
            verdict::name(self.verdict),
            names(&self.verdicts),
            names(&self.reasons),
            self.copies
        )
    }
}

fn run(dp: &mut Dataplane, p: &Prog, pkt: &[u8]) -> Option<Outcome> {
    let before = (p.stats)(dp);
    let r = test_run(dp, p, pkt)?;
    let after = (p.stats)(dp);
    let (mut verdicts, mut reasons) = (BTreeMap::new(), BTreeMap::new());
    for i in 0..after.len() as u32 {
        let n = after[i as usize].packets - before[i as usize].packets;
        if n > 0 {
            if i < p.verdicts {
                &mut verdicts
            } else {
                &mut reasons
            }
            .insert(i, n);
        }
    }
    Some(Outcome {
        verdict: r.verdict,
        output: r.output,
        verdicts,
        reasons,
        copies: (p.copies)(dp),
    })
}

/// Per program: malformed cases asserted, well-formed edges asserted,
/// the categories of each.
#[derive(Default)]
struct Tally {
    rejected: usize,
    /// Cases the kernel's skb harness refused to run (not counted).
    refused_by_harness: usize,
    taken: usize,
    categories: BTreeMap<&'static str, usize>,
    taken_categories: BTreeSet<&'static str>,
}

/// Run the well-formed frame of `stack` twice (the second run is the
/// reference: a gateway session exists by then), check it against
/// `base` (its verdict among these, exactly these reasons), then every
/// case against `want`.
fn run_stack(
    dp: &mut Dataplane,
    p: &Prog,
    stack: &Stack,
    base: (&[u32], &[u32]),
    want: impl Fn(&Case) -> Want,
    tally: &mut Tally,
) {
    for len in 0..14 {
        let pkt = &stack.packet[..len];
        let r = if p.tc {
            dp.test_run_classifier(p.program, pkt)
        } else {
            dp.test_run(p.program, pkt)
        };
        assert!(
            r.is_err(),
            "{}: the kernel takes no frame shorter than Ethernet",
            p.name
        );
    }
    run(dp, p, &stack.packet);
    let b = run(dp, p, &stack.packet).expect("a whole frame");
    let base_reasons: BTreeMap<u32, u64> = base.1.iter().map(|&r| (r, 1)).collect();
    assert!(
        base.0.contains(&b.verdict) && b.reasons == base_reasons,
        "{} {}: the well-formed frame: {}",
        p.name,
        stack.name,
        b.describe(p)
    );
    for c in stack.cases() {
        let name = format!("{} {}", p.name, c.name);
        let Some(o) = run(dp, p, &c.packet) else {
            tally.refused_by_harness += 1;
            continue;
        };
        match want(&c) {
            Want::Reject(v, reasons) => {
                assert!(!c.fault.well_formed(), "{name}: well-formed, refused?");
                let want_reasons: BTreeMap<u32, u64> = reasons.iter().map(|&r| (r, 1)).collect();
                let want_verdicts = BTreeMap::from([(verdict::stat_index(v), 1)]);
                assert!(
                    o.verdict == v && o.verdicts == want_verdicts && o.reasons == want_reasons,
                    "{name}: want {} {:?}, got {}",
                    verdict::name(v),
                    reasons
                        .iter()
                        .map(|&r| p.names[r as usize])
                        .collect::<Vec<_>>(),
                    o.describe(p)
                );
                assert_eq!(o.output, c.packet, "{name}: bytes changed");
                assert_eq!(o.copies, 0, "{name}: copied");
                tally.rejected += 1;
                *tally.categories.entry(c.category()).or_default() += 1;
            }
            Want::AsBase => {
                assert!(
                    o.verdict == b.verdict && o.reasons == b.reasons && o.copies == b.copies,
                    "{name}: want as the frame ({}), got {}",
                    b.describe(p),
                    o.describe(p)
                );
                tally.taken += 1;
                tally.taken_categories.insert(c.category());
            }
        }
    }
}

// Verdicts by their own names: each program's `stat` has a `PASS`, a
// `DROP` and a `TX` of its own (counter indices).
const V_PASS: u32 = verdict::PASS;
const V_DROP: u32 = verdict::DROP;
const V_TX: u32 = verdict::TX;

fn cut(c: &Case) -> Option<(Kind, bool)> {
    match c.fault {
        Fault::Cut { consistent, .. } => Some((c.header.kind, consistent)),
        _ => None,
    }
}

/// The cut keeps this many bytes of the IP header's payload.
fn ip_payload_kept(c: &Case) -> usize {
    c.packet.len() - c.l3 - if c.v6 { 40 } else { 20 }
}

// ---- lb ----------------------------------------------------------------

const TERM: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVICE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const TERM6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 2);
/// Router Alert, three NOPs, end of options (IHL 7).
const OPTIONS: [u8; 8] = [0x94, 4, 0, 0, 1, 1, 1, 0];
const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKm1\r\n\
    Call-ID: m1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

fn options(pkt: Vec<u8>) -> Vec<u8> {
    testlab::malformed::with_ipv4_options(&pkt, 14, &OPTIONS)
}

/// The lb passes what it cannot classify, each under its reason: a cut
/// frame's total (payload) length claims more than it has; with the
/// lengths fixed the cut header is the reason.
fn lb_want(c: &Case) -> Want {
    use dataplane_common::lb::stat::*;
    let r = |reason| reject(V_PASS, reason);
    if let Some((kind, consistent)) = cut(c) {
        return match kind {
            Kind::Vlan => r(TRUNC_VLAN),
            Kind::Ipv4 | Kind::Ipv4Options => r(TRUNC_IPV4),
            Kind::Ipv6 => r(TRUNC_IPV6),
            _ if !consistent => r(if c.v6 { IPV6_BAD_LENGTH } else { TRUNC_IPV4 }),
            // Lengths fixed right after the IPv6 header: payload length 0.
            _ if c.v6 && ip_payload_kept(c) == 0 => r(IPV6_BAD_LENGTH),
            Kind::Gtpu if c.v6 => Want::Reject(V_PASS, vec![TRUNC_GTPU, IPV6]),
            Kind::Gtpu => r(TRUNC_GTPU),
            _ => r(TRUNC_L4),
        };
    }
    match c.fault {
        Fault::Padded | Fault::DontFragment => Want::AsBase,
        Fault::ThirdVlan => r(TOO_MANY_VLANS),
        Fault::BadVersion => r(BAD_IP_VERSION),
        Fault::IhlBelow5 => r(BAD_IHL),
        Fault::IhlPastEnd => r(TRUNC_IPV4),
        Fault::TotalPastEnd => r(if c.v6 { IPV6_BAD_LENGTH } else { TRUNC_IPV4 }),
        Fault::TotalBelowHeader => r(if c.v6 { IPV6_BAD_LENGTH } else { BAD_IHL }),
        Fault::Fragment(_) => r(FRAGMENT),
        // L4 past the total length, a bad data offset or UDP length.
        _ => r(TRUNC_L4),
    }
}

fn lb(tally: &mut Tally) {
    use dataplane_common::lb::stat;
    let redirect_if = dataplane_user::ifindex("fx0").unwrap();
    let mut dp = Dataplane::load_private().expect("load");
    fixtures::install(&mut dp, 1, Some(redirect_if)).expect("install");
    let p = Prog {
        name: "lb",
        program: "lb",
        stats: |dp| dp.lb_stats().unwrap(),
        names: &stat::NAMES,
        verdicts: stat::VERDICTS,
        copies: no_copies,
        tc: false,
    };
    let udp = packets::udp_packet(TERM, SERVICE, 40002, 53, b"q");
    let tcp = packets::tcp_packet(TERM, SERVICE, 40001, 443, b"GET /");
    let gtpu = packets::gtpu_packet(0xabcd, TERM, &[packets::pdu_session_container(9)]);
    let gtpu6 = {
        let inner = packets::inner_udp(Ipv4Addr::new(100, 64, 0, 9), SERVICE, b"x");
        let exts = [packets::pdu_session_container(9)];
        let mut g = packets::gtpu_header(0xabce, 0xff, 0, &exts, inner.len());
        g.extend_from_slice(&inner);
        let udp = fixtures::ipv6::udp(2152, 2152, &g);
        fixtures::ipv6::frame(TERM6, fixtures::ipv6::GTPU_ENDPOINT, 17, &[], &udp)
    };
    let six = fixtures::ipv6::SERVICE;
    let forwarded: &[u32] = &[verdict::TX, verdict::REDIRECT];
    let flow: &[u32] = &[stat::KEY_FLOW];
    let flow6: &[u32] = &[stat::KEY_FLOW, stat::IPV6];
    for (stack, reasons) in [
        (Stack::new("udp", udp.clone(), false), flow),
        (Stack::new("tcp", tcp.clone(), false), flow),
        (
            Stack::new("udp with options", options(udp.clone()), false),
            flow,
        ),
        (
            Stack::new("vlan tcp", with_vlans(&tcp, &[(0x8100, 10)]), false),
            flow,
        ),
        (
            Stack::new(
                "qinq udp",
                with_vlans(&udp, &[(0x88a8, 100), (0x8100, 200)]),
                false,
            ),
            flow,
        ),
        (Stack::new("gtpu", gtpu, false), &[stat::KEY_TEID][..]),
        (
            Stack::new(
                "ipv6 udp",
                packets::udp6_packet(TERM6, six, 40000, 5000, b"six"),
                false,
            ),
            flow6,
        ),
        (
            Stack::new(
                "ipv6 tcp",
                packets::tcp6_packet(TERM6, six, 40001, 443, b"GET /"),
                false,
            ),
            flow6,
        ),
        (
            Stack::new("ipv6 gtpu", gtpu6, false),
            &[stat::KEY_TEID, stat::IPV6][..],
        ),
    ] {
        run_stack(&mut dp, &p, &stack, (forwarded, reasons), lb_want, tally);
    }
}

// ---- gateway -----------------------------------------------------------

/// The gateway passes malformed plain IP (fragments under their own
/// reason); a datagram to its N3 address on the GTP-U port is the
/// tunnel's, and dropped: outer lengths as truncated, a bad T-PDU as
/// malformed inner (a UDP header cut before the port cannot be told
/// apart, and is plain malformed IP).
fn gw_want(c: &Case, gtpu: bool) -> Want {
    use dataplane_common::gateway::stat::*;
    let (pass, drop) = (|r| reject(V_PASS, r), |r| reject(V_DROP, r));
    let h = c.header;
    match (c.fault, gtpu) {
        (Fault::Padded | Fault::DontFragment, _) => Want::AsBase,
        (Fault::Fragment(_), false) => pass(FRAGMENT),
        (_, false) => pass(MALFORMED),
        (Fault::Cut { at, consistent }, true) => match h.kind {
            Kind::Ipv4 | Kind::Ipv4Options if !h.inner => pass(MALFORMED),
            Kind::Udp if !h.inner && at < 4 => pass(MALFORMED),
            _ if !consistent => drop(GTPU_TRUNCATED),
            _ if h.inner => drop(GTPU_INNER_MALFORMED),
            _ => drop(GTPU_TRUNCATED),
        },
        (_, true) if h.inner => drop(GTPU_INNER_MALFORMED),
        (Fault::BadVersion | Fault::IhlBelow5 | Fault::IhlPastEnd, true) => pass(MALFORMED),
        (Fault::Fragment(_), true) => pass(FRAGMENT),
        (_, true) => drop(GTPU_TRUNCATED),
    }
}

fn gateway(tally: &mut Tally) {
    use dataplane_common::gateway::stat;
    let mut dp = Dataplane::load_private().expect("load");
    gw::install_gtpu(&mut dp, 1, (40000, 40099)).expect("install");
    let p = Prog {
        name: "gateway",
        program: "gateway",
        stats: |dp| dp.gw_stats().unwrap(),
        names: &stat::NAMES,
        verdicts: stat::VERDICTS,
        copies: no_copies,
        tc: false,
    };
    let tcp = |sport| packets::tcp_packet(TERM, gw::WEB, sport, 80, b"GET /");
    let udp = |sport| packets::udp_packet(TERM, gw::DNS, sport, 53, b"query");
    let (_, teid, ue, _, _) = gw::TUN;
    let gpdu = gw::g_pdu(
        teid,
        0,
        &[],
        &gw::inner_tcp(ue, 33010, gw::WEB, 80, b"GET /"),
    );
    let fwd: &[u32] = &[stat::FORWARD];
    let flows = dp.flows().unwrap().len();
    let stacks = [
        (Stack::new("tcp", tcp(33000), false), fwd),
        (Stack::new("udp", udp(5000), false), fwd),
        (
            Stack::new("tcp with options", options(tcp(33001)), false),
            fwd,
        ),
        (
            Stack::new("vlan tcp", with_vlans(&tcp(33002), &[(0x8100, 10)]), false),
            fwd,
        ),
        (
            Stack::new(
                "qinq udp",
                with_vlans(&udp(5001), &[(0x88a8, 100), (0x8100, 200)]),
                false,
            ),
            fwd,
        ),
        (
            Stack::new(
                "ipv6 tcp",
                packets::tcp6_packet(TERM6, gw::WEB6, 33003, 80, b"GET /"),
                false,
            ),
            fwd,
        ),
        (
            Stack::new("gtpu", gpdu, true),
            &[stat::FORWARD, stat::GTPU_UPLINK][..],
        ),
    ];
    for (stack, reasons) in &stacks {
        let gtpu = stack.headers.iter().any(|h| h.kind == Kind::Gtpu);
        run_stack(
            &mut dp,
            &p,
            stack,
            (&[V_TX], reasons),
            |c| gw_want(c, gtpu),
            tally,
        );
    }
    assert_eq!(
        dp.flows().unwrap().len(),
        flows + stacks.len(),
        "one session per well-formed flow, none for a malformed packet"
    );
}

// ---- router ------------------------------------------------------------

const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 51];

/// The filter reads the fixed IP header and the 4 bytes after it (the
/// fingerprint) of untagged frames; it passes what it cannot read as
/// malformed (a tagged frame as not IP) and routes the rest, whatever its
/// L4 header or fragment offset.
fn router_want(c: &Case, tagged: bool) -> Want {
    use dataplane_common::router::stat::*;
    let r = |reason| reject(V_PASS, reason);
    if c.fault.well_formed() {
        return Want::AsBase;
    }
    if tagged {
        return r(NOT_IP);
    }
    if let Some((kind, consistent)) = cut(c) {
        return match kind {
            Kind::Tcp | Kind::Udp
                if consistent && ip_payload_kept(c) >= if c.v6 { 8 } else { 4 } =>
            {
                Want::AsBase
            }
            _ => r(MALFORMED),
        };
    }
    match c.fault {
        Fault::BadVersion
        | Fault::IhlBelow5
        | Fault::IhlPastEnd
        | Fault::TotalPastEnd
        | Fault::TotalBelowHeader => r(MALFORMED),
        _ => Want::AsBase,
    }
}

fn router(tally: &mut Tally) {
    use dataplane_common::router::stat;
    use dataplane_user::router::{BucketState, EndSystem, FilterConfig};
    let mut dp = Dataplane::load_private().expect("load");
    dp.set_router_cfg(&FilterConfig {
        vmac: VMAC,
        own_mac: Some([2, 0, 0, 0, 0xaa, 1]),
        end_system: EndSystem::Source,
    })
    .unwrap();
    dp.set_router_lease(u64::MAX).unwrap();
    for b in 0..=255u8 {
        dp.set_bucket(b, BucketState::Mine).unwrap();
    }
    let p = Prog {
        name: "router",
        program: "router",
        stats: |dp| dp.router_stats().unwrap(),
        names: &stat::NAMES,
        verdicts: stat::VERDICTS,
        copies: no_copies,
        tc: false,
    };
    let to_vmac = |mut f: Vec<u8>| {
        f[..6].copy_from_slice(&VMAC);
        f
    };
    let udp = to_vmac(packets::udp_packet(TERM, SERVICE, 40000, 9000, b"seq1"));
    let tcp = to_vmac(packets::tcp_packet(TERM, SERVICE, 40001, 80, b"GET /"));
    let udp6 = to_vmac(packets::udp6_packet(
        TERM6,
        fixtures::ipv6::SERVICE,
        1,
        2,
        b"6",
    ));
    let routed: &[u32] = &[stat::ROUTED];
    for (stack, reasons) in [
        (Stack::new("udp", udp.clone(), false), routed),
        (Stack::new("tcp", tcp.clone(), false), routed),
        (
            Stack::new("udp with options", options(udp.clone()), false),
            routed,
        ),
        (Stack::new("ipv6 udp", udp6, false), routed),
        (
            Stack::new("vlan tcp", with_vlans(&tcp, &[(0x8100, 10)]), false),
            &[stat::NOT_IP][..],
        ),
        (
            Stack::new(
                "qinq udp",
                with_vlans(&udp, &[(0x88a8, 100), (0x8100, 200)]),
                false,
            ),
            &[stat::NOT_IP][..],
        ),
    ] {
        let tagged = stack.headers[0].kind == Kind::Vlan;
        run_stack(
            &mut dp,
            &p,
            &stack,
            (&[V_PASS], reasons),
            |c| router_want(c, tagged),
            tally,
        );
    }
}

// ---- sip-monitor -------------------------------------------------------

/// Nothing malformed is SIP: passed, not copied, counted as not SIP.
fn sip_want(c: &Case) -> Want {
    if c.fault.well_formed() {
        Want::AsBase
    } else {
        reject(V_PASS, dataplane_common::sip_monitor::stat::NOT_SIP)
    }
}

/// What arrives (XDP), or with `tc` what leaves (the TC egress
/// companion, which counts its copies besides).
fn sip_monitor_at(tally: &mut Tally, tc: bool) {
    use dataplane_common::sip_monitor::stat;
    let mut dp = Dataplane::load_private().expect("load");
    dp.add_sip_port(5060).unwrap();
    let p = Prog {
        name: if tc {
            "sip-monitor egress"
        } else {
            "sip-monitor"
        },
        program: if tc {
            "sip_monitor_egress"
        } else {
            "sip_monitor"
        },
        stats: |dp| dp.sip_stats().unwrap(),
        names: &stat::NAMES,
        verdicts: stat::VERDICTS,
        copies: |dp| dp.take_sip_copies().unwrap().len(),
        tc,
    };
    let copied: &[u32] = if tc {
        &[stat::COPIED, stat::EGRESS_COPIES]
    } else {
        &[stat::COPIED]
    };
    let udp = packets::udp_packet(TERM, SERVICE, 40000, 5060, REGISTER);
    let tcp = packets::tcp_packet(TERM, SERVICE, 40001, 5060, REGISTER);
    let six = fixtures::ipv6::SERVICE;
    let mut stacks = plain_stacks(
        udp,
        tcp,
        packets::udp6_packet(TERM6, six, 40000, 5060, REGISTER),
    );
    stacks.push(Stack::new(
        "ipv6 tcp",
        packets::tcp6_packet(TERM6, six, 40001, 5060, REGISTER),
        false,
    ));
    for stack in stacks {
        run_stack(&mut dp, &p, &stack, (&[V_PASS], copied), sip_want, tally);
    }
}

/// The stacks the sip-monitor and steering programs both take: UDP and
/// TCP, UDP with IPv4 options, one 802.1Q tag, 802.1ad + 802.1Q, IPv6 UDP.
fn plain_stacks(udp: Vec<u8>, tcp: Vec<u8>, udp6: Vec<u8>) -> Vec<Stack> {
    vec![
        Stack::new("udp", udp.clone(), false),
        Stack::new("tcp", tcp.clone(), false),
        Stack::new("udp with options", options(udp.clone()), false),
        Stack::new("vlan udp", with_vlans(&udp, &[(0x8100, 10)]), false),
        Stack::new(
            "qinq tcp",
            with_vlans(&tcp, &[(0x88a8, 100), (0x8100, 200)]),
            false,
        ),
        Stack::new("ipv6 udp", udp6, false),
    ]
}

// ---- steer -------------------------------------------------------------

/// Steered by destination once the fixed IP header is one a next hop
/// takes; the rest (L4, fragments, options) is the next hop's to judge.
fn steer_want(c: &Case) -> Want {
    let r = || reject(V_PASS, dataplane_common::migration::stat::NOT_STEERED);
    if let Some((kind, consistent)) = cut(c) {
        return match kind {
            Kind::Tcp | Kind::Udp if consistent && (!c.v6 || ip_payload_kept(c) > 0) => {
                Want::AsBase
            }
            _ => r(),
        };
    }
    match c.fault {
        Fault::ThirdVlan
        | Fault::BadVersion
        | Fault::IhlBelow5
        | Fault::IhlPastEnd
        | Fault::TotalPastEnd
        | Fault::TotalBelowHeader => r(),
        _ => Want::AsBase,
    }
}

fn steer(tally: &mut Tally) {
    use dataplane_common::migration::{stat, NetEgress, Steering};
    let mut dp = Dataplane::load_private().expect("load");
    dp.set_network(
        1,
        &NetEgress {
            dst_mac: [2, 0, 0, 0, 1, 1],
            src_mac: [2, 0, 0, 0, 0xee, 1],
            ifindex: 1,
            valid: 1,
        },
    )
    .unwrap();
    let six = fixtures::ipv6::SERVICE;
    for addr in [std::net::IpAddr::from(SERVICE), six.into()] {
        dp.set_steering(
            addr,
            Steering {
                network: 1,
                flags: 0,
            },
        )
        .unwrap();
    }
    let p = Prog {
        name: "steer",
        program: "steer",
        stats: |dp| dp.steer_stats().unwrap(),
        names: &stat::NAMES,
        verdicts: stat::VERDICTS,
        copies: no_copies,
        tc: false,
    };
    let udp = packets::udp_packet(TERM, SERVICE, 40000, 7000, b"seq1");
    let tcp = packets::tcp_packet(TERM, SERVICE, 40001, 80, b"GET /");
    for stack in plain_stacks(
        udp,
        tcp,
        packets::udp6_packet(TERM6, six, 40000, 7000, b"six"),
    ) {
        run_stack(
            &mut dp,
            &p,
            &stack,
            (&[V_TX], &[stat::STEERED]),
            steer_want,
            tally,
        );
    }
}

/// One program's cases, counted into the tally.
type Suite = fn(&mut Tally);

#[test]
fn malformed_fixtures_of_every_program() {
    if !common::kernel_available("malformed_fixtures_of_every_program") {
        return;
    }
    let tallies = std::thread::spawn(|| {
        common::private_netns();
        common::sh(&[
            "ip", "link", "add", "fx0", "type", "veth", "peer", "name", "fx1",
        ]);
        common::sh(&["ip", "link", "set", "fx0", "up"]);
        let progs: [(&str, Suite); 6] = [
            ("lb", lb),
            ("gateway", gateway),
            ("router", router),
            ("sip-monitor", |t| sip_monitor_at(t, false)),
            ("steer", steer),
            ("sip-monitor egress (tc)", |t| sip_monitor_at(t, true)),
        ];
        progs
            .into_iter()
            .map(|(name, f)| {
                let mut t = Tally::default();
                f(&mut t);
                (name, t)
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    eprintln!(
        "malformed fixtures: {}",
        tallies
            .iter()
            .map(|(n, t)| format!("{n} {}", t.rejected))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, t) in &tallies {
        eprintln!(
            "  {name}: refused {:?}; taken as well-formed: {} ({:?}); not run (skb harness): {}",
            t.categories, t.taken, t.taken_categories, t.refused_by_harness
        );
        assert!(
            t.rejected >= 30,
            "{name}: {} malformed fixtures",
            t.rejected
        );
        for cat in CATEGORIES {
            assert!(
                t.categories.contains_key(cat) || t.taken_categories.contains(cat),
                "{name}: no {cat} case"
            );
        }
    }
}
