//! One `lb` instance in the daemon: the config it runs, its dataplane, and
//! the mapping from gateway names to entries in `LB_GATEWAYS`.
//!
//! Entries are never rewritten in place (a packet could read half an
//! entry): `control::lb::entries` plans which index each gets; this edge
//! writes the plan, points the TEID prefixes at the planned entries,
//! installs the table and then commits the plan.
//!
//! A draining gateway keeps its entry and prefix but has weight 0 in the
//! table; when its drain runs out it is removed like `lb gateways remove`.
//! Drains are runtime state, like the CLI's add and remove: a restart
//! forgets them.

pub mod cli;
mod role;

pub use role::{check_interfaces, LbRole};

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use control::{
    api::{DigestView, DrainView, GatewayView, LookupView},
    lb::{
        config::{self, Backend as Gateway},
        entries::{EntryPlan, GatewayIndices},
        maglev::{Backend, MaglevTable},
    },
};
use dataplane_common::lb::{slot_gateway, slot_previous, NO_GATEWAY};
use dataplane_user::{
    lb::{Gateway as GatewayEntry, KeyMode},
    Dataplane,
};
use tracing::info;

pub struct LbInstance {
    pub cfg: config::Lb,
    pub dp: Dataplane,
    /// Where each gateway's entry sits in LB_GATEWAYS.
    indices: GatewayIndices<GatewayEntry>,
    pub table: MaglevTable,
    /// Draining gateways by name, with the moment they leave.
    draining: BTreeMap<String, Instant>,
    /// Its gateways come from etcd (`[cluster]`), not from the file or
    /// the local CLI.
    pub clustered: bool,
    /// The live copy's slot values (gateway and previous owner) and the
    /// inactive copy's, as this instance wrote them (`None`: not known,
    /// so the next install writes every slot).
    live: Vec<u32>,
    standby: Option<Vec<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Dataplane(#[from] dataplane_user::Error),
}

impl LbInstance {
    /// Attach (or take over) the interface and apply `cfg`.
    /// With `clustered`, the gateways come from etcd later: a daemon
    /// that takes over a live table starts from the gateways it names, so
    /// a restart while etcd is away changes nothing.
    pub fn start(
        mut cfg: config::Lb,
        opts: &dataplane_user::LoadOptions,
        clustered: bool,
    ) -> Result<Self, LbError> {
        // Everything that can be checked before touching the kernel is.
        resolve(&cfg)?;
        let dp = Dataplane::attach("lb", &cfg.interface, opts)?;
        if clustered && dp.took_over {
            cfg.gateways = live_gateways(&dp, &cfg)?;
        }
        let entries_new = resolve(&cfg)?;
        let table = build(&cfg, &BTreeMap::new())?;
        let mut current = Vec::new();
        let live = dp.live_slot_values()?;
        if dp.took_over {
            // Only entries the live table refers to are current; others
            // were retired by an earlier daemon. A moved slot's previous
            // gateway counts: the fast path reads its entry too, so it must
            // not be reused before the next flip.
            let named = named_entries(&live);
            for (idx, e) in dp.gateway_entries()? {
                if named.contains(&idx) {
                    current.push((idx, e.name.clone(), e));
                }
            }
        }
        let mut inst = Self {
            cfg: cfg.clone(),
            dp,
            indices: GatewayIndices::new(current),
            table,
            draining: BTreeMap::new(),
            clustered,
            live,
            standby: None,
        };
        inst.apply_resolved(cfg, entries_new, true)?;
        Ok(inst)
    }

    /// Run the gateway set etcd gave (already merged into backends, with
    /// the drains' seconds left). A set this section cannot hold (e.g. a
    /// TEID prefix twice) is refused whole and the table stays.
    pub fn apply_set(
        &mut self,
        backends: Vec<Gateway>,
        draining: &BTreeMap<String, u64>,
    ) -> Result<bool, LbError> {
        let mut cfg = self.cfg.clone();
        cfg.gateways = backends;
        validate_one(&cfg)?;
        let resolved = resolve(&cfg)?;
        let now = Instant::now();
        let draining = draining
            .iter()
            .map(|(n, s)| (n.clone(), now + Duration::from_secs(*s)))
            .collect();
        self.apply_drained(cfg, resolved, draining, false)
    }

    fn local_change(&self) -> Result<(), LbError> {
        if self.clustered {
            return Err(LbError::Config(format!(
                "lb on {} takes its gateways from etcd; change them with `edgeplane cluster gateways ...`",
                self.cfg.interface
            )));
        }
        Ok(())
    }

