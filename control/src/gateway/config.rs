//! The `[[gateway]]` section: the gateway's interfaces and address, its
//! source port pool, timeouts, accounting, session type rules and the
//! server groups behind representative addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::service::ServiceAddr;
use crate::field::{
    validate_ifname, ConfigError, InterfaceClaims, IpPrefix, Ipv4Prefix, MacAddr, PortRange,
    Protocol,
};
use dataplane_common::{
    gateway::{GROUPS_MAX, SERVERS_MAX, TYPES_MAX, TYPE_RULES_MAX},
    lb::GTPU_PORT,
};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Interfaces the gateway program runs on; maps are pinned under the
    /// first. Terminal traffic and server traffic may share one.
    pub interfaces: Vec<String>,
    /// The gateway's own address: the source of translated packets and
    /// where servers reply.
    pub address: Ipv4Addr,
    /// The gateway's IPv6 address, for groups with IPv6 representative
    /// addresses and servers: the source of their translated packets and
    /// where their servers reply. IPv6 traffic is passed without it.
    #[serde(default)]
    pub address6: Option<Ipv6Addr>,
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
    /// The GTP-U user plane (N3/S1-U); plain IP only when absent.
    #[serde(default)]
    pub gtpu: Option<Gtpu>,
    /// The session-management interface (PFCP, TS 29.244) that sets up
    /// the GTP-U tunnels; needs `gtpu`.
    #[serde(default)]
    pub pfcp: Option<Pfcp>,
}

/// `[gateway.gtpu]`: where G-PDUs arrive and the downlink leaves from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gtpu {
    /// The N3/S1-U address (assigned to one of the gateway's interfaces):
    /// G-PDUs to it on UDP 2152 are decapsulated; the downlink is
    /// encapsulated from it. Default: the gateway's address.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// The IPv6 N3 address (assigned to one of the gateway's interfaces):
    /// GTP-U over IPv6 transport to it is decapsulated, the downlink
    /// toward an access node with an IPv6 address is encapsulated from it,
    /// and PFCP hands it out in F-TEIDs that ask for IPv6. Absent: GTP-U
    /// over IPv4 only.
    #[serde(default)]
    pub address6: Option<Ipv6Addr>,
    /// The gateway's TEID range: its TEIDs are `prefix << 24 | n`, so an
    /// LB that knows the prefix (`[[lb.gateway]] teid_prefix`) sends a
    /// tunnel to its gateway whatever its table says. Absent: TEIDs from
    /// 1 to 2^32-1.
    #[serde(default)]
    pub teid_prefix: Option<u8>,
    /// Error Indications sent per second at most, for G-PDUs of unknown
    /// TEIDs (TS 29.281 §7.3.1); the rest are counted only.
    #[serde(default = "default_error_indications")]
    pub error_indication_rate: u32,
    /// Interface toward the access nodes (default: the gateway's first).
    #[serde(default)]
    pub via: Option<String>,
    /// Router toward access nodes that are not on `via`'s link; each
    /// access node is resolved by ARP itself when absent.
    #[serde(default)]
    pub next_hop: Option<Ipv4Addr>,
    /// Router toward IPv6 access nodes that are not on `via`'s link; each
    /// is resolved by Neighbor Discovery itself when absent.
    #[serde(default)]
    pub next_hop6: Option<Ipv6Addr>,
}

fn default_error_indications() -> u32 {
    100
}

/// `[gateway.pfcp]`: the N4/Sxb endpoint.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pfcp {
    /// Address to listen on; default: the gateway's address.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    #[serde(default = "default_pfcp_port")]
    pub port: u16,
    /// The Node ID this user plane announces; default: `address`.
    #[serde(default)]
    pub node_id: Option<Ipv4Addr>,
    /// Sessions (tunnels) at most; default and ceiling: the fast path's
    /// table size.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    /// Control-plane peers (SMF/SGW-C) allowed to talk PFCP, as prefixes;
    /// anyone who can reach the port when absent.
    #[serde(default)]
    pub allow: Option<Vec<Ipv4Prefix>>,
}

fn default_pfcp_port() -> u16 {
    8805
}

fn default_max_sessions() -> u32 {
    dataplane_common::gateway::TUNNELS_MAX
}

