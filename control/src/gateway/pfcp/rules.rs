//! A session's rules (§5.2, §7.5.2): PDRs, FARs, URRs and QERs by ID, and
//! the one tunnel shape this gateway reads off them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::engine::{EngineConfig, Volume};
use super::ie::{
    action, ty, Cause, Fteid, IeError, IFACE_ACCESS, IFACE_CORE, OHR_GTPU_UDP_IPV4,
    OHR_GTPU_UDP_IPV6,
};
use super::wire::{Far, Pdr, Qer, SessionRequest, Urr};

pub(super) type Reject = IeError;

pub(super) fn rule_failure(ie: u16) -> Reject {
    IeError {
        cause: Cause::RULE_FAILURE,
        ie: Some(ie),
    }
}

#[derive(Clone)]
pub(super) struct UrrRule {
    pub(super) urr: Urr,
    pub(super) reported: Volume,
    pub(super) seqn: u32,
}

#[derive(Clone, Default)]
pub(super) struct Rules {
    pub(super) pdrs: BTreeMap<u16, Pdr>,
    pub(super) fars: BTreeMap<u32, Far>,
    pub(super) urrs: BTreeMap<u32, UrrRule>,
    pub(super) qers: BTreeMap<u32, Qer>,
}

/// A FAR's own content: an OHC must be exactly GTP-U/UDP/IPv4 with its
/// TEID and IPv4 address, or exactly GTP-U/UDP/IPv6 with its TEID and IPv6
/// address ([`super::ie::Ohc::gtpu_peer`]).
pub(super) fn check_far(f: &Far) -> Result<(), Reject> {
    if let Some(o) = f.forwarding.and_then(|fw| fw.ohc) {
        if o.gtpu_peer().is_none() {
            return Err(IeError::incorrect(ty::OUTER_HEADER_CREATION));
        }
    }
    Ok(())
}

/// The uplink PDI's F-TEID against our N3 addresses. CH: the CP asks for
/// IPv4 (we always have one) or IPv6 (when `n3_addr6` is configured), or
/// both. Given by the CP: a TEID other than 0, at least one address, and
/// every address present ours.
pub(super) fn check_fteid(f: &Fteid, cfg: &EngineConfig) -> Result<(), Reject> {
    let ok = if f.ch {
        f.want_v4 || (f.want_v6 && cfg.n3_addr6.is_some())
    } else {
        f.teid != 0
            && (f.v4.is_some() || f.v6.is_some())
            && f.v4.is_none_or(|a| a == cfg.n3_addr)
            && f.v6.is_none_or(|a| Some(a) == cfg.n3_addr6)
    };
    if ok {
        Ok(())
    } else {
        Err(IeError::incorrect(ty::F_TEID))
    }
}

/// The F-TEID we answer and keep for an uplink PDI `asked` for, with the
/// TEID `teid`: under CH our N3 address of each family asked for (that we
/// have); a given one as given (ours, [`check_fteid`]).
pub(super) fn local_fteid(asked: &Fteid, teid: u32, cfg: &EngineConfig) -> Fteid {
    let (v4, v6) = if asked.ch {
        (
            asked.want_v4.then_some(cfg.n3_addr),
            cfg.n3_addr6.filter(|_| asked.want_v6),
        )
    } else {
        (asked.v4, asked.v6)
    };
    Fteid {
        teid,
        v4,
        v6,
        ..Fteid::default()
    }
}

/// The Create PDR/FAR/URR/QER of `r` into `rules`; new URRs count from
/// `now`. A rule ID already present is a rule failure.
pub(super) fn add_rules(rules: &mut Rules, r: &SessionRequest, now: Volume) -> Result<(), Reject> {
    for f in &r.create_fars {
        let id = f.far_id.ok_or(IeError::missing(ty::FAR_ID))?;
        f.apply_action.ok_or(IeError::missing(ty::APPLY_ACTION))?;
        check_far(f)?;
        if rules.fars.insert(id, *f).is_some() {
            return Err(rule_failure(ty::FAR_ID));
        }
    }
    for u in &r.create_urrs {
        let id = u.urr_id.ok_or(IeError::missing(ty::URR_ID))?;
        if rules
            .urrs
            .insert(
                id,
                UrrRule {
                    urr: *u,
                    reported: now,
                    seqn: 0,
                },
            )
            .is_some()
        {
            return Err(rule_failure(ty::URR_ID));
        }
    }
    for q in &r.create_qers {
        let id = q.qer_id.ok_or(IeError::missing(ty::QER_ID))?;
        if rules.qers.insert(id, *q).is_some() {
            return Err(rule_failure(ty::QER_ID));
        }
    }
    for p in &r.create_pdrs {
        let id = p.pdr_id.ok_or(IeError::missing(ty::PDR_ID))?;
        let pdi = p.pdi.as_ref().ok_or(IeError::missing(ty::PDI))?;
        pdi.source_interface
            .ok_or(IeError::missing(ty::SOURCE_INTERFACE))?;
        p.far_id.ok_or(IeError::missing(ty::FAR_ID))?;
        if rules.pdrs.insert(id, p.clone()).is_some() {
            return Err(rule_failure(ty::PDR_ID));
        }
    }
    Ok(())
}

