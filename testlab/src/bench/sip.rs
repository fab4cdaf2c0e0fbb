//! `edgeplane bench sip-latency`: time from the SIP message that makes a
//! terminal "talking" leaving the UAC (the ACK, with talking_on = "ack") to
//! the PUBLISH leaving the monitor, both captured on the wire with kernel
//! timestamps, over many calls.

use std::{
    collections::HashMap,
    net::UdpSocket,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use crate::sip_lab::{sip, uas, Net};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    pub calls: usize,
    pub measured: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the ACK arriving at the monitored host to the PUBLISH.
    pub monitor_p50_ms: f64,
    pub monitor_p99_ms: f64,
    /// SIP copies lost to a full ring on the monitored host; the calls
    /// not measured are the captures' loss.
    pub ring_full: u64,
    /// Every measured call's wire-to-PUBLISH latency (ms, sorted).
    pub samples_ms: Vec<f64>,
}

/// Frames with their kernel timestamps (seconds).
type Frames = Vec<(f64, Vec<u8>)>;

/// Every frame seen on `iface` (both directions) with its kernel receive
/// or send timestamp, until `stop`.
fn capture(
    ns: String,
    iface: &'static str,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> thread::JoinHandle<anyhow::Result<Frames>> {
    thread::spawn(move || {
        crate::topo::enter_netns(&ns)?;
        let ifindex = dataplane_user::ifindex(iface)? as i32;
        // SAFETY: a packet socket with checked results; recvmsg into
        // buffers we own; cmsg walked with the libc macros.
        unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            );
            if fd < 0 {
                bail!("packet socket: {}", std::io::Error::last_os_error());
            }
            let sock = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sa.sll_ifindex = ifindex;
            if libc::bind(
                fd,
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                bail!("bind {iface}: {}", std::io::Error::last_os_error());
            }
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&one as *const libc::c_int).cast(),
                4,
            );
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let size: libc::c_int = 16 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                4,
            );
            let _ = ready.send(());
            let mut out = Vec::new();
            let mut buf = vec![0u8; 65536];
            let mut ctl = [0u8; 128];
            while !stop.load(Ordering::SeqCst) {
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let mut mh: libc::msghdr = std::mem::zeroed();
                mh.msg_iov = &mut iov;
                mh.msg_iovlen = 1;
                mh.msg_control = ctl.as_mut_ptr().cast();
                mh.msg_controllen = ctl.len();
                let n = libc::recvmsg(sock.as_raw_fd(), &mut mh, 0);
                if n <= 0 {
                    continue;
                }
                let mut ts = None;
                let mut c = libc::CMSG_FIRSTHDR(&mh);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET
                        && (*c).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let t =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        ts = Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9);
                    }
                    c = libc::CMSG_NXTHDR(&mh, c);
                }
                if let Some(t) = ts {
                    out.push((t, buf[..n as usize].to_vec()));
                }
            }
            Ok(out)
        }
    })
}

