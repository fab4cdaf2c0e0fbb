//! Usage reporting on volume thresholds (§5.2.2): our Session Report
//! Requests, their retransmissions, and the CP's responses.

use std::net::{SocketAddr, SocketAddrV4};

use super::{discard, Discard, Engine, Handled, Outcome, Procedure, Tunnels};
use crate::gateway::pfcp::{
    ie::{trigger, ty, Cause, REPORT_USAR},
    wire::{msg, Header, Reply, UsageReport, PORT},
};

/// A Session Report Request of ours not yet answered: retransmitted
/// every [`REPORT_T1_POLLS`] polls, at most [`REPORT_N1`] times (§6.4:
/// T1 and N1), then given up and counted.
pub(super) struct PendingReport {
    up_seid: u64,
    peer: SocketAddr,
    bytes: Vec<u8>,
    polls: u32,
    tries: u32,
}

/// Polls (the daemon polls once a second) before a retransmission.
const REPORT_T1_POLLS: u32 = 3;
/// Retransmissions of one report.
const REPORT_N1: u32 = 3;

/// Outstanding reports kept; older ones are forgotten (their responses are
/// then counted as unknown).
pub(super) const PENDING_REPORTS_MAX: usize = 4096;

impl Engine {
    /// Session Report Requests for the volume thresholds reached since the
    /// last call, each to its CP's F-SEID address, port 8805.
    pub fn poll_reports(&mut self, t: &mut dyn Tunnels) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        // Unanswered reports first: again after T1, given up after N1.
        let mut gave_up = 0;
        self.pending_reports.retain(|_, p| {
            p.polls += 1;
            if p.polls < REPORT_T1_POLLS {
                return true;
            }
            if p.tries >= REPORT_N1 {
                gave_up += 1;
                return false;
            }
            p.polls = 0;
            p.tries += 1;
            out.push((p.peer, p.bytes.clone()));
            true
        });
        if !out.is_empty() {
            *self
                .counters
                .entry("pfcp_reports_retransmitted")
                .or_default() += out.len() as u64;
        }
        if gave_up > 0 {
            *self.counters.entry("pfcp_reports_unanswered").or_default() += gave_up;
        }
        let seids: Vec<u64> = self.sessions.keys().copied().collect();
        for up_seid in seids {
            let Some(s) = self.sessions.get_mut(&up_seid) else {
                continue;
            };
            if !s
                .rules
                .urrs
                .values()
                .any(|u| u.urr.volume_threshold.is_some())
            {
                continue;
            }
            let now = t.usage(s.tunnel);
            let mut reports = Vec::new();
            for (&id, u) in s.rules.urrs.iter_mut() {
                let Some(th) = &u.urr.volume_threshold else {
                    continue;
                };
                let used = now.since(u.reported);
                if used.reaches(th) {
                    reports.push(UsageReport {
                        urr_id: id,
                        ur_seqn: u.seqn,
                        trigger: trigger::VOLTH,
                        volume: Some(used.measurement()),
                    });
                    u.reported = now;
                    u.seqn = u.seqn.wrapping_add(1);
                }
            }
            if reports.is_empty() {
                continue;
            }
            let (cp_seid, cp_addr) = (s.cp_seid, s.cp_addr);
            let seq = self.take_seq();
            let r = Reply {
                report_type: Some(REPORT_USAR),
                usage_reports: reports,
                ..Reply::default()
            };
            let bytes = Header::session(msg::SESSION_REPORT_REQUEST, cp_seid, seq)
                .encode(&r.encode(ty::USAGE_REPORT_SRR));
            let peer = SocketAddr::V4(SocketAddrV4::new(cp_addr, PORT));
            self.pending_reports.insert(
                seq,
                PendingReport {
                    up_seid,
                    peer,
                    bytes: bytes.clone(),
                    polls: 0,
                    tries: 0,
                },
            );
            if self.pending_reports.len() > PENDING_REPORTS_MAX {
                self.pending_reports.pop_first();
            }
            *self.counters.entry("pfcp_reports_sent").or_default() += 1;
            out.push((peer, bytes));
        }
        out
    }

    /// §7.5.9: the CP's answer to one of our reports. Never answered.
    pub(super) fn report_response(&mut self, h: &Header, r: &Reply) -> Handled {
        let ours = self
            .pending_reports
            .get(&h.seq)
            .is_some_and(|p| Some(p.up_seid) == h.seid || h.seid == Some(0));
        if !ours {
            return discard(Discard::UnknownReport);
        }
        self.pending_reports.remove(&h.seq);
        let outcome = match r.cause {
            Some(Cause::ACCEPTED) => Outcome::Accepted(Procedure::Report),
            c => Outcome::Rejected {
                procedure: Procedure::Report,
                cause: c.unwrap_or(Cause(0)),
            },
        };
        Handled {
            reply: None,
            outcome,
        }
    }
}
