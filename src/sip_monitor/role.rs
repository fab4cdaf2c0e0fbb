//! The `sip-monitor` role in the daemon: the monitor runs on a task of its
//! own and publishes a status snapshot the role reads.

use std::sync::{Arc, Mutex};

use control::{
    api::{CounterView, Request, Response, SipMonitorSummary, StatusView},
    config::Config,
    sip_monitor::config::SipMonitor,
};

use super::{Monitor, MonitorStatus};
use crate::daemon::Role;

/// A new config for the monitor's task, and where it says how that went.
type Reconfigure = (SipMonitor, tokio::sync::oneshot::Sender<Result<(), String>>);

pub struct SipMonitorRole {
    cfg: SipMonitor,
    status: Arc<Mutex<MonitorStatus>>,
    reconf: tokio::sync::mpsc::UnboundedSender<Reconfigure>,
}

impl Role for SipMonitorRole {
    async fn start(
        config: &Config,
        opts: &dataplane_user::LoadOptions,
    ) -> anyhow::Result<Option<Self>> {
        let Some(cfg) = config.sip_monitor.clone() else {
            return Ok(None);
        };
        let mon = Monitor::start(cfg.clone(), opts).await?;
        let status = mon.status.clone();
        let (reconf, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(mon.run(rx));
        Ok(Some(Self {
            cfg,
            status,
            reconf,
        }))
    }

    fn name(&self) -> &'static str {
        "sip-monitor"
    }

    fn status(&self, view: &mut StatusView) {
        let s = self.status.lock().unwrap();
        view.sip_monitor = Some(SipMonitorSummary {
            interfaces: self.cfg.interfaces.clone(),
            domain: self.cfg.domain.clone(),
            presence: self.cfg.presence.to_string(),
            dialogs: s.dialogs,
            published: s.published,
            restored: s.restored_after_ms.map(|down| {
                let mut r = format!(
                    "{} dialog(s), {} registration(s), {} terminal(s) after {down} ms down",
                    s.restored_dialogs, s.restored_registrations, s.restored_terminals
                );
                if let Some(n) = &s.restore_note {
                    r += &format!("; {n}");
                }
                r
            }),
        });
    }

    fn counters(&self, out: &mut Vec<CounterView>) -> anyhow::Result<()> {
        let s = self.status.lock().unwrap();
        let iface = self.cfg.interfaces.join(",");
        for (name, packets, bytes) in &s.xdp {
            out.push(CounterView::xdp(
                "sip-monitor",
                "sip_monitor",
                &iface,
                name,
                *packets,
                *bytes,
            ));
        }
        let part =
            |name: &str, n: u64| CounterView::daemon("sip-monitor", "monitor", &iface, name, n);
        out.push(part("copies_read", s.copied));
        out.push(part("messages_parsed", s.parsed));
        let mut invalid: Vec<_> = s.invalid.iter().collect();
        invalid.sort();
        for (reason, n) in invalid {
            out.push(part(&format!("parse_error_{}", metric_safe(reason)), *n));
        }
        out.push(part("status_changes", s.changes));
        out.push(part("published", s.published));
        out.push(part("publish_ok", s.publish_ok));
        out.push(part("publish_failed", s.publish_failed));
        out.push(part("publish_retransmitted", s.publish_retransmitted));
        out.push(part("publish_timeouts", s.publish_timeouts));
        out.push(part("publish_superseded", s.publish_superseded));
        out.push(part("presence_connections", s.presence_connections));
        out.push(part("publish_resent", s.publish_resent));
        out.push(part("presence_tls_failed", s.presence_tls_failed));
        out.push(part("publish_refreshed", s.publish_refreshed));
        out.push(part("state_saves", s.state_saves));
        out.push(part("state_save_failed", s.state_save_failed));
        out.push(part("restored_dialogs", s.restored_dialogs as u64));
        out.push(part(
            "restored_registrations",
            s.restored_registrations as u64,
        ));
        out.push(part("restored_terminals", s.restored_terminals as u64));
        out.push(part("restored_journal", s.restored_journal as u64));
        out.push(part(
            "restored_dialogs_ended",
            u64::from(s.restore_note.is_some()) * s.restored_dialogs as u64,
        ));
        Ok(())
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        let new = new
            .sip_monitor
            .as_ref()
            .expect("the daemon checks the set of roles first");
        if new.interfaces != self.cfg.interfaces {
            return Err("sip_monitor.interfaces changed; restart the daemon to apply it (nothing was changed)".into());
        }
        if new.state_file != self.cfg.state_file {
            return Err("sip_monitor.state_file changed; restart the daemon to apply it (nothing was changed)".into());
        }
        Ok(())
    }

    /// Everything but the interfaces and the state file applies live, in the monitor's task
    /// (dialogs, registrations and pending publications carry on).
    fn apply(&mut self, new: &Config) -> Result<String, String> {
        let new = new.sip_monitor.clone().expect("checked");
        if new == self.cfg {
            return Ok(String::new());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.reconf
            .send((new.clone(), tx))
            .map_err(|_| "the sip monitor is not running".to_string())?;
        tokio::runtime::Handle::current()
            .block_on(rx)
            .map_err(|_| "the sip monitor stopped while reconfiguring".to_string())??;
        self.cfg = new;
        Ok("sip-monitor reconfigured".into())
    }

    fn handle(&mut self, req: Request) -> Result<Response, String> {
        match req {
            Request::SipMonitorStatus => Ok(Response::ok(self.status.lock().unwrap().clone())),
            other => Err(format!("not a sip-monitor request: {other:?}")),
        }
    }
}

/// A parse error's reason as a counter name: lower case, words joined by
/// `_` (reasons are sentences such as "no Call-ID header").
fn metric_safe(reason: &str) -> String {
    let mut out = String::new();
    for w in reason
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&w.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_error_reasons_become_counter_names() {
        assert_eq!(super::metric_safe("no Call-ID header"), "no_call_id_header");
        assert_eq!(super::metric_safe("  bad  CSeq: 'x' "), "bad_cseq_x");
    }
}
