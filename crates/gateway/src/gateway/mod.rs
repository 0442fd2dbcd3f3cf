//! The exchange: what happens to an item between the API and the store.
//!
//! [`Gateway`] takes a [`VerifiedPeer`] and a submitted item, checks that
//! the policy in force lets the caller send (before any expensive work),
//! checks the sender's signature with the key of the certificate the
//! connection presented, refuses an item whose declared sender is not the caller, asks
//! the decider for each recipient, and commits item, inbox entries and
//! receipt in one durable transaction before answering. At delivery it
//! decides again with the policy in force then, so a clearance withdrawn
//! after submission stops delivery. It reads the clock (it is an edge) but
//! knows nothing of HTTP or TLS beyond the [`VerifiedPeer`] it is handed;
//! it decides what is counted on the audit log, and names each refusal
//! ([`GatewayError::cause`]) for the API to answer with.
//!
//! Every event is written to the audit log in the same store transaction as
//! the event itself, and the gateway signs what it vouches for with its own
//! key: receipts, delivery attestations and checkpoints of the log.
//!
//! Authority comes from the policy: [`Gateway::authorise`] (asked by the
//! API on every request but `/healthz`) admits only its principals, and it
//! says who may send and who reads every audit proof.
//!
//! The gateway holds no policy of its own: every step that decides is
//! handed the decider of the configuration snapshot its request started
//! with ([`crate::snapshot`]), so a request keeps that snapshot to the end
//! and no request ever sees half a policy. Putting a new snapshot in force
//! is the server's; the gateway records it ([`Gateway::record_policy_loaded`]).
//!
//! One file per step: [`refusals`](self) (who may use the exchange, and
//! refusals counted for oversight), `submit`, `deliver`, `receipts`
//! (receipts and attestations, signed in one place) and `log` (checkpoints
//! and proofs, over [`crate::log_service`]: the Merkle tree, group commit
//! and the stop on a broken store invariant). This file holds the shared
//! state and the audit appends.

mod deliver;
mod log;
mod receipts;
mod refusals;
mod submit;
pub mod witnessing;

pub use deliver::{AckedRef, FetchedBatch};
pub use log::{sign_checkpoint, AuditLog};
pub use refusals::BodyRefused;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::checkpoint::Checkpoint;
use crate::audit::event::{AuditEvent, BoundedEntry, EntryTooLarge, RecordedDecision};
use crate::audit::refusals::RefusalTally;
use crate::domain::decision::{Decider, Decision};
use crate::domain::item::ItemError;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::SignedReceipt;
use crate::integrity::{HeadFile, LostItems};
use crate::keys::GatewayKey;
use crate::store::{Batch, Outcome, Store, StoreError};

