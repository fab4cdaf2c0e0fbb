//! `edgeplane bench xdp`: ns/packet of each XDP program through
//! BPF_PROG_TEST_RUN, side by side with the floor program in the same run.
//!
//! Every measurement is a single-shot run (repeat = 1) on a fresh copy of
//! the packet, since with repeat > 1 a rewriting program would see its own
//! output. Runs of the program and the floor alternate in rounds, and the
//! median round is reported, so machine noise hits both alike.

use serde::Serialize;

use dataplane_user::Dataplane;

use crate::fixtures;

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub program: String,
    pub case: String,
    pub ns_per_packet: f64,
    pub floor_ns_per_packet: f64,
    pub ratio: f64,
    /// ns_per_packet - floor_ns_per_packet: what travels between machines.
    pub ns_above_floor: f64,
}

pub struct BenchOptions {
    pub rounds: usize,
    pub runs_per_round: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self { rounds: 15, runs_per_round: 2000 }
    }
}

fn batch(dp: &mut Dataplane, program: &str, pkt: &[u8], n: usize) -> anyhow::Result<f64> {
    let mut total = 0u128;
    for _ in 0..n {
        total += dp.test_run(program, pkt)?.duration.as_nanos();
    }
    Ok(total as f64 / n as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Measure `program` on `pkt` against the floor program on the same packet.
pub fn compare(dp: &mut Dataplane, program: &str, case: &str, pkt: &[u8], opts: &BenchOptions) -> anyhow::Result<BenchRow> {
    let (mut prog, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..opts.rounds {
        floor.push(batch(dp, "floor", pkt, opts.runs_per_round)?);
        prog.push(batch(dp, program, pkt, opts.runs_per_round)?);
    }
    let (p, f) = (median(prog), median(floor));
    Ok(BenchRow {
        program: program.into(),
        case: case.into(),
        ns_per_packet: p,
        floor_ns_per_packet: f,
        ratio: p / f,
        ns_above_floor: p - f,
    })
}

/// Every program's cases. Later roles add theirs here.
pub fn run_all(opts: &BenchOptions) -> anyhow::Result<Vec<BenchRow>> {
    let mut dp = Dataplane::load_private()?;
    // XDP_TX path: the gateway is reached through the test_run ingress
    // device (loopback of this namespace).
    fixtures::install(&mut dp, 1, None)?;
    let cases: Vec<(&str, Vec<u8>)> = ["gtpu_gpdu", "gtpu_ext_pdu_session", "udp_5tuple", "tcp_5tuple"]
        .iter()
        .map(|name| {
            let f = fixtures::fixtures().into_iter().find(|f| f.name == *name).expect("fixture exists");
            (*name, f.packet)
        })
        .collect();
    let mut rows = Vec::new();
    for (case, pkt) in &cases {
        let r = dp.test_run("lb", pkt)?;
        anyhow::ensure!(r.verdict == dataplane_user::verdict::TX, "bench case {case}: lb did not forward (verdict {})", r.verdict);
        rows.push(compare(&mut dp, "lb", case, pkt, opts)?);
    }
    Ok(rows)
}
