//! The agent engine's transitions, refusals and rollbacks, one per test.

use super::*;

const SVC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 80));

pub(super) fn config(name: &str, freeze: bool) -> MigratableProcess {
    MigratableProcess {
        name: name.into(),
        control: Some("/run/x.ctl".into()),
        commands: None,
        pid_file: None,
        service_dev: "lo".into(),
        cgroup: None,
        freeze,
    }
}

pub(super) fn to() -> ServerInfo {
    ServerInfo {
        name: "s2".into(),
        address: IpAddr::from([10, 8, 2, 10]),
        network: "n2".into(),
        agent: "10.8.2.10:7600".parse().unwrap(),
    }
}

pub(super) fn start() -> Body {
    Body::MigrationStart {
        process: "p".into(),
        to: to(),
        service: SVC,
    }
}

pub(super) fn abort(destination: bool) -> Body {
    Body::Abort {
        process: "p".into(),
        reason: "switch refused".into(),
        destination,
    }
}

/// Handle one request, answering each action with `outcome`; the
/// actions asked for and the answer.
pub(super) fn run(
    a: &mut Agent,
    body: Body,
    outcome: impl FnMut(&Action) -> Outcome,
) -> (Vec<Action>, Body) {
    let (actions, answer, _) = run_logged(a, body, outcome);
    (actions, answer)
}

/// Like [`run`], also giving the state changes, "side: from → to".
pub(super) fn run_logged(
    a: &mut Agent,
    body: Body,
    mut outcome: impl FnMut(&Action) -> Outcome,
) -> (Vec<Action>, Body, Vec<String>) {
    let mut queue: std::collections::VecDeque<Output> = a.handle(Input::Request(body)).into();
    let (mut actions, mut changes) = (Vec::new(), Vec::new());
    while let Some(o) = queue.pop_front() {
        match o {
            Output::Answer { body, .. } => {
                assert!(queue.is_empty(), "the answer is the last output: {queue:?}");
                return (actions, body, changes);
            }
            Output::Changed { side, from, to, .. } => {
                assert_ne!(from, to, "a change changes something");
                changes.push(format!("{side:?}: {from} → {to}"));
            }
            Output::Do {
                process,
                side,
                action,
            } => {
                let o = outcome(&action);
                actions.push(action);
                queue.extend(a.handle(Input::Done {
                    process,
                    side,
                    outcome: o,
                }));
            }
        }
    }
    panic!("no answer; actions {actions:?}");
}

/// Every action succeeds; `export` gives "STATE" and pid 42.
pub(super) fn ok(a: &Action) -> Outcome {
    match a {
        Action::App {
            op: AppOp::Export, ..
        } => Outcome::App(Ok(("STATE".into(), Some(42)))),
        Action::App { .. } => Outcome::App(Ok((String::new(), Some(42)))),
        Action::Freeze { pid } => Outcome::Frozen(Ok(Frozen::Stopped(pid.unwrap()))),
        Action::Thaw { .. } => Outcome::Thawed,
        Action::Transfer { .. } => Outcome::Transfer(Ok(Body::Ok)),
        Action::AddAddress { .. } | Action::DelAddress { .. } => Outcome::Address(Ok(())),
    }
}

pub(super) fn app(op: AppOp) -> Action {
    Action::App { op, state: None }
}

pub(super) fn agent() -> Agent {
    Agent::new(&[config("p", true)])
}

pub(super) fn moved_agent() -> Agent {
    let mut a = agent();
    assert_eq!(
        run(&mut a, start(), ok).1,
        Body::MigrationComplete {
            process: "p".into()
        }
    );
    a
}

#[test]
fn a_start_pauses_exports_freezes_transfers_and_gives_up_the_address() {
    let mut a = agent();
    let (actions, answer) = run(&mut a, start(), ok);
    assert_eq!(
        actions,
        [
            app(AppOp::Pause),
            app(AppOp::Export),
            Action::Freeze { pid: Some(42) },
            Action::Transfer {
                to: to(),
                service: SVC,
                state: "STATE".into()
            },
            Action::DelAddress {
                address: SVC,
                dev: "lo".into()
            },
        ]
    );
    assert_eq!(
        answer,
        Body::MigrationComplete {
            process: "p".into()
        }
    );
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.source, &p.moved, &p.frozen),
        (&Source::Moved, &vec![SVC], &vec![Frozen::Stopped(42)])
    );
    assert!(!p.busy(), "a process moved away may be removed");
}

