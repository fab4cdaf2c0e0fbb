//! The engine's tests: single transitions, and whole routers talking over
//! a simulated (lossy) network.

use super::*;

const KEY: &[u8] = b"shared secret";

fn addr(i: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(10, 3, 0, i))
}

/// Routers in memory, a network that can lose messages, and edges that
/// answer ReadFences / ApplyFence at once.
struct Sim {
    nodes: BTreeMap<IpAddr, LoadShare>,
    alive: BTreeSet<IpAddr>,
    wire: Vec<(IpAddr, Vec<u8>)>,
    now: u64,
    loss: u64,
    rng: u64,
    /// Messages the network never delivers.
    drop: Option<fn(&Msg) -> bool>,
}

impl Sim {
    fn new(n: u8, loss_pct: u64) -> Self {
        let all: Vec<IpAddr> = (1..=n).map(addr).collect();
        let mut nodes = BTreeMap::new();
        for a in &all {
            let peers = all.iter().copied().filter(|p| p != a).collect();
            nodes.insert(*a, LoadShare::new(Config::new(*a, 100, peers, 100)));
        }
        Self {
            alive: all.iter().copied().collect(),
            nodes,
            wire: vec![],
            now: 1,
            loss: loss_pct,
            rng: 7,
            drop: None,
        }
    }

    fn lose(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100 < self.loss
    }

    fn apply(&mut self, at: IpAddr, actions: Vec<Action>) {
        let mut follow = Vec::new();
        for a in actions {
            match a {
                Action::Send { to, msg } => {
                    if !self.lose() && !self.drop.is_some_and(|d| d(&msg)) {
                        self.wire.push((to, msg.encode(KEY)));
                    }
                }
                Action::ReadFences { epoch, buckets } => follow.push(Event::FencesRead {
                    now: self.now,
                    epoch,
                    fences: buckets
                        .iter()
                        .map(|b| Fence {
                            bucket: *b,
                            last: dataplane_common::router::Fingerprint {
                                count: 1,
                                ..Default::default()
                            },
                        })
                        .collect(),
                }),
                Action::ApplyFence { epoch, .. } => follow.push(Event::FenceApplied {
                    now: self.now,
                    epoch,
                }),
                Action::SetBucket { .. } | Action::DiscardHeld { .. } => {}
            }
        }
        for ev in follow {
            let acts = self.nodes.get_mut(&at).unwrap().handle(ev);
            self.apply(at, acts);
        }
    }

    fn step(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += 10;
            let alive: Vec<IpAddr> = self.alive.iter().copied().collect();
            for a in &alive {
                let acts = self
                    .nodes
                    .get_mut(a)
                    .unwrap()
                    .handle(Event::Tick { now: self.now });
                self.apply(*a, acts);
            }
            let wire = std::mem::take(&mut self.wire);
            for (to, bytes) in wire {
                if !self.alive.contains(&to) {
                    continue;
                }
                let msg = Msg::decode(&bytes, KEY).unwrap();
                let acts = self
                    .nodes
                    .get_mut(&to)
                    .unwrap()
                    .handle(Event::Received { now: self.now, msg });
                self.apply(to, acts);
            }
            self.check_no_duplicates();
        }
    }

    /// No bucket is ever routed by two live routers at once.
    fn check_no_duplicates(&self) {
        for b in 0..256 {
            let owners: Vec<_> = self
                .alive
                .iter()
                .filter(|a| self.nodes[a].mine[b] == BUCKET_MINE)
                .collect();
            assert!(
                owners.len() <= 1,
                "bucket {b} routed by {owners:?} at t={}",
                self.now
            );
        }
    }

    fn shares(&self) -> Vec<usize> {
        self.alive
            .iter()
            .map(|a| {
                self.nodes[a]
                    .mine
                    .iter()
                    .filter(|s| **s == BUCKET_MINE)
                    .count()
            })
            .collect()
    }

    fn set_master(&mut self, m: IpAddr) {
        let alive: Vec<IpAddr> = self.alive.iter().copied().collect();
        for a in alive {
            let now = self.now;
            self.nodes.get_mut(&a).unwrap().handle(Event::Role {
                now,
                master: a == m,
            });
        }
    }
}

