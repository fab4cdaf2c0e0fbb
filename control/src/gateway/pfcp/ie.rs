//! PFCP information elements (TS 29.244 §8.1, §8.2): the TLV framing and
//! the leaf IEs this gateway reads or writes. Bit layouts checked against
//! the spec text and scapy's independent `scapy.contrib.pfcp`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IE types (§8.1.2, Table 8.1.2-1).
pub mod ty {
    pub const CREATE_PDR: u16 = 1;
    pub const PDI: u16 = 2;
    pub const CREATE_FAR: u16 = 3;
    pub const FORWARDING_PARAMETERS: u16 = 4;
    pub const CREATE_URR: u16 = 6;
    pub const CREATE_QER: u16 = 7;
    pub const CREATED_PDR: u16 = 8;
    pub const UPDATE_PDR: u16 = 9;
    pub const UPDATE_FAR: u16 = 10;
    pub const UPDATE_FORWARDING_PARAMETERS: u16 = 11;
    pub const REMOVE_PDR: u16 = 15;
    pub const REMOVE_FAR: u16 = 16;
    pub const REMOVE_URR: u16 = 17;
    pub const CAUSE: u16 = 19;
    pub const SOURCE_INTERFACE: u16 = 20;
    pub const F_TEID: u16 = 21;
    pub const NETWORK_INSTANCE: u16 = 22;
    pub const GATE_STATUS: u16 = 25;
    pub const PRECEDENCE: u16 = 29;
    pub const VOLUME_THRESHOLD: u16 = 31;
    pub const REPORTING_TRIGGERS: u16 = 37;
    pub const REPORT_TYPE: u16 = 39;
    pub const OFFENDING_IE: u16 = 40;
    pub const DESTINATION_INTERFACE: u16 = 42;
    pub const UP_FUNCTION_FEATURES: u16 = 43;
    pub const APPLY_ACTION: u16 = 44;
    pub const PDR_ID: u16 = 56;
    pub const F_SEID: u16 = 57;
    pub const NODE_ID: u16 = 60;
    pub const MEASUREMENT_METHOD: u16 = 62;
    pub const USAGE_REPORT_TRIGGER: u16 = 63;
    pub const VOLUME_MEASUREMENT: u16 = 66;
    /// Usage Report within a Session Modification Response.
    pub const USAGE_REPORT_SMR: u16 = 78;
    /// Usage Report within a Session Deletion Response.
    pub const USAGE_REPORT_SDR: u16 = 79;
    /// Usage Report within a Session Report Request.
    pub const USAGE_REPORT_SRR: u16 = 80;
    pub const URR_ID: u16 = 81;
    pub const OUTER_HEADER_CREATION: u16 = 84;
    pub const UE_IP_ADDRESS: u16 = 93;
    pub const OUTER_HEADER_REMOVAL: u16 = 95;
    pub const RECOVERY_TIME_STAMP: u16 = 96;
    pub const UR_SEQN: u16 = 104;
    pub const FAR_ID: u16 = 108;
    pub const QER_ID: u16 = 109;
    pub const QFI: u16 = 124;
}

/// Bit 8 of the first type octet: an enterprise-specific IE (§8.1.1),
/// followed by a 2-octet Enterprise ID. We know none; they are skipped.
const ENTERPRISE_BIT: u16 = 0x8000;

/// Cause values (§8.2.1, Table 8.2.1-1). A newtype, not an enum: a peer may
/// send any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cause(pub u8);

impl Cause {
    pub const ACCEPTED: Cause = Cause(1);
    pub const REJECTED: Cause = Cause(64);
    pub const SESSION_CONTEXT_NOT_FOUND: Cause = Cause(65);
    pub const MANDATORY_IE_MISSING: Cause = Cause(66);
    pub const CONDITIONAL_IE_MISSING: Cause = Cause(67);
    pub const INVALID_LENGTH: Cause = Cause(68);
    pub const MANDATORY_IE_INCORRECT: Cause = Cause(69);
    pub const NO_ASSOCIATION: Cause = Cause(72);
    pub const RULE_FAILURE: Cause = Cause(73);
    pub const NO_RESOURCES: Cause = Cause(75);
    pub const SERVICE_NOT_SUPPORTED: Cause = Cause(76);
}

