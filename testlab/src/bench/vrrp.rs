//! `edgeplane bench vrrp-failover`: how long probe traffic to the virtual
//! address is lost when the master fails (daemon SIGKILLed, link down),
//! for a pair of edgeplane routers and a pair of keepalived routers in the
//! same topology, at advertisement intervals of 1 s and 100 ms, for an
//! IPv4 and an IPv6 virtual router (ICMP or ICMPv6 echo probes).

use super::median;
use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::vrrp_lab::{VrrpLan, VIP, VIP6};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailoverRow {
    pub implementation: String,
    /// "ipv4" or "ipv6": the virtual router's family.
    pub family: String,
    pub advert_interval_ms: u32,
    /// Master_Down_Interval of the backup (priority 100), the bound.
    pub master_down_interval_ms: f64,
    /// Median over repetitions: probes lost × probe interval.
    pub lost_ms: f64,
    pub lost_ms_runs: Vec<f64>,
}

const PROBE_EVERY: Duration = Duration::from_millis(1);

/// The (type, id, seq) of an echo reply in what a raw socket delivered:
/// after the IPv4 header (ICMP), or as is (ICMPv6: the kernel strips the
/// header).
fn echo_reply(buf: &[u8], v6: bool) -> Option<(u16, u16)> {
    let (off, reply) = if v6 {
        (0, 129)
    } else {
        (((*buf.first()? & 0x0f) as usize) * 4, 0)
    };
    let m = buf.get(off..off + 8)?;
    (m[0] == reply).then(|| {
        (
            u16::from_be_bytes([m[4], m[5]]),
            u16::from_be_bytes([m[6], m[7]]),
        )
    })
}

/// ICMP (ICMPv6 when `v6`) echo to the virtual address every millisecond
/// from `{p}x` until `stop`; returns (sent, replied).
fn probe(netns: String, v6: bool, stop: Arc<AtomicBool>) -> anyhow::Result<(u64, u64)> {
    crate::topo::enter_netns(&netns)?;
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: a raw ICMP socket; checked.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        bail!("icmp socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let id = (std::process::id() & 0xffff) as u16;
    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    dst.sin_family = libc::AF_INET as u16;
    dst.sin_addr.s_addr = u32::from(VIP).to_be();
    let mut dst6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    dst6.sin6_family = libc::AF_INET6 as u16;
    dst6.sin6_addr.s6_addr = VIP6.octets();
    let (to, to_len): (*const libc::sockaddr, u32) = if v6 {
        (
            (&dst6 as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as u32,
        )
    } else {
        (
            (&dst as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    let (mut sent, mut replied) = (0u64, 0u64);
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    let mut seen = std::collections::HashSet::new();
    while !stop.load(Ordering::SeqCst) {
        let seq = sent as u16;
        // Echo request; for ICMPv6 the kernel computes the checksum over
        // the pseudo-header (RFC 3542 §3.1), so the one below is replaced.
        let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&[0u8; 16]);
        let mut s: u32 = m
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        let c = !(s as u16);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        // SAFETY: valid buffer and address of the socket's family.
        unsafe {
            libc::sendto(sock.as_raw_fd(), m.as_ptr().cast(), m.len(), 0, to, to_len);
        }
        sent += 1;
        let due = start + PROBE_EVERY * sent as u32;
        loop {
            // SAFETY: valid buffer.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                if let Some((rid, seq)) = echo_reply(&buf[..n as usize], v6) {
                    if rid == id && seen.insert(seq) {
                        replied += 1;
                    }
                }
                continue;
            }
            if Instant::now() >= due {
                break;
            }
            thread::sleep(Duration::from_micros(100));
        }
    }
    // Late replies.
    thread::sleep(Duration::from_millis(50));
    loop {
        // SAFETY: valid buffer.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            break;
        }
        if let Some((rid, seq)) = echo_reply(&buf[..n as usize], v6) {
            if rid == id && seen.insert(seq) {
                replied += 1;
            }
        }
    }
    Ok((sent, replied))
}

fn trial(implementation: &str, advert_ms: u32, v6: bool, n: usize) -> anyhow::Result<f64> {
    let exe = crate::edgeplane_bin()?;
    let prefix = format!("epf{}{n}", std::process::id() % 10000);
    let mut lan = if v6 {
        VrrpLan::new_ipv6(&prefix, 2, &exe)?
    } else {
        VrrpLan::new(&prefix, 2, &exe)?
    };
    let routers = ["r1", "r2"];
    for (r, prio) in [("r1", 200u8), ("r2", 100)] {
        match implementation {
            "keepalived" => lan.start_keepalived(r, prio, advert_ms)?,
            _ => lan.start_edgeplane(r, prio, advert_ms)?,
        }
    }
    lan.wait_master("r1", &routers, true, Duration::from_secs(15))?;
    // The backup must have heard the master before the failure.
    thread::sleep(Duration::from_millis(advert_ms as u64 * 2 + 200));
    let stop = Arc::new(AtomicBool::new(false));
    let ns = format!("/run/netns/{}", lan.ns("x"));
    let st = stop.clone();
    let prober = thread::spawn(move || probe(ns, v6, st));
    thread::sleep(Duration::from_millis(500));
    lan.fail("r1")?;
    let mdi_ms = 3.0 * advert_ms as f64 + (156.0 * advert_ms as f64) / 256.0;
    lan.wait_master(
        "r2",
        &routers,
        false,
        Duration::from_millis(mdi_ms as u64 + 3000),
    )?;
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (sent, replied) = prober
        .join()
        .map_err(|_| anyhow::anyhow!("prober panicked"))??;
    Ok(((sent - replied) as f64 * PROBE_EVERY.as_secs_f64() * 1000.0).round())
}

pub fn run_failover(reps: usize) -> anyhow::Result<Vec<FailoverRow>> {
    let mut rows = Vec::new();
    let mut n = 0;
    for (v6, advert_ms) in [(false, 1000u32), (false, 100), (true, 1000), (true, 100)] {
        let mut runs: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        for _ in 0..reps {
            // Alternate so drift on the machine hits both alike.
            for imp in ["edgeplane", "keepalived"] {
                n += 1;
                runs.entry(imp)
                    .or_default()
                    .push(trial(imp, advert_ms, v6, n)?);
            }
        }
        for (imp, v) in runs {
            rows.push(FailoverRow {
                implementation: imp.into(),
                family: if v6 { "ipv6" } else { "ipv4" }.into(),
                advert_interval_ms: advert_ms,
                master_down_interval_ms: 3.0 * advert_ms as f64
                    + (156.0 * advert_ms as f64) / 256.0,
                lost_ms: median(v.clone()),
                lost_ms_runs: v,
            });
        }
    }
    Ok(rows)
}
