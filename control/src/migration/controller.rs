//! The connection controller as a pure engine: requests (hold, switch),
//! reloads and the results of the edge's map and AF_XDP operations in;
//! the operations to do and the answers out.
//!
//! Each service it steers is in one state:
//! Steered(network) → (hold) Holding(network) → (switch) Switching →
//! Releasing(new network) → Steered(new network). A switch may come
//! without a hold (a rollback's switch back) and to a network the
//! controller learns from the request. A failed switch leaves the
//! service where it was; a failure releasing what raced in after the map
//! update leaves it steered to the new network.

use std::{collections::BTreeMap, net::IpAddr};

use super::{
    config::{SteerNetwork, SteerService},
    wire::{Body, NetworkInfo},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its packets go to this network.
    Steered { network: u32 },
    /// Its packets are held (handed to the AF_XDP sockets); they went to
    /// `network` before.
    Holding { network: u32 },
    /// Held packets are being released to `to`, then the map points there.
    Switching { from: Option<u32>, to: u32 },
    /// Steered to `network`; what raced in before the map update is being
    /// released there.
    Releasing { network: u32 },
}

impl State {
    pub fn network(self) -> u32 {
        match self {
            State::Steered { network }
            | State::Holding { network }
            | State::Releasing { network } => network,
            State::Switching { to, .. } => to,
        }
    }

    fn name(self) -> String {
        match self {
            State::Steered { network } => format!("steered({network})"),
            State::Holding { network } => format!("holding({network})"),
            State::Switching { from, to } => format!(
                "switching({} → {to})",
                from.map_or("-".into(), |f| f.to_string())
            ),
            State::Releasing { network } => format!("releasing({network})"),
        }
    }
}

/// What the edge does for the engine; each is answered with
/// [`Input::Done`] carrying the action and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Drop frames left from an earlier hold of `service`, then set its
    /// map entry to `network` with the hold flag.
    Hold { service: IpAddr, network: u32 },
    /// Program a network's egress (map entry, TX socket on `via`).
    AddNetwork {
        id: u32,
        name: String,
        via: String,
        next_hop_mac: crate::field::MacAddr,
    },
    /// Hold `service` towards `to`, release what is held there in order,
    /// then steer it to `to` unheld; answered with [`Outcome::Switched`].
    Switch { service: IpAddr, to: u32 },
    /// Release to `network` what raced in before the map update;
    /// answered with [`Outcome::Released`]. `pause_us` as far as known.
    Release {
        service: IpAddr,
        network: u32,
        pause_us: Option<u64>,
    },
    /// A service added by a reload: steer it to `network`.
    Steer { service: IpAddr, network: u32 },
    /// A service removed by a reload: delete its map entry.
    Unsteer { service: IpAddr },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hold, AddNetwork, Steer, Unsteer.
    Done(Result<(), String>),
    /// Request received to map updated, frames released, pause so far.
    Switched(Result<(u64, u32, Option<u64>), String>),
    /// Frames released, pause.
    Released(Result<(u32, Option<u64>), String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Request(Body),
    Done { action: Action, outcome: Outcome },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Do(Action),
    /// The answer to the request being handled.
    Answer(Body),
    /// A service's state changed (for the log).
    Changed {
        service: IpAddr,
        from: Option<String>,
        to: Option<String>,
        cause: String,
    },
    /// Something the log should say (a network learned, a reload's step).
    Note(String),
}

/// A switch being handled.
#[derive(Clone, Debug)]
struct SwitchJob {
    service: IpAddr,
    to: NetworkInfo,
    before: Option<State>,
    switch_us: u64,
    released: u32,
}

/// The controller: the networks it can steer to, its services' states.
#[derive(Debug)]
pub struct Controller {
    networks: BTreeMap<u32, String>,
    services: BTreeMap<IpAddr, State>,
    /// The config's networks and services, to compare a reload with.
    configured: (Vec<SteerNetwork>, Vec<SteerService>),
    switch: Option<SwitchJob>,
    pub last_switch_us: Option<u64>,
}

impl Controller {
    /// `services`: where each service is steered now (after a restart,
    /// what the pinned map says, not the config); `networks` still to be
    /// programmed through [`Controller::configure`]'s actions.
    pub fn new(services: impl IntoIterator<Item = (IpAddr, u32)>) -> Self {
        Self {
            networks: BTreeMap::new(),
            services: services
                .into_iter()
                .map(|(a, n)| (a, State::Steered { network: n }))
                .collect(),
            configured: (vec![], vec![]),
            switch: None,
            last_switch_us: None,
        }
    }

