//! A minimal AF_XDP socket in copy mode (`XDP_COPY`), built directly on
//! `libc`.
//!
//! One [`Xsk`] owns the socket, its UMEM (one anonymous mapping cut into
//! `frames` chunks of `frame_size` bytes) and the four rings the kernel
//! shares with us:
//!
//! * the **fill** ring, where we hand the kernel empty frames to receive into;
//! * the **RX** ring, where the kernel hands back received frames;
//! * the **TX** ring, where we hand the kernel frames to transmit;
//! * the **completion** ring, where the kernel hands transmitted frames back.
//!
//! The UMEM is split in two halves: frames `0 .. frames/2` circulate between
//! the fill and RX rings, frames `frames/2 .. frames` between a free list,
//! the TX ring and the completion ring. Every ring has `frames/2` entries,
//! so a ring can never overflow: each frame is in exactly one place.
//!
//! Each ring is a single-producer single-consumer queue of free-running
//! `u32` indices. We own one index of each ring and the kernel owns the
//! other; the peer's index is read with `Acquire` (so the entries it
//! published, or its reads of the entries it released, happen before ours)
//! and ours is written with `Release` (so our entries are visible before the
//! index that publishes them).
//!
//! Receiving needs an XDP program that redirects into an `XSKMAP` holding
//! [`Xsk::fd`] at the queue's index; transmitting needs nothing else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

mod ring;
use ring::{Mmap, Ring};

/// How many times a transient kick failure (`EAGAIN`, `EBUSY`, `ENOBUFS`,
/// `EINTR`) or an empty TX free list is retried before giving up.
const RETRIES: u32 = 64;

/// How an [`Xsk`] is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskOptions {
    /// UMEM frames; a power of two, at least 2. Half receive, half transmit.
    pub frames: u32,
    /// Bytes per frame (the UMEM chunk size); a power of two the kernel
    /// accepts as an aligned chunk size (2048 or 4096 without huge pages).
    pub frame_size: u32,
    /// Create the RX ring (and fill the fill ring).
    pub rx: bool,
    /// Create the TX ring.
    pub tx: bool,
}

impl Default for XskOptions {
    fn default() -> Self {
        XskOptions {
            frames: 4096,
            frame_size: 2048,
            rx: true,
            tx: true,
        }
    }
}

/// The socket's counters (`getsockopt(SOL_XDP, XDP_STATISTICS)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for reasons other than the two below (e.g. too long).
    pub rx_dropped: u64,
    /// Invalid descriptors found in the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors found in the TX ring.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Frames dropped because the fill ring was empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty when asked to send (in copy
    /// mode every kick ends that way, so this roughly counts kicks).
    pub tx_ring_empty_descs: u64,
}

/// The last OS error, with `what` failed in front of it.
fn os_error(what: impl std::fmt::Display) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Yield for the first few retries, then sleep briefly.
fn backoff(attempt: u32) {
    if attempt < 8 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// `setsockopt(SOL_XDP, name, val)`.
fn set_xdp_opt<T>(fd: &OwnedFd, name: libc::c_int, val: &T, what: &str) -> io::Result<()> {
    // SAFETY: val points to a live, initialised T of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(os_error(format_args!("setsockopt(SOL_XDP, {what})")));
    }
    Ok(())
}

/// `getsockopt(SOL_XDP, name)` into a zeroed T; returns it and the length
/// the kernel filled in.
fn get_xdp_opt<T: Copy>(fd: RawFd, name: libc::c_int, what: &str) -> io::Result<(T, usize)> {
    // SAFETY: only instantiated with libc's plain-integer XDP structs, for
    // which all-zero bytes are a valid value.
    let mut val: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: val is writable for len bytes and len is a valid socklen_t.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(os_error(format_args!("getsockopt(SOL_XDP, {what})")));
    }
    Ok((val, len as usize))
}

