//! Every map of the XDP object, once: name, kind, key and value size and
//! size. The eBPF crate declares its maps with these sizes, userspace pins
//! and checks pins against this table, and a dataplane-user test compares
//! the compiled object with it both ways.
//!
//! A map's name is its symbol in the object (aya-ebpf's `#[map]` names a
//! map after its static), pinned as `/sys/fs/bpf/edgeplane/<iface>/<name>`.

use core::mem::size_of;

use crate::{chain, entry, gateway, lb, migration, router, sip_monitor, Counter, LayoutMeta};

/// The BPF map types the object uses (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    Array,
    PerCpuArray,
    Hash,
    LpmTrie,
    Queue,
    DevMapHash,
    RingBuf,
    XskMap,
    ProgArray,
}

/// Whether a map is pinned beside the interface's others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pinning {
    /// `/sys/fs/bpf/edgeplane/<iface>/<name>`, taken over by the next daemon.
    PerInterface,
    /// Fresh in every load.
    Never,
}

/// One map's geometry as the kernel reports it (`bpf_map_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapDef {
    pub name: &'static str,
    pub kind: MapKind,
    pub key: u32,
    pub value: u32,
    /// Entries; bytes for a ring buffer.
    pub max: u32,
    pub pinning: Pinning,
}

const fn size<T>() -> u32 {
    size_of::<T>() as u32
}

impl MapDef {
    const fn new(name: &'static str, kind: MapKind, key: u32, value: u32, max: u32) -> Self {
        Self {
            name,
            kind,
            key,
            value,
            max,
            pinning: Pinning::PerInterface,
        }
    }

    /// The same map, never pinned.
    pub const fn unpinned(self) -> Self {
        Self {
            pinning: Pinning::Never,
            ..self
        }
    }

    pub const fn is_pinned(&self) -> bool {
        matches!(self.pinning, Pinning::PerInterface)
    }

    /// Array maps are keyed by a u32 index.
    pub const fn array<V>(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::Array, 4, size::<V>(), max)
    }

    pub const fn per_cpu_array<V>(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::PerCpuArray, 4, size::<V>(), max)
    }

    pub const fn hash<K, V>(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::Hash, size::<K>(), size::<V>(), max)
    }

    /// The key is `struct bpf_lpm_trie_key`: a u32 prefix length, then `K`.
    pub const fn lpm_trie<K, V>(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::LpmTrie, 4 + size::<K>(), size::<V>(), max)
    }

    /// Queues have no key (key_size 0).
    pub const fn queue<V>(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::Queue, 0, size::<V>(), max)
    }

    /// Key: ifindex; value: `struct bpf_devmap_val` (ifindex, prog fd).
    pub const fn dev_map_hash(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::DevMapHash, 4, 8, max)
    }

    /// Key: rx queue; value: the AF_XDP socket's fd.
    pub const fn xsk_map(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::XskMap, 4, 4, max)
    }

    /// Key: slot; value: a program fd (kernel side: the program).
    pub const fn prog_array(name: &'static str, max: u32) -> Self {
        Self::new(name, MapKind::ProgArray, 4, 4, max)
    }

    /// No key or value; `bytes` is the ring's size (a power of two,
    /// multiple of the page size, or the kernel refuses the map).
    pub const fn ring_buf(name: &'static str, bytes: u32) -> Self {
        Self::new(name, MapKind::RingBuf, 0, 0, bytes)
    }
}

// ---- shared ---------------------------------------------------------------

/// Layout version of the pinned set (`LayoutMeta`).
pub const META: MapDef = MapDef::array::<LayoutMeta>("META", 1);

// ---- lb -------------------------------------------------------------------

pub const LB_ACTIVE: MapDef = MapDef::array::<u32>("LB_ACTIVE", 1);
pub const LB_TABLE_META: MapDef = MapDef::array::<lb::TableMeta>("LB_TABLE_META", 2);
/// Two Maglev copies back to back (double buffering).
pub const LB_MAGLEV: MapDef = MapDef::array::<u32>("LB_MAGLEV", 2 * lb::MAGLEV_MAX);
pub const LB_GATEWAYS: MapDef = MapDef::array::<lb::GatewayEntry>("LB_GATEWAYS", lb::GATEWAYS_MAX);
/// TEID prefix (top 8 bits) → index of the gateway owning it, or
/// `lb::NO_GATEWAY`.
pub const LB_TEID_OWNERS: MapDef = MapDef::array::<u32>("LB_TEID_OWNERS", lb::TEID_OWNERS);
pub const LB_TX_PORTS: MapDef = MapDef::dev_map_hash("LB_TX_PORTS", 64);
pub const LB_STATS: MapDef = MapDef::per_cpu_array::<Counter>("LB_STATS", lb::stat::COUNT);
pub const FLOOR_STATS: MapDef =
    MapDef::per_cpu_array::<Counter>("FLOOR_STATS", lb::FLOOR_STATS_LEN);