#[test]
fn each_change_is_reported_old_to_new() {
    let mut a = agent();
    let (_, _, changes) = run_logged(&mut a, start(), ok);
    assert_eq!(
        changes,
        [
            "Source: Running → Pausing",
            "Source: Pausing → Exporting",
            "Source: Exporting → Freezing",
            "Source: Freezing → Transferring",
            "Source: Transferring → GivingUpAddress",
            "Source: GivingUpAddress → Moved"
        ]
    );
    let (_, _, changes) = run_logged(
        &mut a,
        Body::ImportState {
            process: "p".into(),
            state: "S".into(),
            service: SVC,
            transfer: None,
            total: 0,
        },
        ok,
    );
    assert_eq!(
        changes,
        [
            "Source: Moved → Running",
            "Destination: Idle → Thawing",
            "Destination: Thawing → Pausing",
            "Destination: Pausing → TakingAddress",
            "Destination: TakingAddress → Importing",
            "Destination: Importing → Imported"
        ]
    );
    let (_, _, changes) = run_logged(&mut a, abort(true), ok);
    assert_eq!(
        changes,
        [
            "Destination: Imported → Discarding",
            "Destination: Discarding → Idle"
        ]
    );
}

#[test]
fn without_freeze_the_state_goes_straight_out() {
    let mut a = Agent::new(&[config("p", false)]);
    let (actions, _) = run(&mut a, start(), ok);
    assert!(
        !actions.iter().any(|x| matches!(x, Action::Freeze { .. })),
        "{actions:?}"
    );
    assert!(a.process("p").unwrap().frozen.is_empty());
}

#[test]
fn unknown_processes_and_bodies_are_refused() {
    let mut a = agent();
    let (actions, answer) = run(
        &mut a,
        Body::Resume {
            process: "q".into(),
        },
        ok,
    );
    assert!(actions.is_empty());
    assert_eq!(
        answer,
        Body::Error {
            reason: "no process \"q\" here".into()
        }
    );
    let (_, answer) = run(&mut a, Body::Hold { service: SVC }, ok);
    assert!(
        matches!(answer, Body::Error { reason } if reason.starts_with("an agent does not take Hold"))
    );
}

#[test]
fn a_failed_pause_answers_without_undoing() {
    let mut a = agent();
    let (actions, answer) = run(&mut a, start(), |x| match x {
        Action::App {
            op: AppOp::Pause, ..
        } => Outcome::App(Err("p: pause: refused".into())),
        x => ok(x),
    });
    assert_eq!(actions, [app(AppOp::Pause)]);
    assert_eq!(
        answer,
        Body::Error {
            reason: "p: pause: refused".into()
        }
    );
    assert_eq!(a.process("p").unwrap().source, Source::Running);
}

/// A start that fails after the pause thaws what it froze and resumes
/// the process; the answer says why (export, freeze, transfer refused
/// or unanswered or odd, address kept).
#[test]
fn a_start_failing_after_the_pause_thaws_and_resumes() {
    type Fail = fn(&Action) -> Option<Outcome>;
    let cases: [(Fail, &str, bool); 6] = [
        (
            |x| {
                matches!(
                    x,
                    Action::App {
                        op: AppOp::Export,
                        ..
                    }
                )
                .then(|| Outcome::App(Err("p: export: gone".into())))
            },
            "p: export: gone",
            false,
        ),
        (
            |x| {
                matches!(x, Action::Freeze { .. })
                    .then(|| Outcome::Frozen(Err("p: not frozen after 1 s".into())))
            },
            "p: not frozen after 1 s",
            false,
        ),
        (
            |x| {
                matches!(x, Action::Transfer { .. }).then(|| {
                    Outcome::Transfer(Ok(Body::Error {
                        reason: "checkpoint incomplete".into(),
                    }))
                })
            },
            "server s2 did not take the checkpoint: checkpoint incomplete",
            true,
        ),
        (
            |x| {
                matches!(x, Action::Transfer { .. })
                    .then(|| Outcome::Transfer(Err("10.8.2.10:7600: deadline exceeded".into())))
            },
            "server s2 did not take the checkpoint: 10.8.2.10:7600: deadline exceeded",
            true,
        ),
        (
            |x| {
                matches!(x, Action::Transfer { .. }).then(|| {
                    Outcome::Transfer(Ok(Body::Resume {
                        process: "p".into(),
                    }))
                })
            },
            "unexpected answer Resume { process: \"p\" }",
            true,
        ),
        (
            |x| {
                matches!(x, Action::DelAddress { .. })
                    .then(|| Outcome::Address(Err("ip addr del: no".into())))
            },
            "giving up the service address: ip addr del: no",
            true,
        ),
    ];
    for (fail, reason, froze) in cases {
        let mut a = agent();
        let (actions, answer) = run(&mut a, start(), |x| fail(x).unwrap_or_else(|| ok(x)));
        assert_eq!(
            answer,
            Body::Error {
                reason: reason.into()
            }
        );
        let thawed = if froze {
            vec![Frozen::Stopped(42)]
        } else {
            vec![]
        };
        assert_eq!(
            actions[actions.len() - 2..],
            [Action::Thaw { frozen: thawed }, app(AppOp::Resume)],
            "{reason}"
        );
        let p = a.process("p").unwrap();
        assert_eq!(
            (&p.source, p.moved.len(), p.frozen.len()),
            (&Source::Running, 0, 0),
            "{reason}"
        );
    }
}

