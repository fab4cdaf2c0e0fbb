//! Each role run as an unprivileged user (nobody) with only the
//! capabilities it needs (src/caps.rs says which and why), the way
//! systemd's `AmbientCapabilities=` or `setpriv` gives them: it starts,
//! attaches what it attaches, answers its API (a 0600 socket nobody owns),
//! and keeps its pins in a 0700 directory nobody owns. Without any one of
//! those capabilities it refuses to start, naming the capability, the role
//! and why. Each role runs in a network namespace of its own, made here
//! and removed after (its interfaces with it); the daemon is started in it
//! with nsenter, since `--netns` itself needs CAP_SYS_ADMIN.

mod common;

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const NOBODY: u32 = 65534;

fn exe() -> PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

/// A namespace with a veth pair (va, vb; va has 10.3.0.1/24), a
/// directory for the config, socket and state, and a pin directory, both
/// owned by nobody; all removed on drop.
struct Place {
    ns: String,
    dir: PathBuf,
    pins: PathBuf,
}

impl Place {
    fn new(tag: &str) -> Self {
        let ns = format!("eplp{}{tag}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let s = Command::new("ip").args(args).status().unwrap();
            assert!(s.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &ns]);
        let p = Self {
            dir: std::env::temp_dir().join(format!("{ns}-dir")),
            pins: PathBuf::from(format!("/sys/fs/bpf/{ns}")),
            ns,
        };
        ip(&[
            "-n", &p.ns, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        for l in ["lo", "va", "vb"] {
            ip(&["-n", &p.ns, "link", "set", l, "up"]);
        }
        ip(&["-n", &p.ns, "addr", "add", "10.3.0.1/24", "dev", "va"]);
        for d in [&p.dir, &p.pins] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).unwrap();
            std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        std::fs::set_permissions(&p.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn config(&self, role: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{role}.toml"));
        std::fs::write(
            &path,
            format!(
                "[node]\nname = \"lp\"\nsocket = \"{}\"\npin_root = \"{}\"\n\n{body}",
                self.socket().display(),
                self.pins.join(role).display()
            ),
        )
        .unwrap();
        path
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("api.sock")
    }

    /// `edgeplane ARGS` in the namespace as nobody with `caps` (e.g.
    /// "+bpf,+net_admin") and only those.
    fn as_nobody(&self, caps: &str, args: &[&std::ffi::OsStr]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns));
        testlab::setpriv_nobody(&mut c, caps);
        c.arg(exe()).args(args);
        c
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // The namespace takes its veths, and with them the programs.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.pins);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the roles need (as setpriv names them), and a config of each.
fn roles(port: u16) -> Vec<(&'static str, &'static str, String)> {
    let xdp = "+bpf,+perfmon,+net_admin";
    vec![
        ("lb", xdp, "[[lb]]\ninterface = \"va\"\n[[lb.gateway]]\nname = \"gw1\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\nvia = \"vb\"\n".into()),
        ("gateway", xdp, "[[gateway]]\ninterfaces = [\"va\", \"vb\"]\naddress = \"10.2.0.1\"\nports = \"20000-20999\"\n[[gateway.group]]\nname = \"web\"\nservices = [\"198.51.100.10:80/tcp\"]\n[[gateway.group.server]]\nname = \"web-a\"\naddress = \"10.2.0.11\"\nport = 8080\nmac = \"02:00:00:00:02:0b\"\n".into()),
        ("router", "+net_admin,+net_raw", "[[router]]\ninterface = \"va\"\nvrid = 51\npriority = 150\nadvert_interval_ms = 100\nvirtual_addresses = [\"10.3.0.100/24\"]\n".into()),
        ("router", "+bpf,+perfmon,+net_admin,+net_raw", "[[router]]\ninterface = \"va\"\nvrid = 52\npriority = 150\nadvert_interval_ms = 100\nvirtual_addresses = [\"10.3.0.101/24\"]\n[router.load_sharing]\nkey = \"a shared secret\"\npeers = [\"10.3.0.2\"]\n".into()),
        ("sip-monitor", xdp, format!("[sip_monitor]\ninterfaces = [\"va\"]\ndomain = \"example.com\"\npresence = \"127.0.0.1:{port}\"\nstate_file = \"STATE/mon.json\"\n")),
        ("presence", "", format!("[presence]\nlisten = \"127.0.0.1:{port}\"\ndatabase = \"STATE/presence.db\"\nallow = [\"127.0.0.0/8\"]\n")),
        ("migration controller", "+bpf,+perfmon,+net_admin,+net_raw,+ipc_lock", "[migration]\nkey = \"a long random secret, the same everywhere\"\n[migration.controller]\nlisten = \"127.0.0.1:7700\"\ninterface = \"va\"\n[[migration.controller.network]]\nid = 1\nname = \"net1\"\nvia = \"vb\"\nnext_hop_mac = \"02:00:00:00:01:0a\"\n[[migration.controller.service]]\naddress = \"10.99.0.80\"\nnetwork = 1\n".into()),
        ("migration agent", "+net_admin", "[migration]\nkey = \"a long random secret, the same everywhere\"\n[migration.agent]\nlisten = \"127.0.0.1:7600\"\nstate_file = \"STATE/agent.json\"\n[[migration.agent.process]]\nname = \"counter\"\ncontrol = \"STATE/counter.ctl\"\n".into()),
        ("migration coordinator", "", "[migration]\nkey = \"a long random secret, the same everywhere\"\n[migration.coordinator]\ncontroller = \"127.0.0.1:7700\"\ndatabase = \"STATE/migration.db\"\n[[migration.coordinator.server]]\nname = \"s1\"\naddress = \"10.8.1.10\"\nnetwork = \"net1\"\nagent = \"10.8.1.10:7600\"\n[[migration.coordinator.network]]\nname = \"net1\"\nid = 1\n[[migration.coordinator.process]]\nname = \"counter\"\nserver = \"s1\"\nservice = \"10.99.0.80\"\n".into()),
    ]
}

/// setpriv's name of a capability to CAP_ form.
fn cap_name(c: &str) -> String {
    format!("CAP_{}", c.trim_start_matches('+').to_uppercase())
}

#[test]
fn each_role_runs_as_nobody_with_only_its_capabilities() {
    if !common::kernel_available("least_privilege") {
        return;
    }
    let mut figures = Vec::new();
    for (i, (role, caps, body)) in roles(45070).into_iter().enumerate() {
        let place = Place::new(&i.to_string());
        let body = body.replace("STATE", &place.dir.display().to_string());
        let config = place.config(&role.replace(' ', "-"), &body);
        let run = |caps: &str| {
            place
                .as_nobody(
                    caps,
                    &["run".as_ref(), "--config".as_ref(), config.as_os_str()],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        // With its capabilities: up, answering, its files nobody's.
        let mut d = run(caps);
        let t0 = Instant::now();
        let status = loop {
            let o = place
                .as_nobody(
                    "",
                    &[
                        "--socket".as_ref(),
                        place.socket().as_os_str(),
                        "status".as_ref(),
                        "--json".as_ref(),
                    ],
                )
                .output()
                .unwrap();
            if o.status.success() {
                break String::from_utf8_lossy(&o.stdout).into_owned();
            }
            if let Some(s) = d.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read as _;
                d.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("{role} as nobody with {caps}: exited {s}: {err}");
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{role}: no API");
            std::thread::sleep(Duration::from_millis(50));
        };
        let up = t0.elapsed();
        let key = match role {
            "sip-monitor" => "sip_monitor",
            "migration controller" | "migration agent" | "migration coordinator" => "migration",
            r => r,
        };
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert!(
            !v[key].is_null() && v[key] != serde_json::json!([]),
            "{role}: {status}"
        );
        let sock = std::fs::metadata(place.socket()).unwrap();
        assert_eq!(
            (sock.uid(), sock.mode() & 0o777),
            (NOBODY, 0o600),
            "{role}: the API socket"
        );
        if caps.contains("+bpf") {
            let pins = place.pins.join(role.replace(' ', "-"));
            let m = std::fs::metadata(&pins).unwrap_or_else(|e| {
                panic!(
                    "{role}: {}: {e}; the pin directory has {:?}",
                    pins.display(),
                    std::fs::read_dir(&place.pins).map(|d| d
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name())
                        .collect::<Vec<_>>())
                )
            });
            assert_eq!(
                (m.uid(), m.mode() & 0o777),
                (NOBODY, 0o700),
                "{role}: {}",
                pins.display()
            );
        }
        unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
        let s = d.wait().unwrap();
        assert!(s.success(), "{role}: stopped with {s}");
        // Without each one: refused before anything starts, naming it.
        let mut refused = Vec::new();
        for drop in caps.split(',').filter(|c| !c.is_empty()) {
            let fewer: Vec<&str> = caps.split(',').filter(|c| *c != drop).collect();
            let o = place
                .as_nobody(
                    &fewer.join(","),
                    &["run".as_ref(), "--config".as_ref(), config.as_os_str()],
                )
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{role} without {drop} started");
            let want = format!("missing capability: {} ({role} ", cap_name(drop));
            assert!(err.contains(&want), "{role} without {drop}: {err}");
            refused.push(cap_name(drop));
        }
        assert!(!place.socket().exists() || std::fs::remove_file(place.socket()).is_ok());
        figures.push(format!(
            "{role}: up as nobody in {} ms with [{}]; without each refused, naming it ({})",
            up.as_millis(),
            if caps.is_empty() {
                "none".to_string()
            } else {
                caps.split(',').map(cap_name).collect::<Vec<_>>().join(", ")
            },
            if refused.is_empty() {
                "-".to_string()
            } else {
                refused.join(", ")
            }
        ));
    }
    for f in figures {
        println!("{f}");
    }
}

/// `--netns` needs CAP_SYS_ADMIN (setns): without it, a clear error that
/// says how to start it instead.
#[test]
fn netns_without_cap_sys_admin_says_how_to_start_instead() {
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(exe())
        .args(["run", "--netns", "nosuch", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--netns nosuch needs CAP_SYS_ADMIN") && err.contains("nsenter --net="),
        "{err}"
    );
}
