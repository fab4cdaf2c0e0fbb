//! Control-plane engines and the daemon's contracts: pure code, tested
//! without a kernel or a network.
//!
//! One folder per role, each with its config section (`<role>::config`)
//! and its engines: `lb`, `gateway`, `router`, `sip_monitor`, `presence`,
//! `migration`. `config` composes the sections into the host config;
//! `field` is what the sections share; `api` is the daemon's API.

pub mod api;
pub mod config;
pub mod field;
pub mod gateway;
pub mod lb;
pub mod migration;
pub mod presence;
pub mod router;
pub mod sip_monitor;

// Old paths, kept until the edgeplane package imports the new ones.
// Delete from here to "End of old paths", and the two lines marked
// "Old paths" in config.rs and gateway/mod.rs that glob-import
// `old_paths::config` and `old_paths::gateway`.
pub use lb::maglev;
pub use router::{loadshare, vrrp};
pub use sip_monitor::{sip, stream as sip_stream, track as sip_track};

#[doc(hidden)]
pub mod old_paths {
    /// `control::config::…`: the roles' sections, before each moved to
    /// its role, and the shared field parsers, now in `field`.
    pub mod config {
        pub use crate::field::{parse_mac, validate_ifname};
        pub use crate::lb::config::{Lb, MAX_WEIGHT};
        pub use crate::migration::config::{
            AppCommands, MigratableProcess, Migration, MigrationAgent, MigrationController,
            MigrationCoordinator, ProcessPlace, SteerNetwork, SteerService,
        };
        pub use crate::presence::config::Presence;
        pub use crate::router::config::{LoadSharing, Router};
        pub use crate::sip_monitor::config::SipMonitor;
        /// `lb::config::Backend` under its old name.
        pub type Gateway = crate::lb::config::Backend;
    }

    /// `control::gateway::…`: the gateway's section, now in
    /// `gateway::config`, and the prefix parser, now in `field`.
    pub mod gateway {
        pub use crate::field::parse_prefix;
        pub use crate::gateway::config::{
            parse_ports, Accounting, Gateway, Group, ServerCfg, SessionType, Timeouts,
        };
    }
}
// End of old paths.