#[test]
fn a_source_abort_puts_the_address_back_thaws_and_resumes() {
    let mut a = moved_agent();
    let (actions, answer) = run(&mut a, abort(false), ok);
    assert_eq!(
        actions,
        [
            Action::AddAddress {
                address: SVC,
                dev: "lo".into()
            },
            Action::Thaw {
                frozen: vec![Frozen::Stopped(42)]
            },
            app(AppOp::Resume)
        ]
    );
    assert_eq!(answer, Body::Ok);
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.source, p.moved.len(), p.frozen.len()),
        (&Source::Running, 0, 0)
    );
    // Nothing moved (a start that never came): it still resumes.
    let (actions, answer) = run(&mut a, abort(false), ok);
    assert_eq!(
        (actions, answer),
        (
            vec![Action::Thaw { frozen: vec![] }, app(AppOp::Resume)],
            Body::Ok
        )
    );
}

#[test]
fn a_source_abort_keeps_an_address_it_could_not_restore() {
    let mut a = moved_agent();
    let (actions, answer) = run(&mut a, abort(false), |x| match x {
        Action::AddAddress { .. } => Outcome::Address(Err("ip addr add: no such device".into())),
        Action::App {
            op: AppOp::Resume, ..
        } => Outcome::App(Err("p: resume: gone".into())),
        x => ok(x),
    });
    assert_eq!(actions.len(), 3, "every step is tried: {actions:?}");
    assert_eq!(
        answer,
        Body::Error {
            reason: "ip addr add: no such device; p: resume: gone".into()
        }
    );
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.source, &p.moved),
        (&Source::Moved, &vec![SVC]),
        "listed for a retry"
    );
    let (actions, answer) = run(&mut a, abort(false), ok);
    assert_eq!(
        (actions[0].clone(), answer),
        (
            Action::AddAddress {
                address: SVC,
                dev: "lo".into()
            },
            Body::Ok
        )
    );
}

fn chunk(transfer: u64, offset: u64, data: &str) -> Body {
    Body::CheckpointChunk {
        process: "p".into(),
        transfer,
        offset,
        data: data.into(),
    }
}

fn import(transfer: u64, total: u64) -> Body {
    Body::ImportState {
        process: "p".into(),
        state: String::new(),
        service: SVC,
        transfer: Some(transfer),
        total,
    }
}

fn imported_agent() -> Agent {
    let mut a = agent();
    assert_eq!(run(&mut a, chunk(7, 0, "ST"), ok).1, Body::Ok);
    assert_eq!(run(&mut a, chunk(7, 2, "ATE"), ok).1, Body::Ok);
    let (actions, answer) = run(&mut a, import(7, 5), ok);
    assert_eq!(
        actions,
        [
            Action::Thaw { frozen: vec![] },
            app(AppOp::Pause),
            Action::AddAddress {
                address: SVC,
                dev: "lo".into()
            },
            Action::App {
                op: AppOp::Import,
                state: Some("STATE".into())
            }
        ]
    );
    assert_eq!(answer, Body::Ok);
    a
}

