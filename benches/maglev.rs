//! Maglev table build (M = 65537, N in {2, 16, 1000}; target <= 10 ms at
//! N = 1000) and the session hash the fast path uses.

use control::lb::maglev::{Backend, MaglevTable, DEFAULT_TABLE_SIZE};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dataplane_common::hash;

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build_m65537");
    g.sample_size(20);
    for n in [2usize, 16, 1000] {
        let backends: Vec<Backend> = (0..n)
            .map(|i| Backend {
                name: format!("gw{i:04}"),
                weight: 1,
            })
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &backends, |b, bk| {
            b.iter(|| MaglevTable::build(black_box(bk), DEFAULT_TABLE_SIZE, 1).unwrap())
        });
    }
    g.finish();
}

fn key_hash(c: &mut Criterion) {
    c.bench_function("teid_hash", |b| {
        let mut t = 0u32;
        b.iter(|| {
            t = t.wrapping_add(1);
            hash::teid_hash(black_box(t), 7)
        })
    });
    c.bench_function("flow_hash", |b| {
        let mut p = 0u16;
        b.iter(|| {
            p = p.wrapping_add(1);
            hash::flow_hash(
                black_box(0x0a00_0002),
                0xc633_640a,
                black_box(p),
                5000,
                17,
                7,
            )
        })
    });
}

criterion_group!(benches, maglev_build, key_hash);
criterion_main!(benches);
