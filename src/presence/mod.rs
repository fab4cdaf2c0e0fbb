//! The `presence` role: receives PUBLISH over UDP (RFC 3903), answers it,
//! and keeps the statuses in the store, reconciled per terminal.

pub mod cli;
mod role;
mod watchers;

pub use role::PresenceRole;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use control::{
    presence::{self, config::Presence, Store},
    sip_monitor::sip,
};
use tracing::{info, warn};

use crate::sip_monitor::{peer_ip, response};
use watchers::Subscription;

/// The longest publication the server grants (RFC 3903 §6 step 5 lets it
/// shorten what is asked); none asked is an hour.
const MAX_PUBLICATION_SECS: u32 = 86_400;

/// The interval a PUBLISH is granted, echoed in the 200's Expires.
fn publication_expires(m: &sip::Message) -> u32 {
    m.expires.unwrap_or(3600).min(MAX_PUBLICATION_SECS)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the server counted: requests by method, answers by status code,
/// statuses stored, NOTIFYs sent.
#[derive(Clone, Debug, Default)]
pub struct PresenceCounters {
    pub requests: BTreeMap<String, u64>,
    pub answers: BTreeMap<u16, u64>,
    pub updates: u64,
    pub notifies: u64,
    /// Statuses turned offline because their publication lapsed.
    pub expired: u64,
    /// Requests seen again while their transaction lasted, answered as
    /// before without a second processing.
    pub retransmissions: u64,
    /// PUBLISH or REGISTER from a source `allow` does not name (spoofed,
    /// or misconfigured): 403, nothing stored.
    pub refused_source: u64,
    /// PUBLISH or REGISTER whose CSeq is not above the last one taken on
    /// its Call-ID, after its transaction ended (a replay): 403, nothing
    /// stored.
    pub replayed: u64,
    /// SIP over TLS: connections whose handshake completed, and those
    /// refused (no or an unverified client certificate, not TLS).
    pub tls_connections: u64,
    pub tls_refused: u64,
    /// PUBLISH or REGISTER for a user and source the store does not hold,
    /// when it holds `presence.max_statuses`: 503, nothing stored.
    pub refused_store_full: u64,
    /// Initial PUBLISH when the store holds `presence.max_etags` live
    /// entity-tags: 503, nothing stored.
    pub refused_etags_full: u64,
    /// SUBSCRIBE that would open a subscription past
    /// `presence.max_subscriptions`: 503.
    pub refused_subscriptions_full: u64,
    /// Answered transactions forgotten before their 32 s because
    /// `ANSWERED_KEEP` were held (a retransmission of one is processed
    /// again: its CSeq then makes it a replay).
    pub answers_forgotten: u64,
}

/// How long the last CSeq of a Call-ID is remembered against replays (a
/// publication lasts at most a day; the monitor's, an hour by default).
const REPLAY_SECS: u64 = 86_400;
/// At most this many Call-IDs remembered; past it the oldest go first.
const REPLAY_KEEP: usize = 100_000;

/// How long an answered request is remembered (RFC 3261 timer J, 64*T1).
const TRANSACTION_SECS: u64 = 32;
/// At most this many answered transactions remembered; past it the oldest
/// go first (counted `answers_forgotten`).
const ANSWERED_KEEP: usize = 100_000;

/// A request's server transaction (RFC 3261 §17.2.3): its branch (with the
/// magic cookie, else Call-ID and CSeq stand in for it), method and
/// sender. None for a response, an ACK or what does not parse.
fn transaction_key(raw: &[u8], peer: SocketAddr) -> Option<String> {
    let (m, _) = sip::parse(raw).ok()?;
    let sip::StartLine::Request { method, .. } = &m.start else {
        return None;
    };
    if method == "ACK" {
        return None;
    }
    let id = match m.via_branch.as_deref() {
        Some(b) if b.starts_with("z9hG4bK") => b.to_string(),
        _ => format!("{}/{}", m.call_id, m.cseq),
    };
    Some(format!("{id}|{method}|{peer}"))
}

pub struct Server {
    cfg: Presence,
    pub store: Arc<Mutex<Store>>,
    pub counters: Arc<Mutex<PresenceCounters>>,
    /// Prefixes PUBLISH and REGISTER are accepted from; a reload replaces
    /// them.
    pub allow: Arc<Mutex<Vec<control::field::IpPrefix>>>,
    sock: tokio::net::UdpSocket,
    /// Answers of the requests of the last `TRANSACTION_SECS`, by
    /// transaction.
    answered: std::collections::HashMap<String, (String, std::time::Instant)>,
    /// `answered`'s keys, oldest first.
    answered_order: std::collections::VecDeque<String>,
    /// Call-ID → the last CSeq taken on it (PUBLISH, status REGISTER), and
    /// when: what is not above it is a replay.
    taken: std::collections::HashMap<String, (u32, std::time::Instant)>,
    /// `taken`'s Call-IDs in the order they were taken (an entry whose
    /// time is no longer its Call-ID's is stale), so the oldest goes
    /// first without a search.
    taken_order: std::collections::VecDeque<(String, std::time::Instant)>,
    /// The TLS listener (bound at start, so a taken port fails the start)
    /// and its acceptor, until `run` serves them.
    tls: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
    /// Watchers (RFC 3856) per presentity.
    subs: Vec<Subscription>,
    /// `presence.max_subscriptions`; a reload sets it.
    pub max_subscriptions: Arc<std::sync::atomic::AtomicU64>,
    tags: u64,
}

/// How a peer is answered: by datagram, or on the TCP connection its
/// request came in on (RFC 3261 §18.2.2; its writer task).
#[derive(Clone)]
enum Route {
    Udp(SocketAddr),
    /// A TCP connection, with TLS on it or not.
    Stream {
        conn: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
        tls: bool,
    },
}

impl Route {
    fn transport(&self) -> &'static str {
        match self {
            Route::Udp(_) => "UDP",
            Route::Stream { tls: false, .. } => "TCP",
            Route::Stream { tls: true, .. } => "TLS",
        }
    }

    /// False when the datagram could not be sent or the connection is
    /// gone.
    async fn send(&self, sock: &tokio::net::UdpSocket, msg: &[u8]) -> bool {
        match self {
            Route::Udp(peer) => sock.send_to(msg, peer).await.is_ok(),
            Route::Stream { conn, .. } => conn.send(msg.to_vec()).is_ok(),
        }
    }
}

