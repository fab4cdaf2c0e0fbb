//! The presence role (`[presence]`, seed 001): its config section, the
//! presence documents and the requests that carry them (what the SIP
//! monitor sends), and the presence server's store.

pub mod config;
mod document;
mod store;

pub use document::{
    escape, parse_status, pidf, pidf_at, pidf_status, publish, register_with_status, status_name,
    via_transport,
};
pub use store::{check_store, HistoryRow, Row, Store, StoreError};
