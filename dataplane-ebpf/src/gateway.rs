//! The `gateway` program (seed 002, second distribution unit): one unique
//! source port per user session, full NAT toward a server of the group
//! behind the representative address the terminal addressed, and the
//! reverse translation for the server's replies and ICMP errors. GTP-U
//! (TS 29.281) in `gtpu`: G-PDUs to the N3 address are decapsulated and
//! their inner packets take the same path, keyed by tunnel; replies of
//! tunnel sessions are encapsulated toward the access node.

mod chain;
mod gtpu;
mod gtpu6;
mod v6;

use core::sync::atomic::Ordering;
use dataplane_common::entry::role;

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, maps::lpm_trie::Key,
    programs::XdpContext,
};
use dataplane_common::{
    chain::{ChainHdr, RELAY},
    gateway::{
        stat, AuthKey, FlowKey, GwConfig, Server, ServiceKey, DRY_RUN_MAGIC, FAMILY_V4, NO_SERVER,
        NO_TUNNEL, PROG_V6, SELECT_SLOTS, SESSION_ACTIVE, SESSION_FREE, SF_FIN, SF_RST,
        SF_SERVICE_CHANGED, TYPES_MAX, TYPE_RULES_MAX,
    },
    hash,
};

use crate::{
    csum,
    maps::{
        self, GW_AUTH, GW_CONFIG, GW_FLOWS, GW_OPEN, GW_POOL, GW_PROGS, GW_RELAYS, GW_SCRATCH6,
        GW_SELECT, GW_SERVERS, GW_SERVICES, GW_SESSIONS, GW_SESS_STATS, GW_STATS, GW_TX_PORTS,
        GW_TYPES,
    },
    parse::{self, Ipv4 as Ip, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP},
};

const NONE: u32 = u32::MAX;

#[xdp]
pub fn gateway(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let dry = dry_run(&ctx);
    let (action, reason) = match run(&ctx, dry, bytes) {
        Ok(r) => r,
        Err(reason) => (xdp_action::XDP_PASS, reason),
    };
    if action & gtpu6::TAIL != 0 {
        // A downlink toward an IPv6 access node: sent and counted there.
        return gtpu6::tail(&ctx, action, dry, bytes);
    }
    if !dry {
        if reason != NONE {
            maps::count(&GW_STATS, reason, bytes);
        }
        maps::count_verdict(&GW_STATS, action, bytes);
        // A dry run (lookup) stops here: the next stage would act on it.
        return crate::entry::next(&ctx, role::GATEWAY, action);
    }
    action
}

/// A lookup (CLI) runs the program through test_run with this magic in
/// the XDP metadata: decide and rewrite, but change no map.
#[inline(always)]
pub(super) fn dry_run(ctx: &XdpContext) -> bool {
    let meta = ctx.metadata();
    if meta + 4 > ctx.data() {
        return false;
    }
    // SAFETY: 4 bytes of metadata checked just above.
    unsafe { core::ptr::read_unaligned(meta as *const u32) == DRY_RUN_MAGIC }
}

