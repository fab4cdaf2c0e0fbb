//! One `gateway` instance in the daemon: config → maps, session expiry,
//! accounting records, and the views the CLI shows.
//!
//! Server and group indices are kept stable by name across reloads, so a
//! running session never finds another server behind its index.

mod accounting;
pub mod cli;
mod gtp;
mod role;
mod view;

use accounting::{AccountingFile, Clock};
pub use view::{PfcpSessionView, SessionTreeView, SessionView};

pub use role::{check_interfaces, GatewayRole};

use std::{
    collections::{BTreeMap, HashMap},
    io::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use control::{
    api::{GroupServerView, GroupView, GroupsView, GwLookupView},
    field::IpPrefix,
    gateway::{self as g, config as gcfg, AccountingRecord, EndReason, GatewayMaps},
};
use dataplane_common::gateway::SessionCounters;
use dataplane_user::{
    gateway::{ServerEntry, Service, SessionEntry, Settings, TypeRuleEntry},
    Dataplane,
};
use serde::Serialize;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum GwError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Dataplane(#[from] dataplane_user::Error),
    #[error("accounting file {0}: {1}")]
    Accounting(PathBuf, std::io::Error),
}

pub struct GwInstance {
    pub cfg: gcfg::Gateway,
    pub dp: Dataplane,
    /// Where each group and server sits in the maps.
    idx: g::Indices,
    /// Ports whose start record is written → time of the last record.
    seen: HashMap<u16, u64>,
    acct: Option<AccountingFile>,
    /// GTP-U and PFCP, when `[gateway.gtpu]` is set.
    gtp: Option<gtp::Gtp>,
}

/// Every server's entry as resolved for the maps, by (group, name).
type Resolved = BTreeMap<(String, String), ServerEntry>;

fn resolve(cfg: &gcfg::Gateway) -> Result<Resolved, GwError> {
    let default_via = cfg
        .interfaces
        .last()
        .ok_or_else(|| GwError::Config("the gateway names no interface".into()))?
        .clone();
    let mut out = BTreeMap::new();
    for grp in &cfg.groups {
        for s in &grp.servers {
            let via = s.via.clone().unwrap_or_else(|| default_via.clone());
            let ifindex = dataplane_user::ifindex(&via)?;
            let src_mac = dataplane_user::mac_of(&via)?;
            let mac = match s.mac {
                Some(m) => m.octets(),
                None => crate::neigh::resolve(
                    s.next_hop.unwrap_or(s.address),
                    &via,
                    Duration::from_secs(3),
                )
                .map_err(|e| {
                    GwError::Config(format!("group {} server {}: {e}", grp.name, s.name))
                })?,
            };
            out.insert(
                (grp.name.clone(), s.name.clone()),
                ServerEntry {
                    addr: s.address,
                    port: s.port,
                    mac,
                    src_mac,
                    ifindex,
                },
            );
        }
    }
    Ok(out)
}

impl GwInstance {
    pub fn start(cfg: gcfg::Gateway, opts: &dataplane_user::LoadOptions) -> Result<Self, GwError> {
        let resolved = resolve(&cfg)?;
        let ifaces: Vec<&str> = cfg.interfaces.iter().map(String::as_str).collect();
        let dp = Dataplane::attach_many("gateway", &ifaces, opts)?;
        let acct = cfg
            .accounting
            .file
            .as_ref()
            .map(|p| AccountingFile::new(p, &cfg.accounting));
        let gtp = gtp::Gtp::new(&cfg);
        let mut inst = Self {
            cfg: cfg.clone(),
            dp,
            idx: g::Indices::default(),
            seen: HashMap::new(),
            acct,
            gtp,
        };
        if inst.dp.took_over {
            inst.adopt()?;
        }
        inst.apply_resolved(cfg, resolved)?;
        Ok(inst)
    }

    /// After a restart: live sessions whose start record is already in the
    /// accounting file are not started again; the others (begun while no
    /// daemon was sweeping) get theirs on the next sweep.
    fn adopt(&mut self) -> Result<(), GwError> {
        let clock = Clock::now();
        let written: Vec<(u16, f64)> = self
            .acct
            .as_ref()
            .and_then(|a| std::fs::read_to_string(&a.path).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<AccountingRecord>(l).ok())
            .filter(|r| r.event == "start")
            .map(|r| (r.port, r.start))
            .collect();
        for (_, p) in self.dp.flows()? {
            let s = self.dp.session(p)?;
            let start = clock.unix(s.created_ns);
            // The same session: same port, same start (to clock jitter).
            if written
                .iter()
                .any(|(wp, ws)| *wp == p && (ws - start).abs() < 0.05)
            {
                self.seen.insert(p, clock.mono_now);
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, cfg: gcfg::Gateway) -> Result<(), GwError> {
        if let Some(key) = restart_only(&self.cfg, &cfg) {
            return Err(GwError::Config(format!(
                "gateway {key} changed; restart the daemon to apply it (nothing was changed)"
            )));
        }
        let resolved = resolve(&cfg)?;
        self.apply_resolved(cfg, resolved)
    }

    fn apply_resolved(&mut self, cfg: gcfg::Gateway, resolved: Resolved) -> Result<(), GwError> {
        let mut live = BTreeMap::new();
        for i in self.idx.servers.values() {
            if let Some(e) = self.dp.server(*i)? {
                live.insert(*i, e);
            }
        }
        let want = g::plan(&cfg, &resolved, &self.idx, &live)
            .map_err(|e| GwError::Config(e.to_string()))?;
        self.write_maps(&cfg, &want, &live)?;
        self.idx = want.indices;
        if let Some(f) = &cfg.accounting.file {
            if self.acct.as_ref().map(|a| &a.path != f).unwrap_or(true) {
                self.acct = Some(AccountingFile::new(f, &cfg.accounting));
            }
        }
        self.cfg = cfg;
        info!(interfaces = ?self.cfg.interfaces, groups = self.idx.groups.len(), servers = self.idx.servers.len(), "gateway applied");
        Ok(())
    }

    /// Write what differs between `want` and the maps. Servers first, so
    /// a selection never names an unwritten entry; services last but the
    /// pool, so a service never leads to a group not set up yet.
    fn write_maps(
        &mut self,
        cfg: &gcfg::Gateway,
        want: &GatewayMaps<ServerEntry>,
        live: &BTreeMap<u32, ServerEntry>,
    ) -> Result<(), GwError> {
        for (i, e) in &want.servers {
            if live.get(i) != Some(e) {
                self.dp.set_server(*i, e)?;
                self.dp.add_gw_tx_port(e.ifindex)?;
            }
        }
        for i in &cfg.interfaces {
            self.dp.add_gw_tx_port(dataplane_user::ifindex(i)?)?;
        }
        for ((gi, t), slots) in &want.selections {
            if self.dp.selection(*gi, *t)? != *slots {
                self.dp.set_selection(*gi, *t, slots)?;
            }
        }
        // Authorization: add what is new before removing what is gone.
        let have: std::collections::BTreeSet<(u32, IpAddr, u8)> =
            self.dp.auth_entries()?.into_iter().collect();
        for (gi, addr, len) in want.auth.difference(&have) {
            self.dp.auth_allow(*gi, *addr, *len)?;
        }
        for (gi, addr, len) in have.difference(&want.auth) {
            self.dp.auth_remove(*gi, *addr, *len)?;
        }
        let rules: Vec<TypeRuleEntry> = want
            .type_rules
            .iter()
            .map(|r| TypeRuleEntry {
                proto: r.proto,
                dscp: r.dscp,
                session_type: r.session_type,
                terminals: r.terminals.addr,
                terminals_len: r.terminals.len,
            })
            .collect();
        if self.dp.type_rules()? != rules {
            self.dp.set_type_rules(&rules)?;
        }
        let services: HashMap<Service, u32> = want
            .services
            .iter()
            .map(|(sa, gi)| {
                (
                    Service {
                        addr: sa.addr,
                        port: sa.port,
                        proto: sa.proto.number(),
                    },
                    *gi,
                )
            })
            .collect();
        let have: HashMap<Service, u32> = self.dp.services()?.into_iter().collect();
        for (k, gi) in &services {
            if have.get(k) != Some(gi) {
                self.dp.set_service(k, *gi)?;
            }
        }
        for k in have.keys() {
            if !services.contains_key(k) {
                self.dp.remove_service(k)?;
            }
        }
        // Port pool and the gateway address.
        let (min, max) = (want.ports.first, want.ports.last);
        let old = self.dp.gw_config()?;
        if old.port_min != min || old.port_max != max || !old.enabled {
            self.dp.pool_drain()?;
            let busy: std::collections::HashSet<u16> =
                self.dp.flows()?.into_iter().map(|(_, p)| p).collect();
            for p in want.ports.ports() {
                if !busy.contains(&p) {
                    self.dp.pool_push(p)?;
                }
            }
            info!(ports = %want.ports, "port pool seeded");
        }
        let settings = Settings {
            address: want.address,
            port_min: min,
            port_max: max,
            enabled: true,
            n3_addr: cfg.n3_address(),
            n3_addr6: cfg.n3_address6(),
            address6: want.address6,
        };
        if old != settings {
            self.dp.set_gw_config(&settings)?;
        }
        Ok(())
    }

    /// Add a server to a group at runtime (the config file is unchanged).
    pub fn add_server(&mut self, group: &str, server: gcfg::ServerCfg) -> Result<(), GwError> {
        let mut cfg = self.cfg.clone();
        let grp = cfg
            .groups
            .iter_mut()
            .find(|x| x.name == group)
            .ok_or_else(|| GwError::Config(format!("no group {group:?}")))?;
        if grp.servers.iter().any(|s| s.name == server.name) {
            return Err(GwError::Config(format!(
                "group {group} already has a server {:?}",
                server.name
            )));
        }
        grp.servers.push(server);
        cfg.validate()
            .map_err(|(k, r)| GwError::Config(format!("{k}: {r}")))?;
        self.apply(cfg)
    }

    /// Remove a server: new sessions stop going to it; its live sessions
    /// keep it until they end.
    pub fn remove_server(&mut self, group: &str, name: &str) -> Result<(), GwError> {
        let mut cfg = self.cfg.clone();
        let grp = cfg
            .groups
            .iter_mut()
            .find(|x| x.name == group)
            .ok_or_else(|| GwError::Config(format!("no group {group:?}")))?;
        let before = grp.servers.len();
        grp.servers.retain(|s| s.name != name);
        if grp.servers.len() == before {
            return Err(GwError::Config(format!(
                "group {group} has no server {name:?}"
            )));
        }
        cfg.validate()
            .map_err(|(k, r)| GwError::Config(format!("{k}: {r}")))?;
        self.apply(cfg)
    }

    fn group_name(&self, idx: u32) -> String {
        self.idx
            .groups
            .iter()
            .find(|(_, v)| **v == idx)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| format!("#{idx}"))
    }

    fn server_name(&self, idx: u32) -> String {
        self.idx
            .servers
            .iter()
            .find(|(_, v)| **v == idx)
            .map(|(k, _)| k.1.clone())
            .unwrap_or_else(|| format!("#{idx}"))
    }

    /// One pass of the session sweeper: start and interim records, expiry.
    /// A port goes back to the pool only after its flow entry and session
    /// are gone.
    pub fn tick(&mut self, flush: bool) -> Result<usize, GwError> {
        let clock = Clock::now();
        let mut ended = 0;
        let mut records = Vec::new();
        let orphans = self
            .gtp
            .as_mut()
            .map(|g| std::mem::take(&mut g.orphans))
            .unwrap_or_default();
        for o in orphans {
            if self.seen.remove(&o.port).is_none() {
                records.push(self.record_of(
                    "start",
                    o.port,
                    &o.session,
                    &o.counters,
                    o.ids,
                    &clock,
                    None,
                ));
            }
            records.push(self.record_of(
                "end",
                o.port,
                &o.session,
                &o.counters,
                o.ids,
                &clock,
                Some(EndReason::TunnelDeleted),
            ));
            ended += 1;
        }
        for (flow, port) in self.dp.flows()? {
            let s = self.dp.session(port)?;
            if !s.active {
                continue;
            }
            if !self.seen.contains_key(&port) {
                records.push(self.record("start", port, &s, &clock, None)?);
                self.seen.insert(port, clock.mono_now);
            }
            let reason = if flush {
                Some(EndReason::Flushed)
            } else if !self.tunnel_alive(s.tunnel) {
                // Its PFCP session was deleted: the user session ends
                // with it (its tunnel's index may be reused).
                Some(EndReason::TunnelDeleted)
            } else {
                g::expiry(
                    s.proto,
                    s.flags,
                    s.last_seen_ns,
                    clock.mono_now,
                    &self.cfg.timeouts,
                )
            };
            if let Some(reason) = reason {
                // Unreachable first, then final counters, then free.
                self.dp.remove_flow(&flow)?;
                records.push(self.record("end", port, &s, &clock, Some(reason))?);
                self.free_port(port)?;
                self.seen.remove(&port);
                ended += 1;
            } else if self.cfg.accounting.interim > 0 {
                let last = self.seen[&port];
                if clock.mono_now.saturating_sub(last)
                    >= self.cfg.accounting.interim * 1_000_000_000
                {
                    records.push(self.record("interim", port, &s, &clock, None)?);
                    self.seen.insert(port, clock.mono_now);
                }
            }
        }
        self.retire_swept();
        self.sweep_relays(flush, clock.mono_now)?;
        if let Some(a) = &mut self.acct {
            for r in &records {
                a.write(r)?;
            }
        }
        self.pfcp_reports();
        Ok(ended)
    }

    /// Relay entries (daisy chaining) live as long as the flow could at the
    /// gateway they point to: its idle timeout after the last relayed
    /// packet. A relay that raced a removal comes back with the next packet.
    fn sweep_relays(&mut self, flush: bool, now: u64) -> Result<(), GwError> {
        for (flow, _, last_seen) in self.dp.relays()? {
            if flush || g::expiry(flow.proto, 0, last_seen, now, &self.cfg.timeouts).is_some() {
                self.dp.remove_relay(&flow)?;
            }
        }
        Ok(())
    }

    fn free_port(&mut self, port: u16) -> Result<(), GwError> {
        Ok(free_port(&mut self.dp, port)?)
    }

    pub fn groups(&self) -> GroupsView {
        let groups = self
            .cfg
            .groups
            .iter()
            .map(|grp| GroupView {
                name: grp.name.clone(),
                index: self.idx.groups.get(&grp.name).copied(),
                services: grp.services.clone(),
                allow: grp
                    .allow
                    .clone()
                    .unwrap_or_else(|| vec![IpPrefix::any(grp.is_ipv6())]),
                servers: grp
                    .servers
                    .iter()
                    .map(|s| GroupServerView {
                        name: s.name.clone(),
                        address: s.address,
                        port: s.port,
                        weight: s.weight,
                        types: s.types.clone().unwrap_or_else(|| vec![0]),
                        index: self
                            .idx
                            .servers
                            .get(&(grp.name.clone(), s.name.clone()))
                            .copied(),
                    })
                    .collect(),
            })
            .collect();
        GroupsView {
            address: self.cfg.address,
            address6: self.cfg.address6,
            ports: self.cfg.ports,
            groups,
        }
    }

    /// What the program would do with a terminal's packet, by running it
    /// (dry run: no port is taken, no session changes).
    pub fn lookup(&mut self, packet: &[u8]) -> Result<GwLookupView, GwError> {
        let r = self.dp.gw_dry_run(packet)?;
        let verdict = dataplane_user::verdict::name(r.verdict).to_string();
        let forwarded = matches!(
            r.verdict,
            dataplane_user::verdict::TX | dataplane_user::verdict::REDIRECT
        );
        if !forwarded || r.output.len() < 38 {
            return Ok(GwLookupView {
                verdict,
                group: None,
                server: None,
                translated: None,
                session_port: None,
            });
        }
        let o = &r.output;
        // The translated frame as the program leaves it (no VLAN tag, and
        // for IPv6 no extension header in front of the ports).
        let (src, dst, l4): (IpAddr, IpAddr, usize) = if o[12..14] == [0x86, 0xdd] {
            if o.len() < 58 {
                return Err(GwError::Config(
                    "the program returned a cut IPv6 frame".into(),
                ));
            }
            let a = |at: usize| -> IpAddr {
                let b: [u8; 16] = o[at..at + 16].try_into().expect("16 bytes");
                Ipv6Addr::from(b).into()
            };
            (a(22), a(38), 54)
        } else {
            let ihl = ((o[14] & 0x0f) as usize) * 4;
            (
                Ipv4Addr::new(o[26], o[27], o[28], o[29]).into(),
                Ipv4Addr::new(o[30], o[31], o[32], o[33]).into(),
                14 + ihl,
            )
        };
        let sport = u16::from_be_bytes([o[l4], o[l4 + 1]]);
        let dport = u16::from_be_bytes([o[l4 + 2], o[l4 + 3]]);
        let server = self
            .idx
            .servers
            .iter()
            .find(|(_, i)| matches!(self.dp.server(**i), Ok(Some(s)) if s.addr == dst && s.port == dport))
            .map(|((grp, name), _)| (grp.clone(), name.clone()));
        Ok(GwLookupView {
            verdict,
            group: server.as_ref().map(|s| s.0.clone()),
            server: server.map(|s| s.1),
            translated: Some(format!(
                "{} -> {}",
                std::net::SocketAddr::new(src, sport),
                std::net::SocketAddr::new(dst, dport)
            )),
            session_port: (sport != 0).then_some(sport),
        })
    }

    pub fn accounting_path(&self) -> Option<&Path> {
        self.acct.as_ref().map(|a| a.path.as_path())
    }
}

/// Interface, address and the GTP-U/PFCP endpoints are bound at start.
/// The port's flow entry is gone: free the session, zero its counters and
/// only then give the port back to the pool.
fn free_port(dp: &mut Dataplane, port: u16) -> dataplane_user::Result<()> {
    dp.free_session(port)?;
    dp.zero_session_counters(port)?;
    dp.pool_push(port)
}

fn restart_only(old: &gcfg::Gateway, new: &gcfg::Gateway) -> Option<&'static str> {
    if old.interfaces != new.interfaces {
        return Some("interfaces");
    }
    if old.address != new.address {
        return Some("address");
    }
    if old.address6 != new.address6 {
        return Some("address6");
    }
    if old.gtpu != new.gtpu {
        return Some("gtpu");
    }
    if old.pfcp != new.pfcp {
        return Some("pfcp");
    }
    None
}
