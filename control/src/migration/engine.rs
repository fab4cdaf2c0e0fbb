//! The coordinator's sequence for one migration, as a pure engine:
//! answers and failures in, frames to send and progress out.

use std::net::IpAddr;

use super::wire::{Body, Frame, NetworkInfo, ServerInfo, Step, VERSION};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An answer to the request with this ID.
    Answer { id: u64, body: Body },
    /// The request with this ID got no answer before its deadline (or
    /// its connection failed).
    Failed { id: u64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    ToAgent {
        addr: std::net::SocketAddr,
        frame: Frame,
    },
    ToController {
        frame: Frame,
    },
    Progress {
        step: Step,
        note: String,
    },
}

/// One migration, driven by answers and failures (sans I/O).
pub struct Migration {
    pub process: String,
    pub service: IpAddr,
    pub from: ServerInfo,
    pub to: ServerInfo,
    pub network1: NetworkInfo,
    pub network2: NetworkInfo,
    pub step: Step,
    /// Why it rolled back.
    pub failure: Option<String>,
    next_id: u64,
    waiting: Option<u64>,
    /// Rollback requests still unanswered.
    undo: Vec<u64>,
    timeout_ms: u64,
}

impl Migration {
    #[expect(
        clippy::too_many_arguments,
        reason = "the plan of one migration, each part named at the call"
    )]
    pub fn new(
        process: &str,
        service: IpAddr,
        from: ServerInfo,
        to: ServerInfo,
        network1: NetworkInfo,
        network2: NetworkInfo,
        first_id: u64,
        timeout_ms: u64,
    ) -> Self {
        Self {
            process: process.into(),
            service,
            from,
            to,
            network1,
            network2,
            step: Step::Starting,
            failure: None,
            next_id: first_id,
            waiting: None,
            undo: Vec::new(),
            timeout_ms,
        }
    }

    fn frame(&mut self, now_ms: u64, body: Body) -> Frame {
        self.next_id += 1;
        Frame {
            v: VERSION,
            id: self.next_id,
            deadline_ms: now_ms + self.timeout_ms,
            body,
        }
    }

    /// The first request: start the migration on server 1's agent.
    pub fn begin(&mut self, now_ms: u64) -> Vec<Output> {
        let f = self.frame(
            now_ms,
            Body::MigrationStart {
                process: self.process.clone(),
                to: self.to.clone(),
                service: self.service,
            },
        );
        self.waiting = Some(f.id);
        vec![
            Output::Progress {
                step: Step::Starting,
                note: format!(
                    "migration start → agent {} ({})",
                    self.from.name, self.from.agent
                ),
            },
            Output::ToAgent {
                addr: self.from.agent,
                frame: f,
            },
        ]
    }

    /// Pick up a migration a previous coordinator left at `step` (it
    /// stopped or crashed): one that had switched and asked for the resume
    /// asks again (the resume is idempotent, the traffic is already on
    /// network 2); any earlier step rolls back.
    pub fn recover(&mut self, now_ms: u64, step: Step) -> Vec<Output> {
        match step {
            Step::Done | Step::RolledBack => {
                self.step = step;
                vec![]
            }
            Step::Resuming => {
                self.step = Step::Resuming;
                let f = self.frame(
                    now_ms,
                    Body::Resume {
                        process: self.process.clone(),
                    },
                );
                self.waiting = Some(f.id);
                vec![
                    Output::Progress {
                        step: Step::Resuming,
                        note: format!(
                            "coordinator restarted; resume → agent {} again",
                            self.to.name
                        ),
                    },
                    Output::ToAgent {
                        addr: self.to.agent,
                        frame: f,
                    },
                ]
            }
            _ => {
                self.step = Step::Switching; // so that the rollback runs whole
                self.rollback(
                    now_ms,
                    format!("the coordinator restarted during the migration (step {step:?})"),
                )
            }
        }
    }

    /// Whether the request with this ID is a step of the rollback (the
    /// edge keeps asking an unreachable peer for those: see
    /// `rollback_retry_ms`).
    pub fn undoing(&self, id: u64) -> bool {
        self.undo.contains(&id)
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        match input {
            Input::Answer { id, body } if Some(id) == self.waiting => self.advance(now_ms, body),
            Input::Failed { id, reason } if Some(id) == self.waiting => {
                self.rollback(now_ms, reason)
            }
            Input::Answer { id, ref body } if self.undo.contains(&id) => {
                let failed = match body {
                    Body::Error { reason } => Some(reason.clone()),
                    _ => None,
                };
                self.undone(id, failed)
            }
            Input::Failed { id, reason } if self.undo.contains(&id) => {
                self.undone(id, Some(reason))
            }
            _ => vec![], // a late answer to a request already given up
        }
    }

    /// An undo request ended; a failed one is reported with the reason
    /// the migration rolled back (the rollback is then incomplete).
    fn undone(&mut self, id: u64, failed: Option<String>) -> Vec<Output> {
        self.undo.retain(|u| *u != id);
        let mut out = Vec::new();
        if let Some(why) = failed {
            let f = self.failure.get_or_insert_with(String::new);
            f.push_str(&format!("; rollback incomplete: {why}"));
            out.push(Output::Progress {
                step: self.step,
                note: format!("rollback step failed: {why}"),
            });
        }
        if self.undo.is_empty() && self.step == Step::RollingBack {
            self.step = Step::RolledBack;
            out.push(Output::Progress {
                step: Step::RolledBack,
                note: format!("rolled back: {}", self.failure.clone().unwrap_or_default()),
            });
        }
        out
    }

    fn advance(&mut self, now_ms: u64, body: Body) -> Vec<Output> {
        match (self.step, body) {
            (Step::Starting, Body::MigrationComplete { .. }) => {
                // Claim 4: only after completion is the network switched.
                self.step = Step::Switching;
                let f = self.frame(
                    now_ms,
                    Body::SwitchRequest {
                        service: self.service,
                        to: self.network2.clone(),
                    },
                );
                self.waiting = Some(f.id);
                vec![
                    Output::Progress {
                        step: Step::Switching,
                        note: format!(
                            "switch request → connection controller (network {})",
                            self.network2.name
                        ),
                    },
                    Output::ToController { frame: f },
                ]
            }
            (Step::Switching, Body::SwitchDone { .. }) => {
                self.step = Step::Resuming;
                let f = self.frame(
                    now_ms,
                    Body::Resume {
                        process: self.process.clone(),
                    },
                );
                self.waiting = Some(f.id);
                vec![
                    Output::Progress {
                        step: Step::Resuming,
                        note: format!("resume → agent {}", self.to.name),
                    },
                    Output::ToAgent {
                        addr: self.to.agent,
                        frame: f,
                    },
                ]
            }
            (Step::Resuming, Body::Ok) => {
                self.step = Step::Done;
                self.waiting = None;
                vec![Output::Progress {
                    step: Step::Done,
                    note: format!(
                        "{} runs on {} behind network {}",
                        self.process, self.to.name, self.network2.name
                    ),
                }]
            }
            (_, Body::Error { reason }) => self.rollback(now_ms, reason),
            (_, other) => self.rollback(now_ms, format!("unexpected answer {other:?}")),
        }
    }

    /// Any failure: the process resumes on server 1, traffic goes (back)
    /// to network 1 with the held packets released there.
    fn rollback(&mut self, now_ms: u64, reason: String) -> Vec<Output> {
        if matches!(self.step, Step::RollingBack | Step::RolledBack | Step::Done) {
            return vec![];
        }
        self.failure = Some(reason.clone());
        self.step = Step::RollingBack;
        self.waiting = None;
        let mut out = vec![Output::Progress {
            step: Step::RollingBack,
            note: format!("rolling back: {reason}"),
        }];
        let a = self.frame(
            now_ms,
            Body::Abort {
                process: self.process.clone(),
                reason: reason.clone(),
                destination: false,
            },
        );
        self.undo.push(a.id);
        out.push(Output::ToAgent {
            addr: self.from.agent,
            frame: a,
        });
        // The controller releases held packets to network 1 (and steers
        // back if it had switched).
        let s = self.frame(
            now_ms,
            Body::SwitchRequest {
                service: self.service,
                to: self.network1.clone(),
            },
        );
        self.undo.push(s.id);
        out.push(Output::ToController { frame: s });
        // Server 2's agent drops what it may have imported (best effort, and last: it
        // may be the part that failed, and must not delay the steps above).
        if self.to.agent != self.from.agent {
            let d = self.frame(
                now_ms,
                Body::Abort {
                    process: self.process.clone(),
                    reason: reason.clone(),
                    destination: true,
                },
            );
            self.undo.push(d.id);
            out.push(Output::ToAgent {
                addr: self.to.agent,
                frame: d,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(n: &str, net: &str, i: u8) -> ServerInfo {
        ServerInfo {
            name: n.into(),
            address: IpAddr::from([10, i, 0, 10]),
            network: net.into(),
            agent: format!("10.{i}.0.10:7600").parse().unwrap(),
        }
    }

    fn migration() -> Migration {
        Migration::new(
            "counter",
            IpAddr::from([192, 0, 2, 80]),
            server("s1", "n1", 1),
            server("s2", "n2", 2),
            NetworkInfo {
                name: "n1".into(),
                id: 1,
                controller: None,
                via: None,
                next_hop_mac: None,
            },
            NetworkInfo {
                name: "n2".into(),
                id: 2,
                controller: None,
                via: None,
                next_hop_mac: None,
            },
            100,
            2000,
        )
    }

    fn ids(out: &[Output]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Output::ToAgent { frame, .. } | Output::ToController { frame } => Some(frame.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_failed_undo_is_reported() {
        let mut m = migration();
        let out = m.begin(0);
        let out = m.handle(
            5,
            Input::Failed {
                id: ids(&out)[0],
                reason: "agent killed".into(),
            },
        );
        let undo = ids(&out);
        m.handle(
            6,
            Input::Answer {
                id: undo[0],
                body: Body::Error {
                    reason: "ip addr add: no such device".into(),
                },
            },
        );
        for id in &undo[1..] {
            m.handle(
                7,
                Input::Answer {
                    id: *id,
                    body: Body::Ok,
                },
            );
        }
        assert_eq!(m.step, Step::RolledBack);
        assert_eq!(
            m.failure.as_deref(),
            Some("agent killed; rollback incomplete: ip addr add: no such device")
        );
    }

    #[test]
    fn a_restarted_coordinator_finishes_or_rolls_back() {
        let mut m = migration();
        let out = m.recover(0, Step::Resuming);
        assert!(
            matches!(&out[1], Output::ToAgent { addr, frame } if addr.to_string() == "10.2.0.10:7600" && matches!(frame.body, Body::Resume { .. }))
        );
        m.handle(
            1,
            Input::Answer {
                id: ids(&out)[0],
                body: Body::Ok,
            },
        );
        assert_eq!(m.step, Step::Done);
        for step in [Step::Starting, Step::Switching, Step::RollingBack] {
            let mut m = migration();
            let out = m.recover(0, step);
            assert_eq!(m.step, Step::RollingBack, "{step:?}");
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { frame, .. } if matches!(frame.body, Body::Abort { destination: false, .. }))));
            assert!(out.iter().any(|o| matches!(o, Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 1))));
            for id in ids(&out) {
                m.handle(1, Input::Answer { id, body: Body::Ok });
            }
            assert_eq!(m.step, Step::RolledBack);
            assert!(m.failure.as_deref().unwrap_or("").contains("restarted"));
        }
        assert!(migration().recover(0, Step::Done).is_empty());
    }

    #[test]
    fn the_happy_path_follows_claims_1_3_4() {
        let mut m = migration();
        let out = m.begin(0);
        assert!(
            matches!(&out[1], Output::ToAgent { addr, frame } if addr.to_string() == "10.1.0.10:7600" && matches!(frame.body, Body::MigrationStart { .. }))
        );
        let id = ids(&out)[0];
        let out = m.handle(
            10,
            Input::Answer {
                id,
                body: Body::MigrationComplete {
                    process: "counter".into(),
                },
            },
        );
        assert!(
            matches!(&out[1], Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 2))
        );
        let id = ids(&out)[0];
        let out = m.handle(
            20,
            Input::Answer {
                id,
                body: Body::SwitchDone {
                    service: IpAddr::from([192, 0, 2, 80]),
                    switch_us: 3,
                    released: 0,
                    pause_us: 0,
                },
            },
        );
        assert!(
            matches!(&out[1], Output::ToAgent { addr, frame } if addr.to_string() == "10.2.0.10:7600" && matches!(frame.body, Body::Resume { .. }))
        );
        let id = ids(&out)[0];
        m.handle(30, Input::Answer { id, body: Body::Ok });
        assert_eq!(m.step, Step::Done);
    }

    /// Failure at each step (agent killed, server 2 unreachable, switch
    /// refused, deadline exceeded): abort to server 1's agent, steer to
    /// network 1, and report why.
    #[test]
    fn any_failure_rolls_back() {
        for fail_at in 0..3 {
            let mut m = migration();
            let mut out = m.begin(0);
            let answers = [
                Body::MigrationComplete {
                    process: "counter".into(),
                },
                Body::SwitchDone {
                    service: IpAddr::from([192, 0, 2, 80]),
                    switch_us: 3,
                    released: 0,
                    pause_us: 0,
                },
            ];
            for a in answers.iter().take(fail_at) {
                let id = ids(&out)[0];
                out = m.handle(
                    5,
                    Input::Answer {
                        id,
                        body: a.clone(),
                    },
                );
            }
            let id = ids(&out)[0];
            let reason = ["agent killed", "switch refused", "deadline exceeded"][fail_at];
            let input = if fail_at == 1 {
                Input::Answer {
                    id,
                    body: Body::Error {
                        reason: reason.into(),
                    },
                }
            } else {
                Input::Failed {
                    id,
                    reason: reason.into(),
                }
            };
            let out = m.handle(50, input);
            assert_eq!(m.step, Step::RollingBack, "step {fail_at}");
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { addr, frame } if addr.to_string() == "10.1.0.10:7600" && matches!(frame.body, Body::Abort { destination: false, .. }))));
            assert!(out.iter().any(|o| matches!(o, Output::ToAgent { addr, frame } if addr.to_string() == "10.2.0.10:7600" && matches!(frame.body, Body::Abort { destination: true, .. }))), "server 2 drops its copy");
            assert!(out.iter().any(|o| matches!(o, Output::ToController { frame } if matches!(&frame.body, Body::SwitchRequest { to, .. } if to.id == 1))));
            for id in ids(&out) {
                m.handle(60, Input::Answer { id, body: Body::Ok });
            }
            assert_eq!(m.step, Step::RolledBack);
            assert_eq!(m.failure.as_deref(), Some(reason));
            // A late answer to the request given up changes nothing.
            assert!(m
                .handle(70, Input::Answer { id, body: Body::Ok })
                .is_empty());
        }
    }
}
