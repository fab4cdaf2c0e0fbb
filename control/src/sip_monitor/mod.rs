//! The SIP monitor role (`[sip_monitor]`, seed 001): its config section,
//! the SIP parser (RFC 3261, with the SDP it needs), the reassembly of SIP
//! over TCP, and the tracker that turns dialogs and registrations into
//! each terminal's status.

pub mod config;
mod grammar;
mod owned;
pub mod retransmit;
mod sdp;
pub mod sip;
pub mod stream;
pub mod terminal;
pub mod track;
