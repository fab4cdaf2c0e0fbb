//! Prometheus text exposition (format 0.0.4) of the same counters the CLI
//! shows, on the address in `node.metrics` (off by default).

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use control::api::CounterSource;

use crate::daemon::{counters, status, Shared, State};

/// Every role's counters (XDP programs' as packets and bytes, the daemon
/// parts' as events), then each role's own gauges.
pub fn render(s: &State) -> anyhow::Result<String> {
    let mut out = String::new();
    let node = &s.config.node.name;
    let cs = counters(s)?;
    let (xdp, daemon): (Vec<_>, Vec<_>) = cs.iter().partition(|c| c.source == CounterSource::Xdp);
    out.push_str("# HELP edgeplane_xdp_packets_total Packets seen by an XDP program, by verdict or reason.\n");
    out.push_str("# TYPE edgeplane_xdp_packets_total counter\n");
    for c in &xdp {
        writeln!(out, "edgeplane_xdp_packets_total{{node=\"{node}\",role=\"{}\",program=\"{}\",interface=\"{}\",counter=\"{}\"}} {}", c.role, c.program, c.interface, c.name, c.packets)?;
    }
    out.push_str(
        "# HELP edgeplane_xdp_bytes_total Bytes seen by an XDP program, by verdict or reason.\n",
    );
    out.push_str("# TYPE edgeplane_xdp_bytes_total counter\n");
    for c in &xdp {
        writeln!(out, "edgeplane_xdp_bytes_total{{node=\"{node}\",role=\"{}\",program=\"{}\",interface=\"{}\",counter=\"{}\"}} {}", c.role, c.program, c.interface, c.name, c.bytes)?;
    }
    out.push_str("# HELP edgeplane_role_events_total Events a role's daemon part counted (adverts, discards, parse errors, updates, migration steps), by name.\n");
    out.push_str("# TYPE edgeplane_role_events_total counter\n");
    for c in &daemon {
        writeln!(out, "edgeplane_role_events_total{{node=\"{node}\",role=\"{}\",part=\"{}\",interface=\"{}\",counter=\"{}\"}} {}", c.role, c.program, c.interface, c.name, c.packets)?;
    }
    for r in &s.roles {
        r.metrics(node, &mut out)?;
    }
    gauges(node, &status(s), &mut out)?;
    if let Some(c) = &s.cluster {
        cluster(node, c, &mut out)?;
    }
    Ok(out)
}

/// One metric's HELP and TYPE, then its samples (labels, value).
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) -> std::fmt::Result {
    if samples.is_empty() {
        return Ok(());
    }
    writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}")?;
    for (labels, v) in samples {
        writeln!(out, "{name}{{{labels}}} {v}")?;
    }
    Ok(())
}

/// Each role's state as gauges (what `edgeplane status` shows): sessions,
/// gateways, dialogs, held frames; and the daemon's own `edgeplane_up`.
fn gauges(node: &str, v: &control::api::StatusView, out: &mut String) -> std::fmt::Result {
    let n = |extra: String| {
        if extra.is_empty() {
            format!("node=\"{node}\"")
        } else {
            format!("node=\"{node}\",{extra}")
        }
    };
    family(
        out,
        "edgeplane_up",
        "gauge",
        "1 while the daemon serves; its version as a label.",
        &[(n(format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), 1.0)],
    )?;
    family(
        out,
        "edgeplane_lb_gateways",
        "gauge",
        "Gateways in an LB instance's Maglev table.",
        &v.lb
            .iter()
            .map(|l| {
                (
                    n(format!("interface=\"{}\"", l.interface)),
                    l.gateways as f64,
                )
            })
            .collect::<Vec<_>>(),
    )?;
    let gw = |g: &control::api::GatewayStatus| {
        n(format!(
            "interface=\"{}\",address=\"{}\"",
            g.interfaces.join(","),
            g.address
        ))
    };
    family(
        out,
        "edgeplane_gateway_sessions",
        "gauge",
        "User sessions a gateway holds (NAT flows, each with its source port).",
        &v.gateway
            .iter()
            .map(|g| (gw(g), g.sessions as f64))
            .collect::<Vec<_>>(),
    )?;
    family(
        out,
        "edgeplane_gateway_relays",
        "gauge",
        "Sessions a gateway relays to the gateway that owns them (daisy chaining).",
        &v.gateway
            .iter()
            .map(|g| (gw(g), g.relays as f64))
            .collect::<Vec<_>>(),
    )?;
    if let Some(m) = &v.sip_monitor {
        family(
            out,
            "edgeplane_sip_monitor_dialogs",
            "gauge",
            "SIP dialogs the monitor tracks.",
            &[(n(String::new()), m.dialogs as f64)],
        )?;
        family(
            out,
            "edgeplane_sip_monitor_published_total",
            "counter",
            "Requests the monitor sent to the presence server (PUBLISH or status REGISTER).",
            &[(n(String::new()), m.published as f64)],
        )?;
    }
    if let Some(p) = &v.presence {
        family(
            out,
            "edgeplane_presence_updates_total",
            "counter",
            "Statuses the presence server stored.",
            &[(n(format!("listen=\"{}\"", p.listen)), p.updates as f64)],
        )?;
    }
    if let Some(c) = v.migration.as_ref().and_then(|m| m.controller.as_ref()) {
        let at = n(format!("interface=\"{}\"", c.interface));
        family(
            out,
            "edgeplane_migration_held_frames",
            "gauge",
            "Frames the migration controller holds for services being moved.",
            &[(at.clone(), c.held_frames as f64)],
        )?;
        family(
            out,
            "edgeplane_migration_steered_services",
            "gauge",
            "Service addresses the migration controller steers.",
            &[(at.clone(), c.services.len() as f64)],
        )?;
        if let Some(us) = c.last_switch_us {
            family(
                out,
                "edgeplane_migration_last_switch_seconds",
                "gauge",
                "How long the last switch of a service to its new network took (seconds).",
                &[(at, us as f64 / 1e6)],
            )?;
        }
    }
    Ok(())
}

