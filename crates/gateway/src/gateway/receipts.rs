//! What the gateway vouches for to stations: signed receipts and delivery
//! attestations, built and signed in one place with the gateway's key.
//!
//! Ed25519 is deterministic, so a receipt signed again gives the same
//! bytes and stored receipts need no stored signature.

use super::{Gateway, GatewayError};
use crate::domain::attestation::{Attestation, ATTESTATION_CONTENT_TYPE};
use crate::domain::bytes::{to_cbor, Bytes};
use crate::domain::receipt::{Receipt, SignedReceipt, RECEIPT_CONTENT_TYPE};
use crate::store::Durable;
use crate::tls::VerifiedPeer;

impl Gateway {
    /// Signs a receipt that a store commit made durable: there is no way
    /// to sign one before its item and acceptance entry are committed.
    pub(super) fn sign_receipt(&self, receipt: Durable<Receipt>) -> SignedReceipt {
        let receipt = receipt.into_inner();
        // Ed25519 is deterministic: signing the same receipt again gives the
        // same bytes, so stored receipts need no stored signature.
        let cose = self.key.cose.sign1(to_cbor(&receipt), RECEIPT_CONTENT_TYPE);
        SignedReceipt {
            receipt,
            cose: Bytes(cose),
            inclusion: None,
        }
    }

    /// The COSE_Sign1 of a delivery attestation, as handed to the
    /// recipient with the item; only once the delivery's entry is durable.
    pub(super) fn sign_attestation(&self, attestation: &Durable<Attestation>) -> Bytes {
        Bytes(
            self.key
                .cose
                .sign1(to_cbor(attestation.get()), ATTESTATION_CONTENT_TYPE),
        )
    }

    /// The signed receipt of one of the caller's own items, with an
    /// inclusion proof when a checkpoint covers its audit entry.
    pub async fn receipt(
        &self,
        peer: &VerifiedPeer,
        reference: &str,
    ) -> Result<SignedReceipt, GatewayError> {
        let receipt = self
            .own(peer, reference, "receipt", |store, who, r| {
                store.receipt(who, r)
            })
            .await?;
        let index = receipt.get().audit_index;
        let mut signed = self.sign_receipt(receipt);
        signed.inclusion = self.inclusion_under_latest(index).await?;
        Ok(signed)
    }
}
