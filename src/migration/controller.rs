//! The connection controller's edge on the edge host: the steering map
//! (which network each service's packets go to), the AF_XDP sockets a
//! held service's packets wait on and the ones that release them, in
//! order, to the new network. What to do with each request is the pure
//! engine's (`control::migration::controller`); this file carries it out.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::{
    migration::config::MigrationController,
    migration::controller::{Action, Controller, Input, Outcome, Output},
    migration::{Body, Frame},
};
use dataplane_common::migration::{NetEgress, Steering, STEER_HOLD};
use dataplane_user::{
    xsk::{Xsk, XskOptions},
    Dataplane,
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::transport::{serve, Auth};

/// Packets held during migrations: the AF_XDP sockets the steering
/// program hands them to (one per receive queue of the terminal-side
/// interface), and the frames taken off them, per service, in order.
struct Held {
    rx: Vec<Xsk>,
    frames: HoldFrames,
}

impl Held {
    /// Move every frame waiting on the sockets into `frames`.
    fn drain(&mut self) {
        let Held { rx, frames } = self;
        // Bounded per call (64 × 256 frames a socket), so a flood to a
        // held service cannot keep the lock from a switch.
        for x in rx.iter_mut() {
            for _ in 0..64 {
                let n = x.recv(256, |f| frames.push(f));
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// The frames taken off the hold sockets, per service in arrival order,
/// at most `max` a service (`migration.controller.hold_max_frames`) and
/// `max_total` over all (`hold_max_frames_total`): a frame that comes
/// when its service's queue, or the whole hold, is full is refused
/// (dropped and counted), and the frames held before it are kept as they
/// were and released in order. What is not an IP frame has no service:
/// refused.
#[derive(Debug)]
pub struct HoldFrames {
    frames: HashMap<IpAddr, VecDeque<Vec<u8>>>,
    /// When each service's first held frame was taken off a socket.
    first: HashMap<IpAddr, Instant>,
    pub max: usize,
    pub max_total: usize,
    /// Frames held over all services.
    total: usize,
    /// Refused since the start: a service's queue was full; every
    /// service's together were; not IPv4 or IPv6 (no destination to hold
    /// it for).
    pub refused_full: u64,
    pub refused_total_full: u64,
    pub refused_not_ip: u64,
    /// `refused_full` when it was last logged.
    logged: u64,
}

impl HoldFrames {
    pub fn new(max: usize, max_total: usize) -> Self {
        Self {
            frames: HashMap::new(),
            first: HashMap::new(),
            max,
            max_total,
            total: 0,
            refused_full: 0,
            refused_total_full: 0,
            refused_not_ip: 0,
            logged: 0,
        }
    }

    /// Hold a frame (copied) for its destination, if there is room.
    pub fn push(&mut self, f: &[u8]) {
        let Some(dst) = frame_dst(f) else {
            self.refused_not_ip += 1;
            return;
        };
        let q = self.frames.entry(dst).or_default();
        if q.len() >= self.max {
            self.refused_full += 1;
        } else if self.total >= self.max_total {
            self.refused_total_full += 1;
        } else {
            q.push_back(f.to_vec());
            self.total += 1;
            self.first.entry(dst).or_insert_with(Instant::now);
        }
    }

    /// Every frame held, over all services.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `service`'s frames, in arrival order, without taking them.
    pub fn held(&self, service: IpAddr) -> impl Iterator<Item = &Vec<u8>> {
        self.frames.get(&service).into_iter().flatten()
    }

    /// Take `service`'s frames out (in arrival order) and when its first
    /// one was held.
    pub fn take(&mut self, service: IpAddr) -> (VecDeque<Vec<u8>>, Option<Instant>) {
        let q = self.frames.remove(&service).unwrap_or_default();
        self.total -= q.len();
        (q, self.first.remove(&service))
    }

    /// Frames refused as full (a service's or all) since the last call
    /// (for the log).
    fn newly_refused(&mut self) -> u64 {
        let all = self.refused_full + self.refused_total_full;
        let n = all - self.logged;
        self.logged = all;
        n
    }
}

/// The destination address of an IPv4 or IPv6 frame, behind up to two
/// VLAN tags.
fn frame_dst(f: &[u8]) -> Option<IpAddr> {
    let mut off = 12;
    let mut proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    for _ in 0..2 {
        if proto != 0x8100 && proto != 0x88a8 {
            break;
        }
        off += 4;
        proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    match proto {
        0x0800 => {
            let d: [u8; 4] = f.get(off + 2 + 16..off + 2 + 20)?.try_into().ok()?;
            Some(IpAddr::from(d))
        }
        0x86dd => {
            let d: [u8; 16] = f.get(off + 2 + 24..off + 2 + 40)?.try_into().ok()?;
            Some(IpAddr::from(d))
        }
        _ => None,
    }
}

/// The controller's I/O: the steer program's maps, the networks'
/// egress and the AF_XDP sockets.
struct SteerIo {
    dp: Dataplane,
    /// Network id → (next hop MAC, egress MAC, egress ifindex).
    nets: HashMap<u32, ([u8; 6], [u8; 6], u32)>,
    /// AF_XDP sockets that send released frames, by interface (networks
    /// behind the terminal-side interface use its receive socket).
    tx: HashMap<u32, Xsk>,
    ingress: u32,
    held: Arc<Mutex<Held>>,
}

impl SteerIo {
    /// Program network `id`'s egress (map entry, and a TX socket on its
    /// interface unless one is open already).
    fn add_network(
        &mut self,
        id: u32,
        name: &str,
        via: &str,
        next_hop_mac: control::field::MacAddr,
    ) -> Result<(), String> {
        if id >= dataplane_common::migration::NETWORKS_MAX {
            return Err(format!(
                "network {name}: id {id} is out of range (0..{})",
                dataplane_common::migration::NETWORKS_MAX
            ));
        }
        let mac = next_hop_mac.0;
        let ifindex = dataplane_user::ifindex(via).map_err(|e| format!("network {name}: {e}"))?;
        let src = dataplane_user::mac_of(via).map_err(|e| format!("network {name}: {e}"))?;
        if ifindex != self.ingress && !self.tx.contains_key(&ifindex) {
            let x = Xsk::open(ifindex, 0, &xsk_options(false))
                .map_err(|e| format!("AF_XDP socket on {via} (network {name}): {e}"))?;
            self.tx.insert(ifindex, x);
        }
        self.dp
            .set_network(
                id,
                &NetEgress {
                    dst_mac: mac,
                    src_mac: src,
                    ifindex,
                    valid: 1,
                },
            )
            .map_err(|e| format!("network {name}: {e}"))?;
        self.nets.insert(id, (mac, src, ifindex));
        Ok(())
    }

    fn steer(&mut self, service: IpAddr, network: u32, flags: u32) -> Result<(), String> {
        self.dp
            .set_steering(service, Steering { network, flags })
            .map_err(|e| e.to_string())
    }

    /// Carry out one of the engine's actions; `t0`: when the request
    /// being handled arrived (a switch's time counts from there).
    fn perform(&mut self, action: &Action, t0: Instant) -> Outcome {
        match action {
            Action::Hold { service, network } => {
                // Frames left from an earlier hold (raced past its
                // release) are stale now: drop them.
                let key = *service;
                {
                    let mut h = self.held.lock().unwrap();
                    h.drain();
                    let stale = h.frames.take(key).0.len();
                    if stale > 0 {
                        warn!(%service, stale, "dropped frames left from an earlier hold");
                    }
                }
                Outcome::Done(self.steer(*service, *network, STEER_HOLD))
            }
            Action::AddNetwork {
                id,
                name,
                via,
                next_hop_mac,
            } => Outcome::Done(self.add_network(*id, name, via, *next_hop_mac)),
            Action::Switch { service, to } => Outcome::Switched((|| {
                // Release what was held, in order, to the new network
                // while the service is still held (so nothing new
                // overtakes it), then let the service's packets go to the
                // new network directly; the engine then has what raced in
                // before that sent.
                let key = *service;
                self.steer(*service, *to, STEER_HOLD)?;
                let mut pause = None;
                let mut released = 0;
                for _ in 0..64 {
                    let n = release(self, key, *to, &mut pause)?;
                    released += n;
                    if n == 0 {
                        break;
                    }
                }
                self.steer(*service, *to, 0)?;
                Ok((t0.elapsed().as_micros() as u64, released, pause))
            })()),
            Action::Release {
                service,
                network,
                pause_us,
            } => {
                let mut pause = *pause_us;
                Outcome::Released(release(self, *service, *network, &mut pause).map(|n| (n, pause)))
            }
            Action::Steer { service, network } => Outcome::Done(self.steer(*service, *network, 0)),
            Action::Unsteer { service } => {
                Outcome::Done(self.dp.remove_steering(*service).map_err(|e| e.to_string()))
            }
        }
    }
}

/// The engine and its I/O, one request at a time.
struct Running {
    engine: Controller,
    io: SteerIo,
}

impl Running {
    /// Carry out the engine's outputs and feed back their outcomes until
    /// none are left: the answer, if one came, and the notes.
    fn run(&mut self, first: Vec<Output>, t0: Instant) -> (Option<Body>, Vec<String>) {
        let mut queue: VecDeque<Output> = first.into();
        let (mut answer, mut notes) = (None, Vec::new());
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Answer(b) => answer = Some(b),
                Output::Note(n) => {
                    info!("{n}");
                    notes.push(n);
                }
                Output::Changed {
                    service,
                    from,
                    to,
                    cause,
                } => {
                    let show = |s: Option<String>| s.unwrap_or_else(|| "-".into());
                    info!(%service, "{} → {}: {cause}", show(from), show(to));
                }
                Output::Do(action) => {
                    let outcome = self.io.perform(&action, t0);
                    queue.extend(self.engine.handle(Input::Done { action, outcome }));
                }
            }
        }
        (answer, notes)
    }
}

fn xsk_options(rx: bool) -> XskOptions {
    XskOptions {
        frames: 4096,
        frame_size: 2048,
        rx,
        tx: true,
    }
}

/// What the controller is doing now: the services it steers (address,
/// network) and the frames it holds.
#[derive(Clone)]
pub struct ControllerStatus {
    pub queues: usize,
    pub networks: Vec<u32>,
    pub services: Vec<(String, u32)>,
    pub held_frames: usize,
    pub last_switch_us: Option<u64>,
}

/// The running controller, for `status`, `stats` and reload.
pub struct ControllerHandle {
    c: Arc<Mutex<Running>>,
    pub interface: String,
}

impl ControllerHandle {
    /// The steer program's counters by reason, then the AF_XDP sockets'
    /// drops (summed over the receive queues).
    pub fn counters(&self) -> anyhow::Result<Vec<(String, u64, u64)>> {
        let c = self.c.lock().unwrap();
        let mut out: Vec<(String, u64, u64)> =
            c.io.dp
                .steer_stats()?
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        dataplane_common::migration::stat::NAMES[i].to_string(),
                        k.packets,
                        k.bytes,
                    )
                })
                .collect();
        let h = c.io.held.lock().unwrap();
        let mut sum = dataplane_user::xsk::XskStats::default();
        for x in &h.rx {
            let st = x.stats()?;
            sum.rx_dropped += st.rx_dropped;
            sum.rx_ring_full += st.rx_ring_full;
            sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
        }
        out.push(("xsk_rx_dropped".into(), sum.rx_dropped, 0));
        out.push(("xsk_rx_ring_full".into(), sum.rx_ring_full, 0));
        out.push((
            "xsk_fill_ring_empty".into(),
            sum.rx_fill_ring_empty_descs,
            0,
        ));
        out.push(("held_refused_full".into(), h.frames.refused_full, 0));
        out.push((
            "held_refused_total_full".into(),
            h.frames.refused_total_full,
            0,
        ));
        out.push(("held_refused_not_ip".into(), h.frames.refused_not_ip, 0));
        Ok(out)
    }

    pub fn summary(&self) -> ControllerStatus {
        let c = self.c.lock().unwrap();
        let h = c.io.held.lock().unwrap();
        let mut services: Vec<(String, u32)> = c
            .engine
            .services()
            .map(|(a, s)| (a.to_string(), s.network()))
            .collect();
        services.sort();
        let networks: Vec<u32> = c.engine.networks().collect();
        ControllerStatus {
            queues: h.rx.len(),
            networks,
            services,
            held_frames: h.frames.len(),
            last_switch_us: c.engine.last_switch_us,
        }
    }

    /// Whether the config's networks and services can be applied now
    /// (changes nothing): the engine's refusals, and each new network's
    /// interface must exist.
    pub fn check(&self, cfg: &MigrationController) -> Result<(), String> {
        self.c
            .lock()
            .unwrap()
            .engine
            .check(&cfg.networks, &cfg.services)?;
        for (i, n) in cfg.networks.iter().enumerate() {
            dataplane_user::ifindex(&n.via)
                .and_then(|_| dataplane_user::mac_of(&n.via))
                .map_err(|e| format!("migration.controller.network[{i}].via: {e}"))?;
        }
        Ok(())
    }

    /// Apply the config's networks and services; what changed.
    pub fn configure(&self, cfg: &MigrationController) -> Result<Vec<String>, String> {
        let mut c = self.c.lock().unwrap();
        let first = c.engine.configure(&cfg.networks, &cfg.services)?;
        let mut held = c.io.held.lock().unwrap();
        held.frames.max = cfg.hold_max_frames;
        held.frames.max_total = cfg.hold_max_frames_total;
        drop(held);
        Ok(c.run(first, Instant::now()).1)
    }
}

pub async fn run_controller(
    cfg: MigrationController,
    opts: &dataplane_user::LoadOptions,
    auth: Arc<Auth>,
) -> anyhow::Result<ControllerHandle> {
    let dp = Dataplane::attach("steer", &cfg.interface, opts)?;
    // One AF_XDP socket per receive queue (copy mode): held packets wait
    // there until the switch.
    let ingress = dataplane_user::ifindex(&cfg.interface)?;
    // Counted in this network namespace (sysfs would show the one that
    // mounted it).
    let queues = crate::netlink::rx_queues_in_use(&cfg.interface, ingress)
        .with_context(|| format!("{}: receive queues", cfg.interface))?
        .max(1);
    anyhow::ensure!(
        queues <= dataplane_common::migration::QUEUES_MAX,
        "{}: {queues} receive queues, at most {} are supported",
        cfg.interface,
        dataplane_common::migration::QUEUES_MAX
    );
    let mut rx = Vec::new();
    for q in 0..queues {
        rx.push(
            Xsk::open(ingress, q, &xsk_options(true))
                .with_context(|| format!("AF_XDP socket on {} queue {q}", cfg.interface))?,
        );
    }
    // After a restart the pinned steering map says where each service
    // went (the config only says where it started); a hold there died with
    // the old sockets, so it is cleared.
    let mut current = HashMap::new();
    for sv in &cfg.services {
        let net = match dp.steering(sv.address)? {
            Some(st) => {
                if st.network != sv.network || st.flags != 0 {
                    info!(service = %sv.address, network = st.network, held = st.flags & STEER_HOLD != 0, "steering kept from before the restart");
                }
                st.network
            }
            None => sv.network,
        };
        current.insert(sv.address, net);
    }
    let fds: Vec<i32> = rx.iter().map(|x| x.fd()).collect();
    let held = Arc::new(Mutex::new(Held {
        rx,
        frames: HoldFrames::new(cfg.hold_max_frames, cfg.hold_max_frames_total),
    }));
    let io = SteerIo {
        dp,
        nets: HashMap::new(),
        tx: HashMap::new(),
        ingress,
        held: held.clone(),
    };
    let mut c = Running {
        engine: Controller::new(current.clone()),
        io,
    };
    // The config's networks, programmed as the engine asks; any failure
    // stops the start.
    let first = c
        .engine
        .configure(&cfg.networks, &cfg.services)
        .map_err(|e| anyhow::anyhow!(e))?;
    for o in first {
        if let Output::Do(a) = o {
            let outcome = c.io.perform(&a, Instant::now());
            if let Outcome::Done(Err(e)) = &outcome {
                anyhow::bail!("{e}");
            }
            c.engine.handle(Input::Done { action: a, outcome });
        }
    }
    for (addr, net) in current {
        c.io.steer(addr, net, 0).map_err(|e| anyhow::anyhow!(e))?;
    }
    // Only now (no hold left from before a restart) do held packets reach
    // the new sockets.
    for (q, fd) in fds.iter().enumerate() {
        c.io.dp.set_steer_xsk(q as u32, *fd)?;
    }
    {
        // Take held frames off the sockets as they come, so a long hold is
        // bounded by hold_max_frames, not by the ring size.
        let held = held.clone();
        std::thread::Builder::new()
            .name("steer-hold".into())
            .spawn(move || loop {
                let mut p: Vec<libc::pollfd> = fds
                    .iter()
                    .map(|&fd| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                // SAFETY: `p` is a valid array of pollfd for the call.
                let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, 20) };
                if n > 0 {
                    held.lock().unwrap().drain();
                }
            })?;
    }
    let l = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("controller listen {}", cfg.listen))?;
    info!(listen = %cfg.listen, interface = %cfg.interface, queues, "connection controller on");
    let c = Arc::new(Mutex::new(c));
    let handle = ControllerHandle {
        c: c.clone(),
        interface: cfg.interface.clone(),
    };
    tokio::spawn(serve(l, auth, move |f: Frame| {
        let c = c.clone();
        async move {
            tokio::task::spawn_blocking(move || controller(&mut c.lock().unwrap(), f.body))
                .await
                .unwrap_or_else(|e| Body::Error {
                    reason: e.to_string(),
                })
        }
    }));
    Ok(handle)
}

