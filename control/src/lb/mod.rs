//! The load balancer role (`[[lb]]`, seed 002): its config section and
//! the Maglev table that spreads flows over its backends, the gateways.

pub mod config;
pub mod maglev;
