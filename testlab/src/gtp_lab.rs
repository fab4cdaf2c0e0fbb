//! GTP-U through both tiers (seed 002): the lb topology with a server
//! network, gateways that are GTP-U user planes with a PFCP endpoint, a
//! control plane (SMF) namespace on the core network, and the terminal
//! namespace acting as the access node. The SMF and the access node are
//! scapy (`scripts/gtp_peer.py`), driven one JSON line at a time.
//!
//! ```text
//!  {p}t1 (access node 10.0.0.2) ── {p}l1 lb ── core br0 ── {p}g<i> gateway ── srv br1 ── servers
//!                                                  └── {p}smf (SMF 10.1.0.100)
//! ```

use std::{
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::topo::Topology;

/// The SMF's address on the core network.
pub const SMF: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 100);
/// The access node: the terminal namespace's address.
pub const ACCESS_NODE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The N3 address every gateway holds (the LBs' GTP-U address).
pub const N3: Ipv4Addr = edgeplane::packets::GTPU_ENDPOINT;
/// The UDP service of `Topology::gateway_config` (dns group, echo servers).
pub const UDP_SERVICE: (Ipv4Addr, u16) = (Ipv4Addr::new(198, 51, 100, 20), 53);

/// The scapy peer's script.
pub fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gtp_peer.py")
}

