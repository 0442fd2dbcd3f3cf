//! Log service: signed checkpoints of the audit log, inclusion and
//! consistency proofs, over the tree that [`AuditLog`] keeps above the
//! store ([`crate::log_service`]: the tree, group commit, the stop on a
//! broken invariant).
//!
//! Before a checkpoint is signed the log catches up with what other
//! processes appended to the same store, so a checkpoint and every proof
//! cut from it cover every committed entry.
//!
//! Every proof is against a signed checkpoint. Need to know holds here: a
//! principal gets a proof only of an entry written for it to read
//! ([`crate::audit::event::AuditEntry::reader`]); any other index answers
//! exactly like one that does not exist.

pub use crate::log_service::AuditLog;

use std::sync::Arc;

use super::refusals::may_audit;
use super::{blocking, unix_now, Gateway, GatewayError};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::event::{AuditEntry, RefusedSubject};
use crate::audit::signed_note::SignerKey;
use crate::domain::bytes::Bytes;
use crate::domain::decision::Decider;
use crate::domain::receipt::InclusionProof;
use crate::store::{StoreError, TreeHead};
use crate::tls::VerifiedPeer;

impl Gateway {
    /// An inclusion proof of entry `index` against the latest checkpoint
    /// that covers it, if there is one.
    pub(super) async fn inclusion_under_latest(
        &self,
        index: u64,
    ) -> Result<Option<InclusionProof>, GatewayError> {
        let log = self.log.clone();
        blocking(move || {
            log.store()
                .latest_checkpoint_above(Some(index))?
                .map(|(size, note)| proof_against(&log, index, size, note))
                .transpose()
        })
        .await
    }

    /// Signs and stores a checkpoint of the log as it is now (unless the
    /// latest one already covers it) and returns the latest signed note.
    ///
    /// Signs only when an event other than counted refusals was appended
    /// since the last one: refusals alone never cost a signature.
    pub async fn checkpoint(&self) -> Result<String, GatewayError> {
        let _one_at_a_time = self.checkpointing.lock().await;
        let log = self.log.clone();
        let unsigned = self
            .unsigned_events
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if !unsigned {
            let latest = {
                let store = self.store.clone();
                blocking(move || store.latest_checkpoint_above(None)).await?
            };
            if let Some((_, note)) = latest {
                return Ok(note);
            }
        }
        let key = self.key.clone();
        let head = self.head.clone();
        let signed = blocking(move || {
            let note = sign_checkpoint(&log, &key.note, unix_now())?;
            // Only after the checkpoint (and so the head) is committed: the
            // head file may lag the store, never lead it.
            if let Some(head) = head {
                head.advance(&note)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(note)
        })
        .await;
        match &signed {
            Ok(note) => {
                self.metrics.checkpoint_signed();
                self.checkpoint_signed(note)
            }
            Err(_) => self.mark_unsigned(),
        }
        signed
    }

    /// An inclusion proof of entry `index` in the tree of `size`, with the
    /// entry, for auditors and for the principals the entry concerns.
    pub async fn inclusion(
        &self,
        peer: &VerifiedPeer,
        policy: &dyn Decider,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, GatewayError> {
        // Sign first, so the latest checkpoint covers the log as it is now.
        self.checkpoint().await?;
        let log = self.log.clone();
        let proof = blocking(move || {
            let store = log.store();
            // The proof is always against a signed checkpoint: the one of
            // the size asked for, or the latest.
            let found = match size {
                None => store.latest_checkpoint_above(None)?,
                Some(size) => store.checkpoint_of_size(size)?.map(|note| (size, note)),
            };
            match found {
                Some((size, note)) if index < size => {
                    proof_against(&log, index, size, note).map(Some)
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
            may_audit(policy, peer)
                // Only entries of the current version: the gateway hands out
                // the stored bytes, and a version 1 acceptance or delivery
                // holds reasons that are not the reader's to see.
                || AuditEntry::decode(&p.entry.0).is_ok_and(|e| {
                    e.v == crate::audit::event::ENTRY_VERSION
                        && e.reader() == Some(peer.principal())
                })
        });
        match visible {
            Some(proof) => Ok(proof),
            None => {
                if !may_audit(policy, peer) {
                    self.count_refusal(
                        RefusedSubject::Principal(peer.principal().clone()),
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
        let log = self.log.clone();
        let size = blocking(move || log.catch_up()).await?;
        if old_size > new_size || new_size > size {
            return Err(GatewayError::BadProofRequest(format!(
                "need old <= new <= {size} (the log's size)"
            )));
        }
        let log = self.log.clone();
        let hashes = blocking(move || log.consistency_proof(old_size, new_size)).await?;
        Ok(hashes.iter().map(|h| Bytes(h.to_vec())).collect())
    }
}

/// Signs and stores a checkpoint of `log` as it is now (after catching up
/// with other processes' appends), unless the latest stored one already
/// covers every entry; returns the latest signed note. Used by the running
/// gateway and by `audit export`. A checkpoint that would take the log back
/// stops appending.
pub fn sign_checkpoint(log: &AuditLog, signer: &SignerKey, now: i64) -> Result<String, StoreError> {
    let r = sign_checkpoint_of(log, signer, now);
    log.watch(r)
}

fn sign_checkpoint_of(log: &AuditLog, signer: &SignerKey, now: i64) -> Result<String, StoreError> {
    log.refuse_if_halted()?;
    let store = log.store();
    log.catch_up()?;
    let latest = store.latest_checkpoint_above(None)?;
    let TreeHead { size, root } = log.head();
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
/// checkpoint `note` of `size`, with the entry: a missing entry is an
/// error (and stops appending), never empty bytes.
fn proof_against(
    log: &Arc<AuditLog>,
    index: u64,
    size: u64,
    note: String,
) -> Result<InclusionProof, StoreError> {
    if log.head().size < size {
        log.catch_up()?;
    }
    let hashes = log.inclusion_proof(index, size)?;
    let entry = log.entry(index)?;
    Ok(InclusionProof {
        entry: Bytes(entry),
        index,
        size,
        hashes: hashes.iter().map(|h| Bytes(h.to_vec())).collect(),
        checkpoint: note,
    })
}
