//! Files that must survive the daemon's death and the host's: written to
//! a temporary file, flushed, renamed over the old one, and the directory
//! flushed, so a reader finds the old content or the new, never a part.

use std::{io::Write as _, path::Path};

/// Replace `path` with `data` durably (its directory made if missing).
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with(path, |f| f.write_all(data))
}

/// Replace `path` durably with what `fill` writes (through a buffer, so a
/// large file is not built in memory first).
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    fill(&mut w)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
