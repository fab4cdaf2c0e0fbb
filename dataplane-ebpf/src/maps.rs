//! Every map of the XDP object, in one place, each with who writes it. The
//! geometry comes from `dataplane_common::maps` (the one table userspace
//! pins and checks by); `#[map]` names each map after its static, and
//! dataplane-user's `object_maps_match_the_table` test compares the
//! compiled object with the table both ways.

use aya_ebpf::{
    bindings::xdp_action,
    macros::map,
    maps::{
        Array, DevMapHash, HashMap, LpmTrie, PerCpuArray, ProgramArray, Queue, RingBuf, XskMap,
    },
};
use dataplane_common::{
    chain::Relay,
    gateway::{
        AuthKey, AuthKey6, FlowKey, FlowKey6, GwConfig, Parsed6, Selection, Server, ServiceKey,
        ServiceKey6, ServiceVal, Session, Session6, SessionCounters, Tunnel, TunnelCounters,
        TypeRule,
    },
    lb::{GatewayEntry, TableMeta},
    maps as def,
    migration::{NetEgress, Steering},
    router::{Fingerprint, RouterCfg},
    verdict, Counter, LayoutMeta,
};

/// Layout version of the pinned set; written once by the daemon that
/// created the pins, checked by every daemon that reuses them.
#[map]
pub static META: Array<LayoutMeta> = Array::with_max_entries(def::META.max, 0);

// ---- entry (one program per interface) ----------------------------------

/// The interface's role stages in order. Written by the daemon when a role
/// registers its program (`entry.rs` walks it).
#[map]
pub static ENTRY_STAGES: ProgramArray = ProgramArray::with_max_entries(def::ENTRY_STAGES.max, 0);

/// The slot after each role's stage, and the entry's first
/// (`entry::chain`). Written by the daemon with the stages.
#[map]
pub static ENTRY_NEXT: Array<u32> = Array::with_max_entries(def::ENTRY_NEXT.max, 0);

/// Per-CPU `{packets, bytes}` of what the entry program decided itself.
#[map]
pub static ENTRY_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(def::ENTRY_STATS.max, 0);

// ---- lb ----------------------------------------------------------------

/// Which Maglev copy (0 or 1) is live. Written by the control plane only
/// after the copy it names is complete (double buffering).
#[map]
pub static LB_ACTIVE: Array<u32> = Array::with_max_entries(def::LB_ACTIVE.max, 0);

/// Size, seed and digest of each Maglev copy. Written with its copy.
#[map]
pub static LB_TABLE_META: Array<TableMeta> = Array::with_max_entries(def::LB_TABLE_META.max, 0);

/// Two Maglev copies back to back: slot `copy * MAGLEV_MAX + h` holds a
/// gateway index. Written by the control plane, inactive copy only.
#[map]
pub static LB_MAGLEV: Array<u32> = Array::with_max_entries(def::LB_MAGLEV.max, 0);

/// Gateway index → where to send. Written by the control plane before any
/// table refers to the index; never cleared while a live table does.
#[map]
pub static LB_GATEWAYS: Array<GatewayEntry> = Array::with_max_entries(def::LB_GATEWAYS.max, 0);

/// TEID prefix (top 8 bits) → owning gateway's index (`NO_GATEWAY` for
/// none), consulted before the Maglev table for G-PDUs. Written by the
/// control plane after the entry it names.
#[map]
pub static LB_TEID_OWNERS: Array<u32> = Array::with_max_entries(def::LB_TEID_OWNERS.max, 0);

/// Egress interfaces for XDP_REDIRECT, keyed by ifindex. Written by the
/// control plane for every interface a gateway is reached through.
#[map]
pub static LB_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(def::LB_TX_PORTS.max, 0);

/// Per-CPU `{packets, bytes}` per verdict and per reason (`lb::stat`).
#[map]
pub static LB_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::LB_STATS.max, 0);

/// The floor program's one counter (benchmark baseline).
#[map]
pub static FLOOR_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(def::FLOOR_STATS.max, 0);

/// The benchmark generator's frame template (64 bytes). Written by the
/// bench before it generates.
#[map]
pub static GEN_FRAME: Array<[u8; 64]> = Array::with_max_entries(def::GEN_FRAME.max, 0);

/// The template of a 128-byte frame.
#[map]
pub static GEN_FRAME_LONG: Array<[u8; 128]> = Array::with_max_entries(def::GEN_FRAME_LONG.max, 0);

/// Count a verdict: every role's stats start with the five XDP actions
/// (`dataplane_common::stats!`), at the indices `verdict::stat_index` gives.
#[inline(always)]
pub fn count_verdict(map: &PerCpuArray<Counter>, action: u32, bytes: u64) {
    count(map, verdict::stat_index(action), bytes);
}