/// Router 2's traffic, all in four of its buckets at 1000 pps each (4000
/// pps), reported to it three times half a second apart; the buckets.
fn heat_router_2(s: &mut Sim) -> Vec<u8> {
    let hot: Vec<u8> = (0..=255u8)
        .filter(|b| s.nodes[&addr(2)].mine[*b as usize] == BUCKET_MINE)
        .take(4)
        .collect();
    let mut rates = vec![0u64; 256];
    for b in &hot {
        rates[*b as usize] = 1000;
    }
    for _ in 0..3 {
        let now = s.now;
        let acts = s.nodes.get_mut(&addr(2)).unwrap().handle(Event::Rates {
            now,
            rates: rates.clone(),
        });
        s.apply(addr(2), acts);
        s.step(500);
    }
    hot
}

#[test]
fn master_spreads_the_buckets_evenly() {
    let mut s = Sim::new(3, 0);
    s.set_master(addr(1));
    s.step(2000);
    let mut sh = s.shares();
    sh.sort();
    assert_eq!(sh, vec![85, 85, 86]);
}

#[test]
fn converges_without_duplicates_over_a_lossy_network() {
    for seed in [7u64, 11, 23, 99, 1234] {
        let mut s = Sim::new(3, 10);
        s.rng = seed;
        s.set_master(addr(1));
        s.step(10_000);
        let mut sh = s.shares();
        sh.sort();
        let m = &s.nodes[&addr(1)];
        assert_eq!(
            sh,
            vec![85, 85, 86],
            "10% loss, retransmissions still converge (handoff {:?}, done {}, aborted {})",
            m.handoff
                .as_ref()
                .map(|h| (&h.phase, &h.pending, h.moves.len())),
            m.handoffs_done,
            m.handoffs_aborted
        );
    }
}

/// At 30% loss hellos go missing often enough that routers seem to
/// die and come back; plans churn, but no bucket is ever routed twice
/// (checked at every step) and every bucket keeps an owner.
#[test]
fn heavy_loss_never_doubles_a_bucket() {
    for seed in [3u64, 5, 8] {
        let mut s = Sim::new(3, 30);
        s.rng = seed;
        s.set_master(addr(1));
        s.step(10_000);
        assert!(s.shares().iter().sum::<usize>() > 0);
    }
}

#[test]
fn a_joining_router_gets_its_share_and_nothing_is_doubled() {
    let mut s = Sim::new(3, 0);
    s.alive.remove(&addr(3));
    s.set_master(addr(1));
    s.step(2000);
    assert_eq!(s.shares(), vec![128, 128]);
    s.alive.insert(addr(3));
    s.step(3000);
    let mut sh = s.shares();
    sh.sort();
    assert_eq!(sh, vec![85, 85, 86]);
    assert!(s.nodes[&addr(1)].handoffs_done >= 2);
}

#[test]
fn a_new_master_claims_the_failed_masters_buckets() {
    let mut s = Sim::new(3, 0);
    s.set_master(addr(1));
    s.step(2000);
    s.alive.remove(&addr(1));
    s.set_master(addr(2));
    s.step(3000);
    let mut sh = s.shares();
    sh.sort();
    assert_eq!(
        sh,
        vec![128, 128],
        "the failed router's buckets are redistributed"
    );
}

#[test]
fn a_busy_backup_asks_for_review_and_the_master_rebalances_by_rate() {
    let mut s = Sim::new(3, 0);
    for n in s.nodes.values_mut() {
        n.cfg.review_pps = Some(1500);
        n.cfg.review_holddown_ms = 60_000;
    }
    s.set_master(addr(1));
    s.step(2000);
    let hot = heat_router_2(&mut s);
    assert_eq!(
        s.nodes[&addr(2)].reviews_requested,
        1,
        "one request per hold-down (claim 12)"
    );
    let m = &s.nodes[&addr(1)];
    assert_eq!(m.collections, 1, "collected once (claims 9, 10)");
    assert_eq!(m.rate_rebalances, 1);
    let still: usize = hot
        .iter()
        .filter(|b| s.nodes[&addr(2)].mine[**b as usize] == BUCKET_MINE)
        .count();
    assert!(
        still <= 2,
        "hot buckets moved away from the busy router ({still} of 4 left)"
    );
    assert_eq!(s.shares().iter().sum::<usize>(), 256);
}

