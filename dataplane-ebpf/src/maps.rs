//! Every map of the XDP object, in one place. Userspace pins each of them
//! under `/sys/fs/bpf/edgeplane/<interface>/<NAME>`.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, PerCpuArray},
};
use dataplane_common::{
    lb::{self, GatewayEntry, TableMeta},
    Counter, LayoutMeta,
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
