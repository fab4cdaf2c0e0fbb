//! A session's rules (§5.2, §7.5.2): PDRs, FARs, URRs and QERs by ID, and
//! the one tunnel shape this gateway reads off them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::engine::Volume;
use super::ie::{
    action, ty, Cause, Fteid, IeError, Ohc, IFACE_ACCESS, IFACE_CORE, OHR_GTPU_UDP_IPV4,
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

/// A FAR's own content: an OHC must be GTP-U/UDP/IPv4 with its TEID and
/// address.
pub(super) fn check_far(f: &Far) -> Result<(), Reject> {
    if let Some(o) = f.forwarding.and_then(|fw| fw.ohc) {
        if o.description != Ohc::GTPU_UDP_IPV4 || o.teid.is_none() || o.v4.is_none() {
            return Err(IeError::incorrect(ty::OUTER_HEADER_CREATION));
        }
    }
    Ok(())
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
    pub(super) ue6: Option<std::net::Ipv6Addr>,
    pub(super) dl: Option<(u32, Ipv4Addr)>,
    pub(super) qfi: Option<u8>,
}

/// Checks `rules` have the one shape this gateway supports and reads the
/// tunnel off them.
pub(super) fn derive(rules: &Rules) -> Result<Derived, Reject> {
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
    if (fteid.ch && !fteid.want_v4) || (!fteid.ch && fteid.v4.is_none()) {
        return Err(IeError::incorrect(ty::F_TEID));
    }
    if ul
        .outer_header_removal
        .is_some_and(|d| d != OHR_GTPU_UDP_IPV4)
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
    let dl_path = match (
        dl_far.apply_action.unwrap_or(0) & action::FORW != 0,
        dl_far.forwarding.and_then(|f| f.ohc),
    ) {
        (
            true,
            Some(Ohc {
                teid: Some(teid),
                v4: Some(an),
                ..
            }),
        ) => Some((teid, an)),
        _ => None,
    };
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
