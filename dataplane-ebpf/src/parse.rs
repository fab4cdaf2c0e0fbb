//! The one bounds-checked cursor every program parses through. Each
//! `parse_*` checks the bytes it reads and returns the header's view (with
//! where the next header starts), or why it cannot. What a program then
//! rejects, and with which reason, is the program's policy: the views only
//! expose what the header says.

use aya_ebpf::programs::{TcContext, XdpContext};
use core::mem::size_of;

/// What the cursor reads: a frame whose first bytes are directly
/// addressable (`start..end`), `len` long in all. XDP's frame is all
/// addressable; a TC program's skb may keep its tail in fragments, which
/// only [`Frame::load`] (a helper copy) reaches.
pub trait Frame {
    fn start(&self) -> usize;
    fn end(&self) -> usize;
    /// Bytes in the whole frame.
    fn len(&self) -> usize;
    /// Copy the first `n` bytes into `dst` (0 on success, as the helpers).
    ///
    /// # Safety
    /// `dst` must have room for `n` bytes.
    unsafe fn load(&self, dst: *mut u8, n: u32) -> i64;
}

impl Frame for XdpContext {
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.data_end() - self.data()
    }
    #[inline(always)]
    unsafe fn load(&self, dst: *mut u8, n: u32) -> i64 {
        aya_ebpf::helpers::bpf_xdp_load_bytes(self.ctx, 0, dst.cast(), n)
    }
}

impl Frame for TcContext {
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn len(&self) -> usize {
        TcContext::len(self) as usize
    }
    #[inline(always)]
    unsafe fn load(&self, dst: *mut u8, n: u32) -> i64 {
        aya_ebpf::helpers::bpf_skb_load_bytes(self.skb.skb.cast(), 0, dst.cast(), n)
    }
}

pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPV6_HLEN: usize = 40;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
/// IPv4 header without options (RFC 791 §3.1).
pub const IPV4_HLEN: usize = 20;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const UDP_HLEN: usize = 8;
/// TCP header without options (RFC 9293 §3.1).
pub const TCP_HLEN: usize = 20;
/// Source and destination port: the first 4 bytes of TCP and UDP.
pub const PORTS_LEN: usize = 4;

/// Pointer to a `T` at `off`, or `None` if the packet is too short.
#[inline(always)]
pub fn ptr_at<T>(ctx: &impl Frame, off: usize) -> Option<*mut T> {
    let end = ctx.end();
    #[allow(unused_mut)]
    let mut off = off;
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!("{o} = {o}", o = inout(reg) off);
    }
    #[allow(unused_mut)]
    let mut p = ctx.start() + off;
    // For the verifier only (both barriers): hide where `off` and `p` come from, so LLVM cannot turn
    // the pointer comparison below into a scalar one on `off` (which would
    // leave the access unproven when `off` is variable).
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!("{p} = {p}", p = inout(reg) p);
    }
    if p + size_of::<T>() > end {
        return None;
    }
    Some(p as *mut T)
}

/// Bytes in the packet.
#[inline(always)]
pub fn packet_len(ctx: &impl Frame) -> usize {
    ctx.len()
}

#[inline(always)]
pub fn load_u8(ctx: &impl Frame, off: usize) -> Option<u8> {
    ptr_at::<u8>(ctx, off).map(|p| unsafe { *p })
}

