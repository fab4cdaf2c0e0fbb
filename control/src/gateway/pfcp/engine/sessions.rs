//! The session procedures (§7.5): establishment, modification, deletion.

use super::*;

impl Engine {
    /// §7.5.2: Session Establishment Request.
    pub(super) fn establish(
        &mut self,
        r: &SessionRequest,
        t: &mut dyn Tunnels,
    ) -> Result<(Option<u64>, Reply), (Option<u64>, Reject)> {
        let cp_seid = r.cp_fseid.map(|f| f.seid);
        let fail = |e| (cp_seid, e);
        let node = known_node(r.node_id.as_ref()).map_err(fail)?;
        if !self.associations.contains_key(&node) {
            return Err(fail(IeError {
                cause: Cause::NO_ASSOCIATION,
                ie: None,
            }));
        }
        let fseid = r.cp_fseid.ok_or(fail(IeError::missing(ty::F_SEID)))?;
        let cp_addr = fseid.v4.ok_or(fail(IeError::incorrect(ty::F_SEID)))?;
        if r.create_pdrs.is_empty() {
            return Err(fail(IeError::missing(ty::CREATE_PDR)));
        }
        if r.create_fars.is_empty() {
            return Err(fail(IeError::missing(ty::CREATE_FAR)));
        }
        let mut rules = Rules::default();
        add_rules(&mut rules, r, Volume::default()).map_err(fail)?;
        let d = derive(&rules, &self.cfg).map_err(fail)?;
        if self.sessions.len() as u64 >= u64::from(self.cfg.max_sessions) {
            return Err(fail(no_resources()));
        }
        let ul_teid = if d.fteid.ch {
            self.pick_teid().ok_or(fail(no_resources()))?
        } else {
            self.check_given_teid(&d.fteid, None).map_err(fail)?
        };
        let idx = self.pick_tunnel(ul_teid).ok_or(fail(no_resources()))?;
        let spec = TunnelSpec {
            ul_teid,
            ue_addr: d.ue,
            ue_addr6: d.ue6,
            dl_teid: d.dl.map(|x| x.0),
            an_addr: d.dl.map(|x| x.1),
            qfi: d.qfi,
        };
        t.install(idx, &spec).map_err(|_| fail(no_resources()))?;
        // Committed: nothing below fails.
        let local = local_fteid(&d.fteid, ul_teid, &self.cfg);
        if let Some(p) = rules.pdrs.get_mut(&d.ul_pdr) {
            if let Some(pdi) = p.pdi.as_mut() {
                pdi.fteid = Some(local);
            }
        }
        self.claim_teid(ul_teid);
        if d.fteid.ch {
            self.next_teid = if ul_teid == self.cfg.teid_last {
                self.cfg.teid_first
            } else {
                ul_teid + 1
            };
        }
        let up_seid = self.pick_seid();
        self.next_seid = up_seid.wrapping_add(1).max(1);
        self.by_tunnel.insert(idx, up_seid);
        self.sessions.insert(
            up_seid,
            Session {
                cp_seid: fseid.seid,
                cp_addr,
                node,
                tunnel: idx,
                spec,
                rules,
            },
        );
        let created = d.fteid.ch.then_some(CreatedPdr {
            pdr_id: d.ul_pdr,
            fteid: Some(local),
        });
        Ok((
            Some(fseid.seid),
            Reply {
                node_id: Some(NodeId::V4(self.cfg.node_id)),
                cause: Some(Cause::ACCEPTED),
                fseid: Some(Fseid {
                    seid: up_seid,
                    v4: Some(self.cfg.node_id),
                    v6: None,
                }),
                created_pdrs: created.into_iter().collect(),
                ..Reply::default()
            },
        ))
    }

    /// A TEID the CP chose: on our N3 addresses (each address present
    /// ours, IPv4 or IPv6, at least one), not 0, and not another session's
    /// (`own`: this session's current one).
    fn check_given_teid(&self, f: &Fteid, own: Option<u32>) -> Result<u32, Reject> {
        if f.ch {
            return Err(IeError::incorrect(ty::F_TEID));
        }
        check_fteid(f, &self.cfg)?;
        if self.teids.contains(&f.teid) && own != Some(f.teid) {
            return Err(rule_failure(ty::F_TEID));
        }
        Ok(f.teid)
    }