    pub fn networks(&self) -> impl Iterator<Item = u32> + '_ {
        self.networks.keys().copied()
    }

    pub fn services(&self) -> impl Iterator<Item = (IpAddr, State)> + '_ {
        self.services.iter().map(|(a, s)| (*a, *s))
    }

    pub fn state(&self, service: IpAddr) -> Option<State> {
        self.services.get(&service).copied()
    }

    /// Whether the config's networks and services can be applied now;
    /// `Err` names the key. A service that is not simply steered (a
    /// migration holds or switches it) is not touched, nor a network a
    /// service is steered to.
    pub fn check(
        &self,
        networks: &[SteerNetwork],
        services: &[SteerService],
    ) -> Result<(), String> {
        for (i, n) in networks.iter().enumerate() {
            if n.id >= dataplane_common::migration::NETWORKS_MAX {
                return Err(format!(
                    "migration.controller.network[{i}].id: {} is out of range (0..{})",
                    n.id,
                    dataplane_common::migration::NETWORKS_MAX
                ));
            }
        }
        for old in &self.configured.1 {
            if services.iter().any(|s| s.address == old.address) {
                continue;
            }
            match self.services.get(&old.address) {
                Some(State::Steered { .. }) | None => {}
                Some(s) => return Err(format!("migration.controller.service: {} is {} (a migration is running); it cannot be removed now", old.address, s.name())),
            }
        }
        for old in &self.configured.0 {
            if networks.iter().any(|n| n.id == old.id) {
                continue;
            }
            let on: Vec<String> = self
                .services
                .iter()
                .filter(|(a, s)| {
                    s.network() == old.id && services_keep(services, **a, &self.configured.1)
                })
                .map(|(a, _)| a.to_string())
                .collect();
            if !on.is_empty() {
                return Err(format!(
                    "migration.controller.network: {} ({}) still carries {}; it cannot be removed",
                    old.name,
                    old.id,
                    on.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Apply the config's networks and services (after
    /// [`Controller::check`]): the map operations to do. A service
    /// already steered keeps its network (as across a restart: the config
    /// says where it starts). A network removed is forgotten (nothing is
    /// steered there any more; its egress entry stays unused).
    pub fn configure(
        &mut self,
        networks: &[SteerNetwork],
        services: &[SteerService],
    ) -> Result<Vec<Output>, String> {
        self.check(networks, services)?;
        let mut out = Vec::new();
        for old in &self.configured.0 {
            if !networks.iter().any(|n| n.id == old.id) && self.networks.remove(&old.id).is_some() {
                out.push(Output::Note(format!(
                    "network {} ({}) removed",
                    old.name, old.id
                )));
            }
        }
        for n in networks {
            if !self.configured.0.contains(n) {
                out.push(Output::Do(Action::AddNetwork {
                    id: n.id,
                    name: n.name.clone(),
                    via: n.via.clone(),
                    next_hop_mac: n.next_hop_mac,
                }));
            }
        }
        for old in &self.configured.1 {
            if !services.iter().any(|s| s.address == old.address)
                && self.services.contains_key(&old.address)
            {
                out.push(Output::Do(Action::Unsteer {
                    service: old.address,
                }));
            }
        }
        for s in services {
            match self.services.get(&s.address) {
                None => out.push(Output::Do(Action::Steer {
                    service: s.address,
                    network: s.network,
                })),
                Some(st)
                    if st.network() != s.network
                        && self
                            .configured
                            .1
                            .iter()
                            .any(|o| o.address == s.address && o.network != s.network) =>
                {
                    out.push(Output::Note(format!("service {} stays on network {} (where it is steered; the config's network is where it starts)", s.address, st.network())));
                }
                Some(_) => {}
            }
        }
        self.configured = (networks.to_vec(), services.to_vec());
        Ok(out)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Request(body) => self.request(body),
            Input::Done { action, outcome } => self.done(action, outcome),
        }
    }

    fn set(&mut self, service: IpAddr, to: Option<State>, cause: &str) -> Output {
        let from = match to {
            Some(s) => self.services.insert(service, s),
            None => self.services.remove(&service),
        };
        Output::Changed {
            service,
            from: from.map(State::name),
            to: to.map(State::name),
            cause: cause.into(),
        }
    }

    fn request(&mut self, body: Body) -> Vec<Output> {
        match body {
            Body::Hold { service } => match self.services.get(&service) {
                None => vec![Output::Answer(Body::Error {
                    reason: format!("{service} is not steered here"),
                })],
                Some(s) => vec![Output::Do(Action::Hold {
                    service,
                    network: s.network(),
                })],
            },
            Body::SwitchRequest { service, to } => {
                let before = self.services.get(&service).copied();
                self.switch = Some(SwitchJob {
                    service,
                    to: to.clone(),
                    before,
                    switch_us: 0,
                    released: 0,
                });
                if self.networks.contains_key(&to.id) {
                    return self.start_switch();
                }
                match (&to.via, &to.next_hop_mac) {
                    // Claim 4: the request carries network 2's information.
                    (Some(via), Some(mac)) => vec![Output::Do(Action::AddNetwork {
                        id: to.id,
                        name: to.name.clone(),
                        via: via.clone(),
                        next_hop_mac: *mac,
                    })],
                    _ => {
                        self.switch = None;
                        vec![Output::Answer(Body::Error { reason: format!("no network {} ({}) here, and the request does not say how to reach it", to.id, to.name) })]
                    }
                }
            }
            other => vec![Output::Answer(Body::Error {
                reason: format!("a connection controller does not take {other:?}"),
            })],
        }
    }

    fn start_switch(&mut self) -> Vec<Output> {
        let j = self.switch.as_ref().expect("a switch is being handled");
        let (service, to, from) = (j.service, j.to.id, j.before.map(State::network));
        let changed = self.set(
            service,
            Some(State::Switching { from, to }),
            "switch request",
        );
        vec![changed, Output::Do(Action::Switch { service, to })]
    }

    fn done(&mut self, action: Action, outcome: Outcome) -> Vec<Output> {
        match (action, outcome) {
            (Action::Hold { service, network }, Outcome::Done(r)) => match r {
                Ok(()) => vec![
                    self.set(service, Some(State::Holding { network }), "hold request"),
                    Output::Answer(Body::Ok),
                ],
                Err(reason) => vec![Output::Answer(Body::Error { reason })],
            },
            (Action::AddNetwork { id, name, via, .. }, Outcome::Done(r)) => {
                let learning = self.switch.as_ref().is_some_and(|j| j.to.id == id);
                match r {
                    Ok(()) => {
                        self.networks.insert(id, name.clone());
                        if learning {
                            let mut out = vec![Output::Note(format!(
                                "network learned from a switch request: {name} ({id}) via {via}"
                            ))];
                            out.extend(self.start_switch());
                            out
                        } else {
                            vec![Output::Note(format!(
                                "network {name} ({id}) via {via} programmed"
                            ))]
                        }
                    }
                    Err(reason) if learning => {
                        self.switch = None;
                        vec![Output::Answer(Body::Error { reason })]
                    }
                    Err(reason) => vec![Output::Note(format!("network {name} ({id}): {reason}"))],
                }
            }
            (Action::Switch { service, to }, Outcome::Switched(r)) => match r {
                Ok((switch_us, released, pause_us)) => {
                    self.last_switch_us = Some(switch_us);
                    if let Some(j) = self.switch.as_mut() {
                        j.switch_us = switch_us;
                        j.released = released;
                    }
                    let changed = self.set(
                        service,
                        Some(State::Releasing { network: to }),
                        "held packets released, map updated",
                    );
                    vec![
                        changed,
                        Output::Do(Action::Release {
                            service,
                            network: to,
                            pause_us,
                        }),
                    ]
                }
                Err(reason) => {
                    let before = self.switch.take().and_then(|j| j.before);
                    vec![
                        self.set(service, before, &format!("switch failed: {reason}")),
                        Output::Answer(Body::Error { reason }),
                    ]
                }
            },
            (
                Action::Release {
                    service, network, ..
                },
                Outcome::Released(r),
            ) => {
                let j = self.switch.take();
                let changed = self.set(service, Some(State::Steered { network }), "switched");
                match (r, j) {
                    (Ok((n, pause_us)), Some(j)) => {
                        vec![
                            changed,
                            Output::Answer(Body::SwitchDone {
                                service,
                                switch_us: j.switch_us,
                                released: j.released + n,
                                pause_us: pause_us.unwrap_or(0),
                            }),
                        ]
                    }
                    (Ok(_), None) => vec![
                        changed,
                        Output::Answer(Body::Error {
                            reason: "internal: no switch being handled".into(),
                        }),
                    ],
                    (Err(reason), _) => vec![changed, Output::Answer(Body::Error { reason })],
                }
            }
            (Action::Steer { service, network }, Outcome::Done(r)) => match r {
                Ok(()) => vec![self.set(
                    service,
                    Some(State::Steered { network }),
                    "added by a reload",
                )],
                Err(e) => vec![Output::Note(format!("service {service}: {e}"))],
            },
            (Action::Unsteer { service }, Outcome::Done(r)) => match r {
                Ok(()) => vec![self.set(service, None, "removed by a reload")],
                Err(e) => vec![Output::Note(format!("service {service}: {e}"))],
            },
            (a, o) => vec![Output::Answer(Body::Error {
                reason: format!("internal: outcome {o:?} for {a:?}"),
            })],
        }
    }
}

/// Whether `address` is still steered after a reload to `services`.
fn services_keep(services: &[SteerService], address: IpAddr, before: &[SteerService]) -> bool {
    services.iter().any(|s| s.address == address) || !before.iter().any(|s| s.address == address)
}

#[cfg(test)]
mod tests {
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
                reason: "no network 3 (net3) here, and the request does not say how to reach it"
                    .into()
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
            Action::Switch { .. } => {
                Outcome::Switched(Err("releasing a held frame: ENOBUFS".into()))
            }
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
}
