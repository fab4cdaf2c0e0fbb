//! The host config (TOML). It is parsed and validated as a whole before
//! anything is applied; an error names the key and the reason.

use std::{collections::HashSet, path::PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::field::ConfigError;
use crate::field::InterfaceClaims;

// Old paths, kept until the edgeplane package imports the new ones (lib.rs).
pub use crate::old_paths::config::*;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub node: Node,
    #[serde(default)]
    pub lb: Vec<crate::lb::config::Lb>,
    #[serde(default)]
    pub gateway: Vec<crate::gateway::config::Gateway>,
    #[serde(default)]
    pub router: Vec<crate::router::config::Router>,
    #[serde(default)]
    pub sip_monitor: Option<crate::sip_monitor::config::SipMonitor>,
    #[serde(default)]
    pub presence: Option<crate::presence::config::Presence>,
    #[serde(default)]
    pub migration: Option<Migration>,
}

/// Process migration (seed 000): any of its three parts on this host.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    pub agent: Option<MigrationAgent>,
    pub controller: Option<MigrationController>,
    pub coordinator: Option<MigrationCoordinator>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationAgent {
    pub listen: std::net::SocketAddrV4,
    /// The coordinator's `listen` endpoint: `edgeplane migrate` on this
    /// server goes through this agent to it (claim 1: the request may come
    /// from server 1).
    #[serde(default)]
    pub coordinator: Option<std::net::SocketAddrV4>,
    #[serde(rename = "process")]
    pub processes: Vec<MigratableProcess>,
}

/// A process the agent can move, with the application backend: the
/// workload pauses, exports and imports its state and resumes, either
/// through a control socket (one command per connection: `pause`,
/// `export`, `import JSON`, `resume`, `discard`) or through commands.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigratableProcess {
    pub name: String,
    #[serde(default)]
    pub control: Option<PathBuf>,
    /// Commands run instead of a control socket.
    #[serde(default)]
    pub commands: Option<AppCommands>,
    /// The process's pid file: whom SIGSTOP stops when there is neither a
    /// cgroup nor a control socket to ask.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// Interface holding the service address while the process runs here.
    #[serde(default = "default_service_dev")]
    pub service_dev: String,
    /// The process's own cgroup v2 directory: once its state is exported
    /// the agent freezes it there (`cgroup.freeze`). Without one the agent
    /// stops it with SIGSTOP (its pid from the control socket's peer).
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// Freeze (cgroup) or stop (SIGSTOP) the process while it is moved;
    /// `false` relies on the application's own pause only.
    #[serde(default = "yes")]
    pub freeze: bool,
}


/// The application backend as commands (argv, no shell). `export` prints
/// the state on stdout; `import` reads it on stdin; a non-zero exit is a
/// failure, reported with its stderr.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppCommands {
    pub pause: Vec<String>,
    pub export: Vec<String>,
    pub import: Vec<String>,
    pub resume: Vec<String>,
    /// Drop what an import brought (a rolled-back destination); optional.
    #[serde(default)]
    pub discard: Option<Vec<String>>,
}