/// Why a message body could not be decoded: the cause to answer with and
/// the IE to name as Offending IE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IeError {
    pub cause: Cause,
    pub ie: Option<u16>,
}

impl IeError {
    /// An IE's length runs past its parent (or the message): §7.6
    /// "Invalid Length".
    pub fn length(ie: u16) -> Self {
        IeError {
            cause: Cause::INVALID_LENGTH,
            ie: Some(ie),
        }
    }
    /// An IE we read is shorter than its flags say, or holds a value we
    /// cannot use: "Mandatory IE incorrect".
    pub fn incorrect(ie: u16) -> Self {
        IeError {
            cause: Cause::MANDATORY_IE_INCORRECT,
            ie: Some(ie),
        }
    }
    pub fn missing(ie: u16) -> Self {
        IeError {
            cause: Cause::MANDATORY_IE_MISSING,
            ie: Some(ie),
        }
    }
}

/// Calls `f(type, value)` for each 3GPP IE in `buf`, in order; enterprise
/// IEs are skipped (§8.1.1). Unknown types are passed on for the caller to
/// ignore (§7.6: an unexpected IE is not an error).
pub fn walk<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), IeError>,
) -> Result<(), IeError> {
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(IeError {
                cause: Cause::INVALID_LENGTH,
                ie: None,
            });
        }
        let ty = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let Some(value) = rest.get(4..4 + len) else {
            return Err(IeError::length(ty));
        };
        rest = &rest[4 + len..];
        if ty & ENTERPRISE_BIT != 0 {
            if len < 2 {
                return Err(IeError::length(ty));
            }
            continue;
        }
        f(ty, value)?;
    }
    Ok(())
}

