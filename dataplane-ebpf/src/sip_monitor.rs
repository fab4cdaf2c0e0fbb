//! The `sip-monitor` programs (seed 001): copy SIP packets (UDP or TCP over
//! IPv4 or IPv6, to or from a configured port) to a ring buffer and pass every packet on
//! unchanged. A full ring loses the copy, never the packet.
//!
//! Two programs, one ring and one set of counters: `sip_monitor` (XDP, a
//! stage of the interface's entry) sees what the host receives,
//! `sip_monitor_egress` (TC egress) what it sends, so a monitor on the
//! session control server itself sees both halves of every dialog.

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use dataplane_common::entry::role;
use dataplane_common::sip_monitor::{stat, SipCopyHeader, COPY_MAX};
use dataplane_common::IPV6_MAX_EXT;

use crate::{
    maps::{self, SIP_PORTS, SIP_RING, SIP_STATS},
    parse::{self, Frame, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
    ring,
};

#[xdp]
pub fn sip_monitor(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let reason = if is_sip(&ctx) {
        copy(&ctx)
    } else {
        stat::NOT_SIP
    };
    maps::count(&SIP_STATS, reason, bytes);
    maps::count_verdict(&SIP_STATS, xdp_action::XDP_PASS, bytes);
    crate::entry::next(&ctx, role::SIP_MONITOR, xdp_action::XDP_PASS)
}

/// Headers an egress skb must have in its linear part for [`is_sip`]:
/// Ethernet, two tags, IPv6 with extension headers, the ports.
const EGRESS_HEADERS: u32 = 256;

#[classifier]
pub fn sip_monitor_egress(ctx: TcContext) -> i32 {
    let bytes = ctx.len() as u64;
    // A locally built skb may keep its payload (TCP's always) in page
    // fragments: make the headers addressable, the copy reads the rest
    // through the helper. A failed pull leaves the skb as it was.
    let want = if ctx.len() < EGRESS_HEADERS {
        ctx.len()
    } else {
        EGRESS_HEADERS
    };
    if ((ctx.data_end() - ctx.data()) as u32) < want {
        let _ = ctx.pull_data(want);
    }
    let reason = if is_sip(&ctx) {
        copy(&ctx)
    } else {
        stat::NOT_SIP
    };
    maps::count(&SIP_STATS, reason, bytes);
    if reason == stat::COPIED || reason == stat::TRUNCATED {
        maps::count(&SIP_STATS, stat::EGRESS_COPIES, bytes);
    }
    maps::count_verdict(&SIP_STATS, xdp_action::XDP_PASS, bytes);
    TC_ACT_OK as i32
}

/// Whether the packet is TCP or UDP to or from a SIP port, over IPv4 or
/// IPv6 (extension headers walked, at most `IPV6_MAX_EXT`; a fragment of
/// either family is not copied: the ports are in the first one only, and
/// the monitor reads whole messages). The headers up to the ports must be
/// well-formed (IPv4 version, IHL and total length, the IPv6 payload
/// length; the TCP data offset or UDP length inside the datagram): a
/// malformed packet is not SIP. It passes either way, and the monitor's
/// parser judges the message.
#[inline(always)]
fn is_sip(ctx: &impl Frame) -> bool {
    let Ok(eth) = parse::parse_eth_vlans(ctx) else {
        return false;
    };
    let (proto, l4, end) = match eth.proto {
        ETH_P_IPV4 => match parse::parse_ipv4(ctx, eth.l3) {
            Some(ip) if ip.check().is_ok() && ip.check_length(ctx).is_ok() && !ip.is_fragment() => {
                (ip.proto, ip.l4(), ip.end())
            }
            _ => return false,
        },
        ETH_P_IPV6 => match parse::parse_ipv6(ctx, eth.l3, IPV6_MAX_EXT) {
            Ok((ip, next, at)) => (next, at, ip.payload_end),
            Err(_) => return false,
        },
        _ => return false,
    };
    if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
        return false;
    }
    let Some(ports) = parse::parse_l4_ports(ctx, l4, parse::l4_hdr_len(proto)) else {
        return false;
    };
    if !parse::l4_lengths_ok(ctx, proto, l4, end) {
        return false;
    }
    // SAFETY: values copied out at once.
    unsafe { SIP_PORTS.get(&ports.dst).is_some() || SIP_PORTS.get(&ports.src).is_some() }
}

#[inline(always)]
fn copy(ctx: &impl Frame) -> u32 {
    let len = parse::packet_len(ctx);
    let n = if len > COPY_MAX { COPY_MAX } else { len };
    let header = SipCopyHeader {
        len: len as u32,
        copied: n as u32,
    };
    if !ring::copy_frame::<_, COPY_MAX>(&SIP_RING, ctx, header, n) {
        return stat::RING_FULL;
    }
    if len > COPY_MAX {
        stat::TRUNCATED
    } else {
        stat::COPIED
    }
}
