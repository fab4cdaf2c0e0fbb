//! The monitor's journal, beside its state file (`<state_file>.journal`):
//! what happened since the last snapshot, appended before it is acted on
//! (write-ahead), so a SIGKILLed monitor replays it over the snapshot and
//! loses nothing it had taken off the ring or sent. The snapshot is then
//! rewritten at most every `state_interval_ms`, not after every batch.
//!
//! The journal comes in generations (`<state_file>.journal.<N>`): a
//! snapshot starts the next one and is written on a thread of its own, so
//! the monitor goes on (appending to the new generation) while it is
//! serialized and flushed; once it is on disk, the generations before it
//! are removed.
//!
//! A record is a JSON line; copies carry their frames' bytes right after
//! it (their lengths in the line). Each record has a sequence number, and
//! the snapshot the last one it includes, so a generation not yet removed
//! after a snapshot replays nothing twice. A torn record (the kill came
//! while it was written) ends its generation.

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
    state_file: PathBuf,
    gen: u64,
    file: Option<File>,
    /// The last sequence number written.
    pub last: u64,
}

/// `<state_file>.journal.<gen>`.
fn gen_path(state_file: &Path, gen: u64) -> PathBuf {
    let mut p = state_file.as_os_str().to_owned();
    p.push(format!(".journal.{gen}"));
    p.into()
}

/// The journal's generations beside `state_file`, oldest first.
pub fn generations(state_file: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let (Some(dir), Some(name)) = (state_file.parent(), state_file.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}.journal.", name.to_string_lossy());
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let n = e.file_name();
        if let Some(g) = n
            .to_string_lossy()
            .strip_prefix(&prefix)
            .and_then(|g| g.parse::<u64>().ok())
        {
            out.push((g, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Remove the generations below `gen` (a snapshot holds them).
pub fn remove_below(state_file: &Path, gen: u64) -> std::io::Result<()> {
    for (g, p) in generations(state_file)? {
        if g < gen {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

impl Journal {
    /// Appends after `last` (what the restore read), in a generation
    /// above every one there is.
    pub fn new(state_file: &Path, last: u64) -> std::io::Result<Self> {
        let gen = generations(state_file)?.last().map_or(1, |(g, _)| g + 1);
        Ok(Self {
            state_file: state_file.to_path_buf(),
            gen,
            file: None,
            last,
        })
    }

    /// The generation being written.
    pub fn path(&self) -> PathBuf {
        gen_path(&self.state_file, self.gen)
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.state_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path())?,
            );
        }
        Ok(self.file.as_mut().expect("opened"))
    }

    /// Append `rec` (its sequence number set here) in one write.
    pub fn append(&mut self, mut rec: Record) -> std::io::Result<()> {
        let frames = match &mut rec {
            Record::Copies { frames, .. } => std::mem::take(frames),
            _ => Vec::new(),
        };
        let tail: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        self.write(rec, &tail)
    }

    /// Append the copies one poll took, at `now`, without copying their
    /// frames into a record first.
    pub fn append_copies(&mut self, now: u64, frames: &[&[u8]]) -> std::io::Result<()> {
        let rec = Record::Copies {
            seq: 0,
            now,
            lens: frames.iter().map(|f| f.len() as u32).collect(),
            frames: Vec::new(),
        };
        self.write(rec, frames)
    }

    /// `rec`'s line, then `tail` (a Copies record's frames), in one write.
    fn write(&mut self, mut rec: Record, tail: &[&[u8]]) -> std::io::Result<()> {
        let seq = self.last + 1;
        match &mut rec {
            Record::Copies { seq: s, .. }
            | Record::Sent { seq: s, .. }
            | Record::Answered { seq: s, .. } => *s = seq,
        }
        let mut out = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
        out.push(b'\n');
        for f in tail {
            out.extend_from_slice(f);
        }
        self.file()?.write_all(&out)?;
        self.last = seq;
        Ok(())
    }

    /// A snapshot holding everything up to `last` is about to be written:
    /// what comes next goes to a new generation. Returns it (the ones
    /// below it can go once the snapshot is on disk).
    pub fn rotate(&mut self) -> u64 {
        self.file = None;
        self.gen += 1;
        self.gen
    }
}

/// The records after `after` in the journal beside `state_file`, every
/// generation, oldest first (none if there is none); a torn or unreadable
/// record ends its generation, and is reported.
pub fn read(state_file: &Path, after: u64) -> std::io::Result<(Vec<Record>, Option<String>)> {
    let mut out = Vec::new();
    let mut torn = None;
    for (_, path) in generations(state_file)? {
        if let Some(t) = read_one(&path, after, &mut out)? {
            torn = Some(t);
        }
    }
    Ok((out, torn))
}

fn read_one(path: &Path, after: u64, out: &mut Vec<Record>) -> std::io::Result<Option<String>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    // The last whole record read.
    let mut whole = after;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let torn = |what: &str| Some(format!("{}: {what} after record {whole}", path.display()));
        if line.last() != Some(&b'\n') {
            return Ok(torn("a torn record"));
        }
        let mut rec: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(_) => return Ok(torn("an unreadable record")),
        };
        if let Record::Copies { lens, frames, .. } = &mut rec {
            for n in lens.iter() {
                let mut f = vec![0u8; *n as usize];
                if r.read_exact(&mut f).is_err() {
                    return Ok(torn("torn copies"));
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
        let mut j = Journal::new(&state, 7).unwrap();
        let copies = Record::Copies {
            seq: 0,
            now: 40,
            lens: vec![3, 0, 5],
            frames: vec![b"abc".to_vec(), vec![], b"\n\n{x}".to_vec()],
        };
        j.append(copies.clone()).unwrap();
        j.append(Record::Sent {
            seq: 0,
            user: "alice@example.com".into(),
            cseq: 4,
            status: Some(Status::Talking),
        })
        .unwrap();
        // A snapshot starts generation 2 here; the records go on in it.
        let gen = j.rotate();
        j.append(Record::Answered {
            seq: 0,
            user: "alice@example.com".into(),
            etag: Some("e1".into()),
            refresh_unix_ms: Some(9),
        })
        .unwrap();
        assert_eq!((j.last, gen), (10, 2));
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
        // What a snapshot holds is skipped; once it is on disk, the
        // generations before it go.
        assert_eq!(read(&state, 9).unwrap().0.len(), 1);
        remove_below(&state, gen).unwrap();
        assert_eq!(generations(&state).unwrap().len(), 1);
        assert_eq!(read(&state, 7).unwrap().0.len(), 1);
        // A kill halfway through a record: the ones before it replay.
        let whole = std::fs::read(j.path()).unwrap().len();
        j.append(copies).unwrap();
        let bytes = std::fs::read(j.path()).unwrap();
        std::fs::write(j.path(), &bytes[..bytes.len() - 2]).unwrap();
        let (all, torn) = read(&state, 7).unwrap();
        assert_eq!(all.len(), 1);
        assert!(torn.unwrap().contains("torn copies after record 10"));
        std::fs::write(j.path(), &bytes[..whole + 10]).unwrap();
        assert!(read(&state, 7)
            .unwrap()
            .1
            .unwrap()
            .contains("a torn record"));
        // A restarted monitor writes above every generation there is.
        assert_eq!(Journal::new(&state, 11).unwrap().gen, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
