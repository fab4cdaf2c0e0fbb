//! `edgeplane`: the daemon (`run`) and the CLI that manages it.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use control::{
    api::{CounterView, DigestView, FlowSpec, GatewayView, LookupKey, LookupView, Request},
    config::{Config, DEFAULT_SOCKET},
    field::MacAddr,
    lb::config::Backend,
};
use edgeplane::{client, daemon, netns};

#[derive(Parser)]
#[command(name = "edgeplane", version, about = "Session-aware XDP data plane for the mobile edge")]
struct Cli {
    /// Daemon API socket.
    #[arg(long, global = true, env = "EDGEPLANE_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon with a config file.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Enter this network namespace (/run/netns/NAME) first.
        #[arg(long)]
        netns: Option<String>,
        /// Discard pins of another layout instead of refusing them.
        #[arg(long)]
        replace_pins: bool,
    },
    /// Daemon and role summary.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Per-program counters (verdicts and reasons).
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config file; a file that fails validation changes nothing.
    Reload,
    /// Validate a config file without applying it.
    Check { config: PathBuf },
    /// Detach the XDP programs a config names and remove their pins (stop the daemon first).
    Detach {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        netns: Option<String>,
    },
    /// Attach the floor (pass) program to an interface, pinned: native
    /// XDP_REDIRECT into a veth needs a program on the receiving peer.
    XdpPass {
        #[arg(long)]
        interface: String,
        #[arg(long)]
        netns: Option<String>,
        #[arg(long, default_value = "/sys/fs/bpf/edgeplane")]
        pin_root: PathBuf,
    },
    /// The session-affine load balancer.
    Lb {
        #[command(subcommand)]
        cmd: LbCmd,
    },
    /// The packet gateway (unique source port per user session).
    Gw {
        #[command(subcommand)]
        cmd: GwRoleCmd,
    },
    /// The presence server's store.
    Presence {
        #[command(subcommand)]
        cmd: PresenceCmd,
    },
    /// SIP tools.
    Sip {
        #[command(subcommand)]
        cmd: SipCmd,
    },
    /// Whether CRIU can checkpoint processes on this machine.
    CriuCheck,
    /// Move a process to another server (`migrate PROCESS --to SERVER`),
    /// or show the migrations so far (`migrate status`).
    Migrate {
        /// The process to move, or `status`.
        process: String,
        #[arg(long)]
        to: Option<String>,
        /// Wait for the end, printing each step as it happens (without it,
        /// the command returns once the migration has started).
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// The servers the migration coordinator knows (list, add, remove).
    Servers {
        #[command(subcommand)]
        cmd: Option<ServersCmd>,
        #[arg(long)]
        json: bool,
    },
    /// The networks the migration coordinator knows (list, add, remove).
    Networks {
        #[command(subcommand)]
        cmd: Option<NetworksCmd>,
        #[arg(long)]
        json: bool,
    },
    /// VRRPv3 virtual routers.
    Vrrp {
        #[command(subcommand)]
        cmd: VrrpCmd,
    },
}