// The kernel's action numbers, as the common crate spells them.
const _: () = assert!(
    xdp_action::XDP_ABORTED == verdict::ABORTED
        && xdp_action::XDP_DROP == verdict::DROP
        && xdp_action::XDP_PASS == verdict::PASS
        && xdp_action::XDP_TX == verdict::TX
        && xdp_action::XDP_REDIRECT == verdict::REDIRECT
);

#[inline(always)]
pub fn count(map: &PerCpuArray<Counter>, index: u32, bytes: u64) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, nothing else on this CPU runs concurrently.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

// ---- gateway ----------------------------------------------------------

/// The gateway's address and port pool bounds. Written by the control
/// plane at start and on reload.
#[map]
pub static GW_CONFIG: Array<GwConfig> = Array::with_max_entries(def::GW_CONFIG.max, 0);

/// Representative address → group (claim 3). Control plane.
#[map]
pub static GW_SERVICES: HashMap<ServiceKey, ServiceVal> =
    HashMap::with_max_entries(def::GW_SERVICES.max, 0);

/// IPv6 representative address → group. Control plane.
#[map]
pub static GW_SERVICES6: HashMap<ServiceKey6, ServiceVal> =
    HashMap::with_max_entries(def::GW_SERVICES6.max, 0);

/// Server index → address, port and next hop. Control plane.
#[map]
pub static GW_SERVERS: Array<Server> = Array::with_max_entries(def::GW_SERVERS.max, 0);

/// (group * TYPES_MAX + type) → weighted server selection (claim 9).
/// Control plane.
#[map]
pub static GW_SELECT: Array<Selection> = Array::with_max_entries(def::GW_SELECT.max, 0);

/// Session type rules, first match wins. Control plane.
#[map]
pub static GW_TYPES: Array<TypeRule> = Array::with_max_entries(def::GW_TYPES.max, 0);

/// (group, terminal prefix) → allowed (claim 5). Control plane.
#[map]
pub static GW_AUTH: LpmTrie<AuthKey, u32> = LpmTrie::with_max_entries(def::GW_AUTH.max, 0);

/// (group, IPv6 terminal prefix) → allowed. Control plane.
#[map]
pub static GW_AUTH6: LpmTrie<AuthKey6, u32> = LpmTrie::with_max_entries(def::GW_AUTH6.max, 0);

/// Group → non-zero when it admits every terminal (its `GW_AUTH` holds
/// 0.0.0.0/0): set after that entry is added, cleared before it goes.
/// Control plane.
#[map]
pub static GW_OPEN: Array<u32> = Array::with_max_entries(def::GW_OPEN.max, 0);

/// Free source ports (host order: they index GW_SESSIONS). The fast path pops (atomic across CPUs); the control
/// plane pushes ports back once a session's entries are gone.
#[map]
pub static GW_POOL: Queue<u16> = Queue::with_max_entries(def::GW_POOL.max, 0);

/// Terminal flow → port (network order). Inserted by the fast path (never overwriting),
/// deleted by the control plane on expiry.
#[map]
pub static GW_FLOWS: HashMap<FlowKey, u16> = HashMap::with_max_entries(def::GW_FLOWS.max, 0);

/// IPv6 terminal flow → port (network order), as `GW_FLOWS`.
#[map]
pub static GW_FLOWS6: HashMap<FlowKey6, u16> = HashMap::with_max_entries(def::GW_FLOWS6.max, 0);

/// Port → the IPv6 addresses of its session. Written by the fast path
/// before the session is made active.
#[map]
pub static GW_SESS6: Array<Session6> = Array::with_max_entries(def::GW_SESS6.max, 0);

/// Slot `PROG_V6`: the gateway's IPv6 program. Written by the loader.
#[map]
pub static GW_PROGS: ProgramArray = ProgramArray::with_max_entries(def::GW_PROGS.max, 0);

/// The IPv6 packet in hand, from `gateway6` to its subprograms.
#[map]
pub static GW_SCRATCH6: PerCpuArray<Parsed6> =
    PerCpuArray::with_max_entries(def::GW_SCRATCH6.max, 0);

/// Port → user session. Written by the fast path for a port it popped;
/// freed by the control plane on expiry.
#[map]
pub static GW_SESSIONS: Array<Session> = Array::with_max_entries(def::GW_SESSIONS.max, 0);

/// Port → per-CPU session counters. Added to by the fast path; summed and
/// zeroed by the control plane.
#[map]
pub static GW_SESS_STATS: PerCpuArray<SessionCounters> =
    PerCpuArray::with_max_entries(def::GW_SESS_STATS.max, 0);

