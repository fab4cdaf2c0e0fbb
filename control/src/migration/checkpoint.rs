//! A checkpoint too large for one frame, cut into pieces and put back
//! together on the destination.

/// Largest piece of a checkpoint in one frame: JSON escapes a control
/// byte as 6, so even the worst piece stays below `MAX_FRAME`.
pub const CHUNK: usize = 512 << 10;
/// Largest checkpoint a destination agent assembles.
pub const CHECKPOINT_MAX: u64 = 256 << 20;

/// Cut a checkpoint into pieces of at most `max` bytes, at character
/// boundaries, with their offsets.
pub fn chunks(state: &str, max: usize) -> Vec<(u64, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < state.len() {
        let mut end = (at + max.max(4)).min(state.len());
        while !state.is_char_boundary(end) {
            end -= 1;
        }
        out.push((at as u64, &state[at..end]));
        at = end;
    }
    out
}

/// A checkpoint arriving in pieces: each must continue where the last
/// ended; a piece sent again (a retry) is taken once.
#[derive(Clone, Debug, Default)]
pub struct Assembly {
    pub data: String,
}

impl Assembly {
    pub fn add(&mut self, offset: u64, piece: &str) -> Result<(), String> {
        let have = self.data.len() as u64;
        let end = offset.checked_add(piece.len() as u64).ok_or_else(|| {
            format!("checkpoint piece at byte {offset} runs past the end of the numbers")
        })?;
        if end <= have
            && self
                .data
                .get(offset as usize..offset as usize + piece.len())
                == Some(piece)
        {
            return Ok(()); // a retry of a piece already here
        }
        if offset != have {
            return Err(format!(
                "checkpoint piece at byte {offset}, expected {have}"
            ));
        }
        if have + piece.len() as u64 > CHECKPOINT_MAX {
            return Err(format!("checkpoint larger than {CHECKPOINT_MAX} bytes"));
        }
        self.data.push_str(piece);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::wire::{Body, Frame, MAX_FRAME, VERSION};

    #[test]
    fn the_worst_piece_fits_a_frame() {
        let piece = "\u{1}".repeat(CHUNK);
        let f = Frame {
            v: VERSION,
            id: 1,
            deadline_ms: 1,
            body: Body::CheckpointChunk {
                process: "p".into(),
                transfer: 1,
                offset: 0,
                data: piece,
            },
        };
        assert!(f.encode(b"k").len() < MAX_FRAME);
        assert!(Assembly::default().add(u64::MAX, "x").is_err());
    }

    #[test]
    fn checkpoints_stream_in_pieces_and_reassemble() {
        let state = format!("{{\"n\":\"{}\"}}", "é".repeat(3000) + &"x".repeat(5001));
        let pieces = chunks(&state, 1000);
        assert!(pieces.len() > 10 && pieces.iter().all(|(_, p)| p.len() <= 1000 && !p.is_empty()));
        let mut a = Assembly::default();
        for (off, p) in &pieces {
            a.add(*off, p).unwrap();
            a.add(*off, p).unwrap(); // retried: taken once
        }
        assert_eq!(a.data, state);
        assert!(
            a.add(0, "X").unwrap_err().contains("expected"),
            "a different piece over what arrived is refused"
        );
        let mut b = Assembly::default();
        assert!(
            b.add(1000, "late").unwrap_err().contains("expected 0"),
            "a gap is refused"
        );
        assert!(chunks("", 10).is_empty());
    }
}