#[derive(Subcommand)]
enum LbCmd {
    /// Gateways of an lb instance.
    Gateways {
        #[command(subcommand)]
        cmd: GwCmd,
    },
    /// Maglev table digest of every lb instance (equal digests = equal tables).
    Digest {
        #[arg(long)]
        json: bool,
    },
    /// Which gateway a session reaches, by running the attached program.
    Lookup {
        #[arg(long, conflicts_with = "flow", required_unless_present = "flow")]
        teid: Option<u32>,
        /// SRC:PORT-DST:PORT/PROTO
        #[arg(long)]
        flow: Option<FlowSpec>,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GwCmd {
    List {
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: std::net::Ipv4Addr,
        #[arg(long)]
        mac: MacAddr,
        /// Egress interface (default: the ingress interface, XDP_TX).
        #[arg(long)]
        via: Option<String>,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
        #[arg(long)]
        interface: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GwRoleCmd {
    /// Server groups behind representative addresses.
    Groups {
        #[arg(long)]
        json: bool,
    },
    /// Add or remove a group's servers at runtime.
    Servers {
        #[command(subcommand)]
        cmd: GwServerCmd,
    },
    /// Live user sessions with their ports and counters.
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// Which server a terminal flow reaches (dry run of the attached program).
    Lookup {
        /// TERMINAL:PORT-REPRESENTATIVE:PORT/PROTO
        #[arg(long)]
        flow: FlowSpec,
        #[arg(long)]
        json: bool,
    },
    /// Print the accounting records (JSON lines); --follow keeps reading.
    Accounting {
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Subcommand)]
enum GwServerCmd {
    Add {
        #[arg(long)]
        group: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: std::net::Ipv4Addr,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[arg(long)]
        via: Option<String>,
        /// Next-hop MAC (default: resolved by ARP).
        #[arg(long)]
        mac: Option<MacAddr>,
        #[arg(long)]
        next_hop: Option<std::net::Ipv4Addr>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        #[arg(long)]
        group: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PresenceCmd {
    /// Stored statuses (of one user, or all).
    Show {
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A user's status changes, published and reconciled.
    History {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SipCmd {
    /// Print each file's message as parsed, or why it is not valid SIP;
    /// exit 1 if any file is not.
    Parse {
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ServersCmd {
    /// Add a server to the store (kept across restarts; entries in the
    /// config are re-applied at start).
    Add {
        name: String,
        #[arg(long)]
        address: std::net::Ipv4Addr,
        #[arg(long)]
        network: String,
        /// Its agent's endpoint, ADDR:PORT.
        #[arg(long)]
        agent: String,
    },
    /// Remove a server no process runs on.
    Remove { name: String },
}

#[derive(Subcommand)]
enum NetworksCmd {
    Add {
        name: String,
        /// The number the steering map uses.
        #[arg(long)]
        id: u32,
        /// Its connection controller, ADDR:PORT (default: the coordinator's).
        #[arg(long)]
        controller: Option<String>,
        /// The controller's interface toward it (with --next-hop-mac).
        #[arg(long)]
        via: Option<String>,
        #[arg(long)]
        next_hop_mac: Option<String>,
    },
    /// Remove a network no server is on.
    Remove { name: String },
}

#[derive(Subcommand)]
enum VrrpCmd {
    /// State, master, priorities, timers, discard counters, and with load
    /// sharing the condition owners and per-bucket rates.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Ask the load-sharing master to rebalance the conditions now.
    Rebalance,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgeplane::cli::main("edgeplane", || run(cli))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sock = cli.socket.clone();
    let call = |req: Request| client::call(&sock, &req).map_err(anyhow::Error::from);
    match cli.cmd {
        Cmd::Run { config, netns: ns, replace_pins } => {
            if let Some(ns) = &ns {
                netns::enter(ns)?;
            }
            let state = daemon::start(&config, replace_pins)?;
            let state = std::sync::Arc::new(std::sync::Mutex::new(state));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(daemon::serve(state))
        }
        Cmd::Check { config } => {
            let c = Config::load(&config).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            println!("{}: valid ({} lb, {} gateway, {} router instance(s))", config.display(), c.lb.len(), c.gateway.len(), c.router.len());
            Ok(())
        }
        Cmd::Detach { config, netns: ns } => {
            if let Some(ns) = &ns {
                netns::enter(ns)?;
            }
            for i in daemon::detach(&config)? {
                println!("detached {i}");
            }
            Ok(())
        }
        Cmd::XdpPass { interface, netns: ns, pin_root } => {
            if let Some(ns) = &ns {
                netns::enter(ns)?;
            }
            let opts = dataplane_user::LoadOptions { pin_root, ..Default::default() };
            dataplane_user::Dataplane::attach("floor", &interface, &opts)?;
            println!("floor program attached to {interface}");
            Ok(())
        }
        Cmd::Status { json } => {
            let v = call(Request::Status)?;
            if json {
                print_json(&v);
            } else {
                edgeplane::cli::print_status(&serde_json::from_value(v)?);
            }
            Ok(())
        }
        Cmd::Stats { json } => {
            let v = call(Request::Stats)?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<CounterView> = serde_json::from_value(v)?;
                edgeplane::cli::print_stats(&rows);
            }
            Ok(())
        }
        Cmd::Reload => {
            let v = call(Request::Reload)?;
            println!("{}", serde_json::from_value::<control::api::MessageView>(v)?.message);
            Ok(())
        }
        Cmd::Lb { cmd } => match cmd {
            LbCmd::Gateways { cmd } => {
                let (v, json) = match cmd {
                    GwCmd::List { interface, json } => (call(Request::LbGateways { interface })?, json),
                    GwCmd::Add { name, address, mac, via, weight, interface, json } => {
                        let gateway = Backend { name, address, mac, via, weight };
                        if let Err((field, reason)) = gateway.validate() {
                            anyhow::bail!("--{field}: {reason}");
                        }
                        (call(Request::LbGatewayAdd { interface, gateway })?, json)
                    }
                    GwCmd::Remove { name, interface, json } => (call(Request::LbGatewayRemove { interface, name })?, json),
                };
                if json {
                    print_json(&v);
                } else if v.is_array() {
                    let rows: Vec<GatewayView> = serde_json::from_value(v)?;
                    println!("{:<16} {:<15} {:<17} {:<12} {:>6} {:>7} {:>7}", "NAME", "ADDRESS", "MAC", "VIA", "WEIGHT", "SLOTS", "SHARE%");
                    for g in rows {
                        println!("{:<16} {:<15} {:<17} {:<12} {:>6} {:>7} {:>7.2}", g.name, g.address, g.mac, g.via, g.weight, g.slots, g.share);
                    }
                } else {
                    let d: DigestView = serde_json::from_value(v)?;
                    println!("ok; table on {} is now {} (generation {})", d.interface, d.digest, d.generation);
                }
                Ok(())
            }
            LbCmd::Digest { json } => {
                let v = call(Request::LbDigest)?;
                if json {
                    print_json(&v);
                } else {
                    let rows: Vec<DigestView> = serde_json::from_value(v)?;
                    for d in rows {
                        println!("{} {} (M={} seed={} gateways={} generation={})", d.interface, d.digest, d.table_size, d.seed, d.gateways, d.generation);
                    }
                }
                Ok(())
            }
            LbCmd::Lookup { teid, flow, interface, json } => {
                let key = match (teid, flow) {
                    (Some(t), _) => LookupKey::Teid(t),
                    (None, Some(f)) => LookupKey::Flow(f),
                    (None, None) => anyhow::bail!("give --teid N or --flow SRC:PORT-DST:PORT/PROTO"),
                };
                let v = call(Request::LbLookup { interface, key })?;
                if json {
                    print_json(&v);
                } else {
                    let l: LookupView = serde_json::from_value(v)?;
                    match l.gateway {
                        Some(g) => println!("{g} (verdict {}, dst mac {}, via {})", l.verdict, l.dst_mac, l.interface),
                        None => println!("not forwarded (verdict {})", l.verdict),
                    }
                }
                Ok(())
            }
        },
        Cmd::Gw { cmd } => match cmd {
            GwRoleCmd::Groups { json } => {
                let v = call(Request::GwGroups)?;
                if json {
                    print_json(&v);
                } else {
                    edgeplane::cli::print_groups(&serde_json::from_value(v)?);
                }
                Ok(())
            }
            GwRoleCmd::Servers { cmd } => {
                let (v, json) = match cmd {
                    GwServerCmd::Add { group, name, address, port, weight, via, mac, next_hop, json } => {
                        let server = control::gateway::config::ServerCfg { name, address, port, weight, via, next_hop, mac, types: None };
                        (call(Request::GwServerAdd { group, server })?, json)
                    }
                    GwServerCmd::Remove { group, name, json } => (call(Request::GwServerRemove { group, name })?, json),
                };
                if json {
                    print_json(&v);
                } else {
                    println!("ok");
                }
                Ok(())
            }
            GwRoleCmd::Sessions { json } => {
                let v = call(Request::GwSessions)?;
                if json {
                    print_json(&v);
                } else {
                    let rows: Vec<edgeplane::gateway::SessionView> = serde_json::from_value(v)?;
                    println!("{:>5} {:<21} {:<21} {:<4} {:<10} {:<10} {:>7} {:>10} {:>10}", "PORT", "TERMINAL", "REPRESENTATIVE", "PROTO", "GROUP", "SERVER", "IDLE_S", "BYTES_UP", "BYTES_DN");
                    for r in rows {
                        println!("{:>5} {:<21} {:<21} {:<4} {:<10} {:<10} {:>7.1} {:>10} {:>10}", r.port, r.terminal, r.representative, r.proto, r.group, r.server, r.idle_s, r.bytes_up, r.bytes_down);
                    }
                }
                Ok(())
            }
            GwRoleCmd::Lookup { flow, json } => {
                let v = call(Request::GwLookup { flow })?;
                if json {
                    print_json(&v);
                } else {
                    let l: control::api::GwLookupView = serde_json::from_value(v)?;
                    match (&l.server, &l.group) {
                        (Some(server), Some(group)) => {
                            let port = l.session_port.map(|p| format!("existing session, port {p}")).unwrap_or_else(|| "new session".into());
                            println!("{server} in group {group} ({port}; {})", l.translated.as_deref().unwrap_or(""));
                        }
                        _ => println!("not forwarded (verdict {})", l.verdict),
                    }
                }
                Ok(())
            }
            GwRoleCmd::Accounting { follow } => {
                let v: control::api::AccountingView = serde_json::from_value(call(Request::GwAccounting)?)?;
                let Some(path) = v.file else { anyhow::bail!("accounting is off (set gateway.accounting.file)") };
                edgeplane::client::tail(&path, follow)
            }
        },
        Cmd::Presence { cmd } => {
            use control::presence::{HistoryRow, Row};
            let line = |user: &str, source: &str, status: &str, when: f64, cause: Option<&str>| {
                println!("{user:<28} {source:<16} {status:<11} {when:.3}{}", cause.map(|c| format!("  ({c})")).unwrap_or_default());
            };
            match cmd {
                PresenceCmd::Show { user, json } => {
                    let v = call(Request::PresenceShow { user })?;
                    if json {
                        print_json(&v);
                    } else {
                        let rows: Vec<Row> = serde_json::from_value(v)?;
                        rows.iter().for_each(|r| line(&r.user, &r.source, &r.status, r.updated, None));
                    }
                }
                PresenceCmd::History { user, json } => {
                    let v = call(Request::PresenceHistory { user })?;
                    if json {
                        print_json(&v);
                    } else {
                        let rows: Vec<HistoryRow> = serde_json::from_value(v)?;
                        rows.iter().for_each(|r| line(&r.user, &r.source, &r.status, r.at, Some(&r.cause)));
                    }
                }
            }
            Ok(())
        }
        Cmd::Sip { cmd: SipCmd::Parse { files, json } } => {
            anyhow::ensure!(!files.is_empty(), "name at least one file");
            let mut bad = 0;
            let mut out = Vec::new();
            for f in &files {
                let data = std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                match control::sip_monitor::sip::parse(&data) {
                    Ok((m, _)) => {
                        if json {
                            out.push(serde_json::json!({ "file": f, "valid": true, "message": m }));
                        } else {
                            let first = match &m.start {
                                control::sip_monitor::sip::StartLine::Request { method, uri } => format!("{method} {uri}"),
                                control::sip_monitor::sip::StartLine::Response { status, reason } => format!("{status} {reason} (to {})", m.cseq_method),
                            };
                            println!("{}: {first}", f.display());
                            println!("  call-id {}  cseq {} {}  branch {}", m.call_id, m.cseq, m.cseq_method, m.via_branch.as_deref().unwrap_or("-"));
                            println!("  from {} tag {}  to {} tag {}", m.from.aor(), m.from.tag.as_deref().unwrap_or("-"), m.to.aor(), m.to.tag.as_deref().unwrap_or("-"));
                            if let Some(c) = &m.contact {
                                println!("  contact {}{}", c.uri, c.expires.map(|e| format!(" expires {e}")).unwrap_or_default());
                            }
                            if let Some(e) = m.expires {
                                println!("  expires {e}");
                            }
                            for md in &m.media {
                                println!("  media {} port {} {} codecs {}{}", md.kind, md.port, md.proto, md.codecs.join(","), md.bandwidth_kbps.map(|b| format!(" {b} kbit/s")).unwrap_or_default());
                            }
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        if json {
                            out.push(serde_json::json!({ "file": f, "valid": false, "reason": e.to_string() }));
                        } else {
                            println!("{}: not valid SIP: {e}", f.display());
                        }
                    }
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            if bad > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Migrate { process, to, wait, json } => {
            use edgeplane::migration::MigrationView;
            let print = |m: &MigrationView| {
                let failure = m.failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default();
                println!("migration {} of {}: {} -> {}: {} in {} ms{failure}", m.id, m.process, m.from, m.to, step_name(m.step), m.elapsed_ms)
            };
            let to = match (process.as_str(), to) {
                ("status", None) => {
                    let v = call(Request::MigrateStatus)?;
                    if json {
                        print_json(&v);
                    } else {
                        let all: Vec<MigrationView> = serde_json::from_value(v)?;
                        all.iter().for_each(print);
                    }
                    return Ok(());
                }
                (_, Some(to)) => to,
                (_, None) => anyhow::bail!("name the destination: edgeplane migrate {process} --to SERVER [--wait]"),
            };
            let started = call(Request::MigrateStart { process: process.clone(), to, wait: false })?;
            let ended = |m: &MigrationView| matches!(m.step, control::migration::Step::Done | control::migration::Step::RolledBack);
            // On a server the agent relays the request and answers at the end.
            let mut raw = started.clone();
            let mut m: MigrationView = serde_json::from_value(started)?;
            if !ended(&m) && !wait {
                if json {
                    print_json(&raw);
                } else {
                    println!("migration {} of {process} started; follow it with `edgeplane migrate status`, or use --wait", m.id);
                }
                return Ok(());
            }
            // --wait: print each step as the coordinator records it.
            let mut shown = 0;
            let t0 = std::time::Instant::now();
            loop {
                if !json {
                    for l in m.log.iter().skip(shown) {
                        println!("  {l}");
                    }
                }
                shown = shown.max(m.log.len());
                if ended(&m) {
                    break;
                }
                anyhow::ensure!(t0.elapsed() < std::time::Duration::from_secs(3600), "migration {} still running after an hour", m.id);
                std::thread::sleep(std::time::Duration::from_millis(20));
                let all = call(Request::MigrateStatus)?;
                let id = m.id;
                raw = all.as_array().into_iter().flatten().find(|v| v["id"] == id).cloned().ok_or_else(|| anyhow::anyhow!("migration {id} is gone from the coordinator (restarted?)"))?;
                m = serde_json::from_value(raw.clone())?;
            }
            if json {
                print_json(&raw);
            } else {
                print(&m);
            }
            anyhow::ensure!(m.step == control::migration::Step::Done, "migration of {process} rolled back: {}", m.failure.as_deref().unwrap_or("unknown reason"));
            Ok(())
        }
        Cmd::Servers { cmd: Some(c), .. } => {
            let req = match c {
                ServersCmd::Add { name, address, network, agent } => Request::ServerAdd { server: control::migration::ServerInfo { name, address, network, agent } },
                ServersCmd::Remove { name } => Request::ServerRemove { name },
            };
            println!("{}", serde_json::from_value::<control::api::MessageView>(call(req)?)?.message);
            Ok(())
        }
        Cmd::Networks { cmd: Some(c), .. } => {
            let req = match c {
                NetworksCmd::Add { name, id, controller, via, next_hop_mac } => {
                    Request::NetworkAdd { network: control::migration::NetworkInfo { name, id, controller, via, next_hop_mac } }
                }
                NetworksCmd::Remove { name } => Request::NetworkRemove { name },
            };
            println!("{}", serde_json::from_value::<control::api::MessageView>(call(req)?)?.message);
            Ok(())
        }
        Cmd::Servers { cmd: None, json } => {
            let v = call(Request::Servers)?;
            if json {
                print_json(&v);
            } else {
                let servers: Vec<control::migration::ServerInfo> = serde_json::from_value(v)?;
                for s in servers {
                    println!("{:<16} {:<16} {:<12} {}", s.name, s.address, s.network, s.agent);
                }
            }
            Ok(())
        }
        Cmd::Networks { cmd: None, json } => {
            let v = call(Request::Networks)?;
            if json {
                print_json(&v);
            } else {
                let networks: Vec<control::migration::NetworkInfo> = serde_json::from_value(v)?;
                for n in networks {
                    let egress = match (&n.via, &n.next_hop_mac) {
                        (Some(v), Some(m)) => format!(" via {v} to {m}"),
                        _ => String::new(),
                    };
                    println!("{:<4} {:<12} controller {}{egress}", n.id, n.name, n.controller.as_deref().unwrap_or("-"));
                }
            }
            Ok(())
        }
        Cmd::CriuCheck => match edgeplane::migration::app::criu_status() {
            Ok(s) => {
                println!("CRIU usable: {s}");
                Ok(())
            }
            Err(e) => anyhow::bail!("{e}"),
        },
        Cmd::Vrrp { cmd: VrrpCmd::Rebalance } => {
            let v = call(Request::VrrpRebalance)?;
            println!("{}", serde_json::from_value::<control::api::MessageView>(v)?.message);
            Ok(())
        }
        Cmd::Vrrp { cmd: VrrpCmd::Status { json } } => {
            let v = call(Request::VrrpStatus)?;
            if json {
                print_json(&v);
            } else {
                let routers: Vec<edgeplane::router::RouterStatus> = serde_json::from_value(v)?;
                for r in routers {
                    let discards: Vec<String> = r.discarded.iter().filter(|(_, n)| **n != 0).map(|(k, n)| format!("{k}={n}")).collect();
                    println!(
                        "vrid {} on {}: {} (priority {}, master {}, advert {} ms, master down {} ms); sent {} received {} discarded [{}]; last change: {}",
                        r.vrid, r.interface, r.state, r.priority, r.master.as_deref().unwrap_or("-"), r.advert_interval_ms, r.master_down_interval_ms,
                        r.adverts_sent, r.adverts_received, discards.join(" "), r.last_change
                    );
                    if let Some(ls) = &r.load_sharing {
                        println!(
                            "  load sharing: owns {} buckets, routed {} packets; owners {:?}; hand-offs {} done {} aborted; held {}, re-injected {}, discarded {}",
                            ls.owned, ls.routed_packets, ls.owners, ls.handoffs_done, ls.handoffs_aborted, ls.held, ls.reinjected, ls.discarded
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

fn step_name(s: control::migration::Step) -> &'static str {
    use control::migration::Step::*;
    match s {
        Starting => "starting",
        Switching => "switching",
        Resuming => "resuming",
        Done => "done",
        RollingBack => "rolling_back",
        RolledBack => "rolled_back",
    }
}
