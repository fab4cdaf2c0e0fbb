//! The `sip-monitor` role's edge: the XDP copy program on the session
//! control server's interfaces, the ring buffer reader, the tracker, and
//! the publisher that sends PUBLISH to the presence server.

pub mod cli;
mod link;
mod role;

pub use role::SipMonitorRole;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, SocketAddrV4},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use control::{
    presence,
    sip_monitor::config::{Carrier, SipMonitor},
    sip_monitor::sip::{self, Message},
    sip_monitor::{
        retransmit::{NonInvite, Step},
        terminal::TerminalState,
        track::{Change, Status, Tracker, TrackerConfig},
    },
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
    /// Requests sent again by timer E (RFC 3261 §17.1.2.2).
    pub publish_retransmitted: u64,
    /// Of the failed: no final response within 64*T1 (timer F).
    pub publish_timeouts: u64,
    /// Outstanding requests dropped because a newer status was sent.
    pub publish_superseded: u64,
    /// Publications refreshed before the server let them lapse.
    pub publish_refreshed: u64,
    pub dialogs: usize,
    /// The copy program's counters (name, packets, bytes), refreshed on
    /// the monitor's poll; `edgeplane stats` shows them.
    #[serde(skip)]
    pub xdp: Vec<(String, u64, u64)>,
    #[serde(skip)]
    xdp_read: Option<Instant>,
}

/// A request to the presence server waiting for its final response.
struct Outstanding {
    user: String,
    msg: Vec<u8>,
    timer: NonInvite,
    /// It went out (over TCP, once is enough; unsent, timer E tries a
    /// new connection).
    sent: bool,
}

/// A terminal whose requests keep failing is retried this many times
/// (with its newest status) before it waits for its next change.
const PUBLISH_RETRIES: u32 = 5;

/// Per-terminal publication state (RFC 3903 ETag, rate limit).
#[derive(Default)]
struct Terminal {
    etag: Option<String>,
    cseq: u32,
    last_sent: Option<Instant>,
    /// Status waiting for the rate limit.
    pending: Option<Status>,
    status: Option<Status>,
    /// Its sessions and address, what its document says.
    state: TerminalState,
    /// Failed attempts since its last success.
    failures: u32,
    /// When its publication is refreshed (monitor ms; RFC 3903 §4.3),
    /// before the server lets it lapse.
    refresh_at: Option<u64>,
}

pub struct Monitor {
    cfg: SipMonitor,
    dp: Dataplane,
    tracker: Tracker,
    tcp: control::sip_monitor::stream::Reassembler,
    link: link::Link,
    terminals: HashMap<String, Terminal>,
    /// Call-ID of an outstanding PUBLISH → its transaction.
    outstanding: HashMap<String, Outstanding>,
    /// User → the Call-ID of their outstanding request (one at most).
    outstanding_of: HashMap<String, String>,
    /// Users with a status waiting to be sent: what `flush` reads, not
    /// every terminal.
    dirty: std::collections::BTreeSet<String>,
    /// (when, user) of the publications to refresh, earliest first; an
    /// entry whose time is no longer the terminal's is stale.
    refresh_due: std::collections::BTreeSet<(u64, String)>,
    pub status: Arc<Mutex<MonitorStatus>>,
    started: Instant,
}

