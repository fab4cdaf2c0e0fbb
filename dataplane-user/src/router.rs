//! Typed access to the `router` load-sharing maps.

use aya::maps::{Array, MapData};
use dataplane_common::{
    maps,
    router::{self, Fingerprint, HeldHeader, RouterCfg},
    Counter,
};

use crate::{pins::map_err, Dataplane, Result};

/// A frame the filter held for a bucket being handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub bucket: u32,
    pub frame: Vec<u8>,
}

impl Dataplane {
    pub fn set_router_cfg(&mut self, c: &RouterCfg) -> Result<()> {
        let mut a: Array<&mut MapData, RouterCfg> = self.map_mut(&maps::RT_CFG)?;
        a.set(0, c, 0).map_err(map_err(&maps::RT_CFG))
    }

    /// Let the filter route for another `LEASE_NS` (from now, coarse
    /// monotonic clock, as the filter reads it).
    pub fn renew_router_lease(&mut self) -> Result<()> {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid clock id and out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let mut a: Array<&mut MapData, u64> = self.map_mut(&maps::RT_LEASE)?;
        a.set(0, now + router::LEASE_NS, 0).map_err(map_err(&maps::RT_LEASE))
    }

    /// Set the lease to an absolute value (tests: 0 expires it, u64::MAX
    /// never does).
    pub fn set_router_lease(&mut self, until_ns: u64) -> Result<()> {
        let mut a: Array<&mut MapData, u64> = self.map_mut(&maps::RT_LEASE)?;
        a.set(0, until_ns, 0).map_err(map_err(&maps::RT_LEASE))
    }

    pub fn set_bucket(&mut self, bucket: u32, state: u32) -> Result<()> {
        let mut a: Array<&mut MapData, u32> = self.map_mut(&maps::RT_BUCKETS)?;
        a.set(bucket, state, 0).map_err(map_err(&maps::RT_BUCKETS))
    }

    pub fn buckets(&self) -> Result<Vec<u32>> {
        let a: Array<&MapData, u32> = self.map(&maps::RT_BUCKETS)?;
        (0..router::BUCKETS).map(|b| a.get(&b, 0).map_err(map_err(&maps::RT_BUCKETS))).collect()
    }

    /// Routed `{packets, bytes}` per bucket, summed over CPUs.
    pub fn bucket_rates(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::RT_RATES)
    }

    pub fn last_routed(&self, bucket: u32) -> Result<Fingerprint> {
        let a: Array<&MapData, Fingerprint> = self.map(&maps::RT_LAST)?;
        a.get(&bucket, 0).map_err(map_err(&maps::RT_LAST))
    }

    pub fn router_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::RT_STATS)
    }

    /// Every frame held so far, in arrival order.
    pub fn take_held(&mut self) -> Result<Vec<Held>> {
        self.drain_ring(&maps::RT_HELD, |h: HeldHeader, frame| Held { bucket: h.bucket, frame: frame.to_vec() })
    }
}