#[inline(always)]
fn run(ctx: &XdpContext, dry: bool, bytes: u64) -> Result<(u32, u32), u32> {
    let cfg = match GW_CONFIG.get(0) {
        Some(c) if c.enabled != 0 => *c,
        _ => return Err(stat::NOT_FOR_US),
    };
    // Daisy chaining: the header comes off first, so everything below
    // sees the frame as the lb would have sent it without one.
    let chain = match crate::chain::strip(ctx) {
        Ok(c) => c,
        Err(()) => return Ok((xdp_action::XDP_DROP, stat::CHAIN_MALFORMED)),
    };
    if chain.is_some() && !dry {
        maps::count(&GW_STATS, stat::CHAIN_IN, bytes);
    }
    let eth = parse::parse_eth_vlans(ctx).map_err(|_| stat::MALFORMED)?;
    if eth.proto == ETH_P_IPV6 && (cfg.addr6 != [0; 4] || cfg.n3_addr6 != [0; 4]) {
        // The IPv6 program takes the frame as it is now (chain header
        // off, handed over in the scratch slot) and counts it; it returns
        // here only if it is not loaded.
        if let Some(s) = GW_SCRATCH6.get_ptr_mut(0) {
            // SAFETY: this CPU's slot, read by the program called next.
            unsafe {
                match chain {
                    Some(h) => {
                        (*s).chain = h;
                        (*s).has_chain = 1;
                    }
                    None => (*s).has_chain = 0,
                }
            }
        }
        // SAFETY: a tail call into a program of this object.
        let _ = unsafe { GW_PROGS.tail_call(ctx, PROG_V6) };
        return Err(stat::NOT_IP);
    }
    if eth.proto != ETH_P_IPV4 {
        return Err(stat::NOT_IP);
    }
    let ip = parse::parse_ipv4(ctx, eth.l3).ok_or(stat::MALFORMED)?;
    // Options are checked before fragments here (a cut header is
    // malformed, fragment or not).
    if ip.check().is_err() || !ip.options_present(ctx) {
        return Err(stat::MALFORMED);
    }
    if ip.is_fragment() {
        return Err(stat::FRAGMENT);
    }
    // GTP-U to the N3 address (a UDP header cut before its destination
    // port cannot be told apart and takes the plain path, as malformed).
    if ip.proto == IPPROTO_UDP
        && ip.dst == cfg.n3_addr
        && cfg.n3_addr != 0
        && parse::load_be16(ctx, ip.l4() + 2) == Some(parse::GTPU_PORT)
    {
        return gtpu::uplink(ctx, &cfg, &ip, dry, bytes);
    }
    // The datagram the total length announces is in the frame (GTP-U
    // checks its own outer lengths, and drops).
    if ip.check_length(ctx).is_err() {
        return Err(stat::MALFORMED);
    }
    match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            // The whole fixed header: the rewrite updates its checksum;
            // and the length it gives itself inside the datagram (no
            // session for a segment the server's kernel would drop).
            let ports = parse::parse_l4_ports(ctx, ip.l4(), parse::l4_hdr_len(ip.proto))
                .ok_or(stat::MALFORMED)?;
            if !parse::l4_lengths_ok(ctx, ip.proto, ip.l4(), ip.end()) {
                return Err(stat::MALFORMED);
            }
            let (sport, dport) = (ports.src, ports.dst);
            let dport_h = u16::from_be(dport);
            if ip.dst == cfg.addr && dport_h >= cfg.port_min && dport_h <= cfg.port_max {
                return reverse(ctx, &cfg, &ip, sport, dport_h, dry, bytes);
            }
            let flow = FlowKey {
                addr: ip.src,
                port: sport,
                proto: ip.proto,
                _pad: 0,
                tunnel: NO_TUNNEL,
            };
            let (existing, group) = service_group(&ip, &flow, dport)?;
            forward(
                ctx,
                &cfg,
                &ip,
                &flow,
                existing,
                (sport, dport),
                group,
                dry,
                bytes,
                NO_TUNNEL,
                (chain.as_ref(), true),
            )
        }
        IPPROTO_ICMP if ip.dst == cfg.addr => icmp_error(ctx, &cfg, &ip, dry, bytes),
        _ => Err(stat::NOT_FOR_US),
    }
}

/// The session a terminal flow already has (its port, network order) and
/// the group of the service it addresses. An established session
/// addressing the same representative address needs no service lookup:
/// its group is known.
#[inline(always)]
pub(super) fn service_group(
    ip: &Ip,
    flow: &FlowKey,
    dport: u16,
) -> Result<(Option<u16>, u32), u32> {
    // SAFETY: the value is a u16 port copied out at once.
    let existing = unsafe { GW_FLOWS.get(flow) }.copied();
    let group = match existing.and_then(|p| GW_SESSIONS.get(u16::from_be(p) as u32)) {
        Some(s) if s.state == SESSION_ACTIVE && s.rep_addr == ip.dst && s.rep_port == dport => {
            s.group
        }
        _ => {
            let key = ServiceKey {
                addr: ip.dst,
                port: dport,
                proto: ip.proto,
                _pad: 0,
            };
            // SAFETY: read-only use of a value the control plane
            // replaces whole.
            match unsafe { GW_SERVICES.get(&key) } {
                Some(v) => v.group,
                None => return Err(stat::NOT_FOR_US),
            }
        }
    };
    Ok((existing, group))
}