pub(super) fn merge_pdr(p: &mut Pdr, u: &Pdr) {
    if u.precedence.is_some() {
        p.precedence = u.precedence;
    }
    if u.pdi.is_some() {
        p.pdi = u.pdi.clone();
    }
    if u.outer_header_removal.is_some() {
        p.outer_header_removal = u.outer_header_removal;
    }
    if u.far_id.is_some() {
        p.far_id = u.far_id;
    }
    if !u.urr_ids.is_empty() {
        p.urr_ids = u.urr_ids.clone();
    }
    if !u.qer_ids.is_empty() {
        p.qer_ids = u.qer_ids.clone();
    }
}

/// §7.5.4.3: Update FAR; Update Forwarding Parameters change only what
/// they carry.
pub(super) fn merge_far(f: &mut Far, u: &Far) {
    if u.apply_action.is_some() {
        f.apply_action = u.apply_action;
    }
    if let Some(ufw) = u.forwarding {
        let fw = f.forwarding.get_or_insert_with(Default::default);
        if ufw.destination_interface.is_some() {
            fw.destination_interface = ufw.destination_interface;
        }
        if ufw.ohc.is_some() {
            fw.ohc = ufw.ohc;
        }
    }
}

/// The tunnel a rule set describes.
pub(super) struct Derived {
    pub(super) ul_pdr: u16,
    pub(super) fteid: Fteid,
    pub(super) ue: Ipv4Addr,
    pub(super) ue6: Option<Ipv6Addr>,
    /// The access node's TEID and address (IPv4 or IPv6).
    pub(super) dl: Option<(u32, IpAddr)>,
    pub(super) qfi: Option<u8>,
}

/// Checks `rules` have the one shape this gateway supports (with an
/// F-TEID on our N3 addresses of `cfg`) and reads the tunnel off them.
pub(super) fn derive(rules: &Rules, cfg: &EngineConfig) -> Result<Derived, Reject> {
    let mut ul = None;
    let mut dl = None;
    for (&id, p) in &rules.pdrs {
        let far = p.far_id.ok_or(IeError::missing(ty::FAR_ID))?;
        if !rules.fars.contains_key(&far) {
            return Err(rule_failure(ty::FAR_ID));
        }
        if p.urr_ids.iter().any(|u| !rules.urrs.contains_key(u)) {
            return Err(rule_failure(ty::URR_ID));
        }
        if p.qer_ids.iter().any(|q| !rules.qers.contains_key(q)) {
            return Err(rule_failure(ty::QER_ID));
        }
        let pdi = p.pdi.as_ref().ok_or(IeError::missing(ty::PDI))?;
        let slot = match pdi.source_interface {
            Some(IFACE_ACCESS) => &mut ul,
            Some(IFACE_CORE) => &mut dl,
            Some(_) => return Err(rule_failure(ty::SOURCE_INTERFACE)),
            None => return Err(IeError::missing(ty::SOURCE_INTERFACE)),
        };
        // One uplink and one downlink PDR: more is beyond this gateway.
        if slot.replace((id, p)).is_some() {
            return Err(rule_failure(ty::CREATE_PDR));
        }
    }
    let (ul_id, ul) = ul.ok_or(rule_failure(ty::CREATE_PDR))?;
    let (_, dl) = dl.ok_or(rule_failure(ty::CREATE_PDR))?;
    let ul_pdi = ul.pdi.as_ref().ok_or(IeError::missing(ty::PDI))?;
    let fteid = ul_pdi.fteid.ok_or(IeError::missing(ty::F_TEID))?;
    check_fteid(&fteid, cfg)?;
    if ul
        .outer_header_removal
        .is_some_and(|d| d != OHR_GTPU_UDP_IPV4 && d != OHR_GTPU_UDP_IPV6)
    {
        return Err(rule_failure(ty::OUTER_HEADER_REMOVAL));
    }
    let far_of = |p: &Pdr| {
        p.far_id
            .and_then(|id| rules.fars.get(&id))
            .copied()
            .unwrap_or_default()
    };
    if far_of(ul).apply_action.unwrap_or(0) & action::FORW == 0 {
        return Err(rule_failure(ty::APPLY_ACTION));
    }
    let ue_ip = dl
        .pdi
        .as_ref()
        .and_then(|p| p.ue_ip)
        .ok_or(IeError::missing(ty::UE_IP_ADDRESS))?;
    // IPv4, IPv6 (the UE's /64) or both (a dual-stack PDU session).
    if ue_ip.v4.is_none() && ue_ip.v6.is_none() {
        return Err(IeError::incorrect(ty::UE_IP_ADDRESS));
    }
    let ue = ue_ip.v4.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let ue6 = ue_ip.v6;
    let dl_far = far_of(dl);
    // Downlink live only when forwarding with an outer header: BUFF, DROP
    // or no OHC yet leave it out of the fast path.
    let dl_path = dl_far
        .forwarding
        .and_then(|f| f.ohc)
        .filter(|_| dl_far.apply_action.unwrap_or(0) & action::FORW != 0)
        .and_then(|o| o.gtpu_peer());
    // The QFI the downlink is marked with: the downlink PDR's QER (where
    // an SMF puts it), else the uplink's, else the uplink PDI's.
    let qer_qfi = |p: &Pdr| {
        p.qer_ids
            .iter()
            .filter_map(|q| rules.qers.get(q))
            .find_map(|q| q.qfi)
    };
    let qfi = qer_qfi(dl).or_else(|| qer_qfi(ul)).or(ul_pdi.qfi);
    Ok(Derived {
        ul_pdr: ul_id,
        fteid,
        ue,
        ue6,
        dl: dl_path,
        qfi,
    })
}
