//! Control-plane engines and the daemon's contracts: pure code, tested
//! without a kernel or a network.

pub mod api;
pub mod config;
pub mod gateway;
pub mod lb;
pub mod migration;
pub mod presence;
pub mod router;
pub mod sip_monitor;

// Old paths, kept until the edgeplane package imports the new ones.
pub use lb::maglev;
pub use router::{loadshare, vrrp};
pub use sip_monitor::{sip, stream as sip_stream, track as sip_track};
// End of old paths.
