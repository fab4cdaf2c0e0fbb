//! The interface's one entry program (ARCHITECTURE §5) and the hand-off a
//! stage makes after passing a packet. Both walk `ENTRY_STAGES` from a
//! slot on: a tail call into an empty slot returns (the kernel's
//! bpf_tail_call fails without side effects), so the next filled slot is
//! tried. A tail call that succeeds does not return.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dataplane_common::entry::{stat, NO_SLOT, STAGES_MAX};

use crate::maps::{self, ENTRY_SLOTS, ENTRY_STAGES, ENTRY_STATS};

#[xdp]
pub fn entry(ctx: XdpContext) -> u32 {
    tail_call_from(&ctx, 0);
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    maps::count(&ENTRY_STATS, stat::NO_STAGE, bytes);
    maps::count_verdict(&ENTRY_STATS, xdp_action::XDP_PASS, bytes);
    xdp_action::XDP_PASS
}

/// The end of a stage: a passed packet goes on to the interface's next
/// stage, if there is one; any other verdict is final.
#[inline(always)]
pub fn next(ctx: &XdpContext, role: u32, action: u32) -> u32 {
    if action == xdp_action::XDP_PASS {
        // A role without a slot here (a private load for test_run, or a
        // program run outside the entry) has no next stage.
        match ENTRY_SLOTS.get(role) {
            Some(slot) if *slot != NO_SLOT => tail_call_from(ctx, *slot + 1),
            _ => {}
        }
    }
    action
}

#[inline(always)]
fn tail_call_from(ctx: &XdpContext, first: u32) {
    // Bounded (STAGES_MAX iterations) for the verifier.
    for slot in 0..STAGES_MAX {
        if slot >= first {
            // SAFETY: a tail call either does not return or leaves the
            // context as it was.
            unsafe { ENTRY_STAGES.tail_call(ctx, slot) };
        }
    }
}
