//! The gateway as a GTP-U user plane, userspace side: the PFCP endpoint
//! (session management, `control::gateway::pfcp`) that writes tunnels
//! into the fast path, and the GTP-U signalling socket on the N3 address
//! (Echo Response, rate-limited Error Indication). Both sockets are served
//! by their own task, which locks only the gateway instance.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use control::gateway::{
    config as gcfg,
    gtpu::{self, RateLimit},
    pfcp::{self, TunnelSpec, Volume},
};
use dataplane_common::gateway::SessionCounters;
use dataplane_user::{
    gateway::{Flow, SessionEntry, TunnelDownlink, TunnelEntry},
    Dataplane,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::GwInstance;

/// Neighbour toward an access node, as the fast path needs it.
#[derive(Clone, Copy, Debug)]
struct Neighbour {
    mac: [u8; 6],
    src_mac: [u8; 6],
    ifindex: u32,
}

/// What the daemon counts of GTP-U signalling and PFCP (rows of `stats`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GtpCounters {
    pub echo_requests: u64,
    pub error_indications_sent: u64,
    pub error_indications_limited: u64,
    pub error_indications_received: u64,
    pub end_markers: u64,
    pub signalling_malformed: u64,
    pub signalling_other: u64,
    pub pfcp_refused_peer: u64,
    pub report_send_errors: u64,
}

/// The GTP-U and PFCP state of one gateway instance.
pub struct Gtp {
    pub engine: pfcp::Engine,
    pub n3: Ipv4Addr,
    /// The IPv6 N3 address, when GTP-U over IPv6 is on.
    pub n3_6: Option<Ipv6Addr>,
    via: String,
    next_hop: Option<Ipv4Addr>,
    next_hop6: Option<Ipv6Addr>,
    neighbours: HashMap<IpAddr, Neighbour>,
    error_limit: RateLimit,
    error_seq: u16,
    started: Instant,
    allow: Option<Vec<control::field::Ipv4Prefix>>,
    pub counters: GtpCounters,
    /// Where Session Report Requests leave from (the PFCP socket).
    pfcp_tx: Option<Arc<std::net::UdpSocket>>,
    /// Tunnel index -> (UP SEID, uplink TEID), kept after a deletion until
    /// the tunnel's user sessions are accounted.
    ids: HashMap<u32, (u64, u32)>,
    /// Deleted tunnels whose user sessions the sweeper has not ended yet.
    retired: HashSet<u32>,
    /// User sessions ended because their tunnel's index was reused before
    /// the sweeper came by: accounted at the next tick.
    pub(super) orphans: Vec<Orphan>,
}

/// A user session taken out of the fast path when its (deleted) tunnel's
/// index was given to a new PFCP session: its flow, session and port are
/// already gone; only its end record is owed.
pub(super) struct Orphan {
    pub port: u16,
    pub session: SessionEntry,
    pub counters: SessionCounters,
    pub ids: Option<(u64, u32)>,
}

/// Seconds since 1900 (NTP era 0), as PFCP's Recovery Time Stamp wants.
fn ntp_now() -> u32 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (unix + 2_208_988_800) as u32
}

impl Gtp {
    pub fn new(cfg: &gcfg::Gateway) -> Option<Self> {
        let g = cfg.gtpu.as_ref()?;
        let n3 = cfg.n3_address()?;
        let (teid_first, teid_last) = cfg.teid_range();
        let p = cfg.pfcp.as_ref();
        let node_id = p
            .and_then(|p| p.node_id.or(p.address))
            .unwrap_or(cfg.address);
        let max_sessions = p
            .map(|p| p.max_sessions)
            .unwrap_or(dataplane_common::gateway::TUNNELS_MAX);
        let engine = pfcp::Engine::new(pfcp::EngineConfig {
            node_id,
            n3_addr: n3,
            n3_addr6: cfg.n3_address6(),
            teid_first,
            teid_last,
            max_sessions,
            recovery_ts: ntp_now(),
        });
        Some(Self {
            engine,
            n3,
            n3_6: cfg.n3_address6(),
            via: g.via.clone().unwrap_or_else(|| cfg.interfaces[0].clone()),
            next_hop: g.next_hop,
            next_hop6: g.next_hop6,
            neighbours: HashMap::new(),
            error_limit: RateLimit::new(g.error_indication_rate),
            error_seq: 0,
            started: Instant::now(),
            allow: p.and_then(|p| p.allow.clone()),
            counters: GtpCounters::default(),
            pfcp_tx: None,
            ids: HashMap::new(),
            retired: HashSet::new(),
            orphans: Vec::new(),
        })
    }

