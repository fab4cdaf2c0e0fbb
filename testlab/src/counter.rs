//! The migration demo workload (seed 000): a stateful UDP and TCP counter
//! service. Every request increments one counter and is answered with its
//! value, so a terminal sees at once whether state survived a migration
//! (the count continues) or was lost (it restarts). Its state is exported
//! and imported through a control socket: the application checkpoint
//! backend.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::unix::net::{UnixListener, UnixStream},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    pub count: u64,
    /// Open TCP connections (TCP repair checkpoints) with the bytes read
    /// from each but not yet answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpConnState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpConnState {
    pub socket: crate::tcp_repair::TcpCheckpoint,
    #[serde(default)]
    pub pending: Vec<u8>,
}

/// One TCP connection: its socket (None once dropped) and the bytes read
/// but not yet answered. Its thread reads and answers only under the lock
/// and only while the service runs, so an export sees every byte exactly
/// once: in `pending` or in the kernel's queue.
struct Conn {
    stream: Option<TcpStream>,
    pending: Vec<u8>,
    /// Exported (in repair mode): silent until resumed here or dropped.
    repair: bool,
}

#[derive(Default)]
struct Shared {
    count: AtomicU64,
    paused: AtomicBool,
    /// Held while a request is checked against `paused` and counted, and
    /// by `pause`: once `pause` returns no request is being counted, so an
    /// export sees the final count.
    gate: Mutex<()>,
    conns: Mutex<Vec<Arc<Mutex<Conn>>>>,
}

/// Serve until the process ends. `paused` stops answering (the agent's
/// pause when there is no cgroup freezer).
pub fn serve(udp: SocketAddr, tcp: Option<SocketAddr>, control: &Path) -> anyhow::Result<()> {
    let sh = Arc::new(Shared::default());
    let u = UdpSocket::bind(udp)?;
    if let Some(t) = tcp {
        let l = TcpListener::bind(t)?;
        let sh = sh.clone();
        thread::spawn(move || {
            for c in l.incoming().flatten() {
                add_conn(&sh, c, Vec::new());
            }
        });
    }
    let _ = std::fs::remove_file(control);
    let ctl = UnixListener::bind(control)?;
    {
        let sh = sh.clone();
        thread::spawn(move || {
            for c in ctl.incoming().flatten() {
                let _ = control_request(c, &sh);
            }
        });
    }
    let mut buf = [0u8; 2048];
    loop {
        let (n, peer) = u.recv_from(&mut buf)?;
        let v = loop {
            {
                let _g = sh.gate.lock().unwrap();
                if !sh.paused.load(Ordering::SeqCst) {
                    break sh.count.fetch_add(1, Ordering::SeqCst) + 1;
                }
            }
            thread::sleep(Duration::from_millis(1));
        };
        let mut reply = buf[..n].to_vec();
        reply.extend_from_slice(format!(" n={v}").as_bytes());
        let _ = u.send_to(&reply, peer);
    }
}

fn add_conn(sh: &Arc<Shared>, s: TcpStream, pending: Vec<u8>) {
    // A terminal that stops reading its answers must not stall the
    // service: a reply that cannot be written within a second ends the
    // connection.
    if s.set_nonblocking(true).is_err()
        || s.set_write_timeout(Some(Duration::from_secs(1))).is_err()
    {
        return;
    }
    let conn = Arc::new(Mutex::new(Conn {
        stream: Some(s),
        pending,
        repair: false,
    }));
    sh.conns.lock().unwrap().push(conn.clone());
    let sh = sh.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let mut idle = true;
            {
                let mut c = conn.lock().unwrap();
                if c.stream.is_none() {
                    // Dropped (by an import, or a reply that could not be
                    // written).
                    drop(c);
                    sh.conns.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &conn));
                    return;
                }
                let gate = sh.gate.lock().unwrap();
                if sh.paused.load(Ordering::SeqCst) || c.repair {
                    drop((gate, c));
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let c = &mut *c;
                let s = c.stream.as_mut().expect("checked");
                match s.read(&mut buf) {
                    Ok(0) => {
                        c.stream = None;
                        sh.conns.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &conn));
                        return;
                    }
                    Ok(n) => {
                        c.pending.extend_from_slice(&buf[..n]);
                        idle = false;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        c.stream = None;
                        sh.conns.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &conn));
                        return;
                    }
                }
                answer_lines(&sh.count, c);
            }
            if idle {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
}

/// Answer every whole line in `pending`: "LINE n=COUNT".
fn answer_lines(count: &AtomicU64, c: &mut Conn) {
    while let Some(end) = c.pending.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.pending.drain(..=end).collect();
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let mut reply = line[..line.len() - 1].to_vec();
        reply.extend_from_slice(format!(" n={n}\n").as_bytes());
        if let Some(s) = c.stream.as_mut() {
            let _ = s.set_nonblocking(false);
            let ok = s.write_all(&reply).is_ok();
            let _ = s.set_nonblocking(true);
            if !ok {
                c.stream = None;
                return;
            }
        }
    }
}

