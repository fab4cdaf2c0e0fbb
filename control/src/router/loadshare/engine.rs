//! One router's load-sharing state, driven by events (sans I/O): the
//! master's hand-offs of buckets, the backups' side of them, rate
//! collection and reviews. The master's side of a hand-off (hold, fence,
//! done, abort) is in `handoff.rs`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use super::{
    planner::{plan, rate_plan},
    wire::{Body, Fence, Msg, VERSION},
};
use dataplane_common::router::{BUCKETS, BUCKET_HOLD, BUCKET_MINE, BUCKET_NOT_MINE, LEASE_NS};

mod handoff;
mod incarnation;
mod rates;

use incarnation::Incarnation;

#[derive(Clone, Debug)]
pub struct Config {
    pub me: IpAddr,
    pub priority: u8,
    pub peers: Vec<IpAddr>,
    pub hello_ms: u64,
    /// A peer without a hello for this long is gone.
    pub dead_after_ms: u64,
    pub retransmit_ms: u64,
    pub max_tries: u32,
    /// How long a bucket may stay held without its fence.
    pub hold_timeout_ms: u64,
    /// A backup routing more than this asks the master for a review.
    pub review_pps: Option<u64>,
    /// After asking, a backup does not ask again for this long (claim 12).
    pub review_holddown_ms: u64,
    /// The master collects rates this often (claim 9); never when absent.
    pub collect_interval_ms: Option<u64>,
    /// After collecting, the master does not collect again for this long
    /// (claim 13).
    pub collect_holddown_ms: u64,
    /// Loads within this fraction of the mean count as balanced.
    pub rate_tolerance: f64,
    /// Claim 9: per router, the collected rate past which the master
    /// reviews; when any is set, a collection leads to a reallocation only
    /// if some router exceeds its own.
    pub backup_review_pps: BTreeMap<IpAddr, u64>,
    /// This incarnation (see `Msg::boot`): greater than any before it.
    pub boot: u64,
}

/// Reliable messages more than this many sequence numbers behind the
/// newest one seen from a sender are refused as replays.
pub const REPLAY_WINDOW: u64 = 4096;

/// Now in Unix microseconds: the `boot` of a router starting now. A
/// restarted router's clock must not have gone back past its previous
/// start, or its peers refuse it as a replay of the old one.
pub fn boot_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
        .max(1)
}

