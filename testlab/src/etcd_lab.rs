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
}

impl EtcdLab {
    /// Start one member per address in namespace `netns` (which must have
    /// the addresses) and wait until the cluster answers.
    pub fn start(netns: &str, addrs: &[Ipv4Addr], tag: &str) -> anyhow::Result<Self> {
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
        };
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
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, ETCD])
            .args(["--name", &Self::name(i)])
            .arg("--data-dir")
            .arg(self.dir.join(Self::name(i)))
            .args(["--listen-client-urls", &format!("http://{a}:2379")])
            .args(["--advertise-client-urls", &format!("http://{a}:2379")])
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

    /// `http://A:2379` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.addrs.iter().map(|a| format!("http://{a}:2379")).collect()
    }

    /// The `[cluster]` section for a daemon of this lab.
    pub fn section(&self, lease_ttl: u64) -> String {
        let eps: Vec<String> = self.endpoints().iter().map(|e| format!("\"{e}\"")).collect();
        format!(
            "[cluster]\nendpoints = [{}]\nprefix = \"/edgeplane\"\nlease_ttl = {lease_ttl}\ntimeout_ms = 1000\n",
            eps.join(", ")
        )
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
        let eps = self.endpoints().join(",");
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
                let out = Command::new("ip")
                    .args(["netns", "exec", &self.netns, "etcdctl"])
                    .args(["--endpoints", &eps, "--command-timeout=1s"])
                    .args(["put", "/edgeplane-lab/health", "ok"])
                    .env("ETCDCTL_API", "3")
                    .output()?;
                if out.status.success() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("etcd did not become healthy within {within:?}: {}", self.log(0))
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
