//! Maglev consistent hashing (Eisenbud et al., NSDI'16 §3.4), with weights.
//!
//! Every LB builds its table from the same gateway list and seed and gets
//! the same table: backends are ordered by name before the build, so the
//! order gateways were configured or added in does not matter (seed 002
//! claim 20: all first distribution units hold the same contents).

use dataplane_common::lb::NO_GATEWAY;

pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MaglevError {
    #[error("table size {0} is not prime (Maglev needs a prime M, e.g. 65537)")]
    NotPrime(u32),
    #[error("table size {size} is too small for {backends} gateways (needs M > N; M > 100 x N keeps shares within 1%)")]
    TooSmall { size: u32, backends: usize },
    #[error("gateway {0:?} appears twice")]
    Duplicate(String),
}

/// A built table: `slots[h % size]` is an index into `backends`, or
/// `NO_GATEWAY` when no backend has a positive weight.
#[derive(Clone, Debug)]
pub struct MaglevTable {
    pub size: u32,
    pub seed: u32,
    /// Sorted by name.
    pub backends: Vec<Backend>,
    pub slots: Vec<u32>,
}

impl MaglevTable {
    pub fn build(backends: &[Backend], size: u32, seed: u32) -> Result<Self, MaglevError> {
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        if (size as usize) <= backends.len() {
            return Err(MaglevError::TooSmall {
                size,
                backends: backends.len(),
            });
        }
        let mut sorted = backends.to_vec();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(MaglevError::Duplicate(w[0].name.clone()));
        }
        let slots = populate(&sorted, size, seed);
        Ok(Self {
            size,
            seed,
            backends: sorted,
            slots,
        })
    }

    /// The backend a hash lands on.
    pub fn owner(&self, hash: u32) -> Option<&Backend> {
        let b = self.slots[(hash % self.size) as usize];
        self.backends.get(b as usize)
    }

    /// Slots held by each backend, in `backends` order.
    pub fn shares(&self) -> Vec<u32> {
        let mut n = vec![0u32; self.backends.len()];
        for &s in &self.slots {
            if s != NO_GATEWAY {
                n[s as usize] += 1;
            }
        }
        n
    }

    /// A hash of the table by gateway name, so two LBs built from the same
    /// list compare equal whatever local indices they use.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv64::new();
        h.write(&self.size.to_le_bytes());
        h.write(&self.seed.to_le_bytes());
        for b in &self.backends {
            h.write(b.name.as_bytes());
            h.write(&[0]);
            h.write(&b.weight.to_le_bytes());
        }
        for s in &self.slots {
            h.write(&s.to_le_bytes());
        }
        h.finish()
    }
}

