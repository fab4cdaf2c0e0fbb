//! `edgeplane cluster ...`: the shared state in etcd, read and changed
//! directly (no daemon needed). Every change is a compare-and-swap on the
//! record's revision: two operators changing the same gateway at once get
//! one success and one conflict, never a silent overwrite.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use control::{
    cluster::{
        config::Cluster,
        record::{self, GatewayRecord, GwState, LbTable, Member},
    },
    config::Config,
    field::MacAddr,
    lb::{
        config::{DEFAULT_DRAIN_TIMEOUT, MAX_DRAIN_TIMEOUT},
        maglev::{Backend, MaglevTable},
    },
};
use serde::Serialize;

use super::{cas, connect, get_gateway, now_ms, read_set};
use crate::cli::print_json;

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// A config file whose [cluster] section names etcd.
    #[arg(long, conflicts_with = "endpoints")]
    config: Option<PathBuf>,
    /// etcd endpoints instead of --config (comma-separated URLs).
    #[arg(long, value_delimiter = ',', env = "EDGEPLANE_ETCD")]
    endpoints: Vec<String>,
    /// Key prefix (with --endpoints; default /edgeplane).
    #[arg(long)]
    prefix: Option<String>,
    #[command(subcommand)]
    cmd: ClusterCmd,
}

#[derive(clap::Subcommand)]
pub enum ClusterCmd {
    /// Members, gateways and LB tables, and whether every LB agrees.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The gateway set every LB builds its table from.
    Gateways {
        #[command(subcommand)]
        cmd: GwCmd,
    },
}