/// The link to etcd: up or not, the revision applied, how often it was lost.
fn cluster(node: &str, c: &control::api::ClusterView, out: &mut String) -> std::fmt::Result {
    let rows: [(&str, &str, &str, f64); 4] = [
        (
            "edgeplane_cluster_connected",
            "gauge",
            "1 while etcd answers this daemon; the tables stay as they are while it does not.",
            u8::from(c.connected).into(),
        ),
        (
            "edgeplane_cluster_revision",
            "gauge",
            "etcd revision of the gateway set the LB tables were built from.",
            c.revision as f64,
        ),
        (
            "edgeplane_cluster_sets_applied_total",
            "counter",
            "Gateway sets from etcd run into the LB tables.",
            c.sets_applied as f64,
        ),
        (
            "edgeplane_cluster_disconnects_total",
            "counter",
            "Times etcd was lost.",
            c.disconnects as f64,
        ),
    ];
    for (name, kind, help, v) in rows {
        writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {v}"
        )?;
    }
    Ok(())
}

pub async fn serve(listener: tokio::net::TcpListener, state: Shared) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let st = state.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // One request per connection; the request line is all we need.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await;
            let body = tokio::task::spawn_blocking(move || render(&st.lock().unwrap()))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            let resp = match body {
                Ok(b) => format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len()),
                Err(e) => {
                    warn!(error = %e, "metrics render failed");
                    let b = format!("{e}\n");
                    format!("HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len())
                }
            };
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Metric families named in `text`: `edgeplane_` and what follows, up
    /// to the first character that cannot be in a name.
    fn names(text: &str) -> BTreeSet<String> {
        text.match_indices("edgeplane_")
            .map(|(i, _)| {
                text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .collect()
    }

    /// The dashboard in docs/grafana is built on what the daemon exports:
    /// every metric its queries name is one a role or the daemon writes,
    /// and every family written has a panel.
    #[test]
    fn the_grafana_dashboard_queries_exactly_the_exported_metrics() {
        let exported: BTreeSet<String> = [
            include_str!("metrics.rs"),
            include_str!("lb/role.rs"),
            include_str!("router/role.rs"),
        ]
        .iter()
        .flat_map(|src| {
            // Names as exported: those given a HELP line, and those
            // `family` and `cluster` write (a string literal).
            src.lines()
                .filter(|l| {
                    l.contains("# HELP edgeplane_") || l.trim_start().starts_with("\"edgeplane_")
                })
                .flat_map(names)
                .collect::<Vec<_>>()
        })
        .filter(|n| n != "edgeplane_")
        .collect();
        assert!(exported.len() >= 20, "{exported:?}");
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../docs/grafana/edgeplane.json")).unwrap();
        let mut queried = BTreeSet::new();
        for p in dash["panels"].as_array().unwrap() {
            assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
            for t in p["targets"].as_array().unwrap() {
                queried.extend(names(t["expr"].as_str().unwrap()));
            }
        }
        let unknown: Vec<_> = queried.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "the dashboard queries what nothing exports: {unknown:?}"
        );
        let unshown: Vec<_> = exported.difference(&queried).collect();
        assert!(unshown.is_empty(), "exported but on no panel: {unshown:?}");
    }
}
