//! Representative addresses ("ADDR:PORT/PROTO") and the protocol names
//! the gateway speaks.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceAddr {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
}

pub fn parse_proto(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        _ => None,
    }
}

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
        let proto =
            parse_proto(proto).ok_or_else(|| format!("{s:?}: protocol must be tcp or udp"))?;
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
