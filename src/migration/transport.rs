//! The framed TCP transport every part of a migration speaks: one
//! request and its answer by ID within a deadline (`request`), and a
//! server that answers a retried ID with its first answer (`serve`).
//! Every frame, request and answer, is authenticated with the shared key
//! (`Auth`); what fails that, or comes after its deadline, changes
//! nothing and is counted.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use control::migration::{fresh, Body, Frame, FrameError, Replies, VERSION};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tracing::warn;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The shared key and what was refused for want of it.
#[derive(Default)]
pub struct Auth {
    key: Vec<u8>,
    /// Frames without a valid tag (forged, or another key).
    pub unauthenticated: AtomicU64,
    /// Authenticated requests after (or implausibly far before) their
    /// deadline: late, or a replay of an old one.
    pub expired: AtomicU64,
    /// Requests whose ID was answered before: a retry or a replay, given
    /// the first answer again and not carried out.
    pub answered_again: AtomicU64,
    /// Authenticated frames that were not frames of this version, and
    /// requests refused because too many were within their deadlines.
    pub malformed: AtomicU64,
    pub busy: AtomicU64,
}

impl Auth {
    pub fn new(key: &str) -> Arc<Self> {
        Arc::new(Self {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })
    }

    /// (name, count) rows for `edgeplane stats`.
    pub fn counters(&self) -> [(&'static str, u64); 5] {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("frames_unauthenticated", n(&self.unauthenticated)),
            ("requests_expired", n(&self.expired)),
            ("requests_answered_again", n(&self.answered_again)),
            ("frames_malformed", n(&self.malformed)),
            ("requests_refused_busy", n(&self.busy)),
        ]
    }

    fn refused(&self, e: &FrameError) {
        let c = match e {
            FrameError::BadTag => &self.unauthenticated,
            _ => &self.malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn frame(&self, id: u64, body: Body) -> Vec<u8> {
        Frame {
            v: VERSION,
            id,
            deadline_ms: 0,
            body,
        }
        .encode(&self.key)
    }
}

/// Send one request and wait for its answer until its deadline.
pub async fn request(auth: &Auth, addr: &str, frame: &Frame) -> Result<Body, String> {
    let left = Duration::from_millis(frame.deadline_ms.saturating_sub(now_ms()).max(1));
    let work = async {
        let mut c = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        c.write_all(&frame.encode(&auth.key))
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match Frame::take(&mut buf, &auth.key) {
                Ok(Some(f)) => {
                    if f.id == frame.id {
                        return Ok(f.body);
                    }
                    // ID 0: the peer could not read our frame at all.
                    if let (0, Body::Error { reason }) = (f.id, &f.body) {
                        return Err(format!("{addr} refused the request: {reason}"));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    auth.refused(&e);
                    return Err(format!("{addr}: answer refused: {e}"));
                }
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
/// request ID gets the first answer again. A frame without a valid tag is
/// answered (ID 0, under our key, saying only that) and its connection
/// closed; a request outside its deadline is refused.
pub(super) async fn serve<H, F>(listener: TcpListener, auth: Arc<Auth>, handle: H)
where
    H: Fn(Frame) -> F + Send + Sync + Clone + 'static,
    F: std::future::Future<Output = Body> + Send,
{
    let replies = Arc::new(tokio::sync::Mutex::new(Replies::default()));
    loop {
        let Ok((mut c, peer)) = listener.accept().await else {
            continue;
        };
        let (handle, replies, auth) = (handle.clone(), replies.clone(), auth.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                match Frame::take(&mut buf, &auth.key) {
                    Ok(Some(f)) => {
                        let id = f.id;
                        let body = answer(&auth, &replies, f, &handle).await;
                        if c.write_all(&auth.frame(id, body)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        auth.refused(&e);
                        warn!(%peer, "migration frame refused: {e}");
                        let reason = e.to_string();
                        let _ = c.write_all(&auth.frame(0, Body::Error { reason })).await;
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

/// The answer to an authenticated request: the first one again for an ID
/// answered before, a refusal outside the deadline or when too many are
/// kept, else what `handle` says (kept until the deadline).
async fn answer<H, F>(
    auth: &Auth,
    replies: &tokio::sync::Mutex<Replies>,
    f: Frame,
    handle: &H,
) -> Body
where
    H: Fn(Frame) -> F,
    F: std::future::Future<Output = Body>,
{
    let (id, deadline) = (f.id, f.deadline_ms);
    {
        let mut r = replies.lock().await;
        let room = r.room(now_ms());
        if let Some(b) = r.get(id) {
            auth.answered_again.fetch_add(1, Ordering::Relaxed);
            return b.clone();
        }
        if let Err(reason) = fresh(deadline, now_ms()) {
            auth.expired.fetch_add(1, Ordering::Relaxed);
            return Body::Error {
                reason: reason.into(),
            };
        }
        if !room {
            auth.busy.fetch_add(1, Ordering::Relaxed);
            return Body::Error {
                reason: format!(
                    "too many requests within their deadlines ({}); try again later",
                    Replies::KEEP
                ),
            };
        }
        if !r.begin(id) {
            auth.answered_again.fetch_add(1, Ordering::Relaxed);
            return Body::Error {
                reason: "a request with this ID is being carried out".into(),
            };
        }
    }
    let b = handle(f).await;
    replies.lock().await.put(id, deadline, b.clone());
    b
}

pub fn addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}
