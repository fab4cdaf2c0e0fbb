//! The gateway as a GTP-U user plane (TS 29.281; seed 002).
//!
//! Uplink: a UDP datagram to the N3 address on port 2152 is checked
//! outside in (outer lengths, the GTP-U header chain, its length field),
//! signalling and unknown TEIDs go to the kernel (the daemon's socket on
//! n3:2152 answers Echo and sends Error Indications), and a G-PDU of an
//! active tunnel has its inner packet checked (well-formed IPv4 from the
//! tunnel's UE). The inner packet then takes the plain path (`forward`),
//! keyed by `FlowKey::tunnel`, is translated in place, and the outer
//! Ethernet/IP/UDP/GTP-U headers are cut off in front of it (`decap`).
//! A G-PDU of a known tunnel is never passed: the kernel cannot answer
//! into a tunnel, so whatever the plain path would pass is dropped, with
//! its reason counted.
//!
//! Downlink: a reply (or ICMP error) of a tunnel session is translated as
//! usual, then encapsulated toward the tunnel's access node (`send_down`).
//!
//! Counting: `gtpu_uplink` / `gtpu_downlink` count the packets of each
//! direction that went out, in addition to the reason of the plain path
//! (forward, new_session, service_change, reverse, icmp_reverse); the
//! tunnel's counters count inner IP bytes; the session's counters count
//! the frame as it would be without the tunnel (14 + inner IP length).

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_head, programs::XdpContext};
use dataplane_common::gateway::{
    stat, FlowKey, GwConfig, Tunnel, PROG_V6_GTPU, TUNNELS_MAX, TUNNEL_ACTIVE,
};

use crate::{
    maps::{
        self, GW_PROGS, GW_SCRATCH6, GW_STATS, GW_TEIDS, GW_TUNNELS, GW_TUN_STATS, GW_TX_PORTS,
    },
    parse::{
        self, GtpuError, Ipv4 as Ip, ETH_HLEN, GTPU_HLEN, GTPU_PORT, IPPROTO_TCP, IPPROTO_UDP,
        IPV4_HLEN, IPV6_HLEN, UDP_HLEN,
    },
};

/// Ethernet + IPv4 + UDP + the mandatory GTP-U header, written in front of
/// a downlink packet.
const ENCAP_LEN: usize = ETH_HLEN + IPV4_HLEN + UDP_HLEN + GTPU_HLEN;
/// The optional 4 octets and a 4-octet PDU Session Container.
pub(super) const EXT_LEN: usize = 8;
const OUTER_TTL: u8 = 64;

#[inline(always)]
fn dropped(reason: u32) -> Result<(u32, u32), u32> {
    Ok((xdp_action::XDP_DROP, reason))
}

/// A UDP datagram to n3:2152 (the caller checked the address and port).
#[inline(always)]
pub(super) fn uplink(
    ctx: &XdpContext,
    cfg: &GwConfig,
    ip: &Ip,
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    // Outer lengths: the datagram must be whole before its header chain
    // is believed (a frame may carry Ethernet padding after it).
    let udp = ip.l4();
    let Some(udp_len) = parse::load_be16(ctx, udp + 4) else {
        return dropped(stat::GTPU_TRUNCATED);
    };
    let Some(ip_len) = parse::load_be16(ctx, ip.off + 2) else {
        return dropped(stat::GTPU_TRUNCATED);
    };
    let (udp_len, ip_end) = (udp_len as usize, ip.off + ip_len as usize);
    if udp + UDP_HLEN > ip_end || ip_end > parse::packet_len(ctx) {
        return dropped(stat::GTPU_TRUNCATED);
    }
    let udp_end = udp + udp_len;
    if udp_len < UDP_HLEN || udp_end > ip_end {
        return dropped(stat::GTPU_TRUNCATED);
    }
    let (idx, ue, tpdu) = match gpdu(ctx, udp, udp_len, udp_end) {
        Ok(x) => x,
        Err(verdict) => return Ok(verdict),
    };
    if parse::load_u8(ctx, tpdu).map(|b| b >> 4) == Some(6) {
        return ipv6_tpdu(ctx, cfg, idx, tpdu, udp_end);
    }
    tpdu4(ctx, cfg, (idx, ue), (tpdu, udp_end), dry, bytes)
}

