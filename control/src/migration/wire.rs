//! The frames every part of a migration speaks, and the answers kept by
//! request ID so that a retried request is answered, not carried out
//! again.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
};

use serde::{Deserialize, Serialize};

pub const VERSION: u8 = 1;
/// Largest frame accepted (a checkpoint travels in chunks below this).
pub const MAX_FRAME: usize = 4 << 20;

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
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("serializable");
        let mut out = (json.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&json);
        out
    }

    /// Take one frame from the front of `buf`: `Ok(None)` when more bytes
    /// are needed; on success the frame's bytes are consumed.
    pub fn take(buf: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let f: Frame = serde_json::from_slice(&buf[4..4 + len])
            .map_err(|e| FrameError::Malformed(e.to_string()))?;
        buf.drain(..4 + len);
        if f.v != VERSION {
            return Err(FrameError::Version(f.v));
        }
        Ok(Some(f))
    }
}

/// Answers by request ID, so a retried request gets the first answer
/// instead of being carried out twice.
#[derive(Default)]
pub struct Replies {
    answers: HashMap<u64, Body>,
    order: VecDeque<u64>,
}

impl Replies {
    const KEEP: usize = 1024;

    pub fn get(&self, id: u64) -> Option<&Body> {
        self.answers.get(&id)
    }

    /// Record the answer to `id`; a later answer to the same ID is ignored
    /// (the first one stands).
    pub fn put(&mut self, id: u64, answer: Body) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.answers.entry(id) {
            e.insert(answer);
            self.order.push_back(id);
            while self.order.len() > Self::KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.answers.remove(&old);
                }
            }
        }
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

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let f = Frame {
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
        };
        let mut buf = f.encode();
        buf.extend(
            Frame {
                id: 8,
                body: Body::Ok,
                ..f.clone()
            }
            .encode(),
        );
        let half = buf.len() - 3;
        let mut partial = buf[..half].to_vec();
        assert_eq!(Frame::take(&mut partial).unwrap(), Some(f.clone()));
        assert_eq!(
            Frame::take(&mut partial).unwrap(),
            None,
            "the second is incomplete"
        );
        assert_eq!(Frame::take(&mut buf).unwrap().unwrap().id, 7);
        assert_eq!(Frame::take(&mut buf).unwrap().unwrap().body, Body::Ok);
        assert!(buf.is_empty());
        let mut big = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        assert_eq!(
            Frame::take(&mut big),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{oops");
        assert!(matches!(
            Frame::take(&mut junk),
            Err(FrameError::Malformed(_))
        ));
        let mut v2 = Frame { v: 2, ..f }.encode();
        assert_eq!(Frame::take(&mut v2), Err(FrameError::Version(2)));
    }

    #[test]
    fn retries_get_the_first_answer() {
        let mut r = Replies::default();
        r.put(
            5,
            Body::MigrationComplete {
                process: "p".into(),
            },
        );
        r.put(
            5,
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
            r.put(1000 + i, Body::Ok);
        }
        assert!(r.get(5).is_none(), "bounded");
    }
}
