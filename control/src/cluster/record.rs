//! The key layout under `[cluster] prefix` and the JSON records it holds
//! (docs/cluster.md is the operator's copy of this).
//!
//! ```text
//! {prefix}/alive/{gateway}          under the gateway daemon's lease: it runs
//! {prefix}/gateways/{gateway}       the gateway as declared: address, MAC,
//!                                   weight, TEID prefix, active/draining
//! {prefix}/lbs/{node}/{interface}   under the LB's lease: its table digest
//!                                   and the revision it was built from
//! {prefix}/members/{node}           under each daemon's lease: who takes part
//! ```
//!
//! A gateway is in the tables when its record exists and it is alive (or
//! its record is static: added by an operator for a gateway that does not
//! register itself). A record outlives its gateway's lease, so a weight or
//! a drain set by an operator survives the gateway's restart.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    field::{text_enum, MacAddr},
    lb::config::Backend,
};

pub const ALIVE: &str = "alive";
pub const GATEWAYS: &str = "gateways";
pub const LBS: &str = "lbs";
pub const MEMBERS: &str = "members";

/// `{prefix}/{dir}/` — every key of one kind.
pub fn dir(prefix: &str, dir: &str) -> String {
    format!("{prefix}/{dir}/")
}

pub fn key(prefix: &str, dir: &str, name: &str) -> String {
    format!("{prefix}/{dir}/{name}")
}

pub fn lb_key(prefix: &str, node: &str, interface: &str) -> String {
    format!("{prefix}/{LBS}/{node}/{interface}")
}

/// The name a key of `dir` is about, if it is one.
pub fn name_of<'a>(prefix: &str, dir: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(prefix)?
        .strip_prefix('/')?
        .strip_prefix(dir)?
        .strip_prefix('/')
        .filter(|n| !n.is_empty())
}

text_enum! {
    #[derive(Default)]
    pub enum GwState {
        #[default]
        Active = "active",
        /// Out of the Maglev tables (new sessions go elsewhere), its entry
        /// and TEID prefix kept until `drain_until`.
        Draining = "draining",
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayRecord {
    pub address: std::net::IpAddr,
    pub mac: MacAddr,
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teid_prefix: Option<u32>,
    #[serde(default)]
    pub state: GwState,
    /// Unix seconds a drain ends at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_until: Option<u64>,
    /// In the tables without an `alive` key.
    #[serde(default, rename = "static")]
    pub is_static: bool,
}

/// `{prefix}/alive/{gateway}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Alive {
    pub node: String,
    /// Unix milliseconds the daemon registered at.
    pub since_ms: u64,
}

/// `{prefix}/members/{node}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Member {
    pub node: String,
    pub roles: Vec<String>,
    pub version: String,
    pub since_ms: u64,
}

/// `{prefix}/lbs/{node}/{interface}`: what one LB instance runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LbTable {
    pub node: String,
    pub interface: String,
    /// The Maglev digest, 16 hex digits (as `edgeplane lb digest`).
    pub digest: String,
    /// The etcd revision of the gateway set it was built from.
    pub revision: i64,
    pub table_size: u32,
    pub seed: u32,
    /// The gateways in the table (draining ones included), by name.
    pub gateways: Vec<String>,
    /// Unix milliseconds the table was last flipped (or found current).
    pub applied_ms: u64,
}

/// Everything under `alive/` and `gateways/` at one revision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewaySet {
    pub records: BTreeMap<String, GatewayRecord>,
    pub alive: BTreeSet<String>,
    pub revision: i64,
}

/// What an LB builds from a set: its backends (draining ones included,
/// with the seconds their drain has left).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effective {
    pub backends: Vec<Backend>,
    pub draining: BTreeMap<String, u64>,
}

impl GatewaySet {
    /// Apply one put (`Some(value)`) or delete of `key`. A value that does
    /// not parse is skipped and reported, never half-applied.
    pub fn apply(&mut self, prefix: &str, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        if let Some(name) = name_of(prefix, GATEWAYS, key) {
            match value {
                None => {
                    self.records.remove(name);
                }
                Some(v) => {
                    let r: GatewayRecord = serde_json::from_slice(v)
                        .map_err(|e| format!("{key}: not a gateway record: {e}"))?;
                    r.validate().map_err(|e| format!("{key}: {e}"))?;
                    self.records.insert(name.to_string(), r);
                }
            }
        } else if let Some(name) = name_of(prefix, ALIVE, key) {
            match value {
                None => {
                    self.alive.remove(name);
                }
                Some(_) => {
                    self.alive.insert(name.to_string());
                }
            }
        }
        Ok(())
    }

