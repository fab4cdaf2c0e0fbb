//! `edgeplane bench xdp`: ns/packet of each XDP program through
//! BPF_PROG_TEST_RUN, side by side with the floor program in the same run.
//!
//! Every measurement is a single-shot run (repeat = 1) on a fresh copy of
//! the packet, since with repeat > 1 a rewriting program would see its own
//! output. Runs of the program and the floor alternate in rounds, and the
//! median round is reported, so machine noise hits both alike.

use super::median;
use serde::{Deserialize, Serialize};

use dataplane_user::Dataplane;

use crate::fixtures;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchRow {
    pub program: String,
    pub case: String,
    pub ns_per_packet: f64,
    pub floor_ns_per_packet: f64,
    pub ratio: f64,
    /// ns_per_packet - floor_ns_per_packet: what travels between machines.
    pub ns_above_floor: f64,
}

pub struct BenchOptions {
    pub rounds: usize,
    pub runs_per_round: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            rounds: 15,
            runs_per_round: 2000,
        }
    }
}

fn batch(dp: &mut Dataplane, program: &str, pkts: &[Vec<u8>]) -> anyhow::Result<f64> {
    let mut total = 0u128;
    for pkt in pkts {
        total += dp.test_run(program, pkt)?.duration.as_nanos();
    }
    Ok(total as f64 / pkts.len() as f64)
}

/// Measure `program` on `pkt` against the floor program on the same packet.
pub fn compare(
    dp: &mut Dataplane,
    program: &str,
    case: &str,
    pkt: &[u8],
    opts: &BenchOptions,
) -> anyhow::Result<BenchRow> {
    let pkts = vec![pkt.to_vec(); opts.runs_per_round];
    compare_each(dp, program, case, |_| Ok(pkts.clone()), opts)
}

/// Like `compare`, with a fresh packet list per round from `round` (which
/// may also reset state, e.g. free the sessions a new-session case made).
pub fn compare_each(
    dp: &mut Dataplane,
    program: &str,
    case: &str,
    mut round: impl FnMut(&mut Dataplane) -> anyhow::Result<Vec<Vec<u8>>>,
    opts: &BenchOptions,
) -> anyhow::Result<BenchRow> {
    let (mut prog, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..opts.rounds {
        let pkts = round(dp)?;
        floor.push(batch(dp, "floor", &pkts)?);
        prog.push(batch(dp, program, &pkts)?);
    }
    let (p, f) = (median(prog), median(floor));
    Ok(BenchRow {
        program: program.into(),
        case: case.into(),
        ns_per_packet: p,
        floor_ns_per_packet: f,
        ratio: p / f,
        ns_above_floor: p - f,
    })
}

/// Every program's cases. Later roles add theirs here.
pub fn run_all(opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    let mut dp = Dataplane::load_private()?;
    // XDP_TX path: the gateway is reached through the test_run ingress
    // device (loopback of this namespace).
    fixtures::install(&mut dp, 1, None)?;
    let cases: Vec<(&str, Vec<u8>)> = [
        "gtpu_gpdu",
        "gtpu_ext_pdu_session",
        "udp_5tuple",
        "tcp_5tuple",
        // Issue 13: the same paths over IPv6.
        "ipv6_gtpu_gpdu",
        "ipv6_gtpu_ext_pdu_session",
        "ipv6_udp",
        "ipv6_tcp",
    ]
    .iter()
    .map(|name| {
        let f = fixtures::fixtures()
            .into_iter()
            .find(|f| f.name == *name)
            .expect("fixture exists");
        (*name, f.packet)
    })
    .collect();
    let mut rows = Vec::new();
    for (case, pkt) in &cases {
        let r = dp.test_run("lb", pkt)?;
        anyhow::ensure!(
            r.verdict == dataplane_user::verdict::TX,
            "bench case {case}: lb did not forward (verdict {})",
            r.verdict
        );
        rows.push(compare(&mut dp, "lb", case, pkt, opts)?);
    }
    rows.extend(gateway(&mut dp, opts)?);
    rows.extend(router(&mut dp, opts)?);
    rows.extend(sip_monitor(&mut dp, opts)?);
    rows.extend(steer(&mut dp, opts)?);
    rows.extend(entry(&mut dp, opts)?);
    Ok(rows)
}

/// The interface's entry program in front of the stages, as an attached
/// interface runs them: the lb alone (the entry's cost over `lb`'s own
/// row), then a sip-monitor stage that copies before the lb forwards (two
/// roles on one interface). Last, since the stages it adds change what
/// the programs above do after passing a packet.
fn entry(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use std::net::Ipv4Addr;
    let gpdu = fixtures::fixtures()
        .into_iter()
        .find(|f| f.name == "gtpu_gpdu")
        .expect("fixture exists")
        .packet;
    dp.add_stage("lb")?;
    let r = dp.test_run("entry", &gpdu)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX,
        "entry bench: the lb stage did not forward (verdict {})",
        r.verdict
    );
    let mut rows = vec![compare(dp, "entry", "lb_gtpu_gpdu", &gpdu, opts)?];
    dp.add_stage("sip_monitor")?;
    let sip = edgeplane::packets::udp_packet(
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        40000,
        5060,
        b"OPTIONS sip:x@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n",
    );
    dp.take_sip_copies()?;
    let r = dp.test_run("entry", &sip)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX && dp.take_sip_copies()?.len() == 1,
        "entry bench: the SIP packet was not copied, then forwarded"
    );
    rows.push(compare_draining_copies(
        dp,
        "entry",
        "sip_monitor_then_lb",
        &sip,
        opts,
    )?);
    Ok(rows)
}

