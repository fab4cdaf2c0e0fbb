//! IPv6 beside IPv4 on the lb/gateway topology (issue 13): the terminal
//! and the lb's ingress on 2001:db8:1::/64, the server network on
//! 2001:db8:2::/64 with the gateway at 2001:db8:2::1, and IPv6 echo
//! servers (TCP [::]:8086 on s0/s1, UDP [::]:5356 on s2/s3) behind the
//! IPv6 representative addresses of `gateway_config_dual`.

use std::{
    net::Ipv6Addr,
    sync::{atomic::AtomicBool, Arc},
    thread,
};

use crate::topo::{tcp_echo, udp_echo, Peers, Topology};

pub const TERM6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// The gateway's IPv6 address on the server network (`address6`).
pub const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
pub const WEB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x10);
pub const DNS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0x20);
pub const WEB6_PORT: u16 = 8086;
pub const DNS6_PORT: u16 = 5356;

/// Server `i`'s IPv6 address.
pub fn server6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x11 + i as u16)
}

impl Topology {
    /// IPv6 on LB 1's terminal side and on the server network (call after
    /// `add_server_network`); addresses without duplicate address
    /// detection, and every link's IPv6 up before it returns.
    pub fn add_ipv6(&self, servers: usize) -> anyhow::Result<()> {
        let (t, l) = (self.ns("t1"), self.ns("l1"));
        self.exec(
            &t,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{TERM6}/64"),
                "dev",
                "term0",
                "nodad",
            ],
        )?;
        self.exec(
            &t,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:1::1",
            ],
        )?;
        self.exec(
            &l,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                "2001:db8:1::1/64",
                "dev",
                "ingress",
                "nodad",
            ],
        )?;
        self.exec(&l, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
        for gi in 0..self.gateways {
            let g = self.ns(&format!("g{gi}"));
            let a = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1 + gi as u16);
            self.exec(
                &g,
                &[
                    "ip",
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/64"),
                    "dev",
                    "srv",
                    "nodad",
                ],
            )?;
        }
        for i in 0..servers {
            let s = self.ns(&format!("s{i}"));
            let a = server6(i);
            self.exec(
                &s,
                &[
                    "ip",
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            )?;
        }
        let mut all = vec![t, l];
        all.extend((0..self.gateways).map(|g| self.ns(&format!("g{g}"))));
        all.extend((0..servers).map(|i| self.ns(&format!("s{i}"))));
        for ns in &all {
            crate::links::wait_links_ready(ns, std::time::Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// `gateway_config` with the gateway's IPv6 address and two IPv6
    /// groups: web6 ([WEB6]:80/tcp on s0/s1 port 8086) and dns6
    /// ([DNS6]:53/udp on s2/s3 port 5356).
    pub fn gateway_config_dual(&self, gi: usize, ports: &str, extra: &str) -> String {
        let a6 = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1 + gi as u16);
        let mut s = self.gateway_config(gi, ports, &format!("address6 = \"{a6}\"\n{extra}"));
        let server = |i: usize, port: u16| {
            format!(
                "[[gateway.group.server]]\nname = \"s{i}v6\"\naddress = \"{}\"\nport = {port}\n",
                server6(i)
            )
        };
        s.push_str(&format!(
            "\n[[gateway.group]]\nname = \"web6\"\nservices = [\"[{WEB6}]:80/tcp\"]\n{}{}\n\
             [[gateway.group]]\nname = \"dns6\"\nservices = [\"[{DNS6}]:53/udp\"]\n{}{}",
            server(0, WEB6_PORT),
            server(1, WEB6_PORT),
            server(2, DNS6_PORT),
            server(3, DNS6_PORT),
        ));
        s
    }

    /// IPv6 echo servers (as `echo_servers`: each reply is "<peer> s<i>
    /// <request>").
    pub fn echo_servers_ipv6(
        &self,
        stop: Arc<AtomicBool>,
    ) -> (Vec<thread::JoinHandle<()>>, Vec<Peers>) {
        let peers: Vec<Peers> = (0..4)
            .map(|_| Arc::new(std::sync::Mutex::new(Vec::new())))
            .collect();
        let handles = (0..4)
            .map(|i| {
                let ns = format!("/run/netns/{}", self.ns(&format!("s{i}")));
                let (p, stop) = (peers[i].clone(), stop.clone());
                if i < 2 {
                    let bind = format!("[::]:{WEB6_PORT}");
                    thread::spawn(move || tcp_echo(&ns, i, p, stop, &bind))
                } else {
                    let bind = format!("[::]:{DNS6_PORT}");
                    thread::spawn(move || udp_echo(&ns, i, p, stop, &bind))
                }
            })
            .collect();
        (handles, peers)
    }
}
