//! Typed access to the `gateway` maps. Callers pass addresses as
//! `IpAddr` and ports in host order; the maps keep both in network byte
//! order (ARCHITECTURE §5) and the conversion happens here, in the `From`
//! impls between these types and `dataplane_common::gateway`'s. An IPv6
//! service, flow or authorization prefix lives in the `*6` twin of its
//! map; sessions, servers and the port pool are shared by both families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use aya::maps::{
    lpm_trie::{Key, LpmTrie},
    Array, DevMapHash, HashMap, MapData, PerCpuArray, Queue,
};
use dataplane_common::{
    chain::Relay,
    gateway::{
        self, AuthKey, AuthKey6, FlowKey, FlowKey6, GwConfig, Selection, Server, ServiceKey,
        ServiceKey6, ServiceVal, Session, Session6, SessionCounters, Tunnel, TunnelCounters,
        TypeRule,
    },
    maps, Counter,
};

use crate::{pins::map_err, Dataplane, Error, Result};

mod auth;
mod tunnel;
pub use tunnel::{TunnelDownlink, TunnelEntry};

/// An address as a map holds it: the octets in memory order.
fn net(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

fn addr(net: u32) -> Ipv4Addr {
    Ipv4Addr::from(net.to_ne_bytes())
}

/// An IPv6 address as the maps hold it: four words in memory order.
pub(crate) fn net6(a: Ipv6Addr) -> [u32; 4] {
    let o = a.octets();
    std::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

pub(crate) fn addr6(w: [u32; 4]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    for (i, x) in w.iter().enumerate() {
        o[4 * i..4 * i + 4].copy_from_slice(&x.to_ne_bytes());
    }
    Ipv6Addr::from(o)
}

/// The gateway's own address and source port pool (`GW_CONFIG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub address: Ipv4Addr,
    pub port_min: u16,
    pub port_max: u16,
    /// Traffic has been configured (the program passes everything until then).
    pub enabled: bool,
    /// The N3/S1-U address: G-PDUs to it on UDP 2152 are decapsulated, and
    /// the downlink is encapsulated from it. `None`: plain IP only.
    pub n3_addr: Option<Ipv4Addr>,
    /// The gateway's IPv6 address: the source of translated IPv6 packets.
    /// `None`: IPv6 is passed (counted `not_ip`).
    pub address6: Option<Ipv6Addr>,
    /// The IPv6 N3 address: GTP-U over IPv6 transport to it is
    /// decapsulated, and the downlink toward IPv6 access nodes is
    /// encapsulated from it. `None`: GTP-U over IPv4 only.
    pub n3_addr6: Option<Ipv6Addr>,
}

impl From<Settings> for GwConfig {
    fn from(s: Settings) -> Self {
        GwConfig {
            addr: net(s.address),
            port_min: s.port_min,
            port_max: s.port_max,
            enabled: u32::from(s.enabled),
            n3_addr: s.n3_addr.map(net).unwrap_or(0),
            addr6: s.address6.map(net6).unwrap_or_default(),
            n3_addr6: s.n3_addr6.map(net6).unwrap_or_default(),
        }
    }
}

impl From<GwConfig> for Settings {
    fn from(c: GwConfig) -> Self {
        Settings {
            address: addr(c.addr),
            port_min: c.port_min,
            port_max: c.port_max,
            enabled: c.enabled != 0,
            n3_addr: (c.n3_addr != 0).then(|| addr(c.n3_addr)),
            address6: (c.addr6 != [0; 4]).then(|| addr6(c.addr6)),
            n3_addr6: (c.n3_addr6 != [0; 4]).then(|| addr6(c.n3_addr6)),
        }
    }
}

/// An address, port and IP protocol number: a representative address
/// ([`Service`], the `GW_SERVICES` key) or a terminal's side of a flow
/// ([`Flow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
}

pub type Service = Endpoint;

/// The key of a service in the map of its family.
enum ServiceKeyOf {
    V4(ServiceKey),
    V6(ServiceKey6),
}

