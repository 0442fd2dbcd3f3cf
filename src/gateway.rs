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
//! knows nothing of HTTP or TLS.
//!
//! Every event is written to the audit log in the same store transaction as
//! the event itself, and the gateway signs what it vouches for with its own
//! key: receipts, delivery attestations and checkpoints of the log.
//!
//! Authority comes from the decider in force: [`Gateway::authorise`] (asked
//! by the API on every request but `/healthz`) admits only its principals,
//! and it says who may send and who reads every audit proof.
//!
//! The decider is swapped whole ([`Gateway::set_decider`]): a request keeps
//! the snapshot it started with, and no request ever sees half a policy.
//!
//! This file is long because it still holds the whole exchange (submit,
//! deliver, receipts) and log serving (checkpoints, proofs, counted
//! refusals); the re-cut of issue 9 splits it along those lines into
//! `exchange/{submit,deliver}`, `receipts` and `log_service`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::audit::checkpoint::Checkpoint;
use crate::audit::event::{
    clip, AuditEntry, AuditEvent, BoundedEntry, EntryTooLarge, RecordedDecision, RefusedSubject,
    MAX_TEXT,
};
use crate::audit::refusals::RefusalTally;
use crate::audit::signed_note::SignerKey;
use crate::domain::attestation::{Attestation, ATTESTATION_CONTENT_TYPE};
use crate::domain::bytes::{to_cbor, Bytes};
use crate::domain::cose::PublicKey;
use crate::domain::decision::{Decider, Decision, ItemFacts};
use crate::domain::item::{DeliveredItem, DeliveredPortion, ItemError, SignedItem};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::{
    item_ref, InclusionProof, Receipt, RecipientOutcome, SignedReceipt, RECEIPT_CONTENT_TYPE,
};
use crate::integrity::{HeadFile, LostItems};
use crate::keys::GatewayKey;
use crate::store::{
    AckOutcome, CommitOutcome, InboxEntry, NewItem, OpenRequest, Store, StoreError, Swept, TreeHead,
};
use crate::tls::VerifiedPeer;

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
    /// The store failed: the operator's problem, never the caller's.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task failed: a bug.
    #[error("internal error: {0}")]
    Internal(String),
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
}

