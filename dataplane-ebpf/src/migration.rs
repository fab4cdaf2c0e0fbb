//! The migration's connection controller (seed 000): packets to a service
//! address go to the network its steering entry names; while a migration
//! holds the service, its packets go to the controller's AF_XDP socket on
//! the receiving queue, to be released in order to the new network after
//! the switch (claims 4-5).

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dataplane_common::entry::role;
use dataplane_common::migration::{stat, STEER_HOLD};

use crate::{
    maps::{self, ST_NETS, ST_STATS, ST_STEER, ST_STEER6, ST_TX_PORTS, ST_XSKS},
    parse::{self, ETH_P_IPV4, ETH_P_IPV6},
};

#[xdp]
pub fn steer(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let (action, reason) = decide(&ctx);
    maps::count(&ST_STATS, reason, bytes);
    maps::count_verdict(&ST_STATS, action, bytes);
    crate::entry::next(&ctx, role::STEER, action)
}

#[inline(always)]
fn decide(ctx: &XdpContext) -> (u32, u32) {
    let Ok(eth) = parse::parse_eth_vlans(ctx) else {
        return (xdp_action::XDP_PASS, stat::NOT_STEERED);
    };
    // Steered by destination alone, once the fixed header is one a next
    // hop would take (IPv4: version, IHL and total length within the
    // frame, as the IPv6 fixed header's version and payload length); the
    // rest is the next hop's to judge (extension headers, options and
    // fragments do not change where a packet goes).
    let steering = match eth.proto {
        ETH_P_IPV4 => match parse::parse_ipv4(ctx, eth.l3) {
            // SAFETY: value copied out at once.
            Some(ip) if ip.check().is_ok() && ip.check_length(ctx).is_ok() => {
                unsafe { ST_STEER.get(&ip.dst) }.copied()
            }
            _ => None,
        },
        ETH_P_IPV6 => match parse::parse_ipv6_fixed(ctx, eth.l3) {
            // SAFETY: value copied out at once.
            Ok((ip, _, _)) => unsafe { ST_STEER6.get(&ip.dst) }.copied(),
            Err(_) => None,
        },
        _ => None,
    };
    let Some(s) = steering else {
        return (xdp_action::XDP_PASS, stat::NOT_STEERED);
    };
    if s.flags & STEER_HOLD != 0 {
        return hold(ctx);
    }
    let Some(net) = ST_NETS.get(s.network).copied() else {
        return (xdp_action::XDP_PASS, stat::NO_NETWORK);
    };
    if net.valid == 0 {
        return (xdp_action::XDP_PASS, stat::NO_NETWORK);
    }
    let same = net.ifindex as usize == ctx.ingress_ifindex();
    if !same && ST_TX_PORTS.get_ifindex(net.ifindex).is_none() {
        return (xdp_action::XDP_PASS, stat::NO_NETWORK);
    }
    let Some(eth) = parse::ptr_at::<[u8; 12]>(ctx, 0) else {
        return (xdp_action::XDP_PASS, stat::NOT_STEERED);
    };
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

/// Hand a held packet to the AF_XDP socket of the queue it arrived on;
/// without one it is dropped and counted (never sent on unheld).
#[inline(always)]
fn hold(ctx: &XdpContext) -> (u32, u32) {
    match ST_XSKS.redirect(ctx.rx_queue_index(), xdp_action::XDP_DROP as u64) {
        Ok(a) => (a, stat::HELD),
        Err(a) => (a, stat::HOLD_NO_SOCKET),
    }
}
