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

pub mod stat {
    pub const TX: u32 = 0;
    pub const REDIRECT: u32 = 1;
    pub const PASS: u32 = 2;
    pub const DROP: u32 = 3;
    pub const ABORTED: u32 = 4;
    pub const COPIED: u32 = 5;
    pub const RING_FULL: u32 = 6;
    pub const TRUNCATED: u32 = 7;
    pub const NOT_SIP: u32 = 8;
    pub const COUNT: u32 = 9;

    pub const NAMES: [&str; COUNT as usize] = ["tx", "redirect", "pass", "drop", "aborted", "copied", "ring_full", "truncated", "not_sip"];
}
