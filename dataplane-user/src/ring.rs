//! Reading the records the programs write to ring buffers
//! (`dataplane_common::ring`): one decoder for every ring.

use aya::{
    maps::{MapData, RingBuf},
    Pod,
};
use dataplane_common::{maps::MapDef, ring::RecordHeader};

use crate::{Dataplane, Result};

/// A record's header and the frame bytes it says were captured, never more
/// than the record holds. `None` for a record shorter than its header,
/// which the programs never write.
pub(crate) fn decode<H: RecordHeader + Pod>(record: &[u8]) -> Option<(H, &[u8])> {
    let (head, body) = record.split_at_checked(size_of::<H>())?;
    // SAFETY: `head` holds size_of::<H>() bytes and H is Pod (any bytes
    // are a valid H); unaligned, as a slice promises no alignment.
    let header: H = unsafe { std::ptr::read_unaligned(head.as_ptr().cast()) };
    let n = header.captured().min(body.len());
    Some((header, &body[..n]))
}

impl Dataplane {
    /// `def`'s ring, mapped once and kept: mapping a ring maps every page
    /// of it (twice, for the wrap-around), and unmapping flushes them, a
    /// cost per read that a reader waking per packet cannot pay. The map
    /// leaves the object's list on first use.
    pub(crate) fn ring(&mut self, def: &'static MapDef) -> Result<&mut RingBuf<MapData>> {
        if !self.rings.contains_key(def.name) {
            let map = self.ebpf.take_map(def.name).ok_or_else(|| {
                crate::Error::Other(format!("map {} missing from object", def.name))
            })?;
            let rb = RingBuf::try_from(map).map_err(crate::pins::map_err(def))?;
            self.rings.insert(def.name, rb);
        }
        Ok(self.rings.get_mut(def.name).expect("inserted"))
    }

    /// Every record waiting in `def`'s ring, in arrival order, as `f`
    /// makes of its header and frame.
    pub(crate) fn drain_ring<H, T>(
        &mut self,
        def: &'static MapDef,
        mut f: impl FnMut(H, &[u8]) -> T,
    ) -> Result<Vec<T>>
    where
        H: RecordHeader + Pod,
    {
        let rb = self.ring(def)?;
        let mut out = Vec::new();
        while let Some(item) = rb.next() {
            if let Some((header, frame)) = decode::<H>(&item) {
                out.push(f(header, frame));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use dataplane_common::{
        router::{HeldFrame, HeldHeader, HOLD_MAX},
        sip_monitor::{SipCopy, SipCopyHeader, COPY_MAX},
    };

    use super::decode;

    /// The bytes of a record as the kernel hands them out.
    fn bytes<T>(record: &T) -> &[u8] {
        // SAFETY: the records are repr(C) with no padding (asserted in
        // dataplane-common), so every byte is initialised.
        unsafe { std::slice::from_raw_parts((record as *const T).cast(), size_of::<T>()) }
    }

    #[test]
    fn held_frame_round_trip() {
        let mut rec = HeldFrame {
            header: HeldHeader { bucket: 7, len: 60 },
            data: [0; HOLD_MAX],
        };
        rec.data[..60].fill(0xab);
        let (h, frame) = decode::<HeldHeader>(bytes(&rec)).unwrap();
        assert_eq!(h, HeldHeader { bucket: 7, len: 60 });
        assert_eq!(frame, &[0xab; 60]);
    }

    #[test]
    fn sip_copy_round_trip_keeps_wire_length() {
        let rec = SipCopy {
            header: SipCopyHeader {
                len: 3000,
                copied: COPY_MAX as u32,
            },
            data: [1; COPY_MAX],
        };
        let (h, frame) = decode::<SipCopyHeader>(bytes(&rec)).unwrap();
        assert_eq!((h.len, frame.len()), (3000, COPY_MAX));
    }

    #[test]
    fn short_or_overstated_records() {
        assert!(decode::<HeldHeader>(&[0; 7]).is_none());
        // A header claiming more than the record holds yields what is there.
        let mut rec = vec![0u8; 8 + 4];
        rec[4..8].copy_from_slice(&100u32.to_ne_bytes());
        assert_eq!(decode::<HeldHeader>(&rec).unwrap().1.len(), 4);
    }
}
