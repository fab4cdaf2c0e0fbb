//! Maps of the `gateway` role (seed 002 claims 3-6, 8, 9, 11, 13): a
//! unique source port per user session, full NAT to a server of the group
//! behind a representative address, and back.

/// Largest number of server groups (representative addresses).
pub const GROUPS_MAX: u32 = 64;
/// Session types per group (claim 9).
pub const TYPES_MAX: u32 = 8;
/// Servers over all groups.
pub const SERVERS_MAX: u32 = 1024;
/// Slots of a group's weighted selection table per session type.
pub const SELECT_SLOTS: u32 = 64;
/// Sessions (= ports) a gateway can hold; sessions are indexed by port.
pub const SESSIONS_MAX: u32 = 65_536;
/// Terminal flows the fast path can map at once.
pub const FLOWS_MAX: u32 = 65_536;
/// GTP-U tunnels (sessions of session management, one PFCP session each)
/// a gateway holds; a tunnel's user sessions are ports like any other.
pub const TUNNELS_MAX: u32 = 16_384;
/// `Session::tunnel` / `FlowKey::tunnel` of plain-IP traffic.
pub const NO_TUNNEL: u32 = 0;
/// Rules classifying a new session into a session type.
pub const TYPE_RULES_MAX: u32 = 16;
/// No server in this selection slot.
pub const NO_SERVER: u16 = u16::MAX;

/// `GW_PROGS` slots of the IPv6 programs, and their names in the object:
/// plain IPv6, and the IPv6 T-PDU of a G-PDU.
pub const PROG_V6: u32 = 0;
pub const PROG_V6_NAME: &str = "gateway6";
pub const PROG_V6_GTPU: u32 = 1;
pub const PROG_V6_GTPU_NAME: &str = "gateway6_gtpu";
/// The IPv4 T-PDU of a G-PDU that came over IPv6 transport (from
/// `gateway6`, the outer headers checked and the tunnel found).
pub const PROG_GTPU4: u32 = 2;
pub const PROG_GTPU4_NAME: &str = "gateway_gtpu4";
/// The downlink of a tunnel whose access node is IPv6: the translated
/// packet encapsulated in GTP-U/UDP/IPv6 (from either program).
pub const PROG_ENCAP6: u32 = 3;
pub const PROG_ENCAP6_NAME: &str = "gateway_encap6";

/// Metadata magic: a test_run whose XDP metadata carries it is a dry run
/// (lookup): the program decides and rewrites but changes no map.
pub const DRY_RUN_MAGIC: u32 = 0x6472_7921;

/// `GwConfig`, one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GwConfig {
    /// The gateway's own address, written as the source of translated
    /// packets (network byte order).
    pub addr: u32,
    /// Port pool bounds, host order, inclusive.
    pub port_min: u16,
    pub port_max: u16,
    /// Non-zero: traffic has been configured (the program passes all
    /// packets until then).
    pub enabled: u32,
    /// The gateway's N3/S1-U address (network order): G-PDUs to it on UDP
    /// 2152 are decapsulated, and the downlink is encapsulated from it.
    /// 0: no GTP-U (plain IP only).
    pub n3_addr: u32,
    /// The gateway's IPv6 address (four words as in the packet): the
    /// source of translated IPv6 packets. All zero: no IPv6 sessions.
    pub addr6: [u32; 4],
    /// The gateway's IPv6 N3 address (four words as in the packet): G-PDUs
    /// over IPv6 transport to it on UDP 2152 are decapsulated, and the
    /// downlink toward an IPv6 access node is encapsulated from it. All
    /// zero: GTP-U over IPv4 only.
    pub n3_addr6: [u32; 4],
}

/// Key of `GW_SERVICES`: a representative address (claim 3).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// Key of `GW_SERVICES6`: an IPv6 representative address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey6 {
    pub addr: [u32; 4],
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceVal {
    pub group: u32,
}

/// A server of a group. It may sit outside the system (claim 6): then
/// `mac` is its next hop's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Server {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
    /// Next hop (or the server itself when on-link).
    pub mac: [u8; 6],
    /// Egress interface's MAC.
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    pub flags: u32,
    /// An IPv6 server's address (four words as in the packet); all zero
    /// (and `addr` set) for an IPv4 one. A group's servers are of the
    /// family of its representative addresses.
    pub addr6: [u32; 4],
}

/// Weighted selection table of one (group, session type): slots filled in
/// proportion to the servers' weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub servers: [u16; SELECT_SLOTS as usize],
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            servers: [NO_SERVER; SELECT_SLOTS as usize],
        }
    }
}

/// A rule mapping a new session to a session type: first match wins,
/// no match is type 0. A zero field matches anything.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeRule {
    pub proto: u8,
    /// DSCP + 1 (0 = any).
    pub dscp_plus1: u8,
    pub session_type: u8,
    pub valid: u8,
    /// Terminal prefix (network order) and its length (0 = any).
    pub prefix: u32,
    pub prefix_len: u32,
    /// Non-zero: the prefix is IPv6 (`prefix6`, `prefix_len` up to 128)
    /// and the rule matches IPv6 terminals only; an IPv4 prefix matches
    /// IPv4 terminals only. A rule without a prefix matches both.
    pub v6: u32,
    pub prefix6: [u32; 4],
}