    /// Replace the running config of this instance. Validation and name
    /// resolution happen first; on error nothing has changed.
    /// A gateway still draining and still in `cfg` keeps draining; one
    /// `cfg` drops leaves now.
    pub fn apply(&mut self, cfg: config::Lb) -> Result<bool, LbError> {
        let resolved = resolve(&cfg)?;
        let mut draining = self.draining.clone();
        draining.retain(|name, _| cfg.gateways.iter().any(|g| &g.name == name));
        self.apply_drained(cfg, resolved, draining, false)
    }

    fn apply_resolved(
        &mut self,
        cfg: config::Lb,
        resolved: Vec<(String, GatewayEntry)>,
        startup: bool,
    ) -> Result<bool, LbError> {
        let draining = self.draining.clone();
        self.apply_drained(cfg, resolved, draining, startup)
    }

    fn apply_drained(
        &mut self,
        cfg: config::Lb,
        resolved: Vec<(String, GatewayEntry)>,
        draining: BTreeMap<String, Instant>,
        startup: bool,
    ) -> Result<bool, LbError> {
        let table = build(&cfg, &draining)?;
        // A weight is not read by the fast path: its change rewrites the
        // entry in place, so the slots that keep their gateway keep their
        // value too.
        let plan = self
            .indices
            .plan_with(resolved, |a, b| {
                GatewayEntry {
                    weight: b.weight,
                    ..a.clone()
                } == *b
            })
            .map_err(|e| LbError::Config(e.to_string()))?;
        // 0. A prefix pointing at an entry about to be rewritten (a stale
        //    one, left by an earlier daemon) is cleared first.
        let owners = self.dp.teid_owners()?;
        let want = wanted_owners(&cfg, &plan);
        for (p, (have, want)) in owners.iter().zip(&want).enumerate() {
            if have != want && have.is_some_and(|h| plan.writes.iter().any(|(i, _)| *i == h)) {
                self.dp.set_teid_owner(p as u8, None)?;
            }
        }
        // 1. New or changed gateways into entries no live table names.
        let ingress = dataplane_user::ifindex(&cfg.interface)?;
        for (idx, e) in plan.writes.iter().chain(&plan.rewrites) {
            self.dp.set_gateway(*idx, e)?;
            if e.ifindex != ingress {
                self.dp.add_tx_port(e.ifindex)?;
            }
        }
        // 2. Each prefix to its owner's entry, written above or kept; a
        //    prefix whose gateway left the config is cleared, so nothing
        //    names an entry the commit below retires.
        let owners = self.dp.teid_owners()?;
        for (p, (have, want)) in owners.iter().zip(&want).enumerate() {
            if have != want {
                self.dp.set_teid_owner(p as u8, *want)?;
            }
        }
        self.draining = draining;
        self.install(cfg, table, plan, startup)
    }

    fn install(
        &mut self,
        cfg: config::Lb,
        table: MaglevTable,
        plan: EntryPlan<GatewayEntry>,
        startup: bool,
    ) -> Result<bool, LbError> {
        // 2. The table, by entry index, into the inactive copy; then flip.
        let slots = plan.slots(&table);
        let live = self.dp.live_table()?;
        let digest = table.digest();
        let key = key_mode(cfg.key);
        let geometry =
            live.meta.size == table.size && live.meta.seed == table.seed && live.key() == key;
        let same = geometry && live.meta.digest == digest;
        let mut installed = false;
        // The live slots as this instance last installed them (read from
        // the maps once, at start), with their gateway entries only.
        let live_gw: Vec<u32> = self
            .live
            .iter()
            .map(|&v| if v == NO_GATEWAY { v } else { slot_gateway(v) })
            .collect();
        if plan.changed || !same || (startup && live_gw != slots) {
            // Moved slots name their previous gateway (daisy chaining).
            let values = if cfg.chain && geometry {
                plan.chained(&slots, &live_gw, &self.indices.entries)
            } else {
                slots
            };
            let meta = self.dp.install_table_over(
                &values,
                self.standby.as_deref(),
                table.seed,
                digest,
                key,
            )?;
            // The copy just made live holds `values`; the other one the
            // table it replaced.
            self.standby = Some(std::mem::replace(&mut self.live, values));
            info!(interface = %cfg.interface, digest = format!("{digest:016x}"), generation = meta.generation, gateways = plan.next.len(), key = %cfg.key, "maglev table installed");
            installed = true;
        } else {
            info!(interface = %cfg.interface, digest = format!("{digest:016x}"), "pinned table already current");
        }
        // 3. After a flip, the indices retired by the previous apply are
        //    unreachable from any live table.
        self.indices.commit(plan, installed);
        self.cfg = cfg;
        self.table = table;
        Ok(installed)
    }

    pub fn add_gateway(&mut self, gw: Gateway) -> Result<(), LbError> {
        self.local_change()?;
        if self.cfg.gateways.iter().any(|g| g.name == gw.name) {
            return Err(LbError::Config(format!(
                "gateway {:?} already exists on {}",
                gw.name, self.cfg.interface
            )));
        }
        let mut cfg = self.cfg.clone();
        cfg.gateways.push(gw);
        validate_one(&cfg)?;
        self.apply(cfg).map(|_| ())
    }

