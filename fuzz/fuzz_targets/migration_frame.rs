//! Migration frames: `Frame::take` never panics on any byte stream; it
//! consumes exactly one frame's bytes or none; a frame under another key
//! is `BadTag`. JSON the harness frames and tags itself (so the fuzzer
//! reaches the decoder) decodes only as a frame of this version, which
//! re-encodes and decodes to itself. `Replies` keeps answers by deadline
//! without ever exceeding its bound.
//! (`cargo +nightly fuzz run migration_frame`)
#![no_main]

use control::migration::{fresh, Body, Frame, FrameError, Replies, TAG_LEN, VERSION};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &[u8] = b"fuzz migration key";

fn tagged(json: &[u8]) -> Vec<u8> {
    let mut out = ((json.len() + TAG_LEN) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(json);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(KEY).unwrap();
    m.update(&out);
    out.extend_from_slice(&m.finalize().into_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // The raw stream, as a peer would send it.
    let mut buf = rest.to_vec();
    for _ in 0..16 {
        let before = buf.len();
        match Frame::take(&mut buf, KEY) {
            Ok(Some(_)) => assert!(buf.len() < before, "a frame consumed nothing"),
            Ok(None) => {
                assert_eq!(buf.len(), before);
                break;
            }
            Err(_) => {
                assert_eq!(buf.len(), before, "an error consumed bytes");
                break;
            }
        }
    }
    // The same bytes as JSON, framed and tagged.
    let mut one = tagged(rest);
    match Frame::take(&mut one, KEY) {
        Ok(Some(f)) => {
            assert_eq!(f.v, VERSION);
            assert!(one.is_empty());
            let mut again = f.encode(KEY);
            assert_eq!(Frame::take(&mut again, KEY).unwrap(), Some(f.clone()));
            let mut other = f.encode(b"another key");
            assert_eq!(Frame::take(&mut other, KEY), Err(FrameError::BadTag));
            let now = u64::from(mode) * 1000;
            let _ = fresh(f.deadline_ms, now);
            let mut r = Replies::default();
            if r.room(now) && r.begin(f.id) {
                r.put(f.id, f.deadline_ms, Body::Ok);
            }
            assert!(r.len() <= Replies::KEEP);
        }
        Ok(None) => {}
        Err(_) => {}
    }
});
