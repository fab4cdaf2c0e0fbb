//! Representative addresses ("ADDR:PORT/PROTO") and the protocol names
//! the gateway speaks.

use std::{fmt, net::Ipv4Addr};

use crate::field::{text_serde, Protocol};

/// A representative address (claim 3): what terminals send to, standing
/// for a group of servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAddr {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub proto: Protocol,
}

/// The name of an IP protocol number a session carries.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "other",
    }
}

impl std::str::FromStr for ServiceAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (sa, proto) = s
            .rsplit_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDR:PORT/PROTO"))?;
        let proto: Protocol = proto
            .parse()
            .map_err(|_| format!("{s:?}: protocol must be tcp or udp"))?;
        let sa: std::net::SocketAddrV4 = sa
            .parse()
            .map_err(|_| format!("{s:?}: expected ADDR:PORT/PROTO"))?;
        Ok(Self {
            addr: *sa.ip(),
            port: sa.port(),
            proto,
        })
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}:{}/{}", self.addr, self.port, self.proto))
    }
}

text_serde!(ServiceAddr);
