//! The object loads and passes the verifier on this kernel.
#[test]
fn object_loads_and_verifies() {
    let mut dp = dataplane_user::Dataplane::load_private()
        .expect("load: needs root and a BPF-capable kernel");
    let r = dp.test_run("floor", &[0u8; 60]).expect("test_run floor");
    assert_eq!(r.verdict, dataplane_user::verdict::PASS);
    assert_eq!(dp.floor_stats().unwrap()[1].packets, 1);
}