/// An IPv4 T-PDU of tunnel `idx` (UE `ue`) at `tpdu`, its G-PDU ending at
/// `udp_end`, over either transport: checked, translated by the plain
/// path, and the outer headers cut off.
#[inline(always)]
pub(super) fn tpdu4(
    ctx: &XdpContext,
    cfg: &GwConfig,
    (idx, ue): (u32, u32),
    (tpdu, udp_end): (usize, usize),
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    // The T-PDU: a whole IPv4 packet, first fragment or none, its L4
    // header (with its data offset or UDP length) inside its total length.
    let Some(inner) = parse::parse_ipv4(ctx, tpdu) else {
        return dropped(stat::GTPU_INNER_MALFORMED);
    };
    let Some(inner_len) = parse::load_be16(ctx, tpdu + 2) else {
        return dropped(stat::GTPU_INNER_MALFORMED);
    };
    let inner_len = inner_len as usize;
    if inner.check().is_err()
        || inner.is_fragment()
        || inner_len < inner.ihl()
        || tpdu + inner_len > udp_end
    {
        return dropped(stat::GTPU_INNER_MALFORMED);
    }
    let tcp_udp = inner.proto == IPPROTO_TCP || inner.proto == IPPROTO_UDP;
    let l4_need = if tcp_udp {
        parse::l4_hdr_len(inner.proto)
    } else {
        0
    };
    if inner.l4() + l4_need > tpdu + inner_len
        || !parse::l4_lengths_ok(ctx, inner.proto, inner.l4(), tpdu + inner_len)
    {
        return dropped(stat::GTPU_INNER_MALFORMED);
    }
    if inner.src != ue {
        return dropped(stat::GTPU_UE_MISMATCH);
    }
    if !tcp_udp {
        // Nothing to translate it by; the plain path would pass it.
        return dropped(stat::NOT_FOR_US);
    }
    let Some(ports) = parse::parse_l4_ports(ctx, inner.l4(), l4_need) else {
        return dropped(stat::GTPU_INNER_MALFORMED);
    };

    let tunnel = idx + 1;
    let flow = FlowKey {
        addr: inner.src,
        port: ports.src,
        proto: inner.proto,
        _pad: 0,
        tunnel,
    };
    let (existing, group) = match super::service_group(&inner, &flow, ports.dst) {
        Ok(x) => x,
        Err(reason) => return dropped(reason),
    };
    let plain_bytes = (ETH_HLEN + inner_len) as u64;
    let (action, reason) = match super::forward(
        ctx,
        cfg,
        &inner,
        &flow,
        existing,
        (ports.src, ports.dst),
        group,
        dry,
        plain_bytes,
        tunnel,
        (None, false),
    ) {
        Ok(r) => r,
        Err(reason) => (xdp_action::XDP_DROP, reason),
    };
    let action = if action == xdp_action::XDP_PASS {
        xdp_action::XDP_DROP
    } else {
        action
    };
    if !dry && (action == xdp_action::XDP_TX || action == xdp_action::XDP_REDIRECT) {
        count_tunnel(idx, inner_len as u64, true);
        maps::count(&GW_STATS, stat::GTPU_UPLINK, bytes);
    }
    Ok((action, reason))
}

