//! What the load-sharing fuzz targets share: the key, the routers'
//! addresses, and tagging a body with HMAC-SHA256 as the sender does.

use std::net::{IpAddr, Ipv4Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const KEY: &[u8] = b"shared secret";

pub fn addr(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 3, 0, i))
}

pub fn tag(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(body);
    m.finalize().into_bytes().to_vec()
}
