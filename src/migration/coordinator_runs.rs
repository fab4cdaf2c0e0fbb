//! A migration's run: checked and recorded (`prepare`), driven through
//! the engine's requests to its end (`run`), and, after a restart, the
//! unfinished ones finished or rolled back (`recover`).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::Context as _;
use control::migration::{Body, Frame, Input, Migration, Output, Step, VERSION};
use serde::Serialize;
use tracing::{info, warn};

use super::{text, Coordinator, MigrationView};
use crate::migration::transport::{now_ms, request, Auth};

/// Clears a process's busy mark however its migration ends.
struct Busy(Arc<Mutex<Coordinator>>, String);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.lock().unwrap().busy.remove(&self.1);
    }
}

/// A migration checked and recorded, ready to run.
pub struct Prepared {
    m: Migration,
    /// Request IDs below the engine's own (it counts up from here + 1).
    first_id: u64,
    controller: String,
    timeout: u64,
    t0: Instant,
    busy: Busy,
    pub id: u64,
}

/// Run one migration to its end (done or rolled back).
pub async fn migrate(
    coord: Arc<Mutex<Coordinator>>,
    process: String,
    to: String,
) -> anyhow::Result<MigrationView> {
    let p = prepare(&coord, &process, &to)?;
    run(coord, p).await
}

/// Check a migration request against the store and record it (step
/// `starting`): errors here mean nothing was touched.
pub fn prepare(
    coord: &Arc<Mutex<Coordinator>>,
    process: &str,
    to: &str,
) -> anyhow::Result<Prepared> {
    let t0 = Instant::now();
    let (process, to) = (process.to_string(), to.to_string());
    let (m, first_id, controller, timeout, view_id) = {
        let mut c = coord.lock().unwrap();
        let (from_name, service) = c.place(&process)?;
        let servers = c.servers()?;
        let networks = c.networks()?;
        let find = |n: &str| {
            servers
                .iter()
                .find(|s| s.name == n)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no server {n:?}"))
        };
        let (from, to_s) = (find(&from_name)?, find(&to)?);
        anyhow::ensure!(from.name != to_s.name, "{process} already runs on {to}");
        let net = |n: &str| {
            networks
                .iter()
                .find(|x| x.name == n)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no network {n:?}"))
        };
        let (n1, n2) = (net(&from.network)?, net(&to_s.network)?);
        // Hold, switch and any switch back go to one controller: the one
        // in front of both networks.
        let shown = |c: Option<std::net::SocketAddr>| c.map(|c| c.to_string()).unwrap_or_default();
        let (c1, c2) = (shown(n1.controller), shown(n2.controller));
        anyhow::ensure!(
            c1 == c2 && !c1.is_empty(),
            "networks {} and {} have different connection controllers ({c1:?}, {c2:?}); a migration needs one controller in front of both",
            n1.name,
            n2.name
        );
        if c.busy.contains(&process) {
            let step = c
                .migrations
                .iter()
                .rev()
                .find(|v| v.process == process)
                .map(|v| format!("{:?}", v.step).to_lowercase())
                .unwrap_or_default();
            anyhow::bail!(
                "a migration of {process} is already running (step {step}); wait for it to end"
            );
        }
        c.next_id += 100;
        let id = c.next_id;
        let view_id = c.migrations.last().map_or(1, |v| v.id + 1);
        let plan = Plan {
            process: process.clone(),
            service,
            from: from.clone(),
            to: to_s.clone(),
            n1: n1.clone(),
            n2: n2.clone(),
            controller: c1.clone(),
            first_id: id,
            timeout_ms: c.cfg.timeout_ms,
        };
        c.migrations.push(MigrationView {
            id: view_id,
            process: process.clone(),
            from: from.name.clone(),
            to: to_s.name.clone(),
            step: Step::Starting,
            failure: None,
            log: vec![],
            elapsed_ms: 0,
            switch_us: None,
            released: None,
            pause_us: None,
        });
        if let Err(e) = c.exec(
            "INSERT INTO migrations (id, plan, view) VALUES (?1, ?2, '{}')",
            &[
                (view_id as i64).into(),
                serde_json::to_string(&plan)?.into(),
            ],
        ) {
            c.migrations.pop();
            anyhow::bail!("storing the migration: {e}");
        }
        c.save(view_id);
        // Marked busy last, with nothing left to fail under the lock (the
        // mark's guard takes the lock when dropped).
        c.busy.insert(process.clone());
        (plan.migration(), id, c1, c.cfg.timeout_ms, view_id)
    };
    let busy = Busy(coord.clone(), process);
    Ok(Prepared {
        m,
        first_id,
        controller,
        timeout,
        t0,
        busy,
        id: view_id,
    })
}

