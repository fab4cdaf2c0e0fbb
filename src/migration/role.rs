//! The `migration` role in the daemon: whichever of the agent, the
//! connection controller and the coordinator the config runs here.
//! A migration request waits on the network, so it is answered on the
//! event loop (`pending`), not under the daemon's lock.

use std::sync::{Arc, Mutex};

use control::{
    api::{
        AgentSummary, ControllerSummary, CoordinatorSummary, CounterView, MessageView,
        MigrationSummary, Request, Response, StatusView, SteeredService,
    },
    config::Config,
    migration::config::Migration,
    migration::Step,
};
use tracing::{error, info};

use super::{AgentHandle, ControllerHandle, Coordinator};
use crate::daemon::{Pending, Role};

pub struct MigrationRole {
    cfg: Migration,
    /// The shared key (from `migration.key`) and what was refused for
    /// want of it, for every part on this host.
    auth: Arc<super::Auth>,
    agent: Option<AgentHandle>,
    controller: Option<ControllerHandle>,
    coordinator: Option<Arc<Mutex<Coordinator>>>,
}

impl MigrationRole {
    fn coordinator(&self) -> Result<std::sync::MutexGuard<'_, Coordinator>, String> {
        Ok(self
            .coordinator
            .as_ref()
            .ok_or("no [migration.coordinator] is configured on this host")?
            .lock()
            .unwrap())
    }
}

/// The first key of `[migration]` that changed and needs a restart: a
/// part added or removed, a listen address (its socket is bound), the
/// database, the controller's interface (its program is attached).
fn restart_only(old: &Migration, new: &Migration) -> Option<&'static str> {
    fn differ<T, K: PartialEq>(a: Option<&T>, b: Option<&T>, key: impl Fn(&T) -> K) -> bool {
        a.map(&key) != b.map(&key)
    }
    let (a, c, k) = (
        (old.agent.as_ref(), new.agent.as_ref()),
        (old.controller.as_ref(), new.controller.as_ref()),
        (old.coordinator.as_ref(), new.coordinator.as_ref()),
    );
    [
        ("agent", differ(a.0, a.1, |_| ())),
        ("agent.listen", differ(a.0, a.1, |x| x.listen)),
        (
            "agent.state_file",
            differ(a.0, a.1, |x| x.state_file.clone()),
        ),
        ("controller", differ(c.0, c.1, |_| ())),
        ("controller.listen", differ(c.0, c.1, |x| x.listen)),
        (
            "controller.interface",
            differ(c.0, c.1, |x| x.interface.clone()),
        ),
        ("key", old.key != new.key),
        ("coordinator", differ(k.0, k.1, |_| ())),
        ("coordinator.listen", differ(k.0, k.1, |x| x.listen)),
        (
            "coordinator.database",
            differ(k.0, k.1, |x| x.database.clone()),
        ),
    ]
    .into_iter()
    .find_map(|(key, changed)| changed.then_some(key))
}

fn ended(step: Step) -> bool {
    matches!(step, Step::Done | Step::RolledBack)
}

fn message(m: String) -> Response {
    Response::ok(MessageView::new(m))
}

