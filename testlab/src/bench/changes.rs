//! `edgeplane-lab bench gateway-changes`: established sessions through two
//! LBs while the gateway set changes (seed 002, claim 20). `sessions`
//! sessions, half GTP-U (TEIDs allocated by their gateway: prefix
//! `gateway + 1`) and half plain UDP terminals (each its own source
//! address, so the lb's terminal key spreads them), enter by both LBs at
//! `pps` in total. During the traffic: a fourth gateway is added, a
//! gateway's weight changes, and one is drained (both LBs each time).
//! Every gateway namespace counts what reaches it per session; a session
//! that reached more than one gateway is broken (its state lives on one),
//! and what was sent but reached no gateway is lost.
//!
//! The sink-only gateways make this a test of the LB tier's placement, the
//! part claim 20 asks of it; the gateways' own state is not involved.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use control::api::Request;
use serde::Serialize;

use crate::topo::{self, gateway_name, Session, Topology};

#[derive(Clone, Debug, Default, Serialize)]
pub struct KindResult {
    pub sessions: usize,
    /// Sessions that reached more than one gateway.
    pub broken: usize,
    /// Sessions none of whose packets arrived.
    pub unseen: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChangesResult {
    pub pps: u32,
    pub seconds_per_phase: f64,
    pub phases: Vec<String>,
    pub gtpu: KindResult,
    pub plain: KindResult,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
}

/// The plain terminal of session `i`: its own address, its own port.
fn terminal(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i),
        20000 + i as u16,
    )
}

/// IPv4 + UDP (checksums filled in) for the raw socket.
fn datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut out, payload)?;
    Ok(out)
}

/// Every session's packet once per round until `stop`, paced to `pps`,
/// from the terminal namespace of one LB; returns packets sent.
fn sender(
    ns: String,
    sessions: Arc<Vec<Session>>,
    pps: u32,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<anyhow::Result<u64>> {
    thread::spawn(move || -> anyhow::Result<u64> {
        topo::enter_netns(&ns)?;
        // SAFETY: a raw IPv4 socket; IPPROTO_RAW implies IP_HDRINCL.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        anyhow::ensure!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let inner = edgeplane::packets::inner_udp(
            Ipv4Addr::new(10, 60, 0, 9),
            Ipv4Addr::new(203, 0, 113, 7),
            b"payload",
        );
        let frames: Vec<(Vec<u8>, Ipv4Addr)> = sessions
            .iter()
            .map(|s| match s {
                Session::Teid(t) => {
                    let mut p = edgeplane::packets::gtpu_header(*t, 0xff, 0, &[], inner.len());
                    p.extend_from_slice(&inner);
                    let dst = edgeplane::packets::GTPU_ENDPOINT;
                    datagram(topo::TERMINAL, dst, 2152, 2152, &p).map(|d| (d, dst))
                }
                Session::Flow(port) => {
                    let (src, _) = terminal(u32::from(*port) - 20000);
                    datagram(src, topo::SERVICE, *port, topo::SERVICE_PORT, b"x")
                        .map(|d| (d, topo::SERVICE))
                }
            })
            .collect::<anyhow::Result<_>>()?;
        let gap = Duration::from_secs_f64(1.0 / pps.max(1) as f64);
        let start = Instant::now();
        let mut sent = 0u64;
        'rounds: loop {
            for (f, dst) in &frames {
                if stop.load(Ordering::SeqCst) {
                    break 'rounds;
                }
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as u16,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(dst.octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: a valid buffer and address for the socket.
                let n = unsafe {
                    libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    )
                };
                if n == f.len() as isize {
                    sent += 1;
                }
                let due = start + gap * sent as u32;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
        }
        // SAFETY: our fd.
        unsafe { libc::close(fd) };
        Ok(sent)
    })
}

