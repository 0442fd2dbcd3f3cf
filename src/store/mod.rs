//! The durable store: the contract every backend keeps.
//!
//! [`Store`] is deliberately small so that the embedded backend
//! ([`sqlite::SqliteStore`]) and a later PostgreSQL backend for several
//! gateway instances can both honour it. Its promises are in MUST words on
//! each method. The store persists what the gateway decided; it never
//! decides or reads the clock, and it signs and checks its seal only
//! through the [`Sealer`] it was opened with: it never holds the gateway's
//! key.

pub mod sqlite;

use crate::audit::event::{BoundedEntry, EntryTooLarge};
use crate::audit::rfc9162::Hash;
use crate::domain::item::{Portion, Priority};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;
/// Rows of the inbox and of the open requests are handed out in their wire
/// form: the store adds nothing a station may not see.
pub use crate::domain::wire::{InboxEntry, OpenRequest};

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
    /// A request for a proof or root outside the tree: the caller's fault.
    #[error("audit: {0}")]
    Proof(String),
    /// The audit log broke an invariant (e.g. a checkpoint going back, or a
    /// stored checkpoint that does not match the stored entries). Fatal:
    /// the gateway stops appending rather than repair silently.
    #[error("audit invariant broken: {0}")]
    Invariant(String),
    /// What the store holds disagrees with what the gateway signed: the
    /// database was edited, rolled back or wiped behind the gateway's back
    /// (or the disk failed). The operator's problem; fatal at start.
    #[error("the store was changed behind the gateway's back: {0}")]
    Tampered(Tamper),
}

/// How the stored audit log disagrees with a head the gateway signed (its
/// seal, a published checkpoint, or the head file kept beside its key).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// Audit entries are stored but no seal covers them.
    Unsealed {
        /// Entries stored.
        stored: u64,
    },
    /// The seal or a published checkpoint is not signed by the gateway's
    /// key (or is not a checkpoint of this log).
    BadSignature {
        /// Which head: `seal`, `checkpoint of size N`, `head file`.
        what: String,
        /// Why it does not verify.
        reason: String,
    },
    /// More entries are stored than the seal covers: someone wrote them.
    EntriesAfterSeal {
        /// Entries the seal covers.
        sealed: u64,
        /// Entries stored.
        stored: u64,
    },
    /// Fewer entries are stored than a signed head covers: the log was
    /// truncated, rolled back or wiped.
    Truncated {
        /// Which head: `seal`, `checkpoint`, `head file`.
        what: String,
        /// Entries the head covers.
        signed: u64,
        /// Entries stored.
        stored: u64,
    },
    /// The stored entries do not produce the root a signed head gives for
    /// its size: entries were changed (or the log replaced by another).
    EntriesChanged {
        /// Which head: `seal`, `checkpoint`, `head file`.
        what: String,
        /// The head's size: a change is among the first `size` entries.
        size: u64,
    },
    /// The gateway signed a head for this log before (its head file is
    /// there) but the head file is gone, or the store holds a log and the
    /// head file does not: the gateway cannot tell a rollback.
    NoHeadFile {
        /// Entries stored.
        stored: u64,
    },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::Unsealed { stored } => {
                write!(f, "{stored} audit entries are stored but no seal covers them")
            }
            Tamper::BadSignature { what, reason } => write!(
                f,
                "the {what} does not verify with the gateway's key: {reason}"
            ),
            Tamper::EntriesAfterSeal { sealed, stored } => write!(
                f,
                "{} audit entries after the seal of size {sealed} were not written by the gateway ({stored} stored)",
                stored - sealed
            ),
            Tamper::Truncated {
                what,
                signed,
                stored,
            } => write!(
                f,
                "the audit log was truncated, rolled back or wiped: the {what} covers {signed} entries, {stored} are stored"
            ),
            Tamper::EntriesChanged { what, size } => write!(
                f,
                "audit entries were changed: the first {size} stored entries do not give the root of the {what}"
            ),
            Tamper::NoHeadFile { stored } => write!(
                f,
                "the store holds an audit log of {stored} entries but the gateway's head file is missing, so a rollback cannot be ruled out"
            ),
        }
    }
}

