//! The floor program: parse Ethernet, bump one per-CPU counter, XDP_PASS.
//! It is the baseline every benchmark reports its ratio against, and the
//! "something attached" that native XDP_REDIRECT on veth needs on the peer.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::{maps, parse};

#[xdp]
pub fn floor(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    let idx = match parse::parse_eth(&ctx) {
        Ok(eth) if eth.proto == parse::ETH_P_IPV4 => 0,
        _ => 1,
    };
    maps::count(&maps::FLOOR_STATS, idx, bytes);
    xdp_action::XDP_PASS
}

/// Traffic generator for benchmarks: run through BPF_PROG_RUN with live
/// frames, it transmits every frame out of the device named in the
/// context (the sending veth). Live-frame pages are recycled without being
/// re-initialised, and a translating receiver rewrites them in place, so
/// each frame is restored from its template first: `GEN_FRAME_LONG` for a
/// frame of 128 bytes or more, else `GEN_FRAME` (64 bytes).
#[xdp]
pub fn tx(ctx: XdpContext) -> u32 {
    if let Some(p) = parse::ptr_at::<[u8; 128]>(&ctx, 0) {
        if let Some(t) = maps::GEN_FRAME_LONG.get(0) {
            // SAFETY: 128 bytes checked by ptr_at.
            unsafe { *p = *t };
        }
    } else if let (Some(t), Some(p)) = (maps::GEN_FRAME.get(0), parse::ptr_at::<[u8; 64]>(&ctx, 0))
    {
        // SAFETY: 64 bytes checked by ptr_at.
        unsafe { *p = *t };
    }
    xdp_action::XDP_TX
}

/// Benchmark sink: counts IPv4 frames (FLOOR_STATS[0]) and drops them, so
/// the receiving host spends nothing more; ARP and the rest pass.
#[xdp]
pub fn sink(ctx: XdpContext) -> u32 {
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    match parse::parse_eth(&ctx) {
        Ok(eth) if eth.proto == parse::ETH_P_IPV4 => {
            maps::count(&maps::FLOOR_STATS, 0, bytes);
            xdp_action::XDP_DROP
        }
        _ => xdp_action::XDP_PASS,
    }
}