#[test]
fn a_destination_assembles_pauses_takes_the_address_and_imports() {
    let a = imported_agent();
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.destination, &p.imported),
        (&Destination::Imported, &vec![SVC])
    );
    assert!(
        p.busy(),
        "an import waiting for its resume may not be removed"
    );
    // A whole checkpoint in the request, no pieces.
    let mut a = agent();
    let body = Body::ImportState {
        process: "p".into(),
        state: "WHOLE".into(),
        service: SVC,
        transfer: None,
        total: 0,
    };
    let (actions, _) = run(&mut a, body, ok);
    assert_eq!(
        actions[3],
        Action::App {
            op: AppOp::Import,
            state: Some("WHOLE".into())
        }
    );
}

#[test]
fn pieces_out_of_order_and_incomplete_checkpoints_are_refused() {
    let mut a = agent();
    assert_eq!(run(&mut a, chunk(7, 0, "ST"), ok).1, Body::Ok);
    assert_eq!(
        run(&mut a, chunk(7, 0, "ST"), ok).1,
        Body::Ok,
        "a retried piece is taken once"
    );
    assert_eq!(
        run(&mut a, chunk(7, 5, "X"), ok).1,
        Body::Error {
            reason: "checkpoint piece at byte 5, expected 2".into()
        }
    );
    // A new transfer replaces an abandoned one.
    assert_eq!(run(&mut a, chunk(8, 0, "NEW"), ok).1, Body::Ok);
    let (actions, answer) = run(&mut a, import(8, 5), ok);
    assert!(actions.is_empty());
    assert_eq!(
        answer,
        Body::Error {
            reason: "checkpoint incomplete: 3 of 5 bytes arrived".into()
        }
    );
    assert_eq!(
        run(&mut a, import(8, 3), ok).1,
        Body::Error {
            reason: "checkpoint incomplete: 0 of 3 bytes arrived".into()
        },
        "taken by the first import"
    );
    assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
}

#[test]
fn a_failed_import_gives_the_address_up_again() {
    let mut a = agent();
    let body = Body::ImportState {
        process: "p".into(),
        state: "S".into(),
        service: SVC,
        transfer: None,
        total: 0,
    };
    let (actions, answer) = run(&mut a, body.clone(), |x| match x {
        Action::App {
            op: AppOp::Import, ..
        } => Outcome::App(Err("p: import: bad state".into())),
        x => ok(x),
    });
    assert_eq!(
        actions.last(),
        Some(&Action::DelAddress {
            address: SVC,
            dev: "lo".into()
        })
    );
    assert_eq!(
        answer,
        Body::Error {
            reason: "p: import: bad state".into()
        }
    );
    assert_eq!(
        (
            &a.process("p").unwrap().destination,
            a.process("p").unwrap().imported.len()
        ),
        (&Destination::Idle, 0)
    );
    // A refused pause or address: answered, nothing taken.
    let (actions, answer) = run(&mut a, body.clone(), |x| match x {
        Action::App {
            op: AppOp::Pause, ..
        } => Outcome::App(Err("p: pause: no".into())),
        x => ok(x),
    });
    assert_eq!(
        (actions.len(), answer),
        (
            2,
            Body::Error {
                reason: "p: pause: no".into()
            }
        )
    );
    let (actions, answer) = run(&mut a, body, |x| match x {
        Action::AddAddress { .. } => Outcome::Address(Err("ip addr add: no".into())),
        x => ok(x),
    });
    assert_eq!(
        (actions.len(), answer),
        (
            3,
            Body::Error {
                reason: "ip addr add: no".into()
            }
        )
    );
    assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
}

#[test]
fn a_resume_makes_the_import_for_good() {
    let mut a = imported_agent();
    let (actions, answer) = run(
        &mut a,
        Body::Resume {
            process: "p".into(),
        },
        ok,
    );
    assert_eq!((actions, answer), (vec![app(AppOp::Resume)], Body::Ok));
    let p = a.process("p").unwrap();
    assert_eq!((&p.destination, p.imported.len()), (&Destination::Idle, 0));
    // A failed resume keeps the import waiting.
    let mut a = imported_agent();
    let (_, answer) = run(
        &mut a,
        Body::Resume {
            process: "p".into(),
        },
        |_| Outcome::App(Err("p: resume: no".into())),
    );
    assert_eq!(
        answer,
        Body::Error {
            reason: "p: resume: no".into()
        }
    );
    assert_eq!(a.process("p").unwrap().destination, Destination::Imported);
}