/// Signs and checks the store's seal: a signed tree head (a C2SP checkpoint
/// note) that every transaction appending to the audit log writes with its
/// entries, so that no entry is ever on disk without a signature covering
/// it. The gateway gives the store a sealer made from its key; the store
/// calls it and never sees the key.
pub trait Sealer: Send + Sync + 'static {
    /// A signed note of `head`.
    fn seal(&self, head: TreeHead) -> Result<String, String>;
    /// The head that `note` signs, if the gateway's key signed it for this
    /// log; otherwise why not.
    fn unseal(&self, note: &str) -> Result<TreeHead, String>;
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
    /// When the content is to be purged (end of retention), if ever.
    pub purge_after: Option<i64>,
    /// For a request: when its answer is due (Unix seconds). The request
    /// stays open until an answer closes it.
    pub answer_due: Option<i64>,
    /// For an answer that the gateway found to answer a stored request
    /// (see [`Store::request`]): that request's gateway reference, closed
    /// by this item unless an earlier answer closed it.
    pub answers: Option<String>,
}

/// A stored request, as [`Store::request`] gives it: what the gateway
/// needs to tell whether an item answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestState {
    /// Who asked.
    pub sender: PrincipalId,
    /// The recipients it was released to at submission (those with an
    /// inbox entry, whatever its state now).
    pub recipients: Vec<PrincipalId>,
    /// When its answer is due.
    pub due: i64,
    /// When an answer closed it, if one did.
    pub answered_at: Option<i64>,
}

/// What a sweep found: each needs its audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Swept {
    /// An unacknowledged inbox entry whose item expired.
    Expired {
        /// Gateway reference.
        item_ref: String,
        /// The recipient.
        recipient: PrincipalId,
    },
    /// An item whose retention ended.
    Purged {
        /// Gateway reference.
        item_ref: String,
        /// SHA-256 of its manifest.
        digest: [u8; 32],
    },
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
    /// When the gateway accepted the item.
    pub accepted_at: i64,
}

/// What [`Store::ack`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded now, with the audit entry at this index.
    Acked(u64),
    /// Already acknowledged before: nothing changed.
    AlreadyAcked,
    /// No such item in this recipient's inbox.
    NotFound,
}

/// The audit tree's head: its size and root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of entries.
    pub size: u64,
    /// RFC 9162 root hash.
    pub root: Hash,
}

