//! Next-hop MAC resolution through the kernel's ARP table, so operators
//! name servers by address, not by MAC.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

/// The MAC of `ip` on `iface`, asking the kernel to resolve it first (a
/// datagram to the discard port makes it ARP). Waits up to `wait`.
pub fn resolve(ip: Ipv4Addr, iface: &str, wait: Duration) -> Result<[u8; 6], String> {
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
            if let Ok(s) = UdpSocket::bind("0.0.0.0:0") {
                let _ = s.send_to(b"", SocketAddrV4::new(ip, 9));
            }
            last_probe = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
        if let Some(m) = lookup(ip, iface) {
            return Ok(m);
        }
    }
    Err(format!(
        "no ARP answer from {ip} on {iface} within {wait:?}; give its mac in the config"
    ))
}

/// A complete entry of /proc/net/arp (this process's network namespace).
fn lookup(ip: Ipv4Addr, iface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string("/proc/self/net/arp").ok()?;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && f[0] == ip.to_string() && f[5] == iface && f[2] == "0x2" {
            return control::field::parse_mac(f[3]);
        }
    }
    None
}