/// The exchange logic, shared by all connections.
pub struct Gateway {
    store: Arc<dyn Store>,
    decider: RwLock<Arc<dyn Decider>>,
    settings: Settings,
    key: Arc<GatewayKey>,
    /// One wake-up per principal with a long-poll waiting, so that an
    /// arrival wakes only its recipients' long-polls. A principal is in the
    /// map only while one of its long-polls waits.
    arrivals: std::sync::Mutex<HashMap<PrincipalId, Arc<tokio::sync::Notify>>>,
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

/// Whether `decider` lets `who` submit items.
fn sending_right(decider: &dyn Decider, who: &PrincipalId) -> Result<(), GatewayError> {
    if !decider.knows(who) {
        Err(GatewayError::UnknownSender(who.clone()))
    } else if !decider.may_send(who) {
        Err(GatewayError::MayNotSend(who.clone()))
    } else {
        Ok(())
    }
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
    /// A gateway over `store`, deciding with `decider`, signing with `key`.
    pub fn new(
        store: Arc<dyn Store>,
        decider: Arc<dyn Decider>,
        settings: Settings,
        key: impl Into<Arc<GatewayKey>>,
    ) -> Self {
        Gateway {
            store,
            decider: RwLock::new(decider),
            settings,
            key: key.into(),
            arrivals: std::sync::Mutex::default(),
            checkpointing: tokio::sync::Mutex::new(()),
            refusals: std::sync::Mutex::new(RefusalTally::new()),
            // A crash may have left entries after the last checkpoint: the
            // first checkpoint after start covers them.
            unsigned_events: std::sync::atomic::AtomicBool::new(true),
            head: None,
            lost: LostItems::default(),
        }
    }

    /// The same gateway, writing each published checkpoint to `head` and
    /// answering requests for the `lost` items with
    /// [`GatewayError::ItemLost`].
    pub fn with_integrity(mut self, head: HeadFile, lost: LostItems) -> Self {
        self.head = Some(Arc::new(head));
        self.lost = lost;
        self
    }

    /// The decider in force now.
    pub fn decider(&self) -> Arc<dyn Decider> {
        self.decider
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the decider atomically and records the new policy's digest
    /// on the audit log; requests under way keep the decider they started
    /// with.
    pub async fn set_decider(&self, decider: Arc<dyn Decider>) -> Result<(), GatewayError> {
        let digest = decider.digest();
        *self.decider.write().unwrap_or_else(|p| p.into_inner()) = decider;
        self.record(vec![AuditEvent::PolicyLoaded {
            policy_digest: digest,
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

    async fn append(&self, entries: Vec<BoundedEntry>) -> Result<(), GatewayError> {
        let store = self.store.clone();
        blocking(move || store.append_audit(&entries))
            .await
            .map(|_| ())
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

    /// Records that the gateway started, with the policy in force.
    pub async fn record_start(&self) -> Result<(), GatewayError> {
        self.record(vec![AuditEvent::GatewayStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
            policy_digest: self.decider().digest(),
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

    /// Whether the caller is a principal of the policy in force now. The
    /// API asks on every request but `/healthz`, so a principal that a
    /// reload removed is refused on a connection it opened before. A
    /// refusal is counted under the caller's principal id.
    pub async fn authorise(&self, peer: &VerifiedPeer) -> Result<(), GatewayError> {
        if self.decider().knows(&peer.principal) {
            return Ok(());
        }
        self.count_refusal(
            RefusedSubject::Principal(peer.principal.clone()),
            "unknown-principal",
            None,
        );
        Err(GatewayError::UnknownPrincipal(peer.principal.clone()))
    }

    /// Whether the policy in force lets the caller submit items: checked
    /// before the body is read, and again by [`Gateway::submit`]. A refusal
    /// is counted as a refused submission.
    pub async fn may_send(&self, peer: &VerifiedPeer) -> Result<(), GatewayError> {
        let right = sending_right(self.decider().as_ref(), &peer.principal);
        if let Err(e) = &right {
            let slug = crate::api::problem::Problem::from(e).slug().to_string();
            self.record_refused_submission(&peer.principal, &slug, None)
                .await;
        }
        right
    }

    /// Counts one refusal of `subject` for `cause`; the count reaches the
    /// audit log at the next [`Gateway::flush_refusals`]. Costs a map
    /// update: refusing must stay cheaper than provoking a refusal.
    fn count_refusal(&self, subject: RefusedSubject, cause: &str, sample: Option<&str>) {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(subject, cause, sample, unix_now());
    }

    /// Writes the refusals counted since the last flush, one `refused`
    /// entry per subject and cause, in one transaction. Does not make a
    /// checkpoint due: the next event that does will cover them.
    pub async fn flush_refusals(&self) -> Result<usize, GatewayError> {
        let events = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain();
        if events.is_empty() {
            return Ok(0);
        }
        let now = unix_now();
        let entries = events
            .into_iter()
            .map(|e| BoundedEntry::new(now, e))
            .collect::<Result<Vec<_>, _>>()?;
        let n = entries.len();
        self.append(entries).await?;
        Ok(n)
    }

    /// Counts a refused handshake or identity from `peer` (an address, with
    /// or without a port: the port is dropped, it changes with every
    /// connection). `cause` is a short fixed text chosen by the gateway.
    pub async fn record_refused_connection(&self, peer: String, cause: String) {
        // Counted as admission control counts addresses: an IPv6 host
        // usually holds a whole /64, and must not spread its refusals over
        // many subjects.
        let address = match peer.parse::<std::net::SocketAddr>() {
            Ok(a) => match crate::limits::address_key(a.ip()) {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("{v6}/64"),
            },
            Err(_) => clip(&peer, 64),
        };
        self.count_refusal(RefusedSubject::Address(address), &cause, None);
    }

    /// Counts a request or connection of `principal` refused by admission
    /// control (over its rate or one of its budgets): a station that
    /// hammers the gateway is on the log under its own name.
    pub fn record_refused_admission(&self, principal: &PrincipalId, cause: &str) {
        self.count_refusal(RefusedSubject::Principal(principal.clone()), cause, None);
    }

    /// Counts that `peer` asked for an item that is not (or no longer)
    /// theirs to `action`, and returns the error to answer with.
    async fn not_yours(&self, peer: &VerifiedPeer, item_ref: &str, action: &str) -> GatewayError {
        if self.lost.concerns(item_ref, &peer.principal) {
            return GatewayError::ItemLost(item_ref.to_string());
        }
        self.count_refusal(
            RefusedSubject::Principal(peer.principal.clone()),
            &format!("not-yours-to-{action}"),
            Some(item_ref),
        );
        GatewayError::NotFound
    }

    /// Records a policy reload that was refused.
    pub async fn record_refused_policy(&self, reason: String) {
        if let Err(e) = self
            .record(vec![AuditEvent::PolicyRefused {
                reason: clip(&reason, MAX_TEXT),
            }])
            .await
        {
            tracing::error!(error = %e, "could not record a refused policy");
        }
    }

    /// Counts a submission by `caller` refused with problem `slug`, with the
    /// hex SHA-256 of what was refused when there is one (the sender's
    /// signed envelope). The detail given to the caller is not recorded:
    /// it may quote what the caller sent.
    pub async fn record_refused_submission(
        &self,
        caller: &PrincipalId,
        slug: &str,
        refused_digest: Option<&str>,
    ) {
        self.count_refusal(
            RefusedSubject::Principal(caller.clone()),
            &format!("submission:{slug}"),
            refused_digest,
        );
    }

    fn sign_receipt(&self, receipt: Receipt) -> SignedReceipt {
        // Ed25519 is deterministic: signing the same receipt again gives the
        // same bytes, so stored receipts need no stored signature.
        let cose = self.key.cose.sign1(to_cbor(&receipt), RECEIPT_CONTENT_TYPE);
        SignedReceipt {
            receipt,
            cose: Bytes(cose),
            inclusion: None,
        }
    }

    /// Submits an item from `peer`. A refusal (anything but a store
    /// failure) is counted on the audit log with the digest of the refused
    /// envelope.
    pub async fn submit(
        &self,
        peer: &VerifiedPeer,
        item: SignedItem,
    ) -> Result<Submitted, GatewayError> {
        let refused_digest = hex::encode(crate::domain::bytes::sha256(&item.envelope.0));
        let outcome = self.accept(peer, item).await;
        if let Err(e) = &outcome {
            if !matches!(e, GatewayError::Store(_) | GatewayError::Internal(_)) {
                let slug = crate::api::problem::Problem::from(e).slug().to_string();
                self.record_refused_submission(&peer.principal, &slug, Some(&refused_digest))
                    .await;
            }
        }
        outcome
    }

    async fn accept(
        &self,
        peer: &VerifiedPeer,
        item: SignedItem,
    ) -> Result<Submitted, GatewayError> {
        // Who may send is settled before the signature is checked: a
        // refusal costs the gateway less than the caller spent.
        let decider = self.decider();
        sending_right(decider.as_ref(), &peer.principal)?;
        let item = item.verify(&peer.public_key)?;
        let header = &item.manifest.header;
        if header.sender != peer.principal {
            return Err(GatewayError::SenderMismatch {
                declared: header.sender.clone(),
                caller: peer.principal.clone(),
            });
        }
        if let Some(unknown) = header.recipients.iter().find(|r| !decider.knows(r)) {
            return Err(GatewayError::UnknownRecipient(unknown.clone()));
        }
        // A label that does not fit the scheme is the sender's to fix:
        // refused here, before anything is stored.
        let facts = ItemFacts::from(&item);
        decider.check_labels(&facts).map_err(ItemError::from)?;
        let now = unix_now();
        let decisions: Vec<Decision> = header
            .recipients
            .iter()
            .map(|r| decider.decide(&facts, r, now))
            .collect();
        let reference = item_ref(&header.sender, &header.id);
        let digest = hex::encode(item.digest);
        let policy_digest = decider.digest();
        let due = decider.answer_due(&facts, now);
        let answers = match &header.in_reply_to {
            Some(request) => self.answered(request, &header.sender, &decisions).await?,
            None => None,
        };
        let outcomes: Vec<RecipientOutcome> =
            decisions.iter().map(RecipientOutcome::for_sender).collect();
        let receipt = Receipt {
            item_ref: reference.clone(),
            item_id: header.id.clone(),
            sender: header.sender.clone(),
            digest: digest.clone(),
            accepted_at: now,
            policy_digest: policy_digest.clone(),
            outcomes: outcomes.clone(),
            audit_index: 0, // set by the store in the commit
        };
        // What the sender may read first; then each recipient's full
        // decision, for auditors only (see `AuditEntry::reader`).
        let mut entries = Vec::with_capacity(1 + decisions.len());
        entries.push(BoundedEntry::new(
            now,
            AuditEvent::ItemAccepted {
                due,
                answers: answers.clone(),
                item_ref: reference.clone(),
                item_id: header.id.clone(),
                sender: header.sender.clone(),
                digest: digest.clone(),
                purpose: header.purpose.clone(),
                cases: header.cases.clone(),
                label: item.manifest.label.clone(),
                portion_labels: item.portions.iter().map(|p| p.label.clone()).collect(),
                outcomes,
                priority: Some(header.priority),
                policy_digest: policy_digest.clone(),
            },
        )?);
        for d in &decisions {
            let released = d.released().to_vec();
            entries.push(BoundedEntry::new(
                now,
                AuditEvent::Decided {
                    item_ref: reference.clone(),
                    digest: digest.clone(),
                    decision: recorded(d, released),
                    policy_digest: policy_digest.clone(),
                },
            )?);
        }
        let purge_after = decider
            .retention_days(&item.manifest.label.level)
            .map(|days| now.saturating_add(i64::from(days) * 86_400));
        let new = NewItem {
            purge_after,
            answer_due: due,
            answers,
            item_ref: reference,
            sender: header.sender.clone(),
            item_id: header.id.clone(),
            digest: item.digest,
            priority: header.priority,
            accepted_at: now,
            expires_at: header.expires,
            deliveries: decisions
                .iter()
                .filter(|d| d.allowed())
                .map(|d| (d.recipient().clone(), d.portions().to_vec()))
                .collect(),
            envelope: item.envelope,
            sender_certificate: peer.certificate.clone(),
            portions: item.portions,
            receipt,
        };
        let id = new.item_id.clone();
        let recipients: Vec<PrincipalId> = new.deliveries.iter().map(|(r, _)| r.clone()).collect();
        let store = self.store.clone();
        match blocking(move || store.commit_item(new, entries)).await? {
            CommitOutcome::Committed(r) => {
                self.mark_unsigned();
                self.wake(&recipients);
                Ok(Submitted::Accepted(self.sign_receipt(r)))
            }
            CommitOutcome::Duplicate(r) => Ok(Submitted::AlreadyAccepted(self.sign_receipt(r))),
            CommitOutcome::Conflict => Err(GatewayError::Conflict(id)),
        }
    }

    /// Whether an item from `sender` with `decisions` answers the stored
    /// request `request` (its `in_reply_to`): the request exists, `sender`
    /// is one of the recipients it was released to, and the answer is
    /// released to the request's sender. Returns the request's reference
    /// when it does. An item that names something else (an unknown item,
    /// an item that is not a request, a request not addressed to the
    /// sender) is still accepted and closes nothing: refusing it would
    /// tell the sender which references exist.
    async fn answered(
        &self,
        request: &str,
        sender: &PrincipalId,
        decisions: &[Decision],
    ) -> Result<Option<String>, GatewayError> {
        let store = self.store.clone();
        let r = request.to_string();
        let Some(state) = blocking(move || store.request(&r)).await? else {
            return Ok(None);
        };
        let asked_of_sender = state.recipients.contains(sender);
        let reaches_asker = decisions
            .iter()
            .any(|d| *d.recipient() == state.sender && d.allowed());
        Ok((asked_of_sender && reaches_asker).then(|| request.to_string()))
    }

    /// Requests without an answer due by `now + within` (so past due, or
    /// due within that time), soonest first and at most
    /// [`OVERDUE_LIMIT`], as of the gateway's clock, which is returned
    /// with them. Need to know: an auditor (`audit = "all"`)
    /// sees every request; a principal sees the requests it sent, with
    /// every desk they went to, and those it received, with itself as the
    /// only desk (who else was asked is the sender's to know).
    pub async fn overdue(
        &self,
        peer: &VerifiedPeer,
        within: Duration,
    ) -> Result<(i64, Vec<OpenRequest>), GatewayError> {
        let now = unix_now();
        let due_by = now.saturating_add(i64::try_from(within.as_secs()).unwrap_or(i64::MAX));
        let store = self.store.clone();
        let auditor = self.may_audit(peer);
        let who = (!auditor).then(|| peer.principal.clone());
        let open =
            blocking(move || store.open_requests(due_by, who.as_ref(), OVERDUE_LIMIT)).await?;
        if auditor {
            return Ok((now, open));
        }
        let me = &peer.principal;
        let mine = open
            .into_iter()
            .filter_map(|mut r| {
                if &r.sender == me {
                    Some(r)
                } else if r.recipients.contains(me) {
                    r.recipients = vec![me.clone()];
                    Some(r)
                } else {
                    None
                }
            })
            .collect();
        Ok((now, mine))
    }

    /// The caller's deliverable items, waiting up to `wait` for one to arrive.
    pub async fn inbox(
        &self,
        peer: &VerifiedPeer,
        wait: Duration,
        limit: u32,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<Vec<InboxEntry>, GatewayError> {
        let deadline = tokio::time::Instant::now() + wait.min(self.settings.max_wait);
        let waiting = Waiting::new(self, &peer.principal);
        // Leases expire with time, not with an event: look again now and
        // then. A quarter of the lease, so a waiting long-poll costs one
        // store query per that interval, not one per second.
        let recheck =
            (self.settings.lease / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
        loop {
            // Register for arrivals before looking, so that an item committed
            // between the look and the wait still wakes us.
            let arrived = waiting.notify.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let store = self.store.clone();
            let who = peer.principal.clone();
            let now = unix_now();
            let entries = blocking(move || store.pending(&who, now, limit)).await?;
            let now_instant = tokio::time::Instant::now();
            if !entries.is_empty() || now_instant >= deadline || *shutdown.borrow() {
                return Ok(entries);
            }
            let tick = (deadline - now_instant).min(recheck);
            tokio::select! {
                _ = &mut arrived => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Wakes the long-polls of `recipients`.
    fn wake(&self, recipients: &[PrincipalId]) {
        let arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        for r in recipients {
            if let Some(n) = arrivals.get(r) {
                n.notify_waiters();
            }
        }
    }

    /// Fetches an item for the caller, leasing it until acknowledged or the
    /// lease expires. Decides again with the policy in force now; a refusal
    /// takes the item out of the caller's inbox. Both are audited.
    pub async fn fetch(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<DeliveredItem, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        let Some(stored) = blocking(move || store.peek(&who, &r)).await? else {
            return Err(self.not_yours(peer, reference, "fetch").await);
        };
        // Verify again from what was stored: the store is not trusted to
        // have kept the bytes intact.
        let sender_key = PublicKey::from_certificate_der(&stored.sender_certificate)
            .map_err(|e| GatewayError::Internal(format!("stored sender certificate: {e}")))?;
        let item = SignedItem {
            envelope: Bytes(stored.envelope),
            portions: stored.portions,
        }
        .verify(&sender_key)
        .map_err(|e| GatewayError::Internal(format!("stored item no longer verifies: {e}")))?;
        let decider = self.decider();
        let policy_digest = decider.digest();
        let now = unix_now();
        let decision = decider.decide(&ItemFacts::from(&item), &peer.principal, now);
        // Never more than was released at submission, whatever the policy
        // says now.
        let released: Vec<u32> = stored
            .released
            .iter()
            .copied()
            .filter(|i| decision.released().contains(i))
            .collect();
        let digest = hex::encode(item.digest);
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        if released.is_empty() {
            let entry = BoundedEntry::new(
                now,
                AuditEvent::DeliveryRefused {
                    item_ref: reference.to_string(),
                    sender: stored.sender.clone(),
                    decision: recorded(&decision, vec![]),
                    policy_digest,
                },
            )
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
            blocking(move || store.refuse_delivery(&who, &r, now, &entry)).await?;
            self.mark_unsigned();
            return Err(GatewayError::DeliveryRefused);
        }
        let mut record = recorded(&decision, released.clone());
        // The recipient may read this entry: the reasons name the levels of
        // the portions it was not given, so they stay out of it.
        record.reasons.clear();
        let entry = BoundedEntry::new(
            now,
            AuditEvent::Delivered {
                item_ref: reference.to_string(),
                digest: digest.clone(),
                sender: stored.sender.clone(),
                decision: record.clone(),
                policy_digest: policy_digest.clone(),
            },
        )
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
        let until = now + self.settings.lease.as_secs() as i64;
        let audit_index = blocking(move || store.deliver(&who, &r, until, &entry))
            .await?
            .ok_or(GatewayError::NotFound)?;
        self.mark_unsigned();
        let attestation = Attestation {
            item_ref: reference.to_string(),
            item_digest: digest,
            sender: stored.sender,
            recipient: peer.principal.clone(),
            portions: released.clone(),
            effect: record.effect,
            rules: record.rules,
            policy_digest,
            accepted_at: stored.accepted_at,
            time: now,
            audit_index,
        };
        let portions = released
            .iter()
            .filter_map(|&i| {
                item.portions.get(i as usize).map(|p| DeliveredPortion {
                    index: i,
                    portion: p.clone(),
                })
            })
            .collect();
        Ok(DeliveredItem {
            envelope: Bytes(item.envelope),
            sender_certificate: Bytes(stored.sender_certificate),
            portions,
            attestation: Bytes(
                self.key
                    .cose
                    .sign1(to_cbor(&attestation), ATTESTATION_CONTENT_TYPE),
            ),
        })
    }

    /// Records the caller's acknowledgement of an item.
    pub async fn ack(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<AckOutcome, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        let now = unix_now();
        let entry = BoundedEntry::new(
            now,
            AuditEvent::Acknowledged {
                item_ref: reference.to_string(),
                recipient: peer.principal.clone(),
            },
        )
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
        match blocking(move || store.ack(&who, &r, now, &entry)).await? {
            AckOutcome::NotFound => Err(self.not_yours(peer, reference, "ack").await),
            other => {
                if matches!(other, AckOutcome::Acked(_)) {
                    self.mark_unsigned();
                }
                Ok(other)
            }
        }
    }

    /// The signed receipt of one of the caller's own items, with an
    /// inclusion proof when a checkpoint covers its audit entry.
    pub async fn receipt(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<SignedReceipt, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        let Some(receipt) = blocking(move || store.receipt(&who, &r)).await? else {
            return Err(self.not_yours(peer, reference, "receipt").await);
        };
        let index = receipt.audit_index;
        let mut signed = self.sign_receipt(receipt);
        signed.inclusion = self.inclusion_under_latest(index).await?;
        Ok(signed)
    }

    /// An inclusion proof of entry `index` against the latest checkpoint
    /// that covers it, if there is one.
    async fn inclusion_under_latest(
        &self,
        index: u64,
    ) -> Result<Option<InclusionProof>, GatewayError> {
        let store = self.store.clone();
        blocking(move || {
            store
                .latest_checkpoint_above(Some(index))?
                .map(|(size, note)| proof_against(store.as_ref(), index, size, note))
                .transpose()
        })
        .await
    }

    /// Expires unacknowledged entries of items past their expiry and purges
    /// the content of items past their retention, each on the audit log.
    pub async fn sweep(&self) -> Result<usize, GatewayError> {
        let store = self.store.clone();
        let now = unix_now();
        let swept = blocking(move || {
            store.sweep(now, &|s| {
                BoundedEntry::new(
                    now,
                    match s {
                        Swept::Expired {
                            item_ref,
                            recipient,
                        } => AuditEvent::Expired {
                            item_ref: item_ref.clone(),
                            recipient: recipient.clone(),
                        },
                        Swept::Purged { item_ref, digest } => AuditEvent::Purged {
                            item_ref: item_ref.clone(),
                            digest: hex::encode(digest),
                        },
                    },
                )
            })
        })
        .await?;
        if !swept.is_empty() {
            self.mark_unsigned();
        }
        Ok(swept.len())
    }

    /// Signs and stores a checkpoint of the log as it is now (unless the
    /// latest one already covers it) and returns the latest signed note.
    ///
    /// Signs only when an event other than counted refusals was appended
    /// since the last one: refusals alone never cost a signature.
    pub async fn checkpoint(&self) -> Result<String, GatewayError> {
        let _one_at_a_time = self.checkpointing.lock().await;
        let store = self.store.clone();
        let unsigned = self
            .unsigned_events
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if !unsigned {
            let latest = {
                let store = store.clone();
                blocking(move || store.latest_checkpoint_above(None)).await?
            };
            if let Some((_, note)) = latest {
                return Ok(note);
            }
        }
        let key = self.key.clone();
        let head = self.head.clone();
        let signed = blocking(move || {
            let note = sign_checkpoint(store.as_ref(), &key.note, unix_now())?;
            // Only after the checkpoint (and so the head) is committed: the
            // head file may lag the store, never lead it.
            if let Some(head) = head {
                head.advance(&note)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(note)
        })
        .await;
        if signed.is_err() {
            self.mark_unsigned();
        }
        signed
    }

    fn may_audit(&self, peer: &VerifiedPeer) -> bool {
        self.decider().reads_whole_log(&peer.principal)
    }

    /// An inclusion proof of entry `index` in the tree of `size`, with the
    /// entry, for auditors and for the principals the entry concerns.
    pub async fn inclusion(
        &self,
        peer: &VerifiedPeer,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, GatewayError> {
        // Sign first, so the latest checkpoint covers the log as it is now.
        self.checkpoint().await?;
        let store = self.store.clone();
        let proof = blocking(move || {
            // The proof is always against a signed checkpoint: the one of
            // the size asked for, or the latest.
            let found = match size {
                None => store.latest_checkpoint_above(None)?,
                Some(size) => store.checkpoint_of_size(size)?.map(|note| (size, note)),
            };
            match found {
                Some((size, note)) if index < size => {
                    proof_against(store.as_ref(), index, size, note).map(Some)
                }
                _ => Ok(None),
            }
        })
        .await?;
        // Need to know: a principal reads only the entries written for it
        // to read (`AuditEntry::reader`); auditors read every entry. An
        // entry that is not yours answers exactly as one that does not
        // exist, so indices cannot be enumerated to learn who exchanged
        // what, and the refusal is counted for oversight.
        let visible = proof.filter(|p| {
            self.may_audit(peer)
                // Only entries of the current version: the gateway hands out
                // the stored bytes, and a version 1 acceptance or delivery
                // holds reasons that are not the reader's to see.
                || AuditEntry::decode(&p.entry.0).is_ok_and(|e| {
                    e.v == crate::audit::event::ENTRY_VERSION
                        && e.reader() == Some(&peer.principal)
                })
        });
        match visible {
            Some(proof) => Ok(proof),
            None => {
                if !self.may_audit(peer) {
                    self.count_refusal(
                        RefusedSubject::Principal(peer.principal.clone()),
                        "proof-refused",
                        Some(&index.to_string()),
                    );
                }
                Err(GatewayError::BadProofRequest(
                    "no entry of yours at this index under a signed checkpoint of this size (leave size out for the latest)".into(),
                ))
            }
        }
    }

    /// A consistency proof between two tree sizes. It shows only hashes,
    /// so any authenticated principal may ask.
    pub async fn consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Bytes>, GatewayError> {
        let head = self.store.tree_head();
        if old_size > new_size || new_size > head.size {
            return Err(GatewayError::BadProofRequest(format!(
                "need old <= new <= {} (the log's size)",
                head.size
            )));
        }
        let store = self.store.clone();
        let hashes = blocking(move || store.consistency_proof(old_size, new_size)).await?;
        Ok(hashes.iter().map(|h| Bytes(h.to_vec())).collect())
    }

    /// Whether the gateway can do its work now: the store takes a write,
    /// a policy is in force, and the signing key signs what its verifier
    /// key opens. Each check's outcome, in words for the operator.
    pub async fn readiness(&self) -> Readiness {
        let store = self.store.clone();
        let store = match blocking(move || store.check_writable()).await {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("store not writable: {e}")),
        };
        let policy_digest = self.decider().digest();
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
}

/// A long-poll's registration for its principal's arrivals; the entry is
/// removed when the last long-poll of that principal ends.
struct Waiting<'a> {
    gateway: &'a Gateway,
    principal: PrincipalId,
    notify: Arc<tokio::sync::Notify>,
}

impl<'a> Waiting<'a> {
    fn new(gateway: &'a Gateway, principal: &PrincipalId) -> Self {
        let mut arrivals = gateway.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let notify = arrivals.entry(principal.clone()).or_default().clone();
        Waiting {
            gateway,
            principal: principal.clone(),
            notify,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut arrivals = self
            .gateway
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Clones are made only under this lock, so two references (the
        // map's and ours) mean no other long-poll of this principal waits.
        if Arc::strong_count(&self.notify) == 2 {
            arrivals.remove(&self.principal);
        }
    }
}

/// Signs and stores a checkpoint of the log in `store` as it is now, unless
/// the latest stored one already covers every entry; returns the latest
/// signed note. Used by the running gateway and by `audit export`.
pub fn sign_checkpoint(
    store: &dyn Store,
    signer: &SignerKey,
    now: i64,
) -> Result<String, StoreError> {
    let latest = store.latest_checkpoint_above(None)?;
    let TreeHead { size, root } = store.tree_head();
    if let Some((latest_size, note)) = latest {
        if latest_size == size {
            return Ok(note);
        }
    }
    let note = Checkpoint::new(signer.name(), size, root)
        .sign(&[signer])
        .map_err(|e| StoreError::Invariant(format!("cannot sign a checkpoint: {e}")))?;
    store.save_checkpoint(size, &note, now)?;
    Ok(note)
}

/// The inclusion proof of entry `index` in the tree of the signed
/// checkpoint `note` of `size`, with the entry.
fn proof_against(
    store: &dyn Store,
    index: u64,
    size: u64,
    note: String,
) -> Result<InclusionProof, StoreError> {
    let hashes = store.inclusion_proof(index, size)?;
    let entry = store
        .audit_entries(index, index + 1)?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(InclusionProof {
        entry: Bytes(entry),
        index,
        size,
        hashes: hashes.iter().map(|h| Bytes(h.to_vec())).collect(),
        checkpoint: note,
    })
}
