//! The load-sharing message decoder: `Msg::decode` never panics; it
//! refuses what is not tagged with the key, and a body the harness tags
//! itself (so the fuzzer reaches the JSON) decodes only as a message of
//! this version that re-encodes and decodes to itself; a wrong tag, a
//! wrong key or a cut tag is refused. A message that decodes is then
//! handed to a backup router's engine (`LoadShare`, fresh each input),
//! which never panics and keeps 256 valid bucket states. The engines
//! under whole fuzzed exchanges are `loadshare_engine`.
//! (`cargo xtask fuzz loadshare_msg`)
#![no_main]

use control::router::loadshare::{Config, Event, LoadShare, Msg, MsgError, VERSION};
use dataplane_common::router::{BUCKETS, BUCKET_HOLD, BUCKET_MINE, BUCKET_NOT_MINE};
use libfuzzer_sys::fuzz_target;

#[path = "loadshare_common.rs"]
mod common;
use common::{addr, tag, KEY};

const MAC_LEN: usize = 32;

fuzz_target!(|data: &[u8]| {
    // The bytes as they arrive: no valid tag, so nothing decodes (short of
    // forging HMAC-SHA256); never a panic.
    match Msg::decode(data, KEY) {
        Ok(m) => assert_eq!(Msg::decode(&m.encode(KEY), KEY), Ok(m)),
        Err(e) if data.len() <= MAC_LEN => assert_eq!(e, MsgError::Short),
        Err(e) => assert_eq!(e, MsgError::BadMac, "untagged bytes fail the tag first"),
    }
    // The same bytes as a body, tagged with the key.
    let mut bytes = data.to_vec();
    bytes.extend_from_slice(&tag(KEY, data));
    let r = Msg::decode(&bytes, KEY);
    if data.is_empty() {
        assert_eq!(r, Err(MsgError::Short));
        return;
    }
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    assert_eq!(Msg::decode(&flipped, KEY), Err(MsgError::BadMac));
    assert_eq!(Msg::decode(&bytes, b"another key"), Err(MsgError::BadMac));
    let cut = Msg::decode(&bytes[..bytes.len() - 1], KEY);
    assert!(
        matches!(cut, Err(MsgError::BadMac | MsgError::Short)),
        "{cut:?}"
    );
    let msg = match r {
        Ok(m) => m,
        Err(e) => {
            assert_ne!(e, MsgError::BadMac, "tagged with the key");
            assert_ne!(e, MsgError::Short);
            // Consistent with the JSON alone.
            match serde_json::from_slice::<Msg>(data) {
                Ok(m) => assert_eq!(e, MsgError::Version(m.v)),
                Err(_) => assert_eq!(e, MsgError::Malformed),
            }
            return;
        }
    };
    assert_eq!(msg.v, VERSION);
    let again = msg.encode(KEY);
    assert_eq!(
        Msg::decode(&again, KEY).as_ref(),
        Ok(&msg),
        "re-encoded decodes to itself"
    );
    assert_eq!(msg.encode(KEY), again, "encoding is deterministic");
    // A backup (B) whose peers are A, the master, and C hears it.
    let mut cfg = Config::new(addr(2), 100, vec![addr(1), addr(3)], 100);
    cfg.boot = 2_000;
    cfg.review_pps = Some(1000);
    cfg.collect_interval_ms = Some(1000);
    cfg.collect_holddown_ms = 500;
    let mut ls = LoadShare::new(cfg);
    let _ = ls.handle(Event::Role {
        now: 1,
        master: false,
    });
    for a in ls.handle(Event::Received { now: 2, msg }) {
        if let control::router::loadshare::Action::Send { to, msg } = a {
            assert!(to != addr(2) && ls.cfg.peers.contains(&to), "sent to {to}");
            assert_eq!((msg.v, msg.from, msg.boot), (VERSION, addr(2), 2_000));
        }
    }
    assert_eq!(ls.mine.len(), BUCKETS as usize);
    assert!(ls
        .mine
        .iter()
        .all(|s| matches!(*s, BUCKET_NOT_MINE | BUCKET_MINE | BUCKET_HOLD)));
});
