//! The floor program: parse Ethernet, bump one per-CPU counter, XDP_PASS.
//! It is the baseline every benchmark reports its ratio against, and the
//! "something attached" that native XDP_REDIRECT on veth needs on the peer.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::{maps, parse};

#[xdp]
pub fn floor(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let idx = match parse::load_be16(&ctx, 12) {
        Some(parse::ETH_P_IPV4) => 0,
        _ => 1,
    };
    maps::count(&maps::FLOOR_STATS, idx, bytes);
    xdp_action::XDP_PASS
}
