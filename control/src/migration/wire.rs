//! The frames every part of a migration speaks, and the answers kept by
//! request ID so that a retried request is answered, not carried out
//! again.
//!
//! A frame is its length (4 bytes, big-endian), its JSON, and an
//! HMAC-SHA256 tag over both with the key every part shares
//! (`migration.key`). A request is void after its deadline, and one whose
//! deadline is further ahead than `MAX_AHEAD_MS` is refused, so a captured
//! request can be replayed only within its deadline, when its ID's first
//! answer is what it gets (`Replies`): a replay changes nothing.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// 2: frames carry an HMAC-SHA256 tag.
pub const VERSION: u8 = 2;
/// Largest frame accepted (a checkpoint travels in chunks below this).
pub const MAX_FRAME: usize = 4 << 20;
/// The tag's length.
pub const TAG_LEN: usize = 32;
/// A request's deadline may be at most this far ahead (the longest
/// coordinator timeout, 600 s, and a minute of clock difference).
pub const MAX_AHEAD_MS: u64 = 660_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    pub name: String,
    pub address: IpAddr,
    pub network: String,
    /// The agent's endpoint, "ADDR:PORT".
    pub agent: std::net::SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    pub name: String,
    /// Network number the steering map uses.
    pub id: u32,
    /// The connection controller in front of this network, "ADDR:PORT"
    /// (default: the coordinator's `controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<std::net::SocketAddr>,
    /// How the controller reaches this network: its interface there and
    /// the next hop's MAC. A switch request carries them, so a controller
    /// can steer to a network it was not configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mac: Option<crate::field::MacAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    /// Coordinator → agent on server 1 (claim 1): pause, checkpoint,
    /// transfer to server 2, restore there, move the service address.
    MigrationStart {
        process: String,
        to: ServerInfo,
        service: IpAddr,
    },
    /// Agent → coordinator (claim 3).
    MigrationComplete {
        process: String,
    },
    /// Coordinator → connection controller (claim 4): steer the
    /// terminal's traffic to network 2, releasing held packets there.
    SwitchRequest {
        service: IpAddr,
        to: NetworkInfo,
    },
    /// `switch_us`: request received to steering map updated; `released`:
    /// held packets sent on to the new network; `pause_us`: first held
    /// packet arrived to first packet sent on the new network (0 when
    /// nothing was held).
    SwitchDone {
        service: IpAddr,
        #[serde(default)]
        switch_us: u64,
        #[serde(default)]
        released: u32,
        #[serde(default)]
        pause_us: u64,
    },
    /// Coordinator → controller, before the process pauses: hold the
    /// service's packets (released by the next SwitchRequest).
    Hold {
        service: IpAddr,
    },
    /// Agent on server 1 → agent on server 2: the checkpoint, restored
    /// there (paused), and the service address moved there (claim 5).
    /// `state` is the whole checkpoint, or empty when it came before in
    /// `CheckpointChunk`s of this `transfer` (`total` bytes).
    ImportState {
        process: String,
        state: String,
        service: IpAddr,
        #[serde(default)]
        transfer: Option<u64>,
        #[serde(default)]
        total: u64,
    },
    /// Agent on server 1 → agent on server 2: the checkpoint streamed in
    /// pieces of at most `CHUNK` bytes, at `offset` in the whole.
    CheckpointChunk {
        process: String,
        transfer: u64,
        offset: u64,
        data: String,
    },
    /// Coordinator → agent: resume the restored process (claim 4).
    Resume {
        process: String,
    },
    /// Coordinator → agent or controller: undo (rollback) — resume on
    /// server 1; steer back to network 1.
    Abort {
        process: String,
        reason: String,
        /// To server 2: drop the imported copy (stay paused) instead of
        /// resuming.
        #[serde(default)]
        destination: bool,
    },
    /// Server 1's agent (or any client) → coordinator: move `process` to
    /// server `to` (claim 1's migration request).
    MigrateRequest {
        process: String,
        to: String,
    },
    /// Coordinator → requester: how the migration ended.
    MigrateResult {
        process: String,
        step: Step,
        #[serde(default)]
        failure: Option<String>,
        #[serde(default)]
        log: Vec<String>,
    },
    Ok,
    Error {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub v: u8,
    pub id: u64,
    /// Unix milliseconds after which the request is void.
    pub deadline_ms: u64,
    pub body: Body,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("frame not authenticated (no valid HMAC tag: another key, or forged)")]
    BadTag,
}

fn tag(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m
}

