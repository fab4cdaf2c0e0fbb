//! IPv6 user sessions at the gateway: the same claims as IPv4 (a unique
//! source port per user session from the one pool, service change,
//! authorization, accounting), with the IPv6 maps (`GW_FLOWS6`,
//! `GW_SERVICES6`, `GW_AUTH6`, `GW_SESS6`) beside the shared ones
//! (`GW_SESSIONS`, `GW_SERVERS`, `GW_SELECT`, `GW_POOL`).
//!
//! There is no IPv6 header checksum: the hop limit is decremented as is,
//! and the L4 checksum is adjusted over the pseudo-header's 128-bit
//! addresses (RFC 8200 §8.1). A UDP datagram without a checksum is not
//! valid over IPv6: passed to the kernel (which drops it) and counted
//! malformed. ICMPv6 errors about a translated packet (RFC 4443 types 1-4)
//! are translated back, with the ICMPv6 checksum over the new pseudo-
//! header (`icmp`). IPv6 flows are daisy-chained as IPv4 ones are
//! (`GW_RELAYS6`); an IPv6 T-PDU arrives from either GTP-U uplink
//! (`gateway6_gtpu`), and GTP-U over IPv6 transport to the IPv6 N3
//! address is recognised here and handed on (`gtpu6`).
//!
//! A program of its own (`gateway6`), tail-called by `gateway` for IPv6
//! frames (`GW_PROGS`): the verifier checks it apart from the IPv4 path,
//! whose budget is spent. It counts into `GW_STATS` and hands on to the
//! next stage as `gateway` does.

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, maps::lpm_trie::Key,
    programs::XdpContext,
};
use core::sync::atomic::Ordering;
use dataplane_common::{
    chain::{ChainHdr, RELAY},
    entry::role,
    gateway::{
        stat, AuthKey6, FlowKey6, GwConfig, Parsed6, ServiceKey6, FAMILY_V6, NO_TUNNEL,
        SESSION_ACTIVE, SESSION_FREE, SF_SERVICE_CHANGED, TUNNEL_ACTIVE, TYPES_MAX, TYPE_RULES_MAX,
    },
    hash, IPV6_MAX_EXT,
};

use super::{choose, count_session, flag, gtpu, gtpu6, l2_out, tcp_flags_at};
use crate::{
    csum,
    maps::{
        self, GW_AUTH6, GW_CONFIG, GW_FLOWS6, GW_OPEN, GW_POOL, GW_RELAYS6, GW_SCRATCH6,
        GW_SERVERS, GW_SERVICES6, GW_SESS6, GW_SESSIONS, GW_STATS, GW_TUNNELS, GW_TYPES,
    },
    parse::{self, Ipv6, Ipv6Error, ETH_HLEN, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, IPV6_HLEN},
};

mod icmp;
use icmp::icmp_error;

const IPPROTO_ICMPV6: u8 = 58;

/// An IPv6 packet as parsed: the fixed header at `off`, the upper-layer
/// protocol and its offset after the extension chain.
struct Pkt {
    ip: Ipv6,
    off: usize,
    proto: u8,
    l4: usize,
}

/// (verdict, reason) in one word, as a subprogram returns it.
#[inline(always)]
fn pack(r: Result<(u32, u32), u32>) -> u64 {
    let (action, reason) = match r {
        Ok(v) => v,
        Err(reason) => (xdp_action::XDP_PASS, reason),
    };
    ((action as u64) << 32) | reason as u64
}

#[inline(always)]
fn unpack(r: u64) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// A dry-run flag and a byte count in one subprogram argument.
const DRY_BIT: u64 = 1 << 63;

/// An IPv6 frame, from `gateway` (which checked the ethertype and that
/// the gateway has an IPv6 address, and took off a chain header).
#[xdp]
pub fn gateway6(ctx: XdpContext) -> u32 {
    entry::<false>(&ctx)
}

/// A G-PDU whose T-PDU is IPv6, from `gateway`'s GTP-U uplink (which
/// checked the outer headers, found the tunnel and left it, with where
/// the T-PDU lies, in the scratch slot).
#[xdp]
pub fn gateway6_gtpu(ctx: XdpContext) -> u32 {
    entry::<true>(&ctx)
}

