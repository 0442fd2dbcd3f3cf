//! Checking what the gateway vouched for, with nothing but its public key:
//! signed receipts (and their inclusion proofs) and delivery attestations.
//!
//! A station checks a receipt when it submits and an attestation when it
//! fetches; an auditor checks a receipt a sender kept, years later, offline
//! (`passerelle audit check-receipt`). The one key is the gateway's
//! signed-note verifier key: its Ed25519 public key also verifies the
//! COSE_Sign1 signatures. Pure: no I/O, no clock.

use super::checkpoint::Checkpoint;
use super::event::{AuditEntry, AuditEvent};
use super::rfc9162::{leaf_hash, verify_inclusion, Hash};
use super::signed_note::VerifierKey;
use crate::domain::attestation::{Attestation, ATTESTATION_CONTENT_TYPE};
use crate::domain::bytes::{from_cbor, to_cbor, Bytes};
use crate::domain::cose::PublicKey;
use crate::domain::receipt::{InclusionProof, Receipt, SignedReceipt, RECEIPT_CONTENT_TYPE};

/// Why a receipt, proof or attestation does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VouchError {
    /// The gateway's signature does not verify with this key.
    #[error("the gateway's signature does not verify with the given key: {0}")]
    Signature(String),
    /// The signed bytes and the readable copy differ.
    #[error("the signed content differs from the content shown")]
    Mismatch,
    /// The checkpoint is not signed by the key, or is for another log.
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(String),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("the inclusion proof does not match the checkpoint: {0}")]
    Proof(String),
    /// The audit entry is not the one for this receipt.
    #[error("the proven audit entry is not this receipt's: {0}")]
    WrongEntry(String),
}

fn cose_key(key: &VerifierKey) -> PublicKey {
    PublicKey::Ed25519(key.public_key().to_vec())
}

/// What a successful receipt check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedReceipt {
    /// The receipt.
    pub receipt: Receipt,
    /// Size of the checkpoint whose tree includes the receipt's entry, when
    /// the receipt carried a proof.
    pub included_in: Option<u64>,
}

/// Checks an inclusion proof against its signed checkpoint; returns the
/// decoded entry.
pub fn check_inclusion(
    proof: &InclusionProof,
    key: &VerifierKey,
) -> Result<AuditEntry, VouchError> {
    let (checkpoint, _) = Checkpoint::open(
        proof.checkpoint.as_bytes(),
        key.name(),
        std::slice::from_ref(key),
    )
    .map_err(|e| VouchError::Checkpoint(e.to_string()))?;
    if checkpoint.size != proof.size {
        return Err(VouchError::Proof(format!(
            "proof for size {} but checkpoint of size {}",
            proof.size, checkpoint.size
        )));
    }
    let hashes: Vec<Hash> = proof
        .hashes
        .iter()
        .map(|h| {
            h.0.as_slice()
                .try_into()
                .map_err(|_| VouchError::Proof("a hash is not 32 bytes".into()))
        })
        .collect::<Result<_, _>>()?;
    verify_inclusion(
        &leaf_hash(&proof.entry.0),
        proof.index,
        proof.size,
        &hashes,
        &checkpoint.root,
    )
    .map_err(|e| VouchError::Proof(e.to_string()))?;
    AuditEntry::decode(&proof.entry.0).map_err(|e| VouchError::WrongEntry(e.to_string()))
}

/// Checks a signed receipt and, when present, its inclusion proof.
pub fn check_receipt(
    signed: &SignedReceipt,
    key: &VerifierKey,
) -> Result<CheckedReceipt, VouchError> {
    let payload = cose_key(key)
        .verify1_as(&signed.cose.0, RECEIPT_CONTENT_TYPE)
        .map_err(|e| VouchError::Signature(e.to_string()))?;
    let receipt: Receipt = from_cbor(&payload).map_err(|_| VouchError::Mismatch)?;
    if receipt != signed.receipt || payload != to_cbor(&signed.receipt) {
        return Err(VouchError::Mismatch);
    }
    let included_in = match &signed.inclusion {
        None => None,
        Some(proof) => {
            if proof.index != receipt.audit_index {
                return Err(VouchError::WrongEntry(format!(
                    "proof is for entry {}, the receipt names entry {}",
                    proof.index, receipt.audit_index
                )));
            }
            let entry = check_inclusion(proof, key)?;
            match entry.event {
                AuditEvent::ItemAccepted {
                    item_ref,
                    digest,
                    sender,
                    ..
                } if item_ref == receipt.item_ref
                    && digest == receipt.digest
                    && sender == receipt.sender => {}
                _ => {
                    return Err(VouchError::WrongEntry(
                        "it does not record this item's acceptance".into(),
                    ))
                }
            }
            Some(proof.size)
        }
    };
    Ok(CheckedReceipt {
        receipt,
        included_in,
    })
}

/// Checks a delivery attestation's signature and returns it.
pub fn check_attestation(cose: &Bytes, key: &VerifierKey) -> Result<Attestation, VouchError> {
    let payload = cose_key(key)
        .verify1_as(&cose.0, ATTESTATION_CONTENT_TYPE)
        .map_err(|e| VouchError::Signature(e.to_string()))?;
    from_cbor(&payload).map_err(|_| VouchError::Mismatch)
}
