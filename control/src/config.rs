//! The host config (TOML). It is parsed and validated as a whole before
//! anything is applied; an error names the key and the reason.
//!
//! This file holds the node's own section and composes the roles' ones:
//! each role checks its section with keys relative to it, and the error
//! is placed under the section's key here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::field::ConfigError;
use crate::{field::InterfaceClaims, gateway, lb, migration, presence, router, sip_monitor};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub node: Node,
    #[serde(default)]
    pub lb: Vec<lb::config::Lb>,
    #[serde(default)]
    pub gateway: Vec<gateway::config::Gateway>,
    #[serde(default)]
    pub router: Vec<router::config::Router>,
    #[serde(default)]
    pub sip_monitor: Option<sip_monitor::config::SipMonitor>,
    #[serde(default)]
    pub presence: Option<presence::config::Presence>,
    #[serde(default)]
    pub migration: Option<migration::config::Migration>,
    /// The shared state in etcd; one host runs without it.
    #[serde(default)]
    pub cluster: Option<crate::cluster::config::Cluster>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Node {
    /// Name shown in logs and metrics.
    pub name: String,
    /// Unix socket of the daemon API (mode 0600).
    pub socket: PathBuf,
    /// bpffs directory pins live under.
    pub pin_root: PathBuf,
    /// Address of the Prometheus endpoint; off when absent.
    pub metrics: Option<std::net::SocketAddr>,
    /// `native` (driver) or `skb` (generic) XDP.
    pub xdp_mode: XdpMode,
    /// The order in which roles that share an interface see its packets
    /// (ARCHITECTURE §5); roles not named follow in the default order:
    /// sip-monitor, router, migration, lb, gateway.
    pub stage_order: Vec<StageRole>,
}

crate::field::text_enum! {
    /// A role that runs an XDP stage.
    pub enum StageRole {
        SipMonitor = "sip-monitor",
        Router = "router",
        Migration = "migration",
        Lb = "lb",
        Gateway = "gateway",
    }
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: "edgeplane".into(),
            socket: PathBuf::from(DEFAULT_SOCKET),
            pin_root: PathBuf::from("/sys/fs/bpf/edgeplane"),
            metrics: None,
            xdp_mode: XdpMode::Native,
            stage_order: Vec::new(),
        }
    }
}

pub const DEFAULT_SOCKET: &str = "/run/edgeplane/edgeplane.sock";

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    Native,
    Skb,
}

impl Config {
    /// Parse and validate. Nothing is applied by this call.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| key_at(text, s.start))
                .unwrap_or_else(|| "<file>".into());
            ConfigError::new(key, e.message().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        Self::parse(&text)
    }

    /// The sections in the order they were always checked, so that a file
    /// with several mistakes reports the same one first. An interface
    /// runs one role instance: gateways and load balancers claim theirs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, r) in self.node.stage_order.iter().enumerate() {
            if self.node.stage_order[..i].contains(r) {
                return Err(ConfigError::new(
                    format!("node.stage_order[{i}]"),
                    format!("{r} is named twice"),
                ));
            }
        }
        let mut interfaces = InterfaceClaims::default();
        for (i, gw) in self.gateway.iter().enumerate() {
            gw.validate_section(&mut interfaces)
                .map_err(|e| e.under(&format!("gateway[{i}]")))?;
        }
        if let Some(m) = &self.sip_monitor {
            m.validate().map_err(|e| e.under("sip_monitor"))?;
        }
        if let Some(p) = &self.presence {
            p.validate().map_err(|e| e.under("presence"))?;
        }
        if let Some(m) = &self.migration {
            m.validate().map_err(|e| e.under("migration"))?;
        }
        for (i, r) in self.router.iter().enumerate() {
            r.validate(&self.router[..i])
                .map_err(|e| e.under(&format!("router[{i}]")))?;
        }
        for (i, lb) in self.lb.iter().enumerate() {
            lb.validate(&mut interfaces)
                .map_err(|e| e.under(&format!("lb[{i}]")))?;
        }
        if let Some(c) = &self.cluster {
            c.validate().map_err(|e| e.under("cluster"))?;
            for (i, lb) in self.lb.iter().enumerate() {
                if !lb.gateways.is_empty() {
                    return Err(ConfigError::new(
                        format!("lb[{i}].gateway"),
                        "with [cluster] the gateways come from etcd (edgeplane cluster gateways ...); remove [[lb.gateway]]",
                    ));
                }
            }
            if c.gateway.is_some() && self.gateway.is_empty() {
                return Err(ConfigError::new(
                    "cluster.gateway",
                    "registers this node's gateway, but no [[gateway]] runs here",
                ));
            }
        }
        Ok(())
    }

    pub fn lb_for(&self, interface: &str) -> Option<&lb::config::Lb> {
        self.lb.iter().find(|l| l.interface == interface)
    }
}