    pub fn remove_gateway(&mut self, name: &str) -> Result<(), LbError> {
        self.local_change()?;
        let mut cfg = self.cfg.clone();
        let before = cfg.gateways.len();
        cfg.gateways.retain(|g| g.name != name);
        if cfg.gateways.len() == before {
            return Err(LbError::Config(format!(
                "no gateway {name:?} on {}",
                self.cfg.interface
            )));
        }
        self.apply(cfg).map(|_| ())
    }

    /// Take `name` out of the table for `timeout` (default: the section's
    /// `drain_timeout`); its entry and TEID prefix stay.
    pub fn drain(&mut self, name: &str, timeout: Option<u64>) -> Result<(), LbError> {
        self.local_change()?;
        if !self.cfg.gateways.iter().any(|g| g.name == name) {
            return Err(LbError::Config(format!(
                "no gateway {name:?} on {}",
                self.cfg.interface
            )));
        }
        let secs = timeout.unwrap_or(self.cfg.drain_timeout);
        if secs == 0 || secs > config::MAX_DRAIN_TIMEOUT {
            return Err(LbError::Config(format!(
                "--timeout {secs}: must be 1..={}",
                config::MAX_DRAIN_TIMEOUT
            )));
        }
        let mut draining = self.draining.clone();
        draining.insert(name.to_string(), Instant::now() + Duration::from_secs(secs));
        let cfg = self.cfg.clone();
        let resolved = resolve(&cfg)?;
        self.apply_drained(cfg, resolved, draining, false)?;
        info!(interface = %self.cfg.interface, gateway = name, timeout = secs, "gateway draining");
        Ok(())
    }

    /// Put a draining gateway back in the table.
    pub fn undrain(&mut self, name: &str) -> Result<(), LbError> {
        self.local_change()?;
        if !self.draining.contains_key(name) {
            return Err(LbError::Config(format!(
                "gateway {name:?} on {} is not draining",
                self.cfg.interface
            )));
        }
        let mut draining = self.draining.clone();
        draining.remove(name);
        let cfg = self.cfg.clone();
        let resolved = resolve(&cfg)?;
        self.apply_drained(cfg, resolved, draining, false)?;
        info!(interface = %self.cfg.interface, gateway = name, "gateway undrained");
        Ok(())
    }

    /// Remove every gateway whose drain has run out (entry retired, TEID
    /// prefix cleared). Returns their names.
    pub fn expire_drains(&mut self, now: Instant) -> Result<Vec<String>, LbError> {
        let done: Vec<String> = self
            .draining
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(n, _)| n.clone())
            .collect();
        if done.is_empty() {
            return Ok(done);
        }
        let mut cfg = self.cfg.clone();
        cfg.gateways.retain(|g| !done.contains(&g.name));
        self.apply(cfg)?;
        for n in &done {
            info!(interface = %self.cfg.interface, gateway = n, "drain over: gateway removed from the fast path");
        }
        Ok(done)
    }

    /// Draining gateways with the whole seconds left (rounded up).
    pub fn draining(&self) -> Vec<DrainView> {
        let now = Instant::now();
        self.draining
            .iter()
            .map(|(name, until)| DrainView {
                name: name.clone(),
                seconds_left: seconds_left(*until, now),
            })
            .collect()
    }

    /// Live slots that name a previous gateway (daisy chaining).
    pub fn moved_slots(&self) -> usize {
        self.live
            .iter()
            .filter(|&&v| v != NO_GATEWAY && slot_previous(v).is_some())
            .count()
    }

    pub fn gateways(&self) -> Vec<GatewayView> {
        let shares = self.table.shares();
        self.table
            .backends
            .iter()
            .zip(shares)
            .map(|(b, slots)| {
                let g = self
                    .cfg
                    .gateways
                    .iter()
                    .find(|g| g.name == b.name)
                    .expect("table built from cfg");
                GatewayView {
                    name: g.name.clone(),
                    address: g.address,
                    mac: g.mac,
                    via: g.via.clone().unwrap_or_else(|| self.cfg.interface.clone()),
                    weight: g.weight,
                    slots,
                    share: 100.0 * slots as f64 / self.table.size as f64,
                    teid_prefix: g.prefix(),
                    draining: self
                        .draining
                        .get(&g.name)
                        .map(|u| seconds_left(*u, Instant::now())),
                }
            })
            .collect()
    }

    pub fn digest(&self) -> Result<DigestView, LbError> {
        let live = self.dp.live_table()?;
        Ok(DigestView {
            interface: self.cfg.interface.clone(),
            digest: format!("{:016x}", live.meta.digest),
            table_size: live.meta.size,
            seed: live.meta.seed,
            key: match live.key() {
                KeyMode::Terminal => config::LbKey::Terminal,
                KeyMode::Flow => config::LbKey::Flow,
            }
            .to_string(),
            gateways: self.indices.entries.len(),
            generation: live.meta.generation,
        })
    }

