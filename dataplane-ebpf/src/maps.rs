//! Every map of the XDP object, in one place. Userspace pins each of them
//! under `/sys/fs/bpf/edgeplane/<interface>/<NAME>`.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, PerCpuArray},
};
use dataplane_common::{
    lb::{self, GatewayEntry, TableMeta},
    verdict, Counter, LayoutMeta,
};

/// Layout version of the pinned set; written once by the daemon that
/// created the pins, checked by every daemon that reuses them.
#[map(name = "META")]
pub static META: Array<LayoutMeta> = Array::with_max_entries(1, 0);

/// Which Maglev copy (0 or 1) is live. Written by the control plane only
/// after the copy it names is complete (double buffering).
#[map(name = "LB_ACTIVE")]
pub static LB_ACTIVE: Array<u32> = Array::with_max_entries(1, 0);

/// Size, seed and digest of each Maglev copy. Written with its copy.
#[map(name = "LB_TABLE_META")]
pub static LB_TABLE_META: Array<TableMeta> = Array::with_max_entries(2, 0);

/// Two Maglev copies back to back: slot `copy * MAGLEV_MAX + h` holds a
/// gateway index. Written by the control plane, inactive copy only.
#[map(name = "LB_MAGLEV")]
pub static LB_MAGLEV: Array<u32> = Array::with_max_entries(2 * lb::MAGLEV_MAX, 0);

/// Gateway index → where to send. Written by the control plane before any
/// table refers to the index; never cleared while a live table does.
#[map(name = "LB_GATEWAYS")]
pub static LB_GATEWAYS: Array<GatewayEntry> = Array::with_max_entries(lb::GATEWAYS_MAX, 0);

/// Egress interfaces for XDP_REDIRECT, keyed by ifindex. Written by the
/// control plane for every interface a gateway is reached through.
#[map(name = "LB_TX_PORTS")]
pub static LB_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(64, 0);

/// Per-CPU `{packets, bytes}` per verdict and per reason (`lb::stat`).
#[map(name = "LB_STATS")]
pub static LB_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(lb::stat::COUNT, 0);

/// The floor program's one counter (benchmark baseline).
#[map(name = "FLOOR_STATS")]
pub static FLOOR_STATS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries(lb::FLOOR_STATS_LEN, 0);

/// The benchmark generator's frame template (64 bytes). Written by the
/// bench before it generates.
#[map(name = "GEN_FRAME")]
pub static GEN_FRAME: Array<[u8; 64]> = Array::with_max_entries(1, 0);

/// Count a verdict: every role's stats start with the five XDP actions
/// (`dataplane_common::stats!`), at the indices `verdict::stat_index` gives.
#[inline(always)]
pub fn count_verdict(map: &PerCpuArray<Counter>, action: u32, bytes: u64) {
    count(map, verdict::stat_index(action), bytes);
}

// The kernel's action numbers, as the common crate spells them.
const _: () = {
    use aya_ebpf::bindings::xdp_action;
    assert!(
        xdp_action::XDP_ABORTED == verdict::ABORTED
            && xdp_action::XDP_DROP == verdict::DROP
            && xdp_action::XDP_PASS == verdict::PASS
            && xdp_action::XDP_TX == verdict::TX
            && xdp_action::XDP_REDIRECT == verdict::REDIRECT
    );
};

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

use aya_ebpf::maps::{HashMap, LpmTrie, Queue};
use dataplane_common::gw::{
    self, AuthKey, FlowKey, GwConfig, Selection, Server, ServiceKey, ServiceVal, Session, SessionCounters, TypeRule,
};

/// The gateway's address and port pool bounds. Written by the control
/// plane at start and on reload.
#[map(name = "GW_CONFIG")]
pub static GW_CONFIG: Array<GwConfig> = Array::with_max_entries(1, 0);

/// Representative address → group (claim 3). Control plane.
#[map(name = "GW_SERVICES")]
pub static GW_SERVICES: HashMap<ServiceKey, ServiceVal> = HashMap::with_max_entries(gw::GROUPS_MAX * 4, 0);

/// Server index → address, port and next hop. Control plane.
#[map(name = "GW_SERVERS")]
pub static GW_SERVERS: Array<Server> = Array::with_max_entries(gw::SERVERS_MAX, 0);

/// (group * TYPES_MAX + type) → weighted server selection (claim 9).
/// Control plane.
#[map(name = "GW_SELECT")]
pub static GW_SELECT: Array<Selection> = Array::with_max_entries(gw::GROUPS_MAX * gw::TYPES_MAX, 0);

/// Session type rules, first match wins. Control plane.
#[map(name = "GW_TYPES")]
pub static GW_TYPES: Array<TypeRule> = Array::with_max_entries(gw::TYPE_RULES_MAX, 0);

/// (group, terminal prefix) → allowed (claim 5). Control plane.
#[map(name = "GW_AUTH")]
pub static GW_AUTH: LpmTrie<AuthKey, u32> = LpmTrie::with_max_entries(4096, 0);