/// Best-effort dotted key for a byte offset of a TOML parse error: the
/// last table header before it plus the key on its line.
fn key_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let mut table = String::new();
    // Array-of-tables headers seen so far, with how many of each; a new
    // parent element resets its children's counts.
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for line in before.lines() {
        let t = line.trim();
        let header = if let Some(h) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            counts.retain(|k, _| !k.starts_with(&format!("{h}.")));
            *counts.entry(h.to_string()).or_insert(0) += 1;
            h
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            h
        } else {
            continue;
        };
        // A table inside an array element (`[router.load_sharing]`) is
        // placed under the element, as an array-of-tables header is.
        let mut path = String::new();
        let mut prefix = String::new();
        for seg in header.split('.') {
            if !prefix.is_empty() {
                prefix.push('.');
                path.push('.');
            }
            prefix.push_str(seg);
            path.push_str(seg);
            if let Some(n) = counts.get(&prefix) {
                path.push_str(&format!("[{}]", n - 1));
            }
        }
        table = path;
    }
    let line = text[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
        .lines()
        .next()
        .unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    match (table.is_empty(), key.is_empty() || key.starts_with('[')) {
        (true, true) => "<file>".into(),
        (true, false) => key.into(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::maglev::DEFAULT_TABLE_SIZE;

    const GOOD: &str = r#"
[node]
name = "lb-a"
metrics = "127.0.0.1:9464"

[[lb]]
interface = "eth0"
seed = 7

[[lb.gateway]]
name = "gw1"
address = "10.1.0.11"
mac = "02:00:00:00:01:11"
via = "eth1"

[[lb.gateway]]
name = "gw2"
address = "10.1.0.12"
mac = "02:00:00:00:01:12"
weight = 2
"#;

    #[test]
    fn parses_a_good_file_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.lb[0].table_size, DEFAULT_TABLE_SIZE);
        assert_eq!(c.lb[0].gateways[0].weight, 1);
        assert_eq!(c.lb[0].gateways[1].via, None);
        assert_eq!(c.node.socket, PathBuf::from(DEFAULT_SOCKET));
    }

    fn error_of(text: &str) -> ConfigError {
        Config::parse(text).unwrap_err()
    }

    const MIGRATION: &str = "[node]\nname = \"e\"\n\n[migration]\nkey = \"sixteen characters\"\n[migration.controller]\nlisten = \"127.0.0.1:7700\"\ninterface = \"eth0\"\n\
        [[migration.controller.network]]\nid = 1\nname = \"n1\"\nvia = \"eth1\"\nnext_hop_mac = \"02:00:00:00:01:0a\"\n\
        [[migration.controller.service]]\naddress = \"10.99.0.80\"\nnetwork = 1\n\
        [migration.coordinator]\ncontroller = \"127.0.0.1:7700\"\ndatabase = \"/tmp/c.db\"\n\
        [[migration.coordinator.server]]\nname = \"s1\"\naddress = \"10.8.1.10\"\nnetwork = \"n1\"\nagent = \"10.8.1.10:7600\"\n\
        [[migration.coordinator.network]]\nname = \"n1\"\nid = 1\n\
        [[migration.coordinator.process]]\nname = \"counter\"\nserver = \"s1\"\nservice = \"10.99.0.80\"\n";

    #[test]
    fn migration_config_errors_name_the_key() {
        let c = Config::parse(MIGRATION).unwrap();
        assert_eq!(c.migration.unwrap().coordinator.unwrap().timeout_ms, 3000);
        let e = error_of(&MIGRATION.replace("network = 1\n", "network = 2\n"));
        assert_eq!(e.key, "migration.controller.service[0].network", "{e}");
        let e = error_of(&MIGRATION.replace("server = \"s1\"", "server = \"s9\""));
        assert_eq!(e.key, "migration.coordinator.process[0].server", "{e}");
        let e = error_of(&MIGRATION.replace("02:00:00:00:01:0a", "zz"));
        assert_eq!(e.key, "migration.controller.network[0].next_hop_mac", "{e}");
        let e = error_of(&MIGRATION.replace("agent = \"10.8.1.10:7600\"", "agent = \"nowhere\""));
        assert_eq!(e.key, "migration.coordinator.server[0].agent", "{e}");
        // Frames are authenticated: no part without the shared key.
        let e = error_of(&MIGRATION.replace("key = \"sixteen characters\"\n", ""));
        assert_eq!(e.key, "migration.key", "{e}");
        assert!(e.to_string().contains("required"), "{e}");
        let e = error_of(&MIGRATION.replace("sixteen characters", "short"));
        assert_eq!(e.key, "migration.key", "{e}");
        let e = error_of(&MIGRATION.replace("database =", "databse ="));
        assert!(e.to_string().contains("databse"), "{e}");
        // A network needs a controller, its own or the default.
        let e = error_of(&MIGRATION.replace("controller = \"127.0.0.1:7700\"\n", ""));
        assert_eq!(e.key, "migration.coordinator.network[0].controller", "{e}");
        let c = Config::parse(
            &MIGRATION
                .replace("controller = \"127.0.0.1:7700\"\n", "")
                .replace(
                    "name = \"n1\"\nid = 1\n",
                    "name = \"n1\"\nid = 1\ncontroller = \"127.0.0.1:7701\"\n",
                ),
        )
        .unwrap();
        assert_eq!(
            c.migration.unwrap().coordinator.unwrap().networks[0].controller,
            Some("127.0.0.1:7701".parse().unwrap())
        );
        let e = error_of(&MIGRATION.replace(
            "name = \"n1\"\nid = 1\n",
            "name = \"n1\"\nid = 1\ncontroller = \"x\"\n",
        ));
        assert_eq!(e.key, "migration.coordinator.network[0].controller", "{e}");
        let e = error_of(&MIGRATION.replace(
            "name = \"n1\"\nid = 1\n",
            "name = \"n1\"\nid = 1\nvia = \"eth2\"\n",
        ));
        assert_eq!(e.key, "migration.coordinator.network[0].via", "{e}");
        let e = error_of(&MIGRATION.replace(
            "name = \"n1\"\nid = 1\n",
            "name = \"n1\"\nid = 1\nvia = \"eth2\"\nnext_hop_mac = \"02:xx\"\n",
        ));
        assert_eq!(
            e.key, "migration.coordinator.network[0].next_hop_mac",
            "{e}"
        );
        let agent = "[node]\nname = \"s\"\n[migration]\nkey = \"sixteen characters\"\n[migration.agent]\nlisten = \"10.8.1.10:7600\"\n[[migration.agent.process]]\nname = \"c\"\ncontrol = \"/run/c.ctl\"\n";
        let a = Config::parse(agent)
            .unwrap()
            .migration
            .unwrap()
            .agent
            .unwrap();
        assert!(
            a.processes[0].freeze && a.processes[0].cgroup.is_none() && a.coordinator.is_none()
        );
        assert_eq!(
            a.state_file,
            std::path::Path::new("/var/lib/edgeplane/migration-agent.json")
        );
        let e = error_of(&agent.replace(
            "[[migration.agent.process]]",
            "state_file = \"state.json\"\n[[migration.agent.process]]",
        ));
        assert_eq!(e.key, "migration.agent.state_file", "{e}");
        let e = error_of(&MIGRATION.replace(
            "[migration.coordinator]\n",
            "[migration.coordinator]\nrollback_retry_ms = 600001\n",
        ));
        assert_eq!(e.key, "migration.coordinator.rollback_retry_ms", "{e}");
        let e = error_of(&format!("{agent}cgroup = \"relative/path\"\n"));
        assert_eq!(e.key, "migration.agent.process[0].cgroup", "{e}");
        let e = error_of(&format!(
            "{agent}[[migration.agent.process]]\nname = \"c\"\ncontrol = \"/run/d.ctl\"\n"
        ));
        assert_eq!(e.key, "migration.agent.process[1].name", "{e}");
        // The application backend as commands.
        let cmds = "[migration.agent.process.commands]\npause = [\"app\", \"pause\"]\nexport = [\"app\", \"export\"]\nimport = [\"app\", \"import\"]\nresume = [\"app\", \"resume\"]\n";
        let no_ctl = agent.replace("control = \"/run/c.ctl\"\n", "");
        let e = error_of(&no_ctl);
        assert_eq!(e.key, "migration.agent.process[0].control", "{e}");
        let e = error_of(&format!("{agent}{cmds}"));
        assert_eq!(e.key, "migration.agent.process[0].commands", "{e}");
        let e = error_of(&format!("{no_ctl}{cmds}"));
        assert_eq!(e.key, "migration.agent.process[0].pid_file", "{e}");
        let ok = Config::parse(&format!("{no_ctl}pid_file = \"/run/app.pid\"\n{cmds}")).unwrap();
        assert_eq!(
            ok.migration.unwrap().agent.unwrap().processes[0]
                .commands
                .as_ref()
                .unwrap()
                .export,
            ["app", "export"]
        );
        let e = error_of(&format!(
            "{no_ctl}pid_file = \"/run/app.pid\"\n{}",
            cmds.replace("[\"app\", \"resume\"]", "[]")
        ));
        assert_eq!(e.key, "migration.agent.process[0].commands.resume", "{e}");
    }

    #[test]
    fn the_stage_order_names_each_role_once() {
        let c = Config::parse("[node]\nname = \"n\"\nstage_order = [\"lb\", \"sip-monitor\"]\n")
            .unwrap();
        assert_eq!(
            c.node.stage_order,
            vec![StageRole::Lb, StageRole::SipMonitor]
        );
        assert!(Config::parse("[node]\nname = \"n\"\n")
            .unwrap()
            .node
            .stage_order
            .is_empty());
        let e = error_of("[node]\nname = \"n\"\nstage_order = [\"lb\", \"router\", \"lb\"]\n");
        assert_eq!(e.key, "node.stage_order[2]", "{e}");
        let e = error_of("[node]\nname = \"n\"\nstage_order = [\"firewall\"]\n");
        assert!(e.key.starts_with("node.stage_order"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = error_of(&GOOD.replace("02:00:00:00:01:12", "nope"));
        assert_eq!(e.key, "lb[0].gateway[1].mac", "{e}");
        let e = error_of(&GOOD.replace("seed = 7", "seed = 7\ntable_size = 65536"));
        assert_eq!(e.key, "lb[0].table_size", "{e}");
        let e = error_of(&GOOD.replace("name = \"gw2\"", "name = \"gw1\""));
        assert_eq!(e.key, "lb[0].gateway[1].name", "{e}");
        let e = error_of(&GOOD.replace("weight = 2", "weight = 5000"));
        assert_eq!(e.key, "lb[0].gateway[1].weight", "{e}");
        let e = error_of(&GOOD.replace("127.0.0.1:9464", "localhost"));
        assert_eq!(e.key, "node.metrics", "{e}");
    }

    /// The lb's key and its TEID owners (seed 002 claims 4 and 20).
    #[test]
    fn lb_key_drain_and_teid_prefixes_are_checked_at_their_key() {
        use crate::lb::config::{LbKey, DEFAULT_DRAIN_TIMEOUT};
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(
            (c.lb[0].key, c.lb[0].drain_timeout),
            (LbKey::Terminal, DEFAULT_DRAIN_TIMEOUT),
            "defaults"
        );
        assert_eq!(c.lb[0].gateways[0].teid_prefix, None);
        let c = Config::parse(
            &GOOD.replace("seed = 7", "seed = 7\nkey = \"flow\"\ndrain_timeout = 30"),
        )
        .unwrap();
        assert_eq!((c.lb[0].key, c.lb[0].drain_timeout), (LbKey::Flow, 30));
        let e = error_of(&GOOD.replace("seed = 7", "seed = 7\nkey = \"5-tuple\""));
        assert_eq!(e.key, "lb[0].key", "{e}");
        assert!(e.reason.contains("\"terminal\" or \"flow\""), "{e}");
        let e = error_of(&GOOD.replace("seed = 7", "seed = 7\nkey = \"Flow\""));
        assert_eq!(e.key, "lb[0].key", "exact words only: {e}");
        let e = error_of(&GOOD.replace("seed = 7", "seed = 7\ndrain_timeout = 0"));
        assert_eq!(e.key, "lb[0].drain_timeout", "{e}");

        let prefixed = GOOD
            .replace("via = \"eth1\"", "via = \"eth1\"\nteid_prefix = 17")
            .replace("weight = 2", "weight = 2\nteid_prefix = 255");
        let c = Config::parse(&prefixed).unwrap();
        assert_eq!(
            (c.lb[0].gateways[0].prefix(), c.lb[0].gateways[1].prefix()),
            (Some(17), Some(255))
        );
        let e = error_of(&prefixed.replace("teid_prefix = 255", "teid_prefix = 17"));
        assert_eq!(e.key, "lb[0].gateway[1].teid_prefix", "{e}");
        assert!(e.reason.contains("\"gw1\""), "names the owner: {e}");
        let e = error_of(&prefixed.replace("teid_prefix = 255", "teid_prefix = 256"));
        assert_eq!(e.key, "lb[0].gateway[1].teid_prefix", "{e}");
        assert!(e.reason.contains("above 255"), "{e}");
        let e = error_of(&prefixed.replace("teid_prefix = 255", "teid_prefix = -1"));
        assert_eq!(e.key, "lb[0].gateway[1].teid_prefix", "{e}");
    }

    const ROLES: &str = r#"
[[gateway]]
interfaces = ["core", "srv"]
address = "10.2.0.1"
ports = "20000-20099"

[[gateway.session_type]]
name = "voice"
id = 1
proto = "udp"
terminals = "10.0.0.0/8"

[[gateway.group]]
name = "web"
services = ["198.51.100.10:80/tcp", "198.51.100.10:443/tcp"]
allow = ["10.0.0.0/8"]

[[gateway.group.server]]
name = "w1"
address = "10.2.0.11"
port = 8080
mac = "02:00:00:00:02:11"

[[router]]
interface = "eth0"
vrid = 7
virtual_addresses = [
    "10.3.0.100/24",
    "10.3.0.101/24",
]

[router.load_sharing]
key = "k"
peers = ["10.3.0.2"]
direction = "downstream"

[sip_monitor]
interfaces = ["eth1"]
domain = "example.com"
presence = "10.6.0.2:5070"
talking_on = "ack"
terminated_on = "bye_ok"
carrier = "register"

[presence]
listen = "10.6.0.2:5070"
database = "/tmp/p.db"
allow = ["10.0.0.0/8"]
"#;

    /// A typed value the file gets wrong is refused by the parser, at the
    /// key that holds it (the same keys the checks after parsing named).
    #[test]
    fn typed_values_are_refused_at_their_key() {
        Config::parse(ROLES).unwrap();
        for (from, to, key) in [
            ("20000-20099", "20000", "gateway[0].ports"),
            ("20000-20099", "80-90", "gateway[0].ports"),
            (
                "proto = \"udp\"",
                "proto = \"icmp\"",
                "gateway[0].session_type[0].proto",
            ),
            (
                "terminals = \"10.0.0.0/8\"",
                "terminals = \"10.0.0/8\"",
                "gateway[0].session_type[0].terminals",
            ),
            (
                "198.51.100.10:443/tcp",
                "198.51.100.10:443/sctp",
                "gateway[0].group[0].services",
            ),
            (
                "allow = [\"10.0.0.0/8\"]\n\n[[gateway.group.server]]",
                "allow = [\"10.0.0.0/x\"]\n\n[[gateway.group.server]]",
                "gateway[0].group[0].allow",
            ),
            (
                "02:00:00:00:02:11",
                "02:00:00:00:02",
                "gateway[0].group[0].server[0].mac",
            ),
            (
                "10.3.0.101/24",
                "10.3.0.101/33",
                "router[0].virtual_addresses",
            ),
            (
                "direction = \"downstream\"",
                "direction = \"down\"",
                "router[0].load_sharing.direction",
            ),
            (
                "talking_on = \"ack\"",
                "talking_on = \"180\"",
                "sip_monitor.talking_on",
            ),
            (
                "terminated_on = \"bye_ok\"",
                "terminated_on = \"cancel\"",
                "sip_monitor.terminated_on",
            ),
            (
                "carrier = \"register\"",
                "carrier = \"notify\"",
                "sip_monitor.carrier",
            ),
        ] {
            let text = ROLES.replacen(from, to, 1);
            assert_ne!(text, ROLES, "{from}");
            let e = error_of(&text);
            assert_eq!(e.key, key, "{e}");
        }
        let e = error_of(&format!(
            "{}allow = [\"10.0.0.0/8\", \"nope\"]\n",
            ROLES
                .trim_end()
                .strip_suffix("allow = [\"10.0.0.0/8\"]")
                .unwrap()
        ));
        assert_eq!(e.key, "presence.allow", "{e}");
        assert!(e.reason.contains("\"nope\" is not A.B.C.D/LEN"), "{e}");
    }

    #[test]
    fn syntax_and_unknown_keys_are_located() {
        let e = error_of(&GOOD.replace("seed = 7", "sede = 7"));
        assert!(e.key.starts_with("lb[0]"), "{e}");
        assert!(e.reason.contains("sede"), "{e}");
        let e = error_of(&GOOD.replace("address = \"10.1.0.11\"", "address = \"10.1.0\""));
        assert_eq!(e.key, "lb[0].gateway[0].address", "{e}");
        // An IPv6 gateway address is taken (the LB forwards by MAC).
        let c = Config::parse(
            &GOOD.replace("address = \"10.1.0.11\"", "address = \"2001:db8:10::11\""),
        )
        .unwrap();
        assert!(c.lb[0].gateways[0].address.is_ipv6());
    }

    #[test]
    fn a_cluster_takes_the_lbs_gateways_and_registers_only_a_gateway_that_runs() {
        let cluster = "\n[cluster]\nendpoints = [\"http://10.9.0.1:2379\"]\n";
        // [[lb.gateway]] and [cluster] together: the file is refused.
        let e = error_of(&format!("{GOOD}{cluster}"));
        assert_eq!(e.key, "lb[0].gateway", "{e}");
        let lb_only = "[[lb]]\ninterface = \"eth0\"\ngateway_via = \"eth1\"\n";
        let c = Config::parse(&format!("{lb_only}{cluster}")).unwrap();
        assert_eq!(c.cluster.unwrap().prefix, "/edgeplane");
        // A registration without a gateway role on the node.
        let e = error_of(&format!(
            "{lb_only}{cluster}[cluster.gateway]\naddress = \"10.1.0.11\"\nmac = \"02:00:00:00:00:01\"\n"
        ));
        assert_eq!(e.key, "cluster.gateway", "{e}");
        // Keys inside [cluster] are named from the file's root.
        let e = error_of(&format!("{lb_only}\n[cluster]\nendpoints = []\n"));
        assert_eq!(e.key, "cluster.endpoints", "{e}");
        let e = error_of(&format!("{lb_only}gateway_via = \"\"\n"));
        assert!(e.key.starts_with("lb[0]"), "{e}");
    }

    #[test]
    fn empty_file_is_a_valid_idle_node() {
        let c = Config::parse("").unwrap();
        assert!(c.lb.is_empty());
    }
}