/// Key of `GW_FLOWS`: the terminal flow of a user session. A flow inside
/// a GTP-U tunnel is keyed with its tunnel (index + 1), so two tunnels'
/// UEs with the same address never share a session.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
    /// [`NO_TUNNEL`] for plain IP, else the tunnel's index + 1.
    pub tunnel: u32,
}

/// Key of `GW_FLOWS6`: the IPv6 terminal flow of a user session.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey6 {
    pub addr: [u32; 4],
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
    /// [`NO_TUNNEL`] for plain IP, else the tunnel's index + 1.
    pub tunnel: u32,
}

/// `Tunnel::state`.
pub const TUNNEL_FREE: u32 = 0;
pub const TUNNEL_ACTIVE: u32 = 1;

/// A GTP-U tunnel pair of one session-management session (seed 002
/// claim 8: the session that holds the user sessions), at index = its
/// tunnel id. Written whole by the control plane (PFCP) while no TEID
/// points at it; `GW_TEIDS` makes it reachable.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tunnel {
    pub state: u32,
    /// Local (uplink) TEID, host order: the key of `GW_TEIDS`.
    pub ul_teid: u32,
    /// The access node's (downlink) TEID, host order.
    pub dl_teid: u32,
    /// UE address (network order): the inner source of the uplink.
    pub ue_addr: u32,
    /// The access node's IPv4 address (network order): outer destination
    /// of the downlink; 0 when the access node is IPv6 (`an_addr6`).
    pub an_addr: u32,
    /// QoS flow identifier for the PDU session container of the downlink;
    /// 0: no extension header.
    pub qfi: u8,
    pub _pad: [u8; 3],
    /// Neighbour toward the access node (next hop or the node itself),
    /// the egress interface's MAC and index.
    pub an_mac: [u8; 6],
    pub an_src_mac: [u8; 6],
    pub an_ifindex: u32,
    /// The UE's IPv6 prefix (four words as in the packet; the first two,
    /// a /64, are compared with an uplink's inner source): all zero for
    /// an IPv4-only PDU session.
    pub ue_addr6: [u32; 4],
    /// The access node's IPv6 address (four words as in the packet): the
    /// downlink goes in GTP-U/UDP/IPv6 from `GwConfig::n3_addr6`. All zero
    /// for an IPv4 access node (or none known yet).
    pub an_addr6: [u32; 4],
}

impl Tunnel {
    /// The access node's side is known: the downlink can be sent.
    pub fn has_downlink(&self) -> bool {
        self.an_addr != 0 || self.an_addr6 != [0; 4]
    }
}

/// Per-CPU usage of a tunnel, indexed like `GW_TUNNELS` (claim 6, the
/// PFCP usage reports): bytes are the inner IP packets' (what the UE sent
/// and receives, without the GTP-U/UDP/IP encapsulation).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    pub pkts_ul: u64,
    pub bytes_ul: u64,
    pub pkts_dl: u64,
    pub bytes_dl: u64,
}

/// Key of `GW_AUTH` (LPM trie): group, then terminal address; the prefix
/// length counts the 32 group bits plus the address prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthKey {
    /// Group id, network byte order (LPM compares bytes in order).
    pub group_be: u32,
    pub addr: u32,
}

/// Key of `GW_AUTH6` (LPM trie): group, then IPv6 terminal address; the
/// prefix length counts the 32 group bits plus the address prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthKey6 {
    pub group_be: u32,
    pub addr: [u32; 4],
}

/// `Session::family`.
pub const FAMILY_V4: u8 = 0;
pub const FAMILY_V6: u8 = 6;

/// `Session::state`.
pub const SESSION_FREE: u32 = 0;
pub const SESSION_ACTIVE: u32 = 1;

/// `Session::flags` bits, OR-ed by the fast path.
pub const SF_FIN: u32 = 1;
pub const SF_RST: u32 = 2;
pub const SF_SERVICE_CHANGED: u32 = 4;

/// A user session, at index = its port (claim 13: the port is the key).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub state: u32,
    pub flags: u32,
    /// Terminal flow.
    pub term_addr: u32,
    pub term_port: u16,
    pub proto: u8,
    pub session_type: u8,
    /// Representative address the terminal addressed.
    pub rep_addr: u32,
    pub rep_port: u16,
    /// [`FAMILY_V4`], or [`FAMILY_V6`]: the addresses are in `GW_SESS6`
    /// at the same port (`term_addr` and `rep_addr` are 0).
    pub family: u8,
    pub _pad: u8,
    /// [`NO_TUNNEL`] for plain IP, else the GTP-U tunnel's index + 1: the
    /// reply is encapsulated toward that tunnel's access node.
    pub tunnel: u32,
    pub _pad2: u32,
    pub group: u32,
    pub server: u32,
    /// Upstream neighbour and interface the terminal's packets came from;
    /// replies go back there.
    pub up_mac: [u8; 6],
    pub up_src_mac: [u8; 6],
    pub up_ifindex: u32,
    /// CLOCK_MONOTONIC ns (coarse: jiffy resolution is plenty for idle
    /// timeouts).
    pub created_ns: u64,
    pub last_seen_ns: u64,
}

