//! Typed access to the connection controller's maps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{Array, DevMapHash, HashMap, MapData, XskMap};
use dataplane_common::{
    maps,
    migration::{NetEgress, Steering},
    Counter,
};

use crate::{pins::map_err, Dataplane, Error, Result};

/// `ST_STEER`'s key: the address as it sits in the packet (network order),
/// so the program compares without swapping.
fn service_key(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// `ST_STEER6`'s key: the address as four words as in the packet.
fn service_key6(a: Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

impl Dataplane {
    pub fn set_network(&mut self, id: u32, egress: &NetEgress) -> Result<()> {
        let mut a: Array<&mut MapData, NetEgress> = self.map_mut(&maps::ST_NETS)?;
        a.set(id, egress, 0).map_err(map_err(&maps::ST_NETS))?;
        let mut p: DevMapHash<&mut MapData> = self.map_mut(&maps::ST_TX_PORTS)?;
        p.insert(egress.ifindex, egress.ifindex, None, 0)
            .map_err(|e| Error::Other(format!("{}: {e}", maps::ST_TX_PORTS.name)))
    }

    /// Steer `service` (IPv4 or IPv6) to `network`, holding or not.
    pub fn set_steering(&mut self, service: impl Into<IpAddr>, s: Steering) -> Result<()> {
        match service.into() {
            IpAddr::V4(a) => {
                let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut(&maps::ST_STEER)?;
                h.insert(service_key(a), s, 0)
                    .map_err(map_err(&maps::ST_STEER))
            }
            IpAddr::V6(a) => {
                let mut h: HashMap<&mut MapData, [u32; 4], Steering> =
                    self.map_mut(&maps::ST_STEER6)?;
                h.insert(service_key6(a), s, 0)
                    .map_err(map_err(&maps::ST_STEER6))
            }
        }
    }

    /// Stop steering `service`: its packets pass.
    pub fn remove_steering(&mut self, service: impl Into<IpAddr>) -> Result<()> {
        match service.into() {
            IpAddr::V4(a) => {
                let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut(&maps::ST_STEER)?;
                h.remove(&service_key(a)).map_err(map_err(&maps::ST_STEER))
            }
            IpAddr::V6(a) => {
                let mut h: HashMap<&mut MapData, [u32; 4], Steering> =
                    self.map_mut(&maps::ST_STEER6)?;
                h.remove(&service_key6(a))
                    .map_err(map_err(&maps::ST_STEER6))
            }
        }
    }

    pub fn steering(&self, service: impl Into<IpAddr>) -> Result<Option<Steering>> {
        let got = match service.into() {
            IpAddr::V4(a) => {
                let h: HashMap<&MapData, u32, Steering> = self.map(&maps::ST_STEER)?;
                h.get(&service_key(a), 0).map_err(|e| (e, &maps::ST_STEER))
            }
            IpAddr::V6(a) => {
                let h: HashMap<&MapData, [u32; 4], Steering> = self.map(&maps::ST_STEER6)?;
                h.get(&service_key6(a), 0)
                    .map_err(|e| (e, &maps::ST_STEER6))
            }
        };
        match got {
            Ok(v) => Ok(Some(v)),
            Err((aya::maps::MapError::KeyNotFound, _)) => Ok(None),
            Err((e, def)) => Err(map_err(def)(e)),
        }
    }

    /// Put the AF_XDP socket for rx queue `queue` in the hold map.
    pub fn set_steer_xsk(&mut self, queue: u32, fd: std::os::fd::RawFd) -> Result<()> {
        let mut m: XskMap<&mut MapData> = self.map_mut(&maps::ST_XSKS)?;
        // SAFETY: the caller keeps the socket open while it is in the map
        // (a closed fd only makes the kernel drop the entry's packets).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        m.set(queue, fd, 0).map_err(map_err(&maps::ST_XSKS))
    }

    pub fn steer_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::ST_STATS)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_the_address_in_packet_order() {
        let k = super::service_key(std::net::Ipv4Addr::new(192, 0, 2, 80));
        assert_eq!(k.to_ne_bytes(), [192, 0, 2, 80]);
        let k6 = super::service_key6("2001:db8::80".parse().unwrap());
        assert_eq!(k6[0].to_ne_bytes(), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(k6[3].to_ne_bytes(), [0, 0, 0, 0x80]);
    }
}
