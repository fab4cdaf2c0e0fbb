//! Typed access to the `lb` maps. The Maglev table is double-buffered:
//! [`Dataplane::install_table`] writes the copy that is not live, then flips
//! `LB_ACTIVE`, so no packet ever reads a half-written table.

use std::net::Ipv4Addr;

use aya::maps::{Array, DevMapHash, IterableMap as _, MapData, PerCpuArray};
use dataplane_common::{
    lb::{self, GatewayEntry, TableMeta, GW_F_VALID, GW_NAME_LEN},
    maps::{self, MapDef},
    Counter,
};

use crate::{pins::map_err, Dataplane, Error, Result};

/// A table as it is live in the maps.
#[derive(Clone, Debug)]
pub struct LiveTable {
    pub copy: u32,
    pub meta: TableMeta,
}

impl LiveTable {
    /// The key mode the live copy was installed with.
    pub fn key(&self) -> KeyMode {
        KeyMode::from_raw(self.meta.key)
    }
}

/// What a packet without a TEID is keyed by; installed with each table
/// copy (`TableMeta::key`), so a change switches with the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyMode {
    /// The source address only: every session of a terminal on one gateway.
    #[default]
    Terminal,
    /// The 5-tuple.
    Flow,
}

impl KeyMode {
    const fn raw(self) -> u32 {
        match self {
            KeyMode::Terminal => lb::KEY_TERMINAL,
            KeyMode::Flow => lb::KEY_FLOW,
        }
    }

    /// The program reads anything but `KEY_FLOW` as the terminal key.
    const fn from_raw(raw: u32) -> Self {
        if raw == lb::KEY_FLOW {
            KeyMode::Flow
        } else {
            KeyMode::Terminal
        }
    }
}

/// The hash the `lb` program computes for a TCP or UDP packet without a
/// TEID under the terminal key: the source address, as the packet carries
/// it (network order).
pub fn terminal_hash(src: Ipv4Addr, seed: u32) -> u32 {
    dataplane_common::hash::terminal_hash(u32::from_ne_bytes(src.octets()), seed)
}

/// An IPv6 address as the fast path's four words.
fn words6(a: std::net::Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    [0, 4, 8, 12].map(|i| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]))
}

/// The IPv6 terminal key's hash: the source's /64.
pub fn terminal_hash_v6(src: std::net::Ipv6Addr, seed: u32) -> u32 {
    use dataplane_common::hash;
    hash::terminal_hash_v6(hash::terminal6_fold(words6(src)), seed)
}

/// The IPv6 flow key's hash (ports in host order, as for IPv4).
pub fn flow_hash_v6(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u32,
) -> u32 {
    use dataplane_common::hash;
    let fold = hash::flow6_fold(
        words6(src),
        words6(dst),
        sport.to_be(),
        dport.to_be(),
        proto,
    );
    hash::flow_hash_v6(fold, seed)
}

/// The hash the `lb` program computes for a packet without a TEID under
/// `key`.
pub fn session_hash(
    key: KeyMode,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u32,
) -> u32 {
    match key {
        KeyMode::Terminal => terminal_hash(src, seed),
        KeyMode::Flow => flow_hash(src, dst, sport, dport, proto, seed),
    }
}

/// The hash the `lb` program computes for a TCP or UDP packet without a
/// TEID under the flow key (the 5-tuple). The program mixes the header words as
/// the packet carries them, so the addresses and ports go in network order.
pub fn flow_hash(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    proto: u8,
    seed: u32,
) -> u32 {
    let word = |a: Ipv4Addr| u32::from_ne_bytes(a.octets());
    dataplane_common::hash::flow_hash(
        word(src),
        word(dst),
        sport.to_be(),
        dport.to_be(),
        proto,
        seed,
    )
}

/// A gateway as an `LB_GATEWAYS` entry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// Kept in the pinned entry (at most `lb::GW_NAME_LEN` bytes), so a
    /// restarted daemon can name what it finds.
    pub name: String,
    /// The gateway's address on the network the LB forwards over (either
    /// family: the LB rewrites MACs only).
    pub address: std::net::IpAddr,
    /// The gateway's MAC.
    pub dst_mac: [u8; 6],
    /// The egress interface's MAC.
    pub src_mac: [u8; 6],
    /// Egress interface; equal to the ingress one means XDP_TX.
    pub ifindex: u32,
    pub weight: u32,
}