/// 503 for what a full bound refused, saying which (RFC 3261 §21.5.4).
fn full_answer(m: &sip::Message<'_>, raw: &[u8], what: &str) -> String {
    response(
        m,
        raw,
        503,
        "Service Unavailable",
        &format!("Warning: 399 presence \"{what}\"\r\n"),
    )
}

/// A message from a TCP connection: its bytes, the peer, the way back.
type FromTcp = (Vec<u8>, SocketAddr, Route);

impl Server {
    pub async fn start(cfg: Presence) -> anyhow::Result<Self> {
        let db = cfg.database.to_string_lossy().into_owned();
        let is_url = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if let (false, Some(dir)) = (is_url, cfg.database.parent()) {
            std::fs::create_dir_all(dir)?;
        }
        // The PostgreSQL client blocks on a runtime of its own: every store
        // call leaves the async context first.
        let mut store = tokio::task::block_in_place(|| Store::open_url(&db))
            .map_err(|e| anyhow::anyhow!("presence database {db}: {e}"))?;
        store.set_max_statuses(cfg.max_statuses);
        store.set_max_etags(cfg.max_etags);
        store.set_max_history(cfg.max_history);
        let sock = tokio::net::UdpSocket::bind(cfg.listen)
            .await
            .map_err(|e| anyhow::anyhow!("presence listen {}: {e}", cfg.listen))?;
        let tls = match &cfg.tls {
            Some(t) => {
                use anyhow::Context as _;
                let c = crate::tls::server(&t.cert, &t.key, t.client_ca.as_deref())
                    .context("presence.tls")?;
                let l = tokio::net::TcpListener::bind(t.listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("presence tls.listen {}: {e}", t.listen))?;
                info!(listen = %t.listen, mutual = t.client_ca.is_some(), "presence over TLS");
                Some((l, tokio_rustls::TlsAcceptor::from(c)))
            }
            None => None,
        };
        info!(listen = %cfg.listen, "presence server on");
        Ok(Self {
            max_subscriptions: Arc::new(cfg.max_subscriptions.into()),
            allow: Arc::new(Mutex::new(cfg.allow.clone())),
            cfg,
            store: Arc::new(Mutex::new(store)),
            counters: Default::default(),
            sock,
            answered: Default::default(),
            answered_order: Default::default(),
            taken: Default::default(),
            taken_order: Default::default(),
            tls,
            subs: Vec::new(),
            tags: 0,
        })
    }

