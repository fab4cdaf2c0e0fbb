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
}

impl Server {
    pub async fn start(cfg: Presence) -> anyhow::Result<Self> {
        if let Some(dir) = cfg.database.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let store = Store::open(&cfg.database).map_err(|e| anyhow::anyhow!("{}: {e}", cfg.database.display()))?;
        let sock = tokio::net::UdpSocket::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("presence listen {}: {e}", cfg.listen))?;
        info!(listen = %cfg.listen, db = %cfg.database.display(), "presence server on");
        Ok(Self { cfg, store: Arc::new(Mutex::new(store)), sock, etags: 0 })
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
                continue;
            } else if m.method() != "PUBLISH" {
                response(&m, &raw, 405, "Method Not Allowed", "Allow: PUBLISH\r\n")
            } else if !self.allowed(peer) {
                response(&m, &raw, 403, "Forbidden", "")
            } else if m.event.as_deref() != Some("presence") {
                response(&m, &raw, 489, "Bad Event", "Allow-Events: presence\r\n")
            } else {
                let body = String::from_utf8_lossy(&m.body);
                match presence::pidf_status(&body) {
                    Some(status) => {
                        let at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                        let user = m.to.aor();
                        match self.store.lock().unwrap().apply(&user, &peer_ip(peer), status, at) {
                            Ok(_) => {
                                self.etags += 1;
                                response(&m, &raw, 200, "OK", &format!("SIP-ETag: e{}\r\nExpires: {}\r\n", self.etags, m.expires.unwrap_or(3600)))
                            }
                            Err(e) => {
                                warn!(error = %e, "presence store failed");
                                response(&m, &raw, 500, "Server Internal Error", "")
                            }
                        }
                    }
                    None if m.if_match.is_some() && m.body.is_empty() => {
                        // A refresh: nothing changes but the lifetime.
                        self.etags += 1;
                        response(&m, &raw, 200, "OK", &format!("SIP-ETag: e{}\r\nExpires: {}\r\n", self.etags, m.expires.unwrap_or(3600)))
                    }
                    None => response(&m, &raw, 400, "Bad Request", ""),
                }
            };
            let _ = self.sock.send_to(reply.as_bytes(), peer).await;
        }
    }
}
