//! The migration's connection controller (seed 000): packets to a service
//! address go to the network its steering entry names; while a migration
//! holds the service, its packets are copied aside and dropped, to be
//! released in order to the new network after the switch (claims 4-5).

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_load_bytes, macros::xdp, programs::XdpContext};
use dataplane_common::steer::{stat, HeldPacket, HOLD_MAX, STEER_HOLD};

use crate::{
    maps::{self, ST_HELD, ST_NETS, ST_STATS, ST_STEER, ST_TX_PORTS},
    parse::{self, ETH_P_IPV4},
};

#[xdp]
pub fn steer(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let (action, reason) = decide(&ctx);
    maps::count(&ST_STATS, reason, bytes);
    maps::count_verdict(&ST_STATS, action, bytes);
    action
}

#[inline(always)]
fn decide(ctx: &XdpContext) -> (u32, u32) {
    let Ok((proto, l3)) = parse::parse_eth(ctx) else { return (xdp_action::XDP_PASS, stat::NOT_STEERED) };
    if proto != ETH_P_IPV4 {
        return (xdp_action::XDP_PASS, stat::NOT_STEERED);
    }
    let Some(dst) = parse::load_raw32(ctx, l3 + 16) else { return (xdp_action::XDP_PASS, stat::NOT_STEERED) };
    // SAFETY: value copied out at once.
    let Some(s) = (unsafe { ST_STEER.get(&dst) }).copied() else { return (xdp_action::XDP_PASS, stat::NOT_STEERED) };
    if s.flags & STEER_HOLD != 0 {
        return (xdp_action::XDP_DROP, hold(ctx, dst));
    }
    let Some(net) = ST_NETS.get(s.network).copied() else { return (xdp_action::XDP_PASS, stat::NO_NETWORK) };
    if net.valid == 0 {
        return (xdp_action::XDP_PASS, stat::NO_NETWORK);
    }
    let same = net.ifindex as usize == ctx.ingress_ifindex();
    if !same && ST_TX_PORTS.get_ifindex(net.ifindex).is_none() {
        return (xdp_action::XDP_PASS, stat::NO_NETWORK);
    }
    let Some(eth) = parse::ptr_at::<[u8; 12]>(ctx, 0) else { return (xdp_action::XDP_PASS, stat::NOT_STEERED) };
    // SAFETY: 12 bytes checked.
    unsafe {
        let e = &mut *eth;
        e[0..6].copy_from_slice(&net.dst_mac);
        e[6..12].copy_from_slice(&net.src_mac);
    }
    if same {
        return (xdp_action::XDP_TX, stat::STEERED);
    }
    match ST_TX_PORTS.redirect(net.ifindex, xdp_action::XDP_DROP as u64) {
        Ok(a) => (a, stat::STEERED),
        Err(a) => (a, stat::NO_NETWORK),
    }
}

#[inline(always)]
fn hold(ctx: &XdpContext, service: u32) -> u32 {
    let len = ctx.data_end() - ctx.data();
    let Some(mut entry) = ST_HELD.reserve::<HeldPacket>(0) else { return stat::HOLD_OVERFLOW };
    let p = entry.as_mut_ptr();
    // SAFETY: `p` is a reserved HeldPacket; at most HOLD_MAX bytes copied.
    let rc = unsafe {
        (*p).service = service;
        (*p).len = len as u32;
        if !aya_ebpf::check_bounds_signed(len as i64, 1, HOLD_MAX as i64) {
            -1
        } else {
            bpf_xdp_load_bytes(ctx.ctx, 0, (*p).data.as_mut_ptr().cast(), len as u32)
        }
    };
    if rc != 0 {
        entry.discard(0);
        return stat::HOLD_OVERFLOW;
    }
    entry.submit(0);
    stat::HELD
}