/// The G-PDU in the UDP datagram at `udp` (its length `udp_len`, ending at
/// `udp_end`, both checked against the outer IP header by the caller):
/// its GTP-U header chain and length checked, its tunnel found. Ok: the
/// tunnel's index, its UE's IPv4 address and where the T-PDU starts. Err:
/// the verdict (signalling and unknown TEIDs go to the kernel).
#[inline(always)]
pub(super) fn gpdu(
    ctx: &XdpContext,
    udp: usize,
    udp_len: usize,
    udp_end: usize,
) -> Result<(u32, u32, usize), (u32, u32)> {
    let g = match parse::parse_gtpu(ctx, udp + UDP_HLEN) {
        Ok(g) => g,
        Err(GtpuError::Truncated) => return Err((xdp_action::XDP_DROP, stat::GTPU_TRUNCATED)),
        Err(GtpuError::BadVersion) => return Err((xdp_action::XDP_DROP, stat::GTPU_BAD_VERSION)),
        Err(GtpuError::BadExtension) => {
            return Err((xdp_action::XDP_DROP, stat::GTPU_BAD_EXTENSION))
        }
    };
    // The length field counts what follows the mandatory 8 octets.
    if GTPU_HLEN + g.len as usize != udp_len - UDP_HLEN {
        return Err((xdp_action::XDP_DROP, stat::GTPU_BAD_LENGTH));
    }
    if g.payload > udp_end {
        // The chain runs past the message (into padding).
        return Err((xdp_action::XDP_DROP, stat::GTPU_BAD_EXTENSION));
    }
    if g.msg != parse::GTPU_MSG_GPDU {
        return Err((xdp_action::XDP_PASS, stat::GTPU_SIGNALLING));
    }
    // The TEID's direct slot first (the control plane puts a tunnel there
    // when it is free), then the TEID map.
    let direct = g.teid % TUNNELS_MAX;
    let (idx, ue) = match GW_TUNNELS.get(direct) {
        Some(t) if t.state == TUNNEL_ACTIVE && t.ul_teid == g.teid => (direct, t.ue_addr),
        _ => {
            // SAFETY: a u32 copied out at once.
            let Some(idx) = (unsafe { GW_TEIDS.get(&g.teid) }).copied() else {
                return Err((xdp_action::XDP_PASS, stat::GTPU_UNKNOWN_TEID));
            };
            match GW_TUNNELS.get(idx) {
                Some(t) if t.state == TUNNEL_ACTIVE => (idx, t.ue_addr),
                _ => return Err((xdp_action::XDP_PASS, stat::GTPU_UNKNOWN_TEID)),
            }
        }
    };

    Ok((idx, ue, g.payload))
}

/// An IPv6 T-PDU of tunnel `idx`: the IPv6 program takes it
/// (`gateway6_gtpu`), with the tunnel and where the T-PDU lies in the
/// scratch slot. Dropped when the gateway has no IPv6 address.
#[inline(always)]
fn ipv6_tpdu(
    ctx: &XdpContext,
    cfg: &GwConfig,
    idx: u32,
    tpdu: usize,
    udp_end: usize,
) -> Result<(u32, u32), u32> {
    if cfg.addr6 == [0; 4] {
        return dropped(stat::NOT_IP);
    }
    if !hand_tpdu(idx, tpdu, udp_end) {
        return dropped(stat::NOT_IP);
    }
    // SAFETY: a tail call into a program of this object.
    let _ = unsafe { GW_PROGS.tail_call(ctx, PROG_V6_GTPU) };
    dropped(stat::NOT_IP)
}

/// Tunnel `idx`'s T-PDU at `tpdu`, its G-PDU ending at `udp_end`, into
/// this CPU's scratch slot for the program tail-called next; false when
/// the slot is missing.
#[inline(always)]
pub(super) fn hand_tpdu(idx: u32, tpdu: usize, udp_end: usize) -> bool {
    let Some(s) = GW_SCRATCH6.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's slot, read by the program called next.
    unsafe {
        (*s).tunnel = idx + 1;
        (*s).off = tpdu as u32;
        (*s).tpdu_end = udp_end as u32;
    }
    true
}

/// Cut everything in front of the (translated) inner IPv4 header at
/// `inner_off` but an Ethernet header: the MACs are `l2_out`'s, the
/// ethertype is IPv4. VLAN tags of the outer frame go with it.
#[inline(always)]
pub(super) fn decap(ctx: &XdpContext, inner_off: usize) -> Result<(), u32> {
    decap_as(ctx, inner_off, [0x08, 0x00])
}

/// `decap` for an inner packet of the given ethertype.
#[inline(always)]
pub(super) fn decap_as(ctx: &XdpContext, inner_off: usize, ethertype: [u8; 2]) -> Result<(), u32> {
    let delta = inner_off as i32 - ETH_HLEN as i32;
    // SAFETY: the helper checks the new head against the frame.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Err(stat::GTPU_ENCAP_FAILED);
    }
    let e = parse::ptr_at::<[u8; ETH_HLEN]>(ctx, 0).ok_or(stat::GTPU_ENCAP_FAILED)?;
    // SAFETY: 14 bytes checked.
    unsafe {
        (*e)[12] = ethertype[0];
        (*e)[13] = ethertype[1];
    }
    Ok(())
}

