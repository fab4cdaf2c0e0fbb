//! Daisy chaining at the gateway (`dataplane_common::chain`): what becomes
//! of a frame whose flow this gateway does not hold. The caller has
//! removed the chain header (`crate::chain::strip`) and found no flow.

use aya_ebpf::{bindings::xdp_action, maps::HashMap, programs::XdpContext};
use dataplane_common::{
    chain::{ChainHdr, Relay, BOUNCE, HOPS, MOVED, RELAY},
    gateway::stat,
};

use crate::{
    maps::{self, GW_STATS},
    parse::{self, IPPROTO_TCP},
};

/// What to do with a frame without a flow.
pub(super) enum Step {
    /// Create the session here; `Some(mac)`: its reverse path is this lb
    /// MAC (a bounce came back from the previous owner, not from the lb).
    Create(Option<[u8; 6]>),
    /// Sent on (a relay or a bounce): the verdict and the reason.
    Sent(u32, u32),
}

/// A TCP SYN without ACK: a new connection, which follows the new table.
#[inline(always)]
fn syn(ctx: &XdpContext, proto: u8, l4: usize) -> bool {
    proto == IPPROTO_TCP && parse::load_u8(ctx, l4 + 13).is_some_and(|f| f & 0x12 == 0x02)
}

/// `relays` is the flow's family's relay map (`GW_RELAYS`, `GW_RELAYS6`);
/// `(proto, l4)` where its upper-layer header is.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn no_flow<K>(
    ctx: &XdpContext,
    relays: &HashMap<K, Relay>,
    (proto, l4): (u8, usize),
    flow: &K,
    chain: Option<&ChainHdr>,
    dry: bool,
    now: u64,
    bytes: u64,
) -> Result<Step, u32> {
    let (kind, hops) = chain.map(|h| (h.kind, h.hops)).unwrap_or((0, 0));
    let (origin, lb) = chain
        .map(|h| (h.origin_mac, h.lb_mac))
        .unwrap_or(([0; 6], [0; 6]));
    if kind == BOUNCE {
        // Nobody down the chain holds the flow: it starts here.
        if !dry {
            let _ = relays.remove(flow);
            maps::count(&GW_STATS, stat::CHAIN_ADOPTED, bytes);
        }
        return Ok(Step::Create(Some(lb)));
    }
    // A SYN starts a connection here whatever was relayed before (a stale
    // relay entry of the flow is never consulted once it has a session,
    // and the sweeper removes it): no lookup on the new-connection path.
    if kind != RELAY && syn(ctx, proto, l4) {
        return Ok(Step::Create(None));
    }
    let relay = relays.get_ptr_mut(flow);
    // As the frame came: to this gateway, from the lb or a peer.
    let eth = parse::ptr_at::<[u8; 12]>(ctx, 0).ok_or(stat::MALFORMED)?;
    // SAFETY: 12 bytes checked.
    let (me, from) = unsafe {
        let e = &*eth;
        let (mut me, mut from) = ([0u8; 6], [0u8; 6]);
        me.copy_from_slice(&e[0..6]);
        from.copy_from_slice(&e[6..12]);
        (me, from)
    };
    let (hdr, dst) = match (kind, relay) {
        // Asked by a peer, and the flow went further from here.
        (RELAY, Some(r)) if hops > 1 => {
            // SAFETY: a map value; one field written.
            let next = unsafe { (*r).next_mac };
            refresh(r, dry, now);
            (ChainHdr::new(RELAY, hops - 1, [0; 6], origin, lb), next)
        }
        // Asked by a peer that does not hold it either: back to the start.
        (RELAY, _) => (ChainHdr::new(BOUNCE, 0, [0; 6], origin, lb), origin),
        // From the lb, a flow this gateway already relays.
        (_, Some(r)) => {
            // SAFETY: as above.
            let next = unsafe { (*r).next_mac };
            refresh(r, dry, now);
            (ChainHdr::new(RELAY, HOPS, [0; 6], me, from), next)
        }
        // From the lb, a moved slot: the previous owner may hold it.
        (MOVED, None) => {
            let next = chain.map(|h| h.next_mac).unwrap_or([0; 6]);
            if next == me {
                return Ok(Step::Create(None));
            }
            if !dry {
                let entry = Relay {
                    next_mac: next,
                    _pad: [0; 2],
                    last_seen_ns: now,
                };
                if relays.insert(flow, &entry, 0).is_err() {
                    maps::count(&GW_STATS, stat::RELAYS_FULL, bytes);
                }
            }
            (ChainHdr::new(RELAY, HOPS, [0; 6], me, from), next)
        }
        _ => return Ok(Step::Create(None)),
    };
    if !crate::chain::push(ctx, &hdr, &dst, &me) {
        return Ok(Step::Sent(xdp_action::XDP_DROP, stat::REDIRECT_FAILED));
    }
    let reason = if hdr.kind == BOUNCE {
        stat::CHAIN_BOUNCE
    } else {
        stat::CHAIN_RELAY
    };
    // The gateways share the segment the frame came in on.
    Ok(Step::Sent(xdp_action::XDP_TX, reason))
}

#[inline(always)]
fn refresh(r: *mut Relay, dry: bool, now: u64) {
    if !dry {
        // SAFETY: a map value; a single store.
        unsafe { (*r).last_seen_ns = now };
    }
}
