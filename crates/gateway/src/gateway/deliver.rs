//! Delivery: inboxes, long-polls, fetch with an attestation, ack, and the
//! sweep of expired and purged items; batched fetch and ack are in
//! `deliver/batch.rs`, over the same steps.
//!
//! A fetch decides again with the policy in force now and never releases
//! more than was released at submission; every delivery, refused delivery,
//! acknowledgement, expiry and purge is on the audit log in the same store
//! transaction as the change itself.

mod batch;
pub use batch::{AckedRef, FetchedBatch};

use std::sync::Arc;
use std::time::Duration;

use super::refusals::may_audit;
use super::{blocking, recorded, unix_now, Gateway, GatewayError, OVERDUE_LIMIT};
use crate::audit::event::{AuditEvent, BoundedEntry};
use crate::domain::attestation::Attestation;
use crate::domain::bytes::Bytes;
use crate::domain::cose::PublicKey;
use crate::domain::decision::{Decider, ItemFacts};
use crate::domain::item::{DeliveredItem, DeliveredPortion, Portion, SignedItem};
use crate::domain::principal::PrincipalId;
use crate::store::{
    AckOutcome, Appended, Batch, Change, Durable, InboxEntry, Leased, OpenRequest, Outcome, Swept,
    Unchanged,
};
use crate::tls::VerifiedPeer;

