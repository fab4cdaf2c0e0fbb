//! Maps of the migration's connection controller (seed 000): traffic to a
//! service address goes to network 1 or network 2 by a map entry; while a
//! migration holds it, its packets are kept for release after the switch.

/// Networks a controller steers between (index = network id).
pub const NETWORKS_MAX: u32 = 8;
/// Receive queues of the terminal-side interface with an AF_XDP socket.
pub const QUEUES_MAX: u32 = 64;

/// `Steering::flags`.
pub const STEER_HOLD: u32 = 1;

/// Where traffic to a service address goes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Steering {
    pub network: u32,
    pub flags: u32,
}

/// How to reach a network: egress interface and next hop.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetEgress {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    pub valid: u32,
}

crate::stats! {
    /// Indices into `ST_STATS`.
    pub mod stat {
        STEERED = "steered",
        HELD = "held",
        /// Held, but no AF_XDP socket on the packet's queue: dropped.
        HOLD_NO_SOCKET = "hold_no_socket",
        NOT_STEERED = "not_steered",
        NO_NETWORK = "no_network",
    }
}
