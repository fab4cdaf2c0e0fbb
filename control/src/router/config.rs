//! The `[[router]]` sections: one VRRPv3 virtual router (RFC 5798) each,
//! with the optional load-sharing extension (seed 003).

use serde::{Deserialize, Serialize};

use crate::field::{text_enum, validate_ifname, ConfigError, Ipv4Prefix};

/// One VRRPv3 virtual router (RFC 5798) on an interface.
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
    #[serde(default)]
    pub accept: bool,
    /// "A.B.C.D/LEN" (the length is used when the address is installed).
    pub virtual_addresses: Vec<Ipv4Prefix>,
    /// The load-sharing extension (seed 003); plain VRRP when absent.
    #[serde(default)]
    pub load_sharing: Option<LoadSharing>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSharing {
    /// Shared key authenticating the extension's messages.
    pub key: String,
    /// The other routers of the virtual router (their primary addresses).
    pub peers: Vec<std::net::Ipv4Addr>,
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
        if earlier
            .iter()
            .any(|r| r.interface == self.interface && r.vrid == self.vrid)
        {
            return Err(ConfigError::new(
                "vrid",
                format!(
                    "VRID {} is configured twice on {}",
                    self.vrid, self.interface
                ),
            ));
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
        if self.virtual_addresses.is_empty() || self.virtual_addresses.len() > 255 {
            return Err(ConfigError::new(
                "virtual_addresses",
                "name 1..255 addresses",
            ));
        }
        Ok(())
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
        let ls = format!("{ROUTER}[load_sharing]\nkey = \"k\"\npeers = [\"10.3.0.2\"]\n");
        let r: Router = toml::from_str(&ls).unwrap();
        assert_eq!(
            r.load_sharing.as_ref().unwrap().direction,
            Direction::Upstream
        );
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
            e.message().contains("\"10.3.0.100/40\" is not A.B.C.D/LEN"),
            "{e}"
        );
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
