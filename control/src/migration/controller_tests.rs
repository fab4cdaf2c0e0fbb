//! The controller engine's tests: hold then switch, refusals, learned
//! networks, failed switches and reloads.

use super::*;

const SVC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 80));

fn net(id: u32, via: &str) -> SteerNetwork {
    SteerNetwork {
        id,
        name: format!("net{id}"),
        via: via.into(),
        next_hop_mac: format!("02:00:00:00:0{id}:0a").parse().unwrap(),
    }
}

fn svc(address: IpAddr, network: u32) -> SteerService {
    SteerService { address, network }
}

fn info(id: u32, egress: bool) -> NetworkInfo {
    NetworkInfo {
        name: format!("net{id}"),
        id,
        controller: None,
        via: egress.then(|| "eth2".parse().unwrap()),
        next_hop_mac: egress.then(|| "02:00:00:00:02:0a".parse().unwrap()),
    }
}

/// Carry out outputs with `outcome` until none are left: the actions,
/// the answer, the notes.
fn run(
    c: &mut Controller,
    first: Vec<Output>,
    mut outcome: impl FnMut(&Action) -> Outcome,
) -> (Vec<Action>, Option<Body>, Vec<String>) {
    let mut queue: std::collections::VecDeque<Output> = first.into();
    let (mut actions, mut answer, mut notes) = (vec![], None, vec![]);
    while let Some(o) = queue.pop_front() {
        match o {
            Output::Answer(b) => answer = Some(b),
            Output::Note(n) => notes.push(n),
            Output::Changed { from, to, .. } => assert_ne!(from, to),
            Output::Do(a) => {
                let o = outcome(&a);
                actions.push(a.clone());
                queue.extend(c.handle(Input::Done {
                    action: a,
                    outcome: o,
                }));
            }
        }
    }
    (actions, answer, notes)
}

fn ok(a: &Action) -> Outcome {
    match a {
        Action::Switch { .. } => Outcome::Switched(Ok((50, 3, Some(700)))),
        Action::Release { pause_us, .. } => Outcome::Released(Ok((1, *pause_us))),
        _ => Outcome::Done(Ok(())),
    }
}

fn request(
    c: &mut Controller,
    body: Body,
    outcome: impl FnMut(&Action) -> Outcome,
) -> (Vec<Action>, Body) {
    let first = c.handle(Input::Request(body));
    let (actions, answer, _) = run(c, first, outcome);
    (actions, answer.expect("an answer"))
}

/// Service SVC on network 1; networks 1 and 2 configured.
fn controller() -> Controller {
    let mut c = Controller::new([(SVC, 1)]);
    let first = c
        .configure(&[net(1, "eth1"), net(2, "eth2")], &[svc(SVC, 1)])
        .unwrap();
    let (actions, _, _) = run(&mut c, first, ok);
    assert_eq!(
        actions.len(),
        2,
        "both networks programmed, the service already steered: {actions:?}"
    );
    assert_eq!(c.networks().collect::<Vec<_>>(), [1, 2]);
    c
}

fn switch(to: NetworkInfo) -> Body {
    Body::SwitchRequest { service: SVC, to }
}

#[test]
fn hold_then_switch_releases_and_steers() {
    let mut c = controller();
    let (actions, answer) = request(&mut c, Body::Hold { service: SVC }, ok);
    assert_eq!(
        (actions, answer),
        (
            vec![Action::Hold {
                service: SVC,
                network: 1
            }],
            Body::Ok
        )
    );
    assert_eq!(c.state(SVC), Some(State::Holding { network: 1 }));
    let (actions, answer) = request(&mut c, switch(info(2, false)), ok);
    assert_eq!(
        actions,
        [
            Action::Switch {
                service: SVC,
                to: 2
            },
            Action::Release {
                service: SVC,
                network: 2,
                pause_us: Some(700)
            }
        ]
    );
    assert_eq!(
        answer,
        Body::SwitchDone {
            service: SVC,
            switch_us: 50,
            released: 4,
            pause_us: 700
        }
    );
    assert_eq!(
        (c.state(SVC), c.last_switch_us),
        (Some(State::Steered { network: 2 }), Some(50))
    );
}