#[inline(always)]
fn entry<const GTPU: bool>(ctx: &XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let dry = super::dry_run(ctx);
    let r = match GW_CONFIG.get(0) {
        Some(cfg) if cfg.enabled != 0 => run::<GTPU>(ctx, cfg, dry, bytes),
        _ => pack(Err(stat::NOT_FOR_US)),
    };
    let (mut action, reason) = unpack(r);
    if action & gtpu6::TAIL != 0 {
        // A G-PDU over IPv6 to its T-PDU's program, or a downlink toward
        // an IPv6 access node: counted there.
        return gtpu6::tail(ctx, action, dry, bytes);
    }
    // A G-PDU of a known tunnel is never passed: the kernel cannot answer
    // into a tunnel (as on the IPv4 uplink).
    if GTPU && action == xdp_action::XDP_PASS {
        action = xdp_action::XDP_DROP;
    }
    if !dry {
        maps::count(&GW_STATS, reason, bytes);
        maps::count_verdict(&GW_STATS, action, bytes);
        return crate::entry::next(ctx, role::GATEWAY, action);
    }
    action
}

/// `classify`'s answers (the high word; the low word is the reason of a
/// pass).
const PASS: u64 = 0;
const REPLY: u64 = 1;
const TO_SERVICE: u64 = 2;
const ICMP_ERROR: u64 = 3;
const GTPU_IN: u64 = 4;

/// The entry keeps a small frame: the headers are parsed in `classify`,
/// whose frame is gone before the path's subprogram takes its own (the
/// verifier bounds the frames of one call chain together).
#[inline(always)]
fn run<const GTPU: bool>(ctx: &XdpContext, cfg: &GwConfig, dry: bool, bytes: u64) -> u64 {
    let c = classify::<GTPU>(ctx, cfg);
    let Some(sp) = GW_SCRATCH6.get(0) else {
        return pack(Err(stat::NOT_FOR_US));
    };
    let db = bytes | if dry { DRY_BIT } else { 0 };
    match c >> 32 {
        REPLY => reverse(ctx, cfg, sp, db),
        TO_SERVICE => to_service::<GTPU>(ctx, cfg, sp, db),
        ICMP_ERROR => icmp_error(ctx, cfg, sp, db),
        GTPU_IN => gtpu_in(ctx, sp),
        _ => pack(Err(c as u32)),
    }
}

/// Parse the headers into this CPU's `GW_SCRATCH6` slot and say which path
/// the packet takes. A T-PDU (`GTPU`) is checked as the IPv4 uplink checks
/// one: whole inside its G-PDU, from the tunnel's UE (its /64), and only
/// ever on its way to a service.
#[inline(never)]
fn classify<const GTPU: bool>(ctx: &XdpContext, cfg: &GwConfig) -> u64 {
    let pass = |reason: u32| (PASS << 32) | reason as u64;
    let Some(scratch) = GW_SCRATCH6.get_ptr_mut(0) else {
        return pass(stat::NOT_FOR_US);
    };
    let (l3, tunnel, end) = if GTPU {
        // SAFETY: this CPU's slot, written by `gateway` just before.
        let s = unsafe { &*scratch };
        (
            (s.off & 0x3ff) as usize,
            s.tunnel,
            (s.tpdu_end & 0xffff) as usize,
        )
    } else {
        match parse::parse_eth_vlans(ctx) {
            Ok(e) if e.proto == ETH_P_IPV6 => (e.l3, NO_TUNNEL, 0),
            _ => return pass(stat::MALFORMED),
        }
    };
    let (ip, proto, l4) = match parse::parse_ipv6(ctx, l3, IPV6_MAX_EXT) {
        Ok(x) => x,
        Err(_) if GTPU => return pass(stat::GTPU_INNER_MALFORMED),
        // Never translated on a part of its key; the kernel reassembles.
        Err(Ipv6Error::Fragment) => return pass(stat::FRAGMENT),
        Err(_) => return pass(stat::MALFORMED),
    };
    if GTPU {
        if ip.payload_end > end {
            return pass(stat::GTPU_INNER_MALFORMED);
        }
        // The UE's addresses are its /64 (it makes its interface id).
        match GW_TUNNELS.get(tunnel.wrapping_sub(1)) {
            Some(t)
                if t.state == TUNNEL_ACTIVE
                    && t.ue_addr6 != [0; 4]
                    && t.ue_addr6[0] == ip.src[0]
                    && t.ue_addr6[1] == ip.src[1] => {}
            _ => return pass(stat::GTPU_UE_MISMATCH),
        }
    }
    // SAFETY: this CPU's slot; the path's subprogram reads it back.
    unsafe {
        let w = &mut *scratch;
        w.src = ip.src;
        w.dst = ip.dst;
        w.off = l3 as u32;
        w.l4 = l4 as u32;
        w.payload_end = ip.payload_end as u32;
        w.proto = proto as u32;
        w.tunnel = tunnel;
    }
    match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            // To the gateway's own address on a pool port: a server's reply.
            let Some(dport) = parse::load_be16(ctx, l4 + 2) else {
                return pass(if GTPU {
                    stat::GTPU_INNER_MALFORMED
                } else {
                    stat::MALFORMED
                });
            };
            if !GTPU
                && proto == IPPROTO_UDP
                && dport == parse::GTPU_PORT
                && cfg.n3_addr6 != [0; 4]
                && ip.dst == cfg.n3_addr6
            {
                GTPU_IN << 32
            } else if !GTPU && ip.dst == cfg.addr6 && dport >= cfg.port_min && dport <= cfg.port_max
            {
                REPLY << 32
            } else {
                TO_SERVICE << 32
            }
        }
        IPPROTO_ICMPV6 if !GTPU && ip.dst == cfg.addr6 => ICMP_ERROR << 32,
        _ => pass(stat::NOT_FOR_US),
    }
}

