//! The `presence` role in the daemon: the server runs on a task of its own;
//! the role answers the store's requests and reports what the server
//! counted.

use std::sync::{Arc, Mutex};

use control::{
    api::{CounterView, PresenceSummary, Request, Response, StatusView},
    config::Config,
    presence::config::Presence,
    presence::Store,
};

use super::{PresenceCounters, Server};
use crate::daemon::Role;

pub struct PresenceRole {
    cfg: Presence,
    store: Arc<Mutex<Store>>,
    counters: Arc<Mutex<PresenceCounters>>,
    allow: Arc<Mutex<Vec<control::field::IpPrefix>>>,
    max_subscriptions: Arc<std::sync::atomic::AtomicU64>,
}

impl Role for PresenceRole {
    async fn start(
        config: &Config,
        _opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        let Some(cfg) = config.presence.clone() else {
            return Ok(None);
        };
        let server = Server::start(cfg.clone()).await?;
        let (store, counters, allow) = (
            server.store.clone(),
            server.counters.clone(),
            server.allow.clone(),
        );
        let max_subscriptions = server.max_subscriptions.clone();
        tokio::spawn(server.run());
        Ok(Some(Self {
            cfg,
            store,
            counters,
            allow,
            max_subscriptions,
        }))
    }

    fn name(&self) -> &'static str {
        "presence"
    }

    fn status(&self, view: &mut StatusView) {
        view.presence = Some(PresenceSummary {
            listen: self.cfg.listen.to_string(),
            database: self.cfg.database.display().to_string(),
            updates: self.counters.lock().unwrap().updates,
        });
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        let c = self.counters.lock().unwrap();
        let listen = self.cfg.listen.to_string();
        let part = |name: &str, n: u64| CounterView::daemon("presence", "server", &listen, name, n);
        for (method, n) in &c.requests {
            out.push(part(&format!("requests_{method}"), *n));
        }
        for (code, n) in &c.answers {
            out.push(part(&format!("answers_{code}"), *n));
        }
        out.push(part("updates", c.updates));
        out.push(part("notifies", c.notifies));
        out.push(part("expired", c.expired));
        out.push(part("retransmissions", c.retransmissions));
        out.push(part("refused_source", c.refused_source));
        out.push(part("replayed", c.replayed));
        out.push(part("tls_connections", c.tls_connections));
        out.push(part("tls_refused", c.tls_refused));
        out.push(part("refused_store_full", c.refused_store_full));
        out.push(part("refused_etags_full", c.refused_etags_full));
        out.push(part(
            "refused_subscriptions_full",
            c.refused_subscriptions_full,
        ));
        out.push(part("answers_forgotten", c.answers_forgotten));
        drop(c);
        out.push(part(
            "history_pruned",
            self.store.lock().unwrap().history_pruned(),
        ));
        Ok(())
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        let new = new
            .presence
            .as_ref()
            .expect("the daemon checks the set of roles first");
        for (key, changed) in [
            ("listen", new.listen != self.cfg.listen),
            ("database", new.database != self.cfg.database),
        ] {
            if changed {
                return Err(format!(
                    "presence.{key} changed; restart the daemon to apply it (nothing was changed)"
                ));
            }
        }
        Ok(())
    }

    /// The allowed sources and the bounds apply to the next request.
    fn apply(&mut self, new: &Config) -> Result<String, String> {
        let new = new.presence.clone().expect("checked");
        if new == self.cfg {
            return Ok(String::new());
        }
        *self.allow.lock().unwrap() = new.allow.clone();
        let mut said = "presence: allowed sources replaced".to_string();
        {
            let mut st = self.store.lock().unwrap();
            for (key, old, v) in [
                ("max_statuses", self.cfg.max_statuses, new.max_statuses),
                ("max_etags", self.cfg.max_etags, new.max_etags),
                ("max_history", self.cfg.max_history, new.max_history),
                (
                    "max_subscriptions",
                    self.cfg.max_subscriptions,
                    new.max_subscriptions,
                ),
            ] {
                if old != v {
                    said += &format!(", {key} {v}");
                }
            }
            st.set_max_statuses(new.max_statuses);
            st.set_max_etags(new.max_etags);
            st.set_max_history(new.max_history);
        }
        self.max_subscriptions
            .store(new.max_subscriptions, std::sync::atomic::Ordering::Relaxed);
        self.cfg = new;
        Ok(said)
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::PresenceShow { user } => Ok(Response::ok(
                self.store
                    .lock()
                    .unwrap()
                    .show(user.as_deref())
                    .map_err(|e| e.to_string())?,
            )),
            Request::PresenceHistory { user } => Ok(Response::ok(
                self.store
                    .lock()
                    .unwrap()
                    .history(&user)
                    .map_err(|e| e.to_string())?,
            )),
            other => Err(format!("not a presence request: {other:?}")),
        }
    }
}
