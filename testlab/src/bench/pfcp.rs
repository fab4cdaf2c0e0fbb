//! `edgeplane-lab bench pfcp`: PFCP session establishments (and deletions)
//! per second through a running gateway daemon, over UDP from a control
//! plane namespace, each session written into the fast path's maps
//! (tunnel, TEID index, counters). The baseline, in the same run on the
//! same socket and daemon, is the Heartbeat: a request the daemon answers
//! without touching a map, so `establishment / heartbeat` is what session
//! handling costs over the transport. The engine alone (in process, a
//! tunnel table that stores nothing) gives the protocol's own ceiling.
//!
//! ```text
//!  {p}smf core ── {p}c br0 ── core {p}g0   edgeplane gateway (PFCP 8805)
//!  10.1.0.100 (this process, W requests in flight)
//! ```

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use control::gateway::pfcp::{self, build, Cause, Message, TunnelSpec, Tunnels, Volume};
use serde::{Deserialize, Serialize};

use super::median;
use crate::{gtp_lab, topo::Topology};

/// Requests in flight (a CP pipelines; one at a time would measure the
/// round trip, not the daemon).
const WINDOW: usize = 32;

const HEARTBEAT_RESPONSE: u8 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PfcpRound {
    pub sessions: u32,
    pub heartbeats_per_s: f64,
    pub establishments_per_s: f64,
    pub deletions_per_s: f64,
    pub engine_establishments_per_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PfcpBench {
    pub rounds: Vec<PfcpRound>,
    pub sessions: u32,
    pub window: usize,
    pub heartbeats_per_s: f64,
    pub establishments_per_s: f64,
    pub deletions_per_s: f64,
    pub engine_establishments_per_s: f64,
    /// Median establishments/s over median heartbeats/s.
    pub establishment_vs_heartbeat: f64,
}

/// A tunnel table that keeps nothing: the engine's own cost.
struct NoTunnels;

impl Tunnels for NoTunnels {
    fn install(&mut self, _: u32, _: &TunnelSpec) -> Result<(), String> {
        Ok(())
    }
    fn remove(&mut self, _: u32) -> Volume {
        Volume::default()
    }
    fn usage(&mut self, _: u32) -> Volume {
        Volume::default()
    }
}

fn ue(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + i)
}

fn establishment(seq: u32, i: u32) -> Vec<u8> {
    let req = build::typical_session(
        gtp_lab::SMF,
        1 + i as u64,
        ue(i),
        Some((0x1000 + i, gtp_lab::ACCESS_NODE)),
        None,
        9,
    );
    build::establishment_request(seq, &req)
}

/// `n` requests made by `make(seq, i)`, at most [`WINDOW`] outstanding;
/// every response must say Request accepted. Returns requests/s and, per
/// request, the UP SEID its response carried (if any).
fn pipeline(
    sock: &UdpSocket,
    gw: SocketAddr,
    n: u32,
    seq0: u32,
    make: &dyn Fn(u32, u32) -> Vec<u8>,
) -> anyhow::Result<(f64, Vec<u64>)> {
    let mut buf = [0u8; 2048];
    let mut outstanding: HashMap<u32, u32> = HashMap::new();
    let mut seids = vec![0u64; n as usize];
    let (mut sent, mut done) = (0u32, 0u32);
    let start = Instant::now();
    while done < n {
        while outstanding.len() < WINDOW && sent < n {
            let seq = (seq0 + sent) & 0x00ff_ffff;
            sock.send_to(&make(seq, sent), gw)?;
            outstanding.insert(seq, sent);
            sent += 1;
        }
        let len = match sock.recv(&mut buf) {
            Ok(l) => l,
            Err(e) => bail!(
                "{done} of {n} answered, {} in flight, then: {e}",
                outstanding.len()
            ),
        };
        let (h, m) =
            pfcp::decode(&buf[..len]).map_err(|e| anyhow::anyhow!("undecodable response: {e}"))?;
        let Some(i) = outstanding.remove(&h.seq) else {
            continue;
        };
        let Message::Flat(r) = m else {
            bail!("response of type {} is not flat", h.msg_type)
        };
        // (A Heartbeat Response carries no cause, only the recovery time.)
        if r.cause != Some(Cause::ACCEPTED)
            && !(h.msg_type == HEARTBEAT_RESPONSE && r.recovery_ts.is_some())
        {
            bail!(
                "request {i} (type {}) answered with cause {:?}",
                h.msg_type,
                r.cause
            );
        }
        seids[i as usize] = r.fseid.map(|f| f.seid).unwrap_or(0);
        done += 1;
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), seids))
}

