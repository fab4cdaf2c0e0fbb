//! PFCP messages on the wire (TS 29.244 §7): the header, the grouped
//! rule IEs, and the messages a UP function answers, sends, or (for the
//! tests and the benchmark client) builds as a CP would.
//!
//! Decoding is lenient about what the procedures check: every IE is an
//! `Option` or a `Vec`, and the engine decides what is mandatory. It fails
//! only on framing ("Invalid Length") and on IEs too short for what their
//! flags announce ("Mandatory IE incorrect").

use std::net::Ipv4Addr;

use super::ie::{
    action, ty, walk, Cause, Cursor, Fseid, Fteid, IeError, IeWriter, NodeId, Ohc, UeIp, Volumes,
    IFACE_ACCESS, IFACE_CORE, MEASURE_VOLUM, OHR_GTPU_UDP_IPV4, REPORTING_VOLTH,
};

pub const PORT: u16 = 8805;
pub const VERSION: u8 = 1;

/// Message types (§7.3, Table 7.3-1).
pub mod msg {
    pub const HEARTBEAT_REQUEST: u8 = 1;
    pub const HEARTBEAT_RESPONSE: u8 = 2;
    pub const ASSOCIATION_SETUP_REQUEST: u8 = 5;
    pub const ASSOCIATION_SETUP_RESPONSE: u8 = 6;
    pub const ASSOCIATION_RELEASE_REQUEST: u8 = 9;
    pub const ASSOCIATION_RELEASE_RESPONSE: u8 = 10;
    pub const VERSION_NOT_SUPPORTED: u8 = 11;
    pub const SESSION_ESTABLISHMENT_REQUEST: u8 = 50;
    pub const SESSION_ESTABLISHMENT_RESPONSE: u8 = 51;
    pub const SESSION_MODIFICATION_REQUEST: u8 = 52;
    pub const SESSION_MODIFICATION_RESPONSE: u8 = 53;
    pub const SESSION_DELETION_REQUEST: u8 = 54;
    pub const SESSION_DELETION_RESPONSE: u8 = 55;
    pub const SESSION_REPORT_REQUEST: u8 = 56;
    pub const SESSION_REPORT_RESPONSE: u8 = 57;
}

/// The PFCP header (§7.2.2). Node-related messages have no SEID
/// (§7.2.2.2); session-related ones do (§7.2.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub seid: Option<u64>,
    /// 24 bits.
    pub seq: u32,
    /// Message priority (MP flag), 4 bits.
    pub priority: Option<u8>,
}

/// Why a datagram's header could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer octets than the header the flags announce: nothing to
    /// answer.
    Short,
    /// A version other than 1: answer Version Not Supported (§7.4.4.7).
    Version { version: u8, seq: u32 },
    /// The length field runs past the datagram, or is shorter than the
    /// header itself: answer "Invalid Length" (§7.6).
    Length(Header),
}

impl Header {
    pub fn node(msg_type: u8, seq: u32) -> Self {
        Header {
            version: VERSION,
            msg_type,
            seid: None,
            seq,
            priority: None,
        }
    }
    pub fn session(msg_type: u8, seid: u64, seq: u32) -> Self {
        Header {
            version: VERSION,
            msg_type,
            seid: Some(seid),
            seq,
            priority: None,
        }
    }
    fn len(&self) -> usize {
        if self.seid.is_some() {
            16
        } else {
            8
        }
    }

    /// The header and the message's IEs (the octets the length field
    /// covers; octets beyond it are ignored).
    pub fn decode(buf: &[u8]) -> Result<(Header, &[u8]), HeaderError> {
        let (&flags, _) = buf.split_first().ok_or(HeaderError::Short)?;
        let s = flags & 0x01 != 0;
        let mp = flags & 0x02 != 0;
        let hlen = if s { 16 } else { 8 };
        if buf.len() < hlen {
            return Err(HeaderError::Short);
        }
        let seq_at = if s { 12 } else { 4 };
        let seq = u32::from_be_bytes([0, buf[seq_at], buf[seq_at + 1], buf[seq_at + 2]]);
        let version = flags >> 5;
        if version != VERSION {
            return Err(HeaderError::Version { version, seq });
        }
        let seid = s.then(|| {
            let mut a = [0; 8];
            a.copy_from_slice(&buf[4..12]);
            u64::from_be_bytes(a)
        });
        let priority = mp.then_some(buf[seq_at + 3] >> 4);
        let h = Header {
            version,
            msg_type: buf[1],
            seid,
            seq,
            priority,
        };
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 4;
        if len < hlen || len > buf.len() {
            return Err(HeaderError::Length(h));
        }
        Ok((h, &buf[hlen..len]))
    }

