//! Carrying an established TCP connection to another host with the
//! kernel's TCP repair mode (the mechanism CRIU uses): the source socket
//! is put in repair mode and its sequence numbers, queued data, options
//! and window are read out; the destination creates a socket in repair
//! mode, sets them, "connects" without a handshake and leaves repair mode.
//! The peer sees one connection throughout. Needs CAP_NET_ADMIN. IPv4
//! and IPv6 alike (the socket's family is the checkpoint's).
//!
//! A socket in repair mode sends nothing, and closing it sends neither FIN
//! nor RST, so a source that keeps or drops its copy stays silent.

use std::{
    io,
    net::{SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream},
    os::fd::{AsRawFd, FromRawFd, RawFd},
};

use serde::{Deserialize, Serialize};

const TCP_RECV_QUEUE: libc::c_int = 1;
const TCP_SEND_QUEUE: libc::c_int = 2;
const SIOCINQ: libc::c_ulong = 0x541b; // FIONREAD
const SIOCOUTQ: libc::c_ulong = 0x5411; // TIOCOUTQ
const SIOCOUTQNSD: libc::c_ulong = 0x894b;
const TCP_ESTABLISHED: u8 = 1;
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
const TCPOPT_MAXSEG: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;

/// Everything needed to re-create one established connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCheckpoint {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// rcv_nxt and write_seq (the ends of the two queues).
    pub recv_seq: u32,
    pub send_seq: u32,
    /// Received but not yet read by the application.
    pub recv_queue: Vec<u8>,
    /// Written by the application, not yet acknowledged by the peer.
    pub send_queue: Vec<u8>,
    /// How much of the end of `send_queue` was never sent (it is sent
    /// anew after the restore instead of waiting for a retransmission).
    #[serde(default)]
    pub unsent: u32,
    pub mss: u32,
    /// `None` when window scaling was not negotiated.
    pub wscale: Option<(u8, u8)>,
    pub sack: bool,
    /// The connection's TCP timestamp clock, when timestamps are on.
    pub timestamp: Option<u32>,
    /// snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup.
    pub window: [u32; 5],
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn set<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(rc, what)
}

fn get<T: Default>(fd: RawFd, level: libc::c_int, opt: libc::c_int, what: &str) -> io::Result<T> {
    let mut v = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is writable for `len` bytes.
    let rc = unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut T).cast(), &mut len) };
    check(rc, what)?;
    Ok(v)
}

/// Turn repair mode on or off. Off sends a window probe, so the peer
/// hears from the connection's new home at once.
pub fn set_repair(fd: RawFd, on: bool) -> io::Result<()> {
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR,
        &libc::c_int::from(on),
        if on {
            "TCP_REPAIR on"
        } else {
            "TCP_REPAIR off"
        },
    )
}

fn select_queue(fd: RawFd, q: libc::c_int) -> io::Result<()> {
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR_QUEUE,
        &q,
        "TCP_REPAIR_QUEUE",
    )
}

fn queue_len(fd: RawFd, req: libc::c_ulong, what: &str) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: the ioctl writes one int.
    check(unsafe { libc::ioctl(fd, req, &mut n) }, what)?;
    Ok(n.max(0) as usize)
}

/// Peek `len` bytes of the selected queue (repair mode allows only peeks).
fn peek(fd: RawFd, len: usize, what: &str) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    if len == 0 {
        return Ok(buf);
    }
    // SAFETY: `buf` is writable for its length.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            len,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::other(format!(
            "{what}: {}",
            io::Error::last_os_error()
        )));
    }
    if n as usize != len {
        return Err(io::Error::other(format!("{what}: {n} of {len} bytes")));
    }
    Ok(buf)
}

/// A socket address as the kernel takes it: the storage and its length.
fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sa = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = a.port().to_be();
            sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sa = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = a.port().to_be();
            sa.sin6_addr.s6_addr = a.ip().octets();
            sa.sin6_flowinfo = a.flowinfo();
            sa.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn addr(ss: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sa = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Ok(SocketAddrV4::new(
                u32::from_be(sa.sin_addr.s_addr).into(),
                u16::from_be(sa.sin_port),
            )
            .into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sa =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddrV6::new(
                sa.sin6_addr.s6_addr.into(),
                u16::from_be(sa.sin6_port),
                sa.sin6_flowinfo,
                sa.sin6_scope_id,
            )
            .into())
        }
        f => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an IP socket (address family {f})"),
        )),
    }
}