fn tracker_config(cfg: &SipMonitor) -> TrackerConfig {
    TrackerConfig {
        domain: control::sip_monitor::sip::domain_of(&cfg.domain),
        talking_on: cfg.talking_on,
        terminated_on: cfg.terminated_on,
        default_expires: 3600,
        max_call_ms: cfg.max_call_secs as u64 * 1000,
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
        if cfg.presence != self.cfg.presence
            || cfg.presence_transport != self.cfg.presence_transport
        {
            self.link = link::Link::open(cfg.presence, cfg.presence_transport).await?;
            // ETags belong to the old server.
            for t in self.terminals.values_mut() {
                t.etag = None;
            }
            self.outstanding.clear();
            self.outstanding_of.clear();
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
        let link = link::Link::open(cfg.presence, cfg.presence_transport).await?;
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
            link,
            terminals: HashMap::new(),
            outstanding: HashMap::new(),
            outstanding_of: HashMap::new(),
            dirty: Default::default(),
            refresh_due: Default::default(),
            status,
            started: Instant::now(),
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
                    self.retransmit().await;
                    self.refresh().await;
                }
                Some(answer) = self.link.answers.recv() => {
                    self.response(&answer).await;
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
                        tracing::debug!(error = %e, frame = ?String::from_utf8_lossy(&c.frame), "not valid SIP");
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
        let status = t.state.apply(&ch);
        t.pending = Some(status);
        self.dirty.insert(ch.user);
    }

    /// Send `user`'s current status again (unless a newer one waits).
    fn resend(&mut self, user: &str) {
        if let Some(t) = self.terminals.get_mut(user) {
            t.pending = t.pending.or(t.status);
            self.dirty.insert(user.to_string());
        }
    }

    /// Send what waits, each terminal at most once per
    /// `publish_interval_ms`; a terminal held back stays waiting.
    async fn flush(&mut self) {
        let interval = Duration::from_millis(self.cfg.publish_interval_ms);
        let waiting: Vec<String> = self.dirty.iter().cloned().collect();
        for user in waiting {
            let due = match self.terminals.get(&user) {
                Some(t) if t.pending.is_some() => {
                    t.last_sent.is_none_or(|l| l.elapsed() >= interval)
                }
                _ => {
                    self.dirty.remove(&user);
                    continue;
                }
            };
            if due {
                self.dirty.remove(&user);
                self.send(&user).await;
            }
        }
    }

    async fn send(&mut self, user: &str) {
        let Some(t) = self.terminals.get_mut(user) else {
            return;
        };
        let Some(status) = t.pending.take() else {
            return;
        };
        t.last_sent = Some(Instant::now());
        t.status = Some(status);
        let body = t.state.document(user, status);
        // A state change always carries the full document; the ETag
        // names the publication it modifies (RFC 3903 §4.4).
        let expires = if status == Status::Offline {
            0
        } else {
            self.cfg.publish_expires_secs
        };
        self.publish(user, &body, expires).await;
    }

    /// Refresh the publications due (RFC 3903 §4.3: SIP-If-Match, no
    /// body), so the server keeps the status; with the REGISTER carrier,
    /// the status is sent again.
    async fn refresh(&mut self) {
        let now = self.now();
        while let Some((at, user)) = self.refresh_due.first().cloned() {
            if at > now {
                break;
            }
            self.refresh_due.pop_first();
            let Some(t) = self.terminals.get_mut(&user) else {
                continue;
            };
            if t.refresh_at != Some(at) {
                continue; // stale: refreshed or made final since
            }
            t.refresh_at = None;
            if t.pending.is_some() || self.outstanding_of.contains_key(&user) {
                continue; // what goes out next sets the next refresh
            }
            match (self.cfg.carrier, t.etag.is_some()) {
                (Carrier::Publish, true) => {
                    self.status.lock().unwrap().publish_refreshed += 1;
                    self.publish(&user, "", self.cfg.publish_expires_secs).await;
                }
                _ => self.resend(&user),
            }
        }
    }

    /// Send `user`'s request carrying `body` (empty: a refresh), the only
    /// one of theirs retransmitted from now on.
    async fn publish(&mut self, user: &str, body: &str, expires: u32) {
        let ready = self.link.ready().await;
        if let Err(e) = &ready {
            warn!(error = %e, server = %self.cfg.presence, "presence server unreachable; retrying on timer E");
        }
        let local = self.link.local.clone();
        let transport = self.link.transport();
        let server = self.cfg.presence.to_string();
        let Some(t) = self.terminals.get_mut(user) else {
            return;
        };
        t.cseq += 1;
        let call_id = format!("pub-{}-{}", user.replace('@', "-"), t.cseq);
        let msg = match self.cfg.carrier {
            Carrier::Register => {
                presence::register_with_status(user, &local, &call_id, t.cseq, expires, body)
            }
            Carrier::Publish => presence::publish(
                user,
                &server,
                &local,
                &call_id,
                t.cseq,
                t.etag.as_deref(),
                expires,
                body,
            ),
        };
        let msg = presence::via_transport(msg, transport).into_bytes();
        // Only the newest status is worth retransmitting.
        if let Some(old) = self
            .outstanding_of
            .insert(user.to_string(), call_id.clone())
        {
            if self.outstanding.remove(&old).is_some() {
                self.status.lock().unwrap().publish_superseded += 1;
            }
        }
        let sent = ready.is_ok() && self.transmit(&msg).await;
        let now = self.now();
        self.outstanding.insert(
            call_id,
            Outstanding {
                user: user.to_string(),
                msg,
                timer: NonInvite::new(now),
                sent,
            },
        );
    }

    /// One request out, counted; false if it could not be sent.
    async fn transmit(&mut self, msg: &[u8]) -> bool {
        match self.link.send(msg).await {
            Ok(()) => {
                self.status.lock().unwrap().published += 1;
                true
            }
            Err(e) => {
                warn!(error = %e, "request to the presence server not sent");
                false
            }
        }
    }

    async fn response(&mut self, data: &[u8]) {
        let Ok((m, _)) = sip::parse(data) else { return };
        let Some(status) = m.status() else { return };
        if status < 200 {
            // Proceeding: retransmissions slow to T2, the wait goes on.
            if let Some(o) = self.outstanding.get_mut(&m.call_id) {
                o.timer.provisional();
            }
            return;
        }
        let Some(o) = self.outstanding.remove(&m.call_id) else {
            return;
        };
        let user = o.user;
        self.outstanding_of.remove(&user);
        match status {
            200..=299 => {
                self.status.lock().unwrap().publish_ok += 1;
                let now = self.now();
                if let Some(t) = self.terminals.get_mut(&user) {
                    t.etag = m.etag.clone();
                    t.failures = 0;
                    // What the server granted (it may shorten it); a
                    // final status (offline, Expires 0) is not refreshed.
                    let granted = m.expires.unwrap_or(0);
                    t.refresh_at = (granted > 0 && t.status != Some(Status::Offline))
                        .then(|| now + u64::from(granted) * 900);
                    if let Some(at) = t.refresh_at {
                        self.refresh_due.insert((at, user.clone()));
                    }
                }
            }
            412 => {
                // The server lost the publication: start over with a new
                // one carrying the current state (RFC 3903 §4.4).
                if let Some(t) = self.terminals.get_mut(&user) {
                    t.etag = None;
                }
                self.resend(&user);
            }
            _ => self.failed(&user),
        }
    }

    /// A request for `user` failed (an error response or timer F): count
    /// it and send the terminal's newest status again, a few times.
    fn failed(&mut self, user: &str) {
        self.status.lock().unwrap().publish_failed += 1;
        if let Some(t) = self.terminals.get_mut(user) {
            t.failures += 1;
            if t.failures <= PUBLISH_RETRIES {
                // A newer change already waiting goes instead.
                self.resend(user);
            } else {
                warn!(
                    user,
                    "presence server keeps refusing; waiting for the next change"
                );
            }
        }
    }

    /// Timers E and F of the outstanding requests.
    async fn retransmit(&mut self) {
        let now = self.now();
        let reliable = self.link.reliable();
        let mut again = Vec::new();
        let mut unsent = Vec::new();
        let mut timed_out = Vec::new();
        for (id, o) in self.outstanding.iter_mut() {
            match o.timer.poll(now) {
                Step::Wait => {}
                // Over TCP a request that went out is only waited for.
                Step::Retransmit if o.sent && reliable => {}
                Step::Retransmit if o.sent => again.push(o.msg.clone()),
                Step::Retransmit => unsent.push(id.clone()),
                Step::TimedOut => timed_out.push(id.clone()),
            }
        }
        for m in again {
            if self.link.send(&m).await.is_ok() {
                self.status.lock().unwrap().publish_retransmitted += 1;
            }
        }
        for id in unsent {
            if self.link.ready().await.is_err() {
                break;
            }
            let Some(msg) = self.outstanding.get(&id).map(|o| o.msg.clone()) else {
                continue;
            };
            if self.transmit(&msg).await {
                if let Some(o) = self.outstanding.get_mut(&id) {
                    o.sent = true;
                }
            }
        }
        for id in timed_out {
            if let Some(o) = self.outstanding.remove(&id) {
                self.outstanding_of.remove(&o.user);
                self.status.lock().unwrap().publish_timeouts += 1;
                warn!(user = %o.user, "no answer from the presence server within 64*T1");
                self.failed(&o.user);
            }
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

/// The UDP payload, or the TCP segment, of an Ethernet frame carrying
/// IPv4 or IPv6 (hop-by-hop, routing and destination options headers
/// walked, at most 6, as the XDP program does; a fragment is not SIP the
/// monitor can read).
fn segment(f: &[u8]) -> Option<Segment<'_>> {
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

/// The unspecified address of `peer`'s family, any port: where a socket
/// that talks to `peer` binds.
pub fn unspecified(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
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
        assert_eq!(
            unspecified("[2001:db8::1]:5070".parse().unwrap()),
            "[::]:0".parse::<SocketAddr>().unwrap()
        );
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