impl Config {
    pub fn new(me: IpAddr, priority: u8, peers: Vec<IpAddr>, hello_ms: u64) -> Self {
        Self {
            me,
            priority,
            peers,
            hello_ms,
            // Three hellos missed, and never before a dead router's filter
            // has surely stopped: its lease (renewed until it died, at most
            // one hello before its last hello arrived) runs out first, so
            // no packet a new owner holds was routed by the dead one.
            dead_after_ms: (3 * hello_ms + 50).max(hello_ms + LEASE_NS / 1_000_000 + 50),
            retransmit_ms: 50,
            max_tries: 40,
            hold_timeout_ms: 3000,
            review_pps: None,
            review_holddown_ms: 10_000,
            collect_interval_ms: None,
            collect_holddown_ms: 5_000,
            rate_tolerance: 0.2,
            backup_review_pps: BTreeMap::new(),
            boot: boot_now(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Tick {
        now: u64,
    },
    Received {
        now: u64,
        msg: Msg,
    },
    /// The VRRP instance became master (true) or stopped being it.
    Role {
        now: u64,
        master: bool,
    },
    /// Operator asked for a rebalance.
    Rebalance,
    /// This router is shutting down: its buckets go to the others through
    /// hand-offs (`routes_nothing` says when it may go).
    Leave {
        now: u64,
    },
    /// The fingerprints the edge read after stopping `epoch`'s buckets.
    FencesRead {
        now: u64,
        epoch: u64,
        fences: Vec<Fence>,
    },
    /// Packets per second routed in each bucket (256 values), measured by
    /// the filter's per-bucket counters (claim 7).
    Rates {
        now: u64,
        rates: Vec<u64>,
    },
    /// The edge applied a fence: buffered packets routed or dropped, the
    /// buckets routed from now on.
    FenceApplied {
        now: u64,
        epoch: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send {
        to: IpAddr,
        msg: Msg,
    },
    SetBucket {
        bucket: u8,
        state: u32,
    },
    /// Wait for packets in flight to leave the fast path, then read the
    /// last routed packet of each bucket and report `FencesRead`.
    ReadFences {
        epoch: u64,
        buckets: Vec<u8>,
    },
    /// Per bucket, drop the held packets up to the latest one matching any
    /// of its fences (count 0 alone: nothing to drop), route the rest, set
    /// the buckets mine, report `FenceApplied`.
    ApplyFence {
        epoch: u64,
        fences: Vec<Fence>,
    },
    /// Forget the held packets of these buckets (an aborted hand-off: the
    /// old owner routed them).
    DiscardHeld {
        buckets: Vec<u8>,
    },
}

#[derive(Clone, Debug, Default)]
struct Peer {
    /// Hellos sent before a hand-off ended may arrive after it: their
    /// `owned` is ignored until then.
    trust_after: u64,
    last_hello: u64,
    owned: BTreeSet<u8>,
    priority: u8,
    is_master: bool,
    /// It said it is shutting down: it gets no buckets, its are moved.
    leaving: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Holding,
    Releasing,
    Fencing,
}

#[derive(Clone, Debug)]
struct Handoff {
    epoch: u64,
    /// bucket → (old owner, new owner); no old owner for orphans.
    moves: BTreeMap<u8, (Option<IpAddr>, IpAddr)>,
    phase: Phase,
    pending: BTreeSet<IpAddr>,
    fences: Vec<Fence>,
    /// When the current phase began.
    since: u64,
}

struct Collection {
    id: u64,
    started: u64,
    pending: BTreeSet<IpAddr>,
    rates: Vec<u64>,
}

struct Outstanding {
    to: IpAddr,
    msg: Msg,
    sent: u64,
    tries: u32,
}

/// Per-router load-sharing state.
pub struct LoadShare {
    pub cfg: Config,
    pub master: bool,
    /// This router's bucket states, as written to the filter.
    pub mine: Vec<u32>,
    peers: BTreeMap<IpAddr, Peer>,
    seq: u64,
    epoch: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    incarnations: HashMap<IpAddr, Incarnation>,
    /// This router is shutting down (`Event::Leave`).
    leaving: bool,
    last_hello: u64,
    started: Option<u64>,
    handoff: Option<Handoff>,
    rebalance: bool,
    /// Since when each held bucket waits for its fence (backup side).
    held_since: BTreeMap<u8, u64>,
    /// Epochs this router is releasing / fencing for, and whom to answer.
    release_for: HashMap<u64, IpAddr>,
    fence_for: HashMap<u64, IpAddr>,
    /// Buckets whose fence is being applied by the edge.
    fenced: BTreeSet<u8>,
    /// Latest per-bucket rates of this router.
    my_rates: Vec<u64>,
    review_until: u64,
    collect_until: u64,
    last_collect: u64,
    collection: Option<Collection>,
    /// A rate-balanced assignment being carried out, for these routers.
    target: Option<(Vec<IpAddr>, Vec<IpAddr>)>,
    pub reviews_requested: u64,
    pub collections: u64,
    /// Collections after which no router exceeded its threshold (claim 9):
    /// nothing reallocated.
    pub reviews_within_thresholds: u64,
    pub rate_rebalances: u64,
    /// Hand-offs completed, aborted; messages dropped as duplicates.
    pub handoffs_done: u64,
    pub handoffs_aborted: u64,
    /// Messages refused: from an earlier incarnation of their sender
    /// (`stale`), behind the replay window or an older hello (`replayed`),
    /// a retransmission already handled (`duplicates`, acked again).
    pub stale: u64,
    pub replayed: u64,
    pub duplicates: u64,
    /// Peers seen to come back under a new incarnation.
    pub peer_restarts: u64,
}

impl LoadShare {
    /// A router starts owning nothing, also after a restart: while its
    /// daemon was down its filter's lease ran out and the master may have
    /// handed its buckets to others. The master gives it its share.
    pub fn new(cfg: Config) -> Self {
        let peers = cfg.peers.iter().map(|p| (*p, Peer::default())).collect();
        let mine = vec![BUCKET_NOT_MINE; BUCKETS as usize];
        Self {
            cfg,
            master: false,
            mine,
            peers,
            seq: 0,
            epoch: 0,
            outstanding: BTreeMap::new(),
            incarnations: HashMap::new(),
            leaving: false,
            last_hello: 0,
            started: None,
            handoff: None,
            rebalance: false,
            held_since: BTreeMap::new(),
            release_for: HashMap::new(),
            fence_for: HashMap::new(),
            fenced: BTreeSet::new(),
            my_rates: vec![0; BUCKETS as usize],
            review_until: 0,
            collect_until: 0,
            last_collect: 0,
            collection: None,
            target: None,
            reviews_requested: 0,
            collections: 0,
            reviews_within_thresholds: 0,
            rate_rebalances: 0,
            handoffs_done: 0,
            handoffs_aborted: 0,
            stale: 0,
            replayed: 0,
            duplicates: 0,
            peer_restarts: 0,
        }
    }

    /// Neither routing nor holding any bucket: a leaving router may go.
    pub fn routes_nothing(&self) -> bool {
        self.mine.iter().all(|s| *s == BUCKET_NOT_MINE) && self.handoff.is_none()
    }

    /// Bucket states to write at start (held buckets released).
    pub fn initial_actions(&self) -> Vec<Action> {
        self.mine
            .iter()
            .enumerate()
            .map(|(b, s)| Action::SetBucket {
                bucket: b as u8,
                state: *s,
            })
            .collect()
    }

    fn owned(&self) -> Vec<u8> {
        (0..BUCKETS as usize)
            .filter(|b| self.mine[*b] == BUCKET_MINE)
            .map(|b| b as u8)
            .collect()
    }

    fn send(&mut self, now: u64, to: IpAddr, body: Body, out: &mut Vec<Action>) {
        self.seq += 1;
        let msg = Msg {
            v: VERSION,
            from: self.cfg.me,
            boot: self.cfg.boot,
            seq: self.seq,
            body,
        };
        if msg.body.reliable() {
            self.outstanding.insert(
                self.seq,
                Outstanding {
                    to,
                    msg: msg.clone(),
                    sent: now,
                    tries: 1,
                },
            );
        }
        out.push(Action::Send { to, msg });
    }

    fn set(&mut self, bucket: u8, state: u32, out: &mut Vec<Action>) {
        self.mine[bucket as usize] = state;
        out.push(Action::SetBucket { bucket, state });
    }

    fn live(&self, now: u64) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.last_hello > 0 && now.saturating_sub(p.last_hello) <= self.cfg.dead_after_ms
            })
            .map(|(a, _)| *a)
            .collect();
        v.push(self.cfg.me);
        v.sort();
        v
    }

    /// The live routers that take buckets: not those leaving.
    fn members(&self, now: u64) -> Vec<IpAddr> {
        self.live(now)
            .into_iter()
            .filter(|a| {
                if *a == self.cfg.me {
                    !self.leaving
                } else {
                    !self.peers.get(a).map(|p| p.leaving).unwrap_or(false)
                }
            })
            .collect()
    }

    /// Who owns each bucket, as far as this router knows.
    fn owners(&self, now: u64) -> Vec<Option<IpAddr>> {
        let live = self.live(now);
        let mut o = vec![None; BUCKETS as usize];
        for (a, p) in &self.peers {
            if live.contains(a) {
                for b in &p.owned {
                    o[*b as usize] = Some(*a);
                }
            }
        }
        for (o, mine) in o.iter_mut().zip(&self.mine) {
            if *mine == BUCKET_MINE {
                *o = Some(self.cfg.me);
            }
        }
        o
    }

    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Tick { now } => self.tick(now, &mut out),
            Event::Role { now, master } => {
                self.master = master;
                self.started.get_or_insert(now);
                if !master {
                    // A hand-off this router coordinated is abandoned; the
                    // next master sorts the buckets out.
                    self.handoff = None;
                }
            }
            Event::Rebalance => self.rebalance = true,
            Event::Leave { now } => {
                // Tell everyone at once (the next tick's hellos say it),
                // and ask for no reviews meanwhile.
                self.leaving = true;
                self.last_hello = 0;
                self.tick(now, &mut out);
            }
            Event::Rates { now, rates } => self.rates(now, rates, &mut out),
            Event::Received { now, msg } => self.received(now, msg, &mut out),
            Event::FencesRead { now, epoch, fences } => {
                if self.master
                    && self
                        .handoff
                        .as_ref()
                        .map(|h| h.epoch == epoch && h.phase == Phase::Releasing)
                        .unwrap_or(false)
                {
                    self.got_fences(now, epoch, self.cfg.me, fences, &mut out);
                } else if let Some(to) = self.release_for.remove(&epoch) {
                    self.send(now, to, Body::Released { epoch, fences }, &mut out);
                }
            }
            Event::FenceApplied { now, epoch } => {
                // The edge has set these buckets mine in the filter.
                for b in std::mem::take(&mut self.fenced) {
                    self.mine[b as usize] = BUCKET_MINE;
                    self.held_since.remove(&b);
                }
                if self.master
                    && self
                        .handoff
                        .as_ref()
                        .map(|h| h.epoch == epoch)
                        .unwrap_or(false)
                {
                    self.fence_done(now, epoch, self.cfg.me);
                } else if let Some(to) = self.fence_for.remove(&epoch) {
                    self.send(now, to, Body::FenceDone { epoch }, &mut out);
                }
            }
        }
        out
    }
}