/// Network-order u16 as it sits in the packet, converted to host order.
#[inline(always)]
pub fn load_be16(ctx: &impl Frame, off: usize) -> Option<u16> {
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

/// A u32 as it sits in the packet (network order kept).
#[inline(always)]
pub fn load_raw32(ctx: &impl Frame, off: usize) -> Option<u32> {
    ptr_at::<[u8; 4]>(ctx, off).map(|p| u32::from_ne_bytes(unsafe { *p }))
}

// ---- Ethernet ---------------------------------------------------------------

/// Why the Ethernet header (and its tags) could not be parsed.
#[derive(Clone, Copy)]
pub enum EthError {
    TruncEth,
    TruncVlan,
    TooManyVlans,
}

/// An Ethernet header: the payload's ethertype and where it starts.
pub struct Eth {
    /// The 14-byte header (destination MAC, source MAC, outer ethertype).
    pub hdr: *mut [u8; ETH_HLEN],
    /// Ethertype of the payload, host order.
    pub proto: u16,
    /// Offset of the payload (the L3 header).
    pub l3: usize,
}

/// Ethernet, tags not looked into: a tagged frame's `proto` is the tag's
/// TPID.
#[inline(always)]
pub fn parse_eth(ctx: &impl Frame) -> Result<Eth, EthError> {
    let hdr = ptr_at::<[u8; ETH_HLEN]>(ctx, 0).ok_or(EthError::TruncEth)?;
    // SAFETY: 14 bytes checked.
    let proto = unsafe { u16::from_be_bytes([(*hdr)[12], (*hdr)[13]]) };
    Ok(Eth {
        hdr,
        proto,
        l3: ETH_HLEN,
    })
}

/// Ethernet with up to two VLAN tags (802.1Q / 802.1ad).
#[inline(always)]
pub fn parse_eth_vlans(ctx: &impl Frame) -> Result<Eth, EthError> {
    let mut eth = parse_eth(ctx)?;
    // Unrolled for the verifier: at most two tags.
    if eth.proto == ETH_P_8021Q || eth.proto == ETH_P_8021AD {
        eth.proto = load_be16(ctx, eth.l3 + 2).ok_or(EthError::TruncVlan)?;
        eth.l3 += VLAN_HLEN;
        if eth.proto == ETH_P_8021Q || eth.proto == ETH_P_8021AD {
            eth.proto = load_be16(ctx, eth.l3 + 2).ok_or(EthError::TruncVlan)?;
            eth.l3 += VLAN_HLEN;
            if eth.proto == ETH_P_8021Q || eth.proto == ETH_P_8021AD {
                return Err(EthError::TooManyVlans);
            }
        }
    }
    Ok(eth)
}

// ---- IPv4 -------------------------------------------------------------------

/// Why an IPv4 header is not one the kernel would accept (ip_rcv_core:
/// version 4, IHL at least 5).
#[derive(Clone, Copy)]
pub enum Ipv4Error {
    BadVersion,
    BadIhl,
}

/// The fixed IPv4 header, as the packet has it. Addresses, ID and checksum
/// stay in network byte order.
pub struct Ipv4 {
    /// Offset of the header.
    pub off: usize,
    /// Version and IHL octet.
    pub vihl: u8,
    pub tos: u8,
    /// Total length, host order.
    pub tot_len: u16,
    /// ID as it sits in the packet.
    pub id: u16,
    /// Flags and fragment offset, host order.
    pub frag: u16,
    pub proto: u8,
    /// Header checksum as it sits in the packet.
    pub csum: u16,
    pub src: u32,
    pub dst: u32,
}

impl Ipv4 {
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.vihl >> 4
    }

    /// Header length in bytes, as IHL says (not checked against anything).
    #[inline(always)]
    pub fn ihl(&self) -> usize {
        ((self.vihl & 0x0f) as usize) * 4
    }

    /// Where the L4 header starts, as IHL says.
    #[inline(always)]
    pub fn l4(&self) -> usize {
        self.off + self.ihl()
    }

    /// Version 4 and a header of at least 20 bytes, checked in that order.
    #[inline(always)]
    pub fn check(&self) -> Result<(), Ipv4Error> {
        if self.version() != 4 {
            return Err(Ipv4Error::BadVersion);
        }
        if self.ihl() < IPV4_HLEN {
            return Err(Ipv4Error::BadIhl);
        }
        Ok(())
    }

    /// MF set or a non-zero offset: only the first fragment carries the L4
    /// header, and the kernel reassembles.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.frag & 0x3fff != 0
    }

    /// The options IHL announces are in the packet too.
    #[inline(always)]
    pub fn options_present(&self, ctx: &impl Frame) -> bool {
        self.l4() <= packet_len(ctx)
    }

    /// Where the datagram ends, as the total length says.
    #[inline(always)]
    pub fn end(&self) -> usize {
        self.off + self.tot_len as usize
    }

    /// The lengths the kernel checks (ip_rcv_core) after [`Ipv4::check`],
    /// in this order: the header IHL announces is in the frame, the total
    /// length covers that header, and the datagram it announces is in the
    /// frame too (Ethernet padding may follow it).
    #[inline(always)]
    pub fn check_length(&self, ctx: &impl Frame) -> Result<(), Ipv4LenError> {
        if !self.options_present(ctx) {
            return Err(Ipv4LenError::Truncated);
        }
        if (self.tot_len as usize) < self.ihl() {
            return Err(Ipv4LenError::BelowHeader);
        }
        if self.end() > packet_len(ctx) {
            return Err(Ipv4LenError::Truncated);
        }
        Ok(())
    }
}