fn name(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: `ss` is writable for `len` bytes.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    check(rc, if peer { "getpeername" } else { "getsockname" })?;
    addr(&ss)
}

/// Put the connection in repair mode and read it out. It stays in repair
/// mode (silent); `set_repair(fd, false)` brings it back.
pub fn checkpoint(s: &TcpStream) -> io::Result<TcpCheckpoint> {
    let fd = s.as_raw_fd();
    let (local, remote) = (name(fd, false)?, name(fd, true)?);
    set_repair(fd, true)?;
    let r = (|| {
        let info: [u8; 104] = get_info(fd)?;
        if info[0] != TCP_ESTABLISHED {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{local} ↔ {remote} is not established (state {})", info[0]),
            ));
        }
        let (options, wscale) = (info[5], info[6]);
        let inq = queue_len(fd, SIOCINQ, "SIOCINQ")?;
        let outq = queue_len(fd, SIOCOUTQ, "SIOCOUTQ")?;
        let unsent = queue_len(fd, SIOCOUTQNSD, "SIOCOUTQNSD")?.min(outq);
        select_queue(fd, TCP_RECV_QUEUE)?;
        let recv_seq: u32 = get(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUEUE_SEQ,
            "TCP_QUEUE_SEQ (receive)",
        )?;
        let recv_queue = peek(fd, inq, "peeking the receive queue")?;
        select_queue(fd, TCP_SEND_QUEUE)?;
        let send_seq: u32 = get(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUEUE_SEQ,
            "TCP_QUEUE_SEQ (send)",
        )?;
        let send_queue = peek(fd, outq, "peeking the send queue")?;
        let mss: libc::c_int = get(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, "TCP_MAXSEG")?;
        let timestamp = if options & TCPI_OPT_TIMESTAMPS != 0 {
            Some(get::<u32>(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_TIMESTAMP,
                "TCP_TIMESTAMP",
            )?)
        } else {
            None
        };
        let window: [u32; 5] = get(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_REPAIR_WINDOW,
            "TCP_REPAIR_WINDOW",
        )?;
        Ok(TcpCheckpoint {
            local,
            remote,
            recv_seq,
            send_seq,
            recv_queue,
            send_queue,
            unsent: unsent as u32,
            mss: mss as u32,
            // tcpi_snd_wscale is the low nibble, tcpi_rcv_wscale the high.
            wscale: (options & TCPI_OPT_WSCALE != 0).then_some((wscale & 0x0f, wscale >> 4)),
            sack: options & TCPI_OPT_SACK != 0,
            timestamp,
            window,
        })
    })();
    if r.is_err() {
        let _ = set_repair(fd, false);
    }
    r
}

/// The first bytes of `struct tcp_info` (state at 0, options at 5,
/// window scales at 6).
fn get_info(fd: RawFd) -> io::Result<[u8; 104]> {
    let mut v = [0u8; 104];
    let mut len = v.len() as libc::socklen_t;
    // SAFETY: `v` is writable for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            v.as_mut_ptr().cast(),
            &mut len,
        )
    };
    check(rc, "TCP_INFO")?;
    Ok(v)
}

