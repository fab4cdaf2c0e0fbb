//! The benchmark drivers behind `cargo xtask bench`. Each compares against
//! a baseline run side by side in the same run and reports the ratio.

pub mod changes;
pub mod cluster;
pub mod migration;
pub mod packet_gen;
pub mod pfcp;
pub mod report;
pub mod sip;
pub mod sip_scale;
pub mod veth;
pub mod vrrp;
pub mod xdp;

/// The median of `v` (the middle element after sorting; NaN-free input).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
