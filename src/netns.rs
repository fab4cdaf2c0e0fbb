//! Entering a network namespace by name. The daemon does this itself,
//! before its runtime starts, instead of running under `ip netns exec`
//! (which remounts /sys and so hides the bpffs pins).

use std::{fs::File, os::fd::AsRawFd};

pub fn enter(name: &str) -> std::io::Result<()> {
    let path = format!("/run/netns/{name}");
    let f = File::open(&path).map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    // SAFETY: setns on a valid namespace fd; affects the calling thread,
    // and every thread it creates afterwards.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("setns {path}: {e}")));
    }
    Ok(())
}
