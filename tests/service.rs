//! The daemon as a systemd service: the unit in packaging/ is one systemd
//! accepts (`systemd-analyze verify`), and the daemon speaks systemd's
//! notification protocol (sd_notify(3)) to a socket the test owns, as
//! systemd would hold it: READY=1 only once the API answers, WATCHDOG=1
//! at half of WATCHDOG_USEC, RELOADING=1 then READY=1 on SIGHUP, and
//! STOPPING=1 on SIGTERM. A presence server on loopback is the role (no
//! interface or namespace is touched).

use std::{
    os::unix::net::UnixDatagram,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_edgeplane").into()
}

/// The notifications that arrive within `within`, until one contains
/// `until`.
fn until(rx: &UnixDatagram, want: &str, within: Duration) -> Vec<String> {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < end {
        rx.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        match rx.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = m.contains(want);
                got.push(m);
                if done {
                    return got;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {want:?} within {within:?}; got {got:?}");
}

#[test]
fn the_unit_file_is_one_systemd_accepts() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/edgeplane.service"
    ))
    .unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "ExecStartPre=/usr/bin/edgeplane check",
    ] {
        assert!(unit.contains(key), "{key}");
    }
    // Verified with this build's binary where the package puts it.
    let dir = std::env::temp_dir().join(format!("ep-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("edgeplane.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/edgeplane", &exe().display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    // And a broken one is refused, so the check can fail.
    std::fs::write(
        &path,
        unit.replace("Type=notify", "Type=notifyy")
            .replace("/usr/bin/edgeplane", &exe().display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Failed to parse service type"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_daemon_notifies_systemd_ready_watchdog_reload_and_stop() {
    let dir = std::env::temp_dir().join(format!("ep-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let notify = dir.join("notify.sock");
    let rx = UnixDatagram::bind(&notify).unwrap();
    let socket = dir.join("api.sock");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("edgeplane.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nname = \"svc\"\nsocket = {:?}\npin_root = \"/sys/fs/bpf/edgeplane/svc-{}\"\n\n[presence]\nlisten = \"127.0.0.1:{port}\"\ndatabase = {:?}\nallow = [\"127.0.0.0/8\"]\n",
            socket.display().to_string(),
            std::process::id(),
            dir.join("presence.db").display().to_string()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(exe())
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "300000")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("daemon.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let status = || {
        Command::new(exe())
            .arg("--socket")
            .arg(&socket)
            .args(["status", "--json"])
            .output()
            .unwrap()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t0 = Instant::now();
        let got = until(&rx, "READY=1", Duration::from_secs(20));
        let ready = t0.elapsed();
        // Nothing before READY=1 claims readiness; at READY=1 the API
        // answers.
        assert!(
            got[..got.len() - 1].iter().all(|m| !m.contains("READY=1")),
            "{got:?}"
        );
        assert!(got.last().unwrap().contains("STATUS=serving"), "{got:?}");
        let st = status();
        assert!(
            st.status.success(),
            "the API answers at READY=1: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        // Another user may not use the API (0600, root's): one clear line.
        let other = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(exe())
            .arg("--socket")
            .arg(&socket)
            .arg("status")
            .output()
            .expect("setpriv (util-linux)");
        let err = String::from_utf8_lossy(&other.stderr);
        assert!(!other.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("permission denied on the daemon API")
                && err.contains("it belongs to root (mode 600)"),
            "{err}"
        );
        // `top` over the same API: one view, the role's state, rates.
        let top = Command::new(exe())
            .arg("--socket")
            .arg(&socket)
            .args(["top", "--once", "--interval-ms", "200"])
            .output()
            .unwrap();
        let view = String::from_utf8_lossy(&top.stdout);
        assert!(
            top.status.success(),
            "{}",
            String::from_utf8_lossy(&top.stderr)
        );
        assert!(view.contains("node svc — presence"), "{view}");
        assert!(
            view.contains(&format!("presence 127.0.0.1:{port}: 0 stored")),
            "{view}"
        );
        assert!(view.contains("per second"), "{view}");
        // The watchdog: a ping every 150 ms.
        let w0 = Instant::now();
        let mut pings = 0;
        while pings < 5 {
            let got = until(&rx, "WATCHDOG=1", Duration::from_secs(2));
            pings += got.iter().filter(|m| m.contains("WATCHDOG=1")).count();
        }
        let span = w0.elapsed();
        assert!(span < Duration::from_secs(3), "5 pings took {span:?}");
        // A reload: RELOADING=1, then READY=1 again.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGHUP) };
        let got = until(&rx, "RELOADING=1", Duration::from_secs(5));
        assert!(got.last().unwrap().contains("RELOADING=1"));
        let got = until(&rx, "READY=1", Duration::from_secs(10));
        assert!(got.last().unwrap().contains("STATUS=reloaded"), "{got:?}");
        // A stop: STOPPING=1, and a clean exit.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        until(&rx, "STOPPING=1", Duration::from_secs(10));
        let end = Instant::now() + Duration::from_secs(15);
        let code = loop {
            if let Some(s) = daemon.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(code.success(), "{code}");
        println!(
            "service: READY=1 {} ms after start, the API answering; 5 watchdog pings in {} ms (every 150 ms asked); RELOADING=1/READY=1 on SIGHUP; STOPPING=1 and exit 0 on SIGTERM",
            ready.as_millis(),
            span.as_millis()
        );
    }));
    let _ = daemon.kill();
    let _ = daemon.wait();
    if result.is_err() {
        eprintln!(
            "{}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