#[derive(clap::Subcommand)]
pub enum GwCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// A static gateway: in the tables without registering itself.
    Add {
        name: String,
        #[arg(long)]
        address: std::net::IpAddr,
        #[arg(long)]
        mac: MacAddr,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[arg(long)]
        teid_prefix: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Out of every table now (a live gateway comes back when its daemon
    /// registers again; drain it to keep it out gently).
    Remove {
        name: String,
        /// Only if the record is still at this revision.
        #[arg(long)]
        revision: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    Weight {
        name: String,
        weight: u32,
        #[arg(long)]
        revision: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Out of the Maglev tables; its sessions stay until the timeout.
    Drain {
        name: String,
        /// Seconds (default 300).
        #[arg(long, default_value_t = DEFAULT_DRAIN_TIMEOUT)]
        timeout: u64,
        #[arg(long)]
        revision: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    Undrain {
        name: String,
        #[arg(long)]
        revision: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

fn section(args: &ClusterArgs) -> anyhow::Result<Cluster> {
    let c = match (&args.config, args.endpoints.is_empty()) {
        (Some(path), _) => Config::load(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .cluster
            .with_context(|| format!("{}: no [cluster] section", path.display()))?,
        (None, false) => Cluster::from_endpoints(args.endpoints.clone(), args.prefix.clone()),
        (None, true) => {
            bail!("name etcd with --config FILE or --endpoints URL[,URL...] (or EDGEPLANE_ETCD)")
        }
    };
    c.validate().map_err(|e| anyhow::anyhow!("cluster.{e}"))?;
    Ok(c)
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let cfg = section(&args)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_cmd(cfg, args.cmd))
}

#[derive(Serialize)]
struct GatewayRow {
    name: String,
    #[serde(flatten)]
    record: GatewayRecord,
    alive: bool,
    /// In the tables now (alive or static, not past its drain).
    in_tables: bool,
    revision: i64,
}

#[derive(Serialize)]
struct LbRow {
    #[serde(flatten)]
    table: LbTable,
    /// The digest the current set gives at this LB's size and seed.
    expected_digest: String,
    current: bool,
}

#[derive(Serialize)]
struct StatusOut {
    revision: i64,
    members: Vec<Member>,
    gateways: Vec<GatewayRow>,
    lbs: Vec<LbRow>,
    /// Every LB runs one digest, the one the current set gives.
    agree: bool,
}

#[derive(Serialize)]
struct Written {
    key: String,
    revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<GatewayRecord>,
}

async fn gateways(
    client: &mut etcd_client::Client,
    prefix: &str,
) -> anyhow::Result<(i64, Vec<GatewayRow>, Vec<Backend>)> {
    let set = read_set(client, prefix).await?;
    let revs: std::collections::HashMap<String, i64> =
        super::read_dir::<GatewayRecord>(client, prefix, record::GATEWAYS)
            .await?
            .into_iter()
            .map(|(n, _, r)| (n, r))
            .collect();
    let eff = set.effective(None, now_ms() / 1000);
    let rows = set
        .records
        .iter()
        .map(|(name, r)| GatewayRow {
            name: name.clone(),
            record: r.clone(),
            alive: set.alive.contains(name),
            in_tables: eff.backends.iter().any(|b| &b.name == name),
            revision: revs.get(name).copied().unwrap_or(0),
        })
        .collect();
    // As an LB builds its table: a draining gateway has weight 0.
    let backends = eff
        .backends
        .iter()
        .map(|b| Backend {
            name: b.name.clone(),
            weight: if eff.draining.contains_key(&b.name) {
                0
            } else {
                b.weight
            },
        })
        .collect();
    Ok((set.revision, rows, backends))
}

async fn run_cmd(cfg: Cluster, cmd: ClusterCmd) -> anyhow::Result<()> {
    let prefix = cfg.prefix.clone();
    let mut client = connect(&cfg).await?;
    match cmd {
        ClusterCmd::Status { json } => {
            let (revision, gws, backends) = gateways(&mut client, &prefix).await?;
            let members = super::members(&mut client, &prefix).await?;
            let lbs: Vec<LbRow> = super::lb_tables(&mut client, &prefix)
                .await?
                .into_iter()
                .map(|t| {
                    let expected = MaglevTable::build(&backends, t.table_size, t.seed)
                        .map(|m| format!("{:016x}", m.digest()))
                        .unwrap_or_else(|e| format!("({e})"));
                    LbRow {
                        current: expected == t.digest,
                        expected_digest: expected,
                        table: t,
                    }
                })
                .collect();
            let agree = !lbs.is_empty()
                && lbs
                    .iter()
                    .all(|l| l.current && l.table.digest == lbs[0].table.digest);
            let out = StatusOut {
                revision,
                members,
                gateways: gws,
                lbs,
                agree,
            };
            if json {
                print_json(&serde_json::to_value(&out)?);
            } else {
                print_status(&out);
            }
        }
        ClusterCmd::Gateways { cmd } => gateway_cmd(&mut client, &prefix, cmd).await?,
    }
    Ok(())
}

fn print_status(s: &StatusOut) {
    println!("etcd revision {}", s.revision);
    println!("members:");
    for m in &s.members {
        println!("  {:<20} {}", m.node, m.roles.join(","));
    }
    print_gateways(&s.gateways);
    println!("lb tables:");
    for l in &s.lbs {
        let t = &l.table;
        let mark = if l.current { "current" } else { "STALE" };
        println!(
            "  {:<20} {:<10} {} revision {:<6} {} gateway(s) {mark}",
            t.node,
            t.interface,
            t.digest,
            t.revision,
            t.gateways.len()
        );
    }
    println!(
        "{}",
        if s.agree {
            "all LBs agree"
        } else if s.lbs.is_empty() {
            "no LB has published a table"
        } else {
            "LBs DISAGREE (or lag the current set)"
        }
    );
}

fn print_gateways(rows: &[GatewayRow]) {
    println!("gateways:");
    for g in rows {
        let r = &g.record;
        let liveness = if r.is_static {
            "static"
        } else if g.alive {
            "alive"
        } else {
            "not running"
        };
        let drain = match (r.state, r.drain_until) {
            (GwState::Draining, Some(u)) => {
                format!(" draining {} s left", u.saturating_sub(now_ms() / 1000))
            }
            _ => String::new(),
        };
        println!(
            "  {:<12} {} {} weight {}{} {liveness}{drain}{} (revision {})",
            g.name,
            r.address,
            r.mac,
            r.weight,
            r.teid_prefix
                .map(|p| format!(" teid prefix {p}"))
                .unwrap_or_default(),
            if g.in_tables {
                ""
            } else {
                ", not in the tables"
            },
            g.revision
        );
    }
}

/// Read the record (which must exist), change it with `f`, write it back
/// if it is still at the revision read (or the one the operator named).
async fn modify(
    client: &mut etcd_client::Client,
    prefix: &str,
    name: &str,
    expect: Option<i64>,
    f: impl FnOnce(&mut GatewayRecord) -> anyhow::Result<()>,
) -> anyhow::Result<Written> {
    let key = record::key(prefix, record::GATEWAYS, name);
    let (mut r, rev) = get_gateway(client, prefix, name)
        .await?
        .with_context(|| format!("no gateway {name:?} in etcd ({key})"))?;
    let expected = expect.unwrap_or(rev);
    f(&mut r)?;
    r.validate().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let revision = cas(client, &key, expected, Some(serde_json::to_vec(&r)?), None).await?;
    Ok(Written {
        key,
        revision,
        record: Some(r),
    })
}

async fn gateway_cmd(
    client: &mut etcd_client::Client,
    prefix: &str,
    cmd: GwCmd,
) -> anyhow::Result<()> {
    let (w, json) = match cmd {
        GwCmd::List { json } => {
            let (_, rows, _) = gateways(client, prefix).await?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                print_gateways(&rows);
            }
            return Ok(());
        }
        GwCmd::Add {
            name,
            address,
            mac,
            weight,
            teid_prefix,
            json,
        } => {
            control::lb::config::validate_gateway_name(&name)
                .map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
            let r = GatewayRecord {
                address,
                mac,
                weight,
                teid_prefix,
                state: GwState::Active,
                drain_until: None,
                is_static: true,
            };
            r.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
            let key = record::key(prefix, record::GATEWAYS, &name);
            let revision = cas(client, &key, 0, Some(serde_json::to_vec(&r)?), None)
                .await
                .map_err(|e| match e.downcast_ref::<super::Conflict>() {
                    Some(_) => anyhow::anyhow!("gateway {name:?} already exists ({key}); change it with weight/drain or remove it first"),
                    None => e,
                })?;
            (
                Written {
                    key,
                    revision,
                    record: Some(r),
                },
                json,
            )
        }
        GwCmd::Remove {
            name,
            revision,
            json,
        } => {
            let key = record::key(prefix, record::GATEWAYS, &name);
            let (_, rev) = get_gateway(client, prefix, &name)
                .await?
                .with_context(|| format!("no gateway {name:?} in etcd ({key})"))?;
            let revision = cas(client, &key, revision.unwrap_or(rev), None, None).await?;
            (
                Written {
                    key,
                    revision,
                    record: None,
                },
                json,
            )
        }
        GwCmd::Weight {
            name,
            weight,
            revision,
            json,
        } => (
            modify(client, prefix, &name, revision, |r| {
                r.weight = weight;
                Ok(())
            })
            .await?,
            json,
        ),
        GwCmd::Drain {
            name,
            timeout,
            revision,
            json,
        } => {
            if timeout == 0 || timeout > MAX_DRAIN_TIMEOUT {
                bail!("--timeout {timeout}: must be 1..={MAX_DRAIN_TIMEOUT}");
            }
            (
                modify(client, prefix, &name, revision, |r| {
                    r.state = GwState::Draining;
                    r.drain_until = Some(now_ms() / 1000 + timeout);
                    Ok(())
                })
                .await?,
                json,
            )
        }
        GwCmd::Undrain {
            name,
            revision,
            json,
        } => (
            modify(client, prefix, &name, revision, |r| {
                if r.state != GwState::Draining {
                    bail!("gateway {name:?} is not draining");
                }
                r.state = GwState::Active;
                r.drain_until = None;
                Ok(())
            })
            .await?,
            json,
        ),
    };
    if json {
        print_json(&serde_json::to_value(&w)?);
    } else {
        match &w.record {
            Some(r) => println!(
                "{}: weight {} {}{} (revision {})",
                w.key,
                r.weight,
                r.state,
                if r.is_static { ", static" } else { "" },
                w.revision
            ),
            None => println!("{}: removed (revision {})", w.key, w.revision),
        }
    }
    Ok(())
}
