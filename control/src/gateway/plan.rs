//! What the gateway's maps should hold for a config, as plain data: server
//! and group indices kept stable by name across reloads (a running session
//! never finds another server behind its index), the selection tables,
//! session type rules, authorization prefixes and services. The edge
//! compares this with the maps and writes only the difference.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use super::{config::Gateway, selection, ServiceAddr};
use crate::field::{IpPrefix, PortRange};
use dataplane_common::gateway::{GROUPS_MAX, SELECT_SLOTS, SERVERS_MAX, TYPES_MAX};

/// Where each name sits in the maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indices {
    /// Group name → group index (`GW_SERVICES` values, `GW_SELECT` rows).
    pub groups: BTreeMap<String, u32>,
    /// (group, server) name → index in `GW_SERVERS`.
    pub servers: BTreeMap<(String, String), u32>,
}

/// A session type rule as the maps hold it (first match wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeRulePlan {
    /// IP protocol number, 0 for any.
    pub proto: u8,
    pub dscp: Option<u8>,
    pub session_type: u8,
    /// Length 0: any terminal of either family.
    pub terminals: IpPrefix,
}

/// The desired contents of the gateway maps. `S` is a server's entry as
/// the edge resolved it (next hop and egress interface in its namespace).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayMaps<S> {
    pub indices: Indices,
    /// The entry at each server index the config uses.
    pub servers: BTreeMap<u32, S>,
    /// Server indices per (group index, session type).
    pub selections: BTreeMap<(u32, u32), [u16; SELECT_SLOTS as usize]>,
    pub type_rules: Vec<TypeRulePlan>,
    /// (group index, network, prefix length) allowed to use the group;
    /// an open group holds the /0 of its family.
    pub auth: BTreeSet<(u32, IpAddr, u8)>,
    /// Representative address → group index.
    pub services: HashMap<ServiceAddr, u32>,
    pub address: Ipv4Addr,
    pub address6: Option<Ipv6Addr>,
    pub ports: PortRange,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no free group slot (at most {GROUPS_MAX})")]
    NoGroupSlot,
    #[error("no free server slot (at most {SERVERS_MAX})")]
    NoServerSlot,
    #[error("group {0} server {1} was not resolved")]
    Unresolved(String, String),
}