    pub fn encode(&self, ies: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() + ies.len());
        let flags =
            (VERSION << 5) | u8::from(self.priority.is_some()) << 1 | u8::from(self.seid.is_some());
        v.push(flags);
        v.push(self.msg_type);
        let len = u16::try_from(self.len() - 4 + ies.len()).unwrap_or(u16::MAX);
        v.extend_from_slice(&len.to_be_bytes());
        if let Some(seid) = self.seid {
            v.extend_from_slice(&seid.to_be_bytes());
        }
        v.extend_from_slice(&self.seq.to_be_bytes()[1..]);
        v.push(self.priority.map_or(0, |p| p << 4));
        v.extend_from_slice(ies);
        v
    }
}

/// PDI (§7.5.2.2-2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pdi {
    pub source_interface: Option<u8>,
    pub fteid: Option<Fteid>,
    pub ue_ip: Option<UeIp>,
    pub qfi: Option<u8>,
}

/// Create PDR (§7.5.2.2) and Update PDR (§7.5.4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pdr {
    pub pdr_id: Option<u16>,
    pub precedence: Option<u32>,
    pub pdi: Option<Pdi>,
    pub outer_header_removal: Option<u8>,
    pub far_id: Option<u32>,
    pub urr_ids: Vec<u32>,
    pub qer_ids: Vec<u32>,
}

/// Forwarding Parameters (§7.5.2.3-2) and Update Forwarding Parameters
/// (§7.5.4.3-2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forwarding {
    pub destination_interface: Option<u8>,
    pub ohc: Option<Ohc>,
}

/// Create FAR (§7.5.2.3) and Update FAR (§7.5.4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Far {
    pub far_id: Option<u32>,
    pub apply_action: Option<u8>,
    pub forwarding: Option<Forwarding>,
}

/// Create URR (§7.5.2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Urr {
    pub urr_id: Option<u32>,
    pub measurement_method: Option<u8>,
    /// The first octet (VOLTH is bit 2); later octets are not kept.
    pub reporting_triggers: Option<u8>,
    pub volume_threshold: Option<Volumes>,
}

/// Create QER (§7.5.2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qer {
    pub qer_id: Option<u32>,
    pub gate_status: Option<u8>,
    pub qfi: Option<u8>,
}

/// Created PDR (§7.5.3.2): the F-TEID the UP chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedPdr {
    pub pdr_id: u16,
    pub fteid: Option<Fteid>,
}

/// Usage Report (§7.5.5.2, §7.5.7.2, §7.5.8.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    pub urr_id: u32,
    pub ur_seqn: u32,
    /// [`super::ie::trigger`] bits.
    pub trigger: u32,
    pub volume: Option<Volumes>,
}

/// The rules of an establishment, or the changes of a modification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRequest {
    pub node_id: Option<NodeId>,
    pub cp_fseid: Option<Fseid>,
    pub create_pdrs: Vec<Pdr>,
    pub create_fars: Vec<Far>,
    pub create_urrs: Vec<Urr>,
    pub create_qers: Vec<Qer>,
    pub update_pdrs: Vec<Pdr>,
    pub update_fars: Vec<Far>,
    pub remove_pdrs: Vec<u16>,
    pub remove_fars: Vec<u32>,
    pub remove_urrs: Vec<u32>,
}

/// Every response and the node messages: the IEs present, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub node_id: Option<NodeId>,
    pub cause: Option<Cause>,
    pub offending_ie: Option<u16>,
    pub recovery_ts: Option<u32>,
    pub up_features: Option<u16>,
    pub fseid: Option<Fseid>,
    pub created_pdrs: Vec<CreatedPdr>,
    pub report_type: Option<u8>,
    pub usage_reports: Vec<UsageReport>,
}