    fn allowed(&self, peer: &SocketAddr) -> bool {
        match (&self.allow, peer) {
            (None, _) => true,
            (Some(list), SocketAddr::V4(v4)) => list.iter().any(|p| p.contains(*v4.ip())),
            _ => false,
        }
    }

    /// Counter rows: the daemon's own, then the engine's.
    pub fn counter_rows(&self) -> Vec<(String, u64)> {
        let c = &self.counters;
        let mut rows: Vec<(String, u64)> = [
            ("gtpu_echo_requests", c.echo_requests),
            ("gtpu_error_indications_sent", c.error_indications_sent),
            (
                "gtpu_error_indications_limited",
                c.error_indications_limited,
            ),
            (
                "gtpu_error_indications_received",
                c.error_indications_received,
            ),
            ("gtpu_end_markers", c.end_markers),
            ("gtpu_signalling_malformed", c.signalling_malformed),
            ("gtpu_signalling_other", c.signalling_other),
            ("pfcp_refused_peer", c.pfcp_refused_peer),
            ("pfcp_report_send_errors", c.report_send_errors),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        rows.extend(
            self.engine
                .counters()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        rows
    }
}

/// The fast path as the PFCP engine sees it: tunnels in the maps.
struct TunnelMaps<'a> {
    dp: &'a mut Dataplane,
    gtp: &'a mut GtpNeighbours<'a>,
    retired: &'a mut HashSet<u32>,
    orphans: &'a mut Vec<Orphan>,
    ids: &'a HashMap<u32, (u64, u32)>,
    /// Indexes installed during this call (their ids are read afterwards).
    touched: Vec<u32>,
}

impl TunnelMaps<'_> {
    /// The tunnel at `idx` was deleted and its user sessions not yet swept:
    /// end them now, so the new tunnel inherits none of them.
    fn purge(&mut self, idx: u32) -> Result<(), String> {
        let e = |e: dataplane_user::Error| e.to_string();
        let flows: Vec<(Flow, u16)> = self
            .dp
            .flows()
            .map_err(e)?
            .into_iter()
            .filter(|(f, _)| f.tunnel == Some(idx))
            .collect();
        for (flow, port) in flows {
            self.dp.remove_flow(&flow).map_err(e)?;
            let session = self.dp.session(port).map_err(e)?;
            let counters = self.dp.session_counters(port).map_err(e)?;
            super::free_port(self.dp, port).map_err(e)?;
            self.orphans.push(Orphan {
                port,
                session,
                counters,
                ids: self.ids.get(&idx).copied(),
            });
        }
        self.retired.remove(&idx);
        Ok(())
    }
}

/// The part of [`Gtp`] the map writer needs while the engine is borrowed.
struct GtpNeighbours<'a> {
    via: &'a str,
    next_hop: Option<Ipv4Addr>,
    next_hop6: Option<Ipv6Addr>,
    /// GTP-U over IPv6 is on (an IPv6 access node can be served).
    v6: bool,
    cache: &'a mut HashMap<IpAddr, Neighbour>,
}

impl GtpNeighbours<'_> {
    /// The neighbour toward `an`, resolved once; its interface is made a
    /// way out of the fast path then (not per session).
    fn resolve(&mut self, dp: &mut Dataplane, an: IpAddr) -> Result<Neighbour, String> {
        if let Some(n) = self.cache.get(&an) {
            return Ok(*n);
        }
        let hop: IpAddr = match an {
            IpAddr::V4(a) => self.next_hop.unwrap_or(a).into(),
            IpAddr::V6(_) if !self.v6 => {
                return Err(format!(
                    "access node {an}: GTP-U over IPv6 needs gtpu.address6"
                ))
            }
            IpAddr::V6(a) => self.next_hop6.unwrap_or(a).into(),
        };
        let ifindex = dataplane_user::ifindex(self.via).map_err(|e| e.to_string())?;
        let src_mac = dataplane_user::mac_of(self.via).map_err(|e| e.to_string())?;
        let mac = crate::neigh::resolve(hop, self.via, Duration::from_secs(2))
            .map_err(|e| format!("access node {an}: {e}"))?;
        dp.add_gw_tx_port(ifindex).map_err(|e| e.to_string())?;
        let n = Neighbour {
            mac,
            src_mac,
            ifindex,
        };
        self.cache.insert(an, n);
        Ok(n)
    }
}

fn volume(c: dataplane_common::gateway::TunnelCounters) -> Volume {
    Volume {
        ul_bytes: c.bytes_ul,
        dl_bytes: c.bytes_dl,
        ul_pkts: c.pkts_ul,
        dl_pkts: c.pkts_dl,
    }
}

