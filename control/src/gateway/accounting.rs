//! The accounting records the gateway writes (claim 6).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::expiry::EndReason;

/// One accounting record (claim 6), written as a JSON line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountingRecord {
    /// "start", "interim" or "end".
    pub event: String,
    /// The gateway address the session is translated to (its IPv6
    /// address for an IPv6 session).
    pub gateway: IpAddr,
    /// The PFCP session (this gateway's SEID) and its uplink TEID, for a
    /// user session that came through a GTP-U tunnel (claim 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teid: Option<u32>,
    /// The user session's port (claim 13).
    pub port: u16,
    pub terminal: String,
    pub representative: String,
    pub proto: String,
    pub group: String,
    pub server: String,
    pub session_type: u8,
    /// Unix time, seconds with fraction.
    pub start: f64,
    pub time: f64,
    pub packets_up: u64,
    pub bytes_up: u64,
    pub packets_down: u64,
    pub bytes_down: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
}