impl Gateway {
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
        policy: &dyn Decider,
        within: Duration,
    ) -> Result<(i64, Vec<OpenRequest>), GatewayError> {
        let now = unix_now();
        let due_by = now.saturating_add(i64::try_from(within.as_secs()).unwrap_or(i64::MAX));
        let store = self.store.clone();
        let auditor = may_audit(policy, peer);
        let who = (!auditor).then(|| peer.principal().clone());
        let open =
            blocking(move || store.open_requests(due_by, who.as_ref(), OVERDUE_LIMIT)).await?;
        if auditor {
            return Ok((now, open));
        }
        let me = peer.principal();
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
        let waiting = Waiting::new(self, peer.principal());
        // Leases expire with time, not with an event: look again now and
        // then.
        let recheck = self.settings.recheck;
        loop {
            // Register for arrivals before looking, so that an item committed
            // between the look and the wait still wakes us.
            let arrived = waiting.notify.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let store = self.store.clone();
            let who = peer.principal().clone();
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

    /// Has the store wake the long-polls here when another process (an
    /// instance on the same database) commits an item for their
    /// principal, rather than at their next look.
    pub fn watch_arrivals(self: &Arc<Self>) -> Result<(), GatewayError> {
        let gateway = Arc::downgrade(self);
        self.store
            .watch_arrivals(Arc::new(move |who: &PrincipalId| {
                if let Some(g) = gateway.upgrade() {
                    g.wake(std::slice::from_ref(who));
                }
            }))
            .map_err(GatewayError::from)
    }

    /// Wakes the long-polls of `recipients`.
    pub(super) fn wake(&self, recipients: &[PrincipalId]) {
        let arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        for r in recipients {
            if let Some(n) = arrivals.get(r) {
                n.notify_waiters();
            }
        }
    }

    /// Fetches an item for the caller, leasing it until acknowledged or the
    /// lease expires. Decides again with `policy`, the one in force when the
    /// request started; a refusal takes the item out of the caller's inbox.
    /// Both are audited.
    pub async fn fetch(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        reference: &str,
    ) -> Result<DeliveredItem, GatewayError> {
        let stored = self
            .own(peer, reference, "fetch", |store, who, r| store.peek(who, r))
            .await?;
        match self.decide_delivery(peer, policy, reference, stored, false)? {
            Decided::Refused(batch) => {
                self.commit(batch).await?;
                self.mark_unsigned();
                Err(GatewayError::DeliveryRefused)
            }
            Decided::Released { batch, release } => {
                let Outcome::Appended(durable) = self.commit(batch).await? else {
                    return Err(GatewayError::NotFound);
                };
                self.mark_unsigned();
                Ok(self.deliver(release, durable))
            }
        }
    }

    /// Decides the delivery of `stored` to the caller with `policy`: the
    /// batch that records it (a lease, or the refusal that takes the item
    /// out of the inbox), and for a lease what to hand over once it is
    /// durable. Nothing is written here. With `only_free`, the lease
    /// applies only if no other lease on the entry runs now (a batched
    /// fetch takes what is free; a fetch by reference may take its own
    /// entry again).
    fn decide_delivery(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        reference: &str,
        stored: Leased,
        only_free: bool,
    ) -> Result<Decided, GatewayError> {
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
        let policy_digest = policy.digest();
        let now = unix_now();
        let decision = self
            .metrics
            .time_decisions(|| policy.decide(&ItemFacts::from(&item), peer.principal(), now));
        // Never more than was released at submission, whatever the policy
        // says now.
        let released: Vec<u32> = stored
            .released
            .iter()
            .copied()
            .filter(|i| decision.released().contains(i))
            .collect();
        let digest = hex::encode(item.digest());
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
            // Counted as decided, whether or not its commit then succeeds.
            self.metrics.decided("delivery", &decision);
            return Ok(Decided::Refused(Batch {
                change: Change::Refuse {
                    recipient: peer.principal().clone(),
                    item_ref: reference.to_string(),
                    at: now,
                },
                entries: vec![entry],
            }));
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
        let batch = Batch {
            change: Change::Lease {
                recipient: peer.principal().clone(),
                item_ref: reference.to_string(),
                until,
                free_at: only_free.then_some(now),
            },
            entries: vec![entry],
        };
        self.metrics.decided("delivery", &decision);
        let attestation = Attestation {
            item_ref: reference.to_string(),
            item_digest: digest,
            sender: stored.sender,
            recipient: peer.principal().clone(),
            portions: released.clone(),
            effect: record.effect,
            rules: record.rules,
            policy_digest,
            accepted_at: stored.accepted_at,
            time: now,
            audit_index: 0, // filled from the durable indices
        };
        let (envelope, portions) = item.into_parts();
        // Only the released portions leave, moved rather than copied.
        let mut portions: Vec<Option<Portion>> = portions.into_iter().map(Some).collect();
        let portions = released
            .iter()
            .filter_map(|&i| {
                let portion = portions.get_mut(i as usize)?.take()?;
                Some(DeliveredPortion { index: i, portion })
            })
            .collect();
        Ok(Decided::Released {
            batch,
            release: Box::new(Release {
                attestation,
                item: DeliveredItem {
                    envelope: Bytes(envelope),
                    sender_certificate: Bytes(stored.sender_certificate),
                    portions,
                    attestation: Bytes(Vec::new()),
                },
            }),
        })
    }

    /// The item of a lease made durable, with its signed attestation.
    fn deliver(&self, release: Box<Release>, durable: Durable<Appended>) -> DeliveredItem {
        let Release {
            attestation,
            mut item,
        } = *release;
        // Counted here, once the lease is durable: a lease the store did
        // not take (closed, or held by another fetch) is no delivery.
        self.metrics.delivered(&attestation.recipient);
        item.attestation = self.sign_attestation(&durable.attestation(attestation));
        item
    }

    /// Records the caller's acknowledgement of an item.
    pub async fn ack(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<AckOutcome, GatewayError> {
        let acked = self
            .commit(batch::ack_change(peer.principal(), reference, unix_now())?)
            .await?;
        match acked {
            Outcome::Appended(durable) => {
                self.mark_unsigned();
                self.metrics.acknowledged();
                Ok(AckOutcome::Acked(durable.get().first()))
            }
            Outcome::Unchanged(Unchanged::AlreadyDone) => Ok(AckOutcome::AlreadyAcked),
            _ => Err(self.not_yours(peer, reference, "ack").await),
        }
    }

    /// Expires unacknowledged entries of items past their expiry and purges
    /// the content of items past their retention, each on the audit log:
    /// the store says what is due, and each change goes back with its
    /// entry as one batch, applied only if still due (another process may
    /// have swept it meanwhile). All of them share one group commit.
    pub async fn sweep(&self) -> Result<usize, GatewayError> {
        /// Most changes one sweep makes; the next tick takes the rest.
        const SWEEP_LIMIT: u32 = 10_000;
        self.refuse_if_halted()?;
        let store = self.store.clone();
        let now = unix_now();
        let due = blocking(move || store.sweep_due(now, SWEEP_LIMIT)).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut commits = Vec::with_capacity(due.len());
        let expiries: Vec<bool> = due
            .iter()
            .map(|s| matches!(s, Swept::Expired { .. }))
            .collect();
        for swept in due {
            let (change, event) = match swept {
                Swept::Expired {
                    item_ref,
                    recipient,
                } => (
                    Change::Expire {
                        item_ref: item_ref.clone(),
                        recipient: recipient.clone(),
                        at: now,
                    },
                    AuditEvent::Expired {
                        item_ref,
                        recipient,
                    },
                ),
                Swept::Purged { item_ref, digest } => (
                    Change::Purge {
                        item_ref: item_ref.clone(),
                        at: now,
                    },
                    AuditEvent::Purged {
                        item_ref,
                        digest: hex::encode(digest),
                    },
                ),
            };
            let entry =
                BoundedEntry::new(now, event).map_err(|e| GatewayError::Internal(e.to_string()))?;
            commits.push(Batch {
                change,
                entries: vec![entry],
            });
        }
        let mut swept = 0;
        let outcomes = self.commit_all(commits).await?;
        for (outcome, expiry) in outcomes.into_iter().zip(expiries) {
            if let Outcome::Appended(_) = outcome? {
                swept += 1;
                self.metrics.expired(u64::from(expiry));
            }
        }
        if swept > 0 {
            self.mark_unsigned();
        }
        Ok(swept)
    }
}

/// A delivery decided by [`Gateway::decide_delivery`], not yet written.
enum Decided {
    /// The policy refuses: this batch records it and takes the item out of
    /// the inbox.
    Refused(Batch),
    /// Released: the lease with its entry, and what to hand over once it
    /// is durable.
    Released { batch: Batch, release: Box<Release> },
}

/// What a lease hands over once durable: the item without its
/// attestation, and the attestation to sign.
struct Release {
    attestation: Attestation,
    item: DeliveredItem,
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
