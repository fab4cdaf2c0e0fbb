//! Typed access to the connection controller's maps.

use aya::maps::{Array, DevMapHash, HashMap, MapData, XskMap};
use dataplane_common::{
    steer::{self, NetEgress, Steering},
    Counter,
};

use crate::{Dataplane, Error, Result};

impl Dataplane {
    pub fn set_network(&mut self, id: u32, egress: &NetEgress) -> Result<()> {
        let mut a: Array<&mut MapData, NetEgress> = self.map_mut("ST_NETS")?;
        a.set(id, egress, 0).map_err(|e| Error::Map("ST_NETS", e))?;
        let mut p: DevMapHash<&mut MapData> = self.map_mut("ST_TX_PORTS")?;
        p.insert(egress.ifindex, egress.ifindex, None, 0).map_err(|e| Error::Other(format!("ST_TX_PORTS: {e}")))
    }

    /// Steer `service` (network order) to `network`, holding or not.
    pub fn set_steering(&mut self, service: u32, s: Steering) -> Result<()> {
        let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut("ST_STEER")?;
        h.insert(service, s, 0).map_err(|e| Error::Map("ST_STEER", e))
    }

    /// Stop steering `service` (network order): its packets pass.
    pub fn remove_steering(&mut self, service: u32) -> Result<()> {
        let mut h: HashMap<&mut MapData, u32, Steering> = self.map_mut("ST_STEER")?;
        h.remove(&service).map_err(|e| Error::Map("ST_STEER", e))
    }

    pub fn steering(&self, service: u32) -> Result<Option<Steering>> {
        let h: HashMap<&MapData, u32, Steering> = self.map("ST_STEER")?;
        match h.get(&service, 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(Error::Map("ST_STEER", e)),
        }
    }

    /// Put the AF_XDP socket for rx queue `queue` in the hold map.
    pub fn set_steer_xsk(&mut self, queue: u32, fd: std::os::fd::RawFd) -> Result<()> {
        let mut m: XskMap<&mut MapData> = self.map_mut("ST_XSKS")?;
        // SAFETY: the caller keeps the socket open while it is in the map
        // (a closed fd only makes the kernel drop the entry's packets).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        m.set(queue, fd, 0).map_err(|e| Error::Map("ST_XSKS", e))
    }

    pub fn steer_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats("ST_STATS", steer::stat::COUNT)
    }
}
