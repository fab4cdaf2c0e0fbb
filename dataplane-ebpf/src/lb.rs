//! The `lb` program (seed 002, first distribution unit): session ID →
//! Maglev → gateway, L2 rewrite, XDP_TX or XDP_REDIRECT. Every LB holds the
//! same table, so a session reaches the same gateway whichever LB it enters.
//! Anything it cannot classify is passed to the kernel with a reason
//! counted; it never forwards a packet it did not fully parse.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dataplane_common::entry::role;
use dataplane_common::{
    chain::{ChainHdr, MOVED},
    hash,
    lb::{
        slot_gateway, slot_previous, stat, teid_prefix, GatewayEntry, GTPU_PORT, GW_F_VALID,
        IPV6_MAX_EXT, KEY_FLOW, MAGLEV_MAX, NO_GATEWAY,
    },
};

use crate::{
    maps::{
        self, LB_ACTIVE, LB_GATEWAYS, LB_MAGLEV, LB_STATS, LB_TABLE_META, LB_TEID_OWNERS,
        LB_TX_PORTS,
    },
    parse::{
        self, EthError, GtpuError, Ipv4Error, Ipv4LenError, Ipv6Error, ETH_P_IPV4, ETH_P_IPV6,
        IPPROTO_TCP, IPPROTO_UDP,
    },
};

#[xdp]
pub fn lb(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let (action, reason) = match classify(&ctx) {
        Ok(key) => forward(&ctx, key, bytes),
        Err(reason) => (xdp_action::XDP_PASS, reason),
    };
    if reason != u32::MAX {
        maps::count(&LB_STATS, reason, bytes);
    }
    maps::count_verdict(&LB_STATS, action, bytes);
    crate::entry::next(&ctx, role::LB, action)
}

fn eth_reason(r: EthError) -> u32 {
    match r {
        EthError::TruncEth => stat::TRUNC_ETH,
        EthError::TruncVlan => stat::TRUNC_VLAN,
        EthError::TooManyVlans => stat::TOO_MANY_VLANS,
    }
}

/// Parse far enough to know the session: returns its key (the seed and
/// the key mode are applied with the live table's).
#[inline(always)]
fn classify(ctx: &XdpContext) -> Result<SessionKey, u32> {
    let eth = parse::parse_eth_vlans(ctx).map_err(eth_reason)?;
    if eth.proto == ETH_P_IPV6 {
        return classify_v6(ctx, eth.l3);
    }
    if eth.proto != ETH_P_IPV4 {
        return Err(stat::NOT_IP);
    }
    // The fixed 20-byte header must be present before anything in it is
    // trusted.
    let ip = parse::parse_ipv4(ctx, eth.l3).ok_or(stat::TRUNC_IPV4)?;
    ip.check().map_err(|e| match e {
        Ipv4Error::BadVersion => stat::BAD_IP_VERSION,
        Ipv4Error::BadIhl => stat::BAD_IHL,
    })?;
    // Only the first fragment has ports, and the others could not follow
    // it, so the kernel reassembles.
    if ip.is_fragment() {
        return Err(stat::FRAGMENT);
    }
    // Options, then the datagram, in the frame (a cut frame's total
    // length claims more, as an IPv6 payload length does); a total length
    // short of the header makes the header length bad.
    ip.check_length(ctx).map_err(|e| match e {
        Ipv4LenError::Truncated => stat::TRUNC_IPV4,
        Ipv4LenError::BelowHeader => stat::BAD_IHL,
    })?;
    match ip.proto {
        IPPROTO_UDP | IPPROTO_TCP => {
            let l4 = ip.l4();
            let ports = parse::parse_l4_ports(ctx, l4, parse::l4_hdr_len(ip.proto))
                .ok_or(stat::TRUNC_L4)?;
            // The header's own length (TCP data offset, UDP length) inside
            // the datagram.
            if !parse::l4_lengths_ok(ctx, ip.proto, l4, ip.end()) {
                return Err(stat::TRUNC_L4);
            }
            if ip.proto == IPPROTO_UDP && u16::from_be(ports.dst) == GTPU_PORT {
                if let Some(teid) = parse_gtpu(ctx, l4 + parse::UDP_HLEN)? {
                    return Ok(SessionKey::Teid(teid));
                }
                // Signalling (Echo, Error Indication, End Marker) is about
                // the path, not a session: any gateway answers for the N3
                // address, so it goes by the fallback key like plain IP.
                maps::count(&LB_STATS, stat::GTPU_NOT_GPDU, 0);
            }
            Ok(SessionKey::Flow(
                ip.src, ip.dst, ports.src, ports.dst, ip.proto,
            ))
        }
        _ => Err(stat::NOT_TCP_UDP),
    }
}