/// Drive a prepared migration to its end (done or rolled back).
pub async fn run(coord: Arc<Mutex<Coordinator>>, p: Prepared) -> anyhow::Result<MigrationView> {
    let Prepared {
        mut m,
        first_id,
        controller,
        timeout,
        t0,
        busy: _busy,
        id: view_id,
    } = p;
    let auth = coord.lock().unwrap().auth.clone();
    // Hold the service's packets before the process pauses.
    let hold = Frame {
        v: VERSION,
        id: first_id,
        deadline_ms: now_ms() + timeout,
        body: Body::Hold { service: m.service },
    };
    let pending: Vec<Output> = match request(&auth, &controller, &hold).await {
        Ok(Body::Ok) => {
            record(
                &coord,
                view_id,
                t0,
                &m,
                Some("controller holds the service's packets".into()),
            );
            m.begin(now_ms())
        }
        other => {
            // Nothing paused yet; if the hold took effect after all (a
            // late answer), the switch back to network 1 releases it.
            let why = match other {
                Ok(Body::Error { reason }) | Err(reason) => reason,
                Ok(b) => format!("unexpected answer {b:?}"),
            };
            let back = Frame {
                v: VERSION,
                id: first_id + 99,
                deadline_ms: now_ms() + timeout,
                body: Body::SwitchRequest {
                    service: m.service,
                    to: m.network1.clone(),
                },
            };
            let _ = request(&auth, &controller, &back).await;
            m.step = Step::RolledBack;
            m.failure = Some(format!(
                "the connection controller would not hold the traffic: {why}"
            ));
            vec![]
        }
    };
    drive(&coord, &mut m, &controller, view_id, t0, pending).await;
    finish(&coord, &m, view_id, t0)
}

/// What a migration needs to be re-created after a restart.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct Plan {
    process: String,
    service: IpAddr,
    from: control::migration::ServerInfo,
    to: control::migration::ServerInfo,
    n1: control::migration::NetworkInfo,
    n2: control::migration::NetworkInfo,
    controller: String,
    first_id: u64,
    timeout_ms: u64,
}

impl Plan {
    fn migration(&self) -> Migration {
        Migration::new(
            &self.process,
            self.service,
            self.from.clone(),
            self.to.clone(),
            self.n1.clone(),
            self.n2.clone(),
            self.first_id,
            self.timeout_ms,
        )
    }
}

/// Finish or roll back the migrations a previous run of the coordinator
/// left unfinished (it was stopped or crashed mid-way).
pub async fn recover(coord: Arc<Mutex<Coordinator>>) -> anyhow::Result<usize> {
    let todo: Vec<(u64, Plan, Step)> = {
        let mut c = coord.lock().unwrap();
        let open: Vec<(u64, Step)> = c
            .migrations
            .iter()
            .filter(|v| !matches!(v.step, Step::Done | Step::RolledBack))
            .map(|v| (v.id, v.step))
            .collect();
        let mut todo = Vec::new();
        for (id, step) in open {
            let rows = c.rows(
                "SELECT plan FROM migrations WHERE id = ?1",
                &[(id as i64).into()],
            )?;
            let plan = rows
                .first()
                .map(|r| text(r, 0))
                .transpose()?
                .with_context(|| format!("stored migration {id} has no plan"))?;
            let plan: Plan =
                serde_json::from_str(&plan).with_context(|| format!("stored migration {id}"))?;
            todo.push((id, plan, step));
        }
        for (_, plan, _) in &todo {
            c.busy.insert(plan.process.clone());
        }
        todo
    };
    let n = todo.len();
    let guards: Vec<Busy> = todo
        .iter()
        .map(|(_, p, _)| Busy(coord.clone(), p.process.clone()))
        .collect();
    for (view_id, plan, step) in todo {
        let t0 = Instant::now();
        // Request IDs of this attempt must not collide with the first run's.
        let mut m = Plan {
            first_id: now_ms() << 8,
            ..plan.clone()
        }
        .migration();
        warn!(process = %plan.process, ?step, "finishing a migration the previous coordinator left");
        let out = m.recover(now_ms(), step);
        drive(&coord, &mut m, &plan.controller, view_id, t0, out).await;
        finish(&coord, &m, view_id, t0)?;
    }
    drop(guards);
    Ok(n)
}

