//! Helpers for kernel-facing tests: root checks, uniquely named network
//! namespaces that are removed even when a test fails, and commands run
//! inside them.
#![allow(dead_code)]

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

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
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace made by this test; deleted on drop, with every
/// interface in it.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("ept{}{}{}", std::process::id() % 100000, tag, SEQ.fetch_add(1, Ordering::SeqCst));
        sh(&["ip", "netns", "add", &name]);
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    pub fn try_exec(&self, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.name]).args(args).output().expect("spawn")
    }

    /// Run `f` on a thread that has entered this namespace; sockets it
    /// opens live in the namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .expect("thread in netns panicked")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

pub fn enter(path: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {path}");
}

/// Move the calling thread into a fresh, anonymous network namespace; it
/// disappears with the thread.
pub fn private_netns() {
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    sh(&["ip", "link", "set", "lo", "up"]);
}

/// A veth pair between two namespaces, with addresses.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    sh(&["ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name]);
    a.exec(&["ip", "link", "set", a_if, "up"]);
    b.exec(&["ip", "link", "set", b_if, "up"]);
}

pub fn mac(ns: &Netns, ifname: &str) -> String {
    let out = ns.exec(&["cat", &format!("/sys/class/net/{ifname}/address")]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