/// Tunnel index → GTP-U tunnel (TEIDs, UE and access node addresses, QFI,
/// next hop toward the access node). Written whole by the control plane
/// while no `GW_TEIDS` entry points at it.
#[map]
pub static GW_TUNNELS: Array<Tunnel> = Array::with_max_entries(def::GW_TUNNELS.max, 0);

/// Uplink TEID (host order) → tunnel index. Inserted by the control plane
/// after the tunnel, deleted before it is freed.
#[map]
pub static GW_TEIDS: HashMap<u32, u32> = HashMap::with_max_entries(def::GW_TEIDS.max, 0);

/// Tunnel index → per-CPU usage (inner IP bytes). Added to by the fast
/// path; read and zeroed by the control plane once the TEID is gone.
#[map]
pub static GW_TUN_STATS: PerCpuArray<TunnelCounters> =
    PerCpuArray::with_max_entries(def::GW_TUN_STATS.max, 0);

/// Flows this gateway relays to the gateway holding them (daisy chaining,
/// `dataplane_common::chain`). Written by the program; idle entries are
/// removed by the control plane's sweeper.
#[map]
pub static GW_RELAYS: HashMap<FlowKey, Relay> = HashMap::with_max_entries(def::GW_RELAYS.max, 0);

/// IPv6 flow → relay, as `GW_RELAYS`.
#[map]
pub static GW_RELAYS6: HashMap<FlowKey6, Relay> = HashMap::with_max_entries(def::GW_RELAYS6.max, 0);

/// Interfaces the gateway may redirect to. Control plane.
#[map]
pub static GW_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(def::GW_TX_PORTS.max, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`gateway::stat`).
#[map]
pub static GW_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::GW_STATS.max, 0);

// ---- router (load sharing) ---------------------------------------------

/// Virtual MAC, own MAC and direction. Control plane.
#[map]
pub static RT_CFG: Array<RouterCfg> = Array::with_max_entries(def::RT_CFG.max, 0);

/// CLOCK_MONOTONIC (coarse) ns until which the filter may route. Renewed
/// by the daemon every few milliseconds.
#[map]
pub static RT_LEASE: Array<u64> = Array::with_max_entries(def::RT_LEASE.max, 0);

/// Bucket → not mine / mine / hold. Control plane (the hand-off).
#[map]
pub static RT_BUCKETS: Array<u32> = Array::with_max_entries(def::RT_BUCKETS.max, 0);

/// Per-CPU `{packets, bytes}` routed per bucket (rate monitoring, claim 7).
#[map]
pub static RT_RATES: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::RT_RATES.max, 0);

/// Last packet routed per bucket (the hand-off's sequence point). Shared,
/// not per-CPU: the last write is the last packet routed, as long as one
/// bucket's frames are processed on one CPU at a time (they arrive in
/// order on one queue).
#[map]
pub static RT_LAST: Array<Fingerprint> = Array::with_max_entries(def::RT_LAST.max, 0);

/// Frames of held buckets (`router::HeldFrame`), for the control plane to
/// route or discard.
#[map]
pub static RT_HELD: RingBuf = RingBuf::with_byte_size(def::RT_HELD.max, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`router::stat`).
#[map]
pub static RT_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::RT_STATS.max, 0);

// ---- sip-monitor ---------------------------------------------------------

/// SIP ports to copy (network order) → 1. Control plane.
#[map]
pub static SIP_PORTS: HashMap<u16, u32> = HashMap::with_max_entries(def::SIP_PORTS.max, 0);

/// Copies of SIP packets (`sip_monitor::SipCopy`) for the monitor.
#[map]
pub static SIP_RING: RingBuf = RingBuf::with_byte_size(def::SIP_RING.max, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`sip_monitor::stat`).
#[map]
pub static SIP_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::SIP_STATS.max, 0);

// ---- migration connection controller ------------------------------------

/// Service address (network order) → network and hold flag. Written by the
/// controller on a switch request.
#[map]
pub static ST_STEER: HashMap<u32, Steering> = HashMap::with_max_entries(def::ST_STEER.max, 0);
#[map]
pub static ST_STEER6: HashMap<[u32; 4], Steering> =
    HashMap::with_max_entries(def::ST_STEER6.max, 0);

/// Network id → egress. Controller configuration.
#[map]
pub static ST_NETS: Array<NetEgress> = Array::with_max_entries(def::ST_NETS.max, 0);

/// Egress interfaces for XDP_REDIRECT.
#[map]
pub static ST_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(def::ST_TX_PORTS.max, 0);

/// The controller's AF_XDP sockets by rx queue: packets held during a
/// migration go there, in arrival order per queue.
#[map]
pub static ST_XSKS: XskMap = XskMap::with_max_entries(def::ST_XSKS.max, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`migration::stat`).
#[map]
pub static ST_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(def::ST_STATS.max, 0);
