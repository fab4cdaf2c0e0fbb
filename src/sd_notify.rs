//! systemd's service notifications (sd_notify(3)), without libsystemd:
//! a datagram to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). `READY=1` once the API socket answers, `RELOADING=1` and
//! `READY=1` around a reload, `STOPPING=1` at shutdown, and `WATCHDOG=1`
//! every half of `$WATCHDOG_USEC` while the daemon's state can be taken
//! (so a daemon wedged on its lock is restarted). Without
//! `$NOTIFY_SOCKET` (not under systemd, `Type=simple`) nothing is sent.

use std::{os::unix::net::UnixDatagram, time::Duration};

use tracing::warn;

/// Send `state` (lines of `KEY=VALUE`); false if there is no socket or
/// it could not be reached (logged once per call).
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let sent = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let p = path.to_string_lossy();
        if let Some(name) = p.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), &*p)?;
        }
        Ok(())
    })();
    if let Err(e) = &sent {
        warn!(socket = %path.to_string_lossy(), "systemd notification not sent: {e}");
    }
    sent.is_ok()
}

/// How often the watchdog wants a ping (half its timeout), if systemd
/// asked for one for this process (`$WATCHDOG_USEC`, and `$WATCHDOG_PID`
/// naming it when set).
pub fn watchdog_every() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_string_lossy().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_half_the_timeout_for_this_process_only() {
        // The environment is the process's: one test sets it all.
        std::env::set_var("WATCHDOG_USEC", "4000000");
        std::env::remove_var("WATCHDOG_PID");
        assert_eq!(watchdog_every(), Some(Duration::from_secs(2)));
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        assert_eq!(watchdog_every(), Some(Duration::from_secs(2)));
        std::env::set_var("WATCHDOG_PID", "1");
        assert_eq!(watchdog_every(), None, "another process's watchdog");
        std::env::remove_var("WATCHDOG_PID");
        std::env::set_var("WATCHDOG_USEC", "0");
        assert_eq!(watchdog_every(), None);
        std::env::remove_var("WATCHDOG_USEC");
        assert_eq!(watchdog_every(), None);
        // A path socket gets the datagram as sent.
        let dir = std::env::temp_dir().join(format!("edgeplane-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1\nSTATUS=up"));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(!notify("READY=1"), "not under systemd");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
