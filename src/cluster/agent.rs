//! The daemon's agent in etcd (`[cluster]`): one lease per daemon, kept
//! alive; the node's member key and its gateway's registration under it;
//! for an LB, the gateway set read and then watched, each change run into
//! every table and the tables published with the revision they came from.
//!
//! etcd unreachable: every table stays as it is (nothing is emptied),
//! status says so, and the agent reconnects with backoff. Back, it reads
//! the whole set at the current revision (what it missed, and only that,
//! changes the tables) and watches on from there; a new lease carries its
//! keys again.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use control::{
    api::ClusterView,
    cluster::{
        config::Cluster,
        record::{self, Alive, GatewayRecord, GatewaySet, LbTable, Member},
    },
    config::Config,
};
use etcd_client::{Client, EventType, PutOptions, WatchOptions};
use tracing::{info, warn};

use super::{cas, connect, get_gateway, now_ms, read_set, set_range, Conflict};
use crate::daemon::Shared;

/// What the agent does for this node, fixed at start.
pub struct Plan {
    pub cfg: Cluster,
    pub node: String,
    pub roles: Vec<String>,
    /// The gateway this node registers: its name and record.
    pub registration: Option<(String, GatewayRecord)>,
    /// This node runs LB tables fed by etcd.
    pub lbs: bool,
}

impl Plan {
    /// From the daemon's config; reads the registered gateway's MAC from
    /// its interface if the config does not give it.
    pub fn new(config: &Config, roles: Vec<String>) -> anyhow::Result<Option<Self>> {
        let Some(cfg) = &config.cluster else {
            return Ok(None);
        };
        let registration = match &cfg.gateway {
            None => None,
            Some(r) => {
                let mac = match (r.mac, &r.interface) {
                    (Some(m), _) => m,
                    (None, Some(i)) => dataplane_user::mac_of(i)
                        .with_context(|| format!("cluster.gateway.interface {i}"))?
                        .into(),
                    (None, None) => bail!("cluster.gateway: no mac and no interface"),
                };
                let teid_prefix = config
                    .gateway
                    .first()
                    .and_then(|g| g.gtpu.as_ref())
                    .and_then(|g| g.teid_prefix)
                    .map(u32::from);
                let name = r.name.clone().unwrap_or_else(|| config.node.name.clone());
                Some((
                    name,
                    GatewayRecord {
                        address: r.address,
                        mac,
                        weight: r.weight,
                        teid_prefix,
                        state: Default::default(),
                        drain_until: None,
                        is_static: false,
                    },
                ))
            }
        };
        Ok(Some(Self {
            cfg: cfg.clone(),
            node: config.node.name.clone(),
            roles,
            registration,
            lbs: !config.lb.is_empty(),
        }))
    }

    pub fn view(&self) -> ClusterView {
        ClusterView {
            endpoints: self.cfg.endpoints.clone(),
            prefix: self.cfg.prefix.clone(),
            since_ms: now_ms(),
            registered: self.registration.as_ref().map(|(n, _)| n.clone()),
            ..Default::default()
        }
    }
}

