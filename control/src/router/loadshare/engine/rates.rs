//! Rates (claims 7-13): a backup's review request, the master's
//! collection and its reallocation by rate.

use super::*;

impl LoadShare {
    /// Claim 7-8: a backup watches its own rate and asks the master for a
    /// review past the threshold, at most once per hold-down (claim 12).
    pub(super) fn rates(&mut self, now: u64, rates: Vec<u64>, out: &mut Vec<Action>) {
        self.my_rates = rates;
        self.my_rates.resize(BUCKETS as usize, 0);
        let Some(limit) = self.cfg.review_pps else {
            return;
        };
        if self.master || self.leaving || now < self.review_until {
            return;
        }
        let mine: u64 = (0..BUCKETS as usize)
            .filter(|b| self.mine[*b] == BUCKET_MINE)
            .map(|b| self.my_rates[b])
            .sum();
        if mine <= limit {
            return;
        }
        let master = self
            .peers
            .iter()
            .find(|(_, p)| {
                p.is_master && now.saturating_sub(p.last_hello) <= self.cfg.dead_after_ms
            })
            .map(|(a, _)| *a);
        if let Some(m) = master {
            self.review_until = now + self.cfg.review_holddown_ms;
            self.reviews_requested += 1;
            self.send(now, m, Body::ReviewRequest { pps: mine }, out);
        }
    }

    /// Claim 9: ask every live router for its per-bucket rates; not again
    /// within the hold-down (claim 13).
    pub(super) fn collect(&mut self, now: u64, out: &mut Vec<Action>) {
        if !self.master || self.collection.is_some() || now < self.collect_until {
            return;
        }
        self.collect_until = now + self.cfg.collect_holddown_ms;
        self.last_collect = now;
        self.collections += 1;
        let id = self.collections;
        let mut rates = vec![0u64; BUCKETS as usize];
        for ((r, mine), mr) in rates.iter_mut().zip(&self.mine).zip(&self.my_rates) {
            if *mine == BUCKET_MINE {
                *r = *mr;
            }
        }
        let live: BTreeSet<IpAddr> = self
            .live(now)
            .into_iter()
            .filter(|a| *a != self.cfg.me)
            .collect();
        for p in &live {
            self.send(now, *p, Body::RateRequest { id }, out);
        }
        self.collection = Some(Collection {
            id,
            started: now,
            pending: live,
            rates,
        });
        if self
            .collection
            .as_ref()
            .map(|c| c.pending.is_empty())
            .unwrap_or(false)
        {
            self.finish_collection(now);
        }
    }

    /// Claim 11: reallocate by rate when the routers' loads differ by more
    /// than the tolerance.
    pub(super) fn finish_collection(&mut self, now: u64) {
        let Some(c) = self.collection.take() else {
            return;
        };
        let live = self.members(now);
        let owners = self.owners(now);
        if !self.cfg.backup_review_pps.is_empty() {
            let over = live.iter().any(|r| {
                let load: u64 = (0..BUCKETS as usize)
                    .filter(|b| owners[*b] == Some(*r))
                    .map(|b| c.rates[b])
                    .sum();
                self.cfg
                    .backup_review_pps
                    .get(r)
                    .is_some_and(|limit| load > *limit)
            });
            if !over {
                self.reviews_within_thresholds += 1;
                return;
            }
        }
        if let Some(target) = rate_plan(&c.rates, &owners, &live, self.cfg.rate_tolerance) {
            self.rate_rebalances += 1;
            self.target = Some((live, target));
        }
    }
}
