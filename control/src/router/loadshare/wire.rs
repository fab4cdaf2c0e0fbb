//! The extension's messages on the wire: JSON, then an HMAC-SHA256 tag
//! over it with the shared key.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use dataplane_common::router::Fingerprint;

pub const PORT: u16 = 7515;
/// 3: `boot` (the sender's incarnation) and `Hello.leaving`.
pub const VERSION: u8 = 3;
const MAC_LEN: usize = 32;

/// The last packet an old owner routed in a bucket: the XDP fingerprint,
/// flattened into the message beside the bucket. `last.count` is the
/// packets the old owner routed in the bucket; 0: none, route all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    pub bucket: u8,
    #[serde(flatten)]
    pub last: Fingerprint,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    Hello {
        priority: u8,
        master: bool,
        owned: Vec<u8>,
        /// The sender is shutting down: give its buckets to the others
        /// and none to it.
        #[serde(default)]
        leaving: bool,
    },
    Hold {
        epoch: u64,
        buckets: Vec<u8>,
    },
    HoldAck {
        epoch: u64,
    },
    Release {
        epoch: u64,
        buckets: Vec<u8>,
    },
    Released {
        epoch: u64,
        fences: Vec<Fence>,
    },
    Fence {
        epoch: u64,
        fences: Vec<Fence>,
    },
    FenceDone {
        epoch: u64,
    },
    Abort {
        epoch: u64,
        buckets: Vec<u8>,
    },
    Ack {
        seq: u64,
    },
    /// A backup past its rate threshold asks for a review (claim 8).
    ReviewRequest {
        pps: u64,
    },
    /// The master collects rates (claims 9, 10).
    RateRequest {
        id: u64,
    },
    RateReport {
        id: u64,
        /// (bucket, packets per second) of the buckets the sender routes.
        rates: Vec<(u8, u64)>,
    },
}

impl Body {
    /// Hellos and acks are not acknowledged themselves.
    pub(super) fn reliable(&self) -> bool {
        !matches!(self, Body::Hello { .. } | Body::Ack { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg {
    pub v: u8,
    pub from: IpAddr,
    /// The sender's incarnation: when it started (Unix microseconds). A
    /// restarted router counts `seq` from 1 again under a greater `boot`;
    /// a message of an earlier incarnation is a replay. (Absent in an
    /// older version's message, which is then refused by its version.)
    #[serde(default)]
    pub boot: u64,
    pub seq: u64,
    pub body: Body,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsgError {
    #[error("message too short")]
    Short,
    #[error("authentication failed")]
    BadMac,
    #[error("malformed message")]
    Malformed,
    #[error("unsupported version {0}")]
    Version(u8),
}

fn mac(key: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

impl Msg {
    pub fn encode(&self, key: &[u8]) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("serializable");
        let tag = mac(key, &out);
        out.extend_from_slice(&tag);
        out
    }

    pub fn decode(data: &[u8], key: &[u8]) -> Result<Msg, MsgError> {
        if data.len() <= MAC_LEN {
            return Err(MsgError::Short);
        }
        let (body, tag) = data.split_at(data.len() - MAC_LEN);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(body);
        m.verify_slice(tag).map_err(|_| MsgError::BadMac)?;
        let msg: Msg = serde_json::from_slice(body).map_err(|_| MsgError::Malformed)?;
        if msg.v != VERSION {
            return Err(MsgError::Version(msg.v));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"shared secret";

    fn addr(i: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(10, 3, 0, i))
    }

    #[test]
    fn messages_are_authenticated_and_versioned() {
        let m = Msg {
            v: VERSION,
            from: addr(1),
            boot: 1,
            seq: 9,
            body: Body::Hold {
                epoch: 3,
                buckets: vec![1, 2],
            },
        };
        let bytes = m.encode(KEY);
        assert_eq!(Msg::decode(&bytes, KEY).unwrap(), m);
        assert_eq!(
            Msg::decode(&bytes, b"other key").unwrap_err(),
            MsgError::BadMac
        );
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert_eq!(Msg::decode(&flipped, KEY).unwrap_err(), MsgError::BadMac);
        assert_eq!(Msg::decode(&bytes[..10], KEY).unwrap_err(), MsgError::Short);
        assert_eq!(
            Msg::decode(&bytes[..bytes.len() - 1], KEY).unwrap_err(),
            MsgError::BadMac
        );
        let next = Msg {
            v: VERSION + 1,
            ..m
        };
        assert_eq!(
            Msg::decode(&next.encode(KEY), KEY).unwrap_err(),
            MsgError::Version(VERSION + 1)
        );
    }
}
