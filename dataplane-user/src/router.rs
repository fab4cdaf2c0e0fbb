//! Typed access to the `router` load-sharing maps. Addresses go in as
//! `Ipv4Addr`; the fingerprints the filter records stay in the map's
//! network order (the load-sharing wire carries them as is) and are
//! compared with frames here.

use std::net::IpAddr;

use aya::maps::{Array, MapData};
use dataplane_common::{
    maps,
    router::{self, Fingerprint, HeldHeader, RouterCfg},
    Counter,
};

use crate::{pins::map_err, Dataplane, Error, Result};

/// A frame the filter held for a bucket being handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub bucket: u32,
    pub frame: Vec<u8>,
}

/// What the filter does with a bucket (`RT_BUCKETS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BucketState {
    NotMine,
    Mine,
    /// Being handed to this router: buffer, do not route (seed 003 claim 4).
    Hold,
}

impl BucketState {
    pub const fn raw(self) -> u32 {
        match self {
            Self::NotMine => router::BUCKET_NOT_MINE,
            Self::Mine => router::BUCKET_MINE,
            Self::Hold => router::BUCKET_HOLD,
        }
    }

    pub fn from_raw(v: u32) -> Result<Self> {
        match v {
            router::BUCKET_NOT_MINE => Ok(Self::NotMine),
            router::BUCKET_MINE => Ok(Self::Mine),
            router::BUCKET_HOLD => Ok(Self::Hold),
            _ => Err(Error::Other(format!(
                "bucket state {v} is none of not-mine, mine, hold"
            ))),
        }
    }
}

/// Which address of a packet is the end system's (its bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndSystem {
    /// Upstream: the source.
    Source,
    /// Downstream: the destination.
    Destination,
}

/// The filter's settings (`RT_CFG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterConfig {
    /// The virtual router's MAC: only frames to it are filtered.
    pub vmac: [u8; 6],
    /// Re-address routed frames to this MAC; `None` keeps the virtual MAC
    /// (a macvlan with it receives them).
    pub own_mac: Option<[u8; 6]>,
    pub end_system: EndSystem,
}

impl From<FilterConfig> for RouterCfg {
    fn from(c: FilterConfig) -> Self {
        RouterCfg {
            vmac: c.vmac,
            own_mac: c.own_mac.unwrap_or([0; 6]),
            by_dst: u32::from(c.end_system == EndSystem::Destination),
            enabled: 1,
        }
    }
}

/// The bucket of an end-system address, as the filter computes it.
pub fn bucket_of(addr: IpAddr) -> u8 {
    // BUCKETS is 256.
    match addr {
        IpAddr::V4(a) => dataplane_common::hash::addr_bucket(u32::from_ne_bytes(a.octets())) as u8,
        IpAddr::V6(a) => dataplane_common::hash::addr6_bucket(ne_words(&a.octets())) as u8,
    }
}

fn ne_words(b: &[u8]) -> [u32; 4] {
    let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

/// Whether `frame` (untagged Ethernet, IPv4 or IPv6) is the packet `fp`
/// records.
pub fn frame_matches(frame: &[u8], fp: &Fingerprint) -> bool {
    // The fingerprint holds header fields as they sit in the packet.
    let raw32 = |o: usize| u32::from_ne_bytes([frame[o], frame[o + 1], frame[o + 2], frame[o + 3]]);
    let raw16 = |o: usize| u16::from_ne_bytes([frame[o], frame[o + 1]]);
    match fp.family {
        4 if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] => {
            let l4 = if frame[14] == 0x45 && frame.len() >= 38 {
                raw32(34)
            } else {
                0
            };
            fp.src == [raw32(26), 0, 0, 0]
                && fp.dst == [raw32(30), 0, 0, 0]
                && raw16(18) == fp.ip_id
                && raw16(24) == fp.ip_csum
                && l4 == fp.l4
                && fp.l4_next == 0
        }
        6 if frame.len() >= 62 && frame[12..14] == [0x86, 0xdd] => {
            fp.src == ne_words(&frame[22..38])
                && fp.dst == ne_words(&frame[38..54])
                && raw16(16) == fp.ip_id
                && raw16(18) == fp.ip_csum
                && raw32(54) == fp.l4
                && raw32(58) == fp.l4_next
        }
        _ => false,
    }
}

impl Dataplane {
    pub fn set_router_cfg(&mut self, c: &FilterConfig) -> Result<()> {
        let mut a: Array<&mut MapData, RouterCfg> = self.map_mut(&maps::RT_CFG)?;
        a.set(0, RouterCfg::from(*c), 0)
            .map_err(map_err(&maps::RT_CFG))
    }