impl From<Endpoint> for ServiceKeyOf {
    fn from(e: Endpoint) -> Self {
        let (port, proto) = (e.port.to_be(), e.proto);
        match e.addr {
            IpAddr::V4(a) => ServiceKeyOf::V4(ServiceKey {
                addr: net(a),
                port,
                proto,
                _pad: 0,
            }),
            IpAddr::V6(a) => ServiceKeyOf::V6(ServiceKey6 {
                addr: net6(a),
                port,
                proto,
                _pad: 0,
            }),
        }
    }
}

impl From<ServiceKey> for Endpoint {
    fn from(k: ServiceKey) -> Self {
        Endpoint {
            addr: addr(k.addr).into(),
            port: u16::from_be(k.port),
            proto: k.proto,
        }
    }
}

impl From<ServiceKey6> for Endpoint {
    fn from(k: ServiceKey6) -> Self {
        Endpoint {
            addr: addr6(k.addr).into(),
            port: u16::from_be(k.port),
            proto: k.proto,
        }
    }
}

/// A terminal flow (the `GW_FLOWS` key): the terminal's address, port and
/// protocol, and the GTP-U tunnel (index) it came through, if any. Two
/// tunnels' UEs with one address are two flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub tunnel: Option<u32>,
}

impl Flow {
    /// A plain-IP flow.
    pub fn plain(e: Endpoint) -> Self {
        Flow {
            addr: e.addr,
            port: e.port,
            proto: e.proto,
            tunnel: None,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.addr,
            port: self.port,
            proto: self.proto,
        }
    }
}

/// `FlowKey::tunnel` / `Session::tunnel`: index + 1, 0 for none.
fn tunnel_id(t: Option<u32>) -> u32 {
    t.map(|i| i + 1).unwrap_or(gateway::NO_TUNNEL)
}

fn tunnel_idx(id: u32) -> Option<u32> {
    id.checked_sub(1)
}

/// The key of a flow in the map of its family.
enum FlowKeyOf {
    V4(FlowKey),
    V6(FlowKey6),
}

impl From<Flow> for FlowKeyOf {
    fn from(f: Flow) -> Self {
        let (port, proto, tunnel) = (f.port.to_be(), f.proto, tunnel_id(f.tunnel));
        match f.addr {
            IpAddr::V4(a) => FlowKeyOf::V4(FlowKey {
                addr: net(a),
                port,
                proto,
                _pad: 0,
                tunnel,
            }),
            IpAddr::V6(a) => FlowKeyOf::V6(FlowKey6 {
                addr: net6(a),
                port,
                proto,
                _pad: 0,
                tunnel,
            }),
        }
    }
}

impl From<FlowKey> for Flow {
    fn from(k: FlowKey) -> Self {
        Flow {
            addr: addr(k.addr).into(),
            port: u16::from_be(k.port),
            proto: k.proto,
            tunnel: tunnel_idx(k.tunnel),
        }
    }
}

impl From<FlowKey6> for Flow {
    fn from(k: FlowKey6) -> Self {
        Flow {
            addr: addr6(k.addr).into(),
            port: u16::from_be(k.port),
            proto: k.proto,
            tunnel: tunnel_idx(k.tunnel),
        }
    }
}

/// A server entry (`GW_SERVERS`): where the fast path sends a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    pub addr: IpAddr,
    pub port: u16,
    /// Next hop (or the server itself when on-link).
    pub mac: [u8; 6],
    /// Egress interface's MAC.
    pub src_mac: [u8; 6],
    pub ifindex: u32,
}

impl From<ServerEntry> for Server {
    fn from(s: ServerEntry) -> Self {
        let (addr, addr6) = match s.addr {
            IpAddr::V4(a) => (net(a), [0; 4]),
            IpAddr::V6(a) => (0, net6(a)),
        };
        Server {
            addr,
            port: s.port.to_be(),
            _pad: 0,
            mac: s.mac,
            src_mac: s.src_mac,
            ifindex: s.ifindex,
            flags: 1,
            addr6,
        }
    }
}

