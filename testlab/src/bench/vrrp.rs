//! `edgeplane bench vrrp-failover`: how long probe traffic to the virtual
//! address is lost when the master fails (daemon SIGKILLed, link down),
//! for a pair of edgeplane routers and a pair of keepalived routers in the
//! same topology, at advertisement intervals of 1 s and 100 ms.

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
use serde::Serialize;

use crate::vrrp_lab::{VrrpLan, VIP};

#[derive(Clone, Debug, Serialize)]
pub struct FailoverRow {
    pub implementation: String,
    pub advert_interval_ms: u32,
    /// Master_Down_Interval of the backup (priority 100), the bound.
    pub master_down_interval_ms: f64,
    /// Median over repetitions: probes lost × probe interval.
    pub lost_ms: f64,
    pub lost_ms_runs: Vec<f64>,
}

const PROBE_EVERY: Duration = Duration::from_millis(1);

/// ICMP echo to the VIP every millisecond from `{p}x` until `stop`;
/// returns (sent, replied).
fn probe(netns: String, stop: Arc<AtomicBool>) -> anyhow::Result<(u64, u64)> {
    crate::topo::enter_netns(&netns)?;
    // SAFETY: a raw ICMP socket; checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        bail!("icmp socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let id = (std::process::id() & 0xffff) as u16;
    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    dst.sin_family = libc::AF_INET as u16;
    dst.sin_addr.s_addr = u32::from(VIP).to_be();
    let (mut sent, mut replied) = (0u64, 0u64);
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    let mut seen = std::collections::HashSet::new();
    while !stop.load(Ordering::SeqCst) {
        let seq = sent as u16;
        let mut m = vec![8, 0, 0, 0];
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
        // SAFETY: valid buffer and address.
        unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                0,
                (&dst as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
        }
        sent += 1;
        let due = start + PROBE_EVERY * sent as u32;
        loop {
            // SAFETY: valid buffer.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                let n = n as usize;
                let ihl = ((buf[0] & 0x0f) as usize) * 4;
                if n >= ihl + 8
                    && buf[ihl] == 0
                    && u16::from_be_bytes([buf[ihl + 4], buf[ihl + 5]]) == id
                {
                    let seq = u16::from_be_bytes([buf[ihl + 6], buf[ihl + 7]]);
                    if seen.insert(seq) {
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
        let ihl = ((buf[0] & 0x0f) as usize) * 4;
        if n as usize >= ihl + 8
            && buf[ihl] == 0
            && u16::from_be_bytes([buf[ihl + 4], buf[ihl + 5]]) == id
        {
            let seq = u16::from_be_bytes([buf[ihl + 6], buf[ihl + 7]]);
            if seen.insert(seq) {
                replied += 1;
            }
        }
    }
    Ok((sent, replied))
}

fn trial(implementation: &str, advert_ms: u32, n: usize) -> anyhow::Result<f64> {
    let exe = crate::edgeplane_bin()?;
    let prefix = format!("epf{}{n}", std::process::id() % 10000);
    let mut lan = VrrpLan::new(&prefix, 2, &exe)?;
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
    let prober = thread::spawn(move || probe(ns, st));
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
    for advert_ms in [1000u32, 100] {
        let mut runs: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        for _ in 0..reps {
            // Alternate so drift on the machine hits both alike.
            for imp in ["edgeplane", "keepalived"] {
                n += 1;
                runs.entry(imp).or_default().push(trial(imp, advert_ms, n)?);
            }
        }
        for (imp, v) in runs {
            rows.push(FailoverRow {
                implementation: imp.into(),
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
