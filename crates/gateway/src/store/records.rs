//! What goes in and out of a [`super::Store`]: batches to append, and the
//! records the store reads back.
//!
//! Plain data, no behaviour: this module never touches a database.

use super::{Appended, Durable};
use crate::audit::event::BoundedEntry;
use crate::audit::rfc9162::Hash;
use crate::domain::item::{Portion, Priority};
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;

/// Rows of the inbox and of the open requests are handed out in their wire
/// form: the store adds nothing a station may not see.
pub use crate::domain::wire::{InboxEntry, OpenRequest};

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
    /// The receipt returned to the sender, as the gateway built it before
    /// the commit: its `audit_index` is not known yet (the store records
    /// the index of the item's acceptance entry beside it, and hands it
    /// back with the receipt, see [`super::Store::receipt`]).
    pub receipt: Receipt,
    /// When the content is to be purged (end of retention), if ever.
    pub purge_after: Option<i64>,
    /// For a request: when its answer is due (Unix seconds). The request
    /// stays open until an answer closes it.
    pub answer_due: Option<i64>,
    /// For an answer that the gateway found to answer a stored request
    /// (see [`super::Store::request`]): that request's gateway reference, closed
    /// by this item unless an earlier answer closed it.
    pub answers: Option<String>,
}

/// A stored request, as [`super::Store::request`] gives it: what the gateway
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

/// What a sweep would change ([`super::Store::sweep_due`]): each change goes
/// to [`super::Store::append`] as a [`Change`] with its audit entry.
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

/// What an acknowledgement did, as the gateway reports it.
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

/// One operation's writes: a change of state and the audit entries that
/// record it, appended atomically by [`super::Store::append`] (both or
/// neither). For [`Change::Item`] the first entry is the item's acceptance.
#[derive(Clone, Debug)]
pub struct Batch {
    /// What changes besides the audit log.
    pub change: Change,
    /// The entries recording it, appended consecutively in this order,
    /// and only if the change applies.
    pub entries: Vec<BoundedEntry>,
}

impl Batch {
    /// Audit entries only, recording events outside the exchange (start,
    /// stop, policy, counted refusals, store inconsistencies).
    pub fn entries(entries: Vec<BoundedEntry>) -> Self {
        Batch {
            change: Change::Nothing,
            entries,
        }
    }
}

/// A change of state that a [`Batch`] makes together with its entries.
/// Each says when it applies; when it does not, nothing of the batch is
/// written ([`Outcome::Unchanged`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Change {
    /// None: the batch appends its entries only.
    Nothing,
    /// Stores an accepted item, its inbox entries and its receipt; records
    /// a request's due time and closes the request it answers (the first
    /// answer closes it; a later one changes nothing). Applies unless the
    /// sender already stored this item id: then [`Outcome::Duplicate`]
    /// (same digest) or [`Outcome::Conflict`]. A batch naming a recipient
    /// twice, or without entries, fails and writes nothing.
    Item(Box<NewItem>),
    /// Leases the item to the recipient until `until`, counting a
    /// delivery. Applies while the recipient's entry is open (not
    /// acknowledged, refused or expired).
    Lease {
        /// The recipient.
        recipient: PrincipalId,
        /// Gateway reference.
        item_ref: String,
        /// End of the lease (Unix seconds).
        until: i64,
        /// When set, applies only if no lease runs past this time: a
        /// batched fetch takes only entries that are free, so that two
        /// fetchers (on any instance) never hold one entry at once. A
        /// fetch by reference (`None`) may take its own entry again.
        free_at: Option<i64>,
    },
    /// Takes the item out of the recipient's inbox: policy refused
    /// delivery. Always applies (the refusal is recorded even when the
    /// entry was closed meanwhile).
    Refuse {
        /// The recipient.
        recipient: PrincipalId,
        /// Gateway reference.
        item_ref: String,
        /// When.
        at: i64,
    },
    /// Records the recipient's acknowledgement. Applies once:
    /// [`Unchanged::AlreadyDone`] when acknowledged before,
    /// [`Unchanged::NotFound`] when the recipient has no such entry (or
    /// delivery was refused).
    Ack {
        /// The recipient.
        recipient: PrincipalId,
        /// Gateway reference.
        item_ref: String,
        /// When.
        at: i64,
    },
    /// Marks an unacknowledged entry of an expired item as expired.
    /// Applies while the entry is open and the item expired by `at`.
    Expire {
        /// Gateway reference.
        item_ref: String,
        /// The recipient.
        recipient: PrincipalId,
        /// When.
        at: i64,
    },
    /// Deletes an item's envelope and portions at the end of its
    /// retention, keeping its row, digest and receipt. Applies once, when
    /// the item's retention ended by `at`.
    Purge {
        /// Gateway reference.
        item_ref: String,
        /// When.
        at: i64,
    },
    /// Starts a new log over what is stored, on the operator's explicit
    /// request: removes the checkpoints `stale` (they belong to the
    /// previous log), recomputes every stored leaf hash from its entry,
    /// and appends the batch's entry (which records the new start) whatever
    /// the seal said. Must be the only batch of its call.
    NewLog {
        /// Sizes of the stored checkpoints to remove.
        stale: Vec<u64>,
    },
}

/// What [`super::Store::append`] did with one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The change applied and the entries are durable at these indices.
    Appended(Durable<Appended>),
    /// [`Change::Item`]: the same sender already stored this id with the
    /// same digest; nothing written, the stored receipt returned.
    Duplicate(Durable<Receipt>),
    /// [`Change::Item`]: the same sender already stored this id with other
    /// content; nothing written.
    Conflict,
    /// The change did not apply; nothing written.
    Unchanged(Unchanged),
}

/// Why a change did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchanged {
    /// No such open entry (or item) for this change.
    NotFound,
    /// Done before (an acknowledgement already recorded).
    AlreadyDone,
}