/// Why an IPv4 header's lengths do not fit its frame.
#[derive(Clone, Copy)]
pub enum Ipv4LenError {
    /// The options IHL announces, or the datagram the total length
    /// announces, run past the frame.
    Truncated,
    /// A total length shorter than the header IHL announces.
    BelowHeader,
}

/// The fixed 20-byte IPv4 header at `off`, or `None` if it is cut short.
/// Nothing in it is validated (see [`Ipv4::check`]).
#[inline(always)]
pub fn parse_ipv4(ctx: &impl Frame, off: usize) -> Option<Ipv4> {
    let p = ptr_at::<[u8; IPV4_HLEN]>(ctx, off)?;
    // SAFETY: 20 bytes checked.
    let h = unsafe { *p };
    Some(Ipv4 {
        off,
        vihl: h[0],
        tos: h[1],
        tot_len: u16::from_be_bytes([h[2], h[3]]),
        id: u16::from_ne_bytes([h[4], h[5]]),
        frag: u16::from_be_bytes([h[6], h[7]]),
        proto: h[9],
        csum: u16::from_ne_bytes([h[10], h[11]]),
        src: u32::from_ne_bytes([h[12], h[13], h[14], h[15]]),
        dst: u32::from_ne_bytes([h[16], h[17], h[18], h[19]]),
    })
}

// ---- L4 ---------------------------------------------------------------------

/// TCP or UDP ports as they sit in the packet (network order).
#[derive(Clone, Copy)]
pub struct Ports {
    pub src: u16,
    pub dst: u16,
}

/// Length of `proto`'s fixed header: what must be in the packet before a
/// program trusts the ports (and, rewriting, the checksum) of a TCP or UDP
/// header. Anything else: just the 4 bytes a port pair would take.
#[inline(always)]
pub fn l4_hdr_len(proto: u8) -> usize {
    match proto {
        IPPROTO_TCP => TCP_HLEN,
        IPPROTO_UDP => UDP_HLEN,
        _ => PORTS_LEN,
    }
}

/// The ports of the L4 header at `off`, if its first `hdr_len` (at least
/// `PORTS_LEN`) bytes are in the packet.
#[inline(always)]
pub fn parse_l4_ports(ctx: &impl Frame, off: usize, hdr_len: usize) -> Option<Ports> {
    let p = ptr_at::<[u8; PORTS_LEN]>(ctx, off)?;
    if off + hdr_len > packet_len(ctx) {
        return None;
    }
    // SAFETY: 4 bytes checked.
    let p = unsafe { *p };
    Some(Ports {
        src: u16::from_ne_bytes([p[0], p[1]]),
        dst: u16::from_ne_bytes([p[2], p[3]]),
    })
}

/// The length the TCP or UDP header at `l4` gives itself fits the
/// datagram ending at `end` (the IPv4 total length or the IPv6 payload
/// length): a TCP data offset of at least 5 words whose header ends
/// within it (RFC 9293 §3.1), a UDP length of at least 8 that ends within
/// it (RFC 768; a shorter one leaves the rest to be trimmed, as the
/// kernel does). Other protocols have nothing to check here.
#[inline(always)]
pub fn l4_lengths_ok(ctx: &impl Frame, proto: u8, l4: usize, end: usize) -> bool {
    let len = match proto {
        IPPROTO_TCP => match load_u8(ctx, l4 + 12) {
            Some(b) => ((b >> 4) as usize) * 4,
            None => return false,
        },
        IPPROTO_UDP => match load_be16(ctx, l4 + 4) {
            Some(n) => n as usize,
            None => return false,
        },
        _ => return true,
    };
    len >= l4_hdr_len(proto) && l4 + len <= end
}

// ---- IPv6 -------------------------------------------------------------------

/// The fixed IPv6 header (RFC 8200 §3); `payload_end` is where its
/// payload length says the packet ends.
#[derive(Clone, Copy)]
pub struct Ipv6 {
    /// Addresses as four 32-bit words, as in the packet.
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub payload_end: usize,
}

pub enum Ipv6Error {
    Truncated,
    BadVersion,
    /// Payload length 0 (a jumbogram, RFC 2675) or past the frame.
    BadLength,
    /// An extension header past the payload, or more than the bound.
    ExtChain,
    /// A fragment header: only the reassembled packet has a whole key.
    Fragment,
}

