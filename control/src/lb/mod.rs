//! The load balancer role (`[[lb]]`, seed 002): its config section and
//! the Maglev table that spreads flows over its backends, the gateways, and
//! the map indices of their entries.

pub mod config;
pub mod entries;
pub mod maglev;
