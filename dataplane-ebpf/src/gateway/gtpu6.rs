//! GTP-U over IPv6 transport (TS 29.281 §4.4.2: the outer header may be
//! IPv6): an IPv6 N3 address (`GwConfig::n3_addr6`) beside the IPv4 one.
//!
//! Uplink: `gateway6` recognises UDP to n3_addr6:2152 and checks the
//! outer lengths and the GTP-U header chain as the IPv4 uplink does
//! (`gtpu::gpdu`), then hands the T-PDU on by tail call, its tunnel and
//! bounds in the scratch slot: an IPv6 T-PDU to `gateway6_gtpu` (as from
//! the IPv4 uplink), an IPv4 one to `gateway_gtpu4` (this file), which
//! runs the IPv4 uplink's inner checks and plain path (`gtpu::tpdu4`).
//! Either cuts the outer headers off, whatever their length.
//!
//! Downlink: a tunnel whose access node is IPv6 (`Tunnel::an_addr6`) is
//! sent by `gateway_encap6`, tail-called by the program that translated
//! the reply (either family) with the packet's place in the scratch
//! slot. The UDP checksum is mandatory over IPv6 (RFC 8200 §8.1) and is
//! computed without reading the payload: a valid inner packet's one's
//! complement sum follows from its own checksums (an IPv4 header sums to
//! zero; a TCP, UDP or ICMPv6 segment sums to the complement of its
//! pseudo-header; an ICMPv4 message to zero). Where that cannot be
//! known (an inner UDP/IPv4 datagram without a checksum, an inner IPv6
//! packet with extension headers) the checksum is zero, as RFC 6935
//! allows for tunnels, and counted (`gtpu_zero_checksum6`).

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_xdp_adjust_head, macros::xdp, programs::XdpContext,
};
use dataplane_common::{
    entry::role,
    gateway::{stat, Parsed6, PROG_ENCAP6, PROG_GTPU4, PROG_V6_GTPU, TUNNEL_ACTIVE},
};

use super::gtpu::{container, count_tunnel, gpdu, hand_tpdu, tpdu4, EXT_LEN};
use crate::{
    csum::fold,
    maps::{self, GW_CONFIG, GW_PROGS, GW_SCRATCH6, GW_STATS, GW_TUNNELS, GW_TX_PORTS},
    parse::{
        self, ETH_HLEN, GTPU_HLEN, GTPU_PORT, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV6_HLEN,
        UDP_HLEN,
    },
};

/// A verdict with this bit is a tail call into `GW_PROGS` slot (the low
/// byte), made by the program's entry (its frame is the smallest).
pub(super) const TAIL: u32 = 0x100;

const IPPROTO_ICMPV6: u8 = 58;
/// Ethernet + IPv6 + UDP + the mandatory GTP-U header.
const ENCAP6_LEN: usize = ETH_HLEN + IPV6_HLEN + UDP_HLEN + GTPU_HLEN;
const OUTER_HOP_LIMIT: u8 = 64;

/// Make the tail call a verdict asks for; if the program is not there,
/// the frame is dropped and counted (nothing else can send it).
#[inline(always)]
pub(super) fn tail(ctx: &XdpContext, action: u32, dry: bool, bytes: u64) -> u32 {
    // SAFETY: a tail call into a program of this object.
    let _ = unsafe { GW_PROGS.tail_call(ctx, action & 0xff) };
    if !dry {
        maps::count(&GW_STATS, stat::GTPU_ENCAP_FAILED, bytes);
        maps::count_verdict(&GW_STATS, xdp_action::XDP_DROP, bytes);
    }
    xdp_action::XDP_DROP
}