pub fn run(sessions: u32, pps: u32, phase_secs: f64) -> anyhow::Result<ChangesResult> {
    anyhow::ensure!(
        (2..=20000).contains(&sessions),
        "--sessions must be 2..=20000"
    );
    let exe = crate::edgeplane_bin()?;
    let mut t = Topology::build(&format!("epc{}", std::process::id() % 100000), 2, 4, &exe)
        .context("topology")?;
    let config = |t: &Topology, lb: usize, gws: &[usize], weight0: u32| {
        t.lb_config_with(lb, gws, 11, "drain_timeout = 600\n", |g| {
            let w = if g == 0 {
                format!("weight = {weight0}\n")
            } else {
                String::new()
            };
            format!("teid_prefix = {}\n{w}", g + 1)
        })
    };
    for lb in [1, 2] {
        let c = config(&t, lb, &[0, 1, 2], 1);
        t.start_lb(lb, &c)?;
    }
    let half = sessions / 2;
    // GTP-U sessions established at gateways 0-2 (their TEID prefixes).
    let list: Vec<Session> = (0..half)
        .map(|i| Session::Teid(((i % 3 + 1) << 24) | (1 + i / 3)))
        .chain((0..sessions - half).map(|i| Session::Flow(terminal(i).1)))
        .collect();
    let list = Arc::new(list);
    let stop_rx = Arc::new(AtomicBool::new(false));
    let rx = t.receivers(stop_rx.clone());
    let stop_tx = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = [1, 2]
        .iter()
        .map(|lb| {
            sender(
                format!("/run/netns/{}", t.ns(&format!("t{lb}"))),
                list.clone(),
                pps / 2,
                stop_tx.clone(),
            )
        })
        .collect();
    let phase = Duration::from_secs_f64(phase_secs);
    let mut phases = vec!["steady: gw0, gw1, gw2".to_string()];
    thread::sleep(phase);
    let reload = |t: &Topology, gws: &[usize], w0: u32| -> anyhow::Result<()> {
        for lb in [1, 2] {
            std::fs::write(t.config_path(lb), config(t, lb, gws, w0))?;
            t.call(lb, Request::Reload)?;
        }
        Ok(())
    };
    reload(&t, &[0, 1, 2, 3], 1)?;
    phases.push("gw3 added".into());
    thread::sleep(phase);
    reload(&t, &[0, 1, 2, 3], 3)?;
    phases.push("gw0 weight 1 -> 3".into());
    thread::sleep(phase);
    for lb in [1, 2] {
        t.call(
            lb,
            Request::LbGatewayDrain {
                interface: None,
                name: gateway_name(1),
                timeout: Some(600),
            },
        )?;
    }
    phases.push("gw1 draining".into());
    thread::sleep(phase);
    stop_tx.store(true, Ordering::SeqCst);
    let mut sent = 0;
    for s in senders {
        sent += s.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    stop_rx.store(true, Ordering::SeqCst);
    let mut seen: HashMap<Session, HashSet<usize>> = HashMap::new();
    let mut received = 0u64;
    for (g, h) in rx.into_iter().enumerate() {
        let got = h
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        for (s, n) in got {
            received += n as u64;
            seen.entry(s).or_default().insert(g);
        }
    }
    let kind = |teid: bool| {
        let of: Vec<&Session> = list
            .iter()
            .filter(|s| matches!(s, Session::Teid(_)) == teid)
            .collect();
        KindResult {
            sessions: of.len(),
            broken: of
                .iter()
                .filter(|s| seen.get(s).map(|g| g.len() > 1).unwrap_or(false))
                .count(),
            unseen: of.iter().filter(|s| !seen.contains_key(s)).count(),
        }
    };
    Ok(ChangesResult {
        pps,
        seconds_per_phase: phase_secs,
        phases,
        gtpu: kind(true),
        plain: kind(false),
        packets_sent: sent,
        packets_received: received,
        packets_lost: sent.saturating_sub(received),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminals_are_distinct_addresses_and_ports() {
        let (a, p) = super::terminal(0);
        let (b, q) = super::terminal(4999);
        assert_eq!((a, p), (std::net::Ipv4Addr::new(100, 64, 0, 0), 20000));
        assert_eq!((b, q), (std::net::Ipv4Addr::new(100, 64, 19, 135), 24999));
    }
}
