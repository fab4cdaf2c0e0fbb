//! How the CLI prints the daemon's typed views (`--json` prints them as
//! the daemon sent them).

use std::process::ExitCode;

use control::api::{CounterSource, CounterView, GroupsView, StatusView};

/// How a command reaches the daemon: one request, its `data` back.
pub type Call = dyn Fn(control::api::Request) -> anyhow::Result<serde_json::Value>;

/// The daemon's answer as it came (`--json`).
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A binary's `main`: logs to stderr (`RUST_LOG`, default `info`), runs
/// `run`, and prints its error as `NAME: error` with a failing exit code.
pub fn main(name: &str, run: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `edgeplane status`: one line per role instance.
pub fn print_status(v: &StatusView) {
    println!("node {}  config {}", v.node, v.config.display());
    for l in &v.lb {
        let took = if l.took_over_pins {
            " (took over pinned state)"
        } else {
            ""
        };
        let chain = if l.chain {
            format!(", chaining {} moved slot(s)", l.moved_slots)
        } else {
            ", chaining off".to_string()
        };
        println!(
            "lb on {}: {} gateway(s), key {}, table {}{chain}{took}",
            l.interface, l.gateways, l.key, l.digest
        );
        for d in &l.draining {
            println!("  draining {}: {} s left", d.name, d.seconds_left);
        }
    }
    for g in &v.gateway {
        let took = if g.took_over_pins {
            " (took over pinned state)"
        } else {
            ""
        };
        println!(
            "gateway {} on {:?}: {} group(s), {} session(s), {} relayed flow(s){took}",
            g.address, g.interfaces, g.groups, g.sessions, g.relays
        );
    }
    for r in &v.router {
        let ls = if r.load_sharing { ", load sharing" } else { "" };
        println!(
            "router vrid {} on {}: {} (priority {}, master {}){ls}",
            r.vrid,
            r.interface,
            r.state,
            r.priority,
            r.master.as_deref().unwrap_or("-")
        );
    }
    if let Some(m) = &v.sip_monitor {
        println!(
            "sip-monitor on {}: domain {}, {} dialog(s), {} published to {}",
            m.interfaces.join(","),
            m.domain,
            m.dialogs,
            m.published,
            m.presence
        );
        if let Some(r) = &m.restored {
            println!("  restored: {r}");
        }
    }
    if let Some(p) = &v.presence {
        println!(
            "presence on {}: {} update(s) stored in {}",
            p.listen, p.updates, p.database
        );
    }
    if let Some(m) = &v.migration {
        if let Some(a) = &m.agent {
            println!(
                "migration agent on {}: processes {:?}",
                a.listen, a.processes
            );
        }
        if let Some(c) = &m.controller {
            let services: Vec<String> = c
                .services
                .iter()
                .map(|s| format!("{} → network {}", s.address, s.network))
                .collect();
            println!(
                "connection controller on {} ({} queue(s)): {}; {} frame(s) held",
                c.interface,
                c.queues,
                services.join(", "),
                c.held_frames
            );
        }
        if let Some(c) = &m.coordinator {
            println!(
                "migration coordinator: {} migration(s), running {:?}; store {}",
                c.migrations, c.running, c.database
            );
        }
    }
}

/// `edgeplane stats`: every counter that moved, and the verdicts that
/// matter even at zero.
pub fn print_stats(rows: &[CounterView]) {
    println!(
        "{:<12} {:<13} {:<12} {:<32} {:>14} {:>16}",
        "ROLE", "PROGRAM", "INTERFACE", "COUNTER", "PACKETS/EVENTS", "BYTES"
    );
    let shown = |r: &&CounterView| {
        r.packets > 0
            || (r.source == CounterSource::Xdp
                && matches!(r.name.as_str(), "tx" | "redirect" | "pass"))
    };
    for r in rows.iter().filter(shown) {
        let bytes = if r.source == CounterSource::Xdp {
            r.bytes.to_string()
        } else {
            "-".into()
        };
        println!(
            "{:<12} {:<13} {:<12} {:<32} {:>14} {:>16}",
            r.role, r.program, r.interface, r.name, r.packets, bytes
        );
    }
}

/// `edgeplane gw groups`.
pub fn print_groups(v: &GroupsView) {
    println!("gateway {} ports {}", v.address, v.ports);
    for g in &v.groups {
        let list = |v: &[String]| v.join(", ");
        let services: Vec<String> = g.services.iter().map(ToString::to_string).collect();
        let allow: Vec<String> = g.allow.iter().map(ToString::to_string).collect();
        println!(
            "group {}: services {}; allow {}",
            g.name,
            list(&services),
            list(&allow)
        );
        for s in &g.servers {
            println!(
                "  {:<12} {}:{} weight {} types {:?}",
                s.name, s.address, s.port, s.weight, s.types
            );
        }
    }
}
