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
    /// SIP over TLS (RFC 3261 §26) on a port of its own, beside UDP and
    /// TCP on `listen`.
    #[serde(default)]
    pub tls: Option<PresenceTls>,
    /// Statuses the store holds at most (one per user and source): a
    /// PUBLISH or REGISTER for a new pair beyond it is refused (503,
    /// counted `refused_store_full`); the pairs held are updated as ever.
    #[serde(default = "default_max_statuses")]
    pub max_statuses: u64,
    /// Live entity-tags (RFC 3903) the store holds at most: an initial
    /// PUBLISH (no SIP-If-Match) when it holds that many unexpired is
    /// refused (503, counted `refused_etags_full`); a refresh replaces its
    /// tag and is taken as ever.
    #[serde(default = "default_max_etags")]
    pub max_etags: u64,
    /// History rows (one per status change) kept at most: past it the
    /// oldest are deleted (counted `history_pruned`). The history is a
    /// log; the statuses are never pruned.
    #[serde(default = "default_max_history")]
    pub max_history: u64,
    /// Watchers' subscriptions (RFC 3856) held at most: a SUBSCRIBE that
    /// would open one more is answered 503 (counted
    /// `refused_subscriptions_full`); those held are refreshed and
    /// notified as ever.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions: u64,
}

fn default_max_statuses() -> u64 {
    super::store::DEFAULT_MAX_STATUSES
}

fn default_max_etags() -> u64 {
    super::store::DEFAULT_MAX_ETAGS
}

fn default_max_history() -> u64 {
    super::store::DEFAULT_MAX_HISTORY
}

fn default_max_subscriptions() -> u64 {
    100_000
}

/// `[presence.tls]`: the server's certificate and, for mutual TLS, the
/// authority whose certificates clients must present.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PresenceTls {
    /// "ADDR:PORT" (conventionally 5061).
    pub listen: std::net::SocketAddr,
    /// PEM: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: when set, a client must present a certificate this authority
    /// signed (the monitor's), or its handshake is refused and counted.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl Presence {
    /// Checks of this section, keys relative to it.
    pub fn validate(&self) -> Result<(), crate::field::ConfigError> {
        for (key, v) in [
            ("max_statuses", self.max_statuses),
            ("max_etags", self.max_etags),
            ("max_history", self.max_history),
            ("max_subscriptions", self.max_subscriptions),
        ] {
            if v == 0 {
                return Err(crate::field::ConfigError::new(key, "must be at least 1"));
            }
        }
        if let Some(t) = &self.tls {
            if t.listen == self.listen {
                return Err(crate::field::ConfigError::new(
                    "tls.listen",
                    "must differ from listen (TLS has a port of its own)",
                ));
            }
            for (k, p) in [
                ("tls.cert", Some(&t.cert)),
                ("tls.key", Some(&t.key)),
                ("tls.client_ca", t.client_ca.as_ref()),
            ] {
                if let Some(p) = p {
                    if !p.is_absolute() {
                        return Err(crate::field::ConfigError::new(
                            k,
                            "must be an absolute path",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
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
    fn tls_keys_are_checked() {
        let text = "listen = \"10.6.0.2:5070\"\ndatabase = \"/tmp/p.db\"\nallow = [\"10.0.0.0/8\"]\n[tls]\nlisten = \"10.6.0.2:5071\"\ncert = \"/etc/p.crt\"\nkey = \"/etc/p.key\"\n";
        let p: Presence = toml::from_str(text).unwrap();
        assert!(p.validate().is_ok() && p.tls.as_ref().unwrap().client_ca.is_none());
        let same: Presence = toml::from_str(&text.replace("5071", "5070")).unwrap();
        assert_eq!(same.validate().unwrap_err().key, "tls.listen");
        let rel: Presence = toml::from_str(&text.replace("/etc/p.key", "p.key")).unwrap();
        assert_eq!(rel.validate().unwrap_err().key, "tls.key");
        let ca: Presence = toml::from_str(&format!("{text}client_ca = \"ca.crt\"\n")).unwrap();
        assert_eq!(ca.validate().unwrap_err().key, "tls.client_ca");
    }

    #[test]
    fn the_stores_statuses_are_bounded_by_a_checked_key() {
        let text =
            "listen = \"10.6.0.2:5070\"\ndatabase = \"/tmp/p.db\"\nallow = [\"10.0.0.0/8\"]\n";
        let p: Presence = toml::from_str(text).unwrap();
        assert_eq!(p.max_statuses, 1_000_000);
        let p: Presence = toml::from_str(&format!("{text}max_statuses = 5000\n")).unwrap();
        assert!(p.validate().is_ok() && p.max_statuses == 5000);
        // The whole file is refused, naming the key.
        let e = crate::config::Config::parse(&format!(
            "[node]\nname = \"p\"\n[presence]\n{text}max_statuses = 0\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "presence.max_statuses", "{e}");
        assert!(toml::from_str::<Presence>(&format!("{text}max_statuses = -1\n")).is_err());
        let p: Presence = toml::from_str(text).unwrap();
        assert_eq!(
            (p.max_etags, p.max_history, p.max_subscriptions),
            (2_000_000, 10_000_000, 100_000)
        );
        for key in ["max_etags", "max_history", "max_subscriptions"] {
            let e = crate::config::Config::parse(&format!(
                "[node]\nname = \"p\"\n[presence]\n{text}{key} = 0\n"
            ))
            .unwrap_err();
            assert_eq!(e.key, format!("presence.{key}"), "{e}");
        }
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