/// An AF_XDP socket bound to one queue of one interface, with its UMEM and
/// rings. Dropping it unmaps everything and closes the socket (which also
/// removes it from any XSKMAP).
pub struct Xsk {
    rx: Option<Ring<libc::xdp_desc>>,
    tx: Option<Ring<libc::xdp_desc>>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    umem: Mmap,
    fd: OwnedFd,
    ifindex: u32,
    queue: u32,
    frame_size: u32,
    /// Frames set aside for TX (the upper half of the UMEM).
    tx_frames: usize,
    /// TX frames neither queued nor in flight (base addresses).
    tx_free: Vec<u64>,
}

// SAFETY: the raw pointers all point into mappings this value owns
// exclusively; nothing in it is tied to the creating thread.
unsafe impl Send for Xsk {}

impl std::fmt::Debug for Xsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xsk")
            .field("fd", &self.fd.as_raw_fd())
            .field("ifindex", &self.ifindex)
            .field("queue", &self.queue)
            .field("frame_size", &self.frame_size)
            .field("umem_bytes", &self.umem.len)
            .field("rx", &self.rx.is_some())
            .field("tx", &self.tx.is_some())
            .field("tx_outstanding", &self.tx_outstanding())
            .finish()
    }
}

impl Xsk {
    /// Bind an AF_XDP socket to (`ifindex`, `queue`) in copy mode
    /// (`XDP_COPY`, with `XDP_USE_NEED_WAKEUP`). With `rx`, the whole fill
    /// ring is filled with the lower half of the UMEM frames, so the socket
    /// can receive as soon as an XSKMAP points at it; the upper half is for
    /// TX whether or not `tx` is set.
    pub fn open(ifindex: u32, queue: u32, opts: &XskOptions) -> io::Result<Xsk> {
        if !opts.frames.is_power_of_two() || opts.frames < 2 {
            return Err(invalid_input(format!(
                "AF_XDP frames must be a power of two, at least 2 (got {})",
                opts.frames
            )));
        }
        if !opts.frame_size.is_power_of_two() {
            return Err(invalid_input(format!(
                "AF_XDP frame_size must be a power of two (got {})",
                opts.frame_size
            )));
        }
        if !opts.rx && !opts.tx {
            return Err(invalid_input(
                "an AF_XDP socket needs rx, tx or both".into(),
            ));
        }
        let half = opts.frames / 2;
        let frame_size = u64::from(opts.frame_size);
        let umem_len = usize::try_from(u64::from(opts.frames) * frame_size).map_err(|_| {
            invalid_input(format!(
                "UMEM of {} x {} bytes does not fit in memory",
                opts.frames, opts.frame_size
            ))
        })?;
        let umem = Mmap::anonymous(umem_len)?;

        // SAFETY: plain socket call; the result is checked before it is owned.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_error("socket(AF_XDP, SOCK_RAW)"));
        }
        // SAFETY: raw is a fresh, open descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: opts.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        set_xdp_opt(&fd, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        set_xdp_opt(&fd, libc::XDP_UMEM_FILL_RING, &half, "XDP_UMEM_FILL_RING")?;
        set_xdp_opt(
            &fd,
            libc::XDP_UMEM_COMPLETION_RING,
            &half,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        if opts.rx {
            set_xdp_opt(&fd, libc::XDP_RX_RING, &half, "XDP_RX_RING")?;
        }
        if opts.tx {
            set_xdp_opt(&fd, libc::XDP_TX_RING, &half, "XDP_TX_RING")?;
        }

        let (off, len) = get_xdp_opt::<libc::xdp_mmap_offsets>(
            fd.as_raw_fd(),
            libc::XDP_MMAP_OFFSETS,
            "XDP_MMAP_OFFSETS",
        )?;
        if len != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("getsockopt(SOL_XDP, XDP_MMAP_OFFSETS) returned {len} bytes: a kernel without ring flags (before 5.4)"),
            ));
        }
        // The rings must be mapped before bind: the kernel refuses once bound.
        let fill = Ring::map(
            &fd,
            &off.fr,
            half,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "fill ring",
        )?;
        let comp = Ring::map(
            &fd,
            &off.cr,
            half,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "completion ring",
        )?;
        let rx = if opts.rx {
            Some(Ring::map(
                &fd,
                &off.rx,
                half,
                libc::XDP_PGOFF_RX_RING as u64,
                "RX ring",
            )?)
        } else {
            None
        };
        let tx = if opts.tx {
            Some(Ring::map(
                &fd,
                &off.tx,
                half,
                libc::XDP_PGOFF_TX_RING as u64,
                "TX ring",
            )?)
        } else {
            None
        };

        let mut xsk = Xsk {
            rx,
            tx,
            fill,
            comp,
            umem,
            fd,
            ifindex,
            queue,
            frame_size: opts.frame_size,
            tx_frames: half as usize,
            tx_free: (u64::from(half)..u64::from(opts.frames))
                .rev()
                .map(|i| i * frame_size)
                .collect(),
        };
        if opts.rx {
            // Before bind, so the socket never sees an empty fill ring.
            for i in 0..half {
                xsk.fill.write(i, u64::from(i) * frame_size);
            }
            xsk.fill.submit(half);
        }

        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: sa is a fully initialised sockaddr_xdp of the length passed.
        let rc = unsafe {
            libc::bind(
                xsk.fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_error(format_args!(
                "bind of the AF_XDP socket to ifindex {ifindex} queue {queue} (XDP_COPY)"
            )));
        }
        Ok(xsk)
    }

    /// The interface this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The socket's descriptor, to put into an XSKMAP (aya's `XskMap::set`)
    /// at this queue's index. Stays owned by the `Xsk`.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Take up to `max` received frames in ring order, calling `f` with each
    /// frame's bytes, and return their buffers to the fill ring. Returns how
    /// many frames were taken (0 without an RX ring).
    pub fn recv(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let Some(rx) = self.rx.as_mut() else { return 0 };
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        // Every RX frame is in the fill ring, the RX ring or here, and the
        // fill ring holds all of them, so it has room for what we take; the
        // min only guards against a kernel breaking that.
        let n = rx.available().min(self.fill.free_slots()).min(max);
        let base_mask = !(u64::from(self.frame_size) - 1);
        for i in 0..n {
            let desc = rx.read(i);
            let start = usize::try_from(desc.addr).unwrap_or(usize::MAX);
            if let Some(end) = start
                .checked_add(desc.len as usize)
                .filter(|&e| e <= self.umem.len)
            {
                // SAFETY: start..end lies inside the UMEM mapping (checked
                // just above); the kernel gave this frame to us and does not
                // write it until we put it back in the fill ring below,
                // after the borrow ends.
                f(unsafe {
                    std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(start), end - start)
                });
            }
            // In aligned mode the address may carry the headroom offset;
            // the fill ring wants the frame's base.
            self.fill.write(i, desc.addr & base_mask);
        }
        if n > 0 {
            self.fill.submit(n);
            rx.release(n);
        }
        if self.fill.needs_wakeup() {
            // SAFETY: a zero-length, non-blocking recvfrom with no buffer or
            // address is only a wakeup; its result does not matter.
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        n as usize
    }

    /// Queue one frame for transmission (copied into a free TX frame) and
    /// kick the kernel. Frames that are empty or longer than `frame_size`
    /// are refused with `InvalidInput`; when every TX frame stays in flight
    /// through the bounded retries, `WouldBlock`. Once queued, the frame
    /// stays queued: transient kick failures are retried a bounded number of
    /// times and then left for the next `send` or [`Xsk::flush`]; an error
    /// from the kick itself (e.g. `ENETDOWN`) is returned but does not take
    /// the frame back.
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.tx.is_none() {
            return Err(invalid_input(
                "this AF_XDP socket was opened without a TX ring".into(),
            ));
        }
        if frame.is_empty() || frame.len() > self.frame_size as usize {
            return Err(invalid_input(format!(
                "frame of {} bytes: an AF_XDP frame holds 1 to {} bytes",
                frame.len(),
                self.frame_size
            )));
        }
        let addr = self.take_tx_frame()?;
        // SAFETY: addr is the base of a TX frame inside the UMEM and
        // frame.len() <= frame_size; the frame is on no ring, so the kernel
        // does not touch it, and `frame` cannot alias the UMEM mapping
        // because no borrow of it escapes this type.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.ptr.as_ptr().add(addr as usize),
                frame.len(),
            );
        }
        let tx = self.tx.as_mut().expect("checked above");
        // Queued + in-flight frames never exceed the ring size, and we hold
        // a free one, so the ring has room.
        if tx.free_slots() == 0 {
            self.tx_free.push(addr);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "AF_XDP TX ring full",
            ));
        }
        tx.write(
            0,
            libc::xdp_desc {
                addr,
                len: frame.len() as u32,
                options: 0,
            },
        );
        tx.submit(1);
        self.kick_tx()
    }

    /// Wait (at most `timeout`) until every queued TX frame has completed,
    /// kicking the kernel meanwhile. Returns how many are still outstanding
    /// (0 when all are done).
    pub fn flush(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            self.reclaim();
            let outstanding = self.tx_outstanding();
            let now = Instant::now();
            if outstanding == 0 || now >= deadline {
                return outstanding;
            }
            let _ = self.kick_tx();
            self.reclaim();
            if self.tx_outstanding() != 0 {
                std::thread::sleep((deadline - now).min(Duration::from_micros(100)));
            }
        }
    }

    /// The socket's counters (`getsockopt(SOL_XDP, XDP_STATISTICS)`).
    pub fn stats(&self) -> io::Result<XskStats> {
        // A kernel that only knows the first three counters fills those and
        // leaves the rest zero.
        let (s, _) = get_xdp_opt::<libc::xdp_statistics>(
            self.fd.as_raw_fd(),
            libc::XDP_STATISTICS,
            "XDP_STATISTICS",
        )?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// TX frames queued or in flight (not yet completed); 0 without TX.
    fn tx_outstanding(&self) -> usize {
        if self.tx.is_none() {
            return 0;
        }
        self.tx_frames - self.tx_free.len()
    }

    /// Move completed TX frames back to the free list.
    fn reclaim(&mut self) {
        let n = self.comp.available();
        let base_mask = !(u64::from(self.frame_size) - 1);
        for i in 0..n {
            self.tx_free.push(self.comp.read(i) & base_mask);
        }
        if n > 0 {
            self.comp.release(n);
        }
    }

    /// A free TX frame, reclaiming completions and kicking the kernel
    /// (bounded) when there is none.
    fn take_tx_frame(&mut self) -> io::Result<u64> {
        for attempt in 0..RETRIES {
            self.reclaim();
            if let Some(addr) = self.tx_free.pop() {
                return Ok(addr);
            }
            let _ = self.kick_tx();
            backoff(attempt);
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "all {} AF_XDP TX frames are still in flight",
                self.tx_frames
            ),
        ))
    }

    /// Wake the kernel to process the TX ring if it asks for it (in copy
    /// mode it always does: sending happens inside this call). Transient
    /// failures are retried, reclaiming completions between attempts.
    fn kick_tx(&mut self) -> io::Result<()> {
        let mut attempt = 0;
        loop {
            if !self.tx.as_ref().is_some_and(|tx| tx.needs_wakeup()) {
                return Ok(());
            }
            // SAFETY: a zero-length, non-blocking sendto with no buffer or
            // address only asks the kernel to process the TX ring.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR) => {
                    attempt += 1;
                    if attempt >= RETRIES {
                        // Still queued; the next send or flush kicks again.
                        return Ok(());
                    }
                    self.reclaim();
                    backoff(attempt);
                }
                _ => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "sendto (TX kick) on the AF_XDP socket of ifindex {} queue {}: {e}",
                            self.ifindex, self.queue
                        ),
                    ))
                }
            }
        }
    }
}
