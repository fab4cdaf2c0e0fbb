//! PFCP (3GPP TS 29.244) for the gateway as a UP function (UPF): the wire
//! codec (`ie`, `wire`) and the session-management engine (`engine`). No
//! sockets, no maps: the daemon feeds datagrams to [`Engine::handle`],
//! sends what [`Engine::poll_reports`] returns, and programs the fast path
//! through its [`Tunnels`] implementation.

pub mod engine;
pub mod ie;
mod rules;
pub mod wire;

#[cfg(test)]
mod tests;

pub use engine::{
    Discard, Engine, EngineConfig, Handled, Outcome, Procedure, SessionInfo, TunnelSpec, Tunnels,
    UrrInfo, Volume,
};
pub use ie::{Cause, Fseid, Fteid, NodeId, Ohc, UeIp, Volumes};
pub use wire::{build, decode, Header, Message, Reply, SessionRequest, PORT};
