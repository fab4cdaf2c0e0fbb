//! The `sip-monitor` role's edge: the XDP copy program on the session
//! control server's interfaces, the ring buffer reader, the tracker, and
//! the publisher that sends PUBLISH to the presence server.

pub mod cli;
mod role;

pub use role::SipMonitorRole;

use std::{
    collections::HashMap,
    net::{SocketAddr, SocketAddrV4},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use control::{
    presence,
    sip_monitor::config::{Carrier, SipMonitor},
    sip_monitor::sip::{self, Message},
    sip_monitor::track::{Change, SessionInfo, Status, Tracker, TrackerConfig},
};
use dataplane_user::Dataplane;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MonitorStatus {
    pub interfaces: Vec<String>,
    pub copied: u64,
    pub parsed: u64,
    /// Copies that are not valid SIP, by reason.
    pub invalid: HashMap<String, u64>,
    pub changes: u64,
    pub published: u64,
    pub publish_ok: u64,
    pub publish_failed: u64,
    pub dialogs: usize,
    /// The copy program's counters (name, packets, bytes), refreshed on
    /// the monitor's poll; `edgeplane stats` shows them.
    #[serde(skip)]
    pub xdp: Vec<(String, u64, u64)>,
    #[serde(skip)]
    xdp_read: Option<Instant>,
}

/// Per-terminal publication state (RFC 3903 ETag, rate limit).
#[derive(Default)]
struct Terminal {
    etag: Option<String>,
    cseq: u32,
    last_sent: Option<Instant>,
    /// Status waiting for the rate limit.
    pending: Option<Status>,
    status: Option<Status>,
    sessions: Vec<SessionInfo>,
}

pub struct Monitor {
    cfg: SipMonitor,
    dp: Dataplane,
    tracker: Tracker,
    tcp: control::sip_monitor::stream::Reassembler,
    sock: tokio::net::UdpSocket,
    terminals: HashMap<String, Terminal>,
    /// Call-ID of an outstanding PUBLISH → user.
    outstanding: HashMap<String, String>,
    pub status: Arc<Mutex<MonitorStatus>>,
    started: Instant,
    local: String,
}

fn tracker_config(cfg: &SipMonitor) -> TrackerConfig {
    TrackerConfig {
        domain: cfg.domain.clone(),
        talking_on: cfg.talking_on,
        terminated_on: cfg.terminated_on,
        default_expires: 3600,
    }
}

impl Monitor {
    /// Take a new config (reload) without losing dialogs, registrations or
    /// ETags: the copied ports change in the map, the tracker takes the
    /// new moments and domain, a new presence server gets a new socket.
    /// The interfaces stay (the role's `check` refuses a change of them).
    async fn reconfigure(&mut self, cfg: SipMonitor) -> anyhow::Result<()> {
        for p in self.cfg.ports.iter().filter(|p| !cfg.ports.contains(p)) {
            self.dp.remove_sip_port(*p)?;
        }
        for p in cfg.ports.iter().filter(|p| !self.cfg.ports.contains(p)) {
            self.dp.add_sip_port(*p)?;
        }
        if cfg.presence != self.cfg.presence {
            let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            sock.connect(cfg.presence).await?;
            self.local = sock.local_addr()?.to_string();
            self.sock = sock;
            // ETags belong to the old server.
            for t in self.terminals.values_mut() {
                t.etag = None;
            }
            self.outstanding.clear();
        }
        self.tracker.set_config(tracker_config(&cfg));
        info!(domain = %cfg.domain, presence = %cfg.presence, ports = ?cfg.ports, "sip monitor reconfigured");
        self.cfg = cfg;
        Ok(())
    }

    pub async fn start(
        cfg: SipMonitor,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Self> {
        let ifaces: Vec<&str> = cfg.interfaces.iter().map(String::as_str).collect();
        let mut dp = Dataplane::attach_many("sip_monitor", &ifaces, opts)?;
        for p in &cfg.ports {
            dp.add_sip_port(*p)?;
        }
        let _ = dp.take_sip_copies()?; // what a previous daemon left
        let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
        sock.connect(cfg.presence).await?;
        let local = sock.local_addr()?.to_string();
        let tracker = Tracker::new(tracker_config(&cfg));
        let status = Arc::new(Mutex::new(MonitorStatus {
            interfaces: cfg.interfaces.clone(),
            ..Default::default()
        }));
        info!(interfaces = ?cfg.interfaces, domain = %cfg.domain, presence = %cfg.presence, "sip monitor on");
        Ok(Self {
            cfg,
            dp,
            tracker,
            tcp: Default::default(),
            sock,
            terminals: HashMap::new(),
            outstanding: HashMap::new(),
            status,
            started: Instant::now(),
            local,
        })
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub async fn run(
        mut self,
        mut reconf: tokio::sync::mpsc::UnboundedReceiver<(
            SipMonitor,
            tokio::sync::oneshot::Sender<Result<(), String>>,
        )>,
    ) {
        // Copies are read as soon as the ring signals them; the tick runs
        // the timers (registration expiry, rate-limited publications).
        // SAFETY: the fd is an owned dup of the ring buffer's, kept open by
        // the AsyncFd for as long as it is registered.
        let ring = match self
            .dp
            .sip_ring_fd()
            .map(|fd| unsafe { tokio::io::unix::AsyncFd::register(fd) })
        {
            Ok(Ok(fd)) => Some(fd),
            _ => {
                warn!("SIP ring buffer cannot be polled; reading it every 5 ms");
                None
            }
        };
        let mut tick =
            tokio::time::interval(Duration::from_millis(if ring.is_some() { 20 } else { 5 }));
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                r = async { ring.as_ref().expect("guarded").readable().await }, if ring.is_some() => {
                    if let Ok(mut g) = r {
                        g.clear_ready();
                    }
                    if let Err(e) = self.poll().await {
                        warn!(error = %e, "sip monitor poll failed");
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.poll().await {
                        warn!(error = %e, "sip monitor poll failed");
                    }
                }
                r = self.sock.recv(&mut buf) => {
                    if let Ok(n) = r {
                        self.response(&buf[..n]).await;
                    }
                }
                Some((cfg, done)) = reconf.recv() => {
                    let _ = done.send(self.reconfigure(cfg).await.map_err(|e| format!("{e:#}")));
                }
            }
        }
    }

    async fn poll(&mut self) -> anyhow::Result<()> {
        let copies = self.dp.take_sip_copies()?;
        let now = self.now();
        let mut changes = Vec::new();
        {
            let mut st = self.status.lock().unwrap();
            st.copied += copies.len() as u64;
            // The counters move with every packet; 200 ms old is fresh
            // enough for `stats` and saves a map read per poll.
            if st
                .xdp_read
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
            {
                let names = dataplane_common::sip_monitor::stat::NAMES.iter();
                st.xdp = names
                    .zip(self.dp.sip_stats().unwrap_or_default())
                    .map(|(n, c)| ((*n).to_string(), c.packets, c.bytes))
                    .collect();
                st.xdp_read = Some(Instant::now());
            }
        }
        for c in copies {
            let results = match segment(&c.frame) {
                Some(Segment::Udp(payload)) => vec![sip::parse(payload).map(|(m, _)| m)],
                Some(Segment::Tcp {
                    key,
                    seq,
                    fin,
                    payload,
                }) => {
                    if payload.is_empty() && !fin {
                        continue; // a bare ACK
                    }
                    self.tcp.push(key, seq, payload, fin)
                }
                None => continue,
            };
            for r in results {
                match r {
                    Ok(m) => {
                        self.status.lock().unwrap().parsed += 1;
                        changes.extend(self.tracker.handle(&m, now));
                    }
                    Err(e) => {
                        let reason = e.to_string().split(':').next().unwrap_or("").to_string();
                        *self
                            .status
                            .lock()
                            .unwrap()
                            .invalid
                            .entry(reason)
                            .or_insert(0) += 1;
                    }
                }
            }
        }
        changes.extend(self.tracker.tick(now));
        for ch in changes {
            self.note(ch);
        }
        self.flush().await;
        let mut st = self.status.lock().unwrap();
        st.dialogs = self.tracker.dialogs();
        Ok(())
    }

    /// Record a change for its terminal (claims 34-43: the document
    /// reflects every session of the terminal).
    fn note(&mut self, ch: Change) {
        self.status.lock().unwrap().changes += 1;
        let t = self.terminals.entry(ch.user.clone()).or_default();
        match (ch.status, ch.session) {
            (Status::Talking, Some(s)) => {
                t.sessions.retain(|x| x.call_id != s.call_id);
                t.sessions.push(s);
            }
            (Status::Terminated, Some(s)) => t.sessions.retain(|x| x.call_id != s.call_id),
            _ => {}
        }
        // Still talking on another session: the terminal stays talking.
        let status = if ch.status == Status::Terminated && !t.sessions.is_empty() {
            Status::Talking
        } else {
            ch.status
        };
        t.pending = Some(status);
    }

    async fn flush(&mut self) {
        let interval = Duration::from_millis(self.cfg.publish_interval_ms);
        let due: Vec<String> = self
            .terminals
            .iter()
            .filter(|(_, t)| {
                t.pending.is_some() && t.last_sent.map(|l| l.elapsed() >= interval).unwrap_or(true)
            })
            .map(|(u, _)| u.clone())
            .collect();
        for user in due {
            self.send(&user).await;
        }
    }

    async fn send(&mut self, user: &str) {
        let local = self.local.clone();
        let server = self.cfg.presence.to_string();
        let Some(t) = self.terminals.get_mut(user) else {
            return;
        };
        let Some(status) = t.pending.take() else {
            return;
        };
        t.cseq += 1;
        t.last_sent = Some(Instant::now());
        t.status = Some(status);
        let call_id = format!("pub-{}-{}", user.replace('@', "-"), t.cseq);
        let body = presence::pidf(user, status, &t.sessions);
        // A state change always carries the full document; the ETag
        // names the publication it modifies (RFC 3903 §4.4).
        let expires = if status == Status::Offline { 0 } else { 3600 };
        let msg = match self.cfg.carrier {
            Carrier::Register => {
                presence::register_with_status(user, &local, &call_id, t.cseq, expires, &body)
            }
            Carrier::Publish => presence::publish(
                user,
                &server,
                &local,
                &call_id,
                t.cseq,
                t.etag.as_deref(),
                expires,
                &body,
            ),
        };
        self.outstanding.insert(call_id, user.to_string());
        match self.sock.send(msg.as_bytes()).await {
            Ok(_) => self.status.lock().unwrap().published += 1,
            Err(e) => {
                warn!(error = %e, "PUBLISH send failed");
                self.status.lock().unwrap().publish_failed += 1;
            }
        }
    }

    async fn response(&mut self, data: &[u8]) {
        let Ok((m, _)) = sip::parse(data) else { return };
        let Some(user) = self.outstanding.remove(&m.call_id) else {
            return;
        };
        match m.status() {
            Some(200..=299) => {
                self.status.lock().unwrap().publish_ok += 1;
                if let Some(t) = self.terminals.get_mut(&user) {
                    t.etag = m.etag.clone();
                }
            }
            Some(412) => {
                // The server lost the publication: start over with a new
                // one carrying the current state (RFC 3903 §4.4).
                if let Some(t) = self.terminals.get_mut(&user) {
                    t.etag = None;
                    t.pending = t.status;
                }
            }
            _ => self.status.lock().unwrap().publish_failed += 1,
        }
    }
}

enum Segment<'a> {
    Udp(&'a [u8]),
    Tcp {
        key: control::sip_monitor::stream::ConnKey,
        seq: u32,
        fin: bool,
        payload: &'a [u8],
    },
}

/// The UDP payload, or the TCP segment, of an Ethernet/IPv4 frame.
fn segment(f: &[u8]) -> Option<Segment<'_>> {
    if f.len() < 34 || u16::from_be_bytes([f[12], f[13]]) != 0x0800 {
        return None;
    }
    let ihl = ((f[14] & 0x0f) as usize) * 4;
    let l4 = 14 + ihl;
    let total = (u16::from_be_bytes([f[16], f[17]]) as usize + 14).min(f.len());
    let be32 = |o: usize| u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let be16 = |o: usize| u16::from_be_bytes([f[o], f[o + 1]]);
    match f[23] {
        17 if total >= l4 + 8 => Some(Segment::Udp(&f[l4 + 8..total])),
        6 if total >= l4 + 20 => {
            let off = ((f[l4 + 12] >> 4) as usize) * 4;
            if total < l4 + off {
                return None;
            }
            let flags = f[l4 + 13];
            Some(Segment::Tcp {
                key: (be32(26), be16(l4), be32(30), be16(l4 + 2)),
                seq: be32(l4 + 4),
                fin: flags & 0x05 != 0, // FIN or RST
                payload: &f[l4 + off..total],
            })
        }
        _ => None,
    }
}

/// A SIP response to `req` (Via, From, To, Call-ID and CSeq copied).
pub fn response(req: &Message, raw: &[u8], status: u16, reason: &str, extra: &str) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for l in text.lines() {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            break;
        }
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq"
        ) {
            out += l;
            out += "\r\n";
        } else if name == "to" || name == "t" {
            out += l;
            if req.to.tag.is_none() {
                out += ";tag=ep1";
            }
            out += "\r\n";
        }
    }
    out += extra;
    out += "Content-Length: 0\r\n\r\n";
    out
}

pub fn peer_ip(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.ip().to_string(),
        SocketAddr::V6(v) => v.ip().to_string(),
    }
}

pub fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(v) => Some(v),
        _ => None,
    }
}