impl pfcp::Tunnels for TunnelMaps<'_> {
    fn install(&mut self, idx: u32, spec: &TunnelSpec) -> Result<(), String> {
        let n = match spec.an_addr {
            Some(an) => Some(self.gtp.resolve(self.dp, an)?),
            None => None,
        };
        let downlink = match (spec.an_addr, spec.dl_teid, n) {
            (Some(an_addr), Some(teid), Some(n)) => Some(TunnelDownlink {
                teid,
                an_addr,
                qfi: spec.qfi,
                mac: n.mac,
                src_mac: n.src_mac,
                ifindex: n.ifindex,
            }),
            _ => None,
        };
        let e = TunnelEntry {
            ul_teid: spec.ul_teid,
            ue_addr: spec.ue_addr,
            ue_addr6: spec.ue_addr6,
            downlink,
        };
        if self.retired.contains(&idx) {
            self.purge(idx)?;
        }
        self.dp.set_tunnel(idx, &e).map_err(|e| e.to_string())?;
        self.touched.push(idx);
        Ok(())
    }

    fn remove(&mut self, idx: u32) -> Volume {
        self.retired.insert(idx);
        match self.dp.remove_tunnel(idx) {
            Ok(c) => volume(c),
            Err(e) => {
                warn!(tunnel = idx, error = %e, "removing a tunnel from the fast path failed");
                Volume::default()
            }
        }
    }

    fn usage(&mut self, idx: u32) -> Volume {
        self.dp.tunnel_counters(idx).map(volume).unwrap_or_default()
    }
}

impl GwInstance {
    /// Run the engine with the maps as its tunnel table.
    fn with_tunnels<R>(
        &mut self,
        f: impl FnOnce(&mut pfcp::Engine, &mut dyn pfcp::Tunnels) -> R,
    ) -> Option<R> {
        let gtp = self.gtp.as_mut()?;
        let mut nb = GtpNeighbours {
            via: &gtp.via,
            next_hop: gtp.next_hop,
            next_hop6: gtp.next_hop6,
            v6: gtp.n3_6.is_some(),
            cache: &mut gtp.neighbours,
        };
        let mut maps = TunnelMaps {
            dp: &mut self.dp,
            gtp: &mut nb,
            retired: &mut gtp.retired,
            orphans: &mut gtp.orphans,
            ids: &gtp.ids,
            touched: Vec::new(),
        };
        let r = f(&mut gtp.engine, &mut maps);
        for idx in std::mem::take(&mut maps.touched) {
            if let Some(s) = gtp.engine.session_by_tunnel(idx) {
                gtp.ids.insert(idx, (s.up_seid, s.spec.ul_teid));
            }
        }
        Some(r)
    }

    /// One PFCP datagram: the reply to send, if any.
    pub fn pfcp(&mut self, peer: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
        let gtp = self.gtp.as_mut()?;
        if !gtp.allowed(&peer) {
            gtp.counters.pfcp_refused_peer += 1;
            debug!(%peer, "PFCP from a peer not in pfcp.allow");
            return None;
        }
        self.with_tunnels(|engine, t| engine.handle(peer, msg, t).reply)
            .flatten()
    }

    /// Usage reports on volume thresholds, sent from the PFCP socket.
    pub fn pfcp_reports(&mut self) {
        let Some(reports) = self.with_tunnels(|engine, t| engine.poll_reports(t)) else {
            return;
        };
        let Some(gtp) = self.gtp.as_mut() else { return };
        let Some(tx) = gtp.pfcp_tx.clone() else {
            return;
        };
        for (peer, bytes) in reports {
            match tx.send_to(&bytes, peer) {
                Ok(_) => {}
                Err(e) => {
                    gtp.counters.report_send_errors += 1;
                    warn!(%peer, error = %e, "sending a PFCP session report failed");
                }
            }
        }
    }