/// Take `service`'s held frames off the sockets and send them to network
/// `net` in order; `pause` gets the time from the first held frame to the
/// first sent. Returns how many were sent.
fn release(
    c: &mut SteerIo,
    service: IpAddr,
    net: u32,
    pause: &mut Option<u64>,
) -> Result<u32, String> {
    let SteerIo { nets, tx, held, .. } = c;
    let (mac, src, ifindex) = *nets.get(&net).ok_or_else(|| format!("no network {net}"))?;
    let mut h = held.lock().unwrap();
    h.drain();
    let (frames, first) = h.frames.take(service);
    let refused = h.frames.newly_refused();
    if refused > 0 {
        warn!(
            refused,
            max = h.frames.max,
            "held frames dropped: a hold was full"
        );
    }
    if frames.is_empty() {
        return Ok(0);
    }
    let x = match tx.get_mut(&ifindex) {
        Some(x) => x,
        None => {
            h.rx.first_mut()
                .ok_or("no AF_XDP socket on the terminal side")?
        }
    };
    let mut sent = 0;
    for mut frame in frames {
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&src);
        x.send(&frame)
            .map_err(|e| format!("releasing a held frame: {e}"))?;
        if pause.is_none() {
            *pause = Some(first.map(|t| t.elapsed().as_micros() as u64).unwrap_or(0));
        }
        sent += 1;
    }
    let left = x.flush(Duration::from_millis(200));
    if left > 0 {
        return Err(format!(
            "{left} released frames did not leave within 200 ms"
        ));
    }
    Ok(sent)
}

