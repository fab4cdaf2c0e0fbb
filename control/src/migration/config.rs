//! The `[migration]` section: any of the three parts of process
//! migration on this host (agent, connection controller, coordinator),
//! and the checks of the servers and networks the coordinator knows.

use std::{collections::HashSet, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::wire::{NetworkInfo, ServerInfo};
use crate::field::{validate_ifname, ConfigError, MacAddr};

/// Process migration (seed 000): any of its three parts on this host.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// The secret every agent, controller and coordinator shares: each
    /// frame carries an HMAC-SHA256 tag made with it, and a frame without
    /// a valid one changes nothing. At least 16 characters.
    #[serde(default)]
    pub key: String,
    pub agent: Option<MigrationAgent>,
    pub controller: Option<MigrationController>,
    pub coordinator: Option<MigrationCoordinator>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationAgent {
    pub listen: std::net::SocketAddr,
    /// The coordinator's `listen` endpoint: `edgeplane migrate` on this
    /// server goes through this agent to it (claim 1: the request may come
    /// from server 1).
    #[serde(default)]
    pub coordinator: Option<std::net::SocketAddr>,
    /// What a move changed here that an Abort must undo (addresses given
    /// away or taken, freezes), written before each step so that an agent
    /// killed mid-move can still roll it back once it is started again.
    #[serde(default = "default_state_file")]
    pub state_file: PathBuf,
    #[serde(rename = "process")]
    pub processes: Vec<MigratableProcess>,
}

fn default_state_file() -> PathBuf {
    "/var/lib/edgeplane/migration-agent.json".into()
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
    #[serde(default = "default_freeze")]
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

/// The shortest `migration.key` accepted.
pub const MIN_KEY: usize = 16;

fn default_service_dev() -> String {
    "lo".into()
}

fn default_freeze() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationController {
    pub listen: std::net::SocketAddr,
    /// The terminal-side interface the steering program runs on.
    pub interface: String,
    #[serde(rename = "network")]
    pub networks: Vec<SteerNetwork>,
    #[serde(rename = "service")]
    pub services: Vec<SteerService>,
    /// Frames one held service keeps at most until its switch; frames
    /// beyond it are dropped and counted (`held_refused_full`), the ones
    /// held before kept and released in order.
    #[serde(default = "default_hold_max_frames")]
    pub hold_max_frames: usize,
    /// Frames every held service together keeps at most; a frame beyond
    /// it is dropped and counted (`held_refused_total_full`), the ones
    /// held kept.
    #[serde(default = "default_hold_max_frames_total")]
    pub hold_max_frames_total: usize,
}

/// 262,144 frames: four services at their default bound, at most 512 MiB
/// of 2,048-byte frames in all.
fn default_hold_max_frames_total() -> usize {
    262_144
}

/// Largest `controller.hold_max_frames`.
pub const HOLD_MAX_FRAMES_CEILING: usize = 1 << 20;

/// 65,536 frames: a few seconds of a busy service, at most 128 MiB of
/// 2,048-byte frames per held service.
fn default_hold_max_frames() -> usize {
    65_536
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteerNetwork {
    pub id: u32,
    pub name: String,
    pub via: String,
    pub next_hop_mac: MacAddr,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SteerService {
    pub address: std::net::IpAddr,
    pub network: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MigrationCoordinator {
    /// The connection controller, "ADDR:PORT", for networks that do not
    /// name their own.
    #[serde(default)]
    pub controller: Option<std::net::SocketAddr>,
    /// Where migration requests from agents arrive (framed TCP).
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// SQLite store of servers, networks and where processes run.
    pub database: PathBuf,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a rollback keeps asking an agent (or the controller) it
    /// cannot reach, for one restarted meanwhile, before it reports the
    /// rollback incomplete. 0 asks once.
    #[serde(default = "default_rollback_retry_ms")]
    pub rollback_retry_ms: u64,
    #[serde(rename = "server")]
    pub servers: Vec<ServerInfo>,
    #[serde(rename = "network")]
    pub networks: Vec<NetworkInfo>,
    #[serde(rename = "process")]
    pub processes: Vec<ProcessPlace>,
}

impl Migration {
    /// Checks of this section, keys relative to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let parts = self.agent.is_some() || self.controller.is_some() || self.coordinator.is_some();
        if parts && self.key.len() < MIN_KEY {
            return Err(ConfigError::new(
                "key",
                if self.key.is_empty() {
                    format!("required: the secret shared by every agent, controller and coordinator, which authenticates their frames (at least {MIN_KEY} characters)")
                } else {
                    format!("too short: at least {MIN_KEY} characters")
                },
            ));
        }
        if let Some(a) = &self.agent {
            if !a.state_file.is_absolute() || a.state_file.file_name().is_none() {
                return Err(ConfigError::new(
                    "agent.state_file",
                    "must be an absolute path to a file",
                ));
            }
            if a.processes.is_empty() {
                return Err(ConfigError::new(
                    "agent.process",
                    "name at least one process this agent can move",
                ));
            }
            for (i, p) in a.processes.iter().enumerate() {
                if a.processes[..i].iter().any(|q| q.name == p.name) {
                    return Err(ConfigError::new(
                        format!("agent.process[{i}].name"),
                        format!("{:?} is configured twice", p.name),
                    ));
                }
                let key = |k: &str| format!("agent.process[{i}].{k}");
                match (&p.control, &p.commands) {
                    (None, None) => {
                        return Err(ConfigError::new(
                            key("control"),
                            "give the workload's control socket, or [commands]",
                        ))
                    }
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::new(
                            key("commands"),
                            "give either a control socket or commands, not both",
                        ))
                    }
                    (None, Some(c)) => {
                        for (k, argv) in [
                            ("pause", &c.pause),
                            ("export", &c.export),
                            ("import", &c.import),
                            ("resume", &c.resume),
                        ] {
                            if argv.is_empty() || argv[0].is_empty() {
                                return Err(ConfigError::new(
                                    key(&format!("commands.{k}")),
                                    "an empty command (give the program and its arguments)",
                                ));
                            }
                        }
                        if p.freeze && p.cgroup.is_none() && p.pid_file.is_none() {
                            return Err(ConfigError::new(key("pid_file"), "needed to stop the process (SIGSTOP) when there is neither a cgroup nor a control socket; or set freeze = false"));
                        }
                    }
                    (Some(_), None) => {}
                }
                if let Some(g) = &p.cgroup {
                    if !g.is_absolute() || g == std::path::Path::new("/sys/fs/cgroup") {
                        return Err(ConfigError::new(format!("agent.process[{i}].cgroup"), "must be the process's own cgroup directory (an absolute path below the cgroup v2 root)"));
                    }
                }
            }
        }
        if let Some(c) = &self.controller {
            validate_ifname(&c.interface)
                .map_err(|r| ConfigError::new("controller.interface", r))?;
            let mut ids = HashSet::new();
            for (i, n) in c.networks.iter().enumerate() {
                validate_ifname(&n.via)
                    .map_err(|r| ConfigError::new(format!("controller.network[{i}].via"), r))?;
                if !ids.insert(n.id) {
                    return Err(ConfigError::new(
                        format!("controller.network[{i}].id"),
                        format!("network {} is configured twice", n.id),
                    ));
                }
            }
            for (key, v) in [
                ("controller.hold_max_frames", c.hold_max_frames),
                ("controller.hold_max_frames_total", c.hold_max_frames_total),
            ] {
                if !(1..=HOLD_MAX_FRAMES_CEILING).contains(&v) {
                    return Err(ConfigError::new(
                        key,
                        format!("must be 1..={HOLD_MAX_FRAMES_CEILING}"),
                    ));
                }
            }
            for (i, sv) in c.services.iter().enumerate() {
                if !ids.contains(&sv.network) {
                    return Err(ConfigError::new(
                        format!("controller.service[{i}].network"),
                        format!("no network {} is configured", sv.network),
                    ));
                }
            }
        }
        if let Some(c) = &self.coordinator {
            if c.timeout_ms == 0 || c.timeout_ms > 600_000 {
                return Err(ConfigError::new(
                    "coordinator.timeout_ms",
                    "must be 1..=600000",
                ));
            }
            if c.rollback_retry_ms > 600_000 {
                return Err(ConfigError::new(
                    "coordinator.rollback_retry_ms",
                    "must be 0..=600000",
                ));
            }
            for (i, n) in c.networks.iter().enumerate() {
                if c.networks[..i]
                    .iter()
                    .any(|m| m.name == n.name || m.id == n.id)
                {
                    return Err(ConfigError::new(
                        format!("coordinator.network[{i}]"),
                        format!("network {:?} (id {}) is configured twice", n.name, n.id),
                    ));
                }
                n.check(c.controller.is_some()).map_err(|(k, r)| {
                    ConfigError::new(format!("coordinator.network[{i}].{k}"), r)
                })?;
            }
            for (i, s) in c.servers.iter().enumerate() {
                if !c.networks.iter().any(|n| n.name == s.network) {
                    return Err(ConfigError::new(
                        format!("coordinator.server[{i}].network"),
                        format!("no network {:?} is configured", s.network),
                    ));
                }
                s.check().map_err(|(k, r)| {
                    ConfigError::new(format!("coordinator.server[{i}].{k}"), r)
                })?;
            }
            for (i, p) in c.processes.iter().enumerate() {
                if !c.servers.iter().any(|s| s.name == p.server) {
                    return Err(ConfigError::new(
                        format!("coordinator.process[{i}].server"),
                        format!("no server {:?} is configured", p.server),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn default_timeout_ms() -> u64 {
    3000
}

fn default_rollback_retry_ms() -> u64 {
    10_000
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcessPlace {
    pub name: String,
    pub server: String,
    pub service: std::net::IpAddr,
}

impl ServerInfo {
    /// Checks of one entry on its own; `Err((key, reason))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        Ok(())
    }
}

impl NetworkInfo {
    /// Checks of one entry on its own; `default_controller`: whether the
    /// coordinator has one for networks without their own.
    pub fn check(&self, default_controller: bool) -> Result<(), (&'static str, String)> {
        if self.name.is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if self.via.is_some() != self.next_hop_mac.is_some() {
            return Err((
                "via",
                "give both via and next_hop_mac (the egress), or neither".into(),
            ));
        }
        if let Some(v) = &self.via {
            validate_ifname(v).map_err(|r| ("via", r))?;
        }
        match &self.controller {
            None if !default_controller => Err((
                "controller",
                "no connection controller: set it here or set migration.coordinator.controller"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROLLER: &str = "key = \"sixteen characters\"\n[controller]\nlisten = \"127.0.0.1:7700\"\ninterface = \"eth0\"\n[[controller.network]]\nid = 1\nname = \"n1\"\nvia = \"eth1\"\nnext_hop_mac = \"02:00:00:00:01:0a\"\n[[controller.service]]\naddress = \"10.99.0.80\"\nnetwork = 1\n";

    #[test]
    fn the_controllers_hold_is_bounded_by_a_checked_key() {
        let m: Migration = toml::from_str(CONTROLLER).unwrap();
        m.validate().unwrap();
        let c = m.controller.as_ref().unwrap();
        assert_eq!(
            (c.hold_max_frames, c.hold_max_frames_total),
            (65_536, 262_144)
        );
        let set = |key: &str, n: &str| {
            toml::from_str::<Migration>(&CONTROLLER.replace(
                "interface = \"eth0\"\n",
                &format!("interface = \"eth0\"\n{key} = {n}\n"),
            ))
            .unwrap()
        };
        let c = set("hold_max_frames", "100").controller.unwrap();
        assert_eq!(c.hold_max_frames, 100);
        let c = set("hold_max_frames_total", "500").controller.unwrap();
        assert_eq!(c.hold_max_frames_total, 500);
        for key in ["hold_max_frames", "hold_max_frames_total"] {
            for bad in ["0", "1048577"] {
                let e = set(key, bad).validate().unwrap_err();
                assert_eq!(e.key, format!("controller.{key}"), "{bad}: {e}");
            }
        }
    }
}
