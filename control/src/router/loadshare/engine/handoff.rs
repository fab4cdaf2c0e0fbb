//! The master's side of a hand-off (claims 3-6): hold the buckets at the
//! new owner, read the old owners' fences, send them, and finish or abort.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;

impl LoadShare {
    pub(super) fn start(
        &mut self,
        now: u64,
        moves: BTreeMap<u8, (Option<IpAddr>, IpAddr)>,
        out: &mut Vec<Action>,
    ) {
        self.epoch += 1;
        let epoch = self.epoch;
        let mut by_target: BTreeMap<IpAddr, Vec<u8>> = BTreeMap::new();
        for (b, (_, to)) in &moves {
            by_target.entry(*to).or_default().push(*b);
        }
        self.handoff = Some(Handoff {
            epoch,
            moves,
            phase: Phase::Holding,
            pending: by_target.keys().copied().collect(),
            fences: Vec::new(),
            since: now,
        });
        for (to, buckets) in by_target {
            if to == self.cfg.me {
                for b in &buckets {
                    self.held_since.insert(*b, now);
                    self.set(*b, BUCKET_HOLD, out);
                }
                self.hold_acked(now, epoch, to, out);
            } else {
                self.send(now, to, Body::Hold { epoch, buckets }, out);
            }
        }
    }

    pub(super) fn hold_acked(&mut self, now: u64, epoch: u64, from: IpAddr, out: &mut Vec<Action>) {
        let Some(h) = self.handoff.as_mut() else {
            return;
        };
        if h.epoch != epoch
            || h.phase != Phase::Holding
            || !h.pending.remove(&from)
            || !h.pending.is_empty()
        {
            return;
        }
        // Every new owner buffers: the old owners stop (claim 3). "Old
        // owner" is whoever routes the bucket: the master's view of that
        // may lag (hellos cross hand-offs), so every live router other than
        // the new owner is told to stop and report its last packet; the new
        // owner cuts its buffer after the latest of them.
        h.phase = Phase::Releasing;
        h.since = now;
        let epoch = h.epoch;
        let moves = h.moves.clone();
        // Every configured router, not only those heard from lately: one
        // whose hellos were lost may still be routing.
        let mut routers: Vec<IpAddr> = self.cfg.peers.clone();
        routers.push(self.cfg.me);
        let mut by_source: BTreeMap<IpAddr, Vec<u8>> = BTreeMap::new();
        for r in &routers {
            let buckets: Vec<u8> = moves
                .iter()
                .filter(|(_, (_, to))| to != r)
                .map(|(b, _)| *b)
                .collect();
            if !buckets.is_empty() {
                by_source.insert(*r, buckets);
            }
        }
        // Wait for every report but from routers long gone (silent for two
        // death intervals, or never heard): they are told anyway.
        let gone: BTreeSet<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.last_hello == 0 || now.saturating_sub(p.last_hello) > 2 * self.cfg.dead_after_ms
            })
            .map(|(a, _)| *a)
            .collect();
        let h = self.handoff.as_mut().expect("checked above");
        h.fences.clear();
        h.pending = by_source
            .keys()
            .copied()
            .filter(|r| !gone.contains(r))
            .collect();
        if by_source.is_empty() {
            self.fence(now, out);
            return;
        }
        for (src, buckets) in by_source {
            if src == self.cfg.me {
                for b in &buckets {
                    self.set(*b, BUCKET_NOT_MINE, out);
                }
                out.push(Action::ReadFences { epoch, buckets });
            } else {
                self.send(now, src, Body::Release { epoch, buckets }, out);
            }
        }
        if self
            .handoff
            .as_ref()
            .map(|h| h.phase == Phase::Releasing && h.pending.is_empty())
            .unwrap_or(false)
        {
            self.fence(now, out);
        }
    }

    pub(super) fn got_fences(
        &mut self,
        now: u64,
        epoch: u64,
        from: IpAddr,
        fences: Vec<Fence>,
        out: &mut Vec<Action>,
    ) {
        let Some(h) = self.handoff.as_mut() else {
            return;
        };
        if h.epoch != epoch || h.phase != Phase::Releasing || !h.pending.remove(&from) {
            return;
        }
        h.fences.extend(
            fences
                .into_iter()
                .filter(|f| f.last.count > 0 && h.moves.contains_key(&f.bucket)),
        );
        if h.pending.is_empty() {
            self.fence(now, out);
        }
    }

    /// Claim 5: pass each bucket's sequence point to its new owner.
    pub(super) fn fence(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(h) = self.handoff.as_mut() else {
            return;
        };
        h.phase = Phase::Fencing;
        let epoch = h.epoch;
        let mut by_target: BTreeMap<IpAddr, Vec<Fence>> = BTreeMap::new();
        for (b, (_, to)) in &h.moves {
            let e = by_target.entry(*to).or_default();
            // Every router's last packet in the bucket; none: route all.
            let fs: Vec<Fence> = h
                .fences
                .iter()
                .filter(|f| f.bucket == *b)
                .copied()
                .collect();
            if fs.is_empty() {
                e.push(Fence {
                    bucket: *b,
                    ..Default::default()
                });
            } else {
                e.extend(fs);
            }
        }
        h.pending = by_target.keys().copied().collect();
        for (to, fences) in by_target {
            if to == self.cfg.me {
                self.fenced.extend(fences.iter().map(|f| f.bucket));
                out.push(Action::ApplyFence { epoch, fences });
            } else {
                self.send(now, to, Body::Fence { epoch, fences }, out);
            }
        }
    }

    pub(super) fn fence_done(&mut self, now: u64, epoch: u64, from: IpAddr) {
        let Some(h) = self.handoff.as_mut() else {
            return;
        };
        if h.epoch != epoch
            || h.phase != Phase::Fencing
            || !h.pending.remove(&from)
            || !h.pending.is_empty()
        {
            return;
        }
        // Record the new owners now, not at their next hello, so the next
        // plan starts from the truth.
        let moves = h.moves.clone();
        for (b, (_, new)) in moves {
            for (a, p) in self.peers.iter_mut() {
                if *a == new {
                    p.owned.insert(b);
                } else {
                    p.owned.remove(&b);
                }
            }
        }
        for p in self.peers.values_mut() {
            p.trust_after = now + self.cfg.dead_after_ms;
        }
        self.handoff = None;
        self.handoffs_done += 1;
    }

    pub(super) fn abort(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(h) = self.handoff.take() else { return };
        self.handoffs_aborted += 1;
        let mut by_target: BTreeMap<IpAddr, Vec<u8>> = BTreeMap::new();
        for (b, (_, to)) in &h.moves {
            by_target.entry(*to).or_default().push(*b);
        }
        for (to, buckets) in by_target {
            if to == self.cfg.me {
                for b in &buckets {
                    if self.mine[*b as usize] == BUCKET_HOLD {
                        self.held_since.remove(b);
                        self.set(*b, BUCKET_NOT_MINE, out);
                    }
                }
                out.push(Action::DiscardHeld { buckets });
            } else {
                self.send(
                    now,
                    to,
                    Body::Abort {
                        epoch: h.epoch,
                        buckets,
                    },
                    out,
                );
            }
        }
        // Buckets a source already released are orphans now; the next
        // tick's plan claims them.
    }
}
