//! The memory an [`Xsk`](super::Xsk) shares with the kernel: the
//! mappings (UMEM and rings) and one ring's producer/consumer protocol.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use super::{invalid_input, os_error};

/// A memory mapping, unmapped on drop.
pub(super) struct Mmap {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
}

impl Mmap {
    /// Private anonymous read-write memory, page aligned and zeroed.
    pub(super) fn anonymous(len: usize) -> io::Result<Mmap> {
        // SAFETY: a fresh anonymous mapping aliases nothing; the result is
        // checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os_error(format_args!("mmap of a {len}-byte UMEM")));
        }
        Ok(Mmap {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned NULL without MAP_FIXED"),
            len,
        })
    }

    /// One of the socket's rings, at its page offset.
    fn ring(fd: &OwnedFd, len: usize, pgoff: u64, what: &str) -> io::Result<Mmap> {
        let off = libc::off_t::try_from(pgoff).map_err(|_| {
            invalid_input(format!("{what}: page offset {pgoff:#x} does not fit off_t"))
        })?;
        // SAFETY: mapping a region the kernel allocated for this socket; no
        // existing memory is touched and the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os_error(format_args!(
                "mmap of the AF_XDP {what} ({len} bytes at {pgoff:#x})"
            )));
        }
        Ok(Mmap {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned NULL without MAP_FIXED"),
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and nothing
        // borrowed from the mapping outlives its owner.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// One mmaped ring of `T` entries (`u64` addresses for fill/completion,
/// `xdp_desc` for RX/TX).
pub(super) struct Ring<T> {
    /// Keeps the pointers below valid.
    _map: Mmap,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    /// Entries; a power of two.
    size: u32,
    /// Our copy of the index we own: the producer index of a ring we fill
    /// (fill, TX), the consumer index of a ring we drain (RX, completion).
    /// Fresh rings start at zero.
    ours: u32,
}

impl<T: Copy> Ring<T> {
    /// Map the ring at `pgoff` whose layout the kernel described in `off`.
    pub(super) fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        what: &str,
    ) -> io::Result<Ring<T>> {
        let len = usize::try_from(off.desc)
            .ok()
            .and_then(|d| d.checked_add(size as usize * std::mem::size_of::<T>()))
            .ok_or_else(|| {
                invalid_input(format!(
                    "{what}: descriptor offset {:#x} out of range",
                    off.desc
                ))
            })?;
        // The kernel lays its rings out properly; check anyway, since the
        // pointers below rely on it.
        let fits = |o: u64, width: usize, align: usize| {
            usize::try_from(o)
                .is_ok_and(|o| o % align == 0 && o.checked_add(width).is_some_and(|end| end <= len))
        };
        let idx = std::mem::size_of::<AtomicU32>();
        if !(fits(off.producer, idx, idx)
            && fits(off.consumer, idx, idx)
            && fits(off.flags, idx, idx)
            && fits(
                off.desc,
                size as usize * std::mem::size_of::<T>(),
                std::mem::align_of::<T>(),
            ))
        {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!(
                "{what}: kernel ring offsets (producer {:#x}, consumer {:#x}, flags {:#x}, desc {:#x}) do not fit a {len}-byte ring",
                off.producer, off.consumer, off.flags, off.desc
            )));
        }
        let map = Mmap::ring(fd, len, pgoff, what)?;
        let base = map.ptr.as_ptr();
        // SAFETY: every offset was checked above to lie inside the mapping
        // and to be aligned for what it points to (the mapping itself is
        // page aligned); an in-bounds offset of a non-null pointer is non-null.
        let at = |o: u64| unsafe { NonNull::new_unchecked(base.add(o as usize)) };
        Ok(Ring {
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            entries: at(off.desc).cast(),
            size,
            ours: 0,
            _map: map,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: in bounds and aligned (checked in `map`), valid while
        // `_map` lives; the kernel writes it concurrently, so it is only
        // ever accessed atomically.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    /// Producer side: entries we may write now.
    pub(super) fn free_slots(&self) -> u32 {
        self.size
            - self
                .ours
                .wrapping_sub(self.consumer().load(Ordering::Acquire))
    }

    /// Consumer side: entries the kernel has published that we have not
    /// released yet.
    pub(super) fn available(&self) -> u32 {
        self.producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.ours)
    }

    /// Pointer to the entry for free-running index `idx`.
    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: the masked index is below `size`, and `map` checked that
        // `size` entries fit in the mapping.
        unsafe { self.entries.as_ptr().add((idx & (self.size - 1)) as usize) }
    }

    /// Consumer side: the `i`th entry after our index. Only valid for
    /// `i < available()`.
    pub(super) fn read(&self, i: u32) -> T {
        debug_assert!(i < self.available());
        // SAFETY: the slot is in bounds and aligned; the kernel published
        // it (Acquire in `available`) and will not touch it until we
        // release it.
        unsafe { self.slot(self.ours.wrapping_add(i)).read() }
    }

    /// Producer side: set the `i`th entry after our index. Only valid for
    /// `i < free_slots()`; not visible to the kernel until `submit`.
    pub(super) fn write(&mut self, i: u32, v: T) {
        debug_assert!(i < self.free_slots());
        // SAFETY: the slot is in bounds and aligned; the kernel released it
        // (Acquire in `free_slots`) and will not read it until we publish it.
        unsafe { self.slot(self.ours.wrapping_add(i)).write(v) }
    }

    /// Producer side: publish `n` written entries.
    pub(super) fn submit(&mut self, n: u32) {
        self.ours = self.ours.wrapping_add(n);
        self.producer().store(self.ours, Ordering::Release);
    }

    /// Consumer side: hand `n` read entries back.
    pub(super) fn release(&mut self, n: u32) {
        self.ours = self.ours.wrapping_add(n);
        self.consumer().store(self.ours, Ordering::Release);
    }

    /// Whether the kernel asked to be woken up (`XDP_RING_NEED_WAKEUP`)
    /// to process this ring.
    pub(super) fn needs_wakeup(&self) -> bool {
        // Order our index store before the flag load, pairing with the
        // kernel's barrier between setting the flag and rechecking the ring.
        fence(Ordering::SeqCst);
        self.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}
