//! Incremental Internet checksum updates (RFC 1624, eqn. 3). Values are
//! taken as they sit in the packet (16-bit words in memory order): the
//! one's complement sum is byte-order independent, so no swapping.

/// The one's complement sum folded to 16 bits.
#[inline(always)]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// HC' = ~(~HC + ~m + m')
#[inline(always)]
pub fn replace16(csum: u16, old: u16, new: u16) -> u16 {
    !fold((!csum as u32) + (!old as u32) + new as u32)
}

/// A 32-bit field (two words) changed from `old` to `new`, both as read
/// from the packet with `from_ne_bytes`.
#[inline(always)]
pub fn replace32(csum: u16, old: u32, new: u32) -> u16 {
    let s = (!csum as u32)
        + (!(old as u16) as u32)
        + (!((old >> 16) as u16) as u32)
        + (new as u16) as u32
        + ((new >> 16) as u16) as u32;
    !fold(s)
}

/// A 128-bit field (an IPv6 address, four words as in the packet)
/// changed from `old` to `new`.
#[inline(always)]
pub fn replace128(csum: u16, old: &[u32; 4], new: &[u32; 4]) -> u16 {
    let mut s = !csum as u32;
    let mut i = 0;
    while i < 4 {
        let (o, n) = (old[i], new[i]);
        s += (!(o as u16)) as u32
            + (!((o >> 16) as u16)) as u32
            + (n as u16) as u32
            + ((n >> 16) as u16) as u32;
        i += 1;
    }
    !fold(s)
}

/// UDP sends 0 as "no checksum", so a computed 0 goes out as 0xffff
/// (RFC 768).
#[inline(always)]
pub fn udp_fix(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}
