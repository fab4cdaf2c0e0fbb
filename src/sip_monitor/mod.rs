//! The `sip-monitor` role's edge: the XDP copy program on the session
//! control server's interfaces, the ring buffer reader, the tracker, and
//! the publisher that sends PUBLISH to the presence server.

pub mod cli;
mod frame;
mod journal;
mod link;
mod persist;
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
    /// Over TCP: connections opened to the presence server, and requests
    /// sent again on a new one because theirs closed before the answer.
    pub presence_connections: u64,
    pub publish_resent: u64,
    /// TLS handshakes with the presence server that failed.
    pub presence_tls_failed: u64,
    pub dialogs: usize,
    /// Taken up from the state file and its journal at start: dialogs,
    /// registrations and terminals, how long the monitor was down, and
    /// why restored dialogs were ended (copies lost while it was down),
    /// if they were.
    pub restored_dialogs: usize,
    pub restored_registrations: usize,
    pub restored_terminals: usize,
    /// Journal records replayed over the snapshot.
    pub restored_journal: usize,
    pub restored_after_ms: Option<u64>,
    pub restore_note: Option<String>,
    /// State file writes, and those that failed.
    pub state_saves: u64,
    pub state_save_failed: u64,
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
    /// Something worth saving changed since the state file was written.
    state_dirty: bool,
    /// What happened since the snapshot (`<state_file>.journal`).
    journal: journal::Journal,
    /// When the snapshot was last taken, and its write if not done.
    saved_at: Option<Instant>,
    saving: Option<persist::Saving>,
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
            || cfg.presence_tls != self.cfg.presence_tls
        {
            self.link = link::Link::open(
                cfg.presence,
                cfg.presence_transport,
                cfg.presence_tls.as_ref(),
            )
            .await?;
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
        let link = link::Link::open(
            cfg.presence,
            cfg.presence_transport,
            cfg.presence_tls.as_ref(),
        )
        .await?;
        let mut tracker = Tracker::new(tracker_config(&cfg));
        let status = Arc::new(Mutex::new(MonitorStatus {
            interfaces: cfg.interfaces.clone(),
            ..Default::default()
        }));
        let persist::Restored {
            terminals,
            ended,
            journal_last,
            clock_ms,
        } = persist::restore(&cfg, &mut dp, &mut tracker, &status)?;
        info!(interfaces = ?cfg.interfaces, domain = %cfg.domain, presence = %cfg.presence, "sip monitor on");
        let dirty = terminals
            .iter()
            .filter(|(_, t)| t.pending.is_some())
            .map(|(u, _)| u.clone())
            .collect();
        let cfg_state_file = cfg.state_file.clone();
        let mut m = Self {
            cfg,
            dp,
            tracker,
            tcp: Default::default(),
            link,
            terminals,
            outstanding: HashMap::new(),
            outstanding_of: HashMap::new(),
            dirty,
            refresh_due: Default::default(),
            status,
            // The restored state's times count from its snapshot: the
            // clock starts where the downtime left it.
            started: Instant::now()
                .checked_sub(Duration::from_millis(clock_ms))
                .unwrap_or_else(Instant::now),
            // What was restored is written again at once, and the
            // journal starts over.
            state_dirty: true,
            journal: journal::Journal::new(&cfg_state_file, journal_last).map_err(|e| {
                anyhow::anyhow!("sip_monitor journal of {}: {e}", cfg_state_file.display())
            })?,
            saved_at: None,
            saving: None,
        };
        for (user, t) in &m.terminals {
            if let Some(at) = t.refresh_at {
                m.refresh_due.insert((at, user.clone()));
            }
        }
        for ch in ended {
            m.note(ch);
        }
        m.save_state();
        Ok(m)
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
                    self.save_state();
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
        if !copies.is_empty() {
            let frames: Vec<&[u8]> = copies.iter().map(|c| c.frame.as_slice()).collect();
            let r = self.journal.append_copies(now, &frames);
            self.journal_failed(r);
        }
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
        // Counted here and added to the status once per batch.
        let mut parsed = 0u64;
        let mut refused: HashMap<std::borrow::Cow<'static, str>, u64> = HashMap::new();
        for c in copies {
            let results = frame::messages(&mut self.tcp, &c.frame);
            for r in results {
                match r {
                    Ok(m) => {
                        parsed += 1;
                        changes.extend(self.tracker.handle(&m, now));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, frame = ?String::from_utf8_lossy(&c.frame), "not valid SIP");
                        *refused.entry(e.reason()).or_insert(0) += 1;
                    }
                }
            }
            // A change goes out at once, not after the rest of the batch
            // (which a flood of what is not SIP would make long).
            if !changes.is_empty() {
                for ch in std::mem::take(&mut changes) {
                    self.note(ch);
                }
                self.flush().await;
            }
        }
        changes.extend(self.tracker.tick(now));
        for ch in changes {
            self.note(ch);
        }
        if parsed > 0 {
            self.state_dirty = true;
        }
        self.save_state();
        self.flush().await;
        let mut st = self.status.lock().unwrap();
        st.dialogs = self.tracker.dialogs();
        st.parsed += parsed;
        for (reason, n) in refused {
            match st.invalid.get_mut(reason.as_ref()) {
                Some(c) => *c += n,
                None => {
                    st.invalid.insert(reason.into_owned(), n);
                }
            }
        }
        Ok(())
    }

    /// Record a change for its terminal (claims 34-43: the document
    /// reflects every session of the terminal).
    fn note(&mut self, ch: Change) {
        self.status.lock().unwrap().changes += 1;
        self.state_dirty = true;
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
        let ready = self.ready().await;
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
        let (cseq, status) = (t.cseq, (!body.is_empty()).then_some(t.status).flatten());
        // Journaled before it goes out, so a restarted monitor never
        // sends this CSeq again (the server would take it as a replay).
        self.journal_append(journal::Record::Sent {
            seq: 0,
            user: user.to_string(),
            cseq,
            status,
        });
        let Some(t) = self.terminals.get_mut(user) else {
            return;
        };
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

    /// The link ready to send (connected, over TCP), its connections
    /// counted.
    async fn ready(&mut self) -> std::io::Result<()> {
        let r = self.link.ready().await;
        let mut st = self.status.lock().unwrap();
        st.presence_connections = self.link.opened;
        st.presence_tls_failed = self.link.tls_failed;
        drop(st);
        r
    }

    /// Append to the journal; a failure is counted with the state file's
    /// (a restart then misses what it did not record).
    fn journal_append(&mut self, rec: journal::Record) {
        let r = self.journal.append(rec);
        self.journal_failed(r);
    }

    fn journal_failed(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.status.lock().unwrap().state_save_failed += 1;
            warn!(file = %self.journal.path().display(), "journal not written: {e}");
        }
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
            if let Some(o) = self.outstanding.get_mut(&*m.call_id) {
                o.timer.provisional();
            }
            return;
        }
        let Some(o) = self.outstanding.remove(&*m.call_id) else {
            return;
        };
        let user = o.user;
        self.outstanding_of.remove(&user);
        match status {
            200..=299 => {
                self.status.lock().unwrap().publish_ok += 1;
                self.state_dirty = true;
                let now = self.now();
                if let Some(t) = self.terminals.get_mut(&user) {
                    t.etag = m.etag.as_deref().map(str::to_string);
                    t.failures = 0;
                    // What the server granted (it may shorten it); a
                    // final status (offline, Expires 0) is not refreshed.
                    let granted = m.expires.unwrap_or(0);
                    t.refresh_at = (granted > 0 && t.status != Some(Status::Offline))
                        .then(|| now + u64::from(granted) * 900);
                    if let Some(at) = t.refresh_at {
                        self.refresh_due.insert((at, user.clone()));
                    }
                    let rec = journal::Record::Answered {
                        seq: 0,
                        user: user.clone(),
                        etag: t.etag.clone(),
                        refresh_unix_ms: t
                            .refresh_at
                            .map(|at| persist::unix_ms() + at.saturating_sub(now)),
                    };
                    self.journal_append(rec);
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
        if self.link.broken() {
            // The connection closed under requests sent on it: they go
            // again on a new one, at their next timer E (RFC 3261 §18.1:
            // a transport error ends the attempt, not the request).
            let mut resent = 0;
            for o in self.outstanding.values_mut().filter(|o| o.sent) {
                o.sent = false;
                resent += 1;
            }
            self.status.lock().unwrap().publish_resent += resent;
        }
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
            if self.ready().await.is_err() {
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

    #[test]
    fn a_socket_toward_an_ipv6_server_binds_the_ipv6_unspecified_address() {
        assert_eq!(
            unspecified("[2001:db8::1]:5070".parse().unwrap()),
            "[::]:0".parse::<SocketAddr>().unwrap()
        );
    }
}
