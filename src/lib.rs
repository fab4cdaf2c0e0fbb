//! The `edgeplane` daemon and CLI, as a library so tests use the same code
//! the binary runs. Test support (namespaces, labs, fixtures, the demo
//! workload) lives in the `testlab` crate, not here.

pub mod client;
pub mod daemon;
pub mod gw;
pub mod lb;
pub mod loadshare;
pub mod metrics;
pub mod migration;
pub mod neigh;
pub mod netns;
pub mod packets;
pub mod presence_server;
pub mod sipmon;
pub mod vrrp;