/// The sip-monitor copy program: a SIP datagram on a monitored port (copied
/// whole into the ring, then passed) and a datagram on another port (only
/// passed). The ring is drained between rounds, as the daemon would, so the
/// copy path is measured and not the full-ring one.
fn sip_monitor(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use dataplane_common::sip_monitor::stat;
    use std::net::Ipv4Addr;
    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: bench1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.2>\r\nContent-Length: 0\r\n\r\n";
    dp.add_sip_port(5060)?;
    let udp = |dport: u16| {
        edgeplane::packets::udp_packet(
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            40000,
            dport,
            INVITE,
        )
    };
    let udp6 = |dport: u16| {
        edgeplane::packets::udp6_packet(
            "2001:db8:5::2".parse().expect("address"),
            "2001:db8:6::2".parse().expect("address"),
            40000,
            dport,
            INVITE,
        )
    };
    let mut rows = Vec::new();
    for (case, pkt, copied) in [
        ("sip_copy", udp(5060), true),
        ("not_sip_port", udp(5070), false),
        ("ipv6_sip_copy", udp6(5060), true),
        ("ipv6_not_sip_port", udp6(5070), false),
    ] {
        dp.take_sip_copies()?;
        let before = dp.sip_stats()?[stat::COPIED as usize].packets;
        let r = dp.test_run("sip_monitor", &pkt)?;
        let moved = dp.sip_stats()?[stat::COPIED as usize].packets - before;
        anyhow::ensure!(
            r.verdict == dataplane_user::verdict::PASS && r.output == pkt,
            "sip-monitor bench {case}: the packet was not passed unchanged"
        );
        anyhow::ensure!(
            (moved == 1) == copied,
            "sip-monitor bench {case}: copied {moved} time(s)"
        );
        rows.push(compare_draining_copies(
            dp,
            "sip_monitor",
            case,
            &pkt,
            opts,
        )?);
    }
    Ok(rows)
}

