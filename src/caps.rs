//! The Linux capabilities a config needs, checked at start against what
//! the daemon has, so a daemon run as an unprivileged user (systemd's
//! `AmbientCapabilities=`, or `setpriv`) that lacks one says which, for
//! which role and why, before anything is attached. Root with every
//! capability passes as before.
//!
//! What each needs, and why (tests/least_privilege.rs runs each role
//! with exactly these, and without each):
//! - every role with an XDP or TC program (lb, gateway, router,
//!   sip-monitor, the migration controller): `CAP_BPF` to create maps and
//!   load programs, `CAP_PERFMON` because the verifier allows an
//!   unprivileged loader no pointer arithmetic on packet data, and
//!   `CAP_NET_ADMIN` to attach them to interfaces;
//! - the router: `CAP_NET_RAW` for VRRP's raw IP socket and
//!   `CAP_NET_ADMIN` for the virtual addresses and Accept_Mode's nftables
//!   table; its XDP filter (and so `CAP_BPF`, `CAP_PERFMON`) only with
//!   load sharing;
//! - the migration controller: `CAP_NET_RAW` for its AF_XDP sockets, and
//!   `CAP_IPC_LOCK` to lock their frames unless RLIMIT_MEMLOCK is
//!   unlimited (the unit's `LimitMEMLOCK=infinity`); the agent:
//!   `CAP_NET_ADMIN` to move the service address (it freezes through a
//!   cgroup delegated to its user, or SIGSTOPs its own user's process);
//!   the coordinator: nothing of its own;
//! - a listener on a port below 1024: `CAP_NET_BIND_SERVICE`.

use control::config::Config;

/// Capability numbers (linux/capability.h).
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

pub fn name(cap: u32) -> &'static str {
    match cap {
        CAP_NET_BIND_SERVICE => "CAP_NET_BIND_SERVICE",
        CAP_IPC_LOCK => "CAP_IPC_LOCK",
        CAP_NET_ADMIN => "CAP_NET_ADMIN",
        CAP_NET_RAW => "CAP_NET_RAW",
        CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
        CAP_PERFMON => "CAP_PERFMON",
        CAP_BPF => "CAP_BPF",
        _ => "a capability",
    }
}

/// One need: the capability, the role, what for.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub cap: u32,
    pub role: &'static str,
    pub why: &'static str,
}

/// What `config` needs, in the order roles start.
pub fn needs(config: &Config) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |cap, role, why| out.push(Need { cap, role, why });
    let xdp = |need: &mut dyn FnMut(u32, &'static str, &'static str), role: &'static str| {
        need(
            CAP_BPF,
            role,
            "to create its BPF maps and load its programs",
        );
        need(
            CAP_PERFMON,
            role,
            "for the verifier to allow its programs' packet pointer arithmetic",
        );
        need(CAP_NET_ADMIN, role, "to attach its programs to interfaces");
    };
    if !config.lb.is_empty() {
        xdp(&mut need, "lb");
    }
    if !config.gateway.is_empty() {
        xdp(&mut need, "gateway");
    }
    if !config.router.is_empty() {
        // The XDP filter runs only with load sharing.
        if config.router.iter().any(|r| r.load_sharing.is_some()) {
            xdp(&mut need, "router");
        } else {
            need(
                CAP_NET_ADMIN,
                "router",
                "to add the virtual addresses (and Accept_Mode's nftables table)",
            );
        }
        need(CAP_NET_RAW, "router", "for VRRP's raw IP socket");
    }
    if config.sip_monitor.is_some() {
        xdp(&mut need, "sip-monitor");
    }
    let low = |a: std::net::SocketAddr| a.port() != 0 && a.port() < 1024;
    if let Some(p) = &config.presence {
        if low(p.listen) || p.tls.as_ref().is_some_and(|t| low(t.listen)) {
            need(
                CAP_NET_BIND_SERVICE,
                "presence",
                "to listen on a port below 1024",
            );
        }
    }
    if let Some(m) = &config.migration {
        if m.controller.is_some() {
            xdp(&mut need, "migration controller");
            need(
                CAP_NET_RAW,
                "migration controller",
                "for its AF_XDP sockets",
            );
            if !memlock_unlimited() {
                need(
                    CAP_IPC_LOCK,
                    "migration controller",
                    "to lock its AF_XDP frames past RLIMIT_MEMLOCK (or run it with LimitMEMLOCK=infinity)",
                );
            }
        }
        if let Some(a) = &m.agent {
            need(
                CAP_NET_ADMIN,
                "migration agent",
                "to move the service address",
            );
            if low(a.listen) {
                need(
                    CAP_NET_BIND_SERVICE,
                    "migration agent",
                    "to listen on a port below 1024",
                );
            }
        }
    }
    if config.node.metrics.is_some_and(low) {
        need(
            CAP_NET_BIND_SERVICE,
            "node",
            "for node.metrics on a port below 1024",
        );
    }
    out
}