/// A bounds-checked reader over one IE's value.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    ie: u16,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(ie: u16, buf: &'a [u8]) -> Self {
        Cursor { buf, ie }
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], IeError> {
        if self.buf.len() < n {
            return Err(IeError::incorrect(self.ie));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, IeError> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, IeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, IeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, IeError> {
        let b = self.bytes(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn ipv4(&mut self) -> Result<Ipv4Addr, IeError> {
        Ok(Ipv4Addr::from(self.u32()?))
    }
    pub(crate) fn ipv6(&mut self) -> Result<Ipv6Addr, IeError> {
        let b = self.bytes(16)?;
        let mut a = [0; 16];
        a.copy_from_slice(b);
        Ok(Ipv6Addr::from(a))
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Writes IEs; grouped IEs nest through [`IeWriter::group`].
#[derive(Default)]
pub struct IeWriter {
    pub(crate) buf: Vec<u8>,
}

impl IeWriter {
    pub fn ie(&mut self, ty: u16, value: &[u8]) {
        self.buf.extend_from_slice(&ty.to_be_bytes());
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&value[..usize::from(len)]);
    }
    pub fn group(&mut self, ty: u16, f: impl FnOnce(&mut IeWriter)) {
        let mut inner = IeWriter::default();
        f(&mut inner);
        self.ie(ty, &inner.buf);
    }
    pub fn u8(&mut self, ty: u16, v: u8) {
        self.ie(ty, &[v]);
    }
    pub fn u16(&mut self, ty: u16, v: u16) {
        self.ie(ty, &v.to_be_bytes());
    }
    pub fn u32(&mut self, ty: u16, v: u32) {
        self.ie(ty, &v.to_be_bytes());
    }
}

/// Node ID (§8.2.38). Type values beyond FQDN are kept so the engine can
/// answer "Mandatory IE incorrect" for them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeId {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// DNS labels joined by dots.
    Fqdn(String),
    Unknown(u8),
}

impl NodeId {
    pub(crate) fn decode(v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ty::NODE_ID, v);
        Ok(match c.u8()? & 0x0f {
            0 => NodeId::V4(c.ipv4()?),
            1 => NodeId::V6(c.ipv6()?),
            2 => {
                let mut labels = Vec::new();
                let mut rest = c.rest();
                while let Some((&n, tail)) = rest.split_first() {
                    let label = tail
                        .get(..usize::from(n))
                        .ok_or(IeError::incorrect(ty::NODE_ID))?;
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    rest = &tail[usize::from(n)..];
                }
                NodeId::Fqdn(labels.join("."))
            }
            t => NodeId::Unknown(t),
        })
    }
    pub(crate) fn encode(&self, w: &mut IeWriter) {
        let mut v = Vec::new();
        match self {
            NodeId::V4(a) => {
                v.push(0);
                v.extend_from_slice(&a.octets());
            }
            NodeId::V6(a) => {
                v.push(1);
                v.extend_from_slice(&a.octets());
            }
            NodeId::Fqdn(name) => {
                v.push(2);
                for label in name.split('.') {
                    let l = &label.as_bytes()[..label.len().min(63)];
                    v.push(l.len() as u8);
                    v.extend_from_slice(l);
                }
            }
            NodeId::Unknown(t) => v.push(*t & 0x0f),
        }
        w.ie(ty::NODE_ID, &v);
    }
}

/// F-SEID (§8.2.37): octet 5 bit 1 V6, bit 2 V4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fseid {
    pub seid: u64,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Fseid {
    pub(crate) fn decode(v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ty::F_SEID, v);
        let flags = c.u8()?;
        let seid = c.u64()?;
        let v4 = if flags & 0x02 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let v6 = if flags & 0x01 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        Ok(Fseid { seid, v4, v6 })
    }
    pub(crate) fn encode(&self, w: &mut IeWriter) {
        let mut v = vec![u8::from(self.v4.is_some()) << 1 | u8::from(self.v6.is_some())];
        v.extend_from_slice(&self.seid.to_be_bytes());
        if let Some(a) = self.v4 {
            v.extend_from_slice(&a.octets());
        }
        if let Some(a) = self.v6 {
            v.extend_from_slice(&a.octets());
        }
        w.ie(ty::F_SEID, &v);
    }
}

/// F-TEID (§8.2.3): octet 5 bit 1 V4, bit 2 V6, bit 3 CH, bit 4 CHID.
/// With CH the UP chooses: no TEID, no address, and a Choose ID if CHID;
/// V4 and V6 then say which address families the CP asks for (one or
/// both, §5.5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fteid {
    pub ch: bool,
    pub teid: u32,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// The V4 flag (under CH: an IPv4 address is asked for; without CH it
    /// tells what `v4` does).
    pub want_v4: bool,
    /// The V6 flag under CH: an IPv6 address is asked for. Not set
    /// without CH, where `v6` tells.
    pub want_v6: bool,
    pub choose_id: Option<u8>,
}

impl Fteid {
    pub(crate) fn decode(v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ty::F_TEID, v);
        let flags = c.u8()?;
        let (v4f, v6f, ch, chid) = (
            flags & 1 != 0,
            flags & 2 != 0,
            flags & 4 != 0,
            flags & 8 != 0,
        );
        let mut f = Fteid {
            ch,
            want_v4: v4f,
            want_v6: ch && v6f,
            ..Fteid::default()
        };
        if ch {
            if chid {
                f.choose_id = Some(c.u8()?);
            }
        } else {
            f.teid = c.u32()?;
            if v4f {
                f.v4 = Some(c.ipv4()?);
            }
            if v6f {
                f.v6 = Some(c.ipv6()?);
            }
        }
        Ok(f)
    }
    pub(crate) fn encode(&self, ie: u16, w: &mut IeWriter) {
        let mut flags = 0u8;
        let mut v = vec![0];
        if self.ch {
            flags |= 4 | u8::from(self.want_v6) << 1 | u8::from(self.want_v4);
            if let Some(id) = self.choose_id {
                flags |= 8;
                v.push(id);
            }
        } else {
            v.extend_from_slice(&self.teid.to_be_bytes());
            if let Some(a) = self.v4 {
                flags |= 1;
                v.extend_from_slice(&a.octets());
            }
            if let Some(a) = self.v6 {
                flags |= 2;
                v.extend_from_slice(&a.octets());
            }
        }
        v[0] = flags;
        w.ie(ie, &v);
    }
}

