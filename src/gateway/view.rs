//! What `gw sessions` shows: user sessions, and PFCP sessions holding them.

use super::*;

impl GwInstance {
    pub fn sessions(&self) -> Result<Vec<SessionView>, GwError> {
        let clock = Clock::now();
        let mut out = Vec::new();
        for (_, port) in self.dp.flows()? {
            let s = self.dp.session(port)?;
            if !s.active {
                continue;
            }
            let r = self.record("live", port, &s, &clock, None)?;
            out.push(SessionView {
                seid: r.seid,
                teid: r.teid,
                port,
                terminal: r.terminal,
                representative: r.representative,
                proto: r.proto,
                group: r.group,
                server: r.server,
                session_type: s.session_type,
                idle_s: clock.mono_now.saturating_sub(s.last_seen_ns) as f64 / 1e9,
                packets_up: r.packets_up,
                bytes_up: r.bytes_up,
                packets_down: r.packets_down,
                bytes_down: r.bytes_down,
            });
        }
        out.sort_by_key(|s| s.port);
        Ok(out)
    }

    /// PFCP sessions with their user sessions, then the plain-IP ones.
    pub fn session_tree(&self) -> Result<SessionTreeView, GwError> {
        let mut users = self.sessions()?;
        let mut out = SessionTreeView::default();
        if let Some(gtp) = &self.gtp {
            for s in gtp.engine.sessions() {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    users.into_iter().partition(|u| u.seid == Some(s.up_seid));
                users = rest;
                let usage = self.dp.tunnel_counters(s.tunnel).unwrap_or_default();
                out.sessions.push(PfcpSessionView {
                    seid: s.up_seid,
                    cp_seid: s.cp_seid,
                    cp: s.cp.to_string(),
                    tunnel: s.tunnel,
                    ue: s.spec.ue_addr,
                    ue6: s.spec.ue_addr6,
                    ul_teid: s.spec.ul_teid,
                    dl_teid: s.spec.dl_teid,
                    access_node: s.spec.an_addr,
                    qfi: s.spec.qfi,
                    bytes_ul: usage.bytes_ul,
                    bytes_dl: usage.bytes_dl,
                    packets_ul: usage.pkts_ul,
                    packets_dl: usage.pkts_dl,
                    user_sessions: mine,
                });
            }
        }
        out.plain = users;
        Ok(out)
    }
}

/// A user session (claim 8: one port), and the PFCP session (SEID, uplink
/// TEID) it belongs to when it came through a GTP-U tunnel.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SessionView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teid: Option<u32>,
    pub port: u16,
    pub terminal: String,
    pub representative: String,
    pub proto: String,
    pub group: String,
    pub server: String,
    pub session_type: u8,
    pub idle_s: f64,
    pub packets_up: u64,
    pub bytes_up: u64,
    pub packets_down: u64,
    pub bytes_down: u64,
}

/// `edgeplane gw sessions`: the hierarchy of claim 8.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct SessionTreeView {
    /// PFCP sessions (GTP-U tunnels), each with its user sessions.
    pub sessions: Vec<PfcpSessionView>,
    /// User sessions of plain-IP terminals.
    pub plain: Vec<SessionView>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PfcpSessionView {
    /// This gateway's SEID, and the control plane's.
    pub seid: u64,
    pub cp_seid: u64,
    /// The control plane's PFCP address.
    pub cp: String,
    pub tunnel: u32,
    pub ue: Ipv4Addr,
    /// The UE's IPv6 prefix, for an IPv6 or dual-stack PDU session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ue6: Option<std::net::Ipv6Addr>,
    pub ul_teid: u32,
    pub dl_teid: Option<u32>,
    pub access_node: Option<std::net::IpAddr>,
    pub qfi: Option<u8>,
    pub packets_ul: u64,
    pub bytes_ul: u64,
    pub packets_dl: u64,
    pub bytes_dl: u64,
    pub user_sessions: Vec<SessionView>,
}