/// Whether RLIMIT_MEMLOCK is unlimited (then locking AF_XDP frames needs
/// no CAP_IPC_LOCK).
fn memlock_unlimited() -> bool {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill.
    unsafe {
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) == 0 && r.rlim_cur == libc::RLIM_INFINITY
    }
}

/// The effective capabilities of this process (`CapEff` in
/// /proc/self/status); all of them if that cannot be read.
pub fn effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The needs `have` does not meet, as one error naming each capability,
/// its role and why; nothing if all are met.
pub fn check(needs: &[Need], have: u64) -> Result<(), String> {
    // The kernel takes CAP_SYS_ADMIN for CAP_BPF and CAP_PERFMON
    // (bpf_capable, perfmon_capable), as before they existed.
    let have = if have & (1 << CAP_SYS_ADMIN) != 0 {
        have | (1 << CAP_BPF) | (1 << CAP_PERFMON)
    } else {
        have
    };
    let mut missing: Vec<&Need> = needs.iter().filter(|n| have & (1 << n.cap) == 0).collect();
    missing.dedup_by(|a, b| a.cap == b.cap && a.role == b.role);
    if missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = missing
        .iter()
        .map(|n| format!("{} ({} {})", name(n.cap), n.role, n.why))
        .collect();
    Err(format!(
        "missing capabilit{}: {}; nothing was started (give them to the daemon: systemd's AmbientCapabilities=, or setpriv --ambient-caps)",
        if lines.len() == 1 { "y" } else { "ies" },
        lines.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_needs_its_capabilities_and_a_missing_one_is_named() {
        let lb = Config::parse("[node]\nname = \"n\"\n[[lb]]\ninterface = \"eth0\"\n").unwrap();
        let n = needs(&lb);
        assert_eq!(
            n.iter().map(|n| n.cap).collect::<Vec<_>>(),
            [CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN]
        );
        let all = (1u64 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN);
        assert!(check(&n, all).is_ok());
        assert!(check(&n, u64::MAX).is_ok(), "root");
        let e = check(&n, all & !(1 << CAP_PERFMON)).unwrap_err();
        assert!(
            e.starts_with("missing capability: CAP_PERFMON (lb for the verifier"),
            "{e}"
        );
        assert!(
            check(&n, (1 << CAP_SYS_ADMIN) | (1 << CAP_NET_ADMIN)).is_ok(),
            "CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON"
        );
        let e = check(&n, 0).unwrap_err();
        assert!(
            e.contains("CAP_BPF (lb") && e.contains("CAP_NET_ADMIN (lb"),
            "{e}"
        );
        let presence = Config::parse(
            "[node]\nname = \"n\"\n[presence]\nlisten = \"10.0.0.1:506\"\ndatabase = \"/tmp/p.db\"\nallow = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let e = check(&needs(&presence), 0).unwrap_err();
        assert!(
            e.contains("CAP_NET_BIND_SERVICE (presence to listen on a port below 1024)"),
            "{e}"
        );
        let high = Config::parse(
            "[node]\nname = \"n\"\n[presence]\nlisten = \"10.0.0.1:5070\"\ndatabase = \"/tmp/p.db\"\nallow = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert!(needs(&high).is_empty(), "presence on 5070 needs nothing");
    }
}
