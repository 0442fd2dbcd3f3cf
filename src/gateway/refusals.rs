//! Who may use the exchange, and refusals counted for oversight.
//!
//! Authority comes from the decider in force: [`Gateway::authorise`] admits
//! only its principals (and no one once a broken store invariant stopped
//! the gateway) and [`Gateway::may_send`] only those it lets send.
//! Every refusal is counted here, per subject and cause, and reaches the
//! audit log as one `refused` entry per interval
//! ([`Gateway::flush_refusals`]): refusing must stay cheaper than provoking
//! a refusal. Nothing here answers a caller or touches HTTP.

use super::{unix_now, Gateway, GatewayError};
use crate::audit::event::{clip, AuditEvent, BoundedEntry, RefusedSubject, MAX_TEXT};
use crate::domain::decision::Decider;
use crate::domain::principal::PrincipalId;
use crate::tls::VerifiedPeer;

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

impl Gateway {
    /// Whether the caller is a principal of the policy in force now. The
    /// API asks on every request but `/healthz`, so a principal that a
    /// reload removed is refused on a connection it opened before. A
    /// refusal is counted under the caller's principal id.
    pub async fn authorise(&self, peer: &VerifiedPeer) -> Result<(), GatewayError> {
        // After a broken store invariant the gateway refuses new work.
        self.refuse_if_halted()?;
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
    pub(super) async fn not_yours(
        &self,
        peer: &VerifiedPeer,
        item_ref: &str,
        action: &str,
    ) -> GatewayError {
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
}