    /// §7.5.4: Session Modification Request.
    pub(super) fn modify(
        &mut self,
        up_seid: u64,
        r: &SessionRequest,
        t: &mut dyn Tunnels,
    ) -> Result<(Option<u64>, Reply), (Option<u64>, Reject)> {
        let s = self.sessions.get(&up_seid).ok_or((None, not_found()))?;
        let cp_seid = s.cp_seid;
        let fail = |e| (Some(cp_seid), e);
        let mut rules = s.rules.clone();
        let needs_usage = !r.remove_urrs.is_empty() || !r.create_urrs.is_empty();
        let now = if needs_usage {
            t.usage(s.tunnel)
        } else {
            Volume::default()
        };
        let mut reports = Vec::new();
        for id in &r.remove_pdrs {
            rules
                .pdrs
                .remove(id)
                .ok_or(fail(rule_failure(ty::PDR_ID)))?;
        }
        for id in &r.remove_fars {
            rules
                .fars
                .remove(id)
                .ok_or(fail(rule_failure(ty::FAR_ID)))?;
        }
        for id in &r.remove_urrs {
            let u = rules
                .urrs
                .remove(id)
                .ok_or(fail(rule_failure(ty::URR_ID)))?;
            reports.push(UsageReport {
                urr_id: *id,
                ur_seqn: u.seqn,
                trigger: trigger::TERMR,
                volume: Some(now.since(u.reported).measurement()),
            });
        }
        add_rules(&mut rules, r, now).map_err(fail)?;
        if r.create_pdrs
            .iter()
            .chain(&r.update_pdrs)
            .any(|p| p.pdi.as_ref().and_then(|d| d.fteid).is_some_and(|f| f.ch))
        {
            // Re-allocating a live tunnel's TEID is not supported.
            return Err(fail(rule_failure(ty::F_TEID)));
        }
        for u in &r.update_pdrs {
            let id = u.pdr_id.ok_or(fail(IeError::missing(ty::PDR_ID)))?;
            let p = rules
                .pdrs
                .get_mut(&id)
                .ok_or(fail(rule_failure(ty::PDR_ID)))?;
            merge_pdr(p, u);
        }
        for u in &r.update_fars {
            let id = u.far_id.ok_or(fail(IeError::missing(ty::FAR_ID)))?;
            check_far(u).map_err(fail)?;
            let f = rules
                .fars
                .get_mut(&id)
                .ok_or(fail(rule_failure(ty::FAR_ID)))?;
            merge_far(f, u);
        }
        let d = derive(&rules, &self.cfg).map_err(fail)?;
        let ul_teid = self
            .check_given_teid(&d.fteid, Some(s.spec.ul_teid))
            .map_err(fail)?;
        let spec = TunnelSpec {
            ul_teid,
            ue_addr: d.ue,
            ue_addr6: d.ue6,
            dl_teid: d.dl.map(|x| x.0),
            an_addr: d.dl.map(|x| x.1),
            qfi: d.qfi,
        };
        let cp = match r.cp_fseid {
            Some(f) => (f.seid, f.v4.ok_or(fail(IeError::incorrect(ty::F_SEID)))?),
            None => (s.cp_seid, s.cp_addr),
        };
        let (tunnel, old_teid) = (s.tunnel, s.spec.ul_teid);
        if spec != s.spec {
            t.install(tunnel, &spec)
                .map_err(|_| fail(rule_failure(ty::UPDATE_FAR)))?;
        }
        if ul_teid != old_teid {
            self.forget_teid(old_teid);
            self.claim_teid(ul_teid);
        }
        let s = self.sessions.get_mut(&up_seid).expect("looked up above");
        (s.cp_seid, s.cp_addr) = cp;
        s.spec = spec;
        s.rules = rules;
        Ok((
            Some(cp.0),
            Reply {
                cause: Some(Cause::ACCEPTED),
                usage_reports: reports,
                ..Reply::default()
            },
        ))
    }

    /// §7.5.6: Session Deletion Request; a final report per URR (§5.2.2.3).
    pub(super) fn delete(
        &mut self,
        up_seid: u64,
        t: &mut dyn Tunnels,
    ) -> Result<(Option<u64>, Reply), (Option<u64>, Reject)> {
        let s = self.sessions.remove(&up_seid).ok_or((None, not_found()))?;
        let last = t.remove(s.tunnel);
        self.release(&s);
        let reports = s
            .rules
            .urrs
            .iter()
            .map(|(&id, u)| UsageReport {
                urr_id: id,
                ur_seqn: u.seqn,
                trigger: trigger::TERMR,
                volume: Some(last.since(u.reported).measurement()),
            })
            .collect();
        Ok((
            Some(s.cp_seid),
            Reply {
                cause: Some(Cause::ACCEPTED),
                usage_reports: reports,
                ..Reply::default()
            },
        ))
    }
}
