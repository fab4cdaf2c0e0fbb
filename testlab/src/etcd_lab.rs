//! A private etcd cluster for tests and benchmarks (Debian's
//! `etcd-server`): `n` members in one network namespace, one address each
//! (client port 2379, peer port 2380), their data directories under the
//! lab's own temporary directory. Members can be killed and started again
//! with their data; everything is killed and removed on drop.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

pub const ETCD: &str = "/usr/bin/etcd";

pub struct EtcdLab {
    netns: String,
    addrs: Vec<Ipv4Addr>,
    dir: PathBuf,
    token: String,
    members: Vec<Option<Child>>,
    /// Client URLs over TLS with client certificates (`start_tls`).
    tls: bool,
    /// etcdctl's user once authentication is on.
    auth: Option<String>,
}

impl EtcdLab {
    /// Start one member per address in namespace `netns` (which must have
    /// the addresses) and wait until the cluster answers.
    pub fn start(netns: &str, addrs: &[Ipv4Addr], tag: &str) -> anyhow::Result<Self> {
        Self::start_with(netns, addrs, tag, false)
    }

    /// `start` with https client URLs that require a client certificate:
    /// a private CA, a server certificate for the members' addresses and
    /// a client certificate, made with openssl in the lab's directory.
    pub fn start_tls(netns: &str, addrs: &[Ipv4Addr], tag: &str) -> anyhow::Result<Self> {
        Self::start_with(netns, addrs, tag, true)
    }