/// An IPv6 packet: the same keys as IPv4 (a G-PDU's TEID over IPv6
/// transport, else the terminal or the 5-tuple), after the extension
/// chain; a fragment is passed and counted, never hashed on a part of its
/// key.
#[inline(always)]
fn classify_v6(ctx: &XdpContext, l3: usize) -> Result<SessionKey, u32> {
    let (ip, proto, l4) = parse::parse_ipv6(ctx, l3, IPV6_MAX_EXT).map_err(|e| match e {
        Ipv6Error::Truncated => stat::TRUNC_IPV6,
        Ipv6Error::BadVersion => stat::BAD_IP_VERSION,
        Ipv6Error::BadLength => stat::IPV6_BAD_LENGTH,
        Ipv6Error::ExtChain => stat::IPV6_EXT_CHAIN,
        Ipv6Error::Fragment => stat::FRAGMENT,
    })?;
    if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
        return Err(stat::NOT_TCP_UDP);
    }
    let ports = parse::parse_l4_ports(ctx, l4, parse::l4_hdr_len(proto)).ok_or(stat::TRUNC_L4)?;
    if l4 + parse::l4_hdr_len(proto) > ip.payload_end
        || !parse::l4_lengths_ok(ctx, proto, l4, ip.payload_end)
    {
        return Err(stat::TRUNC_L4);
    }
    maps::count(&LB_STATS, stat::IPV6, 0);
    if proto == IPPROTO_UDP && u16::from_be(ports.dst) == GTPU_PORT {
        if let Some(teid) = parse_gtpu(ctx, l4 + parse::UDP_HLEN)? {
            return Ok(SessionKey::Teid(teid));
        }
        maps::count(&LB_STATS, stat::GTPU_NOT_GPDU, 0);
    }
    Ok(SessionKey::Flow6(
        hash::flow6_fold(ip.src, ip.dst, ports.src, ports.dst, proto),
        hash::terminal6_fold(ip.src),
    ))
}

/// GTP-U (TS 29.281 §5.1) through the shared view: version 1, PT 1; the
/// TEID of a G-PDU (the message type is checked before the optional
/// fields and the extension chain, which must then be complete), `None`
/// for signalling. The lb counts a short header and a bad extension
/// alike, as truncated.
#[inline(always)]
fn parse_gtpu(ctx: &XdpContext, off: usize) -> Result<Option<u32>, u32> {
    let reason = |e: GtpuError| match e {
        GtpuError::Truncated | GtpuError::BadExtension => stat::TRUNC_GTPU,
        GtpuError::BadVersion => stat::GTPU_BAD_VERSION,
    };
    let mut g = parse::parse_gtpu_fixed(ctx, off).map_err(reason)?;
    if g.msg != parse::GTPU_MSG_GPDU {
        return Ok(None);
    }
    parse::gtpu_extensions(ctx, &mut g).map_err(reason)?;
    Ok(Some(g.teid))
}

#[derive(Clone, Copy)]
enum SessionKey {
    Teid(u32),
    Flow(u32, u32, u16, u16, u8),
    /// The IPv6 flow's and terminal's seedless folds.
    Flow6(u32, u32),
}

