//! The session hash. One implementation, compiled into both the XDP program
//! and userspace, so the control plane, tests and benches hash exactly as the
//! fast path does. It is a murmur3-style mix over 32-bit words: cheap on BPF
//! (no multiplication by 64-bit constants, no loops with data-dependent
//! bounds) and well distributed over TEIDs, which operators often allocate
//! sequentially.

/// Discriminates the two key kinds so a TEID never collides by construction
/// with a 5-tuple whose first word happens to equal it.
pub const KEY_KIND_TEID: u32 = 0x7465_6964;
pub const KEY_KIND_FLOW: u32 = 0x666c_6f77;
pub const KEY_KIND_TERMINAL: u32 = 0x7465_726d;

#[inline(always)]
const fn mix_word(h: u32, k: u32) -> u32 {
    let mut k = k.wrapping_mul(0xcc9e_2d51);
    k = k.rotate_left(15);
    k = k.wrapping_mul(0x1b87_3593);
    let h = h ^ k;
    h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

#[inline(always)]
const fn finish(mut h: u32, len: u32) -> u32 {
    h ^= len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Hash of a GTP-U session (its TEID, host byte order).
#[inline(always)]
pub const fn teid_hash(teid: u32, seed: u32) -> u32 {
    let h = mix_word(seed, KEY_KIND_TEID);
    finish(mix_word(h, teid), 8)
}

/// Hash of a 5-tuple. Addresses and ports are taken as they sit in the
/// packet (network byte order), so the fast path never swaps.
#[inline(always)]
pub const fn flow_hash(src: u32, dst: u32, sport: u16, dport: u16, proto: u8, seed: u32) -> u32 {
    let mut h = mix_word(seed, KEY_KIND_FLOW);
    h = mix_word(h, src);
    h = mix_word(h, dst);
    h = mix_word(h, (sport as u32) | ((dport as u32) << 16));
    h = mix_word(h, proto as u32);
    finish(h, 20)
}

/// Hash of a terminal: its source address only (network byte order, as in
/// the packet), so every user session of the terminal, whatever the
/// destination or ports, hashes alike.
#[inline(always)]
pub const fn terminal_hash(addr: u32, seed: u32) -> u32 {
    let h = mix_word(seed, KEY_KIND_TERMINAL);
    finish(mix_word(h, addr), 8)
}

/// The load-sharing condition of an end-system address (network order, as
/// in the packet): its bucket out of `router::BUCKETS`.
#[inline(always)]
pub const fn addr_bucket(addr: u32) -> u32 {
    let h = mix_word(0x6275_636b, addr);
    finish(h, 4) & (crate::router::BUCKETS - 1)
}
