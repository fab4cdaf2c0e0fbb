//! A `Fence` carries the XDP fingerprint itself, flattened: on the wire it
//! is the same flat object routers of the previous release send and expect
//! (bucket, src, dst, ip_id, ip_csum, l4, count).

use control::router::loadshare::Fence;
use dataplane_common::router::Fingerprint;

#[test]
fn fence_is_a_flat_object_on_the_wire() {
    let f = Fence {
        bucket: 9,
        last: Fingerprint {
            src: 1,
            dst: 2,
            ip_id: 3,
            ip_csum: 4,
            l4: 5,
            count: 6,
        },
    };
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"bucket": 9, "src": 1, "dst": 2, "ip_id": 3, "ip_csum": 4, "l4": 5, "count": 6})
    );
    let back: Fence = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
}