/// The IPv6 addresses of the session at the same port in `GW_SESSIONS`
/// (four words each, as in the packet); written before the session is
/// made active.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session6 {
    pub term_addr: [u32; 4],
    pub rep_addr: [u32; 4],
}

/// The IPv6 packet in hand as `gateway6` parsed it, handed to its
/// subprograms through `GW_SCRATCH6` (per CPU, not pinned): read back from
/// a map, the offsets are the same unknown to the verifier whichever VLAN
/// and extension headers the packet had, so each subprogram is verified
/// once instead of once per header layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parsed6 {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    /// Offsets of the IPv6 header and of the upper-layer header; where
    /// the payload length says the packet ends.
    pub off: u32,
    pub l4: u32,
    pub payload_end: u32,
    pub proto: u32,
    /// From `gateway` to `gateway6_gtpu`: the tunnel (index + 1) of a
    /// G-PDU whose T-PDU is IPv6, the T-PDU's offset (`off`) and where the
    /// G-PDU ends (`tpdu_end`).
    pub tunnel: u32,
    pub tpdu_end: u32,
    /// From `gateway` to `gateway6`: the chain header it took off the
    /// frame, if `has_chain` (daisy chaining of IPv6 flows).
    pub chain: crate::chain::ChainHdr,
    pub has_chain: u8,
    pub _pad: u8,
    /// To `gateway_encap6`: the tunnel (`tunnel`), the translated inner
    /// packet's offset (`off`) and length (`tpdu_end`), and the plain
    /// path's reason and the frame's length as they came in.
    pub reason: u32,
    pub bytes: u32,
}

/// Per-CPU traffic counters of a session, indexed by port like the
/// session. Per-CPU so the fast path adds without atomics; the control
/// plane sums them and zeroes every CPU's copy before the port is reused.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    pub pkts_up: u64,
    pub bytes_up: u64,
    pub pkts_down: u64,
    pub bytes_down: u64,
}

crate::stats! {
    /// Indices into `GW_STATS`.
    pub mod stat {
        FORWARD = "forward",
        REVERSE = "reverse",
        NEW_SESSION = "new_session",
        SERVICE_CHANGE = "service_change",
        ICMP_REVERSE = "icmp_reverse",
        /// Neither IPv4 nor IPv6 (or IPv6 while the gateway has no IPv6
        /// address).
        NOT_IP = "not_ip",
        MALFORMED = "malformed",
        FRAGMENT = "fragment",
        NOT_FOR_US = "not_for_us",
        UNAUTHORIZED = "unauthorized",
        POOL_EXHAUSTED = "pool_exhausted",
        FLOWS_FULL = "flows_full",
        NO_SERVER = "no_server",
        NO_SESSION = "no_session",
        REVERSE_SPOOFED = "reverse_spoofed",
        REDIRECT_FAILED = "redirect_failed",
        LOST_RACE = "lost_race",
        GTPU_UPLINK = "gtpu_uplink",
        GTPU_DOWNLINK = "gtpu_downlink",
        GTPU_SIGNALLING = "gtpu_signalling",
        GTPU_UNKNOWN_TEID = "gtpu_unknown_teid",
        GTPU_TRUNCATED = "gtpu_truncated",
        GTPU_BAD_VERSION = "gtpu_bad_version",
        GTPU_BAD_EXTENSION = "gtpu_bad_extension",
        GTPU_BAD_LENGTH = "gtpu_bad_length",
        GTPU_INNER_MALFORMED = "gtpu_inner_malformed",
        GTPU_UE_MISMATCH = "gtpu_ue_mismatch",
        GTPU_NO_TUNNEL = "gtpu_no_tunnel",
        GTPU_ENCAP_FAILED = "gtpu_encap_failed",
        /// A downlink over IPv6 transport sent with a zero UDP checksum
        /// (RFC 6935): the inner packet's own checksums could not give
        /// it (an inner UDP/IPv4 datagram without a checksum, an inner
        /// IPv6 packet with extension headers).
        GTPU_ZERO_CHECKSUM6 = "gtpu_zero_checksum6",
        /// Frames that arrived with a chain header (`chain`).
        CHAIN_IN = "chain_in",
        /// Handed to the gateway that holds (or held) the flow.
        CHAIN_RELAY = "chain_relay",
        /// Returned to the chain's origin: no gateway down it has the flow.
        CHAIN_BOUNCE = "chain_bounce",
        /// A relayed frame served here (this gateway holds the flow).
        CHAIN_SERVED = "chain_served",
        /// A bounced frame's session created here, the chain's origin.
        CHAIN_ADOPTED = "chain_adopted",
        /// A chain header cut short or of an unknown kind: dropped.
        CHAIN_MALFORMED = "chain_malformed",
        /// No room for a relay entry: the frame was relayed without one.
        RELAYS_FULL = "relays_full",
    }
}