#[test]
fn nothing_held_reports_no_pause() {
    let mut c = controller();
    let (_, answer) = request(&mut c, switch(info(2, false)), |a| match a {
        Action::Switch { .. } => Outcome::Switched(Ok((9, 0, None))),
        Action::Release { .. } => Outcome::Released(Ok((0, None))),
        _ => Outcome::Done(Ok(())),
    });
    assert_eq!(
        answer,
        Body::SwitchDone {
            service: SVC,
            switch_us: 9,
            released: 0,
            pause_us: 0
        }
    );
}

#[test]
fn hold_of_an_unknown_service_or_a_failed_map_write_is_refused() {
    let mut c = controller();
    let (actions, answer) = request(
        &mut c,
        Body::Hold {
            service: IpAddr::from([10, 99, 0, 81]),
        },
        ok,
    );
    assert_eq!(
        (actions.len(), answer),
        (
            0,
            Body::Error {
                reason: "10.99.0.81 is not steered here".into()
            }
        )
    );
    let (_, answer) = request(&mut c, Body::Hold { service: SVC }, |_| {
        Outcome::Done(Err("ST_STEER: full".into()))
    });
    assert_eq!(
        answer,
        Body::Error {
            reason: "ST_STEER: full".into()
        }
    );
    assert_eq!(c.state(SVC), Some(State::Steered { network: 1 }));
    let (_, answer) = request(
        &mut c,
        Body::Resume {
            process: "p".into(),
        },
        ok,
    );
    assert!(
        matches!(answer, Body::Error { reason } if reason.starts_with("a connection controller does not take Resume"))
    );
}

#[test]
fn a_network_is_learned_from_the_request_or_refused() {
    let mut c = controller();
    let (actions, answer) = request(&mut c, switch(info(3, false)), ok);
    assert!(actions.is_empty());
    assert_eq!(
        answer,
        Body::Error {
            reason: "no network 3 (net3) here, and the request does not say how to reach it".into()
        }
    );
    assert_eq!(
        c.state(SVC),
        Some(State::Steered { network: 1 }),
        "nothing changed"
    );
    let first = c.handle(Input::Request(switch(info(5, true))));
    let (actions, answer, notes) = run(&mut c, first, ok);
    assert_eq!(
        actions[0],
        Action::AddNetwork {
            id: 5,
            name: "net5".into(),
            via: "eth2".into(),
            next_hop_mac: "02:00:00:00:02:0a".parse().unwrap()
        }
    );
    assert!(
        notes[0].starts_with("network learned from a switch request: net5 (5)"),
        "{notes:?}"
    );
    assert!(matches!(answer, Some(Body::SwitchDone { .. })));
    assert_eq!(c.state(SVC), Some(State::Steered { network: 5 }));
    // A network that cannot be set up: the switch is refused.
    let (_, answer) = request(&mut c, switch(info(6, true)), |a| match a {
        Action::AddNetwork { .. } => Outcome::Done(Err("network net6: no such device".into())),
        a => ok(a),
    });
    assert_eq!(
        answer,
        Body::Error {
            reason: "network net6: no such device".into()
        }
    );
    assert_eq!(c.state(SVC), Some(State::Steered { network: 5 }));
}

#[test]
fn a_failed_switch_leaves_the_service_where_it_was() {
    let mut c = controller();
    request(&mut c, Body::Hold { service: SVC }, ok);
    let (_, answer) = request(&mut c, switch(info(2, false)), |a| match a {
        Action::Switch { .. } => Outcome::Switched(Err("releasing a held frame: ENOBUFS".into())),
        a => ok(a),
    });
    assert_eq!(
        answer,
        Body::Error {
            reason: "releasing a held frame: ENOBUFS".into()
        }
    );
    assert_eq!(
        (c.state(SVC), c.last_switch_us),
        (Some(State::Holding { network: 1 }), None)
    );
    // Failing after the map update: it is steered to the new network.
    let (_, answer) = request(&mut c, switch(info(2, false)), |a| match a {
        Action::Release { .. } => {
            Outcome::Released(Err("2 released frames did not leave within 200 ms".into()))
        }
        a => ok(a),
    });
    assert_eq!(
        answer,
        Body::Error {
            reason: "2 released frames did not leave within 200 ms".into()
        }
    );
    assert_eq!(
        (c.state(SVC), c.last_switch_us),
        (Some(State::Steered { network: 2 }), Some(50))
    );
}

