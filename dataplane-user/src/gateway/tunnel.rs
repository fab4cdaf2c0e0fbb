//! GTP-U tunnels (`GW_TUNNELS`, `GW_TEIDS`, `GW_TUN_STATS`): the entries
//! as the control plane writes them, and the handle's methods.

use super::*;

/// The access node's side of a GTP-U tunnel: where the downlink goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelDownlink {
    /// The access node's TEID, host order.
    pub teid: u32,
    /// The access node's address (outer destination of the downlink):
    /// GTP-U over IPv4 or, for an IPv6 address, over IPv6 (from the
    /// gateway's IPv6 N3 address).
    pub an_addr: IpAddr,
    /// QoS flow identifier for a PDU Session Container; `None`: no
    /// extension header.
    pub qfi: Option<u8>,
    /// Next hop toward the access node (or the node itself).
    pub mac: [u8; 6],
    /// Egress interface's MAC and index.
    pub src_mac: [u8; 6],
    pub ifindex: u32,
}

/// A GTP-U tunnel (`GW_TUNNELS`, by index; `GW_TEIDS` finds it by its
/// uplink TEID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelEntry {
    /// The local (uplink) TEID, host order.
    pub ul_teid: u32,
    /// The UE's address: the inner source of the uplink, the inner
    /// destination of the downlink.
    pub ue_addr: Ipv4Addr,
    /// The UE's IPv6 /64 prefix, for an IPv6 (or dual-stack) PDU session:
    /// an uplink's inner IPv6 source must be in it.
    pub ue_addr6: Option<Ipv6Addr>,
    /// `None` until the access node's side is known (PFCP: no downlink
    /// FAR yet): the uplink is served, the downlink dropped
    /// (`gtpu_no_tunnel`).
    pub downlink: Option<TunnelDownlink>,
}

impl From<TunnelEntry> for Tunnel {
    fn from(e: TunnelEntry) -> Self {
        let d = e.downlink.unwrap_or(TunnelDownlink {
            teid: 0,
            an_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            qfi: None,
            mac: [0; 6],
            src_mac: [0; 6],
            ifindex: 0,
        });
        Tunnel {
            state: gateway::TUNNEL_ACTIVE,
            ul_teid: e.ul_teid,
            dl_teid: d.teid,
            ue_addr: net(e.ue_addr),
            an_addr: match d.an_addr {
                IpAddr::V4(a) => net(a),
                IpAddr::V6(_) => 0,
            },
            qfi: d.qfi.map(|q| q & 0x3f).unwrap_or(0),
            _pad: [0; 3],
            an_mac: d.mac,
            an_src_mac: d.src_mac,
            an_ifindex: d.ifindex,
            ue_addr6: e.ue_addr6.map(net6).unwrap_or_default(),
            an_addr6: match d.an_addr {
                IpAddr::V6(a) => net6(a),
                IpAddr::V4(_) => [0; 4],
            },
        }
    }
}

impl TunnelEntry {
    /// `None` for a free slot.
    fn from_map(t: Tunnel) -> Option<Self> {
        (t.state == gateway::TUNNEL_ACTIVE).then(|| TunnelEntry {
            ul_teid: t.ul_teid,
            ue_addr: addr(t.ue_addr),
            ue_addr6: (t.ue_addr6 != [0; 4]).then(|| addr6(t.ue_addr6)),
            downlink: t.has_downlink().then(|| TunnelDownlink {
                teid: t.dl_teid,
                an_addr: if t.an_addr6 != [0; 4] {
                    IpAddr::V6(addr6(t.an_addr6))
                } else {
                    IpAddr::V4(addr(t.an_addr))
                },
                qfi: (t.qfi != 0).then_some(t.qfi),
                mac: t.an_mac,
                src_mac: t.an_src_mac,
                ifindex: t.an_ifindex,
            }),
        })
    }
}