impl ServerEntry {
    /// `None` for a slot never written.
    fn from_map(s: Server) -> Option<Self> {
        (s.flags != 0).then(|| ServerEntry {
            addr: if s.addr6 != [0; 4] {
                addr6(s.addr6).into()
            } else {
                addr(s.addr).into()
            },
            port: u16::from_be(s.port),
            mac: s.mac,
            src_mac: s.src_mac,
            ifindex: s.ifindex,
        })
    }
}

/// A rule classifying a new session (`GW_TYPES`): first match wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeRuleEntry {
    /// IP protocol number; 0 matches any.
    pub proto: u8,
    pub dscp: Option<u8>,
    pub session_type: u8,
    /// Terminal prefix; length 0 matches any terminal of either family,
    /// else those of the prefix's family.
    pub terminals: IpAddr,
    pub terminals_len: u8,
}

impl From<TypeRuleEntry> for TypeRule {
    fn from(r: TypeRuleEntry) -> Self {
        let (prefix, prefix6, v6) = match r.terminals {
            IpAddr::V4(a) => (net(a), [0; 4], 0),
            IpAddr::V6(a) => (0, net6(a), 1),
        };
        TypeRule {
            proto: r.proto,
            dscp_plus1: r.dscp.map(|d| d + 1).unwrap_or(0),
            session_type: r.session_type,
            valid: 1,
            prefix,
            prefix_len: r.terminals_len.into(),
            v6,
            prefix6,
        }
    }
}

impl TypeRuleEntry {
    /// `None` for an unused slot.
    fn from_map(r: TypeRule) -> Option<Self> {
        (r.valid != 0).then(|| TypeRuleEntry {
            proto: r.proto,
            dscp: r.dscp_plus1.checked_sub(1),
            session_type: r.session_type,
            terminals: if r.v6 != 0 {
                addr6(r.prefix6).into()
            } else {
                addr(r.prefix).into()
            },
            terminals_len: r.prefix_len as u8,
        })
    }
}

/// A user session (`GW_SESSIONS`, indexed by its port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionEntry {
    pub active: bool,
    /// `gateway::SF_*` bits the fast path set.
    pub flags: u32,
    pub terminal: SocketAddr,
    pub proto: u8,
    pub session_type: u8,
    /// The representative address the terminal addressed.
    pub representative: SocketAddr,
    /// The GTP-U tunnel (index) the session lives in; `None` for plain IP.
    /// The terminal is then the UE.
    pub tunnel: Option<u32>,
    pub group: u32,
    pub server: u32,
    pub up_mac: [u8; 6],
    pub up_src_mac: [u8; 6],
    pub up_ifindex: u32,
    /// CLOCK_MONOTONIC ns.
    pub created_ns: u64,
    pub last_seen_ns: u64,
}

impl SessionEntry {
    /// A session and, for an IPv6 one, its addresses from `GW_SESS6`.
    fn from_maps(s: Session, s6: Option<Session6>) -> Self {
        let (term, rep): (IpAddr, IpAddr) = match s6 {
            Some(a) if s.family == gateway::FAMILY_V6 => {
                (addr6(a.term_addr).into(), addr6(a.rep_addr).into())
            }
            _ => (addr(s.term_addr).into(), addr(s.rep_addr).into()),
        };
        SessionEntry {
            active: s.state == gateway::SESSION_ACTIVE,
            flags: s.flags,
            terminal: SocketAddr::new(term, u16::from_be(s.term_port)),
            proto: s.proto,
            session_type: s.session_type,
            representative: SocketAddr::new(rep, u16::from_be(s.rep_port)),
            tunnel: tunnel_idx(s.tunnel),
            group: s.group,
            server: s.server,
            up_mac: s.up_mac,
            up_src_mac: s.up_src_mac,
            up_ifindex: s.up_ifindex,
            created_ns: s.created_ns,
            last_seen_ns: s.last_seen_ns,
        }
    }
}

impl From<Session> for SessionEntry {
    fn from(s: Session) -> Self {
        SessionEntry::from_maps(s, None)
    }
}

impl Dataplane {
    pub fn gw_config(&self) -> Result<Settings> {
        let a: Array<&MapData, GwConfig> = self.map(&maps::GW_CONFIG)?;
        a.get(&0, 0)
            .map(Settings::from)
            .map_err(map_err(&maps::GW_CONFIG))
    }

