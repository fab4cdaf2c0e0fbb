//! The UP function's PFCP state machine: associations (§6.2.6), sessions
//! (§6.3, §7.5) and usage reporting (§5.2.2). Pure: datagrams in, datagrams
//! out; the fast path is reached only through [`Tunnels`].
//!
//! What this gateway supports is one GTP-U tunnel per session: one uplink
//! PDR (source Access, a local F-TEID, GTP-U/UDP/IPv4 or GTP-U/UDP/IPv6
//! removal), one downlink PDR (source Core, the UE's IPv4 address, IPv6
//! prefix or both) and their FARs; the downlink FAR's Outer Header
//! Creation (GTP-U/UDP/IPv4 or GTP-U/UDP/IPv6) gives the access node's
//! TEID and address, and may come later by modification. GTP-U runs over
//! IPv4 N3 (always) or IPv6 N3 (when [`EngineConfig::n3_addr6`] is set).
//!
//! Causes (§8.2.1): a mandatory IE absent is 66 with the Offending IE; a
//! mandatory IE present whose content we cannot use (an unknown Node ID
//! type; an F-TEID given with an address not ours, with none, or with TEID
//! 0; a CH F-TEID asking only for IPv6 without an IPv6 N3 address; an OHC
//! other than exactly GTP-U/UDP/IPv4 or exactly GTP-U/UDP/IPv6) is 69
//! with the Offending IE: that is how an "unknown mandatory IE" is
//! answered. Rules beyond the supported shape are
//! 73, a full table (sessions, TEIDs, or the fast path refusing) 75, and
//! nothing changes on any rejection.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use super::ie::{trigger, ty, Cause, Fseid, Fteid, IeError, NodeId, Volumes, UP_FEATURE_FTUP};
use super::rules::{
    add_rules, check_far, check_fteid, derive, local_fteid, merge_far, merge_pdr, rule_failure,
    Reject, Rules,
};
mod answers;
mod reports;
mod sessions;

use super::wire::{
    msg, CreatedPdr, Header, HeaderError, Message, Reply, SessionRequest, UsageReport, PORT,
};
use answers::{answer_key, AnswerKey};
use reports::PendingReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Our Node ID and the address of the F-SEIDs we hand out.
    pub node_id: Ipv4Addr,
    /// The IPv4 address of the F-TEIDs we allocate (N3); always there.
    pub n3_addr: Ipv4Addr,
    /// Our IPv6 N3 address, when configured: F-TEIDs with an IPv6 address
    /// (GTP-U over IPv6) are allocated and accepted only then.
    pub n3_addr6: Option<Ipv6Addr>,
    /// The TEIDs we allocate when the CP asks us to choose (CH), inclusive;
    /// TEID 0 is never allocated.
    pub teid_first: u32,
    pub teid_last: u32,
    /// Sessions (tunnels) at once; at most
    /// `dataplane_common::gateway::TUNNELS_MAX`.
    pub max_sessions: u32,
    /// NTP seconds of our start (Recovery Time Stamp, §8.2.65).
    pub recovery_ts: u32,
}

/// What the engine asks of the fast path. The daemon implements it with
/// the BPF maps, the tests with a fake.
pub trait Tunnels {
    /// Make tunnel `idx` live with `spec`. On an index that is live
    /// already this replaces its spec (the daemon removes whatever the old
    /// spec put in its maps) and keeps its counters; on an index that is
    /// not live the counters start at zero. Err: the fast path refused;
    /// the engine answers 75 (establishment) or 73 (modification) and
    /// keeps its previous state.
    fn install(&mut self, idx: u32, spec: &TunnelSpec) -> Result<(), String>;
    /// Take tunnel `idx` out of the fast path and return its final usage
    /// since it was first installed (read after it is unreachable).
    fn remove(&mut self, idx: u32) -> Volume;
    /// Usage of a live tunnel since it was first installed.
    fn usage(&mut self, idx: u32) -> Volume;
}

/// One tunnel as the fast path needs it. The downlink parts are absent
/// until the CP gives an Outer Header Creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelSpec {
    pub ul_teid: u32,
    /// The UE's IPv4 address; unspecified for an IPv6-only PDU session.
    pub ue_addr: Ipv4Addr,
    /// The UE's IPv6 prefix (a /64) of an IPv6 or dual-stack PDU session.
    pub ue_addr6: Option<Ipv6Addr>,
    pub dl_teid: Option<u32>,
    /// The access node's address from the downlink FAR's Outer Header
    /// Creation: GTP-U/UDP/IPv4 or GTP-U/UDP/IPv6.
    pub an_addr: Option<IpAddr>,
    pub qfi: Option<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub ul_bytes: u64,
    pub dl_bytes: u64,
    pub ul_pkts: u64,
    pub dl_pkts: u64,
}

