//! An agent killed at each step of a move and started again from its
//! record ([`Agent::durable`] → [`Agent::restore`]): the Abort the
//! coordinator then sends puts back exactly what the step may have
//! changed, and leaves nothing recorded.

use super::tests::{abort, agent, app, ok, run, start};
use super::*;

const SVC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 80));

/// Feed `body` to a fresh agent and carry out its first `steps` actions
/// as the edge does (a freeze recorded before it is made); the agent is
/// then killed while performing the next one. Its record at that point,
/// and that action.
fn killed_at(body: Body, steps: usize) -> (BTreeMap<String, Durable>, Action) {
    let mut a = agent();
    let mut queue: std::collections::VecDeque<Output> = a.handle(Input::Request(body)).into();
    let mut done = 0;
    while let Some(o) = queue.pop_front() {
        if let Output::Do {
            process,
            side,
            action,
        } = o
        {
            if let Action::Freeze { pid } = &action {
                a.freezing(&process, Frozen::Stopped(pid.unwrap()));
            }
            if done == steps {
                // Killed during (or just after) this action.
                return (a.durable(), action);
            }
            done += 1;
            let outcome = ok(&action);
            queue.extend(a.handle(Input::Done {
                process,
                side,
                outcome,
            }));
        }
    }
    panic!("fewer than {} actions", steps + 1);
}

fn restarted(record: BTreeMap<String, Durable>) -> Agent {
    let mut b = agent();
    let notes = b.restore(record.clone());
    assert_eq!(notes.len(), record.len(), "{notes:?}");
    b
}

fn import() -> Body {
    Body::ImportState {
        process: "p".into(),
        state: "S".into(),
        service: SVC,
        transfer: None,
        total: 0,
    }
}

#[test]
fn a_source_killed_at_each_step_is_undone_whole_by_the_abort() {
    let add = Action::AddAddress {
        address: SVC,
        dev: "lo".into(),
    };
    // pause, export, freeze, transfer, giving up the address
    for step in 0..5 {
        let (record, during) = killed_at(start(), step);
        let mut b = restarted(record.clone());
        let (actions, answer) = run(&mut b, abort(false), ok);
        let frozen = if step >= 2 {
            vec![Frozen::Stopped(42)]
        } else {
            vec![]
        };
        let mut want = Vec::new();
        if step >= 4 {
            want.push(add.clone());
        }
        want.push(Action::Thaw { frozen });
        want.push(app(AppOp::Resume));
        assert_eq!(actions, want, "killed during {during:?}; record {record:?}");
        assert_eq!(answer, Body::Ok, "killed during {during:?}");
        assert!(b.durable().is_empty(), "nothing left: {:?}", b.durable());
        let p = b.process("p").unwrap();
        assert_eq!(
            (&p.source, &p.destination),
            (&Source::Running, &Destination::Idle)
        );
    }
}

#[test]
fn a_destination_killed_at_each_step_is_undone_whole_by_the_abort() {
    // thaw, pause, taking the address, import
    for step in 0..4 {
        let (record, during) = killed_at(import(), step);
        let mut b = restarted(record.clone());
        let (actions, answer) = run(&mut b, abort(true), ok);
        let mut want = vec![app(AppOp::Pause), app(AppOp::Discard)];
        if step >= 2 {
            want.push(Action::DelAddress {
                address: SVC,
                dev: "lo".into(),
            });
        }
        assert_eq!(actions, want, "killed during {during:?}; record {record:?}");
        assert_eq!(answer, Body::Ok);
        assert!(b.durable().is_empty(), "nothing left: {:?}", b.durable());
    }
}

#[test]
fn an_import_waiting_for_its_resume_survives_a_restart() {
    let mut a = agent();
    assert_eq!(run(&mut a, import(), ok).1, Body::Ok);
    let record = a.durable();
    assert_eq!(record["p"].imported, [SVC]);
    let json = serde_json::to_string(&record).unwrap();
    let back: BTreeMap<String, Durable> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record, "the record round-trips: {json}");
    let mut b = restarted(back);
    assert_eq!(b.process("p").unwrap().destination, Destination::Imported);
    let (actions, answer) = run(
        &mut b,
        Body::Resume {
            process: "p".into(),
        },
        ok,
    );
    assert_eq!((actions, answer), (vec![app(AppOp::Resume)], Body::Ok));
    assert!(b.durable().is_empty());
}

#[test]
fn a_moved_source_restarted_still_gives_its_address_back() {
    let mut a = agent();
    run(&mut a, start(), ok);
    let record = a.durable();
    assert_eq!(
        (&record["p"].moved, &record["p"].frozen),
        (&vec![SVC], &vec![Frozen::Stopped(42)])
    );
    let mut b = restarted(record);
    assert_eq!(b.process("p").unwrap().source, Source::Moved);
    let (actions, _) = run(&mut b, abort(false), ok);
    assert_eq!(
        actions[0],
        Action::AddAddress {
            address: SVC,
            dev: "lo".into()
        }
    );
}

#[test]
fn an_abort_killed_half_way_keeps_what_it_has_not_undone() {
    // Killed while putting the address back: still recorded as given
    // away (and frozen), so the next Abort does it all again.
    let mut a = agent();
    run(&mut a, start(), ok);
    let mut queue: std::collections::VecDeque<Output> =
        a.handle(Input::Request(abort(false))).into();
    let first = loop {
        match queue.pop_front() {
            Some(Output::Do { action, .. }) => break action,
            Some(_) => {}
            None => panic!("no action"),
        }
    };
    assert!(matches!(first, Action::AddAddress { .. }), "{first:?}");
    let record = a.durable();
    assert_eq!(
        (&record["p"].moved, &record["p"].frozen),
        (&vec![SVC], &vec![Frozen::Stopped(42)])
    );
}

#[test]
fn a_record_of_a_process_no_longer_configured_is_kept() {
    let mut b = agent();
    let d = Durable {
        moved: vec![SVC],
        ..Durable::default()
    };
    let notes = b.restore(BTreeMap::from([("gone".to_string(), d.clone())]));
    assert!(notes[0].contains("not configured"), "{notes:?}");
    assert_eq!(b.durable().get("gone"), Some(&d));
}
