//! The `[[lb]]` sections: one ingress interface each, with the backends
//! (`[[lb.gateway]]`) its Maglev table spreads flows over.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::maglev::{is_prime, DEFAULT_TABLE_SIZE};
use crate::field::{text_enum, validate_ifname, ConfigError, InterfaceClaims, MacAddr};
use dataplane_common::lb::{GATEWAYS_MAX, GW_NAME_LEN, MAGLEV_MAX};

/// One `lb` instance: the ingress interface and its backends.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lb {
    pub interface: String,
    #[serde(default)]
    pub seed: u32,
    #[serde(default = "default_table_size")]
    pub table_size: u32,
    /// What a packet without a TEID is keyed by.
    #[serde(default)]
    pub key: LbKey,
    /// Daisy chaining (seed 002 claim 20): a packet of a slot that moved
    /// to another gateway carries the previous owner to the new one, which
    /// hands it back while the session lives there. Needs edgeplane
    /// gateways behind the LB (they read the chain header) and a core MTU
    /// 22 bytes larger; `false` sends every packet as is.
    #[serde(default = "default_chain")]
    pub chain: bool,
    /// Seconds a drained gateway keeps its entry and TEID prefix (its
    /// GTP-U sessions still reach it) before it leaves the fast path.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: u64,
    /// Egress toward gateways that come from the cluster (`[cluster]`;
    /// default: the ingress interface, XDP_TX).
    #[serde(default)]
    pub gateway_via: Option<String>,
    /// `[[lb.gateway]]` in the file: the backends are the system's
    /// gateways (with `[cluster]`, etcd holds them instead).
    #[serde(default, rename = "gateway")]
    pub gateways: Vec<Backend>,
}

fn default_chain() -> bool {
    true
}

fn default_table_size() -> u32 {
    DEFAULT_TABLE_SIZE
}

pub const DEFAULT_DRAIN_TIMEOUT: u64 = 300;
/// A day: a drain longer than that is a forgotten one.
pub const MAX_DRAIN_TIMEOUT: u64 = 86_400;

fn default_drain_timeout() -> u64 {
    DEFAULT_DRAIN_TIMEOUT
}

text_enum! {
    /// The key of a packet that carries no TEID (seed 002 claim 4).
    #[derive(Default)]
    pub enum LbKey {
        /// The source address only: every user session of a terminal, and
        /// a change of representative address, stay on one gateway.
        #[default]
        Terminal = "terminal",
        /// The 5-tuple: each user session on its own.
        Flow = "flow",
    }
}

/// A backend of the load balancer: a gateway flows are forwarded to.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub name: String,
    /// The gateway's address (IPv4 or IPv6; the LB forwards by MAC).
    pub address: IpAddr,
    /// The gateway's MAC, `xx:xx:xx:xx:xx:xx`.
    pub mac: MacAddr,
    /// Egress interface; defaults to the ingress interface (XDP_TX).
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// The top 8 bits of every TEID the gateway allocates: G-PDUs with
    /// this prefix go to it whatever the Maglev table says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teid_prefix: Option<u32>,
}

fn default_weight() -> u32 {
    1
}

pub const MAX_WEIGHT: u32 = 1000;
/// TEID prefixes are the top 8 bits.
pub const MAX_TEID_PREFIX: u32 = 255;

impl Lb {
    /// Checks of this section, keys relative to it; its interface is
    /// claimed in `interfaces`.
    pub fn validate(&self, interfaces: &mut InterfaceClaims) -> Result<(), ConfigError> {
        validate_ifname(&self.interface).map_err(|r| ConfigError::new("interface", r))?;
        interfaces
            .claim(&self.interface)
            .map_err(|r| ConfigError::new("interface", r))?;
        if !is_prime(self.table_size) || self.table_size > MAGLEV_MAX {
            return Err(ConfigError::new(
                "table_size",
                format!(
                    "{} must be a prime no larger than {MAGLEV_MAX} (default {DEFAULT_TABLE_SIZE})",
                    self.table_size
                ),
            ));
        }
        if let Some(v) = &self.gateway_via {
            validate_ifname(v).map_err(|r| ConfigError::new("gateway_via", r))?;
        }
        if self.drain_timeout == 0 || self.drain_timeout > MAX_DRAIN_TIMEOUT {
            return Err(ConfigError::new(
                "drain_timeout",
                format!(
                    "{} s must be 1..={MAX_DRAIN_TIMEOUT} (default {DEFAULT_DRAIN_TIMEOUT})",
                    self.drain_timeout
                ),
            ));
        }
        if self.gateways.len() > GATEWAYS_MAX as usize
            || self.table_size as usize <= self.gateways.len()
        {
            return Err(ConfigError::new(
                "gateway",
                format!(
                    "{} gateways: at most {GATEWAYS_MAX}, and fewer than table_size",
                    self.gateways.len()
                ),
            ));
        }
        for (j, gw) in self.gateways.iter().enumerate() {
            let gk = format!("gateway[{j}]");
            gw.validate()
                .map_err(|(field, r)| ConfigError::new(format!("{gk}.{field}"), r))?;
            if self.gateways[..j]
                .iter()
                .any(|earlier| earlier.name == gw.name)
            {
                return Err(ConfigError::new(
                    format!("{gk}.name"),
                    format!("{:?} is used twice", gw.name),
                ));
            }
            if let Some(p) = gw.teid_prefix {
                if let Some(other) = self.gateways[..j]
                    .iter()
                    .find(|earlier| earlier.teid_prefix == Some(p))
                {
                    return Err(ConfigError::new(
                        format!("{gk}.teid_prefix"),
                        format!("{p} is already {:?}'s", other.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A gateway's name as every LB's table holds it (also an etcd key
/// segment).
pub fn validate_gateway_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() >= GW_NAME_LEN {
        return Err(format!("must be 1..{} bytes", GW_NAME_LEN - 1));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("{name:?}: use letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}

impl Backend {
    /// The validated prefix as the fast path takes it.
    pub fn prefix(&self) -> Option<u8> {
        self.teid_prefix.and_then(|p| u8::try_from(p).ok())
    }

    /// Field-level checks; returns the field name and reason.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        validate_gateway_name(&self.name).map_err(|r| ("name", r))?;
        if let Some(v) = &self.via {
            validate_ifname(v).map_err(|r| ("via", r))?;
        }
        if let Some(p) = self.teid_prefix {
            if p > MAX_TEID_PREFIX {
                return Err((
                    "teid_prefix",
                    format!("{p} is above {MAX_TEID_PREFIX} (the top 8 bits of a TEID)"),
                ));
            }
        }
        if self.weight > MAX_WEIGHT {
            return Err((
                "weight",
                format!("{} is above the maximum {MAX_WEIGHT}", self.weight),
            ));
        }
        Ok(())
    }
}
