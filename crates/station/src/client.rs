//! The station side: a small HTTP client over mutual TLS, on one
//! connection kept open ([`link`]).
//!
//! Stations abroad sit on poor links, so [`Station::submit`] retries after
//! network failures with growing pauses: resubmitting the same signed item
//! is idempotent at the gateway, so a retry can never duplicate an item,
//! and the station keeps the signed bytes until it holds a receipt.
//! [`Station::open`] checks what a recipient must check before showing an
//! item: that the sender's certificate was issued by the CA of the sender's
//! own agency for that principal, and that the sender's signature covers
//! every delivered portion. This module never decides and never stores.

use bytes::Bytes as HttpBytes;
use http_body_util::Full;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use rustls::pki_types::UnixTime;
use serde::de::DeserializeOwned;
use std::time::Duration;

use crate::audit::receipts::{check_attestation, check_receipt};
use crate::audit::signed_note::VerifierKey;
use crate::domain::attestation::Attestation;
use crate::domain::bytes::{from_cbor, to_cbor};
use crate::domain::cose::SigningKey;
use crate::domain::item::{DeliveredItem, ItemError, Manifest, SignedItem};
use crate::domain::receipt::{item_ref, SignedReceipt};
use crate::domain::wire::{Acknowledged, Inbox, InboxEntry, Overdue, Problem, CBOR};
use crate::station_config::ClientConfig;
use crate::tls::{self, Identities, TlsError};

mod batch;
pub mod finality;
mod link;
use link::Link;
pub use link::{Connections, KEEP_IDLE};

/// Why a station request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The station's files are missing or invalid.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The station's key cannot sign items.
    #[error("the station key cannot sign items: {0}")]
    Key(String),
    /// The gateway could not be reached or the connection broke.
    #[error("network: {0}")]
    Network(String),
    /// The gateway refused the request.
    #[error("{} ({}): {}", .0.title, .0.slug(), .0.detail)]
    Refused(Problem),
    /// The gateway answered something this client does not understand.
    #[error("unexpected answer from the gateway: {0}")]
    Protocol(String),
    /// The outbox could not be written or read.
    #[error("outbox: {0}")]
    Outbox(String),
    /// A delivered item did not verify; it must not be shown.
    #[error("the item does not verify and is not shown: {0}")]
    Unverified(String),
}

impl ClientError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network(_) => true,
            // 429: over a rate or budget of the gateway; it frees with time.
            // A lost item stays lost: asking again does not bring it back.
            ClientError::Refused(p) => {
                (p.status >= 500 && p.slug() != "item-lost") || p.status == 429
            }
            _ => false,
        }
    }
}

/// A raw answer from the gateway.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Content type.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

/// A delivered item that passed [`Station::open`].
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The sender's signed manifest.
    pub manifest: Manifest,
    /// What the gateway attested for this delivery.
    pub attestation: Attestation,
}

/// A station connected to the gateway by its `client.toml`.
pub struct Station {
    config: ClientConfig,
    gateway_key: VerifierKey,
    link: Link,
    key: SigningKey,
    identities: Identities,
    /// Longest single request, beyond a long-poll's own wait.
    pub timeout: Duration,
}