/// Send `data` into the selected queue (repair mode: queued, not sent).
/// Never blocks: nothing drains a queue in repair mode, so a queue that
/// does not fit its buffer is an error, not a wait.
fn fill(fd: RawFd, q: libc::c_int, data: &[u8], what: &str) -> io::Result<()> {
    select_queue(fd, q)?;
    let mut off = 0;
    while off < data.len() {
        // SAFETY: `data[off..]` is readable.
        let n = unsafe {
            libc::send(
                fd,
                data[off..].as_ptr().cast(),
                data.len() - off,
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return Err(io::Error::other(format!(
                "{what}: {}",
                io::Error::last_os_error()
            )));
        }
        off += n as usize;
    }
    Ok(())
}

/// Re-create the connection here and leave repair mode. The local address
/// must be (or about to be) this host's.
pub fn restore(cp: &TcpCheckpoint) -> io::Result<TcpStream> {
    if cp.local.is_ipv6() != cp.remote.is_ipv6() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} ↔ {}: mixed address families", cp.local, cp.remote),
        ));
    }
    let family = if cp.local.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket call, checked below.
    let raw = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    check(raw, "socket")?;
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let s = unsafe { TcpStream::from_raw_fd(raw) };
    let fd = raw;
    set_repair(fd, true)?;
    // The service address may not be here yet (it moves after).
    if cp.local.is_ipv6() {
        set(
            fd,
            libc::SOL_IPV6,
            libc::IPV6_FREEBIND,
            &1 as &libc::c_int,
            "IPV6_FREEBIND",
        )?;
    } else {
        set(
            fd,
            libc::SOL_IP,
            libc::IP_FREEBIND,
            &1 as &libc::c_int,
            "IP_FREEBIND",
        )?;
    }
    // Room for the queues being put back (the kernel counts overhead per
    // byte, hence twice the data), never below the defaults.
    for (opt, len, what) in [
        (libc::SO_SNDBUFFORCE, cp.send_queue.len(), "SO_SNDBUFFORCE"),
        (libc::SO_RCVBUFFORCE, cp.recv_queue.len(), "SO_RCVBUFFORCE"),
    ] {
        let want = (len * 2 + 65536).min(i32::MAX as usize) as libc::c_int;
        let have: libc::c_int = get(
            fd,
            libc::SOL_SOCKET,
            if opt == libc::SO_SNDBUFFORCE {
                libc::SO_SNDBUF
            } else {
                libc::SO_RCVBUF
            },
            what,
        )?;
        if have < want {
            set(fd, libc::SOL_SOCKET, opt, &want, what)?;
        }
    }
    select_queue(fd, TCP_RECV_QUEUE)?;
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_QUEUE_SEQ,
        &cp.recv_seq.wrapping_sub(cp.recv_queue.len() as u32),
        "TCP_QUEUE_SEQ (receive)",
    )?;
    select_queue(fd, TCP_SEND_QUEUE)?;
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_QUEUE_SEQ,
        &cp.send_seq.wrapping_sub(cp.send_queue.len() as u32),
        "TCP_QUEUE_SEQ (send)",
    )?;
    let ((l, llen), (r, rlen)) = (sockaddr(cp.local), sockaddr(cp.remote));
    // SAFETY: `l` and `r` are valid socket addresses of their lengths.
    check(
        unsafe { libc::bind(fd, (&l as *const libc::sockaddr_storage).cast(), llen) },
        &format!("bind {}", cp.local),
    )?;
    // SAFETY: as above; in repair mode connect sends no SYN.
    check(
        unsafe { libc::connect(fd, (&r as *const libc::sockaddr_storage).cast(), rlen) },
        &format!("connect {} (repair)", cp.remote),
    )?;
    let mut opts = vec![[TCPOPT_MAXSEG, cp.mss]];
    if let Some((snd, rcv)) = cp.wscale {
        opts.push([TCPOPT_WINDOW, u32::from(snd) | u32::from(rcv) << 16]);
    }
    if cp.sack {
        opts.push([TCPOPT_SACK_PERM, 0]);
    }
    if cp.timestamp.is_some() {
        opts.push([TCPOPT_TIMESTAMP, 0]);
    }
    // SAFETY: `opts` is a live array of {opt_code, opt_val} pairs.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_REPAIR_OPTIONS,
            opts.as_ptr().cast(),
            (opts.len() * 8) as libc::socklen_t,
        )
    };
    check(rc, "TCP_REPAIR_OPTIONS")?;
    if let Some(ts) = cp.timestamp {
        set(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_TIMESTAMP,
            &ts,
            "TCP_TIMESTAMP",
        )?;
    }
    fill(
        fd,
        TCP_RECV_QUEUE,
        &cp.recv_queue,
        "restoring the receive queue",
    )?;
    // What had been sent goes back as sent (the peer may have it or get a
    // retransmission); what had not is written after repair mode, as new.
    let sent = cp.send_queue.len() - (cp.unsent as usize).min(cp.send_queue.len());
    fill(
        fd,
        TCP_SEND_QUEUE,
        &cp.send_queue[..sent],
        "restoring the send queue",
    )?;
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_REPAIR_WINDOW,
        &cp.window,
        "TCP_REPAIR_WINDOW",
    )?;
    set_repair(fd, false)?;
    let mut rest = &cp.send_queue[sent..];
    while !rest.is_empty() {
        // SAFETY: `rest` is readable for its length.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            return Err(io::Error::other(format!(
                "sending the unsent data again: {}",
                io::Error::last_os_error()
            )));
        }
        rest = &rest[n as usize..];
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Carry a live loopback connection to a new socket in the same host:
    /// the old one is dropped silently in repair mode and the peer keeps
    /// talking to the new one, with queued bytes in both directions kept.
    #[test]
    fn a_connection_survives_checkpoint_and_restore() {
        survives_checkpoint_and_restore("127.0.0.1:0");
    }

    /// The same over IPv6 loopback.
    #[test]
    fn an_ipv6_connection_survives_checkpoint_and_restore() {
        survives_checkpoint_and_restore("[::1]:0");
    }

    fn survives_checkpoint_and_restore(bind: &str) {
        // SAFETY: plain call.
        if unsafe { libc::geteuid() } != 0 {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true: TCP repair needs root"
            );
            eprintln!("SKIP: TCP repair needs CAP_NET_ADMIN");
            return;
        }
        let l = std::net::TcpListener::bind(bind).unwrap();
        let mut peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let (mut served, _) = l.accept().unwrap();
        drop(l);
        served.write_all(b"hello ").unwrap();
        let mut b = [0u8; 6];
        peer.read_exact(&mut b).unwrap();
        // Bytes the server has not read yet travel with the checkpoint.
        peer.write_all(b"unread").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let cp = checkpoint(&served).unwrap();
        assert_eq!(cp.recv_queue, b"unread");
        assert!(cp.mss > 0 && cp.local.port() != 0);
        assert_eq!(cp.local.is_ipv6(), bind.starts_with('['), "{cp:?}");
        // Round trip through the checkpoint's wire form.
        let cp: TcpCheckpoint = serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
        drop(served); // in repair mode: no FIN, no RST
        let mut moved = restore(&cp).unwrap();
        moved
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut got = [0u8; 6];
        moved.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"unread");
        moved.write_all(b"world").unwrap();
        let mut w = [0u8; 5];
        peer.read_exact(&mut w).unwrap();
        assert_eq!(
            &w, b"world",
            "the peer hears the restored socket on the same connection"
        );
        peer.write_all(b"more").unwrap();
        let mut m = [0u8; 4];
        moved.read_exact(&mut m).unwrap();
        assert_eq!(&m, b"more");
    }

    /// A connection whose peer stopped reading: part of what was written
    /// sits unacknowledged, part was never sent. Both arrive, once and in
    /// order, after the restore.
    #[test]
    fn queued_and_unsent_data_survive() {
        // SAFETY: plain call.
        if unsafe { libc::geteuid() } != 0 {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true: TCP repair needs root"
            );
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (served, _) = l.accept().unwrap();
        drop(l);
        // A small receive buffer on the peer, which does not read yet.
        set(
            peer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &4096 as &libc::c_int,
            "SO_RCVBUF",
        )
        .unwrap();
        served.set_nonblocking(true).unwrap();
        let mut written = Vec::new();
        let mut w = &served;
        for i in 0u32..200_000 {
            let chunk: Vec<u8> = (0..1000u32)
                .map(|j| (i.wrapping_mul(31) ^ j) as u8)
                .collect();
            match w.write(&chunk) {
                Ok(n) => written.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let cp = checkpoint(&served).unwrap();
        assert!(
            cp.unsent > 0 && (cp.unsent as usize) < cp.send_queue.len(),
            "some sent-unacked and some unsent data: {} unsent of {}",
            cp.unsent,
            cp.send_queue.len()
        );
        drop(served);
        let moved = restore(&cp).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut got = vec![0u8; written.len()];
        peer.read_exact(&mut got).unwrap();
        assert!(
            got == written,
            "every byte once, in order ({} bytes)",
            written.len()
        );
        drop(moved);
    }
}
