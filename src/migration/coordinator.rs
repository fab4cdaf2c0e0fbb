//! The coordinator: servers, networks and where each process runs in its
//! store (SQLite, or PostgreSQL by URL: a standby coordinator on the same
//! database takes over with the state, and recovers what was left
//! unfinished); each migration driven by the pure engine
//! (`control::migration::Migration`), recorded step by step, and
//! recovered after a restart.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::Context as _;
use control::{
    migration::config::{MigrationAgent, MigrationCoordinator},
    migration::{Body, Frame, Step, VERSION},
};
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::transport::{now_ms, request, serve, Auth};
use crate::sql::{Db, SqlError, Value};

#[path = "coordinator_runs.rs"]
mod runs;
pub use runs::{migrate, prepare, recover, run, Prepared};

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct MigrationView {
    /// 1, 2, … in the order requested since the coordinator started.
    pub id: u64,
    pub process: String,
    pub from: String,
    pub to: String,
    pub step: Step,
    pub failure: Option<String>,
    pub log: Vec<String>,
    pub elapsed_ms: u64,
    /// The controller's switch time, the held packets it released, and
    /// the pause it saw (first held packet to first packet released).
    pub switch_us: Option<u64>,
    pub released: Option<u32>,
    pub pause_us: Option<u64>,
}

pub struct Coordinator {
    pub cfg: MigrationCoordinator,
    /// The store (a cell: reads happen behind `&self`, and the
    /// PostgreSQL client needs `&mut` for them too).
    db: std::cell::RefCell<Db>,
    pub migrations: Vec<MigrationView>,
    next_id: u64,
    /// Processes being moved now: a second request for one is refused.
    busy: std::collections::HashSet<String>,
    /// The shared key its frames carry tags with, and what it refused.
    pub auth: Arc<Auth>,
}

impl Coordinator {
    pub fn open(cfg: MigrationCoordinator, auth: Arc<Auth>) -> anyhow::Result<Self> {
        let database = cfg.database.to_string_lossy().into_owned();
        let mut db = Db::open(&database).with_context(|| database.clone())?;
        db.batch(
            "CREATE TABLE IF NOT EXISTS servers (name TEXT PRIMARY KEY, address TEXT NOT NULL, network TEXT NOT NULL, agent TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS networks (name TEXT PRIMARY KEY, id BIGINT NOT NULL, controller TEXT, via TEXT, next_hop_mac TEXT);
             CREATE TABLE IF NOT EXISTS processes (name TEXT PRIMARY KEY, server TEXT NOT NULL, service TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS migrations (id BIGINT PRIMARY KEY, plan TEXT NOT NULL, view TEXT NOT NULL);",
        )?;
        if !db.is_postgres() {
            db.batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
            // A store from before networks named their controller and egress.
            for col in ["controller", "via", "next_hop_mac"] {
                if db
                    .rows(&format!("SELECT {col} FROM networks LIMIT 0"), &[])
                    .is_err()
                {
                    db.batch(&format!("ALTER TABLE networks ADD COLUMN {col} TEXT"))?;
                }
            }
        }
        put_config(&mut db, &cfg)?;
        // Past migrations (the last HISTORY), and any a previous run left
        // unfinished: `recover` finishes or rolls those back.
        db.exec(
            "DELETE FROM migrations WHERE id <= (SELECT MAX(id) FROM migrations) - ?1",
            &[(HISTORY as i64).into()],
        )?;
        let mut migrations = Vec::new();
        for row in db.rows("SELECT view FROM migrations ORDER BY id", &[])? {
            let v = row[0].text().unwrap_or_default();
            migrations.push(serde_json::from_str::<MigrationView>(v)?);
        }
        Ok(Self {
            cfg,
            db: std::cell::RefCell::new(db),
            migrations,
            next_id: now_ms() << 8,
            busy: Default::default(),
            auth,
        })
    }

    fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.db.borrow_mut().rows(sql, args)
    }

    fn exec(&self, sql: &str, args: &[Value]) -> Result<u64, SqlError> {
        self.db.borrow_mut().exec(sql, args)
    }

    pub fn servers(&self) -> anyhow::Result<Vec<control::migration::ServerInfo>> {
        self.rows(
            "SELECT name, address, network, agent FROM servers ORDER BY name",
            &[],
        )?
        .into_iter()
        .map(|r| {
            Ok(control::migration::ServerInfo {
                name: text(&r, 0)?,
                address: text(&r, 1)?.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                network: text(&r, 2)?,
                agent: parsed(3, &text(&r, 3)?)?,
            })
        })
        .collect()
    }

