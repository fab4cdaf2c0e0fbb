//! `edgeplane top`: a live view of one daemon, redrawn every interval:
//! each role's state (sessions, gateways, buckets, dialogs, held frames)
//! and every counter that moved, as a rate, busiest first, with the
//! refusals (drops, malformed, full, bad) marked. Built on the same API
//! requests as `status` and `stats`; `--once` prints one view and exits
//! (for scripts, and a terminal that is not one).

use std::{collections::HashMap, fmt::Write as _, path::Path, time::Instant};

use control::api::{CounterView, Request, StatusView};

use crate::client;

/// Counter names that mean something was refused or lost.
fn is_refusal(name: &str) -> bool {
    const MARKS: &[&str] = &[
        "drop",
        "malformed",
        "bad_",
        "full",
        "overflow",
        "too_long",
        "exhausted",
        "refused",
        "failed",
        "invalid",
        "timeout",
        "expired",
        "lost",
        "replayed",
        "unauth",
    ];
    MARKS.iter().any(|m| name.contains(m))
}

/// One view: the status, then the counters' rates since `before` (taken
/// `secs` ago), at most `rows` of them.
pub fn render(
    status: &StatusView,
    now: &[CounterView],
    before: Option<&[CounterView]>,
    secs: f64,
    rows: usize,
) -> String {
    let mut out = String::new();
    let mut roles = Vec::new();
    if !status.lb.is_empty() {
        roles.push("lb");
    }
    if !status.gateway.is_empty() {
        roles.push("gateway");
    }
    if !status.router.is_empty() {
        roles.push("router");
    }
    if status.sip_monitor.is_some() {
        roles.push("sip-monitor");
    }
    if status.presence.is_some() {
        roles.push("presence");
    }
    if status.migration.is_some() {
        roles.push("migration");
    }
    let _ = writeln!(
        out,
        "edgeplane top — node {} — {}",
        status.node,
        roles.join(", ")
    );
    for l in &status.lb {
        let _ = writeln!(out, "  lb {}: {} gateways", l.interface, l.gateways);
    }
    for g in &status.gateway {
        let _ = writeln!(
            out,
            "  gateway {} on {}: {} sessions, {} relayed",
            g.address,
            g.interfaces.join(","),
            g.sessions,
            g.relays
        );
    }
    for r in &status.router {
        let _ = writeln!(
            out,
            "  router {} vrid {}: {}{}",
            r.interface,
            r.vrid,
            r.state,
            if r.load_sharing {
                " (load sharing)"
            } else {
                ""
            }
        );
    }
    if let Some(m) = &status.sip_monitor {
        let _ = writeln!(
            out,
            "  sip-monitor: {} dialogs, {} published",
            m.dialogs, m.published
        );
    }
    if let Some(p) = &status.presence {
        let _ = writeln!(out, "  presence {}: {} stored", p.listen, p.updates);
    }
    if let Some(c) = status
        .migration
        .as_ref()
        .and_then(|m| m.controller.as_ref())
    {
        let _ = writeln!(
            out,
            "  migration controller {}: {} services steered, {} frames held",
            c.interface,
            c.services.len(),
            c.held_frames
        );
    }
    if let Some(c) = &status.cluster {
        let _ = writeln!(
            out,
            "  etcd: {} (revision {})",
            if c.connected {
                "connected"
            } else {
                "NOT connected"
            },
            c.revision
        );
    }
    let key = |c: &CounterView| {
        (
            c.role.clone(),
            c.program.clone(),
            c.interface.clone(),
            c.name.clone(),
        )
    };
    let old: HashMap<_, u64> = before
        .unwrap_or_default()
        .iter()
        .map(|c| (key(c), c.packets))
        .collect();
    let mut moved: Vec<(f64, &CounterView)> = now
        .iter()
        .filter_map(|c| {
            let was = *old.get(&key(c))?;
            let d = c.packets.saturating_sub(was);
            (d > 0).then(|| (d as f64 / secs.max(1e-3), c))
        })
        .collect();
    moved.sort_by(|a, b| b.0.total_cmp(&a.0));
    let _ = writeln!(out);
    if before.is_none() {
        let _ = writeln!(out, "  (rates from the next refresh)");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:>12}  {:<12} {:<12} {:<12} counter",
        "per second", "role", "part", "interface"
    );
    if moved.is_empty() {
        let _ = writeln!(out, "  (no counter moved)");
    }
    for (rate, c) in moved.iter().take(rows) {
        let _ = writeln!(
            out,
            "  {rate:>12.1}  {:<12} {:<12} {:<12} {}{}",
            c.role,
            c.program,
            c.interface,
            c.name,
            if is_refusal(&c.name) { "  !" } else { "" }
        );
    }
    if moved.len() > rows {
        let _ = writeln!(out, "  … {} more", moved.len() - rows);
    }
    out
}

