//! The daemon: owns one [`Role`] per configured role, serves the API on a
//! Unix socket (0600) and the metrics endpoint, reloads on SIGHUP. Killing
//! it leaves the XDP programs attached through their pinned links.
//!
//! The daemon knows roles only through the trait: it starts them in the
//! config's order, sends each request to the role it names, asks every role
//! for its status, counters and metrics, and reloads by checking every
//! role against the new file before applying it to any.

use std::{
    future::Future,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use control::{
    api::{CounterView, MessageView, Request, Response, StatusView},
    config::{Config, XdpMode},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tracing::{error, info, warn};

use crate::{
    gateway::GatewayRole, lb::LbRole, migration::MigrationRole, presence::PresenceRole,
    router::RouterRole, sip_monitor::SipMonitorRole,
};

/// A request a role answers on the event loop (it waits on the network).
pub type Pending = Pin<Box<dyn Future<Output = Response> + Send>>;

/// One role of the daemon (lb, gateway, router, sip-monitor, presence,
/// migration), with all its instances.
pub trait Role: Send {
    /// Start the role if the config names it (`None` when it does not).
    fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> impl Future<Output = anyhow::Result<Option<Self>>> + Send
    where
        Self: Sized;
    /// What can be checked of the config before anything is attached
    /// (interfaces exist); the daemon refuses to start otherwise.
    fn preflight(_config: &Config) -> Result<(), String>
    where
        Self: Sized,
    {
        Ok(())
    }
    /// The role's one name, as `Request::role` gives it.
    fn name(&self) -> &'static str;
    /// Its part of `edgeplane status`.
    fn status(&self, view: &mut StatusView);
    /// Its counters for `edgeplane stats` and `/metrics`.
    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()>;
    /// Metric families of its own beyond the counters (gauges), in the
    /// Prometheus text format.
    fn metrics(&self, _node: &str, _out: &mut String) -> anyhow::Result<()> {
        Ok(())
    }
    /// Whether the new config can be applied to this role; changes nothing.
    fn check(&self, new: &Config) -> Result<(), String>;
    /// Apply the new config (every role's `check` passed); what changed.
    fn apply(&mut self, new: &Config) -> Result<String, String>;
    /// One of its requests.
    fn handle(&mut self, req: Request) -> Result<Response, String>;
    /// A request answered on the event loop instead of under the state
    /// lock; `None` for the ones `handle` answers.
    fn pending(&mut self, _req: &Request) -> Option<Pending> {
        None
    }
    /// A gateway set from etcd (`[cluster]`): the LB tables it made, to
    /// publish; a role without tables has none.
    fn gateway_set(
        &mut self,
        _set: &control::cluster::record::GatewaySet,
        _node: &str,
        _now_ms: u64,
    ) -> Result<Vec<control::cluster::record::LbTable>, String> {
        Ok(Vec::new())
    }
    /// Once a second.
    fn tick(&mut self) {}
    /// Leave cleanly when the daemon stops (e.g. VRRP priority 0).
    fn shutdown(&mut self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        None
    }
}

pub struct State {
    pub config_path: PathBuf,
    pub config: Config,
    pub replace_pins: bool,
    pub roles: Vec<Box<dyn Role>>,
    /// The link to etcd (`[cluster]`), as the agent last saw it.
    pub cluster: Option<control::api::ClusterView>,
}

pub type Shared = Arc<Mutex<State>>;

pub fn load_options(cfg: &Config, replace_pins: bool) -> dataplane_user::LoadOptions {
    dataplane_user::LoadOptions {
        pin_root: cfg.node.pin_root.clone(),
        mode: match cfg.node.xdp_mode {
            XdpMode::Native => dataplane_user::XdpMode::Driver,
            XdpMode::Skb => dataplane_user::XdpMode::Skb,
        },
        replace_pins,
        stage_order: stage_order(&cfg.node.stage_order),
    }
}

/// `node.stage_order` as the entry chain's order: the roles named, then
/// the others in the default order.
fn stage_order(named: &[control::config::StageRole]) -> dataplane_common::entry::Order {
    use control::config::StageRole;
    use dataplane_common::entry::{role, DEFAULT_ORDER};
    let index = |r: &StageRole| match r {
        StageRole::SipMonitor => role::SIP_MONITOR,
        StageRole::Router => role::ROUTER,
        StageRole::Migration => role::STEER,
        StageRole::Lb => role::LB,
        StageRole::Gateway => role::GATEWAY,
    };
    let mut order: Vec<u32> = named.iter().map(index).collect();
    let rest: Vec<u32> = DEFAULT_ORDER
        .iter()
        .copied()
        .filter(|r| !order.contains(r))
        .collect();
    order.extend(rest);
    order.try_into().unwrap_or(DEFAULT_ORDER)
}

/// Load and check the config. Fails before attaching anything if the
/// config names an interface that does not exist.
pub fn start(config_path: &Path, replace_pins: bool) -> anyhow::Result<State> {
    let config =
        Config::load(config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    // An unprivileged daemon lacking a capability says which, before
    // anything is attached.
    crate::caps::check(&crate::caps::needs(&config), crate::caps::effective())
        .map_err(|e| anyhow::anyhow!(e))?;
    for check in [
        LbRole::preflight,
        GatewayRole::preflight,
        RouterRole::preflight,
        PresenceRole::preflight,
        SipMonitorRole::preflight,
        MigrationRole::preflight,
    ] {
        check(&config).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(State {
        config_path: config_path.into(),
        config,
        replace_pins,
        roles: Vec::new(),
        cluster: None,
    })
}

/// Start every role the config names, in a fixed order (the fast paths
/// first, so forwarding resumes before the protocols start talking).
async fn start_roles(state: &Shared) -> anyhow::Result<()> {
    let (config, opts) = {
        let s = state.lock().unwrap();
        (s.config.clone(), load_options(&s.config, s.replace_pins))
    };
    let mut roles: Vec<Box<dyn Role>> = Vec::new();
    start_role::<LbRole>(&mut roles, &config, &opts).await?;
    start_role::<GatewayRole>(&mut roles, &config, &opts).await?;
    start_role::<RouterRole>(&mut roles, &config, &opts).await?;
    start_role::<PresenceRole>(&mut roles, &config, &opts).await?;
    start_role::<SipMonitorRole>(&mut roles, &config, &opts).await?;
    start_role::<MigrationRole>(&mut roles, &config, &opts).await?;
    state.lock().unwrap().roles = roles;
    Ok(())
}

async fn start_role<R: Role + 'static>(
    roles: &mut Vec<Box<dyn Role>>,
    config: &Config,
    opts: &dataplane_user::LoadOptions,
) -> anyhow::Result<()> {
    if let Some(r) = R::start(config, opts).await? {
        roles.push(Box::new(r));
    }
    Ok(())
}

pub async fn serve(state: Shared) -> anyhow::Result<()> {
    let (socket, metrics) = {
        let s = state.lock().unwrap();
        (s.config.node.socket.clone(), s.config.node.metrics)
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if socket.exists() {
        if UnixStream::connect(&socket).await.is_ok() {
            anyhow::bail!("another daemon is serving {}", socket.display());
        }
        std::fs::remove_file(&socket).ok();
    }
    start_roles(&state).await?;
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    info!(socket = %socket.display(), "api listening");
    if let Some(addr) = metrics {
        let st = state.clone();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("metrics on {addr}"))?;
        info!(%addr, "metrics listening");
        tokio::spawn(crate::metrics::serve(listener, st));
    }
    tokio::spawn(ticker(state.clone()));
    if let Some(every) = crate::sd_notify::watchdog_every() {
        tokio::spawn(watchdog(state.clone(), every));
    }
    let plan = {
        let mut s = state.lock().unwrap();
        let roles = s.roles.iter().map(|r| r.name().to_string()).collect();
        let plan = crate::cluster::agent::Plan::new(&s.config, roles)?;
        s.cluster = plan.as_ref().map(|p| p.view());
        plan
    };
    if let Some(plan) = plan {
        tokio::spawn(crate::cluster::agent::run(state.clone(), plan));
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Up: the roles started, the API socket answers (systemd's
    // Type=notify waits for this).
    let roles: Vec<String> = state
        .lock()
        .unwrap()
        .roles
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    crate::sd_notify::notify(&format!(
        "READY=1\nSTATUS=serving {} ({})",
        socket.display(),
        roles.join(", ")
    ));
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let (stream, _) = conn?;
                tokio::spawn(handle_conn(stream, state.clone()));
            }
            _ = hup.recv() => {
                crate::sd_notify::notify("RELOADING=1");
                let st = state.clone();
                let r = tokio::task::spawn_blocking(move || reload(&mut st.lock().unwrap())).await?;
                match r {
                    Ok(msg) => {
                        info!("{msg}");
                        crate::sd_notify::notify("READY=1\nSTATUS=reloaded");
                    }
                    Err(e) => {
                        error!("reload refused: {e}");
                        crate::sd_notify::notify(&format!("READY=1\nSTATUS=reload refused: {e}"));
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    crate::sd_notify::notify("STOPPING=1");
    let leaving: Vec<_> = state
        .lock()
        .unwrap()
        .roles
        .iter_mut()
        .filter_map(|r| r.shutdown())
        .collect();
    for l in leaving {
        l.await;
    }
    crate::cluster::agent::leave(&state).await;
    std::fs::remove_file(&socket).ok();
    info!("daemon stopping; XDP programs stay attached through their pinned links");
    Ok(())
}

/// systemd's watchdog: a ping every `every` while the daemon's state can
/// be taken on the blocking pool (what every request and tick needs); a
/// daemon wedged there misses its pings and systemd restarts it.
async fn watchdog(state: Shared, every: Duration) {
    let mut iv = tokio::time::interval(every);
    loop {
        iv.tick().await;
        let st = state.clone();
        if tokio::task::spawn_blocking(move || drop(st.lock().unwrap()))
            .await
            .is_ok()
        {
            crate::sd_notify::notify("WATCHDOG=1");
        }
    }
}

/// Every role's once-a-second work (the gateway's sweeper among them).
async fn ticker(state: Shared) {
    let mut iv = tokio::time::interval(Duration::from_secs(1));
    loop {
        iv.tick().await;
        let st = state.clone();
        if tokio::task::spawn_blocking(move || {
            st.lock().unwrap().roles.iter_mut().for_each(|r| r.tick())
        })
        .await
        .is_err()
        {
            warn!("a role's tick panicked");
        }
    }
}

async fn handle_conn(stream: UnixStream, state: Shared) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let pending = {
                    let mut s = state.lock().unwrap();
                    s.roles
                        .iter_mut()
                        .find(|r| Some(r.name()) == req.role())
                        .and_then(|r| r.pending(&req))
                };
                match pending {
                    Some(p) => p.await,
                    None => {
                        let st = state.clone();
                        tokio::task::spawn_blocking(move || handle(&mut st.lock().unwrap(), req))
                            .await
                            .unwrap_or_else(|e| Response::err(format!("internal error: {e}")))
                    }
                }
            }
            Err(e) => Response::err(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_default();
        out.push(b'\n');
        if w.write_all(&out).await.is_err() {
            break;
        }
    }
}

pub fn handle(s: &mut State, req: Request) -> Response {
    let r: Result<Response, String> = match (&req, req.role()) {
        (Request::Status, _) => Ok(Response::ok(status(s))),
        (Request::Stats, _) => counters(s).map(Response::ok).map_err(|e| e.to_string()),
        (Request::Reload, _) => reload(s).map(|m| Response::ok(MessageView::new(m))),
        (_, Some(role)) => match s.roles.iter_mut().find(|r| r.name() == role) {
            Some(r) => r.handle(req),
            None => Err(not_configured(role)),
        },
        (_, None) => Err(format!("request {req:?} belongs to no role")),
    };
    r.unwrap_or_else(Response::err)
}

fn not_configured(role: &str) -> String {
    match role {
        "migration" => {
            "no [migration.coordinator] or [migration.agent] is configured on this host".into()
        }
        r => format!("no {r} role is configured"),
    }
}

pub fn status(s: &State) -> StatusView {
    let mut v = StatusView {
        node: s.config.node.name.clone(),
        config: s.config_path.clone(),
        ..Default::default()
    };
    for r in &s.roles {
        r.status(&mut v);
    }
    v.cluster = s.cluster.clone();
    v
}

pub fn counters(s: &State) -> anyhow::Result<Vec<CounterView>> {
    let mut out = Vec::new();
    for r in &s.roles {
        r.counters(&mut out)
            .with_context(|| format!("{} counters", r.name()))?;
    }
    // Each interface's entry program, once however many stages it runs.
    for iface in stage_interfaces(&s.config) {
        if let Some(stats) = dataplane_user::entry_stats(&s.config.node.pin_root, &iface)? {
            for (name, c) in dataplane_common::entry::stat::NAMES.iter().zip(stats) {
                out.push(CounterView::xdp(
                    "node", "entry", &iface, name, c.packets, c.bytes,
                ));
            }
        }
    }
    Ok(out)
}

/// The interfaces whose stages are pinned under their own name: each
/// role's first interface (a role's others run the first one's chain).
fn stage_interfaces(c: &Config) -> Vec<String> {
    let mut v: Vec<String> = c.lb.iter().map(|l| l.interface.clone()).collect();
    v.extend(
        c.gateway
            .iter()
            .filter_map(|g| g.interfaces.first().cloned()),
    );
    v.extend(
        c.router
            .iter()
            .filter(|r| r.load_sharing.is_some())
            .map(|r| r.interface.clone()),
    );
    v.extend(
        c.sip_monitor
            .iter()
            .filter_map(|m| m.interfaces.first().cloned()),
    );
    v.extend(
        c.migration
            .iter()
            .filter_map(|m| m.controller.as_ref().map(|c| c.interface.clone())),
    );
    v.sort();
    v.dedup();
    v
}

/// Re-read the config file; validate all of it and check it against every
/// role; only then apply it. A file that fails either changes nothing.
pub fn reload(s: &mut State) -> Result<String, String> {
    let new =
        Config::load(&s.config_path).map_err(|e| format!("{}: {e}", s.config_path.display()))?;
    if new.node != s.config.node {
        return Err("[node] changed; restart the daemon to apply it (nothing was changed)".into());
    }
    if new.cluster != s.config.cluster {
        return Err(
            "[cluster] changed; restart the daemon to apply it (nothing was changed)".into(),
        );
    }
    // A role the old file did not run cannot start on a reload (nor stop):
    // the daemon would have to attach or detach programs.
    let running = |c: &Config| {
        let mut v = Vec::new();
        if !c.lb.is_empty() {
            v.push("lb");
        }
        if !c.gateway.is_empty() {
            v.push("gateway");
        }
        if !c.router.is_empty() {
            v.push("router");
        }
        if c.presence.is_some() {
            v.push("presence");
        }
        if c.sip_monitor.is_some() {
            v.push("sip-monitor");
        }
        if c.migration.is_some() {
            v.push("migration");
        }
        v
    };
    if running(&new) != running(&s.config) {
        return Err(format!(
            "the set of roles changed ({} → {}); restart the daemon to apply it (nothing was changed)",
            running(&s.config).join(","),
            running(&new).join(",")
        ));
    }
    for r in &s.roles {
        r.check(&new)?;
    }
    let mut changed = Vec::new();
    for r in s.roles.iter_mut() {
        let m = r.apply(&new)?;
        if !m.is_empty() {
            changed.push(m);
        }
    }
    s.config = new;
    Ok(if changed.is_empty() {
        "reloaded; nothing changed".into()
    } else {
        format!("reloaded; {}", changed.join("; "))
    })
}

/// Detach and unpin every interface the config names.
pub fn detach(config_path: &Path) -> anyhow::Result<Vec<String>> {
    let config =
        Config::load(config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let mut done = Vec::new();
    let ifaces = config
        .lb
        .iter()
        .map(|l| l.interface.clone())
        .chain(config.gateway.iter().flat_map(|g| g.interfaces.clone()));
    for iface in ifaces {
        let dir = config.node.pin_root.join(&iface);
        if dir.exists() {
            for entry in std::fs::read_dir(&dir)? {
                std::fs::remove_file(entry?.path())?;
            }
            std::fs::remove_dir(&dir)?;
            done.push(iface);
        } else {
            warn!(interface = %iface, "no pins");
        }
    }
    Ok(done)
}