fn udp_payload(f: &[u8]) -> Option<(u16, &[u8])> {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
        return None;
    }
    let ihl = ((f[14] & 0x0f) as usize) * 4;
    let l4 = 14 + ihl;
    Some((u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]), f.get(l4 + 8..)?))
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Malformed SIP of the kinds the parser refuses (one per reason it
/// counts), sent round-robin by the flood.
fn malformed() -> Vec<Vec<u8>> {
    let ok = sip(
        "OPTIONS sip:b@example.com SIP/2.0",
        "m@example.com",
        "b@example.com",
        "flood",
        "1 OPTIONS",
        "",
        "",
    );
    vec![
        b"this is not SIP\r\n\r\n".to_vec(),
        ok.replacen("OPTIONS sip:", "OPT IONS sip:", 1).into_bytes(),
        ok.replacen("Via: ", "Vya: ", 1).into_bytes(),
        ok.replacen("1 OPTIONS", "1 INVITE", 1).into_bytes(),
        ok.replacen("<sip:m@example.com>", "\"M <sip:m@example.com>", 1)
            .into_bytes(),
        ok.replacen("SIP/2.0\r\n", "SIP/2.0\x01\r\n", 1)
            .into_bytes(),
        ok.replacen(
            "Content-Length: 0",
            "Content-Length: 0\r\nContent-Length: 5",
            1,
        )
        .into_bytes(),
        ok.replacen("Content-Length: 0", "Content-Length: 900", 1)
            .into_bytes(),
    ]
}

/// The port the flood goes to: the UAS's SIP port (copied and refused by
/// the monitor), or one the monitor does not watch (the baseline: the
/// same datagrams through the same hosts, not copied).
const SIP_PORT: u16 = 5060;
const UNWATCHED_PORT: u16 = 5099;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FloodRuns {
    pub quiet: LatencyRow,
    /// The flood to the SIP port: the monitor copies and refuses it.
    pub flooded: LatencyRow,
    pub flood_sent: u64,
    pub flood_refused: u64,
    /// The same flood to a port the monitor does not watch: what the
    /// datagrams cost the machine without the monitor's part.
    pub baseline: LatencyRow,
    pub baseline_sent: u64,
    pub baseline_refused: u64,
}

/// `calls` calls alone, then beside a flood of malformed SIP at
/// `flood_pps` to the SIP port, then beside the same flood to a port the
/// monitor does not watch (each on a fresh lab, one after the other in
/// the same run). The monitor's cost is the flooded run against the
/// baseline, not against the quiet one: on two shared cores the sender
/// and the hosts' forwarding cost something whatever the monitor does.
pub fn run_with_flood(calls: usize, flood_pps: u64) -> anyhow::Result<FloodRuns> {
    let quiet = run_inner(calls, 0, SIP_PORT, Watch::MonitorAck)?.0;
    let (flooded, flood_sent, flood_refused) =
        run_inner(calls, flood_pps, SIP_PORT, Watch::MonitorAck)?;
    let (baseline, baseline_sent, baseline_refused) =
        run_inner(calls, flood_pps, UNWATCHED_PORT, Watch::MonitorAck)?;
    Ok(FloodRuns {
        quiet,
        flooded,
        flood_sent,
        flood_refused,
        baseline,
        baseline_sent,
        baseline_refused,
    })
}

pub fn run(calls: usize) -> anyhow::Result<LatencyRow> {
    Ok(run_inner(calls, 0, SIP_PORT, Watch::MonitorAck)?.0)
}

/// What publishes the calls' states on the transit host.
#[derive(Clone, Copy, PartialEq)]
enum Watch {
    /// The monitor, a terminal talking on the ACK (timed from the ACK).
    MonitorAck,
    /// The monitor, talking on the 200 to the INVITE (timed from the 200).
    Monitor200,
    /// Kamailio in the path as the proxy, publishing dialog states with
    /// pua_dialoginfo (timed from the 200, on which it says "confirmed").
    Kamailio,
}

/// The monitor and Kamailio, the same calls on fresh labs, each timed
/// from the 200 to the INVITE arriving at the transit host to the
/// PUBLISH that says the call is up leaving it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KamailioRuns {
    /// The monitor, passive beside the kernel's forwarding,
    /// `talking_on = "200"`.
    pub monitor: LatencyRow,
    /// Kamailio as the stateful proxy the calls go through, with the
    /// dialog, pua and pua_dialoginfo modules (`DIALOGINFO`).
    pub kamailio: LatencyRow,
}

pub fn run_against_kamailio(calls: usize) -> anyhow::Result<KamailioRuns> {
    let monitor = run_inner(calls, 0, SIP_PORT, Watch::Monitor200)?.0;
    let kamailio = run_inner(calls, 0, SIP_PORT, Watch::Kamailio)?.0;
    Ok(KamailioRuns { monitor, kamailio })
}