fn default_service_dev() -> String {
    "lo".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationController {
    pub listen: std::net::SocketAddrV4,
    /// The terminal-side interface the steering program runs on.
    pub interface: String,
    #[serde(rename = "network")]
    pub networks: Vec<SteerNetwork>,
    #[serde(rename = "service")]
    pub services: Vec<SteerService>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteerNetwork {
    pub id: u32,
    pub name: String,
    pub via: String,
    pub next_hop_mac: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteerService {
    pub address: std::net::Ipv4Addr,
    pub network: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationCoordinator {
    /// The connection controller, "ADDR:PORT", for networks that do not
    /// name their own.
    #[serde(default)]
    pub controller: Option<std::net::SocketAddrV4>,
    /// Where migration requests from agents arrive (framed TCP).
    #[serde(default)]
    pub listen: Option<std::net::SocketAddrV4>,
    /// SQLite store of servers, networks and where processes run.
    pub database: PathBuf,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(rename = "server")]
    pub servers: Vec<crate::migration::ServerInfo>,
    #[serde(rename = "network")]
    pub networks: Vec<crate::migration::NetworkInfo>,
    #[serde(rename = "process")]
    pub processes: Vec<ProcessPlace>,
}

impl Migration {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(a) = &self.agent {
            if a.processes.is_empty() {
                return Err(err("migration.agent.process", "name at least one process this agent can move"));
            }
            for (i, p) in a.processes.iter().enumerate() {
                if a.processes[..i].iter().any(|q| q.name == p.name) {
                    return Err(err(format!("migration.agent.process[{i}].name"), format!("{:?} is configured twice", p.name)));
                }
                let key = |k: &str| format!("migration.agent.process[{i}].{k}");
                match (&p.control, &p.commands) {
                    (None, None) => return Err(err(key("control"), "give the workload's control socket, or [commands]")),
                    (Some(_), Some(_)) => return Err(err(key("commands"), "give either a control socket or commands, not both")),
                    (None, Some(c)) => {
                        for (k, argv) in [("pause", &c.pause), ("export", &c.export), ("import", &c.import), ("resume", &c.resume)] {
                            if argv.is_empty() || argv[0].is_empty() {
                                return Err(err(key(&format!("commands.{k}")), "an empty command (give the program and its arguments)"));
                            }
                        }
                        if p.freeze && p.cgroup.is_none() && p.pid_file.is_none() {
                            return Err(err(key("pid_file"), "needed to stop the process (SIGSTOP) when there is neither a cgroup nor a control socket; or set freeze = false"));
                        }
                    }
                    (Some(_), None) => {}
                }
                if let Some(g) = &p.cgroup {
                    if !g.is_absolute() || g == std::path::Path::new("/sys/fs/cgroup") {
                        return Err(err(format!("migration.agent.process[{i}].cgroup"), "must be the process's own cgroup directory (an absolute path below the cgroup v2 root)"));
                    }
                }
            }
        }
        if let Some(c) = &self.controller {
            crate::field::validate_ifname(&c.interface).map_err(|r| err("migration.controller.interface", r))?;
            let mut ids = HashSet::new();
            for (i, n) in c.networks.iter().enumerate() {
                if crate::field::parse_mac(&n.next_hop_mac).is_none() {
                    return Err(err(format!("migration.controller.network[{i}].next_hop_mac"), format!("{:?} is not a MAC address", n.next_hop_mac)));
                }
                crate::field::validate_ifname(&n.via).map_err(|r| err(format!("migration.controller.network[{i}].via"), r))?;
                if !ids.insert(n.id) {
                    return Err(err(format!("migration.controller.network[{i}].id"), format!("network {} is configured twice", n.id)));
                }
            }
            for (i, sv) in c.services.iter().enumerate() {
                if !ids.contains(&sv.network) {
                    return Err(err(format!("migration.controller.service[{i}].network"), format!("no network {} is configured", sv.network)));
                }
            }
        }
        if let Some(c) = &self.coordinator {
            if c.timeout_ms == 0 || c.timeout_ms > 600_000 {
                return Err(err("migration.coordinator.timeout_ms", "must be 1..=600000"));
            }
            for (i, n) in c.networks.iter().enumerate() {
                if c.networks[..i].iter().any(|m| m.name == n.name || m.id == n.id) {
                    return Err(err(format!("migration.coordinator.network[{i}]"), format!("network {:?} (id {}) is configured twice", n.name, n.id)));
                }
                n.check(c.controller.is_some()).map_err(|(k, r)| err(format!("migration.coordinator.network[{i}].{k}"), r))?;
            }
            for (i, s) in c.servers.iter().enumerate() {
                if !c.networks.iter().any(|n| n.name == s.network) {
                    return Err(err(format!("migration.coordinator.server[{i}].network"), format!("no network {:?} is configured", s.network)));
                }
                s.check().map_err(|(k, r)| err(format!("migration.coordinator.server[{i}].{k}"), r))?;
            }
            for (i, p) in c.processes.iter().enumerate() {
                if !c.servers.iter().any(|s| s.name == p.server) {
                    return Err(err(format!("migration.coordinator.process[{i}].server"), format!("no server {:?} is configured", p.server)));
                }
            }
        }
        Ok(())
    }
}

fn default_timeout_ms() -> u64 {
    3000
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcessPlace {
    pub name: String,
    pub server: String,
    pub service: std::net::Ipv4Addr,
}

fn yes() -> bool {
    true
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
    pub metrics: Option<String>,
    /// `native` (driver) or `skb` (generic) XDP.
    pub xdp_mode: XdpMode,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: "edgeplane".into(),
            socket: PathBuf::from(DEFAULT_SOCKET),
            pin_root: PathBuf::from("/sys/fs/bpf/edgeplane"),
            metrics: None,
            xdp_mode: XdpMode::Native,
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

fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(key, reason)
}

impl Config {
    /// Parse and validate. Nothing is applied by this call.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| key_at(text, s.start))
                .unwrap_or_else(|| "<file>".into());
            err(key, e.message().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
        Self::parse(&text)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(m) = &self.node.metrics {
            m.parse::<std::net::SocketAddr>()
                .map_err(|_| err("node.metrics", format!("{m:?} is not an address:port")))?;
        }
        let mut interfaces = InterfaceClaims::default();
        for (i, gw) in self.gateway.iter().enumerate() {
            gw.validate_section(&mut interfaces)
                .map_err(|e| e.under(&format!("gateway[{i}]")))?;
        }
        if let Some(m) = &self.sip_monitor {
            m.validate().map_err(|e| e.under("sip_monitor"))?;
        }
        if let Some(m) = &self.migration {
            m.validate()?;
        }
        if let Some(p) = &self.presence {
            p.validate().map_err(|e| e.under("presence"))?;
        }
        for (i, r) in self.router.iter().enumerate() {
            r.validate(&self.router[..i])
                .map_err(|e| e.under(&format!("router[{i}]")))?;
        }
        for (i, lb) in self.lb.iter().enumerate() {
            lb.validate(&mut interfaces)
                .map_err(|e| e.under(&format!("lb[{i}]")))?;
        }
        Ok(())
    }

    pub fn lb_for(&self, interface: &str) -> Option<&crate::lb::config::Lb> {
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
        if let Some(h) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            counts.retain(|k, _| !k.starts_with(&format!("{h}.")));
            *counts.entry(h.to_string()).or_insert(0) += 1;
            let mut path = String::new();
            let mut prefix = String::new();
            for seg in h.split('.') {
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
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = h.to_string();
        }
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

    const MIGRATION: &str = "[node]\nname = \"e\"\n\n[migration.controller]\nlisten = \"127.0.0.1:7700\"\ninterface = \"eth0\"\n\
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
        let e = error_of(&MIGRATION.replace("database =", "databse ="));
        assert!(e.to_string().contains("databse"), "{e}");
        // A network needs a controller, its own or the default.
        let e = error_of(&MIGRATION.replace("controller = \"127.0.0.1:7700\"\n", ""));
        assert_eq!(e.key, "migration.coordinator.network[0].controller", "{e}");
        let c = Config::parse(&MIGRATION.replace("controller = \"127.0.0.1:7700\"\n", "").replace("name = \"n1\"\nid = 1\n", "name = \"n1\"\nid = 1\ncontroller = \"127.0.0.1:7701\"\n")).unwrap();
        assert_eq!(c.migration.unwrap().coordinator.unwrap().networks[0].controller.as_deref(), Some("127.0.0.1:7701"));
        let e = error_of(&MIGRATION.replace("name = \"n1\"\nid = 1\n", "name = \"n1\"\nid = 1\ncontroller = \"x\"\n"));
        assert_eq!(e.key, "migration.coordinator.network[0].controller", "{e}");
        let e = error_of(&MIGRATION.replace("name = \"n1\"\nid = 1\n", "name = \"n1\"\nid = 1\nvia = \"eth2\"\n"));
        assert_eq!(e.key, "migration.coordinator.network[0].via", "{e}");
        let e = error_of(&MIGRATION.replace("name = \"n1\"\nid = 1\n", "name = \"n1\"\nid = 1\nvia = \"eth2\"\nnext_hop_mac = \"02:xx\"\n"));
        assert_eq!(e.key, "migration.coordinator.network[0].next_hop_mac", "{e}");
        let agent = "[node]\nname = \"s\"\n[migration.agent]\nlisten = \"10.8.1.10:7600\"\n[[migration.agent.process]]\nname = \"c\"\ncontrol = \"/run/c.ctl\"\n";
        let a = Config::parse(agent).unwrap().migration.unwrap().agent.unwrap();
        assert!(a.processes[0].freeze && a.processes[0].cgroup.is_none() && a.coordinator.is_none());
        let e = error_of(&format!("{agent}cgroup = \"relative/path\"\n"));
        assert_eq!(e.key, "migration.agent.process[0].cgroup", "{e}");
        let e = error_of(&format!("{agent}[[migration.agent.process]]\nname = \"c\"\ncontrol = \"/run/d.ctl\"\n"));
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
        assert_eq!(ok.migration.unwrap().agent.unwrap().processes[0].commands.as_ref().unwrap().export, ["app", "export"]);
        let e = error_of(&format!("{no_ctl}pid_file = \"/run/app.pid\"\n{}", cmds.replace("[\"app\", \"resume\"]", "[]")));
        assert_eq!(e.key, "migration.agent.process[0].commands.resume", "{e}");
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

    #[test]
    fn syntax_and_unknown_keys_are_located() {
        let e = error_of(&GOOD.replace("seed = 7", "sede = 7"));
        assert!(e.key.starts_with("lb[0]"), "{e}");
        assert!(e.reason.contains("sede"), "{e}");
        let e = error_of(&GOOD.replace("address = \"10.1.0.11\"", "address = \"10.1.0\""));
        assert_eq!(e.key, "lb[0].gateway[0].address", "{e}");
    }

    #[test]
    fn empty_file_is_a_valid_idle_node() {
        let c = Config::parse("").unwrap();
        assert!(c.lb.is_empty());
    }
}
