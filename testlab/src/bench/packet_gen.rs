//! The benchmarks' second traffic generator, for kernels that refuse
//! BPF_PROG_RUN with live frames (some sandboxes answer EPERM): an
//! AF_PACKET socket bound to the sending interface, past the qdisc
//! (PACKET_QDISC_BYPASS), sending one frame in batches with sendmmsg. It
//! costs a system call per batch and a copy per frame, so it offers fewer
//! packets a second than live frames; the benches say which one ran.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::bail;

pub struct PacketGen {
    fd: OwnedFd,
}

const BATCH: usize = 64;

impl PacketGen {
    /// A sending socket on `ifindex` (in the calling thread's namespace).
    pub fn open(ifindex: u32) -> anyhow::Result<Self> {
        // SAFETY: plain socket calls; the fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: an int option of the right size.
        if unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            )
        } != 0
        {
            bail!("PACKET_QDISC_BYPASS: {}", std::io::Error::last_os_error());
        }
        // SAFETY: a zeroed sockaddr_ll with family and interface set.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        if unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        } != 0
        {
            bail!(
                "binding to ifindex {ifindex}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Self { fd })
    }

    /// Send `frame` about `frames` times; returns how many the kernel
    /// took (a full device queue refuses a batch, which is not counted).
    pub fn send(&self, frame: &[u8], frames: u64) -> anyhow::Result<u64> {
        let mut iov = libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        };
        // SAFETY: zeroed headers, each pointing at the one iovec, which
        // outlives the calls below.
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|_| {
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = &mut iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut sent = 0u64;
        let mut left = frames;
        while left > 0 {
            let n = left.min(BATCH as u64) as u32;
            // SAFETY: `n` initialised headers.
            let r = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n, 0) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ENOBUFS) {
                    bail!("sendmmsg: {e}");
                }
            } else {
                sent += r as u64;
            }
            left -= n as u64;
        }
        Ok(sent)
    }
}