/// A decoded message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Heartbeat, association setup and release requests and all responses
    /// and the Session Report Request (its IEs are those of a `Reply`).
    Flat(Reply),
    Session(SessionRequest),
    /// Session Deletion Request: no IEs we read.
    Empty,
}

impl Message {
    /// The body of a message of type `msg_type`; `None` for a type we do
    /// not handle.
    pub fn decode(msg_type: u8, ies: &[u8]) -> Option<Result<Message, IeError>> {
        use msg::*;
        Some(match msg_type {
            SESSION_ESTABLISHMENT_REQUEST | SESSION_MODIFICATION_REQUEST => {
                decode_session(ies).map(Message::Session)
            }
            SESSION_DELETION_REQUEST => walk(ies, |_, _| Ok(())).map(|_| Message::Empty),
            HEARTBEAT_REQUEST
            | HEARTBEAT_RESPONSE
            | ASSOCIATION_SETUP_REQUEST
            | ASSOCIATION_SETUP_RESPONSE
            | ASSOCIATION_RELEASE_REQUEST
            | ASSOCIATION_RELEASE_RESPONSE
            | VERSION_NOT_SUPPORTED
            | SESSION_ESTABLISHMENT_RESPONSE
            | SESSION_MODIFICATION_RESPONSE
            | SESSION_DELETION_RESPONSE
            | SESSION_REPORT_REQUEST
            | SESSION_REPORT_RESPONSE => decode_reply(ies).map(Message::Flat),
            _ => return None,
        })
    }
}

/// Decodes a whole datagram: header and body.
pub fn decode(buf: &[u8]) -> Result<(Header, Message), String> {
    let (h, ies) = Header::decode(buf).map_err(|e| format!("{e:?}"))?;
    match Message::decode(h.msg_type, ies) {
        Some(Ok(m)) => Ok((h, m)),
        Some(Err(e)) => Err(format!("{e:?}")),
        None => Err(format!("message type {}", h.msg_type)),
    }
}

fn u8_of(ie: u16, v: &[u8]) -> Result<u8, IeError> {
    Cursor::new(ie, v).u8()
}
fn u16_of(ie: u16, v: &[u8]) -> Result<u16, IeError> {
    Cursor::new(ie, v).u16()
}
fn u32_of(ie: u16, v: &[u8]) -> Result<u32, IeError> {
    Cursor::new(ie, v).u32()
}

/// A grouped IE's inner IEs, with an error from inside it reported
/// against the inner IE (or the group, for its framing).
fn group(
    ie: u16,
    v: &[u8],
    f: impl FnMut(u16, &[u8]) -> Result<(), IeError>,
) -> Result<(), IeError> {
    walk(v, f).map_err(|e| IeError {
        ie: e.ie.or(Some(ie)),
        ..e
    })
}

