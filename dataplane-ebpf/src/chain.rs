//! The chain header on the wire (`dataplane_common::chain`): written in
//! front of a frame by the lb (a moved slot) and by a gateway (relay,
//! bounce); read and removed by the gateway before anything else.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use dataplane_common::chain::{ChainHdr, BOUNCE, ETHERTYPE, HDR_LEN, MOVED, RELAY};

use crate::parse;

/// Both MACs and the header: what `push` writes.
const FRONT: usize = 12 + HDR_LEN;

/// Grow the frame by a chain header `hdr` after new MACs `dst`/`src`. The
/// rest of the frame (EtherType or VLAN tags onward) is kept. `false` if
/// the headroom or the frame is too short (the frame is as it was). A
/// subprogram: the frames that need it are few, the rest run past it.
#[inline(never)]
pub fn push(ctx: &XdpContext, hdr: &ChainHdr, dst: &[u8; 6], src: &[u8; 6]) -> bool {
    // SAFETY: the helper checks the new head against the headroom.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(HDR_LEN as i32)) } != 0 {
        return false;
    }
    let Some(f) = parse::ptr_at::<[u8; FRONT]>(ctx, 0) else {
        // The frame grew but is shorter than the MACs: give the bytes back.
        // SAFETY: undoes the adjustment above.
        unsafe { bpf_xdp_adjust_head(ctx.ctx, HDR_LEN as i32) };
        return false;
    };
    // SAFETY: FRONT bytes checked; the header is bytes only.
    unsafe {
        let f = &mut *f;
        f[0..6].copy_from_slice(dst);
        f[6..12].copy_from_slice(src);
        core::ptr::write_unaligned(f[12..].as_mut_ptr() as *mut ChainHdr, *hdr);
    }
    true
}

/// A frame's chain header, removed (the MACs move up to the frame's new
/// start): `Ok(None)` for a frame without one, `Err(())` for a header cut
/// short or of an unknown kind (the frame is left as it came). Only the
/// EtherType test is inline; the rest is a subprogram, out of the way of
/// every frame without a header (inlined, it cost the veth gateway 10 %
/// of its rate).
#[inline(always)]
pub fn strip(ctx: &XdpContext) -> Result<Option<ChainHdr>, ()> {
    if parse::load_be16(ctx, 12) != Some(ETHERTYPE) {
        return Ok(None);
    }
    let mut hdr = ChainHdr::default();
    match strip_slow(ctx, &mut hdr) {
        0 => Ok(Some(hdr)),
        _ => Err(()),
    }
}

/// The header into `out` and off the frame: 0, or 1 for a malformed one.
#[inline(never)]
fn strip_slow(ctx: &XdpContext, out: &mut ChainHdr) -> u32 {
    let Some(f) = parse::ptr_at::<[u8; FRONT]>(ctx, 0) else {
        return 1;
    };
    // SAFETY: FRONT bytes checked; the header is bytes only.
    let (macs, hdr) = unsafe {
        let f = &*f;
        let mut macs = [0u8; 12];
        macs.copy_from_slice(&f[0..12]);
        (
            macs,
            core::ptr::read_unaligned(f[12..].as_ptr() as *const ChainHdr),
        )
    };
    if !matches!(hdr.kind, MOVED | RELAY | BOUNCE) {
        return 1;
    }
    // SAFETY: the helper checks the new head against the frame.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, HDR_LEN as i32) } != 0 {
        return 1;
    }
    let Some(e) = parse::ptr_at::<[u8; 12]>(ctx, 0) else {
        return 1;
    };
    // SAFETY: 12 bytes checked.
    unsafe { (*e).copy_from_slice(&macs) };
    *out = hdr;
    0
}