/// The store contract.
///
/// Every method that records an event takes its [`BoundedEntry`] and MUST
/// write it in the same transaction as the event: no event without its
/// entry, no entry without its event. Audit indices are assigned by the
/// store, densely and in commit order, and never reused.
pub trait Store: Send + Sync + 'static {
    /// Stores an item, its inbox entries, its receipt and `entries` (its
    /// acceptance entry first, then one per recipient), consecutively.
    ///
    /// MUST return `Committed` only once all of them are durable together
    /// (one transaction, fsynced): after a crash either all are there or
    /// none. The returned receipt carries the first entry's audit index.
    /// MUST return `Duplicate`/`Conflict` without writing when the sender
    /// already stored this item id. In the same transaction, MUST record a
    /// request's `answer_due` (open), and MUST close the request named by
    /// `answers` at this item's `accepted_at` unless it is already closed
    /// (the first answer closes it; a later one changes nothing).
    fn commit_item(
        &self,
        item: NewItem,
        entries: Vec<BoundedEntry>,
    ) -> Result<CommitOutcome, StoreError>;

    /// Deliverable items of `recipient` at `now`: not acknowledged, not
    /// refused, not under a lease that runs past `now`, not expired; FLASH
    /// first; within a priority, open requests first by due time, then
    /// the rest in acceptance order. Each open request carries its due
    /// time. At most `limit` entries.
    fn pending(
        &self,
        recipient: &PrincipalId,
        now: i64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>, StoreError>;

    /// Reads an item of `recipient`'s inbox that is not acknowledged or
    /// refused, without changing anything.
    fn peek(&self, recipient: &PrincipalId, item_ref: &str) -> Result<Option<Leased>, StoreError>;

    /// Leases the item to `recipient` until `lease_until` and records
    /// `entry`, in one transaction. Returns the entry's index, or `None`
    /// (and writes nothing) when the item is no longer pending for it.
    fn deliver(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        lease_until: i64,
        entry: &BoundedEntry,
    ) -> Result<Option<u64>, StoreError>;

    /// Takes the item out of `recipient`'s inbox because policy refused
    /// delivery, and records `entry`, in one transaction.
    fn refuse_delivery(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
        entry: &BoundedEntry,
    ) -> Result<u64, StoreError>;

    /// Records the recipient's acknowledgement and `entry` durably (the
    /// entry only when the acknowledgement is new).
    fn ack(
        &self,
        recipient: &PrincipalId,
        item_ref: &str,
        now: i64,
        entry: &BoundedEntry,
    ) -> Result<AckOutcome, StoreError>;

    /// Marks unacknowledged inbox entries of items expired at `now` as
    /// expired, and deletes the envelope and portions of items whose
    /// retention ended by `now`, keeping digests and receipts. Each change
    /// and its audit entry (`entry_for`) are in one transaction. Returns
    /// what changed.
    fn sweep(
        &self,
        now: i64,
        entry_for: &dyn Fn(&Swept) -> Result<BoundedEntry, EntryTooLarge>,
    ) -> Result<Vec<Swept>, StoreError>;

    /// The request stored under `item_ref`, if that item is a request.
    fn request(&self, item_ref: &str) -> Result<Option<RequestState>, StoreError>;

    /// Requests without an answer whose due time is at or before
    /// `due_by`, by due time (then acceptance order), at most `limit`.
    /// With `concerning`, only the requests that principal sent or was
    /// released (an inbox entry), so that the cost of the listing follows
    /// what the caller may see. MUST NOT list a request once an answer
    /// closed it.
    fn open_requests(
        &self,
        due_by: i64,
        concerning: Option<&PrincipalId>,
        limit: u32,
    ) -> Result<Vec<OpenRequest>, StoreError>;

    /// The receipt of an item, for its sender only.
    fn receipt(&self, sender: &PrincipalId, item_ref: &str) -> Result<Option<Receipt>, StoreError>;

    /// Whether a write could be made now: MUST succeed only if a write
    /// transaction can be started at this moment, and MUST change nothing.
    /// For readiness checks.
    fn check_writable(&self) -> Result<(), StoreError>;

    /// Appends entries that record events outside the exchange (start,
    /// stop, policy, refused connections). Returns the first index.
    fn append_audit(&self, entries: &[BoundedEntry]) -> Result<u64, StoreError>;

    /// Starts a new log over what is stored, on the operator's explicit
    /// request: MUST, in one transaction, remove the stored checkpoints
    /// that the stored entries do not produce (they belong to the previous
    /// log), append `entry` (which records the new start) and seal.
    /// Returns the entry's index.
    fn start_new_log(&self, entry: &BoundedEntry) -> Result<u64, StoreError>;

    /// For each item reference, whether its item row is stored (purged or
    /// not: purging keeps the row).
    fn items_present(&self, item_refs: &[String]) -> Result<Vec<bool>, StoreError>;

    /// For each (item, recipient), whether the recipient's inbox entry is
    /// stored and still open: not acknowledged, refused or expired, and the
    /// item not purged.
    fn deliveries_open(
        &self,
        deliveries: &[(String, PrincipalId)],
    ) -> Result<Vec<bool>, StoreError>;

    /// The audit tree's current head.
    fn tree_head(&self) -> TreeHead;

    /// Root of the audit tree at an earlier `size`.
    fn root_at(&self, size: u64) -> Result<Hash, StoreError>;

    /// Inclusion proof of entry `index` in the tree of `size`.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError>;

    /// Consistency proof from `old_size` to `new_size`.
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError>;

    /// Audit entries `start..end`, as stored.
    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Stores a signed checkpoint of the tree at `size`. MUST refuse a size
    /// below the latest stored checkpoint's.
    fn save_checkpoint(&self, size: u64, note: &str, now: i64) -> Result<(), StoreError>;

    /// The stored checkpoint of exactly `size`, if there is one. MUST read
    /// that one row, not every checkpoint: any principal may ask.
    fn checkpoint_of_size(&self, size: u64) -> Result<Option<String>, StoreError>;

    /// Every stored checkpoint, by increasing size.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;

    /// The latest stored checkpoint whose size is above `index` (so that
    /// its tree holds entry `index`); `latest_checkpoint_above(None)` is
    /// simply the latest one.
    fn latest_checkpoint_above(
        &self,
        index: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError>;
}