    /// Let the filter route for another `LEASE_NS` (from now, coarse
    /// monotonic clock, as the filter reads it).
    pub fn renew_router_lease(&mut self) -> Result<()> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid clock id and out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let mut a: Array<&mut MapData, u64> = self.map_mut(&maps::RT_LEASE)?;
        a.set(0, now + router::LEASE_NS, 0)
            .map_err(map_err(&maps::RT_LEASE))
    }

    /// Set the lease to an absolute value (tests: 0 expires it, u64::MAX
    /// never does).
    pub fn set_router_lease(&mut self, until_ns: u64) -> Result<()> {
        let mut a: Array<&mut MapData, u64> = self.map_mut(&maps::RT_LEASE)?;
        a.set(0, until_ns, 0).map_err(map_err(&maps::RT_LEASE))
    }

    pub fn set_bucket(&mut self, bucket: u8, state: BucketState) -> Result<()> {
        let mut a: Array<&mut MapData, u32> = self.map_mut(&maps::RT_BUCKETS)?;
        a.set(u32::from(bucket), state.raw(), 0)
            .map_err(map_err(&maps::RT_BUCKETS))
    }

    pub fn buckets(&self) -> Result<Vec<BucketState>> {
        let a: Array<&MapData, u32> = self.map(&maps::RT_BUCKETS)?;
        (0..router::BUCKETS)
            .map(|b| BucketState::from_raw(a.get(&b, 0).map_err(map_err(&maps::RT_BUCKETS))?))
            .collect()
    }

    /// Routed `{packets, bytes}` per bucket, summed over CPUs.
    pub fn bucket_rates(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::RT_RATES)
    }

    /// The last packet routed in `bucket` (compare with
    /// [`frame_matches`]).
    pub fn last_routed(&self, bucket: u8) -> Result<Fingerprint> {
        let a: Array<&MapData, Fingerprint> = self.map(&maps::RT_LAST)?;
        a.get(&u32::from(bucket), 0)
            .map_err(map_err(&maps::RT_LAST))
    }

    pub fn router_stats(&self) -> Result<Vec<Counter>> {
        self.sum_stats(&maps::RT_STATS)
    }

    /// Every frame held so far, in arrival order.
    pub fn take_held(&mut self) -> Result<Vec<Held>> {
        self.drain_ring(&maps::RT_HELD, |h: HeldHeader, frame| Held {
            bucket: h.bucket,
            frame: frame.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_states_round_trip_and_unknown_values_are_refused() {
        for s in [BucketState::NotMine, BucketState::Mine, BucketState::Hold] {
            assert_eq!(BucketState::from_raw(s.raw()).unwrap(), s);
        }
        assert!(BucketState::from_raw(7).is_err());
    }

    #[test]
    fn filter_config_layout() {
        let c = RouterCfg::from(FilterConfig {
            vmac: [0, 0, 0x5e, 0, 1, 7],
            own_mac: None,
            end_system: EndSystem::Destination,
        });
        assert_eq!((c.own_mac, c.by_dst, c.enabled), ([0; 6], 1, 1));
        let c = RouterCfg::from(FilterConfig {
            vmac: [0; 6],
            own_mac: Some([2, 0, 0, 0, 0, 1]),
            end_system: EndSystem::Source,
        });
        assert_eq!((c.own_mac, c.by_dst), ([2, 0, 0, 0, 0, 1], 0));
    }

    #[test]
    fn bucket_of_hashes_the_address_as_the_packet_carries_it() {
        let a = std::net::Ipv4Addr::new(10, 3, 0, 64);
        assert_eq!(
            u32::from(bucket_of(a.into())),
            dataplane_common::hash::addr_bucket(u32::from_ne_bytes([10, 3, 0, 64]))
        );
        // IPv6: the whole address; hosts of one /64 spread over buckets.
        let buckets: std::collections::BTreeSet<u8> = (1..=64u16)
            .map(|i| bucket_of(std::net::Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, i).into()))
            .collect();
        assert!(buckets.len() > 40, "{} buckets for 64 hosts", buckets.len());
    }

    #[test]
    fn a_frame_matches_the_fingerprint_of_its_own_header_fields() {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[18..20].copy_from_slice(&[0x12, 0x34]); // IP id
        f[24..26].copy_from_slice(&[0xab, 0xcd]); // IP checksum
        f[26..30].copy_from_slice(&[10, 3, 0, 64]);
        f[30..34].copy_from_slice(&[10, 9, 0, 1]);
        f[34..38].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]); // ports 40000 -> 80
        let fp = Fingerprint {
            src: [u32::from_ne_bytes([10, 3, 0, 64]), 0, 0, 0],
            dst: [u32::from_ne_bytes([10, 9, 0, 1]), 0, 0, 0],
            ip_id: u16::from_ne_bytes([0x12, 0x34]),
            ip_csum: u16::from_ne_bytes([0xab, 0xcd]),
            l4: u32::from_ne_bytes([0x9c, 0x40, 0x00, 0x50]),
            l4_next: 0,
            family: 4,
            count: 1,
        };
        assert!(frame_matches(&f, &fp));
        let mut other = f.clone();
        other[19] ^= 1;
        assert!(!frame_matches(&other, &fp));
        assert!(!frame_matches(&f[..30], &fp), "too short");
        assert!(!frame_matches(&f, &Fingerprint { family: 6, ..fp }));
    }

    #[test]
    fn an_ipv6_frame_matches_by_flow_label_length_and_upper_layer_bytes() {
        let mut f = vec![0u8; 70];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14..18].copy_from_slice(&[0x60, 0x01, 0x23, 0x45]); // flow label 0x12345
        f[18..20].copy_from_slice(&[0x00, 0x10]); // payload length 16
        f[20] = 17;
        f[22..38]
            .copy_from_slice(&std::net::Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 64).octets());
        f[38..54]
            .copy_from_slice(&std::net::Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1).octets());
        f[54..58].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        f[58..62].copy_from_slice(&[0x00, 0x10, 0xbe, 0xef]); // UDP length, checksum
        let fp = Fingerprint {
            src: ne_words(&f[22..38]),
            dst: ne_words(&f[38..54]),
            ip_id: u16::from_ne_bytes([0x23, 0x45]),
            ip_csum: 16u16.to_be(),
            l4: u32::from_ne_bytes([0x9c, 0x40, 0x00, 0x50]),
            l4_next: u32::from_ne_bytes([0x00, 0x10, 0xbe, 0xef]),
            family: 6,
            count: 3,
        };
        assert!(frame_matches(&f, &fp));
        // Another packet of the same flow differs in its UDP checksum.
        let mut next = f.clone();
        next[61] ^= 1;
        assert!(!frame_matches(&next, &fp));
        assert!(!frame_matches(&f[..60], &fp), "too short");
    }
}
