//! The connection controller on the edge host: the steering map (which
//! network each service's packets go to), holding a service's packets on
//! AF_XDP sockets during a migration and releasing them, in order, to
//! the new network.

use std::{
    collections::{HashMap, VecDeque},
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::{
    migration::config::MigrationController,
    migration::Body,
};
use dataplane_common::steer::{NetEgress, Steering, STEER_HOLD};
use dataplane_user::{
    xsk::{Xsk, XskOptions},
    Dataplane,
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::transport::serve;
use control::migration::Frame;

/// Frames one service may have held at once; more are dropped and counted.
pub const HOLD_FRAMES_MAX: usize = 65536;

/// Packets held during migrations: the AF_XDP sockets the steering
/// program hands them to (one per receive queue of the terminal-side
/// interface), and the frames taken off them, per service, in order.
struct Held {
    rx: Vec<Xsk>,
    frames: HashMap<u32, VecDeque<Vec<u8>>>,
    /// When each service's first held frame was taken off a socket.
    first: HashMap<u32, Instant>,
    overflow: u64,
}

impl Held {
    /// Move every frame waiting on the sockets into `frames`.
    fn drain(&mut self) {
        let Held { rx, frames, first, overflow } = self;
        // Bounded per call (64 × 256 frames a socket), so a flood to a
        // held service cannot keep the lock from a switch.
        for x in rx.iter_mut() {
            for _ in 0..64 {
                let n = x.recv(256, |f| match ipv4_dst(f) {
                    Some(dst) => {
                        first.entry(dst).or_insert_with(Instant::now);
                        let q = frames.entry(dst).or_default();
                        if q.len() < HOLD_FRAMES_MAX {
                            q.push_back(f.to_vec());
                        } else {
                            *overflow += 1;
                        }
                    }
                    None => *overflow += 1,
                });
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// The destination address (network order, as the steering map keys it)
/// of an IPv4 frame, behind up to two VLAN tags.
fn ipv4_dst(f: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    for _ in 0..2 {
        if proto != 0x8100 && proto != 0x88a8 {
            break;
        }
        off += 4;
        proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    if proto != 0x0800 {
        return None;
    }
    let d = f.get(off + 2 + 16..off + 2 + 20)?;
    Some(u32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
}

struct Controller {
    dp: Dataplane,
    /// Network id → (next hop MAC, egress MAC, egress ifindex).
    nets: HashMap<u32, ([u8; 6], [u8; 6], u32)>,
    /// AF_XDP sockets that send released frames, by interface (networks
    /// behind the terminal-side interface use its receive socket).
    tx: HashMap<u32, Xsk>,
    ingress: u32,
    held: Arc<Mutex<Held>>,
    current: HashMap<Ipv4Addr, u32>,
    pub last_switch_us: Option<u64>,
}

impl Controller {
    /// Program network `id`'s egress (map entry, and a TX socket on its
    /// interface unless one is open already).
    fn add_network(&mut self, id: u32, name: &str, via: &str, next_hop_mac: &str) -> Result<(), String> {
        if id >= dataplane_common::steer::NETWORKS_MAX {
            return Err(format!("network {name}: id {id} is out of range (0..{})", dataplane_common::steer::NETWORKS_MAX));
        }
        let mac = control::field::parse_mac(next_hop_mac).ok_or_else(|| format!("network {name}: {next_hop_mac:?} is not a MAC address"))?;
        let ifindex = dataplane_user::ifindex(via).map_err(|e| format!("network {name}: {e}"))?;
        let src = dataplane_user::mac_of(via).map_err(|e| format!("network {name}: {e}"))?;
        if ifindex != self.ingress && !self.tx.contains_key(&ifindex) {
            let x = Xsk::open(ifindex, 0, &xsk_options(false)).map_err(|e| format!("AF_XDP socket on {via} (network {name}): {e}"))?;
            self.tx.insert(ifindex, x);
        }
        self.dp.set_network(id, &NetEgress { dst_mac: mac, src_mac: src, ifindex, valid: 1 }).map_err(|e| format!("network {name}: {e}"))?;
        self.nets.insert(id, (mac, src, ifindex));
        Ok(())
    }
}

fn xsk_options(rx: bool) -> XskOptions {
    XskOptions { frames: 4096, frame_size: 2048, rx, tx: true }
}

/// The running controller, for `status` and `stats`.
#[derive(Clone)]
/// What the controller is doing now: the services it steers (address,
/// network) and the frames it holds.
pub struct ControllerStatus {
    pub queues: usize,
    pub networks: Vec<u32>,
    pub services: Vec<(String, u32)>,
    pub held_frames: usize,
    pub last_switch_us: Option<u64>,
}

pub struct ControllerHandle {
    c: Arc<Mutex<Controller>>,
    pub interface: String,
}

impl ControllerHandle {
    /// The steer program's counters by reason, then the AF_XDP sockets'
    /// drops (summed over the receive queues).
    pub fn counters(&self) -> anyhow::Result<Vec<(String, u64, u64)>> {
        let c = self.c.lock().unwrap();
        let mut out: Vec<(String, u64, u64)> =
            c.dp.steer_stats()?.iter().enumerate().map(|(i, k)| (dataplane_common::steer::stat::NAMES[i].to_string(), k.packets, k.bytes)).collect();
        let h = c.held.lock().unwrap();
        let mut sum = dataplane_user::xsk::XskStats::default();
        for x in &h.rx {
            let st = x.stats()?;
            sum.rx_dropped += st.rx_dropped;
            sum.rx_ring_full += st.rx_ring_full;
            sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
        }
        out.push(("xsk_rx_dropped".into(), sum.rx_dropped, 0));
        out.push(("xsk_rx_ring_full".into(), sum.rx_ring_full, 0));
        out.push(("xsk_fill_ring_empty".into(), sum.rx_fill_ring_empty_descs, 0));
        Ok(out)
    }

    pub fn summary(&self) -> ControllerStatus {
        let c = self.c.lock().unwrap();
        let h = c.held.lock().unwrap();
        let mut services: Vec<(String, u32)> = c.current.iter().map(|(a, n)| (a.to_string(), *n)).collect();
        services.sort();
        let mut networks: Vec<u32> = c.nets.keys().copied().collect();
        networks.sort();
        ControllerStatus { queues: h.rx.len(), networks, services, held_frames: h.frames.values().map(|q| q.len()).sum(), last_switch_us: c.last_switch_us }
    }
}

pub async fn run_controller(cfg: MigrationController, opts: &dataplane_user::LoadOptions) -> anyhow::Result<ControllerHandle> {
    let dp = Dataplane::attach("steer", &cfg.interface, opts)?;
    // One AF_XDP socket per receive queue (copy mode): held packets wait
    // there until the switch.
    let ingress = dataplane_user::ifindex(&cfg.interface)?;
    let queues = std::fs::read_dir(format!("/sys/class/net/{}/queues", cfg.interface))
        .with_context(|| format!("{}: receive queues", cfg.interface))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("rx-")))
        .count()
        .max(1) as u32;
    anyhow::ensure!(queues <= dataplane_common::steer::QUEUES_MAX, "{}: {queues} receive queues, at most {} are supported", cfg.interface, dataplane_common::steer::QUEUES_MAX);
    let mut rx = Vec::new();
    for q in 0..queues {
        rx.push(Xsk::open(ingress, q, &xsk_options(true)).with_context(|| format!("AF_XDP socket on {} queue {q}", cfg.interface))?);
    }
    // After a restart the pinned steering map says where each service
    // went (the config only says where it started); a hold there died with
    // the old sockets, so it is cleared.
    let mut current = HashMap::new();
    for sv in &cfg.services {
        let key = u32::from_ne_bytes(sv.address.octets());
        let net = match dp.steering(key)? {
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
    let held = Arc::new(Mutex::new(Held { rx, frames: HashMap::new(), first: HashMap::new(), overflow: 0 }));
    let mut c = Controller { dp, nets: HashMap::new(), tx: HashMap::new(), ingress, held: held.clone(), current, last_switch_us: None };
    for n in &cfg.networks {
        c.add_network(n.id, &n.name, &n.via, &n.next_hop_mac).map_err(|e| anyhow::anyhow!(e))?;
    }
    for (addr, net) in c.current.clone() {
        c.dp.set_steering(u32::from_ne_bytes(addr.octets()), Steering { network: net, flags: 0 })?;
    }
    // Only now (no hold left from before a restart) do held packets reach
    // the new sockets.
    for (q, fd) in fds.iter().enumerate() {
        c.dp.set_steer_xsk(q as u32, *fd)?;
    }
    {
        // Take held frames off the sockets as they come, so a long hold is
        // bounded by HOLD_FRAMES_MAX, not by the ring size.
        let held = held.clone();
        std::thread::Builder::new().name("steer-hold".into()).spawn(move || loop {
            let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            // SAFETY: `p` is a valid array of pollfd for the call.
            let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, 20) };
            if n > 0 {
                held.lock().unwrap().drain();
            }
        })?;
    }
    let l = TcpListener::bind(cfg.listen).await.with_context(|| format!("controller listen {}", cfg.listen))?;
    info!(listen = %cfg.listen, interface = %cfg.interface, queues, "connection controller on");
    let c = Arc::new(Mutex::new(c));
    let handle = ControllerHandle { c: c.clone(), interface: cfg.interface.clone() };
    tokio::spawn(serve(l, move |f: Frame| {
        let c = c.clone();
        async move { tokio::task::spawn_blocking(move || controller(&mut c.lock().unwrap(), f.body)).await.unwrap_or_else(|e| Body::Error { reason: e.to_string() }) }
    }));
    Ok(handle)
}

/// Take `service`'s held frames off the sockets and send them to network
/// `net` in order; `pause` gets the time from the first held frame to the
/// first sent. Returns how many were sent.
fn release(c: &mut Controller, service: u32, net: u32, pause: &mut Option<u64>) -> Result<u32, String> {
    let Controller { nets, tx, held, .. } = c;
    let (mac, src, ifindex) = *nets.get(&net).ok_or_else(|| format!("no network {net}"))?;
    let mut h = held.lock().unwrap();
    h.drain();
    let frames = h.frames.remove(&service).unwrap_or_default();
    let first = h.first.remove(&service);
    let overflow = std::mem::take(&mut h.overflow);
    if overflow > 0 {
        warn!(overflow, "held frames dropped: a hold was full");
    }
    if frames.is_empty() {
        return Ok(0);
    }
    let x = match tx.get_mut(&ifindex) {
        Some(x) => x,
        None => h.rx.first_mut().ok_or("no AF_XDP socket on the terminal side")?,
    };
    let mut sent = 0;
    for mut frame in frames {
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&src);
        x.send(&frame).map_err(|e| format!("releasing a held frame: {e}"))?;
        if pause.is_none() {
            *pause = Some(first.map(|t| t.elapsed().as_micros() as u64).unwrap_or(0));
        }
        sent += 1;
    }
    let left = x.flush(Duration::from_millis(200));
    if left > 0 {
        return Err(format!("{left} released frames did not leave within 200 ms"));
    }
    Ok(sent)
}

fn controller(c: &mut Controller, body: Body) -> Body {
    let r: Result<Body, String> = (|| match body {
        Body::Hold { service } => {
            let net = *c.current.get(&service).ok_or_else(|| format!("{service} is not steered here"))?;
            // Frames left from an earlier hold (raced past its release)
            // are stale now: drop them.
            {
                let key = u32::from_ne_bytes(service.octets());
                let mut h = c.held.lock().unwrap();
                h.drain();
                let stale = h.frames.remove(&key).map_or(0, |f| f.len());
                h.first.remove(&key);
                if stale > 0 {
                    warn!(%service, stale, "dropped frames left from an earlier hold");
                }
            }
            c.dp.set_steering(u32::from_ne_bytes(service.octets()), Steering { network: net, flags: STEER_HOLD }).map_err(|e| e.to_string())?;
            Ok(Body::Ok)
        }
        Body::SwitchRequest { service, to } => {
            let t0 = Instant::now();
            if !c.nets.contains_key(&to.id) {
                match (&to.via, &to.next_hop_mac) {
                    (Some(via), Some(mac)) => {
                        // Claim 4: the request carries network 2's information.
                        c.add_network(to.id, &to.name, via, mac)?;
                        info!(network = %to.name, id = to.id, via, "network learned from a switch request");
                    }
                    _ => return Err(format!("no network {} ({}) here, and the request does not say how to reach it", to.id, to.name)),
                }
            }
            let key = u32::from_ne_bytes(service.octets());
            // Release what was held, in order, to the new network while the
            // service is still held (so nothing new overtakes it), then let
            // the service's packets go to the new network directly, then
            // send what raced in before that.
            c.dp.set_steering(key, Steering { network: to.id, flags: STEER_HOLD }).map_err(|e| e.to_string())?;
            let mut pause = None;
            let mut released = 0;
            for _ in 0..64 {
                let n = release(c, key, to.id, &mut pause)?;
                released += n;
                if n == 0 {
                    break;
                }
            }
            c.dp.set_steering(key, Steering { network: to.id, flags: 0 }).map_err(|e| e.to_string())?;
            c.last_switch_us = Some(t0.elapsed().as_micros() as u64);
            c.current.insert(service, to.id);
            released += release(c, key, to.id, &mut pause)?;
            let pause_us = pause.unwrap_or(0);
            Ok(Body::SwitchDone { service, switch_us: c.last_switch_us.unwrap_or(0), released, pause_us })
        }
        other => Err(format!("a connection controller does not take {other:?}")),
    })();
    r.unwrap_or_else(|reason| Body::Error { reason })
}
