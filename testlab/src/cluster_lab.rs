//! The lb topology (`topo`) with an etcd cluster on its core bridge: LB
//! daemons whose gateways come from etcd, packet gateways that register
//! themselves, and the `edgeplane cluster` CLI run beside etcd.
//!
//! ```text
//!  {p}l1..n  LB daemons ──┐                ┌── {p}g0..m  gateways (register)
//!                         ├─ {p}c br0 ─────┤
//!  {p}e  etcd members 10.1.0.201..        └── {p}sv servers
//! ```

use std::{
    net::Ipv4Addr,
    process::{Command, Output},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use control::{
    api::Request,
    lb::maglev::{Backend, MaglevTable, DEFAULT_TABLE_SIZE},
};

use crate::{etcd_lab::EtcdLab, topo::Topology};

pub const SEED: u32 = 7;

pub struct ClusterLab {
    pub topo: Topology,
    pub etcd: EtcdLab,
    pub lease_ttl: u64,
}

impl ClusterLab {
    /// `lbs` LBs, `gateways` gateways (with the server network when there
    /// are any), `members` etcd members; nothing started but etcd.
    pub fn build(
        prefix: &str,
        lbs: usize,
        gateways: usize,
        members: usize,
        lease_ttl: u64,
    ) -> anyhow::Result<Self> {
        let exe = crate::edgeplane_bin()?;
        let mut topo = Topology::build(prefix, lbs, gateways, &exe)?;
        if gateways > 0 {
            topo.add_server_network(4)?;
        }
        let addrs: Vec<Ipv4Addr> = (0..members)
            .map(|i| Ipv4Addr::new(10, 1, 0, 201 + i as u8))
            .collect();
        let ns = topo.add_core_member("e", &format!("{}/24", addrs[0]))?;
        for a in &addrs[1..] {
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{a}/24"),
                "dev",
                "core",
            ])?;
        }
        let etcd = EtcdLab::start(&ns, &addrs, prefix)?;
        Ok(Self {
            topo,
            etcd,
            lease_ttl,
        })
    }

    /// LB `lb` (1-based): no `[[lb.gateway]]`, the set from etcd.
    pub fn lb_config(&self, lb: usize) -> String {
        format!(
            "{}\n[[lb]]\ninterface = \"ingress\"\nseed = {SEED}\ngateway_via = \"core\"\n\n{}",
            self.topo.node_section(&format!("l{lb}")),
            self.etcd.section(self.lease_ttl)
        )
    }

    /// Gateway `g<gi>`, registering itself as `gw<gi+1>`.
    pub fn gateway_config(&self, gi: usize, weight: u32) -> String {
        self.gateway_config_with(gi, weight, "")
    }

    /// `gateway_config` with `extra` in its `[[gateway]]` section (e.g.
    /// GTP-U and PFCP).
    pub fn gateway_config_with(&self, gi: usize, weight: u32, extra: &str) -> String {
        format!(
            "{}\n\n{}\n[cluster.gateway]\nname = \"{}\"\naddress = \"10.1.0.{}\"\ninterface = \"core\"\nweight = {weight}\n",
            self.topo.gateway_config(gi, "20000-29999", extra),
            self.etcd.section(self.lease_ttl),
            crate::topo::gateway_name(gi),
            11 + gi
        )
    }

    pub fn start_lb(&mut self, lb: usize) -> anyhow::Result<()> {
        let c = self.lb_config(lb);
        self.topo.start_lb(lb, &c)
    }

    pub fn start_gateway(&mut self, gi: usize, weight: u32) -> anyhow::Result<()> {
        let c = self.gateway_config(gi, weight);
        self.topo.start_daemon(&format!("g{gi}"), &c, &[])
    }

    /// `edgeplane cluster --endpoints ... ARGS` beside etcd, to run.
    pub fn cli_command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let exe = crate::edgeplane_bin()?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.topo.ns("e")])
            .arg(exe)
            .args(["cluster", "--endpoints", &self.etcd.endpoints().join(",")])
            .args(args);
        Ok(cmd)
    }

    /// `edgeplane cluster --endpoints ... ARGS` beside etcd.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.cli_command(args)?.output()?)
    }

    /// `cli` that must succeed; its stdout as JSON.
    pub fn cli_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a)?;
        if !out.status.success() {
            bail!(
                "edgeplane cluster {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("cluster --json output")
    }

    /// The live table digest of every LB daemon (read from its BPF maps).
    pub fn live_digests(&self) -> anyhow::Result<Vec<String>> {
        (1..=self.topo.lbs)
            .map(|lb| {
                let v = self.topo.call(lb, Request::LbDigest)?;
                v[0]["digest"]
                    .as_str()
                    .map(str::to_string)
                    .context("no digest in the answer")
            })
            .collect()
    }

    /// Wait until every LB's live table is the one `set` (name, weight;
    /// weight 0 for a draining gateway) gives; how long it took.
    pub fn wait_tables(&self, set: &[(&str, u32)], within: Duration) -> anyhow::Result<Duration> {
        let want = expected_digest(set)?;
        let t0 = Instant::now();
        let mut last = Vec::new();
        while t0.elapsed() < within {
            last = self.live_digests()?;
            if last.iter().all(|d| *d == want) {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("LB tables {last:?} did not all become {want} for {set:?} within {within:?}")
    }
}

/// The digest an LB's table has for `set` (sorted by name, as etcd's
/// records are read).
pub fn expected_digest(set: &[(&str, u32)]) -> anyhow::Result<String> {
    let mut backends: Vec<Backend> = set
        .iter()
        .map(|(n, w)| Backend {
            name: n.to_string(),
            weight: *w,
        })
        .collect();
    backends.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(format!(
        "{:016x}",
        MaglevTable::build(&backends, DEFAULT_TABLE_SIZE, SEED)?.digest()
    ))
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
