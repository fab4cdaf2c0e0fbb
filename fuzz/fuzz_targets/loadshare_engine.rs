//! The load-sharing engines under fuzzed messages and events (a scenario
//! target: each input is a whole exchange, about 100 a second; the
//! decoder alone is `loadshare_msg`). A body the harness tags itself (so
//! the fuzzer reaches the JSON) is decoded with the same properties
//! `loadshare_msg` checks, and every decoded message goes to one of two
//! routers (`LoadShare`, A the
//! master, B a backup, peers of each other and of a router C that only the
//! fuzzer speaks for) which talk to each other over a loss-free network and
//! edges that answer ReadFences/ApplyFence at once. Whatever arrives, the
//! engines never panic; a router's `mine` stays 256 bucket states, each
//! one of BUCKET_NOT_MINE/MINE/HOLD and equal to what its SetBucket
//! actions wrote (an applied fence only turns buckets MINE); everything it
//! sends is of this version, from itself, of its incarnation, to a peer,
//! and decodes again.
//!
//! Input: lines (`\n`). A line's first octet: the low 4 bits advance the
//! clock by that many 25 ms (and tick both routers); the high 4 bits: 0-5
//! the rest of the line is a message's JSON, tagged and delivered to A
//! (even) or B (odd); 6 tick; 7/8 A/B changes role; 9 rebalance at A;
//! 10 B leaves; 11/12 the rest are A's/B's per-bucket rates; 13 the network
//! loses what is in flight; 14 the rest is decoded as it is (no tag added);
//! 15 B restarts (a new incarnation, owning nothing).
//! (`cargo xtask fuzz loadshare_engine`)
#![no_main]

use std::collections::VecDeque;
use std::net::IpAddr;

use control::router::loadshare::{Action, Config, Event, Fence, LoadShare, Msg, MsgError, VERSION};
use dataplane_common::router::{Fingerprint, BUCKETS, BUCKET_HOLD, BUCKET_MINE, BUCKET_NOT_MINE};
use libfuzzer_sys::fuzz_target;

#[path = "loadshare_common.rs"]
mod common;
use common::{addr, tag, KEY};

/// A router and the bucket states its edge wrote to the filter.
struct Node {
    ls: LoadShare,
    filter: Vec<u32>,
}

impl Node {
    fn new(me: IpAddr, priority: u8, peers: Vec<IpAddr>, boot: u64) -> Self {
        let mut cfg = Config::new(me, priority, peers, 100);
        cfg.boot = boot; // deterministic, not the clock
        cfg.review_pps = Some(1000);
        cfg.collect_interval_ms = Some(1000);
        cfg.collect_holddown_ms = 500;
        let ls = LoadShare::new(cfg);
        let mut filter = vec![u32::MAX; BUCKETS as usize];
        for a in ls.initial_actions() {
            match a {
                Action::SetBucket { bucket, state } => filter[bucket as usize] = state,
                other => panic!("an initial action that is not SetBucket: {other:?}"),
            }
        }
        assert_eq!(filter, ls.mine, "the initial actions write every bucket");
        Self { ls, filter }
    }
}

struct Net {
    nodes: [Node; 2],
    /// In flight: to whom, the bytes, the message they were encoded from.
    wire: VecDeque<(IpAddr, Vec<u8>, Msg)>,
    now: u64,
}

impl Net {
    fn index(&self, a: IpAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.ls.cfg.me == a)
    }

    /// Handle `ev` at node `i`, carry out its actions (the edge answers
    /// fences at once), and check the invariants after each step.
    fn handle(&mut self, i: usize, ev: Event) {
        let mut queue = VecDeque::from([ev]);
        let mut steps = 0;
        while let Some(ev) = queue.pop_front() {
            steps += 1;
            assert!(steps < 1000, "an edge answer loop");
            let fence_applied = matches!(ev, Event::FenceApplied { .. });
            let acts = self.nodes[i].ls.handle(ev);
            let now = self.now;
            let n = &mut self.nodes[i];
            for a in acts {
                match a {
                    Action::Send { to, msg } => {
                        let cfg = &n.ls.cfg;
                        assert_eq!(msg.v, VERSION);
                        assert_eq!(msg.from, cfg.me);
                        assert_eq!(msg.boot, cfg.boot);
                        assert!(to != cfg.me && cfg.peers.contains(&to), "sent to {to}");
                        let bytes = msg.encode(KEY);
                        self.wire.push_back((to, bytes, msg));
                    }
                    Action::SetBucket { bucket, state } => {
                        assert!(
                            matches!(state, BUCKET_NOT_MINE | BUCKET_MINE | BUCKET_HOLD),
                            "{state}"
                        );
                        n.filter[bucket as usize] = state;
                    }
                    Action::ReadFences { epoch, buckets } => queue.push_back(Event::FencesRead {
                        now,
                        epoch,
                        fences: buckets
                            .iter()
                            .map(|b| Fence {
                                bucket: *b,
                                last: Fingerprint {
                                    count: u64::from(*b % 3),
                                    ip_id: u16::from(*b),
                                    ..Default::default()
                                },
                            })
                            .collect(),
                    }),
                    // The edge routes the held frames and sets the buckets
                    // mine in the filter; the engine takes them as mine
                    // when told (FenceApplied), and the filter is compared
                    // with it from then on.
                    Action::ApplyFence { epoch, .. } => {
                        queue.push_back(Event::FenceApplied { now, epoch });
                    }
                    Action::DiscardHeld { .. } => {}
                }
            }
            let mine = &n.ls.mine;
            assert_eq!(mine.len(), BUCKETS as usize);
            for (b, s) in mine.iter().enumerate() {
                assert!(
                    matches!(*s, BUCKET_NOT_MINE | BUCKET_MINE | BUCKET_HOLD),
                    "bucket {b}: {s}"
                );
                if n.filter[b] != *s {
                    // The edge applied a fence: the buckets it set mine, and
                    // any other fenced ones the engine takes as mine with
                    // them, are MINE.
                    assert!(
                        fence_applied && *s == BUCKET_MINE,
                        "bucket {b}: filter {} engine {s}",
                        n.filter[b]
                    );
                }
            }
            if fence_applied {
                n.filter = mine.clone();
            }
        }
    }

    fn tick(&mut self) {
        for i in 0..2 {
            self.handle(i, Event::Tick { now: self.now });
        }
    }

    /// Deliver what is in flight (a bounded number of messages).
    fn pump(&mut self) {
        for _ in 0..256 {
            let Some((to, bytes, sent)) = self.wire.pop_front() else {
                return;
            };
            // What is sent decodes to itself (also for C, who hears
            // nothing).
            let msg = Msg::decode(&bytes, KEY).expect("sent bytes decode");
            assert_eq!(msg, sent, "what is sent decodes to itself");
            let Some(i) = self.index(to) else { continue };
            self.handle(i, Event::Received { now: self.now, msg });
        }
    }
}

