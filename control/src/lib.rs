//! Control-plane engines and the daemon's contracts: pure code, tested
//! without a kernel or a network.
//!
//! One folder per role, each with its config section (`<role>::config`)
//! and its engines: `lb`, `gateway`, `router`, `sip_monitor`, `presence`,
//! `migration`. `config` composes the sections into the host config;
//! `field` is what the sections share; `api` is the daemon's API.

pub mod api;
pub mod cluster;
pub mod config;
pub mod field;
pub mod gateway;
pub mod lb;
pub mod migration;
pub mod presence;
pub mod router;
pub mod sip_monitor;
