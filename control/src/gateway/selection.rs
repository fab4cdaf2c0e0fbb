//! The weighted selection table of a server group.

use dataplane_common::gateway::{NO_SERVER, SELECT_SLOTS};

/// Fill `SELECT_SLOTS` slots with server indices in proportion to their
/// weights (largest remainder), interleaved so that consecutive hashes
/// spread across servers.
pub fn selection(servers: &[(u16, u32)]) -> [u16; SELECT_SLOTS as usize] {
    let mut out = [NO_SERVER; SELECT_SLOTS as usize];
    let total: u64 = servers.iter().map(|s| s.1 as u64).sum();
    if total == 0 {
        return out;
    }
    let n = SELECT_SLOTS as u64;
    let mut shares: Vec<(u16, u64, u64)> = servers
        .iter()
        .map(|&(i, w)| (i, w as u64 * n / total, (w as u64 * n) % total))
        .collect();
    let mut left = n - shares.iter().map(|s| s.1).sum::<u64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.cmp(&shares[a].2).then(a.cmp(&b)));
    for &i in &order {
        if left == 0 {
            break;
        }
        shares[i].1 += 1;
        left -= 1;
    }
    // Round-robin placement keeps each server's slots spread out.
    let mut slot = 0;
    while slot < out.len() {
        for s in shares.iter_mut() {
            if s.1 > 0 && slot < out.len() {
                out[slot] = s.0;
                s.1 -= 1;
                slot += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_weights_and_spreads() {
        let s = selection(&[(0, 1), (1, 3)]);
        let a = s.iter().filter(|&&x| x == 0).count();
        let b = s.iter().filter(|&&x| x == 1).count();
        assert_eq!((a, b), (16, 48));
        assert!(!s.contains(&NO_SERVER));
        let s = selection(&[(5, 1), (6, 1), (7, 1)]);
        let counts: Vec<usize> = [5, 6, 7]
            .iter()
            .map(|i| s.iter().filter(|&&x| x == *i).count())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 64);
        assert!(counts.iter().all(|&c| c == 21 || c == 22), "{counts:?}");
        assert_eq!(&s[..3], &[5, 6, 7], "interleaved");
        assert_eq!(selection(&[]), [NO_SERVER; 64]);
    }
}
