//! The framed TCP transport every part of a migration speaks: one
//! request and its answer by ID within a deadline (`request`), and a
//! server that answers a retried ID with its first answer (`serve`).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use control::migration::{Body, Frame, Replies, VERSION};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Send one request and wait for its answer until its deadline.
pub async fn request(addr: &str, frame: &Frame) -> Result<Body, String> {
    let left = Duration::from_millis(frame.deadline_ms.saturating_sub(now_ms()).max(1));
    let work = async {
        let mut c = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        c.write_all(&frame.encode())
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(f) = Frame::take(&mut buf).map_err(|e| e.to_string())? {
                if f.id == frame.id {
                    return Ok(f.body);
                }
                // ID 0: the peer could not read our frame at all.
                if let (0, Body::Error { reason }) = (f.id, &f.body) {
                    return Err(format!("{addr} refused the request: {reason}"));
                }
                continue;
            }
            let n = c
                .read(&mut chunk)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            if n == 0 {
                return Err(format!("{addr} closed the connection"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("{addr}: deadline exceeded")),
    }
}

/// Serve frames on `listener`, answering each with `handle`; a retried
/// request ID gets the first answer again.
pub(super) async fn serve<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(Frame) -> F + Send + Sync + Clone + 'static,
    F: std::future::Future<Output = Body> + Send,
{
    let replies = Arc::new(tokio::sync::Mutex::new(Replies::default()));
    loop {
        let Ok((mut c, _)) = listener.accept().await else {
            continue;
        };
        let (handle, replies) = (handle.clone(), replies.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                match Frame::take(&mut buf) {
                    Ok(Some(f)) => {
                        let id = f.id;
                        let cached = replies.lock().await.get(id).cloned();
                        let body = match cached {
                            Some(b) => b,
                            None if f.deadline_ms < now_ms() => Body::Error {
                                reason: "deadline passed before handling".into(),
                            },
                            None => {
                                let b = handle(f).await;
                                replies.lock().await.put(id, b.clone());
                                b
                            }
                        };
                        let out = Frame {
                            v: VERSION,
                            id,
                            deadline_ms: 0,
                            body,
                        };
                        if c.write_all(&out.encode()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = c
                            .write_all(
                                &Frame {
                                    v: VERSION,
                                    id: 0,
                                    deadline_ms: 0,
                                    body: Body::Error {
                                        reason: e.to_string(),
                                    },
                                }
                                .encode(),
                            )
                            .await;
                        return;
                    }
                }
                match c.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
}

pub fn addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}
