//! Writing `dataplane_common::ring::Record`s: reserve a whole record, fill
//! in its header, copy the frame's first bytes behind it.

use aya_ebpf::maps::RingBuf;
use dataplane_common::ring::Record;

use crate::parse::Frame;

/// Copy the first `n` (1..=N) bytes of the frame (XDP's or an skb's), behind `header`, into
/// `ring`. False when the ring is full or the copy failed; the reservation
/// is then given back.
#[inline(always)]
pub fn copy_frame<H: Copy + 'static, const N: usize>(
    ring: &RingBuf,
    ctx: &impl Frame,
    header: H,
    n: usize,
) -> bool {
    let Some(mut entry) = ring.reserve::<Record<H, N>>(0) else {
        return false;
    };
    let p = entry.as_mut_ptr();
    // SAFETY: `p` points at a reserved Record; the helper copies at most
    // `n` <= N bytes into its data array.
    let rc = unsafe {
        (*p).header = header;
        // For the verifier: bounds it can see (LLVM folds a plain check).
        let n = n as i64;
        if !aya_ebpf::check_bounds_signed(n, 1, N as i64) {
            -1
        } else {
            ctx.load((*p).data.as_mut_ptr(), n as u32)
        }
    };
    if rc != 0 {
        entry.discard(0);
        return false;
    }
    entry.submit(0);
    true
}
