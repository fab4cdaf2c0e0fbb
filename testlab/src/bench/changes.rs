//! `edgeplane-lab bench gateway-changes`: established sessions through two
//! LBs while the gateway set changes (seed 002, claim 20). `sessions`
//! sessions, half GTP-U (TEIDs allocated by their gateway: prefix
//! `gateway + 1`) and half plain UDP terminals (each its own source
//! address, so the lb's terminal key spreads them), enter by both LBs at
//! `pps` in total. During the traffic: a fourth gateway is added, a
//! gateway's weight changes, and one is drained (both LBs each time).
//! Every gateway namespace counts what reaches it per session; a session
//! that reached more than one gateway is broken (its state lives on one),
//! and what was sent but reached no gateway is lost.
//!
//! The sink-only gateways make this a test of the LB tier's placement, the
//! part claim 20 asks of it; the gateways' own state is not involved.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::api::Request;
use serde::{Deserialize, Serialize};

use crate::topo::{self, gateway_name, Session, Topology};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KindResult {
    pub sessions: usize,
    /// Sessions that reached more than one gateway.
    pub broken: usize,
    /// Sessions none of whose packets arrived.
    pub unseen: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangesResult {
    /// `sinks` (gateway namespaces count arrivals) or `daemons` (real
    /// gateways, servers see each session's gateway address and port).
    pub mode: String,
    pub pps: u32,
    pub seconds_per_phase: f64,
    pub phases: Vec<String>,
    pub gtpu: KindResult,
    pub plain: KindResult,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
}

/// The plain terminal of session `i`: its own address, its own port.
fn terminal(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i),
        20000 + i as u16,
    )
}

/// IPv4 + UDP (checksums filled in) for the raw socket.
fn datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut out, payload)?;
    Ok(out)
}

/// The sink-only lab's datagrams: a G-PDU per TEID session, a plain UDP
/// datagram per terminal.
fn sink_frames(sessions: &[Session]) -> anyhow::Result<Frames> {
    let inner = edgeplane::packets::inner_udp(
        Ipv4Addr::new(10, 60, 0, 9),
        Ipv4Addr::new(203, 0, 113, 7),
        b"payload",
    );
    sessions
        .iter()
        .map(|s| match s {
            Session::Teid(t) => gpdu(*t, &inner),
            Session::Flow(port) => {
                let (src, _) = terminal(u32::from(*port) - 20000);
                datagram(src, topo::SERVICE, *port, topo::SERVICE_PORT, b"x")
                    .map(|d| (d, topo::SERVICE))
            }
        })
        .collect()
}

/// Datagrams for the raw socket, each with its destination.
type Frames = Vec<(Vec<u8>, Ipv4Addr)>;

/// A G-PDU of `teid` carrying the IP packet `inner`, access node to N3.
fn gpdu(teid: u32, inner: &[u8]) -> anyhow::Result<(Vec<u8>, Ipv4Addr)> {
    let mut p = edgeplane::packets::gtpu_header(teid, 0xff, 0, &[], inner.len());
    p.extend_from_slice(inner);
    let dst = edgeplane::packets::GTPU_ENDPOINT;
    datagram(topo::TERMINAL, dst, 2152, 2152, &p).map(|d| (d, dst))
}