/// Like `compare`, with the SIP copy ring drained before every round (as
/// the daemon drains it), so the copy path is measured, not the full ring.
fn compare_draining_copies(
    dp: &mut Dataplane,
    program: &str,
    case: &str,
    pkt: &[u8],
    opts: &BenchOptions,
) -> anyhow::Result<BenchRow> {
    let pkts = vec![pkt.to_vec(); opts.runs_per_round];
    let row = compare_each(
        dp,
        program,
        case,
        |dp| {
            dp.take_sip_copies()?;
            Ok(pkts.clone())
        },
        opts,
    )?;
    dp.take_sip_copies()?;
    Ok(row)
}

/// The migration's steer program: a packet to a steered service on its
/// network (next hop rewritten, XDP_TX) and one to an address it does not
/// steer (passed).
fn steer(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use dataplane_common::migration::{NetEgress, Steering};
    use std::net::Ipv4Addr;
    let service = Ipv4Addr::new(192, 0, 2, 80);
    let n1_mac = [2, 0, 0, 0, 0x01, 1];
    // Network 1 is behind the test_run ingress device (XDP_TX).
    dp.set_network(
        1,
        &NetEgress {
            dst_mac: n1_mac,
            src_mac: [2, 0, 0, 0, 0xee, 1],
            ifindex: 1,
            valid: 1,
        },
    )?;
    dp.set_steering(
        service,
        Steering {
            network: 1,
            flags: 0,
        },
    )?;
    let udp = |dst: Ipv4Addr| {
        edgeplane::packets::udp_packet(Ipv4Addr::new(10, 0, 0, 2), dst, 40000, 7000, b"seq1")
    };
    let mut rows = Vec::new();
    let steered = udp(service);
    let r = dp.test_run("steer", &steered)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX && r.output[..6] == n1_mac,
        "steer bench: the steered packet did not go to network 1"
    );
    rows.push(compare(dp, "steer", "steered_service", &steered, opts)?);
    let other = udp(Ipv4Addr::new(198, 51, 100, 1));
    anyhow::ensure!(
        dp.test_run("steer", &other)?.verdict == dataplane_user::verdict::PASS,
        "steer bench: an unsteered packet was not passed"
    );
    rows.push(compare(dp, "steer", "not_steered", &other, opts)?);
    let service6: std::net::Ipv6Addr = "2001:db8:99::80".parse()?;
    dp.set_steering(
        service6,
        Steering {
            network: 1,
            flags: 0,
        },
    )?;
    let udp6 = |dst: std::net::Ipv6Addr| {
        edgeplane::packets::udp6_packet(
            "2001:db8:7::2".parse().expect("address"),
            dst,
            40000,
            7000,
            b"seq1",
        )
    };
    let steered6 = udp6(service6);
    let r = dp.test_run("steer", &steered6)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX && r.output[..6] == n1_mac,
        "steer bench: the steered IPv6 packet did not go to network 1"
    );
    rows.push(compare(
        dp,
        "steer",
        "ipv6_steered_service",
        &steered6,
        opts,
    )?);
    let other6 = udp6("2001:db8:99::81".parse()?);
    anyhow::ensure!(
        dp.test_run("steer", &other6)?.verdict == dataplane_user::verdict::PASS,
        "steer bench: an unsteered IPv6 packet was not passed"
    );
    rows.push(compare(dp, "steer", "ipv6_not_steered", &other6, opts)?);
    Ok(rows)
}