    pub fn set_gw_config(&mut self, s: &Settings) -> Result<()> {
        let mut a: Array<&mut MapData, GwConfig> = self.map_mut(&maps::GW_CONFIG)?;
        a.set(0, GwConfig::from(*s), 0)
            .map_err(map_err(&maps::GW_CONFIG))
    }

    /// Every representative address (both families) and the group behind it.
    pub fn services(&self) -> Result<Vec<(Service, u32)>> {
        let h: HashMap<&MapData, ServiceKey, ServiceVal> = self.map(&maps::GW_SERVICES)?;
        let mut out: Vec<(Service, u32)> = h
            .iter()
            .map(|kv| kv.map(|(k, v)| (Service::from(k), v.group)))
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(&maps::GW_SERVICES))?;
        let h6: HashMap<&MapData, ServiceKey6, ServiceVal> = self.map(&maps::GW_SERVICES6)?;
        for kv in h6.iter() {
            let (k, v) = kv.map_err(map_err(&maps::GW_SERVICES6))?;
            out.push((Service::from(k), v.group));
        }
        Ok(out)
    }

    pub fn set_service(&mut self, s: &Service, group: u32) -> Result<()> {
        let v = ServiceVal { group };
        match ServiceKeyOf::from(*s) {
            ServiceKeyOf::V4(k) => {
                let mut h: HashMap<&mut MapData, ServiceKey, ServiceVal> =
                    self.map_mut(&maps::GW_SERVICES)?;
                h.insert(k, v, 0).map_err(map_err(&maps::GW_SERVICES))
            }
            ServiceKeyOf::V6(k) => {
                let mut h: HashMap<&mut MapData, ServiceKey6, ServiceVal> =
                    self.map_mut(&maps::GW_SERVICES6)?;
                h.insert(k, v, 0).map_err(map_err(&maps::GW_SERVICES6))
            }
        }
    }

    pub fn remove_service(&mut self, s: &Service) -> Result<()> {
        match ServiceKeyOf::from(*s) {
            ServiceKeyOf::V4(k) => {
                let mut h: HashMap<&mut MapData, ServiceKey, ServiceVal> =
                    self.map_mut(&maps::GW_SERVICES)?;
                h.remove(&k).map_err(map_err(&maps::GW_SERVICES))
            }
            ServiceKeyOf::V6(k) => {
                let mut h: HashMap<&mut MapData, ServiceKey6, ServiceVal> =
                    self.map_mut(&maps::GW_SERVICES6)?;
                h.remove(&k).map_err(map_err(&maps::GW_SERVICES6))
            }
        }
    }

    /// The server at `idx`, `None` if the slot was never written.
    pub fn server(&self, idx: u32) -> Result<Option<ServerEntry>> {
        let a: Array<&MapData, Server> = self.map(&maps::GW_SERVERS)?;
        a.get(&idx, 0)
            .map(ServerEntry::from_map)
            .map_err(map_err(&maps::GW_SERVERS))
    }

    pub fn set_server(&mut self, idx: u32, s: &ServerEntry) -> Result<()> {
        let mut a: Array<&mut MapData, Server> = self.map_mut(&maps::GW_SERVERS)?;
        a.set(idx, Server::from(*s), 0)
            .map_err(map_err(&maps::GW_SERVERS))
    }

    /// Server indices of the selection table of (`group`, `stype`).
    pub fn selection(
        &self,
        group: u32,
        stype: u32,
    ) -> Result<[u16; gateway::SELECT_SLOTS as usize]> {
        let a: Array<&MapData, Selection> = self.map(&maps::GW_SELECT)?;
        a.get(&(group * gateway::TYPES_MAX + stype), 0)
            .map(|s| s.servers)
            .map_err(map_err(&maps::GW_SELECT))
    }

    pub fn set_selection(
        &mut self,
        group: u32,
        stype: u32,
        servers: &[u16; gateway::SELECT_SLOTS as usize],
    ) -> Result<()> {
        let mut a: Array<&mut MapData, Selection> = self.map_mut(&maps::GW_SELECT)?;
        a.set(
            group * gateway::TYPES_MAX + stype,
            Selection { servers: *servers },
            0,
        )
        .map_err(map_err(&maps::GW_SELECT))
    }

    /// The rules in use, in match order.
    pub fn type_rules(&self) -> Result<Vec<TypeRuleEntry>> {
        let a: Array<&MapData, TypeRule> = self.map(&maps::GW_TYPES)?;
        let mut out = Vec::new();
        for i in 0..gateway::TYPE_RULES_MAX {
            match TypeRuleEntry::from_map(a.get(&i, 0).map_err(map_err(&maps::GW_TYPES))?) {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(out)
    }

    /// Replace every rule; slots past `rules` are cleared.
    pub fn set_type_rules(&mut self, rules: &[TypeRuleEntry]) -> Result<()> {
        if rules.len() > gateway::TYPE_RULES_MAX as usize {
            return Err(Error::Other(format!(
                "{} session type rules, at most {}",
                rules.len(),
                gateway::TYPE_RULES_MAX
            )));
        }
        let mut a: Array<&mut MapData, TypeRule> = self.map_mut(&maps::GW_TYPES)?;
        for i in 0..gateway::TYPE_RULES_MAX {
            let r = rules
                .get(i as usize)
                .map(|r| TypeRule::from(*r))
                .unwrap_or_default();
            a.set(i, r, 0).map_err(map_err(&maps::GW_TYPES))?;
        }
        Ok(())
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

    /// Every terminal flow (both families) and the port of its session.
    pub fn flows(&self) -> Result<Vec<(Flow, u16)>> {
        let h: HashMap<&MapData, FlowKey, u16> = self.map(&maps::GW_FLOWS)?;
        let mut out: Vec<(Flow, u16)> = h
            .iter()
            .map(|kv| kv.map(|(k, p)| (Flow::from(k), u16::from_be(p))))
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(&maps::GW_FLOWS))?;
        let h6: HashMap<&MapData, FlowKey6, u16> = self.map(&maps::GW_FLOWS6)?;
        for kv in h6.iter() {
            let (k, p) = kv.map_err(map_err(&maps::GW_FLOWS6))?;
            out.push((Flow::from(k), u16::from_be(p)));
        }
        Ok(out)
    }

    /// Flows relayed to the gateway that holds them (daisy chaining): the
    /// flow, that gateway's MAC, and when a packet last took the relay
    /// (CLOCK_MONOTONIC ns).
    pub fn relays(&self) -> Result<Vec<(Flow, [u8; 6], u64)>> {
        let h: HashMap<&MapData, FlowKey, Relay> = self.map(&maps::GW_RELAYS)?;
        let mut out: Vec<(Flow, [u8; 6], u64)> = h
            .iter()
            .map(|kv| kv.map(|(k, r)| (Flow::from(k), r.next_mac, r.last_seen_ns)))
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(&maps::GW_RELAYS))?;
        let h6: HashMap<&MapData, FlowKey6, Relay> = self.map(&maps::GW_RELAYS6)?;
        for kv in h6.iter() {
            let (k, r) = kv.map_err(map_err(&maps::GW_RELAYS6))?;
            out.push((Flow::from(k), r.next_mac, r.last_seen_ns));
        }
        Ok(out)
    }

    pub fn remove_relay(&mut self, f: &Flow) -> Result<()> {
        match FlowKeyOf::from(*f) {
            FlowKeyOf::V4(k) => {
                let mut h: HashMap<&mut MapData, FlowKey, Relay> =
                    self.map_mut(&maps::GW_RELAYS)?;
                h.remove(&k).map_err(map_err(&maps::GW_RELAYS))
            }
            FlowKeyOf::V6(k) => {
                let mut h: HashMap<&mut MapData, FlowKey6, Relay> =
                    self.map_mut(&maps::GW_RELAYS6)?;
                h.remove(&k).map_err(map_err(&maps::GW_RELAYS6))
            }
        }
    }

    pub fn remove_flow(&mut self, f: &Flow) -> Result<()> {
        match FlowKeyOf::from(*f) {
            FlowKeyOf::V4(k) => {
                let mut h: HashMap<&mut MapData, FlowKey, u16> = self.map_mut(&maps::GW_FLOWS)?;
                h.remove(&k).map_err(map_err(&maps::GW_FLOWS))
            }
            FlowKeyOf::V6(k) => {
                let mut h: HashMap<&mut MapData, FlowKey6, u16> = self.map_mut(&maps::GW_FLOWS6)?;
                h.remove(&k).map_err(map_err(&maps::GW_FLOWS6))
            }
        }
    }

    pub fn session(&self, port: u16) -> Result<SessionEntry> {
        let a: Array<&MapData, Session> = self.map(&maps::GW_SESSIONS)?;
        let s = a
            .get(&(port as u32), 0)
            .map_err(map_err(&maps::GW_SESSIONS))?;
        let s6 = if s.family == gateway::FAMILY_V6 {
            let a6: Array<&MapData, Session6> = self.map(&maps::GW_SESS6)?;
            Some(
                a6.get(&(port as u32), 0)
                    .map_err(map_err(&maps::GW_SESS6))?,
            )
        } else {
            None
        };
        Ok(SessionEntry::from_maps(s, s6))
    }

    /// Mark the session at `port` free (its flow entry is gone); the rest
    /// of the entry stays as the fast path left it.
    pub fn free_session(&mut self, port: u16) -> Result<()> {
        let mut a: Array<&mut MapData, Session> = self.map_mut(&maps::GW_SESSIONS)?;
        let mut s = a
            .get(&(port as u32), 0)
            .map_err(map_err(&maps::GW_SESSIONS))?;
        s.state = gateway::SESSION_FREE;
        a.set(port as u32, s, 0)
            .map_err(map_err(&maps::GW_SESSIONS))
    }

    /// A session's counters summed over CPUs.
    pub fn session_counters(&self, port: u16) -> Result<SessionCounters> {
        let a: PerCpuArray<&MapData, SessionCounters> = self.map(&maps::GW_SESS_STATS)?;
        let v = a
            .get(&(port as u32), 0)
            .map_err(map_err(&maps::GW_SESS_STATS))?;
        Ok(v.iter()
            .fold(SessionCounters::default(), |t, c| SessionCounters {
                pkts_up: t.pkts_up + c.pkts_up,
                bytes_up: t.bytes_up + c.bytes_up,
                pkts_down: t.pkts_down + c.pkts_down,
                bytes_down: t.bytes_down + c.bytes_down,
            }))
    }

    /// Zero every CPU's counters of a port (before it returns to the pool).
    pub fn zero_session_counters(&mut self, port: u16) -> Result<()> {
        let mut a: PerCpuArray<&mut MapData, SessionCounters> =
            self.map_mut(&maps::GW_SESS_STATS)?;
        let n = aya::util::nr_cpus().map_err(|(_, e)| Error::Io {
            context: "possible cpus".into(),
            error: e,
        })?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![SessionCounters::default(); n])
            .map_err(|e| Error::Io {
                context: "per-cpu values".into(),
                error: e,
            })?;
        a.set(port as u32, zeros, 0)
            .map_err(map_err(&maps::GW_SESS_STATS))
    }

    pub fn add_gw_tx_port(&mut self, ifindex: u32) -> Result<()> {
        let mut ports: DevMapHash<&mut MapData> = self.map_mut(&maps::GW_TX_PORTS)?;
        ports.insert(ifindex, ifindex, None, 0).map_err(|e| {
            Error::Other(format!(
                "{}: adding ifindex {ifindex}: {e}",
                maps::GW_TX_PORTS.name
            ))
        })
    }

    /// Run `packet` through the gateway program as a dry run (lookup): it
    /// decides and rewrites but changes no map.
    pub fn gw_dry_run(&mut self, packet: &[u8]) -> Result<crate::testrun::RunResult> {
        self.test_run_meta("gateway", &gateway::DRY_RUN_MAGIC.to_ne_bytes(), packet)
    }

    pub fn gw_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::GW_STATS)
    }
}

#[cfg(test)]
mod tests;
