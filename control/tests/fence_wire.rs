//! A `Fence` carries the XDP fingerprint itself, flattened: on the wire it
//! is one flat object (bucket, src, dst, ip_id, ip_csum, l4, l4_next,
//! family, count); addresses are four words, so IPv4 and IPv6 fences have
//! one shape. (Wire version 3: version-1 routers, whose addresses were one
//! word, and version-2 ones, without incarnations, are refused by version
//! rather than misread.)

use control::router::loadshare::{Fence, Msg, MsgError, VERSION};
use dataplane_common::router::Fingerprint;

#[test]
fn fence_is_a_flat_object_on_the_wire() {
    let f = Fence {
        bucket: 9,
        last: Fingerprint {
            src: [1, 0, 0, 0],
            dst: [2, 7, 7, 7],
            ip_id: 3,
            ip_csum: 4,
            l4: 5,
            l4_next: 8,
            family: 6,
            count: 6,
        },
    };
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"bucket": 9, "src": [1, 0, 0, 0], "dst": [2, 7, 7, 7], "ip_id": 3, "ip_csum": 4, "l4": 5, "l4_next": 8, "family": 6, "count": 6})
    );
    let back: Fence = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
}

#[test]
fn older_versions_are_refused_by_their_version() {
    assert_eq!(VERSION, 3);
    for v in [1u8, 2] {
        let old =
            format!(r#"{{"v":{v},"from":"10.3.0.1","seq":1,"body":{{"t":"hold_ack","epoch":1}}}}"#);
        let key = b"k";
        let mut bytes = old.as_bytes().to_vec();
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(&bytes);
        bytes.extend_from_slice(&m.finalize().into_bytes());
        assert_eq!(Msg::decode(&bytes, key), Err(MsgError::Version(v)));
    }
}
