//! `edgeplane bench gateway-veth`: forwarding rate of the XDP gateway
//! against the same translation done by nftables (DNAT + SNAT with
//! conntrack), on the same veth topology, same generator, same CPU
//! placement, alternating in one run.
//!
//! ```text
//!  {p}gen gen0 ──── in0 {p}dut out0 ──── snk0 {p}snk
//!  live-frames        gateway XDP         sink XDP: count, drop
//!  generator, CPU 0   or nftables,        (same in both cases)
//!                     NAPI thread CPU 1
//! ```

use super::median;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VethRow {
    pub case: String,
    pub xdp_pps: f64,
    pub nftables_pps: f64,
    pub ratio: f64,
    pub generator_pps: f64,
    pub repetitions: usize,
    /// The same generator sending G-PDUs (8-byte GTP-U header, one
    /// tunnel set up over PFCP, the same inner datagram) through the same
    /// gateway as a GTP-U user plane: decapsulated and NATed to the sink.
    pub gtpu_uplink_pps: f64,
    pub gtpu_generator_pps: f64,
    /// GTP-U uplink pps over the plain-IP gateway's, same run.
    pub gtpu_vs_plain: f64,
    pub gtpu_vs_nftables: f64,
    /// `xdp-live-frames` (BPF_PROG_RUN), or `af-packet` where the kernel
    /// refuses live frames (`packet_gen`): it offers fewer packets, so
    /// a path faster than it shows the generator's rate.
    #[serde(default)]
    pub generator: String,
}

/// The GTP-U user plane of the DUT: N3 address and the UE behind gen.
const N3: [u8; 4] = [192, 0, 2, 1];
const UE: [u8; 4] = [10, 0, 0, 50];

struct Bench {
    prefix: String,
    namespaces: Vec<String>,
    pin_root: PathBuf,
    dir: PathBuf,
    exe: PathBuf,
    daemon: Option<Child>,
}

fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Bench {
    fn ns(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }

    fn exec(&self, r: &str, args: &[&str]) -> anyhow::Result<String> {
        let ns = self.ns(r);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    fn build(exe: &Path) -> anyhow::Result<Self> {
        let prefix = format!("epb{}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("edgeplane-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        let mut b = Self {
            pin_root: PathBuf::from(format!("/sys/fs/bpf/edgeplane/{prefix}")),
            prefix,
            namespaces: Vec::new(),
            dir,
            exe: exe.into(),
            daemon: None,
        };
        for r in ["gen", "dut", "snk"] {
            let ns = b.ns(r);
            run(&["ip", "netns", "add", &ns])?;
            b.namespaces.push(ns);
            b.exec(r, &["ip", "link", "set", "lo", "up"])?;
        }
        let (gen, dut, snk) = (b.ns("gen"), b.ns("dut"), b.ns("snk"));
        run(&[
            "ip", "link", "add", "gen0", "netns", &gen, "type", "veth", "peer", "name", "in0",
            "netns", &dut,
        ])?;
        run(&[
            "ip", "link", "add", "out0", "netns", &dut, "type", "veth", "peer", "name", "snk0",
            "netns", &snk,
        ])?;
        for (r, i, a) in [
            ("gen", "gen0", "10.0.0.2/24"),
            ("dut", "in0", "10.0.0.1/24"),
            ("dut", "out0", "10.2.0.1/24"),
            ("snk", "snk0", "10.2.0.11/24"),
        ] {
            b.exec(r, &["ip", "addr", "add", a, "dev", i])?;
            b.exec(r, &["ip", "link", "set", i, "up"])?;
        }
        b.exec("dut", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        b.xdp_attach("snk", "snk0", "sink")?;
        // The DUT's receive work on its own CPU: threaded NAPI on in0,
        // pinned to CPU 1; the generator runs on CPU 0.
        // (veth has NAPI only with GRO or XDP on.)
        b.exec("dut", &["ethtool", "-K", "in0", "gro", "on"])?;
        b.exec("dut", &["sh", "-c", "echo 1 > /sys/class/net/in0/threaded"])?;
        Ok(b)
    }

    fn xdp_attach(&self, r: &str, iface: &str, program: &str) -> anyhow::Result<()> {
        let out = Command::new(crate::lab_bin(&self.exe))
            .args([
                "xdp-attach",
                "--program",
                program,
                "--netns",
                &self.ns(r),
                "--interface",
                iface,
                "--pin-root",
            ])
            .arg(self.pin_root.join(r))
            .output()?;
        if !out.status.success() {
            bail!(
                "attaching {program} on {iface}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Detach whatever edgeplane attached in `r` (pins removed; the links
    /// go with their last reference).
    fn xdp_detach(&self, r: &str) -> anyhow::Result<()> {
        crate::topo::remove_pins(&self.pin_root.join(r))?;
        Ok(())
    }

    fn pin_napi(&self) -> anyhow::Result<()> {
        // The kernel names the thread napi/<dev>-<id>.
        let ps = run(&["ps", "-eo", "pid,comm"])?;
        for line in ps.lines() {
            let mut f = line.split_whitespace();
            let (Some(pid), Some(comm)) = (f.next(), f.next()) else {
                continue;
            };
            if comm.starts_with("napi/in0-") {
                // Several namespaces may have an in0; pinning all of
                // them to CPU 1 is harmless for this run.
                let _ = run(&["taskset", "-pc", "1", pid]);
            }
        }
        Ok(())
    }

    fn sink_count(&self) -> anyhow::Result<u64> {
        let path = self
            .pin_root
            .join("snk")
            .join("snk0")
            .join(dataplane_common::maps::FLOOR_STATS.name);
        let data =
            aya::maps::MapData::from_pin(&path).with_context(|| path.display().to_string())?;
        let map = aya::maps::Map::PerCpuArray(data);
        let arr: aya::maps::PerCpuArray<_, dataplane_common::Counter> =
            aya::maps::PerCpuArray::try_from(&map)?;
        Ok(arr.get(&0, 0)?.iter().map(|c| c.packets).sum())
    }

    /// The XDP gateway; with `gtpu`, also a GTP-U user plane on N3 with
    /// PFCP on in0's address.
    fn start_gateway(&mut self, gtpu: bool) -> anyhow::Result<()> {
        let gtp = if gtpu {
            "\n[gateway.gtpu]\naddress = \"192.0.2.1\"\nvia = \"in0\"\n\n[gateway.pfcp]\naddress = \"10.0.0.1\"\n"
        } else {
            ""
        };
        let cfg = format!(
            "[node]\nname = \"{p}dut\"\nsocket = \"{sock}\"\npin_root = \"{pins}\"\n\n[[gateway]]\ninterfaces = [\"in0\", \"out0\"]\naddress = \"10.2.0.1\"\nports = \"20000-59999\"\n{gtp}\n[[gateway.group]]\nname = \"svc\"\nservices = [\"198.51.100.10:80/udp\"]\n[[gateway.group.server]]\nname = \"s\"\naddress = \"10.2.0.11\"\nport = 8080\nvia = \"out0\"\n",
            p = self.prefix,
            sock = self.dir.join("dut.sock").display(),
            pins = self.pin_root.join("dut").display(),
        );
        let path = self.dir.join("dut.toml");
        std::fs::write(&path, cfg)?;
        let child = Command::new(&self.exe)
            .args(["run", "--netns", &self.ns("dut"), "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if edgeplane::client::call(&self.dir.join("dut.sock"), &control::api::Request::Status)
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("gateway daemon did not come up")
    }

    fn stop_gateway(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.xdp_detach("dut")
    }

    fn nft_on(&self) -> anyhow::Result<()> {
        let rules = "table ip epbench {\n chain pre { type nat hook prerouting priority -100; ip daddr 198.51.100.10 udp dport 80 dnat to 10.2.0.11:8080; }\n chain post { type nat hook postrouting priority 100; oifname \"out0\" meta l4proto udp snat to 10.2.0.1:20000-59999; }\n}\n";
        let path = self.dir.join("nat.nft");
        std::fs::write(&path, rules)?;
        self.exec("dut", &["nft", "-f", path.to_str().unwrap()])?;
        // Native delivery into in0 needs an XDP program there.
        self.xdp_attach("dut", "in0", "floor")
    }

    fn nft_off(&self) -> anyhow::Result<()> {
        self.exec("dut", &["nft", "delete", "table", "ip", "epbench"])?;
        self.xdp_detach("dut")
    }

    /// One tunnel over PFCP from gen (the control plane and the access
    /// node in one): its uplink TEID.
    fn establish_tunnel(&self) -> anyhow::Result<u32> {
        use control::gateway::pfcp::{self, build, Cause, Message};
        let gen = format!("/run/netns/{}", self.ns("gen"));
        std::thread::spawn(move || -> anyhow::Result<u32> {
            crate::topo::enter_netns(&gen)?;
            let cp = std::net::Ipv4Addr::new(10, 0, 0, 2);
            let sock = std::net::UdpSocket::bind((cp, pfcp::PORT))?;
            sock.set_read_timeout(Some(Duration::from_secs(3)))?;
            let gw = std::net::SocketAddr::from(([10, 0, 0, 1], pfcp::PORT));
            let mut buf = [0u8; 2048];
            let mut ask = |req: Vec<u8>| -> anyhow::Result<pfcp::Reply> {
                sock.send_to(&req, gw)?;
                let n = sock
                    .recv(&mut buf)
                    .context("no PFCP answer from the gateway")?;
                match pfcp::decode(&buf[..n]).map_err(|e| anyhow::anyhow!("{e}"))? {
                    (_, Message::Flat(r)) if r.cause == Some(Cause::ACCEPTED) => Ok(r),
                    (h, m) => bail!("PFCP type {} refused: {m:?}", h.msg_type),
                }
            };
            ask(build::association_setup_request(1, cp, 1))?;
            let req = build::typical_session(cp, 1, UE.into(), Some((0x77, cp)), None, 9);
            let r = ask(build::establishment_request(2, &req))?;
            r.created_pdrs
                .iter()
                .find_map(|c| c.fteid)
                .map(|f| f.teid)
                .context("no F-TEID in the answer")
        })
        .join()
        .map_err(|_| anyhow::anyhow!("PFCP thread panicked"))?
    }

    /// Offer frames for `secs` from CPU 0 (a G-PDU of tunnel `teid` if
    /// given); returns (sink pps, offered pps, the generator that ran).
    fn measure(&self, secs: f64, teid: Option<u32>) -> anyhow::Result<(f64, f64, &'static str)> {
        let gen = format!("/run/netns/{}", self.ns("gen"));
        let dut_mac = self.exec("dut", &["cat", "/sys/class/net/in0/address"])?;
        let gen_mac = self.exec("gen", &["cat", "/sys/class/net/gen0/address"])?;
        let dst = control::field::parse_mac(dut_mac.trim()).context("dut mac")?;
        let src = control::field::parse_mac(gen_mac.trim()).context("gen mac")?;
        let before = self.sink_count()?;
        let t0 = Instant::now();
        let (sent, generator) =
            std::thread::spawn(move || -> anyhow::Result<(u64, &'static str)> {
                pin_cpu(0)?;
                crate::topo::enter_netns(&gen)?;
                let frame = frame(src, dst, teid)?;
                let mut dp = dataplane_user::Dataplane::load_private()?;
                let ifindex = dataplane_user::ifindex("gen0")?;
                let start = Instant::now();
                let mut sent = 0u64;
                // Live frames, unless the kernel refuses the first batch.
                let mut fallback = None;
                while start.elapsed().as_secs_f64() < secs {
                    match &fallback {
                        None => match dp.live_frames("tx", ifindex, &frame, 200_000, 64) {
                            Ok(_) => sent += 200_000,
                            Err(e) if sent == 0 => {
                                // Once per run, not once per measurement.
                                static SAID: std::sync::Once = std::sync::Once::new();
                                SAID.call_once(|| {
                                    tracing::warn!(
                                        "live frames refused ({e}); generating with AF_PACKET"
                                    )
                                });
                                fallback = Some(super::packet_gen::PacketGen::open(ifindex)?);
                            }
                            Err(e) => return Err(e.into()),
                        },
                        Some(g) => sent += g.send(&frame, 4096)?,
                    }
                }
                Ok((
                    sent,
                    if fallback.is_some() {
                        "af-packet"
                    } else {
                        "xdp-live-frames"
                    },
                ))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("generator panicked"))??;
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = t0.elapsed().as_secs_f64() - 0.1;
        let got = self.sink_count()? - before;
        Ok((got as f64 / elapsed, sent as f64 / elapsed, generator))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.stop_gateway();
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = crate::topo::remove_pins(&self.pin_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The generator's frame: one UDP datagram of the established flow, or
/// the same datagram from the UE in a G-PDU of tunnel `teid` to N3.
fn frame(src: [u8; 6], dst: [u8; 6], teid: Option<u32>) -> anyhow::Result<Vec<u8>> {
    let mut frame = Vec::new();
    match teid {
        None => {
            etherparse::PacketBuilder::ethernet2(src, dst)
                .ipv4([10, 0, 0, 2], [198, 51, 100, 10], 64)
                .udp(40000, 80)
                .write(&mut frame, &[0u8; 22])?;
        }
        Some(teid) => {
            let mut inner = Vec::new();
            etherparse::PacketBuilder::ipv4(UE, [198, 51, 100, 10], 64)
                .udp(40000, 80)
                .write(&mut inner, &[0u8; 22])?;
            let mut gtp = vec![0x30, 0xff];
            gtp.extend_from_slice(&(inner.len() as u16).to_be_bytes());
            gtp.extend_from_slice(&teid.to_be_bytes());
            gtp.extend_from_slice(&inner);
            etherparse::PacketBuilder::ethernet2(src, dst)
                .ipv4([10, 0, 0, 2], N3, 64)
                .udp(2152, 2152)
                .write(&mut frame, &gtp)?;
            // 78 bytes of headers and 22 of payload, padded to the
            // generator's 128-byte template (Ethernet padding after the
            // datagram, which the gateway leaves behind the inner packet).
            frame.resize(128, 0);
        }
    }
    Ok(frame)
}

fn pin_cpu(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Alternate XDP gateway and nftables `reps` times, `secs` seconds each.
pub fn run_gateway_vs_nftables(reps: usize, secs: f64) -> anyhow::Result<VethRow> {
    let exe = crate::edgeplane_bin()?;
    let mut b = Bench::build(&exe)?;
    b.exec("dut", &["ip", "addr", "add", "192.0.2.1/32", "dev", "in0"])?;
    let (mut xdp, mut nft, mut offered) = (Vec::new(), Vec::new(), Vec::new());
    let (mut gtpu, mut gtpu_offered) = (Vec::new(), Vec::new());
    let mut generator = "";
    for _ in 0..reps {
        b.start_gateway(false)?;
        b.pin_napi()?;
        b.measure(0.3, None)?; // warm-up: the session exists, ARP is resolved
        let (pps, off, g) = b.measure(secs, None)?;
        generator = g;
        xdp.push(pps);
        offered.push(off);
        b.stop_gateway()?;

        b.start_gateway(true)?;
        let teid = b.establish_tunnel()?;
        b.pin_napi()?;
        b.measure(0.3, Some(teid))?;
        let (pps, off, _) = b.measure(secs, Some(teid))?;
        if pps < 1.0 {
            let stats =
                edgeplane::client::call(&b.dir.join("dut.sock"), &control::api::Request::Stats)?;
            let nonzero: Vec<String> = stats
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["packets"].as_u64().unwrap_or(0) > 0)
                .map(|r| format!("{}={}", r["name"].as_str().unwrap_or("?"), r["packets"]))
                .collect();
            bail!(
                "no G-PDU of tunnel {teid:#x} reached the sink; the gateway counted: {}",
                nonzero.join(" ")
            );
        }
        gtpu.push(pps);
        gtpu_offered.push(off);
        b.stop_gateway()?;

        b.nft_on()?;
        b.pin_napi()?;
        b.measure(0.3, None)?;
        let (pps, off, _) = b.measure(secs, None)?;
        nft.push(pps);
        offered.push(off);
        b.nft_off()?;
    }
    let (x, n, g) = (median(xdp), median(nft), median(gtpu));
    Ok(VethRow {
        case: "udp_64B_established".into(),
        xdp_pps: x,
        nftables_pps: n,
        ratio: x / n,
        generator_pps: median(offered),
        repetitions: reps,
        gtpu_uplink_pps: g,
        gtpu_generator_pps: median(gtpu_offered),
        gtpu_vs_plain: g / x,
        gtpu_vs_nftables: g / n,
        generator: generator.into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_gpdu_frame_is_ipv4_udp_2152_with_the_inner_datagram() {
        let f = super::frame([2; 6], [4; 6], Some(0x0100_0007)).unwrap();
        let plain = super::frame([2; 6], [4; 6], None).unwrap();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[30..34], &super::N3);
        assert_eq!(&f[36..38], &2152u16.to_be_bytes());
        assert_eq!(&f[42..44], &[0x30, 0xff]);
        assert_eq!(&f[46..50], &0x0100_0007u32.to_be_bytes());
        // The inner datagram is the plain frame's IP packet from the UE.
        assert_eq!(f.len(), 128);
        assert_eq!(
            u16::from_be_bytes([f[16], f[17]]) as usize,
            20 + 8 + 8 + plain.len() - 14
        );
        assert_eq!(&f[50 + 12..50 + 16], &super::UE);
    }
}
