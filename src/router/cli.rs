//! `edgeplane router ...` (also `vrrp`): the router role's commands.

use control::api::Request;

use crate::cli::{print_json, Call};

#[derive(clap::Subcommand)]
pub enum RouterCmd {
    /// State, master, priorities, timers, discard counters, and with load
    /// sharing the condition owners and per-bucket rates.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Ask the load-sharing master to rebalance the conditions now.
    Rebalance,
}

pub fn run(cmd: RouterCmd, call: &Call) -> anyhow::Result<()> {
    match cmd {
        RouterCmd::Rebalance => {
            let v = call(Request::VrrpRebalance)?;
            println!(
                "{}",
                serde_json::from_value::<control::api::MessageView>(v)?.message
            );
            Ok(())
        }
        RouterCmd::Status { json } => {
            let v = call(Request::VrrpStatus)?;
            if json {
                print_json(&v);
            } else {
                let routers: Vec<crate::router::RouterStatus> = serde_json::from_value(v)?;
                for r in routers {
                    let discards: Vec<String> = r
                        .discarded
                        .iter()
                        .filter(|(_, n)| **n != 0)
                        .map(|(k, n)| format!("{k}={n}"))
                        .collect();
                    println!(
                        "vrid {} on {}: {} (priority {}, master {}, advert {} ms, master down {} ms); sent {} received {} discarded [{}]; last change: {}",
                        r.vrid,
                        r.interface,
                        r.state,
                        r.priority,
                        r.master.as_deref().unwrap_or("-"),
                        r.advert_interval_ms,
                        r.master_down_interval_ms,
                        r.adverts_sent,
                        r.adverts_received,
                        discards.join(" "),
                        r.last_change
                    );
                    if let Some(ls) = &r.load_sharing {
                        println!(
                        "  load sharing: owns {} buckets, routed {} packets; owners {:?}; hand-offs {} done {} aborted; held {} (at most {}, {} refused: full), re-injected {}, discarded {}; peer restarts {}, refused {} stale {} replayed",
                        ls.owned, ls.routed_packets, ls.owners, ls.handoffs_done, ls.handoffs_aborted, ls.held, ls.hold_max_frames, ls.held_refused, ls.reinjected, ls.discarded, ls.peer_restarts, ls.stale, ls.replayed
                    );
                    }
                }
            }
            Ok(())
        }
    }
}
