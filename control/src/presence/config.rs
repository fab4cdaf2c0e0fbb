//! The `[presence]` section: where the presence server listens, its
//! database, and whom it takes PUBLISH from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::field::IpPrefix;

/// The presence server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// "ADDR:PORT" or "[ADDR6]:PORT" (UDP and TCP).
    pub listen: std::net::SocketAddr,
    /// SQLite file, or a `postgres://` URL for PostgreSQL.
    pub database: PathBuf,
    /// Prefixes PUBLISH is accepted from (IPv4 or IPv6).
    pub allow: Vec<IpPrefix>,
}

impl Presence {
    /// Whether PUBLISH is taken from `peer`.
    pub fn allows(&self, peer: std::net::IpAddr) -> bool {
        allowed(&self.allow, peer)
    }
}

/// Whether `peer` is in one of `allow`; an IPv4-mapped IPv6 peer (an
/// IPv4 client of a dual-stack socket) is judged as the IPv4 address.
pub fn allowed(allow: &[IpPrefix], peer: std::net::IpAddr) -> bool {
    let peer = match peer {
        std::net::IpAddr::V6(a) => a.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    allow.iter().any(|p| p.contains(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_is_typed_at_load() {
        let text = "listen = \"10.6.0.2:5070\"\ndatabase = \"/tmp/p.db\"\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\n";
        let p: Presence = toml::from_str(text).unwrap();
        assert!(p.allows("10.1.2.3".parse().unwrap()) && p.allows("192.0.2.7".parse().unwrap()));
        assert!(!p.allows("192.0.2.8".parse().unwrap()) && !p.allows("11.0.0.1".parse().unwrap()));
        assert_eq!(
            toml::from_str::<Presence>(&toml::to_string(&p).unwrap()).unwrap(),
            p
        );
        let e = toml::from_str::<Presence>(&text.replace("10.0.0.0/8", "10.0.0.0/99")).unwrap_err();
        assert!(
            e.message().contains("\"10.0.0.0/99\" is not A.B.C.D/LEN"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_listen_and_allow() {
        let text = "listen = \"[2001:db8:6::2]:5070\"\ndatabase = \"/tmp/p.db\"\nallow = [\"2001:db8:5::/48\", \"10.0.0.0/8\"]\n";
        let p: Presence = toml::from_str(text).unwrap();
        assert!(p.listen.is_ipv6());
        assert!(p.allows("2001:db8:5:1::9".parse().unwrap()));
        assert!(!p.allows("2001:db8:7::9".parse().unwrap()));
        assert!(p.allows("::ffff:10.1.2.3".parse().unwrap()), "mapped IPv4");
        assert!(p.allows("10.1.2.3".parse().unwrap()));
    }
}