impl Gateway {
    fn to_entry(&self) -> Result<GatewayEntry> {
        if self.name.len() > GW_NAME_LEN {
            return Err(Error::Other(format!(
                "gateway name {:?} longer than {GW_NAME_LEN} bytes",
                self.name
            )));
        }
        let mut name = [0u8; GW_NAME_LEN];
        name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        let (addr, addr6) = match self.address {
            std::net::IpAddr::V4(a) => (u32::from_ne_bytes(a.octets()), [0; 4]),
            std::net::IpAddr::V6(a) => (0, crate::gateway::net6(a)),
        };
        Ok(GatewayEntry {
            dst_mac: self.dst_mac,
            src_mac: self.src_mac,
            ifindex: self.ifindex,
            addr,
            weight: self.weight,
            flags: GW_F_VALID,
            name,
            addr6,
        })
    }

    /// `None` for an entry not in use.
    fn from_entry(e: &GatewayEntry) -> Option<Self> {
        if e.flags & GW_F_VALID == 0 {
            return None;
        }
        let end = e.name.iter().position(|&b| b == 0).unwrap_or(e.name.len());
        Some(Gateway {
            name: String::from_utf8_lossy(&e.name[..end]).into_owned(),
            address: if e.addr6 != [0; 4] {
                crate::gateway::addr6(e.addr6).into()
            } else {
                Ipv4Addr::from(e.addr.to_ne_bytes()).into()
            },
            dst_mac: e.dst_mac,
            src_mac: e.src_mac,
            ifindex: e.ifindex,
            weight: e.weight,
        })
    }
}

impl Dataplane {
    pub fn live_table(&self) -> Result<LiveTable> {
        let active: Array<&MapData, u32> = self.map(&maps::LB_ACTIVE)?;
        let copy = active.get(&0, 0).map_err(map_err(&maps::LB_ACTIVE))? & 1;
        let metas: Array<&MapData, TableMeta> = self.map(&maps::LB_TABLE_META)?;
        let meta = metas.get(&copy, 0).map_err(map_err(&maps::LB_TABLE_META))?;
        Ok(LiveTable { copy, meta })
    }

    /// Slots of the live table (gateway indices), for checks and tests.
    pub fn live_slots(&self) -> Result<Vec<u32>> {
        Ok(self
            .live_slot_values()?
            .into_iter()
            .map(|v| {
                if v == lb::NO_GATEWAY {
                    v
                } else {
                    lb::slot_gateway(v)
                }
            })
            .collect())
    }

    /// The previous owner of each live slot that moved (`lb::slot`).
    pub fn live_previous(&self) -> Result<Vec<Option<u32>>> {
        Ok(self
            .live_slot_values()?
            .into_iter()
            .map(|v| {
                if v == lb::NO_GATEWAY {
                    None
                } else {
                    lb::slot_previous(v)
                }
            })
            .collect())
    }

    /// The live slots as stored: gateway and previous owner.
    pub fn live_slot_values(&self) -> Result<Vec<u32>> {
        let live = self.live_table()?;
        let table: Array<&MapData, u32> = self.map(&maps::LB_MAGLEV)?;
        let base = live.copy * lb::MAGLEV_MAX;
        crate::batch::array_read(table.map(), base, live.meta.size)
            .map_err(|e| Error::Other(format!("reading {} in a batch: {e}", maps::LB_MAGLEV.name)))
    }

    /// Write `slots` (gateway indices, with previous owners where they
    /// moved: `lb::slot`) into the inactive copy with its
    /// meta (seed, digest, key mode), then make it live. Gateway entries
    /// the slots name must be written before this call.
    pub fn install_table(
        &mut self,
        slots: &[u32],
        seed: u32,
        digest: u64,
        key: KeyMode,
    ) -> Result<TableMeta> {
        self.install_table_over(slots, None, seed, digest, key)
    }

