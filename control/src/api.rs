//! The daemon API: newline-delimited JSON over a Unix socket. One request
//! per line, one response per line. The CLI's `--json` prints `data` as is,
//! so scripts and the CLI see one schema.

use serde::{Deserialize, Serialize};

use crate::{
    field::{MacAddr, Protocol},
    lb::config::Backend,
};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Stats,
    LbGateways {
        interface: Option<String>,
    },
    LbGatewayAdd {
        interface: Option<String>,
        gateway: Backend,
    },
    LbGatewayRemove {
        interface: Option<String>,
        name: String,
    },
    /// Take a gateway out of the Maglev table (new sessions go elsewhere)
    /// while its entry and TEID prefix stay, so its GTP-U sessions still
    /// reach it; after `timeout` seconds (default: the section's
    /// `drain_timeout`) it leaves the fast path.
    LbGatewayDrain {
        interface: Option<String>,
        name: String,
        #[serde(default)]
        timeout: Option<u64>,
    },
    /// Put a draining gateway back in the table with its weight.
    LbGatewayUndrain {
        interface: Option<String>,
        name: String,
    },
    LbDigest,
    LbLookup {
        interface: Option<String>,
        key: LookupKey,
    },
    GwGroups,
    GwSessions,
    /// PFCP sessions with their user sessions (`gw sessions`).
    GwSessionTree,
    GwLookup {
        flow: FlowSpec,
    },
    GwAccounting,
    GwServerAdd {
        group: String,
        server: crate::gateway::config::ServerCfg,
    },
    GwServerRemove {
        group: String,
        name: String,
    },
    VrrpStatus,
    /// Move `process` to server `to`. With `wait` (the default) the answer
    /// comes at the end; without, as soon as the migration is recorded
    /// (follow it with MigrateStatus).
    MigrateStart {
        process: String,
        to: String,
        #[serde(default = "yes")]
        wait: bool,
    },
    MigrateStatus,
    Servers,
    Networks,
    /// Add a server to the coordinator's store (kept across restarts).
    ServerAdd {
        server: crate::migration::ServerInfo,
    },
    /// Remove a server no process runs on.
    ServerRemove {
        name: String,
    },
    NetworkAdd {
        network: crate::migration::NetworkInfo,
    },
    /// Remove a network no server is on.
    NetworkRemove {
        name: String,
    },
    PresenceShow {
        user: Option<String>,
    },
    PresenceHistory {
        user: String,
    },
    SipMonitorStatus,
    VrrpRebalance,
    Reload,
}

