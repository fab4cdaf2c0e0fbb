//! Who should own which bucket: an even split by count, or a split
//! balanced by the measured rates.

use std::{collections::BTreeMap, net::IpAddr};

use dataplane_common::router::BUCKETS;

/// A rate-balanced owner for every bucket, starting from the current
/// owners and moving, from the most to the least loaded router, the bucket
/// that best closes the gap, until loads are within `tolerance` of the
/// mean. `None` when they already are.
pub fn rate_plan(
    rates: &[u64],
    owners: &[Option<IpAddr>],
    routers: &[IpAddr],
    tolerance: f64,
) -> Option<Vec<IpAddr>> {
    if routers.len() < 2
        || owners
            .iter()
            .any(|o| o.map(|r| !routers.contains(&r)).unwrap_or(true))
    {
        return None;
    }
    let mut owner: Vec<IpAddr> = owners.iter().map(|o| o.expect("checked")).collect();
    let load = |owner: &[IpAddr], r: IpAddr| -> u64 {
        (0..owner.len())
            .filter(|b| owner[*b] == r)
            .map(|b| rates[b])
            .sum()
    };
    let total: u64 = rates.iter().sum();
    let mean = total as f64 / routers.len() as f64;
    if total == 0 {
        return None;
    }
    let mut moved = false;
    for _ in 0..BUCKETS {
        let loads: Vec<(IpAddr, u64)> = routers.iter().map(|r| (*r, load(&owner, *r))).collect();
        let (hi, hl) = *loads.iter().max_by_key(|x| x.1).unwrap();
        let (lo, ll) = *loads.iter().min_by_key(|x| x.1).unwrap();
        if (hl as f64) <= mean * (1.0 + tolerance) && (ll as f64) >= mean * (1.0 - tolerance) {
            break;
        }
        let gap = (hl - ll) / 2;
        // The busy router's bucket whose rate is closest to half the gap,
        // and that does not overshoot it.
        let best = (0..owner.len())
            .filter(|b| owner[*b] == hi && rates[*b] > 0 && rates[*b] < hl - ll)
            .min_by_key(|b| (rates[*b] as i64 - gap as i64).unsigned_abs());
        match best {
            Some(b) => {
                owner[b] = lo;
                moved = true;
            }
            None => break,
        }
    }
    moved.then_some(owner)
}

/// An even split of the buckets over `routers` (sorted), moving as few as
/// possible: each router keeps up to its quota of what it has; the surplus
/// and the unowned go to the routers below quota.
pub fn plan(
    owners: &[Option<IpAddr>],
    routers: &[IpAddr],
) -> BTreeMap<u8, (Option<IpAddr>, IpAddr)> {
    let n = routers.len().max(1);
    let base = BUCKETS as usize / n;
    let extra = BUCKETS as usize % n;
    let quota: BTreeMap<IpAddr, usize> = routers
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, base + usize::from(i < extra)))
        .collect();
    let mut kept: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut free = Vec::new();
    for (b, o) in owners.iter().enumerate() {
        match o {
            Some(r) if quota.contains_key(r) && kept.get(r).copied().unwrap_or(0) < quota[r] => {
                *kept.entry(*r).or_default() += 1
            }
            _ => free.push(b as u8),
        }
    }
    let mut moves = BTreeMap::new();
    let mut free = free.into_iter();
    for r in routers {
        let have = kept.get(r).copied().unwrap_or(0);
        for _ in have..quota[r] {
            if let Some(b) = free.next() {
                let from = owners[b as usize].filter(|o| o != r);
                moves.insert(b, (from, *r));
            }
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(10, 3, 0, i))
    }

    #[test]
    fn rate_plan_evens_out_hot_buckets() {
        let r: Vec<IpAddr> = (1..=2).map(addr).collect();
        let owners: Vec<Option<IpAddr>> =
            (0..256).map(|b| Some(r[usize::from(b >= 128)])).collect();
        let mut rates = vec![0u64; 256];
        rates[..8].fill(1000); // all of router 1's traffic in 8 buckets
        let target = rate_plan(&rates, &owners, &r, 0.2).expect("unbalanced");
        let load = |x: IpAddr| {
            (0..256)
                .filter(|b| target[*b] == x)
                .map(|b| rates[b])
                .sum::<u64>()
        };
        assert_eq!((load(r[0]), load(r[1])), (4000, 4000));
        assert_eq!(
            (0..256)
                .filter(|b| target[*b] != owners[*b].unwrap())
                .count(),
            4,
            "only hot buckets move"
        );
        assert!(
            rate_plan(
                &rates,
                &target.iter().map(|x| Some(*x)).collect::<Vec<_>>(),
                &r,
                0.2
            )
            .is_none(),
            "balanced now"
        );
        assert!(
            rate_plan(&vec![0; 256], &owners, &r, 0.2).is_none(),
            "no traffic, nothing to do"
        );
    }

    #[test]
    fn plan_moves_as_little_as_possible() {
        let r: Vec<IpAddr> = (1..=3).map(addr).collect();
        let owners: Vec<Option<IpAddr>> = (0..256).map(|b| Some(r[b % 2])).collect();
        let moves = plan(&owners, &r);
        assert_eq!(moves.len(), 85, "only the new router's share moves");
        assert!(moves.values().all(|(_, to)| *to == r[2]));
        let balanced: Vec<Option<IpAddr>> = (0..256).map(|b| Some(r[b % 3])).collect();
        assert!(plan(&balanced, &r).is_empty());
    }
}
