//! The `[sip_monitor]` section: which interfaces and ports the monitor
//! watches, whose terminals it reports, and when a call counts as
//! talking or over.

use serde::{Deserialize, Serialize};

use crate::field::ConfigError;

/// The SIP monitor (seed 001) on a session control server's interfaces.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SipMonitor {
    pub interfaces: Vec<String>,
    #[serde(default = "default_sip_ports")]
    pub ports: Vec<u16>,
    /// Only terminals of this domain are published (claims 10-11).
    pub domain: String,
    /// The presence server, "ADDR:PORT".
    pub presence: std::net::SocketAddrV4,
    /// "200" or "ack" (claims 12-13).
    #[serde(default = "default_talking_on")]
    pub talking_on: String,
    /// "bye" or "bye_ok" (claims 14-15).
    #[serde(default = "default_terminated_on")]
    pub terminated_on: String,
    /// At most one PUBLISH per terminal per this many ms; later changes
    /// are coalesced.
    #[serde(default = "default_publish_interval")]
    pub publish_interval_ms: u64,
    /// "publish" (RFC 3903) or "register": a REGISTER carrying the same
    /// PIDF body (claim 20).
    #[serde(default = "default_carrier")]
    pub carrier: String,
}

fn default_carrier() -> String {
    "publish".into()
}

fn default_sip_ports() -> Vec<u16> {
    vec![5060]
}

fn default_talking_on() -> String {
    "200".into()
}

fn default_terminated_on() -> String {
    "bye".into()
}

fn default_publish_interval() -> u64 {
    100
}

impl SipMonitor {
    /// Checks of this section, keys relative to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interfaces.is_empty() {
            return Err(ConfigError::new("interfaces", "name at least one interface"));
        }
        if self.ports.is_empty() || self.ports.len() > 16 || self.ports.contains(&0) {
            return Err(ConfigError::new("ports", "1..16 ports, none 0"));
        }
        if self.domain.is_empty() {
            return Err(ConfigError::new("domain", "name the monitored domain"));
        }
        if self.talking_on != "200" && self.talking_on != "ack" {
            return Err(ConfigError::new("talking_on", "\"200\" or \"ack\""));
        }
        if self.carrier != "publish" && self.carrier != "register" {
            return Err(ConfigError::new("carrier", "\"publish\" or \"register\""));
        }
        if self.terminated_on != "bye" && self.terminated_on != "bye_ok" {
            return Err(ConfigError::new("terminated_on", "\"bye\" or \"bye_ok\""));
        }
        Ok(())
    }
}