    pub fn networks(&self) -> anyhow::Result<Vec<control::migration::NetworkInfo>> {
        self.rows(
            "SELECT name, id, controller, via, next_hop_mac FROM networks ORDER BY id",
            &[],
        )?
        .into_iter()
        .map(|r| {
            Ok(control::migration::NetworkInfo {
                name: text(&r, 0)?,
                id: r[1]
                    .int()
                    .and_then(|i| u32::try_from(i).ok())
                    .context("networks.id")?,
                controller: r[2].text().map(|c| parsed(2, c)).transpose()?,
                via: r[3].text().map(str::to_string),
                next_hop_mac: r[4].text().map(|m| parsed(4, m)).transpose()?,
            })
        })
        .collect()
    }

    /// Write a migration's view to the store (best effort: the run goes
    /// on if the disk fails, and says so in the log).
    fn save(&self, view_id: u64) {
        if let Some(v) = self.migrations.iter().find(|v| v.id == view_id) {
            let json = serde_json::to_string(v).unwrap_or_default();
            if let Err(e) = self.exec(
                "UPDATE migrations SET view = ?2 WHERE id = ?1",
                &[(view_id as i64).into(), json.into()],
            ) {
                warn!(view_id, "storing the migration's progress: {e}");
            }
        }
    }

