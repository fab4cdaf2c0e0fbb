//! The monitor's journal, beside its state file (`<state_file>.journal`):
//! what happened since the last snapshot, appended before it is acted on
//! (write-ahead), so a SIGKILLed monitor replays it over the snapshot and
//! loses nothing it had taken off the ring or sent. The snapshot is then
//! rewritten at most every `state_interval_ms`, not after every batch.
//!
//! A record is a JSON line; copies carry their frames' bytes right after
//! it (their lengths in the line). Each record has a sequence number, and
//! the snapshot the last one it includes, so a journal not yet truncated
//! after a snapshot replays nothing twice. A torn last record (the kill
//! came while it was written) ends the replay.

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
};

use control::sip_monitor::track::Status;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// The copies one poll took off the ring, at `now` (monitor ms); the
    /// frames follow the line, `lens` bytes each.
    Copies {
        seq: u64,
        now: u64,
        lens: Vec<u32>,
        #[serde(skip)]
        frames: Vec<Vec<u8>>,
    },
    /// A request for `user` with `cseq` is about to go out: its status,
    /// or none for a refresh.
    Sent {
        seq: u64,
        user: String,
        cseq: u32,
        status: Option<Status>,
    },
    /// A 2xx for `user`'s outstanding request: the entity-tag it gave,
    /// and when (unix ms) its publication is to be refreshed, if it is.
    Answered {
        seq: u64,
        user: String,
        etag: Option<String>,
        refresh_unix_ms: Option<u64>,
    },
}

impl Record {
    pub fn seq(&self) -> u64 {
        match self {
            Record::Copies { seq, .. }
            | Record::Sent { seq, .. }
            | Record::Answered { seq, .. } => *seq,
        }
    }
}

/// The journal being written.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    /// The last sequence number written.
    pub last: u64,
}

/// `<state_file>.journal`.
pub fn path_of(state_file: &Path) -> PathBuf {
    let mut p = state_file.as_os_str().to_owned();
    p.push(".journal");
    p.into()
}

impl Journal {
    /// Appends after `last` (what the restore read).
    pub fn new(state_file: &Path, last: u64) -> Self {
        Self {
            path: path_of(state_file),
            file: None,
            last,
        }
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        Ok(self.file.as_mut().expect("opened"))
    }

    /// Append `rec` (its sequence number set here) in one write.
    pub fn append(&mut self, mut rec: Record) -> std::io::Result<()> {
        let seq = self.last + 1;
        match &mut rec {
            Record::Copies { seq: s, .. }
            | Record::Sent { seq: s, .. }
            | Record::Answered { seq: s, .. } => *s = seq,
        }
        let mut out = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
        out.push(b'\n');
        if let Record::Copies { frames, .. } = &rec {
            for f in frames {
                out.extend_from_slice(f);
            }
        }
        self.file()?.write_all(&out)?;
        self.last = seq;
        Ok(())
    }

    /// The snapshot now holds everything up to `last`: start over.
    pub fn truncate(&mut self) -> std::io::Result<()> {
        self.file()?.set_len(0)
    }
}

/// The records after `after` in the journal beside `state_file` (none if
/// there is none); the replay stops at a torn or unreadable record, and
/// says so.
pub fn read(state_file: &Path, after: u64) -> std::io::Result<(Vec<Record>, Option<String>)> {
    let path = path_of(state_file);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(e),
    };
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut line = Vec::new();
    // The last whole record read.
    let mut whole = after;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok((out, None));
        }
        let torn = |what: &str| Some(format!("{}: {what} after record {whole}", path.display()));
        if line.last() != Some(&b'\n') {
            return Ok((out, torn("a torn record")));
        }
        let mut rec: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(_) => return Ok((out, torn("an unreadable record"))),
        };
        if let Record::Copies { lens, frames, .. } = &mut rec {
            for n in lens.iter() {
                let mut f = vec![0u8; *n as usize];
                if r.read_exact(&mut f).is_err() {
                    return Ok((out, torn("torn copies")));
                }
                frames.push(f);
            }
        }
        whole = whole.max(rec.seq());
        if rec.seq() > after {
            out.push(rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_after_the_snapshot_and_a_torn_tail_ends_them() {
        let dir = std::env::temp_dir().join(format!("edgeplane-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("mon.json");
        let mut j = Journal::new(&state, 7);
        let copies = Record::Copies {
            seq: 0,
            now: 40,
            lens: vec![3, 0, 5],
            frames: vec![b"abc".to_vec(), vec![], b"\n\n{x}".to_vec()],
        };
        j.append(copies.clone()).unwrap();
        let sent = Record::Sent {
            seq: 0,
            user: "alice@example.com".into(),
            cseq: 4,
            status: Some(Status::Talking),
        };
        j.append(sent).unwrap();
        j.append(Record::Answered {
            seq: 0,
            user: "alice@example.com".into(),
            etag: Some("e1".into()),
            refresh_unix_ms: Some(9),
        })
        .unwrap();
        assert_eq!(j.last, 10);
        let (all, torn) = read(&state, 7).unwrap();
        assert_eq!((all.len(), torn), (3, None));
        assert_eq!(all.iter().map(Record::seq).collect::<Vec<_>>(), [8, 9, 10]);
        let Record::Copies { frames, now, .. } = &all[0] else {
            panic!()
        };
        assert_eq!(
            (frames.as_slice(), *now),
            (&[b"abc".to_vec(), vec![], b"\n\n{x}".to_vec()][..], 40)
        );
        // What a snapshot holds is skipped.
        assert_eq!(read(&state, 9).unwrap().0.len(), 1);
        // A kill halfway through a record: the ones before it replay.
        let mut bytes = std::fs::read(path_of(&state)).unwrap();
        let whole = bytes.len();
        j.append(copies).unwrap();
        bytes = std::fs::read(path_of(&state)).unwrap();
        std::fs::write(path_of(&state), &bytes[..bytes.len() - 2]).unwrap();
        let (all, torn) = read(&state, 7).unwrap();
        assert_eq!(all.len(), 3);
        assert!(torn.unwrap().contains("torn copies after record 10"));
        std::fs::write(path_of(&state), &bytes[..whole + 10]).unwrap();
        assert!(read(&state, 7)
            .unwrap()
            .1
            .unwrap()
            .contains("a torn record"));
        // Truncated at a snapshot: nothing to replay.
        let mut j = Journal::new(&state, 11);
        j.truncate().unwrap();
        assert_eq!(read(&state, 11).unwrap(), (vec![], None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