    /// `install_table`, given what the inactive copy holds now (the slots
    /// installed two flips ago): only the slots that differ are written.
    pub fn install_table_over(
        &mut self,
        slots: &[u32],
        inactive: Option<&[u32]>,
        seed: u32,
        digest: u64,
        key: KeyMode,
    ) -> Result<TableMeta> {
        let size = slots.len() as u32;
        if size == 0 || size > lb::MAGLEV_MAX {
            return Err(Error::Other(format!(
                "table size {size} outside 1..={}",
                lb::MAGLEV_MAX
            )));
        }
        let live = self.live_table()?;
        let next = live.copy ^ 1;
        {
            let table: Array<&MapData, u32> = self.map(&maps::LB_MAGLEV)?;
            let base = next * lb::MAGLEV_MAX;
            let r = match inactive {
                Some(old) if old.len() == slots.len() => {
                    let (keys, values): (Vec<u32>, Vec<u32>) = (0..size)
                        .zip(slots.iter().zip(old))
                        .filter(|(_, (new, old))| new != old)
                        .map(|(i, (new, _))| (base + i, *new))
                        .unzip();
                    crate::batch::array_write_at(table.map(), &keys, &values)
                }
                _ => crate::batch::array_write(table.map(), base, slots),
            };
            r.map_err(|e| {
                Error::Other(format!("writing {} in a batch: {e}", maps::LB_MAGLEV.name))
            })?;
        }
        let meta = TableMeta {
            size,
            seed,
            digest,
            generation: live.meta.generation + 1,
            key: key.raw(),
            _pad: 0,
        };
        {
            let mut metas: Array<&mut MapData, TableMeta> = self.map_mut(&maps::LB_TABLE_META)?;
            metas
                .set(next, meta, 0)
                .map_err(map_err(&maps::LB_TABLE_META))?;
        }
        let mut active: Array<&mut MapData, u32> = self.map_mut(&maps::LB_ACTIVE)?;
        active.set(0, next, 0).map_err(map_err(&maps::LB_ACTIVE))?;
        Ok(meta)
    }

    /// Every entry in use, by index.
    pub fn gateway_entries(&self) -> Result<Vec<(u32, Gateway)>> {
        let gws: Array<&MapData, GatewayEntry> = self.map(&maps::LB_GATEWAYS)?;
        let mut out = Vec::new();
        for i in 0..lb::GATEWAYS_MAX {
            let e = gws.get(&i, 0).map_err(map_err(&maps::LB_GATEWAYS))?;
            if let Some(g) = Gateway::from_entry(&e) {
                out.push((i, g));
            }
        }
        Ok(out)
    }

    pub fn set_gateway(&mut self, index: u32, gateway: &Gateway) -> Result<()> {
        let entry = gateway.to_entry()?;
        let mut gws: Array<&mut MapData, GatewayEntry> = self.map_mut(&maps::LB_GATEWAYS)?;
        gws.set(index, entry, 0)
            .map_err(map_err(&maps::LB_GATEWAYS))
    }

    /// The gateway index owning each TEID prefix (top 8 bits), `None` for
    /// none; 256 entries.
    pub fn teid_owners(&self) -> Result<Vec<Option<u32>>> {
        let owners: Array<&MapData, u32> = self.map(&maps::LB_TEID_OWNERS)?;
        (0..lb::TEID_OWNERS)
            .map(|p| {
                let v = owners.get(&p, 0).map_err(map_err(&maps::LB_TEID_OWNERS))?;
                // Fresh pins are filled with NO_GATEWAY (`write_meta`).
                Ok((v != lb::NO_GATEWAY).then_some(v))
            })
            .collect()
    }

    /// Make gateway entry `gateway` (written before) the owner of the
    /// TEIDs whose top 8 bits are `prefix`, or clear the prefix (`None`).
    pub fn set_teid_owner(&mut self, prefix: u8, gateway: Option<u32>) -> Result<()> {
        if let Some(g) = gateway {
            if g >= lb::GATEWAYS_MAX {
                return Err(Error::Other(format!(
                    "gateway index {g} outside 0..{}",
                    lb::GATEWAYS_MAX
                )));
            }
        }
        let mut owners: Array<&mut MapData, u32> = self.map_mut(&maps::LB_TEID_OWNERS)?;
        owners
            .set(prefix as u32, gateway.unwrap_or(lb::NO_GATEWAY), 0)
            .map_err(map_err(&maps::LB_TEID_OWNERS))
    }

    /// Make `ifindex` a valid XDP_REDIRECT target.
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<()> {
        let mut ports: DevMapHash<&mut MapData> = self.map_mut(&maps::LB_TX_PORTS)?;
        ports.insert(ifindex, ifindex, None, 0).map_err(|e| {
            Error::Other(format!(
                "{}: adding ifindex {ifindex}: {e}",
                maps::LB_TX_PORTS.name
            ))
        })
    }