/// The maps for `cfg`. `resolved` holds every configured server's entry by
/// (group, name); `prev` the indices of the previous apply and `live` the
/// entries the maps hold at those server indices now. A server keeps its
/// index only while its entry is unchanged; a changed one gets a fresh
/// index, and no index given up here is reused by this plan, so sessions
/// on the old entry keep it until they end.
pub fn plan<S: Clone + PartialEq>(
    cfg: &Gateway,
    resolved: &BTreeMap<(String, String), S>,
    prev: &Indices,
    live: &BTreeMap<u32, S>,
) -> Result<GatewayMaps<S>, PlanError> {
    let mut groups = BTreeMap::new();
    let mut used: Vec<u32> = Vec::new();
    for grp in &cfg.groups {
        if let Some(i) = prev.groups.get(&grp.name) {
            groups.insert(grp.name.clone(), *i);
            used.push(*i);
        }
    }
    for grp in &cfg.groups {
        if !groups.contains_key(&grp.name) {
            // Prefer a slot no previous group had.
            let i = (0..GROUPS_MAX)
                .find(|i| !used.contains(i) && !prev.groups.values().any(|v| v == i))
                .or_else(|| (0..GROUPS_MAX).find(|i| !used.contains(i)))
                .ok_or(PlanError::NoGroupSlot)?;
            used.push(i);
            groups.insert(grp.name.clone(), i);
        }
    }

    let entry = |g: &str, s: &str| {
        resolved
            .get(&(g.to_string(), s.to_string()))
            .ok_or_else(|| PlanError::Unresolved(g.into(), s.into()))
    };
    let mut servers_idx = BTreeMap::new();
    let mut servers = BTreeMap::new();
    for grp in &cfg.groups {
        for s in &grp.servers {
            let key = (grp.name.clone(), s.name.clone());
            let e = entry(&grp.name, &s.name)?;
            if let Some(i) = prev.servers.get(&key) {
                if live.get(i) == Some(e) {
                    servers_idx.insert(key, *i);
                    servers.insert(*i, e.clone());
                }
            }
        }
    }
    let retired: Vec<u32> = prev
        .servers
        .values()
        .copied()
        .filter(|i| !servers.contains_key(i))
        .collect();
    for grp in &cfg.groups {
        for s in &grp.servers {
            let key = (grp.name.clone(), s.name.clone());
            if servers_idx.contains_key(&key) {
                continue;
            }
            let i = (0..SERVERS_MAX)
                .find(|i| !servers.contains_key(i) && !retired.contains(i))
                .ok_or(PlanError::NoServerSlot)?;
            servers.insert(i, entry(&grp.name, &s.name)?.clone());
            servers_idx.insert(key, i);
        }
    }

    let mut selections = BTreeMap::new();
    let mut auth = BTreeSet::new();
    let mut services = HashMap::new();
    for grp in &cfg.groups {
        let gi = groups[&grp.name];
        for t in 0..TYPES_MAX {
            // A server without a type list takes the default type only.
            let members: Vec<(u16, u32)> = grp
                .servers
                .iter()
                .filter(|s| {
                    s.types
                        .as_ref()
                        .map(|ts| ts.contains(&(t as u8)))
                        .unwrap_or(t == 0)
                })
                .map(|s| {
                    (
                        servers_idx[&(grp.name.clone(), s.name.clone())] as u16,
                        s.weight,
                    )
                })
                .collect();
            selections.insert((gi, t), selection(&members));
        }
        match &grp.allow {
            None => {
                auth.insert((gi, IpPrefix::any(grp.is_ipv6()).addr, 0));
            }
            Some(list) => auth.extend(list.iter().map(|p| (gi, p.network(), p.len))),
        }
        for sa in &grp.services {
            services.insert(*sa, gi);
        }
    }
    let type_rules = cfg
        .session_types
        .iter()
        .map(|t| TypeRulePlan {
            proto: t.proto.map(|p| p.number()).unwrap_or(0),
            dscp: t.dscp,
            session_type: t.id,
            terminals: t
                .terminals
                .map(|p| IpPrefix {
                    addr: p.network(),
                    len: p.len,
                })
                .unwrap_or(IpPrefix::any(false)),
        })
        .collect();
    Ok(GatewayMaps {
        indices: Indices {
            groups,
            servers: servers_idx,
        },
        servers,
        selections,
        type_rules,
        auth,
        services,
        address: cfg.address,
        address6: cfg.address6,
        ports: cfg.ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Protocol;
    use crate::gateway::config::{Group, ServerCfg, SessionType};
    use dataplane_common::gateway::NO_SERVER;

    fn server(name: &str, last: u8, types: Option<Vec<u8>>) -> ServerCfg {
        ServerCfg {
            name: name.into(),
            address: Ipv4Addr::new(10, 2, 0, last).into(),
            port: 8080,
            weight: 1,
            via: None,
            next_hop: None,
            mac: None,
            types,
        }
    }

    fn group(name: &str, last: u8, servers: Vec<ServerCfg>, allow: Option<Vec<IpPrefix>>) -> Group {
        let services = vec![ServiceAddr {
            addr: Ipv4Addr::new(198, 51, 100, last).into(),
            port: 80,
            proto: Protocol::Tcp,
        }];
        Group {
            name: name.into(),
            services,
            allow,
            servers,
        }
    }

    fn gateway(groups: Vec<Group>) -> Gateway {
        let text = "interfaces = [\"gw0\"]\naddress = \"10.2.0.1\"\n";
        let mut g: Gateway = toml::from_str(text).unwrap();
        g.groups = groups;
        g
    }

    /// Entries as the edge would resolve them: one number per server.
    fn resolved(cfg: &Gateway, version: impl Fn(&str) -> u32) -> BTreeMap<(String, String), u32> {
        cfg.groups
            .iter()
            .flat_map(|g| {
                g.servers
                    .iter()
                    .map(|s| ((g.name.clone(), s.name.clone()), version(&s.name)))
            })
            .collect()
    }

    fn first(cfg: &Gateway) -> GatewayMaps<u32> {
        plan(
            cfg,
            &resolved(cfg, |_| 1),
            &Indices::default(),
            &BTreeMap::new(),
        )
        .unwrap()
    }

    fn web_dns() -> Gateway {
        let prefix: IpPrefix = "10.9.1.1/16".parse().unwrap();
        gateway(vec![
            group(
                "web",
                10,
                vec![server("a", 11, None), server("b", 12, None)],
                None,
            ),
            group(
                "dns",
                20,
                vec![server("c", 21, None), server("voice", 22, Some(vec![1]))],
                Some(vec![prefix]),
            ),
        ])
    }

    #[test]
    fn a_first_plan_numbers_groups_and_servers_in_config_order() {
        let m = first(&web_dns());
        assert_eq!(
            m.indices.groups,
            BTreeMap::from([("web".into(), 0), ("dns".into(), 1)])
        );
        let idx = |g: &str, s: &str| m.indices.servers[&(g.to_string(), s.to_string())];
        assert_eq!(
            [
                idx("web", "a"),
                idx("web", "b"),
                idx("dns", "c"),
                idx("dns", "voice")
            ],
            [0, 1, 2, 3]
        );
        assert_eq!(
            m.servers.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        // Default type: the servers without a type list; type 1: voice.
        assert!(m.selections[&(1, 0)].iter().all(|s| *s == 2));
        assert!(m.selections[&(1, 1)].iter().all(|s| *s == 3));
        assert!(m.selections[&(1, 2)].iter().all(|s| *s == NO_SERVER));
        assert_eq!(m.selections.len(), 2 * TYPES_MAX as usize);
        // Everyone may use web; dns only its prefix, host bits cleared.
        assert_eq!(
            m.auth,
            BTreeSet::from([
                (0, Ipv4Addr::UNSPECIFIED.into(), 0),
                (1, Ipv4Addr::new(10, 9, 0, 0).into(), 16)
            ])
        );
        assert_eq!(
            m.services[&ServiceAddr {
                addr: Ipv4Addr::new(198, 51, 100, 20).into(),
                port: 80,
                proto: Protocol::Tcp
            }],
            1
        );
    }

    #[test]
    fn indices_stay_put_across_a_reload_and_a_changed_server_moves() {
        let cfg = web_dns();
        let m1 = first(&cfg);
        // Same config, same entries: nothing moves.
        let same = plan(&cfg, &resolved(&cfg, |_| 1), &m1.indices, &m1.servers).unwrap();
        assert_eq!(same, m1);
        // Server b's entry changed (e.g. its MAC): a fresh index, never
        // its old one while sessions may still use it.
        let m2 = plan(
            &cfg,
            &resolved(&cfg, |n| if n == "b" { 2 } else { 1 }),
            &m1.indices,
            &m1.servers,
        )
        .unwrap();
        let b = m2.indices.servers[&("web".to_string(), "b".to_string())];
        assert_eq!(b, 4);
        assert_eq!(m2.servers[&b], 2);
        assert!(!m2.servers.contains_key(&1));
        assert!(m2.selections[&(0, 0)].contains(&4) && !m2.selections[&(0, 0)].contains(&1));
    }

    #[test]
    fn a_new_group_avoids_the_slot_of_a_removed_one() {
        let m1 = first(&web_dns());
        let next = gateway(vec![
            group("dns", 20, vec![server("c", 21, None)], None),
            group("mail", 30, vec![server("m", 31, None)], None),
        ]);
        let m2 = plan(&next, &resolved(&next, |_| 1), &m1.indices, &m1.servers).unwrap();
        assert_eq!(
            m2.indices.groups,
            BTreeMap::from([("dns".into(), 1), ("mail".into(), 2)])
        );
        // web's servers are gone and their indices are not reused yet.
        assert_eq!(m2.indices.servers[&("dns".to_string(), "c".to_string())], 2);
        assert_eq!(
            m2.indices.servers[&("mail".to_string(), "m".to_string())],
            4
        );
    }

    #[test]
    fn an_ipv6_group_is_open_to_ipv6_and_keeps_its_prefixes() {
        let mut cfg = web_dns();
        let mut g6 = group("web6", 0, vec![server("a6", 0, None)], None);
        g6.services[0].addr = "2001:db8:64::10".parse().unwrap();
        g6.servers[0].address = "2001:db8:2::11".parse().unwrap();
        let mut g6b = g6.clone();
        g6b.name = "web6b".into();
        g6b.services[0].addr = "2001:db8:64::11".parse().unwrap();
        g6b.allow = Some(vec!["2001:db8:9:1::5/48".parse().unwrap()]);
        cfg.groups.extend([g6, g6b]);
        cfg.address6 = Some("2001:db8:2::1".parse().unwrap());
        let m = first(&cfg);
        assert!(m.auth.contains(&(2, "::".parse().unwrap(), 0)));
        assert!(m.auth.contains(&(3, "2001:db8:9::".parse().unwrap(), 48)));
        assert_eq!(m.address6, cfg.address6);
    }

    #[test]
    fn type_rules_follow_the_config_and_an_unresolved_server_is_an_error() {
        let mut cfg = web_dns();
        cfg.session_types = vec![SessionType {
            name: "voice".into(),
            id: 1,
            proto: Some(Protocol::Udp),
            dscp: Some(46),
            terminals: None,
        }];
        let m = first(&cfg);
        assert_eq!(
            m.type_rules,
            vec![TypeRulePlan {
                proto: 17,
                dscp: Some(46),
                session_type: 1,
                terminals: IpPrefix::any(false)
            }]
        );
        let mut partial = resolved(&cfg, |_| 1);
        partial.remove(&("dns".to_string(), "voice".to_string()));
        assert_eq!(
            plan(&cfg, &partial, &Indices::default(), &BTreeMap::new()),
            Err(PlanError::Unresolved("dns".into(), "voice".into()))
        );
    }
}
