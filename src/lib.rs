//! The `edgeplane` daemon and CLI, as a library so tests use the same code
//! the binary runs. One folder per role (lb, gateway, router, sip_monitor,
//! presence, migration) holds that role's edge: sockets, timers, applying
//! map differences. Test support (namespaces, labs, fixtures, the demo
//! workload) lives in the `testlab` crate, not here.

pub mod caps;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod daemon;
pub mod durable;
pub mod failpoint;
pub mod gateway;
pub mod lb;
pub mod metrics;
pub mod migration;
pub mod neigh;
pub mod netlink;
pub mod netns;
pub mod packets;
pub mod presence;
pub mod router;
pub mod sd_notify;
pub mod sip_monitor;
pub mod sql;
pub mod tls;
pub mod top;