#[inline(always)]
fn words(b: &[u8]) -> [u32; 4] {
    [
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

/// The fixed header at `off` alone, checked (version, payload length
/// within the frame): (header, its next header, the flow label's low 16
/// bits as in the packet).
#[inline(always)]
pub fn parse_ipv6_fixed(ctx: &impl Frame, off: usize) -> Result<(Ipv6, u8, u16), Ipv6Error> {
    let p = ptr_at::<[u8; IPV6_HLEN]>(ctx, off).ok_or(Ipv6Error::Truncated)?;
    // SAFETY: 40 bytes checked.
    let h = unsafe { &*p };
    if h[0] >> 4 != 6 {
        return Err(Ipv6Error::BadVersion);
    }
    let plen = u16::from_be_bytes([h[4], h[5]]) as usize;
    let payload_end = off + IPV6_HLEN + plen;
    if plen == 0 || payload_end > packet_len(ctx) {
        return Err(Ipv6Error::BadLength);
    }
    let ip = Ipv6 {
        src: words(&h[8..24]),
        dst: words(&h[24..40]),
        payload_end,
    };
    Ok((ip, h[6], u16::from_ne_bytes([h[2], h[3]])))
}

/// The fixed header at `off` and the first header after the extension
/// chain: (header, its upper-layer protocol, that header's offset). Hop-by-
/// hop, routing and destination options headers are walked, at most
/// `max_ext` of them; a fragment header stops the walk.
#[inline(always)]
pub fn parse_ipv6(
    ctx: &impl Frame,
    off: usize,
    max_ext: usize,
) -> Result<(Ipv6, u8, usize), Ipv6Error> {
    let (ip, mut next, _) = parse_ipv6_fixed(ctx, off)?;
    let payload_end = ip.payload_end;
    let mut at = off + IPV6_HLEN;
    for _ in 0..max_ext {
        match next {
            // Hop-by-hop, routing, destination options: (len + 1) * 8.
            0 | 43 | 60 => {
                let b = ptr_at::<[u8; 2]>(ctx, at).ok_or(Ipv6Error::ExtChain)?;
                // SAFETY: 2 bytes checked.
                let b = unsafe { *b };
                next = b[0];
                at += (b[1] as usize + 1) * 8;
                if at > payload_end {
                    return Err(Ipv6Error::ExtChain);
                }
            }
            44 => return Err(Ipv6Error::Fragment),
            _ => return Ok((ip, next, at)),
        }
    }
    match next {
        0 | 43 | 60 => Err(Ipv6Error::ExtChain),
        44 => Err(Ipv6Error::Fragment),
        _ => Ok((ip, next, at)),
    }
}

// ---- GTP-U ------------------------------------------------------------------

/// UDP port of GTP-U (TS 29.281 §4.4.2.3).
pub const GTPU_PORT: u16 = 2152;
/// The mandatory part of the header: flags, message type, length, TEID.
pub const GTPU_HLEN: usize = 8;
/// Sequence number (2), N-PDU number (1), next extension type (1): present
/// when any of E, S, PN is set.
pub const GTPU_OPT_LEN: usize = 4;
pub const GTPU_MSG_GPDU: u8 = 255;
/// Flags octet: version (3 bits) = 1, PT = 1.
pub const GTPU_VERSION_PT_MASK: u8 = 0xf0;
pub const GTPU_VERSION1_PT: u8 = 0x30;
pub const GTPU_FLAG_E: u8 = 0x04;
pub const GTPU_FLAGS_ESPN: u8 = 0x07;
/// PDU Session Container (TS 38.415), the extension that carries the QFI.
pub const GTPU_EXT_PDU_SESSION: u8 = 0x85;
/// Extension headers walked before giving up (3GPP defines few; a chain
/// longer than this is treated as malformed rather than looped over).
pub const GTPU_MAX_EXT: usize = 4;

/// Why a GTP-U header cannot be used.
#[derive(Clone, Copy)]
pub enum GtpuError {
    /// The packet ends before a part of the header that must be read: the
    /// mandatory 8 octets, the optional 4, or the first octet (the
    /// length) of an extension header the chain announces.
    Truncated,
    /// Not version 1 with PT 1 (GTPv2-C, GTP').
    BadVersion,
    /// An extension header of length 0, one whose length runs past the
    /// packet, or a chain longer than [`GTPU_MAX_EXT`].
    BadExtension,
}

/// A GTP-U header (TS 29.281 §5.1) as the packet has it.
pub struct Gtpu {
    pub flags: u8,
    pub msg: u8,
    /// Length field, host order: the octets after the mandatory 8.
    pub len: u16,
    /// TEID, host order.
    pub teid: u32,
    /// Offset of what follows the header chain (a G-PDU's T-PDU).
    pub payload: usize,
    /// QFI of a PDU Session Container in the chain, [`GTPU_NO_QFI`] if
    /// there is none (see [`Gtpu::qfi`]). A plain byte, not an `Option`:
    /// LLVM leaves a `None`'s payload undefined and may then fill it from
    /// any register, a packet pointer included, which the verifier refuses.
    pub qfi_raw: u8,
}

/// `Gtpu::qfi_raw` without a PDU Session Container (a QFI has 6 bits).
pub const GTPU_NO_QFI: u8 = 0xff;

impl Gtpu {
    /// The QFI of the PDU Session Container, if the chain has one.
    #[inline(always)]
    #[allow(dead_code, reason = "the gateway's uplink does not use the QFI yet")]
    pub fn qfi(&self) -> Option<u8> {
        (self.qfi_raw != GTPU_NO_QFI).then_some(self.qfi_raw)
    }
}

/// The mandatory 8 octets at `off` and the version check only; `payload`
/// is where the optional fields would start. See [`gtpu_extensions`].
#[inline(always)]
pub fn parse_gtpu_fixed(ctx: &impl Frame, off: usize) -> Result<Gtpu, GtpuError> {
    let p = ptr_at::<[u8; GTPU_HLEN]>(ctx, off).ok_or(GtpuError::Truncated)?;
    // SAFETY: 8 bytes checked.
    let h = unsafe { *p };
    if h[0] & GTPU_VERSION_PT_MASK != GTPU_VERSION1_PT {
        return Err(GtpuError::BadVersion);
    }
    Ok(Gtpu {
        flags: h[0],
        msg: h[1],
        len: u16::from_be_bytes([h[2], h[3]]),
        teid: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        payload: off + GTPU_HLEN,
        qfi_raw: GTPU_NO_QFI,
    })
}

/// The optional fields and the extension chain after a header from
/// [`parse_gtpu_fixed`]: moves `payload` past them and picks up the QFI.
/// When any of E/S/PN is set the optional 4 octets are present; with E
/// the chain follows, each header's length in 4-octet units counting its
/// length and next-type octets.
#[inline(always)]
pub fn gtpu_extensions(ctx: &impl Frame, g: &mut Gtpu) -> Result<(), GtpuError> {
    if g.flags & GTPU_FLAGS_ESPN == 0 {
        return Ok(());
    }
    let opt = g.payload;
    let mut next = load_u8(ctx, opt + 3).ok_or(GtpuError::Truncated)?;
    let mut ext = opt + GTPU_OPT_LEN;
    g.payload = ext;
    if g.flags & GTPU_FLAG_E == 0 {
        // The next-type octet means nothing without E.
        return Ok(());
    }
    for _ in 0..GTPU_MAX_EXT {
        if next == 0 {
            g.payload = ext;
            return Ok(());
        }
        let units = load_u8(ctx, ext).ok_or(GtpuError::Truncated)? as usize;
        if units == 0 {
            return Err(GtpuError::BadExtension);
        }
        let len = units * 4;
        let this = next;
        next = load_u8(ctx, ext + len - 1).ok_or(GtpuError::BadExtension)?;
        if this == GTPU_EXT_PDU_SESSION {
            // TS 38.415 §5.5.2: the QFI is the low 6 bits of octet 2 of
            // the content (both the DL and the UL frame).
            g.qfi_raw = load_u8(ctx, ext + 2).ok_or(GtpuError::BadExtension)? & 0x3f;
        }
        ext += len;
    }
    if next == 0 {
        g.payload = ext;
        Ok(())
    } else {
        Err(GtpuError::BadExtension)
    }
}

/// The whole header chain at `off`: [`parse_gtpu_fixed`], then
/// [`gtpu_extensions`].
#[inline(always)]
pub fn parse_gtpu(ctx: &impl Frame, off: usize) -> Result<Gtpu, GtpuError> {
    let mut g = parse_gtpu_fixed(ctx, off)?;
    gtpu_extensions(ctx, &mut g)?;
    Ok(g)
}