/// `gtpu::send_down` for an IPv6 access node: the packet's place and the
/// plain path's reason into the scratch slot, and the tail call asked for.
#[inline(always)]
pub(super) fn to_encap6(
    idx: u32,
    ip_off: usize,
    ip_len: usize,
    reason: u32,
    bytes: u64,
) -> (u32, u32) {
    let Some(s) = GW_SCRATCH6.get_ptr_mut(0) else {
        return (xdp_action::XDP_DROP, stat::GTPU_ENCAP_FAILED);
    };
    // SAFETY: this CPU's slot, read by the program called next.
    unsafe {
        (*s).tunnel = idx + 1;
        (*s).off = ip_off as u32;
        (*s).tpdu_end = ip_len as u32;
        (*s).reason = reason;
        (*s).bytes = bytes as u32;
    }
    (TAIL | PROG_ENCAP6, reason)
}

/// A UDP datagram to n3_addr6:2152, as `gateway6` parsed it (`sp`):
/// (verdict, reason), the verdict a tail call for a G-PDU of a tunnel.
#[inline(always)]
pub(super) fn uplink6(ctx: &XdpContext, sp: &Parsed6) -> Result<(u32, u32), u32> {
    let drop = |reason| Ok((xdp_action::XDP_DROP, reason));
    let udp = (sp.l4 & 0x3fff) as usize;
    let payload_end = (sp.payload_end & 0xffff) as usize;
    // Outer lengths: the datagram whole inside the IPv6 payload.
    if udp + UDP_HLEN > payload_end || payload_end > parse::packet_len(ctx) {
        return drop(stat::GTPU_TRUNCATED);
    }
    let Some(udp_len) = parse::load_be16(ctx, udp + 4) else {
        return drop(stat::GTPU_TRUNCATED);
    };
    let udp_len = udp_len as usize;
    let udp_end = udp + udp_len;
    if udp_len < UDP_HLEN || udp_end > payload_end {
        return drop(stat::GTPU_TRUNCATED);
    }
    let (idx, _ue, tpdu) = match gpdu(ctx, udp, udp_len, udp_end) {
        Ok(x) => x,
        Err(verdict) => return Ok(verdict),
    };
    // The programs called next mask the offsets they read back.
    if tpdu > 0x3ff {
        return drop(stat::MALFORMED);
    }
    let prog = match parse::load_u8(ctx, tpdu).map(|b| b >> 4) {
        Some(6) => PROG_V6_GTPU,
        Some(4) => PROG_GTPU4,
        _ => return drop(stat::GTPU_INNER_MALFORMED),
    };
    if !hand_tpdu(idx, tpdu, udp_end) {
        return drop(stat::GTPU_ENCAP_FAILED);
    }
    Ok((TAIL | prog, stat::GTPU_UPLINK))
}

/// An IPv4 T-PDU of a G-PDU that came over IPv6 transport, from
/// `gateway6` (tunnel and bounds in the scratch slot).
#[xdp]
pub fn gateway_gtpu4(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let dry = super::dry_run(&ctx);
    let r = match (GW_CONFIG.get(0), GW_SCRATCH6.get(0)) {
        (Some(cfg), Some(s)) if cfg.enabled != 0 => {
            let idx = s.tunnel.wrapping_sub(1);
            let (tpdu, end) = ((s.off & 0x3ff) as usize, (s.tpdu_end & 0xffff) as usize);
            match GW_TUNNELS.get(idx) {
                Some(t) if t.state == TUNNEL_ACTIVE => {
                    tpdu4(&ctx, cfg, (idx, t.ue_addr), (tpdu, end), dry, bytes)
                }
                _ => Ok((xdp_action::XDP_DROP, stat::GTPU_UNKNOWN_TEID)),
            }
        }
        _ => Err(stat::NOT_FOR_US),
    };
    // A G-PDU of a known tunnel is never passed (see `gtpu`).
    let (action, reason) = match r {
        Ok((xdp_action::XDP_PASS, reason)) | Err(reason) => (xdp_action::XDP_DROP, reason),
        Ok(v) => v,
    };
    if !dry {
        maps::count(&GW_STATS, reason, bytes);
        maps::count_verdict(&GW_STATS, action, bytes);
        return crate::entry::next(&ctx, role::GATEWAY, action);
    }
    action
}

