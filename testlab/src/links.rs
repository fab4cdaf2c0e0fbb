//! Getting a lab's links ready for IPv6: duplicate address detection off
//! before the interfaces exist, and a wait until IPv6 runs on each link.

/// Duplicate address detection off in a new namespace, before its
/// interfaces exist: lab addresses are unique by construction, and a
/// tentative IPv6 address cannot be bound or sent from for a second or two.
pub fn no_dad(ns: &str) -> anyhow::Result<()> {
    for k in ["all", "default"] {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "sysctl", "-qw"])
            .arg(format!("net.ipv6.conf.{k}.accept_dad=0"))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "sysctl accept_dad in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Wait (at most `within`) until IPv6 is running on every interface of
/// namespace `ns` that is up: each has its link-local address, not
/// tentative. A veth whose peer came up after it learns of its carrier
/// through the kernel's link watch, up to a second later, and only then
/// joins its solicited-node groups: a Neighbor Solicitation for it before
/// that is ignored, and the first packet of a test waits a second for
/// the retry.
pub fn wait_links_ready(ns: &str, within: std::time::Duration) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let ip = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "ip", "-o"])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    loop {
        let links = ip(&["link", "show", "up"])?;
        let names: Vec<String> = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n != "lo")
            .collect();
        let addrs = ip(&["-6", "addr", "show", "scope", "link"])?;
        let ready = |n: &str| {
            addrs.lines().any(|l| {
                l.split_whitespace().nth(1) == Some(n)
                    && l.contains(" fe80::")
                    && !l.contains("tentative")
            })
        };
        let waiting: Vec<&String> = names.iter().filter(|n| !ready(n)).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            t0.elapsed() < within,
            "IPv6 not running on {waiting:?} in {ns} after {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