/// The benchmark generator's 64-byte frame template. Scratch state of one
/// run, so not pinned (pinning it would change the pinned set, and with it
/// `LAYOUT_VERSION`).
pub const GEN_FRAME: MapDef = MapDef::array::<[u8; 64]>("GEN_FRAME", 1).unpinned();
/// The same for a 128-byte frame (a G-PDU does not fit in 64).
pub const GEN_FRAME_LONG: MapDef = MapDef::array::<[u8; 128]>("GEN_FRAME_LONG", 1).unpinned();

// ---- gateway --------------------------------------------------------------

pub const GW_CONFIG: MapDef = MapDef::array::<gateway::GwConfig>("GW_CONFIG", 1);
pub const GW_SERVICES: MapDef = MapDef::hash::<gateway::ServiceKey, gateway::ServiceVal>(
    "GW_SERVICES",
    gateway::GROUPS_MAX * 4,
);
pub const GW_SERVICES6: MapDef =
    MapDef::hash::<gateway::ServiceKey6, gateway::ServiceVal>("GW_SERVICES6", 4096);
pub const GW_SERVERS: MapDef = MapDef::array::<gateway::Server>("GW_SERVERS", gateway::SERVERS_MAX);
pub const GW_SELECT: MapDef =
    MapDef::array::<gateway::Selection>("GW_SELECT", gateway::GROUPS_MAX * gateway::TYPES_MAX);
pub const GW_TYPES: MapDef =
    MapDef::array::<gateway::TypeRule>("GW_TYPES", gateway::TYPE_RULES_MAX);
pub const GW_AUTH: MapDef = MapDef::lpm_trie::<gateway::AuthKey, u32>("GW_AUTH", 4096);
/// Group → non-zero when it admits every terminal (`GW_AUTH` then holds
/// 0.0.0.0/0 for it): new sessions skip the trie.
pub const GW_AUTH6: MapDef = MapDef::lpm_trie::<gateway::AuthKey6, u32>("GW_AUTH6", 4096);
pub const GW_OPEN: MapDef = MapDef::array::<u32>("GW_OPEN", gateway::GROUPS_MAX);
/// Free source ports, host order.
pub const GW_POOL: MapDef = MapDef::queue::<u16>("GW_POOL", gateway::SESSIONS_MAX);
/// Terminal flow → port, network order.
pub const GW_FLOWS: MapDef = MapDef::hash::<gateway::FlowKey, u16>("GW_FLOWS", gateway::FLOWS_MAX);
pub const GW_FLOWS6: MapDef =
    MapDef::hash::<gateway::FlowKey6, u16>("GW_FLOWS6", gateway::FLOWS_MAX);
/// IPv6 addresses of the sessions in `GW_SESSIONS`, by port.
pub const GW_SESS6: MapDef = MapDef::array::<gateway::Session6>("GW_SESS6", gateway::SESSIONS_MAX);
pub const GW_SESSIONS: MapDef =
    MapDef::array::<gateway::Session>("GW_SESSIONS", gateway::SESSIONS_MAX);
pub const GW_SESS_STATS: MapDef =
    MapDef::per_cpu_array::<gateway::SessionCounters>("GW_SESS_STATS", gateway::SESSIONS_MAX);
pub const GW_TUNNELS: MapDef = MapDef::array::<gateway::Tunnel>("GW_TUNNELS", gateway::TUNNELS_MAX);
pub const GW_TEIDS: MapDef = MapDef::hash::<u32, u32>("GW_TEIDS", gateway::TUNNELS_MAX);
pub const GW_TUN_STATS: MapDef =
    MapDef::per_cpu_array::<gateway::TunnelCounters>("GW_TUN_STATS", gateway::TUNNELS_MAX);
/// Flows this gateway relays to the gateway holding them (daisy chaining).
pub const GW_RELAYS: MapDef =
    MapDef::hash::<gateway::FlowKey, chain::Relay>("GW_RELAYS", gateway::FLOWS_MAX);
/// The same for IPv6 flows.
pub const GW_RELAYS6: MapDef =
    MapDef::hash::<gateway::FlowKey6, chain::Relay>("GW_RELAYS6", gateway::FLOWS_MAX);
pub const GW_TX_PORTS: MapDef = MapDef::dev_map_hash("GW_TX_PORTS", 64);
pub const GW_STATS: MapDef = MapDef::per_cpu_array::<Counter>("GW_STATS", gateway::stat::COUNT);
/// The gateway's IPv6 program (`gateway::PROG_V6`), tail-called for IPv6
/// frames: verified on its own, so the IPv4 program's budget is its own.
pub const GW_PROGS: MapDef = MapDef::prog_array("GW_PROGS", 4);
/// Scratch of one packet (`gateway::Parsed6`), so not pinned.
pub const GW_SCRATCH6: MapDef =
    MapDef::per_cpu_array::<gateway::Parsed6>("GW_SCRATCH6", 1).unpinned();