/// Kamailio on the transit host (10.5.0.1:5060) as a stateful proxy to
/// the UAS (10.6.0.2:5060) that tracks each INVITE's dialog and publishes
/// its states (dialog-info, for caller and callee) to the presence server
/// at 10.6.0.2:5070: what a Kamailio deployment does for what the
/// monitor does passively. pua keeps its records in memory (`db_mode`
/// 0) and needs a database only to start: db_text in `DBDIR`, made from
/// Kamailio's own table definitions.
pub const DIALOGINFO: &str = r#"#!KAMAILIO
debug=1
log_stderror=yes
children=2
listen=udp:10.5.0.1:5060
# The domain is its own: pua_dialoginfo publishes only for local users.
alias="example.com"
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rr.so"
loadmodule "dialog.so"
loadmodule "db_text.so"
loadmodule "pua.so"
loadmodule "pua_dialoginfo.so"
modparam("pua", "db_url", "text://DBDIR")
modparam("pua", "db_mode", 0)
modparam("pua", "outbound_proxy", "sip:10.6.0.2:5070")
modparam("pua_dialoginfo", "include_callid", 1)
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("INVITE") && !has_totag()) { dlg_manage(); }
  $du = "sip:10.6.0.2:5060";
  t_relay();
  exit;
}
"#;

/// Send `req` (of call `call`) and read answers on the UA's socket until
/// the final one to `method` (a proxy sends 100 Trying first; the UAS
/// sends 180). Without one in 500 ms the request is sent again, as a UA
/// over UDP does (RFC 3261 timers A and E), four times at most.
fn transaction(
    s: &UdpSocket,
    buf: &mut [u8],
    req: &str,
    call: &str,
    method: &str,
) -> anyhow::Result<()> {
    for _ in 0..5 {
        s.send(req.as_bytes())?;
        let sent = std::time::Instant::now();
        while sent.elapsed() < Duration::from_millis(500) {
            let Ok(n) = s.recv(buf) else { break };
            if let Ok((m, _)) = control::sip_monitor::sip::parse(&buf[..n]) {
                if m.call_id == call
                    && m.cseq_method == method
                    && m.status().is_some_and(|c| c >= 200)
                {
                    return Ok(());
                }
            }
        }
    }
    bail!("UA: no final answer to the {method} of call {call}, sent five times")
}

/// When each call's first message to port 5060 that starts with `start`
/// and whose CSeq names `cseq_method` was seen, by Call-ID.
fn first_seen(frames: &Frames, start: &[u8], cseq_method: &str) -> HashMap<String, f64> {
    let mut seen = HashMap::new();
    for (t, f) in frames {
        let Some((5060, p)) = udp_payload(f) else {
            continue;
        };
        if !p.starts_with(start) {
            continue;
        }
        if let Ok((m, _)) = control::sip_monitor::sip::parse(p) {
            if m.cseq_method == cseq_method {
                seen.entry(m.call_id.into_owned()).or_insert(*t);
            }
        }
    }
    seen
}

/// Kamailio's db_text table definitions, as Debian installs them.
const KAMAILIO_DBTEXT: &str = "/usr/share/kamailio/dbtext/kamailio";