    pub fn add_server(&mut self, s: &control::migration::ServerInfo) -> Result<(), String> {
        s.check().map_err(|(k, r)| format!("{k}: {r}"))?;
        if !self
            .networks()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|n| n.name == s.network)
        {
            return Err(format!(
                "network: no network {:?} (add it first)",
                s.network
            ));
        }
        let n = self
            .exec(
                "INSERT INTO servers VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                &server_row(s),
            )
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "a server {:?} exists already (remove it first)",
                s.name
            ));
        }
        Ok(())
    }

    pub fn remove_server(&mut self, name: &str) -> Result<(), String> {
        let on: Vec<String> =
            self.query_names("SELECT name FROM processes WHERE server = ?1", name)?;
        if !on.is_empty() {
            return Err(format!(
                "{} run on {name:?}; move them first",
                on.join(", ")
            ));
        }
        if self
            .migrations
            .iter()
            .any(|m| self.busy.contains(&m.process) && (m.from == name || m.to == name))
        {
            return Err(format!("a migration from or to {name:?} is running"));
        }
        match self
            .exec("DELETE FROM servers WHERE name = ?1", &[name.into()])
            .map_err(|e| e.to_string())?
        {
            0 => Err(format!("no server {name:?}")),
            _ => Ok(()),
        }
    }

    pub fn add_network(&mut self, n: &control::migration::NetworkInfo) -> Result<(), String> {
        n.check(self.cfg.controller.is_some())
            .map_err(|(k, r)| format!("{k}: {r}"))?;
        if self
            .networks()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|m| m.name == n.name || m.id == n.id)
        {
            return Err(format!(
                "a network named {:?} or with id {} exists already",
                n.name, n.id
            ));
        }
        let controller = n
            .controller
            .map(|c| c.to_string())
            .or(self.cfg.controller.map(|c| c.to_string()));
        self.exec(
            "INSERT INTO networks (name, id, controller, via, next_hop_mac) VALUES (?1, ?2, ?3, ?4, ?5)",
            &network_row(n, controller),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn remove_network(&mut self, name: &str) -> Result<(), String> {
        let on: Vec<String> =
            self.query_names("SELECT name FROM servers WHERE network = ?1", name)?;
        if !on.is_empty() {
            return Err(format!(
                "servers {} are on {name:?}; remove them first",
                on.join(", ")
            ));
        }
        match self
            .exec("DELETE FROM networks WHERE name = ?1", &[name.into()])
            .map_err(|e| e.to_string())?
        {
            0 => Err(format!("no network {name:?}")),
            _ => Ok(()),
        }
    }

    fn query_names(&self, sql: &str, arg: &str) -> Result<Vec<String>, String> {
        Ok(self
            .rows(sql, &[arg.into()])
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|r| r[0].text().map(str::to_string))
            .collect())
    }

    /// Apply a reloaded `[migration.coordinator]` (its `listen` and
    /// `database` unchanged) as at start: its servers, networks and
    /// processes into the store; and what the old config named and the new
    /// one does not out of it, refused as `servers remove` and `networks
    /// remove` refuse (and a process being moved). All or nothing: with
    /// `commit` false (a check) nothing changes either way. What changed.
    pub fn reconcile(
        &mut self,
        new: &MigrationCoordinator,
        commit: bool,
    ) -> Result<Vec<String>, String> {
        self.db
            .borrow_mut()
            .batch("BEGIN")
            .map_err(|e| e.to_string())?;
        let r = self.reconcile_in_transaction(new);
        let end = if commit && r.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        self.db
            .borrow_mut()
            .batch(end)
            .map_err(|e| format!("{end}: {e}"))?;
        if commit && r.is_ok() {
            self.cfg = new.clone();
        }
        r
    }

    fn reconcile_in_transaction(
        &mut self,
        new: &MigrationCoordinator,
    ) -> Result<Vec<String>, String> {
        let old = self.cfg.clone();
        let mut changed = Vec::new();
        for p in old
            .processes
            .iter()
            .filter(|p| !new.processes.iter().any(|q| q.name == p.name))
        {
            if self.busy.contains(&p.name) {
                return Err(format!(
                    "migration.coordinator.process: {} is being migrated; it cannot be removed now",
                    p.name
                ));
            }
            self.exec("DELETE FROM processes WHERE name = ?1", &[(&p.name).into()])
                .map_err(|e| e.to_string())?;
            changed.push(format!("process {} removed", p.name));
        }
        for s in old
            .servers
            .iter()
            .filter(|s| !new.servers.iter().any(|t| t.name == s.name))
        {
            self.remove_server(&s.name)
                .map_err(|e| format!("migration.coordinator.server {:?}: {e}", s.name))?;
            changed.push(format!("server {} removed", s.name));
        }
        for n in old
            .networks
            .iter()
            .filter(|n| !new.networks.iter().any(|m| m.name == n.name))
        {
            self.remove_network(&n.name)
                .map_err(|e| format!("migration.coordinator.network {:?}: {e}", n.name))?;
            changed.push(format!("network {} removed", n.name));
        }
        put_config(&mut self.db.borrow_mut(), new).map_err(|e| e.to_string())?;
        let what = |old: bool, same: bool| {
            if !old {
                "added"
            } else if same {
                ""
            } else {
                "changed"
            }
        };
        for n in &new.networks {
            let o = old.networks.iter().find(|m| m.name == n.name);
            let w = what(
                o.is_some(),
                o == Some(n) && old.controller == new.controller,
            );
            if !w.is_empty() {
                changed.push(format!("network {} {w}", n.name));
            }
        }
        for s in &new.servers {
            let o = old.servers.iter().find(|t| t.name == s.name);
            let w = what(o.is_some(), o == Some(s));
            if !w.is_empty() {
                changed.push(format!("server {} {w}", s.name));
            }
        }
        for p in &new.processes {
            if !old.processes.iter().any(|q| q.name == p.name) {
                changed.push(format!("process {} added", p.name));
            }
        }
        if old.timeout_ms != new.timeout_ms {
            changed.push(format!(
                "timeout_ms {} → {}",
                old.timeout_ms, new.timeout_ms
            ));
        }
        Ok(changed)
    }

    /// (current server, service address) of a process.
    fn place(&self, process: &str) -> anyhow::Result<(String, IpAddr)> {
        let rows = self.rows(
            "SELECT server, service FROM processes WHERE name = ?1",
            &[process.into()],
        )?;
        let r = rows
            .first()
            .with_context(|| format!("no process {process:?} in the store"))?;
        Ok((text(r, 0)?, text(r, 1)?.parse()?))
    }
}

/// The config's servers, networks and processes into the store: servers
/// and networks as configured; a process's place only if the store has
/// none (it keeps where a process moved to across restarts).
fn put_config(db: &mut Db, cfg: &MigrationCoordinator) -> Result<(), SqlError> {
    for s in &cfg.servers {
        db.exec(
            "INSERT INTO servers VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET address = excluded.address, network = excluded.network, agent = excluded.agent",
            &server_row(s),
        )?;
    }
    for n in &cfg.networks {
        let controller = n
            .controller
            .map(|c| c.to_string())
            .or(cfg.controller.map(|c| c.to_string()));
        db.exec(
            "INSERT INTO networks (name, id, controller, via, next_hop_mac) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET id = excluded.id, controller = excluded.controller, via = excluded.via, next_hop_mac = excluded.next_hop_mac",
            &network_row(n, controller),
        )?;
    }
    for p in &cfg.processes {
        // The store keeps where a process moved to across restarts.
        db.exec(
            "INSERT INTO processes VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            &[
                (&p.name).into(),
                (&p.server).into(),
                p.service.to_string().into(),
            ],
        )?;
    }
    Ok(())
}

