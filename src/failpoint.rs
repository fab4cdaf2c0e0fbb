//! Crash points for fault tests: with `EDGEPLANE_FAILPOINT=NAME` in its
//! environment, the daemon SIGKILLs itself when it reaches the point
//! called NAME (e.g. `agent:source:after:freeze`), so a test can kill it
//! at an exact step, which no outside signal can time. Without the
//! variable, [`hit`] is one load of a cached `None`.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT
        .get_or_init(|| std::env::var("EDGEPLANE_FAILPOINT").ok())
        .as_deref()
}

/// SIGKILL this process if `name` is the armed point.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        tracing::warn!("failpoint {name}: SIGKILL");
        // SAFETY: signalling ourselves.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}
