//! Batched delivery: several items fetched in one request
//! (`GET /v1/inbox?fetch=N`) and several acknowledged in one
//! (`POST /v1/acks`).
//!
//! A batch does per item exactly what the single fetch or acknowledgement
//! does — the same decision with the policy in force, the same attestation,
//! the same audit entry, the same refusal (counted the same way) for a
//! reference that is not the caller's — and only shares the work around
//! it: one store hand-off for the reads, one group commit for the writes.
//! Two batched fetches of one principal (two agents of one station) never
//! lease the same item: a fetch claims under its principal's lock, so the
//! second sees the first's leases. This module must never hand out an item
//! before its lease and entry are durable, nor answer a reference that is
//! not the caller's differently from the single acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use super::{Decided, Release};
use crate::audit::event::{AuditEvent, BoundedEntry};
use crate::domain::decision::Decider;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::ItemRef;
use crate::domain::wire::{FetchedItem, InboxEntry, MAX_BATCH};
use crate::gateway::{blocking, unix_now, Gateway, GatewayError};
use crate::store::{AckOutcome, Batch, Change, Leased, Outcome, Unchanged};
use crate::tls::VerifiedPeer;

/// Most bytes of items (envelopes, certificates, portions) one batched
/// fetch hands out, beyond its first item: the answer is held in memory
/// whole, so its size is bounded whatever the caller asks.
const FETCH_BYTES: usize = 16 << 20;

/// What a batched fetch hands over.
#[derive(Debug, Default)]
pub struct FetchedBatch {
    /// Items leased to the caller, in inbox order, each with its signed
    /// attestation.
    pub items: Vec<FetchedItem>,
    /// References the policy in force refused to the caller (audited, and
    /// out of its inbox).
    pub refused: Vec<String>,
}

/// One reference's outcome in a batched acknowledgement.
#[derive(Debug)]
pub enum AckedRef {
    /// Recorded now or before.
    Done(AckOutcome),
    /// Refused as the single acknowledgement refuses it.
    Refused(GatewayError),
}

