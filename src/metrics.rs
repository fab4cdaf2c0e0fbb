//! Prometheus text exposition (format 0.0.4) of the same counters the CLI
//! shows, on the address in `node.metrics` (off by default).

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use control::api::CounterSource;

use crate::daemon::{counters, Shared, State};

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
    if let Some(c) = &s.cluster {
        cluster(node, c, &mut out)?;
    }
    Ok(out)
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
