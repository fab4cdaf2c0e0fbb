//! The migration demo workload (seed 000): a stateful UDP and TCP counter
//! service. Every request increments one counter and is answered with its
//! value, so a terminal sees at once whether state survived a migration
//! (the count continues) or was lost (it restarts). Its state is exported
//! and imported through a control socket: the application checkpoint
//! backend.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, UdpSocket},
    os::unix::net::{UnixListener, UnixStream},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    pub count: u64,
}

/// Serve until the process ends. `paused` stops answering (the agent's
/// pause when there is no cgroup freezer).
pub fn serve(udp: SocketAddr, tcp: Option<SocketAddr>, control: &Path) -> anyhow::Result<()> {
    let count = Arc::new(AtomicU64::new(0));
    let paused = Arc::new(AtomicBool::new(false));
    let u = UdpSocket::bind(udp)?;
    if let Some(t) = tcp {
        let l = TcpListener::bind(t)?;
        let (count, paused) = (count.clone(), paused.clone());
        thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (count, paused) = (count.clone(), paused.clone());
                thread::spawn(move || {
                    let mut w = match c.try_clone() {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                    for line in BufReader::new(c).lines().map_while(Result::ok) {
                        while paused.load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(1));
                        }
                        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                        if writeln!(w, "{line} n={n}").is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let _ = std::fs::remove_file(control);
    let ctl = UnixListener::bind(control)?;
    {
        let (count, paused) = (count.clone(), paused.clone());
        thread::spawn(move || {
            for c in ctl.incoming().flatten() {
                let _ = control_request(c, &count, &paused);
            }
        });
    }
    let mut buf = [0u8; 2048];
    loop {
        let (n, peer) = u.recv_from(&mut buf)?;
        while paused.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
        let v = count.fetch_add(1, Ordering::SeqCst) + 1;
        let mut reply = buf[..n].to_vec();
        reply.extend_from_slice(format!(" n={v}").as_bytes());
        let _ = u.send_to(&reply, peer);
    }
}

/// One control command per connection: `export`, `import JSON`, `pause`,
/// `resume`.
fn control_request(c: UnixStream, count: &AtomicU64, paused: &AtomicBool) -> anyhow::Result<()> {
    let mut w = c.try_clone()?;
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line)?;
    let line = line.trim();
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    let answer = match cmd {
        "export" => serde_json::to_string(&CounterState { count: count.load(Ordering::SeqCst) })?,
        "import" => {
            let s: CounterState = serde_json::from_str(arg)?;
            count.store(s.count, Ordering::SeqCst);
            "ok".into()
        }
        "pause" => {
            paused.store(true, Ordering::SeqCst);
            "ok".into()
        }
        "resume" => {
            paused.store(false, Ordering::SeqCst);
            "ok".into()
        }
        _ => format!("error: unknown command {cmd:?} (export, import JSON, pause, resume)"),
    };
    writeln!(w, "{answer}")?;
    Ok(())
}

/// Send one control command to a running counter service.
pub fn control(path: &Path, command: &str) -> anyhow::Result<String> {
    control_peer(path, command).map(|(answer, _)| answer)
}

/// Like [`control`], also giving the pid of the process that answered
/// (SO_PEERCRED), which the agent stops when it has no cgroup to freeze.
pub fn control_peer(path: &Path, command: &str) -> anyhow::Result<(String, i32)> {
    let mut c = UnixStream::connect(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let pid = peer_pid(&c).map_err(|e| anyhow::anyhow!("{}: SO_PEERCRED: {e}", path.display()))?;
    writeln!(c, "{command}")?;
    let mut answer = String::new();
    BufReader::new(c).read_line(&mut answer)?;
    let answer = answer.trim().to_string();
    if let Some(e) = answer.strip_prefix("error: ") {
        anyhow::bail!("{e}");
    }
    Ok((answer, pid))
}

fn peer_pid(c: &UnixStream) -> std::io::Result<i32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for the kernel to write.
    let rc = unsafe { libc::getsockopt(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.pid)
}

/// Whether CRIU can checkpoint on this kernel. Debian's CRIU 3.17 fails
/// here (its vdso handling); say so instead of failing mid-migration.
pub fn criu_status() -> Result<String, String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Err(format!("CRIU is not installed ({e}); use the application backend")),
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!(
            "`criu check` failed on this kernel: {}; use the application backend",
            String::from_utf8_lossy(&o.stderr).lines().chain(String::from_utf8_lossy(&o.stdout).lines()).last().unwrap_or("no output").trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_moves_between_instances_through_export_and_import() {
        let dir = std::env::temp_dir().join(format!("ep-counter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c1, c2) = (dir.join("c1.sock"), dir.join("c2.sock"));
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:47011".parse().unwrap(), "127.0.0.1:47012".parse().unwrap());
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
        let (state, pid) = control_peer(&c1, "export").unwrap();
        assert_eq!(state, r#"{"count":2}"#);
        assert_eq!(pid as u32, std::process::id(), "the peer is this process (the services run in it)");
        control(&c2, &format!("import {state}")).unwrap();
        assert_eq!(ask(b), "ping n=3", "the count continues on the second instance");
        assert!(control(&c1, "nonsense").unwrap_err().to_string().contains("unknown command"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn criu_status_is_a_clear_answer() {
        // `criu check` prints "Looks good." when it can checkpoint; any
        // other outcome must point at the application backend.
        match criu_status() {
            Ok(s) => assert!(s.contains("Looks good"), "{s}"),
            Err(e) => assert!(e.contains("application backend") && (e.contains("not installed") || e.contains("failed")), "{e}"),
        }
    }
}