impl Request {
    /// The role that answers it; `None` for the daemon's own (status,
    /// stats, reload).
    pub fn role(&self) -> Option<&'static str> {
        use Request::*;
        match self {
            Status | Stats | Reload => None,
            LbGateways { .. }
            | LbGatewayAdd { .. }
            | LbGatewayRemove { .. }
            | LbGatewayDrain { .. }
            | LbGatewayUndrain { .. }
            | LbDigest
            | LbLookup { .. } => Some("lb"),
            GwGroups
            | GwSessions
            | GwSessionTree
            | GwLookup { .. }
            | GwAccounting
            | GwServerAdd { .. }
            | GwServerRemove { .. } => Some("gateway"),
            VrrpStatus | VrrpRebalance => Some("router"),
            SipMonitorStatus => Some("sip-monitor"),
            PresenceShow { .. } | PresenceHistory { .. } => Some("presence"),
            MigrateStart { .. }
            | MigrateStatus
            | Servers
            | Networks
            | ServerAdd { .. }
            | ServerRemove { .. }
            | NetworkAdd { .. }
            | NetworkRemove { .. } => Some("migration"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum LookupKey {
    Teid(u32),
    Flow(FlowSpec),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FlowSpec {
    /// IPv4 or IPv6 (both ends the same family).
    pub src: std::net::IpAddr,
    pub sport: u16,
    pub dst: std::net::IpAddr,
    pub dport: u16,
    /// "udp" or "tcp".
    pub proto: Protocol,
}

impl std::str::FromStr for FlowSpec {
    type Err = String;

    /// `SRC:PORT-DST:PORT/PROTO`, e.g. `10.0.0.2:4000-198.51.100.10:80/tcp`
    /// or `[2001:db8::2]:4000-[2001:db8::1]:80/tcp`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?}: expected SRC:PORT-DST:PORT/PROTO, e.g. 10.0.0.2:4000-198.51.100.10:80/udp or [2001:db8::2]:4000-[2001:db8::1]:80/udp"
            )
        };
        let (tuple, proto) = s.rsplit_once('/').ok_or_else(bad)?;
        let proto: Protocol = proto
            .parse()
            .map_err(|_| format!("{s:?}: protocol must be udp or tcp"))?;
        // No address or port holds a '-': the one there is splits them.
        let (a, b) = tuple.split_once('-').ok_or_else(bad)?;
        let a: std::net::SocketAddr = a.parse().map_err(|_| bad())?;
        let b: std::net::SocketAddr = b.parse().map_err(|_| bad())?;
        if a.is_ipv4() != b.is_ipv4() {
            return Err(format!("{s:?}: SRC and DST must both be IPv4 or both IPv6"));
        }
        Ok(Self {
            src: a.ip(),
            sport: a.port(),
            dst: b.ip(),
            dport: b.port(),
            proto,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: impl Serialize) -> Self {
        Self {
            ok: true,
            error: None,
            data: serde_json::to_value(data).unwrap_or_default(),
        }
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(msg.into()),
            data: serde_json::Value::Null,
        }
    }
}

/// One gateway as listed by `lb gateways list`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GatewayView {
    pub name: String,
    pub address: std::net::IpAddr,
    pub mac: MacAddr,
    pub via: String,
    pub weight: u32,
    /// Maglev slots held.
    pub slots: u32,
    /// Share of the table, percent.
    pub share: f64,
    /// Top 8 bits of the TEIDs it owns.
    #[serde(default)]
    pub teid_prefix: Option<u8>,
    /// Seconds left of its drain; absent when not draining.
    #[serde(default)]
    pub draining: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DigestView {
    pub interface: String,
    pub digest: String,
    pub table_size: u32,
    pub seed: u32,
    /// `terminal` or `flow`: the key of packets without a TEID.
    #[serde(default)]
    pub key: String,
    pub gateways: usize,
    pub generation: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LookupView {
    pub interface: String,
    pub verdict: String,
    /// Gateway reached, by name; absent when the packet is not forwarded.
    pub gateway: Option<String>,
    pub dst_mac: MacAddr,
}

/// The answer of a request that only says what it did (reload, rebalance,
/// servers/networks add and remove).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MessageView {
    pub message: String,
}

impl MessageView {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// `gw groups`: the gateway's server groups as it runs them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupsView {
    pub address: std::net::Ipv4Addr,
    /// The IPv6 address, when the gateway has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<std::net::Ipv6Addr>,
    /// The session port range, "FIRST-LAST".
    pub ports: crate::field::PortRange,
    pub groups: Vec<GroupView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupView {
    pub name: String,
    /// Index in the selection maps.
    pub index: Option<u32>,
    /// Representative addresses, "ADDR:PORT/PROTO".
    pub services: Vec<crate::gateway::ServiceAddr>,
    /// Terminal prefixes with the right to the group.
    pub allow: Vec<crate::field::IpPrefix>,
    pub servers: Vec<GroupServerView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupServerView {
    pub name: String,
    pub address: std::net::IpAddr,
    pub port: u16,
    pub weight: u32,
    pub types: Vec<u8>,
    /// Index in GW_SERVERS.
    pub index: Option<u32>,
}

/// `gw lookup`: what the attached program does with a terminal's packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GwLookupView {
    pub verdict: String,
    #[serde(default)]
    pub group: Option<String>,
    /// The server reached; absent when the packet is not forwarded.
    pub server: Option<String>,
    /// "SRC:PORT -> DST:PORT" as the packet leaves.
    #[serde(default)]
    pub translated: Option<String>,
    /// The session's port when the flow has one already.
    #[serde(default)]
    pub session_port: Option<u16>,
}

/// `gw accounting`: where the records are written, if anywhere.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountingView {
    pub file: Option<std::path::PathBuf>,
}

/// One counter of `edgeplane stats` and `/metrics`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CounterView {
    /// The role counting: lb, gateway, router, sip-monitor, presence, migration.
    pub role: String,
    /// What counts: an XDP program (`source: xdp`) or the role's part in
    /// the daemon (`source: daemon`: vrrp, monitor, server, agent,
    /// controller, coordinator).
    pub program: String,
    pub interface: String,
    pub name: String,
    /// Packets, or for a daemon counter the number of events.
    pub packets: u64,
    /// Bytes (0 where the daemon counts events).
    pub bytes: u64,
    pub source: CounterSource,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CounterSource {
    /// A per-CPU counter of an XDP program, summed over the CPUs.
    Xdp,
    /// Counted by the role's engine or edge in the daemon.
    Daemon,
}

impl CounterView {
    pub fn xdp(
        role: &str,
        program: &str,
        interface: &str,
        name: &str,
        packets: u64,
        bytes: u64,
    ) -> Self {
        Self {
            role: role.into(),
            program: program.into(),
            interface: interface.into(),
            name: name.into(),
            packets,
            bytes,
            source: CounterSource::Xdp,
        }
    }

    pub fn daemon(role: &str, part: &str, interface: &str, name: &str, count: u64) -> Self {
        Self {
            role: role.into(),
            program: part.into(),
            interface: interface.into(),
            name: name.into(),
            packets: count,
            bytes: 0,
            source: CounterSource::Daemon,
        }
    }
}

/// `edgeplane status`: the node and one typed summary per running role.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusView {
    pub node: String,
    pub config: std::path::PathBuf,
    #[serde(default)]
    pub lb: Vec<LbStatus>,
    #[serde(default)]
    pub gateway: Vec<GatewayStatus>,
    #[serde(default)]
    pub router: Vec<RouterSummary>,
    #[serde(default)]
    pub sip_monitor: Option<SipMonitorSummary>,
    #[serde(default)]
    pub presence: Option<PresenceSummary>,
    #[serde(default)]
    pub migration: Option<MigrationSummary>,
    /// This node's view of etcd (`[cluster]`).
    #[serde(default)]
    pub cluster: Option<ClusterView>,
}

/// A daemon's link to etcd, as `edgeplane status` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterView {
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// Whether the last request or stream to etcd succeeded.
    pub connected: bool,
    /// Unix milliseconds `connected` last changed at.
    pub since_ms: u64,
    /// The etcd revision of the gateway set applied last (0: none yet).
    pub revision: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The gateway this node registers, if any.
    #[serde(default)]
    pub registered: Option<String>,
    /// The lease its keys live under (0: none yet).
    #[serde(default)]
    pub lease: i64,
    /// Gateway sets applied to the LB tables, and losses of etcd.
    pub sets_applied: u64,
    pub disconnects: u64,
    /// A set the LBs refused (it stays on the previous one), and why.
    #[serde(default)]
    pub refused: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LbStatus {
    pub interface: String,
    pub gateways: usize,
    pub digest: String,
    pub took_over_pins: bool,
    /// `terminal` or `flow`.
    #[serde(default)]
    pub key: String,
    /// Gateways draining, with the seconds left.
    #[serde(default)]
    pub draining: Vec<DrainView>,
    /// Daisy chaining on.
    #[serde(default)]
    pub chain: bool,
    /// Slots of the live table that name a previous gateway.
    #[serde(default)]
    pub moved_slots: usize,
    /// Its gateways come from etcd.
    #[serde(default)]
    pub clustered: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DrainView {
    pub name: String,
    pub seconds_left: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GatewayStatus {
    pub interfaces: Vec<String>,
    pub address: std::net::Ipv4Addr,
    pub groups: usize,
    pub sessions: usize,
    /// Flows relayed to the gateway holding them (daisy chaining).
    #[serde(default)]
    pub relays: usize,
    pub accounting: Option<std::path::PathBuf>,
    pub took_over_pins: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouterSummary {
    pub interface: String,
    pub vrid: u8,
    pub state: String,
    pub priority: u8,
    pub master: Option<String>,
    pub load_sharing: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SipMonitorSummary {
    pub interfaces: Vec<String>,
    pub domain: String,
    pub presence: String,
    pub dialogs: usize,
    pub published: u64,
    /// Taken up from the state file at start ("2 dialog(s), 4
    /// registration(s) after 1200 ms down"), and why restored dialogs
    /// were ended, if they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PresenceSummary {
    pub listen: String,
    pub database: String,
    pub updates: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MigrationSummary {
    pub agent: Option<AgentSummary>,
    pub controller: Option<ControllerSummary>,
    pub coordinator: Option<CoordinatorSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgentSummary {
    pub listen: String,
    pub coordinator: Option<String>,
    pub processes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ControllerSummary {
    pub interface: String,
    pub queues: usize,
    pub networks: Vec<u32>,
    pub services: Vec<SteeredService>,
    pub held_frames: usize,
    pub last_switch_us: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SteeredService {
    pub address: String,
    pub network: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CoordinatorSummary {
    pub listen: Option<String>,
    pub database: String,
    pub migrations: usize,
    pub running: Vec<u64>,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let reqs = vec![
            Request::Status,
            Request::LbGatewayRemove {
                interface: Some("eth0".into()),
                name: "gw1".into(),
            },
            Request::LbLookup {
                interface: None,
                key: LookupKey::Teid(7),
            },
            Request::LbGatewayDrain {
                interface: None,
                name: "gw1".into(),
                timeout: Some(30),
            },
            Request::LbGatewayUndrain {
                interface: None,
                name: "gw1".into(),
            },
            Request::LbLookup {
                interface: None,
                key: LookupKey::Flow("10.0.0.2:1-10.0.0.3:2/udp".parse().unwrap()),
            },
        ];
        for r in reqs {
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        }
    }

    /// The typed fields keep the JSON the CLI and scripts read.
    #[test]
    fn typed_fields_keep_their_json() {
        let flow: FlowSpec = "10.0.0.2:1-10.0.0.3:2/UDP".parse().unwrap();
        let v = serde_json::to_value(&flow).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"src": "10.0.0.2", "sport": 1, "dst": "10.0.0.3", "dport": 2, "proto": "udp"})
        );
        assert_eq!(serde_json::from_value::<FlowSpec>(v).unwrap(), flow);
        let gw = GatewayView {
            name: "gw1".into(),
            address: "10.1.0.11".parse().unwrap(),
            mac: "02:00:00:00:01:11".parse().unwrap(),
            via: "eth1".into(),
            weight: 1,
            slots: 3,
            share: 50.0,
            teid_prefix: Some(7),
            draining: None,
        };
        let v = serde_json::to_value(&gw).unwrap();
        assert_eq!(
            (v["address"].as_str(), v["mac"].as_str()),
            (Some("10.1.0.11"), Some("02:00:00:00:01:11"))
        );
        assert_eq!(serde_json::from_value::<GatewayView>(v).unwrap(), gw);
        let add = r#"{"cmd":"lb_gateway_add","interface":null,"gateway":{"name":"gw1","address":"10.1.0.11","mac":"02:00:00:00:01:11","via":null,"weight":1}}"#;
        let r: Request = serde_json::from_str(add).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), add);
        assert!(
            serde_json::from_str::<Request>(&add.replace("02:00:00:00:01:11", "zz"))
                .unwrap_err()
                .to_string()
                .contains("not a MAC address")
        );
        let with_prefix = add.replace("\"weight\":1}", "\"weight\":1,\"teid_prefix\":9}");
        let r: Request = serde_json::from_str(&with_prefix).unwrap();
        assert!(matches!(&r, Request::LbGatewayAdd { gateway, .. } if gateway.prefix() == Some(9)));
        assert_eq!(serde_json::to_string(&r).unwrap(), with_prefix);
        let drain: Request =
            serde_json::from_str(r#"{"cmd":"lb_gateway_drain","interface":null,"name":"gw1"}"#)
                .unwrap();
        assert_eq!(
            drain,
            Request::LbGatewayDrain {
                interface: None,
                name: "gw1".into(),
                timeout: None
            }
        );
    }

    #[test]
    fn flow_spec_parsing() {
        let f: FlowSpec = "10.0.0.2:4000-198.51.100.10:80/TCP".parse().unwrap();
        assert_eq!((f.sport, f.dport, f.proto), (4000, 80, Protocol::Tcp));
        assert!("10.0.0.2:4000-198.51.100.10:80/icmp"
            .parse::<FlowSpec>()
            .is_err());
        assert!("10.0.0.2-198.51.100.10/udp".parse::<FlowSpec>().is_err());
        let v6: FlowSpec = "[2001:db8::2]:4000-[2001:db8::1]:80/udp".parse().unwrap();
        assert_eq!(
            (v6.src.to_string(), v6.sport, v6.dst.to_string(), v6.dport),
            ("2001:db8::2".into(), 4000, "2001:db8::1".into(), 80)
        );
        let e = "10.0.0.2:4000-[2001:db8::1]:80/udp"
            .parse::<FlowSpec>()
            .unwrap_err();
        assert!(e.contains("both be IPv4 or both IPv6"), "{e}");
    }
}
