//! Helpers for kernel-facing tests: the root check and private network
//! namespaces. Named topologies live in `testlab::topo`.
#![allow(dead_code, reason = "each test binary uses a subset")]

use std::process::{Command, Output};

/// True when the test may use the kernel. Without root it skips, except
/// under CI=true, where a missing capability is a failure.
pub fn kernel_available(test: &str) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root (BPF, netns); CI=true makes this a failure");
    }
    eprintln!("SKIP {test}: needs root (BPF, network namespaces)");
    false
}

pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Move the calling thread into a fresh, anonymous network namespace; it
/// disappears with the thread.
pub fn private_netns() {
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    sh(&["ip", "link", "set", "lo", "up"]);
}

/// Tests of one binary run in parallel; the ones that measure loss or
/// timing take this lock so they do not compete for the two CPUs.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// How much counter `i` moved between two reads.
pub fn moved(
    before: &[dataplane_common::Counter],
    after: &[dataplane_common::Counter],
    i: u32,
) -> u64 {
    after[i as usize].packets - before[i as usize].packets
}

/// Run `pkt`; the verdict must be `want` and every reason in `reasons`
/// must have moved by one. Returns the output.
pub fn gateway_run(
    dp: &mut dataplane_user::Dataplane,
    name: &str,
    pkt: &[u8],
    want: u32,
    reasons: &[u32],
) -> Vec<u8> {
    let before = dp.gw_stats().unwrap();
    let r = dp
        .test_run("gateway", pkt)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let after = dp.gw_stats().unwrap();
    let all: Vec<_> = (0..dataplane_common::gateway::stat::COUNT)
        .filter(|&i| moved(&before, &after, i) > 0)
        .map(|i| dataplane_common::gateway::stat::NAMES[i as usize])
        .collect();
    assert_eq!(
        dataplane_user::verdict::name(r.verdict),
        dataplane_user::verdict::name(want),
        "{name}: verdict (moved: {all:?})"
    );
    for &reason in reasons {
        assert_eq!(
            moved(&before, &after, reason),
            1,
            "{name}: counter {} (moved: {all:?})",
            dataplane_common::gateway::stat::NAMES[reason as usize]
        );
    }
    if want == dataplane_user::verdict::PASS {
        assert_eq!(r.output, pkt, "{name}: a passed packet is untouched");
    }
    r.output
}
