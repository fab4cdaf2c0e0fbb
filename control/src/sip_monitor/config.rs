//! The `[sip_monitor]` section: which interfaces and ports the monitor
//! watches, whose terminals it reports, and when a call counts as
//! talking or over.

use serde::{Deserialize, Serialize};

use super::track::{TalkingOn, TerminatedOn};
use crate::field::{text_enum, ConfigError};

/// The SIP monitor (seed 001) on a session control server's interfaces.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SipMonitor {
    pub interfaces: Vec<String>,
    #[serde(default = "default_sip_ports")]
    pub ports: Vec<u16>,
    /// Only terminals of this domain are published (claims 10-11).
    pub domain: String,
    /// The presence server, "ADDR:PORT" or "[ADDR6]:PORT".
    pub presence: std::net::SocketAddr,
    /// "200" or "ack" (claims 12-13).
    #[serde(default = "default_talking_on")]
    pub talking_on: TalkingOn,
    /// "bye" or "bye_ok" (claims 14-15).
    #[serde(default = "default_terminated_on")]
    pub terminated_on: TerminatedOn,
    /// At most one PUBLISH per terminal per this many ms; later changes
    /// are coalesced.
    #[serde(default = "default_publish_interval")]
    pub publish_interval_ms: u64,
    #[serde(default = "default_carrier")]
    pub carrier: Carrier,
    /// A call whose dialog names no Session-Expires (RFC 4028) ends
    /// after this many seconds without a BYE seen; with one, it ends when
    /// the session expires unrefreshed (claim 18).
    #[serde(default = "default_max_call_secs")]
    pub max_call_secs: u32,
    /// The lifetime each status publication asks for (RFC 3903 Expires);
    /// the monitor refreshes it at 90 % of what the server grants, and a
    /// server whose monitor went away lets it lapse to offline.
    #[serde(default = "default_publish_expires")]
    pub publish_expires_secs: u32,
    /// How requests reach the presence server: "udp" (retransmitted on
    /// timer E) or "tcp" (one connection, reopened when it breaks).
    #[serde(default = "default_presence_transport")]
    pub presence_transport: PresenceTransport,
    /// Dialogs, registrations and publications, so a restarted monitor
    /// carries on (with the copies the ring kept while it was down)
    /// instead of starting blind: a snapshot at most every
    /// `state_interval_ms`, and beside it (`<state_file>.journal`) what
    /// happened since, appended before it is acted on.
    #[serde(default = "default_state_file")]
    pub state_file: std::path::PathBuf,
    /// How often at most the snapshot is rewritten (ms, 10..=60000); the
    /// journal carries what happened in between, so a restart loses
    /// nothing either way. Longer: less writing at scale, a longer
    /// journal to replay.
    #[serde(default = "default_state_interval_ms")]
    pub state_interval_ms: u64,
    /// With `presence_transport = "tls"`: whom to trust, and the
    /// monitor's own certificate for a server that asks for one.
    #[serde(default)]
    pub presence_tls: Option<MonitorTls>,
}

/// `[sip_monitor.presence_tls]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitorTls {
    /// PEM: the authority the presence server's certificate must chain to.
    pub ca: std::path::PathBuf,
    /// The name the server's certificate must carry (default: the
    /// address in `presence`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM: the monitor's certificate chain and key (mutual TLS).
    #[serde(default)]
    pub cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
}

fn default_state_interval_ms() -> u64 {
    1000
}

fn default_state_file() -> std::path::PathBuf {
    "/var/lib/edgeplane/sip-monitor.json".into()
}

text_enum! {
    /// The transport of the monitor's requests to the presence server.
    pub enum PresenceTransport {
        Udp = "udp",
        Tcp = "tcp",
        /// TCP with TLS (RFC 3261 §26), verified against
        /// `presence_tls.ca`.
        Tls = "tls",
    }
}

fn default_presence_transport() -> PresenceTransport {
    PresenceTransport::Udp
}

fn default_publish_expires() -> u32 {
    3600
}

fn default_max_call_secs() -> u32 {
    7200
}

text_enum! {
    /// The request a terminal's status travels in.
    pub enum Carrier {
        /// PUBLISH (RFC 3903).
        Publish = "publish",
        /// A REGISTER carrying the same PIDF body (claim 20).
        Register = "register",
    }
}

fn default_carrier() -> Carrier {
    Carrier::Publish
}

fn default_sip_ports() -> Vec<u16> {
    vec![5060]
}

fn default_talking_on() -> TalkingOn {
    TalkingOn::Ok200
}

fn default_terminated_on() -> TerminatedOn {
    TerminatedOn::Bye
}

fn default_publish_interval() -> u64 {
    100
}

