//! The presence server's watchers (RFC 3856): a SUBSCRIBE to a
//! presentity opens a subscription, bounded by `presence.max_subscriptions`,
//! and each change of its status is sent as a NOTIFY the way the
//! SUBSCRIBE came.

use control::{presence, sip_monitor::sip};
use tracing::warn;

use super::{full_answer, Route, Server};
use crate::sip_monitor::response;

/// A watcher's subscription: the dialog NOTIFYs are sent in.
pub(super) struct Subscription {
    user: String,
    route: Route,
    call_id: String,
    /// Our tag (we are the notifier, the To side of the SUBSCRIBE).
    local_tag: String,
    remote_uri: String,
    remote_tag: String,
    contact: String,
    cseq: u32,
    pub(super) expires_at: std::time::Instant,
}

impl Server {
    /// RFC 3856 §6: accept a SUBSCRIBE to a presentity, answer 200 and
    /// send the current state at once; Expires: 0 ends the subscription.
    /// Its answers and NOTIFYs go the way it came (on its TCP connection
    /// when it came on one).
    pub(super) async fn subscribe(&mut self, m: &sip::Message<'_>, raw: &[u8], route: &Route) {
        if m.event.as_deref() != Some("presence") {
            let r = response(m, raw, 489, "Bad Event", "Allow-Events: presence\r\n");
            route.send(&self.sock, r.as_bytes()).await;
            return;
        }
        let user = match &m.start {
            sip::StartLine::Request { uri, .. } => sip::NameAddr {
                uri: uri.clone(),
                ..Default::default()
            }
            .aor(),
            _ => return,
        };
        let expires = m.expires.unwrap_or(3600).min(86_400);
        let existing = self.subs.iter().position(|s| s.call_id == m.call_id);
        let max = self
            .max_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed);
        if existing.is_none() && m.expires != Some(0) && self.subs.len() as u64 >= max {
            let now = std::time::Instant::now();
            self.subs.retain(|s| s.expires_at > now);
            if self.subs.len() as u64 >= max {
                self.counters.lock().unwrap().refused_subscriptions_full += 1;
                warn!(user = %user, max, "presence subscriptions full: a SUBSCRIBE refused");
                let r = full_answer(m, raw, &format!("subscriptions full: {max}"));
                route.send(&self.sock, r.as_bytes()).await;
                return;
            }
        }
        let tag = match existing {
            Some(i) => self.subs[i].local_tag.clone(),
            None => {
                self.tags += 1;
                format!("ps{}", self.tags)
            }
        };
        let extra = format!(
            "Expires: {expires}\r\nContact: <sip:presence@{}>\r\n",
            self.cfg.listen
        );
        let r = response(m, raw, 200, "OK", &extra).replacen(";tag=ep1", &format!(";tag={tag}"), 1);
        route.send(&self.sock, r.as_bytes()).await;
        let sub = Subscription {
            user: user.clone(),
            route: route.clone(),
            call_id: m.call_id.to_string(),
            local_tag: tag,
            remote_uri: m.from.uri.to_string(),
            remote_tag: m.from.tag.as_deref().unwrap_or_default().to_string(),
            contact: m
                .contact
                .as_ref()
                .map(|c| c.uri.to_string())
                .unwrap_or_else(|| m.from.uri.to_string()),
            cseq: 0,
            expires_at: std::time::Instant::now() + std::time::Duration::from_secs(expires as u64),
        };
        let idx = match existing {
            Some(i) => {
                self.subs[i].expires_at = sub.expires_at;
                self.subs[i].route = sub.route;
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

    pub(super) async fn notify_all(&mut self, user: &str) {
        let now = std::time::Instant::now();
        self.subs.retain(|s| s.expires_at > now);
        let idx: Vec<usize> = (0..self.subs.len())
            .filter(|i| self.subs[*i].user == user)
            .collect();
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
            .and_then(|rows| {
                rows.into_iter()
                    .max_by(|a, b| a.updated.total_cmp(&b.updated))
            })
            .and_then(|r| presence::parse_status(&r.status))
            .unwrap_or(control::sip_monitor::track::Status::Offline);
        let listen = self.cfg.listen;
        let s = &mut self.subs[i];
        s.cseq += 1;
        let left = s
            .expires_at
            .saturating_duration_since(std::time::Instant::now())
            .as_secs();
        let state = if terminated {
            "terminated;reason=timeout".to_string()
        } else {
            format!("active;expires={left}")
        };
        let body = presence::pidf(&s.user, status, &[]);
        let msg = format!(
            "NOTIFY {contact} SIP/2.0\r\nVia: SIP/2.0/{transport} {listen};branch=z9hG4bKn{tag}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}>;tag={tag}\r\nTo: <{remote}>;tag={rtag}\r\nCall-ID: {call}\r\nCSeq: {cseq} NOTIFY\r\nContact: <sip:presence@{listen}>\r\nEvent: presence\r\nSubscription-State: {state}\r\nContent-Type: application/pidf+xml\r\nContent-Length: {len}\r\n\r\n{body}",
            contact = s.contact,
            tag = s.local_tag,
            cseq = s.cseq,
            user = s.user,
            remote = s.remote_uri,
            rtag = s.remote_tag,
            call = s.call_id,
            len = body.len(),
            transport = s.route.transport(),
        );
        let route = s.route.clone();
        if route.send(&self.sock, msg.as_bytes()).await {
            self.counters.lock().unwrap().notifies += 1;
        }
    }
}
