//! The durable store: the contract every backend keeps.
//!
//! [`Store`] is deliberately small so that the embedded backend
//! ([`sqlite::SqliteStore`]) and a later PostgreSQL backend for several
//! gateway instances can both honour it. Its promises are in MUST words on
//! each method. The store persists what the gateway decided; it never
//! decides, verifies signatures or reads the clock.

pub mod sqlite;

use crate::domain::item::{Portion, Priority};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;

/// Why the store failed. Operator's fault (disk, permissions) or a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine reported an error.
    #[error("store: {0}")]
    Backend(String),
    /// Stored bytes did not decode: corruption or a bug.
    #[error("store: stored record is corrupt: {0}")]
    Corrupt(String),
}

/// An accepted item, ready to be made durable with its inbox entries.
#[derive(Clone, Debug)]
pub struct NewItem {
    /// Gateway reference.
    pub item_ref: String,
    /// Sender.
    pub sender: PrincipalId,
    /// Sender's id.
    pub item_id: String,
    /// SHA-256 of the signed manifest.
    pub digest: [u8; 32],
    /// Priority, for inbox order (FLASH first).
    pub priority: Priority,
    /// Acceptance time.
    pub accepted_at: i64,
    /// When the item stops being deliverable.
    pub expires_at: Option<i64>,
    /// The sender's COSE_Sign1 envelope.
    pub envelope: Vec<u8>,
    /// The certificate the sender presented.
    pub sender_certificate: Vec<u8>,
    /// All portions.
    pub portions: Vec<Portion>,
    /// One inbox entry per allowed recipient, with the portions released.
    pub deliveries: Vec<(PrincipalId, Vec<u32>)>,
    /// The receipt returned to the sender.
    pub receipt: Receipt,
}

/// What [`Store::commit_item`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Newly stored; the receipt is durable.
    Committed(Receipt),
    /// The same sender already submitted this id with the same digest:
    /// nothing written, the original receipt returned.
    Duplicate(Receipt),
    /// The same sender already submitted this id with other content.
    Conflict,
}

/// One deliverable item in a recipient's inbox.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboxEntry {
    /// Gateway reference, for fetch and ack.
    pub item_ref: String,
    /// Sender.
    pub sender: PrincipalId,
    /// Sender's id.
    pub item_id: String,
    /// Priority.
    pub priority: Priority,
    /// Acceptance time.
    pub accepted_at: i64,
    /// How many times it was fetched before.
    pub deliveries: u32,
}

/// An item leased to a recipient for delivery.
#[derive(Clone, Debug)]
pub struct Leased {
    /// The sender.
    pub sender: PrincipalId,
    /// The sender's envelope.
    pub envelope: Vec<u8>,
    /// The sender's certificate.
    pub sender_certificate: Vec<u8>,
    /// All portions (the gateway releases only `released`).
    pub portions: Vec<Portion>,
    /// Portions released at submission.
    pub released: Vec<u32>,
}

/// What [`Store::ack`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded now.
    Acked,
    /// Already acknowledged before: nothing changed.
    AlreadyAcked,
    /// No such item in this recipient's inbox.
    NotFound,
}

/// The store contract.
pub trait Store: Send + Sync + 'static {
    /// Stores an item, its inbox entries and its receipt.
    ///
    /// MUST return `Committed` only once all of them are durable together
    /// (one transaction, fsynced): after a crash either all are there or
    /// none. MUST return `Duplicate`/`Conflict` without writing when the
    /// sender already stored this item id.
    fn commit_item(&self, item: NewItem) -> Result<CommitOutcome, StoreError>;

    /// Deliverable items of `recipient` at `now`: not acknowledged, not
    /// under a lease that runs past `now`, not expired; FLASH first, then
    /// in acceptance order. At most `limit` entries.
    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError>;

    /// Leases `item_ref` to `recipient` until `lease_until` and returns it,
    /// or `None` when the recipient has no unacknowledged entry for it.
    /// MUST NOT hand out an entry that was acknowledged.
    fn lease(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        lease_until: i64,
    ) -> Result<Option<Leased>, StoreError>;

    /// Records the recipient's acknowledgement durably.
    fn ack(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
    ) -> Result<AckOutcome, StoreError>;

    /// The receipt of an item, for its sender only.
    fn receipt(&self, sender: &PrincipalId, item_ref: &str) -> Result<Option<Receipt>, StoreError>;
}