/// The load-sharing filter on a frame of a bucket this router owns (the
/// path every routed packet takes), IPv4 and IPv6.
fn router(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use dataplane_user::router::{BucketState, EndSystem, FilterConfig};
    let vmac = [0, 0, 0x5e, 0, 1, 51];
    dp.set_router_cfg(&FilterConfig {
        vmac,
        own_mac: Some([2, 0, 0, 0, 0xaa, 1]),
        end_system: EndSystem::Source,
    })?;
    dp.set_router_lease(u64::MAX)?;
    for b in 0..=u8::MAX {
        dp.set_bucket(b, BucketState::Mine)?;
    }
    let mut pkt = edgeplane::packets::udp_packet(
        std::net::Ipv4Addr::new(10, 3, 0, 50),
        std::net::Ipv4Addr::new(10, 4, 0, 100),
        40000,
        9000,
        b"seq",
    );
    pkt[..6].copy_from_slice(&vmac);
    let r = dp.test_run("router", &pkt)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::PASS && r.output[..6] != vmac,
        "router bench: the frame was not routed"
    );
    let mut rows = vec![compare(dp, "router", "owned_bucket", &pkt, opts)?];
    let mut v6 = edgeplane::packets::udp6_packet(
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 1, 50),
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0x100),
        40000,
        9000,
        b"seq",
    );
    v6[..6].copy_from_slice(&vmac);
    let r = dp.test_run("router", &v6)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::PASS && r.output[..6] != vmac,
        "router bench: the IPv6 frame was not routed"
    );
    rows.push(compare(dp, "router", "ipv6_owned_bucket", &v6, opts)?);
    Ok(rows)
}

/// The gateway's plain paths (new and established sessions upstream, the
/// reverse path), then its GTP-U paths.
fn gateway(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use crate::fixtures::gateway as gfx;
    use std::net::Ipv4Addr;
    let (min, max) = (1024u16, 65535u16);
    gfx::install(dp, 1, (min, max))?;
    let term = Ipv4Addr::new(10, 0, 0, 2);
    let tcp = |sport: u16| edgeplane::packets::tcp_packet(term, gfx::WEB, sport, 80, b"");
    let mut rows = Vec::new();

    // Established: one session, its packets again and again.
    let est = tcp(40000);
    let first = dp.test_run("gateway", &est)?;
    anyhow::ensure!(
        first.verdict == dataplane_user::verdict::TX,
        "gateway bench: the session did not forward"
    );
    let port = u16::from_be_bytes([first.output[34], first.output[35]]);
    let srv = Ipv4Addr::new(
        first.output[30],
        first.output[31],
        first.output[32],
        first.output[33],
    );
    rows.push(compare(dp, "gateway", "tcp_established_up", &est, opts)?);
    let mut reply = edgeplane::packets::tcp_packet(srv, gfx::GW_ADDR, 8080, port, b"");
    reply[..6].copy_from_slice(&gfx::EGRESS_MAC);
    let r = dp.test_run("gateway", &reply)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX,
        "gateway bench: reverse path did not forward"
    );
    rows.push(compare(
        dp,
        "gateway",
        "tcp_established_down",
        &reply,
        opts,
    )?);

    // New sessions: a distinct terminal port per run; between rounds the
    // sessions are freed and their ports returned, as expiry would.
    let n = opts.runs_per_round.min(20_000);
    let mut round = 0u32;
    rows.push(compare_each(
        dp,
        "gateway",
        "tcp_new_session",
        |dp| {
            free_sessions(dp, &[port])?;
            round += 1;
            // The floor runs on the same packets first; it changes nothing.
            Ok((0..n).map(|i| tcp(41000 + (i as u16 % 20_000))).collect())
        },
        &BenchOptions {
            rounds: opts.rounds,
            runs_per_round: n,
        },
    )?);
    let _ = round;
    rows.extend(gtpu(dp, opts, port)?);
    rows.extend(gateway_ipv6(dp, opts, port)?);
    Ok(rows)
}

