//! BPF_PROG_TEST_RUN: the real program, run on a packet we hand it. Used by
//! the fixtures, the benchmarks and the CLI's `lookup` commands (Katran's
//! simulator idea: ask the program instead of re-implementing it).

use std::time::Duration;

use aya::programs::{TestRun as _, TestRunOptions};

use crate::{Dataplane, Error, Result};

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

    /// Run `program` `repeat` times on the same buffer. With `repeat > 1`
    /// a rewriting program sees its own output from the second run on;
    /// measure rewriting paths with `repeat = 1`.
    pub fn test_run_repeat(&mut self, program: &str, packet: &[u8], repeat: u32) -> Result<RunResult> {
        let prog = self.program(program)?;
        let mut out = vec![0u8; packet.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(packet);
        opts.data_out = Some(&mut out);
        opts.repeat = repeat.max(1);
        let r = prog.test_run(opts).map_err(|e| Error::Program(program.into(), e))?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult { verdict: r.return_value, output: out, duration: r.duration })
    }
}
