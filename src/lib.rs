//! The `edgeplane` daemon and CLI, as a library so tests and benches use
//! the same code the binary runs.

pub mod bench;
pub mod bench_sip;
pub mod bench_veth;
pub mod bench_vrrp;
pub mod client;
pub mod counter;
pub mod daemon;
pub mod demo;
pub mod fixtures;
pub mod gw;
pub mod lb;
pub mod loadshare;
pub mod metrics;
pub mod migrate;
pub mod migration_lab;
pub mod neigh;
pub mod netns;
pub mod packets;
pub mod pg_lab;
pub mod presence_server;
pub mod sip_lab;
pub mod sipmon;
pub mod tcp_repair;
pub mod topo;
pub mod vrrp;
pub mod vrrp_lab;
