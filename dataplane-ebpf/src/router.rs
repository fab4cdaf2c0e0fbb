//! The `router` load-sharing filter (seed 003): of the frames sent to the
//! virtual MAC, route (pass to the kernel, re-addressed to this router)
//! only those whose end-system bucket this router owns; hold the buckets
//! being handed over; drop the rest, which another router routes.

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, programs::XdpContext,
};
use dataplane_common::entry::role;
use dataplane_common::{
    hash,
    router::{stat, Fingerprint, HeldHeader, BUCKET_HOLD, BUCKET_MINE, HOLD_MAX},
};

use crate::{
    maps::{self, RT_BUCKETS, RT_CFG, RT_HELD, RT_LAST, RT_LEASE, RT_RATES, RT_STATS},
    parse::{self, ETH_P_IPV4, IPV4_HLEN},
    ring,
};

#[xdp]
pub fn router(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let (action, reason) = filter(&ctx, bytes);
    maps::count(&RT_STATS, reason, bytes);
    maps::count_verdict(&RT_STATS, action, bytes);
    crate::entry::next(&ctx, role::ROUTER, action)
}

#[inline(always)]
fn filter(ctx: &XdpContext, bytes: u64) -> (u32, u32) {
    let cfg = match RT_CFG.get(0) {
        Some(c) if c.enabled != 0 => *c,
        _ => return (xdp_action::XDP_PASS, stat::NOT_VMAC),
    };
    // Untagged only: a tagged frame to the virtual MAC passes to the
    // kernel as not IPv4.
    let Ok(eth) = parse::parse_eth(ctx) else {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    };
    // SAFETY: 14 bytes checked by parse_eth.
    let e = unsafe { &mut *eth.hdr };
    if e[0..6] != cfg.vmac {
        return (xdp_action::XDP_PASS, stat::NOT_VMAC);
    }
    if eth.proto != ETH_P_IPV4 {
        return (xdp_action::XDP_PASS, stat::NOT_IPV4);
    }
    let Some(ip) = parse::parse_ipv4(ctx, eth.l3) else {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    };
    if ip.check().is_err() {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    }
    // The 4 bytes after the fixed header (ports, or options) are part of
    // the fingerprint, so they must be there.
    let Some(after) = parse::load_raw32(ctx, eth.l3 + IPV4_HLEN) else {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    };
    // A dead daemon's filter routes nothing: its buckets are being handed
    // out by the next master.
    let lease = RT_LEASE.get(0).copied().unwrap_or(0);
    if unsafe { bpf_ktime_get_coarse_ns() } > lease {
        return (xdp_action::XDP_DROP, stat::LEASE_EXPIRED);
    }
    let (src, dst) = (ip.src, ip.dst);
    let bucket = hash::addr_bucket(if cfg.by_dst != 0 { dst } else { src });
    match RT_BUCKETS.get(bucket).copied() {
        Some(BUCKET_MINE) => {
            if let Some(c) = RT_RATES.get_ptr_mut(bucket) {
                // SAFETY: per-CPU slot.
                unsafe {
                    (*c).packets += 1;
                    (*c).bytes += bytes;
                }
            }
            if let Some(f) = RT_LAST.get_ptr_mut(bucket) {
                // SAFETY: map value; see RT_LAST on concurrency.
                unsafe {
                    let n = (*f).count + 1;
                    *f = Fingerprint {
                        src,
                        dst,
                        ip_id: ip.id,
                        ip_csum: ip.csum,
                        // Ports only when no options sit between.
                        l4: if ip.ihl() == IPV4_HLEN { after } else { 0 },
                        count: n,
                    };
                }
            }
            // The kernel routes it: a macvlan with the virtual MAC takes it
            // as its own, or (own_mac set) it is re-addressed to this host.
            if cfg.own_mac != [0; 6] {
                e[0..6].copy_from_slice(&cfg.own_mac);
            }
            (xdp_action::XDP_PASS, stat::ROUTED)
        }
        Some(BUCKET_HOLD) => (xdp_action::XDP_DROP, hold(ctx, bucket)),
        _ => (xdp_action::XDP_DROP, stat::NOT_OWNER),
    }
}

/// Copy the frame to the ring buffer for the control plane (claims 4, 6).
#[inline(always)]
fn hold(ctx: &XdpContext, bucket: u32) -> u32 {
    let len = parse::packet_len(ctx);
    if len > HOLD_MAX {
        return stat::HOLD_OVERFLOW;
    }
    let header = HeldHeader {
        bucket,
        len: len as u32,
    };
    if ring::copy_frame::<_, HOLD_MAX>(&RT_HELD, ctx, header, len) {
        stat::HELD
    } else {
        stat::HOLD_OVERFLOW
    }
}
