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
    #[error("no edgeplane daemon is running at {0} (start one with `edgeplane run --config FILE`)")]
    NoDaemon(String),
    #[error("daemon API at {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Daemon(String),
}

pub fn call(socket: &Path, req: &Request) -> Result<serde_json::Value, ClientError> {
    let name = socket.display().to_string();
    let mut s = UnixStream::connect(socket).map_err(|_| ClientError::NoDaemon(name.clone()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut line = serde_json::to_vec(req).expect("serializable");
    line.push(b'\n');
    s.write_all(&line).map_err(|e| ClientError::Io(name.clone(), e))?;
    let mut resp = String::new();
    BufReader::new(&s).read_line(&mut resp).map_err(|e| ClientError::Io(name.clone(), e))?;
    let resp: Response = serde_json::from_str(&resp)
        .map_err(|e| ClientError::Io(name, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    if resp.ok {
        Ok(resp.data)
    } else {
        Err(ClientError::Daemon(resp.error.unwrap_or_else(|| "unknown error".into())))
    }
}
