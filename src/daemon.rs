//! The daemon: owns every role instance, serves the API on a Unix socket
//! (0600) and the metrics endpoint, reloads on SIGHUP. Killing it leaves
//! the XDP programs attached through their pinned links.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use control::{
    api::{CounterView, LookupKey, Request, Response},
    config::{Config, XdpMode},
};
use dataplane_common::lb::stat;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tracing::{error, info, warn};

use crate::{lb::LbInstance, packets};

pub struct State {
    pub config_path: PathBuf,
    pub config: Config,
    pub lbs: Vec<LbInstance>,
    pub gws: Vec<crate::gw::GwInstance>,
    /// Started by `serve` (they need the runtime).
    pub routers: Vec<crate::vrrp::RouterHandle>,
    pub monitor: Option<Arc<Mutex<crate::sipmon::MonitorStatus>>>,
    pub presence: Option<Arc<Mutex<control::presence::Store>>>,
    pub coordinator: Option<Arc<Mutex<crate::migration::Coordinator>>>,
    pub controller: Option<crate::migration::ControllerHandle>,
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
    }
}

/// Start every instance the config names. Fails before attaching anything
/// if the config names an interface that does not exist.
pub fn start(config_path: &Path, replace_pins: bool) -> anyhow::Result<State> {
    let config = Config::load(config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    for (i, lb) in config.lb.iter().enumerate() {
        for name in std::iter::once(&lb.interface).chain(lb.gateways.iter().filter_map(|g| g.via.as_ref())) {
            dataplane_user::ifindex(name).map_err(|e| anyhow::anyhow!("lb[{i}]: {e}"))?;
        }
    }
    for (i, gw) in config.gateway.iter().enumerate() {
        let vias = gw.groups.iter().flat_map(|g| g.servers.iter().filter_map(|s| s.via.as_ref()));
        for name in gw.interfaces.iter().chain(vias) {
            dataplane_user::ifindex(name).map_err(|e| anyhow::anyhow!("gateway[{i}]: {e}"))?;
        }
    }
    let opts = load_options(&config, replace_pins);
    let mut lbs = Vec::new();
    for lb in &config.lb {
        lbs.push(LbInstance::start(lb.clone(), &opts).with_context(|| format!("lb on {}", lb.interface))?);
    }
    let mut gws = Vec::new();
    for gw in &config.gateway {
        gws.push(crate::gw::GwInstance::start(gw.clone(), &opts).with_context(|| format!("gateway on {}", gw.interfaces.join(",")))?);
    }
    for (i, r) in config.router.iter().enumerate() {
        crate::vrrp::primary_address(&r.interface).map_err(|e| anyhow::anyhow!("router[{i}]: {e}"))?;
    }
    Ok(State { config_path: config_path.into(), config, lbs, gws, routers: Vec::new(), monitor: None, presence: None, coordinator: None, controller: None })
}

pub async fn serve(state: Shared) -> anyhow::Result<()> {
    let (socket, metrics) = {
        let s = state.lock().unwrap();
        (s.config.node.socket.clone(), s.config.node.metrics.clone())
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
    let listener = UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    info!(socket = %socket.display(), "api listening");
    if let Some(addr) = metrics {
        let st = state.clone();
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("metrics on {addr}"))?;
        info!(%addr, "metrics listening");
        tokio::spawn(crate::metrics::serve(listener, st));
    }
    tokio::spawn(crate::gw::sweeper(state.clone()));
    {
        let mut s = state.lock().unwrap();
        let opts = load_options(&s.config, false);
        for r in s.config.router.clone() {
            let h = crate::vrrp::Instance::start(r.clone(), &opts).with_context(|| format!("router vrid {} on {}", r.vrid, r.interface))?;
            s.routers.push(h);
        }
    }
    {
        let (mon, pres, opts) = {
            let s = state.lock().unwrap();
            (s.config.sip_monitor.clone(), s.config.presence.clone(), load_options(&s.config, false))
        };
        if let Some(p) = pres {
            let server = crate::presence_server::Server::start(p).await?;
            state.lock().unwrap().presence = Some(server.store.clone());
            tokio::spawn(server.run());
        }
        if let Some(m) = mon {
            let mon = crate::sipmon::Monitor::start(m, &opts).await?;
            state.lock().unwrap().monitor = Some(mon.status.clone());
            tokio::spawn(mon.run());
        }
        let mig = state.lock().unwrap().config.migration.clone().unwrap_or_default();
        if let Some(a) = mig.agent {
            crate::migration::run_agent(a).await?;
        }
        if let Some(c) = mig.controller {
            let h = crate::migration::run_controller(c, &opts).await?;
            state.lock().unwrap().controller = Some(h);
        }
        if let Some(c) = mig.coordinator {
            let listen = c.listen;
            let c = Arc::new(Mutex::new(crate::migration::Coordinator::open(c)?));
            if let Some(l) = listen {
                crate::migration::run_coordinator_listener(c.clone(), l).await?;
            }
            // Migrations a previous run left unfinished: finish or roll back.
            let rc = c.clone();
            tokio::spawn(async move {
                match crate::migration::recover(rc).await {
                    Ok(0) => {}
                    Ok(n) => info!("{n} unfinished migration(s) from before the restart handled"),
                    Err(e) => error!("recovering unfinished migrations: {e:#}"),
                }
            });
            state.lock().unwrap().coordinator = Some(c);
        }
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let (stream, _) = conn?;
                tokio::spawn(handle_conn(stream, state.clone()));
            }
            _ = hup.recv() => {
                let st = state.clone();
                let r = tokio::task::spawn_blocking(move || reload(&mut st.lock().unwrap())).await?;
                match r {
                    Ok(msg) => info!("{msg}"),
                    Err(e) => error!("reload refused: {e}"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let routers = std::mem::take(&mut state.lock().unwrap().routers);
    for r in &routers {
        r.shutdown().await;
    }
    std::fs::remove_file(&socket).ok();
    info!("daemon stopping; XDP programs stay attached through their pinned links");
    Ok(())
}

async fn handle_conn(stream: UnixStream, state: Shared) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(Request::MigrateStart { process, to, wait }) => {
                let (coord, agent) = {
                    let s = state.lock().unwrap();
                    (s.coordinator.clone(), s.config.migration.as_ref().and_then(|m| m.agent.clone()))
                };
                let run = match (coord, agent) {
                    (Some(c), _) if !wait => Some(crate::migration::prepare(&c, &process, &to).map(|p| {
                        let started = c.lock().unwrap().migrations.iter().find(|v| v.id == p.id).cloned().expect("recorded");
                        let c = c.clone();
                        tokio::spawn(async move {
                            if let Err(e) = crate::migration::run(c, p).await {
                                error!("migration: {e:#}");
                            }
                        });
                        started
                    })),
                    (Some(c), _) => Some(crate::migration::migrate(c, process, to).await),
                    // Server 1's agent asks the coordinator (claim 1).
                    (None, Some(a)) => Some(crate::migration::forward(&a, process, to).await),
                    (None, None) => None,
                };
                match run {
                    None => Response::err("no [migration.coordinator] or [migration.agent] is configured on this host"),
                    Some(r) => match r {
                        Ok(v) if matches!(v.step, control::migration::Step::Done | control::migration::Step::Starting) => Response::ok(v),
                        Ok(v) => Response::err(format!(
                            "migration of {} rolled back: {}",
                            v.process,
                            v.failure.clone().unwrap_or_default()
                        )),
                        Err(e) => Response::err(format!("{e:#}")),
                    },
                }
            }
            Ok(req) => {
                let st = state.clone();
                tokio::task::spawn_blocking(move || handle(&mut st.lock().unwrap(), req))
                    .await
                    .unwrap_or_else(|e| Response::err(format!("internal error: {e}")))
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

fn pick<'a>(s: &'a mut State, interface: Option<&str>) -> Result<&'a mut LbInstance, String> {
    match interface {
        Some(i) => s.lbs.iter_mut().find(|l| l.cfg.interface == i).ok_or_else(|| format!("no lb on interface {i}")),
        None => match s.lbs.len() {
            0 => Err("no lb role is configured".into()),
            1 => Ok(&mut s.lbs[0]),
            _ => Err("several lb instances run here; name one with --interface".into()),
        },
    }
}

fn gw_pick(s: &mut State) -> Result<&mut crate::gw::GwInstance, String> {
    match s.gws.len() {
        0 => Err("no gateway role is configured".into()),
        _ => Ok(&mut s.gws[0]),
    }
}

pub fn handle(s: &mut State, req: Request) -> Response {
    let r: Result<Response, String> = (|| match req {
        Request::Status => Ok(Response::ok(serde_json::json!({
            "node": s.config.node.name,
            "config": s.config_path,
            "lb": s.lbs.iter().map(|l| serde_json::json!({
                "interface": l.cfg.interface,
                "gateways": l.cfg.gateways.len(),
                "took_over_pins": l.dp.took_over,
            })).collect::<Vec<_>>(),
            "gateway": s.gws.iter().map(|g| serde_json::json!({
                "interfaces": g.cfg.interfaces,
                "address": g.cfg.address,
                "groups": g.cfg.groups.len(),
                "accounting": g.accounting_path(),
                "took_over_pins": g.dp.took_over,
            })).collect::<Vec<_>>(),
            "migration": s.config.migration.as_ref().map(|m| serde_json::json!({
                "agent": m.agent.as_ref().map(|a| serde_json::json!({
                    "listen": a.listen,
                    "coordinator": a.coordinator,
                    "processes": a.processes.iter().map(|p| &p.name).collect::<Vec<_>>(),
                })),
                "controller": s.controller.as_ref().map(|c| c.status()),
                "coordinator": s.coordinator.as_ref().map(|c| {
                    let c = c.lock().unwrap();
                    serde_json::json!({
                        "listen": c.cfg.listen,
                        "database": c.cfg.database,
                        "migrations": c.migrations.len(),
                        "running": c.migrations.iter().filter(|v| !matches!(v.step, control::migration::Step::Done | control::migration::Step::RolledBack)).map(|v| v.id).collect::<Vec<_>>(),
                    })
                }),
            })),
        }))),
        Request::GwGroups => Ok(Response::ok(gw_pick(s)?.groups())),
        Request::GwSessions => Ok(Response::ok(gw_pick(s)?.sessions().map_err(|e| e.to_string())?)),
        Request::GwLookup { flow } => {
            let pkt = packets::lookup_packet(&LookupKey::Flow(flow));
            Ok(Response::ok(gw_pick(s)?.lookup(&pkt).map_err(|e| e.to_string())?))
        }
        Request::GwServerAdd { group, server } => {
            let g = gw_pick(s)?;
            g.add_server(&group, server).map_err(|e| e.to_string())?;
            Ok(Response::ok(g.groups()))
        }
        Request::GwServerRemove { group, name } => {
            let g = gw_pick(s)?;
            g.remove_server(&group, &name).map_err(|e| e.to_string())?;
            Ok(Response::ok(g.groups()))
        }
        Request::GwAccounting => Ok(Response::ok(serde_json::json!({ "file": gw_pick(s)?.accounting_path() }))),
        Request::Stats => Ok(Response::ok(counters(s).map_err(|e| e.to_string())?)),
        Request::LbGateways { interface } => Ok(Response::ok(pick(s, interface.as_deref())?.gateways())),
        Request::LbGatewayAdd { interface, gateway } => {
            let lb = pick(s, interface.as_deref())?;
            lb.add_gateway(gateway).map_err(|e| e.to_string())?;
            Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
        }
        Request::LbGatewayRemove { interface, name } => {
            let lb = pick(s, interface.as_deref())?;
            lb.remove_gateway(&name).map_err(|e| e.to_string())?;
            Ok(Response::ok(lb.digest().map_err(|e| e.to_string())?))
        }
        Request::LbDigest => {
            let v: Result<Vec<_>, _> = s.lbs.iter().map(|l| l.digest()).collect();
            Ok(Response::ok(v.map_err(|e| e.to_string())?))
        }
        Request::LbLookup { interface, key } => {
            if let LookupKey::Flow(f) = &key {
                if f.dport == packets::GTPU_PORT && f.proto == "udp" {
                    return Err("a UDP flow to port 2152 is GTP-U; look it up with --teid".into());
                }
            }
            let pkt = packets::lookup_packet(&key);
            let lb = pick(s, interface.as_deref())?;
            Ok(Response::ok(lb.lookup(&pkt).map_err(|e| e.to_string())?))
        }
        Request::PresenceShow { user } => {
            let store = s.presence.as_ref().ok_or("no presence role is configured")?;
            Ok(Response::ok(store.lock().unwrap().show(user.as_deref()).map_err(|e| e.to_string())?))
        }
        Request::PresenceHistory { user } => {
            let store = s.presence.as_ref().ok_or("no presence role is configured")?;
            Ok(Response::ok(store.lock().unwrap().history(&user).map_err(|e| e.to_string())?))
        }
        Request::SipMonitorStatus => {
            let m = s.monitor.as_ref().ok_or("no sip_monitor role is configured")?;
            Ok(Response::ok(m.lock().unwrap().clone()))
        }
        Request::VrrpRebalance => {
            if s.routers.is_empty() {
                return Err("no router role is configured".into());
            }
            let sent = s.routers.iter().filter(|r| r.rebalance()).count();
            Ok(Response::ok(serde_json::json!({ "message": format!("rebalance asked of {sent} router instance(s); the master acts on it") })))
        }
        Request::VrrpStatus => {
            Ok(Response::ok(s.routers.iter().map(|r| r.status.lock().unwrap().clone()).collect::<Vec<_>>()))
        }
        Request::MigrateStart { .. } => Err("migrations run on the daemon's event loop".into()),
        Request::MigrateStatus => Ok(Response::ok(coordinator(s)?.migrations.clone())),
        Request::Servers => Ok(Response::ok(coordinator(s)?.servers().map_err(|e| e.to_string())?)),
        Request::Networks => Ok(Response::ok(coordinator(s)?.networks().map_err(|e| e.to_string())?)),
        Request::ServerAdd { server } => coordinator(s)?.add_server(&server).map(|_| Response::ok(serde_json::json!({ "message": format!("server {} added", server.name) }))),
        Request::ServerRemove { name } => coordinator(s)?.remove_server(&name).map(|_| Response::ok(serde_json::json!({ "message": format!("server {name} removed") }))),
        Request::NetworkAdd { network } => coordinator(s)?.add_network(&network).map(|_| Response::ok(serde_json::json!({ "message": format!("network {} added", network.name) }))),
        Request::NetworkRemove { name } => coordinator(s)?.remove_network(&name).map(|_| Response::ok(serde_json::json!({ "message": format!("network {name} removed") }))),
        Request::Reload => reload(s).map(|m| Response::ok(serde_json::json!({ "message": m }))),
    })();
    r.unwrap_or_else(Response::err)
}

fn coordinator(s: &State) -> Result<std::sync::MutexGuard<'_, crate::migration::Coordinator>, String> {
    Ok(s.coordinator.as_ref().ok_or("no [migration.coordinator] is configured on this host")?.lock().unwrap())
}

/// Re-read the config file; validate all of it; apply the differences.
/// A file that fails validation changes nothing.
pub fn reload(s: &mut State) -> Result<String, String> {
    let new = Config::load(&s.config_path).map_err(|e| format!("{}: {e}", s.config_path.display()))?;
    if new.node != s.config.node {
        return Err("[node] changed; restart the daemon to apply it (nothing was changed)".into());
    }
    if new.sip_monitor != s.config.sip_monitor || new.presence != s.config.presence || new.migration != s.config.migration {
        return Err("[sip_monitor], [presence] or [migration] changed; restart the daemon to apply it (nothing was changed)".into());
    }
    if new.router != s.config.router {
        return Err("[[router]] sections changed; restart the daemon to apply them (nothing was changed)".into());
    }
    if new.gateway.len() != s.gws.len() {
        return Err("the number of [[gateway]] sections changed; restart the daemon to apply it (nothing was changed)".into());
    }
    for (gw, cfg) in s.gws.iter().zip(new.gateway.iter()) {
        if gw.cfg.interfaces != cfg.interfaces || gw.cfg.address != cfg.address {
            return Err("gateway interfaces or address changed; restart the daemon to apply it (nothing was changed)".into());
        }
    }
    let old_ifaces: Vec<_> = s.lbs.iter().map(|l| l.cfg.interface.clone()).collect();
    let new_ifaces: Vec<_> = new.lb.iter().map(|l| l.interface.clone()).collect();
    if old_ifaces != new_ifaces {
        return Err("the set of [[lb]] interfaces changed; restart the daemon to apply it (nothing was changed)".into());
    }
    // Resolve everything before applying anything.
    for lb in &new.lb {
        for g in &lb.gateways {
            if let Some(v) = &g.via {
                dataplane_user::ifindex(v).map_err(|e| format!("gateway {}: {e}", g.name))?;
            }
        }
    }
    let mut changed = 0;
    for (inst, cfg) in s.lbs.iter_mut().zip(new.lb.iter()) {
        if inst.apply(cfg.clone()).map_err(|e| e.to_string())? {
            changed += 1;
        }
    }
    for (gw, cfg) in s.gws.iter_mut().zip(new.gateway.iter()) {
        gw.apply(cfg.clone()).map_err(|e| e.to_string())?;
    }
    s.config = new;
    Ok(format!("reloaded; {changed} lb table(s) changed"))
}

pub fn counters(s: &State) -> anyhow::Result<Vec<CounterView>> {
    let mut out = Vec::new();
    for l in &s.lbs {
        let c = l.dp.lb_stats()?;
        for (i, c) in c.iter().enumerate() {
            out.push(CounterView {
                program: "lb".into(),
                interface: l.cfg.interface.clone(),
                name: stat::NAMES[i].into(),
                packets: c.packets,
                bytes: c.bytes,
            });
        }
    }
    if let Some(h) = &s.controller {
        for (name, packets, bytes) in h.counters()? {
            out.push(CounterView { program: "steer".into(), interface: h.interface.clone(), name, packets, bytes });
        }
    }
    for g in &s.gws {
        let c = g.dp.gw_stats()?;
        for (i, c) in c.iter().enumerate() {
            out.push(CounterView {
                program: "gateway".into(),
                interface: g.cfg.interfaces.join(","),
                name: dataplane_common::gw::stat::NAMES[i].into(),
                packets: c.packets,
                bytes: c.bytes,
            });
        }
    }
    Ok(out)
}

/// Detach and unpin every interface the config names.
pub fn detach(config_path: &Path) -> anyhow::Result<Vec<String>> {
    let config = Config::load(config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let mut done = Vec::new();
    let ifaces = config.lb.iter().map(|l| l.interface.clone()).chain(config.gateway.iter().flat_map(|g| g.interfaces.clone()));
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