impl LoadShare {
    fn tick(&mut self, now: u64, out: &mut Vec<Action>) {
        self.started.get_or_insert(now);
        // Hellos: presence and owned buckets, to every peer.
        if now.saturating_sub(self.last_hello) >= self.cfg.hello_ms {
            self.last_hello = now;
            let owned = self.owned();
            for p in self.cfg.peers.clone() {
                let body = Body::Hello {
                    priority: self.cfg.priority,
                    master: self.master,
                    owned: owned.clone(),
                    leaving: self.leaving,
                };
                self.send(now, p, body, out);
            }
        }
        // Retransmit what is not acked; give up after max_tries.
        let mut gave_up = Vec::new();
        for (seq, o) in self.outstanding.iter_mut() {
            if now.saturating_sub(o.sent) >= self.cfg.retransmit_ms {
                if o.tries >= self.cfg.max_tries {
                    gave_up.push(*seq);
                } else {
                    o.tries += 1;
                    o.sent = now;
                    out.push(Action::Send {
                        to: o.to,
                        msg: o.msg.clone(),
                    });
                }
            }
        }
        let live = self.live(now);
        for seq in gave_up {
            let Some(o) = self.outstanding.remove(&seq) else {
                continue;
            };
            // A live router that never answered: the hand-off cannot
            // finish. (A dead one is skipped by the Releasing timeout.)
            let current = self
                .handoff
                .as_ref()
                .map(|h| h.pending.contains(&o.to))
                .unwrap_or(false);
            if self.master && current && live.contains(&o.to) {
                self.abort(now, out);
            }
        }
        // A bucket held too long without its fence: the hand-off died with
        // its master; let it go (the old owner kept routing, or the next
        // master claims it).
        let stale: Vec<u8> = self
            .held_since
            .iter()
            .filter(|(_, t)| now.saturating_sub(**t) > self.cfg.hold_timeout_ms)
            .map(|(b, _)| *b)
            .collect();
        if !stale.is_empty() {
            for b in &stale {
                self.held_since.remove(b);
                self.fenced.remove(b);
                self.set(*b, BUCKET_NOT_MINE, out);
            }
            out.push(Action::DiscardHeld { buckets: stale });
        }
        // A router that does not answer a Release and has sent no hello
        // for a while is gone: go on without its report.
        let live_now = self.live(now);
        if let Some(h) = self.handoff.as_mut() {
            if h.phase == Phase::Releasing
                && now.saturating_sub(h.since) > 2 * self.cfg.dead_after_ms
                && h.pending.iter().all(|p| !live_now.contains(p))
            {
                h.pending.clear();
                self.fence(now, out);
            }
        }
        if !self.master || self.handoff.is_some() {
            return;
        }
        // Wait until the peers' hellos are in before deciding anything.
        if now.saturating_sub(self.started.unwrap_or(now)) < self.cfg.dead_after_ms {
            return;
        }
        // Rates: collect on the period (claim 9) or an operator's request;
        // a collection that waits too long for a report finishes without it.
        if std::mem::take(&mut self.rebalance) {
            for p in self.peers.values_mut() {
                p.trust_after = 0;
            }
            self.collect_until = 0;
            self.collect(now, out);
        }
        if let Some(iv) = self.cfg.collect_interval_ms {
            if now.saturating_sub(self.last_collect) >= iv {
                self.collect(now, out);
            }
        }
        if self
            .collection
            .as_ref()
            .map(|c| now.saturating_sub(c.started) > 10 * self.cfg.retransmit_ms)
            .unwrap_or(false)
        {
            self.finish_collection(now);
        }
        let live = self.members(now);
        let owners = self.owners(now);
        // A rate-balanced assignment (claim 11) is carried out while the
        // routers stay the same; a change of routers drops it.
        if let Some((routers, target)) = self.target.clone() {
            if routers == live {
                let moves: BTreeMap<u8, (Option<IpAddr>, IpAddr)> = (0..BUCKETS as usize)
                    .filter(|b| owners[*b] != Some(target[*b]))
                    .map(|b| (b as u8, (owners[b], target[b])))
                    .collect();
                if moves.is_empty() {
                    self.target = None;
                } else {
                    self.start(now, moves, out);
                }
                return;
            }
            self.target = None;
        }
        // Otherwise buckets are spread by count, when a bucket has no owner
        // or a router has none (a join); counts left uneven by a rate
        // review stay as they are.
        let idle_router = live.iter().any(|r| !owners.iter().any(|o| o == &Some(*r)));
        let outside = owners
            .iter()
            .any(|o| o.map(|r| !live.contains(&r)).unwrap_or(true));
        if outside || idle_router {
            let moves = plan(&owners, &live);
            if !moves.is_empty() {
                self.start(now, moves, out);
            }
        }
    }

