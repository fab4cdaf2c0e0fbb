//! The daemon API: each line on the socket is one JSON `Request`
//! (`serde_json::from_str::<Request>`, as `src/daemon.rs` reads it). The
//! decoder never panics, and a request that decodes re-serializes and
//! decodes to itself; its role (`Request::role`) is defined.
//! (`cargo +nightly fuzz run api_request`)
#![no_main]

use control::api::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(r) = serde_json::from_str::<Request>(line) {
        let text = serde_json::to_string(&r).expect("a request serializes");
        let back: Request = serde_json::from_str(&text).expect("and decodes again");
        assert_eq!(back, r);
        let _ = r.role();
    }
});
