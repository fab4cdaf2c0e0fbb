//! The `[[gateway]]` section: the gateway's interfaces and address, its
//! source port pool, timeouts, accounting, session type rules and the
//! server groups behind representative addresses.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::service::ServiceAddr;
use crate::field::{validate_ifname, ConfigError, InterfaceClaims, Ipv4Prefix, MacAddr, PortRange, Protocol};
use dataplane_common::gateway::{GROUPS_MAX, SERVERS_MAX, TYPES_MAX, TYPE_RULES_MAX};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Interfaces the gateway program runs on; maps are pinned under the
    /// first. Terminal traffic and server traffic may share one.
    pub interfaces: Vec<String>,
    /// The gateway's own address: the source of translated packets and
    /// where servers reply.
    pub address: Ipv4Addr,
    /// Source port pool, "MIN-MAX", above the well-known ports.
    #[serde(default = "default_ports")]
    pub ports: PortRange,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub accounting: Accounting,
    #[serde(default, rename = "session_type")]
    pub session_types: Vec<SessionType>,
    #[serde(default, rename = "group")]
    pub groups: Vec<Group>,
}

fn default_ports() -> PortRange {
    PortRange { first: 20000, last: 59999 }
}

/// The pool stays above the well-known ports.
const PORTS_MIN: u16 = 1024;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Idle seconds before a UDP session ends.
    pub udp: u64,
    /// Idle seconds before an open TCP session ends.
    pub tcp: u64,
    /// Idle seconds after a FIN or RST.
    pub tcp_closing: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            udp: 60,
            tcp: 7440,
            tcp_closing: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Accounting {
    /// JSON-lines file; no records when absent.
    pub file: Option<std::path::PathBuf>,
    /// Seconds between interim records of a long session (0 = none).
    pub interim: u64,
    /// Rotate when the file passes this many bytes; keep this many old files.
    pub rotate_bytes: u64,
    pub keep: u32,
}

impl Default for Accounting {
    fn default() -> Self {
        Self {
            file: None,
            interim: 300,
            rotate_bytes: 64 << 20,
            keep: 5,
        }
    }
}

/// A session type rule (claim 9); first match wins, no match is type 0.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionType {
    pub name: String,
    /// 1..=7 (0 is the default type).
    pub id: u8,
    #[serde(default)]
    pub proto: Option<Protocol>,
    #[serde(default)]
    pub dscp: Option<u8>,
    /// Terminal prefix, "A.B.C.D/LEN".
    #[serde(default)]
    pub terminals: Option<Ipv4Prefix>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Representative addresses, "ADDR:PORT/PROTO" (claim 3).
    pub services: Vec<ServiceAddr>,
    /// Terminal prefixes allowed to use the group (claim 5); everyone when
    /// absent.
    #[serde(default)]
    pub allow: Option<Vec<Ipv4Prefix>>,
    #[serde(rename = "server")]
    pub servers: Vec<ServerCfg>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerCfg {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    #[serde(default = "one")]
    pub weight: u32,
    /// Egress interface (default: the gateway's last interface).
    #[serde(default)]
    pub via: Option<String>,
    /// Next hop for a server outside the system (claim 6); the server
    /// itself when absent.
    #[serde(default)]
    pub next_hop: Option<Ipv4Addr>,
    /// Next hop MAC; resolved by ARP when absent.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Session types this server takes (default: all).
    #[serde(default)]
    pub types: Option<Vec<u8>>,
}

fn one() -> u32 {
    1
}

