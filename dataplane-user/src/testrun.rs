//! BPF_PROG_TEST_RUN: the real program, run on a packet we hand it. Used by
//! the fixtures, the benchmarks and the CLI's `lookup` commands (Katran's
//! simulator idea: ask the program instead of re-implementing it).

use std::time::Duration;

use aya::programs::{TestRun, TestRunAttrs, TestRunOptions};

use dataplane_common::maps;

use crate::{pins::map_err, Dataplane, Error, Result};

#[derive(Clone, Debug)]
pub struct RunResult {
    pub verdict: u32,
    pub output: Vec<u8>,
    /// Kernel-measured time per repetition.
    pub duration: Duration,
}

impl Dataplane {
    /// Run `program` once on `packet`.
    pub fn test_run(&mut self, program: &str, packet: &[u8]) -> Result<RunResult> {
        self.test_run_repeat(program, packet, 1)
    }

    /// Run `program` once with `meta` as XDP metadata in front of the
    /// packet (the gateway's dry-run lookups). Output excludes the metadata.
    pub fn test_run_meta(
        &mut self,
        program: &str,
        meta: &[u8],
        packet: &[u8],
    ) -> Result<RunResult> {
        let prog = self.program(program)?;
        let mut data = meta.to_vec();
        data.extend_from_slice(packet);
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex. `data` is the metadata length.
        let mut ctx = [0u8; 24];
        ctx[0..4].copy_from_slice(&(meta.len() as u32).to_ne_bytes());
        ctx[4..8].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        let mut out = vec![0u8; data.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&data);
        opts.data_out = Some(&mut out);
        opts.ctx_in = Some(&ctx);
        let r = prog
            .test_run(opts)
            .map_err(|e| Error::Program(program.into(), e))?;
        out.truncate(r.data_size_out as usize);
        let output = out.get(meta.len()..).unwrap_or_default().to_vec();
        Ok(RunResult {
            verdict: r.return_value,
            output,
            duration: r.duration,
        })
    }

    /// Send `frames` copies of `frame` as live frames (BPF_F_TEST_XDP_LIVE_FRAMES):
    /// `program` runs on each as if received on `ifindex`, and what it
    /// transmits (XDP_TX) really leaves that device. A traffic generator
    /// several times faster than sendmmsg.
    pub fn live_frames(
        &mut self,
        program: &str,
        ifindex: u32,
        frame: &[u8],
        frames: u32,
        batch: u32,
    ) -> Result<Duration> {
        if let Ok(t) = <[u8; 64]>::try_from(frame) {
            let mut a: aya::maps::Array<&mut aya::maps::MapData, [u8; 64]> =
                self.map_mut(&maps::GEN_FRAME)?;
            a.set(0, t, 0).map_err(map_err(&maps::GEN_FRAME))?;
        } else if let Ok(t) = <[u8; 128]>::try_from(frame) {
            let mut a: aya::maps::Array<&mut aya::maps::MapData, [u8; 128]> =
                self.map_mut(&maps::GEN_FRAME_LONG)?;
            a.set(0, t, 0).map_err(map_err(&maps::GEN_FRAME_LONG))?;
        }
        let prog = self.program(program)?;
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.ctx_in = Some(&ctx);
        opts.repeat = frames;
        opts.attrs = TestRunAttrs::new().xdp_live_frames(batch);
        let r = prog
            .test_run(opts)
            .map_err(|e| Error::Program(program.into(), e))?;
        Ok(r.duration)
    }

    /// Run `program` `repeat` times on the same buffer. With `repeat > 1`
    /// a rewriting program sees its own output from the second run on;
    /// measure rewriting paths with `repeat = 1`.
    pub fn test_run_repeat(
        &mut self,
        program: &str,
        packet: &[u8],
        repeat: u32,
    ) -> Result<RunResult> {
        run(self.program(program)?, program, packet, repeat)
    }

    /// Run the TC classifier `program` (an egress companion such as
    /// `sip_monitor_egress`) once on `packet`, as an skb whose data starts
    /// at the Ethernet header; the verdict is its TC action.
    pub fn test_run_classifier(&mut self, program: &str, packet: &[u8]) -> Result<RunResult> {
        run(
            crate::egress::classifier_mut(&mut self.ebpf, program)?,
            program,
            packet,
            1,
        )
    }
}

fn run<P>(prog: &P, name: &str, packet: &[u8], repeat: u32) -> Result<RunResult>
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = aya::programs::TestRunResult>,
{
    let mut out = vec![0u8; packet.len() + 256];
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(packet);
    opts.data_out = Some(&mut out);
    opts.repeat = repeat.max(1);
    let r = prog
        .test_run(opts)
        .map_err(|e| Error::Program(name.into(), e))?;
    out.truncate(r.data_size_out as usize);
    Ok(RunResult {
        verdict: r.return_value,
        output: out,
        duration: r.duration,
    })
}
