//! The load balancer role (`[[lb]]`, seed 002): the Maglev table that
//! spreads flows over its backends, the gateways.

pub mod maglev;
