//! The `router` role in the daemon: one VRRP instance per `[[router]]`,
//! each on its own task; status and counters come from the snapshot each
//! instance publishes (every 200 ms and on every event).

use std::{fmt::Write as _, future::Future, pin::Pin};

use control::{
    api::{CounterView, MessageView, Request, Response, RouterSummary, StatusView},
    config::Config,
};

use super::{Instance, RouterHandle};
use crate::daemon::Role;

pub struct RouterRole {
    pub instances: Vec<RouterHandle>,
}

/// Every `[[router]]` interface exists and has the address its virtual
/// router sends from (IPv4, or IPv6 link-local), and the load-sharing
/// peers' family.
pub fn check_interfaces(config: &Config) -> Result<(), String> {
    for (i, r) in config.router.iter().enumerate() {
        super::primary_address(&r.interface, r.is_ipv6())
            .map_err(|e| format!("router[{i}]: {e}"))?;
        if let Some(ls) = &r.load_sharing {
            let v6 = ls.peers.first().map(|p| p.is_ipv6()).unwrap_or(r.is_ipv6());
            super::loadshare_address(&r.interface, v6)
                .map_err(|e| format!("router[{i}].load_sharing: {e}"))?;
        }
    }
    Ok(())
}

impl Role for RouterRole {
    /// Needs the runtime: each instance runs on a task of its own.
    async fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        if config.router.is_empty() {
            return Ok(None);
        }
        let mut instances = Vec::new();
        for r in &config.router {
            instances.push(Instance::start(r.clone(), opts).map_err(|e| {
                anyhow::anyhow!("router vrid {} on {}: {e:#}", r.vrid, r.interface)
            })?);
        }
        Ok(Some(Self { instances }))
    }

    fn preflight(config: &Config) -> Result<(), String> {
        check_interfaces(config)
    }

    fn name(&self) -> &'static str {
        "router"
    }

    fn status(&self, view: &mut StatusView) {
        for h in &self.instances {
            let s = h.status.lock().unwrap();
            view.router.push(RouterSummary {
                interface: s.interface.clone(),
                vrid: s.vrid,
                state: s.state.clone(),
                priority: s.priority,
                master: s.master.clone(),
                load_sharing: s.load_sharing.is_some(),
            });
        }
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        for h in &self.instances {
            let s = h.status.lock().unwrap();
            let iface = &s.interface;
            let vrrp = |name: &str, n: u64| CounterView::daemon("router", "vrrp", iface, name, n);
            out.push(vrrp("adverts_sent", s.adverts_sent));
            out.push(vrrp("adverts_received", s.adverts_received));
            out.push(vrrp("transitions", s.transitions));
            if let Some(t) = &s.accept_filter {
                if let Some(n) = super::accept::dropped(t) {
                    out.push(vrrp("accept_mode_dropped", n));
                }
            }
            for (reason, n) in &s.discarded {
                out.push(vrrp(&format!("discarded_{reason}"), *n));
            }
            if let Some(ls) = &s.load_sharing {
                for (name, packets, bytes) in &ls.filter {
                    out.push(CounterView::xdp(
                        "router", "router", iface, name, *packets, *bytes,
                    ));
                }
                let part = |name: &str, n: u64| {
                    CounterView::daemon("router", "load_sharing", iface, name, n)
                };
                out.push(part("handoffs_done", ls.handoffs_done));
                out.push(part("handoffs_aborted", ls.handoffs_aborted));
                out.push(part("held_reinjected", ls.reinjected));
                out.push(part("held_discarded", ls.discarded));
                out.push(part("held_refused_full", ls.held_refused));
                out.push(part("reviews_requested", ls.reviews_requested));
                out.push(part("collections", ls.collections));
                out.push(part(
                    "reviews_within_thresholds",
                    ls.reviews_within_thresholds,
                ));
                out.push(part("rate_rebalances", ls.rate_rebalances));
                out.push(part("refused_stale_incarnation", ls.stale));
                out.push(part("refused_replayed", ls.replayed));
                out.push(part("duplicates_acked", ls.duplicates));
                out.push(part("peer_restarts", ls.peer_restarts));
            }
        }
        Ok(())
    }

    fn metrics(&self, node: &str, out: &mut String) -> anyhow::Result<()> {
        out.push_str("# HELP edgeplane_router_state VRRP state of each virtual router (1 for the current state).\n");
        out.push_str("# TYPE edgeplane_router_state gauge\n");
        for h in &self.instances {
            let s = h.status.lock().unwrap();
            for state in ["initialize", "backup", "master"] {
                writeln!(out, "edgeplane_router_state{{node=\"{node}\",interface=\"{}\",vrid=\"{}\",state=\"{state}\"}} {}", s.interface, s.vrid, u8::from(s.state == state))?;
            }
        }
        out.push_str(
            "# HELP edgeplane_router_owned_buckets Load-sharing buckets this router routes.\n",
        );
        out.push_str("# TYPE edgeplane_router_owned_buckets gauge\n");
        for h in &self.instances {
            let s = h.status.lock().unwrap();
            if let Some(ls) = &s.load_sharing {
                writeln!(out, "edgeplane_router_owned_buckets{{node=\"{node}\",interface=\"{}\",vrid=\"{}\"}} {}", s.interface, s.vrid, ls.owned)?;
            }
        }
        Ok(())
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        // A new or changed instance must be able to start: its interface
        // exists and has an address.
        check_interfaces(new)
    }

    /// Instances are matched by (interface, VRID). A removed one leaves
    /// the virtual router cleanly (priority 0, RFC 5798 §6.4.3), so a
    /// backup takes over at once; a changed one leaves and starts again
    /// with its new config (it comes back as backup and preempts if its
    /// priority says so); an unchanged one is not touched.
    fn apply(&mut self, new: &Config) -> Result<String, String> {
        // VRIDs are per family: an IPv4 and an IPv6 router may share one.
        let key = |r: &control::router::config::Router| (r.interface.clone(), r.vrid, r.is_ipv6());
        let opts = crate::daemon::load_options(new, false);
        let (mut started, mut removed, mut restarted) = (0, 0, 0);
        let mut keep = Vec::new();
        for h in std::mem::take(&mut self.instances) {
            match new.router.iter().find(|r| key(r) == key(&h.cfg)) {
                Some(r) if *r == h.cfg => keep.push(h),
                found => {
                    block_on(h.stopper().shutdown());
                    if found.is_some() {
                        restarted += 1;
                    } else {
                        removed += 1;
                    }
                }
            }
        }
        self.instances = keep;
        for r in &new.router {
            if self.instances.iter().any(|h| key(&h.cfg) == key(r)) {
                continue;
            }
            let h = Instance::start(r.clone(), &opts)
                .map_err(|e| format!("router vrid {} on {}: {e:#}", r.vrid, r.interface))?;
            self.instances.push(h);
            started += 1;
        }
        let added = started - restarted;
        // Keep the config's order (status lists instances in it).
        self.instances
            .sort_by_key(|h| new.router.iter().position(|r| key(r) == key(&h.cfg)));
        Ok(match (added, removed, restarted) {
            (0, 0, 0) => String::new(),
            _ => format!("router: {added} instance(s) started, {removed} stopped, {restarted} restarted with a new config"),
        })
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::VrrpRebalance => {
                let sent = self.instances.iter().filter(|r| r.rebalance()).count();
                Ok(Response::ok(MessageView::new(format!(
                    "rebalance asked of {sent} router instance(s); the master acts on it"
                ))))
            }
            Request::VrrpStatus => Ok(Response::ok(
                self.instances
                    .iter()
                    .map(|r| r.status.lock().unwrap().clone())
                    .collect::<Vec<_>>(),
            )),
            other => Err(format!("not a router request: {other:?}")),
        }
    }

    fn shutdown(&mut self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let handles: Vec<_> = self.instances.iter().map(|h| h.stopper()).collect();
        Some(Box::pin(async move {
            for h in handles {
                h.shutdown().await;
            }
        }))
    }
}

/// Run `f` to completion from the daemon's blocking pool (reload runs
/// there, with the runtime's context entered).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}
