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
//! The decider is swapped whole ([`Gateway::set_decider`]): a request keeps
//! the snapshot it started with, and no request ever sees half a policy.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::domain::bytes::{sha256, Bytes};
use crate::domain::cose::PublicKey;
use crate::domain::decision::{Decision, Effect, ItemFacts};
use crate::domain::item::{DeliveredItem, DeliveredPortion, ItemError, SignedItem};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::{item_ref, Outcome, Receipt, RecipientOutcome};
use crate::store::{AckOutcome, CommitOutcome, InboxEntry, NewItem, Store, StoreError};
use crate::tls::VerifiedPeer;

/// Decides, for one item and one recipient, what is released.
///
/// Implementations are pure: no I/O, no clock (`now` is given).
pub trait Decider: Send + Sync + 'static {
    /// Hex SHA-256 of the rules in force, recorded with every decision.
    fn digest(&self) -> String;
    /// Whether `principal` is known at all (unknown recipients are refused
    /// before any decision).
    fn knows(&self, principal: &PrincipalId) -> bool;
    /// The decision for `recipient`.
    fn decide(&self, item: &ItemFacts<'_>, recipient: &PrincipalId, now: i64) -> Decision;
}

/// The directory of known principals from `gateway.toml`, used until a
/// policy directory is configured: every known recipient receives every
/// portion. It enforces only that recipients exist.
#[derive(Debug, Clone)]
pub struct Directory {
    principals: BTreeSet<PrincipalId>,
    digest: String,
}

impl Directory {
    /// A directory of `principals`.
    pub fn new(principals: impl IntoIterator<Item = PrincipalId>) -> Self {
        let principals: BTreeSet<PrincipalId> = principals.into_iter().collect();
        let listing: Vec<&str> = principals.iter().map(|p| p.as_str()).collect();
        let digest = hex::encode(sha256(listing.join("\n").as_bytes()));
        Directory { principals, digest }
    }
}

impl Decider for Directory {
    fn digest(&self) -> String {
        self.digest.clone()
    }
    fn knows(&self, principal: &PrincipalId) -> bool {
        self.principals.contains(principal)
    }
    fn decide(&self, item: &ItemFacts<'_>, recipient: &PrincipalId, _now: i64) -> Decision {
        let known = self.knows(recipient);
        Decision {
            recipient: recipient.clone(),
            effect: if known { Effect::Allow } else { Effect::Deny },
            portions: if known {
                (0..item.portion_labels.len() as u32).collect()
            } else {
                vec![]
            },
            rules: vec![if known {
                "directory.known"
            } else {
                "default.deny"
            }
            .to_string()],
            reasons: vec![if known {
                "recipient is a known principal"
            } else {
                "recipient is unknown"
            }
            .to_string()],
            policy_digest: self.digest.clone(),
        }
    }
}

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
    /// A recipient is not a known principal.
    #[error("unknown recipient {0}")]
    UnknownRecipient(PrincipalId),
    /// The sender reused an item id for different content.
    #[error("item id {0:?} was already submitted with different content")]
    Conflict(String),
    /// No such item for this caller.
    #[error("no such item for this caller")]
    NotFound,
    /// Policy no longer allows delivery to this caller.
    #[error("delivery of this item to you is no longer permitted")]
    DeliveryRefused,
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
    Accepted(Receipt),
    /// Already accepted earlier with the same content.
    AlreadyAccepted(Receipt),
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
    arrivals: tokio::sync::Notify,
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

impl Gateway {
    /// A gateway over `store`, deciding with `decider`.
    pub fn new(store: Arc<dyn Store>, decider: Arc<dyn Decider>, settings: Settings) -> Self {
        Gateway {
            store,
            decider: RwLock::new(decider),
            settings,
            arrivals: tokio::sync::Notify::new(),
        }
    }

    /// The decider in force now.
    pub fn decider(&self) -> Arc<dyn Decider> {
        self.decider
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the decider atomically; requests under way keep theirs.
    pub fn set_decider(&self, decider: Arc<dyn Decider>) {
        *self.decider.write().unwrap_or_else(|p| p.into_inner()) = decider;
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
        let receipt = Receipt {
            item_ref: reference.clone(),
            item_id: header.id.clone(),
            sender: header.sender.clone(),
            digest: hex::encode(item.digest),
            accepted_at: now,
            policy_digest: decider.digest(),
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
        };
        let new = NewItem {
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
        match blocking(move || store.commit_item(new)).await? {
            CommitOutcome::Committed(r) => {
                self.arrivals.notify_waiters();
                Ok(Submitted::Accepted(r))
            }
            CommitOutcome::Duplicate(r) => Ok(Submitted::AlreadyAccepted(r)),
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
    /// lease expires. Decides again with the policy in force now.
    pub async fn fetch(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<DeliveredItem, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        let until = unix_now() + self.settings.lease.as_secs() as i64;
        let leased = blocking(move || store.lease(&who, &r, until))
            .await?
            .ok_or(GatewayError::NotFound)?;
        // Verify again from what was stored: the store is not trusted to
        // have kept the bytes intact.
        let sender_key = PublicKey::from_certificate_der(&leased.sender_certificate)
            .map_err(|e| GatewayError::Internal(format!("stored sender certificate: {e}")))?;
        let item = SignedItem {
            envelope: Bytes(leased.envelope),
            portions: leased.portions,
        }
        .verify(&sender_key)
        .map_err(|e| GatewayError::Internal(format!("stored item no longer verifies: {e}")))?;
        let decision = self
            .decider()
            .decide(&ItemFacts::from(&item), &peer.principal, unix_now());
        let released: Vec<u32> = if decision.allowed() {
            leased
                .released
                .iter()
                .copied()
                .filter(|i| decision.portions.contains(i))
                .collect()
        } else {
            vec![]
        };
        if released.is_empty() {
            return Err(GatewayError::DeliveryRefused);
        }
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
            sender_certificate: Bytes(leased.sender_certificate),
            portions,
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
        match blocking(move || store.ack(&who, &r, unix_now())).await? {
            AckOutcome::NotFound => Err(GatewayError::NotFound),
            other => Ok(other),
        }
    }

    /// The receipt of one of the caller's own items.
    pub async fn receipt(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<Receipt, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal.clone();
        let r = reference.to_string();
        blocking(move || store.receipt(&who, &r))
            .await?
            .ok_or(GatewayError::NotFound)
    }
}
