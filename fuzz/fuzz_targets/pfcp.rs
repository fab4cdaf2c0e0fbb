//! The PFCP engine never panics, whatever datagrams arrive, and every reply
//! and report it sends decodes again. The first octet picks how many
//! datagrams the rest is cut into, so state built by one (an association,
//! a session) is seen by the next.
#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use control::gateway::pfcp::{build, decode, Engine, EngineConfig, TunnelSpec, Tunnels, Volume};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct FakeTunnels(HashMap<u32, (TunnelSpec, Volume)>);

impl Tunnels for FakeTunnels {
    fn install(&mut self, idx: u32, spec: &TunnelSpec) -> Result<(), String> {
        if spec.ul_teid % 97 == 0 {
            return Err("refused".into());
        }
        let e = self.0.entry(idx).or_insert((*spec, Volume::default()));
        e.0 = *spec;
        e.1.ul_bytes += 1500;
        e.1.dl_pkts += 1;
        Ok(())
    }
    fn remove(&mut self, idx: u32) -> Volume {
        self.0.remove(&idx).map(|x| x.1).unwrap_or_default()
    }
    fn usage(&mut self, idx: u32) -> Volume {
        let Some(e) = self.0.get_mut(&idx) else { return Volume::default() };
        e.1.dl_bytes = e.1.dl_bytes.wrapping_add(7_000_000);
        e.1
    }
}

fuzz_target!(|data: &[u8]| {
    let cp = Ipv4Addr::new(10, 0, 0, 1);
    let mut e = Engine::new(EngineConfig {
        node_id: Ipv4Addr::new(10, 0, 0, 9),
        n3_addr: Ipv4Addr::new(10, 0, 1, 9),
        n3_addr6: Some(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
        teid_first: 1,
        teid_last: 8,
        max_sessions: 4,
        recovery_ts: 1,
    });
    let mut t = FakeTunnels::default();
    let peer = SocketAddr::from((cp, 8805));
    // A valid association and session first, so mutations reach deep.
    e.handle(peer, &build::association_setup_request(1, cp, 1), &mut t);
    let s = build::typical_session(cp, 1, Ipv4Addr::new(10, 45, 0, 2), None, Some(1000), 9);
    e.handle(peer, &build::establishment_request(2, &s), &mut t);
    let Some((&n, rest)) = data.split_first() else { return };
    let parts = usize::from(n % 8) + 1;
    let step = rest.len() / parts + 1;
    for chunk in rest.chunks(step) {
        if let Some(r) = e.handle(peer, chunk, &mut t).reply {
            decode(&r).expect("a reply decodes");
        }
        for (_, r) in e.poll_reports(&mut t) {
            decode(&r).expect("a report decodes");
        }
    }
    let _ = (e.sessions(), e.counters());
});
