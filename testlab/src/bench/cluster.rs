//! `edgeplane-lab bench cluster-convergence` and `cluster-detection`: how
//! fast the LBs follow etcd (issue 12).
//!
//! Convergence: a weight change committed in etcd (a compare-and-swap
//! from beside etcd) to every LB's table flipped, as each LB reports the
//! flip (`applied_ms` of its `lbs/` record: the wall clock right after its
//! table was installed; one host, one clock). The baseline in the same
//! run is a bare etcd watcher on the same keys: the time the change
//! reaches a watching client at all.
//!
//! Detection: SIGKILL of a registered gateway to its removal from every
//! LB's table, against the lease TTL.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use control::cluster::{
    config::Cluster,
    record::{self, GatewayRecord},
};
use serde::{Deserialize, Serialize};

use crate::cluster_lab::ClusterLab;
use edgeplane::cluster::{cas, connect, get_gateway, lb_tables, now_ms};

#[derive(Debug, Serialize, Deserialize)]
pub struct Convergence {
    pub lbs: usize,
    pub changes: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The bare watcher's delivery of the same changes.
    pub watch_p50_ms: f64,
    pub watch_p99_ms: f64,
    /// Every change's time to every LB's table, and to the bare watcher
    /// (ms, in the order of the changes).
    pub samples_ms: Vec<f64>,
    pub watch_samples_ms: Vec<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Detection {
    pub lease_ttl_s: u64,
    pub samples_ms: Vec<f64>,
    pub p50_ms: f64,
    pub max_ms: f64,
    /// max over the TTL.
    pub max_over_ttl: f64,
}

/// The value at quantile `q` of `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

fn section(lab: &ClusterLab) -> Cluster {
    Cluster::from_endpoints(lab.etcd.endpoints(), None)
}

fn prefix(tag: &str) -> String {
    format!("epb{tag}{}", std::process::id() % 100_000)
}

pub fn convergence(lbs: usize, changes: usize) -> anyhow::Result<Convergence> {
    let mut lab = ClusterLab::build(&prefix("v"), lbs, 0, 3, 5)?;
    for lb in 1..=lbs {
        lab.start_lb(lb)?;
    }
    let gws = ["gw1", "gw2", "gw3"];
    for (i, g) in gws.iter().enumerate() {
        let mac = format!("02:00:00:01:00:{:02x}", i + 1);
        lab.cli_json(&[
            "gateways",
            "add",
            g,
            "--address",
            "10.1.0.11",
            "--mac",
            &mac,
        ])?;
    }
    lab.wait_tables(
        &[("gw1", 1), ("gw2", 1), ("gw3", 1)],
        Duration::from_secs(20),
    )?;
    let cfg = section(&lab);
    let ns = format!("/run/netns/{}", lab.topo.ns("e"));
    let (lb_ms, watch_ms) = crate::topo::in_netns(&ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(changes_loop(&cfg, lbs, changes, &gws))
    })?;
    // Every LB ends on one table.
    let d = lab.live_digests()?;
    if d.iter().any(|x| *x != d[0]) {
        bail!("the LBs ended on different tables: {d:?}");
    }
    Ok(Convergence {
        lbs,
        changes,
        p50_ms: quantile(&lb_ms, 0.5),
        p99_ms: quantile(&lb_ms, 0.99),
        max_ms: quantile(&lb_ms, 1.0),
        watch_p50_ms: quantile(&watch_ms, 0.5),
        watch_p99_ms: quantile(&watch_ms, 0.99),
        samples_ms: lb_ms,
        watch_samples_ms: watch_ms,
    })
}

