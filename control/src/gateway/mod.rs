//! The gateway role (`[[gateway]]`): its config section, the
//! representative addresses it serves, the weighted selection tables of
//! its server groups, the expiry decisions of its sessions and their
//! accounting records, and the maps a config asks for. No kernel, no
//! sockets.

mod accounting;
pub mod config;
mod expiry;
pub mod gtpu;
pub mod pfcp;
mod plan;
mod selection;
mod service;

pub use accounting::AccountingRecord;
pub use expiry::{expiry, EndReason};
pub use plan::{plan, GatewayMaps, Indices, PlanError, TypeRulePlan};
pub use selection::selection;
pub use service::{proto_name, ServiceAddr};