fn decode_pdi(v: &[u8]) -> Result<Pdi, IeError> {
    let mut p = Pdi::default();
    group(ty::PDI, v, |t, v| {
        match t {
            ty::SOURCE_INTERFACE => p.source_interface = Some(u8_of(t, v)? & 0x0f),
            ty::F_TEID => p.fteid = Some(Fteid::decode(v)?),
            ty::UE_IP_ADDRESS => p.ue_ip = Some(UeIp::decode(v)?),
            ty::QFI => p.qfi = Some(u8_of(t, v)? & 0x3f),
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn decode_pdr(ie: u16, v: &[u8]) -> Result<Pdr, IeError> {
    let mut p = Pdr::default();
    group(ie, v, |t, v| {
        match t {
            ty::PDR_ID => p.pdr_id = Some(u16_of(t, v)?),
            ty::PRECEDENCE => p.precedence = Some(u32_of(t, v)?),
            ty::PDI => p.pdi = Some(decode_pdi(v)?),
            ty::OUTER_HEADER_REMOVAL => p.outer_header_removal = Some(u8_of(t, v)?),
            ty::FAR_ID => p.far_id = Some(u32_of(t, v)?),
            ty::URR_ID => p.urr_ids.push(u32_of(t, v)?),
            ty::QER_ID => p.qer_ids.push(u32_of(t, v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn decode_far(ie: u16, v: &[u8]) -> Result<Far, IeError> {
    let mut f = Far::default();
    group(ie, v, |t, v| {
        match t {
            ty::FAR_ID => f.far_id = Some(u32_of(t, v)?),
            ty::APPLY_ACTION => f.apply_action = Some(u8_of(t, v)?),
            ty::FORWARDING_PARAMETERS | ty::UPDATE_FORWARDING_PARAMETERS => {
                let mut fw = Forwarding::default();
                group(t, v, |t, v| {
                    match t {
                        ty::DESTINATION_INTERFACE => {
                            fw.destination_interface = Some(u8_of(t, v)? & 0x0f)
                        }
                        ty::OUTER_HEADER_CREATION => fw.ohc = Some(Ohc::decode(v)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                f.forwarding = Some(fw);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(f)
}

fn decode_urr(v: &[u8]) -> Result<Urr, IeError> {
    let mut u = Urr::default();
    group(ty::CREATE_URR, v, |t, v| {
        match t {
            ty::URR_ID => u.urr_id = Some(u32_of(t, v)?),
            ty::MEASUREMENT_METHOD => u.measurement_method = Some(u8_of(t, v)?),
            ty::REPORTING_TRIGGERS => u.reporting_triggers = Some(u8_of(t, v)?),
            ty::VOLUME_THRESHOLD => u.volume_threshold = Some(Volumes::decode(t, v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(u)
}

fn decode_qer(v: &[u8]) -> Result<Qer, IeError> {
    let mut q = Qer::default();
    group(ty::CREATE_QER, v, |t, v| {
        match t {
            ty::QER_ID => q.qer_id = Some(u32_of(t, v)?),
            ty::GATE_STATUS => q.gate_status = Some(u8_of(t, v)?),
            ty::QFI => q.qfi = Some(u8_of(t, v)? & 0x3f),
            _ => {}
        }
        Ok(())
    })?;
    Ok(q)
}

/// The one ID inside a Remove PDR/FAR/URR.
fn decode_removed(ie: u16, id_ie: u16, v: &[u8]) -> Result<u32, IeError> {
    let mut id = None;
    group(ie, v, |t, v| {
        if t == id_ie {
            id = Some(if t == ty::PDR_ID {
                u32::from(u16_of(t, v)?)
            } else {
                u32_of(t, v)?
            });
        }
        Ok(())
    })?;
    id.ok_or(IeError::missing(id_ie))
}

fn decode_session(ies: &[u8]) -> Result<SessionRequest, IeError> {
    let mut r = SessionRequest::default();
    walk(ies, |t, v| {
        match t {
            ty::NODE_ID => r.node_id = Some(NodeId::decode(v)?),
            ty::F_SEID => r.cp_fseid = Some(Fseid::decode(v)?),
            ty::CREATE_PDR => r.create_pdrs.push(decode_pdr(t, v)?),
            ty::CREATE_FAR => r.create_fars.push(decode_far(t, v)?),
            ty::CREATE_URR => r.create_urrs.push(decode_urr(v)?),
            ty::CREATE_QER => r.create_qers.push(decode_qer(v)?),
            ty::UPDATE_PDR => r.update_pdrs.push(decode_pdr(t, v)?),
            ty::UPDATE_FAR => r.update_fars.push(decode_far(t, v)?),
            ty::REMOVE_PDR => r.remove_pdrs.push(decode_removed(t, ty::PDR_ID, v)? as u16),
            ty::REMOVE_FAR => r.remove_fars.push(decode_removed(t, ty::FAR_ID, v)?),
            ty::REMOVE_URR => r.remove_urrs.push(decode_removed(t, ty::URR_ID, v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

fn decode_usage_report(ie: u16, v: &[u8]) -> Result<UsageReport, IeError> {
    let mut u = UsageReport::default();
    group(ie, v, |t, v| {
        match t {
            ty::URR_ID => u.urr_id = u32_of(t, v)?,
            ty::UR_SEQN => u.ur_seqn = u32_of(t, v)?,
            ty::USAGE_REPORT_TRIGGER => {
                let mut b = [0u8; 4];
                let n = v.len().min(3);
                if n == 0 {
                    return Err(IeError::incorrect(t));
                }
                b[1..1 + n].copy_from_slice(&v[..n]);
                u.trigger = u32::from_be_bytes(b);
            }
            ty::VOLUME_MEASUREMENT => u.volume = Some(Volumes::decode(t, v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(u)
}

fn decode_reply(ies: &[u8]) -> Result<Reply, IeError> {
    let mut r = Reply::default();
    walk(ies, |t, v| {
        match t {
            ty::NODE_ID => r.node_id = Some(NodeId::decode(v)?),
            ty::CAUSE => r.cause = Some(Cause(u8_of(t, v)?)),
            ty::OFFENDING_IE => r.offending_ie = Some(u16_of(t, v)?),
            ty::RECOVERY_TIME_STAMP => r.recovery_ts = Some(u32_of(t, v)?),
            ty::UP_FUNCTION_FEATURES => {
                let mut c = Cursor::new(t, v);
                r.up_features = Some(u16::from(c.u8()?) << 8 | u16::from(c.u8().unwrap_or(0)));
            }
            ty::F_SEID => r.fseid = Some(Fseid::decode(v)?),
            ty::CREATED_PDR => {
                let mut p = CreatedPdr {
                    pdr_id: 0,
                    fteid: None,
                };
                group(t, v, |t, v| {
                    match t {
                        ty::PDR_ID => p.pdr_id = u16_of(t, v)?,
                        ty::F_TEID => p.fteid = Some(Fteid::decode(v)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                r.created_pdrs.push(p);
            }
            ty::REPORT_TYPE => r.report_type = Some(u8_of(t, v)?),
            ty::USAGE_REPORT_SMR | ty::USAGE_REPORT_SDR | ty::USAGE_REPORT_SRR => {
                r.usage_reports.push(decode_usage_report(t, v)?)
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

fn encode_pdr(w: &mut IeWriter, ie: u16, p: &Pdr) {
    w.group(ie, |w| {
        if let Some(id) = p.pdr_id {
            w.u16(ty::PDR_ID, id);
        }
        if let Some(x) = p.precedence {
            w.u32(ty::PRECEDENCE, x);
        }
        if let Some(pdi) = &p.pdi {
            w.group(ty::PDI, |w| {
                if let Some(s) = pdi.source_interface {
                    w.u8(ty::SOURCE_INTERFACE, s);
                }
                if let Some(f) = &pdi.fteid {
                    f.encode(ty::F_TEID, w);
                }
                if let Some(u) = &pdi.ue_ip {
                    u.encode(w);
                }
                if let Some(q) = pdi.qfi {
                    w.u8(ty::QFI, q);
                }
            });
        }
        if let Some(x) = p.outer_header_removal {
            w.u8(ty::OUTER_HEADER_REMOVAL, x);
        }
        if let Some(x) = p.far_id {
            w.u32(ty::FAR_ID, x);
        }
        for &u in &p.urr_ids {
            w.u32(ty::URR_ID, u);
        }
        for &q in &p.qer_ids {
            w.u32(ty::QER_ID, q);
        }
    });
}

fn encode_far(w: &mut IeWriter, ie: u16, f: &Far) {
    w.group(ie, |w| {
        if let Some(id) = f.far_id {
            w.u32(ty::FAR_ID, id);
        }
        if let Some(a) = f.apply_action {
            w.u8(ty::APPLY_ACTION, a);
        }
        if let Some(fw) = &f.forwarding {
            let fty = if ie == ty::UPDATE_FAR {
                ty::UPDATE_FORWARDING_PARAMETERS
            } else {
                ty::FORWARDING_PARAMETERS
            };
            w.group(fty, |w| {
                if let Some(d) = fw.destination_interface {
                    w.u8(ty::DESTINATION_INTERFACE, d);
                }
                if let Some(o) = &fw.ohc {
                    o.encode(w);
                }
            });
        }
    });
}

impl SessionRequest {
    /// The IEs of a Session Establishment or Modification Request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = IeWriter::default();
        if let Some(n) = &self.node_id {
            n.encode(&mut w);
        }
        if let Some(f) = &self.cp_fseid {
            f.encode(&mut w);
        }
        for (ie, id_ie, ids) in [
            (
                ty::REMOVE_PDR,
                ty::PDR_ID,
                self.remove_pdrs
                    .iter()
                    .map(|&i| u32::from(i))
                    .collect::<Vec<_>>(),
            ),
            (ty::REMOVE_FAR, ty::FAR_ID, self.remove_fars.clone()),
            (ty::REMOVE_URR, ty::URR_ID, self.remove_urrs.clone()),
        ] {
            for id in ids {
                w.group(ie, |w| {
                    if id_ie == ty::PDR_ID {
                        w.u16(id_ie, id as u16)
                    } else {
                        w.u32(id_ie, id)
                    }
                });
            }
        }
        for p in &self.create_pdrs {
            encode_pdr(&mut w, ty::CREATE_PDR, p);
        }
        for f in &self.create_fars {
            encode_far(&mut w, ty::CREATE_FAR, f);
        }
        for u in &self.create_urrs {
            w.group(ty::CREATE_URR, |w| {
                if let Some(id) = u.urr_id {
                    w.u32(ty::URR_ID, id);
                }
                if let Some(m) = u.measurement_method {
                    w.u8(ty::MEASUREMENT_METHOD, m);
                }
                if let Some(r) = u.reporting_triggers {
                    w.ie(ty::REPORTING_TRIGGERS, &[r, 0]);
                }
                if let Some(v) = &u.volume_threshold {
                    v.encode(ty::VOLUME_THRESHOLD, w);
                }
            });
        }
        for q in &self.create_qers {
            w.group(ty::CREATE_QER, |w| {
                if let Some(id) = q.qer_id {
                    w.u32(ty::QER_ID, id);
                }
                if let Some(g) = q.gate_status {
                    w.u8(ty::GATE_STATUS, g);
                }
                if let Some(x) = q.qfi {
                    w.u8(ty::QFI, x);
                }
            });
        }
        for p in &self.update_pdrs {
            encode_pdr(&mut w, ty::UPDATE_PDR, p);
        }
        for f in &self.update_fars {
            encode_far(&mut w, ty::UPDATE_FAR, f);
        }
        w.buf
    }
}

impl Reply {
    /// The IEs; `usage_ie` is the Usage Report type of this message
    /// (78, 79 or 80).
    pub fn encode(&self, usage_ie: u16) -> Vec<u8> {
        let mut w = IeWriter::default();
        if let Some(n) = &self.node_id {
            n.encode(&mut w);
        }
        if let Some(c) = self.cause {
            w.u8(ty::CAUSE, c.0);
        }
        if let Some(o) = self.offending_ie {
            w.u16(ty::OFFENDING_IE, o);
        }
        if let Some(ts) = self.recovery_ts {
            w.u32(ty::RECOVERY_TIME_STAMP, ts);
        }
        if let Some(f) = self.up_features {
            w.u16(ty::UP_FUNCTION_FEATURES, f);
        }
        if let Some(f) = &self.fseid {
            f.encode(&mut w);
        }
        for p in &self.created_pdrs {
            w.group(ty::CREATED_PDR, |w| {
                w.u16(ty::PDR_ID, p.pdr_id);
                if let Some(f) = &p.fteid {
                    f.encode(ty::F_TEID, w);
                }
            });
        }
        if let Some(r) = self.report_type {
            w.u8(ty::REPORT_TYPE, r);
        }
        for u in &self.usage_reports {
            w.group(usage_ie, |w| {
                w.u32(ty::URR_ID, u.urr_id);
                w.u32(ty::UR_SEQN, u.ur_seqn);
                w.ie(ty::USAGE_REPORT_TRIGGER, &u.trigger.to_be_bytes()[1..]);
                if let Some(v) = &u.volume {
                    v.encode(ty::VOLUME_MEASUREMENT, w);
                }
            });
        }
        w.buf
    }
}

/// Request builders, as a CP function sends them: for tests and the
/// benchmark client.
pub mod build;
