//! Representative addresses ("ADDR:PORT/PROTO") and the protocol names
//! the gateway speaks.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
};

use crate::field::{text_serde, Protocol};

/// A representative address (claim 3): what terminals send to, standing
/// for a group of servers. `ADDR:PORT/PROTO`, an IPv6 address in
/// brackets (`[2001:db8::10]:80/tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceAddr {
    pub addr: IpAddr,
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
        let sa: SocketAddr = sa.parse().map_err(|_| {
            format!("{s:?}: expected ADDR:PORT/PROTO (an IPv6 address in brackets: [X:X::X]:PORT/PROTO)")
        })?;
        Ok(Self {
            addr: sa.ip(),
            port: sa.port(),
            proto,
        })
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sa = SocketAddr::new(self.addr, self.port);
        f.pad(&format!("{sa}/{}", self.proto))
    }
}

text_serde!(ServiceAddr);