    /// Which gateway a packet reaches, by running the attached program on
    /// it (BPF_PROG_TEST_RUN), not by recomputing the hash here.
    pub fn lookup(&mut self, packet: &[u8]) -> Result<LookupView, LbError> {
        let r = self.dp.test_run("lb", packet)?;
        let forwarded = matches!(
            r.verdict,
            dataplane_user::verdict::TX | dataplane_user::verdict::REDIRECT
        );
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&r.output[..6]);
        let gateway = forwarded
            .then(|| {
                self.indices
                    .entries
                    .iter()
                    .find(|(_, (_, e))| e.dst_mac == dst)
                    .map(|(n, _)| n.clone())
            })
            .flatten();
        Ok(LookupView {
            interface: self.cfg.interface.clone(),
            verdict: dataplane_user::verdict::name(r.verdict).into(),
            gateway,
            dst_mac: dst.into(),
        })
    }
}

fn validate_one(cfg: &config::Lb) -> Result<(), LbError> {
    let whole = control::config::Config {
        lb: vec![cfg.clone()],
        ..Default::default()
    };
    whole.validate().map_err(|e| LbError::Config(e.to_string()))
}

fn seconds_left(until: Instant, now: Instant) -> u64 {
    let left = until.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

fn key_mode(key: config::LbKey) -> KeyMode {
    match key {
        config::LbKey::Terminal => KeyMode::Terminal,
        config::LbKey::Flow => KeyMode::Flow,
    }
}

/// The owner entry of each TEID prefix under `plan` (256 entries).
fn wanted_owners(cfg: &config::Lb, plan: &EntryPlan<GatewayEntry>) -> Vec<Option<u32>> {
    let mut want = vec![None; dataplane_common::lb::TEID_OWNERS as usize];
    for g in &cfg.gateways {
        if let (Some(p), Some((idx, _))) = (g.prefix(), plan.next.get(&g.name)) {
            want[p as usize] = Some(*idx);
        }
    }
    want
}

/// The table of `cfg`, a draining gateway with weight 0 (no slots).
fn build(cfg: &config::Lb, draining: &BTreeMap<String, Instant>) -> Result<MaglevTable, LbError> {
    let backends: Vec<Backend> = cfg
        .gateways
        .iter()
        .map(|g| Backend {
            name: g.name.clone(),
            weight: if draining.contains_key(&g.name) {
                0
            } else {
                g.weight
            },
        })
        .collect();
    MaglevTable::build(&backends, cfg.table_size, cfg.seed)
        .map_err(|e| LbError::Config(format!("lb {}: {e}", cfg.interface)))
}

/// The entries live slot values name: each slot's gateway and, where it
/// moved, its previous one (the fast path reads that entry too).
fn named_entries(values: &[u32]) -> std::collections::HashSet<u32> {
    values
        .iter()
        .filter(|&&v| v != NO_GATEWAY)
        .flat_map(|&v| std::iter::once(slot_gateway(v)).chain(slot_previous(v)))
        .collect()
}

/// The gateways a live table names, as config (a clustered LB's start
/// while etcd has not answered yet). Their egress is the section's.
fn live_gateways(dp: &Dataplane, cfg: &config::Lb) -> Result<Vec<Gateway>, LbError> {
    let live = named_entries(&dp.live_slot_values()?);
    let owners = dp.teid_owners()?;
    let mut out: Vec<Gateway> = dp
        .gateway_entries()?
        .into_iter()
        .filter(|(idx, _)| live.contains(idx))
        .map(|(idx, e)| Gateway {
            teid_prefix: owners
                .iter()
                .position(|o| *o == Some(idx))
                .map(|p| p as u32),
            name: e.name,
            address: e.address,
            mac: e.dst_mac.into(),
            via: cfg.gateway_via.clone(),
            weight: e.weight,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// Gateway entries as they will be written: interface names resolved to
/// indices and MACs in this network namespace.
fn resolve(cfg: &config::Lb) -> Result<Vec<(String, GatewayEntry)>, LbError> {
    dataplane_user::ifindex(&cfg.interface)?;
    cfg.gateways
        .iter()
        .map(|g| {
            let via = g.via.as_deref().unwrap_or(&cfg.interface);
            let e = GatewayEntry {
                name: g.name.clone(),
                address: g.address,
                dst_mac: g.mac.octets(),
                src_mac: dataplane_user::mac_of(via)?,
                ifindex: dataplane_user::ifindex(via)?,
                weight: g.weight,
            };
            Ok((g.name.clone(), e))
        })
        .collect()
}