/// GTP-U over IPv6 transport to the N3 address (`gtpu6`). A subprogram.
#[inline(never)]
fn gtpu_in(ctx: &XdpContext, sp: &Parsed6) -> u64 {
    pack(gtpu6::uplink6(ctx, sp))
}

/// The packet as a subprogram sees it: read from the scratch slot, its
/// offsets masked to bounds the verifier can add to a packet pointer.
#[inline(always)]
fn pkt(s: &Parsed6) -> Pkt {
    Pkt {
        ip: Ipv6 {
            src: s.src,
            dst: s.dst,
            payload_end: (s.payload_end & 0xffff) as usize,
        },
        off: (s.off & 0x3ff) as usize,
        proto: s.proto as u8,
        l4: (s.l4 & 0x3fff) as usize,
    }
}

/// The TCP or UDP header, whole and inside the payload (the rewrite
/// updates its checksum) with the length it gives itself (data offset,
/// UDP length) inside it too: its ports as in the packet. A UDP datagram
/// without a checksum is not valid over IPv6.
#[inline(always)]
fn l4_ports(ctx: &XdpContext, p: &Pkt) -> Result<(u16, u16), u32> {
    let hl = parse::l4_hdr_len(p.proto);
    let ports = parse::parse_l4_ports(ctx, p.l4, hl).ok_or(stat::MALFORMED)?;
    if p.l4 + hl > p.ip.payload_end || !parse::l4_lengths_ok(ctx, p.proto, p.l4, p.ip.payload_end) {
        return Err(stat::MALFORMED);
    }
    if p.proto == IPPROTO_UDP && parse::load_be16(ctx, p.l4 + 6) == Some(0) {
        return Err(stat::MALFORMED);
    }
    Ok((ports.src, ports.dst))
}