/// Claim 5: is this terminal allowed to reach this group? A group that
/// admits everyone says so in `GW_OPEN`, which spares the trie lookup.
/// A BPF subprogram, not inlined: its two outcomes meet at its return, so
/// the verifier does not carry them through the rest of the path.
#[inline(never)]
pub(super) fn authorized(group: u32, addr: u32) -> bool {
    // Matched, not mapped: the verifier refuses branchless pointer forms.
    match GW_OPEN.get(group) {
        Some(o) if *o != 0 => return true,
        _ => {}
    }
    let key = Key::new(
        64,
        AuthKey {
            group_be: group.to_be(),
            addr,
        },
    );
    GW_AUTH.get(&key).is_some()
}

/// Claim 9: the type of a new session, by the first matching rule.
#[inline(always)]
fn session_type(proto: u8, dscp: u8, addr: u32) -> u32 {
    for i in 0..TYPE_RULES_MAX {
        let r = match GW_TYPES.get(i) {
            Some(r) => r,
            None => break,
        };
        if r.valid == 0 {
            break;
        }
        if r.proto != 0 && r.proto != proto {
            continue;
        }
        if r.dscp_plus1 != 0 && r.dscp_plus1 - 1 != dscp {
            continue;
        }
        if r.prefix_len != 0 {
            if r.v6 != 0 {
                continue; // an IPv6 prefix: IPv6 terminals only
            }
            let mask = (u32::MAX << (32 - r.prefix_len.min(32))).to_be();
            if addr & mask != r.prefix & mask {
                continue;
            }
        }
        return (r.session_type as u32) % TYPES_MAX;
    }
    0
}