fn run_inner(
    calls: usize,
    flood_pps: u64,
    flood_port: u16,
    watch: Watch,
) -> anyhow::Result<(LatencyRow, u64, u64)> {
    let exe = crate::edgeplane_bin()?;
    let mut net = Net::new(&format!("L{}", std::process::id() % 1000), &exe);
    net.daemon("srv", &net.presence_config(None));
    let talking_on = if watch == Watch::MonitorAck {
        "ack"
    } else {
        "200"
    };
    let _kamailio = if watch == Watch::Kamailio {
        let db = net.dir.join("kamailio-db");
        std::fs::create_dir_all(&db)?;
        for table in ["version", "pua"] {
            std::fs::copy(
                std::path::Path::new(KAMAILIO_DBTEXT).join(table),
                db.join(table),
            )
            .with_context(|| format!("{KAMAILIO_DBTEXT}/{table} (Debian's kamailio)"))?;
        }
        let cfg = DIALOGINFO.replace("DBDIR", &db.display().to_string());
        Some(net.kamailio("mon", "dialoginfo", &cfg, 5060))
    } else {
        let mon = net
            .monitor_config(
                "example.com",
                "10.6.0.2:5070",
                &format!("talking_on = \"{talking_on}\"\n"),
            )
            .replace("publish_interval_ms = 20", "publish_interval_ms = 1");
        net.daemon("mon", &mon);
        None
    };
    // The UA calls the UAS through the host, or Kamailio on it.
    let dest = if watch == Watch::Kamailio {
        "10.5.0.1:5060"
    } else {
        "10.6.0.2:5060"
    };
    let stop = Arc::new(AtomicBool::new(false));
    let server = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    let cap_stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let cap_ua = capture(
        format!("/run/netns/{}", net.name("ua")),
        "eth0",
        cap_stop.clone(),
        tx.clone(),
    );
    let cap_mon = capture(
        format!("/run/netns/{}", net.name("mon")),
        "eth1",
        cap_stop.clone(),
        tx.clone(),
    );
    // The ACK as it arrives at the monitored host (the packet tap runs
    // after XDP): splits the figure into the path to the host and the
    // monitor's own share.
    let cap_in = capture(
        format!("/run/netns/{}", net.name("mon")),
        "eth0",
        cap_stop.clone(),
        tx,
    );
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(5))?;
    }
    let ua = format!("/run/netns/{}", net.name("ua"));
    // The flood: malformed SIP to `flood_port` of the UAS's host, from
    // another port of the UA, every millisecond a share of `flood_pps`.
    // Off the SIP port a sink reads it, as the UAS does on it.
    let flood_stop = Arc::new(AtomicBool::new(false));
    let sink = (flood_pps > 0 && flood_port != SIP_PORT).then(|| {
        let (ns, stop) = (
            format!("/run/netns/{}", net.name("srv")),
            flood_stop.clone(),
        );
        thread::spawn(move || -> anyhow::Result<()> {
            crate::topo::enter_netns(&ns)?;
            let s = UdpSocket::bind(("10.6.0.2", flood_port))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                let _ = s.recv(&mut buf);
            }
            Ok(())
        })
    });
    let flood = (flood_pps > 0).then(|| {
        let (ns, stop) = (ua.clone(), flood_stop.clone());
        thread::spawn(move || -> anyhow::Result<u64> {
            crate::topo::enter_netns(&ns)?;
            let s = UdpSocket::bind("10.5.0.2:5090")?;
            s.connect(("10.6.0.2", flood_port))?;
            let msgs = malformed();
            let per_ms = (flood_pps / 1000).max(1);
            let (mut sent, t0) = (0u64, std::time::Instant::now());
            while !stop.load(Ordering::SeqCst) {
                for _ in 0..per_ms {
                    if s.send(&msgs[sent as usize % msgs.len()]).is_ok() {
                        sent += 1;
                    }
                }
                let due = t0 + Duration::from_micros(sent * 1_000_000 / flood_pps);
                if let Some(w) = due.checked_duration_since(std::time::Instant::now()) {
                    thread::sleep(w);
                }
            }
            Ok(sent)
        })
    });
    thread::sleep(Duration::from_millis(if flood.is_some() { 200 } else { 0 }));
    thread::spawn(move || -> anyhow::Result<()> {
        crate::topo::enter_netns(&ua)?;
        let s = UdpSocket::bind("10.5.0.2:5060")?;
        s.connect(dest)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut buf = [0u8; 4096];
        for i in 0..calls {
            let (a, b, c) = (
                format!("a{i}@example.com"),
                format!("b{i}@example.com"),
                format!("lat{i}"),
            );
            let invite = sip(
                "INVITE sip:b@example.com SIP/2.0",
                &a,
                &b,
                &c,
                "1 INVITE",
                "",
                "",
            );
            transaction(&s, &mut buf, &invite, &c, "INVITE")?;
            s.send(sip("ACK sip:b@example.com SIP/2.0", &a, &b, &c, "1 ACK", "", "").as_bytes())?;
            thread::sleep(Duration::from_millis(2));
            let bye = sip("BYE sip:b@example.com SIP/2.0", &a, &b, &c, "2 BYE", "", "");
            transaction(&s, &mut buf, &bye, &c, "BYE")?;
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("UA panicked"))??;
    flood_stop.store(true, Ordering::SeqCst);
    let sent = match flood {
        Some(h) => h.join().map_err(|_| anyhow::anyhow!("flood panicked"))??,
        None => 0,
    };
    if let Some(h) = sink {
        h.join().map_err(|_| anyhow::anyhow!("sink panicked"))??;
    }
    thread::sleep(Duration::from_millis(300));
    let (refused, ring_full) = if watch == Watch::Kamailio {
        (0, 0)
    } else {
        (
            net.counters("mon", "sip-monitor", |n| n.starts_with("parse_error_")),
            // Copies the monitor's ring could not take (counted by the
            // program).
            net.counter("mon", "sip-monitor", "ring_full"),
        )
    };
    cap_stop.store(true, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let _ = server.join();
    let ua_frames = cap_ua
        .join()
        .map_err(|_| anyhow::anyhow!("capture panicked"))??;
    let mon_frames = cap_mon
        .join()
        .map_err(|_| anyhow::anyhow!("capture panicked"))??;
    let in_frames = cap_in
        .join()
        .map_err(|_| anyhow::anyhow!("capture panicked"))??;
    let (ack, arrived) = if watch == Watch::MonitorAck {
        (
            first_seen(&ua_frames, b"ACK ", "ACK"),
            first_seen(&in_frames, b"ACK ", "ACK"),
        )
    } else {
        // The 200 to each INVITE as it arrives at the host from the UAS.
        let ok = first_seen(&mon_frames, b"SIP/2.0 200 ", "INVITE");
        (ok.clone(), ok)
    };
    let mut share = Vec::new();
    let mut lat = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (t, f) in &mon_frames {
        if let Some((5070, p)) = udp_payload(f) {
            if !p.starts_with(b"PUBLISH ") {
                continue;
            }
            let text = String::from_utf8_lossy(p);
            // Kamailio publishes "early" on the 180 first; the call is
            // up at "confirmed".
            if watch == Watch::Kamailio && !text.contains(">confirmed<") {
                continue;
            }
            if let Some(i) = text.find("call-id=\"lat") {
                let id: String = text[i + 9..].chars().take_while(|c| *c != '"').collect();
                if let (Some(t0), true) = (ack.get(&id), seen.insert(id.clone())) {
                    lat.push((t - t0) * 1000.0);
                    if let Some(t1) = arrived.get(&id) {
                        share.push((t - t1) * 1000.0);
                    }
                }
            }
        }
    }
    if lat.is_empty() {
        let publishes = mon_frames
            .iter()
            .filter(|(_, f)| matches!(udp_payload(f), Some((_, p)) if p.starts_with(b"PUBLISH ")))
            .count();
        let log = if watch == Watch::Kamailio {
            std::fs::read_to_string(net.dir.join("dialoginfo.log")).unwrap_or_default()
        } else {
            String::new()
        };
        bail!(
            "no call's PUBLISH captured after its {} ({} starting points, {publishes} PUBLISHes){}{log}",
            if watch == Watch::MonitorAck { "ACK" } else { "200" },
            ack.len(),
            if log.is_empty() { "" } else { "; Kamailio's log:\n" }
        );
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    share.sort_by(|a, b| a.partial_cmp(b).unwrap());
    anyhow::ensure!(!share.is_empty(), "no ACK captured arriving at the monitor");
    Ok((
        LatencyRow {
            calls,
            measured: lat.len(),
            p50_ms: pct(&lat, 0.5),
            p99_ms: pct(&lat, 0.99),
            max_ms: *lat.last().unwrap(),
            monitor_p50_ms: pct(&share, 0.5),
            monitor_p99_ms: pct(&share, 0.99),
            ring_full,
            samples_ms: lat,
        },
        sent,
        refused,
    ))
}
