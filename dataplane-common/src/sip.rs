//! Maps of the `sip-monitor` copy program (seed 001): SIP packets on the
//! configured ports are copied to a ring buffer; every packet passes.

/// Bytes of a packet copied; longer packets are copied truncated, flagged.
pub const COPY_MAX: usize = 2048;

/// A copied packet as written to the ring buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SipCopy {
    /// Frame length on the wire.
    pub len: u32,
    /// Bytes copied (<= COPY_MAX).
    pub copied: u32,
    pub data: [u8; COPY_MAX],
}

crate::stats! {
    /// Indices into `SIP_STATS`.
    pub mod stat {
        COPIED = "copied",
        RING_FULL = "ring_full",
        TRUNCATED = "truncated",
        NOT_SIP = "not_sip",
    }
}