impl Sim {
    /// Every bucket is routed or held by some live router: nothing falls
    /// between two owners.
    fn covered(&self) -> bool {
        (0..256).all(|b| {
            self.alive
                .iter()
                .any(|a| matches!(self.nodes[a].mine[b], BUCKET_MINE | BUCKET_HOLD))
        })
    }

    /// `a` starts again with nothing: a new engine, a later incarnation.
    fn restart(&mut self, a: IpAddr) {
        let mut cfg = self.nodes[&a].cfg.clone();
        cfg.boot += 1;
        self.nodes.insert(a, LoadShare::new(cfg));
        self.alive.insert(a);
    }
}

/// A restarted router counts its sequence numbers from 1 again; its peers
/// take them as new (a later incarnation), so its join's hand-offs go
/// through, and the old incarnation's messages replayed afterwards are
/// refused.
#[test]
fn a_restarted_router_is_heard_again_and_its_old_messages_are_refused() {
    let mut s = Sim::new(3, 0);
    s.set_master(addr(1));
    s.step(2000);
    // What r3 sent in its first life, captured off the wire.
    let old = Msg {
        v: VERSION,
        from: addr(3),
        boot: s.nodes[&addr(3)].cfg.boot,
        seq: s.nodes[&addr(3)].seq + 1,
        body: Body::Hello {
            priority: 100,
            master: false,
            owned: (0..=255).collect(),
            leaving: false,
        },
    };
    s.alive.remove(&addr(3));
    s.step(2000);
    assert_eq!(s.shares(), vec![128, 128], "its buckets went to the others");
    s.restart(addr(3));
    s.step(3000);
    let mut sh = s.shares();
    sh.sort();
    assert_eq!(sh, vec![85, 85, 86], "the restarted router got its share");
    let m = &s.nodes[&addr(1)];
    assert_eq!(m.peer_restarts, 1);
    assert_eq!(m.handoffs_aborted, 0);
    let now = s.now;
    let acts = s
        .nodes
        .get_mut(&addr(1))
        .unwrap()
        .handle(Event::Received { now, msg: old });
    assert!(acts.is_empty(), "a replay changes nothing: {acts:?}");
    assert_eq!(s.nodes[&addr(1)].stale, 1);
    s.step(500);
    let mut sh = s.shares();
    sh.sort();
    assert_eq!(sh, vec![85, 85, 86]);
}

/// Within one incarnation: a retransmission is acked again but handled
/// once; a message behind the replay window or a hello older than the
/// newest is refused.
#[test]
fn replays_within_an_incarnation_are_refused() {
    let mut r = LoadShare::new(Config::new(addr(1), 100, vec![addr(2)], 100));
    let msg = |seq: u64, body: Body| Msg {
        v: VERSION,
        from: addr(2),
        boot: 5,
        seq,
        body,
    };
    let hold = |seq| {
        msg(
            seq,
            Body::Hold {
                epoch: 1,
                buckets: vec![seq as u8],
            },
        )
    };
    let acts = r.handle(Event::Received {
        now: 1,
        msg: hold(10),
    });
    assert_eq!(acts.len(), 3, "held, acked, hold acked: {acts:?}");
    let again = r.handle(Event::Received {
        now: 2,
        msg: hold(10),
    });
    assert!(
        matches!(
            &again[..],
            [Action::Send {
                msg: Msg {
                    body: Body::Ack { seq: 10 },
                    ..
                },
                ..
            }]
        ),
        "a retransmission is only acked: {again:?}"
    );
    assert_eq!(r.duplicates, 1);
    r.handle(Event::Received {
        now: 3,
        msg: hold(10 + REPLAY_WINDOW),
    });
    let old = r.handle(Event::Received {
        now: 4,
        msg: hold(9),
    });
    assert!(old.is_empty(), "behind the window: {old:?}");
    assert_eq!(r.replayed, 1);
    let hello = |seq| {
        msg(
            seq,
            Body::Hello {
                priority: 1,
                master: false,
                owned: vec![],
                leaving: false,
            },
        )
    };
    r.handle(Event::Received {
        now: 5,
        msg: hello(20_000),
    });
    r.handle(Event::Received {
        now: 6,
        msg: hello(19_999),
    });
    assert_eq!(r.replayed, 2, "an older hello is refused");
}

