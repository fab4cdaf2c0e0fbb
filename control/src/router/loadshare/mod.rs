//! The load-sharing extension of the virtual router (seed 003), as a pure
//! engine: the master assigns conditions (end-system hash buckets) to the
//! routers, and every hand-off of a bucket follows claims 1-6:
//!
//! 1. the master tells the new owner to take the bucket (`Hold`);
//! 2. the new owner starts buffering its packets and acknowledges
//!    (`HoldAck`, claims 2 and 4);
//! 3. the old owner (the master itself, or a backup told by `Release`)
//!    stops routing it and reports the sequence point: the last packet it
//!    routed (claims 3 and 5);
//! 4. the master passes the sequence points on (`Fence`); the new owner
//!    drops the buffered packets up to and including that packet, routes
//!    the rest, and routes the bucket from then on (claim 6).
//!
//! The sequence point is a packet, not a time: every router sees the same
//! frames in the same order on the shared segment, so "after this packet"
//! means the same thing on both sides without synchronised clocks.
//!
//! Messages are versioned, authenticated (HMAC-SHA256 over the message
//! with the shared key), sequence-numbered and retransmitted until acked.

mod engine;
mod planner;
mod wire;

pub use engine::{Action, Config, Event, LoadShare};
pub use planner::{plan, rate_plan};
pub use wire::{Body, Fence, Msg, MsgError, PORT, VERSION};
