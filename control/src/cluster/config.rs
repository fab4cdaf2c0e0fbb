//! `[cluster]`: where the etcd cluster is and how this node takes part.
//!
//! ```toml
//! [cluster]
//! endpoints = ["http://10.1.0.201:2379", "http://10.1.0.202:2379"]
//! prefix = "/edgeplane"     # every key lives under it
//! lease_ttl = 5             # seconds; a dead member's keys go after it
//!
//! [cluster.gateway]         # this node's gateway registers itself
//! address = "10.1.0.11"     # where the LBs reach it
//! interface = "core"        # its MAC is read from here (or `mac = ...`)
//! weight = 1
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::field::{validate_ifname, ConfigError, MacAddr};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// etcd v3 client URLs, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds a member's lease lives without a keep-alive.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: u64,
    /// Milliseconds to connect or to wait for one request.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// TLS toward etcd (`https://` endpoints).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// etcd authentication: the user, and a file holding the password.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// This node's gateway, registered under its lease.
    #[serde(default)]
    pub gateway: Option<Registration>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// CA certificate (PEM) the server's certificate is checked against.
    pub ca: PathBuf,
    /// Client certificate and key (PEM), for mutual TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the
    /// endpoint's host).
    #[serde(default)]
    pub domain: Option<String>,
}

/// How this node's gateway appears to the LBs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Its name in every LB's table (default: the node's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Its address on the network the LBs forward over (IPv4 or IPv6).
    pub address: std::net::IpAddr,
    /// Its MAC there; read from `interface` when absent.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub interface: Option<String>,
    /// The weight it registers with (an operator's change in etcd wins
    /// over it once made).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

pub const DEFAULT_PREFIX: &str = "/edgeplane";
pub const DEFAULT_LEASE_TTL: u64 = 5;
/// etcd refuses shorter leases than its election timeout allows; 2 s is
/// the least that works with its defaults.
pub const MIN_LEASE_TTL: u64 = 2;
pub const MAX_LEASE_TTL: u64 = 300;

fn default_prefix() -> String {
    DEFAULT_PREFIX.into()
}
fn default_lease_ttl() -> u64 {
    DEFAULT_LEASE_TTL
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_weight() -> u32 {
    1
}

impl Cluster {
    /// A section for the CLI built from flags instead of a file.
    pub fn from_endpoints(endpoints: Vec<String>, prefix: Option<String>) -> Self {
        Self {
            endpoints,
            prefix: prefix.unwrap_or_else(default_prefix),
            lease_ttl: DEFAULT_LEASE_TTL,
            timeout_ms: default_timeout_ms(),
            tls: None,
            user: None,
            password_file: None,
            gateway: None,
        }
    }

    /// Checks of the section, keys relative to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::new(
                "endpoints",
                "name at least one etcd endpoint",
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            validate_endpoint(e).map_err(|r| ConfigError::new(format!("endpoints[{i}]"), r))?;
            if e.starts_with("https://") && self.tls.is_none() {
                return Err(ConfigError::new(
                    format!("endpoints[{i}]"),
                    "an https endpoint needs [cluster.tls] (ca = ...)",
                ));
            }
        }
        if !self.prefix.starts_with('/')
            || self.prefix.len() < 2
            || self.prefix.ends_with('/')
            || self.prefix.contains("//")
            || self
                .prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::new(
                "prefix",
                format!(
                    "{:?}: an absolute key path without a trailing '/' (default {DEFAULT_PREFIX:?})",
                    self.prefix
                ),
            ));
        }
        if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&self.lease_ttl) {
            return Err(ConfigError::new(
                "lease_ttl",
                format!(
                    "{} s must be {MIN_LEASE_TTL}..={MAX_LEASE_TTL} (default {DEFAULT_LEASE_TTL})",
                    self.lease_ttl
                ),
            ));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::new(
                "timeout_ms",
                format!("{} must be 100..=60000", self.timeout_ms),
            ));
        }
        if let Some(t) = &self.tls {
            if t.cert.is_some() != t.key.is_some() {
                return Err(ConfigError::new(
                    "tls",
                    "cert and key go together (mutual TLS) or not at all",
                ));
            }
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Err(ConfigError::new(
                if self.user.is_some() {
                    "password_file"
                } else {
                    "user"
                },
                "user and password_file go together",
            ));
        }
        if let Some(g) = &self.gateway {
            g.validate().map_err(|e| e.under("gateway"))?;
        }
        Ok(())
    }
}

fn validate_endpoint(e: &str) -> Result<(), String> {
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .ok_or_else(|| format!("{e:?}: use http://HOST:PORT or https://HOST:PORT"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{e:?}: the port is missing"))?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("{e:?}: the host is missing or has a path"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{e:?}: {port:?} is not a port")),
    }
}

impl Registration {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = &self.name {
            crate::lb::config::validate_gateway_name(n).map_err(|r| ConfigError::new("name", r))?;
        }
        match (&self.mac, &self.interface) {
            (None, None) => {
                return Err(ConfigError::new(
                    "mac",
                    "give the MAC the LBs send to, or the interface to read it from",
                ))
            }
            (_, Some(i)) => validate_ifname(i).map_err(|r| ConfigError::new("interface", r))?,
            _ => {}
        }
        if self.weight > crate::lb::config::MAX_WEIGHT {
            return Err(ConfigError::new(
                "weight",
                format!(
                    "{} is above the maximum {}",
                    self.weight,
                    crate::lb::config::MAX_WEIGHT
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cluster, ConfigError> {
        let c: Cluster = toml::from_str(s).map_err(|e| ConfigError::new("?", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_and_a_registration() {
        let c = parse(
            "endpoints = [\"http://127.0.0.1:2379\"]\n[gateway]\naddress = \"10.1.0.11\"\ninterface = \"core\"\n",
        )
        .unwrap();
        assert_eq!(c.prefix, "/edgeplane");
        assert_eq!(c.lease_ttl, 5);
        assert_eq!(c.gateway.unwrap().weight, 1);
    }

    #[test]
    fn each_bad_key_is_named() {
        let bad = [
            ("endpoints = []", "endpoints"),
            ("endpoints = [\"127.0.0.1:2379\"]", "endpoints[0]"),
            ("endpoints = [\"http://h:0\"]", "endpoints[0]"),
            ("endpoints = [\"https://h:2379\"]", "endpoints[0]"),
            ("endpoints = [\"http://h:2379\"]\nprefix = \"edge\"", "prefix"),
            ("endpoints = [\"http://h:2379\"]\nprefix = \"/edge/\"", "prefix"),
            ("endpoints = [\"http://h:2379\"]\nlease_ttl = 1", "lease_ttl"),
            ("endpoints = [\"http://h:2379\"]\nuser = \"root\"", "password_file"),
            (
                "endpoints = [\"http://h:2379\"]\n[gateway]\naddress = \"10.1.0.11\"",
                "gateway.mac",
            ),
            (
                "endpoints = [\"http://h:2379\"]\n[gateway]\naddress = \"10.1.0.11\"\nmac = \"02:00:00:00:00:01\"\nweight = 5000",
                "gateway.weight",
            ),
            (
                "endpoints = [\"http://h:2379\"]\n[gateway]\nname = \"a b\"\naddress = \"10.1.0.11\"\nmac = \"02:00:00:00:00:01\"",
                "gateway.name",
            ),
        ];
        for (text, key) in bad {
            let e = parse(text).expect_err(text);
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}