    /// The gateways an LB's table holds at `now` (unix seconds), `via` its
    /// egress toward them. A drain that ran out leaves the table.
    pub fn effective(&self, via: Option<&str>, now: u64) -> Effective {
        let mut out = Effective::default();
        for (name, r) in &self.records {
            if !(r.is_static || self.alive.contains(name)) {
                continue;
            }
            if r.state == GwState::Draining {
                let left = r.drain_until.unwrap_or(0).saturating_sub(now);
                if left == 0 {
                    continue;
                }
                out.draining.insert(name.clone(), left);
            }
            out.backends.push(Backend {
                name: name.clone(),
                address: r.address,
                mac: r.mac,
                via: via.map(str::to_string),
                weight: r.weight,
                teid_prefix: r.teid_prefix,
            });
        }
        out
    }
}

impl GatewayRecord {
    /// The checks `[[lb.gateway]]` gets, so a record an LB takes is one a
    /// config file could have held.
    pub fn validate(&self) -> Result<(), String> {
        let b = Backend {
            name: "x".into(),
            address: self.address,
            mac: self.mac,
            via: None,
            weight: self.weight,
            teid_prefix: self.teid_prefix,
        };
        b.validate().map_err(|(field, r)| format!("{field}: {r}"))?;
        if self.state == GwState::Draining && self.drain_until.is_none() {
            return Err("state: draining needs drain_until".into());
        }
        Ok(())
    }
}

/// Whether every LB table runs the same digest (and there is one).
pub fn agree(tables: &[LbTable]) -> bool {
    tables
        .first()
        .is_some_and(|f| tables.iter().all(|t| t.digest == f.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(weight: u32) -> GatewayRecord {
        GatewayRecord {
            address: std::net::Ipv4Addr::new(10, 1, 0, 11).into(),
            mac: "02:00:00:01:00:01".parse().unwrap(),
            weight,
            teid_prefix: None,
            state: GwState::Active,
            drain_until: None,
            is_static: false,
        }
    }

    #[test]
    fn names_come_only_from_their_own_directory() {
        assert_eq!(name_of("/e", GATEWAYS, "/e/gateways/gw1"), Some("gw1"));
        assert_eq!(name_of("/e", GATEWAYS, "/e/gateways/"), None);
        assert_eq!(name_of("/e", GATEWAYS, "/e/alive/gw1"), None);
        assert_eq!(name_of("/e", GATEWAYS, "/ex/gateways/gw1"), None);
    }

    #[test]
    fn a_gateway_is_in_the_table_while_alive_or_static() {
        let mut s = GatewaySet::default();
        let v = serde_json::to_vec(&rec(2)).unwrap();
        s.apply("/e", "/e/gateways/gw1", Some(&v)).unwrap();
        assert!(s.effective(None, 0).backends.is_empty(), "not alive yet");
        s.apply("/e", "/e/alive/gw1", Some(b"{}")).unwrap();
        let e = s.effective(Some("core"), 0);
        assert_eq!(e.backends.len(), 1);
        assert_eq!(e.backends[0].weight, 2);
        assert_eq!(e.backends[0].via.as_deref(), Some("core"));
        s.apply("/e", "/e/alive/gw1", None).unwrap();
        assert!(
            s.effective(None, 0).backends.is_empty(),
            "its lease ran out"
        );
        let mut r = rec(1);
        r.is_static = true;
        s.apply(
            "/e",
            "/e/gateways/gw1",
            Some(&serde_json::to_vec(&r).unwrap()),
        )
        .unwrap();
        assert_eq!(s.effective(None, 0).backends.len(), 1);
    }

    #[test]
    fn a_drain_keeps_the_gateway_until_it_ends() {
        let mut s = GatewaySet::default();
        let mut r = rec(1);
        r.state = GwState::Draining;
        r.drain_until = Some(1000);
        s.records.insert("gw1".into(), r);
        s.alive.insert("gw1".into());
        let e = s.effective(None, 990);
        assert_eq!(e.backends.len(), 1);
        assert_eq!(e.draining.get("gw1"), Some(&10));
        assert!(s.effective(None, 1000).backends.is_empty());
    }

    #[test]
    fn a_bad_record_changes_nothing() {
        let mut s = GatewaySet::default();
        let good = serde_json::to_vec(&rec(1)).unwrap();
        s.apply("/e", "/e/gateways/gw1", Some(&good)).unwrap();
        assert!(s
            .apply("/e", "/e/gateways/gw1", Some(b"{\"weight\":"))
            .is_err());
        assert!(s
            .apply(
                "/e",
                "/e/gateways/gw1",
                Some(&serde_json::to_vec(&rec(5000)).unwrap())
            )
            .is_err());
        assert_eq!(s.records["gw1"].weight, 1);
    }

    #[test]
    fn agreement_needs_one_digest() {
        let t = |d: &str| LbTable {
            node: "n".into(),
            interface: "i".into(),
            digest: d.into(),
            revision: 1,
            table_size: 7,
            seed: 0,
            gateways: vec![],
            applied_ms: 0,
        };
        assert!(!agree(&[]));
        assert!(agree(&[t("a"), t("a")]));
        assert!(!agree(&[t("a"), t("b")]));
    }
}