/// Free source ports (host order: they index GW_SESSIONS). The fast path pops (atomic across CPUs); the control
/// plane pushes ports back once a session's entries are gone.
#[map(name = "GW_POOL")]
pub static GW_POOL: Queue<u16> = Queue::with_max_entries(gw::SESSIONS_MAX, 0);

/// Terminal flow → port (network order). Inserted by the fast path (never overwriting),
/// deleted by the control plane on expiry.
#[map(name = "GW_FLOWS")]
pub static GW_FLOWS: HashMap<FlowKey, u16> = HashMap::with_max_entries(gw::FLOWS_MAX, 0);

/// Port → user session. Written by the fast path for a port it popped;
/// freed by the control plane on expiry.
#[map(name = "GW_SESSIONS")]
pub static GW_SESSIONS: Array<Session> = Array::with_max_entries(gw::SESSIONS_MAX, 0);

/// Port → per-CPU session counters. Added to by the fast path; summed and
/// zeroed by the control plane.
#[map(name = "GW_SESS_STATS")]
pub static GW_SESS_STATS: PerCpuArray<SessionCounters> = PerCpuArray::with_max_entries(gw::SESSIONS_MAX, 0);

/// Interfaces the gateway may redirect to. Control plane.
#[map(name = "GW_TX_PORTS")]
pub static GW_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(64, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`gw::stat`).
#[map(name = "GW_STATS")]
pub static GW_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(gw::stat::COUNT, 0);

// ---- router (load sharing) ---------------------------------------------

use aya_ebpf::maps::RingBuf;
use dataplane_common::router::{self, Fingerprint, RouterCfg};

/// Virtual MAC, own MAC and direction. Control plane.
#[map(name = "RT_CFG")]
pub static RT_CFG: Array<RouterCfg> = Array::with_max_entries(1, 0);

/// CLOCK_MONOTONIC (coarse) ns until which the filter may route. Renewed
/// by the daemon every few milliseconds.
#[map(name = "RT_LEASE")]
pub static RT_LEASE: Array<u64> = Array::with_max_entries(1, 0);

/// Bucket → not mine / mine / hold. Control plane (the hand-off).
#[map(name = "RT_BUCKETS")]
pub static RT_BUCKETS: Array<u32> = Array::with_max_entries(router::BUCKETS, 0);

/// Per-CPU `{packets, bytes}` routed per bucket (rate monitoring, claim 7).
#[map(name = "RT_RATES")]
pub static RT_RATES: PerCpuArray<Counter> = PerCpuArray::with_max_entries(router::BUCKETS, 0);

/// Last packet routed per bucket (the hand-off's sequence point). Shared,
/// not per-CPU: the last write is the last packet routed, as long as one
/// bucket's frames are processed on one CPU at a time (they arrive in
/// order on one queue).
#[map(name = "RT_LAST")]
pub static RT_LAST: Array<Fingerprint> = Array::with_max_entries(router::BUCKETS, 0);

/// Frames of held buckets, for the control plane to route or discard.
#[map(name = "RT_HELD")]
pub static RT_HELD: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`router::stat`).
#[map(name = "RT_STATS")]
pub static RT_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(router::stat::COUNT, 0);

// ---- sip-monitor ---------------------------------------------------------

use dataplane_common::sip;

/// SIP ports to copy (network order) → 1. Control plane.
#[map(name = "SIP_PORTS")]
pub static SIP_PORTS: HashMap<u16, u32> = HashMap::with_max_entries(16, 0);

/// Copies of SIP packets for the monitor.
#[map(name = "SIP_RING")]
pub static SIP_RING: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`sip::stat`).
#[map(name = "SIP_STATS")]
pub static SIP_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(sip::stat::COUNT, 0);

// ---- migration connection controller ------------------------------------

use aya_ebpf::maps::XskMap;
use dataplane_common::steer::{self, NetEgress, Steering};

/// Service address (network order) → network and hold flag. Written by the
/// controller on a switch request.
#[map(name = "ST_STEER")]
pub static ST_STEER: HashMap<u32, Steering> = HashMap::with_max_entries(4096, 0);

/// Network id → egress. Controller configuration.
#[map(name = "ST_NETS")]
pub static ST_NETS: Array<NetEgress> = Array::with_max_entries(steer::NETWORKS_MAX, 0);

/// Egress interfaces for XDP_REDIRECT.
#[map(name = "ST_TX_PORTS")]
pub static ST_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(16, 0);

/// The controller's AF_XDP sockets by rx queue: packets held during a
/// migration go there, in arrival order per queue.
#[map(name = "ST_XSKS")]
pub static ST_XSKS: XskMap = XskMap::with_max_entries(steer::QUEUES_MAX, 0);

/// Per-CPU `{packets, bytes}` per verdict and reason (`steer::stat`).
#[map(name = "ST_STATS")]
pub static ST_STATS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(steer::stat::COUNT, 0);
