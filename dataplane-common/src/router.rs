//! Maps of the `router` role's load-sharing filter (seed 003): every
//! router of the virtual router receives the frames for the virtual MAC;
//! each routes only the packets whose condition (a hash bucket of the end
//! system's address) it owns.

use crate::ring::{Record, RecordHeader};

/// Conditions: hash buckets of the end-system address.
pub const BUCKETS: u32 = 256;

/// `ROUTER_BUCKETS` values.
pub const BUCKET_NOT_MINE: u32 = 0;
pub const BUCKET_MINE: u32 = 1;
/// Being handed to this router: buffer, do not route (claim 4).
pub const BUCKET_HOLD: u32 = 2;

/// How long the daemon's lease on the filter lasts: a daemon that stops
/// renewing it (killed) stops routing within this time, so a new master can
/// hand its buckets out without the dead router routing them too.
pub const LEASE_NS: u64 = 200_000_000;

/// Largest frame a held bucket buffers.
pub const HOLD_MAX: usize = 1536;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterCfg {
    pub vmac: [u8; 6],
    /// When set, routed frames are re-addressed to this MAC so the kernel
    /// takes them as its own; all zero, they keep the virtual MAC and a
    /// macvlan with that MAC receives them. (Native XDP on veth keeps the
    /// pkt_type computed before the program ran, so a re-addressed frame
    /// still counts as "other host" there: the daemon uses the macvlan.)
    pub own_mac: [u8; 6],
    /// 0: the end system is the source (upstream); 1: the destination.
    pub by_dst: u32,
    pub enabled: u32,
}

/// The last packet this router routed in a bucket. It is the hand-off's
/// sequence point: both routers see the same frames in the same order on
/// the shared segment, so the packet itself, not a clock, marks where the
/// old owner stopped.
///
/// The load-sharing protocol carries it as is (`serde` feature), so the
/// wire and the map hold one type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fingerprint {
    /// IPv4: the address in the first word, the others 0. IPv6: the
    /// address as four words. As in the packet.
    pub src: [u32; 4],
    pub dst: [u32; 4],
    /// IPv4: the identification. IPv6: the low 16 bits of the flow label.
    pub ip_id: u16,
    /// IPv4: the header checksum. IPv6: the payload length.
    pub ip_csum: u16,
    /// First 4 bytes after the fixed IP header (the ports), or 0 (IPv4
    /// with options).
    pub l4: u32,
    /// IPv6: the next 4 bytes (TCP sequence number, UDP length and
    /// checksum, ICMPv6 identifier and sequence), which tell apart the
    /// packets of a flow as IPv4's identification does. IPv4: 0.
    pub l4_next: u32,
    /// 4 or 6; 0: no packet yet.
    pub family: u32,
    /// Packets routed in this bucket so far (0: none yet).
    pub count: u64,
}
const _: () = assert!(core::mem::size_of::<Fingerprint>() == 56);

/// Header of a frame held for a bucket being handed over (`RT_HELD`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldHeader {
    pub bucket: u32,
    /// Frame length; a held frame is copied whole (longer ones are not
    /// held, see `HOLD_MAX`).
    pub len: u32,
}

impl RecordHeader for HeldHeader {
    fn captured(&self) -> usize {
        self.len as usize
    }
}

/// A held frame as reserved in `RT_HELD`.
pub type HeldFrame = Record<HeldHeader, HOLD_MAX>;
const _: () = assert!(core::mem::size_of::<HeldFrame>() == 8 + HOLD_MAX);

crate::stats! {
    /// Indices into `RT_STATS`.
    pub mod stat {
        NOT_VMAC = "not_vmac",
        /// Neither IPv4 nor IPv6 (ARP included): the kernel's.
        NOT_IP = "not_ip",
        /// IPv6 Neighbor Discovery (router/neighbor solicitations and
        /// advertisements, redirects) to the virtual MAC: passed, as ARP
        /// is, so the master answers for the virtual addresses.
        NEIGHBOR_DISCOVERY = "neighbor_discovery",
        MALFORMED = "malformed",
        ROUTED = "routed",
        NOT_OWNER = "not_owner",
        HELD = "held",
        /// The hold ring is full: dropped, not held.
        HOLD_OVERFLOW = "hold_overflow",
        LEASE_EXPIRED = "lease_expired",
        /// Longer than a held record takes (`HOLD_MAX`): dropped, not
        /// held.
        HOLD_TOO_LONG = "hold_too_long",
    }
}