/// A router that leaves (shutting down) hands every bucket to the others
/// first; no bucket is ever without a router routing or holding it, none
/// is routed twice (checked at every step), and it may go once it routes
/// nothing. Restarted, it gets its share back the same way.
#[test]
fn a_leaving_router_hands_its_buckets_over_first() {
    for leaver in [addr(3), addr(1)] {
        let mut s = Sim::new(3, 0);
        s.set_master(addr(1));
        s.step(2000);
        let now = s.now;
        let acts = s
            .nodes
            .get_mut(&leaver)
            .unwrap()
            .handle(Event::Leave { now });
        s.apply(leaver, acts);
        for _ in 0..300 {
            s.step(10);
            assert!(s.covered(), "a bucket was dropped at t={}", s.now);
            if s.nodes[&leaver].routes_nothing() {
                break;
            }
        }
        assert!(s.nodes[&leaver].routes_nothing(), "{leaver} still routes");
        s.alive.remove(&leaver);
        if leaver == addr(1) {
            s.set_master(addr(2));
        }
        s.step(1000);
        assert!(s.covered());
        assert_eq!(s.shares(), vec![128, 128], "after {leaver} left");
        s.restart(leaver);
        if leaver == addr(1) {
            s.set_master(addr(2));
        }
        for _ in 0..300 {
            s.step(10);
            assert!(s.covered(), "a bucket was dropped at t={}", s.now);
        }
        let mut sh = s.shares();
        sh.sort();
        assert_eq!(sh, vec![85, 85, 86], "{leaver} rejoined");
    }
}

/// A message to `to` as router 2 would send it.
fn from2(r: &LoadShare, seq: u64, body: Body) -> Event {
    let _ = r;
    Event::Received {
        now: 0,
        msg: Msg {
            v: VERSION,
            from: addr(2),
            boot: 1,
            seq,
            body,
        },
    }
}

/// Claim 13: a review request within the master's collection hold-down
/// starts no second collection; one after it does.
#[test]
fn the_master_collects_once_within_its_holddown() {
    let mut m = LoadShare::new(Config::new(addr(1), 200, vec![addr(2)], 100));
    m.cfg.collect_holddown_ms = 5_000;
    m.handle(Event::Role {
        now: 1,
        master: true,
    });
    let Event::Received { msg: hello, .. } = from2(
        &m,
        1,
        Body::Hello {
            priority: 100,
            master: false,
            owned: vec![],
            leaving: false,
        },
    ) else {
        unreachable!()
    };
    m.handle(Event::Received {
        now: 900,
        msg: hello,
    });
    let ask = |m: &mut LoadShare, now: u64, seq: u64| {
        let Event::Received { msg, .. } = from2(m, seq, Body::ReviewRequest { pps: 9000 }) else {
            unreachable!()
        };
        m.handle(Event::Received { now, msg })
    };
    let first = ask(&mut m, 1_000, 2);
    assert!(
        first.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: Msg {
                    body: Body::RateRequest { .. },
                    ..
                },
                ..
            }
        )),
        "the first request starts a collection: {first:?}"
    );
    // The collection ends (its report timed out) well within the hold-down.
    m.handle(Event::Tick { now: 2_000 });
    assert!(m.collection.is_none());
    let second = ask(&mut m, 3_000, 3);
    assert!(
        !second.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: Msg {
                    body: Body::RateRequest { .. },
                    ..
                },
                ..
            }
        )),
        "a second request 2 s later, within the 5 s hold-down: {second:?}"
    );
    assert_eq!(
        m.collections, 1,
        "asked twice within the hold-down, one collection"
    );
    ask(&mut m, 6_001, 4);
    assert_eq!(
        m.collections, 2,
        "after the hold-down a request collects again"
    );
}

