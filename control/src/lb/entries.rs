//! Which `LB_GATEWAYS` index each gateway's entry sits at. An entry is
//! never rewritten in place (a packet could read half of it): a new or
//! changed gateway gets a free index, the next table refers to it, and an
//! index dropped by one apply is reused only after the following flip,
//! when no live table can refer to it. `E` is the entry as the edge
//! resolved it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::maglev::MaglevTable;
use dataplane_common::lb::{slot, GATEWAYS_MAX, NO_GATEWAY};

/// The indices in use and free, between applies.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayIndices<E> {
    /// Gateway name → (index, entry written there).
    pub entries: BTreeMap<String, (u32, E)>,
    free: VecDeque<u32>,
    /// Indices dropped by the last flip's apply, free after the next flip.
    retired: Vec<u32>,
}

/// What an apply writes, and the indices after it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryPlan<E> {
    /// Entries to write, each at an index no live table refers to.
    pub writes: Vec<(u32, E)>,
    /// Entries rewritten where they are: they differ only in what the fast
    /// path does not read (`same_route`), so a packet reading one mid-write
    /// sees the same route either way.
    pub rewrites: Vec<(u32, E)>,
    /// Gateway name → (index, entry) once the writes are done.
    pub next: BTreeMap<String, (u32, E)>,
    /// Indices this apply drops.
    pub retire: Vec<u32>,
    /// Some entry was written or dropped: the table must be reinstalled.
    pub changed: bool,
    free: VecDeque<u32>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("no free gateway entries ({needed} needed, {free} free of {GATEWAYS_MAX})")]
pub struct NoFreeEntries {
    pub needed: usize,
    pub free: usize,
}

impl<E: Clone + PartialEq> GatewayIndices<E> {
    /// Start from the entries a live table refers to (those of a previous
    /// daemon, or none).
    pub fn new(live: impl IntoIterator<Item = (u32, String, E)>) -> Self {
        let mut entries = BTreeMap::new();
        let mut used = vec![false; GATEWAYS_MAX as usize];
        for (idx, name, e) in live {
            used[idx as usize] = true;
            entries.insert(name, (idx, e));
        }
        let free = (0..GATEWAYS_MAX).filter(|i| !used[*i as usize]).collect();
        Self {
            entries,
            free,
            retired: Vec::new(),
        }
    }

    /// The writes that give each of `resolved` (name, entry) an index.
    /// Nothing changes here; [`Self::commit`] takes the plan once applied.
    pub fn plan(&self, resolved: Vec<(String, E)>) -> Result<EntryPlan<E>, NoFreeEntries> {
        self.plan_with(resolved, |_, _| false)
    }

    /// [`Self::plan`], where an entry that differs from the one at its
    /// index only as `same_route` allows is rewritten in place.
    pub fn plan_with(
        &self,
        resolved: Vec<(String, E)>,
        same_route: impl Fn(&E, &E) -> bool,
    ) -> Result<EntryPlan<E>, NoFreeEntries> {
        let moves = |n: &String, e: &E| {
            self.entries
                .get(n)
                .map(|(_, old)| old != e && !same_route(old, e))
                .unwrap_or(true)
        };
        let needed = resolved.iter().filter(|(n, e)| moves(n, e)).count();
        if needed > self.free.len() {
            return Err(NoFreeEntries {
                needed,
                free: self.free.len(),
            });
        }
        let mut free = self.free.clone();
        let (mut writes, mut next, mut retire) = (Vec::new(), BTreeMap::new(), Vec::new());
        let mut rewrites = Vec::new();
        for (name, e) in resolved {
            match self.entries.get(&name) {
                Some((idx, old)) if *old == e => {
                    next.insert(name, (*idx, e));
                }
                Some((idx, old)) if same_route(old, &e) => {
                    rewrites.push((*idx, e.clone()));
                    next.insert(name, (*idx, e));
                }
                prev => {
                    if let Some((idx, _)) = prev {
                        retire.push(*idx);
                    }
                    let idx = free.pop_front().expect("counted above");
                    writes.push((idx, e.clone()));
                    next.insert(name, (idx, e));
                }
            }
        }
        for (name, (idx, _)) in &self.entries {
            if !next.contains_key(name) {
                retire.push(*idx);
            }
        }
        let changed = !writes.is_empty() || !retire.is_empty();
        Ok(EntryPlan {
            writes,
            rewrites,
            next,
            retire,
            changed,
            free,
        })
    }

