//! Submission: from a verified peer's signed item to a durable receipt.
//!
//! Settles who may send before any expensive work, verifies the sender's
//! signature with the connection's certificate key, decides for each
//! recipient, and commits item, inbox entries and audit entries in one
//! store transaction before the receipt is signed. It never answers
//! before the commit returns.

use super::refusals::sending_right;
use super::{blocking, recorded, unix_now, Gateway, GatewayError, Submitted};
use crate::audit::event::{AuditEvent, BoundedEntry};
use crate::domain::decision::{Decider, Decision, ItemFacts};
use crate::domain::item::{ItemError, SignedItem};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::{item_ref, Receipt, RecipientOutcome};
use crate::store::{Batch, Change, NewItem, Outcome, Unchanged};
use crate::tls::VerifiedPeer;

impl Gateway {
    /// Submits an item from `peer`, deciding with `policy` (the one the
    /// request started with). A refusal (anything but a store failure) is
    /// counted on the audit log with the digest of the refused envelope.
    pub async fn submit(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        item: SignedItem,
    ) -> Result<Submitted, GatewayError> {
        // Kept as bytes: written out only for a refusal.
        let refused_digest = crate::domain::bytes::sha256(&item.envelope.0);
        let outcome = self.accept(peer, policy, item).await;
        if let Err(e) = &outcome {
            if !matches!(
                e,
                GatewayError::Store(_) | GatewayError::Internal(_) | GatewayError::Halted(_)
            ) {
                let digest = hex::encode(refused_digest);
                self.record_refused_submission(peer.principal(), e.cause(), Some(&digest))
                    .await;
            }
        }
        outcome
    }

    async fn accept(
        &self,
        peer: &VerifiedPeer,
        decider: &dyn Decider,
        item: SignedItem,
    ) -> Result<Submitted, GatewayError> {
        // Who may send is settled before the signature is checked: a
        // refusal costs the gateway less than the caller spent.
        sending_right(decider, peer.principal())?;
        // From here until its batch is queued, the log's writer may wait a
        // little for this item rather than commit a group without it.
        let coming = self.log.coming();
        let item = item.verify(peer.public_key())?;
        let header = &item.manifest().header.clone();
        if header.sender != *peer.principal() {
            return Err(GatewayError::SenderMismatch {
                declared: header.sender.clone(),
                caller: peer.principal().clone(),
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
        let decisions: Vec<Decision> = self.metrics.time_decisions(|| {
            header
                .recipients
                .iter()
                .map(|r| decider.decide(&facts, r, now))
                .collect()
        });
        let reference = item_ref(&header.sender, &header.id);
        let digest = hex::encode(item.digest());
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
            audit_index: 0, // filled from the durable indices after the commit
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
                label: item.manifest().label.clone(),
                portion_labels: item.portions().iter().map(|p| p.label.clone()).collect(),
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
            .retention_days(&item.manifest().label.level)
            .map(|days| now.saturating_add(i64::from(days) * 86_400));
        let digest_bytes = *item.digest();
        let (envelope, portions) = item.into_parts();
        let new = NewItem {
            purge_after,
            answer_due: due,
            answers,
            item_ref: reference,
            sender: header.sender.clone(),
            item_id: header.id.clone(),
            digest: digest_bytes,
            priority: header.priority,
            accepted_at: now,
            expires_at: header.expires,
            deliveries: decisions
                .iter()
                .filter(|d| d.allowed())
                .map(|d| (d.recipient().clone(), d.portions().to_vec()))
                .collect(),
            envelope,
            sender_certificate: peer.certificate().to_vec(),
            portions,
            receipt: receipt.clone(),
        };
        let id = new.item_id.clone();
        let recipients: Vec<PrincipalId> = new.deliveries.iter().map(|(r, _)| r.clone()).collect();
        let batch = Batch {
            change: Change::Item(Box::new(new)),
            entries,
        };
        match self.commit_coming(batch, Some(coming)).await? {
            Outcome::Appended(durable) => {
                self.mark_unsigned();
                self.metrics
                    .accepted(header.priority, &header.sender, &decisions);
                self.wake(&recipients);
                Ok(Submitted::Accepted(
                    self.sign_receipt(durable.receipt(receipt)),
                ))
            }
            Outcome::Duplicate(r) => Ok(Submitted::AlreadyAccepted(self.sign_receipt(r))),
            Outcome::Conflict => Err(GatewayError::Conflict(id)),
            Outcome::Unchanged(Unchanged::NotFound | Unchanged::AlreadyDone) => Err(
                GatewayError::Internal("the store did not store an item nor say why".into()),
            ),
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
}