fn server_row(s: &control::migration::ServerInfo) -> [Value; 4] {
    [
        (&s.name).into(),
        s.address.to_string().into(),
        (&s.network).into(),
        s.agent.to_string().into(),
    ]
}

fn network_row(n: &control::migration::NetworkInfo, controller: Option<String>) -> [Value; 5] {
    [
        (&n.name).into(),
        i64::from(n.id).into(),
        controller.into(),
        n.via.clone().into(),
        n.next_hop_mac.map(|m| m.to_string()).into(),
    ]
}

/// Column `i` of a row as text (a NOT NULL text column).
fn text(row: &[Value], i: usize) -> anyhow::Result<String> {
    row.get(i)
        .and_then(Value::text)
        .map(str::to_string)
        .with_context(|| format!("column {i} is not text"))
}

/// Migrations kept in the store's history.
const HISTORY: u64 = 10_000;

/// Take migration requests over TCP (claim 1: from server 1's agent).
pub async fn run_coordinator_listener(
    coord: Arc<Mutex<Coordinator>>,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let l = TcpListener::bind(listen)
        .await
        .with_context(|| format!("coordinator listen {listen}"))?;
    info!(%listen, "migration coordinator takes requests");
    let auth = coord.lock().unwrap().auth.clone();
    tokio::spawn(serve(l, auth, move |f: Frame| {
        let coord = coord.clone();
        async move {
            match f.body {
                Body::MigrateRequest { process, to } => {
                    match migrate(coord, process.clone(), to).await {
                        Ok(v) => Body::MigrateResult {
                            process,
                            step: v.step,
                            failure: v.failure,
                            log: v.log,
                        },
                        Err(e) => Body::Error {
                            reason: format!("{e:#}"),
                        },
                    }
                }
                other => Body::Error {
                    reason: format!("a coordinator does not take {other:?}"),
                },
            }
        }
    }));
    Ok(())
}

/// How long an agent waits for the coordinator to finish a migration it
/// asked for.
pub const FORWARD_TIMEOUT_MS: u64 = 60_000;

/// `edgeplane migrate` on a server without a coordinator: its agent sends
/// the request to the coordinator and relays the result.
pub async fn forward(
    auth: &Auth,
    agent: &MigrationAgent,
    process: String,
    to: String,
) -> anyhow::Result<MigrationView> {
    let coordinator = agent.coordinator.ok_or_else(|| {
        anyhow::anyhow!(
            "no [migration.coordinator] here, and [migration.agent] names no coordinator to ask"
        )
    })?;
    anyhow::ensure!(
        agent.processes.iter().any(|p| p.name == process),
        "this server's agent does not know a process {process:?}"
    );
    let t0 = Instant::now();
    let f = Frame {
        v: VERSION,
        id: now_ms() << 8 | 0x42,
        deadline_ms: now_ms() + FORWARD_TIMEOUT_MS,
        body: Body::MigrateRequest {
            process: process.clone(),
            to: to.clone(),
        },
    };
    match request(auth, &coordinator.to_string(), &f).await {
        Ok(Body::MigrateResult {
            process,
            step,
            failure,
            log,
        }) => Ok(MigrationView {
            id: 0,
            process,
            from: "here".into(),
            to,
            step,
            failure,
            log: std::iter::once(format!("asked coordinator {coordinator}"))
                .chain(log)
                .collect(),
            elapsed_ms: t0.elapsed().as_millis() as u64,
            switch_us: None,
            released: None,
            pause_us: None,
        }),
        Ok(Body::Error { reason }) => anyhow::bail!("coordinator {coordinator}: {reason}"),
        Ok(other) => anyhow::bail!("coordinator {coordinator}: unexpected answer {other:?}"),
        Err(e) => anyhow::bail!("coordinator: {e}"),
    }
}

/// A value the store keeps as text, parsed back (column `col`).
fn parsed<T: std::str::FromStr>(col: usize, text: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| anyhow::anyhow!("column {col}: {text:?}: {e}"))
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