/// Update a migration's view (and its stored copy) from the engine.
fn record(
    coord: &Arc<Mutex<Coordinator>>,
    view_id: u64,
    t0: Instant,
    m: &Migration,
    note: Option<String>,
) {
    let mut c = coord.lock().unwrap();
    if m.step == Step::Done {
        // Where the process runs is stored before the step: a crash in
        // between leaves the step at resuming, which a restart re-sends.
        if let Err(e) = c.exec(
            "UPDATE processes SET server = ?2 WHERE name = ?1",
            &[(&m.process).into(), (&m.to.name).into()],
        ) {
            warn!(process = %m.process, "storing where the process runs: {e}");
        }
    }
    if let Some(v) = c.migrations.iter_mut().find(|v| v.id == view_id) {
        v.step = m.step;
        v.failure = m.failure.clone();
        v.elapsed_ms = t0.elapsed().as_millis() as u64;
        if let Some(n) = note {
            v.log.push(n);
        }
    }
    c.save(view_id);
}

/// Send the engine's requests and feed it the answers until it is done.
async fn drive(
    coord: &Arc<Mutex<Coordinator>>,
    m: &mut Migration,
    controller: &str,
    view_id: u64,
    t0: Instant,
    mut pending: Vec<Output>,
) {
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut calls = Vec::new();
        for o in pending {
            match o {
                Output::Progress { note, .. } => {
                    info!(process = %m.process, "{note}");
                    record(coord, view_id, t0, m, Some(note));
                }
                Output::ToAgent { addr, frame } => calls.push((addr.to_string(), frame)),
                Output::ToController { frame } => calls.push((controller.to_string(), frame)),
            }
        }
        let (auth, retry_ms, timeout_ms) = {
            let c = coord.lock().unwrap();
            (c.auth.clone(), c.cfg.rollback_retry_ms, c.cfg.timeout_ms)
        };
        // In order: the source restored before the traffic is switched
        // back to it, the destination's copy dropped last.
        for (addr, frame) in calls {
            let (id, retry) = (frame.id, m.undoing(frame.id).then_some(retry_ms));
            let answer = ask(&auth, &addr, frame, retry, timeout_ms).await;
            let input = match answer {
                Ok(body) => {
                    if let Body::SwitchDone {
                        switch_us,
                        released,
                        pause_us,
                        ..
                    } = body
                    {
                        let mut c = coord.lock().unwrap();
                        if let Some(v) = c.migrations.iter_mut().find(|v| v.id == view_id) {
                            v.switch_us = Some(switch_us);
                            v.released = Some(released);
                            v.pause_us = (released > 0).then_some(pause_us);
                        }
                    }
                    Input::Answer { id, body }
                }
                Err(reason) => Input::Failed { id, reason },
            };
            next.extend(m.handle(now_ms(), input));
        }
        pending = next;
    }
}

/// One request. A step of a rollback (`retry_ms` given) gets its
/// deadline when it is sent, not when the rollback began (the steps
/// before it may have taken their time), and one that cannot reach its
/// peer is asked again every 250 ms for `retry_ms`, so that it reaches
/// an agent restarted meanwhile. An answer, even an error, is final.
async fn ask(
    auth: &Auth,
    addr: &str,
    mut frame: Frame,
    retry_ms: Option<u64>,
    timeout_ms: u64,
) -> Result<Body, String> {
    let until = Instant::now() + std::time::Duration::from_millis(retry_ms.unwrap_or(0));
    let mut tries = 1u32;
    loop {
        if retry_ms.is_some() {
            frame.deadline_ms = now_ms() + timeout_ms;
        }
        match request(auth, addr, &frame).await {
            Err(e) if Instant::now() < until => {
                if tries == 1 {
                    warn!(addr, "{e}; asking again for {} ms", retry_ms.unwrap_or(0));
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                tries += 1;
            }
            Err(e) if tries > 1 => return Err(format!("{e} (asked {tries} times)")),
            r => {
                if tries > 1 && r.is_ok() {
                    info!(addr, tries, "answered after a retry");
                }
                return r;
            }
        }
    }
}

/// Record the end; a completed move updates where the process runs.
fn finish(
    coord: &Arc<Mutex<Coordinator>>,
    m: &Migration,
    view_id: u64,
    t0: Instant,
) -> anyhow::Result<MigrationView> {
    record(coord, view_id, t0, m, None);
    if m.step != Step::Done {
        warn!(process = %m.process, failure = ?m.failure, "migration rolled back");
    }
    let c = coord.lock().unwrap();
    Ok(c.migrations
        .iter()
        .find(|v| v.id == view_id)
        .cloned()
        .expect("recorded"))
}
