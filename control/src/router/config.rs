//! The `[[router]]` sections: one VRRPv3 virtual router (RFC 5798) each,
//! with the optional load-sharing extension (seed 003).

use serde::{Deserialize, Serialize};

use crate::field::{text_enum, validate_ifname, ConfigError, IpPrefix};

/// One VRRPv3 virtual router (RFC 5798) on an interface, IPv4 or IPv6 by
/// its virtual addresses (a virtual router is of one family; VRIDs are
/// per family, so an IPv4 and an IPv6 router may share one).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub interface: String,
    pub vrid: u8,
    /// 1..=254; 255 means this router owns the virtual addresses.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Advertisement interval, milliseconds (a multiple of 10, 10..=40950).
    #[serde(default = "default_advert_ms")]
    pub advert_interval_ms: u32,
    #[serde(default = "default_preempt")]
    pub preempt: bool,
    /// Accept_Mode (RFC 5798 §6.1): whether the master, when it is not
    /// the address owner (priority 255), accepts packets addressed to
    /// the virtual addresses (pings, connections to them). Off, they are
    /// dropped (nftables, `accept_mode_dropped`); ARP and Neighbor
    /// Discovery are still answered and traffic through the router is
    /// routed. Default on, as keepalived (the RFC's default is off).
    #[serde(default = "default_accept")]
    pub accept: bool,
    /// Send adverts to these routers' addresses instead of the multicast
    /// group (a segment without multicast; keepalived's `unicast_peer`),
    /// and take adverts only from them. Of the virtual router's family;
    /// IPv6 peers are link-local addresses (adverts come from those).
    #[serde(default)]
    pub unicast_peers: Vec<std::net::IpAddr>,
    /// "A.B.C.D/LEN" or "X:X::X/LEN", all of one family (the length is
    /// used when the address is installed). For IPv6, RFC 5798 §5.2.9
    /// wants the first to be a link-local address; keepalived warns when
    /// it is not, and so does `edgeplane check`.
    pub virtual_addresses: Vec<IpPrefix>,
    /// The load-sharing extension (seed 003); plain VRRP when absent.
    #[serde(default)]
    pub load_sharing: Option<LoadSharing>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSharing {
    /// Shared key authenticating the extension's messages.
    pub key: String,
    /// The other routers of the virtual router (their addresses on the
    /// interface, all of one family; this router speaks from its first
    /// address of that family, for IPv6 its first global one).
    pub peers: Vec<std::net::IpAddr>,
    #[serde(default = "default_hello_ms")]
    pub hello_ms: u64,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// A backup routing more packets per second than this asks the master
    /// for a review (claim 8); no requests when absent.
    #[serde(default)]
    pub review_pps: Option<u64>,
    #[serde(default = "default_review_holddown")]
    pub review_holddown_ms: u64,
    /// The master collects rates this often (claim 9); only on request
    /// when absent.
    #[serde(default)]
    pub collect_interval_ms: Option<u64>,
    #[serde(default = "default_collect_holddown")]
    pub collect_holddown_ms: u64,
    /// The master's threshold per backup (claim 9): after collecting
    /// rates it reallocates only when a router's collected rate exceeds
    /// its threshold here (`"10.3.0.2" = 3000`); a router not named has
    /// none. Empty: reallocate when the loads differ by more than 20 %.
    #[serde(default)]
    pub backup_review_pps: std::collections::BTreeMap<std::net::IpAddr, u64>,
    /// How long a backup that acknowledged a hold suspends routing the
    /// buckets waiting for their fence (claim 4's predetermined period);
    /// a hand-off whose fence never comes ends after it.
    #[serde(default = "default_hold_timeout")]
    pub hold_timeout_ms: u64,
    /// Held frames the daemon keeps at most while buckets wait for their
    /// fence (all held buckets together); frames beyond it are dropped
    /// and counted (`held_refused_full`), the ones held before kept.
    #[serde(default = "default_hold_max_frames")]
    pub hold_max_frames: usize,
}

fn default_hold_timeout() -> u64 {
    3_000
}

/// Largest `hold_max_frames`.
pub const HOLD_MAX_FRAMES_CEILING: usize = 1 << 20;