/// Draw every `interval` until interrupted, or once (`once`: two reads
/// `interval` apart, so the rates are there).
pub fn run(
    socket: &Path,
    interval: std::time::Duration,
    once: bool,
    rows: usize,
) -> anyhow::Result<()> {
    let read = || -> anyhow::Result<(StatusView, Vec<CounterView>, Instant)> {
        let s = serde_json::from_value(client::call(socket, &Request::Status)?)?;
        let c = serde_json::from_value(client::call(socket, &Request::Stats)?)?;
        Ok((s, c, Instant::now()))
    };
    let mut last = read()?;
    if !once {
        print!("\x1b[2J\x1b[H{}", render(&last.0, &last.1, None, 1.0, rows));
    }
    loop {
        std::thread::sleep(interval);
        let next = read()?;
        let secs = next.2.duration_since(last.2).as_secs_f64();
        let view = render(&next.0, &next.1, Some(&last.1), secs, rows);
        if once {
            print!("{view}");
            return Ok(());
        }
        // Clear and redraw from the top left.
        print!("\x1b[2J\x1b[H{view}");
        use std::io::Write as _;
        std::io::stdout().flush().ok();
        last = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::api::{CounterSource, GatewayStatus};

    fn c(name: &str, packets: u64) -> CounterView {
        CounterView {
            role: "gateway".into(),
            program: "gateway".into(),
            interface: "eth0".into(),
            name: name.into(),
            packets,
            bytes: 0,
            source: CounterSource::Xdp,
        }
    }

    #[test]
    fn rates_are_deltas_busiest_first_with_refusals_marked() {
        let status = StatusView {
            node: "gw-1".into(),
            gateway: vec![GatewayStatus {
                interfaces: vec!["eth0".into()],
                address: "10.0.0.1".parse().unwrap(),
                groups: 1,
                sessions: 42,
                relays: 0,
                accounting: None,
                took_over_pins: false,
            }],
            ..Default::default()
        };
        let before = [c("tx", 100), c("pool_exhausted", 5), c("pass", 7)];
        let now = [c("tx", 2100), c("pool_exhausted", 25), c("pass", 7)];
        let v = render(&status, &now, Some(&before), 2.0, 10);
        assert!(v.contains("node gw-1 — gateway"), "{v}");
        assert!(v.contains("42 sessions"), "{v}");
        let lines: Vec<&str> = v.lines().collect();
        let at = |what: &str| lines.iter().position(|l| l.contains(what)).unwrap();
        assert!(lines[at(" tx")].trim_start().starts_with("1000.0"), "{v}");
        assert!(
            lines[at("pool_exhausted")].trim_start().starts_with("10.0"),
            "{v}"
        );
        assert!(at(" tx") < at("pool_exhausted"), "busiest first: {v}");
        assert!(
            v.lines()
                .any(|l| l.contains("pool_exhausted") && l.ends_with('!')),
            "{v}"
        );
        assert!(
            !v.contains(" pass"),
            "a counter that did not move is not shown: {v}"
        );
        let first = render(&status, &now, None, 1.0, 10);
        assert!(first.contains("rates from the next refresh"));
        let few = render(&status, &now, Some(&before), 2.0, 1);
        assert!(few.contains("… 1 more"), "{few}");
    }
}
