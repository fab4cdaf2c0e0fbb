//! Accept_Mode off (RFC 5798 §6.1): a master that is not the address
//! owner must not accept packets addressed to the virtual addresses. An
//! nftables table per virtual router drops them at the input hook while
//! the instance runs; ARP (not IP) and Neighbor Discovery still reach the
//! kernel, so the master answers for the addresses, and traffic routed
//! through it never meets the input hook.

use std::net::IpAddr;

use anyhow::{bail, Context as _};

pub struct AcceptFilter {
    pub table: String,
}

fn nft(args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut c = std::process::Command::new("nft");
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .context("running nft (accept = false needs nftables; install the nftables package)")?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The table's name: `edgeplane_vrrp_<interface>_<vrid>` (`_6` for an
/// IPv6 virtual router), other characters of the name as `_`.
pub fn table_name(iface: &str, vrid: u8, v6: bool) -> String {
    let i: String = iface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("edgeplane_vrrp_{i}_{vrid}{}", if v6 { "_6" } else { "" })
}

/// The ruleset: replaces a table a killed daemon left.
pub fn ruleset(table: &str, addrs: &[IpAddr]) -> String {
    let set = |v6: bool| -> String {
        addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (v4, v6) = (set(false), set(true));
    let mut rules = String::new();
    if !v4.is_empty() {
        rules += &format!("    ip daddr {{ {v4} }} counter drop\n");
    }
    if !v6.is_empty() {
        rules += &format!(
            "    ip6 daddr {{ {v6} }} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n    ip6 daddr {{ {v6} }} counter drop\n"
        );
    }
    format!(
        "table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n  chain input {{\n    type filter hook input priority filter; policy accept;\n{rules}  }}\n}}\n"
    )
}

impl AcceptFilter {
    pub fn install(iface: &str, vrid: u8, v6: bool, addrs: &[IpAddr]) -> anyhow::Result<Self> {
        let table = table_name(iface, vrid, v6);
        nft(&["-f", "-"], Some(&ruleset(&table, addrs)))
            .with_context(|| format!("installing the Accept_Mode filter {table}"))?;
        Ok(Self { table })
    }
}

/// Packets to the virtual addresses dropped by the table (its counters
/// summed); None when it cannot be read.
pub fn dropped(table: &str) -> Option<u64> {
    let out = nft(&["-j", "list", "table", "inet", table], None).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let mut n = 0;
    for item in v["nftables"].as_array()? {
        for e in item["rule"]["expr"].as_array().into_iter().flatten() {
            if let Some(p) = e["counter"]["packets"].as_u64() {
                n += p;
            }
        }
    }
    Some(n)
}

impl Drop for AcceptFilter {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", &self.table], None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_drops_only_what_is_addressed_to_the_virtual_addresses() {
        assert_eq!(table_name("eth0.5", 51, true), "edgeplane_vrrp_eth0_5_51_6");
        let r = ruleset(
            "t",
            &["10.3.0.100".parse().unwrap(), "10.3.0.101".parse().unwrap()],
        );
        assert!(
            r.contains("ip daddr { 10.3.0.100, 10.3.0.101 } counter drop"),
            "{r}"
        );
        assert!(!r.contains("ip6"), "{r}");
        let r = ruleset("t", &["fe80::51".parse().unwrap()]);
        assert!(r.contains("nd-neighbor-solicit"), "{r}");
        assert!(r.contains("ip6 daddr { fe80::51 } counter drop"), "{r}");
    }
}