/// Why the gateway refused a request. Each variant says whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The sender's item is malformed or its signature does not verify.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// The item declares a sender other than the authenticated caller.
    #[error("the item's declared sender {declared} is not the authenticated caller {caller}")]
    SenderMismatch {
        /// Sender in the header.
        declared: PrincipalId,
        /// Principal of the connection.
        caller: PrincipalId,
    },
    /// The authenticated caller is not a principal of the policy in force
    /// (its certificate is valid, but no one declared it).
    #[error("{0} is not a principal of the policy in force and may not send")]
    UnknownSender(PrincipalId),
    /// The caller's certificate is valid but the policy in force does not
    /// know it: it may use no endpoint but `/healthz`.
    #[error("{0} is not a principal of the policy in force")]
    UnknownPrincipal(PrincipalId),
    /// The policy does not let the caller submit items (an auditor, by
    /// default).
    #[error("the policy does not let {0} send items")]
    MayNotSend(PrincipalId),
    /// A recipient is not a known principal.
    #[error("unknown recipient {0}")]
    UnknownRecipient(PrincipalId),
    /// The sender reused an item id for different content.
    #[error("item id {0:?} was already submitted with different content")]
    Conflict(String),
    /// No such item for this caller.
    #[error("no such item for this caller")]
    NotFound,
    /// The item was accepted and concerns the caller, but its row vanished
    /// from the store (found at start and on the audit log): the
    /// operator's problem, never a plain not-found.
    #[error("item {0} was accepted but the gateway's store no longer holds it; the operator has been alerted")]
    ItemLost(String),
    /// Policy no longer allows delivery to this caller.
    #[error("delivery of this item to you is no longer permitted")]
    DeliveryRefused,
    /// A proof was asked for sizes or indices outside the log.
    #[error("{0}")]
    BadProofRequest(String),
    /// What the item's header and labels would write to the audit log is
    /// larger than an audit entry may be: the sender's fault.
    #[error("the item's header and labels are too large to record: {0}")]
    TooLargeToRecord(#[from] EntryTooLarge),
    /// A submitted body never became an item (its media type, size, pace
    /// or encoding): the sender's doing.
    #[error(transparent)]
    Body(#[from] BodyRefused),
    /// The store failed: the operator's problem, never the caller's.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store invariant broke earlier: the gateway stopped appending and
    /// refuses new work until the operator looks (the reason is logged).
    #[error("the gateway stopped accepting work after a broken store invariant")]
    Halted(String),
    /// A blocking task failed: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The refusal's stable name: the cause under which it is counted on
    /// the audit log (`submission:<cause>`), and the slug of the problem
    /// type the API answers with (`urn:passerelle:problem:<cause>`). These
    /// names are a format (docs/formats.md): they never change.
    pub fn cause(&self) -> &'static str {
        use crate::limits::BodyError;
        match self {
            GatewayError::Item(ItemError::Signature(_)) => "bad-signature",
            GatewayError::Item(ItemError::Cbor(_)) => "malformed-body",
            GatewayError::Item(_) | GatewayError::TooLargeToRecord(_) => "invalid-item",
            GatewayError::SenderMismatch { .. } => "sender-mismatch",
            GatewayError::UnknownSender(_) => "unknown-sender",
            GatewayError::UnknownPrincipal(_) => "unknown-principal",
            GatewayError::MayNotSend(_) => "may-not-send",
            GatewayError::UnknownRecipient(_) => "unknown-recipient",
            GatewayError::Conflict(_) => "id-conflict",
            GatewayError::NotFound => "not-found",
            GatewayError::ItemLost(_) => "item-lost",
            GatewayError::DeliveryRefused => "delivery-refused",
            GatewayError::BadProofRequest(_) => "bad-proof-request",
            GatewayError::Body(BodyRefused::MediaType) => "unsupported-media-type",
            GatewayError::Body(BodyRefused::Read(BodyError::TooLarge(_))) => "body-too-large",
            GatewayError::Body(BodyRefused::Read(BodyError::TooSlow(_))) => "body-too-slow",
            GatewayError::Body(BodyRefused::Read(_)) => "body-incomplete",
            GatewayError::Body(BodyRefused::Malformed(_)) => "malformed-body",
            GatewayError::Halted(_)
            | GatewayError::Store(StoreError::Invariant(_) | StoreError::Tampered(_)) => "halted",
            GatewayError::Store(_) | GatewayError::Internal(_) => "internal",
        }
    }
}

/// What [`Gateway::readiness`] found.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// The store took a write lock, or why not.
    pub store: Result<(), String>,
    /// The signing key signed a probe its verifier key opened, or why not.
    pub key: Result<(), String>,
    /// The digest of the policy in force.
    pub policy_digest: String,
}

impl Readiness {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.store.is_ok() && self.key.is_ok() && !self.policy_digest.is_empty()
    }
}

/// What a submission returns.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// Newly accepted.
    Accepted(SignedReceipt),
    /// Already accepted earlier with the same content.
    AlreadyAccepted(SignedReceipt),
}

/// Gateway tunables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a fetched item stays hidden from the inbox before it is
    /// offered again.
    pub lease: Duration,
    /// Longest long-poll.
    pub max_wait: Duration,
    /// How often a waiting long-poll looks at its inbox again.
    pub recheck: Duration,
}