impl Gateway {
    /// The N3 address, when GTP-U is on.
    pub fn n3_address(&self) -> Option<Ipv4Addr> {
        self.gtpu
            .as_ref()
            .map(|g| g.address.unwrap_or(self.address))
    }

    /// The IPv6 N3 address, when GTP-U over IPv6 is on.
    pub fn n3_address6(&self) -> Option<Ipv6Addr> {
        self.gtpu.as_ref().and_then(|g| g.address6)
    }

    /// The TEIDs this gateway hands out (inclusive).
    pub fn teid_range(&self) -> (u32, u32) {
        match self.gtpu.as_ref().and_then(|g| g.teid_prefix) {
            Some(p) => (((p as u32) << 24) | 1, ((p as u32) << 24) | 0x00ff_ffff),
            None => (1, u32::MAX),
        }
    }
}

fn default_ports() -> PortRange {
    PortRange {
        first: 20000,
        last: 59999,
    }
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
    /// Terminal prefix, "A.B.C.D/LEN" or "X:X::X/LEN"; the rule then
    /// matches terminals of that family only.
    #[serde(default)]
    pub terminals: Option<IpPrefix>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Representative addresses, "ADDR:PORT/PROTO" (claim 3), all of one
    /// family, that of the group's servers.
    pub services: Vec<ServiceAddr>,
    /// Terminal prefixes allowed to use the group (claim 5), of the
    /// group's family; everyone when absent.
    #[serde(default)]
    pub allow: Option<Vec<IpPrefix>>,
    #[serde(rename = "server")]
    pub servers: Vec<ServerCfg>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerCfg {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    #[serde(default = "one")]
    pub weight: u32,
    /// Egress interface (default: the gateway's last interface).
    #[serde(default)]
    pub via: Option<String>,
    /// Next hop for a server outside the system (claim 6); the server
    /// itself when absent.
    #[serde(default)]
    pub next_hop: Option<IpAddr>,
    /// Next hop MAC; resolved by ARP (IPv6: neighbour discovery) when absent.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Session types this server takes (default: all).
    #[serde(default)]
    pub types: Option<Vec<u8>>,
}

fn one() -> u32 {
    1
}

impl Group {
    /// The group's family: that of its first representative address
    /// (`validate` holds the rest to it).
    pub fn is_ipv6(&self) -> bool {
        self.services
            .first()
            .map(|s| s.addr.is_ipv6())
            .unwrap_or(false)
    }
}

impl Gateway {
    /// Field checks; returns (dotted key relative to this section, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, r: String| Err((k.to_string(), r));
        if self.interfaces.is_empty() {
            return e("interfaces", "name at least one interface".into());
        }
        if let Some(a) = self.address6 {
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                return e("address6", format!("{a} is not a unicast address"));
            }
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
            let v6 = g.is_ipv6();
            let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
            for (j, s) in g.services.iter().enumerate() {
                if !services.insert(*s) {
                    return e(
                        &format!("{k}.services"),
                        format!("{s} belongs to two groups"),
                    );
                }
                if s.addr.is_ipv6() != v6 {
                    return e(
                        &format!("{k}.services[{j}]"),
                        format!("{s} is not {} like the group's first; a group is of one family (make a group per family)", family(v6)),
                    );
                }
            }
            if v6 && self.address6.is_none() {
                return e(
                    &format!("{k}.services"),
                    "IPv6 representative addresses need the gateway's address6 (the source of their translated packets)".into(),
                );
            }
            for (j, p) in g.allow.iter().flatten().enumerate() {
                if p.is_ipv6() != v6 {
                    return e(
                        &format!("{k}.allow[{j}]"),
                        format!("{p} is not {}, the group's family", family(v6)),
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
                if s.address.is_ipv6() != v6 {
                    return e(
                        &format!("{sk}.address"),
                        format!(
                            "{} is not {}, the family of the group's representative addresses",
                            s.address,
                            family(v6)
                        ),
                    );
                }
                if let Some(h) = s.next_hop.filter(|h| h.is_ipv6() != v6) {
                    return e(
                        &format!("{sk}.next_hop"),
                        format!("{h} is not {} like the server", family(v6)),
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
        if let Some(g) = &self.gtpu {
            let n3 = g.address.unwrap_or(self.address);
            if n3 == self.address && self.ports.first <= GTPU_PORT && GTPU_PORT <= self.ports.last {
                return e(
                    "ports",
                    format!("the pool {} holds the GTP-U port {GTPU_PORT}, and gtpu.address is the gateway's address; move the pool or give gtpu its own address", self.ports),
                );
            }
            if let Some(a) = g.address6 {
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return e("gtpu.address6", format!("{a} is not a unicast address"));
                }
                if Some(a) == self.address6
                    && self.ports.first <= GTPU_PORT
                    && GTPU_PORT <= self.ports.last
                {
                    return e(
                        "ports",
                        format!("the pool {} holds the GTP-U port {GTPU_PORT}, and gtpu.address6 is the gateway's address6; move the pool or give gtpu its own address6", self.ports),
                    );
                }
            }
            if g.error_indication_rate > 100_000 {
                return e(
                    "gtpu.error_indication_rate",
                    format!("{} must be 0..100000 per second", g.error_indication_rate),
                );
            }
            if let Some(v) = &g.via {
                validate_ifname(v).map_err(|r| ("gtpu.via".to_string(), r))?;
            }
        }
        if let Some(p) = &self.pfcp {
            if self.gtpu.is_none() {
                return e(
                    "pfcp",
                    "PFCP sets up GTP-U tunnels: add a [gateway.gtpu] section".into(),
                );
            }
            let max = dataplane_common::gateway::TUNNELS_MAX;
            if p.max_sessions == 0 || p.max_sessions > max {
                return e(
                    "pfcp.max_sessions",
                    format!("{} must be 1..{max}", p.max_sessions),
                );
            }
            if p.port == 0 {
                return e("pfcp.port", "must not be 0".into());
            }
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
            interfaces
                .claim(name)
                .map_err(|r| ConfigError::new(&k, r))?;
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
        assert_eq!(
            (sa.addr, sa.port, sa.proto),
            (IpAddr::from([198, 51, 100, 10]), 80, Protocol::Tcp)
        );
        assert_eq!(sa.to_string(), "198.51.100.10:80/tcp");
        assert_eq!(
            serde_json::to_string(&sa).unwrap(),
            "\"198.51.100.10:80/tcp\""
        );
        assert_eq!(
            serde_json::from_str::<ServiceAddr>("\"198.51.100.10:80/tcp\"").unwrap(),
            sa
        );
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
        assert_eq!(
            g.ports,
            PortRange {
                first: 20000,
                last: 20099
            }
        );
        assert_eq!(g.session_types[0].proto, Some(Protocol::Udp));
        assert_eq!(
            g.session_types[0].terminals,
            Some("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            toml::from_str::<Gateway>(&section("")).unwrap().ports,
            default_ports()
        );
        // The pool's floor is the gateway's rule, checked after parsing.
        let low: Gateway = toml::from_str(&section("ports = \"80-90\"")).unwrap();
        let (k, r) = low.validate().unwrap_err();
        assert_eq!(k, "ports");
        assert!(
            r.contains("\"80-90\": expected MIN-MAX with 1024 <= MIN"),
            "{r}"
        );
        assert!(toml::from_str::<Gateway>(&section("ports = \"30000-20000\"")).is_err());
        // GTP-U and PFCP: typed, defaults, and the rules between them.
        let gt: Gateway = toml::from_str(&format!(
            "{}\n[gtpu]\nteid_prefix = 7\n[pfcp]\n",
            section("ports = \"20000-20099\"")
        ))
        .unwrap();
        assert!(gt.validate().is_ok(), "{:?}", gt.validate());
        assert_eq!(gt.n3_address(), Some(Ipv4Addr::new(10, 2, 0, 1)));
        assert_eq!(gt.teid_range(), (0x0700_0001, 0x07ff_ffff));
        assert_eq!(gt.pfcp.as_ref().unwrap().port, 8805);
        let mut bad = gt.clone();
        bad.gtpu = None;
        assert_eq!(bad.validate().unwrap_err().0, "pfcp");
        let mut bad = gt.clone();
        bad.ports = PortRange {
            first: 2000,
            last: 3000,
        };
        let (k, r) = bad.validate().unwrap_err();
        assert!(k == "ports" && r.contains("GTP-U port 2152"), "{k}: {r}");
        let mut bad = gt.clone();
        bad.pfcp.as_mut().unwrap().max_sessions = 0;
        assert_eq!(bad.validate().unwrap_err().0, "pfcp.max_sessions");
        // An IPv6 N3 address: none by default, unicast, typed.
        assert_eq!(gt.n3_address6(), None);
        let v6: Gateway = toml::from_str(&format!(
            "{}\n[gtpu]\naddress6 = \"2001:db8:3::1\"\n",
            section("ports = \"20000-20099\"")
        ))
        .unwrap();
        assert!(v6.validate().is_ok(), "{:?}", v6.validate());
        assert_eq!(v6.n3_address6(), Some("2001:db8:3::1".parse().unwrap()));
        let mut bad = v6.clone();
        bad.gtpu.as_mut().unwrap().address6 = Some("ff02::2".parse().unwrap());
        assert_eq!(bad.validate().unwrap_err().0, "gtpu.address6");
        let mut bad = v6.clone();
        bad.address6 = Some("2001:db8:3::1".parse().unwrap());
        bad.gtpu.as_mut().unwrap().address = Some(Ipv4Addr::new(10, 3, 0, 1));
        bad.ports = PortRange {
            first: 2000,
            last: 3000,
        };
        let (k, r) = bad.validate().unwrap_err();
        assert!(k == "ports" && r.contains("gtpu.address6"), "{k}: {r}");
        assert!(toml::from_str::<Gateway>(&format!(
            "{}\n[gtpu]\naddress6 = \"10.0.0.1\"\n",
            section("")
        ))
        .is_err());
        assert!(toml::from_str::<Gateway>(&format!(
            "{}\n[gtpu]\nteid_prefix = 300\n",
            section("")
        ))
        .is_err());
        // Written back, the section reads the same.
        let again: Gateway = toml::from_str(&toml::to_string(&g).unwrap()).unwrap();
        assert_eq!(again, g);
    }

    fn v6_section(extra: &str, group: &str) -> Gateway {
        toml::from_str(&format!("interfaces = [\"eth0\"]\naddress = \"10.2.0.1\"\n{extra}\n[[group]]\nname = \"web6\"\n{group}\n[[group.server]]\nname = \"s\"\naddress = \"2001:db8:2::11\"\nport = 8080\n")).unwrap()
    }

    #[test]
    fn ipv6_groups_are_of_one_family_and_need_address6() {
        let ok = v6_section(
            "address6 = \"2001:db8:2::1\"",
            "services = [\"[2001:db8:64::10]:80/tcp\"]\nallow = [\"2001:db8:1::/48\"]",
        );
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        assert!(ok.groups[0].is_ipv6());
        assert_eq!(
            ok.groups[0].services[0].to_string(),
            "[2001:db8:64::10]:80/tcp"
        );
        let (k, r) = v6_section("", "services = [\"[2001:db8:64::10]:80/tcp\"]")
            .validate()
            .unwrap_err();
        assert!(
            k == "group[0].services" && r.contains("address6"),
            "{k}: {r}"
        );
        let (k, r) = v6_section(
            "address6 = \"2001:db8:2::1\"",
            "services = [\"[2001:db8:64::10]:80/tcp\", \"198.51.100.10:80/tcp\"]",
        )
        .validate()
        .unwrap_err();
        assert!(
            k == "group[0].services[1]" && r.contains("one family"),
            "{k}: {r}"
        );
        let (k, r) = v6_section(
            "address6 = \"2001:db8:2::1\"",
            "services = [\"[2001:db8:64::10]:80/tcp\"]\nallow = [\"10.0.0.0/8\"]",
        )
        .validate()
        .unwrap_err();
        assert!(k == "group[0].allow[0]" && r.contains("IPv6"), "{k}: {r}");
        // An IPv4 group with an IPv6 server names the server's key.
        let (k, _) = v6_section("", "services = [\"198.51.100.10:80/tcp\"]")
            .validate()
            .unwrap_err();
        assert_eq!(k, "group[0].server[0].address");
        let mut hop = ok.clone();
        hop.groups[0].servers[0].next_hop = Some("10.2.0.254".parse().unwrap());
        assert_eq!(hop.validate().unwrap_err().0, "group[0].server[0].next_hop");
        let mut bad = ok.clone();
        bad.address6 = Some("ff02::1".parse().unwrap());
        assert_eq!(bad.validate().unwrap_err().0, "address6");
        let e = "[2001:db8::1]/tcp".parse::<ServiceAddr>().unwrap_err();
        assert!(e.contains("in brackets"), "{e}");
    }
}