impl Dataplane {
    /// Install the tunnel at `idx` (< `TUNNELS_MAX`): the entry first, then
    /// its uplink TEID, which makes it reachable. Re-installing an index
    /// with another uplink TEID removes the old TEID first.
    pub fn set_tunnel(&mut self, idx: u32, t: &TunnelEntry) -> Result<()> {
        if idx >= gateway::TUNNELS_MAX {
            return Err(Error::Other(format!(
                "tunnel index {idx}, at most {}",
                gateway::TUNNELS_MAX - 1
            )));
        }
        let old = self.tunnel(idx)?;
        if let Some(o) = old.filter(|o| o.ul_teid != t.ul_teid) {
            let mut h: HashMap<&mut MapData, u32, u32> = self.map_mut(&maps::GW_TEIDS)?;
            match h.get(&o.ul_teid, 0) {
                Ok(i) if i == idx => h.remove(&o.ul_teid).map_err(map_err(&maps::GW_TEIDS))?,
                _ => {}
            }
        }
        {
            let mut a: Array<&mut MapData, Tunnel> = self.map_mut(&maps::GW_TUNNELS)?;
            a.set(idx, Tunnel::from(*t), 0)
                .map_err(map_err(&maps::GW_TUNNELS))?;
        }
        let mut h: HashMap<&mut MapData, u32, u32> = self.map_mut(&maps::GW_TEIDS)?;
        h.insert(t.ul_teid, idx, 0)
            .map_err(map_err(&maps::GW_TEIDS))
    }

    /// Remove the tunnel at `idx` and return its final usage: its TEID
    /// goes first (no new uplink reaches it), then the entry is marked
    /// free (no downlink is encapsulated into it), and only then are the
    /// per-CPU counters read and zeroed, so nothing counts after the read.
    /// Sessions of the tunnel are the sweeper's (their replies are dropped
    /// as `gtpu_no_tunnel` until they expire).
    pub fn remove_tunnel(&mut self, idx: u32) -> Result<TunnelCounters> {
        let a: Array<&MapData, Tunnel> = self.map(&maps::GW_TUNNELS)?;
        let mut t = a.get(&idx, 0).map_err(map_err(&maps::GW_TUNNELS))?;
        {
            let mut h: HashMap<&mut MapData, u32, u32> = self.map_mut(&maps::GW_TEIDS)?;
            match h.get(&t.ul_teid, 0) {
                Ok(i) if i == idx => h.remove(&t.ul_teid).map_err(map_err(&maps::GW_TEIDS))?,
                _ => {}
            }
        }
        t.state = gateway::TUNNEL_FREE;
        {
            let mut a: Array<&mut MapData, Tunnel> = self.map_mut(&maps::GW_TUNNELS)?;
            a.set(idx, t, 0).map_err(map_err(&maps::GW_TUNNELS))?;
        }
        let c = self.tunnel_counters(idx)?;
        let mut a: PerCpuArray<&mut MapData, TunnelCounters> = self.map_mut(&maps::GW_TUN_STATS)?;
        let n = aya::util::nr_cpus().map_err(|(_, e)| Error::Io {
            context: "possible cpus".into(),
            error: e,
        })?;
        let zeros =
            aya::maps::PerCpuValues::try_from(vec![TunnelCounters::default(); n]).map_err(|e| {
                Error::Io {
                    context: "per-cpu values".into(),
                    error: e,
                }
            })?;
        a.set(idx, zeros, 0).map_err(map_err(&maps::GW_TUN_STATS))?;
        Ok(c)
    }

    /// The tunnel at `idx`, `None` if the slot is free.
    pub fn tunnel(&self, idx: u32) -> Result<Option<TunnelEntry>> {
        let a: Array<&MapData, Tunnel> = self.map(&maps::GW_TUNNELS)?;
        a.get(&idx, 0)
            .map(TunnelEntry::from_map)
            .map_err(map_err(&maps::GW_TUNNELS))
    }

