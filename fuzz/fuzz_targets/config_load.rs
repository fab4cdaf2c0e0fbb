//! The config loader (`Config::parse`: TOML, then every section's
//! checks) never panics on any text; an error names a key or says what
//! is wrong; an accepted config is accepted again when parsed a second
//! time (the checks are deterministic).
//! (`cargo +nightly fuzz run config_load`)
#![no_main]

use control::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text) {
        Ok(c) => {
            let again = Config::parse(text).expect("accepted twice");
            assert_eq!(again, c);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
