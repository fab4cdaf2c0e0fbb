//! The `lb` role in the daemon: every `[[lb]]` instance, its requests,
//! counters, metrics and reload.

use std::fmt::Write as _;

use control::{
    api::{CounterView, LbStatus, LookupKey, Request, Response, StatusView},
    cluster::record::{GatewaySet, LbTable},
    config::Config,
};
use dataplane_common::lb::stat;
use tracing::warn;

use super::LbInstance;
use crate::{daemon::Role, packets};

pub struct LbRole {
    pub instances: Vec<LbInstance>,
}

/// Every interface the `[[lb]]` sections name exists.
pub fn check_interfaces(config: &Config) -> Result<(), String> {
    for (i, lb) in config.lb.iter().enumerate() {
        for name in
            std::iter::once(&lb.interface).chain(lb.gateways.iter().filter_map(|g| g.via.as_ref()))
        {
            dataplane_user::ifindex(name).map_err(|e| format!("lb[{i}]: {e}"))?;
        }
    }
    Ok(())
}

impl LbRole {
    fn pick(&mut self, interface: Option<&str>) -> Result<&mut LbInstance, String> {
        match interface {
            Some(i) => self
                .instances
                .iter_mut()
                .find(|l| l.cfg.interface == i)
                .ok_or_else(|| format!("no lb on interface {i}")),
            None => match self.instances.len() {
                1 => Ok(&mut self.instances[0]),
                _ => Err("several lb instances run here; name one with --interface".into()),
            },
        }
    }
}

