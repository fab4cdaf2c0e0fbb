//! Accounting (claim 6): records of user sessions, the JSON-lines file
//! they go to, and the clock that dates them.

use super::*;

impl GwInstance {
    pub(super) fn record(
        &self,
        event: &str,
        port: u16,
        s: &SessionEntry,
        clock: &Clock,
        end: Option<EndReason>,
    ) -> Result<AccountingRecord, GwError> {
        let c = self.dp.session_counters(port)?;
        Ok(self.record_of(event, port, s, &c, self.session_of(s.tunnel), clock, end))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_of(
        &self,
        event: &str,
        port: u16,
        s: &SessionEntry,
        c: &SessionCounters,
        pfcp: Option<(u64, u32)>,
        clock: &Clock,
        end: Option<EndReason>,
    ) -> AccountingRecord {
        AccountingRecord {
            seid: pfcp.map(|p| p.0),
            teid: pfcp.map(|p| p.1),
            event: event.into(),
            gateway: match (s.terminal.is_ipv6(), self.cfg.address6) {
                (true, Some(a6)) => a6.into(),
                _ => self.cfg.address.into(),
            },
            port,
            terminal: s.terminal.to_string(),
            representative: s.representative.to_string(),
            proto: g::proto_name(s.proto).into(),
            group: self.group_name(s.group),
            server: self.server_name(s.server),
            session_type: s.session_type,
            start: clock.unix(s.created_ns),
            time: clock.unix(clock.mono_now),
            packets_up: c.pkts_up,
            bytes_up: c.bytes_up,
            packets_down: c.pkts_down,
            bytes_down: c.bytes_down,
            end_reason: end,
        }
    }
}

/// CLOCK_MONOTONIC (what the fast path stamps) and its offset to Unix time.
pub(super) struct Clock {
    pub(super) mono_now: u64,
    offset: f64,
}

impl Clock {
    pub(super) fn now() -> Self {
        let mono = |id| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid clock id and out pointer.
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        let m = mono(libc::CLOCK_MONOTONIC);
        let r = mono(libc::CLOCK_REALTIME);
        Self {
            mono_now: m,
            offset: r as f64 / 1e9 - m as f64 / 1e9,
        }
    }

    pub(super) fn unix(&self, mono_ns: u64) -> f64 {
        mono_ns as f64 / 1e9 + self.offset
    }
}

/// JSON-lines accounting file with size-based rotation (FILE.1 .. FILE.keep).
pub(super) struct AccountingFile {
    pub(super) path: PathBuf,
    rotate_bytes: u64,
    keep: u32,
}

impl AccountingFile {
    pub(super) fn new(path: &Path, cfg: &gcfg::Accounting) -> Self {
        Self {
            path: path.into(),
            rotate_bytes: cfg.rotate_bytes,
            keep: cfg.keep,
        }
    }

    pub(super) fn write(&mut self, r: &AccountingRecord) -> Result<(), GwError> {
        let err = |e| GwError::Accounting(self.path.clone(), e);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        if std::fs::metadata(&self.path)
            .map(|m| m.len() >= self.rotate_bytes)
            .unwrap_or(false)
        {
            for i in (1..self.keep).rev() {
                let from = rotated(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, i + 1)).map_err(err)?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(err)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        let mut line = serde_json::to_vec(r).expect("serializable");
        line.push(b'\n');
        f.write_all(&line).map_err(err)
    }
}

fn rotated(p: &Path, i: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{i}"));
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(port: u16) -> AccountingRecord {
        AccountingRecord {
            seid: None,
            teid: None,
            event: "end".into(),
            gateway: Ipv4Addr::new(10, 2, 0, 1).into(),
            port,
            terminal: "10.0.0.2:1".into(),
            representative: "198.51.100.10:80".into(),
            proto: "tcp".into(),
            group: "web".into(),
            server: "s0".into(),
            session_type: 0,
            start: 1.0,
            time: 2.0,
            packets_up: 1,
            bytes_up: 60,
            packets_down: 1,
            bytes_down: 60,
            end_reason: Some(EndReason::IdleTimeout),
        }
    }

    #[test]
    fn accounting_rotates_and_keeps_n_files() {
        let dir = std::env::temp_dir().join(format!("ep-acct-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("acct.jsonl");
        let cfg = gcfg::Accounting {
            file: Some(path.clone()),
            interim: 0,
            rotate_bytes: 4096,
            keep: 2,
        };
        let mut f = AccountingFile::new(&path, &cfg);
        for p in 0..200u16 {
            f.write(&rec(p)).unwrap();
        }
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only `keep` old files");
        assert!(std::fs::metadata(&path).unwrap().len() < 4096 + 400);
        // Nothing is lost across a rotation: the newest record is last in
        // the live file, the records before it in FILE.1.
        let live = std::fs::read_to_string(&path).unwrap();
        let last: AccountingRecord = serde_json::from_str(live.lines().last().unwrap()).unwrap();
        assert_eq!(last.port, 199);
        let prev: AccountingRecord = serde_json::from_str(
            std::fs::read_to_string(rotated(&path, 1))
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(prev.port as usize + lines(&path), 199);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