    fn allowed(&self, peer: SocketAddr) -> bool {
        control::presence::config::allowed(&self.allow.lock().unwrap(), peer.ip())
    }

    /// Serve UDP on the socket and TCP on the same address; TCP
    /// connections hand their messages to this loop and get the answer
    /// back on the connection.
    pub async fn run(mut self) {
        let (tcp_tx, mut tcp_rx) = tokio::sync::mpsc::channel::<FromTcp>(64);
        match tokio::net::TcpListener::bind(self.cfg.listen).await {
            Ok(l) => {
                tokio::spawn(accept(l, tcp_tx.clone()));
            }
            Err(e) => warn!(error = %e, "presence: no TCP listener"),
        }
        if let Some((l, tls)) = self.tls.take() {
            tokio::spawn(accept_tls(l, tls, tcp_tx.clone(), self.counters.clone()));
        }
        let mut buf = vec![0u8; 65536];
        // Publications that lapse unrefreshed are swept once a second.
        let mut sweep = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    self.expire().await;
                    let keep = std::time::Duration::from_secs(TRANSACTION_SECS);
                    while let Some(k) = self.answered_order.front() {
                        match self.answered.get(k) {
                            Some((_, at)) if at.elapsed() < keep => break,
                            _ => {
                                self.answered.remove(k);
                                self.answered_order.pop_front();
                            }
                        }
                    }
                    let now = std::time::Instant::now();
                    self.subs.retain(|s| s.expires_at > now);
                    let replay = std::time::Duration::from_secs(REPLAY_SECS);
                    while self
                        .taken_order
                        .front()
                        .is_some_and(|(_, at)| at.elapsed() >= replay)
                    {
                        let (id, at) = self.taken_order.pop_front().expect("checked");
                        if self.taken.get(&id).is_some_and(|(_, t)| *t == at) {
                            self.taken.remove(&id);
                        }
                    }
                }
                r = self.sock.recv_from(&mut buf) => {
                    let Ok((n, peer)) = r else { continue };
                    let raw = buf[..n].to_vec();
                    self.handle(&raw, peer, Route::Udp(peer)).await;
                }
                Some((raw, peer, route)) = tcp_rx.recv() => {
                    self.handle(&raw, peer, route).await;
                }
            }
        }
    }

    /// Statuses whose publication lapsed turn offline; their watchers
    /// are told.
    async fn expire(&mut self) {
        let store = self.store.clone();
        let now = unix_now();
        match tokio::task::block_in_place(|| store.lock().unwrap().expire(now)) {
            Ok(users) => {
                self.counters.lock().unwrap().expired += users.len() as u64;
                for u in users {
                    info!(user = %u, "publication lapsed; offline");
                    self.notify_all(&u).await;
                }
            }
            Err(e) => warn!(error = %e, "presence store failed (expiry sweep)"),
        }
    }

    /// One request in, its answer sent back the way it came, counted.
    async fn handle(&mut self, raw: &[u8], peer: SocketAddr, route: Route) {
        // A retransmission of a request already answered gets the same
        // answer again, not a second processing (RFC 3261 §17.2.2: the
        // server transaction, kept for timer J).
        let key = transaction_key(raw, peer);
        if let Some(k) = &key {
            if let Some((reply, _)) = self.answered.get(k) {
                let reply = reply.clone();
                self.counters.lock().unwrap().retransmissions += 1;
                route.send(&self.sock, reply.as_bytes()).await;
                return;
            }
        }
        let reply = self.answer(raw, peer, &route).await;
        if let (Some(k), Some(r)) = (key, &reply) {
            if self.answered.len() >= ANSWERED_KEEP {
                if let Some(old) = self.answered_order.pop_front() {
                    self.answered.remove(&old);
                    self.counters.lock().unwrap().answers_forgotten += 1;
                }
            }
            self.answered_order.push_back(k.clone());
            self.answered
                .insert(k, (r.clone(), std::time::Instant::now()));
        }
        let code = reply
            .as_deref()
            .and_then(|r| r.split(' ').nth(1))
            .and_then(|c| c.parse::<u16>().ok());
        if let Some(code) = code {
            *self
                .counters
                .lock()
                .unwrap()
                .answers
                .entry(code)
                .or_insert(0) += 1;
        }
        if let Some(reply) = reply {
            route.send(&self.sock, reply.as_bytes()).await;
        }
    }

    async fn answer(&mut self, raw: &[u8], peer: SocketAddr, route: &Route) -> Option<String> {
        let Ok((m, _)) = sip::parse(raw) else {
            *self
                .counters
                .lock()
                .unwrap()
                .requests
                .entry("invalid".into())
                .or_insert(0) += 1;
            return None;
        };
        if m.status().is_none() {
            *self
                .counters
                .lock()
                .unwrap()
                .requests
                .entry(m.method().to_ascii_lowercase())
                .or_insert(0) += 1;
        }
        let reply = if m.status().is_some() {
            return None; // a watcher's answer to a NOTIFY
        } else if m.method() == "SUBSCRIBE" {
            self.subscribe(&m, raw, route).await;
            return None;
        } else if m.method() == "REGISTER" && !m.body.is_empty() {
            // Claim 20: a REGISTER carrying the status document.
            self.update(&m, raw, peer).await
        } else if m.method() == "REGISTER" {
            response(
                &m,
                raw,
                200,
                "OK",
                &format!("Expires: {}\r\n", m.expires.unwrap_or(3600)),
            )
        } else if m.method() != "PUBLISH" {
            response(&m, raw, 405, "Method Not Allowed", "Allow: PUBLISH\r\n")
        } else if !self.allowed(peer) {
            self.counters.lock().unwrap().refused_source += 1;
            response(&m, raw, 403, "Forbidden", "")
        } else if m.event.as_deref() != Some("presence") {
            response(&m, raw, 489, "Bad Event", "Allow-Events: presence\r\n")
        } else if !self.etag_ok(&m) {
            // RFC 3903 §6: an ETag no server of this store issued (or one
            // expired or replaced since).
            response(&m, raw, 412, "Conditional Request Failed", "")
        } else if let Err(e) = self.etag_room(&m) {
            self.store_failed(&m, raw, &e, " (entity-tags)")
        } else {
            self.update(&m, raw, peer).await
        };
        Some(reply)
    }

    /// Store the status a PUBLISH (or a status-carrying REGISTER) brings,
    /// notify the watchers, and build the answer.
    async fn update(&mut self, m: &sip::Message<'_>, raw: &[u8], peer: SocketAddr) -> String {
        if !self.allowed(peer) {
            self.counters.lock().unwrap().refused_source += 1;
            return response(m, raw, 403, "Forbidden", "");
        }
        if !self.take(m) {
            self.counters.lock().unwrap().replayed += 1;
            warn!(call_id = %m.call_id, cseq = m.cseq, %peer, "replayed request refused");
            return response(
                m,
                raw,
                403,
                "Forbidden",
                "Warning: 399 presence \"replayed CSeq\"\r\n",
            );
        }
        let body = String::from_utf8_lossy(&m.body);
        let at = unix_now();
        let user = m.to.aor();
        let source = peer_ip(peer);
        let store = self.store.clone();
        let granted = publication_expires(m);
        // What the status lasts: the granted interval, or for good when
        // the publication ends with it (Expires 0: the monitor's offline).
        let until = (granted > 0).then(|| at + f64::from(granted));
        match presence::pidf_status(&body) {
            Some(status) => {
                let stored = tokio::task::block_in_place(|| {
                    store
                        .lock()
                        .unwrap()
                        .apply(&user, &source, status, at, until)
                });
                match stored {
                    Ok(_) => {
                        self.counters.lock().unwrap().updates += 1;
                        let r = self.accepted(m, raw);
                        self.notify_all(&user).await;
                        r
                    }
                    Err(e) => self.store_failed(m, raw, &e, ""),
                }
            }
            // A refresh: nothing changes but the lifetime; Expires 0
            // removes the publication (RFC 3903 §4.5), its status final.
            None if m.if_match.is_some() && m.body.is_empty() => {
                let done = tokio::task::block_in_place(|| {
                    let mut st = store.lock().unwrap();
                    match until {
                        Some(until) => st.refresh(&user, &source, until).map(|_| false),
                        None => st
                            .apply(
                                &user,
                                &source,
                                control::sip_monitor::track::Status::Offline,
                                at,
                                None,
                            )
                            .map(|_| true),
                    }
                });
                match done {
                    Ok(removed) => {
                        let r = self.accepted(m, raw);
                        if removed {
                            self.counters.lock().unwrap().updates += 1;
                            self.notify_all(&user).await;
                        }
                        r
                    }
                    Err(e) => self.store_failed(m, raw, &e, " (refresh)"),
                }
            }
            None => response(m, raw, 400, "Bad Request", ""),
        }
    }

    /// The answer to a request the store did not take: 503 when it is full
    /// (counted; a new user or source beyond `presence.max_statuses`),
    /// else 500.
    fn store_failed(
        &self,
        m: &sip::Message<'_>,
        raw: &[u8],
        e: &presence::StoreError,
        what: &str,
    ) -> String {
        let full = match e {
            presence::StoreError::Full { max } => {
                self.counters.lock().unwrap().refused_store_full += 1;
                Some(format!("{max} statuses"))
            }
            presence::StoreError::EtagsFull { max } => {
                self.counters.lock().unwrap().refused_etags_full += 1;
                Some(format!("{max} entity-tags"))
            }
            _ => None,
        };
        if let Some(what) = full {
            warn!(user = %m.to.aor(), "presence store full ({what}): a new publication refused");
            return full_answer(m, raw, &format!("store full: {what}"));
        }
        warn!(error = %e, "presence store failed{what}");
        response(m, raw, 500, "Server Internal Error", "")
    }

    /// Take a request's CSeq on its Call-ID: false if it is not above the
    /// last one taken there (a replay; a retransmission within its
    /// transaction never gets here).
    fn take(&mut self, m: &sip::Message<'_>) -> bool {
        let now = std::time::Instant::now();
        if let Some((last, _)) = self.taken.get(&*m.call_id) {
            if m.cseq <= *last {
                return false;
            }
        } else {
            while self.taken.len() >= REPLAY_KEEP {
                self.forget_oldest_taken();
            }
        }
        self.taken.insert(m.call_id.to_string(), (m.cseq, now));
        self.taken_order.push_back((m.call_id.to_string(), now));
        // Call-IDs taken again leave stale entries behind: past twice
        // what is held, the order is made anew from the map.
        if self.taken_order.len() > 2 * self.taken.len() + 1024 {
            let mut order: Vec<(String, std::time::Instant)> = self
                .taken
                .iter()
                .map(|(id, (_, at))| (id.clone(), *at))
                .collect();
            order.sort_by_key(|(_, at)| *at);
            self.taken_order = order.into();
        }
        true
    }

    /// Forget the Call-ID taken longest ago (skipping the order's stale
    /// entries).
    fn forget_oldest_taken(&mut self) {
        while let Some((id, at)) = self.taken_order.pop_front() {
            if self.taken.get(&id).is_some_and(|(_, t)| *t == at) {
                self.taken.remove(&id);
                return;
            }
        }
    }

    /// A new publication (no SIP-If-Match) gets a new entity-tag: refused
    /// before anything is stored when the store holds `max_etags`.
    fn etag_room(&self, m: &sip::Message) -> Result<(), presence::StoreError> {
        if m.if_match.is_some() {
            return Ok(());
        }
        let store = self.store.clone();
        let mut st = store.lock().unwrap();
        if tokio::task::block_in_place(|| st.etag_room(unix_now()))? {
            Ok(())
        } else {
            Err(presence::StoreError::EtagsFull {
                max: st.max_etags(),
            })
        }
    }

    /// A PUBLISH's SIP-If-Match, if any, names a live entity-tag of its
    /// presentity in the store (issued by this server or another one on
    /// the same database, before a restart or not).
    fn etag_ok(&self, m: &sip::Message) -> bool {
        let Some(e) = &m.if_match else {
            return true;
        };
        let user = m.to.aor();
        let store = self.store.clone();
        match tokio::task::block_in_place(|| store.lock().unwrap().etag_valid(e, &user, unix_now()))
        {
            Ok(v) => v,
            Err(err) => {
                warn!(error = %err, "presence store failed (entity-tag check)");
                false
            }
        }
    }

    /// 200 with a new entity-tag (replacing the one the request named),
    /// or 412 if that one was replaced meanwhile (another server took the
    /// same refresh), or 500 if the store failed.
    fn accepted(&self, m: &sip::Message<'_>, raw: &[u8]) -> String {
        let expires = publication_expires(m);
        let user = m.to.aor();
        let now = unix_now();
        let store = self.store.clone();
        let issued = tokio::task::block_in_place(|| {
            store.lock().unwrap().etag_issue(
                &user,
                m.if_match.as_deref(),
                now,
                now + f64::from(expires),
            )
        });
        match issued {
            Ok(Some(e)) => response(
                m,
                raw,
                200,
                "OK",
                &format!("SIP-ETag: {e}\r\nExpires: {expires}\r\n"),
            ),
            Ok(None) => response(m, raw, 412, "Conditional Request Failed", ""),
            Err(e @ presence::StoreError::EtagsFull { .. }) => {
                // Another server of the database took the last room
                // since `etag_room` (the status is stored; its refresh
                // will be refused and it lapses).
                self.store_failed(m, raw, &e, " (entity-tag)")
            }
            Err(err) => {
                warn!(error = %err, "presence store failed (entity-tag)");
                response(m, raw, 500, "Server Internal Error", "")
            }
        }
    }
}

