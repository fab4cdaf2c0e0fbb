//! Maps of the `lb` role.

/// Largest Maglev table the fast path holds. The `MAGLEV` array has two
/// copies of this many slots (double buffering).
pub const MAGLEV_MAX: u32 = 131_071;
/// Largest number of gateways an LB can address.
pub const GATEWAYS_MAX: u32 = 1024;
/// Maglev slot value meaning "no gateway" (empty gateway set).
pub const NO_GATEWAY: u32 = u32::MAX;

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
}

/// Indices into `LB_STATS` (per-CPU `Counter`s). The first five are the
/// verdicts; the rest are the reasons a packet was passed to the kernel.
pub mod stat {
    pub const TX: u32 = 0;
    pub const REDIRECT: u32 = 1;
    pub const PASS: u32 = 2;
    pub const DROP: u32 = 3;
    pub const ABORTED: u32 = 4;
    pub const KEY_TEID: u32 = 5;
    pub const KEY_FLOW: u32 = 6;
    pub const NOT_IPV4: u32 = 7;
    pub const TRUNC_ETH: u32 = 8;
    pub const TRUNC_VLAN: u32 = 9;
    pub const TOO_MANY_VLANS: u32 = 10;
    pub const TRUNC_IPV4: u32 = 11;
    pub const BAD_IHL: u32 = 12;
    pub const BAD_IP_VERSION: u32 = 13;
    pub const FRAGMENT: u32 = 14;
    pub const NOT_TCP_UDP: u32 = 15;
    pub const TRUNC_L4: u32 = 16;
    pub const TRUNC_GTPU: u32 = 17;
    pub const GTPU_BAD_VERSION: u32 = 18;
    pub const GTPU_NOT_GPDU: u32 = 19;
    pub const NO_TABLE: u32 = 20;
    pub const NO_GATEWAY: u32 = 21;
    pub const REDIRECT_FAILED: u32 = 22;
    pub const COUNT: u32 = 23;

    /// Names as exported by the CLI and the metrics endpoint.
    pub const NAMES: [&str; COUNT as usize] = [
        "tx",
        "redirect",
        "pass",
        "drop",
        "aborted",
        "key_teid",
        "key_flow",
        "not_ipv4",
        "truncated_ethernet",
        "truncated_vlan",
        "too_many_vlans",
        "truncated_ipv4",
        "bad_ihl",
        "bad_ip_version",
        "fragment",
        "not_tcp_udp",
        "truncated_l4",
        "truncated_gtpu",
        "gtpu_bad_version",
        "gtpu_not_gpdu",
        "no_table",
        "no_gateway",
        "redirect_failed",
    ];
    /// Entries below this index are verdicts, the rest are key kinds and
    /// reasons.
    pub const VERDICTS: u32 = 5;
}

/// Counters of the floor program (benchmark baseline): 0 = IPv4 frames,
/// 1 = anything else.
pub const FLOOR_STATS_LEN: u32 = 2;

/// GTP-U port (3GPP TS 29.281).
pub const GTPU_PORT: u16 = 2152;
