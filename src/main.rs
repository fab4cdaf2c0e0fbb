//! `edgeplane`: the daemon (`run`) and the CLI that manages it.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use control::{
    api::{CounterView, DigestView, FlowSpec, GatewayView, LookupKey, LookupView, Request},
    config::{Config, Gateway, DEFAULT_SOCKET},
};
use edgeplane::{bench, client, daemon, netns};

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
    /// `--program sink` counts and drops IPv4 instead (benchmarks).
    XdpPass {
        #[arg(long)]
        interface: String,
        #[arg(long, default_value = "floor", value_parser = ["floor", "sink"])]
        program: String,
        #[arg(long)]
        netns: Option<String>,
        #[arg(long, default_value = "/sys/fs/bpf/edgeplane")]
        pin_root: PathBuf,
    },
    /// Run the demo topology (namespaces, daemons, traffic) and tear it down.
    Demo {
        /// Keep the topology up until Ctrl-C.
        #[arg(long)]
        hold: bool,
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
    /// The migration demo workload: a stateful UDP/TCP counter service.
    CounterService {
        #[arg(long)]
        udp: std::net::SocketAddr,
        #[arg(long)]
        tcp: Option<std::net::SocketAddr>,
        /// Control socket (pause, export, import JSON, resume, discard, status).
        #[arg(long)]
        control: PathBuf,
        /// Write the service's pid here (for an agent that stops it with
        /// SIGSTOP and has no control socket to ask).
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Send a control command to a counter service (the application
    /// checkpoint backend uses `export` and `import`; `import` alone reads
    /// the state from stdin).
    CounterCtl {
        #[arg(long)]
        control: PathBuf,
        command: Vec<String>,
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
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
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
        mac: String,
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
        mac: Option<String>,
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

#[derive(Subcommand)]
enum BenchCmd {
    /// Migration pause and switch times (p50/p99) against the request wait
    /// with nothing moving, on a namespace lab.
    Migration {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 60)]
        count: usize,
        /// s2's agent runs `counter-ctl` commands (a process per step)
        /// instead of talking to the control socket.
        #[arg(long)]
        commands: bool,
    },
    /// Wire-to-PUBLISH latency of the SIP monitor (p50/p99 over many calls).
    SipLatency {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 1000)]
        calls: usize,
    },
    /// Lost probe traffic when the VRRP master fails: edgeplane vs keepalived.
    VrrpFailover {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Forwarding rate on veth: XDP gateway vs nftables DNAT+SNAT (conntrack).
    GatewayVeth {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
    /// ns/packet of each XDP program against the floor program (test_run).
    Xdp {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 15)]
        rounds: usize,
        #[arg(long, default_value_t = 2000)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgeplane: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        Cmd::XdpPass { interface, program, netns: ns, pin_root } => {
            if let Some(ns) = &ns {
                netns::enter(ns)?;
            }
            let opts = dataplane_user::LoadOptions { pin_root, ..Default::default() };
            dataplane_user::Dataplane::attach(&program, &interface, &opts)?;
            println!("{program} program attached to {interface}");
            Ok(())
        }
        Cmd::Demo { hold } => edgeplane::demo::run(hold),
        Cmd::Status { json } => {
            let v = call(Request::Status)?;
            if json {
                print_json(&v);
            } else {
                println!("node {}  config {}", v["node"].as_str().unwrap_or(""), v["config"].as_str().unwrap_or(""));
                for l in v["lb"].as_array().into_iter().flatten() {
                    println!("lb on {}: {} gateway(s){}", l["interface"].as_str().unwrap_or(""), l["gateways"], if l["took_over_pins"].as_bool() == Some(true) { " (took over pinned state)" } else { "" });
                }
                for g in v["gateway"].as_array().into_iter().flatten() {
                    println!("gateway {} on {}: {} group(s)", g["address"].as_str().unwrap_or(""), g["interfaces"], g["groups"]);
                }
                let m = &v["migration"];
                if let Some(a) = m["agent"].as_object() {
                    println!("migration agent on {}: processes {}", a["listen"].as_str().unwrap_or(""), a["processes"]);
                }
                if let Some(c) = m["controller"].as_object() {
                    let services: Vec<String> = c["services"].as_array().into_iter().flatten().map(|s| format!("{} → network {}", s["address"].as_str().unwrap_or(""), s["network"])).collect();
                    println!("connection controller on {} ({} queue(s)): {}; {} frame(s) held", c["interface"].as_str().unwrap_or(""), c["queues"], services.join(", "), c["held_frames"]);
                }
                if let Some(c) = m["coordinator"].as_object() {
                    println!("migration coordinator: {} migration(s), running {}; store {}", c["migrations"], c["running"], c["database"].as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        Cmd::Stats { json } => {
            let v = call(Request::Stats)?;
            if json {
                print_json(&v);
            } else {
                let rows: Vec<CounterView> = serde_json::from_value(v)?;
                println!("{:<8} {:<12} {:<20} {:>14} {:>16}", "PROGRAM", "INTERFACE", "COUNTER", "PACKETS", "BYTES");
                for r in rows.iter().filter(|r| r.packets > 0 || r.name == "tx" || r.name == "redirect" || r.name == "pass") {
                    println!("{:<8} {:<12} {:<20} {:>14} {:>16}", r.program, r.interface, r.name, r.packets, r.bytes);
                }
            }
            Ok(())
        }
        Cmd::Reload => {
            let v = call(Request::Reload)?;
            println!("{}", v["message"].as_str().unwrap_or("reloaded"));
            Ok(())
        }
        Cmd::Lb { cmd } => match cmd {
            LbCmd::Gateways { cmd } => {
                let (v, json) = match cmd {
                    GwCmd::List { interface, json } => (call(Request::LbGateways { interface })?, json),
                    GwCmd::Add { name, address, mac, via, weight, interface, json } => {
                        let gateway = Gateway { name, address, mac, via, weight };
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
                    println!("gateway {} ports {}", v["address"].as_str().unwrap_or(""), v["ports"].as_str().unwrap_or(""));
                    for g in v["groups"].as_array().into_iter().flatten() {
                        let list = |k: &str| g[k].as_array().into_iter().flatten().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
                        println!("group {}: services {}; allow {}", g["name"].as_str().unwrap_or(""), list("services"), list("allow"));
                        for sv in g["servers"].as_array().into_iter().flatten() {
                            println!("  {:<12} {}:{} weight {} types {}", sv["name"].as_str().unwrap_or(""), sv["address"].as_str().unwrap_or(""), sv["port"], sv["weight"], sv["types"]);
                        }
                    }
                }
                Ok(())
            }
            GwRoleCmd::Servers { cmd } => {
                let (v, json) = match cmd {
                    GwServerCmd::Add { group, name, address, port, weight, via, mac, next_hop, json } => {
                        let server = control::gateway::ServerCfg { name, address, port, weight, via, next_hop, mac, types: None };
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
                    let rows: Vec<edgeplane::gw::SessionView> = serde_json::from_value(v)?;
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
                } else if v["server"].is_null() {
                    println!("not forwarded (verdict {})", v["verdict"].as_str().unwrap_or(""));
                } else {
                    let port = v["session_port"].as_u64().map(|p| format!("existing session, port {p}")).unwrap_or_else(|| "new session".into());
                    println!("{} in group {} ({port}; {})", v["server"].as_str().unwrap_or(""), v["group"].as_str().unwrap_or(""), v["translated"].as_str().unwrap_or(""));
                }
                Ok(())
            }
            GwRoleCmd::Accounting { follow } => {
                let v = call(Request::GwAccounting)?;
                let Some(path) = v["file"].as_str() else { anyhow::bail!("accounting is off (set gateway.accounting.file)") };
                edgeplane::client::tail(std::path::Path::new(path), follow)
            }
        },
        Cmd::Presence { cmd } => {
            let (v, json) = match cmd {
                PresenceCmd::Show { user, json } => (call(Request::PresenceShow { user })?, json),
                PresenceCmd::History { user, json } => (call(Request::PresenceHistory { user })?, json),
            };
            if json {
                print_json(&v);
            } else {
                for r in v.as_array().into_iter().flatten() {
                    let when = r["updated"].as_f64().or(r["at"].as_f64()).unwrap_or(0.0);
                    println!("{:<28} {:<16} {:<11} {:.3}{}", r["user"].as_str().unwrap_or(""), r["source"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or(""), when,
                        r["cause"].as_str().map(|c| format!("  ({c})")).unwrap_or_default());
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
                match control::sip::parse(&data) {
                    Ok((m, _)) => {
                        if json {
                            out.push(serde_json::json!({ "file": f, "valid": true, "message": m }));
                        } else {
                            let first = match &m.start {
                                control::sip::StartLine::Request { method, uri } => format!("{method} {uri}"),
                                control::sip::StartLine::Response { status, reason } => format!("{status} {reason} (to {})", m.cseq_method),
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
        Cmd::CounterService { udp, tcp, control, pid_file } => {
            if let Some(f) = &pid_file {
                std::fs::write(f, format!("{}\n", std::process::id())).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            }
            edgeplane::counter::serve(udp, tcp, &control)
        }
        Cmd::CounterCtl { control, command } => {
            // `import` without its JSON reads it from stdin (the agent's
            // command backend hands the state over that way).
            let mut command = command.join(" ");
            if command == "import" {
                let mut state = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut state)?;
                command = format!("import {}", state.trim());
            }
            println!("{}", edgeplane::counter::control(&control, &command)?);
            Ok(())
        }
        Cmd::Migrate { process, to, wait, json } => {
            let print = |m: &serde_json::Value| {
                println!(
                    "migration {} of {}: {} -> {}: {} in {} ms{}",
                    m["id"], m["process"].as_str().unwrap_or(""), m["from"].as_str().unwrap_or(""), m["to"].as_str().unwrap_or(""),
                    m["step"].as_str().unwrap_or(""), m["elapsed_ms"], m["failure"].as_str().map(|f| format!(" ({f})")).unwrap_or_default()
                )
            };
            let to = match (process.as_str(), to) {
                ("status", None) => {
                    let v = call(Request::MigrateStatus)?;
                    if json {
                        print_json(&v);
                    } else {
                        v.as_array().into_iter().flatten().for_each(print);
                    }
                    return Ok(());
                }
                (_, Some(to)) => to,
                (_, None) => anyhow::bail!("name the destination: edgeplane migrate {process} --to SERVER [--wait]"),
            };
            let started = call(Request::MigrateStart { process: process.clone(), to, wait: false })?;
            let ended = |m: &serde_json::Value| matches!(m["step"].as_str(), Some("done" | "rolled_back"));
            // On a server the agent relays the request and answers at the end.
            let mut m = started.clone();
            if !ended(&m) && !wait {
                if json {
                    print_json(&m);
                } else {
                    println!("migration {} of {process} started; follow it with `edgeplane migrate status`, or use --wait", m["id"]);
                }
                return Ok(());
            }
            // --wait: print each step as the coordinator records it.
            let mut shown = 0;
            let t0 = std::time::Instant::now();
            loop {
                let log: Vec<String> = m["log"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(String::from)).collect();
                if !json {
                    for l in log.iter().skip(shown) {
                        println!("  {l}");
                    }
                }
                shown = shown.max(log.len());
                if ended(&m) {
                    break;
                }
                anyhow::ensure!(t0.elapsed() < std::time::Duration::from_secs(3600), "migration {} still running after an hour", m["id"]);
                std::thread::sleep(std::time::Duration::from_millis(20));
                let all = call(Request::MigrateStatus)?;
                m = all.as_array().into_iter().flatten().find(|v| v["id"] == started["id"]).cloned().ok_or_else(|| anyhow::anyhow!("migration {} is gone from the coordinator (restarted?)", started["id"]))?;
            }
            if json {
                print_json(&m);
            } else {
                print(&m);
            }
            anyhow::ensure!(m["step"] == "done", "migration of {process} rolled back: {}", m["failure"].as_str().unwrap_or("unknown reason"));
            Ok(())
        }
        Cmd::Servers { cmd: Some(c), .. } => {
            let req = match c {
                ServersCmd::Add { name, address, network, agent } => Request::ServerAdd { server: control::migration::ServerInfo { name, address, network, agent } },
                ServersCmd::Remove { name } => Request::ServerRemove { name },
            };
            println!("{}", call(req)?["message"].as_str().unwrap_or("ok"));
            Ok(())
        }
        Cmd::Networks { cmd: Some(c), .. } => {
            let req = match c {
                NetworksCmd::Add { name, id, controller, via, next_hop_mac } => {
                    Request::NetworkAdd { network: control::migration::NetworkInfo { name, id, controller, via, next_hop_mac } }
                }
                NetworksCmd::Remove { name } => Request::NetworkRemove { name },
            };
            println!("{}", call(req)?["message"].as_str().unwrap_or("ok"));
            Ok(())
        }
        Cmd::Servers { cmd: None, json } => {
            let v = call(Request::Servers)?;
            if json {
                print_json(&v);
            } else {
                for s in v.as_array().into_iter().flatten() {
                    println!("{:<16} {:<16} {:<12} {}", s["name"].as_str().unwrap_or(""), s["address"].as_str().unwrap_or(""), s["network"].as_str().unwrap_or(""), s["agent"].as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        Cmd::Networks { cmd: None, json } => {
            let v = call(Request::Networks)?;
            if json {
                print_json(&v);
            } else {
                for n in v.as_array().into_iter().flatten() {
                    let egress = match (n["via"].as_str(), n["next_hop_mac"].as_str()) {
                        (Some(v), Some(m)) => format!(" via {v} to {m}"),
                        _ => String::new(),
                    };
                    println!("{:<4} {:<12} controller {}{egress}", n["id"], n["name"].as_str().unwrap_or(""), n["controller"].as_str().unwrap_or("-"));
                }
            }
            Ok(())
        }
        Cmd::CriuCheck => match edgeplane::counter::criu_status() {
            Ok(s) => {
                println!("CRIU usable: {s}");
                Ok(())
            }
            Err(e) => anyhow::bail!("{e}"),
        },
        Cmd::Vrrp { cmd: VrrpCmd::Rebalance } => {
            let v = call(Request::VrrpRebalance)?;
            println!("{}", v["message"].as_str().unwrap_or("ok"));
            Ok(())
        }
        Cmd::Vrrp { cmd: VrrpCmd::Status { json } } => {
            let v = call(Request::VrrpStatus)?;
            if json {
                print_json(&v);
            } else {
                for r in v.as_array().into_iter().flatten() {
                    let discards: Vec<String> = r["discarded"].as_object().into_iter().flatten().filter(|(_, n)| n.as_u64() != Some(0)).map(|(k, n)| format!("{k}={n}")).collect();
                    println!(
                        "vrid {} on {}: {} (priority {}, master {}, advert {} ms, master down {} ms); sent {} received {} discarded [{}]; last change: {}",
                        r["vrid"], r["interface"].as_str().unwrap_or(""), r["state"].as_str().unwrap_or(""), r["priority"],
                        r["master"].as_str().unwrap_or("-"), r["advert_interval_ms"], r["master_down_interval_ms"],
                        r["adverts_sent"], r["adverts_received"], discards.join(" "), r["last_change"].as_str().unwrap_or("")
                    );
                    let ls = &r["load_sharing"];
                    if !ls.is_null() {
                        println!("  load sharing: owns {} buckets, routed {} packets; owners {}; hand-offs {} done {} aborted; held {}, re-injected {}, discarded {}",
                            ls["owned"], ls["routed_packets"], ls["owners"], ls["handoffs_done"], ls["handoffs_aborted"], ls["held"], ls["reinjected"], ls["discarded"]);
                    }
                }
            }
            Ok(())
        }
        Cmd::Bench { cmd: BenchCmd::Migration { json, count, commands } } => {
            let r = edgeplane::migration_lab::bench(&std::env::current_exe()?, count, commands)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} migrations: pause (longest request wait) p50 {:.2} ms p99 {:.2} ms vs {:.2} / {:.2} ms with nothing moving ({:.1}x at p50); held pause (first held packet to first released, {} migrations) p50 {:.2} ms p99 {:.2} ms; switch p50 {} us p99 {} us; whole migration p50 {:.1} ms; {} held packets released; {} requests lost",
                    r.migrations, r.pause_ms_p50, r.pause_ms_p99, r.baseline_wait_ms_p50, r.baseline_wait_ms_p99, r.pause_over_baseline_p50,
                    r.held_pause_samples, r.held_pause_ms_p50, r.held_pause_ms_p99,
                    r.switch_us_p50, r.switch_us_p99, r.migration_ms_p50, r.released_total, r.lost_requests
                );
            }
            Ok(())
        }
        Cmd::Bench { cmd: BenchCmd::SipLatency { json, calls } } => {
            let r = edgeplane::bench_sip::run(calls.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{} calls, {} measured: ACK leaving the UAC to PUBLISH leaving the monitor p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms", r.calls, r.measured, r.p50_ms, r.p99_ms, r.max_ms);
            }
            Ok(())
        }
        Cmd::Bench { cmd: BenchCmd::VrrpFailover { json, reps } } => {
            let rows = edgeplane::bench_vrrp::run_failover(reps.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{:<11} {:>9} {:>12} {:>9}  RUNS", "IMPL", "ADVERT_MS", "MDI_MS", "LOST_MS");
                for r in rows {
                    println!("{:<11} {:>9} {:>12.0} {:>9.0}  {:?}", r.implementation, r.advert_interval_ms, r.master_down_interval_ms, r.lost_ms, r.lost_ms_runs);
                }
            }
            Ok(())
        }
        Cmd::Bench { cmd: BenchCmd::GatewayVeth { json, reps, secs } } => {
            let r = edgeplane::bench_veth::run_gateway_vs_nftables(reps.max(1), secs)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{}: XDP gateway {:.0} pps, nftables {:.0} pps, ratio {:.2} (generator offered {:.0} pps; median of {})",
                    r.case, r.xdp_pps, r.nftables_pps, r.ratio, r.generator_pps, r.repetitions);
            }
            Ok(())
        }
        Cmd::Bench { cmd: BenchCmd::Xdp { json, rounds, runs } } => {
            let rows = bench::run_all(&bench::BenchOptions { rounds, runs_per_round: runs })?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{:<8} {:<22} {:>10} {:>10} {:>7} {:>10}", "PROGRAM", "CASE", "NS/PKT", "FLOOR", "RATIO", "ABOVE");
                for r in rows {
                    println!("{:<8} {:<22} {:>10.1} {:>10.1} {:>7.2} {:>10.1}", r.program, r.case, r.ns_per_packet, r.floor_ns_per_packet, r.ratio, r.ns_above_floor);
                }
            }
            Ok(())
        }
    }
}
