//! Typed access to the connection controller's maps.

use aya::maps::{Array, DevMapHash, HashMap, MapData, RingBuf};
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

    pub fn steering(&self, service: u32) -> Result<Option<Steering>> {
        let h: HashMap<&MapData, u32, Steering> = self.map("ST_STEER")?;
        match h.get(&service, 0) {
            Ok(v) => Ok(Some(v)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(Error::Map("ST_STEER", e)),
        }
    }

    /// Held frames, in arrival order: (service, frame).
    pub fn take_steer_held(&mut self) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut rb: RingBuf<&mut MapData> = self.map_mut("ST_HELD")?;
        let mut out = Vec::new();
        while let Some(item) = rb.next() {
            if item.len() >= 8 {
                let service = u32::from_ne_bytes([item[0], item[1], item[2], item[3]]);
                let n = (u32::from_ne_bytes([item[4], item[5], item[6], item[7]]) as usize).min(item.len() - 8);
                out.push((service, item[8..8 + n].to_vec()));
            }
        }
        Ok(out)
    }

    pub fn steer_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats("ST_STATS", steer::stat::COUNT)
    }
}