/// A terminal's packet to a representative address, maybe: its flow's
/// session or a new one. A subprogram (its frame and its paths are not
/// the entry's); `db` is the byte count with `DRY_BIT`.
#[inline(never)]
fn to_service<const GTPU: bool>(ctx: &XdpContext, cfg: &GwConfig, sp: &Parsed6, db: u64) -> u64 {
    let p = pkt(sp);
    let tunnel = if GTPU { sp.tunnel } else { NO_TUNNEL };
    // Daisy chaining is for plain IP, as over IPv4.
    let chain = if !GTPU && sp.has_chain != 0 {
        Some(&sp.chain)
    } else {
        None
    };
    let (dry, bytes) = (db & DRY_BIT != 0, db & !DRY_BIT);
    let r = match l4_ports(ctx, &p) {
        Ok(ports) => to_service_in(ctx, cfg, &p, ports, (tunnel, chain), dry, bytes),
        Err(_) if GTPU => Err(stat::GTPU_INNER_MALFORMED),
        Err(e) => Err(e),
    };
    if let (true, Ok((action, _))) = (GTPU, r) {
        if !dry && (action == xdp_action::XDP_TX || action == xdp_action::XDP_REDIRECT) {
            let inner = (p.ip.payload_end - p.off) as u64;
            gtpu::count_tunnel(tunnel.wrapping_sub(1), inner, true);
            maps::count(&GW_STATS, stat::GTPU_UPLINK, bytes);
        }
    }
    pack(r)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn to_service_in(
    ctx: &XdpContext,
    cfg: &GwConfig,
    p: &Pkt,
    (sport, dport): (u16, u16),
    (tunnel, chain): (u32, Option<&ChainHdr>),
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let flow = FlowKey6 {
        addr: p.ip.src,
        port: sport,
        proto: p.proto,
        _pad: 0,
        tunnel,
    };
    // A tunnel session counts the frame as it would be without the tunnel.
    let bytes = if tunnel != NO_TUNNEL {
        (ETH_HLEN + p.ip.payload_end - p.off) as u64
    } else {
        bytes
    };
    // SAFETY: a u16 port copied out at once.
    let existing = unsafe { GW_FLOWS6.get(&flow) }.copied();
    // An established session addressing the same representative address
    // needs no service lookup.
    let mut group = u32::MAX;
    if let Some(port) = existing {
        let ph = u16::from_be(port) as u32;
        if let (Some(s), Some(s6)) = (GW_SESSIONS.get(ph), GW_SESS6.get(ph)) {
            if s.state == SESSION_ACTIVE && s6.rep_addr == p.ip.dst && s.rep_port == dport {
                group = s.group;
            }
        }
    }
    if group == u32::MAX {
        let key = ServiceKey6 {
            addr: p.ip.dst,
            port: dport,
            proto: p.proto,
            _pad: 0,
        };
        // SAFETY: read-only use of a value the control plane replaces whole.
        group = match unsafe { GW_SERVICES6.get(&key) } {
            Some(v) => v.group,
            None => return Err(stat::NOT_FOR_US),
        };
    }
    forward(
        ctx,
        cfg,
        p,
        (&flow, chain),
        existing,
        (sport, dport),
        group,
        dry,
        bytes,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward(
    ctx: &XdpContext,
    cfg: &GwConfig,
    p: &Pkt,
    (flow, chain): (&FlowKey6, Option<&ChainHdr>),
    existing: Option<u16>,
    (sport, dport): (u16, u16),
    group: u32,
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let h = || {
        hash::flow_hash_v6(
            hash::flow6_fold(p.ip.src, p.ip.dst, sport, dport, p.proto),
            0,
        )
    };
    let tcp_flags = tcp_flags_at(ctx, p.proto, p.l4);
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let mut reason = stat::FORWARD;
    let (port, server_idx) = match existing {
        Some(port) => {
            let ph = u16::from_be(port) as u32;
            let s = GW_SESSIONS.get_ptr_mut(ph).ok_or(stat::NO_SESSION)?;
            let s6 = GW_SESS6.get_ptr_mut(ph).ok_or(stat::NO_SESSION)?;
            // SAFETY: map values; fields read or updated with single stores.
            let (s, s6) = unsafe { (&mut *s, &mut *s6) };
            if s.state != SESSION_ACTIVE || s.family != FAMILY_V6 {
                return Ok((xdp_action::XDP_DROP, stat::NO_SESSION));
            }
            if !dry {
                if let Some(c) = chain {
                    if c.kind == RELAY {
                        // A peer without the flow handed it here.
                        maps::count(&GW_STATS, stat::CHAIN_SERVED, bytes);
                    }
                }
            }
            let mut server = s.server;
            if s.group != group {
                // Claim 4: another service within the same user session.
                if !authorized(group, &p.ip.src) {
                    return Ok((xdp_action::XDP_DROP, stat::UNAUTHORIZED));
                }
                let (idx, _) = choose(group, s.session_type as u32, h()).ok_or(stat::NO_SERVER)?;
                server = idx;
                if !dry {
                    s.group = group;
                    s.server = idx;
                    flag(&mut s.flags, SF_SERVICE_CHANGED);
                }
                reason = stat::SERVICE_CHANGE;
            }
            if !dry {
                if s6.rep_addr != p.ip.dst || s.rep_port != dport {
                    s6.rep_addr = p.ip.dst;
                    s.rep_port = dport;
                }
                s.last_seen_ns = now;
                if tcp_flags != 0 {
                    flag(&mut s.flags, tcp_flags);
                }
                count_session(ph as u16, bytes, true);
            }
            (port, server)
        }
        None => {
            if !authorized(group, &p.ip.src) {
                return Ok((xdp_action::XDP_DROP, stat::UNAUTHORIZED));
            }
            // A flow this gateway does not hold may live on another
            // (daisy chaining; a tunnel's flows live where its TEID is).
            let up_mac = if flow.tunnel == NO_TUNNEL {
                match super::chain::no_flow(
                    ctx,
                    &GW_RELAYS6,
                    (p.proto, p.l4),
                    flow,
                    chain,
                    dry,
                    now,
                    bytes,
                )? {
                    super::chain::Step::Sent(action, reason) => return Ok((action, reason)),
                    super::chain::Step::Create(m) => m,
                }
            } else {
                None
            };
            let stype = session_type(ctx, p);
            let (idx, _) = choose(group, stype, h()).ok_or(stat::NO_SERVER)?;
            if dry {
                (0u16.to_be(), idx)
            } else {
                let port = match new_session(
                    ctx,
                    p,
                    (flow, up_mac),
                    (sport, dport),
                    (group, stype, idx),
                    now,
                    tcp_flags,
                ) {
                    Ok(p) => p,
                    Err(verdict) => return Ok(verdict),
                };
                count_session(port, bytes, true);
                reason = stat::NEW_SESSION;
                (port.to_be(), idx)
            }
        }
    };
    let server = GW_SERVERS.get(server_idx).ok_or(stat::NO_SERVER)?;
    if server.addr6 == [0; 4] {
        return Err(stat::NO_SERVER);
    }
    // Rewrite: src = gateway:port, dst = server:port (claim 13).
    rewrite(ctx, p, &cfg.addr6, port, &server.addr6, server.port)?;
    if flow.tunnel != NO_TUNNEL {
        // The inner packet, translated, becomes the frame.
        gtpu::decap_as(ctx, p.off, [0x86, 0xdd])?;
    }
    let action = l2_out(ctx, &server.mac, &server.src_mac, server.ifindex)?;
    Ok((action, reason))
}

/// Claim 5 for an IPv6 terminal. A subprogram, as `super::authorized`.
#[inline(never)]
fn authorized(group: u32, addr: &[u32; 4]) -> bool {
    match GW_OPEN.get(group) {
        Some(o) if *o != 0 => return true,
        _ => {}
    }
    let key = Key::new(
        32 + 128,
        AuthKey6 {
            group_be: group.to_be(),
            addr: *addr,
        },
    );
    GW_AUTH6.get(&key).is_some()
}

/// Claim 9: the first rule matching; an IPv4 prefix never matches an
/// IPv6 terminal. DSCP is the traffic class's upper six bits. A
/// subprogram: its loop's paths end at its return.
#[inline(never)]
fn session_type(ctx: &XdpContext, p: &Pkt) -> u32 {
    let tc = match parse::ptr_at::<[u8; 2]>(ctx, p.off) {
        // SAFETY: 2 bytes checked.
        Some(b) => unsafe { (((*b)[0] & 0x0f) << 4) | ((*b)[1] >> 4) },
        None => 0,
    };
    let dscp = tc >> 2;
    for i in 0..TYPE_RULES_MAX {
        let r = match GW_TYPES.get(i) {
            Some(r) => r,
            None => break,
        };
        if r.valid == 0 {
            break;
        }
        if r.proto != 0 && r.proto != p.proto {
            continue;
        }
        if r.dscp_plus1 != 0 && r.dscp_plus1 - 1 != dscp {
            continue;
        }
        if r.prefix_len != 0 && (r.v6 == 0 || !in_prefix(&p.ip.src, &r.prefix6, r.prefix_len)) {
            continue;
        }
        return (r.session_type as u32) % TYPES_MAX;
    }
    0
}

#[inline(always)]
fn in_prefix(addr: &[u32; 4], prefix: &[u32; 4], len: u32) -> bool {
    let mut i = 0;
    while i < 4 {
        let bits = len.saturating_sub(32 * i as u32).min(32);
        if bits > 0 {
            let mask = (u32::MAX << (32 - bits)).to_be();
            if addr[i] & mask != prefix[i] & mask {
                return false;
            }
        }
        i += 1;
    }
    true
}

/// Allocate a port and install the session: `GW_SESS6` and the session
/// first, then the flow entry that makes them reachable; a lost insert
/// race gives the port back.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn new_session(
    ctx: &XdpContext,
    p: &Pkt,
    (flow, up_mac): (&FlowKey6, Option<[u8; 6]>),
    (sport, dport): (u16, u16),
    (group, stype, server): (u32, u32, u32),
    now: u64,
    tcp_flags: u32,
) -> Result<u16, (u32, u32)> {
    let port = match GW_POOL.pop() {
        Ok(Some(p)) => p,
        _ => return Err((xdp_action::XDP_DROP, stat::POOL_EXHAUSTED)),
    };
    let (s, s6) = match (
        GW_SESSIONS.get_ptr_mut(port as u32),
        GW_SESS6.get_ptr_mut(port as u32),
    ) {
        (Some(s), Some(s6)) => (s, s6),
        _ => {
            let _ = GW_POOL.push(port, 0);
            return Err((xdp_action::XDP_DROP, stat::NO_SESSION));
        }
    };
    let eth = match parse::ptr_at::<[u8; 12]>(ctx, 0) {
        // SAFETY: 12 bytes checked.
        Some(e) => unsafe { *e },
        None => {
            let _ = GW_POOL.push(port, 0);
            return Err((xdp_action::XDP_PASS, stat::MALFORMED));
        }
    };
    // SAFETY: the port came from the pool, so no other CPU owns these.
    unsafe {
        (*s6).term_addr = p.ip.src;
        (*s6).rep_addr = p.ip.dst;
        let s = &mut *s;
        s.flags = tcp_flags;
        s.term_addr = 0;
        s.term_port = sport;
        s.proto = p.proto;
        s.session_type = stype as u8;
        s.rep_addr = 0;
        s.rep_port = dport;
        s.family = FAMILY_V6;
        s.tunnel = flow.tunnel;
        s.group = group;
        s.server = server;
        // The frame's sender, unless a bounce says which lb it came by.
        match up_mac {
            Some(m) => s.up_mac = m,
            None => s.up_mac.copy_from_slice(&eth[6..12]),
        }
        s.up_src_mac.copy_from_slice(&eth[0..6]);
        s.up_ifindex = ctx.ingress_ifindex() as u32;
        s.created_ns = now;
        s.last_seen_ns = now;
        core::sync::atomic::compiler_fence(Ordering::Release);
        s.state = SESSION_ACTIVE;
    }
    const BPF_NOEXIST: u64 = 1;
    if let Err(e) = GW_FLOWS6.insert(flow, &port.to_be(), BPF_NOEXIST) {
        unsafe { (*s).state = SESSION_FREE };
        let _ = GW_POOL.push(port, 0);
        const EEXIST: i32 = 17;
        let r = if e == -EEXIST {
            stat::LOST_RACE
        } else {
            stat::FLOWS_FULL
        };
        return Err((xdp_action::XDP_DROP, r));
    }
    Ok(port)
}

/// A server's reply to the gateway's address on a pool port. A
/// subprogram (its frame is not the forward path's).
#[inline(never)]
fn reverse(ctx: &XdpContext, cfg: &GwConfig, sp: &Parsed6, db: u64) -> u64 {
    let p = pkt(sp);
    let r = l4_ports(ctx, &p).and_then(|(sport, dport)| {
        reverse_in(
            ctx,
            cfg,
            &p,
            (sport, u16::from_be(dport)),
            db & DRY_BIT != 0,
            db & !DRY_BIT,
        )
    });
    pack(r)
}

#[inline(always)]
fn reverse_in(
    ctx: &XdpContext,
    cfg: &GwConfig,
    p: &Pkt,
    (sport, port): (u16, u16),
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let s = GW_SESSIONS
        .get_ptr_mut(port as u32)
        .ok_or(stat::NO_SESSION)?;
    // SAFETY: map value; fields read, a few single stores.
    let s = unsafe { &mut *s };
    if s.state != SESSION_ACTIVE || s.proto != p.proto || s.family != FAMILY_V6 {
        return Err(stat::NO_SESSION);
    }
    let server = GW_SERVERS.get(s.server).ok_or(stat::NO_SESSION)?;
    if server.addr6 != p.ip.src || server.port != sport {
        return Ok((xdp_action::XDP_DROP, stat::REVERSE_SPOOFED));
    }
    let s6 = GW_SESS6.get(port as u32).ok_or(stat::NO_SESSION)?;
    let (rep_port, term_port) = (s.rep_port, s.term_port);
    let (mac, src_mac, ifindex) = (s.up_mac, s.up_src_mac, s.up_ifindex);
    // A tunnel session's reply is encapsulated: the tunnel is checked
    // before anything is counted or rewritten.
    let down = match gtpu::session_tunnel6(ctx, s.tunnel, p.off) {
        Ok(d) => d,
        Err(reason) => return Ok((xdp_action::XDP_DROP, reason)),
    };
    if !dry {
        s.last_seen_ns = unsafe { bpf_ktime_get_coarse_ns() };
        let f = tcp_flags_at(ctx, p.proto, p.l4);
        if f != 0 {
            flag(&mut s.flags, f);
        }
        count_session(port, bytes, false);
    }
    rewrite(ctx, p, &s6.rep_addr, rep_port, &s6.term_addr, term_port)?;
    if let Some(d) = down {
        return Ok(gtpu::send_down(ctx, cfg, &d, stat::REVERSE, dry, bytes));
    }
    let action = l2_out(ctx, &mac, &src_mac, ifindex)?;
    Ok((action, stat::REVERSE))
}

#[inline(always)]
fn put_addr(h: &mut [u8; IPV6_HLEN], at: usize, a: &[u32; 4]) {
    h[at..at + 4].copy_from_slice(&a[0].to_ne_bytes());
    h[at + 4..at + 8].copy_from_slice(&a[1].to_ne_bytes());
    h[at + 8..at + 12].copy_from_slice(&a[2].to_ne_bytes());
    h[at + 12..at + 16].copy_from_slice(&a[3].to_ne_bytes());
}

/// Rewrite addresses and ports (as in the packet), decrement the hop
/// limit, and adjust the L4 checksum over the pseudo-header.
#[inline(always)]
fn rewrite(
    ctx: &XdpContext,
    p: &Pkt,
    src: &[u32; 4],
    sport: u16,
    dst: &[u32; 4],
    dport: u16,
) -> Result<(), u32> {
    let hdr = parse::ptr_at::<[u8; IPV6_HLEN]>(ctx, p.off).ok_or(stat::MALFORMED)?;
    // SAFETY: 40 bytes checked.
    let h = unsafe { &mut *hdr };
    if h[7] <= 1 {
        // The hop limit would expire: the kernel sends the time exceeded.
        return Err(stat::NOT_FOR_US);
    }
    let csum_off = if p.proto == IPPROTO_TCP { 16 } else { 6 };
    let l4 = parse::ptr_at::<[u8; 4]>(ctx, p.l4).ok_or(stat::MALFORMED)?;
    let cp = parse::ptr_at::<[u8; 2]>(ctx, p.l4 + csum_off).ok_or(stat::MALFORMED)?;
    h[7] -= 1;
    put_addr(h, 8, src);
    put_addr(h, 24, dst);
    // SAFETY: both checked.
    let (ports, cb) = unsafe { (&mut *l4, &mut *cp) };
    let old_sport = u16::from_ne_bytes([ports[0], ports[1]]);
    let old_dport = u16::from_ne_bytes([ports[2], ports[3]]);
    ports[0..2].copy_from_slice(&sport.to_ne_bytes());
    ports[2..4].copy_from_slice(&dport.to_ne_bytes());
    let mut c = csum::replace128(u16::from_ne_bytes(*cb), &p.ip.src, src);
    c = csum::replace128(c, &p.ip.dst, dst);
    c = csum::replace16(c, old_sport, sport);
    c = csum::replace16(c, old_dport, dport);
    if p.proto == IPPROTO_UDP {
        c = csum::udp_fix(c);
    }
    *cb = c.to_ne_bytes();
    Ok(())
}
