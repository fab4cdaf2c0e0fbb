//! The router role (`[[router]]`): its config section, the VRRPv3 engine
//! (RFC 5798) and the load-sharing extension (seed 003) that splits the
//! virtual router's traffic over its routers.

pub mod config;
pub mod loadshare;
pub mod vrrp;
