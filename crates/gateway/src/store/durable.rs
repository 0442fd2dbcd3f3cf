//! `Durable<T>`: the proof, as a type, that a store commit made `T` durable.
//!
//! This module owns the one type the gateway cannot make by itself: a
//! [`Durable`] value is built only by a store backend (its constructor is
//! visible to the `store` module alone), after the transaction that wrote
//! it committed. It never writes, reads or decides anything.
//!
//! The model is rustls's `ClientCertVerified`: a verifier returns a value
//! that only it can construct, and the code that goes on (the handshake
//! there, signing here) asks for that value. So the gateway's
//! `sign_receipt` and `sign_attestation` take a `Durable<Receipt>` and a
//! `Durable<Attestation>`, and the only ways to get one are a commit
//! ([`Durable<Appended>`] from [`super::Store::append`], then
//! [`Durable::receipt`] or [`Durable::attestation`]) or a read of what a
//! commit stored ([`super::Store::receipt`]). A code path that signs
//! before (or without) committing does not compile.

use std::ops::Range;

use crate::audit::rfc9162::Hash;
use crate::domain::attestation::Attestation;
use crate::domain::receipt::Receipt;

/// A value that a store commit made durable: what it says is on disk (or
/// in the database), and survives a crash. Only the store module
/// constructs one, and it is not `Clone`: one commit, one proof.
#[derive(Debug, PartialEq, Eq)]
pub struct Durable<T>(T);

impl<T> Durable<T> {
    /// Only a backend, once its transaction committed, says a value is
    /// durable.
    pub(in crate::store) fn committed(value: T) -> Self {
        Durable(value)
    }

    /// The durable value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The value, leaving the proof behind (for storage or display; it can
    /// no longer be signed).
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// What one batch appended to the audit log: the indices its entries took
/// (consecutive, in the order the batch gave them) and each entry's leaf
/// hash, so that the log service extends its tree without reading back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    first: u64,
    leaves: Vec<Hash>,
}

impl Appended {
    /// Entries appended from index `first`, with these leaf hashes.
    pub(in crate::store) fn new(first: u64, leaves: Vec<Hash>) -> Self {
        Appended { first, leaves }
    }

    /// Index of the batch's first entry (for an item, its acceptance).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The indices the batch's entries took.
    pub fn indices(&self) -> Range<u64> {
        self.first..self.first + self.leaves.len() as u64
    }

    /// The entries' leaf hashes, in index order.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }
}

impl Durable<Appended> {
    /// The receipt of the item this batch stored, with its `audit_index`
    /// set to the batch's first index: the item's acceptance entry, which
    /// the gateway puts first in the batch. Takes the proof: one commit
    /// vouches for one receipt.
    pub fn receipt(self, mut receipt: Receipt) -> Durable<Receipt> {
        receipt.audit_index = self.0.first;
        Durable(receipt)
    }

    /// The attestation of the delivery this batch recorded, with its
    /// `audit_index` set to the batch's first index (the delivery entry).
    /// Takes the proof: one commit vouches for one attestation.
    pub fn attestation(self, mut attestation: Attestation) -> Durable<Attestation> {
        attestation.audit_index = self.0.first;
        Durable(attestation)
    }
}