/// The same plain paths over IPv6 (issue 13): the `gateway6` program,
/// tail-called by `gateway`, so the tail call is in the figure.
fn gateway_ipv6(
    dp: &mut Dataplane,
    opts: &BenchOptions,
    keep: u16,
) -> anyhow::Result<Vec<BenchRow>> {
    use crate::fixtures::gateway as gfx;
    let term: std::net::Ipv6Addr = "2001:db8:1::2".parse()?;
    let tcp = |sport: u16| edgeplane::packets::tcp6_packet(term, gfx::WEB6, sport, 80, b"");
    let mut rows = Vec::new();
    let est = tcp(40000);
    let first = dp.test_run("gateway", &est)?;
    anyhow::ensure!(
        first.verdict == dataplane_user::verdict::TX,
        "gateway bench: the IPv6 session did not forward"
    );
    let o = &first.output;
    let port = u16::from_be_bytes([o[54], o[55]]);
    let srv = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&o[38..54])?);
    rows.push(compare(
        dp,
        "gateway",
        "ipv6_tcp_established_up",
        &est,
        opts,
    )?);
    // The IPv6 program run directly, without `gateway`'s tail call into
    // it: what the tail call (and the IPv4 program's prefix) costs.
    rows.push(compare(
        dp,
        dataplane_common::gateway::PROG_V6_NAME,
        "ipv6_tcp_established_up_direct",
        &est,
        opts,
    )?);
    let mut reply = edgeplane::packets::tcp6_packet(srv, gfx::GW_ADDR6, 8080, port, b"");
    reply[..6].copy_from_slice(&gfx::EGRESS_MAC);
    let r = dp.test_run("gateway", &reply)?;
    anyhow::ensure!(
        r.verdict == dataplane_user::verdict::TX,
        "gateway bench: the IPv6 reverse path did not forward"
    );
    rows.push(compare(
        dp,
        "gateway",
        "ipv6_tcp_established_down",
        &reply,
        opts,
    )?);
    let n = opts.runs_per_round.min(20_000);
    rows.push(compare_each(
        dp,
        "gateway",
        "ipv6_tcp_new_session",
        |dp| {
            free_sessions(dp, &[keep, port])?;
            Ok((0..n).map(|i| tcp(41000 + (i as u16 % 20_000))).collect())
        },
        &BenchOptions {
            rounds: opts.rounds,
            runs_per_round: n,
        },
    )?);
    Ok(rows)
}

/// Free every session but `keep`'s and return the ports to the pool in
/// ascending order, as expiry would (without freeing the entries). Sorted
/// so that a new-session case measures the same locality of the session
/// arrays whatever ran before it: ports returned in the flow map's hash
/// order make every later pop a cache miss (measured: +100 ns per new
/// session once the pool wraps), which would bias whichever case runs last.
fn free_sessions(dp: &mut Dataplane, keep: &[u16]) -> anyhow::Result<()> {
    let mut freed = Vec::new();
    for (flow, p) in dp.flows()? {
        if !keep.contains(&p) {
            dp.remove_flow(&flow)?;
            freed.push(p);
        }
    }
    freed.sort_unstable();
    for p in freed {
        dp.pool_push(p)?;
    }
    Ok(())
}

/// The gateway as a GTP-U user plane: an established tunnel session's
/// G-PDU (checks, decap, NAT), its reply (NAT, encap), and new tunnel
/// sessions. Over `gateway`'s world; `keep` is its established port.
fn gtpu(dp: &mut Dataplane, opts: &BenchOptions, keep: u16) -> anyhow::Result<Vec<BenchRow>> {
    use crate::fixtures::gateway as gfx;
    use dataplane_common::gateway::stat;
    use dataplane_user::verdict;
    gfx::install_tunnels(dp, 1)?;
    let (_, teid, ue, _, _) = gfx::TUN;
    let gpdu = |sport: u16| gfx::g_pdu(teid, 0, &[], &gfx::inner_tcp(ue, sport, gfx::WEB, 80, b""));
    let mut rows = Vec::new();

    let est = gpdu(40000);
    let first = dp.test_run("gateway", &est)?;
    anyhow::ensure!(
        first.verdict == verdict::TX,
        "gtpu bench: the tunnel session did not forward (verdict {})",
        first.verdict
    );
    let port = u16::from_be_bytes([first.output[34], first.output[35]]);
    let srv = std::net::Ipv4Addr::new(
        first.output[30],
        first.output[31],
        first.output[32],
        first.output[33],
    );
    rows.push(compare(dp, "gateway", "gtpu_uplink", &est, opts)?);
    let mut reply = edgeplane::packets::tcp_packet(srv, gfx::GW_ADDR, 8080, port, b"");
    reply[..6].copy_from_slice(&gfx::EGRESS_MAC);
    let r = dp.test_run("gateway", &reply)?;
    anyhow::ensure!(
        r.verdict == verdict::TX && r.output.len() == reply.len() + 36,
        "gtpu bench: the reply was not encapsulated (verdict {})",
        r.verdict
    );
    rows.push(compare(dp, "gateway", "gtpu_downlink", &reply, opts)?);

    let n = opts.runs_per_round.min(20_000);
    let before = dp.gw_stats()?;
    rows.push(compare_each(
        dp,
        "gateway",
        "gtpu_new_session",
        |dp| {
            free_sessions(dp, &[port, keep])?;
            Ok((0..n).map(|i| gpdu(41000 + (i as u16 % 20_000))).collect())
        },
        &BenchOptions {
            rounds: opts.rounds,
            runs_per_round: n,
        },
    )?);
    let made = dp.gw_stats()?[stat::NEW_SESSION as usize].packets
        - before[stat::NEW_SESSION as usize].packets;
    anyhow::ensure!(
        made == (opts.rounds * n) as u64,
        "gtpu bench: {made} new tunnel sessions of {}",
        opts.rounds * n
    );
    rows.extend(gtpu_ipv6_transport(dp, opts)?);
    Ok(rows)
}