/// Accept TCP connections; each reassembles its stream into messages and
/// hands them to the server loop with the connection's way back (a writer
/// task), on which the answers and a subscription's NOTIFYs are written.
async fn accept(l: tokio::net::TcpListener, tx: tokio::sync::mpsc::Sender<FromTcp>) {
    loop {
        let Ok((conn, peer)) = l.accept().await else {
            continue;
        };
        let (rd, wr) = conn.into_split();
        serve_stream(rd, wr, peer, false, tx.clone());
    }
}

/// Accept SIP over TLS (RFC 3261 §26): a handshake that fails (within
/// 5 s) is refused and counted; a connection that completes it is served
/// as a TCP one.
async fn accept_tls(
    l: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    tx: tokio::sync::mpsc::Sender<FromTcp>,
    counters: Arc<Mutex<PresenceCounters>>,
) {
    loop {
        let Ok((conn, peer)) = l.accept().await else {
            continue;
        };
        let (tls, tx, counters) = (tls.clone(), tx.clone(), counters.clone());
        tokio::spawn(async move {
            let shake = tokio::time::timeout(std::time::Duration::from_secs(5), tls.accept(conn));
            match shake.await {
                Ok(Ok(s)) => {
                    counters.lock().unwrap().tls_connections += 1;
                    let (rd, wr) = tokio::io::split(s);
                    serve_stream(rd, wr, peer, true, tx);
                }
                Ok(Err(e)) => {
                    counters.lock().unwrap().tls_refused += 1;
                    warn!(%peer, "TLS handshake refused: {e}");
                }
                Err(_) => {
                    counters.lock().unwrap().tls_refused += 1;
                    warn!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
}

/// Read SIP messages off one connection (TCP or TLS) for the server loop,
/// and write what it answers back on it.
fn serve_stream<R, W>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    tls: bool,
    tx: tokio::sync::mpsc::Sender<FromTcp>,
) where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (out, mut pending) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(m) = pending.recv().await {
            if wr.write_all(&m).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let mut stream: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            stream.extend_from_slice(&buf[..n]);
            loop {
                match control::sip_monitor::stream::next_message(&mut stream) {
                    Ok(Some((_, msg))) => {
                        let route = Route::Stream {
                            conn: out.clone(),
                            tls,
                        };
                        if tx.send((msg, peer, route)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) if stream.len() < 256 * 1024 => break,
                    _ => return, // not SIP, or never ending: drop the connection
                }
            }
        }
    });
}