impl Gateway {
    /// Leases up to `n` of the caller's deliverable items (at most
    /// [`MAX_BATCH`]) and hands them out with their attestations, waiting
    /// up to `wait` for one to arrive. Each is decided again with
    /// `policy`, as [`Gateway::fetch`] does; refused ones are audited and
    /// named in [`FetchedBatch::refused`].
    pub async fn fetch_batch(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        wait: Duration,
        n: u32,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<FetchedBatch, GatewayError> {
        let n = n.clamp(1, MAX_BATCH);
        let deadline = tokio::time::Instant::now() + wait.min(self.settings.max_wait);
        // Bounded by the deadline: each turn either claims, or waits for an
        // arrival (or the deadline) in the long-poll.
        loop {
            if let Some(fetched) = self.claim(peer, policy, n).await? {
                return Ok(fetched);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || *shutdown.borrow() {
                return Ok(FetchedBatch::default());
            }
            self.inbox(peer, left, 1, shutdown).await?;
        }
    }

    /// Under the caller's claim lock: reads what is pending, decides each
    /// item and commits every lease or refusal in one group commit. `None`
    /// when nothing was pending.
    async fn claim(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        n: u32,
    ) -> Result<Option<FetchedBatch>, GatewayError> {
        let _claim = Claim::take(self, peer.principal()).await;
        let store = self.store.clone();
        let who = peer.principal().clone();
        let now = unix_now();
        // One hand-off for the listing and every read.
        let found = blocking(move || {
            let mut found: Vec<(InboxEntry, Leased)> = Vec::new();
            let mut bytes = 0usize;
            let pending = store.pending(&who, now, n)?;
            let listed = !pending.is_empty();
            for entry in pending {
                if bytes >= FETCH_BYTES {
                    break;
                }
                // Gone meanwhile (acknowledged by a single ack): skipped.
                if let Some(stored) = store.peek(&who, &entry.item_ref)? {
                    bytes = bytes.saturating_add(size_of(&stored));
                    found.push((entry, stored));
                }
            }
            Ok((found, listed))
        });
        let (found, listed) = found.await?;
        if !listed {
            return Ok(None);
        }
        let mut batches = Vec::with_capacity(found.len());
        let mut kept = Vec::with_capacity(found.len());
        for (entry, stored) in found {
            let reference = entry.item_ref.clone();
            match self.decide_delivery(peer, policy, &reference, stored, true) {
                Ok(Decided::Refused(batch)) => {
                    batches.push(batch);
                    kept.push((entry, None));
                }
                Ok(Decided::Released { batch, release }) => {
                    batches.push(batch);
                    kept.push((entry, Some(release)));
                }
                // A stored item that no longer verifies is the operator's
                // problem (its single fetch answers `internal`); the others
                // still go out.
                Err(e) => tracing::error!(item_ref = %reference, error = %e, "not delivered"),
            }
        }
        if batches.is_empty() {
            return Ok(Some(FetchedBatch::default()));
        }
        let outcomes = self.commit_all(batches).await?;
        self.mark_unsigned();
        let mut fetched = FetchedBatch::default();
        for ((entry, release), outcome) in kept.into_iter().zip(outcomes) {
            match (release, outcome?) {
                (None, _) => fetched.refused.push(entry.item_ref),
                (Some(release), Outcome::Appended(durable)) => {
                    fetched.items.push(self.fetched(entry, release, durable))
                }
                // Closed between the read and the commit: not handed out.
                (Some(_), _) => {}
            }
        }
        Ok(Some(fetched))
    }

    fn fetched(
        &self,
        entry: InboxEntry,
        release: Box<Release>,
        durable: crate::store::Durable<crate::store::Appended>,
    ) -> FetchedItem {
        FetchedItem {
            entry,
            item: self.deliver(release, durable),
        }
    }

    /// Acknowledges each of `refs` (at most [`MAX_BATCH`]: the API refuses
    /// more), all in one group commit, each with its own audit entry. The
    /// results are in the order given; a reference that is not the
    /// caller's (or not a reference) gets exactly what the single
    /// acknowledgement answers, counted the same way.
    pub async fn ack_batch(
        &self,
        peer: &VerifiedPeer,
        refs: &[String],
    ) -> Result<Vec<AckedRef>, GatewayError> {
        let now = unix_now();
        let mut batches = Vec::with_capacity(refs.len());
        let mut well_formed = Vec::with_capacity(refs.len());
        for r in refs {
            match ItemRef::parse(r) {
                Some(r) => {
                    batches.push(ack_change(peer.principal(), r.as_str(), now)?);
                    well_formed.push(Some(r));
                }
                None => well_formed.push(None),
            }
        }
        let mut outcomes = if batches.is_empty() {
            Vec::new()
        } else {
            self.commit_all(batches).await?
        }
        .into_iter();
        let mut results = Vec::with_capacity(refs.len());
        let mut appended = false;
        for r in well_formed {
            let Some(r) = r else {
                // As a malformed path: not found, not counted.
                results.push(AckedRef::Refused(GatewayError::NotFound));
                continue;
            };
            let outcome = outcomes.next().ok_or_else(|| {
                GatewayError::Internal("an acknowledgement lost its outcome".into())
            })?;
            let result = match outcome? {
                Outcome::Appended(durable) => {
                    appended = true;
                    self.metrics.acknowledged();
                    AckedRef::Done(AckOutcome::Acked(durable.get().first()))
                }
                Outcome::Unchanged(Unchanged::AlreadyDone) => {
                    AckedRef::Done(AckOutcome::AlreadyAcked)
                }
                _ => AckedRef::Refused(self.not_yours(peer, r.as_str(), "ack").await),
            };
            results.push(result);
        }
        if appended {
            self.mark_unsigned();
        }
        Ok(results)
    }
}

/// The batch recording `recipient`'s acknowledgement of `reference` at
/// `now`: the one write of every acknowledgement, single or batched.
pub(super) fn ack_change(
    recipient: &PrincipalId,
    reference: &str,
    now: i64,
) -> Result<Batch, GatewayError> {
    let entry = BoundedEntry::new(
        now,
        AuditEvent::Acknowledged {
            item_ref: reference.to_string(),
            recipient: recipient.clone(),
        },
    )
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(Batch {
        change: Change::Ack {
            recipient: recipient.clone(),
            item_ref: reference.to_string(),
            at: now,
        },
        entries: vec![entry],
    })
}

/// The bytes a stored item adds to an answer.
fn size_of(stored: &Leased) -> usize {
    stored.envelope.len()
        + stored.sender_certificate.len()
        + stored
            .portions
            .iter()
            .map(|p| p.body.0.len() + p.salt.0.len() + p.content_type.len())
            .sum::<usize>()
}

/// A principal's claim lock, held while a batched fetch reads and leases;
/// the map entry goes when the last holder or waiter of that principal
/// is done.
struct Claim<'a> {
    gateway: &'a Gateway,
    principal: PrincipalId,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<'a> Claim<'a> {
    async fn take(gateway: &'a Gateway, principal: &PrincipalId) -> Claim<'a> {
        let lock = {
            let mut claims = gateway.claims.lock().unwrap_or_else(|p| p.into_inner());
            claims.entry(principal.clone()).or_default().clone()
        };
        // Made before the wait, so that a cancelled wait still cleans up.
        let mut claim = Claim {
            gateway,
            principal: principal.clone(),
            lock: lock.clone(),
            guard: None,
        };
        claim.guard = Some(lock.lock_owned().await);
        claim
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claims = self
            .gateway
            .claims
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.guard.take();
        // Clones are made only under the map's lock: the map's and ours
        // mean no one else holds or waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            claims.remove(&self.principal);
        }
    }
}
