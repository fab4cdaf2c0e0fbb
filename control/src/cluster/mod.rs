//! The edge's shared state in etcd (`[cluster]`): the section, the key
//! layout and the records under it, and the gateway set an LB builds its
//! table from. The etcd client itself lives in the daemon crate; this is
//! what both it and the CLI agree on, without I/O.

pub mod config;
pub mod record;