/// One scapy peer (`smf` or `an`) in a namespace, as a coprocess.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    pub fn start(ns: &str, role: &str, local: impl Into<IpAddr>) -> anyhow::Result<Self> {
        let local: IpAddr = local.into();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "/usr/bin/python3"])
            .arg(script())
            .args([role, "--local", &local.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the scapy peer (is python3-scapy installed? cargo xtask setup)")?;
        let stdin = child.stdin.take().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut p = Self {
            child,
            stdin,
            lines,
        };
        let ready = p.read(Duration::from_secs(30))?;
        if ready["ready"] != true {
            bail!("scapy peer {role}: {ready}");
        }
        Ok(p)
    }

    fn read(&mut self, wait: Duration) -> anyhow::Result<Value> {
        let line = self
            .lines
            .recv_timeout(wait)
            .map_err(|_| anyhow::anyhow!("scapy peer did not answer within {wait:?}"))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// One command; its answer (an `error` key is an error).
    pub fn call(&mut self, cmd: Value) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let v = self.read(Duration::from_secs(60))?;
        if let Some(e) = v.get("error") {
            bail!("scapy peer: {e} (command {cmd})");
        }
        Ok(v)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[gateway.gtpu]` and `[gateway.pfcp]` for gateway `gi`: the shared N3
/// address, TEID prefix `gi + 1`, the downlink toward the access node via
/// the LB, PFCP on the gateway's core address.
pub fn gtp_sections(gi: usize, max_sessions: Option<u32>) -> String {
    let max = max_sessions
        .map(|m| format!("max_sessions = {m}\n"))
        .unwrap_or_default();
    format!(
        "[gateway.gtpu]\naddress = \"{N3}\"\nteid_prefix = {p}\nvia = \"core\"\nnext_hop = \"10.1.0.1\"\n\n[gateway.pfcp]\naddress = \"10.1.0.{a}\"\n{max}allow = [\"10.1.0.0/24\"]\n",
        p = gi + 1,
        a = 11 + gi
    )
}

/// The IPv6 N3 address every gateway holds (GTP-U over IPv6 transport,
/// through the LB as over IPv4).
pub const N3_6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
/// The LB's address on the core link's IPv6 prefix: the gateways' next
/// hop toward IPv6 access nodes.
pub const LB_CORE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 1);

/// `gtp_sections` with GTP-U over IPv6 as well: [`N3_6`], the downlink
/// toward IPv6 access nodes via the LB's core address.
pub fn gtp_sections6(gi: usize, max_sessions: Option<u32>) -> String {
    gtp_sections(gi, max_sessions).replacen(
        "[gateway.gtpu]\n",
        &format!("[gateway.gtpu]\naddress6 = \"{N3_6}\"\nnext_hop6 = \"{LB_CORE6}\"\n"),
        1,
    )
}

/// IPv6 on the core link (call after `Topology::add_ipv6`): LB 1 at
/// [`LB_CORE6`], each gateway at 2001:db8:10::(11 + gi) with [`N3_6`] on
/// its loopback and a route back to the terminal side via the LB (its
/// GTP-U signalling socket answers from there).
pub fn add_ipv6_n3(t: &Topology) -> anyhow::Result<()> {
    let l = t.ns("l1");
    t.exec(
        &l,
        &[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{LB_CORE6}/64"),
            "dev",
            "core",
            "nodad",
        ],
    )?;
    let mut all = vec![l];
    for gi in 0..t.gateways {
        let g = t.ns(&format!("g{gi}"));
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x11 + gi as u16);
        t.exec(
            &g,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{a}/64"),
                "dev",
                "core",
                "nodad",
            ],
        )?;
        t.exec(
            &g,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{N3_6}/128"),
                "dev",
                "lo",
            ],
        )?;
        t.exec(
            &g,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "2001:db8:1::/64",
                "via",
                &LB_CORE6.to_string(),
            ],
        )?;
        all.push(g);
    }
    for ns in &all {
        crate::links::wait_links_ready(ns, std::time::Duration::from_secs(5))?;
    }
    Ok(())
}

/// The PFCP address of gateway `gi`.
pub fn pfcp_addr(gi: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 11 + gi as u8)
}

/// An LB config whose gateways announce their TEID prefixes.
pub fn lb_config(t: &Topology, lb: usize, gateways: &[usize], seed: u32) -> String {
    let mut s = t.lb_config(lb, gateways, seed);
    for &g in gateways {
        let name = format!("name = \"{}\"\n", crate::topo::gateway_name(g));
        s = s.replace(&name, &format!("{name}teid_prefix = {}\n", g + 1));
    }
    s
}

/// The SMF namespace on the core bridge, at [`SMF`].
pub fn add_smf(t: &mut Topology) -> anyhow::Result<String> {
    t.add_core_member("smf", &format!("{SMF}/24"))
}

/// Establish a session at gateway `gi` through scapy: UE `ue`, downlink
/// TEID `dl_teid` to the access node, optional QFI and volume threshold.
/// Returns (UP SEID, uplink TEID).
pub fn establish(
    smf: &mut Peer,
    gi: usize,
    cp_seid: u64,
    ue: Ipv4Addr,
    dl_teid: Option<u32>,
    qfi: Option<u8>,
    threshold: Option<u64>,
) -> anyhow::Result<(u64, u32)> {
    let r = smf.call(json!({
        "cmd": "establish", "gw": pfcp_addr(gi).to_string(), "cp_seid": cp_seid, "ue": ue.to_string(),
        "dl_teid": dl_teid, "an": ACCESS_NODE.to_string(), "qfi": qfi, "threshold": threshold,
    }))?;
    if r["cause"] != 1 {
        bail!("establishment at gateway {gi} refused: {r}");
    }
    let seid = r["up_seid"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no UP F-SEID: {r}"))?;
    let teid = r["teid"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no created F-TEID: {r}"))? as u32;
    Ok((seid, teid))
}

/// `count` G-PDUs of one UE flow to the UDP service, and the downlink
/// frames that came back.
pub fn exchange(
    an: &mut Peer,
    teid: u32,
    ue: Ipv4Addr,
    sport: u16,
    qfi: Option<u8>,
    count: u32,
) -> anyhow::Result<(Value, Vec<Value>)> {
    let sent = an
        .call(json!({"cmd": "send", "n3": N3.to_string(), "teid": teid, "ue": ue.to_string(), "dst": UDP_SERVICE.0.to_string(),
                     "sport": sport, "dport": UDP_SERVICE.1, "qfi": qfi, "count": count, "payload": "q", "repeat": 40, "pps": 200}))?;
    let got = an.call(json!({"cmd": "recv", "count": count, "timeout": 4.0}))?;
    let got = got["received"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("access node: {got}"))?;
    Ok((sent, got))
}