/// The exchange logic, shared by all connections.
pub struct Gateway {
    /// The log service: every write goes through it.
    log: Arc<AuditLog>,
    /// The store under it, for reads.
    store: Arc<dyn Store>,
    settings: Settings,
    key: Arc<GatewayKey>,
    /// One wake-up per principal with a long-poll waiting, so that an
    /// arrival wakes only its recipients' long-polls. A principal is in the
    /// map only while one of its long-polls waits.
    arrivals: std::sync::Mutex<HashMap<PrincipalId, Arc<tokio::sync::Notify>>>,
    /// One lock per principal with a batched fetch under way, so that two
    /// batched fetches of one principal never lease the same item (see
    /// `deliver/batch.rs`).
    claims: std::sync::Mutex<HashMap<PrincipalId, Arc<tokio::sync::Mutex<()>>>>,
    /// Serialises checkpoint signing so two never race to store.
    checkpointing: tokio::sync::Mutex<()>,
    /// Refusals of the current interval, written as counts by
    /// [`Gateway::flush_refusals`]. A `std` mutex: it is held for a map
    /// update, never across an await.
    refusals: std::sync::Mutex<RefusalTally>,
    /// Whether an entry other than counted refusals was appended since the
    /// last checkpoint: refusals alone never cause a checkpoint to be
    /// signed, so provoking them costs the gateway no signature.
    unsigned_events: std::sync::atomic::AtomicBool,
    /// Where each published checkpoint is also written (see
    /// [`crate::integrity`]); none in tests that build a gateway by hand.
    head: Option<Arc<HeadFile>>,
    /// Accepted items whose rows vanished, found at start.
    lost: LostItems,
    /// The witnesses' tasks, once started ([`witnessing::start`]).
    witnessing: std::sync::OnceLock<witnessing::Witnessing>,
    /// The operator's metrics, counted where each event happens.
    metrics: Arc<crate::metrics::Metrics>,
}

/// What the metrics endpoint reads from the store at a scrape.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Entries on the audit log.
    pub audit_entries: u64,
    /// Per priority: open inbox entries and the age in seconds of the
    /// oldest one's item.
    pub inbox: Vec<(crate::domain::item::Priority, u64, i64)>,
    /// Requests past due without an answer.
    pub overdue: u64,
}

/// Most requests one overdue listing returns, soonest due first.
pub const OVERDUE_LIMIT: u32 = 1_000;

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .map_err(GatewayError::from)
}

fn recorded(d: &Decision, portions: Vec<u32>) -> RecordedDecision {
    RecordedDecision {
        recipient: d.recipient().clone(),
        effect: d.effect_releasing(&portions),
        portions,
        rules: d.rules().to_vec(),
        reasons: d.reasons().to_vec(),
    }
}

impl Gateway {
    /// A gateway writing through `log`, signing with `key`; each request
    /// brings the policy it decides with.
    pub fn new(log: Arc<AuditLog>, settings: Settings, key: impl Into<Arc<GatewayKey>>) -> Self {
        Gateway {
            store: log.store().clone(),
            log,
            settings,
            key: key.into(),
            arrivals: std::sync::Mutex::default(),
            claims: std::sync::Mutex::default(),
            checkpointing: tokio::sync::Mutex::new(()),
            refusals: std::sync::Mutex::new(RefusalTally::new()),
            // A crash may have left entries after the last checkpoint: the
            // first checkpoint after start covers them.
            unsigned_events: std::sync::atomic::AtomicBool::new(true),
            head: None,
            lost: LostItems::default(),
            witnessing: std::sync::OnceLock::new(),
            metrics: Arc::default(),
        }
    }

    /// The same gateway, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The operator's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The gauges a metrics scrape reads from the store now.
    pub async fn gauges(&self) -> Result<Gauges, GatewayError> {
        let store = self.store.clone();
        let now = unix_now();
        let (audit_entries, g) = blocking(move || Ok((store.size()?, store.gauges(now)?))).await?;
        Ok(Gauges {
            audit_entries,
            inbox: g
                .inbox
                .into_iter()
                .map(|(p, depth, oldest)| (p, depth, now.saturating_sub(oldest)))
                .collect(),
            overdue: g.overdue,
        })
    }

    /// The same gateway, writing each published checkpoint to `head` and
    /// answering requests for the `lost` items with
    /// [`GatewayError::ItemLost`].
    pub fn with_integrity(mut self, head: HeadFile, lost: LostItems) -> Self {
        self.head = Some(Arc::new(head));
        self.lost = lost;
        self
    }

