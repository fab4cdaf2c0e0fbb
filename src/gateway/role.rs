//! The `gateway` role in the daemon: its `[[gateway]]` instances (requests
//! go to the first), counters, the once-a-second sweep and reload.

use std::sync::{Arc, Mutex, MutexGuard};

use control::{
    api::{AccountingView, CounterView, GatewayStatus, LookupKey, Request, Response, StatusView},
    config::Config,
};
use dataplane_common::gateway::stat;
use tracing::warn;

use super::GwInstance;
use crate::{daemon::Role, packets};

pub struct GatewayRole {
    /// Shared with the instance's GTP-U and PFCP socket tasks, which lock
    /// only their instance.
    pub instances: Vec<Arc<Mutex<GwInstance>>>,
}

/// Every interface the `[[gateway]]` sections name exists.
pub fn check_interfaces(config: &Config) -> Result<(), String> {
    for (i, gw) in config.gateway.iter().enumerate() {
        let vias = gw
            .groups
            .iter()
            .flat_map(|g| g.servers.iter().filter_map(|s| s.via.as_ref()));
        for name in gw.interfaces.iter().chain(vias) {
            dataplane_user::ifindex(name).map_err(|e| format!("gateway[{i}]: {e}"))?;
        }
    }
    Ok(())
}

impl GatewayRole {
    fn first(&self) -> MutexGuard<'_, GwInstance> {
        self.instances[0].lock().unwrap()
    }

    fn each(&self) -> impl Iterator<Item = MutexGuard<'_, GwInstance>> {
        self.instances.iter().map(|i| i.lock().unwrap())
    }
}

impl Role for GatewayRole {
    async fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        if config.gateway.is_empty() {
            return Ok(None);
        }
        let mut instances = Vec::new();
        for gw in &config.gateway {
            let inst = GwInstance::start(gw.clone(), opts)
                .map_err(|e| anyhow::anyhow!("gateway on {}: {e}", gw.interfaces.join(",")))?;
            let inst = Arc::new(Mutex::new(inst));
            super::gtp::spawn(gw, &inst)
                .map_err(|e| anyhow::anyhow!("gateway on {}: {e}", gw.interfaces.join(",")))?;
            instances.push(inst);
        }
        Ok(Some(Self { instances }))
    }

    fn preflight(config: &Config) -> Result<(), String> {
        check_interfaces(config)
    }

    fn name(&self) -> &'static str {
        "gateway"
    }

    fn status(&self, view: &mut StatusView) {
        for g in self.each() {
            view.gateway.push(GatewayStatus {
                interfaces: g.cfg.interfaces.clone(),
                address: g.cfg.address,
                groups: g.cfg.groups.len(),
                sessions: g.dp.flows().map(|f| f.len()).unwrap_or(0),
                relays: g.dp.relays().map(|r| r.len()).unwrap_or(0),
                accounting: g.accounting_path().map(Into::into),
                took_over_pins: g.dp.took_over,
            });
        }
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        for g in self.each() {
            let iface = g.cfg.interfaces.join(",");
            for (i, c) in g.dp.gw_stats()?.iter().enumerate() {
                out.push(CounterView::xdp(
                    "gateway",
                    "gateway",
                    &iface,
                    stat::NAMES[i],
                    c.packets,
                    c.bytes,
                ));
            }
            for (name, n) in g.gtp_counters() {
                out.push(CounterView::daemon("gateway", "gtp", &iface, &name, n));
            }
        }
        Ok(())
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        if new.gateway.len() != self.instances.len() {
            return Err("the number of [[gateway]] sections changed; restart the daemon to apply it (nothing was changed)".into());
        }
        for (gw, cfg) in self.each().zip(new.gateway.iter()) {
            if let Some(key) = super::restart_only(&gw.cfg, cfg) {
                return Err(format!(
                    "gateway {key} changed; restart the daemon to apply it (nothing was changed)"
                ));
            }
        }
        check_interfaces(new)
    }

    fn apply(&mut self, new: &Config) -> Result<String, String> {
        let mut changed = 0;
        for (mut gw, cfg) in self.each().zip(new.gateway.iter()) {
            // Applied even when unchanged: servers' neighbours are
            // resolved again.
            changed += usize::from(gw.cfg != *cfg);
            gw.apply(cfg.clone()).map_err(|e| e.to_string())?;
        }
        Ok(if changed == 0 {
            String::new()
        } else {
            format!("{changed} gateway(s) reconfigured")
        })
    }

    fn tick(&mut self) {
        for mut gw in self.each() {
            if let Err(e) = gw.tick(false) {
                warn!(error = %e, "gateway sweep failed");
            }
        }
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::GwGroups => Ok(Response::ok(self.first().groups())),
            Request::GwSessions => Ok(Response::ok(
                self.first().sessions().map_err(|e| e.to_string())?,
            )),
            Request::GwSessionTree => Ok(Response::ok(
                self.first().session_tree().map_err(|e| e.to_string())?,
            )),
            Request::GwLookup { flow } => {
                if flow.src.is_ipv6() != flow.dst.is_ipv6() {
                    return Err("the flow's two ends must be of one family".into());
                }
                let pkt = packets::lookup_packet(&LookupKey::Flow(flow));
                Ok(Response::ok(
                    self.first().lookup(&pkt).map_err(|e| e.to_string())?,
                ))
            }
            Request::GwServerAdd { group, server } => {
                let mut g = self.first();
                g.add_server(&group, server).map_err(|e| e.to_string())?;
                Ok(Response::ok(g.groups()))
            }
            Request::GwServerRemove { group, name } => {
                let mut g = self.first();
                g.remove_server(&group, &name).map_err(|e| e.to_string())?;
                Ok(Response::ok(g.groups()))
            }
            Request::GwAccounting => Ok(Response::ok(AccountingView {
                file: self.first().accounting_path().map(Into::into),
            })),
            other => Err(format!("not a gateway request: {other:?}")),
        }
    }
}