    /// `lb` counters summed over CPUs, indexed by `lb::stat`.
    pub fn lb_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::LB_STATS)
    }

    pub fn floor_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::FLOOR_STATS)
    }

    /// Every entry of a per-CPU counter array, summed over CPUs.
    pub(crate) fn sum_stats(&self, def: &'static MapDef) -> Result<Vec<Counter>> {
        let arr: PerCpuArray<&MapData, Counter> = self.map(def)?;
        sum_per_cpu(&arr, def)
    }
}

/// Each counter of a per-CPU stats array, summed over the CPUs.
pub(crate) fn sum_per_cpu<T: std::borrow::Borrow<MapData>>(
    arr: &PerCpuArray<T, Counter>,
    def: &'static MapDef,
) -> Result<Vec<Counter>> {
    (0..def.max)
        .map(|i| {
            let per_cpu = arr.get(&i, 0).map_err(map_err(def))?;
            Ok(per_cpu.iter().fold(Counter::default(), |a, c| Counter {
                packets: a.packets + c.packets,
                bytes: a.bytes + c.bytes,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(name: &str) -> Gateway {
        Gateway {
            name: name.into(),
            address: Ipv4Addr::new(10, 1, 0, 2).into(),
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            ifindex: 3,
            weight: 2,
        }
    }

    #[test]
    fn flow_hash_takes_the_header_words_in_packet_order() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(198, 51, 100, 10));
        let raw = dataplane_common::hash::flow_hash(
            u32::from_ne_bytes([10, 0, 0, 2]),
            u32::from_ne_bytes([198, 51, 100, 10]),
            u16::from_ne_bytes(5000u16.to_be_bytes()),
            u16::from_ne_bytes(53u16.to_be_bytes()),
            17,
            7,
        );
        assert_eq!(flow_hash(src, dst, 5000, 53, 17, 7), raw);
        assert_ne!(
            flow_hash(src, dst, 53, 5000, 17, 7),
            raw,
            "the ports are not interchangeable"
        );
    }

    #[test]
    fn the_terminal_key_is_the_source_alone_in_packet_order() {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(
            terminal_hash(src, 7),
            dataplane_common::hash::terminal_hash(u32::from_ne_bytes([10, 0, 0, 2]), 7)
        );
        let (a, b) = (
            Ipv4Addr::new(198, 51, 100, 10),
            Ipv4Addr::new(203, 0, 113, 1),
        );
        assert_eq!(
            session_hash(KeyMode::Terminal, src, a, 1, 2, 17, 7),
            session_hash(KeyMode::Terminal, src, b, 3, 4, 6, 7)
        );
        assert_ne!(
            session_hash(KeyMode::Flow, src, a, 1, 2, 17, 7),
            session_hash(KeyMode::Flow, src, b, 3, 4, 6, 7)
        );
        assert_ne!(
            terminal_hash(src, 7),
            terminal_hash(Ipv4Addr::new(10, 0, 0, 3), 7)
        );
        for k in [KeyMode::Terminal, KeyMode::Flow] {
            assert_eq!(KeyMode::from_raw(k.raw()), k);
        }
    }

    #[test]
    fn entry_round_trips_with_the_address_in_network_order() {
        let g = gw("gw-a");
        let e = g.to_entry().unwrap();
        assert_eq!(e.addr.to_ne_bytes(), [10, 1, 0, 2]);
        assert_eq!(&e.name[..5], b"gw-a\0");
        assert_eq!(e.flags, GW_F_VALID);
        assert_eq!(Gateway::from_entry(&e), Some(g.clone()));
        assert_eq!(Gateway::from_entry(&GatewayEntry::zeroed()), None);
        // An IPv6 gateway address is kept beside (informational, as IPv4's).
        let g6 = Gateway {
            address: "2001:db8:10::11".parse().unwrap(),
            ..g
        };
        let e6 = g6.to_entry().unwrap();
        assert_eq!(e6.addr, 0);
        assert_eq!(Gateway::from_entry(&e6), Some(g6));
    }

    #[test]
    fn a_name_that_fills_the_field_round_trips_and_a_longer_one_is_refused() {
        let full = "g".repeat(GW_NAME_LEN);
        assert_eq!(
            Gateway::from_entry(&gw(&full).to_entry().unwrap())
                .unwrap()
                .name,
            full
        );
        assert!(gw(&"g".repeat(GW_NAME_LEN + 1)).to_entry().is_err());
    }
}
