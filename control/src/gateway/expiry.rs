//! When a session ends, and why.

use serde::{Deserialize, Serialize};

use super::config::Timeouts;

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    IdleTimeout,
    TcpClosed,
    Flushed,
    /// The PFCP session (GTP-U tunnel) the user session belonged to was
    /// deleted.
    TunnelDeleted,
}

/// Expiry decision for one session (times in ns of CLOCK_MONOTONIC).
pub fn expiry(
    proto: u8,
    flags: u32,
    last_seen_ns: u64,
    now_ns: u64,
    t: &Timeouts,
) -> Option<EndReason> {
    let idle = now_ns.saturating_sub(last_seen_ns) / 1_000_000_000;
    let closing =
        flags & (dataplane_common::gateway::SF_FIN | dataplane_common::gateway::SF_RST) != 0;
    match proto {
        6 if closing && idle >= t.tcp_closing => Some(EndReason::TcpClosed),
        6 if idle >= t.tcp => Some(EndReason::IdleTimeout),
        6 => None,
        _ if idle >= t.udp => Some(EndReason::IdleTimeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rules() {
        let t = Timeouts {
            udp: 30,
            tcp: 300,
            tcp_closing: 10,
        };
        let s = 1_000_000_000u64;
        assert_eq!(expiry(17, 0, 0, 29 * s, &t), None);
        assert_eq!(expiry(17, 0, 0, 30 * s, &t), Some(EndReason::IdleTimeout));
        assert_eq!(expiry(6, 0, 0, 100 * s, &t), None);
        assert_eq!(
            expiry(6, dataplane_common::gateway::SF_FIN, 0, 10 * s, &t),
            Some(EndReason::TcpClosed)
        );
        assert_eq!(expiry(6, 0, 0, 300 * s, &t), Some(EndReason::IdleTimeout));
        assert_eq!(
            expiry(17, 0, 50 * s, 10 * s, &t),
            None,
            "clock before last_seen"
        );
    }
}
