//! Process migration between networks (seed 000): the agent on each
//! server, the connection controller on the edge host, and the
//! coordinator, all speaking `control::migration` frames over TCP.
//!
//! - `transport`: framed requests with IDs and deadlines, each frame
//!   authenticated with the shared key, and the server that answers
//!   retries (and replays) with the first answer;
//! - `agent`: pause, checkpoint, transfer, restore, resume, rollback;
//! - `controller`: the steering map, holding and releasing packets;
//! - `coordinator`: the store, migration runs, recovery;
//! - `app`: the application backend's control socket; `role`: the daemon
//!   role.

mod agent;
pub mod app;
pub mod cli;
mod controller;
mod coordinator;
mod journal;
mod role;
mod transport;

pub use agent::{run_agent, AgentHandle};
pub use controller::{run_controller, ControllerHandle, ControllerStatus, HoldFrames};
pub use coordinator::{
    forward, migrate, prepare, recover, run, run_coordinator_listener, Coordinator, MigrationView,
    Prepared, FORWARD_TIMEOUT_MS,
};
pub use role::MigrationRole;
pub use transport::{addr, now_ms, request, Auth};
