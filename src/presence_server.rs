//! The `presence` role: receives PUBLISH over UDP (RFC 3903), answers it,
//! and keeps the statuses in the store, reconciled per terminal.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use control::{config::Presence, presence::{self, Store}, sip};
use tracing::{info, warn};

use crate::sipmon::{peer_ip, response};

pub struct Server {
    cfg: Presence,
    pub store: Arc<Mutex<Store>>,
    sock: tokio::net::UdpSocket,
    etags: u64,
    /// Watchers (RFC 3856) per presentity.
    subs: Vec<Subscription>,
    tags: u64,
}

/// A watcher's subscription: the dialog NOTIFYs are sent in.
struct Subscription {
    user: String,
    peer: SocketAddr,
    call_id: String,
    /// Our tag (we are the notifier, the To side of the SUBSCRIBE).
    local_tag: String,
    remote_uri: String,
    remote_tag: String,
    contact: String,
    cseq: u32,
    expires_at: std::time::Instant,
}

impl Server {
    pub async fn start(cfg: Presence) -> anyhow::Result<Self> {
        let db = cfg.database.to_string_lossy().into_owned();
        let is_url = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if let (false, Some(dir)) = (is_url, cfg.database.parent()) {
            std::fs::create_dir_all(dir)?;
        }
        // The PostgreSQL client blocks on a runtime of its own: every store
        // call leaves the async context first.
        let store = tokio::task::block_in_place(|| Store::open_url(&db)).map_err(|e| anyhow::anyhow!("presence database {db}: {e}"))?;
        let sock = tokio::net::UdpSocket::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("presence listen {}: {e}", cfg.listen))?;
        info!(listen = %cfg.listen, "presence server on");
        Ok(Self { cfg, store: Arc::new(Mutex::new(store)), sock, etags: 0, subs: Vec::new(), tags: 0 })
    }

    fn allowed(&self, peer: SocketAddr) -> bool {
        let SocketAddr::V4(p) = peer else { return false };
        self.cfg.allow.iter().any(|a| {
            let (net, len) = control::gateway::parse_prefix(a).expect("validated");
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(*p.ip()) & mask == u32::from(net) & mask
        })
    }

    pub async fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = self.sock.recv_from(&mut buf).await else { continue };
            let raw = buf[..n].to_vec();
            let Ok((m, _)) = sip::parse(&raw) else { continue };
            let reply = if m.status().is_some() {
                continue; // a watcher's answer to a NOTIFY
            } else if m.method() == "SUBSCRIBE" {
                self.subscribe(&m, &raw, peer).await;
                continue;
            } else if m.method() == "REGISTER" && !m.body.is_empty() {
                // Claim 20: a REGISTER carrying the status document.
                self.update(&m, &raw, peer).await
            } else if m.method() == "REGISTER" {
                response(&m, &raw, 200, "OK", &format!("Expires: {}\r\n", m.expires.unwrap_or(3600)))
            } else if m.method() != "PUBLISH" {
                response(&m, &raw, 405, "Method Not Allowed", "Allow: PUBLISH\r\n")
            } else if !self.allowed(peer) {
                response(&m, &raw, 403, "Forbidden", "")
            } else if m.event.as_deref() != Some("presence") {
                response(&m, &raw, 489, "Bad Event", "Allow-Events: presence\r\n")
            } else {
                self.update(&m, &raw, peer).await
            };
            let _ = self.sock.send_to(reply.as_bytes(), peer).await;
        }
    }

    /// Store the status a PUBLISH (or a status-carrying REGISTER) brings,
    /// notify the watchers, and build the answer.
    async fn update(&mut self, m: &sip::Message, raw: &[u8], peer: SocketAddr) -> String {
        if !self.allowed(peer) {
            return response(m, raw, 403, "Forbidden", "");
        }
        let body = String::from_utf8_lossy(&m.body);
        match presence::pidf_status(&body) {
            Some(status) => {
                let at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                let user = m.to.aor();
                let store = self.store.clone();
                let source = peer_ip(peer);
                let stored = tokio::task::block_in_place(|| store.lock().unwrap().apply(&user, &source, status, at));
                match stored {
                    Ok(_) => {
                        self.etags += 1;
                        let r = response(m, raw, 200, "OK", &format!("SIP-ETag: e{}\r\nExpires: {}\r\n", self.etags, m.expires.unwrap_or(3600)));
                        self.notify_all(&user).await;
                        r
                    }
                    Err(e) => {
                        warn!(error = %e, "presence store failed");
                        response(m, raw, 500, "Server Internal Error", "")
                    }
                }
            }
            // A refresh: nothing changes but the lifetime.
            None if m.if_match.is_some() && m.body.is_empty() => {
                self.etags += 1;
                response(m, raw, 200, "OK", &format!("SIP-ETag: e{}\r\nExpires: {}\r\n", self.etags, m.expires.unwrap_or(3600)))
            }
            None => response(m, raw, 400, "Bad Request", ""),
        }
    }

    /// RFC 3856 §6: accept a SUBSCRIBE to a presentity, answer 200 and
    /// send the current state at once; Expires: 0 ends the subscription.
    async fn subscribe(&mut self, m: &sip::Message, raw: &[u8], peer: SocketAddr) {
        if m.event.as_deref() != Some("presence") {
            let r = response(m, raw, 489, "Bad Event", "Allow-Events: presence\r\n");
            let _ = self.sock.send_to(r.as_bytes(), peer).await;
            return;
        }
        let user = match &m.start {
            sip::StartLine::Request { uri, .. } => sip::NameAddr { uri: uri.clone(), ..Default::default() }.aor(),
            _ => return,
        };
        let expires = m.expires.unwrap_or(3600).min(86_400);
        let existing = self.subs.iter().position(|s| s.call_id == m.call_id);
        let tag = match existing {
            Some(i) => self.subs[i].local_tag.clone(),
            None => {
                self.tags += 1;
                format!("ps{}", self.tags)
            }
        };
        let extra = format!("Expires: {expires}\r\nContact: <sip:presence@{}>\r\n", self.cfg.listen);
        let r = response(m, raw, 200, "OK", &extra).replacen(";tag=ep1", &format!(";tag={tag}"), 1);
        let _ = self.sock.send_to(r.as_bytes(), peer).await;
        let sub = Subscription {
            user: user.clone(),
            peer,
            call_id: m.call_id.clone(),
            local_tag: tag,
            remote_uri: m.from.uri.clone(),
            remote_tag: m.from.tag.clone().unwrap_or_default(),
            contact: m.contact.as_ref().map(|c| c.uri.clone()).unwrap_or_else(|| m.from.uri.clone()),
            cseq: 0,
            expires_at: std::time::Instant::now() + std::time::Duration::from_secs(expires as u64),
        };
        let idx = match existing {
            Some(i) => {
                self.subs[i].expires_at = sub.expires_at;
                i
            }
            None => {
                self.subs.push(sub);
                self.subs.len() - 1
            }
        };
        let terminated = expires == 0;
        self.notify(idx, terminated).await;
        if terminated {
            self.subs.remove(idx);
        }
    }

    async fn notify_all(&mut self, user: &str) {
        let now = std::time::Instant::now();
        self.subs.retain(|s| s.expires_at > now);
        let idx: Vec<usize> = (0..self.subs.len()).filter(|i| self.subs[*i].user == user).collect();
        for i in idx {
            self.notify(i, false).await;
        }
    }

    /// A NOTIFY carrying the presentity's current status as PIDF.
    async fn notify(&mut self, i: usize, terminated: bool) {
        let store = self.store.clone();
        let user = self.subs[i].user.clone();
        let status = tokio::task::block_in_place(|| store.lock().unwrap().show(Some(&user)))
            .ok()
            .and_then(|rows| rows.into_iter().max_by(|a, b| a.updated.total_cmp(&b.updated)))
            .and_then(|r| presence::parse_status(&r.status))
            .unwrap_or(control::sip_track::Status::Offline);
        let listen = self.cfg.listen;
        let s = &mut self.subs[i];
        s.cseq += 1;
        let left = s.expires_at.saturating_duration_since(std::time::Instant::now()).as_secs();
        let state = if terminated { "terminated;reason=timeout".to_string() } else { format!("active;expires={left}") };
        let body = presence::pidf(&s.user, status, &[]);
        let msg = format!(
            "NOTIFY {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {listen};branch=z9hG4bKn{tag}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}>;tag={tag}\r\nTo: <{remote}>;tag={rtag}\r\nCall-ID: {call}\r\nCSeq: {cseq} NOTIFY\r\nContact: <sip:presence@{listen}>\r\nEvent: presence\r\nSubscription-State: {state}\r\nContent-Type: application/pidf+xml\r\nContent-Length: {len}\r\n\r\n{body}",
            contact = s.contact,
            tag = s.local_tag,
            cseq = s.cseq,
            user = s.user,
            remote = s.remote_uri,
            rtag = s.remote_tag,
            call = s.call_id,
            len = body.len(),
        );
        let peer = s.peer;
        let _ = self.sock.send_to(msg.as_bytes(), peer).await;
    }
}