    fn start_with(netns: &str, addrs: &[Ipv4Addr], tag: &str, tls: bool) -> anyhow::Result<Self> {
        if !std::path::Path::new(ETCD).exists() {
            bail!("etcd is not installed (cargo xtask setup installs etcd-server)");
        }
        let dir = std::env::temp_dir().join(format!("edgeplane-etcd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut lab = Self {
            netns: netns.into(),
            addrs: addrs.to_vec(),
            dir,
            token: format!("ep-{tag}-{}", std::process::id()),
            members: (0..addrs.len()).map(|_| None).collect(),
            tls,
            auth: None,
        };
        if tls {
            lab.make_certs()?;
        }
        for i in 0..addrs.len() {
            lab.spawn(i)?;
        }
        lab.wait_healthy(Duration::from_secs(30))?;
        Ok(lab)
    }

    fn name(i: usize) -> String {
        format!("e{i}")
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let initial: Vec<String> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(j, a)| format!("{}=http://{a}:2380", Self::name(j)))
            .collect();
        let a = self.addrs[i];
        let log = std::fs::File::create(self.dir.join(format!("{}.log", Self::name(i))))?;
        let scheme = self.scheme();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, ETCD]);
        if self.tls {
            cmd.arg("--cert-file")
                .arg(self.dir.join("server.pem"))
                .arg("--key-file")
                .arg(self.dir.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(self.dir.join("ca.pem"))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", &Self::name(i)])
            .arg("--data-dir")
            .arg(self.dir.join(Self::name(i)))
            .args(["--listen-client-urls", &format!("{scheme}://{a}:2379")])
            .args(["--advertise-client-urls", &format!("{scheme}://{a}:2379")])
            .args(["--listen-peer-urls", &format!("http://{a}:2380")])
            .args(["--initial-advertise-peer-urls", &format!("http://{a}:2380")])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            // Quick elections: a killed leader is replaced in about a
            // second, as a test needs.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd")?;
        self.members[i] = Some(child);
        Ok(())
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `http://A:2379` (or https) of every member.
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = self.scheme();
        self.addrs
            .iter()
            .map(|a| format!("{scheme}://{a}:2379"))
            .collect()
    }

    /// The CA, and the client certificate and key, for `[cluster.tls]`.
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.dir.join("ca.pem"),
            self.dir.join("client.pem"),
            self.dir.join("client.key"),
        )
    }

    fn make_certs(&self) -> anyhow::Result<()> {
        let d = &self.dir;
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("openssl").current_dir(d).args(args).output()?;
            if !out.status.success() {
                bail!(
                    "openssl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                name,
            ])
        };
        key("ca.key")?;
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=edgeplane test CA",
        ])?;
        let sans: Vec<String> = self.addrs.iter().map(|a| format!("IP:{a}")).collect();
        std::fs::write(
            d.join("server.ext"),
            format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth,clientAuth\n",
                sans.join(",")
            ),
        )?;
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
        for who in ["server", "client"] {
            key(&format!("{who}.key"))?;
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN=edgeplane test {who}"),
            ])?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
            ])?;
        }
        Ok(())
    }

    /// etcdctl in the lab's namespace, with its TLS files and user.
    pub fn etcdctl(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, "etcdctl"])
            .args([
                "--endpoints",
                &self.endpoints().join(","),
                "--command-timeout=2s",
            ])
            .env("ETCDCTL_API", "3");
        if self.tls {
            let (ca, cert, key) = self.tls_files();
            cmd.arg("--cacert")
                .arg(ca)
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
        }
        if let Some(u) = &self.auth {
            cmd.args(["--user", u]);
        }
        Ok(cmd.args(args).output()?)
    }

    /// Turn on authentication with `user` (given the root role) and
    /// `password` (also the `root` user's).
    pub fn enable_auth(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        // etcd enables authentication only once a `root` user exists.
        for args in [
            vec!["user", "add", &format!("root:{password}")],
            vec!["user", "add", &format!("{user}:{password}")],
            vec!["user", "grant-role", user, "root"],
            vec!["auth", "enable"],
        ] {
            let a: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
            let out = self.etcdctl(&a)?;
            if !out.status.success() {
                bail!(
                    "etcdctl {}: {}",
                    a.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        self.auth = Some(format!("{user}:{password}"));
        Ok(())
    }

    /// The `[cluster]` section for a daemon of this lab.
    pub fn section(&self, lease_ttl: u64) -> String {
        let eps: Vec<String> = self
            .endpoints()
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        format!(
            "[cluster]\nendpoints = [{}]\nprefix = \"/edgeplane\"\nlease_ttl = {lease_ttl}\ntimeout_ms = 1000\n",
            eps.join(", ")
        )
    }

    /// The index of the member that is leader now, as the members say
    /// (`etcdctl endpoint status`).
    pub fn leader(&self) -> anyhow::Result<usize> {
        let out = self.etcdctl(&["endpoint", "status", "-w", "json"])?;
        if !out.status.success() {
            bail!(
                "etcdctl endpoint status: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let st: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)?;
        let eps = self.endpoints();
        for e in &st {
            let s = &e["Status"];
            if s["leader"].as_u64().is_some() && s["leader"] == s["header"]["member_id"] {
                if let Some(i) = eps.iter().position(|p| e["Endpoint"] == p.as_str()) {
                    return Ok(i);
                }
            }
        }
        bail!("no member says it is leader: {st:?}")
    }

    /// SIGKILL member `i` (its data stays).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Start member `i` again on its data.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    pub fn restart_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.members.len() {
            self.restart(i)?;
        }
        self.wait_healthy(Duration::from_secs(30))
    }

    /// Until every running member's client port accepts and a write
    /// through `etcdctl` succeeds (a leader is elected).
    pub fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            for (i, m) in self.members.iter_mut().enumerate() {
                if let Some(st) = m.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    bail!("etcd member {i} exited with {st}: {}", self.log(i));
                }
            }
            let up = self.addrs.iter().enumerate().all(|(i, a)| {
                self.members[i].is_none()
                    || crate::topo::in_netns(&format!("/run/netns/{}", self.netns), || {
                        Ok(TcpStream::connect_timeout(
                            &SocketAddr::from((*a, 2379)),
                            Duration::from_millis(200),
                        )
                        .is_ok())
                    })
                    .unwrap_or(false)
            });
            if up {
                let out = self.etcdctl(&["put", "/edgeplane-lab/health", "ok"])?;
                if out.status.success() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "etcd did not become healthy within {within:?}: {}",
            self.log(0)
        )
    }

    pub fn log(&self, i: usize) -> String {
        let s = std::fs::read_to_string(self.dir.join(format!("{}.log", Self::name(i))))
            .unwrap_or_default();
        let tail: Vec<&str> = s.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for EtcdLab {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