impl Role for MigrationRole {
    async fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        let Some(cfg) = config.migration.clone() else {
            return Ok(None);
        };
        let auth = super::Auth::new(&cfg.key);
        let agent = match cfg.agent.clone() {
            Some(a) => Some(super::run_agent(a, auth.clone()).await?),
            None => None,
        };
        let controller = match cfg.controller.clone() {
            Some(c) => Some(super::run_controller(c, opts, auth.clone()).await?),
            None => None,
        };
        let coordinator = match cfg.coordinator.clone() {
            Some(c) => {
                let listen = c.listen;
                let c = Arc::new(Mutex::new(Coordinator::open(c, auth.clone())?));
                if let Some(l) = listen {
                    super::run_coordinator_listener(c.clone(), l).await?;
                }
                // Migrations a previous run left unfinished: finish or roll back.
                let rc = c.clone();
                tokio::spawn(async move {
                    match super::recover(rc).await {
                        Ok(0) => {}
                        Ok(n) => {
                            info!("{n} unfinished migration(s) from before the restart handled")
                        }
                        Err(e) => error!("recovering unfinished migrations: {e:#}"),
                    }
                });
                Some(c)
            }
            None => None,
        };
        Ok(Some(Self {
            cfg,
            auth,
            agent,
            controller,
            coordinator,
        }))
    }

    fn name(&self) -> &'static str {
        "migration"
    }

    fn status(&self, view: &mut StatusView) {
        view.migration = Some(MigrationSummary {
            agent: self.cfg.agent.as_ref().map(|a| AgentSummary {
                listen: a.listen.to_string(),
                coordinator: a.coordinator.map(|c| c.to_string()),
                processes: a.processes.iter().map(|p| p.name.clone()).collect(),
            }),
            controller: self.controller.as_ref().map(|c| {
                let s = c.summary();
                ControllerSummary {
                    interface: c.interface.clone(),
                    queues: s.queues,
                    networks: s.networks,
                    services: s
                        .services
                        .into_iter()
                        .map(|(address, network)| SteeredService { address, network })
                        .collect(),
                    held_frames: s.held_frames,
                    last_switch_us: s.last_switch_us,
                }
            }),
            coordinator: self.coordinator.as_ref().map(|c| {
                let c = c.lock().unwrap();
                CoordinatorSummary {
                    listen: c.cfg.listen.map(|l| l.to_string()),
                    database: c.cfg.database.display().to_string(),
                    migrations: c.migrations.len(),
                    running: c
                        .migrations
                        .iter()
                        .filter(|v| !ended(v.step))
                        .map(|v| v.id)
                        .collect(),
                }
            }),
        });
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        if let Some(h) = &self.controller {
            for (name, packets, bytes) in h.counters()? {
                let c = if name.starts_with("xsk_") || name.starts_with("held_") {
                    CounterView::daemon("migration", "controller", &h.interface, &name, packets)
                } else {
                    CounterView::xdp("migration", "steer", &h.interface, &name, packets, bytes)
                };
                out.push(c);
            }
        }
        for (name, n) in self.auth.counters() {
            out.push(CounterView::daemon("migration", "frames", "", name, n));
        }
        if let Some(c) = &self.coordinator {
            let c = c.lock().unwrap();
            let count = |f: &dyn Fn(&super::MigrationView) -> bool| {
                c.migrations.iter().filter(|m| f(m)).count() as u64
            };
            let part =
                |name: &str, n: u64| CounterView::daemon("migration", "coordinator", "", name, n);
            out.push(part("migrations", c.migrations.len() as u64));
            out.push(part("done", count(&|m| m.step == Step::Done)));
            out.push(part("rolled_back", count(&|m| m.step == Step::RolledBack)));
            out.push(part("running", count(&|m| !ended(m.step))));
            out.push(part(
                "steps",
                c.migrations.iter().map(|m| m.log.len() as u64).sum(),
            ));
            out.push(part(
                "held_packets_released",
                c.migrations
                    .iter()
                    .filter_map(|m| m.released)
                    .map(u64::from)
                    .sum(),
            ));
        }
        Ok(())
    }

    /// What can change live: the agent's processes (not one being
    /// migrated) and its coordinator; the controller's networks and
    /// services (not a service a migration holds); the coordinator's
    /// servers, networks, processes, default controller and timeout. The
    /// listen addresses, the database and the controller's interface need
    /// a restart, as does adding or removing a part.
    fn check(&self, new: &Config) -> Result<(), String> {
        let Some(n) = new.migration.as_ref() else {
            return Err(
                "[migration] removed; restart the daemon to apply it (nothing was changed)".into(),
            );
        };
        if *n == self.cfg {
            return Ok(());
        }
        if let Some(key) = restart_only(&self.cfg, n) {
            return Err(format!(
                "migration.{key} changed; restart the daemon to apply it (nothing was changed)"
            ));
        }
        let unchanged = |e: String| format!("{e} (nothing was changed)");
        if let (Some(h), Some(b)) = (&self.agent, &n.agent) {
            h.check(&b.processes)
                .map_err(|e| unchanged(format!("migration.agent.process: {e}")))?;
        }
        if let (Some(h), Some(b)) = (&self.controller, &n.controller) {
            h.check(b).map_err(unchanged)?;
        }
        if let (Some(c), Some(b)) = (&self.coordinator, &n.coordinator) {
            c.lock().unwrap().reconcile(b, false).map_err(unchanged)?;
        }
        Ok(())
    }

    fn apply(&mut self, new: &Config) -> Result<String, String> {
        let Some(n) = new.migration.clone() else {
            return Ok(String::new());
        };
        if n == self.cfg {
            return Ok(String::new());
        }
        let mut changed = Vec::new();
        if let (Some(h), Some(a), Some(b)) = (&self.agent, &self.cfg.agent, &n.agent) {
            changed.extend(
                h.configure(&b.processes)?
                    .into_iter()
                    .map(|c| format!("agent: {c}")),
            );
            if a.coordinator != b.coordinator {
                changed.push(format!(
                    "agent: coordinator {}",
                    b.coordinator.map_or("none".into(), |c| c.to_string())
                ));
            }
        }
        if let (Some(h), Some(b)) = (&self.controller, &n.controller) {
            changed.extend(
                h.configure(b)?
                    .into_iter()
                    .map(|c| format!("controller: {c}")),
            );
        }
        if let (Some(c), Some(b)) = (&self.coordinator, &n.coordinator) {
            changed.extend(
                c.lock()
                    .unwrap()
                    .reconcile(b, true)?
                    .into_iter()
                    .map(|c| format!("coordinator: {c}")),
            );
        }
        self.cfg = n;
        Ok(if changed.is_empty() {
            String::new()
        } else {
            format!("migration: {}", changed.join(", "))
        })
    }

    fn pending(&mut self, req: &Request) -> Option<Pending> {
        let Request::MigrateStart { process, to, wait } = req.clone() else {
            return None;
        };
        let (coord, agent, auth) = (
            self.coordinator.clone(),
            self.cfg.agent.clone(),
            self.auth.clone(),
        );
        Some(Box::pin(async move {
            let run = match (coord, agent) {
                (Some(c), _) if !wait => super::prepare(&c, &process, &to).map(|p| {
                    let started = c
                        .lock()
                        .unwrap()
                        .migrations
                        .iter()
                        .find(|v| v.id == p.id)
                        .cloned()
                        .expect("recorded");
                    let c = c.clone();
                    tokio::spawn(async move {
                        if let Err(e) = super::run(c, p).await {
                            error!("migration: {e:#}");
                        }
                    });
                    started
                }),
                (Some(c), _) => super::migrate(c, process, to).await,
                // Server 1's agent asks the coordinator (claim 1).
                (None, Some(a)) => super::forward(&auth, &a, process, to).await,
                (None, None) => return Response::err(
                    "no [migration.coordinator] or [migration.agent] is configured on this host",
                ),
            };
            match run {
                Ok(v) if matches!(v.step, Step::Done | Step::Starting) => Response::ok(v),
                Ok(v) => Response::err(format!(
                    "migration of {} rolled back: {}",
                    v.process,
                    v.failure.clone().unwrap_or_default()
                )),
                Err(e) => Response::err(format!("{e:#}")),
            }
        }))
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::MigrateStart { .. } => Err("migrations run on the daemon's event loop".into()),
            Request::MigrateStatus => Ok(Response::ok(self.coordinator()?.migrations.clone())),
            Request::Servers => Ok(Response::ok(
                self.coordinator()?.servers().map_err(|e| e.to_string())?,
            )),
            Request::Networks => Ok(Response::ok(
                self.coordinator()?.networks().map_err(|e| e.to_string())?,
            )),
            Request::ServerAdd { server } => self
                .coordinator()?
                .add_server(&server)
                .map(|_| message(format!("server {} added", server.name))),
            Request::ServerRemove { name } => self
                .coordinator()?
                .remove_server(&name)
                .map(|_| message(format!("server {name} removed"))),
            Request::NetworkAdd { network } => self
                .coordinator()?
                .add_network(&network)
                .map(|_| message(format!("network {} added", network.name))),
            Request::NetworkRemove { name } => self
                .coordinator()?
                .remove_network(&name)
                .map(|_| message(format!("network {name} removed"))),
            other => Err(format!("not a migration request: {other:?}")),
        }
    }
}
