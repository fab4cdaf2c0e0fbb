//! `edgeplane gateway ...` (also `gw`): the gateway role's commands and
//! how they print.

use control::{
    api::{FlowSpec, Request},
    field::MacAddr,
};

use crate::cli::{print_json, Call};

#[derive(clap::Subcommand)]
pub enum GatewayCmd {
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
    /// PFCP sessions (GTP-U tunnels) with their user sessions, then the
    /// plain-IP user sessions, with ports and counters.
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

#[derive(clap::Subcommand)]
pub enum GwServerCmd {
    Add {
        #[arg(long)]
        group: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: std::net::IpAddr,
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
        next_hop: Option<std::net::IpAddr>,
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

pub fn run(cmd: GatewayCmd, call: &Call) -> anyhow::Result<()> {
    match cmd {
        GatewayCmd::Groups { json } => {
            let v = call(Request::GwGroups)?;
            if json {
                print_json(&v);
            } else {
                crate::cli::print_groups(&serde_json::from_value(v)?);
            }
            Ok(())
        }
        GatewayCmd::Servers { cmd } => {
            let (v, json) = match cmd {
                GwServerCmd::Add {
                    group,
                    name,
                    address,
                    port,
                    weight,
                    via,
                    mac,
                    next_hop,
                    json,
                } => {
                    let server = control::gateway::config::ServerCfg {
                        name,
                        address,
                        port,
                        weight,
                        via,
                        next_hop,
                        mac,
                        types: None,
                    };
                    (call(Request::GwServerAdd { group, server })?, json)
                }
                GwServerCmd::Remove { group, name, json } => {
                    (call(Request::GwServerRemove { group, name })?, json)
                }
            };
            if json {
                print_json(&v);
            } else {
                println!("ok");
            }
            Ok(())
        }
        GatewayCmd::Sessions { json } => {
            let v = call(Request::GwSessionTree)?;
            if json {
                print_json(&v);
            } else {
                print_session_tree(&serde_json::from_value(v)?);
            }
            Ok(())
        }
        GatewayCmd::Lookup { flow, json } => {
            let v = call(Request::GwLookup { flow })?;
            if json {
                print_json(&v);
            } else {
                let l: control::api::GwLookupView = serde_json::from_value(v)?;
                match (&l.server, &l.group) {
                    (Some(server), Some(group)) => {
                        let port = l
                            .session_port
                            .map(|p| format!("existing session, port {p}"))
                            .unwrap_or_else(|| "new session".into());
                        println!(
                            "{server} in group {group} ({port}; {})",
                            l.translated.as_deref().unwrap_or("")
                        );
                    }
                    _ => println!("not forwarded (verdict {})", l.verdict),
                }
            }
            Ok(())
        }
        GatewayCmd::Accounting { follow } => {
            let v: control::api::AccountingView =
                serde_json::from_value(call(Request::GwAccounting)?)?;
            let Some(path) = v.file else {
                anyhow::bail!("accounting is off (set gateway.accounting.file)")
            };
            crate::client::tail(&path, follow)
        }
    }
}

fn print_user_sessions(rows: &[crate::gateway::SessionView], indent: &str) {
    println!(
        "{indent}{:>5} {:<21} {:<21} {:<4} {:<10} {:<10} {:>7} {:>10} {:>10}",
        "PORT",
        "TERMINAL",
        "REPRESENTATIVE",
        "PROTO",
        "GROUP",
        "SERVER",
        "IDLE_S",
        "BYTES_UP",
        "BYTES_DN"
    );
    for r in rows {
        println!(
            "{indent}{:>5} {:<21} {:<21} {:<4} {:<10} {:<10} {:>7.1} {:>10} {:>10}",
            r.port,
            r.terminal,
            r.representative,
            r.proto,
            r.group,
            r.server,
            r.idle_s,
            r.bytes_up,
            r.bytes_down
        );
    }
}

fn print_session_tree(t: &crate::gateway::SessionTreeView) {
    for s in &t.sessions {
        let dl = match (s.dl_teid, s.access_node) {
            (Some(teid), Some(an)) => format!(
                "downlink teid {teid:#010x} to {an}{}",
                s.qfi.map(|q| format!(" qfi {q}")).unwrap_or_default()
            ),
            _ => "no downlink yet".into(),
        };
        println!(
            "session seid {:#x} (cp {} seid {:#x}) ue {} uplink teid {:#010x}, {dl}; bytes up {} down {}; {} user session(s)",
            s.seid,
            s.cp,
            s.cp_seid,
            s.ue,
            s.ul_teid,
            s.bytes_ul,
            s.bytes_dl,
            s.user_sessions.len()
        );
        if !s.user_sessions.is_empty() {
            print_user_sessions(&s.user_sessions, "    ");
        }
    }
    if !t.plain.is_empty() || t.sessions.is_empty() {
        if !t.sessions.is_empty() {
            println!("plain IP:");
        }
        print_user_sessions(&t.plain, "");
    }
}