/// A rollback's switch back may name a service the controller was not
/// configured with; it is steered from then on.
#[test]
fn a_switch_of_an_unknown_service_steers_it() {
    let mut c = controller();
    let other = IpAddr::from([10, 99, 0, 90]);
    let (_, answer) = request(
        &mut c,
        Body::SwitchRequest {
            service: other,
            to: info(1, false),
        },
        ok,
    );
    assert!(matches!(answer, Body::SwitchDone { service, .. } if service == other));
    assert_eq!(c.state(other), Some(State::Steered { network: 1 }));
}

#[test]
fn a_reload_adds_and_removes_networks_and_services() {
    let mut c = controller();
    let new = IpAddr::from([10, 99, 0, 81]);
    let first = c
        .configure(
            &[net(1, "eth1"), net(2, "eth2"), net(3, "eth2")],
            &[svc(new, 3)],
        )
        .unwrap();
    let (actions, _, _) = run(&mut c, first, ok);
    assert_eq!(
        actions,
        [
            Action::AddNetwork {
                id: 3,
                name: "net3".into(),
                via: "eth2".into(),
                next_hop_mac: "02:00:00:00:03:0a".parse().unwrap()
            },
            Action::Unsteer { service: SVC },
            Action::Steer {
                service: new,
                network: 3
            },
        ]
    );
    assert_eq!(
        (c.state(SVC), c.state(new)),
        (None, Some(State::Steered { network: 3 }))
    );
    // A network removed is forgotten; one changed is programmed again.
    let first = c
        .configure(&[net(1, "eth9"), net(3, "eth2")], &[svc(new, 3)])
        .unwrap();
    let (actions, _, notes) = run(&mut c, first, ok);
    assert_eq!(
        actions,
        [Action::AddNetwork {
            id: 1,
            name: "net1".into(),
            via: "eth9".into(),
            next_hop_mac: "02:00:00:00:01:0a".parse().unwrap()
        }]
    );
    assert_eq!(
        notes,
        [
            "network net2 (2) removed",
            "network net1 (1) via eth9 programmed"
        ]
    );
    assert_eq!(c.networks().collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn a_migrated_service_keeps_its_network_across_a_reload() {
    let mut c = controller();
    request(&mut c, switch(info(2, false)), ok);
    let first = c
        .configure(&[net(1, "eth1"), net(2, "eth2")], &[svc(SVC, 1)])
        .unwrap();
    let (actions, _, notes) = run(&mut c, first, ok);
    assert!(
        actions.is_empty() && notes.is_empty(),
        "the same config changes nothing: {actions:?} {notes:?}"
    );
    let first = c
        .configure(&[net(1, "eth1"), net(2, "eth2")], &[svc(SVC, 2)])
        .unwrap();
    let (actions, _, _) = run(&mut c, first, ok);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(c.state(SVC), Some(State::Steered { network: 2 }));
    let first = c
        .configure(&[net(1, "eth1"), net(2, "eth2")], &[svc(SVC, 1)])
        .unwrap();
    let (_, _, notes) = run(&mut c, first, ok);
    assert_eq!(notes, ["service 10.99.0.80 stays on network 2 (where it is steered; the config's network is where it starts)"]);
}

#[test]
fn a_reload_does_not_touch_a_held_service_nor_its_network() {
    let mut c = controller();
    request(&mut c, Body::Hold { service: SVC }, ok);
    let e = c.check(&[net(1, "eth1"), net(2, "eth2")], &[]).unwrap_err();
    assert_eq!(e, "migration.controller.service: 10.99.0.80 is holding(1) (a migration is running); it cannot be removed now");
    assert!(c.configure(&[net(1, "eth1"), net(2, "eth2")], &[]).is_err());
    assert_eq!(
        c.state(SVC),
        Some(State::Holding { network: 1 }),
        "a refused reload changes nothing"
    );
    let e = c.check(&[net(2, "eth2")], &[svc(SVC, 2)]).unwrap_err();
    assert_eq!(
        e,
        "migration.controller.network: net1 (1) still carries 10.99.0.80; it cannot be removed"
    );
    let e = c
        .check(&[net(1, "eth1"), net(8, "eth2")], &[svc(SVC, 1)])
        .unwrap_err();
    assert!(
        e.starts_with("migration.controller.network[1].id: 8 is out of range"),
        "{e}"
    );
    // Released, the service may go, and its network with it.
    request(&mut c, switch(info(1, false)), ok);
    c.check(&[net(2, "eth2")], &[]).unwrap();
}
