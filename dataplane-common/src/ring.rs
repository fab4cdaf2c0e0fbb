//! Records the programs write to ring buffers: a `#[repr(C)]` header, then
//! frame bytes. The XDP writer reserves a whole [`Record`]; the userspace
//! decoder reads the header and the bytes it says were captured.

/// The header of a ring-buffer record.
pub trait RecordHeader: Copy {
    /// Frame bytes that follow the header in the record.
    fn captured(&self) -> usize;
}

/// A record as reserved in the ring: the header, then room for `N` bytes.
/// Headers are 8 bytes of `u32`s and `N` a multiple of 4, so there is no
/// padding anywhere (asserted beside each record type).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record<H, const N: usize> {
    pub header: H,
    pub data: [u8; N],
}
