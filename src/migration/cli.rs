//! `edgeplane migrate`, `servers`, `networks`, `criu-check`: the
//! migration role's commands and how they print.

use control::api::Request;

use crate::cli::{print_json, Call};

/// `edgeplane migrate PROCESS --to SERVER [--wait]` or `migrate status`.
#[derive(clap::Args)]
pub struct MigrateArgs {
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
}

#[derive(clap::Subcommand)]
pub enum ServersCmd {
    /// Add a server to the store (kept across restarts; entries in the
    /// config are re-applied at start).
    Add {
        name: String,
        #[arg(long)]
        address: std::net::IpAddr,
        #[arg(long)]
        network: String,
        /// Its agent's endpoint, ADDR:PORT.
        #[arg(long)]
        agent: std::net::SocketAddr,
    },
    /// Remove a server no process runs on.
    Remove { name: String },
}

#[derive(clap::Subcommand)]
pub enum NetworksCmd {
    Add {
        name: String,
        /// The number the steering map uses.
        #[arg(long)]
        id: u32,
        /// Its connection controller, ADDR:PORT (default: the coordinator's).
        #[arg(long)]
        controller: Option<std::net::SocketAddr>,
        /// The controller's interface toward it (with --next-hop-mac).
        #[arg(long)]
        via: Option<String>,
        #[arg(long)]
        next_hop_mac: Option<control::field::MacAddr>,
    },
    /// Remove a network no server is on.
    Remove { name: String },
}

pub fn migrate(args: MigrateArgs, call: &Call) -> anyhow::Result<()> {
    let MigrateArgs {
        process,
        to,
        wait,
        json,
    } = args;
    use crate::migration::MigrationView;
    let print = |m: &MigrationView| {
        let failure = m
            .failure
            .as_ref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        println!(
            "migration {} of {}: {} -> {}: {} in {} ms{failure}",
            m.id,
            m.process,
            m.from,
            m.to,
            step_name(m.step),
            m.elapsed_ms
        )
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
        (_, None) => {
            anyhow::bail!("name the destination: edgeplane migrate {process} --to SERVER [--wait]")
        }
    };
    let started = call(Request::MigrateStart {
        process: process.clone(),
        to,
        wait: false,
    })?;
    let ended = |m: &MigrationView| {
        matches!(
            m.step,
            control::migration::Step::Done | control::migration::Step::RolledBack
        )
    };
    // On a server the agent relays the request and answers at the end.
    let mut raw = started.clone();
    let mut m: MigrationView = serde_json::from_value(started)?;
    if !ended(&m) && !wait {
        if json {
            print_json(&raw);
        } else {
            println!(
                "migration {} of {process} started; follow it with `edgeplane migrate status`, or use --wait",
                m.id
            );
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
        anyhow::ensure!(
            t0.elapsed() < std::time::Duration::from_secs(3600),
            "migration {} still running after an hour",
            m.id
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        let all = call(Request::MigrateStatus)?;
        let id = m.id;
        raw = all
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["id"] == id)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!("migration {id} is gone from the coordinator (restarted?)")
            })?;
        m = serde_json::from_value(raw.clone())?;
    }
    if json {
        print_json(&raw);
    } else {
        print(&m);
    }
    anyhow::ensure!(
        m.step == control::migration::Step::Done,
        "migration of {process} rolled back: {}",
        m.failure.as_deref().unwrap_or("unknown reason")
    );
    Ok(())
}

pub fn servers(cmd: Option<ServersCmd>, json: bool, call: &Call) -> anyhow::Result<()> {
    match cmd {
        Some(c) => {
            let req = match c {
                ServersCmd::Add {
                    name,
                    address,
                    network,
                    agent,
                } => Request::ServerAdd {
                    server: control::migration::ServerInfo {
                        name,
                        address,
                        network,
                        agent,
                    },
                },
                ServersCmd::Remove { name } => Request::ServerRemove { name },
            };
            println!(
                "{}",
                serde_json::from_value::<control::api::MessageView>(call(req)?)?.message
            );
            Ok(())
        }
        None => {
            let v = call(Request::Servers)?;
            if json {
                print_json(&v);
            } else {
                let servers: Vec<control::migration::ServerInfo> = serde_json::from_value(v)?;
                for s in servers {
                    println!(
                        "{:<16} {:<16} {:<12} {}",
                        s.name, s.address, s.network, s.agent
                    );
                }
            }
            Ok(())
        }
    }
}

pub fn networks(cmd: Option<NetworksCmd>, json: bool, call: &Call) -> anyhow::Result<()> {
    match cmd {
        Some(c) => {
            let req = match c {
                NetworksCmd::Add {
                    name,
                    id,
                    controller,
                    via,
                    next_hop_mac,
                } => Request::NetworkAdd {
                    network: control::migration::NetworkInfo {
                        name,
                        id,
                        controller,
                        via,
                        next_hop_mac,
                    },
                },
                NetworksCmd::Remove { name } => Request::NetworkRemove { name },
            };
            println!(
                "{}",
                serde_json::from_value::<control::api::MessageView>(call(req)?)?.message
            );
            Ok(())
        }
        None => {
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
                    println!(
                        "{:<4} {:<12} controller {}{egress}",
                        n.id,
                        n.name,
                        n.controller
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
            }
            Ok(())
        }
    }
}

pub fn criu_check() -> anyhow::Result<()> {
    match crate::migration::app::criu_status() {
        Ok(s) => {
            println!("CRIU usable: {s}");
            Ok(())
        }
        Err(e) => anyhow::bail!("{e}"),
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
