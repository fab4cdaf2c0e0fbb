//! What an agent must not forget across its own restart: the addresses a
//! move may have given away or taken, and the freezes it may have made.
//! The edge writes [`Agent::durable`] to its state file before each
//! operation it carries out, so a record is a superset of what happened:
//! an address being given up counts as given up, a freeze being made as
//! made. Putting an address back that is still there, dropping one that
//! is gone and thawing what is not frozen are all harmless, so a
//! restarted agent that [`Agent::restore`]s the record can always undo a
//! move (an Abort) whatever step it was killed at.

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};

use super::{Action, Agent, Destination, Frozen, Process, Source};

/// One process's record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durable {
    /// Addresses given away (or being given away) by a move that may
    /// still roll back: a source Abort puts them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<IpAddr>,
    /// Addresses taken (or being taken) with an import not resumed yet:
    /// a destination Abort drops them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imported: Vec<IpAddr>,
    /// Freezes made (or being made) and not yet undone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen: Vec<Frozen>,
}

impl Durable {
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty() && self.imported.is_empty() && self.frozen.is_empty()
    }
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Process {
    fn durable(&self) -> Durable {
        let mut d = Durable {
            moved: self.moved.clone(),
            imported: self.imported.clone(),
            frozen: self.frozen.clone(),
        };
        if self.source == Source::GivingUpAddress {
            if let Some((_, service)) = &self.start {
                push(&mut d.moved, *service);
            }
        }
        if matches!(
            self.destination,
            Destination::TakingAddress
                | Destination::Importing
                | Destination::DroppingAddress { .. }
        ) {
            if let Some((address, _)) = &self.import {
                push(&mut d.imported, *address);
            }
        }
        // An abort under way took its addresses out of `moved` (or
        // `imported`) into its list of steps.
        for a in self.abort.iter().chain(self.abort_last.as_ref()) {
            match a {
                Action::AddAddress { address, .. } if self.source == Source::Restoring => {
                    push(&mut d.moved, *address)
                }
                Action::DelAddress { address, .. }
                    if self.destination == Destination::Discarding =>
                {
                    push(&mut d.imported, *address)
                }
                _ => {}
            }
        }
        d
    }
}

impl Agent {
    /// Every process's record, without the empty ones; a record restored
    /// for a process no longer configured is kept as it was.
    pub fn durable(&self) -> BTreeMap<String, Durable> {
        let mut all = self.orphans.clone();
        for (name, p) in &self.processes {
            let d = p.durable();
            if !d.is_empty() {
                all.insert(name.clone(), d);
            }
        }
        all
    }

    /// Take up the records a previous run left (before any request):
    /// each process is at rest, moved away if it had given addresses
    /// away, imported if it had taken some. Returns a line per record.
    pub fn restore(&mut self, records: BTreeMap<String, Durable>) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, d) in records {
            let Some(p) = self.processes.get_mut(&name) else {
                notes.push(format!(
                    "process {name} is not configured here; its record is kept: {d:?}"
                ));
                self.orphans.insert(name, d);
                continue;
            };
            notes.push(format!(
                "process {name}: given away {:?}, taken {:?}, frozen {:?}",
                d.moved, d.imported, d.frozen
            ));
            p.moved = d.moved;
            p.imported = d.imported;
            p.frozen = d.frozen;
            p.source = p.source_at_rest();
            p.destination = p.destination_at_rest();
        }
        notes
    }

    /// The edge is about to freeze `process` this way: recorded first, so
    /// that a restart after the freeze (and before its outcome) thaws it.
    pub fn freezing(&mut self, process: &str, how: Frozen) {
        if let Some(p) = self.processes.get_mut(process) {
            push(&mut p.frozen, how.clone());
            p.freezing = Some(how);
        }
    }
}