/// UE IP Address (§8.2.62): bit 1 V6, bit 2 V4, bit 3 S/D (1: destination).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UeIp {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    pub destination: bool,
}

impl UeIp {
    pub(crate) fn decode(v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ty::UE_IP_ADDRESS, v);
        let flags = c.u8()?;
        let v4 = if flags & 2 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let v6 = if flags & 1 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        Ok(UeIp {
            v4,
            v6,
            destination: flags & 4 != 0,
        })
    }
    pub(crate) fn encode(&self, w: &mut IeWriter) {
        let mut v = vec![
            u8::from(self.destination) << 2
                | u8::from(self.v4.is_some()) << 1
                | u8::from(self.v6.is_some()),
        ];
        if let Some(a) = self.v4 {
            v.extend_from_slice(&a.octets());
        }
        if let Some(a) = self.v6 {
            v.extend_from_slice(&a.octets());
        }
        w.ie(ty::UE_IP_ADDRESS, &v);
    }
}

/// Outer Header Creation (§8.2.56). The description is two octets, octet
/// 5 in the top byte: bit 1 (0x0100) GTP-U/UDP/IPv4, bit 2 (0x0200)
/// GTP-U/UDP/IPv6, the two we build; bits 3-8 are UDP/IPv4, UDP/IPv6,
/// IPv4, IPv6, C-TAG and S-TAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ohc {
    pub description: u16,
    pub teid: Option<u32>,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Ohc {
    pub const GTPU_UDP_IPV4: u16 = 0x0100;
    pub const GTPU_UDP_IPV6: u16 = 0x0200;
    const UDP_IPV4: u16 = 0x0400;
    const UDP_IPV6: u16 = 0x0800;
    const IPV4: u16 = 0x1000;
    const IPV6: u16 = 0x2000;

    pub fn gtpu_v4(teid: u32, addr: Ipv4Addr) -> Self {
        Ohc {
            description: Self::GTPU_UDP_IPV4,
            teid: Some(teid),
            v4: Some(addr),
            v6: None,
        }
    }
    pub fn gtpu_v6(teid: u32, addr: Ipv6Addr) -> Self {
        Ohc {
            description: Self::GTPU_UDP_IPV6,
            teid: Some(teid),
            v4: None,
            v6: Some(addr),
        }
    }
    /// The access node's TEID and address of an OHC that is exactly
    /// GTP-U/UDP/IPv4 or exactly GTP-U/UDP/IPv6, with its TEID and the
    /// address of that family only; `None` for anything else (both GTP-U
    /// bits at once included).
    pub fn gtpu_peer(&self) -> Option<(u32, IpAddr)> {
        match (self.description, self.teid?, self.v4, self.v6) {
            (Self::GTPU_UDP_IPV4, teid, Some(a), None) => Some((teid, IpAddr::V4(a))),
            (Self::GTPU_UDP_IPV6, teid, None, Some(a)) => Some((teid, IpAddr::V6(a))),
            _ => None,
        }
    }
    pub(crate) fn decode(v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ty::OUTER_HEADER_CREATION, v);
        let d = c.u16()?;
        // Fields present per the description bits, in the spec's order:
        // TEID, IPv4 address, IPv6 address, then the port number, C-TAG
        // and S-TAG, which are not read.
        let teid = if d & (Self::GTPU_UDP_IPV4 | Self::GTPU_UDP_IPV6) != 0 {
            Some(c.u32()?)
        } else {
            None
        };
        let v4 = if d & (Self::GTPU_UDP_IPV4 | Self::UDP_IPV4 | Self::IPV4) != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let v6 = if d & (Self::GTPU_UDP_IPV6 | Self::UDP_IPV6 | Self::IPV6) != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        Ok(Ohc {
            description: d,
            teid,
            v4,
            v6,
        })
    }
    pub(crate) fn encode(&self, w: &mut IeWriter) {
        let mut v = self.description.to_be_bytes().to_vec();
        if let Some(t) = self.teid {
            v.extend_from_slice(&t.to_be_bytes());
        }
        if let Some(a) = self.v4 {
            v.extend_from_slice(&a.octets());
        }
        if let Some(a) = self.v6 {
            v.extend_from_slice(&a.octets());
        }
        w.ie(ty::OUTER_HEADER_CREATION, &v);
    }
}

