//! Daisy chaining between the lb and the gateways (seed 002 claim 20;
//! Beamer, NSDI'18): a session keeps the gateway it started on when the
//! gateway set changes.
//!
//! - The lb writes, into each Maglev slot, the gateway that owned the slot
//!   in the table before (`lb::slot`). A packet of such a *moved* slot goes
//!   to the new owner with a [`ChainHdr`] of kind [`MOVED`] naming the
//!   previous owner's MAC.
//! - A gateway with no flow for the packet (and no TCP SYN) keeps a relay
//!   entry (`GW_RELAYS`: flow → previous owner) and hands the frame to the
//!   previous owner ([`RELAY`]); later packets of the flow follow the relay
//!   entry whether or not the lb still marks them, so A → B → C chains
//!   through B.
//! - A gateway that gets a [`RELAY`] serves it if it has the flow; else it
//!   follows its own relay entry (at most [`HOPS`] times) or returns the
//!   frame to the gateway that started the chain ([`BOUNCE`]), which then
//!   creates the session itself, with the lb's MAC from the header as its
//!   reverse path.
//!
//! The header sits between the source MAC and the frame's EtherType (or
//! VLAN tags), under an EtherType of its own: the lb and the gateways share
//! one L2 segment, as the lb's L2 rewrite already requires. The core's MTU
//! must carry [`HDR_LEN`] more bytes for moved slots.

/// IEEE 802 "local experimental" EtherType 1.
pub const ETHERTYPE: u16 = 0x88b5;
/// Bytes a chain header adds to a frame.
pub const HDR_LEN: usize = 22;

/// `ChainHdr::kind`: lb → the slot's new owner; `next_mac` is the
/// previous owner.
pub const MOVED: u8 = 1;
/// Gateway → the gateway that may hold the flow; `origin_mac` and `lb_mac`
/// say where a bounce goes and what the session's reverse path is.
pub const RELAY: u8 = 2;
/// Back to `origin_mac`: nobody down the chain holds the flow.
pub const BOUNCE: u8 = 3;
/// Relay hops a chain may take before it bounces.
pub const HOPS: u8 = 4;

/// The chain header, as on the wire (no padding: bytes only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainHdr {
    /// [`ETHERTYPE`], big endian.
    pub ethertype: [u8; 2],
    pub kind: u8,
    /// Relay hops left.
    pub hops: u8,
    /// [`MOVED`]: the previous owner. Otherwise zero.
    pub next_mac: [u8; 6],
    /// [`RELAY`] / [`BOUNCE`]: the gateway the lb sent the frame to.
    pub origin_mac: [u8; 6],
    /// [`RELAY`] / [`BOUNCE`]: the lb's MAC the frame came from.
    pub lb_mac: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<ChainHdr>() == HDR_LEN);

impl ChainHdr {
    pub const fn new(kind: u8, hops: u8, next: [u8; 6], origin: [u8; 6], lb: [u8; 6]) -> Self {
        Self {
            ethertype: ETHERTYPE.to_be_bytes(),
            kind,
            hops,
            next_mac: next,
            origin_mac: origin,
            lb_mac: lb,
        }
    }
}

/// Value of `GW_RELAYS`: where a flow this gateway does not hold lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relay {
    /// The gateway the flow is handed to (the slot's previous owner).
    pub next_mac: [u8; 6],
    pub _pad: [u8; 2],
    /// CLOCK_MONOTONIC (coarse) ns of the last packet relayed; the
    /// sweeper removes the entry after the flow's idle timeout.
    pub last_seen_ns: u64,
}