/// Send the session to its gateway: a G-PDU whose TEID prefix has an
/// owner goes to the owner (the session stays on the gateway that
/// allocated its TEID, whatever the table says); anything else is looked
/// up in the live Maglev copy, keyed as the copy's meta says. Counts the
/// key kind; returns the verdict and a reason to count (`u32::MAX` for
/// none).
#[inline(always)]
fn forward(ctx: &XdpContext, key: SessionKey, bytes: u64) -> (u32, u32) {
    if let SessionKey::Teid(teid) = key {
        if let Some(entry) = teid_owner(teid) {
            maps::count(&LB_STATS, stat::KEY_TEID_OWNER, bytes);
            return send(ctx, entry, None, bytes);
        }
    }
    let active = match LB_ACTIVE.get(0) {
        Some(a) => *a & 1,
        None => return (xdp_action::XDP_PASS, stat::NO_TABLE),
    };
    let meta = match LB_TABLE_META.get(active) {
        Some(m) => m,
        None => return (xdp_action::XDP_PASS, stat::NO_TABLE),
    };
    let size = meta.size;
    if size == 0 || size > MAGLEV_MAX {
        return (xdp_action::XDP_PASS, stat::NO_TABLE);
    }
    let (key_stat, h) = match key {
        SessionKey::Teid(teid) => (stat::KEY_TEID, hash::teid_hash(teid, meta.seed)),
        SessionKey::Flow(s, d, sp, dp, p) => {
            if meta.key == KEY_FLOW {
                (stat::KEY_FLOW, hash::flow_hash(s, d, sp, dp, p, meta.seed))
            } else {
                (stat::KEY_TERMINAL, hash::terminal_hash(s, meta.seed))
            }
        }
        SessionKey::Flow6(flow, terminal) => {
            if meta.key == KEY_FLOW {
                (stat::KEY_FLOW, hash::flow_hash_v6(flow, meta.seed))
            } else {
                (
                    stat::KEY_TERMINAL,
                    hash::terminal_hash_v6(terminal, meta.seed),
                )
            }
        }
    };
    maps::count(&LB_STATS, key_stat, bytes);
    let slot = active * MAGLEV_MAX + h % size;
    let v = match LB_MAGLEV.get(slot) {
        Some(g) => *g,
        None => return (xdp_action::XDP_PASS, stat::NO_GATEWAY),
    };
    if v == NO_GATEWAY {
        return (xdp_action::XDP_PASS, stat::NO_GATEWAY);
    }
    let entry = match LB_GATEWAYS.get(slot_gateway(v)) {
        Some(e) if e.flags & GW_F_VALID != 0 => e,
        _ => return (xdp_action::XDP_PASS, stat::NO_GATEWAY),
    };
    // A moved slot's sessions may live on its previous owner: the new one
    // is told who that is (daisy chaining), for IPv4 and IPv6 flows alike.
    // A TEID's session is placed by its owner prefix instead, and is never
    // chained.
    let prev = match (key, slot_previous(v)) {
        // Matched, not filtered: the verifier refuses the branchless form.
        (SessionKey::Flow(..) | SessionKey::Flow6(..), Some(p)) => match LB_GATEWAYS.get(p) {
            Some(e) if e.flags & GW_F_VALID != 0 => Some(e),
            _ => None,
        },
        _ => None,
    };
    send(ctx, entry, prev, bytes)
}

/// The gateway owning a TEID's prefix, if it has one in use.
#[inline(always)]
fn teid_owner(teid: u32) -> Option<&'static GatewayEntry> {
    let gw = *LB_TEID_OWNERS.get(teid_prefix(teid))?;
    if gw == NO_GATEWAY {
        return None;
    }
    LB_GATEWAYS.get(gw).filter(|e| e.flags & GW_F_VALID != 0)
}

/// L2 rewrite towards `entry` (with a chain header naming `prev`, the
/// slot's previous owner, when it moved), then XDP_TX or XDP_REDIRECT.
#[inline(always)]
fn send(
    ctx: &XdpContext,
    entry: &GatewayEntry,
    prev: Option<&GatewayEntry>,
    bytes: u64,
) -> (u32, u32) {
    if parse::ptr_at::<[u8; 12]>(ctx, 0).is_none() {
        return (xdp_action::XDP_PASS, stat::TRUNC_ETH);
    }
    let ifindex = entry.ifindex;
    let same_port = ifindex as usize == ctx.ingress_ifindex();
    if !same_port && LB_TX_PORTS.get_ifindex(ifindex).is_none() {
        // Checked before the rewrite so a misconfigured port leaves the
        // frame untouched for the kernel.
        return (xdp_action::XDP_PASS, stat::REDIRECT_FAILED);
    }
    let chained = match prev {
        Some(p) => {
            let hdr = ChainHdr::new(MOVED, 0, p.dst_mac, [0; 6], [0; 6]);
            let ok = crate::chain::push(ctx, &hdr, &entry.dst_mac, &entry.src_mac);
            let reason = if ok {
                stat::CHAINED
            } else {
                stat::CHAIN_FAILED
            };
            maps::count(&LB_STATS, reason, bytes);
            ok
        }
        None => false,
    };
    if !chained {
        let eth = match parse::ptr_at::<[u8; 12]>(ctx, 0) {
            Some(p) => p,
            None => return (xdp_action::XDP_PASS, stat::TRUNC_ETH),
        };
        // SAFETY: 12 bytes checked by ptr_at above.
        unsafe {
            let e = &mut *eth;
            e[0..6].copy_from_slice(&entry.dst_mac);
            e[6..12].copy_from_slice(&entry.src_mac);
        }
    }
    if same_port {
        return (xdp_action::XDP_TX, u32::MAX);
    }
    match LB_TX_PORTS.redirect(ifindex, xdp_action::XDP_DROP as u64) {
        Ok(a) => (a, u32::MAX),
        Err(a) => (a, stat::REDIRECT_FAILED),
    }
}