/// The default hold timeout (3 s) of about 20,000 held packets a second;
/// at most 96 MiB of full-size (1,536-byte) frames.
fn default_hold_max_frames() -> usize {
    65_536
}

fn default_review_holddown() -> u64 {
    10_000
}

fn default_collect_holddown() -> u64 {
    5_000
}

fn default_hello_ms() -> u64 {
    100
}

text_enum! {
    /// Which address of a packet picks its bucket.
    pub enum Direction {
        /// The source: the routers face the hosts sending.
        Upstream = "upstream",
        /// The destination.
        Downstream = "downstream",
    }
}

fn default_direction() -> Direction {
    Direction::Upstream
}

fn default_priority() -> u8 {
    100
}

fn default_advert_ms() -> u32 {
    1000
}
fn default_accept() -> bool {
    true
}

fn default_preempt() -> bool {
    true
}

impl Router {
    /// Checks of this section, keys relative to it; `earlier`: the
    /// routers configured before it, which its VRID must not repeat on
    /// the same interface.
    pub fn validate(&self, earlier: &[Router]) -> Result<(), ConfigError> {
        validate_ifname(&self.interface).map_err(|m| ConfigError::new("interface", m))?;
        if self.vrid == 0 {
            return Err(ConfigError::new("vrid", "must be 1..255"));
        }
        if self.virtual_addresses.is_empty() || self.virtual_addresses.len() > 255 {
            return Err(ConfigError::new(
                "virtual_addresses",
                "name 1..255 addresses",
            ));
        }
        let v6 = self.is_ipv6();
        if let Some((i, a)) = self
            .virtual_addresses
            .iter()
            .enumerate()
            .find(|(_, a)| a.is_ipv6() != v6)
        {
            return Err(ConfigError::new(
                format!("virtual_addresses[{i}]"),
                format!(
                    "{a} is not of the family of the first address ({}); a virtual router is IPv4 or IPv6, configure one of each",
                    self.virtual_addresses[0]
                ),
            ));
        }
        if earlier
            .iter()
            .any(|r| r.interface == self.interface && r.vrid == self.vrid && r.is_ipv6() == v6)
        {
            return Err(ConfigError::new(
                "vrid",
                format!(
                    "{} VRID {} is configured twice on {}",
                    if v6 { "IPv6" } else { "IPv4" },
                    self.vrid,
                    self.interface
                ),
            ));
        }
        for (i, p) in self.unicast_peers.iter().enumerate() {
            let key = format!("unicast_peers[{i}]");
            match p {
                std::net::IpAddr::V4(_) if v6 => {
                    return Err(ConfigError::new(key, format!("{p} is IPv4 in an IPv6 virtual router")))
                }
                std::net::IpAddr::V6(_) if !v6 => {
                    return Err(ConfigError::new(key, format!("{p} is IPv6 in an IPv4 virtual router")))
                }
                std::net::IpAddr::V6(a) if !crate::router::vrrp::is_link_local(*a) => {
                    return Err(ConfigError::new(key, format!("{p} is not link-local (IPv6 adverts come from link-local addresses, RFC 5798 §5.1.2.1)")))
                }
                _ => {}
            }
            if self.unicast_peers[..i].contains(p) {
                return Err(ConfigError::new(key, format!("{p} is listed twice")));
            }
        }
        if self.load_sharing.is_some()
            && earlier
                .iter()
                .any(|r| r.interface == self.interface && r.load_sharing.is_some())
        {
            return Err(ConfigError::new(
                "load_sharing",
                format!(
                    "{} already has a load-sharing virtual router (one filter per interface)",
                    self.interface
                ),
            ));
        }
        if let Some(ls) = &self.load_sharing {
            for (a, pps) in &ls.backup_review_pps {
                if !ls.peers.contains(a) {
                    return Err(ConfigError::new(
                        format!("load_sharing.backup_review_pps.\"{a}\""),
                        format!("{a} is not one of load_sharing.peers"),
                    ));
                }
                if *pps == 0 {
                    return Err(ConfigError::new(
                        format!("load_sharing.backup_review_pps.\"{a}\""),
                        "must be at least 1 packet per second",
                    ));
                }
            }
            if !(100..=60_000).contains(&ls.hold_timeout_ms) {
                return Err(ConfigError::new(
                    "load_sharing.hold_timeout_ms",
                    "must be 100..=60000",
                ));
            }
            if !(1..=HOLD_MAX_FRAMES_CEILING).contains(&ls.hold_max_frames) {
                return Err(ConfigError::new(
                    "load_sharing.hold_max_frames",
                    format!("must be 1..={HOLD_MAX_FRAMES_CEILING}"),
                ));
            }
            if let Some(first) = ls.peers.first() {
                if let Some((i, p)) = ls
                    .peers
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.is_ipv6() != first.is_ipv6())
                {
                    return Err(ConfigError::new(
                        format!("load_sharing.peers[{i}]"),
                        format!("{p} is not of the family of {first}"),
                    ));
                }
            }
        }
        if self.priority == 0 {
            return Err(ConfigError::new(
                "priority",
                "must be 1..255 (0 is reserved for a master leaving)",
            ));
        }
        if !self.advert_interval_ms.is_multiple_of(10)
            || !(10..=40950).contains(&self.advert_interval_ms)
        {
            return Err(ConfigError::new(
                "advert_interval_ms",
                format!(
                    "{} must be a multiple of 10 in 10..=40950 (centiseconds on the wire)",
                    self.advert_interval_ms
                ),
            ));
        }
        Ok(())
    }

    /// Whether this is an IPv6 virtual router (by its addresses).
    pub fn is_ipv6(&self) -> bool {
        self.virtual_addresses.first().is_some_and(|a| a.is_ipv6())
    }

    /// What a check should say but not refuse: an IPv6 virtual router
    /// whose first address is not link-local (RFC 5798 §5.2.9 SHOULD).
    pub fn warnings(&self) -> Vec<String> {
        match self.virtual_addresses.first().map(|a| a.addr) {
            Some(std::net::IpAddr::V6(a)) if !crate::router::vrrp::is_link_local(a) => {
                vec![format!(
                    "virtual_addresses[0]: {a} is not link-local; RFC 5798 §5.2.9 wants the first IPv6 address of a virtual router to be one (keepalived warns the same)"
                )]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: &str =
        "interface = \"eth0\"\nvrid = 7\nvirtual_addresses = [\"10.3.0.100/24\"]\n";

    #[test]
    fn addresses_and_direction_are_typed_at_load() {
        let r: Router = toml::from_str(ROUTER).unwrap();
        assert_eq!(r.virtual_addresses[0].to_string(), "10.3.0.100/24");
        assert_eq!(
            r.virtual_addresses[0].addr,
            std::net::Ipv4Addr::new(10, 3, 0, 100)
        );
        assert!(!r.is_ipv6() && r.warnings().is_empty());
        let ls = format!("{ROUTER}[load_sharing]\nkey = \"k\"\npeers = [\"10.3.0.2\"]\n");
        let r: Router = toml::from_str(&ls).unwrap();
        assert_eq!(
            r.load_sharing.as_ref().unwrap().direction,
            Direction::Upstream
        );
        // Claim 9's thresholds per backup, and claim 4's period.
        let th = format!(
            "{ls}hold_timeout_ms = 1500\n[load_sharing.backup_review_pps]\n\"10.3.0.2\" = 3000\n"
        );
        let r: Router = toml::from_str(&th).unwrap();
        let l = r.load_sharing.as_ref().unwrap();
        assert_eq!(l.backup_review_pps[&"10.3.0.2".parse().unwrap()], 3000);
        assert_eq!(l.hold_timeout_ms, 1500);
        r.validate(&[]).unwrap();
        let bad: Router =
            toml::from_str(&th.replace("\"10.3.0.2\" = 3000", "\"10.3.0.9\" = 3000")).unwrap();
        let e = bad.validate(&[]).unwrap_err();
        assert_eq!(e.key, "load_sharing.backup_review_pps.\"10.3.0.9\"", "{e}");
        let bad: Router = toml::from_str(&th.replace("1500", "5")).unwrap();
        assert_eq!(
            bad.validate(&[]).unwrap_err().key,
            "load_sharing.hold_timeout_ms"
        );
        // The daemon's buffer of held frames is bounded.
        assert_eq!(l.hold_max_frames, 65_536);
        for bad in ["0", "1048577"] {
            let r: Router = toml::from_str(&th.replace(
                "hold_timeout_ms = 1500",
                &format!("hold_max_frames = {bad}"),
            ))
            .unwrap();
            assert_eq!(
                r.validate(&[]).unwrap_err().key,
                "load_sharing.hold_max_frames",
                "{bad}"
            );
        }
        let r: Router = toml::from_str(&format!("{ls}direction = \"downstream\"\n")).unwrap();
        assert_eq!(
            r.load_sharing.as_ref().unwrap().direction,
            Direction::Downstream
        );
        assert_eq!(
            toml::from_str::<Router>(&toml::to_string(&r).unwrap()).unwrap(),
            r
        );
        let e = toml::from_str::<Router>(&format!("{ls}direction = \"sideways\"\n")).unwrap_err();
        assert!(
            e.message()
                .contains("\"sideways\" must be \"upstream\" or \"downstream\""),
            "{e}"
        );
        let e = toml::from_str::<Router>(&ROUTER.replace("/24", "/40")).unwrap_err();
        assert!(
            e.message()
                .contains("\"10.3.0.100/40\" is not A.B.C.D/LEN or X:X::X/LEN"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_routers_are_one_family_and_vrids_are_per_family() {
        let v6: Router = toml::from_str(
            "interface = \"eth0\"\nvrid = 7\nvirtual_addresses = [\"fe80::7/64\", \"2001:db8:3::100/64\"]\n",
        )
        .unwrap();
        assert!(v6.is_ipv6());
        assert!(v6.warnings().is_empty());
        let v4: Router = toml::from_str(ROUTER).unwrap();
        // The same VRID on the same interface, one of each family: fine.
        v6.validate(std::slice::from_ref(&v4)).unwrap();
        let e = v6.clone().validate(std::slice::from_ref(&v6)).unwrap_err();
        assert_eq!(e.key, "vrid");
        assert!(e.reason.contains("IPv6 VRID 7 is configured twice"), "{e}");
        let mixed = Router {
            virtual_addresses: vec![
                "2001:db8:3::100/64".parse().unwrap(),
                "10.3.0.100/24".parse().unwrap(),
            ],
            ..v6.clone()
        };
        let e = mixed.validate(&[]).unwrap_err();
        assert_eq!(e.key, "virtual_addresses[1]");
        assert!(e.reason.contains("configure one of each"), "{e}");
        assert!(
            mixed.warnings()[0].contains("is not link-local"),
            "{:?}",
            mixed.warnings()
        );
        let ls = |peers: &str| -> Router {
            toml::from_str(&format!(
                "interface = \"eth0\"\nvrid = 8\nvirtual_addresses = [\"fe80::8/64\"]\n[load_sharing]\nkey = \"k\"\npeers = [{peers}]\n"
            ))
            .unwrap()
        };
        ls("\"2001:db8:3::2\", \"2001:db8:3::3\"")
            .validate(&[])
            .unwrap();
        let e = ls("\"2001:db8:3::2\", \"10.3.0.3\"")
            .validate(&[])
            .unwrap_err();
        assert_eq!(e.key, "load_sharing.peers[1]");
        let e = ls("\"2001:db8:3::2\"")
            .validate(&[ls("\"2001:db8:3::2\"")])
            .unwrap_err();
        assert_eq!(e.key, "vrid", "{e}");
        let other = Router {
            vrid: 9,
            ..ls("\"2001:db8:3::2\"")
        };
        let e = other.validate(&[ls("\"2001:db8:3::2\"")]).unwrap_err();
        assert_eq!(e.key, "load_sharing", "{e}");
    }

    #[test]
    fn direction_round_trips() {
        for d in Direction::ALL {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(*d));
            assert_eq!(serde_json::to_string(d).unwrap(), format!("\"{d}\""));
        }
        assert!("Upstream".parse::<Direction>().is_err());
    }
}
