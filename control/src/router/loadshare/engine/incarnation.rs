//! Restarts and replays: what a router knows of each peer's current
//! incarnation, and whether a message is new from it.

use super::*;

/// What this router knows of a peer's current incarnation: its `boot`,
/// the newest sequence number, the reliable ones seen within the replay
/// window, and the newest hello's.
#[derive(Clone, Debug, Default)]
pub(super) struct Incarnation {
    pub(super) boot: u64,
    top: u64,
    seen: BTreeSet<u64>,
    hello: u64,
}

impl LoadShare {
    /// Whether `msg` is new from its sender's current incarnation; a
    /// reliable one is acked (again, when a retransmission). A greater
    /// `boot` is the peer restarted: it starts over with nothing (its
    /// filter's lease ran out), so what this router knew of it goes, and a
    /// hand-off it was part of is aborted.
    pub(super) fn admit(&mut self, now: u64, msg: &Msg, out: &mut Vec<Action>) -> bool {
        let from = msg.from;
        let inc = self.incarnations.entry(from).or_default();
        if msg.boot < inc.boot {
            self.stale += 1;
            return false;
        }
        if msg.boot > inc.boot {
            let restarted = inc.boot != 0;
            *inc = Incarnation {
                boot: msg.boot,
                ..Default::default()
            };
            if restarted {
                self.peer_restarts += 1;
                if let Some(p) = self.peers.get_mut(&from) {
                    *p = Peer::default();
                }
                let involved = self
                    .handoff
                    .as_ref()
                    .map(|h| {
                        h.pending.contains(&from) || h.moves.values().any(|(_, to)| *to == from)
                    })
                    .unwrap_or(false);
                if self.master && involved {
                    self.abort(now, out);
                }
            }
        }
        let inc = self.incarnations.get_mut(&from).expect("inserted above");
        if !msg.body.reliable() {
            if matches!(msg.body, Body::Ack { .. }) {
                return true;
            }
            // A hello older than the newest one says stale things.
            if msg.seq <= inc.hello {
                self.replayed += 1;
                return false;
            }
            inc.hello = msg.seq;
            return true;
        }
        if msg.seq.saturating_add(REPLAY_WINDOW) <= inc.top {
            self.replayed += 1;
            return false;
        }
        let fresh = inc.seen.insert(msg.seq);
        inc.top = inc.top.max(msg.seq);
        let floor = inc.top.saturating_sub(REPLAY_WINDOW);
        while inc.seen.first().map(|s| *s <= floor).unwrap_or(false) {
            inc.seen.pop_first();
        }
        self.send(now, from, Body::Ack { seq: msg.seq }, out);
        if !fresh {
            self.duplicates += 1; // a retransmission of something handled
        }
        fresh
    }
}