/// Volume Threshold (§8.2.13, flags TOVOL/ULVOL/DLVOL) and Volume
/// Measurement (§8.2.44, also TONOP/ULNOP/DLNOP bits 4-6): each field is
/// present when its flag is set, in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Volumes {
    pub total: Option<u64>,
    pub ul: Option<u64>,
    pub dl: Option<u64>,
    pub total_pkts: Option<u64>,
    pub ul_pkts: Option<u64>,
    pub dl_pkts: Option<u64>,
}

impl Volumes {
    fn fields(&self) -> [Option<u64>; 6] {
        [
            self.total,
            self.ul,
            self.dl,
            self.total_pkts,
            self.ul_pkts,
            self.dl_pkts,
        ]
    }
    pub(crate) fn decode(ie: u16, v: &[u8]) -> Result<Self, IeError> {
        let mut c = Cursor::new(ie, v);
        let flags = c.u8()?;
        // A Volume Threshold has only the three volume flags.
        let n = if ie == ty::VOLUME_MEASUREMENT { 6 } else { 3 };
        let mut f = [None; 6];
        for (i, slot) in f.iter_mut().enumerate().take(n) {
            if flags & (1 << i) != 0 {
                *slot = Some(c.u64()?);
            }
        }
        Ok(Volumes {
            total: f[0],
            ul: f[1],
            dl: f[2],
            total_pkts: f[3],
            ul_pkts: f[4],
            dl_pkts: f[5],
        })
    }
    pub(crate) fn encode(&self, ie: u16, w: &mut IeWriter) {
        let mut v = vec![0];
        for (i, f) in self.fields().iter().enumerate() {
            if let Some(x) = f {
                v[0] |= 1 << i;
                v.extend_from_slice(&x.to_be_bytes());
            }
        }
        w.ie(ie, &v);
    }
}

/// Usage Report Trigger bits (§8.2.41), as a 24-bit value: octet 5 in the
/// top byte.
pub mod trigger {
    /// Octet 5 bit 2: volume threshold reached.
    pub const VOLTH: u32 = 0x02_0000;
    /// Octet 6 bit 4: termination report.
    pub const TERMR: u32 = 0x00_0800;
}

/// Reporting Triggers bit (§8.2.19), octet 5 bit 2, as the first octet.
pub const REPORTING_VOLTH: u8 = 0x02;
/// Measurement Method (§8.2.40) octet 5 bit 2.
pub const MEASURE_VOLUM: u8 = 0x02;
/// Report Type (§8.2.21) octet 5 bit 2: usage report.
pub const REPORT_USAR: u8 = 0x02;
/// Apply Action (§8.2.26) octet 5 bits.
pub mod action {
    pub const DROP: u8 = 0x01;
    pub const FORW: u8 = 0x02;
    pub const BUFF: u8 = 0x04;
}
/// Source and Destination Interface values (§8.2.2, §8.2.24).
pub const IFACE_ACCESS: u8 = 0;
pub const IFACE_CORE: u8 = 1;
/// Outer Header Removal description (§8.2.64) 0: GTP-U/UDP/IPv4.
pub const OHR_GTPU_UDP_IPV4: u8 = 0;
/// Outer Header Removal description (§8.2.64) 1: GTP-U/UDP/IPv6.
pub const OHR_GTPU_UDP_IPV6: u8 = 1;
/// UP Function Features (§8.2.25) octet 5 bit 5: the UP allocates F-TEIDs.
pub const UP_FEATURE_FTUP: u8 = 0x10;
