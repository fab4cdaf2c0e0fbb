//! GTP-U over IPv6 transport at the gateway (issue 13): the IPv6 N3 and
//! access node addresses of the fixture world and the frames between
//! them (`fixtures::gateway` holds the rest of that world).

use std::net::Ipv6Addr;

pub use crate::fixtures::gateway::{fold, sum16};
use crate::fixtures::gateway::{AN_MAC, N3_MAC};

pub const N3_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 1);
pub const AN_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 2);

/// Ethernet/IPv6[/hop-by-hop]/UDP 2152 from the access node to the IPv6
/// N3 address, carrying `gtp` (GTP-U header and body), its UDP checksum
/// valid.
pub fn over_ipv6(gtp: &[u8], hbh: bool) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&2152u16.to_be_bytes());
    udp.extend_from_slice(&2152u16.to_be_bytes());
    udp.extend_from_slice(&((8 + gtp.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(gtp);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&AN_ADDR6.octets());
    pseudo.extend_from_slice(&N3_ADDR6.octets());
    let c = !fold(sum16(&pseudo) + 17 + udp.len() as u32 + sum16(&udp));
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    let ext: &[u8] = if hbh {
        // Next header UDP, length 0 (8 octets), PadN of 4.
        &[17, 0, 1, 4, 0, 0, 0, 0]
    } else {
        &[]
    };
    let mut f = Vec::new();
    f.extend_from_slice(&N3_MAC);
    f.extend_from_slice(&AN_MAC);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&((ext.len() + udp.len()) as u16).to_be_bytes());
    f.push(if hbh { 0 } else { 17 });
    f.push(64);
    f.extend_from_slice(&AN_ADDR6.octets());
    f.extend_from_slice(&N3_ADDR6.octets());
    f.extend_from_slice(ext);
    f.extend_from_slice(&udp);
    f
}

/// A G-PDU over IPv6 transport carrying `inner`.
pub fn g_pdu6(teid: u32, inner: &[u8]) -> Vec<u8> {
    let mut g = edgeplane::packets::gtpu_header(teid, 255, 0, &[], inner.len());
    g.extend_from_slice(inner);
    over_ipv6(&g, false)
}