impl SipMonitor {
    /// Checks of this section, keys relative to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interfaces.is_empty() {
            return Err(ConfigError::new(
                "interfaces",
                "name at least one interface",
            ));
        }
        if self.ports.is_empty() || self.ports.len() > 16 || self.ports.contains(&0) {
            return Err(ConfigError::new("ports", "1..16 ports, none 0"));
        }
        if self.domain.is_empty() {
            return Err(ConfigError::new("domain", "name the monitored domain"));
        }
        if !self.state_file.is_absolute() || self.state_file.file_name().is_none() {
            return Err(ConfigError::new(
                "state_file",
                "must be an absolute path to a file",
            ));
        }
        if !(10..=60_000).contains(&self.state_interval_ms) {
            return Err(ConfigError::new("state_interval_ms", "must be 10..=60000"));
        }
        match (&self.presence_tls, self.presence_transport) {
            (None, PresenceTransport::Tls) => {
                return Err(ConfigError::new(
                    "presence_tls.ca",
                    "required with presence_transport = \"tls\": the authority the presence server's certificate must chain to",
                ))
            }
            (Some(_), t) if t != PresenceTransport::Tls => {
                return Err(ConfigError::new(
                    "presence_tls",
                    "only with presence_transport = \"tls\"",
                ))
            }
            (Some(t), _) => {
                if t.cert.is_some() != t.key.is_some() {
                    return Err(ConfigError::new(
                        if t.cert.is_some() { "presence_tls.key" } else { "presence_tls.cert" },
                        "cert and key go together",
                    ));
                }
            }
            _ => {}
        }
        if !(2..=86_400).contains(&self.publish_expires_secs) {
            return Err(ConfigError::new(
                "publish_expires_secs",
                "2..86400 seconds (a server grants at most a day)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONITOR: &str =
        "interfaces = [\"eth0\"]\ndomain = \"example.com\"\npresence = \"10.6.0.2:5070\"\n";

    #[test]
    fn the_words_are_typed_at_load() {
        let m: SipMonitor = toml::from_str(MONITOR).unwrap();
        assert_eq!(
            (m.talking_on, m.terminated_on, m.carrier),
            (TalkingOn::Ok200, TerminatedOn::Bye, Carrier::Publish)
        );
        let text = format!(
            "{MONITOR}talking_on = \"ack\"\nterminated_on = \"bye_ok\"\ncarrier = \"register\"\n"
        );
        let m: SipMonitor = toml::from_str(&text).unwrap();
        assert_eq!(
            (m.talking_on, m.terminated_on, m.carrier),
            (TalkingOn::Ack, TerminatedOn::ByeOk, Carrier::Register)
        );
        let written = toml::to_string(&m).unwrap();
        assert!(
            written.contains("talking_on = \"ack\"")
                && written.contains("terminated_on = \"bye_ok\"")
                && written.contains("carrier = \"register\""),
            "{written}"
        );
        assert_eq!(toml::from_str::<SipMonitor>(&written).unwrap(), m);
        for (key, bad, words) in [
            ("talking_on", "180", "\"200\" or \"ack\""),
            ("terminated_on", "cancel", "\"bye\" or \"bye_ok\""),
            ("carrier", "notify", "\"publish\" or \"register\""),
            ("presence_transport", "sctp", "\"udp\", \"tcp\" or \"tls\""),
        ] {
            let e =
                toml::from_str::<SipMonitor>(&format!("{MONITOR}{key} = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.message(), format!("\"{bad}\" must be {words}"), "{key}");
        }
    }

    #[test]
    fn the_state_file_is_an_absolute_file_path() {
        let m: SipMonitor = toml::from_str(MONITOR).unwrap();
        assert_eq!(
            m.state_file,
            std::path::Path::new("/var/lib/edgeplane/sip-monitor.json")
        );
        assert!(m.validate().is_ok());
        for bad in ["state.json", "/"] {
            let m: SipMonitor =
                toml::from_str(&format!("{MONITOR}state_file = \"{bad}\"\n")).unwrap();
            assert_eq!(m.validate().unwrap_err().key, "state_file", "{bad}");
        }
    }

    #[test]
    fn tls_needs_its_authority_and_nothing_else_takes_one() {
        let tls = |extra: &str| -> SipMonitor {
            toml::from_str(&format!("{MONITOR}presence_transport = \"tls\"\n{extra}")).unwrap()
        };
        assert_eq!(tls("").validate().unwrap_err().key, "presence_tls.ca");
        assert!(tls("[presence_tls]\nca = \"/etc/ca.crt\"\n")
            .validate()
            .is_ok());
        let half = tls("[presence_tls]\nca = \"/etc/ca.crt\"\ncert = \"/etc/m.crt\"\n");
        assert_eq!(half.validate().unwrap_err().key, "presence_tls.key");
        let udp: SipMonitor =
            toml::from_str(&format!("{MONITOR}[presence_tls]\nca = \"/etc/ca.crt\"\n")).unwrap();
        assert_eq!(udp.validate().unwrap_err().key, "presence_tls");
    }

    #[test]
    fn the_words_round_trip() {
        for w in ["200", "ack"] {
            assert_eq!(w.parse::<TalkingOn>().unwrap().to_string(), w);
        }
        for w in ["bye", "bye_ok"] {
            assert_eq!(w.parse::<TerminatedOn>().unwrap().to_string(), w);
        }
        for w in ["publish", "register"] {
            assert_eq!(w.parse::<Carrier>().unwrap().to_string(), w);
        }
        assert!(
            "ACK".parse::<TalkingOn>().is_err(),
            "the words are exact, as before"
        );
    }
}