impl Volume {
    fn since(self, base: Volume) -> Volume {
        Volume {
            ul_bytes: self.ul_bytes.saturating_sub(base.ul_bytes),
            dl_bytes: self.dl_bytes.saturating_sub(base.dl_bytes),
            ul_pkts: self.ul_pkts.saturating_sub(base.ul_pkts),
            dl_pkts: self.dl_pkts.saturating_sub(base.dl_pkts),
        }
    }
    /// A Volume Measurement (§8.2.44) with every flag set.
    fn measurement(self) -> Volumes {
        Volumes {
            total: Some(self.ul_bytes.saturating_add(self.dl_bytes)),
            ul: Some(self.ul_bytes),
            dl: Some(self.dl_bytes),
            total_pkts: Some(self.ul_pkts.saturating_add(self.dl_pkts)),
            ul_pkts: Some(self.ul_pkts),
            dl_pkts: Some(self.dl_pkts),
        }
    }
    /// A Volume Threshold (§8.2.13) is reached when any volume it sets is.
    fn reaches(self, t: &Volumes) -> bool {
        let hit = |limit: Option<u64>, v: u64| limit.is_some_and(|l| l > 0 && v >= l);
        hit(t.total, self.ul_bytes.saturating_add(self.dl_bytes))
            || hit(t.ul, self.ul_bytes)
            || hit(t.dl, self.dl_bytes)
    }
}

/// The procedure a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Procedure {
    Heartbeat,
    AssociationSetup,
    AssociationRelease,
    Establishment,
    Modification,
    Deletion,
    Report,
}

impl Procedure {
    fn name(self) -> &'static str {
        match self {
            Procedure::Heartbeat => "pfcp_heartbeat",
            Procedure::AssociationSetup => "pfcp_association_setup",
            Procedure::AssociationRelease => "pfcp_association_release",
            Procedure::Establishment => "pfcp_establishment",
            Procedure::Modification => "pfcp_modification",
            Procedure::Deletion => "pfcp_deletion",
            Procedure::Report => "pfcp_report_response",
        }
    }
}

/// Why a datagram got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Discard {
    /// Shorter than its header: nothing to answer with.
    ShortHeader,
    /// A message type we do not handle (§7.6: silently discarded).
    UnknownType(u8),
    /// A response we did not ask for, or a request we never answer.
    Unexpected(u8),
    /// A Session Report Response to no report of ours.
    UnknownReport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(Procedure),
    Rejected {
        procedure: Procedure,
        cause: Cause,
    },
    VersionNotSupported,
    Discarded(Discard),
    /// A request we answered already (same peer, type and sequence
    /// number, §6.4): the stored response again, nothing redone.
    Retransmission(Procedure),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    pub reply: Option<Vec<u8>>,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrrInfo {
    pub urr_id: u32,
    pub threshold: Option<Volumes>,
    /// Usage of the tunnel up to the last report (or the URR's creation).
    pub reported: Volume,
    /// The UR-SEQN of the next report.
    pub next_seqn: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub up_seid: u64,
    pub cp_seid: u64,
    /// The CP's F-SEID address, port 8805: where reports go.
    pub cp: SocketAddr,
    pub node: NodeId,
    pub tunnel: u32,
    pub spec: TunnelSpec,
    pub urrs: Vec<UrrInfo>,
}

struct Association {
    recovery_ts: u32,
}

struct Session {
    cp_seid: u64,
    cp_addr: Ipv4Addr,
    node: NodeId,
    tunnel: u32,
    spec: TunnelSpec,
    rules: Rules,
}

/// 65: the SEID names no session of ours.
fn not_found() -> Reject {
    IeError {
        cause: Cause::SESSION_CONTEXT_NOT_FOUND,
        ie: None,
    }
}

fn no_resources() -> Reject {
    IeError {
        cause: Cause::NO_RESOURCES,
        ie: None,
    }
}