    /// One datagram on the N3 address's GTP-U port (the fast path passes
    /// everything but G-PDUs of live tunnels): the reply, if any.
    pub fn gtpu_signalling(&mut self, peer: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
        let gtp = self.gtp.as_mut()?;
        let h = match gtpu::parse(msg) {
            Ok(h) => h,
            Err(m) => {
                gtp.counters.signalling_malformed += 1;
                debug!(%peer, reason = m.name(), "malformed GTP-U signalling");
                return None;
            }
        };
        match h.msg_type {
            gtpu::MSG_ECHO_REQUEST => {
                gtp.counters.echo_requests += 1;
                Some(gtpu::echo_response(&h))
            }
            gtpu::MSG_GPDU => {
                // A G-PDU the fast path found no tunnel for.
                let now = gtp.started.elapsed().as_secs_f64();
                if gtp.error_limit.allow(now) {
                    gtp.counters.error_indications_sent += 1;
                    gtp.error_seq = gtp.error_seq.wrapping_add(1);
                    // Our address of the peer's family (the socket it
                    // came to).
                    let n3 = match (peer, gtp.n3_6) {
                        (SocketAddr::V6(_), Some(a)) => IpAddr::V6(a),
                        _ => IpAddr::V4(gtp.n3),
                    };
                    Some(gtpu::error_indication(h.teid, n3, gtp.error_seq))
                } else {
                    gtp.counters.error_indications_limited += 1;
                    None
                }
            }
            gtpu::MSG_ERROR_INDICATION => {
                gtp.counters.error_indications_received += 1;
                warn!(%peer, "GTP-U Error Indication received: the access node lost a tunnel");
                None
            }
            gtpu::MSG_END_MARKER => {
                gtp.counters.end_markers += 1;
                None
            }
            _ => {
                gtp.counters.signalling_other += 1;
                None
            }
        }
    }

    /// The GTP-U and PFCP counters, empty without GTP-U.
    pub fn gtp_counters(&self) -> Vec<(String, u64)> {
        self.gtp.as_ref().map(Gtp::counter_rows).unwrap_or_default()
    }

    /// Is the tunnel a user session lives in still the one that made it?
    /// (A reused index cannot be another's: the reuse ended the deleted
    /// tunnel's user sessions first.)
    pub(super) fn tunnel_alive(&self, tunnel: Option<u32>) -> bool {
        match (tunnel, &self.gtp) {
            (None, _) => true,
            (Some(idx), Some(g)) => g.engine.session_by_tunnel(idx).is_some(),
            (Some(_), None) => false,
        }
    }

    /// The PFCP session a user session belongs to: (UP SEID, uplink TEID),
    /// also for a deleted one whose user sessions are being ended.
    pub(super) fn session_of(&self, tunnel: Option<u32>) -> Option<(u64, u32)> {
        self.gtp.as_ref()?.ids.get(&tunnel?).copied()
    }

    /// After a sweep that ended every user session of the retired
    /// tunnels: forget them (their indexes are clean for reuse).
    pub(super) fn retire_swept(&mut self) {
        if let Some(g) = self.gtp.as_mut() {
            for idx in std::mem::take(&mut g.retired) {
                if g.engine.session_by_tunnel(idx).is_none() {
                    g.ids.remove(&idx);
                }
            }
        }
    }
}

/// Bind the instance's sockets and serve them: PFCP when configured, and
/// GTP-U signalling whenever GTP-U is on.
pub fn spawn(cfg: &gcfg::Gateway, inst: &Arc<Mutex<GwInstance>>) -> anyhow::Result<()> {
    let Some(n3) = cfg.n3_address() else {
        return Ok(());
    };
    let gtpu_sock = bind((n3, dataplane_common::lb::GTPU_PORT).into())?;
    tokio::spawn(serve(gtpu_sock, inst.clone(), GwInstance::gtpu_signalling));
    if let Some(n3) = cfg.n3_address6() {
        let s = bind((n3, dataplane_common::lb::GTPU_PORT).into())?;
        tokio::spawn(serve(s, inst.clone(), GwInstance::gtpu_signalling));
    }
    if let Some(p) = &cfg.pfcp {
        let addr = SocketAddr::from((p.address.unwrap_or(cfg.address), p.port));
        let sock = bind(addr)?;
        let tx = Arc::new(sock.try_clone()?);
        if let Some(g) = inst.lock().unwrap().gtp.as_mut() {
            g.pfcp_tx = Some(tx);
        }
        tokio::spawn(serve(sock, inst.clone(), GwInstance::pfcp));
        tracing::info!(%addr, "PFCP listening");
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "binding {addr}: {e} (is the address assigned to one of the gateway's interfaces?)"
        )
    })?;
    s.set_nonblocking(true)?;
    Ok(s)
}

async fn serve(
    sock: std::net::UdpSocket,
    inst: Arc<Mutex<GwInstance>>,
    handle: fn(&mut GwInstance, SocketAddr, &[u8]) -> Option<Vec<u8>>,
) {
    let sock = match tokio::net::UdpSocket::from_std(sock) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "GTP/PFCP socket");
            return;
        }
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "GTP/PFCP receive");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let reply = handle(&mut inst.lock().unwrap(), peer, &buf[..n]);
        if let Some(r) = reply {
            if let Err(e) = sock.send_to(&r, peer).await {
                debug!(%peer, error = %e, "GTP/PFCP send");
            }
        }
    }
}
