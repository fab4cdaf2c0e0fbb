//! The monitor's way to the presence server: a connected UDP socket, or
//! one TCP connection (RFC 3261 §18.1) opened when a request is to be
//! sent and opened again after it breaks, with TLS on it if configured
//! (RFC 3261 §26, the server's certificate verified). Either way the
//! answers come in on one channel, whole messages.

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use control::sip_monitor::config::{MonitorTls, PresenceTransport};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    sync::mpsc,
};
use tokio_rustls::rustls::{pki_types::ServerName, ClientConfig};

type Writer = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = Box<dyn AsyncRead + Send + Unpin>;
use tracing::{info, warn};

pub struct Link {
    server: SocketAddr,
    kind: PresenceTransport,
    udp: Option<Arc<UdpSocket>>,
    tcp: Option<Writer>,
    /// With TLS: the client config and the name the server's certificate
    /// must carry.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// TLS handshakes that failed (a server whose certificate does not
    /// verify, or that refused ours).
    pub tls_failed: u64,
    /// Set by the current connection's reader when the server closed it
    /// (one flag per connection: an old reader cannot close a new one).
    closed: Arc<AtomicBool>,
    /// TCP connections opened so far.
    pub opened: u64,
    answers_tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Answers from the server, one message each.
    pub answers: mpsc::UnboundedReceiver<Vec<u8>>,
    /// Our address as the server sees the requests come from (the Via).
    pub local: String,
}

impl Link {
    pub async fn open(
        server: SocketAddr,
        kind: PresenceTransport,
        tls: Option<&MonitorTls>,
    ) -> anyhow::Result<Self> {
        let tls = match (kind, tls) {
            (PresenceTransport::Tls, Some(t)) => {
                use anyhow::Context as _;
                let identity = t.cert.as_deref().zip(t.key.as_deref());
                let cfg =
                    crate::tls::client(&t.ca, identity).context("sip_monitor.presence_tls")?;
                let name = match &t.server_name {
                    Some(n) => ServerName::try_from(n.clone())
                        .context("sip_monitor.presence_tls.server_name")?,
                    None => ServerName::IpAddress(server.ip().into()),
                };
                Some((cfg, name))
            }
            (PresenceTransport::Tls, None) => {
                anyhow::bail!(
                    "sip_monitor.presence_tls.ca: required with presence_transport = \"tls\""
                )
            }
            _ => None,
        };
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let mut link = Self {
            server,
            kind,
            udp: None,
            tcp: None,
            tls,
            tls_failed: 0,
            closed: Arc::new(AtomicBool::new(false)),
            opened: 0,
            answers_tx,
            answers,
            local: super::unspecified(server).to_string(),
        };
        if kind == PresenceTransport::Udp {
            let sock = UdpSocket::bind(super::unspecified(server)).await?;
            sock.connect(server).await?;
            link.local = sock.local_addr()?.to_string();
            let sock = Arc::new(sock);
            let (rx, tx) = (sock.clone(), link.answers_tx.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = rx.recv(&mut buf).await {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            });
            link.udp = Some(sock);
        }
        Ok(link)
    }

    /// "UDP", "TCP" or "TLS", as a Via names it.
    pub fn transport(&self) -> &'static str {
        match self.kind {
            PresenceTransport::Udp => "UDP",
            PresenceTransport::Tcp => "TCP",
            PresenceTransport::Tls => "TLS",
        }
    }

    /// A reliable transport: requests are not retransmitted (RFC 3261
    /// §17.1.2.2), only timed out.
    pub fn reliable(&self) -> bool {
        self.kind != PresenceTransport::Udp
    }

    /// The TCP connection is gone (closed by the server, or its process
    /// died): what was sent on it and not answered never will be.
    pub fn broken(&self) -> bool {
        self.tcp.is_some() && self.closed.load(Ordering::SeqCst)
    }

    /// Make sure a request can be sent: over TCP, connect if there is no
    /// connection (`local` is then its address). An error leaves the link
    /// closed; the next request tries again.
    pub async fn ready(&mut self) -> io::Result<()> {
        if self.closed.swap(false, Ordering::SeqCst) {
            self.tcp = None;
        }
        if self.kind == PresenceTransport::Udp || self.tcp.is_some() {
            return Ok(());
        }
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            TcpStream::connect(self.server),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting"))??;
        conn.set_nodelay(true)?;
        self.local = conn.local_addr()?.to_string();
        let (mut rd, wr): (Reader, Writer) = match &self.tls {
            None => {
                let (r, w) = conn.into_split();
                (Box::new(r), Box::new(w))
            }
            Some((cfg, name)) => {
                let shake =
                    tokio_rustls::TlsConnector::from(cfg.clone()).connect(name.clone(), conn);
                let s = match tokio::time::timeout(std::time::Duration::from_secs(2), shake).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        self.tls_failed += 1;
                        return Err(io::Error::other(format!("TLS handshake: {e}")));
                    }
                    Err(_) => {
                        self.tls_failed += 1;
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"));
                    }
                };
                let (r, w) = tokio::io::split(s);
                (Box::new(r), Box::new(w))
            }
        };
        let tx = self.answers_tx.clone();
        let server = self.server;
        self.closed = Arc::new(AtomicBool::new(false));
        self.opened += 1;
        let closed = self.closed.clone();
        tokio::spawn(async move {
            let mut stream = Vec::new();
            let mut buf = vec![0u8; 16384];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                stream.extend_from_slice(&buf[..n]);
                loop {
                    match control::sip_monitor::stream::next_message(&mut stream) {
                        Ok(Some((_, msg))) => {
                            if tx.send(msg).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            warn!(%server, error = %e, "presence server sent what is not SIP; closing");
                            closed.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            }
            closed.store(true, Ordering::SeqCst);
            info!(%server, "presence connection closed");
        });
        self.tcp = Some(wr);
        info!(server = %self.server, local = %self.local, "presence connection open");
        Ok(())
    }

    pub async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match (&self.udp, &mut self.tcp) {
            (Some(sock), _) => sock.send(msg).await.map(|_| ()),
            (None, Some(conn)) => {
                let r = match conn.write_all(msg).await {
                    Ok(()) => conn.flush().await,
                    e => e,
                };
                if r.is_err() {
                    self.tcp = None; // reopened for the next request
                }
                r
            }
            (None, None) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no connection to the presence server",
            )),
        }
    }
}
