//! The CLI side of the daemon API.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use control::api::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no edgeplane daemon is running at {0} (start one with `edgeplane run --config FILE`)"
    )]
    NoDaemon(String),
    /// The socket is there, but this user may not use it (0600, another
    /// user's).
    #[error("permission denied on the daemon API at {path}: it belongs to {owner} (mode {mode:o}); run the CLI as {owner} or as root")]
    Denied {
        path: String,
        owner: String,
        mode: u32,
    },
    #[error("daemon API at {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Daemon(String),
}

pub fn call(socket: &Path, req: &Request) -> Result<serde_json::Value, ClientError> {
    let name = socket.display().to_string();
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => denied(socket),
        _ => ClientError::NoDaemon(name.clone()),
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut line = serde_json::to_vec(req).expect("serializable");
    line.push(b'\n');
    s.write_all(&line)
        .map_err(|e| ClientError::Io(name.clone(), e))?;
    let mut resp = String::new();
    BufReader::new(&s)
        .read_line(&mut resp)
        .map_err(|e| ClientError::Io(name.clone(), e))?;
    let resp: Response = serde_json::from_str(&resp).map_err(|e| {
        ClientError::Io(
            name,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    if resp.ok {
        Ok(resp.data)
    } else {
        Err(ClientError::Daemon(
            resp.error.unwrap_or_else(|| "unknown error".into()),
        ))
    }
}

/// Who owns `socket` (a user name from /etc/passwd, else the uid), for
/// the error a refused connection gets.
fn denied(socket: &Path) -> ClientError {
    use std::os::unix::fs::MetadataExt as _;
    let (uid, mode) = std::fs::metadata(socket)
        .map(|m| (m.uid(), m.mode() & 0o7777))
        .unwrap_or((u32::MAX, 0));
    let owner = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"));
    ClientError::Denied {
        path: socket.display().to_string(),
        owner,
        mode,
    }
}

/// Print a JSON-lines file; with `follow`, keep printing what is appended
/// (and carry on across rotation).
pub fn tail(path: &Path, follow: bool) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut pos = 0u64;
    loop {
        match std::fs::File::open(path) {
            Ok(mut f) => {
                let len = f.metadata()?.len();
                if len < pos {
                    pos = 0; // rotated
                }
                f.seek(SeekFrom::Start(pos))?;
                let mut buf = String::new();
                f.read_to_string(&mut buf)?;
                // Only whole lines; a partial one is printed next time.
                let end = buf.rfind('\n').map(|i| i + 1).unwrap_or(0);
                print!("{}", &buf[..end]);
                std::io::stdout().flush()?;
                pos += end as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {}
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