/// The decoder's properties on a body the harness tags; the message, if
/// one.
fn decode_tagged(body: &[u8]) -> Option<Msg> {
    let mut bytes = body.to_vec();
    bytes.extend_from_slice(&tag(KEY, body));
    let r = Msg::decode(&bytes, KEY);
    if body.is_empty() {
        assert_eq!(r, Err(MsgError::Short));
    }
    // A wrong tag or key is refused whatever the body.
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    if !body.is_empty() {
        assert_eq!(Msg::decode(&flipped, KEY), Err(MsgError::BadMac));
        assert_eq!(Msg::decode(&bytes, b"another key"), Err(MsgError::BadMac));
    }
    match r {
        Ok(m) => {
            assert_eq!(m.v, VERSION);
            assert_eq!(
                Msg::decode(&m.encode(KEY), KEY).as_ref(),
                Ok(&m),
                "re-encoded decodes to itself"
            );
            Some(m)
        }
        Err(e) => {
            assert_ne!(e, MsgError::BadMac, "tagged with the key");
            // Consistent with the JSON alone.
            if let Ok(m) = serde_json::from_slice::<Msg>(body) {
                assert_eq!(e, MsgError::Version(m.v));
            }
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The bytes as they arrive: no valid tag, so nothing decodes (short of
    // forging HMAC-SHA256); never a panic.
    if let Ok(m) = Msg::decode(data, KEY) {
        assert_eq!(Msg::decode(&m.encode(KEY), KEY), Ok(m));
    }
    let (a, b, c) = (addr(1), addr(2), addr(3));
    let mut net = Net {
        nodes: [
            Node::new(a, 200, vec![b, c], 1_000),
            Node::new(b, 100, vec![a, c], 2_000),
        ],
        wire: VecDeque::new(),
        now: 1,
    };
    net.handle(
        0,
        Event::Role {
            now: 1,
            master: true,
        },
    );
    net.handle(
        1,
        Event::Role {
            now: 1,
            master: false,
        },
    );
    for line in data.split(|x| *x == b'\n').take(128) {
        let Some((&op, rest)) = line.split_first() else {
            continue;
        };
        let dt = u64::from(op & 0x0f) * 25;
        if dt > 0 {
            net.now += dt;
            net.tick();
        }
        match op >> 4 {
            k @ 0..=5 => {
                if let Some(msg) = decode_tagged(rest) {
                    net.handle(usize::from(k & 1), Event::Received { now: net.now, msg });
                }
            }
            6 => net.tick(),
            k @ (7 | 8) => {
                let i = usize::from(k - 7);
                let master = !net.nodes[i].ls.master;
                net.handle(
                    i,
                    Event::Role {
                        now: net.now,
                        master,
                    },
                );
            }
            9 => net.handle(0, Event::Rebalance),
            10 => net.handle(1, Event::Leave { now: net.now }),
            k @ (11 | 12) => {
                let rates = rest.iter().map(|r| u64::from(*r) * 37).collect();
                net.handle(
                    usize::from(k - 11),
                    Event::Rates {
                        now: net.now,
                        rates,
                    },
                );
            }
            13 => {
                for (_, bytes, sent) in net.wire.drain(..) {
                    assert_eq!(
                        Msg::decode(&bytes, KEY),
                        Ok(sent),
                        "what is sent decodes to itself"
                    );
                }
            }
            14 => {
                let _ = Msg::decode(rest, KEY);
            }
            _ => {
                let old = &net.nodes[1].ls.cfg;
                let (me, boot) = (old.me, old.boot + 1);
                net.nodes[1] = Node::new(me, 100, vec![a, c], boot);
                net.handle(
                    1,
                    Event::Role {
                        now: net.now,
                        master: false,
                    },
                );
            }
        }
        net.pump();
    }
    for n in &net.nodes {
        let init = n.ls.initial_actions();
        assert_eq!(init.len(), BUCKETS as usize);
        if n.ls.routes_nothing() {
            assert!(n.ls.mine.iter().all(|s| *s == BUCKET_NOT_MINE));
        }
    }
});