#[test]
fn a_destination_abort_keeps_it_paused_and_drops_what_came() {
    let mut a = imported_agent();
    let (actions, answer) = run(&mut a, abort(true), ok);
    assert_eq!(
        actions,
        [
            app(AppOp::Pause),
            app(AppOp::Discard),
            Action::DelAddress {
                address: SVC,
                dev: "lo".into()
            }
        ]
    );
    assert_eq!(answer, Body::Ok);
    assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
    // An address it cannot give up stays listed for a retry.
    let mut a = imported_agent();
    let (_, answer) = run(&mut a, abort(true), |x| match x {
        Action::DelAddress { .. } => Outcome::Address(Err("ip addr del: busy".into())),
        x => ok(x),
    });
    assert_eq!(
        answer,
        Body::Error {
            reason: "ip addr del: busy".into()
        }
    );
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.destination, &p.imported),
        (&Destination::Imported, &vec![SVC])
    );
}

/// One agent as both ends (two servers behind it): the import here
/// thaws the copy the start froze, and its resume ends the move.
#[test]
fn one_agent_can_be_both_ends() {
    let mut a = moved_agent();
    let body = Body::ImportState {
        process: "p".into(),
        state: "S".into(),
        service: SVC,
        transfer: None,
        total: 0,
    };
    let (actions, _) = run(&mut a, body, ok);
    assert_eq!(
        actions[0],
        Action::Thaw {
            frozen: vec![Frozen::Stopped(42)]
        }
    );
    let p = a.process("p").unwrap();
    assert_eq!(
        (&p.source, p.moved.len()),
        (&Source::Running, 0),
        "the move away is not coming back"
    );
    run(
        &mut a,
        Body::Resume {
            process: "p".into(),
        },
        ok,
    );
    // A source abort (switch refused) drops the import's addresses
    // unasked: the process runs here again.
    let mut a = imported_agent();
    run(&mut a, abort(false), ok);
    assert_eq!(a.process("p").unwrap().destination, Destination::Idle);
}

#[test]
fn a_second_request_on_a_busy_side_is_refused() {
    let mut a = agent();
    let out = a.handle(Input::Request(start()));
    assert!(matches!(
        out.last(),
        Some(Output::Do {
            action: Action::App {
                op: AppOp::Pause,
                ..
            },
            ..
        })
    ));
    let out = a.handle(Input::Request(start()));
    assert!(
        matches!(&out[..], [Output::Answer { body: Body::Error { reason }, .. }] if reason.contains("being handled")),
        "{out:?}"
    );
    // The other side is free.
    assert_eq!(run(&mut a, chunk(1, 0, "x"), ok).1, Body::Ok);
}

#[test]
fn a_reload_keeps_a_process_being_migrated() {
    let mut a = agent();
    a.handle(Input::Request(start()));
    let e = a.check(&[config("q", true)]).unwrap_err();
    assert!(
        e.starts_with("p is being migrated (source Pausing")
            && e.ends_with("cannot be removed now"),
        "{e}"
    );
    let e = a.check(&[config("p", false)]).unwrap_err();
    assert!(e.ends_with("cannot be changed now"), "{e}");
    assert!(a.configure(&[config("q", true)]).is_err());
    assert!(a.process("q").is_none(), "a refused reload changes nothing");
    a.check(&[config("p", true), config("q", true)]).unwrap();
    // At rest (here: moved away) it may go; others come and change.
    let mut a = moved_agent();
    assert_eq!(
        a.configure(&[config("q", true)]).unwrap(),
        ["process p removed", "process q added"]
    );
    assert_eq!(
        a.configure(&[config("q", false)]).unwrap(),
        ["process q changed"]
    );
    assert!(a.configure(&[config("q", false)]).unwrap().is_empty());
    assert_eq!(
        run(
            &mut a,
            Body::Resume {
                process: "p".into()
            },
            ok
        )
        .1,
        Body::Error {
            reason: "no process \"p\" here".into()
        }
    );
}