/// Every frame once per round until `stop`, paced to `pps`, through a raw
/// socket in the terminal namespace of one LB; returns packets sent.
fn sender(
    ns: String,
    frames: Arc<Frames>,
    pps: u32,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<anyhow::Result<u64>> {
    thread::spawn(move || -> anyhow::Result<u64> {
        topo::enter_netns(&ns)?;
        // SAFETY: a raw IPv4 socket; IPPROTO_RAW implies IP_HDRINCL.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        anyhow::ensure!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let gap = Duration::from_secs_f64(1.0 / pps.max(1) as f64);
        let start = Instant::now();
        let mut sent = 0u64;
        'rounds: loop {
            for (f, dst) in frames.iter() {
                if stop.load(Ordering::SeqCst) {
                    break 'rounds;
                }
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as u16,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(dst.octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: a valid buffer and address for the socket.
                let n = unsafe {
                    libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    )
                };
                if n == f.len() as isize {
                    sent += 1;
                }
                let due = start + gap * sent as u32;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
        }
        // SAFETY: our fd.
        unsafe { libc::close(fd) };
        Ok(sent)
    })
}

/// `chain`: daisy chaining on (real gateways) or off (sinks, which cannot
/// read a chain header).
fn lb_config(t: &Topology, lb: usize, gws: &[usize], weight0: u32, chain: bool) -> String {
    let extra = format!("drain_timeout = 600\nchain = {chain}\n");
    t.lb_config_with(lb, gws, 11, &extra, |g| {
        let w = if g == 0 {
            format!("weight = {weight0}\n")
        } else {
            String::new()
        };
        format!("teid_prefix = {}\n{w}", g + 1)
    })
}

/// Both LBs' senders, `pps` in total, until `finish`.
struct Traffic {
    stop: Arc<AtomicBool>,
    senders: Vec<thread::JoinHandle<anyhow::Result<u64>>>,
}

impl Traffic {
    fn start(t: &Topology, frames: Frames, pps: u32) -> Self {
        let frames = Arc::new(frames);
        let stop = Arc::new(AtomicBool::new(false));
        let senders = [1, 2]
            .iter()
            .map(|lb| {
                sender(
                    format!("/run/netns/{}", t.ns(&format!("t{lb}"))),
                    frames.clone(),
                    pps / 2,
                    stop.clone(),
                )
            })
            .collect();
        Self { stop, senders }
    }

    /// Stop the senders; the packets they sent.
    fn finish(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let mut sent = 0;
        for s in self.senders {
            sent += s.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
        }
        Ok(sent)
    }
}

/// Send `frames` through both LBs at `pps` in total while the gateway set
/// changes: gw3 joins, gw0's weight goes 1 -> 3, gw1 drains. Returns the
/// phases and the packets sent.
fn scenario(
    t: &Topology,
    frames: Frames,
    pps: u32,
    phase_secs: f64,
    chain: bool,
) -> anyhow::Result<(Vec<String>, u64)> {
    let traffic = Traffic::start(t, frames, pps);
    let phase = Duration::from_secs_f64(phase_secs);
    let reload = |gws: &[usize], w0: u32| -> anyhow::Result<()> {
        for lb in [1, 2] {
            std::fs::write(t.config_path(lb), lb_config(t, lb, gws, w0, chain))?;
            t.call(lb, Request::Reload)?;
        }
        Ok(())
    };
    let mut phases = vec!["steady: gw0, gw1, gw2".to_string()];
    let mut steps = || -> anyhow::Result<()> {
        thread::sleep(phase);
        reload(&[0, 1, 2, 3], 1)?;
        phases.push("gw3 added".into());
        thread::sleep(phase);
        reload(&[0, 1, 2, 3], 3)?;
        phases.push("gw0 weight 1 -> 3".into());
        thread::sleep(phase);
        for lb in [1, 2] {
            t.call(
                lb,
                Request::LbGatewayDrain {
                    interface: None,
                    name: gateway_name(1),
                    timeout: Some(600),
                },
            )?;
        }
        phases.push("gw1 draining".into());
        thread::sleep(phase);
        Ok(())
    };
    let r = steps();
    let sent = traffic.finish()?;
    r?;
    Ok((phases, sent))
}

fn check_sessions(sessions: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        (2..=20000).contains(&sessions),
        "--sessions must be 2..=20000"
    );
    Ok(())
}

