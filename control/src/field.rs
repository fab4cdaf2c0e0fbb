//! What every role's config section shares: the error that names the
//! offending key, the interfaces claimed so far, and the field values
//! more than one role parses (MAC, prefix, interface name). No role's
//! types live here, so each role's `config` depends on this and on
//! nothing of another role's.

use std::{collections::HashSet, net::Ipv4Addr};

/// A config error: the dotted path of the offending key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `lb[0].gateway[1].mac`.
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same error seen from the table holding `section`: a role's
    /// section reports keys relative to itself, the file's keys are
    /// absolute.
    pub fn under(self, section: &str) -> Self {
        Self {
            key: format!("{section}.{}", self.key),
            reason: self.reason,
        }
    }
}

/// The interfaces role instances have claimed so far: an interface runs
/// one role's XDP program, so two instances cannot share it.
#[derive(Debug, Default)]
pub struct InterfaceClaims(HashSet<String>);

impl InterfaceClaims {
    pub fn claim(&mut self, interface: &str) -> Result<(), String> {
        if !self.0.insert(interface.to_string()) {
            return Err(format!("{interface} is already used by another role instance"));
        }
        Ok(())
    }
}

pub fn validate_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name.contains('/')
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// "A.B.C.D/LEN", or a bare address as a /32.
pub fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u32)> {
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    let a: Ipv4Addr = a.parse().ok()?;
    let l: u32 = l.parse().ok()?;
    (l <= 32).then_some((a, l))
}