/// The engine alone: `n` establishments then `n` deletions, in process.
fn engine_rate(n: u32) -> f64 {
    let mut e = pfcp::Engine::new(pfcp::EngineConfig {
        node_id: Ipv4Addr::new(10, 1, 0, 11),
        n3_addr: gtp_lab::N3,
        n3_addr6: None,
        teid_first: 1,
        teid_last: u32::MAX,
        max_sessions: n,
        recovery_ts: 1,
    });
    let peer = SocketAddr::V4(SocketAddrV4::new(gtp_lab::SMF, pfcp::PORT));
    let mut t = NoTunnels;
    e.handle(
        peer,
        &build::association_setup_request(1, gtp_lab::SMF, 1),
        &mut t,
    );
    let reqs: Vec<Vec<u8>> = (0..n).map(|i| establishment(2 + i, i)).collect();
    let start = Instant::now();
    for r in &reqs {
        let h = e.handle(peer, r, &mut t);
        assert!(h.reply.is_some());
    }
    n as f64 / start.elapsed().as_secs_f64()
}

pub fn run(rounds: usize, sessions: u32) -> anyhow::Result<PfcpBench> {
    if sessions == 0 || sessions > dataplane_common::gateway::TUNNELS_MAX {
        bail!(
            "--sessions must be 1..={}",
            dataplane_common::gateway::TUNNELS_MAX
        );
    }
    let exe = crate::edgeplane_bin()?;
    let mut t = Topology::build(&format!("epb{}p", std::process::id() % 10000), 1, 1, &exe)
        .context("topology")?;
    t.add_server_network(4)?;
    gtp_lab::add_smf(&mut t)?;
    let cfg = t.gateway_config(0, "20000-20999", &gtp_lab::gtp_sections(0, Some(sessions)));
    t.start_daemon("g0", &cfg, &[])?;
    let smf_ns = format!("/run/netns/{}", t.ns("smf"));
    let gw = SocketAddr::V4(SocketAddrV4::new(gtp_lab::pfcp_addr(0), pfcp::PORT));
    // The sender lives in the SMF's namespace, on a thread of its own.
    let measured = std::thread::spawn(move || -> anyhow::Result<Vec<PfcpRound>> {
        crate::topo::enter_netns(&smf_ns)?;
        let sock = UdpSocket::bind(SocketAddrV4::new(gtp_lab::SMF, pfcp::PORT))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut seq = 1u32;
        pipeline(&sock, gw, 1, seq, &|s, _| {
            build::association_setup_request(s, gtp_lab::SMF, 1)
        })?;
        seq += 1;
        let mut out = Vec::new();
        for _ in 0..rounds {
            let (hb, _) = pipeline(&sock, gw, sessions, seq, &|s, _| {
                build::heartbeat_request(s, 1)
            })?;
            seq += sessions;
            let (est, seids) = pipeline(&sock, gw, sessions, seq, &establishment)?;
            seq += sessions;
            if seids.contains(&0) {
                bail!("an establishment response without an UP F-SEID");
            }
            let (del, _) = pipeline(&sock, gw, sessions, seq, &|s, i| {
                build::deletion_request(s, seids[i as usize])
            })?;
            seq += sessions;
            out.push(PfcpRound {
                sessions,
                heartbeats_per_s: hb,
                establishments_per_s: est,
                deletions_per_s: del,
                engine_establishments_per_s: engine_rate(sessions),
            });
        }
        Ok(out)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the PFCP sender panicked"))??;
    let m = |f: fn(&PfcpRound) -> f64| median(measured.iter().map(f).collect());
    let (hb, est) = (m(|r| r.heartbeats_per_s), m(|r| r.establishments_per_s));
    Ok(PfcpBench {
        sessions,
        window: WINDOW,
        heartbeats_per_s: hb,
        establishments_per_s: est,
        deletions_per_s: m(|r| r.deletions_per_s),
        engine_establishments_per_s: m(|r| r.engine_establishments_per_s),
        establishment_vs_heartbeat: est / hb,
        rounds: measured,
    })
}