/// Checkpoint every open connection (they go silent, in repair mode).
fn export(sh: &Shared) -> anyhow::Result<CounterState> {
    anyhow::ensure!(
        sh.paused.load(Ordering::SeqCst),
        "pause first: export checkpoints the TCP connections"
    );
    let conns = sh.conns.lock().unwrap().clone();
    let mut tcp = Vec::new();
    for conn in conns {
        let mut c = conn.lock().unwrap();
        let Some(s) = c.stream.as_ref() else { continue };
        match crate::tcp_repair::checkpoint(s) {
            Ok(socket) => {
                c.repair = true;
                tcp.push(TcpConnState {
                    socket,
                    pending: c.pending.clone(),
                });
            }
            // Closing (the terminal hung up during the pause): nothing to
            // carry; drop it here silently.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                if let Some(s) = c.stream.take() {
                    crate::tcp_repair::set_repair(std::os::fd::AsRawFd::as_raw_fd(&s), true).ok();
                }
            }
            Err(e) => anyhow::bail!("TCP checkpoint: {e}"),
        }
    }
    Ok(CounterState {
        count: sh.count.load(Ordering::SeqCst),
        tcp,
    })
}

/// Take a checkpoint: the count, and the connections re-created here. The
/// connections this copy had are dropped first, silently (the state that
/// arrives replaces them).
fn import(sh: &Arc<Shared>, st: CounterState) -> anyhow::Result<()> {
    discard_conns(sh);
    for t in st.tcp {
        let s = crate::tcp_repair::restore(&t.socket).map_err(|e| {
            anyhow::anyhow!(
                "TCP restore of {} ↔ {}: {e}",
                t.socket.local,
                t.socket.remote
            )
        })?;
        add_conn(sh, s, t.pending);
    }
    sh.count.store(st.count, Ordering::SeqCst);
    Ok(())
}

/// Drop every connection silently (repair mode first: no FIN, no RST).
fn discard_conns(sh: &Shared) {
    for conn in std::mem::take(&mut *sh.conns.lock().unwrap()) {
        let mut c = conn.lock().unwrap();
        if let Some(s) = c.stream.take() {
            if !c.repair {
                crate::tcp_repair::set_repair(std::os::fd::AsRawFd::as_raw_fd(&s), true).ok();
            }
        }
    }
}

/// One control command per connection: `export` (paused), `import JSON`,
/// `pause`, `resume`, `discard`, `status`.
fn control_request(c: UnixStream, sh: &Arc<Shared>) -> anyhow::Result<()> {
    let mut w = c.try_clone()?;
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line)?;
    let line = line.trim();
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    let r: anyhow::Result<String> = (|| match cmd {
        "export" => Ok(serde_json::to_string(&export(sh)?)?),
        "import" => {
            import(sh, serde_json::from_str(arg)?)?;
            Ok("ok".into())
        }
        "pause" => {
            let _g = sh.gate.lock().unwrap();
            sh.paused.store(true, Ordering::SeqCst);
            Ok("ok".into())
        }
        "resume" => {
            // Connections exported but kept (a rolled-back move) talk again.
            for conn in sh.conns.lock().unwrap().iter() {
                let mut c = conn.lock().unwrap();
                if c.repair {
                    if let Some(s) = &c.stream {
                        crate::tcp_repair::set_repair(std::os::fd::AsRawFd::as_raw_fd(s), false)?;
                    }
                    c.repair = false;
                }
            }
            sh.paused.store(false, Ordering::SeqCst);
            Ok("ok".into())
        }
        "discard" => {
            // A rolled-back destination: its imported connections belong
            // to the source again; drop them without a FIN or RST.
            discard_conns(sh);
            Ok("ok".into())
        }
        "status" => Ok(serde_json::json!({
            "count": sh.count.load(Ordering::SeqCst),
            "paused": sh.paused.load(Ordering::SeqCst),
            "tcp": sh.conns.lock().unwrap().len(),
        })
        .to_string()),
        _ => anyhow::bail!(
            "unknown command {cmd:?} (export, import JSON, pause, resume, discard, status)"
        ),
    })();
    match r {
        Ok(a) => writeln!(w, "{a}")?,
        Err(e) => writeln!(w, "error: {e:#}")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use edgeplane::migration::app::{control, control_peer};

    use super::*;

    #[test]
    fn state_moves_between_instances_through_export_and_import() {
        let dir = std::env::temp_dir().join(format!("ep-counter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c1, c2) = (dir.join("c1.sock"), dir.join("c2.sock"));
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:47011".parse().unwrap(),
            "127.0.0.1:47012".parse().unwrap(),
        );
        for (addr, ctl) in [(a, c1.clone()), (b, c2.clone())] {
            thread::spawn(move || serve(addr, None, &ctl));
        }
        thread::sleep(Duration::from_millis(200));
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let ask = |to: SocketAddr| {
            s.send_to(b"ping", to).unwrap();
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        };
        assert_eq!(ask(a), "ping n=1");
        assert_eq!(ask(a), "ping n=2");
        assert!(control(&c1, "export")
            .unwrap_err()
            .to_string()
            .contains("pause first"));
        control(&c1, "pause").unwrap();
        let (state, pid) = control_peer(&c1, "export").unwrap();
        assert_eq!(state, r#"{"count":2}"#);
        assert_eq!(
            pid as u32,
            std::process::id(),
            "the peer is this process (the services run in it)"
        );
        control(&c2, &format!("import {state}")).unwrap();
        assert_eq!(
            ask(b),
            "ping n=3",
            "the count continues on the second instance"
        );
        assert!(control(&c1, "nonsense")
            .unwrap_err()
            .to_string()
            .contains("unknown command"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