    /// The plan is applied; `flipped`: its table went live, so the indices
    /// retired by the previous flip are unreachable now.
    pub fn commit(&mut self, plan: EntryPlan<E>, flipped: bool) {
        self.free = plan.free;
        if flipped {
            self.free.extend(self.retired.drain(..));
            self.retired = plan.retire;
        }
        self.entries = plan.next;
    }
}

impl<E> EntryPlan<E> {
    /// Daisy chaining: `slots` (from [`Self::slots`]) with, in each slot
    /// whose gateway differs from the one `live` (the live table's slots,
    /// indices of `live_entries`) had, that previous gateway's index in
    /// this plan (`lb::slot`), when it is still in the plan. Only for a
    /// table of the live one's size, seed and key (otherwise every
    /// session's slot changes meaning).
    pub fn chained(
        &self,
        slots: &[u32],
        live: &[u32],
        live_entries: &BTreeMap<String, (u32, E)>,
    ) -> Vec<u32> {
        let names = |entries: &BTreeMap<String, (u32, E)>| -> HashMap<u32, String> {
            entries.iter().map(|(n, (i, _))| (*i, n.clone())).collect()
        };
        let (was, is) = (names(live_entries), names(&self.next));
        slots
            .iter()
            .zip(live.iter().chain(std::iter::repeat(&NO_GATEWAY)))
            .map(|(&new, &old)| {
                // An entry is never rewritten while a live table names it:
                // the same index is the same gateway (most slots).
                if new == old || new == NO_GATEWAY || old == NO_GATEWAY {
                    return new;
                }
                let (Some(before), Some(now)) = (was.get(&old), is.get(&new)) else {
                    return new;
                };
                match self.next.get(before) {
                    Some((prev, _)) if before != now => slot(new, Some(*prev)),
                    _ => new,
                }
            })
            .collect()
    }

