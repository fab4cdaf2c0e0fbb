//! Test support for edgeplane, kept out of the product: network-namespace
//! topologies and the labs of every role, packet fixtures, the demo and its
//! workload (the counter service with its TCP repair), and the benchmark
//! drivers. Tests, benches and `cargo xtask` use it; the `edgeplane-lab`
//! binary runs the demo, the benchmarks and the workload.

use std::path::{Path, PathBuf};

pub mod bench;
pub mod cluster_lab;
pub mod counter;
pub mod demo;
mod demo_presence;
pub mod etcd_lab;
pub mod fixtures;
pub mod fixtures_gtpu6;
pub mod gtp_lab;
pub mod links;
pub mod malformed;
pub mod migration_lab;
pub mod migration_terminal;
pub mod pg_lab;
pub mod sip_lab;
pub mod tcp_repair;
pub mod topo;
pub mod topo_ipv6;
pub mod vrrp_lab;

/// Append `setpriv` to `c` (whose next argument is then the program):
/// run as nobody (uid and gid 65534, no groups) with the capabilities
/// `caps` only, as setpriv names them ("+bpf,+net_admin"; "" for none),
/// inheritable, ambient and bounding, the way systemd's
/// `AmbientCapabilities=` gives them.
pub fn setpriv_nobody(c: &mut std::process::Command, caps: &str) {
    c.args([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]);
    if caps.is_empty() {
        c.args(["--inh-caps=-all", "--bounding-set=-all"]);
    } else {
        c.arg(format!("--inh-caps={caps}"))
            .arg(format!("--ambient-caps={caps}"))
            .arg(format!("--bounding-set=-all,{caps}"));
    }
}

/// The lab binary beside the `edgeplane` binary `exe` (cargo puts every
/// binary of the workspace in one directory).
pub fn lab_bin(exe: &Path) -> PathBuf {
    exe.with_file_name("edgeplane-lab")
}

/// The `edgeplane` binary: `EDGEPLANE_BIN`, else the one beside this
/// executable (or beside its `deps/` directory, for a test binary).
pub fn edgeplane_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEPLANE_BIN") {
        return Ok(p.into());
    }
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", me.display()))?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join("edgeplane");
        if p.is_file() {
            return Ok(p);
        }
    }
    anyhow::bail!(
        "no edgeplane binary beside {} (build it: cargo build --bins), or set EDGEPLANE_BIN",
        me.display()
    )
}
