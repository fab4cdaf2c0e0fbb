//! Issue 15, "Exhaustion": each bounded resource filled; new work is
//! refused and counted, and what exists is not disturbed (compared before
//! and after, content not counts). Gateway port pool and flow table
//! through BPF_PROG_TEST_RUN on the loaded `gateway` program; the router's
//! hold ring through the `router` filter and the daemon's hold buffer fed
//! from it; the migration controller's hold with the real daemon in the
//! migration lab; the presence store's rows on SQLite and, through the
//! real server, a PUBLISH refused. `cargo test --test exhaustion --
//! --nocapture` prints the figures quoted in BENCHMARKS.md.

mod common;

#[path = "exhaustion/gateway.rs"]
mod gateway;
#[path = "exhaustion/migration.rs"]
mod migration;
#[path = "exhaustion/presence.rs"]
mod presence;
#[path = "exhaustion/router.rs"]
mod router;

use std::collections::BTreeMap;

use dataplane_common::Counter;

/// Every counter that moved between two reads, by name.
fn moved(names: &[&str], before: &[Counter], after: &[Counter]) -> BTreeMap<String, u64> {
    names
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a.packets != b.packets)
        .map(|(n, (b, a))| (n.to_string(), a.packets - b.packets))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}