/// Run for the daemon's life.
pub async fn run(state: Shared, plan: Plan) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let err = session(&state, &plan).await.unwrap_err();
        let msg = format!("{err:#}");
        let was = update(&state, |v| {
            let was = v.connected;
            if was {
                v.disconnects += 1;
                v.since_ms = now_ms();
            }
            v.connected = false;
            v.last_error = Some(msg.clone());
            was
        });
        if was {
            warn!(error = %msg, "cluster: lost etcd; the tables stay as they are");
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn update<T>(state: &Shared, f: impl FnOnce(&mut ClusterView) -> T) -> T {
    let mut s = state.lock().unwrap();
    let v = s.cluster.get_or_insert_with(Default::default);
    f(v)
}

/// One connection's life; returns only with the error that ended it.
async fn session(state: &Shared, plan: &Plan) -> anyhow::Result<()> {
    let cfg = &plan.cfg;
    let prefix = cfg.prefix.as_str();
    let mut client = connect(cfg).await?;
    let ttl = cfg.lease_ttl as i64;
    let lease = client.lease_grant(ttl, None).await?.id();
    let (mut keeper, mut acks) = client.lease_keep_alive(lease).await?;
    update(state, |v| {
        v.lease = lease;
        if !v.connected {
            v.since_ms = now_ms();
        }
        v.connected = true;
        v.last_error = None;
    });
    let with_lease = || Some(PutOptions::new().with_lease(lease));
    let member = Member {
        node: plan.node.clone(),
        roles: plan.roles.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        since_ms: now_ms(),
    };
    client
        .put(
            record::key(prefix, record::MEMBERS, &plan.node),
            serde_json::to_vec(&member)?,
            with_lease(),
        )
        .await?;
    if let Some((name, rec)) = &plan.registration {
        register(&mut client, prefix, name, rec).await?;
        let alive = Alive {
            node: plan.node.clone(),
            since_ms: now_ms(),
        };
        client
            .put(
                record::key(prefix, record::ALIVE, name),
                serde_json::to_vec(&alive)?,
                with_lease(),
            )
            .await?;
        info!(gateway = %name, lease, ttl, "cluster: gateway registered");
    }
    let mut set = GatewaySet::default();
    let mut watch = None;
    if plan.lbs {
        set = read_set(&mut client, prefix).await?;
        run_set(state, plan, &mut client, &set, lease).await?;
        let (start, end) = set_range(prefix);
        watch = Some(
            client
                .watch(
                    start,
                    Some(
                        WatchOptions::new()
                            .with_range(end)
                            .with_start_revision(set.revision + 1),
                    ),
                )
                .await?,
        );
    }
    info!(revision = set.revision, "cluster: connected to etcd");

    // Keep-alives at a third of the TTL; no answer for a whole TTL means
    // the lease (and with it this session) is gone.
    let period = Duration::from_millis((cfg.lease_ttl * 1000 / 3).max(300));
    let mut ka = tokio::time::interval(period);
    let mut last_ack = Instant::now();
    // Drains end by the clock, not by an etcd event.
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut applied_at = now_ms() / 1000;
    loop {
        tokio::select! {
            _ = ka.tick() => {
                if last_ack.elapsed() > Duration::from_secs(cfg.lease_ttl) {
                    bail!("no keep-alive answer for {} s", cfg.lease_ttl);
                }
                keeper.keep_alive().await?;
            }
            ack = acks.message() => {
                match ack? {
                    Some(a) if a.ttl() > 0 => last_ack = Instant::now(),
                    Some(_) => bail!("lease {lease:x} expired"),
                    None => bail!("keep-alive stream closed"),
                }
            }
            msg = next(&mut watch) => {
                let resp = msg?.context("watch stream closed")?;
                if resp.canceled() || resp.compact_revision() > 0 {
                    bail!("watch cancelled: {}", resp.cancel_reason());
                }
                if resp.events().is_empty() {
                    continue;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let value = (ev.event_type() == EventType::Put).then(|| kv.value());
                    if let Err(e) = set.apply(prefix, kv.key_str()?, value) {
                        warn!("cluster: {e}; skipped");
                    }
                }
                if let Some(h) = resp.header() {
                    set.revision = h.revision();
                }
                run_set(state, plan, &mut client, &set, lease).await?;
                applied_at = now_ms() / 1000;
            }
            _ = clock.tick(), if plan.lbs => {
                let now = now_ms() / 1000;
                let ended = set.records.values().any(|r| {
                    r.drain_until.is_some_and(|u| u > applied_at && u <= now)
                });
                if ended {
                    run_set(state, plan, &mut client, &set, lease).await?;
                    applied_at = now;
                }
            }
        }
    }
}

async fn next(
    w: &mut Option<etcd_client::WatchStream>,
) -> Result<Option<etcd_client::WatchResponse>, etcd_client::Error> {
    match w {
        Some(w) => w.message().await,
        None => std::future::pending().await,
    }
}

/// Revoke the daemon's lease as it stops: its member key, its gateway's
/// liveness and its tables go now, not a TTL later.
pub async fn leave(state: &Shared) {
    let (cfg, lease) = {
        let s = state.lock().unwrap();
        match (&s.config.cluster, &s.cluster) {
            (Some(c), Some(v)) if v.lease != 0 => (c.clone(), v.lease),
            _ => return,
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(1), async {
        let mut c = connect(&cfg).await?;
        c.lease_revoke(lease).await?;
        anyhow::Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) => info!(lease, "cluster: lease revoked"),
        Ok(Err(e)) => {
            warn!(error = %e, "cluster: could not revoke the lease; it expires by itself")
        }
        Err(_) => {
            warn!("cluster: etcd did not answer the revoke in 1 s; the lease expires by itself")
        }
    }
}

/// Create this gateway's record, or bring its address, MAC and TEID
/// prefix up to date while keeping what operators set (weight, drain).
async fn register(
    client: &mut Client,
    prefix: &str,
    name: &str,
    rec: &GatewayRecord,
) -> anyhow::Result<()> {
    let key = record::key(prefix, record::GATEWAYS, name);
    for _ in 0..5 {
        let (want, rev) = match get_gateway(client, prefix, name).await? {
            None => (rec.clone(), 0),
            Some((have, rev)) => {
                let want = GatewayRecord {
                    address: rec.address,
                    mac: rec.mac,
                    teid_prefix: rec.teid_prefix,
                    ..have.clone()
                };
                if want == have {
                    return Ok(());
                }
                (want, rev)
            }
        };
        match cas(client, &key, rev, Some(serde_json::to_vec(&want)?), None).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is::<Conflict>() => continue,
            Err(e) => return Err(e),
        }
    }
    bail!("{key}: five writers raced this registration; giving up for now")
}

/// Run `set` into the LB tables and publish them under the lease.
async fn run_set(
    state: &Shared,
    plan: &Plan,
    client: &mut Client,
    set: &GatewaySet,
    lease: i64,
) -> anyhow::Result<()> {
    let st = state.clone();
    let s2 = set.clone();
    let node = plan.node.clone();
    let tables: Result<Vec<LbTable>, String> = tokio::task::spawn_blocking(move || {
        let mut s = st.lock().unwrap();
        let now = now_ms();
        let mut all = Vec::new();
        for r in s.roles.iter_mut() {
            all.extend(r.gateway_set(&s2, &node, now)?);
        }
        Ok(all)
    })
    .await?;
    let tables = match tables {
        Ok(t) => {
            update(state, |v| {
                v.revision = set.revision;
                v.sets_applied += 1;
                v.refused = None;
            });
            t
        }
        Err(e) => {
            // The tables stay on the last set they took.
            warn!(revision = set.revision, error = %e, "cluster: gateway set refused");
            update(state, |v| {
                v.refused = Some(format!("revision {}: {e}", set.revision))
            });
            return Ok(());
        }
    };
    for t in tables {
        client
            .put(
                record::lb_key(&plan.cfg.prefix, &t.node, &t.interface),
                serde_json::to_vec(&t)?,
                Some(PutOptions::new().with_lease(lease)),
            )
            .await?;
    }
    Ok(())
}
