//! Answers to recent requests, for their retransmissions (TS 29.244 §6.4):
//! the same request again gets the same response, and is not redone.

use std::net::SocketAddr;

use super::{procedure_of, Engine, Handled, Outcome, Procedure};
use crate::gateway::pfcp::wire::Header;

/// A request as a retransmission repeats it: who, which type, which seq,
/// and a hash of the whole datagram (a retransmission is the same bytes; a
/// restarted CP reusing a sequence number sends others).
pub(super) type AnswerKey = (SocketAddr, u8, u32, u64);

fn datagram_hash(d: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.hash(&mut h);
    h.finish()
}

/// Responses kept for retransmissions (a CP retransmits within seconds:
/// N1 x T1, 3 x 3 s by default, far fewer than this many requests).
const ANSWERED_MAX: usize = 8192;

/// The key of a request we may answer again (not of a response to us),
/// with its procedure.
pub(super) fn answer_key(peer: SocketAddr, datagram: &[u8]) -> Option<(AnswerKey, Procedure)> {
    let (h, _) = Header::decode(datagram).ok()?;
    let p = procedure_of(h.msg_type).filter(|p| *p != Procedure::Report)?;
    Some(((peer, h.msg_type, h.seq, datagram_hash(datagram)), p))
}

impl Engine {
    /// The stored answer if `k` was answered already.
    pub(super) fn answered_before(&self, k: &AnswerKey, p: Procedure) -> Option<Handled> {
        self.answered.get(k).map(|reply| Handled {
            reply: Some(reply.clone()),
            outcome: Outcome::Retransmission(p),
        })
    }

    /// Keep `reply` as the answer to `k`, forgetting the oldest beyond
    /// [`ANSWERED_MAX`].
    pub(super) fn remember(&mut self, k: AnswerKey, reply: &[u8]) {
        if self.answered_order.len() >= ANSWERED_MAX {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
        self.answered.insert(k, reply.to_vec());
        self.answered_order.push_back(k);
    }
}
