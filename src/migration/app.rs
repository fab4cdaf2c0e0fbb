//! The application checkpoint backend's control socket, as the agent
//! speaks it: one command line in, one answer line out (`error: ...` for a
//! refusal), and the answering process's pid (SO_PEERCRED) for an agent
//! that stops it with SIGSTOP. Also whether CRIU can checkpoint here.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

/// Send one control command to a running service.
pub fn control(path: &Path, command: &str) -> anyhow::Result<String> {
    control_peer(path, command).map(|(answer, _)| answer)
}

/// Like [`control`], also giving the pid of the process that answered
/// (SO_PEERCRED), which the agent stops when it has no cgroup to freeze.
pub fn control_peer(path: &Path, command: &str) -> anyhow::Result<(String, i32)> {
    control_peer_within(path, command, Duration::from_secs(30))
}

/// Like [`control_peer`], giving up after `within` (a stopped or frozen
/// service does not answer).
pub fn control_peer_within(
    path: &Path,
    command: &str,
    within: Duration,
) -> anyhow::Result<(String, i32)> {
    let mut c =
        UnixStream::connect(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    c.set_read_timeout(Some(within))?;
    c.set_write_timeout(Some(within))?;
    let pid = peer_pid(&c).map_err(|e| anyhow::anyhow!("{}: SO_PEERCRED: {e}", path.display()))?;
    writeln!(c, "{command}")?;
    let mut answer = String::new();
    BufReader::new(c).read_line(&mut answer).map_err(|e| {
        anyhow::anyhow!(
            "{}: no answer to {:?} within {within:?}: {e}",
            path.display(),
            command.split(' ').next().unwrap_or("")
        )
    })?;
    let answer = answer.trim().to_string();
    if let Some(e) = answer.strip_prefix("error: ") {
        anyhow::bail!("{e}");
    }
    Ok((answer, pid))
}

fn peer_pid(c: &UnixStream) -> std::io::Result<i32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for the kernel to write.
    let rc = unsafe {
        libc::getsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.pid)
}

/// Whether CRIU can checkpoint on this kernel. Debian's CRIU 3.17 fails
/// here (its vdso handling); say so instead of failing mid-migration.
pub fn criu_status() -> Result<String, String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Err(format!(
            "CRIU is not installed ({e}); use the application backend"
        )),
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => {
            // The first error is the cause (later ones follow from it);
            // "exited, status=N" lines are helper processes' echoes.
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stderr),
                String::from_utf8_lossy(&o.stdout)
            );
            let cause = text
                .lines()
                .find(|l| l.contains("Error") && !l.contains("exited, status"))
                .or(text.lines().last())
                .unwrap_or("no output")
                .trim()
                .to_string();
            Err(format!(
                "`criu check` failed on this kernel: {cause}; use the application backend"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_status_is_a_clear_answer() {
        // `criu check` prints "Looks good." when it can checkpoint; any
        // other outcome must point at the application backend.
        let r = criu_status();
        if std::env::var("CI").as_deref() == Ok("true") {
            // `cargo xtask setup` installs Debian's CRIU, so the answer is
            // about this kernel, not a missing binary.
            assert!(
                !r.as_ref().is_err_and(|e| e.contains("not installed")),
                "{r:?}"
            );
        }
        match r {
            Ok(s) => assert!(s.contains("Looks good"), "{s}"),
            Err(e) => assert!(
                e.contains("application backend")
                    && (e.contains("not installed") || e.contains("failed")),
                "{e}"
            ),
        }
    }
}
