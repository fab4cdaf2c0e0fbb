//! `edgeplane`: the daemon (`run`) and the CLI that manages it.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use control::{
    api::{CounterView, Request},
    config::{Config, DEFAULT_SOCKET},
};
use edgeplane::{client, daemon, netns};

#[derive(Parser)]
#[command(
    name = "edgeplane",
    version,
    about = "Session-aware XDP data plane for the mobile edge"
)]
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
    /// A live view of the daemon: each role's state and every counter
    /// that moved, as a rate, refreshed every interval (Ctrl-C ends it).
    Top {
        /// Refresh interval, milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one view (rates over one interval) and exit.
        #[arg(long)]
        once: bool,
        /// Counters shown at most.
        #[arg(long, default_value_t = 30)]
        rows: usize,
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
        cmd: edgeplane::lb::cli::LbCmd,
    },
    /// The packet gateway (unique source port per user session).
    #[command(visible_alias = "gw")]
    Gateway {
        #[command(subcommand)]
        cmd: edgeplane::gateway::cli::GatewayCmd,
    },
    /// VRRPv3 virtual routers and their load sharing.
    #[command(visible_alias = "vrrp")]
    Router {
        #[command(subcommand)]
        cmd: edgeplane::router::cli::RouterCmd,
    },
    /// SIP tools of the sip-monitor role.
    Sip {
        #[command(subcommand)]
        cmd: edgeplane::sip_monitor::cli::SipCmd,
    },
    /// The presence server's store.
    Presence {
        #[command(subcommand)]
        cmd: edgeplane::presence::cli::PresenceCmd,
    },
    /// Move a process to another server (`migrate PROCESS --to SERVER`),
    /// or show the migrations so far (`migrate status`).
    Migrate(edgeplane::migration::cli::MigrateArgs),
    /// The servers the migration coordinator knows (list, add, remove).
    Servers {
        #[command(subcommand)]
        cmd: Option<edgeplane::migration::cli::ServersCmd>,
        #[arg(long)]
        json: bool,
    },
    /// The networks the migration coordinator knows (list, add, remove).
    Networks {
        #[command(subcommand)]
        cmd: Option<edgeplane::migration::cli::NetworksCmd>,
        #[arg(long)]
        json: bool,
    },
    /// Whether CRIU can checkpoint processes on this machine.
    CriuCheck,
    /// The edge's shared state in etcd: members, gateways, LB tables.
    Cluster(edgeplane::cluster::cli::ClusterArgs),
    /// A shell completion script for this CLI, on stdout (e.g.
    /// `edgeplane completions bash > /etc/bash_completion.d/edgeplane`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page edgeplane(1), as roff on stdout (`edgeplane man |
    /// man -l -`).
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgeplane::cli::main("edgeplane", || run(cli))
}

/// Write generated text to stdout; a reader that stops early (`| head`)
/// is not an error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sock = cli.socket.clone();
    let call = move |req: Request| client::call(&sock, &req).map_err(anyhow::Error::from);
    match cli.cmd {
        Cmd::Run {
            config,
            netns: ns,
            replace_pins,
        } => {
            if let Some(ns) = &ns {
                use edgeplane::caps;
                if caps::effective() & (1 << caps::CAP_SYS_ADMIN) == 0 {
                    anyhow::bail!("--netns {ns} needs CAP_SYS_ADMIN (setns); without it, start the daemon inside the namespace instead (nsenter --net=/run/netns/{ns} edgeplane run ...)");
                }
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
        Cmd::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "edgeplane", &mut out);
            to_stdout(&out)
        }
        Cmd::Man => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            to_stdout(&out)
        }
        Cmd::Check { config } => {
            let c =
                Config::load(&config).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            println!(
                "{}: valid ({} lb, {} gateway, {} router instance(s))",
                config.display(),
                c.lb.len(),
                c.gateway.len(),
                c.router.len()
            );
            for (i, r) in c.router.iter().enumerate() {
                for w in r.warnings() {
                    eprintln!("warning: router[{i}].{w}");
                }
            }
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
        Cmd::XdpPass {
            interface,
            netns: ns,
            pin_root,
        } => {
            if let Some(ns) = &ns {
                netns::enter(ns)?;
            }
            let opts = dataplane_user::LoadOptions {
                pin_root,
                ..Default::default()
            };
            dataplane_user::Dataplane::attach("floor", &interface, &opts)?;
            println!("floor program attached to {interface}");
            Ok(())
        }
        Cmd::Status { json } => {
            let v = call(Request::Status)?;
            if json {
                edgeplane::cli::print_json(&v);
            } else {
                edgeplane::cli::print_status(&serde_json::from_value(v)?);
            }
            Ok(())
        }
        Cmd::Stats { json } => {
            let v = call(Request::Stats)?;
            if json {
                edgeplane::cli::print_json(&v);
            } else {
                let rows: Vec<CounterView> = serde_json::from_value(v)?;
                edgeplane::cli::print_stats(&rows);
            }
            Ok(())
        }
        Cmd::Top {
            interval_ms,
            once,
            rows,
        } => {
            anyhow::ensure!(
                (100..=60_000).contains(&interval_ms),
                "--interval-ms must be 100..=60000"
            );
            edgeplane::top::run(
                &cli.socket,
                std::time::Duration::from_millis(interval_ms),
                once,
                rows,
            )
        }
        Cmd::Reload => {
            let v = call(Request::Reload)?;
            println!(
                "{}",
                serde_json::from_value::<control::api::MessageView>(v)?.message
            );
            Ok(())
        }
        Cmd::Lb { cmd } => edgeplane::lb::cli::run(cmd, &call),
        Cmd::Gateway { cmd } => edgeplane::gateway::cli::run(cmd, &call),
        Cmd::Router { cmd } => edgeplane::router::cli::run(cmd, &call),
        Cmd::Sip { cmd } => edgeplane::sip_monitor::cli::run(cmd),
        Cmd::Presence { cmd } => edgeplane::presence::cli::run(cmd, &call),
        Cmd::Migrate(args) => edgeplane::migration::cli::migrate(args, &call),
        Cmd::Servers { cmd, json } => edgeplane::migration::cli::servers(cmd, json, &call),
        Cmd::Networks { cmd, json } => edgeplane::migration::cli::networks(cmd, json, &call),
        Cmd::CriuCheck => edgeplane::migration::cli::criu_check(),
        Cmd::Cluster(args) => edgeplane::cluster::cli::run(args),
    }
}