    /// `table`'s slots as indices of these entries.
    pub fn slots(&self, table: &MaglevTable) -> Vec<u32> {
        let index: Vec<u32> = table
            .backends
            .iter()
            .map(|b| self.next[&b.name].0)
            .collect();
        table
            .slots
            .iter()
            .map(|&s| {
                if s == NO_GATEWAY {
                    NO_GATEWAY
                } else {
                    index[s as usize]
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::maglev::Backend;

    fn gws(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(n, e)| (n.to_string(), *e)).collect()
    }

    fn apply(ix: &mut GatewayIndices<u32>, list: &[(&str, u32)]) -> EntryPlan<u32> {
        let p = ix.plan(gws(list)).unwrap();
        ix.commit(p.clone(), p.changed);
        p
    }

    #[test]
    fn new_gateways_take_free_indices_and_an_unchanged_set_writes_nothing() {
        let mut ix = GatewayIndices::new([]);
        let p = apply(&mut ix, &[("a", 1), ("b", 1)]);
        assert_eq!(p.writes, vec![(0, 1), (1, 1)]);
        assert!(p.changed);
        let again = ix.plan(gws(&[("a", 1), ("b", 1)])).unwrap();
        assert!(again.writes.is_empty() && !again.changed);
    }

    #[test]
    fn a_changed_entry_moves_and_its_old_index_waits_one_flip() {
        let mut ix = GatewayIndices::new([]);
        apply(&mut ix, &[("a", 1), ("b", 1)]);
        let p = apply(&mut ix, &[("a", 1), ("b", 2)]);
        assert_eq!(
            (p.writes.clone(), p.retire.clone()),
            (vec![(2, 2)], vec![1])
        );
        // Index 1 may still be read through the previous table: not yet.
        let p = apply(&mut ix, &[("a", 1), ("b", 2), ("c", 1)]);
        assert_eq!(p.writes, vec![(3, 1)]);
        // After that flip it is free again, behind the never-used ones.
        assert!(ix.free.contains(&1));
        assert_eq!(ix.entries["c"], (3, 1));
    }

    #[test]
    fn an_entry_differing_only_where_the_route_does_not_is_rewritten_in_place() {
        let mut ix = GatewayIndices::new([]);
        apply(&mut ix, &[("a", 10), ("b", 20)]);
        // Same tens digit = same route (as a weight is to the fast path).
        let same = |x: &u32, y: &u32| x / 10 == y / 10;
        let p = ix.plan_with(gws(&[("a", 11), ("b", 30)]), same).unwrap();
        assert_eq!(p.rewrites, vec![(0, 11)], "a keeps index 0");
        assert_eq!(p.writes, vec![(2, 30)], "b's route changed: a new index");
        assert_eq!(p.retire, vec![1]);
        assert_eq!(p.next["a"], (0, 11));
    }

    #[test]
    fn a_removed_gateway_is_retired_and_a_full_set_is_refused_without_change() {
        let ix = GatewayIndices::new((0..GATEWAYS_MAX - 1).map(|i| (i, format!("g{i}"), 0)));
        let before = ix.clone();
        assert_eq!(
            ix.plan(gws(&[("x", 1), ("y", 1)])),
            Err(NoFreeEntries { needed: 2, free: 1 })
        );
        assert_eq!(ix, before);
        let p = ix.plan(gws(&[("g0", 0)])).unwrap();
        assert_eq!(p.retire.len(), GATEWAYS_MAX as usize - 2);
        assert!(p.changed);
    }

    #[test]
    fn slots_name_entry_indices() {
        let mut ix = GatewayIndices::new([(7, "b".to_string(), 1)]);
        let p = apply(&mut ix, &[("a", 1), ("b", 1)]);
        let t = MaglevTable::build(
            &[
                Backend {
                    name: "a".into(),
                    weight: 1,
                },
                Backend {
                    name: "b".into(),
                    weight: 1,
                },
            ],
            13,
            1,
        )
        .unwrap();
        let slots = p.slots(&t);
        let a = p.next["a"].0;
        assert_eq!(a, 0);
        assert!(slots.iter().all(|s| *s == a || *s == 7));
        assert_eq!(
            slots.iter().filter(|s| **s == 7).count() as u32,
            t.shares()[t.backends.iter().position(|b| b.name == "b").unwrap()]
        );
    }

    #[test]
    fn chained_slots_name_the_previous_gateway_by_name_not_index() {
        use dataplane_common::lb::{slot_gateway, slot_previous};
        let mut ix = GatewayIndices::new([]);
        apply(&mut ix, &[("a", 1), ("b", 1), ("c", 1)]);
        let live_entries = ix.entries.clone();
        // Live: a a b c. Next: b's entry changed (new index 3), c left,
        // d joined at 4: a b b d.
        let live = vec![0, 0, 1, 2];
        let p = apply(&mut ix, &[("a", 1), ("b", 2), ("d", 1)]);
        let (b, d) = (p.next["b"].0, p.next["d"].0);
        assert_eq!((b, d), (3, 4));
        let slots = vec![0, b, b, d];
        let got = p.chained(&slots, &live, &live_entries);
        assert_eq!(got[0], 0, "a stayed");
        assert_eq!(slot_gateway(got[1]), b);
        assert_eq!(slot_previous(got[1]), Some(0), "a's slot went to b");
        assert_eq!(got[2], b, "b stayed b, though its index changed");
        // c is gone from the plan: nobody to chain to.
        assert_eq!(got[3], d);
        // A live table shorter than the new one chains nothing past it.
        assert_eq!(p.chained(&slots, &live[..1], &live_entries)[1], b);
    }
}
