//! The migration lab's terminal side: requests to the counter service
//! over UDP and over one TCP connection, answered with the count (split
//! from migration_lab.rs; `migration_lab` re-exports these).

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use crate::topo::enter_netns;

/// One request to the service and the count it answered (None: no answer
/// within the socket's timeout, or a send error); `on_sent` runs once sent.
pub(crate) fn ask(
    s: &UdpSocket,
    to: std::net::SocketAddr,
    req: &str,
    buf: &mut [u8],
    on_sent: impl FnOnce(),
) -> Option<u64> {
    s.send_to(req.as_bytes(), to).ok()?;
    on_sent();
    let prefix = format!("{req} n=");
    loop {
        let (n, _) = s.recv_from(buf).ok()?;
        // Ignore a late answer to an earlier request.
        if let Some(v) = String::from_utf8_lossy(&buf[..n]).strip_prefix(&prefix) {
            return v.parse().ok();
        }
    }
}

/// One TCP connection from the terminal to the service (port 9001),
/// asking a line at a time.
pub struct TcpClient {
    w: std::net::TcpStream,
    r: std::io::BufReader<std::net::TcpStream>,
}

impl TcpClient {
    /// Connect to the IPv4 service (within 3 s); each answer is awaited
    /// at most `wait`.
    pub fn connect(wait: Duration) -> std::io::Result<Self> {
        Self::connect_to("10.99.0.80:9001".parse().unwrap(), wait)
    }

    /// `connect` to `service` (e.g. `Lab::service_tcp`).
    pub fn connect_to(service: std::net::SocketAddr, wait: Duration) -> std::io::Result<Self> {
        let s = std::net::TcpStream::connect_timeout(&service, Duration::from_secs(3))?;
        s.set_read_timeout(Some(wait))?;
        s.set_nodelay(true)?;
        Ok(Self {
            w: s.try_clone()?,
            r: std::io::BufReader::new(s),
        })
    }

    /// Send `req` as a line; the count it was answered with (None: no
    /// answer, or not ours).
    pub fn ask(&mut self, req: &str) -> Option<u64> {
        use std::io::{BufRead, Write};
        writeln!(self.w, "{req}").ok()?;
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(n) if n > 0 => line
                .trim_end()
                .strip_prefix(&format!("{req} n="))
                .and_then(|v| v.parse().ok()),
            _ => None,
        }
    }
}

/// A terminal on one TCP connection to the service: `total` requests one
/// after another, each waiting for its answer (at most 3 s); returns the
/// counts answered, in order, stopping at the first error.
pub fn tcp_terminal(
    ns: String,
    total: u64,
    sent: Arc<AtomicU64>,
) -> thread::JoinHandle<Vec<Option<u64>>> {
    tcp_terminal_to(ns, "10.99.0.80:9001".parse().unwrap(), total, sent)
}

/// `tcp_terminal` on a connection to `service` (e.g. `Lab::service_tcp`).
pub fn tcp_terminal_to(
    ns: String,
    service: std::net::SocketAddr,
    total: u64,
    sent: Arc<AtomicU64>,
) -> thread::JoinHandle<Vec<Option<u64>>> {
    thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let mut got = Vec::new();
        let Ok(mut c) = TcpClient::connect_to(service, Duration::from_secs(3)) else {
            return got;
        };
        for i in 0..total {
            let answer = c.ask(&format!("t{i}"));
            sent.fetch_add(1, Ordering::SeqCst);
            got.push(answer);
            if answer.is_none() {
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        got
    })
}

/// The terminal: `total` requests one after another, each waiting for its
/// answer (at most 2 s); returns the counts answered, in order.
pub fn terminal(
    ns: String,
    total: u64,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<Option<u64>>> {
    terminal_to(ns, "10.99.0.80:9000".parse().unwrap(), total, sent, stop)
}

/// `terminal` asking `service` (e.g. `Lab::service_udp`), from the
/// terminal's address of its family.
pub fn terminal_to(
    ns: String,
    service: std::net::SocketAddr,
    total: u64,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<Option<u64>>> {
    thread::spawn(move || {
        enter_netns(&ns).unwrap();
        let from = if service.is_ipv6() {
            "[2001:db8:7::2]:0"
        } else {
            "10.7.0.2:0"
        };
        let s = UdpSocket::bind(from).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for i in 0..total {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let answer = ask(&s, service, &format!("req{i}"), &mut buf, || {
                sent.fetch_add(1, Ordering::SeqCst);
            });
            got.push(answer);
            thread::sleep(Duration::from_millis(2));
        }
        got
    })
}