    /// Records on the audit log that `policy` was put in force with the
    /// certificate, CA and CRL `files` (a reload: the server swapped the
    /// configuration snapshot), and what `changed` from the one before.
    pub async fn record_policy_loaded(
        &self,
        policy: &dyn Decider,
        files: Vec<crate::audit::event::ConfigFile>,
        changed: Vec<String>,
    ) -> Result<(), GatewayError> {
        self.record(vec![AuditEvent::PolicyLoaded {
            files,
            changed,
            policy_digest: policy.digest(),
        }])
        .await
    }

    /// The gateway's public signing key.
    pub fn key(&self) -> &GatewayKey {
        &self.key
    }

    /// Notes that an event worth a checkpoint was appended.
    fn mark_unsigned(&self) {
        self.unsigned_events
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Appends `batch` through the log service (group commit), once the
    /// gateway is not halted.
    async fn commit(&self, batch: Batch) -> Result<Outcome, GatewayError> {
        self.commit_coming(batch, None).await
    }

    /// [`Gateway::commit`] for a submission counted as
    /// [`crate::log_service::Coming`] since its checks began.
    async fn commit_coming(
        &self,
        batch: Batch,
        coming: Option<crate::log_service::Coming<'_>>,
    ) -> Result<Outcome, GatewayError> {
        self.refuse_if_halted()?;
        self.log
            .commit_coming(vec![batch], coming)
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("the commit was abandoned".into())))
            .map_err(GatewayError::from)
    }

    /// Appends `batches` together, each atomically (one group commit),
    /// handed to the log's writer and awaited: no blocking thread per call.
    async fn commit_all(
        &self,
        batches: Vec<Batch>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, GatewayError> {
        self.refuse_if_halted()?;
        Ok(self.log.commit(batches).await)
    }

    /// Refuses new work once a store invariant broke.
    pub(super) fn refuse_if_halted(&self) -> Result<(), GatewayError> {
        match self.log.halted() {
            Some(reason) => Err(GatewayError::Halted(reason)),
            None => Ok(()),
        }
    }

    async fn append(&self, entries: Vec<BoundedEntry>) -> Result<(), GatewayError> {
        self.commit(Batch::entries(entries)).await.map(|_| ())
    }

    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), GatewayError> {
        let now = unix_now();
        let entries = events
            .into_iter()
            .map(|e| BoundedEntry::new(now, e))
            .collect::<Result<Vec<_>, _>>()?;
        self.append(entries).await?;
        self.mark_unsigned();
        Ok(())
    }

    /// Records that the gateway started, with `policy` in force.
    pub async fn record_start(&self, policy: &dyn Decider) -> Result<(), GatewayError> {
        self.record(vec![AuditEvent::GatewayStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
            policy_digest: policy.digest(),
        }])
        .await
    }

    /// Writes the counted refusals, records a clean stop and issues a final
    /// checkpoint.
    pub async fn record_stop(&self) -> Result<String, GatewayError> {
        self.flush_refusals().await?;
        self.record(vec![AuditEvent::GatewayStopped]).await?;
        self.checkpoint().await
    }

    /// Whether the gateway can do its work now: the store takes a write,
    /// `policy` (the one in force) has a digest, and the signing key signs
    /// what its verifier key opens. Each check's outcome, in words for the
    /// operator.
    pub async fn readiness(&self, policy: &dyn Decider) -> Readiness {
        let store = self.store.clone();
        let store = match self.log.halted() {
            Some(reason) => Err(format!("appending stopped: {reason}")),
            None => match blocking(move || store.check_writable()).await {
                Ok(()) => Ok(()),
                Err(e) => Err(format!("store not writable: {e}")),
            },
        };
        let policy_digest = policy.digest();
        let probe = Checkpoint::new(self.key.note.name(), 0, crate::audit::rfc9162::empty_root());
        let verifier = self.key.verifier_key();
        let key = probe
            .sign(&[&self.key.note])
            .map_err(|e| e.to_string())
            .and_then(|note| {
                Checkpoint::open(
                    note.as_bytes(),
                    verifier.name(),
                    std::slice::from_ref(&verifier),
                )
                .map(|_| ())
                .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("signing key unusable: {e}"));
        Readiness {
            store,
            key,
            policy_digest,
        }
    }

    /// All stored checkpoints and entries, for export by an auditor tool.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The log service (tree, proofs, group commit).
    pub fn log(&self) -> &Arc<AuditLog> {
        &self.log
    }
}
