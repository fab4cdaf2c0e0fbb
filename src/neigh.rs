//! Next-hop MAC resolution through the kernel's ARP and neighbour
//! tables, so operators name servers by address, not by MAC.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

/// The MAC of `ip` on `iface`, asking the kernel to resolve it first (a
/// datagram to the discard port makes it ARP, or solicit the IPv6
/// neighbour). Waits up to `wait`.
pub fn resolve(ip: IpAddr, iface: &str, wait: Duration) -> Result<[u8; 6], String> {
    if let Some(m) = lookup(ip, iface) {
        return Ok(m);
    }
    let deadline = Instant::now() + wait;
    let mut last_probe = None::<Instant>;
    while Instant::now() < deadline {
        if last_probe
            .map(|t| t.elapsed() > Duration::from_millis(300))
            .unwrap_or(true)
        {
            let any: IpAddr = if ip.is_ipv6() {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            };
            if let Ok(s) = UdpSocket::bind(SocketAddr::new(any, 0)) {
                let _ = s.send_to(b"", SocketAddr::new(ip, 9));
            }
            last_probe = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
        if let Some(m) = lookup(ip, iface) {
            return Ok(m);
        }
    }
    let how = if ip.is_ipv6() {
        "neighbour advertisement"
    } else {
        "ARP answer"
    };
    Err(format!(
        "no {how} from {ip} on {iface} within {wait:?}; give its mac in the config"
    ))
}

fn lookup(ip: IpAddr, iface: &str) -> Option<[u8; 6]> {
    match ip {
        IpAddr::V4(a) => lookup4(a, iface),
        IpAddr::V6(a) => lookup6(a, iface),
    }
}

/// A resolved entry of the IPv6 neighbour table (`ip -6 neigh`: there is
/// no /proc view of it).
fn lookup6(ip: Ipv6Addr, iface: &str) -> Option<[u8; 6]> {
    let out = std::process::Command::new("ip")
        .args(["-6", "neigh", "show", &ip.to_string(), "dev", iface])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.iter().any(|w| *w == "FAILED" || *w == "INCOMPLETE") {
        return None;
    }
    let at = f.iter().position(|w| *w == "lladdr")?;
    control::field::parse_mac(f.get(at + 1)?)
}

/// A complete entry of /proc/net/arp (this process's network namespace).
fn lookup4(ip: Ipv4Addr, iface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string("/proc/self/net/arp").ok()?;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && f[0] == ip.to_string() && f[5] == iface && f[2] == "0x2" {
            return control::field::parse_mac(f[3]);
        }
    }
    None
}