/// Claim 9: with thresholds per backup, the master reallocates only when
/// a router's collected rate exceeds its own threshold; the same
/// imbalance under a higher threshold is left as it is.
#[test]
fn the_master_reviews_by_each_backups_threshold() {
    for (limit, moved) in [(1500u64, true), (10_000, false)] {
        let mut s = Sim::new(3, 0);
        for n in s.nodes.values_mut() {
            n.cfg.review_pps = Some(1000);
            n.cfg.review_holddown_ms = 60_000;
            n.cfg.backup_review_pps = [(addr(2), limit), (addr(3), 100_000)].into();
        }
        s.set_master(addr(1));
        s.step(2000);
        let hot = heat_router_2(&mut s);
        let m = &s.nodes[&addr(1)];
        assert_eq!(m.collections, 1, "threshold {limit}: collected once");
        let still = hot
            .iter()
            .filter(|b| s.nodes[&addr(2)].mine[**b as usize] == BUCKET_MINE)
            .count();
        if moved {
            assert_eq!((m.rate_rebalances, m.reviews_within_thresholds), (1, 0));
            assert!(
                still <= 2,
                "4000 pps > 1500: hot buckets moved ({still} of 4 left)"
            );
        } else {
            assert_eq!((m.rate_rebalances, m.reviews_within_thresholds), (0, 1));
            assert_eq!(still, 4, "4000 pps <= 10000: nothing moved");
        }
        assert_eq!(s.shares().iter().sum::<usize>(), 256);
    }
}

/// Claim 4: a backup that acknowledged a hold suspends routing the held
/// buckets for the predetermined period. Here the fence never comes (the
/// master dies once the old owner released): the suspension ends after
/// `hold_timeout_ms`, not before, and the next master gives each bucket
/// to exactly one router.
#[test]
fn a_handoff_whose_fence_never_comes_ends_after_the_suspension() {
    let mut s = Sim::new(3, 0);
    for n in s.nodes.values_mut() {
        n.cfg.hold_timeout_ms = 1_500;
    }
    s.alive.remove(&addr(3));
    s.set_master(addr(1));
    s.step(2000);
    assert_eq!(s.shares(), vec![128, 128]);
    s.drop = Some(|m| matches!(m.body, Body::Fence { .. }));
    s.alive.insert(addr(3));
    // Until r3 holds buckets and the master has sent their fence.
    let mut t = 0;
    while !matches!(
        s.nodes[&addr(1)].handoff.as_ref().map(|h| &h.phase),
        Some(Phase::Fencing)
    ) {
        s.step(10);
        t += 10;
        assert!(t < 5000, "no hand-off reached its fence");
    }
    let held: Vec<u8> = (0..=255u8)
        .filter(|b| s.nodes[&addr(3)].mine[*b as usize] == BUCKET_HOLD)
        .collect();
    assert!(!held.is_empty());
    let since = s.now;
    s.alive.remove(&addr(1));
    // The dead master's fence is gone for good; the network is whole, and
    // for now nobody is master.
    s.drop = None;
    let mut ended = None;
    for _ in 0..250 {
        s.step(10);
        let still = held
            .iter()
            .any(|b| s.nodes[&addr(3)].mine[*b as usize] == BUCKET_HOLD);
        if !still && ended.is_none() {
            ended = Some(s.now - since);
        }
    }
    let ended = ended.expect("the suspension ended");
    assert!(
        (1_450..=1_700).contains(&ended),
        "suspended {ended} ms, the period is 1500 ms"
    );
    s.set_master(addr(2));
    s.step(3000);
    for b in 0..256 {
        let routers = s
            .alive
            .iter()
            .filter(|a| s.nodes[a].mine[b] == BUCKET_MINE)
            .count();
        assert_eq!(routers, 1, "bucket {b} routed by {routers} routers");
    }
}
