//! `edgeplane-lab bench sip-scale`: many registered terminals (issue 14).
//!
//! Two parts. The daemons: N terminals register through the monitored
//! host (REGISTER and its 200, paced), the monitor publishes each one
//! online and the presence server stores it; the resident memory each
//! daemon grew by, per terminal, is read from /proc. In-process: the
//! tracker and the presence store with N entries, the cost of one expiry
//! sweep with nothing due (what every tick pays) and with all N due at
//! once (what a mass expiry costs).

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::{
    api::Request,
    presence::Store,
    sip_monitor::{
        sip::parse,
        track::{Status, TalkingOn, TerminatedOn, Tracker, TrackerConfig},
    },
};
use serde::{Deserialize, Serialize};

use crate::sip_lab::{sip, uas, Net};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleRow {
    pub terminals: usize,
    /// Statuses the presence server stored (one online per terminal).
    pub stored_online: usize,
    /// Resident memory the monitor daemon grew by, per terminal.
    pub monitor_bytes_per_terminal: f64,
    /// Resident memory the presence daemon grew by, per terminal.
    pub presence_bytes_per_terminal: f64,
    /// The presence database (SQLite file and its WAL), per terminal.
    pub store_disk_bytes_per_terminal: f64,
    /// One tracker sweep with nothing due, and with every registration due.
    pub tracker_sweep_idle_us: f64,
    pub tracker_sweep_all_ms: f64,
    /// One store sweep with nothing due, and with every status due.
    pub store_sweep_idle_us: f64,
    pub store_sweep_all_ms: f64,
}

/// Resident set of `pid` in bytes (VmRSS).
fn rss(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok(kb * 1024)
}

fn user(i: usize) -> String {
    format!("t{i}@example.com")
}

