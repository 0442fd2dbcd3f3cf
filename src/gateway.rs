//! The exchange: what happens to an item between the API and the store.
//!
//! [`Gateway`] takes a [`VerifiedPeer`] and a submitted item, checks the
//! sender's signature with the key of the certificate the connection
//! presented, refuses an item whose declared sender is not the caller, asks
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
//! The decider is swapped whole ([`Gateway::set_decider`]): a request keeps
//! the snapshot it started with, and no request ever sees half a policy.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::audit::checkpoint::Checkpoint;
use crate::audit::event::{AuditEntry, AuditEvent, RecordedDecision};
use crate::audit::signed_note::SignerKey;
use crate::domain::attestation::{Attestation, ATTESTATION_CONTENT_TYPE};
use crate::domain::bytes::{to_cbor, Bytes};
use crate::domain::cose::PublicKey;
use crate::domain::decision::{Decider, Decision, Effect, ItemFacts};
use crate::domain::item::{DeliveredItem, DeliveredPortion, ItemError, SignedItem};
use crate::domain::principal::{Agency, PrincipalId};
use crate::domain::receipt::{
    item_ref, InclusionProof, Outcome, Receipt, RecipientOutcome, SignedReceipt,
    RECEIPT_CONTENT_TYPE,
};
use crate::integrity::{HeadFile, LostItems};
use crate::keys::GatewayKey;
use crate::store::{
    AckOutcome, CommitOutcome, InboxEntry, NewItem, Store, StoreError, Swept, TreeHead,
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
    /// The caller may not see this part of the audit log.
    #[error("only auditors and the principals an entry concerns may read its proof")]
    AuditForbidden,
    /// A proof was asked for sizes or indices outside the log.
    #[error("{0}")]
    BadProofRequest(String),
    /// The store failed: the operator's problem, never the caller's.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task failed: a bug.
    #[error("internal error: {0}")]
    Internal(String),
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
    /// Agencies whose principals may read every audit proof.
    pub auditor_agencies: Vec<Agency>,
}