impl Role for LbRole {
    async fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        if config.lb.is_empty() {
            return Ok(None);
        }
        let mut instances = Vec::new();
        for lb in &config.lb {
            instances.push(
                LbInstance::start(lb.clone(), opts, config.cluster.is_some())
                    .map_err(|e| anyhow::anyhow!("lb on {}: {e}", lb.interface))?,
            );
        }
        Ok(Some(Self { instances }))
    }

    fn preflight(config: &Config) -> Result<(), String> {
        check_interfaces(config)
    }

    fn name(&self) -> &'static str {
        "lb"
    }

    fn status(&self, view: &mut StatusView) {
        for l in &self.instances {
            view.lb.push(LbStatus {
                interface: l.cfg.interface.clone(),
                gateways: l.cfg.gateways.len(),
                digest: l.digest().map(|d| d.digest).unwrap_or_default(),
                took_over_pins: l.dp.took_over,
                key: l.cfg.key.to_string(),
                draining: l.draining(),
                chain: l.cfg.chain,
                moved_slots: l.moved_slots(),
                clustered: l.clustered,
            });
        }
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        for l in &self.instances {
            for (i, c) in l.dp.lb_stats()?.iter().enumerate() {
                out.push(CounterView::xdp(
                    "lb",
                    "lb",
                    &l.cfg.interface,
                    stat::NAMES[i],
                    c.packets,
                    c.bytes,
                ));
            }
        }
        Ok(())
    }

    fn metrics(&self, node: &str, out: &mut String) -> anyhow::Result<()> {
        out.push_str("# HELP edgeplane_lb_table_digest Maglev table digest (top 53 bits, exact in a float); equal on LBs with equal tables.\n");
        out.push_str("# TYPE edgeplane_lb_table_digest gauge\n");
        for l in &self.instances {
            let d = l.digest()?;
            let v = u64::from_str_radix(&d.digest, 16)? >> 11;
            writeln!(
                out,
                "edgeplane_lb_table_digest{{node=\"{node}\",interface=\"{}\",digest=\"{}\"}} {v}",
                d.interface, d.digest
            )?;
        }
        out.push_str("# HELP edgeplane_lb_gateway_slots Maglev slots held by each gateway.\n");
        out.push_str("# TYPE edgeplane_lb_gateway_slots gauge\n");
        for l in &self.instances {
            for g in l.gateways() {
                writeln!(out, "edgeplane_lb_gateway_slots{{node=\"{node}\",interface=\"{}\",gateway=\"{}\"}} {}", l.cfg.interface, g.name, g.slots)?;
            }
        }
        Ok(())
    }

    /// etcd's gateway set into every instance's table.
    fn gateway_set(
        &mut self,
        set: &GatewaySet,
        node: &str,
        now_ms: u64,
    ) -> Result<Vec<LbTable>, String> {
        let mut out = Vec::new();
        for l in self.instances.iter_mut() {
            let eff = set.effective(l.cfg.gateway_via.as_deref(), now_ms / 1000);
            l.apply_set(eff.backends, &eff.draining)
                .map_err(|e| format!("lb on {}: {e}", l.cfg.interface))?;
            let d = l.digest().map_err(|e| e.to_string())?;
            out.push(LbTable {
                node: node.to_string(),
                interface: l.cfg.interface.clone(),
                digest: d.digest,
                revision: set.revision,
                table_size: d.table_size,
                seed: d.seed,
                gateways: l.cfg.gateways.iter().map(|g| g.name.clone()).collect(),
                applied_ms: crate::cluster::now_ms(),
            });
        }
        Ok(out)
    }

    /// Drains that ran out leave the fast path.
    fn tick(&mut self) {
        let now = std::time::Instant::now();
        for l in self.instances.iter_mut() {
            if let Err(e) = l.expire_drains(now) {
                warn!(interface = %l.cfg.interface, error = %e, "ending a drain failed");
            }
        }
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        let old: Vec<_> = self
            .instances
            .iter()
            .map(|l| l.cfg.interface.clone())
            .collect();
        let new_ifaces: Vec<_> = new.lb.iter().map(|l| l.interface.clone()).collect();
        if old != new_ifaces {
            return Err("the set of [[lb]] interfaces changed; restart the daemon to apply it (nothing was changed)".into());
        }
        check_interfaces(new)
    }

    fn apply(&mut self, new: &Config) -> Result<String, String> {
        let mut changed = 0;
        for (inst, cfg) in self.instances.iter_mut().zip(new.lb.iter()) {
            let mut cfg = cfg.clone();
            if inst.clustered {
                // The file holds no gateways: etcd's stay, with the egress
                // the file now names.
                cfg.gateways = inst.cfg.gateways.clone();
                for g in cfg.gateways.iter_mut() {
                    g.via = cfg.gateway_via.clone();
                }
            }
            if inst.apply(cfg).map_err(|e| e.to_string())? {
                changed += 1;
            }
        }
        Ok(format!("{changed} lb table(s) changed"))
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::LbGateways { interface } => {
                Ok(Response::ok(self.pick(interface.as_deref())?.gateways()))
            }
            Request::LbGatewayAdd { interface, gateway } => {
                let lb = self.pick(interface.as_deref())?;
                lb.add_gateway(gateway).map_err(|e| e.to_string())?;
                Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
            }
            Request::LbGatewayRemove { interface, name } => {
                let lb = self.pick(interface.as_deref())?;
                lb.remove_gateway(&name).map_err(|e| e.to_string())?;
                Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
            }
            Request::LbGatewayDrain {
                interface,
                name,
                timeout,
            } => {
                let lb = self.pick(interface.as_deref())?;
                lb.drain(&name, timeout).map_err(|e| e.to_string())?;
                Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
            }
            Request::LbGatewayUndrain { interface, name } => {
                let lb = self.pick(interface.as_deref())?;
                lb.undrain(&name).map_err(|e| e.to_string())?;
                Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
            }
            Request::LbDigest => {
                let v: Result<Vec<_>, _> = self.instances.iter().map(|l| l.digest()).collect();
                Ok(Response::ok(v.map_err(|e| e.to_string())?))
            }
            Request::LbLookup { interface, key } => {
                if let LookupKey::Flow(f) = &key {
                    if f.dport == packets::GTPU_PORT && f.proto == control::field::Protocol::Udp {
                        return Err(
                            "a UDP flow to port 2152 is GTP-U; look it up with --teid".into()
                        );
                    }
                }
                let pkt = packets::lookup_packet(&key);
                let lb = self.pick(interface.as_deref())?;
                Ok(Response::ok(lb.lookup(&pkt).map_err(|e| e.to_string())?))
            }
            other => Err(format!("not an lb request: {other:?}")),
        }
    }
}
