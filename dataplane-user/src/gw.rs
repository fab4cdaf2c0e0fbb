//! Typed access to the `gateway` maps.

use aya::maps::{
    lpm_trie::{Key, LpmTrie},
    Array, DevMapHash, HashMap, MapData, PerCpuArray, Queue,
};
use dataplane_common::{
    gw::{self, AuthKey, FlowKey, GwConfig, Selection, Server, ServiceKey, ServiceVal, Session, SessionCounters, TypeRule},
    maps, Counter,
};

use crate::{pins::map_err, Dataplane, Error, Result};

impl Dataplane {
    pub fn gw_config(&self) -> Result<GwConfig> {
        let a: Array<&MapData, GwConfig> = self.map(&maps::GW_CONFIG)?;
        a.get(&0, 0).map_err(map_err(&maps::GW_CONFIG))
    }

    pub fn set_gw_config(&mut self, c: &GwConfig) -> Result<()> {
        let mut a: Array<&mut MapData, GwConfig> = self.map_mut(&maps::GW_CONFIG)?;
        a.set(0, c, 0).map_err(map_err(&maps::GW_CONFIG))
    }

    pub fn services(&self) -> Result<Vec<(ServiceKey, ServiceVal)>> {
        let h: HashMap<&MapData, ServiceKey, ServiceVal> = self.map(&maps::GW_SERVICES)?;
        h.iter().collect::<std::result::Result<_, _>>().map_err(map_err(&maps::GW_SERVICES))
    }

    pub fn set_service(&mut self, k: &ServiceKey, group: u32) -> Result<()> {
        let mut h: HashMap<&mut MapData, ServiceKey, ServiceVal> = self.map_mut(&maps::GW_SERVICES)?;
        h.insert(k, ServiceVal { group }, 0).map_err(map_err(&maps::GW_SERVICES))
    }

    pub fn remove_service(&mut self, k: &ServiceKey) -> Result<()> {
        let mut h: HashMap<&mut MapData, ServiceKey, ServiceVal> = self.map_mut(&maps::GW_SERVICES)?;
        h.remove(k).map_err(map_err(&maps::GW_SERVICES))
    }

    pub fn server(&self, idx: u32) -> Result<Server> {
        let a: Array<&MapData, Server> = self.map(&maps::GW_SERVERS)?;
        a.get(&idx, 0).map_err(map_err(&maps::GW_SERVERS))
    }

    pub fn set_server(&mut self, idx: u32, s: &Server) -> Result<()> {
        let mut a: Array<&mut MapData, Server> = self.map_mut(&maps::GW_SERVERS)?;
        a.set(idx, s, 0).map_err(map_err(&maps::GW_SERVERS))
    }

    pub fn set_selection(&mut self, group: u32, stype: u32, sel: &Selection) -> Result<()> {
        let mut a: Array<&mut MapData, Selection> = self.map_mut(&maps::GW_SELECT)?;
        a.set(group * gw::TYPES_MAX + stype, sel, 0).map_err(map_err(&maps::GW_SELECT))
    }

    pub fn set_type_rules(&mut self, rules: &[TypeRule]) -> Result<()> {
        let mut a: Array<&mut MapData, TypeRule> = self.map_mut(&maps::GW_TYPES)?;
        for i in 0..gw::TYPE_RULES_MAX {
            let r = rules.get(i as usize).copied().unwrap_or_default();
            a.set(i, r, 0).map_err(map_err(&maps::GW_TYPES))?;
        }
        Ok(())
    }

    /// Allow `addr/len` to use `group`.
    pub fn auth_allow(&mut self, group: u32, addr: u32, len: u32) -> Result<()> {
        let mut t: LpmTrie<&mut MapData, AuthKey, u32> = self.map_mut(&maps::GW_AUTH)?;
        t.insert(&Key::new(32 + len, AuthKey { group_be: group.to_be(), addr }), 1, 0).map_err(map_err(&maps::GW_AUTH))
    }

    pub fn auth_entries(&self) -> Result<Vec<(u32, u32, u32)>> {
        let t: LpmTrie<&MapData, AuthKey, u32> = self.map(&maps::GW_AUTH)?;
        let keys: Vec<Key<AuthKey>> = t.keys().collect::<std::result::Result<_, _>>().map_err(map_err(&maps::GW_AUTH))?;
        Ok(keys.iter().map(|k| (u32::from_be(k.data().group_be), k.data().addr, k.prefix_len() - 32)).collect())
    }