    /// Every active tunnel, by index (found through `GW_TEIDS`: only a
    /// tunnel a TEID reaches is listed).
    pub fn tunnels(&self) -> Result<Vec<(u32, TunnelEntry)>> {
        let h: HashMap<&MapData, u32, u32> = self.map(&maps::GW_TEIDS)?;
        let idxs: Vec<u32> = h
            .iter()
            .map(|kv| kv.map(|(_, i)| i))
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(&maps::GW_TEIDS))?;
        let mut out = Vec::new();
        for i in idxs {
            if let Some(t) = self.tunnel(i)? {
                out.push((i, t));
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.dedup_by_key(|(i, _)| *i);
        Ok(out)
    }

    /// A tunnel's usage summed over CPUs (inner IP packets and bytes).
    pub fn tunnel_counters(&self, idx: u32) -> Result<TunnelCounters> {
        let a: PerCpuArray<&MapData, TunnelCounters> = self.map(&maps::GW_TUN_STATS)?;
        let v = a.get(&idx, 0).map_err(map_err(&maps::GW_TUN_STATS))?;
        Ok(v.iter()
            .fold(TunnelCounters::default(), |t, c| TunnelCounters {
                pkts_ul: t.pkts_ul + c.pkts_ul,
                bytes_ul: t.bytes_ul + c.bytes_ul,
                pkts_dl: t.pkts_dl + c.pkts_dl,
                bytes_dl: t.bytes_dl + c.bytes_dl,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::wire_u32;
    use super::*;

    #[test]
    fn tunnel_entries_keep_teids_host_order_and_addresses_wire_order() {
        let d = TunnelDownlink {
            teid: 0x0102_0304,
            an_addr: Ipv4Addr::new(10, 4, 0, 2).into(),
            qfi: Some(9),
            mac: [2, 0, 0, 0, 4, 2],
            src_mac: [2, 0, 0, 0, 4, 1],
            ifindex: 5,
        };
        let e = TunnelEntry {
            ul_teid: 0x1000,
            ue_addr: Ipv4Addr::new(100, 64, 0, 9),
            ue_addr6: None,
            downlink: Some(d),
        };
        let raw = Tunnel::from(e);
        assert_eq!(
            (raw.state, raw.ul_teid, raw.dl_teid, raw.qfi),
            (gateway::TUNNEL_ACTIVE, 0x1000, 0x0102_0304, 9)
        );
        assert_eq!(wire_u32(raw.ue_addr), [100, 64, 0, 9]);
        assert_eq!(wire_u32(raw.an_addr), [10, 4, 0, 2]);
        assert_eq!(TunnelEntry::from_map(raw), Some(e));
        assert_eq!(raw.ue_addr6, [0; 4], "IPv4 only: no IPv6 prefix");
        let dual = TunnelEntry {
            ue_addr6: Some("2001:db8:cafe:1::".parse().unwrap()),
            ..e
        };
        assert_eq!(wire_u32(Tunnel::from(dual).ue_addr6[1]), [0xca, 0xfe, 0, 1]);
        assert_eq!(TunnelEntry::from_map(Tunnel::from(dual)), Some(dual));
        let no_qfi = TunnelEntry {
            downlink: Some(TunnelDownlink { qfi: None, ..d }),
            ..e
        };
        assert_eq!(Tunnel::from(no_qfi).qfi, 0);
        assert_eq!(TunnelEntry::from_map(Tunnel::from(no_qfi)), Some(no_qfi));
        let up_only = TunnelEntry {
            downlink: None,
            ..e
        };
        assert_eq!(
            Tunnel::from(up_only).an_addr,
            0,
            "no access node yet: the downlink is dropped"
        );
        assert_eq!(TunnelEntry::from_map(Tunnel::from(up_only)), Some(up_only));
        let v6 = TunnelEntry {
            downlink: Some(TunnelDownlink {
                an_addr: "2001:db8:4::2".parse::<Ipv6Addr>().unwrap().into(),
                ..d
            }),
            ..e
        };
        let raw6 = Tunnel::from(v6);
        assert_eq!(raw6.an_addr, 0, "an IPv6 access node has no IPv4 address");
        assert_eq!(wire_u32(raw6.an_addr6[0]), [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(wire_u32(raw6.an_addr6[3]), [0, 0, 0, 2]);
        assert!(raw6.has_downlink());
        assert_eq!(TunnelEntry::from_map(raw6), Some(v6));
        assert_eq!(TunnelEntry::from_map(Tunnel::default()), None);
    }
}
