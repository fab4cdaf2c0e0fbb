//! Prometheus text exposition (format 0.0.4) of the same counters the CLI
//! shows, on the address in `node.metrics` (off by default).

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use crate::daemon::{counters, Shared, State};

pub fn render(s: &State) -> anyhow::Result<String> {
    let mut out = String::new();
    let node = &s.config.node.name;
    out.push_str("# HELP edgeplane_xdp_packets_total Packets seen by an XDP program, by verdict or reason.\n");
    out.push_str("# TYPE edgeplane_xdp_packets_total counter\n");
    let cs = counters(s)?;
    for c in &cs {
        writeln!(out, "edgeplane_xdp_packets_total{{node=\"{node}\",program=\"{}\",interface=\"{}\",counter=\"{}\"}} {}", c.program, c.interface, c.name, c.packets)?;
    }
    out.push_str("# HELP edgeplane_xdp_bytes_total Bytes seen by an XDP program, by verdict or reason.\n");
    out.push_str("# TYPE edgeplane_xdp_bytes_total counter\n");
    for c in &cs {
        writeln!(out, "edgeplane_xdp_bytes_total{{node=\"{node}\",program=\"{}\",interface=\"{}\",counter=\"{}\"}} {}", c.program, c.interface, c.name, c.bytes)?;
    }
    out.push_str("# HELP edgeplane_lb_table_digest Maglev table digest (top 53 bits, exact in a float); equal on LBs with equal tables.\n");
    out.push_str("# TYPE edgeplane_lb_table_digest gauge\n");
    for l in &s.lbs {
        let d = l.digest()?;
        let v = u64::from_str_radix(&d.digest, 16)? >> 11;
        writeln!(out, "edgeplane_lb_table_digest{{node=\"{node}\",interface=\"{}\",digest=\"{}\"}} {v}", d.interface, d.digest)?;
    }
    out.push_str("# HELP edgeplane_lb_gateway_slots Maglev slots held by each gateway.\n");
    out.push_str("# TYPE edgeplane_lb_gateway_slots gauge\n");
    for l in &s.lbs {
        for g in l.gateways() {
            writeln!(out, "edgeplane_lb_gateway_slots{{node=\"{node}\",interface=\"{}\",gateway=\"{}\"}} {}", l.cfg.interface, g.name, g.slots)?;
        }
    }
    Ok(out)
}

pub async fn serve(listener: tokio::net::TcpListener, state: Shared) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let st = state.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // One request per connection; the request line is all we need.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await;
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
