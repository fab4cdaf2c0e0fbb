//! The few rtnetlink requests a VRRP takeover needs, in process: an
//! interface up or down, an address added or deleted. A takeover waits for
//! them, and an `ip` process per step costs milliseconds of the failover
//! gap (keepalived does the same over netlink).

use std::{
    io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// `ifaddrmsg.ifa_flags`: no duplicate address detection (IPv6).
const IFA_F_NODAD: u8 = 0x02;

/// A NETLINK_ROUTE socket of the current network namespace.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new socket nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: a timeval of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        Ok(Self { fd, seq: 0 })
    }

    /// Send one request and wait for its acknowledgement.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.exchange(kind, flags, body).map(|_| ())
    }

    /// Send one request; the replies to it (header stripped) up to its
    /// acknowledgement.
    fn exchange(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let mut replies = Vec::new();
        self.seq = self.seq.wrapping_add(1);
        let mut m = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: the kernel's address (all zero but the family).
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: valid buffer and address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 16384];
        loop {
            // SAFETY: valid buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let got = &buf[..n as usize];
            let mut off = 0;
            while off + NLMSG_HDRLEN + 4 <= got.len() {
                let len = u32::from_ne_bytes(got[off..off + 4].try_into().expect("4")) as usize;
                let kind = u16::from_ne_bytes([got[off + 4], got[off + 5]]);
                let seq = u32::from_ne_bytes(got[off + 8..off + 12].try_into().expect("4"));
                if kind == NLMSG_ERROR && seq == self.seq {
                    let e = i32::from_ne_bytes(got[off + 16..off + 20].try_into().expect("4"));
                    return if e == 0 {
                        Ok(replies)
                    } else {
                        Err(io::Error::from_raw_os_error(-e))
                    };
                }
                if len < NLMSG_HDRLEN || off + len > got.len() {
                    break;
                }
                if seq == self.seq {
                    replies.push(got[off + NLMSG_HDRLEN..off + len].to_vec());
                }
                off += len.div_ceil(4) * 4;
            }
        }
    }

    /// How many receive queues interface `ifindex` has (IFLA_NUM_RX_QUEUES),
    /// in this network namespace (sysfs shows the namespace that mounted
    /// it, not the caller's).
    pub fn rx_queues(&mut self, ifindex: u32) -> io::Result<u32> {
        const RTM_GETLINK: u16 = 18;
        const IFLA_NUM_RX_QUEUES: u16 = 32;
        // struct ifinfomsg: family, pad, type, index, flags, change.
        let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        b.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        for r in self.exchange(RTM_GETLINK, 0, &b)? {
            let mut off = 16; // past the ifinfomsg
            while off + 4 <= r.len() {
                let len = u16::from_ne_bytes([r[off], r[off + 1]]) as usize;
                let kind = u16::from_ne_bytes([r[off + 2], r[off + 3]]) & 0x3fff;
                if len < 4 || off + len > r.len() {
                    break;
                }
                if kind == IFLA_NUM_RX_QUEUES && len >= 8 {
                    return Ok(u32::from_ne_bytes(
                        r[off + 4..off + 8].try_into().expect("4"),
                    ));
                }
                off += len.div_ceil(4) * 4;
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {ifindex}: no receive queue count in its link message"),
        ))
    }

    /// Set interface `ifindex` up or down.
    pub fn set_up(&mut self, ifindex: u32, up: bool) -> io::Result<()> {
        // struct ifinfomsg: family, pad, type, index, flags, change.
        let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        b.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        let f = libc::IFF_UP as u32;
        b.extend_from_slice(&(if up { f } else { 0 }).to_ne_bytes());
        b.extend_from_slice(&f.to_ne_bytes());
        self.request(RTM_NEWLINK, 0, &b)
    }

    fn addr_body(ifindex: u32, addr: IpAddr, prefix_len: u8, nodad: bool) -> Vec<u8> {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
        };
        // struct ifaddrmsg: family, prefixlen, flags, scope (universe; the
        // kernel gives IPv6 addresses the scope of their kind), index.
        let flags = if nodad && addr.is_ipv6() {
            IFA_F_NODAD
        } else {
            0
        };
        let mut b = vec![family, prefix_len, flags, 0];
        b.extend_from_slice(&ifindex.to_ne_bytes());
        attr(&mut b, IFA_LOCAL, &bytes);
        attr(&mut b, IFA_ADDRESS, &bytes);
        b
    }

    /// Add `addr/prefix_len` on `ifindex` (IPv6: without duplicate
    /// address detection when `nodad`).
    pub fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        nodad: bool,
    ) -> io::Result<()> {
        let b = Self::addr_body(ifindex, addr, prefix_len, nodad);
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &b)
    }

    pub fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let b = Self::addr_body(ifindex, addr, prefix_len, false);
        self.request(RTM_DELADDR, 0, &b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let mut out = Vec::new();
        attr(&mut out, IFA_LOCAL, &[10, 3, 0, 100]);
        assert_eq!(out, [8, 0, 2, 0, 10, 3, 0, 100]);
        let mut out = Vec::new();
        attr(&mut out, 9, &[1, 2, 3, 4, 5]);
        assert_eq!(out.len(), 12);
        assert_eq!(&out[..2], &9u16.to_ne_bytes());
        let b = Rtnl::addr_body(7, "2001:db8::1".parse().unwrap(), 64, true);
        assert_eq!(&b[..4], &[libc::AF_INET6 as u8, 64, IFA_F_NODAD, 0]);
        assert_eq!(b.len(), 8 + 2 * 20);
        let b = Rtnl::addr_body(7, "10.3.0.100".parse().unwrap(), 24, true);
        assert_eq!(b[2], 0, "no NODAD flag for IPv4");
    }
}

/// The receive queues interface `name` has in use, in this network
/// namespace: the larger of its rx and combined channels (ETHTOOL_GCHANNELS;
/// a NIC with 64 queues allocated may run 8), else the queues it was made
/// with (IFLA_NUM_RX_QUEUES) when it reports no channels.
pub fn rx_queues_in_use(name: &str, ifindex: u32) -> io::Result<u32> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other,
    // max_combined, rx_count, tx_count, other_count, combined_count.
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    // SAFETY: a zeroed ifreq with the name copied in (NUL-terminated) and
    // ifr_data pointing at `ch`, which outlives the ioctl.
    let got = unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        let bytes = name.as_bytes();
        if bytes.len() >= ifr.ifr_name.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: name too long"),
            ));
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = ch.as_mut_ptr().cast();
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let r = libc::ioctl(fd, SIOCETHTOOL, &mut ifr);
        libc::close(fd);
        r == 0
    };
    let in_use = ch[5].max(ch[8]);
    if got && in_use > 0 {
        return Ok(in_use);
    }
    Rtnl::open()?.rx_queues(ifindex)
}

#[cfg(test)]
mod queue_tests {
    /// Loopback reports no channels: its queue count comes from its link
    /// message (one).
    #[test]
    fn loopbacks_receive_queues_come_from_netlink() {
        let lo = dataplane_user::ifindex("lo").unwrap();
        assert_eq!(super::rx_queues_in_use("lo", lo).unwrap(), 1);
        assert_eq!(super::Rtnl::open().unwrap().rx_queues(lo).unwrap(), 1);
    }
}