/// Weighted population: each round a backend earns its weight in credit
/// and takes one slot per `max_weight` of credit, so slot counts follow the
/// weights while each backend still walks its own permutation (§3.4).
fn populate(backends: &[Backend], size: u32, seed: u32) -> Vec<u32> {
    let m = size as u64;
    let mut slots = vec![NO_GATEWAY; size as usize];
    let max_w = backends.iter().map(|b| b.weight).max().unwrap_or(0);
    if max_w == 0 {
        return slots;
    }
    let perm: Vec<(u64, u64)> = backends
        .iter()
        .map(|b| {
            let offset = name_hash(&b.name, seed) % m;
            let skip = name_hash(&b.name, seed ^ 0x9e37_79b9) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; backends.len()];
    let mut credit = vec![0u64; backends.len()];
    let mut filled = 0u64;
    loop {
        for (i, b) in backends.iter().enumerate() {
            if b.weight == 0 {
                continue;
            }
            credit[i] += b.weight as u64;
            if credit[i] < max_w as u64 {
                continue;
            }
            credit[i] -= max_w as u64;
            let (offset, skip) = perm[i];
            let mut c = (offset + next[i] * skip) % m;
            while slots[c as usize] != NO_GATEWAY {
                next[i] += 1;
                c = (offset + next[i] * skip) % m;
            }
            slots[c as usize] = i as u32;
            next[i] += 1;
            filled += 1;
            if filled == m {
                return slots;
            }
        }
    }
}

pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = n as u64;
    let mut d = 2u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

fn name_hash(name: &str, seed: u32) -> u64 {
    let mut h = Fnv64::new();
    h.write(&seed.to_le_bytes());
    h.write(name.as_bytes());
    h.finish()
}

/// FNV-1a with a splitmix64 finish (FNV alone mixes the high bits poorly).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gws(n: usize) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend {
                name: format!("gw{i:04}"),
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn balance_within_one_percent_for_100_gateways() {
        let t = MaglevTable::build(&gws(100), DEFAULT_TABLE_SIZE, 7).unwrap();
        let shares = t.shares();
        let (min, max) = (*shares.iter().min().unwrap(), *shares.iter().max().unwrap());
        assert!(min > 0);
        let ratio = max as f64 / min as f64;
        assert!(ratio <= 1.01, "max/min = {max}/{min} = {ratio}");
        assert_eq!(shares.iter().sum::<u32>(), DEFAULT_TABLE_SIZE);
    }

    #[test]
    fn removing_one_gateway_moves_its_slots_and_at_most_one_percent_of_the_rest() {
        for n in [10usize, 100] {
            let all = gws(n);
            let before = MaglevTable::build(&all, DEFAULT_TABLE_SIZE, 11).unwrap();
            let removed = &all[n / 2].name;
            let rest: Vec<_> = all.iter().filter(|b| &b.name != removed).cloned().collect();
            let after = MaglevTable::build(&rest, DEFAULT_TABLE_SIZE, 11).unwrap();
            let mut others = 0u32;
            let mut others_moved = 0u32;
            for h in 0..DEFAULT_TABLE_SIZE {
                let a = &before.owner(h).unwrap().name;
                let b = &after.owner(h).unwrap().name;
                assert_ne!(b, removed);
                if a != removed {
                    others += 1;
                    if a != b {
                        others_moved += 1;
                    }
                }
            }
            let frac = others_moved as f64 / others as f64;
            eprintln!("n={n}: {others_moved}/{others} other slots moved");
            assert!(
                frac <= 0.01,
                "n={n}: {others_moved}/{others} = {frac:.4} of the other slots moved"
            );
        }
    }

    #[test]
    fn same_list_in_any_order_gives_the_same_table() {
        let mut a = gws(16);
        let t1 = MaglevTable::build(&a, DEFAULT_TABLE_SIZE, 3).unwrap();
        a.reverse();
        let t2 = MaglevTable::build(&a, DEFAULT_TABLE_SIZE, 3).unwrap();
        assert_eq!(t1.slots, t2.slots);
        assert_eq!(t1.digest(), t2.digest());
        let t3 = MaglevTable::build(&a, DEFAULT_TABLE_SIZE, 4).unwrap();
        assert_ne!(t1.digest(), t3.digest(), "the seed changes the table");
    }

    #[test]
    fn weights_shape_the_shares() {
        let b = vec![
            Backend {
                name: "a".into(),
                weight: 1,
            },
            Backend {
                name: "b".into(),
                weight: 3,
            },
            Backend {
                name: "c".into(),
                weight: 0,
            },
        ];
        let t = MaglevTable::build(&b, DEFAULT_TABLE_SIZE, 1).unwrap();
        let s = t.shares();
        assert_eq!(s[2], 0, "weight 0 takes no slots");
        let r = s[1] as f64 / s[0] as f64;
        assert!((r - 3.0).abs() < 0.01, "b/a = {r}");
    }

    #[test]
    fn no_weight_means_no_gateway() {
        let t = MaglevTable::build(&[], 10_007, 1).unwrap();
        assert!(t.slots.iter().all(|&s| s == NO_GATEWAY));
        assert!(t.owner(5).is_none());
    }

    #[test]
    fn rejects_bad_sizes_and_duplicates() {
        assert_eq!(
            MaglevTable::build(&gws(2), 65_536, 1).unwrap_err(),
            MaglevError::NotPrime(65_536)
        );
        assert!(matches!(
            MaglevTable::build(&gws(7), 7, 1),
            Err(MaglevError::TooSmall { .. })
        ));
        let mut d = gws(2);
        d.push(d[0].clone());
        assert_eq!(
            MaglevTable::build(&d, 65_537, 1).unwrap_err(),
            MaglevError::Duplicate("gw0000".into())
        );
    }
}
