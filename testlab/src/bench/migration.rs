//! `edgeplane bench migration`: migrations back and forth under a
//! terminal that asks without pause (the lab in `migration_lab`).

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use control::api::Request;

use crate::{
    migration_lab::{ask, Lab},
    topo::enter_netns,
};

/// `edgeplane bench migration`: `count` migrations back and forth while
/// the terminal asks without pause (one request in flight, 1 ms apart).
/// Pause: the longest a request waited for its answer during a migration;
/// baseline: the longest wait in the same length of time just before it,
/// with nothing moving. Held pause: the controller's own measure, first
/// held packet to first packet released on the new network (migrations
/// that held something). Switch: the controller's request-to-map-updated.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    pub migrations: usize,
    pub pause_ms_p50: f64,
    pub pause_ms_p99: f64,
    pub baseline_wait_ms_p50: f64,
    pub baseline_wait_ms_p99: f64,
    pub pause_over_baseline_p50: f64,
    pub held_pause_ms_p50: f64,
    pub held_pause_ms_p99: f64,
    pub held_pause_samples: usize,
    pub switch_us_p50: u64,
    pub switch_us_p99: u64,
    pub migration_ms_p50: f64,
    pub released_total: u64,
    pub lost_requests: u64,
    /// Every migration's pause and the wait just before it (ms, sorted):
    /// the distributions the percentiles above come from.
    pub pause_ms_samples: Vec<f64>,
    pub baseline_wait_ms_samples: Vec<f64>,
}

pub fn bench(exe: &std::path::Path, count: usize, commands: bool) -> anyhow::Result<BenchReport> {
    anyhow::ensure!((1..=1000).contains(&count), "--count must be 1..=1000");
    let mut lab = Lab::new("b", exe);
    lab.start_with(commands);
    let stop = Arc::new(AtomicBool::new(false));
    type Log = Vec<(Instant, Option<Instant>)>;
    let log: Arc<std::sync::Mutex<Log>> = Arc::default();
    let term = {
        let (stop, log, ns, service) = (
            stop.clone(),
            log.clone(),
            format!("/run/netns/{}", lab.name("term")),
            lab.service_udp(),
        );
        thread::spawn(move || -> anyhow::Result<()> {
            enter_netns(&ns)?;
            let s = UdpSocket::bind("10.7.0.2:0")?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 512];
            let t_end = Instant::now() + Duration::from_secs(600);
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && Instant::now() < t_end {
                let sent = Instant::now();
                let got =
                    ask(&s, service, &format!("b{i}"), &mut buf, || {}).map(|_| Instant::now());
                log.lock().unwrap().push((sent, got));
                i += 1;
                thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
    };
    let mut windows = Vec::new();
    let mut views = Vec::new();
    let mut at = "s1";
    for _ in 0..count {
        thread::sleep(Duration::from_millis(60));
        let to = if at == "s1" { "s2" } else { "s1" };
        let t0 = Instant::now();
        let v = edgeplane::client::call(
            &lab.sock("edge"),
            &Request::MigrateStart {
                process: "counter".into(),
                to: to.into(),
                wait: true,
            },
        )
        .map_err(|e| anyhow::anyhow!("migration to {to}: {e}"))?;
        windows.push((t0, Instant::now()));
        views.push(v);
        at = to;
    }
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    term.join()
        .map_err(|_| anyhow::anyhow!("terminal thread panicked"))??;
    let log = log.lock().unwrap().clone();
    let wait = |from: Instant, to: Instant| -> Option<f64> {
        log.iter()
            .filter(|(s, _)| *s >= from && *s <= to)
            .map(|(s, r)| r.map(|r| (r - *s).as_secs_f64() * 1e3).unwrap_or(2000.0))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    let mut pause = Vec::new();
    let mut base = Vec::new();
    for (a, b) in &windows {
        let len = (*b - *a).max(Duration::from_millis(5));
        // Requests sent just before the start may be held too.
        pause.push(wait(*a - Duration::from_millis(2), *b).unwrap_or(0.0));
        base.push(
            wait(
                *a - len - Duration::from_millis(5),
                *a - Duration::from_millis(5),
            )
            .unwrap_or(0.0),
        );
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let mut held: Vec<f64> = views
        .iter()
        .filter_map(|v| v["pause_us"].as_u64())
        .map(|us| us as f64 / 1e3)
        .collect();
    let held_samples = held.len();
    let (h50, h99) = if held.is_empty() {
        (0.0, 0.0)
    } else {
        (pct(&mut held, 0.5), pct(&mut held, 0.99))
    };
    let mut switch: Vec<u64> = views
        .iter()
        .filter_map(|v| v["switch_us"].as_u64())
        .collect();
    switch.sort();
    let mut total: Vec<f64> = windows
        .iter()
        .map(|(a, b)| (*b - *a).as_secs_f64() * 1e3)
        .collect();
    let (p50, p99, b50, b99) = (
        pct(&mut pause, 0.5),
        pct(&mut pause, 0.99),
        pct(&mut base, 0.5),
        pct(&mut base, 0.99),
    );
    Ok(BenchReport {
        migrations: count,
        pause_ms_p50: p50,
        pause_ms_p99: p99,
        baseline_wait_ms_p50: b50,
        baseline_wait_ms_p99: b99,
        pause_over_baseline_p50: if b50 > 0.0 { p50 / b50 } else { 0.0 },
        held_pause_ms_p50: h50,
        held_pause_ms_p99: h99,
        held_pause_samples: held_samples,
        switch_us_p50: switch.get(switch.len() / 2).copied().unwrap_or(0),
        switch_us_p99: switch
            .get(((switch.len() as f64 - 1.0) * 0.99).round() as usize)
            .copied()
            .unwrap_or(0),
        migration_ms_p50: pct(&mut total, 0.5),
        released_total: views.iter().filter_map(|v| v["released"].as_u64()).sum(),
        lost_requests: log.iter().filter(|(_, r)| r.is_none()).count() as u64,
        pause_ms_samples: pause,
        baseline_wait_ms_samples: base,
    })
}