/// Sink-only gateways: where each session's packets land.
pub fn run(sessions: u32, pps: u32, phase_secs: f64) -> anyhow::Result<ChangesResult> {
    check_sessions(sessions)?;
    let exe = crate::edgeplane_bin()?;
    let mut t = Topology::build(&format!("epc{}", std::process::id() % 100000), 2, 4, &exe)
        .context("topology")?;
    for lb in [1, 2] {
        let c = lb_config(&t, lb, &[0, 1, 2], 1, false);
        t.start_lb(lb, &c)?;
    }
    let half = sessions / 2;
    // GTP-U sessions established at gateways 0-2 (their TEID prefixes).
    let list: Vec<Session> = (0..half)
        .map(|i| Session::Teid(((i % 3 + 1) << 24) | (1 + i / 3)))
        .chain((0..sessions - half).map(|i| Session::Flow(terminal(i).1)))
        .collect();
    let stop_rx = Arc::new(AtomicBool::new(false));
    let rx = t.receivers(stop_rx.clone());
    let (phases, sent) = scenario(&t, sink_frames(&list)?, pps, phase_secs, false)?;
    stop_rx.store(true, Ordering::SeqCst);
    let mut seen: HashMap<Session, HashSet<usize>> = HashMap::new();
    let mut received = 0u64;
    for (g, h) in rx.into_iter().enumerate() {
        let got = h
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        for (s, n) in got {
            received += n as u64;
            seen.entry(s).or_default().insert(g);
        }
    }
    let kind = |teid: bool| {
        let of: Vec<&Session> = list
            .iter()
            .filter(|s| matches!(s, Session::Teid(_)) == teid)
            .collect();
        KindResult {
            sessions: of.len(),
            broken: of
                .iter()
                .filter(|s| seen.get(s).map(|g| g.len() > 1).unwrap_or(false))
                .count(),
            unseen: of.iter().filter(|s| !seen.contains_key(s)).count(),
        }
    };
    Ok(ChangesResult {
        mode: "sinks".into(),
        pps,
        seconds_per_phase: phase_secs,
        phases,
        gtpu: kind(true),
        plain: kind(false),
        packets_sent: sent,
        packets_received: received,
        packets_lost: sent.saturating_sub(received),
    })
}

/// Per session id, the gateway address:port pairs a server saw it from.
type Sources = HashMap<u32, HashSet<std::net::SocketAddr>>;

/// The UDP servers (s2, s3 on 5353) as sinks: per session (the payload's
/// first 4 octets), the sources it came from (gateway address:port).
fn server_sinks(
    t: &Topology,
    stop: Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<anyhow::Result<(Sources, u64)>>> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let sinks: Vec<_> = (2..4)
        .map(|i| {
            let ns = format!("/run/netns/{}", t.ns(&format!("s{i}")));
            let stop = stop.clone();
            let bound = bound_tx.clone();
            thread::spawn(move || {
                topo::enter_netns(&ns)?;
                let sock = std::net::UdpSocket::bind("0.0.0.0:5353");
                let _ = bound.send(());
                let sock = sock?;
                sock.set_read_timeout(Some(Duration::from_millis(50)))?;
                let mut seen = Sources::new();
                let mut n = 0u64;
                let mut buf = [0u8; 2048];
                let mut quiet = Instant::now();
                let deadline = Instant::now() + Duration::from_secs(300);
                loop {
                    match sock.recv_from(&mut buf) {
                        Ok((len, from)) if len >= 4 => {
                            n += 1;
                            quiet = Instant::now();
                            seen.entry(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))
                                .or_default()
                                .insert(from);
                        }
                        _ => {}
                    }
                    if (stop.load(Ordering::SeqCst) && quiet.elapsed() > Duration::from_millis(500))
                        || Instant::now() > deadline
                    {
                        return Ok((seen, n));
                    }
                }
            })
        })
        .collect();
    // Traffic starts once both sinks listen (or failed to).
    for _ in 0..sinks.len() {
        let _ = bound_rx.recv_timeout(Duration::from_secs(5));
    }
    sinks
}

/// Gateways with their daemons (GTP-U user planes, sessions by PFCP) and
/// the UDP servers as sinks: a session is broken when a server sees it
/// from a second gateway address or port (its state was not where its
/// packets went).
/// `chain`: the LBs' daisy chaining (`false` shows what it prevents).
pub fn run_daemons(
    sessions: u32,
    pps: u32,
    phase_secs: f64,
    chain: bool,
) -> anyhow::Result<ChangesResult> {
    check_sessions(sessions)?;
    let exe = crate::edgeplane_bin()?;
    let mut t = Topology::build(&format!("epc{}d", std::process::id() % 10000), 2, 4, &exe)
        .context("topology")?;
    t.add_server_network(4)?;
    crate::gtp_lab::add_smf(&mut t)?;
    for gi in 0..4 {
        let cfg = t.gateway_config(gi, "20000-39999", &crate::gtp_lab::gtp_sections(gi, None));
        t.start_daemon(&format!("g{gi}"), &cfg, &[])?;
    }
    for lb in [1, 2] {
        let c = lb_config(&t, lb, &[0, 1, 2], 1, chain);
        t.start_lb(lb, &c)?;
    }
    let frames = daemon_sessions(&t, sessions)?;
    let mode = if chain {
        "daemons"
    } else {
        "daemons, chaining off"
    };
    measure(&t, sessions, pps, phase_secs, mode, |t| {
        scenario(t, frames, pps, phase_secs, chain)
    })
}

