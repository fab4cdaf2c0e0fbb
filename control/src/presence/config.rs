//! The `[presence]` section: where the presence server listens, its
//! database, and whom it takes PUBLISH from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::field::Ipv4Prefix;

/// The presence server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    pub listen: std::net::SocketAddrV4,
    /// SQLite file, or a `postgres://` URL for PostgreSQL.
    pub database: PathBuf,
    /// Prefixes PUBLISH is accepted from.
    pub allow: Vec<Ipv4Prefix>,
}

impl Presence {
    /// Whether PUBLISH is taken from `peer`.
    pub fn allows(&self, peer: std::net::Ipv4Addr) -> bool {
        self.allow.iter().any(|p| p.contains(peer))
    }
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
}