    fn received(&mut self, now: u64, msg: Msg, out: &mut Vec<Action>) {
        let from = msg.from;
        if from == self.cfg.me || !self.peers.contains_key(&from) {
            return;
        }
        if !self.admit(now, &msg, out) {
            return;
        }
        if let Body::Ack { seq } = msg.body {
            self.outstanding.remove(&seq);
            return;
        }
        match msg.body {
            Body::Hello {
                priority,
                owned,
                master,
                leaving,
            } => {
                let p = self.peers.entry(from).or_default();
                p.last_hello = now.max(1);
                p.priority = priority;
                p.is_master = master;
                p.leaving = leaving;
                if now >= p.trust_after {
                    p.owned = owned.into_iter().collect();
                }
            }
            Body::Hold { epoch, buckets } => {
                for b in buckets {
                    if self.mine[b as usize] != BUCKET_MINE {
                        self.held_since.insert(b, now);
                        self.set(b, BUCKET_HOLD, out);
                    }
                }
                self.send(now, from, Body::HoldAck { epoch }, out);
            }
            Body::HoldAck { epoch } => self.hold_acked(now, epoch, from, out),
            Body::Release { epoch, buckets } => {
                for b in &buckets {
                    self.set(*b, BUCKET_NOT_MINE, out);
                }
                self.release_for.insert(epoch, from);
                out.push(Action::ReadFences { epoch, buckets });
            }
            Body::Released { epoch, fences } => self.got_fences(now, epoch, from, fences, out),
            Body::Fence { epoch, fences } => {
                self.fenced.extend(fences.iter().map(|f| f.bucket));
                self.fence_for.insert(epoch, from);
                out.push(Action::ApplyFence { epoch, fences });
            }
            Body::FenceDone { epoch } => self.fence_done(now, epoch, from),
            Body::Abort { buckets, .. } => {
                for b in &buckets {
                    if self.mine[*b as usize] == BUCKET_HOLD {
                        self.held_since.remove(b);
                        self.fenced.remove(b);
                        self.set(*b, BUCKET_NOT_MINE, out);
                    }
                }
                out.push(Action::DiscardHeld { buckets });
            }
            Body::Ack { .. } => {}
            Body::ReviewRequest { .. } => {
                // Claim 10: a backup's request starts a collection, unless
                // one ran too recently (claim 13).
                if self.master {
                    self.collect(now, out);
                }
            }
            Body::RateRequest { id } => {
                let rates: Vec<(u8, u64)> = (0..BUCKETS as usize)
                    .filter(|b| self.mine[*b] == BUCKET_MINE)
                    .map(|b| (b as u8, self.my_rates[b]))
                    .collect();
                self.send(now, from, Body::RateReport { id, rates }, out);
            }
            Body::RateReport { id, rates } => {
                if let Some(c) = self.collection.as_mut() {
                    if c.id == id && c.pending.remove(&from) {
                        for (b, r) in rates {
                            c.rates[b as usize] = r;
                        }
                        if c.pending.is_empty() {
                            self.finish_collection(now);
                        }
                    }
                }
            }
        }
    }

    /// (bucket, owner) for `edgeplane vrrp status`.
    pub fn owner_map(&self, now: u64) -> Vec<Option<IpAddr>> {
        self.owners(now)
    }
}

#[cfg(test)]
mod tests;
