//! The load-sharing extension's edge: the `router` XDP filter on the
//! interface, the extension's UDP messages, the held-frame buffer, and the
//! re-injection of held frames into this router's kernel (through a veth
//! pair) once their fence says they are ours to route.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    os::fd::OwnedFd,
    time::Duration,
};

use anyhow::{bail, Context as _};
use control::{
    router::config::{Direction, LoadSharing},
    router::loadshare::{Action, Event, Fence, LoadShare, Msg, PORT},
};
use dataplane_common::router::{BUCKETS, BUCKET_MINE};
use dataplane_user::{
    router::{frame_matches, BucketState, EndSystem, FilterConfig, Held},
    Dataplane,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub struct LsEdge {
    pub engine: LoadShare,
    dp: Dataplane,
    key: Vec<u8>,
    pub sock: tokio::net::UdpSocket,
    inject: OwnedFd,
    inject_ifindex: i32,
    inject_mac: [u8; 6],
    /// Held frames drained from the ring, in arrival order, bounded.
    held: HoldBuffer,
    /// Per-bucket routed packets at the last rate sample, and when.
    last_counts: Vec<u64>,
    last_sample: std::time::Instant,
    pub rates: Vec<u64>,
    pub reinjected: u64,
    pub discarded: u64,
    started: std::time::Instant,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LsStatus {
    pub owned: usize,
    pub held: usize,
    /// Buckets each router owns, as this router knows it.
    pub owners: BTreeMap<String, usize>,
    pub routed_packets: u64,
    /// Routed packets per owned bucket.
    pub bucket_packets: BTreeMap<u32, u64>,
    /// Packets per second per owned bucket (last second).
    pub bucket_pps: BTreeMap<u32, u64>,
    pub reviews_requested: u64,
    pub collections: u64,
    /// Collections after which no router exceeded its threshold.
    #[serde(default)]
    pub reviews_within_thresholds: u64,
    pub rate_rebalances: u64,
    pub handoffs_done: u64,
    pub handoffs_aborted: u64,
    /// Messages refused as from an earlier incarnation of their sender, as
    /// replays within one, and retransmissions already handled; peers seen
    /// to restart.
    #[serde(default)]
    pub stale: u64,
    #[serde(default)]
    pub replayed: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub peer_restarts: u64,
    pub reinjected: u64,
    pub discarded: u64,
    /// Held frames dropped because the daemon's hold buffer was full
    /// (`load_sharing.hold_max_frames`), and that bound.
    #[serde(default)]
    pub held_refused: u64,
    #[serde(default)]
    pub hold_max_frames: usize,
    /// The XDP filter's counters by verdict and reason (name, packets,
    /// bytes), as of this snapshot; `edgeplane stats` shows them.
    #[serde(skip)]
    pub filter: Vec<(String, u64, u64)>,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl LsEdge {
    pub fn start(
        iface: &str,
        vmac: [u8; 6],
        primary: IpAddr,
        priority: u8,
        cfg: &LoadSharing,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Self> {
        let mut dp = Dataplane::attach("router", iface, opts)?;
        dp.set_router_cfg(&FilterConfig {
            vmac,
            own_mac: None,
            end_system: if cfg.direction == Direction::Downstream {
                EndSystem::Destination
            } else {
                EndSystem::Source
            },
        })?;
        // Held frames are routed by handing them to this host's kernel
        // through a veth pair: in at `a`, received (and forwarded) at `b`.
        let (vrid, v6) = (vmac[5], vmac[4] == 2);
        let tag = if v6 {
            format!("6-{vrid}")
        } else {
            vrid.to_string()
        };
        let (a, b) = (format!("lsi{tag}a"), format!("lsi{tag}b"));
        let _ = run(&["ip", "link", "del", &a]);
        run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b])?;
        run(&["ip", "link", "set", &a, "up"])?;
        run(&["ip", "link", "set", &b, "up"])?;
        run(&["sysctl", "-qw", &format!("net.ipv4.conf.{b}.rp_filter=0")])?;
        run(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"])?;
        run(&["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"])?;
        run(&["sysctl", "-qw", &format!("net.ipv4.conf.{b}.forwarding=1")])?;
        // IPv6 forwarding is the host's (net.ipv6.conf.all.forwarding);
        // this turns it on for the injection side only where it exists.
        let _ = run(&["sysctl", "-qw", &format!("net.ipv6.conf.{b}.forwarding=1")]);
        let inject_ifindex = dataplane_user::ifindex(&a)? as i32;
        let inject_mac = dataplane_user::mac_of(&b)?;
        let inject = crate::packets::packet_socket().context("packet socket")?;
        let std_sock = std::net::UdpSocket::bind(SocketAddr::new(primary, PORT))
            .with_context(|| format!("binding {primary}:{PORT}"))?;
        std_sock.set_nonblocking(true)?;
        let sock = tokio::net::UdpSocket::from_std(std_sock)?;
        let mut ecfg = control::router::loadshare::Config::new(
            primary,
            priority,
            cfg.peers.clone(),
            cfg.hello_ms,
        );
        ecfg.review_pps = cfg.review_pps;
        ecfg.review_holddown_ms = cfg.review_holddown_ms;
        ecfg.collect_interval_ms = cfg.collect_interval_ms;
        ecfg.collect_holddown_ms = cfg.collect_holddown_ms;
        ecfg.backup_review_pps = cfg.backup_review_pps.clone();
        ecfg.hold_timeout_ms = cfg.hold_timeout_ms;
        let engine = LoadShare::new(ecfg);
        let mut edge = Self {
            engine,
            dp,
            key: cfg.key.as_bytes().to_vec(),
            sock,
            inject,
            inject_ifindex,
            inject_mac,
            held: HoldBuffer::new(cfg.hold_max_frames),
            last_counts: vec![0; BUCKETS as usize],
            last_sample: std::time::Instant::now(),
            rates: vec![0; BUCKETS as usize],
            reinjected: 0,
            discarded: 0,
            started: std::time::Instant::now(),
        };
        let init = edge.engine.initial_actions();
        for a in init {
            if let Action::SetBucket { bucket, state } = a {
                edge.set_bucket(bucket, state)?;
            }
        }
        let _ = edge.dp.take_held()?; // frames held by a daemon that died
        edge.dp.renew_router_lease()?;
        info!(interface = iface, vrid, "load sharing on");
        Ok(edge)
    }

    /// Packets per second per bucket since the last sample (claim 7),
    /// fed to the engine once a second.
    /// Keep the filter routing: called every tick.
    pub fn renew_lease(&mut self) -> anyhow::Result<()> {
        Ok(self.dp.renew_router_lease()?)
    }

    pub async fn sample_rates(&mut self) -> anyhow::Result<()> {
        if self.last_sample.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        let secs = self.last_sample.elapsed().as_secs_f64();
        let counts: Vec<u64> = self.dp.bucket_rates()?.iter().map(|c| c.packets).collect();
        self.rates = counts
            .iter()
            .zip(&self.last_counts)
            .map(|(n, o)| ((n.saturating_sub(*o)) as f64 / secs) as u64)
            .collect();
        self.last_counts = counts;
        self.last_sample = std::time::Instant::now();
        let now = self.now();
        let rates = self.rates.clone();
        self.event(Event::Rates { now, rates }).await;
        Ok(())
    }

    /// `state` as the engine keeps it (`dataplane_common::router::BUCKET_*`).
    pub fn set_bucket(&mut self, bucket: u8, state: u32) -> anyhow::Result<()> {
        Ok(self.dp.set_bucket(bucket, BucketState::from_raw(state)?)?)
    }

    pub fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Feed an event; carry out what the engine asks, feeding back the
    /// events the edge produces.
    pub async fn event(&mut self, ev: Event) {
        let mut queue = vec![ev];
        while let Some(ev) = queue.pop() {
            for a in self.engine.handle(ev) {
                match self.act(a).await {
                    Ok(Some(next)) => queue.push(next),
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "load-sharing action failed"),
                }
            }
        }
    }

    async fn act(&mut self, a: Action) -> anyhow::Result<Option<Event>> {
        match a {
            Action::Send { to, msg } => {
                let bytes = msg.encode(&self.key);
                let _ = self.sock.send_to(&bytes, SocketAddr::new(to, PORT)).await;
                Ok(None)
            }
            Action::SetBucket { bucket, state } => {
                self.set_bucket(bucket, state)?;
                Ok(None)
            }
            Action::ReadFences { epoch, buckets } => {
                // Packets already in the filter finish within microseconds.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let mut fences = Vec::new();
                for b in buckets {
                    fences.push(Fence {
                        bucket: b,
                        last: self.dp.last_routed(b)?,
                    });
                }
                Ok(Some(Event::FencesRead {
                    now: self.now(),
                    epoch,
                    fences,
                }))
            }
            Action::ApplyFence { epoch, fences } => {
                self.drain()?;
                let buckets: std::collections::BTreeSet<u8> =
                    fences.iter().map(|f| f.bucket).collect();
                for b in &buckets {
                    let fs: Vec<&Fence> = fences
                        .iter()
                        .filter(|f| f.bucket == *b && f.last.count > 0)
                        .collect();
                    let frames: Vec<Held> = self.take_bucket(*b);
                    // Claim 6: drop up to the latest packet an old owner
                    // routed; route the rest.
                    let cut = frames
                        .iter()
                        .rposition(|h| fs.iter().any(|f| frame_matches(&h.frame, &f.last)))
                        .map(|i| i + 1)
                        .unwrap_or(0);
                    self.discarded += cut as u64;
                    for h in &frames[cut..] {
                        self.reinject(&h.frame)?;
                    }
                    self.dp.set_bucket(*b, BucketState::Mine)?;
                }
                // Frames held between the drain and the switch.
                self.drain()?;
                for b in &buckets {
                    for h in self.take_bucket(*b) {
                        self.reinject(&h.frame)?;
                    }
                }
                Ok(Some(Event::FenceApplied {
                    now: self.now(),
                    epoch,
                }))
            }
            Action::DiscardHeld { buckets } => {
                self.drain()?;
                for b in buckets {
                    self.discarded += self.take_bucket(b).len() as u64;
                }
                Ok(None)
            }
        }
    }

    /// Move held frames from the ring buffer to the local buffer (each
    /// tick, so the ring does not fill during a long hand-off).
    pub fn drain(&mut self) -> anyhow::Result<()> {
        let refused = self.held.extend(self.dp.take_held()?);
        if refused > 0 {
            warn!(
                refused,
                max = self.held.max(),
                "held frames dropped: the hold buffer is full"
            );
        }
        Ok(())
    }

    fn take_bucket(&mut self, b: u8) -> Vec<Held> {
        self.held.take_bucket(b)
    }

    fn reinject(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        let mut f = frame.to_vec();
        f[0..6].copy_from_slice(&self.inject_mac);
        crate::packets::send_frame(&self.inject, self.inject_ifindex, &f)
            .context("re-injecting a held frame")?;
        self.reinjected += 1;
        Ok(())
    }

    pub fn decode(&self, data: &[u8]) -> Option<Msg> {
        Msg::decode(data, &self.key).ok()
    }

    pub fn status(&self) -> LsStatus {
        let now = self.now();
        let mut owners = BTreeMap::new();
        for o in self.engine.owner_map(now).into_iter().flatten() {
            *owners.entry(o.to_string()).or_insert(0) += 1;
        }
        let rates = self.dp.bucket_rates().unwrap_or_default();
        let mine: Vec<u32> = (0..BUCKETS)
            .filter(|b| self.engine.mine[*b as usize] == BUCKET_MINE)
            .collect();
        LsStatus {
            owned: mine.len(),
            held: self.held.len(),
            held_refused: self.held.refused,
            hold_max_frames: self.held.max(),
            owners,
            routed_packets: rates.iter().map(|c| c.packets).sum(),
            bucket_packets: mine
                .iter()
                .map(|b| (*b, rates.get(*b as usize).map(|c| c.packets).unwrap_or(0)))
                .collect(),
            bucket_pps: mine.iter().map(|b| (*b, self.rates[*b as usize])).collect(),
            reviews_requested: self.engine.reviews_requested,
            collections: self.engine.collections,
            reviews_within_thresholds: self.engine.reviews_within_thresholds,
            rate_rebalances: self.engine.rate_rebalances,
            handoffs_done: self.engine.handoffs_done,
            handoffs_aborted: self.engine.handoffs_aborted,
            stale: self.engine.stale,
            replayed: self.engine.replayed,
            duplicates: self.engine.duplicates,
            peer_restarts: self.engine.peer_restarts,
            reinjected: self.reinjected,
            discarded: self.discarded,
            filter: dataplane_common::router::stat::NAMES
                .iter()
                .zip(self.dp.router_stats().unwrap_or_default())
                .map(|(n, c)| ((*n).to_string(), c.packets, c.bytes))
                .collect(),
        }
    }
}

/// The frames held for buckets waiting for their fence, in arrival order,
/// at most `max` (`load_sharing.hold_max_frames`): a frame that arrives
/// when the buffer is full is refused (dropped and counted in `refused`),
/// and the frames already held are kept as they were, so a long hand-off
/// under a flood neither grows the daemon without bound nor loses the
/// frames the fence is cut against.
#[derive(Debug)]
pub struct HoldBuffer {
    frames: Vec<Held>,
    max: usize,
    /// Frames refused because the buffer was full, since the start.
    pub refused: u64,
}

impl HoldBuffer {
    pub fn new(max: usize) -> Self {
        Self {
            frames: Vec::new(),
            max,
            refused: 0,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames held, in arrival order.
    pub fn frames(&self) -> &[Held] {
        &self.frames
    }

    /// Keep `frames` (in order) while there is room; returns how many
    /// were refused.
    pub fn extend(&mut self, frames: impl IntoIterator<Item = Held>) -> u64 {
        let mut refused = 0;
        for h in frames {
            if self.frames.len() < self.max {
                self.frames.push(h);
            } else {
                refused += 1;
            }
        }
        self.refused += refused;
        refused
    }

    /// Take bucket `b`'s frames out, in arrival order; the others stay.
    pub fn take_bucket(&mut self, b: u8) -> Vec<Held> {
        let (mine, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.frames)
            .into_iter()
            .partition(|h| h.bucket == b as u32);
        self.frames = rest;
        mine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(bucket: u32, seq: u8) -> Held {
        Held {
            bucket,
            frame: vec![seq; 60],
        }
    }

    #[test]
    fn a_full_hold_buffer_refuses_new_frames_and_keeps_the_held_ones() {
        let mut b = HoldBuffer::new(4);
        assert_eq!(b.extend([held(1, 0), held(2, 1), held(1, 2)]), 0);
        let before = b.frames().to_vec();
        assert_eq!(b.extend([held(1, 3), held(1, 4), held(2, 5)]), 2);
        assert_eq!((b.len(), b.refused), (4, 2));
        assert_eq!(&b.frames()[..3], &before[..], "the held frames are kept");
        assert_eq!(b.frames()[3], held(1, 3), "the first to come is kept");
        assert_eq!(b.extend([held(3, 6)]), 1);
        assert_eq!(b.refused, 3, "refusals add up");
        // Taking a bucket out makes room again, the order kept.
        assert_eq!(b.take_bucket(1), vec![held(1, 0), held(1, 2), held(1, 3)]);
        assert_eq!(b.frames(), &[held(2, 1)]);
        assert_eq!(b.extend([held(2, 7)]), 0);
        assert_eq!(b.take_bucket(2), vec![held(2, 1), held(2, 7)]);
        assert!(b.is_empty());
    }
}
