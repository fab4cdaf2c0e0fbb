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
#[path = "controller_tests.rs"]
mod tests;
