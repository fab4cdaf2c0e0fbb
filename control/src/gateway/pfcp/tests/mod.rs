//! The engine against a fake fast path, and interop with scapy's
//! independent PFCP implementation: the `*_REQ` fixtures were produced by
//! `scapy_fixtures.py` (scapy.contrib.pfcp, `bytes(pkt).hex()`); the
//! `OUR_*` fixtures are our responses, each parsed by scapy without error
//! (`PFCP(bytes.fromhex(...)).show()`, every IE a known class, no Raw).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use super::engine::*;
use super::ie::{trigger, ty, Cause, Fteid, NodeId, Volumes, REPORT_USAR};
use super::wire::{build, decode, msg, Header, Message, Reply, SessionRequest};

const HEARTBEAT_REQ: &str = "2001000c0000010000600004e8754700";
const ASSOC_SETUP_REQ: &str = "2005001500000200003c0005000a00000100600004e8754700";
const ESTABLISH_REQ: &str = "2132012d000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001050016000908696e7465726e6574007c000109005f000100006c0004000000010051000400000001006d00040000000100010038003800020002001d0004000000640002000e0014000101005d0005060a2d0002006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a00010100030024006c000400000002002c00010200040013002a0001000054000a010000001234c0a8010a000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const ESTABLISH_REQ_NO_OHC: &str = "21320116000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001050016000908696e7465726e6574007c000109005f000100006c0004000000010051000400000001006d00040000000100010038003800020002001d0004000000640002000e0014000101005d0005060a2d0002006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a0001010003000d006c000400000002002c000104000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const ESTABLISH_REQ_DUAL: &str = "2132013d000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001050016000908696e7465726e6574007c000109005f000100006c0004000000010051000400000001006d00040000000100010048003800020002001d0004000000640002001e0014000101005d0015070a2d000220010db8cafe00010000000000000000006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a00010100030024006c000400000002002c00010200040013002a0001000054000a010000001234c0a8010a000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const ESTABLISH_REQ_V6: &str = "21320139000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001050016000908696e7465726e6574007c000109005f000100006c0004000000010051000400000001006d00040000000100010044003800020002001d0004000000640002001a0014000101005d00110520010db8cafe00010000000000000000006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a00010100030024006c000400000002002c00010200040013002a0001000054000a010000001234c0a8010a000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const ESTABLISH_REQ_N3V6: &str = "21320139000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001060016000908696e7465726e6574007c000109005f000101006c0004000000010051000400000001006d00040000000100010038003800020002001d0004000000640002000e0014000101005d0005060a2d0002006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a00010100030030006c000400000002002c0001020004001f002a0001000054001602000000123420010db8000a00000000000000000010000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const ESTABLISH_REQ_OHC_BOTH: &str = "2132013d000000000000000000000300003c0005000a0000010039000d0200000000000011110a0000010001004b003800020001001d0004000000640002001c001400010000150001050016000908696e7465726e6574007c000109005f000100006c0004000000010051000400000001006d00040000000100010038003800020002001d0004000000640002000e0014000101005d0005060a2d0002006c0004000000020051000400000001006d00040000000100030016006c000400000001002c00010200040005002a00010100030034006c000400000002002c00010200040023002a0001000054001a030000001234c0a8010a20010db8000a00000000000000000010000600200051000400000001003e000102002500020200001f00090100000000000f424000070012006d0004000000010019000100007c000109";
const MODIFY_REQ: &str = "21340034000000000000000100000400000a0024006c000400000002002c000102000b0013002a0001000054000a010000005678c0a80114";
const DELETE_REQ: &str = "2136000c000000000000000100000500";
const REPORT_RSP: &str = "213900110000000000000001000001000013000101";
const ASSOC_RELEASE_REQ: &str = "2009000d00000600003c0005000a000001";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const CP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const UE: Ipv4Addr = Ipv4Addr::new(10, 45, 0, 2);
const AN: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

