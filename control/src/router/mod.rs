//! The router role (`[[router]]`): the VRRPv3 engine (RFC 5798) and the
//! load-sharing extension (seed 003) that splits the virtual router's
//! traffic over its routers.

pub mod loadshare;
pub mod vrrp;
