//! Who may use the exchange, and refusals counted for oversight.
//!
//! Authority comes from the policy a request started with (its
//! configuration snapshot): [`Gateway::authorise`] admits only its
//! principals (and no one once a broken store invariant stopped the
//! gateway) and [`Gateway::may_send`] only those it lets send.
//! Every refusal is counted here, per subject and cause, and reaches the
//! audit log as one `refused` entry per interval
//! ([`Gateway::flush_refusals`]): refusing must stay cheaper than provoking
//! a refusal. Nothing here answers a caller or touches HTTP.

use super::{blocking, unix_now, Gateway, GatewayError};
use crate::audit::event::{clip, AuditEvent, BoundedEntry, RefusedSubject, MAX_TEXT};
use crate::domain::decision::Decider;
use crate::domain::decode::DecodeError;
use crate::domain::principal::PrincipalId;
use crate::limits::BodyError;
use crate::store::{Store, StoreError};
use crate::tls::VerifiedPeer;

/// Why a submitted body never became an item, as the API found while
/// reading it. The API reads bodies; whether the refusal is counted is
/// decided here ([`Gateway::refuse_body`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyRefused {
    /// A media type other than CBOR or JSON.
    #[error("the body's media type is neither CBOR nor JSON")]
    MediaType,
    /// Not read whole: too large, too slow, or cut short.
    #[error(transparent)]
    Read(#[from] BodyError),
    /// Read whole, but not an item: the error names the field, never the
    /// input.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
}

/// Whether `decider` lets `who` submit items.
pub(super) fn sending_right(decider: &dyn Decider, who: &PrincipalId) -> Result<(), GatewayError> {
    if !decider.knows(who) {
        Err(GatewayError::UnknownSender(who.clone()))
    } else if !decider.may_send(who) {
        Err(GatewayError::MayNotSend(who.clone()))
    } else {
        Ok(())
    }
}

/// Whether `policy` lets the caller read every audit entry and proof.
pub(super) fn may_audit(policy: &dyn Decider, peer: &VerifiedPeer) -> bool {
    policy.reads_whole_log(peer.principal())
}

impl Gateway {
    /// Whether the caller is a principal of `policy`, the one in force
    /// when the request started. The API asks on every request but
    /// `/healthz`, so a principal that a reload removed is refused on a
    /// connection it opened before. A refusal is counted under the
    /// caller's principal id.
    pub async fn authorise(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
    ) -> Result<(), GatewayError> {
        // After a broken store invariant the gateway refuses new work.
        self.refuse_if_halted()?;
        if policy.knows(peer.principal()) {
            return Ok(());
        }
        let refusal = GatewayError::UnknownPrincipal(peer.principal().clone());
        self.count_refusal(
            RefusedSubject::Principal(peer.principal().clone()),
            refusal.cause(),
            None,
        );
        Err(refusal)
    }

    /// Whether `policy` lets the caller submit items: checked before the
    /// body is read, and again by [`Gateway::submit`]. A refusal is counted
    /// as a refused submission.
    pub async fn may_send(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
    ) -> Result<(), GatewayError> {
        let right = sending_right(policy, peer.principal());
        if let Err(e) = &right {
            self.record_refused_submission(peer.principal(), e.cause(), None)
                .await;
        }
        right
    }

    /// Counts a body that never became an item as a refused submission,
    /// and returns the error to answer with. A body the client cut short
    /// or trickled is not counted: there was no submission to refuse.
    pub async fn refuse_body(&self, peer: &VerifiedPeer, why: BodyRefused) -> GatewayError {
        let submitted = !matches!(
            why,
            BodyRefused::Read(BodyError::Incomplete | BodyError::TooSlow(_))
        );
        let refusal = GatewayError::Body(why);
        if submitted {
            self.record_refused_submission(peer.principal(), refusal.cause(), None)
                .await;
        }
        refusal
    }

    /// Counts one refusal of `subject` for `cause`; the count reaches the
    /// audit log at the next [`Gateway::flush_refusals`]. Costs a map
    /// update: refusing must stay cheaper than provoking a refusal.
    pub(super) fn count_refusal(&self, subject: RefusedSubject, cause: &str, sample: Option<&str>) {
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
    /// Only counted here (a lock and an insertion, no I/O), so the caller
    /// counts before it answers or closes: a stop's last flush then
    /// finds every refusal made before it.
    pub fn record_refused_connection(&self, peer: &str, cause: &str) {
        // Counted as admission control counts addresses: an IPv6 host
        // usually holds a whole /64, and must not spread its refusals over
        // many subjects.
        let address = match peer.parse::<std::net::SocketAddr>() {
            Ok(a) => match crate::limits::address_key(a.ip()) {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("{v6}/64"),
            },
            Err(_) => clip(peer, 64),
        };
        self.count_refusal(RefusedSubject::Address(address), cause, None);
    }

    /// Counts a request or connection of `principal` refused by admission
    /// control (over its rate or one of its budgets): a station that
    /// hammers the gateway is on the log under its own name.
    pub fn record_refused_admission(&self, principal: &PrincipalId, cause: &str) {
        if cause != "identity-refused" {
            self.metrics.rate_limited(principal, cause);
        }
        self.count_refusal(RefusedSubject::Principal(principal.clone()), cause, None);
    }

    /// Counts that `peer` asked for an item that is not (or no longer)
    /// theirs to `action`, and returns the error to answer with.
    pub(super) async fn not_yours(
        &self,
        peer: &VerifiedPeer,
        item_ref: &str,
        action: &str,
    ) -> GatewayError {
        if self.lost.concerns(item_ref, peer.principal()) {
            return GatewayError::ItemLost(item_ref.to_string());
        }
        self.count_refusal(
            RefusedSubject::Principal(peer.principal().clone()),
            &format!("not-yours-to-{action}"),
            Some(item_ref),
        );
        GatewayError::NotFound
    }

    /// One of the caller's own records, found by reference with `lookup` (a
    /// store read, run off the async runtime); when there is none, the
    /// refusal [`Gateway::not_yours`] counts and answers, for `action`.
    pub(super) async fn own<T: Send + 'static>(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
        action: &str,
        lookup: impl FnOnce(&dyn Store, &PrincipalId, &str) -> Result<Option<T>, StoreError>
            + Send
            + 'static,
    ) -> Result<T, GatewayError> {
        let store = self.store.clone();
        let who = peer.principal().clone();
        let r = reference.to_string();
        match blocking(move || lookup(store.as_ref(), &who, &r)).await? {
            Some(found) => Ok(found),
            None => Err(self.not_yours(peer, reference, action).await),
        }
    }

    /// Records a reload that was refused, with the `files` it read and
    /// what it would have `changed`.
    pub async fn record_refused_policy(
        &self,
        reason: String,
        files: Vec<crate::audit::event::ConfigFile>,
        changed: Vec<String>,
    ) {
        if let Err(e) = self
            .record(vec![AuditEvent::PolicyRefused {
                files,
                reason: clip(&reason, MAX_TEXT),
                changed,
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
}
