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
    parse::{self, ETH_P_IPV4, ETH_P_IPV6, IPV4_HLEN, IPV6_HLEN},
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
    // kernel as not IP.
    let Ok(eth) = parse::parse_eth(ctx) else {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    };
    // SAFETY: 14 bytes checked by parse_eth.
    let e = unsafe { &mut *eth.hdr };
    if e[0..6] != cfg.vmac {
        return (xdp_action::XDP_PASS, stat::NOT_VMAC);
    }
    let Some((fp, bucket)) = (match eth.proto {
        ETH_P_IPV4 => fingerprint_v4(ctx, eth.l3, cfg.by_dst),
        ETH_P_IPV6 => match fingerprint_v6(ctx, eth.l3, cfg.by_dst) {
            V6::Packet(fp, bucket) => Some((fp, bucket)),
            V6::NeighborDiscovery => {
                return (xdp_action::XDP_PASS, stat::NEIGHBOR_DISCOVERY);
            }
            V6::Malformed => None,
        },
        _ => return (xdp_action::XDP_PASS, stat::NOT_IP),
    }) else {
        return (xdp_action::XDP_PASS, stat::MALFORMED);
    };
    // A dead daemon's filter routes nothing: its buckets are being handed
    // out by the next master.
    let lease = RT_LEASE.get(0).copied().unwrap_or(0);
    if unsafe { bpf_ktime_get_coarse_ns() } > lease {
        return (xdp_action::XDP_DROP, stat::LEASE_EXPIRED);
    }
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
                    *f = Fingerprint { count: n, ..fp };
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

/// An IPv4 packet's fingerprint and bucket; None: malformed.
#[inline(always)]
fn fingerprint_v4(ctx: &XdpContext, l3: usize, by_dst: u32) -> Option<(Fingerprint, u32)> {
    let ip = parse::parse_ipv4(ctx, l3)?;
    // A header the kernel would route: as an IPv6 payload length past the
    // frame, options or a total length past it are malformed.
    if ip.check().is_err() || ip.check_length(ctx).is_err() {
        return None;
    }
    // The 4 bytes after the fixed header (ports, or options) are part of
    // the fingerprint, so they must be there.
    let after = parse::load_raw32(ctx, l3 + IPV4_HLEN)?;
    let bucket = hash::addr_bucket(if by_dst != 0 { ip.dst } else { ip.src });
    let fp = Fingerprint {
        src: [ip.src, 0, 0, 0],
        dst: [ip.dst, 0, 0, 0],
        ip_id: ip.id,
        ip_csum: ip.csum,
        // Ports only when no options sit between.
        l4: if ip.ihl() == IPV4_HLEN { after } else { 0 },
        l4_next: 0,
        family: 4,
        count: 0,
    };
    Some((fp, bucket))
}

enum V6 {
    Packet(Fingerprint, u32),
    NeighborDiscovery,
    Malformed,
}

/// ICMPv6 types 133..=137 (RFC 4861 §4): router solicitation and
/// advertisement, neighbor solicitation and advertisement, redirect.
const ND_FIRST: u8 = 133;
const ND_LAST: u8 = 137;
const IPPROTO_ICMPV6: u8 = 58;

/// An IPv6 packet's fingerprint and bucket. The fixed header is enough:
/// the bucket is the end system's address, so extension headers and
/// fragments are routed as any packet is; only Neighbor Discovery right
/// after the fixed header is the kernel's.
#[inline(always)]
fn fingerprint_v6(ctx: &XdpContext, l3: usize, by_dst: u32) -> V6 {
    let Ok((ip, next, flow)) = parse::parse_ipv6_fixed(ctx, l3) else {
        return V6::Malformed;
    };
    let at = l3 + IPV6_HLEN;
    let (Some(l4), Some(l4_next)) = (parse::load_raw32(ctx, at), parse::load_raw32(ctx, at + 4))
    else {
        return V6::Malformed;
    };
    if next == IPPROTO_ICMPV6 {
        // The type is the first byte of the ICMPv6 header.
        let ty = l4.to_ne_bytes()[0];
        if (ND_FIRST..=ND_LAST).contains(&ty) {
            return V6::NeighborDiscovery;
        }
    }
    let addr = if by_dst != 0 { ip.dst } else { ip.src };
    let plen = (ip.payload_end - at) as u16;
    let fp = Fingerprint {
        src: ip.src,
        dst: ip.dst,
        ip_id: flow,
        ip_csum: plen.to_be(),
        l4,
        l4_next,
        family: 6,
        count: 0,
    };
    V6::Packet(fp, hash::addr6_bucket(addr))
}

/// Copy the frame to the ring buffer for the control plane (claims 4, 6).
#[inline(always)]
fn hold(ctx: &XdpContext, bucket: u32) -> u32 {
    let len = parse::packet_len(ctx);
    if len > HOLD_MAX {
        return stat::HOLD_TOO_LONG;
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
