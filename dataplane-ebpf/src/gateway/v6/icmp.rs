//! ICMPv6 errors about a translated IPv6 packet (RFC 4443 types 1-4),
//! translated back toward the terminal (or into its tunnel).

use dataplane_common::gateway::{stat, GwConfig, Parsed6, FAMILY_V6, SESSION_ACTIVE};

use super::{gtpu, l2_out, pack, pkt, put_addr, Pkt, DRY_BIT};
use crate::{
    csum,
    maps::{GW_SERVERS, GW_SESS6, GW_SESSIONS},
    parse::{self, IPPROTO_TCP, IPPROTO_UDP, IPV6_HLEN},
};
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};

#[inline(always)]
fn words(b: &[u8; IPV6_HLEN], at: usize) -> [u32; 4] {
    [
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]),
        u32::from_ne_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]),
        u32::from_ne_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]),
        u32::from_ne_bytes([b[at + 12], b[at + 13], b[at + 14], b[at + 15]]),
    ]
}

/// An ICMPv6 error (destination unreachable, packet too big, time
/// exceeded, parameter problem) quoting a translated packet: the quote
/// went gateway:port → server; the terminal sees terminal:port →
/// representative, from the representative address. The quote's
/// upper-layer header must follow its fixed header.
#[inline(never)]
pub(super) fn icmp_error(ctx: &XdpContext, cfg: &GwConfig, sp: &Parsed6, db: u64) -> u64 {
    let p = pkt(sp);
    pack(icmp_error_in(
        ctx,
        cfg,
        &p,
        db & DRY_BIT != 0,
        db & !DRY_BIT,
    ))
}

#[inline(always)]
fn icmp_error_in(
    ctx: &XdpContext,
    cfg: &GwConfig,
    p: &Pkt,
    dry: bool,
    bytes: u64,
) -> Result<(u32, u32), u32> {
    let icmp = p.l4;
    let t = parse::load_u8(ctx, icmp).ok_or(stat::MALFORMED)?;
    if !(1..=4).contains(&t) {
        return Err(stat::NOT_FOR_US);
    }
    let q = icmp + 8;
    let qh = parse::ptr_at::<[u8; IPV6_HLEN]>(ctx, q).ok_or(stat::MALFORMED)?;
    // SAFETY: 40 bytes checked.
    let qh = unsafe { &mut *qh };
    if qh[0] >> 4 != 6 {
        return Err(stat::MALFORMED);
    }
    let qproto = qh[6];
    if qproto != IPPROTO_TCP && qproto != IPPROTO_UDP {
        return Err(stat::NOT_FOR_US);
    }
    let (qsrc, qdst) = (words(qh, 8), words(qh, 24));
    let ql4 = q + IPV6_HLEN;
    let qports = parse::parse_l4_ports(ctx, ql4, parse::PORTS_LEN).ok_or(stat::MALFORMED)?;
    let (qsport, qdport) = (qports.src, qports.dst);
    let port = u16::from_be(qsport) as u32;
    let s = GW_SESSIONS.get(port).ok_or(stat::NO_SESSION)?;
    if s.state != SESSION_ACTIVE || s.proto != qproto || s.family != FAMILY_V6 || qsrc != p.ip.dst {
        return Err(stat::NO_SESSION);
    }
    let server = GW_SERVERS.get(s.server).ok_or(stat::NO_SESSION)?;
    if server.addr6 != qdst || server.port != qdport {
        return Ok((xdp_action::XDP_DROP, stat::REVERSE_SPOOFED));
    }
    let s6 = GW_SESS6.get(port).ok_or(stat::NO_SESSION)?;
    let (term, rep) = (&s6.term_addr, &s6.rep_addr);
    let (term_port, rep_port) = (s.term_port, s.rep_port);
    let (mac, src_mac, ifindex) = (s.up_mac, s.up_src_mac, s.up_ifindex);
    // A tunnel session's error goes back into its tunnel.
    let down = match gtpu::session_tunnel6(ctx, s.tunnel, p.off) {
        Ok(d) => d,
        Err(reason) => return Ok((xdp_action::XDP_DROP, reason)),
    };

    let icp = parse::ptr_at::<[u8; 4]>(ctx, icmp).ok_or(stat::MALFORMED)?;
    // SAFETY: 4 bytes checked.
    let mut ic = unsafe { u16::from_ne_bytes([(*icp)[2], (*icp)[3]]) };
    // Quoted header: src gateway → terminal, dst server → representative.
    put_addr(qh, 8, term);
    put_addr(qh, 24, rep);
    ic = csum::replace128(ic, &qsrc, term);
    ic = csum::replace128(ic, &qdst, rep);
    let qpm = parse::ptr_at::<[u8; 4]>(ctx, ql4).ok_or(stat::MALFORMED)?;
    // SAFETY: 4 bytes checked.
    let qpm = unsafe { &mut *qpm };
    qpm[0..2].copy_from_slice(&term_port.to_ne_bytes());
    qpm[2..4].copy_from_slice(&rep_port.to_ne_bytes());
    ic = csum::replace16(ic, qsport, term_port);
    ic = csum::replace16(ic, qdport, rep_port);
    // The quoted L4 checksum, when the quote reaches it.
    let coff = if qproto == IPPROTO_TCP { 16 } else { 6 };
    if let Some(cp) = parse::ptr_at::<[u8; 2]>(ctx, ql4 + coff) {
        // SAFETY: 2 bytes checked.
        let cb = unsafe { &mut *cp };
        let old = u16::from_ne_bytes(*cb);
        let mut c = csum::replace128(old, &qsrc, term);
        c = csum::replace128(c, &qdst, rep);
        c = csum::replace16(c, qsport, term_port);
        c = csum::replace16(c, qdport, rep_port);
        if qproto == IPPROTO_UDP {
            c = csum::udp_fix(c);
        }
        *cb = c.to_ne_bytes();
        ic = csum::replace16(ic, old, c);
    }
    // Outer header: from the representative address to the terminal; the
    // ICMPv6 checksum covers them through the pseudo-header.
    let oh = parse::ptr_at::<[u8; IPV6_HLEN]>(ctx, p.off).ok_or(stat::MALFORMED)?;
    // SAFETY: 40 bytes checked.
    let oh = unsafe { &mut *oh };
    put_addr(oh, 8, rep);
    put_addr(oh, 24, term);
    ic = csum::replace128(ic, &p.ip.src, rep);
    ic = csum::replace128(ic, &p.ip.dst, term);
    let icp = parse::ptr_at::<[u8; 4]>(ctx, icmp).ok_or(stat::MALFORMED)?;
    // SAFETY: 4 bytes checked.
    unsafe { (&mut *icp)[2..4].copy_from_slice(&ic.to_ne_bytes()) };
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
