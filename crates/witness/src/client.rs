//! The log's side of `add-checkpoint`: send a checkpoint to a witness and
//! get back the note with the witness's cosignature added.
//!
//! This module owns one request to one witness over HTTP or HTTPS (TLS 1.3,
//! rustls with the ring provider, the caller's trust roots), bounded in
//! time and size, and the reading of its answer: a cosignature that
//! verifies with the witness's key is attached to the note; a `409` gives
//! back the size the witness knows so the caller can send the right proof.
//! It never retries, never remembers anything and never decides what to do
//! about a refusal: the gateway does (log, metric, audit entry).

use crate::audit::cosignature::{self, CosignatureError, CosignatureVerifier};
use crate::audit::rfc9162::Hash;
use crate::audit::witness::{self, AddCheckpoint};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Uri;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer read: a few cosignature lines, or a reason.
const MAX_ANSWER: usize = 16 * 1024;

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The witness's URL is not `http://host:port[/prefix]` or `https://…`.
    #[error("invalid witness URL {0:?}")]
    Url(String),
    /// The witness could not be reached or did not answer in time.
    #[error("witness {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The witness knows another size for the log than the `old` size
    /// sent: send again from that size, with the proof from it. If that
    /// size is above the log's, the log was rolled back or wiped.
    #[error("witness {url} last cosigned size {known_size}")]
    Conflict {
        /// The URL.
        url: String,
        /// The size the witness last cosigned.
        known_size: u64,
    },
    /// The witness refused, with its status and reason (403 bad signature,
    /// 404 unknown log, 422 inconsistent: a fork or a bad proof, …).
    #[error("witness {url} refused ({status}): {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The witness's reason, as it wrote it.
        reason: String,
    },
    /// The witness answered 200 without a valid cosignature by its key.
    #[error("witness {url}: {source}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// What is wrong.
        source: CosignatureError,
    },
}

/// A witness as a log reaches it.
#[derive(Clone)]
pub struct WitnessClient {
    url: String,
    uri: Uri,
    verifier: CosignatureVerifier,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl WitnessClient {
    /// A witness at `url` (its submission prefix, `http://` or `https://`)
    /// whose key is `verifier`. `tls` is required for `https://` (the roots
    /// the witness's certificate chains to); `timeout` bounds the whole
    /// exchange.
    pub fn new(
        url: &str,
        verifier: CosignatureVerifier,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let prefix = url.trim_end_matches('/');
        let uri: Uri = format!("{prefix}{}", witness::ADD_CHECKPOINT_PATH)
            .parse()
            .map_err(|_| ClientError::Url(url.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(ClientError::Url(url.to_string())),
        };
        if uri.host().is_none() || https != tls.is_some() {
            return Err(ClientError::Url(url.to_string()));
        }
        Ok(Self {
            url: url.to_string(),
            uri,
            verifier,
            tls,
            timeout,
        })
    }

    /// The witness's key.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// Sends `note` (a checkpoint signed by the log) with the consistency
    /// proof from `old_size`, the size this witness last cosigned (0 the
    /// first time), and returns `note` with the witness's cosignature
    /// added.
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &str,
    ) -> Result<String, ClientError> {
        let body = AddCheckpoint::body(old_size, proof, note);
        let (status, answer) = tokio::time::timeout(self.timeout, self.post(body))
            .await
            .map_err(|_| self.unreachable("no answer in time".to_string()))??;
        match status {
            200 => {
                cosignature::attach_cosignatures(note, &answer, &self.verifier).map_err(|source| {
                    ClientError::BadAnswer {
                        url: self.url.clone(),
                        source,
                    }
                })
            }
            409 => match witness::parse_size_body(&answer) {
                Some(known_size) => Err(ClientError::Conflict {
                    url: self.url.clone(),
                    known_size,
                }),
                None => Err(self.refused(status, answer)),
            },
            _ => Err(self.refused(status, answer)),
        }
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable {
            url: self.url.clone(),
            reason,
        }
    }

    fn refused(&self, status: u16, answer: String) -> ClientError {
        ClientError::Refused {
            url: self.url.clone(),
            status,
            reason: answer.trim_end().chars().take(500).collect(),
        }
    }

    async fn post(&self, body: String) -> Result<(u16, String), ClientError> {
        let host = self.uri.host().unwrap_or_default().to_string();
        let port = self
            .uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let request = hyper::Request::post(self.uri.path())
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.unreachable(e.to_string()))?;
        match &self.tls {
            Some(config) => {
                let name = rustls_pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|_| ClientError::Url(self.url.clone()))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.unreachable(format!("TLS: {e}")))?;
                self.exchange(tls, request).await
            }
            None => self.exchange(tcp, request).await,
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, String), ClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        tokio::spawn(conn);
        let response = send
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}