/// `gtpu`'s established uplink and downlink over IPv6 transport (issue
/// 13): the same inner IPv4 flow in a tunnel whose access node is IPv6,
/// the G-PDU to the IPv6 N3 address (`gateway` → `gateway6` →
/// `gateway_gtpu4`), the reply sent by `gateway_encap6`.
fn gtpu_ipv6_transport(dp: &mut Dataplane, opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    use crate::fixtures::gateway as gfx;
    use crate::fixtures_gtpu6 as g6;
    use dataplane_user::{
        gateway::{TunnelDownlink, TunnelEntry},
        verdict,
    };
    let mut s = dp.gw_config()?;
    s.n3_addr6 = Some(g6::N3_ADDR6);
    dp.set_gw_config(&s)?;
    let (idx, teid, ue) = (8, 0x1008, std::net::Ipv4Addr::new(100, 64, 0, 20));
    dp.set_tunnel(
        idx,
        &TunnelEntry {
            ul_teid: teid,
            ue_addr: ue,
            ue_addr6: None,
            downlink: Some(TunnelDownlink {
                teid: 0x3000_0008,
                an_addr: g6::AN_ADDR6.into(),
                qfi: None,
                mac: gfx::AN_MAC,
                src_mac: gfx::N3_MAC,
                ifindex: 1,
            }),
        },
    )?;
    let est = g6::g_pdu6(teid, &gfx::inner_tcp(ue, 40000, gfx::WEB, 80, b""));
    let first = dp.test_run("gateway", &est)?;
    anyhow::ensure!(
        first.verdict == verdict::TX,
        "gtpu bench: the tunnel session over IPv6 did not forward (verdict {})",
        first.verdict
    );
    let port = u16::from_be_bytes([first.output[34], first.output[35]]);
    let srv = std::net::Ipv4Addr::new(
        first.output[30],
        first.output[31],
        first.output[32],
        first.output[33],
    );
    let mut rows = vec![compare(dp, "gateway", "ipv6_gtpu_uplink", &est, opts)?];
    let mut reply = edgeplane::packets::tcp_packet(srv, gfx::GW_ADDR, 8080, port, b"");
    reply[..6].copy_from_slice(&gfx::EGRESS_MAC);
    let r = dp.test_run("gateway", &reply)?;
    anyhow::ensure!(
        r.verdict == verdict::TX && r.output.len() == reply.len() + 56,
        "gtpu bench: the reply was not encapsulated over IPv6 (verdict {})",
        r.verdict
    );
    rows.push(compare(dp, "gateway", "ipv6_gtpu_downlink", &reply, opts)?);
    Ok(rows)
}