/// The downlink of a tunnel whose access node is IPv6, from `gateway` or
/// `gateway6` once the reply is translated (see `to_encap6`).
#[xdp]
pub fn gateway_encap6(ctx: XdpContext) -> u32 {
    let dry = super::dry_run(&ctx);
    let Some(s) = GW_SCRATCH6.get(0) else {
        return xdp_action::XDP_DROP;
    };
    let idx = s.tunnel.wrapping_sub(1);
    let (off, len) = ((s.off & 0x3ff) as usize, (s.tpdu_end & 0xffff) as usize);
    let (reason, bytes) = (s.reason, s.bytes as u64);
    let (action, reason) = match encap6(&ctx, idx, off, len) {
        Ok((action, zero_csum)) => {
            if !dry {
                count_tunnel(idx, len as u64, false);
                maps::count(&GW_STATS, stat::GTPU_DOWNLINK, bytes);
                if zero_csum {
                    maps::count(&GW_STATS, stat::GTPU_ZERO_CHECKSUM6, bytes);
                }
            }
            (action, reason)
        }
        Err(r) => (xdp_action::XDP_DROP, r),
    };
    if !dry {
        maps::count(&GW_STATS, reason, bytes);
        maps::count_verdict(&GW_STATS, action, bytes);
        return crate::entry::next(&ctx, role::GATEWAY, action);
    }
    action
}

/// Encapsulate the IP packet at `ip_off` (`ip_len` bytes) in
/// Ethernet/IPv6/UDP/GTP-U toward tunnel `idx`'s access node and send it:
/// the verdict, and whether the UDP checksum had to be left zero.
#[inline(always)]
fn encap6(ctx: &XdpContext, idx: u32, ip_off: usize, ip_len: usize) -> Result<(u32, bool), u32> {
    let cfg = GW_CONFIG.get(0).ok_or(stat::GTPU_ENCAP_FAILED)?;
    let t = match GW_TUNNELS.get(idx) {
        Some(t) if t.state == TUNNEL_ACTIVE && t.an_addr6 != [0; 4] => *t,
        _ => return Err(stat::GTPU_NO_TUNNEL),
    };
    if cfg.n3_addr6 == [0; 4] {
        return Err(stat::GTPU_NO_TUNNEL);
    }
    if ip_len < 20 || ip_off + ip_len > parse::packet_len(ctx) {
        return Err(stat::MALFORMED);
    }
    let ext = t.qfi != 0;
    let hlen = if ext {
        ENCAP6_LEN + EXT_LEN
    } else {
        ENCAP6_LEN
    };
    // SAFETY: the helper checks the new head against the headroom.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, ip_off as i32 - hlen as i32) } != 0 {
        return Err(stat::GTPU_ENCAP_FAILED);
    }
    let inner = inner_sum(ctx, hlen);
    let h = parse::ptr_at::<[u8; ENCAP6_LEN]>(ctx, 0).ok_or(stat::GTPU_ENCAP_FAILED)?;
    // SAFETY: ENCAP6_LEN bytes checked.
    let h = unsafe { &mut *h };
    let gtp_len = ip_len + if ext { EXT_LEN } else { 0 };
    let udp_len = UDP_HLEN + GTPU_HLEN + gtp_len;
    h[0..6].copy_from_slice(&t.an_mac);
    h[6..12].copy_from_slice(&t.an_src_mac);
    h[12] = 0x86;
    h[13] = 0xdd;
    // IPv6: traffic class 0, no flow label, UDP, hop limit 64.
    let ul = (udp_len as u16).to_be_bytes();
    h[14..22].copy_from_slice(&[0x60, 0, 0, 0, ul[0], ul[1], IPPROTO_UDP, OUTER_HOP_LIMIT]);
    put128(h, 22, &cfg.n3_addr6);
    put128(h, 38, &t.an_addr6);
    let port = GTPU_PORT.to_be_bytes();
    h[54..62].copy_from_slice(&[port[0], port[1], port[0], port[1], ul[0], ul[1], 0, 0]);
    let flags: u8 = if ext { 0x34 } else { 0x30 };
    let gl = (gtp_len as u16).to_be_bytes();
    let teid = t.dl_teid.to_be_bytes();
    h[62..70].copy_from_slice(&[
        flags,
        parse::GTPU_MSG_GPDU,
        gl[0],
        gl[1],
        teid[0],
        teid[1],
        teid[2],
        teid[3],
    ]);
    // The UDP checksum: pseudo-header, UDP and GTP-U headers, the
    // container, and the inner packet's sum.
    let mut s = sum128(&cfg.n3_addr6) + sum128(&t.an_addr6) + 2 * udp_len as u32;
    s += IPPROTO_UDP as u32 + 2 * GTPU_PORT as u32;
    s += ((flags as u32) << 8) | parse::GTPU_MSG_GPDU as u32;
    s += gtp_len as u32 + (t.dl_teid >> 16) + (t.dl_teid & 0xffff);
    if ext {
        s += parse::GTPU_EXT_PDU_SESSION as u32 + 0x0100 + (((t.qfi & 0x3f) as u32) << 8);
    }
    let csum = match inner {
        Some(i) => match !fold(s + i) {
            0 => 0xffff,
            c => c,
        },
        None => 0,
    };
    h[60..62].copy_from_slice(&csum.to_be_bytes());
    if ext {
        let x = parse::ptr_at::<[u8; EXT_LEN]>(ctx, ENCAP6_LEN).ok_or(stat::GTPU_ENCAP_FAILED)?;
        // SAFETY: 8 bytes checked.
        unsafe { *x = container(t.qfi) };
    }
    let action = if t.an_ifindex as usize == ctx.ingress_ifindex() {
        xdp_action::XDP_TX
    } else {
        GW_TX_PORTS
            .redirect(t.an_ifindex, xdp_action::XDP_DROP as u64)
            .map_err(|_| stat::REDIRECT_FAILED)?
    };
    Ok((action, inner.is_none()))
}