    pub fn auth_remove(&mut self, group: u32, addr: u32, len: u32) -> Result<()> {
        let mut t: LpmTrie<&mut MapData, AuthKey, u32> = self.map_mut(&maps::GW_AUTH)?;
        t.remove(&Key::new(32 + len, AuthKey { group_be: group.to_be(), addr })).map_err(map_err(&maps::GW_AUTH))
    }

    /// Return a port to the pool. Only after its flow entry is gone.
    pub fn pool_push(&mut self, port: u16) -> Result<()> {
        let mut q: Queue<&mut MapData, u16> = self.map_mut(&maps::GW_POOL)?;
        q.push(port, 0).map_err(map_err(&maps::GW_POOL))
    }

    /// Take every port out of the pool (used when the pool is re-seeded).
    pub fn pool_drain(&mut self) -> Result<Vec<u16>> {
        let mut q: Queue<&mut MapData, u16> = self.map_mut(&maps::GW_POOL)?;
        let mut out = Vec::new();
        while let Ok(p) = q.pop(0) {
            out.push(p);
        }
        Ok(out)
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, u16)>> {
        let h: HashMap<&MapData, FlowKey, u16> = self.map(&maps::GW_FLOWS)?;
        h.iter().collect::<std::result::Result<_, _>>().map_err(map_err(&maps::GW_FLOWS))
    }

    pub fn remove_flow(&mut self, k: &FlowKey) -> Result<()> {
        let mut h: HashMap<&mut MapData, FlowKey, u16> = self.map_mut(&maps::GW_FLOWS)?;
        h.remove(k).map_err(map_err(&maps::GW_FLOWS))
    }

    pub fn session(&self, port: u16) -> Result<Session> {
        let a: Array<&MapData, Session> = self.map(&maps::GW_SESSIONS)?;
        a.get(&(port as u32), 0).map_err(map_err(&maps::GW_SESSIONS))
    }

    pub fn set_session(&mut self, port: u16, s: &Session) -> Result<()> {
        let mut a: Array<&mut MapData, Session> = self.map_mut(&maps::GW_SESSIONS)?;
        a.set(port as u32, s, 0).map_err(map_err(&maps::GW_SESSIONS))
    }

    /// A session's counters summed over CPUs.
    pub fn session_counters(&self, port: u16) -> Result<SessionCounters> {
        let a: PerCpuArray<&MapData, SessionCounters> = self.map(&maps::GW_SESS_STATS)?;
        let v = a.get(&(port as u32), 0).map_err(map_err(&maps::GW_SESS_STATS))?;
        Ok(v.iter().fold(SessionCounters::default(), |t, c| SessionCounters {
            pkts_up: t.pkts_up + c.pkts_up,
            bytes_up: t.bytes_up + c.bytes_up,
            pkts_down: t.pkts_down + c.pkts_down,
            bytes_down: t.bytes_down + c.bytes_down,
        }))
    }

    /// Zero every CPU's counters of a port (before it returns to the pool).
    pub fn zero_session_counters(&mut self, port: u16) -> Result<()> {
        let mut a: PerCpuArray<&mut MapData, SessionCounters> = self.map_mut(&maps::GW_SESS_STATS)?;
        let n = aya::util::nr_cpus().map_err(|(_, e)| Error::Io { context: "possible cpus".into(), source: e })?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![SessionCounters::default(); n]).map_err(|e| Error::Io { context: "per-cpu values".into(), source: e })?;
        a.set(port as u32, zeros, 0).map_err(map_err(&maps::GW_SESS_STATS))
    }

    pub fn add_gw_tx_port(&mut self, ifindex: u32) -> Result<()> {
        let mut ports: DevMapHash<&mut MapData> = self.map_mut(&maps::GW_TX_PORTS)?;
        ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| Error::Other(format!("{}: adding ifindex {ifindex}: {e}", maps::GW_TX_PORTS.name)))
    }

    pub fn gw_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::GW_STATS)
    }
}
