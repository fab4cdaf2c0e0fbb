//! The `sip-monitor` program (seed 001): copy SIP packets (UDP or TCP, to
//! or from a configured port) to a ring buffer and pass every packet on
//! unchanged. A full ring loses the copy, never the packet.

use dataplane_common::entry::role;
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dataplane_common::sip::{stat, SipCopyHeader, COPY_MAX};

use crate::{
    maps::{self, SIP_PORTS, SIP_RING, SIP_STATS},
    parse::{self, ETH_P_IPV4, IPPROTO_TCP, IPPROTO_UDP},
    ring,
};

#[xdp]
pub fn sip_monitor(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let reason = if is_sip(&ctx) { copy(&ctx) } else { stat::NOT_SIP };
    maps::count(&SIP_STATS, reason, bytes);
    maps::count_verdict(&SIP_STATS, xdp_action::XDP_PASS, bytes);
    crate::entry::next(&ctx, role::SIP_MONITOR, xdp_action::XDP_PASS)
}

#[inline(always)]
fn is_sip(ctx: &XdpContext) -> bool {
    let Ok((proto, l3)) = parse::parse_eth(ctx) else { return false };
    if proto != ETH_P_IPV4 {
        return false;
    }
    let Some(vihl) = parse::load_u8(ctx, l3) else { return false };
    let Some(l4proto) = parse::load_u8(ctx, l3 + 9) else { return false };
    if l4proto != IPPROTO_UDP && l4proto != IPPROTO_TCP {
        return false;
    }
    let l4 = l3 + ((vihl & 0x0f) as usize) * 4;
    let Some(ports) = parse::ptr_at::<[u8; 4]>(ctx, l4) else { return false };
    // SAFETY: 4 bytes checked.
    let p = unsafe { *ports };
    let (sport, dport) = (u16::from_ne_bytes([p[0], p[1]]), u16::from_ne_bytes([p[2], p[3]]));
    // SAFETY: values copied out at once.
    unsafe { SIP_PORTS.get(&dport).is_some() || SIP_PORTS.get(&sport).is_some() }
}

#[inline(always)]
fn copy(ctx: &XdpContext) -> u32 {
    let len = ctx.data_end() - ctx.data();
    let n = if len > COPY_MAX { COPY_MAX } else { len };
    let header = SipCopyHeader { len: len as u32, copied: n as u32 };
    if !ring::copy_frame::<_, COPY_MAX>(&SIP_RING, ctx, header, n) {
        return stat::RING_FULL;
    }
    if len > COPY_MAX {
        stat::TRUNCATED
    } else {
        stat::COPIED
    }
}