impl Station {
    /// Loads the station's certificate, key and CAs.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let tls = tls::client_config(&config.cert, &config.key, &config.ca)?;
        let key_der = tls::load_key(&config.key)?;
        let key = SigningKey::from_pkcs8(key_der.secret_der())
            .map_err(|e| ClientError::Key(e.to_string()))?;
        let identities = Identities::new(&config.agencies)?;
        let gateway_key: VerifierKey = config
            .gateway_key
            .parse()
            .map_err(|e| ClientError::Key(format!("gateway_key: {e}")))?;
        let link = Link::new(tls, config.gateway.clone(), &config.server_name)?;
        Ok(Station {
            config,
            gateway_key,
            link,
            key,
            identities,
            timeout: Duration::from_secs(30),
        })
    }

    /// The station's config.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The station's signing key (the key of its certificate).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Sends one request on the station's kept connection (a new one if
    /// it has none or it broke).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extra_wait: Duration,
    ) -> Result<Answer, ClientError> {
        let body = body.map(HttpBytes::from);
        let build = || {
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(HOST, self.config.server_name.as_str())
                .header(ACCEPT, CBOR);
            if body.is_some() {
                req = req.header(CONTENT_TYPE, CBOR);
            }
            req.body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| ClientError::Protocol(e.to_string()))
        };
        tokio::time::timeout(self.timeout + extra_wait, self.link.exchange(build))
            .await
            .map_err(|_| ClientError::Network("the gateway did not answer in time".into()))?
    }

    /// Opens a new connection for every request instead of keeping one
    /// (for measurements only: it costs a handshake per request).
    pub fn with_fresh_connections(mut self) -> Self {
        self.link.never_keep();
        self
    }

    /// How many connections this station opened so far, and how many of
    /// them resumed a TLS session.
    pub fn connections(&self) -> Connections {
        self.link.connections()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extra_wait: Duration,
    ) -> Result<(StatusCode, T), ClientError> {
        let answer = self.request(method, path, body, extra_wait).await?;
        if !answer.status.is_success() {
            let problem: Problem = serde_json::from_slice(&answer.body).map_err(|_| {
                ClientError::Protocol(format!(
                    "status {} without a problem document",
                    answer.status
                ))
            })?;
            return Err(ClientError::Refused(problem));
        }
        let value = from_cbor(&answer.body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok((answer.status, value))
    }

    /// The gateway's verifier key, from `client.toml`.
    pub fn gateway_key(&self) -> &VerifierKey {
        &self.gateway_key
    }

    /// Checks a receipt's signature (and proof, when present).
    pub fn check_receipt(&self, signed: SignedReceipt) -> Result<SignedReceipt, ClientError> {
        check_receipt(&signed, &self.gateway_key)
            .map_err(|e| ClientError::Unverified(format!("receipt: {e}")))?;
        Ok(signed)
    }

    /// Submits a signed item, retrying after network failures, and checks
    /// the gateway's signature on the receipt.
    pub async fn submit(&self, item: &SignedItem) -> Result<SignedReceipt, ClientError> {
        let body = to_cbor(item);
        let mut pause = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let answer = self
                .call::<SignedReceipt>(
                    Method::POST,
                    "/v1/items",
                    Some(body.clone()),
                    Duration::ZERO,
                )
                .await;
            match answer {
                Ok((_, receipt)) => return self.check_receipt(receipt),
                Err(e) if e.is_transient() && attempt < self.config.retries => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "submit failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps a signed item in the outbox (written and fsynced) before it is
    /// sent; returns the file.
    pub fn keep_in_outbox(&self, item: &SignedItem) -> Result<std::path::PathBuf, ClientError> {
        let io = |e: std::io::Error| {
            ClientError::Outbox(format!("{}: {e}", self.config.outbox.display()))
        };
        std::fs::create_dir_all(&self.config.outbox).map_err(io)?;
        let id = item
            .own_manifest()
            .map_err(|e| ClientError::Outbox(format!("the item's manifest cannot be read: {e}")))?
            .header
            .id;
        let path = self
            .config
            .outbox
            .join(format!("{}.cbor", item_ref(&self.config.principal, &id)));
        let tmp = path.with_extension("partial");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut file, &to_cbor(item)).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// Sends `item` through the outbox: kept first, removed once the gateway
    /// answered with a receipt (or refused it for good, which is reported).
    pub async fn send_durably(&self, item: &SignedItem) -> Result<SignedReceipt, ClientError> {
        let kept = self.keep_in_outbox(item)?;
        let outcome = self.submit(item).await;
        match &outcome {
            Err(e) if e.is_transient() => {}
            _ => {
                let _ = std::fs::remove_file(&kept);
            }
        }
        outcome
    }

    /// Sends again every item left in the outbox. Returns, per file, its
    /// receipt or why it is still there or was dropped.
    pub async fn flush_outbox(
        &self,
    ) -> Result<Vec<(std::path::PathBuf, Result<SignedReceipt, ClientError>)>, ClientError> {
        let io = |e: std::io::Error| {
            ClientError::Outbox(format!("{}: {e}", self.config.outbox.display()))
        };
        let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(&self.config.outbox) {
            Ok(dir) => dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(e)),
        };
        files.sort();
        let mut out = Vec::new();
        for path in files {
            let bytes = std::fs::read(&path).map_err(io)?;
            let outcome = match from_cbor::<SignedItem>(&bytes) {
                Ok(item) => self.submit(&item).await,
                Err(e) => Err(ClientError::Outbox(format!(
                    "{} is not a signed item: {e}",
                    path.display()
                ))),
            };
            if !matches!(&outcome, Err(e) if e.is_transient()) {
                let _ = std::fs::remove_file(&path);
            }
            out.push((path, outcome));
        }
        Ok(out)
    }

    /// Lists deliverable items, waiting up to `wait` for one.
    pub async fn inbox(&self, wait: Duration) -> Result<Vec<InboxEntry>, ClientError> {
        let path = format!("/v1/inbox?wait={}&limit=1000", wait.as_secs());
        let (_, inbox): (_, Inbox) = self.call(Method::GET, &path, None, wait).await?;
        Ok(inbox.items)
    }

    /// Requests without an answer that are past due, or due within
    /// `within`, that this station sent or received (all of them for an
    /// auditor), with the gateway's time.
    pub async fn overdue(&self, within: Duration) -> Result<Overdue, ClientError> {
        let path = format!("/v1/overdue?within={}", within.as_secs());
        let (_, overdue): (_, Overdue) =
            self.call(Method::GET, &path, None, Duration::ZERO).await?;
        Ok(overdue)
    }

    /// Fetches an item as released to this station (not yet verified).
    pub async fn fetch(&self, item_ref: &str) -> Result<DeliveredItem, ClientError> {
        Ok(self
            .call(
                Method::GET,
                &format!("/v1/items/{item_ref}"),
                None,
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// Acknowledges an item.
    pub async fn ack(&self, item_ref: &str) -> Result<Acknowledged, ClientError> {
        Ok(self
            .call(
                Method::POST,
                &format!("/v1/items/{item_ref}/ack"),
                None,
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// The receipt of one of this station's items, checked, with an
    /// inclusion proof once a checkpoint covers it.
    pub async fn receipt(&self, item_ref: &str) -> Result<SignedReceipt, ClientError> {
        let path = format!("/v1/receipts/{item_ref}");
        let signed = self.call(Method::GET, &path, None, Duration::ZERO).await?.1;
        self.check_receipt(signed)
    }

    /// Checks a delivered item before it is shown: the sender's certificate
    /// must come from the CA of the sender's agency and name the sender, the
    /// sender's signature must cover each delivered portion, and the
    /// gateway's attestation must be for this item, this station and exactly
    /// these portions.
    pub fn open(&self, item: &DeliveredItem) -> Result<Delivery, ClientError> {
        // The gateway's attestation first: it says when the item was
        // accepted, and the sender's certificate is checked as of then.
        let attestation = check_attestation(&item.attestation, &self.gateway_key)
            .map_err(|e| ClientError::Unverified(format!("gateway attestation: {e}")))?;
        let accepted = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(attestation.accepted_at).unwrap_or(0),
        ));
        let signer = self
            .identities
            .identify_at(&[item.sender_certificate.0.clone().into()], accepted)
            .map_err(|e| ClientError::Unverified(format!("sender certificate: {e}")))?;
        let (manifest, digest) = item
            .verify(signer.public_key())
            .map_err(|e: ItemError| ClientError::Unverified(e.to_string()))?;
        if manifest.header.sender != *signer.principal() {
            return Err(ClientError::Unverified(format!(
                "the item claims sender {} but was signed by {}",
                manifest.header.sender,
                signer.principal()
            )));
        }
        let delivered: Vec<u32> = item.portions.iter().map(|p| p.index).collect();
        if attestation.item_digest != hex::encode(digest)
            || attestation.recipient != self.config.principal
            || attestation.sender != manifest.header.sender
            || attestation.portions != delivered
        {
            return Err(ClientError::Unverified(
                "the gateway's attestation is for another item, recipient or set of portions"
                    .into(),
            ));
        }
        Ok(Delivery {
            manifest,
            attestation,
        })
    }
}