fn cfg() -> EngineConfig {
    EngineConfig {
        node_id: Ipv4Addr::new(10, 0, 0, 9),
        n3_addr: Ipv4Addr::new(10, 0, 1, 9),
        n3_addr6: None,
        teid_first: 100,
        teid_last: 199,
        max_sessions: 16,
        recovery_ts: 3_800_000_000,
    }
}

fn peer() -> SocketAddr {
    SocketAddr::from((CP, 8805))
}

/// The fast path: a table of live tunnels with counters the test sets.
#[derive(Default, Debug, PartialEq, Eq, Clone)]
struct FakeTunnels {
    live: BTreeMap<u32, (TunnelSpec, Volume)>,
    refuse: bool,
}

impl FakeTunnels {
    /// The live tunnel of the lowest index (the first session's: tunnels
    /// sit at their TEID's slot, and TEIDs are handed out in order).
    fn first(&self) -> (TunnelSpec, Volume) {
        *self.live.values().next().expect("a live tunnel")
    }
    fn first_mut(&mut self) -> &mut (TunnelSpec, Volume) {
        self.live.values_mut().next().expect("a live tunnel")
    }
}

impl Tunnels for FakeTunnels {
    fn install(&mut self, idx: u32, spec: &TunnelSpec) -> Result<(), String> {
        if self.refuse {
            return Err("table full".into());
        }
        let usage = self.live.get(&idx).map(|x| x.1).unwrap_or_default();
        self.live.insert(idx, (*spec, usage));
        Ok(())
    }
    fn remove(&mut self, idx: u32) -> Volume {
        self.live.remove(&idx).map(|x| x.1).unwrap_or_default()
    }
    fn usage(&mut self, idx: u32) -> Volume {
        self.live.get(&idx).map(|x| x.1).unwrap_or_default()
    }
}

struct Lab {
    e: Engine,
    t: FakeTunnels,
    seq: u32,
}

impl Lab {
    fn new(cfg: EngineConfig) -> Self {
        Lab {
            e: Engine::new(cfg),
            t: FakeTunnels::default(),
            seq: 100,
        }
    }
    fn associated() -> Self {
        let mut l = Lab::new(cfg());
        let (_, r, o) = l.send(&build::association_setup_request(1, CP, 7));
        assert_eq!(
            (o, r.cause),
            (
                Outcome::Accepted(Procedure::AssociationSetup),
                Some(Cause::ACCEPTED)
            )
        );
        l
    }
    /// The outcome, and the reply decoded (it must decode).
    fn send(&mut self, bytes: &[u8]) -> (Header, Reply, Outcome) {
        let h = self.e.handle(peer(), bytes, &mut self.t);
        let reply = h.reply.expect("a reply");
        let (hdr, m) = decode(&reply).expect("our reply decodes");
        let Message::Flat(r) = m else {
            panic!("a response")
        };
        (hdr, r, h.outcome)
    }
    fn seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }
    fn establish(&mut self, req: &SessionRequest) -> (Header, Reply, Outcome) {
        let s = self.seq();
        self.send(&build::establishment_request(s, req))
    }
    fn typical(&mut self, cp_seid: u64, ue: Ipv4Addr, threshold: Option<u64>) -> u64 {
        let (_, r, o) = self.establish(&build::typical_session(
            CP,
            cp_seid,
            ue,
            Some((0x1234, AN)),
            threshold,
            9,
        ));
        assert_eq!(o, Outcome::Accepted(Procedure::Establishment), "{r:?}");
        r.fseid.expect("UP F-SEID").seid
    }
    fn snapshot(&self) -> (Vec<SessionInfo>, FakeTunnels) {
        (self.e.sessions(), self.t.clone())
    }
}

fn rejected(p: Procedure, c: Cause) -> Outcome {
    Outcome::Rejected {
        procedure: p,
        cause: c,
    }
}

mod causes;
mod n3v6;
mod scapy;