// ---- router (load sharing) ------------------------------------------------

pub const RT_CFG: MapDef = MapDef::array::<router::RouterCfg>("RT_CFG", 1);
/// CLOCK_MONOTONIC (coarse) ns until which the filter may route.
pub const RT_LEASE: MapDef = MapDef::array::<u64>("RT_LEASE", 1);
pub const RT_BUCKETS: MapDef = MapDef::array::<u32>("RT_BUCKETS", router::BUCKETS);
pub const RT_RATES: MapDef = MapDef::per_cpu_array::<Counter>("RT_RATES", router::BUCKETS);
pub const RT_LAST: MapDef = MapDef::array::<router::Fingerprint>("RT_LAST", router::BUCKETS);
/// `router::HeldFrame` records.
pub const RT_HELD: MapDef = MapDef::ring_buf("RT_HELD", 4 << 20);
pub const RT_STATS: MapDef = MapDef::per_cpu_array::<Counter>("RT_STATS", router::stat::COUNT);

// ---- sip-monitor ----------------------------------------------------------

/// SIP ports (network order) → 1.
pub const SIP_PORTS: MapDef = MapDef::hash::<u16, u32>("SIP_PORTS", 16);
/// `sip_monitor::SipCopy` records.
pub const SIP_RING: MapDef = MapDef::ring_buf("SIP_RING", 8 << 20);
pub const SIP_STATS: MapDef =
    MapDef::per_cpu_array::<Counter>("SIP_STATS", sip_monitor::stat::COUNT);

// ---- migration connection controller --------------------------------------

/// Service address (network order) → steering.
pub const ST_STEER: MapDef = MapDef::hash::<u32, migration::Steering>("ST_STEER", 4096);
/// IPv6 service addresses (four words as in the packet) → steering.
pub const ST_STEER6: MapDef = MapDef::hash::<[u32; 4], migration::Steering>("ST_STEER6", 4096);
pub const ST_NETS: MapDef =
    MapDef::array::<migration::NetEgress>("ST_NETS", migration::NETWORKS_MAX);
pub const ST_TX_PORTS: MapDef = MapDef::dev_map_hash("ST_TX_PORTS", 16);
pub const ST_XSKS: MapDef = MapDef::xsk_map("ST_XSKS", migration::QUEUES_MAX);
pub const ST_STATS: MapDef = MapDef::per_cpu_array::<Counter>("ST_STATS", migration::stat::COUNT);

// ---- entry (one program per interface) ---------------------------------

/// The interface's role stages in order (`entry::STAGES_MAX` slots).
pub const ENTRY_STAGES: MapDef = MapDef::prog_array("ENTRY_STAGES", entry::STAGES_MAX);
/// The slot after each role's stage, the first, and the order they were
/// linked in (`entry::chain`).
pub const ENTRY_NEXT: MapDef = MapDef::array::<u32>("ENTRY_NEXT", entry::NEXT_LEN);
pub const ENTRY_STATS: MapDef = MapDef::per_cpu_array::<Counter>("ENTRY_STATS", entry::stat::COUNT);

/// Every map of the object; those `is_pinned` are pinned per interface.
pub const ALL: &[MapDef] = &[
    META,
    ENTRY_STAGES,
    ENTRY_NEXT,
    ENTRY_STATS,
    LB_ACTIVE,
    LB_TABLE_META,
    LB_MAGLEV,
    LB_GATEWAYS,
    LB_TEID_OWNERS,
    LB_TX_PORTS,
    LB_STATS,
    FLOOR_STATS,
    GEN_FRAME,
    GEN_FRAME_LONG,
    GW_CONFIG,
    GW_SERVICES,
    GW_SERVICES6,
    GW_SERVERS,
    GW_SELECT,
    GW_TYPES,
    GW_AUTH,
    GW_AUTH6,
    GW_OPEN,
    GW_POOL,
    GW_FLOWS,
    GW_FLOWS6,
    GW_SESS6,
    GW_SESSIONS,
    GW_SESS_STATS,
    GW_TUNNELS,
    GW_TEIDS,
    GW_TUN_STATS,
    GW_RELAYS,
    GW_RELAYS6,
    GW_TX_PORTS,
    GW_STATS,
    GW_PROGS,
    GW_SCRATCH6,
    RT_CFG,
    RT_LEASE,
    RT_BUCKETS,
    RT_RATES,
    RT_LAST,
    RT_HELD,
    RT_STATS,
    SIP_PORTS,
    SIP_RING,
    SIP_STATS,
    ST_STEER,
    ST_STEER6,
    ST_NETS,
    ST_TX_PORTS,
    ST_XSKS,
    ST_STATS,
];

/// Names are unique (each is a pin path and an object symbol).
const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        let mut j = i + 1;
        while j < ALL.len() {
            assert!(!str_eq(ALL[i].name, ALL[j].name), "two maps share a name");
            j += 1;
        }
        i += 1;
    }
};

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