/// The UP function's PFCP engine.
pub struct Engine {
    cfg: EngineConfig,
    associations: HashMap<NodeId, Association>,
    sessions: BTreeMap<u64, Session>,
    /// Tunnel slot → session; a slot not here (below TUNNELS_MAX) is free.
    by_tunnel: HashMap<u32, u64>,
    teids: HashSet<u32>,
    teids_in_range: u64,
    next_teid: u32,
    next_seid: u64,
    next_seq: u32,
    /// Our outstanding Session Report Requests: sequence number → UP SEID.
    pending_reports: BTreeMap<u32, PendingReport>,
    counters: BTreeMap<&'static str, u64>,
    /// Responses to recent requests, for retransmitted requests (§6.4).
    answered: HashMap<AnswerKey, Vec<u8>>,
    answered_order: VecDeque<AnswerKey>,
}

impl Engine {
    pub fn new(mut cfg: EngineConfig) -> Self {
        cfg.max_sessions = cfg.max_sessions.min(dataplane_common::gateway::TUNNELS_MAX);
        cfg.teid_first = cfg.teid_first.max(1);
        Engine {
            cfg,
            associations: HashMap::new(),
            sessions: BTreeMap::new(),
            by_tunnel: HashMap::new(),
            teids: HashSet::new(),
            teids_in_range: 0,
            next_teid: cfg.teid_first,
            next_seid: 1,
            next_seq: 1,
            pending_reports: BTreeMap::new(),
            counters: BTreeMap::new(),
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
        }
    }

    /// One datagram from `peer`: the reply to send back to it (if any) and
    /// what happened.
    pub fn handle(&mut self, peer: SocketAddr, datagram: &[u8], t: &mut dyn Tunnels) -> Handled {
        // A request we answered: the same answer (a retransmitted
        // establishment must not make a second session).
        let key = answer_key(peer, datagram);
        if let Some(handled) = key.and_then(|(k, p)| self.answered_before(&k, p)) {
            *self
                .counters
                .entry(outcome_name(&handled.outcome))
                .or_default() += 1;
            return handled;
        }
        let handled = self.dispatch(peer, datagram, t);
        if let (Some((k, _)), Some(reply)) = (key, &handled.reply) {
            self.remember(k, reply);
        }
        *self
            .counters
            .entry(outcome_name(&handled.outcome))
            .or_default() += 1;
        handled
    }

    fn dispatch(&mut self, _peer: SocketAddr, datagram: &[u8], t: &mut dyn Tunnels) -> Handled {
        let (h, ies) = match Header::decode(datagram) {
            Ok(x) => x,
            Err(HeaderError::Short) => return discard(Discard::ShortHeader),
            // §7.4.4.7: header only, the request's sequence number.
            Err(HeaderError::Version { seq, .. }) => {
                return Handled {
                    reply: Some(Header::node(msg::VERSION_NOT_SUPPORTED, seq).encode(&[])),
                    outcome: Outcome::VersionNotSupported,
                }
            }
            Err(HeaderError::Length(h)) => {
                let err = IeError {
                    cause: Cause::INVALID_LENGTH,
                    ie: None,
                };
                return match procedure_of(h.msg_type) {
                    Some(p) if h.msg_type != msg::SESSION_REPORT_RESPONSE => {
                        self.reject(p, &h, err)
                    }
                    _ => discard(unhandled(h.msg_type)),
                };
            }
        };
        let Some(procedure) = procedure_of(h.msg_type) else {
            return discard(unhandled(h.msg_type));
        };
        let body = match Message::decode(h.msg_type, ies) {
            Some(Ok(b)) => b,
            Some(Err(e)) if procedure != Procedure::Report => return self.reject(procedure, &h, e),
            _ => return discard(Discard::UnknownReport),
        };
        let session_msg = !matches!(
            procedure,
            Procedure::Heartbeat | Procedure::AssociationSetup | Procedure::AssociationRelease
        );
        if session_msg && h.seid.is_none() {
            // §7.2.2.3: a session message carries a SEID.
            return self.reject(
                procedure,
                &h,
                IeError {
                    cause: Cause::REJECTED,
                    ie: None,
                },
            );
        }
        let result = match (procedure, body) {
            (Procedure::Heartbeat, _) => {
                let r = Reply {
                    recovery_ts: Some(self.cfg.recovery_ts),
                    ..Reply::default()
                };
                return self.answer(Procedure::Heartbeat, &h, None, r);
            }
            (Procedure::AssociationSetup, Message::Flat(r)) => self.association_setup(&r, t),
            (Procedure::AssociationRelease, Message::Flat(r)) => self.association_release(&r, t),
            (Procedure::Establishment, Message::Session(r)) => self.establish(&r, t),
            (Procedure::Modification, Message::Session(r)) => {
                self.modify(h.seid.unwrap_or(0), &r, t)
            }
            (Procedure::Deletion, _) => self.delete(h.seid.unwrap_or(0), t),
            (Procedure::Report, Message::Flat(r)) => return self.report_response(&h, &r),
            _ => return discard(Discard::Unexpected(h.msg_type)),
        };
        match result {
            Ok((seid, reply)) => self.answer(procedure, &h, seid, reply),
            Err((seid, e)) => {
                let r = self.rejection(procedure, e);
                self.reply_bytes(
                    procedure,
                    &h,
                    seid,
                    r,
                    Outcome::Rejected {
                        procedure,
                        cause: e.cause,
                    },
                )
            }
        }
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .iter()
            .map(|(&seid, s)| info(seid, s))
            .collect()
    }

