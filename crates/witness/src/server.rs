//! The witness's HTTP service: `POST /add-checkpoint` and the monitoring
//! `GET /<origin hash>/checkpoint` of C2SP `tlog-witness`, over plain HTTP
//! or TLS 1.3 (rustls with the ring provider) when the configuration names
//! a certificate and key.
//!
//! This module owns the accept loop, the request limits (body size, header
//! time, connections) and turning the core's decision into answers with
//! the spec's status codes and a reason in the body. The check against the
//! last cosigned state, the durable write of the new state and the
//! cosignature happen under one lock, so two requests cannot interleave
//! (the race the spec warns of), and the answer leaves only after the write
//! is on disk. It never cosigns a checkpoint the core refused and never
//! answers 200 before the state is persisted.

use super::config::{self, ConfigError, WitnessConfig};
use super::state::{StateDir, StateError};
use crate::audit::cosignature::{CosignatureVerifier, CosignerKey};
use crate::audit::signed_note::{self, VerifierKey};
use crate::audit::witness::{self, AddCheckpoint, Refusal, TLOG_SIZE_CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Largest request body: a checkpoint note and 63 proof lines fit many
/// times over.
const MAX_BODY: usize = 64 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// Time allowed for a TLS handshake and for a request's headers.
const SLOW_CLIENT: Duration = Duration::from_secs(10);

/// Why the witness could not start: the operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration or key is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state directory is unreadable or damaged.
    #[error(transparent)]
    State(#[from] StateError),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why an `add-checkpoint` was not cosigned.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The core refused it, with the spec's status.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The new state could not be persisted, so nothing was cosigned.
    #[error("the witness could not record the checkpoint durably, so it did not cosign it: {0}")]
    State(#[from] StateError),
}

/// The witness: its key, the logs it witnesses and its state.
pub struct Witness {
    key: CosignerKey,
    logs: BTreeMap<String, Vec<VerifierKey>>,
    state: Mutex<StateDir>,
}

impl Witness {
    /// A witness from its parts; the state directory is opened and checked.
    pub fn new(
        key: CosignerKey,
        logs: BTreeMap<String, Vec<VerifierKey>>,
        state_dir: &std::path::Path,
    ) -> Result<Self, StateError> {
        let state = StateDir::open(state_dir, key.verifier())?;
        Ok(Self {
            key,
            logs,
            state: Mutex::new(state),
        })
    }

    /// The witness's public key.
    pub fn verifier(&self) -> &CosignatureVerifier {
        self.key.verifier()
    }

    /// Decides an `add-checkpoint` body at time `now` (POSIX seconds):
    /// the cosignature line to answer, or why not. The new state is on
    /// disk when this returns `Ok`.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, AddError> {
        let request = AddCheckpoint::parse(body)?;
        // A poisoned lock means a panic mid-request; the state on disk is
        // still whole (atomic rename), and the map is only updated after it.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let checkpoint = witness::decide(
            &request,
            |origin| self.logs.get(origin).cloned(),
            |origin| state.get(origin),
        )?;
        // decide opened the note, so it parses; the text is the one signed.
        let parsed =
            signed_note::parse(request.note).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let line = self
            .key
            .cosign(parsed.text, now)
            .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        // Keep the log's signatures (verified by decide) and ours.
        let keys = self
            .logs
            .get(&checkpoint.origin)
            .cloned()
            .unwrap_or_default();
        let mut stored = format!("{}\n", parsed.text);
        for sig in &parsed.signatures {
            if keys
                .iter()
                .any(|k| k.name() == sig.name && k.key_id() == sig.key_id)
            {
                stored.push_str(&format!("{sig}\n"));
            }
        }
        stored.push_str(&line);
        state.put(&checkpoint, stored)?;
        tracing::info!(
            origin = %checkpoint.origin,
            size = checkpoint.size,
            "cosigned"
        );
        Ok(line)
    }

    /// The last checkpoint cosigned for the log whose origin hashes to
    /// `hash`.
    pub fn checkpoint_by_hash(&self, hash: &str) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.note_by_hash(hash).map(str::to_string)
    }
}

/// A witness that is serving.
pub struct Running {
    /// The address it listens on (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The witness's public key.
    pub verifier: CosignatureVerifier,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn tls_acceptor(files: &config::TlsFiles) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let err = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("{}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| err(&files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(err(&files.cert, &"no certificate"));
    }
    config::refuse_open(&files.key)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| err(&files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Loads the key, opens the state, binds and serves until shut down.
pub async fn start(config: &WitnessConfig) -> Result<Running, StartError> {
    let key = config::load_key(&config.key)?;
    let witness = Arc::new(Witness::new(key, config.logs.clone(), &config.state)?);
    let acceptor = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let tls = acceptor.is_some();
    let verifier = witness.verifier().clone();
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (tcp, peer) = tokio::select! {
                _ = stop.changed() => break,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                },
            };
            let witness = witness.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match acceptor {
                    Some(acceptor) => {
                        match tokio::time::timeout(SLOW_CLIENT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), witness).await,
                            Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    }
                    None => serve_connection(TokioIo::new(tcp), witness).await,
                }
            });
        }
    });
    Ok(Running {
        addr,
        tls,
        verifier,
        shutdown,
        task,
    })
}

async fn serve_connection<I>(io: I, witness: Arc<Witness>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let witness = witness.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, witness).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(SLOW_CLIENT)
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended");
    }
}

fn answer(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

fn text(status: u16, body: String) -> Response<Full<Bytes>> {
    answer(status, "text/plain; charset=utf-8", body)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn handle(req: Request<Incoming>, witness: Arc<Witness>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == witness::ADD_CHECKPOINT_PATH {
        if req.method() != Method::POST {
            return text(405, "add-checkpoint takes a POST\n".into());
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return text(
                    413,
                    format!("the body is larger than {MAX_BODY} bytes or was cut\n"),
                )
            }
        };
        let now = unix_now();
        // The check, the fsync and the signature are blocking work.
        let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
        return match result {
            Ok(Ok(line)) => answer(200, "text/plain; charset=utf-8", line),
            Ok(Err(AddError::Refused(refusal))) => {
                match &refusal {
                    Refusal::Conflict { .. } | Refusal::Inconsistent { .. } => {
                        tracing::warn!(reason = %refusal, "refused a validly signed checkpoint: the log may have rolled back or forked")
                    }
                    _ => tracing::info!(reason = %refusal, "refused"),
                }
                let content_type = if refusal.status() == 409 {
                    TLOG_SIZE_CONTENT_TYPE
                } else {
                    "text/plain; charset=utf-8"
                };
                answer(refusal.status(), content_type, refusal.body())
            }
            Ok(Err(e @ AddError::State(_))) => {
                tracing::error!(error = %e, "state write failed");
                text(500, format!("{e}\n"))
            }
            Err(_) => text(
                500,
                "the witness failed while deciding; nothing was cosigned\n".into(),
            ),
        };
    }
    // GET /<origin hash>/checkpoint: the last cosigned checkpoint.
    if let Some(hash) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/checkpoint"))
    {
        if req.method() != Method::GET {
            return text(405, "the checkpoint is read with GET\n".into());
        }
        return match witness.checkpoint_by_hash(hash) {
            Some(note) => text(200, note),
            None => text(
                404,
                "this witness never cosigned a checkpoint of that log\n".into(),
            ),
        };
    }
    text(404, "unknown path: this witness serves POST /add-checkpoint and GET /<origin hash>/checkpoint\n".into())
}
