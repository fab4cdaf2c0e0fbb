//! The `[presence]` section: where the presence server listens, its
//! database, and whom it takes PUBLISH from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::field::{parse_prefix, ConfigError};

/// The presence server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    pub listen: std::net::SocketAddrV4,
    /// SQLite file, or a `postgres://` URL for PostgreSQL.
    pub database: PathBuf,
    /// Prefixes PUBLISH is accepted from.
    pub allow: Vec<String>,
}

impl Presence {
    /// Checks of this section, keys relative to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for a in &self.allow {
            if parse_prefix(a).is_none() {
                return Err(ConfigError::new("allow", format!("{a:?} is not A.B.C.D/LEN")));
            }
        }
        Ok(())
    }
}