/// The one's complement sum (folded to 16 bits) of the valid IP packet
/// at `at`, from its own checksums; `None` when they do not give it.
#[inline(always)]
fn inner_sum(ctx: &XdpContext, at: usize) -> Option<u32> {
    let h = parse::ptr_at::<[u8; 20]>(ctx, at)?;
    // SAFETY: 20 bytes checked (an IPv6 packet is longer still).
    let h = unsafe { *h };
    let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]) as u32;
    match h[0] >> 4 {
        4 => {
            let ihl = ((h[0] & 0x0f) as u32) * 4;
            let (total, proto) = (be(2), h[9]);
            if be(6) & 0x3fff != 0 || ihl < 20 || total < ihl {
                return None;
            }
            match proto {
                // The message sums to zero; so does the header.
                IPPROTO_ICMP => return Some(0),
                IPPROTO_TCP => {}
                IPPROTO_UDP => {
                    if parse::load_be16(ctx, at + ihl as usize + 6)? == 0 {
                        return None;
                    }
                }
                _ => return None,
            }
            let pseudo = be(12) + be(14) + be(16) + be(18) + proto as u32 + (total - ihl);
            Some(!fold(pseudo) as u32)
        }
        6 => {
            // Header + segment = the first eight octets' words, less the
            // pseudo-header's payload length and next header (the
            // addresses cancel, the payload length too).
            let nh = h[6];
            if nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6 {
                return None;
            }
            Some(fold(be(0) + be(2) + be(6) + !(nh as u16) as u32) as u32)
        }
        _ => None,
    }
}

/// The 16-bit words of an address kept as in the packet, summed.
#[inline(always)]
fn sum128(a: &[u32; 4]) -> u32 {
    let mut s = 0;
    let mut i = 0;
    while i < 4 {
        let b = a[i].to_ne_bytes();
        s += u16::from_be_bytes([b[0], b[1]]) as u32 + u16::from_be_bytes([b[2], b[3]]) as u32;
        i += 1;
    }
    s
}

#[inline(always)]
fn put128(h: &mut [u8; ENCAP6_LEN], at: usize, a: &[u32; 4]) {
    let mut i = 0;
    while i < 4 {
        h[at + 4 * i..at + 4 * i + 4].copy_from_slice(&a[i].to_ne_bytes());
        i += 1;
    }
}