/// The same sessions and gateways with the LBs' gateway set in etcd
/// (issue 12): three etcd members; gateways register themselves; `changes`
/// changes through `edgeplane cluster gateways` (and gw3's daemon joining
/// first), `phase_secs` apart.
pub fn run_cluster(
    sessions: u32,
    pps: u32,
    phase_secs: f64,
    changes: usize,
) -> anyhow::Result<ChangesResult> {
    check_sessions(sessions)?;
    anyhow::ensure!((1..=100).contains(&changes), "--changes must be 1..=100");
    let mut lab = crate::cluster_lab::ClusterLab::build(
        &format!("epc{}k", std::process::id() % 10000),
        2,
        4,
        3,
        5,
    )?;
    crate::gtp_lab::add_smf(&mut lab.topo)?;
    let gw_config = |lab: &crate::cluster_lab::ClusterLab, gi: usize| {
        lab.gateway_config_with(gi, 1, &crate::gtp_lab::gtp_sections(gi, None))
    };
    for gi in 0..3 {
        let c = gw_config(&lab, gi);
        lab.topo.start_daemon(&format!("g{gi}"), &c, &[])?;
    }
    for lb in [1, 2] {
        lab.start_lb(lb)?;
    }
    lab.wait_tables(
        &[("gw1", 1), ("gw2", 1), ("gw3", 1)],
        Duration::from_secs(30),
    )?;
    let frames = daemon_sessions(&lab.topo, sessions)?;
    let phase = Duration::from_secs_f64(phase_secs);
    let g3 = gw_config(&lab, 3);
    measure(
        &lab.topo,
        sessions,
        pps,
        phase_secs,
        "cluster (etcd)",
        |t| {
            let traffic = Traffic::start(t, frames, pps);
            let mut phases = vec!["steady: gw1, gw2, gw3".to_string()];
            let steps = (|| -> anyhow::Result<()> {
                thread::sleep(phase);
                // The fourth gateway's daemon registers itself.
                t.start_daemon("g3", &g3, &[])?;
                phases.push("gw4 registered".into());
                // Then operators' changes, each a compare-and-swap in etcd.
                for (args, what) in cluster_changes(changes.saturating_sub(1)) {
                    thread::sleep(phase);
                    let a: Vec<&str> = args.iter().map(String::as_str).collect();
                    lab.cli_json(&a)?;
                    phases.push(what);
                }
                thread::sleep(phase);
                Ok(())
            })();
            let sent = traffic.finish()?;
            steps?;
            Ok((phases, sent))
        },
    )
}

/// `n` changes of weights and drains over gw1-gw4, cycling.
fn cluster_changes(n: usize) -> Vec<(Vec<String>, String)> {
    let cycle: [(&[&str], &str); 6] = [
        (&["gateways", "weight", "gw1", "3"], "gw1 weight 3"),
        (
            &["gateways", "drain", "gw2", "--timeout", "600"],
            "gw2 draining",
        ),
        (&["gateways", "weight", "gw4", "2"], "gw4 weight 2"),
        (&["gateways", "undrain", "gw2"], "gw2 undrained"),
        (&["gateways", "weight", "gw1", "1"], "gw1 weight 1"),
        (&["gateways", "weight", "gw4", "1"], "gw4 weight 1"),
    ];
    (0..n)
        .map(|i| {
            let (a, w) = cycle[i % cycle.len()];
            (a.iter().map(|s| s.to_string()).collect(), w.to_string())
        })
        .collect()
}