/// `changes` weight changes, one at a time; per change the time until
/// every LB flipped and until the bare watcher heard of it.
async fn changes_loop(
    cfg: &Cluster,
    lbs: usize,
    changes: usize,
    gws: &[&str],
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let prefix = cfg.prefix.clone();
    let mut client = connect(cfg).await?;
    let mut watcher = connect(cfg).await?;
    let mut stream = watcher
        .watch(
            record::dir(&prefix, record::GATEWAYS),
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await?;
    let (mut lb_ms, mut watch_ms) = (Vec::new(), Vec::new());
    for i in 0..changes {
        let name = gws[i % gws.len()];
        let (mut r, rev): (GatewayRecord, i64) = get_gateway(&mut client, &prefix, name)
            .await?
            .context("gateway record")?;
        r.weight = if r.weight == 1 { 2 } else { 1 };
        let key = record::key(&prefix, record::GATEWAYS, name);
        let value = serde_json::to_vec(&r)?;
        let t0 = now_us();
        let committed = cas(&mut client, &key, rev, Some(value), None).await?;
        // The bare watcher: the event of this revision.
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), stream.message())
                .await
                .context("the watcher heard nothing")??
                .context("watch closed")?;
            if m.events()
                .iter()
                .any(|e| e.kv().is_some_and(|kv| kv.mod_revision() == committed))
            {
                watch_ms.push((now_us() - t0) as f64 / 1000.0);
                break;
            }
        }
        // Every LB's record of this revision (or a later one).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = lb_tables(&mut client, &prefix).await?;
            let done: Vec<_> = t.iter().filter(|t| t.revision >= committed).collect();
            if done.len() == lbs {
                let last = done.iter().map(|t| t.applied_ms).max().unwrap_or(0);
                lb_ms.push(last as f64 - t0 as f64 / 1000.0);
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "change {i} (revision {committed}): {} of {lbs} LBs flipped in 10 s",
                    done.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok((lb_ms, watch_ms))
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub fn detection(ttl: u64, reps: usize) -> anyhow::Result<Detection> {
    let mut lab = ClusterLab::build(&prefix("d"), 3, 3, 3, ttl)?;
    for lb in 1..=3 {
        lab.start_lb(lb)?;
    }
    for gi in 0..3 {
        lab.start_gateway(gi, 1)?;
    }
    let all = [("gw1", 1), ("gw2", 1), ("gw3", 1)];
    lab.wait_tables(&all, Duration::from_secs(30))?;
    let cfg = section(&lab);
    let ns = format!("/run/netns/{}", lab.topo.ns("e"));
    let mut samples = Vec::new();
    for _ in 0..reps {
        lab.topo.kill_daemon("g2");
        let killed = now_ms();
        let flipped = crate::topo::in_netns(&ns, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut c = connect(&cfg).await?;
                    let deadline = Instant::now() + Duration::from_secs(ttl * 3 + 5);
                    loop {
                        let t = lb_tables(&mut c, &cfg.prefix).await?;
                        let without: Vec<_> = t
                            .iter()
                            .filter(|t| !t.gateways.iter().any(|g| g == "gw3"))
                            .collect();
                        if without.len() == 3 {
                            return anyhow::Ok(
                                without.iter().map(|t| t.applied_ms).max().unwrap_or(0),
                            );
                        }
                        if Instant::now() > deadline {
                            bail!("gw3 still in {} LB table(s)", 3 - without.len());
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
        })?;
        samples.push(flipped.saturating_sub(killed) as f64);
        lab.start_gateway(2, 1)?;
        lab.wait_tables(&all, Duration::from_secs(30))?;
    }
    let max = quantile(&samples, 1.0);
    Ok(Detection {
        lease_ttl_s: ttl,
        p50_ms: quantile(&samples, 0.5),
        max_ms: max,
        max_over_ttl: max / (ttl as f64 * 1000.0),
        samples_ms: samples,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::quantile(&v, 0.5), 50.0);
        assert_eq!(super::quantile(&v, 0.99), 99.0);
        assert_eq!(super::quantile(&v, 1.0), 100.0);
        assert_eq!(super::quantile(&[3.0], 0.99), 3.0);
    }
}
