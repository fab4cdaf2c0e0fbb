//! The GTP-U signalling decoder (what the gateway's N3 socket reads) never
//! panics; what it accepts it answers with messages that decode again: an
//! Echo Request's response keeps its sequence number, an Error
//! Indication for its TEID names that TEID and our address.
//! (`cargo +nightly fuzz run gtpu`)
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::gateway::gtpu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gtpu::parse_error_indication(data);
    let Ok(h) = gtpu::parse(data) else { return };
    if h.msg_type == gtpu::MSG_ECHO_REQUEST {
        let r = gtpu::parse(&gtpu::echo_response(&h)).expect("our echo response decodes");
        // (A request without S, against §7.2.1, is answered with 0.)
        assert_eq!((r.msg_type, r.seq), (gtpu::MSG_ECHO_RESPONSE, Some(h.seq.unwrap_or(0))));
    }
    for n3 in [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    ] {
        let ei = gtpu::error_indication(h.teid, n3, h.seq.unwrap_or(0));
        assert_eq!(gtpu::parse_error_indication(&ei), Some((h.teid, n3)));
    }
});
