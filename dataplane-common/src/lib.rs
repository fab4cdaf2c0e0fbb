//! The kernel/user contract, written once: every map (`maps`), map keys
//! and values, ring-buffer records (`ring`), each role's counters
//! (`stats!`), constants, and the session hash. Everything that crosses
//! the kernel/user line is `#[repr(C)]` with explicit padding; no `bool` or
//! `Option` does.
#![cfg_attr(not(test), no_std)]

mod stats;

pub mod chain;
pub mod entry;
pub mod gateway;
pub mod hash;
pub mod lb;
pub mod maps;
pub mod migration;
pub mod ring;
pub mod router;
pub mod sip_monitor;

pub use stats::verdict;

/// IPv6 extension headers the fast path walks before it gives up (every
/// program that parses IPv6 and the userspace parsers of their copies).
pub const IPV6_MAX_EXT: usize = 6;

/// Layout version of every pinned map. Bump it whenever a map's key, value,
/// size or meaning changes; a daemon that finds pins of another version
/// refuses them instead of guessing (ARCHITECTURE.md §5).
pub const LAYOUT_VERSION: u32 = 15;

/// Magic stored beside the layout version so a foreign map of the same name
/// is not mistaken for ours.
pub const LAYOUT_MAGIC: u32 = 0x6564_6770; // "edgp"

/// Contents of the one-entry `META` map pinned beside the others.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayoutMeta {
    pub magic: u32,
    pub version: u32,
}

/// A `{packets, bytes}` pair; kept in per-CPU arrays, so no atomics.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

#[cfg(feature = "user")]
mod pod {
    unsafe impl aya::Pod for super::LayoutMeta {}
    unsafe impl aya::Pod for super::Counter {}
    unsafe impl aya::Pod for super::lb::GatewayEntry {}
    unsafe impl aya::Pod for super::lb::TableMeta {}
    unsafe impl aya::Pod for super::gateway::GwConfig {}
    unsafe impl aya::Pod for super::gateway::ServiceKey {}
    unsafe impl aya::Pod for super::gateway::ServiceKey6 {}
    unsafe impl aya::Pod for super::gateway::FlowKey6 {}
    unsafe impl aya::Pod for super::gateway::AuthKey6 {}
    unsafe impl aya::Pod for super::gateway::Session6 {}
    unsafe impl aya::Pod for super::gateway::Parsed6 {}
    unsafe impl aya::Pod for super::gateway::ServiceVal {}
    unsafe impl aya::Pod for super::gateway::Server {}
    unsafe impl aya::Pod for super::gateway::Selection {}
    unsafe impl aya::Pod for super::gateway::TypeRule {}
    unsafe impl aya::Pod for super::gateway::FlowKey {}
    unsafe impl aya::Pod for super::gateway::AuthKey {}
    unsafe impl aya::Pod for super::gateway::Session {}
    unsafe impl aya::Pod for super::gateway::SessionCounters {}
    unsafe impl aya::Pod for super::gateway::Tunnel {}
    unsafe impl aya::Pod for super::gateway::TunnelCounters {}
    unsafe impl aya::Pod for super::chain::Relay {}
    unsafe impl aya::Pod for super::router::RouterCfg {}
    unsafe impl aya::Pod for super::router::Fingerprint {}
    unsafe impl aya::Pod for super::router::HeldHeader {}
    unsafe impl aya::Pod for super::sip_monitor::SipCopyHeader {}
    unsafe impl aya::Pod for super::migration::Steering {}
    unsafe impl aya::Pod for super::migration::NetEgress {}
}