impl Frame {
    /// Length, JSON, and the tag over both with `key`.
    pub fn encode(&self, key: &[u8]) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("serializable");
        let mut out = ((json.len() + TAG_LEN) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&json);
        let t = tag(key, &out).finalize().into_bytes();
        out.extend_from_slice(&t);
        out
    }

    /// Take one frame from the front of `buf`: `Ok(None)` when more bytes
    /// are needed; on success the frame's bytes are consumed. The tag is
    /// checked before the JSON is read. After an error the stream cannot
    /// be trusted to be in step: the caller closes it.
    pub fn take(buf: &mut Vec<u8>, key: &[u8]) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if len < TAG_LEN {
            return Err(FrameError::BadTag);
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let (signed, t) = buf[..4 + len].split_at(4 + len - TAG_LEN);
        tag(key, signed)
            .verify_slice(t)
            .map_err(|_| FrameError::BadTag)?;
        let f: Frame = serde_json::from_slice(&signed[4..])
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
        buf.drain(..4 + len);
        if f.v != VERSION {
            return Err(FrameError::Version(f.v));
        }
        Ok(Some(f))
    }
}

/// Whether a request with this deadline may be carried out at `now_ms`:
/// not after it, and not one set implausibly far ahead (which would keep
/// a captured copy replayable).
pub fn fresh(deadline_ms: u64, now_ms: u64) -> Result<(), &'static str> {
    if deadline_ms < now_ms {
        Err("deadline passed before handling")
    } else if deadline_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        Err("deadline too far ahead")
    } else {
        Ok(())
    }
}

/// Answers by request ID, kept until the request's deadline, so a retried
/// (or replayed) request gets the first answer instead of being carried
/// out twice; after its deadline it is refused as void.
#[derive(Default)]
pub struct Replies {
    answers: HashMap<u64, (u64, Body)>,
    /// (deadline, id), soonest first.
    by_deadline: BTreeSet<(u64, u64)>,
    /// IDs being carried out now.
    running: std::collections::HashSet<u64>,
}

impl Replies {
    /// Answers kept at most; when this many requests are within their
    /// deadlines, a new one is refused (`room`).
    pub const KEEP: usize = 65_536;

    pub fn get(&self, id: u64) -> Option<&Body> {
        self.answers.get(&id).map(|(_, b)| b)
    }

    /// Forget answers whose deadline passed; whether a new request fits.
    pub fn room(&mut self, now_ms: u64) -> bool {
        while let Some(&(d, id)) = self.by_deadline.first() {
            if d >= now_ms {
                break;
            }
            self.by_deadline.pop_first();
            self.answers.remove(&id);
        }
        self.answers.len() < Self::KEEP
    }

    /// Mark `id` as being carried out; false when it already is (a copy
    /// arriving meanwhile must not run it twice).
    pub fn begin(&mut self, id: u64) -> bool {
        self.running.insert(id)
    }

