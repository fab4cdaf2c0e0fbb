//! Maps of the `sip-monitor` copy program (seed 001): SIP packets on the
//! configured ports are copied to a ring buffer; every packet passes.

use crate::ring::{Record, RecordHeader};

/// Bytes of a packet copied; longer packets are copied truncated, flagged.
pub const COPY_MAX: usize = 2048;

/// Header of a copied packet (`SIP_RING`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SipCopyHeader {
    /// Frame length on the wire.
    pub len: u32,
    /// Bytes copied (<= COPY_MAX).
    pub copied: u32,
}

impl RecordHeader for SipCopyHeader {
    fn captured(&self) -> usize {
        self.copied as usize
    }
}

/// A copied packet as reserved in `SIP_RING`.
pub type SipCopy = Record<SipCopyHeader, COPY_MAX>;
const _: () = assert!(core::mem::size_of::<SipCopy>() == 8 + COPY_MAX);

crate::stats! {
    /// Indices into `SIP_STATS`.
    pub mod stat {
        COPIED = "copied",
        RING_FULL = "ring_full",
        TRUNCATED = "truncated",
        NOT_SIP = "not_sip",
        /// Of the copies (whole or truncated), those the TC egress
        /// program made: SIP this host sent. The rest arrived (XDP).
        EGRESS_COPIES = "egress_copies",
    }
}