    pub fn session_by_tunnel(&self, idx: u32) -> Option<SessionInfo> {
        let seid = *self.by_tunnel.get(&idx)?;
        self.sessions.get(&seid).map(|s| info(seid, s))
    }

    /// Rows for `stats`: one per outcome seen (procedure accepted, cause
    /// rejected, reason discarded), plus reports sent.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.counters.iter().map(|(&k, &n)| (k, n)).collect();
        v.push(("pfcp_sessions", self.sessions.len() as u64));
        v.push(("pfcp_associations", self.associations.len() as u64));
        v
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = (self.next_seq + 1) & 0x00ff_ffff;
        if self.next_seq == 0 {
            self.next_seq = 1;
        }
        s
    }

    fn response_type(p: Procedure) -> u8 {
        match p {
            Procedure::Heartbeat => msg::HEARTBEAT_RESPONSE,
            Procedure::AssociationSetup => msg::ASSOCIATION_SETUP_RESPONSE,
            Procedure::AssociationRelease => msg::ASSOCIATION_RELEASE_RESPONSE,
            Procedure::Establishment => msg::SESSION_ESTABLISHMENT_RESPONSE,
            Procedure::Modification => msg::SESSION_MODIFICATION_RESPONSE,
            Procedure::Deletion => msg::SESSION_DELETION_RESPONSE,
            Procedure::Report => msg::SESSION_REPORT_RESPONSE,
        }
    }

    fn answer(&mut self, p: Procedure, h: &Header, seid: Option<u64>, r: Reply) -> Handled {
        self.reply_bytes(p, h, seid, r, Outcome::Accepted(p))
    }

    fn reply_bytes(
        &mut self,
        p: Procedure,
        h: &Header,
        seid: Option<u64>,
        r: Reply,
        outcome: Outcome,
    ) -> Handled {
        let rsp = Self::response_type(p);
        let usage_ie = if p == Procedure::Deletion {
            ty::USAGE_REPORT_SDR
        } else {
            ty::USAGE_REPORT_SMR
        };
        let header = match p {
            Procedure::Heartbeat | Procedure::AssociationSetup | Procedure::AssociationRelease => {
                Header::node(rsp, h.seq)
            }
            // §7.2.2.4.2: SEID 0 when the peer's SEID is not known.
            _ => Header::session(rsp, seid.unwrap_or(0), h.seq),
        };
        Handled {
            reply: Some(header.encode(&r.encode(usage_ie))),
            outcome,
        }
    }

    /// The response IEs of a rejection: the Node ID where the response
    /// type carries one, the cause and the Offending IE.
    fn rejection(&self, p: Procedure, e: IeError) -> Reply {
        let mut r = Reply {
            cause: Some(e.cause),
            offending_ie: e.ie,
            ..Reply::default()
        };
        match p {
            Procedure::AssociationSetup => {
                r.node_id = Some(NodeId::V4(self.cfg.node_id));
                r.recovery_ts = Some(self.cfg.recovery_ts);
            }
            Procedure::AssociationRelease | Procedure::Establishment => {
                r.node_id = Some(NodeId::V4(self.cfg.node_id))
            }
            _ => {}
        }
        r
    }

    fn reject(&mut self, p: Procedure, h: &Header, e: IeError) -> Handled {
        let r = self.rejection(p, e);
        // The CP's SEID for a known session; else 0.
        let seid = h
            .seid
            .and_then(|s| self.sessions.get(&s))
            .map(|s| s.cp_seid);
        self.reply_bytes(
            p,
            h,
            seid,
            r,
            Outcome::Rejected {
                procedure: p,
                cause: e.cause,
            },
        )
    }

    /// §6.2.6.2: a new association, or one re-established. A changed
    /// Recovery Time Stamp means the CP restarted: its old sessions go.
    fn association_setup(
        &mut self,
        r: &Reply,
        t: &mut dyn Tunnels,
    ) -> Result<(Option<u64>, Reply), (Option<u64>, Reject)> {
        let node = known_node(r.node_id.as_ref()).map_err(|e| (None, e))?;
        let ts = r
            .recovery_ts
            .ok_or((None, IeError::missing(ty::RECOVERY_TIME_STAMP)))?;
        if self
            .associations
            .get(&node)
            .is_some_and(|a| a.recovery_ts != ts)
        {
            self.drop_sessions_of(&node, t);
        }
        self.associations
            .insert(node, Association { recovery_ts: ts });
        Ok((
            None,
            Reply {
                node_id: Some(NodeId::V4(self.cfg.node_id)),
                cause: Some(Cause::ACCEPTED),
                recovery_ts: Some(self.cfg.recovery_ts),
                up_features: Some(u16::from(UP_FEATURE_FTUP) << 8),
                ..Reply::default()
            },
        ))
    }

    /// §6.2.8: the association and all its sessions go.
    fn association_release(
        &mut self,
        r: &Reply,
        t: &mut dyn Tunnels,
    ) -> Result<(Option<u64>, Reply), (Option<u64>, Reject)> {
        let node = known_node(r.node_id.as_ref()).map_err(|e| (None, e))?;
        if self.associations.remove(&node).is_none() {
            return Err((
                None,
                IeError {
                    cause: Cause::NO_ASSOCIATION,
                    ie: None,
                },
            ));
        }
        self.drop_sessions_of(&node, t);
        Ok((
            None,
            Reply {
                node_id: Some(NodeId::V4(self.cfg.node_id)),
                cause: Some(Cause::ACCEPTED),
                ..Reply::default()
            },
        ))
    }

    fn drop_sessions_of(&mut self, node: &NodeId, t: &mut dyn Tunnels) {
        let gone: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| &s.node == node)
            .map(|(&k, _)| k)
            .collect();
        for seid in gone {
            if let Some(s) = self.sessions.remove(&seid) {
                t.remove(s.tunnel);
                self.release(&s);
            }
        }
    }

    fn release(&mut self, s: &Session) {
        self.by_tunnel.remove(&s.tunnel);
        self.forget_teid(s.spec.ul_teid);
    }

    fn in_range(&self, teid: u32) -> bool {
        (self.cfg.teid_first..=self.cfg.teid_last).contains(&teid)
    }
    fn claim_teid(&mut self, teid: u32) {
        if self.teids.insert(teid) && self.in_range(teid) {
            self.teids_in_range += 1;
        }
    }
    fn forget_teid(&mut self, teid: u32) {
        if self.teids.remove(&teid) && self.in_range(teid) {
            self.teids_in_range -= 1;
        }
    }

    /// The tunnel index for `teid`: its direct slot (`teid % TUNNELS_MAX`,
    /// where the fast path looks before `GW_TEIDS`) when free, else the
    /// lowest free one.
    fn pick_tunnel(&self, teid: u32) -> Option<u32> {
        // Any slot: a tunnel sits at its TEID's when free (the fast path
        // looks there first), else at the lowest free one; `max_sessions`
        // bounds the count.
        let max = dataplane_common::gateway::TUNNELS_MAX;
        let free = |i: &u32| !self.by_tunnel.contains_key(i);
        let direct = teid % max;
        if free(&direct) {
            return Some(direct);
        }
        (0..max).find(free)
    }

    /// A free TEID of the range, not yet claimed.
    fn pick_teid(&self) -> Option<u32> {
        let (first, last) = (self.cfg.teid_first, self.cfg.teid_last);
        if first > last || self.teids_in_range > u64::from(last - first) {
            return None;
        }
        let mut t = self.next_teid.clamp(first, last);
        // At most teids_in_range + 1 steps: the range has a free TEID.
        loop {
            if !self.teids.contains(&t) {
                return Some(t);
            }
            t = if t == last { first } else { t + 1 };
        }
    }

    fn pick_seid(&self) -> u64 {
        let mut s = self.next_seid.max(1);
        while self.sessions.contains_key(&s) {
            s = s.wrapping_add(1).max(1);
        }
        s
    }
}