    /// Record the answer to `id` until `deadline_ms`; a later answer to
    /// the same ID is ignored (the first one stands).
    pub fn put(&mut self, id: u64, deadline_ms: u64, answer: Body) {
        self.running.remove(&id);
        if let std::collections::hash_map::Entry::Vacant(e) = self.answers.entry(id) {
            e.insert((deadline_ms, answer));
            self.by_deadline.insert((deadline_ms, id));
        }
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// The coordinator's steps (claims 1, 3, 4, 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Starting,
    Switching,
    Resuming,
    Done,
    RollingBack,
    RolledBack,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"migration test key";

    fn switch() -> Frame {
        Frame {
            v: VERSION,
            id: 7,
            deadline_ms: 99,
            body: Body::SwitchRequest {
                service: IpAddr::from([192, 0, 2, 80]),
                to: NetworkInfo {
                    name: "n2".into(),
                    id: 2,
                    controller: None,
                    via: None,
                    next_hop_mac: None,
                },
            },
        }
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let f = switch();
        let mut buf = f.encode(KEY);
        buf.extend(
            Frame {
                id: 8,
                body: Body::Ok,
                ..f.clone()
            }
            .encode(KEY),
        );
        let half = buf.len() - 3;
        let mut partial = buf[..half].to_vec();
        assert_eq!(Frame::take(&mut partial, KEY).unwrap(), Some(f.clone()));
        assert_eq!(
            Frame::take(&mut partial, KEY).unwrap(),
            None,
            "the second is incomplete"
        );
        assert_eq!(Frame::take(&mut buf, KEY).unwrap().unwrap().id, 7);
        assert_eq!(Frame::take(&mut buf, KEY).unwrap().unwrap().body, Body::Ok);
        assert!(buf.is_empty());
        let mut big = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        assert_eq!(
            Frame::take(&mut big, KEY),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
        // Well-formed JSON under a valid tag, but not a frame.
        let mut junk = ((5 + TAG_LEN) as u32).to_be_bytes().to_vec();
        junk.extend_from_slice(b"{oops");
        let t = tag(KEY, &junk).finalize().into_bytes();
        junk.extend_from_slice(&t);
        assert!(matches!(
            Frame::take(&mut junk, KEY),
            Err(FrameError::Malformed(_))
        ));
        let mut v1 = Frame { v: 1, ..f }.encode(KEY);
        assert_eq!(Frame::take(&mut v1, KEY), Err(FrameError::Version(1)));
    }

    /// A frame under another key, with one bit changed, without its tag,
    /// or forged by re-framing altered JSON, is refused before its JSON is
    /// read, and nothing is consumed.
    #[test]
    fn frames_without_a_valid_tag_are_refused() {
        let good = switch().encode(KEY);
        let mut other = switch().encode(b"another key");
        assert_eq!(Frame::take(&mut other, KEY), Err(FrameError::BadTag));
        for i in [0usize, 4, 20, good.len() - 1] {
            let mut flipped = good.clone();
            flipped[i] ^= 1;
            let r = Frame::take(&mut flipped, KEY);
            assert!(
                matches!(
                    r,
                    Err(FrameError::BadTag) | Ok(None) | Err(FrameError::TooLarge(_))
                ),
                "byte {i}: {r:?}"
            );
            assert_eq!(flipped.len(), good.len(), "nothing consumed");
        }
        // The old, untagged framing: length and JSON alone.
        let json = serde_json::to_vec(&switch()).unwrap();
        let mut untagged = (json.len() as u32).to_be_bytes().to_vec();
        untagged.extend_from_slice(&json);
        assert_eq!(Frame::take(&mut untagged, KEY), Err(FrameError::BadTag));
        // Altered JSON re-framed with the original tag.
        let forged_json = String::from_utf8(json.clone()).unwrap().replace("n2", "n9");
        let mut forged = ((forged_json.len() + TAG_LEN) as u32)
            .to_be_bytes()
            .to_vec();
        forged.extend_from_slice(forged_json.as_bytes());
        forged.extend_from_slice(&good[good.len() - TAG_LEN..]);
        assert_eq!(Frame::take(&mut forged, KEY), Err(FrameError::BadTag));
        let mut short = 4u32.to_be_bytes().to_vec();
        short.extend_from_slice(b"abcd");
        assert_eq!(Frame::take(&mut short, KEY), Err(FrameError::BadTag));
    }

    #[test]
    fn a_deadline_bounds_when_a_request_counts() {
        assert!(fresh(1000, 1000).is_ok());
        assert!(fresh(999, 1000).is_err(), "void after its deadline");
        assert!(fresh(1000 + MAX_AHEAD_MS, 1000).is_ok());
        assert!(fresh(1001 + MAX_AHEAD_MS, 1000).is_err(), "too far ahead");
    }

    #[test]
    fn retries_get_the_first_answer_until_the_deadline() {
        let mut r = Replies::default();
        r.put(
            5,
            100,
            Body::MigrationComplete {
                process: "p".into(),
            },
        );
        r.put(
            5,
            100,
            Body::Error {
                reason: "second attempt".into(),
            },
        );
        assert_eq!(
            r.get(5),
            Some(&Body::MigrationComplete {
                process: "p".into()
            })
        );
        for i in 0..2000 {
            r.put(1000 + i, 200, Body::Ok);
        }
        assert!(r.room(100));
        assert!(r.get(5).is_some(), "kept while its deadline lasts");
        assert!(r.room(101));
        assert!(r.get(5).is_none(), "forgotten after it");
        assert_eq!(r.len(), 2000);
        for i in 0..Replies::KEEP as u64 {
            r.put(10_000 + i, 300, Body::Ok);
        }
        assert!(!r.room(150), "full: a new request is refused");
        assert!(r.get(1000).is_some(), "and nothing kept is dropped for it");
        assert!(r.room(301), "room again once deadlines pass");
        assert!(r.begin(42));
        assert!(!r.begin(42), "a copy while the first runs");
        r.put(42, 400, Body::Ok);
        assert_eq!(r.get(42), Some(&Body::Ok));
    }
}
