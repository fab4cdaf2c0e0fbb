//! The one bounds-checked cursor every program parses through. Each
//! `parse_*` checks the bytes it reads and returns where the next header
//! starts, or the reason the packet cannot be parsed.

use aya_ebpf::programs::XdpContext;
use core::mem::size_of;

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Pointer to a `T` at `off`, or `None` if the packet is too short.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let end = ctx.data_end();
    #[allow(unused_mut)]
    let mut off = off;
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!("{o} = {o}", o = inout(reg) off);
    }
    #[allow(unused_mut)]
    let mut p = ctx.data() + off;
    // For the verifier only (both barriers): hide where `off` and `p` come from, so LLVM cannot turn
    // the pointer comparison below into a scalar one on `off` (which would
    // leave the access unproven when `off` is variable).
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!("{p} = {p}", p = inout(reg) p);
    }
    if p + size_of::<T>() > end {
        return None;
    }
    Some(p as *mut T)
}

#[inline(always)]
pub fn load_u8(ctx: &XdpContext, off: usize) -> Option<u8> {
    ptr_at::<u8>(ctx, off).map(|p| unsafe { *p })
}

/// Network-order u16 as it sits in the packet, converted to host order.
#[inline(always)]
pub fn load_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

/// A u32 as it sits in the packet (network order kept).
#[inline(always)]
pub fn load_raw32(ctx: &XdpContext, off: usize) -> Option<u32> {
    ptr_at::<[u8; 4]>(ctx, off).map(|p| u32::from_ne_bytes(unsafe { *p }))
}

#[inline(always)]
pub fn load_be32(ctx: &XdpContext, off: usize) -> Option<u32> {
    ptr_at::<[u8; 4]>(ctx, off).map(|p| u32::from_be_bytes(unsafe { *p }))
}

/// Why a packet was not parsed to the end; maps to a stat index.
#[derive(Clone, Copy)]
pub enum Reason {
    TruncEth,
    TruncVlan,
    TooManyVlans,
}

/// Ethernet with up to two VLAN tags (802.1Q / 802.1ad). Returns the
/// ethertype of the payload and its offset.
#[inline(always)]
pub fn parse_eth(ctx: &XdpContext) -> Result<(u16, usize), Reason> {
    let mut proto = load_be16(ctx, 12).ok_or(Reason::TruncEth)?;
    let mut off = ETH_HLEN;
    // Unrolled for the verifier: at most two tags.
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        proto = load_be16(ctx, off + 2).ok_or(Reason::TruncVlan)?;
        off += VLAN_HLEN;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            proto = load_be16(ctx, off + 2).ok_or(Reason::TruncVlan)?;
            off += VLAN_HLEN;
            if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
                return Err(Reason::TooManyVlans);
            }
        }
    }
    Ok((proto, off))
}