fn discard(d: Discard) -> Handled {
    Handled {
        reply: None,
        outcome: Outcome::Discarded(d),
    }
}

fn unhandled(msg_type: u8) -> Discard {
    match msg_type {
        msg::HEARTBEAT_RESPONSE
        | msg::ASSOCIATION_SETUP_RESPONSE
        | msg::ASSOCIATION_RELEASE_RESPONSE
        | msg::VERSION_NOT_SUPPORTED
        | msg::SESSION_ESTABLISHMENT_RESPONSE
        | msg::SESSION_MODIFICATION_RESPONSE
        | msg::SESSION_DELETION_RESPONSE
        | msg::SESSION_REPORT_REQUEST => Discard::Unexpected(msg_type),
        _ => Discard::UnknownType(msg_type),
    }
}

fn procedure_of(msg_type: u8) -> Option<Procedure> {
    Some(match msg_type {
        msg::HEARTBEAT_REQUEST => Procedure::Heartbeat,
        msg::ASSOCIATION_SETUP_REQUEST => Procedure::AssociationSetup,
        msg::ASSOCIATION_RELEASE_REQUEST => Procedure::AssociationRelease,
        msg::SESSION_ESTABLISHMENT_REQUEST => Procedure::Establishment,
        msg::SESSION_MODIFICATION_REQUEST => Procedure::Modification,
        msg::SESSION_DELETION_REQUEST => Procedure::Deletion,
        msg::SESSION_REPORT_RESPONSE => Procedure::Report,
        _ => return None,
    })
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Accepted(p) => p.name(),
        Outcome::Rejected {
            procedure: Procedure::Report,
            ..
        } => "pfcp_report_not_accepted_by_cp",
        Outcome::Rejected { cause, .. } => match *cause {
            Cause::REJECTED => "pfcp_rejected_request_rejected",
            Cause::SESSION_CONTEXT_NOT_FOUND => "pfcp_rejected_session_not_found",
            Cause::MANDATORY_IE_MISSING => "pfcp_rejected_mandatory_ie_missing",
            Cause::INVALID_LENGTH => "pfcp_rejected_invalid_length",
            Cause::MANDATORY_IE_INCORRECT => "pfcp_rejected_mandatory_ie_incorrect",
            Cause::NO_ASSOCIATION => "pfcp_rejected_no_association",
            Cause::RULE_FAILURE => "pfcp_rejected_rule_failure",
            Cause::NO_RESOURCES => "pfcp_rejected_no_resources",
            _ => "pfcp_rejected_other",
        },
        Outcome::VersionNotSupported => "pfcp_version_not_supported",
        Outcome::Retransmission(_) => "pfcp_retransmitted",
        Outcome::Discarded(Discard::ShortHeader) => "pfcp_discarded_short_header",
        Outcome::Discarded(Discard::UnknownType(_)) => "pfcp_discarded_unknown_type",
        Outcome::Discarded(Discard::Unexpected(_)) => "pfcp_discarded_unexpected",
        Outcome::Discarded(Discard::UnknownReport) => "pfcp_discarded_unknown_report",
    }
}

fn info(up_seid: u64, s: &Session) -> SessionInfo {
    SessionInfo {
        up_seid,
        cp_seid: s.cp_seid,
        cp: SocketAddr::V4(SocketAddrV4::new(s.cp_addr, PORT)),
        node: s.node.clone(),
        tunnel: s.tunnel,
        spec: s.spec,
        urrs: s
            .rules
            .urrs
            .iter()
            .map(|(&id, u)| UrrInfo {
                urr_id: id,
                threshold: u.urr.volume_threshold,
                reported: u.reported,
                next_seqn: u.seqn,
            })
            .collect(),
    }
}

/// A Node ID we can key an association by.
fn known_node(n: Option<&NodeId>) -> Result<NodeId, Reject> {
    match n {
        None => Err(IeError::missing(ty::NODE_ID)),
        Some(NodeId::Unknown(_)) => Err(IeError::incorrect(ty::NODE_ID)),
        Some(n) => Ok(n.clone()),
    }
}
