//! Typed access to the connection controller's maps.

use std::net::Ipv4Addr;

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

impl Dataplane {
    pub fn set_network(&mut self, id: u32, egress: &NetEgress) -> Result<()> {
        let mut a: Array<&mut MapData, NetEgress> = self.map_mut(&maps::ST_NETS)?;
        a.set(id, egress, 0).map_err(map_err(&maps::ST_NETS))?;
        let mut p: DevMapHash<&mut MapData> = self.map_mut(&maps::ST_TX_PORTS)?;
        p.insert(egress.ifindex, egress.ifindex, None, 0)
            .map_err(|e| Error::Other(format!("{}: {e}", maps::ST_TX_PORTS.name)))
    }

    /// Steer `service` to `network`, holding or not.
    pub fn set_steering(&mut self, service: Ipv4Addr, s: Steering) -> Result<()> {
        let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut(&maps::ST_STEER)?;
        h.insert(service_key(service), s, 0)
            .map_err(map_err(&maps::ST_STEER))
    }

    /// Stop steering `service`: its packets pass.
    pub fn remove_steering(&mut self, service: Ipv4Addr) -> Result<()> {
        let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut(&maps::ST_STEER)?;
        h.remove(&service_key(service))
            .map_err(map_err(&maps::ST_STEER))
    }

    pub fn steering(&self, service: Ipv4Addr) -> Result<Option<Steering>> {
        let h: HashMap<&MapData, u32, Steering> = self.map(&maps::ST_STEER)?;
        match h.get(&service_key(service), 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(&maps::ST_STEER)(e)),
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
    }
}