pub fn run(n: usize) -> anyhow::Result<ScaleRow> {
    let exe = crate::edgeplane_bin()?;
    let mut net = Net::new(&format!("S{}", std::process::id() % 1000), &exe);
    let db = net.dir.join("presence.db");
    let srv_cfg = net.presence_config(Some(&db.display().to_string()));
    net.daemon("srv", &srv_cfg);
    net.daemon(
        "mon",
        &net.monitor_config("example.com", "10.6.0.2:5070", "")
            .replace("publish_interval_ms = 20", "publish_interval_ms = 1"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let registrar = uas(format!("/run/netns/{}", net.name("srv")), stop.clone());
    let pid = |role: &str| {
        net.pid(role)
            .ok_or_else(|| anyhow::anyhow!("no {role} daemon"))
    };
    let (mon_pid, srv_pid) = (pid("mon")?, pid("srv")?);
    let (mon0, srv0) = (rss(mon_pid)?, rss(srv_pid)?);

    // REGISTERs in batches of 100, each batch's 200s awaited (bounded),
    // at most 2,000 a second: a registrar's steady load is far below it
    // (100,000 terminals refreshing hourly send 28 a second), and a burst
    // beyond what the presence server answers within T1 only measures
    // retransmissions.
    let ua = format!("/run/netns/{}", net.name("ua"));
    thread::spawn(move || -> anyhow::Result<()> {
        crate::topo::enter_netns(&ua)?;
        let s = UdpSocket::bind("10.5.0.2:5060")?;
        s.connect("10.6.0.2:5060")?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut buf = [0u8; 4096];
        let t0 = Instant::now();
        for batch in (0..n).step_by(100) {
            let due = t0 + Duration::from_millis(batch as u64 / 2);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let end = (batch + 100).min(n);
            for i in batch..end {
                let u = user(i);
                let m = sip(
                    "REGISTER sip:example.com SIP/2.0",
                    &u,
                    &u,
                    &format!("reg{i}"),
                    "1 REGISTER",
                    "Expires: 3600\r\n",
                    "",
                );
                s.send(m.as_bytes())?;
            }
            for _ in batch..end {
                if s.recv(&mut buf).is_err() {
                    break;
                }
            }
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("UA panicked"))??;
    // Every change published and answered (bounded: 2 minutes).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = net.call("mon", Request::SipMonitorStatus);
        let ok = m["publish_ok"].as_u64().unwrap_or(0);
        if (ok >= n as u64 || ok == m["changes"].as_u64().unwrap_or(0) && ok > 0)
            || Instant::now() > deadline
        {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(500));
    let lost = net.counter("mon", "sip-monitor", "ring_full");
    eprintln!(
        "monitor: {} (ring full: {lost})",
        net.call("mon", Request::SipMonitorStatus)
    );
    let (mon1, srv1) = (rss(mon_pid)?, rss(srv_pid)?);
    let stored_online = net.counter("srv", "presence", "updates") as usize;
    let disk: u64 = ["", "-wal"]
        .iter()
        .filter_map(|x| std::fs::metadata(format!("{}{x}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    stop.store(true, Ordering::SeqCst);
    let _ = registrar.join();
    drop(net);

    let (tracker_idle, tracker_all) = tracker_sweep(n)?;
    let (store_idle, store_all) = store_sweep(n)?;
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / n as f64;
    Ok(ScaleRow {
        terminals: n,
        stored_online,
        monitor_bytes_per_terminal: per(mon0, mon1),
        presence_bytes_per_terminal: per(srv0, srv1),
        store_disk_bytes_per_terminal: disk as f64 / n as f64,
        tracker_sweep_idle_us: tracker_idle,
        tracker_sweep_all_ms: tracker_all,
        store_sweep_idle_us: store_idle,
        store_sweep_all_ms: store_all,
    })
}

/// A tracker holding `n` registrations: one sweep with none due (µs, the
/// median of 1000), then one with all due (ms).
fn tracker_sweep(n: usize) -> anyhow::Result<(f64, f64)> {
    let mut t = Tracker::new(TrackerConfig {
        domain: "example.com".into(),
        talking_on: TalkingOn::Ok200,
        terminated_on: TerminatedOn::Bye,
        default_expires: 3600,
        max_call_ms: 7_200_000,
    });
    for i in 0..n {
        let u = user(i);
        for first in ["REGISTER sip:example.com SIP/2.0", "SIP/2.0 200 OK"] {
            let raw = sip(
                first,
                &u,
                &u,
                &format!("reg{i}"),
                "1 REGISTER",
                "Expires: 60\r\n",
                "",
            );
            let (m, _) = parse(raw.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
            t.handle(&m, 0);
        }
    }
    let mut idle = Vec::with_capacity(1000);
    for k in 0..1000u64 {
        let t0 = Instant::now();
        let out = t.tick(1000 + k);
        idle.push(t0.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(out.is_empty(), "nothing is due before 60 s");
    }
    let t0 = Instant::now();
    let out = t.tick(60_001);
    let all = t0.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        out.len() == n && out.iter().all(|c| c.status == Status::Offline),
        "every registration expired: {} of {n}",
        out.len()
    );
    Ok((super::median(idle), all))
}

/// A store (SQLite, on a file as the daemon keeps it) holding `n`
/// statuses: one sweep with none due (µs, the median of 200), then one
/// with all due (ms).
fn store_sweep(n: usize) -> anyhow::Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("edgeplane-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut s = Store::open(&dir.join("store.db"))?;
    for i in 0..n {
        s.apply(&user(i), "10.6.0.1", Status::Online, 1.0, Some(100.0))?;
    }
    let mut idle = Vec::with_capacity(200);
    for _ in 0..200 {
        let t0 = Instant::now();
        let out = s.expire(50.0)?;
        idle.push(t0.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(out.is_empty(), "nothing is due before 100");
    }
    let t0 = Instant::now();
    let out = s.expire(100.0)?;
    let all = t0.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(out.len() == n, "every status lapsed: {} of {n}", out.len());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((super::median(idle), all))
}