/// Half the sessions GTP-U (established over PFCP at gw0-gw2), half plain
/// UDP terminals: the frames the terminals send.
fn daemon_sessions(t: &Topology, sessions: u32) -> anyhow::Result<Frames> {
    use control::gateway::pfcp::{self, build, Cause, Message};
    let half = sessions / 2;
    let ue = |i: u32| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + i);
    // The GTP-U sessions, a third at each of gw0-gw2, over PFCP from the
    // SMF namespace: their uplink TEIDs.
    let smf_ns = format!("/run/netns/{}", t.ns("smf"));
    let teids = thread::spawn(move || -> anyhow::Result<Vec<u32>> {
        topo::enter_netns(&smf_ns)?;
        let smf = crate::gtp_lab::SMF;
        let sock = std::net::UdpSocket::bind((smf, pfcp::PORT))?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = [0u8; 2048];
        let mut seq = 0u32;
        let mut ask = |gi: usize, req: &dyn Fn(u32) -> Vec<u8>| -> anyhow::Result<pfcp::Reply> {
            seq += 1;
            sock.send_to(&req(seq), (crate::gtp_lab::pfcp_addr(gi), pfcp::PORT))?;
            let n = sock.recv(&mut buf).context("no PFCP answer")?;
            match pfcp::decode(&buf[..n]).map_err(|e| anyhow::anyhow!("{e}"))? {
                (_, Message::Flat(r)) if r.cause == Some(Cause::ACCEPTED) => Ok(r),
                (h, m) => anyhow::bail!("PFCP type {} refused: {m:?}", h.msg_type),
            }
        };
        for gi in 0..3 {
            ask(gi, &|s| build::association_setup_request(s, smf, 1))?;
        }
        (0..half)
            .map(|i| {
                let req = build::typical_session(
                    smf,
                    1 + i as u64,
                    ue(i),
                    Some((0x1000 + i, crate::gtp_lab::ACCESS_NODE)),
                    None,
                    9,
                );
                let r = ask((i % 3) as usize, &|s| build::establishment_request(s, &req))?;
                r.created_pdrs
                    .iter()
                    .find_map(|c| c.fteid)
                    .map(|f| f.teid)
                    .context("no F-TEID")
            })
            .collect()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("SMF thread panicked"))??;
    let service = crate::gtp_lab::UDP_SERVICE;
    let mut frames = Frames::new();
    for (i, teid) in teids.iter().enumerate() {
        let mut inner = Vec::new();
        etherparse::PacketBuilder::ipv4(ue(i as u32).octets(), service.0.octets(), 64)
            .udp(40000, service.1)
            .write(&mut inner, &(i as u32).to_be_bytes())?;
        frames.push(gpdu(*teid, &inner)?);
    }
    for i in 0..sessions - half {
        let (src, port) = terminal(i);
        frames.push((
            datagram(src, service.0, port, service.1, &(half + i).to_be_bytes())?,
            service.0,
        ));
    }
    Ok(frames)
}

/// Run `scenario` with the servers as sinks; who saw which session.
fn measure(
    t: &Topology,
    sessions: u32,
    pps: u32,
    phase_secs: f64,
    mode: &str,
    scenario: impl FnOnce(&Topology) -> anyhow::Result<(Vec<String>, u64)>,
) -> anyhow::Result<ChangesResult> {
    let half = sessions / 2;
    let stop_rx = Arc::new(AtomicBool::new(false));
    let rx = server_sinks(t, stop_rx.clone());
    let (phases, sent) = scenario(t)?;
    stop_rx.store(true, Ordering::SeqCst);
    let mut seen = Sources::new();
    let mut received = 0u64;
    for h in rx {
        let (got, n) = h
            .join()
            .map_err(|_| anyhow::anyhow!("server sink panicked"))??;
        received += n;
        for (k, v) in got {
            seen.entry(k).or_default().extend(v);
        }
    }
    let kind = |range: std::ops::Range<u32>| KindResult {
        sessions: range.len(),
        broken: range
            .clone()
            .filter(|i| seen.get(i).map(|s| s.len() > 1).unwrap_or(false))
            .count(),
        unseen: range.filter(|i| !seen.contains_key(i)).count(),
    };
    Ok(ChangesResult {
        mode: mode.into(),
        pps,
        seconds_per_phase: phase_secs,
        phases,
        gtpu: kind(0..half),
        plain: kind(half..sessions),
        packets_sent: sent,
        packets_received: received,
        packets_lost: sent.saturating_sub(received),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminals_are_distinct_addresses_and_ports() {
        let (a, p) = super::terminal(0);
        let (b, q) = super::terminal(4999);
        assert_eq!((a, p), (std::net::Ipv4Addr::new(100, 64, 0, 0), 20000));
        assert_eq!((b, q), (std::net::Ipv4Addr::new(100, 64, 19, 135), 24999));
    }
}
