//! Control-plane engines and the daemon's contracts: pure code, tested
//! without a kernel or a network.

pub mod api;
pub mod config;
pub mod gateway;
pub mod lb;
pub mod loadshare;
pub mod migration;
pub mod presence;
pub mod sip;
pub mod sip_stream;
pub mod sip_track;
pub mod vrrp;

// Old paths, kept until the edgeplane package imports the new ones.
pub use lb::maglev;
// End of old paths.