/// Where a tunnel session's downlink goes, checked before anything is
/// rewritten: a copy of the tunnel, and the IP packet's length.
pub(super) struct Down {
    t: Tunnel,
    idx: u32,
    ip_off: usize,
    ip_len: usize,
}

/// The tunnel (index + 1) of a session, if it can carry the downlink:
/// active, with the access node's address (and so its TEID) known, and a
/// way out to it.
/// The downlink of a session's tunnel, `None` for a plain-IP session.
#[inline(always)]
pub(super) fn session_tunnel(
    ctx: &XdpContext,
    tunnel: u32,
    ip_off: usize,
) -> Result<Option<Down>, u32> {
    if tunnel == dataplane_common::gateway::NO_TUNNEL {
        return Ok(None);
    }
    downlink_tunnel(ctx, tunnel, ip_off, false).map(Some)
}

/// `session_tunnel` for an IPv6 session's packet.
#[inline(always)]
pub(super) fn session_tunnel6(
    ctx: &XdpContext,
    tunnel: u32,
    ip_off: usize,
) -> Result<Option<Down>, u32> {
    if tunnel == dataplane_common::gateway::NO_TUNNEL {
        return Ok(None);
    }
    downlink_tunnel(ctx, tunnel, ip_off, true).map(Some)
}

/// The tunnel's downlink and the inner packet's length (IPv4: its total
/// length; IPv6: the fixed header and its payload length).
#[inline(always)]
pub(super) fn downlink_tunnel(
    ctx: &XdpContext,
    tunnel: u32,
    ip_off: usize,
    v6: bool,
) -> Result<Down, u32> {
    let idx = tunnel.wrapping_sub(1);
    let t = match GW_TUNNELS.get(idx) {
        Some(t) if t.state == TUNNEL_ACTIVE && t.has_downlink() => *t,
        _ => return Err(stat::GTPU_NO_TUNNEL),
    };
    if t.an_ifindex as usize != ctx.ingress_ifindex()
        && GW_TX_PORTS.get_ifindex(t.an_ifindex).is_none()
    {
        return Err(stat::REDIRECT_FAILED);
    }
    let ip_len = if v6 {
        IPV6_HLEN + parse::load_be16(ctx, ip_off + 4).ok_or(stat::MALFORMED)? as usize
    } else {
        parse::load_be16(ctx, ip_off + 2).ok_or(stat::MALFORMED)? as usize
    };
    if ip_len < IPV4_HLEN || ip_off + ip_len > parse::packet_len(ctx) {
        return Err(stat::MALFORMED);
    }
    Ok(Down {
        t,
        idx,
        ip_off,
        ip_len,
    })
}

/// Encapsulate the (translated) IP packet toward the access node and send
/// it: (verdict, reason). `reason` is the plain path's; a failure after
/// the rewrite drops.
#[inline(always)]
pub(super) fn send_down(
    ctx: &XdpContext,
    cfg: &GwConfig,
    d: &Down,
    reason: u32,
    dry: bool,
    bytes: u64,
) -> (u32, u32) {
    if d.t.an_addr6 != [0; 4] {
        // GTP-U over IPv6: its own program (`gateway_encap6`) encapsulates,
        // sends and counts; the entry tail-calls it.
        return super::gtpu6::to_encap6(d.idx, d.ip_off, d.ip_len, reason, bytes);
    }
    match encap(ctx, cfg, d) {
        Ok(action) => {
            if !dry {
                count_tunnel(d.idx, d.ip_len as u64, false);
                maps::count(&GW_STATS, stat::GTPU_DOWNLINK, bytes);
            }
            (action, reason)
        }
        Err(r) => (xdp_action::XDP_DROP, r),
    }
}