/// A server of `group` for a session of `stype`, weighted; falls back to
/// the group's type-0 servers when the type has none.
#[inline(always)]
pub(super) fn choose(group: u32, stype: u32, h: u32) -> Option<(u32, &'static Server)> {
    let slot = h % SELECT_SLOTS;
    let mut idx = NO_SERVER;
    if let Some(sel) = GW_SELECT.get(group * TYPES_MAX + stype) {
        idx = *sel.servers.get(slot as usize)?;
    }
    if idx == NO_SERVER && stype != 0 {
        if let Some(sel) = GW_SELECT.get(group * TYPES_MAX) {
            idx = *sel.servers.get(slot as usize)?;
        }
    }
    if idx == NO_SERVER {
        return None;
    }
    GW_SERVERS.get(idx as u32).map(|s| (idx as u32, s))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn forward(
    ctx: &XdpContext,
    cfg: &GwConfig,
    ip: &Ip,
    flow: &FlowKey,
    existing: Option<u16>,
    (sport, dport): (u16, u16),
    group: u32,
    dry: bool,
    bytes: u64,
    tunnel: u32,
    (chain, relays): (Option<&ChainHdr>, bool),
) -> Result<(u32, u32), u32> {
    // Only new sessions and service changes choose a server.
    let h = || hash::flow_hash(ip.src, ip.dst, sport, dport, ip.proto, 0);
    let tcp_flags = tcp_flags(ctx, ip);
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let mut reason = stat::FORWARD;
    let (port, server_idx) = match existing {
        Some(port) => {
            let s = GW_SESSIONS
                .get_ptr_mut(u16::from_be(port) as u32)
                .ok_or(stat::NO_SESSION)?;
            // SAFETY: map value pointer; fields are read or updated with
            // single stores/atomics.
            let s = unsafe { &mut *s };
            if s.state != SESSION_ACTIVE {
                return Ok((xdp_action::XDP_DROP, stat::NO_SESSION));
            }
            if !dry && chain.is_some_and(|c| c.kind == RELAY) {
                // A peer without the flow handed it here, where it lives.
                maps::count(&GW_STATS, stat::CHAIN_SERVED, bytes);
            }
            let mut server = s.server;
            if s.group != group {
                // Claim 4: the terminal addressed another service within
                // the same user session: keep the port, move to a server
                // of the new group.
                if !authorized(group, ip.src) {
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
                if s.rep_addr != ip.dst || s.rep_port != dport {
                    s.rep_addr = ip.dst;
                    s.rep_port = dport;
                }
                s.last_seen_ns = now;
                if tcp_flags != 0 {
                    flag(&mut s.flags, tcp_flags);
                }
                count_session(u16::from_be(port), bytes, true);
            }
            (port, server)
        }
        None => {
            // Claim 5 (a terminal not allowed is not relayed either).
            if !authorized(group, ip.src) {
                return Ok((xdp_action::XDP_DROP, stat::UNAUTHORIZED));
            }
            // Daisy chaining is for plain IP (`relays` is a literal at
            // each call site): a tunnel's sessions live where its TEID was
            // allocated.
            let up_mac = if relays {
                match chain::no_flow(
                    ctx,
                    &GW_RELAYS,
                    (ip.proto, ip.l4()),
                    flow,
                    chain,
                    dry,
                    now,
                    bytes,
                )? {
                    chain::Step::Sent(action, reason) => return Ok((action, reason)),
                    chain::Step::Create(m) => m,
                }
            } else {
                None
            };
            let stype = session_type(ip.proto, ip.tos >> 2, ip.src);
            let (idx, _) = choose(group, stype, h()).ok_or(stat::NO_SERVER)?;
            if dry {
                // A lookup shows the server a new session would get; the
                // port is allocated only by real traffic (shown as 0).
                (0u16.to_be(), idx)
            } else {
                let port = match new_session(
                    ctx,
                    ip,
                    flow,
                    (sport, dport),
                    group,
                    stype,
                    idx,
                    now,
                    bytes,
                    tcp_flags,
                    tunnel,
                    up_mac,
                ) {
                    Ok(p) => p,
                    Err(verdict) => return Ok(verdict),
                };
                reason = stat::NEW_SESSION;
                (port.to_be(), idx)
            }
        }
    };
    let server = GW_SERVERS.get(server_idx).ok_or(stat::NO_SERVER)?;
    // Rewrite: src = gateway:port, dst = server:port (claim 13).
    rewrite(ctx, ip, cfg.addr, port, server.addr, server.port)?;
    if tunnel != NO_TUNNEL {
        // The inner packet, translated, becomes the frame.
        gtpu::decap(ctx, ip.off)?;
    }
    let action = l2_out(ctx, &server.mac, &server.src_mac, server.ifindex)?;
    Ok((action, reason))
}

/// Allocate a port and install the session. The session is written before
/// the flow entry that makes it reachable; a lost insert race gives the
/// port back.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn new_session(
    ctx: &XdpContext,
    ip: &Ip,
    flow: &FlowKey,
    (sport, dport): (u16, u16),
    group: u32,
    stype: u32,
    server: u32,
    now: u64,
    bytes: u64,
    tcp_flags: u32,
    tunnel: u32,
    up_mac: Option<[u8; 6]>,
) -> Result<u16, (u32, u32)> {
    let port = match GW_POOL.pop() {
        Ok(Some(p)) => p,
        _ => return Err((xdp_action::XDP_DROP, stat::POOL_EXHAUSTED)),
    };
    let s = match GW_SESSIONS.get_ptr_mut(port as u32) {
        Some(s) => s,
        None => {
            let _ = GW_POOL.push(port, 0);
            return Err((xdp_action::XDP_DROP, stat::NO_SESSION));
        }
    };
    let eth = parse::ptr_at::<[u8; 12]>(ctx, 0).ok_or((xdp_action::XDP_PASS, stat::MALFORMED))?;
    let eth = unsafe { *eth };
    // SAFETY: the port came from the pool, so no other CPU owns this entry.
    unsafe {
        let s = &mut *s;
        s.flags = tcp_flags;
        s.term_addr = ip.src;
        s.term_port = sport;
        s.proto = ip.proto;
        s.session_type = stype as u8;
        s.rep_addr = ip.dst;
        s.rep_port = dport;
        s.family = FAMILY_V4;
        s.tunnel = tunnel;
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
    if let Err(e) = GW_FLOWS.insert(flow, &port.to_be(), BPF_NOEXIST) {
        unsafe { (*s).state = SESSION_FREE };
        let _ = GW_POOL.push(port, 0);
        // -EEXIST: another CPU installed this flow first; its session
        // stands and this packet is dropped (the next one finds it).
        const EEXIST: i32 = 17;
        let r = if e == -EEXIST {
            stat::LOST_RACE
        } else {
            stat::FLOWS_FULL
        };
        return Err((xdp_action::XDP_DROP, r));
    }
    count_session(port, bytes, true);
    Ok(port)
}

/// This CPU's counters of the session on `port` (no atomics needed).
#[inline(always)]
pub(super) fn count_session(port: u16, bytes: u64, up: bool) {
    if let Some(c) = GW_SESS_STATS.get_ptr_mut(port as u32) {
        // SAFETY: per-CPU slot.
        unsafe {
            if up {
                (*c).pkts_up += 1;
                (*c).bytes_up += bytes;
            } else {
                (*c).pkts_down += 1;
                (*c).bytes_down += bytes;
            }
        }
    }
}

/// Flags only ever gain bits; a plain OR may lose a bit set at the same
/// instant by another CPU, which costs at most an idle timeout instead of
/// an early close (atomic OR needs BPF v3).
#[inline(always)]
pub(super) fn flag(field: &mut u32, v: u32) {
    *field |= v;
}

/// TCP FIN/RST as session flags, so the control plane can expire closed
/// sessions early.
#[inline(always)]
fn tcp_flags(ctx: &XdpContext, ip: &Ip) -> u32 {
    tcp_flags_at(ctx, ip.proto, ip.l4())
}

/// The same for the L4 header at `l4` of either family.
#[inline(always)]
pub(super) fn tcp_flags_at(ctx: &XdpContext, proto: u8, l4: usize) -> u32 {
    if proto != IPPROTO_TCP {
        return 0;
    }
    let Some(flags) = parse::load_u8(ctx, l4 + 13) else {
        return 0;
    };
    (if flags & 0x01 != 0 { SF_FIN } else { 0 }) | (if flags & 0x04 != 0 { SF_RST } else { 0 })
}

#[inline(always)]
fn reverse(
    ctx: &XdpContext,
    cfg: &GwConfig,
    ip: &Ip,
    sport: u16,
    port: u16,
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let s = GW_SESSIONS
        .get_ptr_mut(port as u32)
        .ok_or(stat::NO_SESSION)?;
    // SAFETY: map value; read fields, atomically add counters.
    let s = unsafe { &mut *s };
    if s.state != SESSION_ACTIVE || s.proto != ip.proto || s.family != FAMILY_V4 {
        return Err(stat::NO_SESSION);
    }
    let server = GW_SERVERS.get(s.server).ok_or(stat::NO_SESSION)?;
    if server.addr != ip.src || server.port != sport {
        return Ok((xdp_action::XDP_DROP, stat::REVERSE_SPOOFED));
    }
    let (rep_addr, rep_port, term_addr, term_port) =
        (s.rep_addr, s.rep_port, s.term_addr, s.term_port);
    let (mac, src_mac, ifindex) = (s.up_mac, s.up_src_mac, s.up_ifindex);
    // A tunnel session's reply is encapsulated: the tunnel is checked
    // before anything is counted or rewritten.
    let down = match gtpu::session_tunnel(ctx, s.tunnel, ip.off) {
        Ok(d) => d,
        Err(reason) => return Ok((xdp_action::XDP_DROP, reason)),
    };
    if !dry {
        s.last_seen_ns = unsafe { bpf_ktime_get_coarse_ns() };
        let f = tcp_flags(ctx, ip);
        if f != 0 {
            flag(&mut s.flags, f);
        }
        count_session(port, bytes, false);
    }
    rewrite(ctx, ip, rep_addr, rep_port, term_addr, term_port)?;
    if let Some(d) = down {
        return Ok(gtpu::send_down(ctx, cfg, &d, stat::REVERSE, dry, bytes));
    }
    let action = l2_out(ctx, &mac, &src_mac, ifindex)?;
    Ok((action, stat::REVERSE))
}

/// Rewrite addresses and ports (all network order), decrement the TTL, and
/// update the IPv4 and L4 checksums incrementally.
#[inline(always)]
fn rewrite(
    ctx: &XdpContext,
    ip: &Ip,
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
) -> Result<(), u32> {
    let hdr = parse::ptr_at::<[u8; 20]>(ctx, ip.off).ok_or(stat::MALFORMED)?;
    // SAFETY: 20 bytes checked.
    let h = unsafe { &mut *hdr };
    if h[8] <= 1 {
        // TTL would expire: the kernel sends the ICMP time exceeded.
        return Err(stat::NOT_FOR_US);
    }
    let old_ttl_word = u16::from_ne_bytes([h[8], h[9]]);
    h[8] -= 1;
    let new_ttl_word = u16::from_ne_bytes([h[8], h[9]]);
    let mut c = u16::from_ne_bytes([h[10], h[11]]);
    c = csum::replace16(c, old_ttl_word, new_ttl_word);
    c = csum::replace32(c, ip.src, src);
    c = csum::replace32(c, ip.dst, dst);
    h[10..12].copy_from_slice(&c.to_ne_bytes());
    h[12..16].copy_from_slice(&src.to_ne_bytes());
    h[16..20].copy_from_slice(&dst.to_ne_bytes());

    let csum_off = if ip.proto == IPPROTO_TCP { 16 } else { 6 };
    let l4 = parse::ptr_at::<[u8; 4]>(ctx, ip.l4()).ok_or(stat::MALFORMED)?;
    let cp = parse::ptr_at::<[u8; 2]>(ctx, ip.l4() + csum_off).ok_or(stat::MALFORMED)?;
    // SAFETY: both checked.
    let (p, cb) = unsafe { (&mut *l4, &mut *cp) };
    let old_sport = u16::from_ne_bytes([p[0], p[1]]);
    let old_dport = u16::from_ne_bytes([p[2], p[3]]);
    p[0..2].copy_from_slice(&sport.to_ne_bytes());
    p[2..4].copy_from_slice(&dport.to_ne_bytes());
    let old = u16::from_ne_bytes(*cb);
    if ip.proto == IPPROTO_UDP && old == 0 {
        return Ok(()); // no UDP checksum in use
    }
    let mut c = csum::replace32(old, ip.src, src);
    c = csum::replace32(c, ip.dst, dst);
    c = csum::replace16(c, old_sport, sport);
    c = csum::replace16(c, old_dport, dport);
    if ip.proto == IPPROTO_UDP {
        c = csum::udp_fix(c);
    }
    *cb = c.to_ne_bytes();
    Ok(())
}

#[inline(always)]
pub(super) fn l2_out(
    ctx: &XdpContext,
    dst_mac: &[u8; 6],
    src_mac: &[u8; 6],
    ifindex: u32,
) -> Result<u32, u32> {
    let same = ifindex as usize == ctx.ingress_ifindex();
    if !same && GW_TX_PORTS.get_ifindex(ifindex).is_none() {
        return Ok(xdp_action::XDP_DROP).and(Err(stat::REDIRECT_FAILED));
    }
    let eth = parse::ptr_at::<[u8; 12]>(ctx, 0).ok_or(stat::MALFORMED)?;
    // SAFETY: 12 bytes checked.
    unsafe {
        let e = &mut *eth;
        e[0..6].copy_from_slice(dst_mac);
        e[6..12].copy_from_slice(src_mac);
    }
    if same {
        return Ok(xdp_action::XDP_TX);
    }
    GW_TX_PORTS
        .redirect(ifindex, xdp_action::XDP_DROP as u64)
        .or(Ok(xdp_action::XDP_DROP))
}

/// An ICMP error about a translated packet (RFC 5508 §5: NAT behaviour for
/// ICMP): the quoted packet went gateway:port → server; the terminal must
/// see terminal:port → representative, from the representative address.
#[inline(always)]
fn icmp_error(
    ctx: &XdpContext,
    cfg: &GwConfig,
    ip: &Ip,
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let icmp = ip.l4();
    let t = parse::load_u8(ctx, icmp).ok_or(stat::MALFORMED)?;
    // Destination unreachable, time exceeded, parameter problem.
    if t != 3 && t != 11 && t != 12 {
        return Err(stat::NOT_FOR_US);
    }
    // The quoted header (RFC 792: IP header + 64 bits of the datagram).
    let q = icmp + 8;
    let quoted = parse::parse_ipv4(ctx, q).ok_or(stat::MALFORMED)?;
    quoted.check().map_err(|_| stat::MALFORMED)?;
    let qproto = quoted.proto;
    if qproto != IPPROTO_TCP && qproto != IPPROTO_UDP {
        return Err(stat::NOT_FOR_US);
    }
    let (qsrc, qdst) = (quoted.src, quoted.dst);
    let ql4 = quoted.l4();
    // The quote need not reach past the ports.
    let qports = parse::parse_l4_ports(ctx, ql4, parse::PORTS_LEN).ok_or(stat::MALFORMED)?;
    let (qsport, qdport) = (qports.src, qports.dst);
    let s = GW_SESSIONS
        .get(u16::from_be(qsport) as u32)
        .ok_or(stat::NO_SESSION)?;
    if s.state != SESSION_ACTIVE || s.proto != qproto || qsrc != ip.dst || s.family != FAMILY_V4 {
        return Err(stat::NO_SESSION);
    }
    let server = GW_SERVERS.get(s.server).ok_or(stat::NO_SESSION)?;
    if server.addr != qdst || server.port != qdport {
        return Ok((xdp_action::XDP_DROP, stat::REVERSE_SPOOFED));
    }
    let (rep_addr, rep_port, term_addr, term_port) =
        (s.rep_addr, s.rep_port, s.term_addr, s.term_port);
    let (mac, src_mac, ifindex) = (s.up_mac, s.up_src_mac, s.up_ifindex);
    // A tunnel session's error goes back into its tunnel: checked (and the
    // IP length taken) before anything is rewritten.
    let down = match gtpu::session_tunnel(ctx, s.tunnel, ip.off) {
        Ok(d) => d,
        Err(reason) => return Ok((xdp_action::XDP_DROP, reason)),
    };

    let icp = parse::ptr_at::<[u8; 4]>(ctx, icmp).ok_or(stat::MALFORMED)?;
    let mut ic = unsafe { u16::from_ne_bytes([(*icp)[2], (*icp)[3]]) };
    // Quoted IP header: src gateway → terminal, dst server → representative.
    let qhm = parse::ptr_at::<[u8; 20]>(ctx, q).ok_or(stat::MALFORMED)?;
    let qhm = unsafe { &mut *qhm };
    let old_qc = u16::from_ne_bytes([qhm[10], qhm[11]]);
    let mut qc = csum::replace32(old_qc, qsrc, term_addr);
    qc = csum::replace32(qc, qdst, rep_addr);
    qhm[10..12].copy_from_slice(&qc.to_ne_bytes());
    qhm[12..16].copy_from_slice(&term_addr.to_ne_bytes());
    qhm[16..20].copy_from_slice(&rep_addr.to_ne_bytes());
    ic = csum::replace16(ic, old_qc, qc);
    ic = csum::replace32(ic, qsrc, term_addr);
    ic = csum::replace32(ic, qdst, rep_addr);
    // Quoted ports.
    let qpm = parse::ptr_at::<[u8; 4]>(ctx, ql4).ok_or(stat::MALFORMED)?;
    let qpm = unsafe { &mut *qpm };
    qpm[0..2].copy_from_slice(&term_port.to_ne_bytes());
    qpm[2..4].copy_from_slice(&rep_port.to_ne_bytes());
    ic = csum::replace16(ic, qsport, term_port);
    ic = csum::replace16(ic, qdport, rep_port);
    // The quoted L4 checksum, when the quote reaches it.
    let coff = if qproto == IPPROTO_TCP { 16 } else { 6 };
    if let Some(cp) = parse::ptr_at::<[u8; 2]>(ctx, ql4 + coff) {
        let cb = unsafe { &mut *cp };
        let old = u16::from_ne_bytes(*cb);
        if !(qproto == IPPROTO_UDP && old == 0) {
            let mut c = csum::replace32(old, qsrc, term_addr);
            c = csum::replace32(c, qdst, rep_addr);
            c = csum::replace16(c, qsport, term_port);
            c = csum::replace16(c, qdport, rep_port);
            if qproto == IPPROTO_UDP {
                c = csum::udp_fix(c);
            }
            *cb = c.to_ne_bytes();
            ic = csum::replace16(ic, old, c);
        }
    }
    let icp = parse::ptr_at::<[u8; 4]>(ctx, icmp).ok_or(stat::MALFORMED)?;
    unsafe { (&mut *icp)[2..4].copy_from_slice(&ic.to_ne_bytes()) };
    // Outer header: from the representative address to the terminal.
    let oh = parse::ptr_at::<[u8; 20]>(ctx, ip.off).ok_or(stat::MALFORMED)?;
    let oh = unsafe { &mut *oh };
    let mut oc = u16::from_ne_bytes([oh[10], oh[11]]);
    oc = csum::replace32(oc, ip.src, rep_addr);
    oc = csum::replace32(oc, ip.dst, term_addr);
    oh[10..12].copy_from_slice(&oc.to_ne_bytes());
    oh[12..16].copy_from_slice(&rep_addr.to_ne_bytes());
    oh[16..20].copy_from_slice(&term_addr.to_ne_bytes());
    if let Some(d) = down {
        return Ok(gtpu::send_down(
            ctx,
            cfg,
            &d,
            stat::ICMP_REVERSE,
            dry,
            bytes,
        ));
    }
    let action = l2_out(ctx, &mac, &src_mac, ifindex)?;
    Ok((action, stat::ICMP_REVERSE))
}
