//! The station's connection to its gateway: one mutual-TLS connection,
//! kept open and reused for every request (HTTP/1.1 keep-alive), opened
//! again when it broke or idled too long.
//!
//! A new connection costs a TLS 1.3 handshake with certificate checks and
//! signatures on both sides, many times the work of a request; reusing one
//! removes that cost from every request but the first. A reconnection
//! offers the TLS 1.3 session the gateway issued on the previous one
//! (rustls' client session cache, shared by every connection of the
//! station), so it skips the certificate exchange; the gateway still checks
//! the certificate of a resumed session at its identity step, as of now.
//! A request that fails on a kept connection is sent once more on a new
//! one: every request a station makes is idempotent (a submission is the
//! same signed item, an acknowledgement acknowledges again), so a request
//! that raced the gateway's idle close is never lost nor doubled. This
//! module never reads what it carries.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Answer, ClientError};

/// Longest a kept connection may idle before the station opens a new one
/// rather than race the gateway's idle close (`idle_timeout_seconds`, 20 s
/// by default).
pub const KEEP_IDLE: Duration = Duration::from_secs(15);

/// How many connections a station opened, and how many of them resumed a
/// TLS session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Connections opened (each one TLS handshake).
    pub opened: u64,
    /// Of these, handshakes that resumed an earlier session.
    pub resumed: u64,
}

struct Kept {
    sender: SendRequest<Full<Bytes>>,
    last_used: Instant,
}

/// One kept connection to the gateway, shared by the station's requests.
pub(crate) struct Link {
    tls: TlsConnector,
    address: String,
    server_name: ServerName<'static>,
    // A request takes the connection out and puts it back when its answer
    // is read; a request made meanwhile opens its own, and the one put
    // back last is dropped.
    kept: Mutex<Option<Kept>>,
    // Off only to measure what kept connections save (`passerelle bench
    // --fresh-connections`).
    keep: bool,
    opened: AtomicU64,
    resumed: AtomicU64,
}

fn net(e: &dyn std::fmt::Display) -> ClientError {
    ClientError::Network(e.to_string())
}

impl Link {
    pub(crate) fn new(
        tls: Arc<rustls::ClientConfig>,
        address: String,
        server_name: &str,
    ) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| ClientError::Protocol(format!("bad server_name: {e}")))?;
        Ok(Link {
            tls: TlsConnector::from(tls),
            address,
            server_name,
            kept: Mutex::new(None),
            keep: true,
            opened: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        })
    }

    /// A new connection for every request, as before connections were
    /// kept.
    pub(crate) fn never_keep(&mut self) {
        self.keep = false;
    }

    pub(crate) fn connections(&self) -> Connections {
        Connections {
            opened: self.opened.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
        }
    }

    /// Sends the request `build` makes and reads its answer, on the kept
    /// connection if there is a usable one, else (or if it fails) on a new
    /// one, which is then kept.
    pub(crate) async fn exchange(
        &self,
        build: impl Fn() -> Result<Request<Full<Bytes>>, ClientError>,
    ) -> Result<Answer, ClientError> {
        if let Some(mut kept) = self.take() {
            match send_on(&mut kept.sender, build()?).await {
                Ok(answer) => {
                    self.put_back(kept.sender);
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the kept connection failed; sending on a new one")
                }
            }
        }
        let mut sender = self.connect().await?;
        let answer = send_on(&mut sender, build()?).await?;
        self.put_back(sender);
        Ok(answer)
    }

    fn take(&self) -> Option<Kept> {
        let kept = lock(&self.kept).take()?;
        (kept.last_used.elapsed() < KEEP_IDLE && !kept.sender.is_closed()).then_some(kept)
    }

    fn put_back(&self, sender: SendRequest<Full<Bytes>>) {
        // Closed when the gateway answered `Connection: close`.
        if !self.keep || sender.is_closed() {
            return;
        }
        let mut kept = lock(&self.kept);
        if kept.is_none() {
            *kept = Some(Kept {
                sender,
                last_used: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let tcp = TcpStream::connect(&self.address)
            .await
            .map_err(|e| net(&e))?;
        // Small request/response exchanges: without this, Nagle's
        // algorithm and delayed ACKs add tens of milliseconds.
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| net(&e))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| net(&e))?;
        // Ends by itself once the sender is dropped or the gateway closes.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection to the gateway ended");
            }
        });
        Ok(sender)
    }
}

/// One request and its whole answer on `sender`.
async fn send_on(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, ClientError> {
    sender.ready().await.map_err(|e| net(&e))?;
    let resp = sender.send_request(request).await.map_err(|e| net(&e))?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| net(&e))?
        .to_bytes()
        .to_vec();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock leaves only an Option behind, which
    // is valid in any state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
