//! The migration role (`[migration]`, seed 000), process migration
//! between networks: its config section, the wire protocol every part
//! speaks, checkpoints cut into frames, and each part as a pure engine:
//! the coordinator's sequence (`engine`), the agent's per-process states
//! (`agent`) and the connection controller's per-service states
//! (`controller`).
//!
//! Every message travels over TCP as a frame: a 4-byte big-endian length,
//! then a JSON object with the protocol version, a request ID, a deadline
//! and the body. Receivers answer a retried request ID with the answer
//! they gave before, so retries are idempotent.

pub mod agent;
mod checkpoint;
pub mod config;
pub mod controller;
mod engine;
mod wire;

pub use checkpoint::{chunks, Assembly, CHECKPOINT_MAX, CHUNK};
pub use engine::{Input, Migration, Output};
pub use wire::{
    fresh, Body, Frame, FrameError, NetworkInfo, Replies, ServerInfo, Step, MAX_AHEAD_MS,
    MAX_FRAME, TAG_LEN, VERSION,
};