impl Gateway {
    /// Field checks; returns (dotted key relative to this section, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, r: String| Err((k.to_string(), r));
        if self.interfaces.is_empty() {
            return e("interfaces", "name at least one interface".into());
        }
        if self.ports.first < PORTS_MIN {
            return e(
                "ports",
                format!(
                    "{:?}: expected MIN-MAX with {PORTS_MIN} <= MIN <= MAX <= 65535",
                    self.ports.to_string()
                ),
            );
        }
        if self.timeouts.udp == 0 || self.timeouts.tcp == 0 || self.timeouts.tcp_closing == 0 {
            return e("timeouts", "timeouts must be at least 1 second".into());
        }
        if self.accounting.keep == 0 || self.accounting.rotate_bytes < 4096 {
            return e("accounting", "keep >= 1 and rotate_bytes >= 4096".into());
        }
        if self.session_types.len() > TYPE_RULES_MAX as usize {
            return e("session_type", format!("at most {TYPE_RULES_MAX} rules"));
        }
        for (i, t) in self.session_types.iter().enumerate() {
            let k = format!("session_type[{i}]");
            if t.id == 0 || t.id as u32 >= TYPES_MAX {
                return e(
                    &format!("{k}.id"),
                    format!("{} must be 1..{}", t.id, TYPES_MAX - 1),
                );
            }
            if t.dscp.map(|d| d > 63).unwrap_or(false) {
                return e(&format!("{k}.dscp"), "must be 0..63".into());
            }
        }
        if self.groups.len() > GROUPS_MAX as usize {
            return e("group", format!("at most {GROUPS_MAX} groups"));
        }
        let mut services = std::collections::HashSet::new();
        let mut servers = 0usize;
        for (i, g) in self.groups.iter().enumerate() {
            let k = format!("group[{i}]");
            if g.services.is_empty() {
                return e(
                    &format!("{k}.services"),
                    "name at least one representative address".into(),
                );
            }
            for s in &g.services {
                if !services.insert(*s) {
                    return e(
                        &format!("{k}.services"),
                        format!("{s} belongs to two groups"),
                    );
                }
            }
            if g.servers.is_empty() {
                return e(
                    &format!("{k}.server"),
                    "a group needs at least one server".into(),
                );
            }
            for (j, s) in g.servers.iter().enumerate() {
                let sk = format!("{k}.server[{j}]");
                if s.weight == 0 || s.weight > 1000 {
                    return e(
                        &format!("{sk}.weight"),
                        format!("{} must be 1..1000", s.weight),
                    );
                }
                if s.types.iter().flatten().any(|t| *t as u32 >= TYPES_MAX) {
                    return e(
                        &format!("{sk}.types"),
                        format!("session types are 0..{}", TYPES_MAX - 1),
                    );
                }
                servers += 1;
            }
        }
        if servers > SERVERS_MAX as usize {
            return e("group", format!("at most {SERVERS_MAX} servers in all"));
        }
        Ok(())
    }

    /// The checks of `validate`, then this section's interfaces, claimed in
    /// `interfaces`; keys relative to the section.
    pub fn validate_section(&self, interfaces: &mut InterfaceClaims) -> Result<(), ConfigError> {
        self.validate().map_err(|(k, r)| ConfigError::new(k, r))?;
        for (j, name) in self.interfaces.iter().enumerate() {
            let k = format!("interfaces[{j}]");
            validate_ifname(name).map_err(|r| ConfigError::new(&k, r))?;
            interfaces.claim(name).map_err(|r| ConfigError::new(&k, r))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses_round_trip_and_reject() {
        let sa: ServiceAddr = "198.51.100.10:80/tcp".parse().unwrap();
        assert_eq!((sa.addr, sa.port, sa.proto), (Ipv4Addr::new(198, 51, 100, 10), 80, Protocol::Tcp));
        assert_eq!(sa.to_string(), "198.51.100.10:80/tcp");
        assert_eq!(serde_json::to_string(&sa).unwrap(), "\"198.51.100.10:80/tcp\"");
        assert_eq!(serde_json::from_str::<ServiceAddr>("\"198.51.100.10:80/tcp\"").unwrap(), sa);
        assert_eq!("198.51.100.10:80/TCP".parse::<ServiceAddr>(), Ok(sa));
        let e = "198.51.100.10:80/sctp".parse::<ServiceAddr>().unwrap_err();
        assert!(e.contains("protocol must be tcp or udp"), "{e}");
        let e = "198.51.100.10/tcp".parse::<ServiceAddr>().unwrap_err();
        assert!(e.contains("expected ADDR:PORT/PROTO"), "{e}");
        assert!("198.51.100.10:80".parse::<ServiceAddr>().is_err());
    }

    fn section(extra: &str) -> String {
        format!("interfaces = [\"eth0\"]\naddress = \"10.2.0.1\"\n{extra}\n[[group]]\nname = \"web\"\nservices = [\"198.51.100.10:80/tcp\"]\n[[group.server]]\nname = \"s\"\naddress = \"10.2.0.11\"\nport = 8080\n")
    }

    #[test]
    fn the_section_is_typed_at_load() {
        let g: Gateway = toml::from_str(&section("ports = \"20000-20099\"\n[[session_type]]\nname = \"v\"\nid = 1\nproto = \"udp\"\nterminals = \"10.0.0.0/8\"")).unwrap();
        assert!(g.validate().is_ok());
        assert_eq!(g.ports, PortRange { first: 20000, last: 20099 });
        assert_eq!(g.session_types[0].proto, Some(Protocol::Udp));
        assert_eq!(g.session_types[0].terminals, Some(Ipv4Prefix { addr: Ipv4Addr::new(10, 0, 0, 0), len: 8 }));
        assert_eq!(toml::from_str::<Gateway>(&section("")).unwrap().ports, default_ports());
        // The pool's floor is the gateway's rule, checked after parsing.
        let low: Gateway = toml::from_str(&section("ports = \"80-90\"")).unwrap();
        let (k, r) = low.validate().unwrap_err();
        assert_eq!(k, "ports");
        assert!(r.contains("\"80-90\": expected MIN-MAX with 1024 <= MIN"), "{r}");
        assert!(toml::from_str::<Gateway>(&section("ports = \"30000-20000\"")).is_err());
        // Written back, the section reads the same.
        let again: Gateway = toml::from_str(&toml::to_string(&g).unwrap()).unwrap();
        assert_eq!(again, g);
    }
}