/// One request: the engine's answer, its actions carried out.
fn controller(c: &mut Running, body: Body) -> Body {
    let t0 = Instant::now();
    let first = c.engine.handle(Input::Request(body));
    c.run(first, t0).0.unwrap_or_else(|| Body::Error {
        reason: "internal: the controller gave no answer".into(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_full_hold_refuses_new_frames_and_keeps_the_held_ones() {
        let (a, b) = (Ipv4Addr::new(10, 99, 0, 80), Ipv4Addr::new(10, 99, 0, 81));
        let frame = |dst: Ipv4Addr, n: u8| {
            crate::packets::udp_packet(Ipv4Addr::new(10, 7, 0, 2), dst, 4000, 9000, &[n; 8])
        };
        let mut h = HoldFrames::new(3, 100);
        for n in 0..3 {
            h.push(&frame(a, n));
        }
        let before: Vec<Vec<u8>> = h.held(a.into()).cloned().collect();
        for n in 3..8 {
            h.push(&frame(a, n));
        }
        assert_eq!((h.len(), h.refused_full), (3, 5), "five refused");
        let kept: Vec<Vec<u8>> = h.held(a.into()).cloned().collect();
        assert_eq!(kept, before, "the held frames are kept as they were");
        // Another service has its own room; a frame that is not IP none.
        h.push(&frame(b, 0));
        let mut arp = frame(b, 1);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        h.push(&arp);
        assert_eq!((h.len(), h.refused_full, h.refused_not_ip), (4, 5, 1));
        assert_eq!(h.newly_refused(), 5);
        assert_eq!(h.newly_refused(), 0, "logged once");
        // Released in order; then the service has room again.
        let (out, first) = h.take(a.into());
        assert_eq!(Vec::from(out), before);
        assert!(first.is_some());
        h.push(&frame(a, 9));
        assert_eq!((h.len(), h.refused_full), (2, 5));
    }

    /// Every service's frames together are bounded too: with 3 a service
    /// and 5 in all, a third service gets what is left, then is refused
    /// (counted apart from a service's own bound), and what is held is
    /// kept; a release gives the room back.
    #[test]
    fn the_whole_hold_is_bounded_over_services() {
        let frame = |dst: u8, n: u8| {
            crate::packets::udp_packet(
                Ipv4Addr::new(10, 7, 0, 2),
                Ipv4Addr::new(10, 99, 0, dst),
                4000,
                9000,
                &[n; 8],
            )
        };
        let svc = |dst: u8| IpAddr::from(Ipv4Addr::new(10, 99, 0, dst));
        let mut h = HoldFrames::new(3, 5);
        for n in 0..3 {
            h.push(&frame(1, n));
            h.push(&frame(2, n));
        }
        // Interleaved: 1 took 3, 2 took 2, and the 6th frame found the
        // hold full.
        assert_eq!((h.len(), h.refused_full, h.refused_total_full), (5, 0, 1));
        let held: Vec<Vec<Vec<u8>>> = [1, 2].map(|d| h.held(svc(d)).cloned().collect()).to_vec();
        assert_eq!((held[0].len(), held[1].len()), (3, 2));
        for n in 0..4 {
            h.push(&frame(3, n));
        }
        assert_eq!((h.len(), h.refused_total_full), (5, 5));
        assert_eq!(h.held(svc(3)).count(), 0);
        let again: Vec<Vec<Vec<u8>>> = [1, 2].map(|d| h.held(svc(d)).cloned().collect()).to_vec();
        assert_eq!(again, held, "the held frames are kept as they were");
        assert_eq!(h.newly_refused(), 5);
        // Service 1 released: its 3 frames of room go to service 3.
        let (out, first) = h.take(svc(1));
        assert_eq!((out.len(), first.is_some()), (3, true));
        for n in 0..4 {
            h.push(&frame(3, n));
        }
        assert_eq!((h.len(), h.held(svc(3)).count(), h.refused_full), (5, 3, 1));
        assert!(h.take(svc(3)).1.is_some());
        assert_eq!(h.len(), 2);
    }
}
