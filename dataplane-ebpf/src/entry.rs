//! The interface's one entry program (ARCHITECTURE §5) and the hand-off a
//! stage makes after passing a packet: one tail call to the slot
//! `ENTRY_NEXT` names, or none. A tail call that succeeds does not return;
//! one that fails (an emptied slot) returns without side effects, and the
//! packet is passed.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dataplane_common::entry::{stat, FIRST, STAGES_MAX};

use crate::maps::{self, ENTRY_NEXT, ENTRY_STAGES, ENTRY_STATS};

#[xdp]
pub fn entry(ctx: XdpContext) -> u32 {
    tail_call(&ctx, FIRST);
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
        tail_call(ctx, role);
    }
    action
}

/// Tail-call the slot `ENTRY_NEXT[index]` names, if it names one (a role
/// without a stage here, e.g. a private load for test_run, names none).
#[inline(always)]
fn tail_call(ctx: &XdpContext, index: u32) {
    if let Some(slot) = ENTRY_NEXT.get(index) {
        if *slot < STAGES_MAX {
            // SAFETY: a tail call either does not return or leaves the
            // context as it was.
            unsafe { ENTRY_STAGES.tail_call(ctx, *slot) };
        }
    }
}