#[inline(always)]
fn encap(ctx: &XdpContext, cfg: &GwConfig, d: &Down) -> Result<u32, u32> {
    let t = &d.t;
    let ext = t.qfi != 0;
    let hlen = if ext { ENCAP_LEN + EXT_LEN } else { ENCAP_LEN };
    // SAFETY: the helper checks the new head against the headroom.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, d.ip_off as i32 - hlen as i32) } != 0 {
        return Err(stat::GTPU_ENCAP_FAILED);
    }
    let h = parse::ptr_at::<[u8; ENCAP_LEN]>(ctx, 0).ok_or(stat::GTPU_ENCAP_FAILED)?;
    // SAFETY: ENCAP_LEN bytes checked.
    let h = unsafe { &mut *h };
    let gtp_len = d.ip_len + if ext { EXT_LEN } else { 0 };
    let udp_len = UDP_HLEN + GTPU_HLEN + gtp_len;
    let ip_len = IPV4_HLEN + udp_len;
    h[0..6].copy_from_slice(&t.an_mac);
    h[6..12].copy_from_slice(&t.an_src_mac);
    h[12] = 0x08;
    h[13] = 0x00;
    // IPv4: no options, ID 0, DF, TTL 64, UDP.
    let ipl = (ip_len as u16).to_be_bytes();
    h[14..22].copy_from_slice(&[0x45, 0, ipl[0], ipl[1], 0, 0, 0x40, 0]);
    h[22] = OUTER_TTL;
    h[23] = IPPROTO_UDP;
    h[26..30].copy_from_slice(&cfg.n3_addr.to_ne_bytes());
    h[30..34].copy_from_slice(&t.an_addr.to_ne_bytes());
    let (src, dst) = (u32::from_be(cfg.n3_addr), u32::from_be(t.an_addr));
    let mut s = 0x4500 + ip_len as u32 + 0x4000 + (((OUTER_TTL as u32) << 8) | IPPROTO_UDP as u32);
    s += (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    h[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
    // UDP 2152 → 2152, no checksum (allowed over IPv4, TS 29.281 §4.4.2.3
    // leaves it to UDP; computing it would read the whole payload).
    let port = GTPU_PORT.to_be_bytes();
    let ul = (udp_len as u16).to_be_bytes();
    h[34..42].copy_from_slice(&[port[0], port[1], port[0], port[1], ul[0], ul[1], 0, 0]);
    // GTP-U: version 1, PT 1 (E with the container), G-PDU.
    let gl = (gtp_len as u16).to_be_bytes();
    let teid = t.dl_teid.to_be_bytes();
    h[42..50].copy_from_slice(&[
        if ext { 0x34 } else { 0x30 },
        parse::GTPU_MSG_GPDU,
        gl[0],
        gl[1],
        teid[0],
        teid[1],
        teid[2],
        teid[3],
    ]);
    if ext {
        let x = parse::ptr_at::<[u8; EXT_LEN]>(ctx, ENCAP_LEN).ok_or(stat::GTPU_ENCAP_FAILED)?;
        // SAFETY: 8 bytes checked.
        unsafe { *x = container(t.qfi) };
    }
    if t.an_ifindex as usize == ctx.ingress_ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    GW_TX_PORTS
        .redirect(t.an_ifindex, xdp_action::XDP_DROP as u64)
        .map_err(|_| stat::REDIRECT_FAILED)
}

/// The optional sequence/N-PDU octets and a downlink PDU Session
/// Container: sequence 0, N-PDU 0, next: PDU Session Container; the
/// container (TS 38.415 §5.5.2.1, DL PDU SESSION INFORMATION): length 1,
/// PDU type 0 in the high nibble, the QFI in the low 6 bits, no next.
#[inline(always)]
pub(super) fn container(qfi: u8) -> [u8; EXT_LEN] {
    [0, 0, 0, parse::GTPU_EXT_PDU_SESSION, 1, 0x00, qfi & 0x3f, 0]
}

/// This CPU's usage of tunnel `idx` (inner IP bytes).
#[inline(always)]
pub(super) fn count_tunnel(idx: u32, len: u64, up: bool) {
    if let Some(c) = GW_TUN_STATS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot.
        unsafe {
            if up {
                (*c).pkts_ul += 1;
                (*c).bytes_ul += len;
            } else {
                (*c).pkts_dl += 1;
                (*c).bytes_dl += len;
            }
        }
    }
}
