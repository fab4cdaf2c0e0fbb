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
pub const KEY_KIND_FLOW6: u32 = 0x666c_3676;
pub const KEY_KIND_TERMINAL6: u32 = 0x7465_3676;

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

/// The seedless fold of an IPv6 5-tuple (each address as its four 32-bit
/// words, as in the packet), taken where the packet is parsed; the
/// session hash is [`flow_hash_v6`] of it. Two steps keep the fast path's
/// key to one word (the verifier follows one word through the table
/// lookup more cheaply than eight), and each address is first folded to
/// 64 bits (prefix half xor interface-identifier half), which keeps what
/// tells real flows apart at half the mixing.
#[inline(always)]
pub const fn flow6_fold(src: [u32; 4], dst: [u32; 4], sport: u16, dport: u16, proto: u8) -> u32 {
    let mut h = KEY_KIND_FLOW6;
    h = mix_word(h, src[0] ^ src[2]);
    h = mix_word(h, src[1] ^ src[3]);
    h = mix_word(h, dst[0] ^ dst[2]);
    h = mix_word(h, dst[1] ^ dst[3]);
    h = mix_word(
        h,
        (sport as u32) | ((dport as u32) << 16) ^ ((proto as u32) << 8),
    );
    finish(h, 20)
}

/// The seedless fold of an IPv6 terminal: the /64 its source address is
/// in (the first two words). A mobile terminal is given a /64 and picks
/// addresses inside it (privacy addresses change), so all of them are one
/// terminal.
#[inline(always)]
pub const fn terminal6_fold(src: [u32; 4]) -> u32 {
    let mut h = KEY_KIND_TERMINAL6;
    h = mix_word(h, src[0]);
    h = mix_word(h, src[1]);
    finish(h, 8)
}

/// Hash of an IPv6 flow from its [`flow6_fold`].
#[inline(always)]
pub const fn flow_hash_v6(fold: u32, seed: u32) -> u32 {
    let h = mix_word(seed, KEY_KIND_FLOW6);
    finish(mix_word(h, fold), 8)
}

/// Hash of an IPv6 terminal from its [`terminal6_fold`].
#[inline(always)]
pub const fn terminal_hash_v6(fold: u32, seed: u32) -> u32 {
    let h = mix_word(seed, KEY_KIND_TERMINAL6);
    finish(mix_word(h, fold), 8)
}

/// The load-sharing condition of an end-system address (network order, as
/// in the packet): its bucket out of `router::BUCKETS`.
#[inline(always)]
pub const fn addr_bucket(addr: u32) -> u32 {
    let h = mix_word(0x6275_636b, addr);
    finish(h, 4) & (crate::router::BUCKETS - 1)
}

/// The load-sharing condition of an IPv6 end-system address (four
/// 32-bit words as in the packet): its bucket out of `router::BUCKETS`.
/// The whole address, not its /64: every host of a LAN shares the /64.
#[inline(always)]
pub const fn addr6_bucket(addr: [u32; 4]) -> u32 {
    let mut h = mix_word(0x6236_6b74, addr[0]);
    h = mix_word(h, addr[1]);
    h = mix_word(h, addr[2]);
    h = mix_word(h, addr[3]);
    finish(h, 16) & (crate::router::BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spread over 13 slots within 10 % of even, for flows that differ
    /// only in the source port, only in the interface identifier, and for
    /// terminals that differ only in their /64.
    #[test]
    fn ipv6_keys_spread_evenly() {
        let spread = |hashes: &mut dyn Iterator<Item = u32>| {
            let mut n = [0u32; 13];
            let mut total = 0;
            for h in hashes {
                n[(h % 13) as usize] += 1;
                total += 1;
            }
            let even = total as f64 / 13.0;
            n.iter().all(|&c| (c as f64 - even).abs() < even * 0.1)
        };
        let a = [0x2001_0db8u32.to_be(), 0x64u32.to_be(), 0, 2u32.to_be()];
        let b = [0x2001_0db8u32.to_be(), 0xc633u32.to_be(), 0, 10u32.to_be()];
        assert!(spread(
            &mut (0..20_000u32).map(|p| flow_hash_v6(flow6_fold(a, b, p as u16, 443, 6), 7))
        ));
        assert!(spread(&mut (0..20_000u32).map(|i| {
            flow_hash_v6(
                flow6_fold([a[0], a[1], i.to_be(), (i * 7).to_be()], b, 40000, 443, 6),
                7,
            )
        })));
        assert!(spread(&mut (0..20_000u32).map(|i| {
            terminal_hash_v6(terminal6_fold([a[0], i.to_be(), 0, 1]), 7)
        })));
        // Addresses inside one /64 are one terminal.
        assert_eq!(
            terminal6_fold([a[0], a[1], 5, 6]),
            terminal6_fold([a[0], a[1], 7, 8])
        );
    }
}
