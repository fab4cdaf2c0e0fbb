//! Maps of the `lb` role.

/// Largest Maglev table the fast path holds. The `MAGLEV` array has two
/// copies of this many slots (double buffering).
pub const MAGLEV_MAX: u32 = 131_071;
/// Largest number of gateways an LB can address.
pub const GATEWAYS_MAX: u32 = 1024;
/// Maglev slot value meaning "no gateway" (empty gateway set).
pub const NO_GATEWAY: u32 = u32::MAX;

/// A Maglev slot's value: the gateway index in the low 16 bits; the high
/// 16 bits hold the previous table's owner + 1 when the slot moved (0: it
/// did not, or chaining is off). `NO_GATEWAY` is an empty slot.
#[inline(always)]
pub const fn slot(gateway: u32, previous: Option<u32>) -> u32 {
    match previous {
        Some(p) => gateway | ((p + 1) << 16),
        None => gateway,
    }
}

/// The gateway index of a slot value other than `NO_GATEWAY`.
#[inline(always)]
pub const fn slot_gateway(v: u32) -> u32 {
    v & 0xffff
}

/// The previous owner of a moved slot (see [`slot`]).
#[inline(always)]
pub const fn slot_previous(v: u32) -> Option<u32> {
    match v >> 16 {
        0 => None,
        p => Some(p - 1),
    }
}

const _: () = assert!(GATEWAYS_MAX < 0xffff);

/// `LB_TEID_OWNERS` entries: one per value of a TEID's top 8 bits.
pub const TEID_OWNERS: u32 = 256;
/// The owner index of a TEID (host byte order): its top 8 bits. A gateway
/// allocates its sessions' TEIDs with its own prefix.
#[inline(always)]
pub const fn teid_prefix(teid: u32) -> u32 {
    teid >> 24
}

/// `TableMeta::key`: what a packet without a TEID is keyed by.
/// The terminal: its source address only (the default, so all of a
/// terminal's user sessions reach one gateway).
pub const KEY_TERMINAL: u32 = 0;
/// The 5-tuple.
pub const KEY_FLOW: u32 = 1;

/// `GatewayEntry::flags`: the entry is in use.
pub const GW_F_VALID: u32 = 1;

/// Length of the gateway name kept in the pinned entry, so a restarted
/// daemon can name what it finds.
pub const GW_NAME_LEN: usize = 32;

/// Where the `lb` program sends a session's packets.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayEntry {
    /// Destination MAC (the gateway's).
    pub dst_mac: [u8; 6],
    /// Source MAC (the egress interface's).
    pub src_mac: [u8; 6],
    /// Egress interface; equal to the ingress one means XDP_TX.
    pub ifindex: u32,
    /// Gateway IPv4 address, network byte order (informational for the
    /// fast path; the L2 rewrite does not change IP headers).
    pub addr: u32,
    pub weight: u32,
    pub flags: u32,
    pub name: [u8; GW_NAME_LEN],
    /// An IPv6 gateway address instead (four words as in the packet; all
    /// zero for an IPv4 one). Informational as `addr`.
    pub addr6: [u32; 4],
}

impl GatewayEntry {
    pub const fn zeroed() -> Self {
        Self {
            dst_mac: [0; 6],
            src_mac: [0; 6],
            ifindex: 0,
            addr: 0,
            weight: 0,
            flags: 0,
            name: [0; GW_NAME_LEN],
            addr6: [0; 4],
        }
    }
}

/// Per-copy description of a Maglev table. Written before the copy is made
/// active, never while it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableMeta {
    /// Table size M (prime); 0 means the copy was never written.
    pub size: u32,
    pub seed: u32,
    /// Digest of the table contents (by gateway name), so two LBs can be
    /// compared from their pinned state alone.
    pub digest: u64,
    pub generation: u64,
    /// `KEY_TERMINAL` or `KEY_FLOW`: switches with the table it describes.
    pub key: u32,
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<TableMeta>() == 32);

crate::stats! {
    /// Indices into `LB_STATS` (per-CPU `Counter`s): the verdicts, then the
    /// key kind of each forwarded packet and the reasons a packet was
    /// passed to the kernel.
    pub mod stat {
        KEY_TEID = "key_teid",
        KEY_FLOW = "key_flow",
        KEY_TERMINAL = "key_terminal",
        KEY_TEID_OWNER = "key_teid_owner",
        /// Neither IPv4 nor IPv6 (ARP, ...).
        NOT_IP = "not_ip",
        TRUNC_ETH = "truncated_ethernet",
        TRUNC_VLAN = "truncated_vlan",
        TOO_MANY_VLANS = "too_many_vlans",
        TRUNC_IPV4 = "truncated_ipv4",
        BAD_IHL = "bad_ihl",
        BAD_IP_VERSION = "bad_ip_version",
        FRAGMENT = "fragment",
        NOT_TCP_UDP = "not_tcp_udp",
        TRUNC_L4 = "truncated_l4",
        TRUNC_GTPU = "truncated_gtpu",
        GTPU_BAD_VERSION = "gtpu_bad_version",
        GTPU_NOT_GPDU = "gtpu_not_gpdu",
        NO_TABLE = "no_table",
        NO_GATEWAY = "no_gateway",
        REDIRECT_FAILED = "redirect_failed",
        /// A packet of a moved slot, sent with a chain header naming the
        /// previous owner (counted besides its key kind).
        CHAINED = "chained",
        /// The frame could not grow for the chain header: sent without
        /// it (the new owner's relay entries still apply).
        CHAIN_FAILED = "chain_failed",
        /// An IPv6 packet classified (counted besides its key kind).
        IPV6 = "ipv6",
        /// Shorter than the 40-octet IPv6 header.
        TRUNC_IPV6 = "truncated_ipv6",
        /// Payload length 0 (a jumbogram) or past the frame.
        IPV6_BAD_LENGTH = "ipv6_bad_payload_length",
        /// An extension header past the payload, or more of them than
        /// the program walks (`IPV6_MAX_EXT`).
        IPV6_EXT_CHAIN = "ipv6_extension_chain",
    }
}

/// Counters of the floor program (benchmark baseline): 0 = IPv4 frames,
/// 1 = anything else.
pub const FLOOR_STATS_LEN: u32 = 2;

/// The bound on IPv6 extension headers walked (shared by every program).
pub use crate::IPV6_MAX_EXT;

/// GTP-U port (3GPP TS 29.281).
pub const GTPU_PORT: u16 = 2152;