/// The exchange logic, shared by all connections.
pub struct Gateway {
    store: Arc<dyn Store>,
    decider: RwLock<Arc<dyn Decider>>,
    settings: Settings,
    key: Arc<GatewayKey>,
    arrivals: tokio::sync::Notify,
    /// Serialises checkpoint signing so two never race to store.
    checkpointing: tokio::sync::Mutex<()>,
    /// Caps how many refused connections are written to the log per second,
    /// so that a flood of bad handshakes cannot flood the audit log; the
    /// ones over the cap are counted and the count is logged.
    refusal_limit: governor::DefaultDirectRateLimiter,
    refusals_dropped: std::sync::atomic::AtomicU64,
    /// Where each published checkpoint is also written (see
    /// [`crate::integrity`]); none in tests that build a gateway by hand.
    head: Option<Arc<HeadFile>>,
    /// Accepted items whose rows vanished, found at start.
    lost: LostItems,
}

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
        recipient: d.recipient.clone(),
        effect: if portions.is_empty() {
            Effect::Deny
        } else {
            d.effect
        },
        portions,
        rules: d.rules.clone(),
        reasons: d.reasons.clone(),
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
        let per_second = governor::Quota::per_second(std::num::NonZeroU32::MIN.saturating_add(49));
        Gateway {
            store,
            decider: RwLock::new(decider),
            settings,
            key: key.into(),
            arrivals: tokio::sync::Notify::new(),
            checkpointing: tokio::sync::Mutex::new(()),
            refusal_limit: governor::RateLimiter::direct(per_second),
            refusals_dropped: std::sync::atomic::AtomicU64::new(0),
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

    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), GatewayError> {
        let now = unix_now();
        let entries: Vec<AuditEntry> = events
            .into_iter()
            .map(|e| AuditEntry::new(now, e))
            .collect();
        let store = self.store.clone();
        blocking(move || store.append_audit(&entries))
            .await
            .map(|_| ())
    }

    /// Records that the gateway started, with the policy in force.
    pub async fn record_start(&self) -> Result<(), GatewayError> {
        self.record(vec![AuditEvent::GatewayStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
            policy_digest: self.decider().digest(),
        }])
        .await
    }

    /// Records a clean stop and issues a final checkpoint.
    pub async fn record_stop(&self) -> Result<String, GatewayError> {
        self.record(vec![AuditEvent::GatewayStopped]).await?;
        self.checkpoint().await
    }

    /// Records a refused handshake or identity, within the rate cap.
    pub async fn record_refused_connection(&self, peer: String, reason: String) {
        self.record_capped(AuditEvent::ConnectionRefused { peer, reason })
            .await
    }

    /// Records a refusal anyone can provoke at will, within the rate cap
    /// shared by all such refusals: over the cap they are counted in the
    /// operator's log rather than written one by one.
    async fn record_capped(&self, event: AuditEvent) {
        if self.refusal_limit.check().is_err() {
            let dropped = self
                .refusals_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            tracing::warn!(
                dropped,
                "refusals over the audit cap are not recorded one by one"
            );
            return;
        }
        if let Err(e) = self.record(vec![event]).await {
            tracing::error!(error = %e, "could not record a refusal");
        }
    }

    /// Records that `peer` asked for an item that is not (or no longer)
    /// theirs to `action`, and returns the error to answer with.
    async fn not_yours(&self, peer: &VerifiedPeer, item_ref: &str, action: &str) -> GatewayError {
        if self.lost.concerns(item_ref, &peer.principal) {
            return GatewayError::ItemLost(item_ref.to_string());
        }
        self.record_capped(AuditEvent::ItemRequestRefused {
            caller: peer.principal.clone(),
            item_ref: item_ref.to_string(),
            action: action.to_string(),
        })
        .await;
        GatewayError::NotFound
    }

    /// Records a policy reload that was refused.
    pub async fn record_refused_policy(&self, reason: String) {
        if let Err(e) = self
            .record(vec![AuditEvent::PolicyRefused { reason }])
            .await
        {
            tracing::error!(error = %e, "could not record a refused policy");
        }
    }

    /// Records a submission refused after authentication.
    pub async fn record_refused_submission(
        &self,
        caller: &PrincipalId,
        problem: &str,
        detail: &str,
    ) {
        let event = AuditEvent::SubmissionRefused {
            caller: caller.clone(),
            problem: problem.to_string(),
            detail: detail.to_string(),
        };
        if let Err(e) = self.record(vec![event]).await {
            tracing::error!(error = %e, "could not record a refused submission");
        }
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

    /// Submits an item from `peer`.
    pub async fn submit(
        &self,
        peer: &VerifiedPeer,
        item: SignedItem,
    ) -> Result<Submitted, GatewayError> {
        let item = item.verify(&peer.public_key)?;
        let header = &item.manifest.header;
        if header.sender != peer.principal {
            return Err(GatewayError::SenderMismatch {
                declared: header.sender.clone(),
                caller: peer.principal.clone(),
            });
        }
        let decider = self.decider();
        if !decider.knows(&peer.principal) {
            return Err(GatewayError::UnknownSender(peer.principal.clone()));
        }
        if let Some(unknown) = header.recipients.iter().find(|r| !decider.knows(r)) {
            return Err(GatewayError::UnknownRecipient(unknown.clone()));
        }
        let now = unix_now();
        let facts = ItemFacts::from(&item);
        let decisions: Vec<Decision> = header
            .recipients
            .iter()
            .map(|r| decider.decide(&facts, r, now))
            .collect();
        let reference = item_ref(&header.sender, &header.id);
        let digest = hex::encode(item.digest);
        let policy_digest = decider.digest();
        let receipt = Receipt {
            item_ref: reference.clone(),
            item_id: header.id.clone(),
            sender: header.sender.clone(),
            digest: digest.clone(),
            accepted_at: now,
            policy_digest: policy_digest.clone(),
            outcomes: decisions
                .iter()
                .map(|d| RecipientOutcome {
                    recipient: d.recipient.clone(),
                    outcome: if d.allowed() {
                        Outcome::Queued
                    } else {
                        Outcome::Denied
                    },
                    portions_released: if d.allowed() {
                        d.portions.len() as u32
                    } else {
                        0
                    },
                    reasons: if d.allowed() {
                        vec![]
                    } else {
                        d.reasons.clone()
                    },
                })
                .collect(),
            audit_index: 0, // set by the store in the commit
        };
        let entry = AuditEntry::new(
            now,
            AuditEvent::ItemAccepted {
                item_ref: reference.clone(),
                item_id: header.id.clone(),
                sender: header.sender.clone(),
                digest,
                purpose: header.purpose.clone(),
                cases: header.cases.clone(),
                label: item.manifest.label.clone(),
                portion_labels: item.portions.iter().map(|p| p.label.clone()).collect(),
                decisions: decisions
                    .iter()
                    .map(|d| {
                        recorded(
                            d,
                            if d.allowed() {
                                d.portions.clone()
                            } else {
                                vec![]
                            },
                        )
                    })
                    .collect(),
                policy_digest,
            },
        );
        let purge_after = decider
            .retention_days(&item.manifest.label.level)
            .map(|days| now.saturating_add(i64::from(days) * 86_400));
        let new = NewItem {
            purge_after,
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
                .map(|d| (d.recipient.clone(), d.portions.clone()))
                .collect(),
            envelope: item.envelope,
            sender_certificate: peer.certificate.clone(),
            portions: item.portions,
            receipt,
        };
        let id = new.item_id.clone();
        let store = self.store.clone();
        match blocking(move || store.commit_item(new, &entry)).await? {
            CommitOutcome::Committed(r) => {
                self.arrivals.notify_waiters();
                Ok(Submitted::Accepted(self.sign_receipt(r)))
            }
            CommitOutcome::Duplicate(r) => Ok(Submitted::AlreadyAccepted(self.sign_receipt(r))),
            CommitOutcome::Conflict => Err(GatewayError::Conflict(id)),
        }
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
        loop {
            // Register for arrivals before looking, so that an item committed
            // between the look and the wait still wakes us.
            let arrived = self.arrivals.notified();
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
            // Leases expire with time, not with an event: look again at least
            // every second.
            let tick = (deadline - now_instant).min(Duration::from_secs(1));
            tokio::select! {
                _ = &mut arrived => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
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
        let released: Vec<u32> = if decision.allowed() {
            stored
                .released
                .iter()
                .copied()
                .filter(|i| decision.portions.contains(i))
                .collect()
        } else {
            vec![]
        };
        let digest = hex::encode(item.digest);
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        if released.is_empty() {
            let entry = AuditEntry::new(
                now,
                AuditEvent::DeliveryRefused {
                    item_ref: reference.to_string(),
                    sender: stored.sender.clone(),
                    decision: recorded(&decision, vec![]),
                    policy_digest,
                },
            );
            blocking(move || store.refuse_delivery(&who, &r, now, &entry)).await?;
            return Err(GatewayError::DeliveryRefused);
        }
        let record = recorded(&decision, released.clone());
        let entry = AuditEntry::new(
            now,
            AuditEvent::Delivered {
                item_ref: reference.to_string(),
                digest: digest.clone(),
                sender: stored.sender.clone(),
                decision: record.clone(),
                policy_digest: policy_digest.clone(),
            },
        );
        let until = now + self.settings.lease.as_secs() as i64;
        let audit_index = blocking(move || store.deliver(&who, &r, until, &entry))
            .await?
            .ok_or(GatewayError::NotFound)?;
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
        let entry = AuditEntry::new(
            now,
            AuditEvent::Acknowledged {
                item_ref: reference.to_string(),
                recipient: peer.principal.clone(),
            },
        );
        match blocking(move || store.ack(&who, &r, now, &entry)).await? {
            AckOutcome::NotFound => Err(self.not_yours(peer, reference, "ack").await),
            other => Ok(other),
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
                AuditEntry::new(
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
        Ok(swept.len())
    }

    /// Signs and stores a checkpoint of the log as it is now (unless the
    /// latest one already covers it) and returns the latest signed note.
    pub async fn checkpoint(&self) -> Result<String, GatewayError> {
        let _one_at_a_time = self.checkpointing.lock().await;
        let store = self.store.clone();
        let key = self.key.clone();
        let head = self.head.clone();
        blocking(move || {
            let note = sign_checkpoint(store.as_ref(), &key.note, unix_now())?;
            // Only after the checkpoint (and so the head) is committed: the
            // head file may lag the store, never lead it.
            if let Some(head) = head {
                head.advance(&note)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(note)
        })
        .await
    }

    fn may_audit(&self, peer: &VerifiedPeer) -> bool {
        self.settings.auditor_agencies.contains(&peer.agency)
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
        let latest = self.checkpoint().await?;
        let store = self.store.clone();
        let proof = blocking(move || {
            // The proof is always against a signed checkpoint: the one of
            // the size asked for, or the latest.
            let (size, note) = match size {
                None => (store.tree_head().size, latest),
                Some(size) => match store.checkpoints()?.into_iter().find(|(s, _)| *s == size) {
                    Some(found) => found,
                    None => return Ok(None),
                },
            };
            if index >= size {
                return Ok(None);
            }
            proof_against(store.as_ref(), index, size, note).map(Some)
        })
        .await?;
        let Some(proof) = proof else {
            return Err(GatewayError::BadProofRequest(
                "need an index below the size of a signed checkpoint (leave size out for the latest)".into(),
            ));
        };
        if !self.may_audit(peer) {
            let concerns = AuditEntry::decode(&proof.entry.0)
                .map(|e| e.principals().contains(&&peer.principal))
                .unwrap_or(false);
            if !concerns {
                // Asking for someone else's entries matters to oversight.
                self.record(vec![AuditEvent::ProofRefused {
                    caller: peer.principal.clone(),
                    index,
                }])
                .await?;
                return Err(GatewayError::AuditForbidden);
            }
        }
        Ok(proof)
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

    /// All stored checkpoints and entries, for export by an auditor tool.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
