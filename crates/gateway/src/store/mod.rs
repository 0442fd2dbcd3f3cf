//! The durable store: the contract every backend keeps.
//!
//! [`Store`] is deliberately small so that the embedded backend (SQLite)
//! and the PostgreSQL backend of several gateway instances can both honour
//! it. Its promises are in MUST words on the trait and its methods, and
//! `conformance::run` (feature `conformance`, for test suites) checks every
//! one of them against a backend. The
//! store persists what the gateway decided; it never decides or reads the
//! clock. It appends batches (a change and its audit entries) atomically,
//! assigns gap-free audit indices and keeps each entry's leaf hash; the
//! Merkle tree, roots, proofs, checkpoints' contents and group commit live
//! above it, in the gateway's log service. It signs and checks its seal only
//! through the [`Sealer`] it was opened with: it never holds the gateway's
//! key. The backend is chosen by configuration ([`open`]): nothing outside
//! this module names one.
//!
//! What a commit made durable comes back as a [`Durable`] value, which only
//! this module can construct (the model is rustls's `ClientCertVerified`):
//! the gateway signs receipts and attestations only from one, so a code
//! path that signs before committing does not compile (see `durable.rs`).

// Assertions that panic, for test suites only: a backend's tests enable
// the `conformance` feature; the gateway's own build never carries them.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod durable;
mod postgres;
mod records;
mod sqlite;
mod steps;

pub use self::postgres::{Imported, PostgresUrl};
pub use durable::{Appended, Durable};
pub use records::{
    AckOutcome, Batch, Change, InboxEntry, Leased, NewItem, OpenRequest, Outcome, RequestState,
    Swept, TreeHead, Unchanged,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`Store::gauges`] counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Per priority that has any: open inbox entries, and the earliest
    /// acceptance time (Unix seconds) of their items.
    pub inbox: Vec<(crate::domain::item::Priority, u64, i64)>,
    /// Requests past due without an answer.
    pub overdue: u64,
}

use crate::audit::rfc9162::Hash;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Receipt;

/// Refuses a cosigned checkpoint that does not extend the stored one (the
/// same signed checkpoint with lines added), for every backend's
/// [`Store::add_cosignatures`].
fn ensure_extends(size: u64, current: &str, cosigned: &str) -> Result<(), StoreError> {
    if cosigned.len() <= current.len() || !cosigned.starts_with(current) {
        return Err(StoreError::BadBatch(format!(
            "the cosigned checkpoint of size {size} does not extend the stored one"
        )));
    }
    Ok(())
}

/// What a store calls with the recipient of each item another process
/// committed (see [`Store::watch_arrivals`]).
pub type ArrivalHook = Arc<dyn Fn(&PrincipalId) + Send + Sync>;

/// Why the store failed. Operator's fault (disk, permissions) or a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine reported an error.
    #[error("store: {0}")]
    Backend(String),
    /// A batch breaks the contract's rules (an item without its acceptance
    /// entry, a new log started beside other batches): a bug of the
    /// caller. Nothing of it was written.
    #[error("store: batch refused: {0}")]
    BadBatch(String),
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
    /// A stored entry does not match the leaf hash written with it: the
    /// entry was changed behind the gateway's back.
    EntryChanged {
        /// The first such entry.
        index: u64,
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
            Tamper::EntryChanged { index } => write!(
                f,
                "audit entries were changed: entry {index} does not match the leaf hash written with it"
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

/// Which backend holds the store, and where: from the gateway
/// configuration's `store` key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// The embedded SQLite database at this path (today's `store = "…"`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`store = "postgres://user@host:port/db"`),
    /// which several gateway instances may share.
    Postgres(PostgresUrl),
}

impl StoreConfig {
    /// The backend named by the configuration's `store` value: a
    /// `postgres://` (or `postgresql://`) URL means that PostgreSQL
    /// database, anything else a file path of the embedded SQLite
    /// database.
    pub fn from_setting(store: &Path) -> Self {
        match store.to_str().and_then(PostgresUrl::parse) {
            Some(url) => StoreConfig::Postgres(url),
            None => StoreConfig::Sqlite(store.to_path_buf()),
        }
    }

    /// Whether a `store` value names a database server rather than a file
    /// (so that it is not resolved against the config file's directory).
    pub fn names_a_server(store: &Path) -> bool {
        matches!(Self::from_setting(store), StoreConfig::Postgres(_))
    }

    /// What an open would refuse before connecting (a PostgreSQL URL's
    /// TLS settings, its CA and client key files), checked without
    /// connecting; and the certificate files the setting names, each with
    /// what it is, so that their dates can be checked.
    pub fn check(&self) -> Result<Vec<(&'static str, PathBuf)>, StoreError> {
        match self {
            StoreConfig::Sqlite(_) => Ok(Vec::new()),
            StoreConfig::Postgres(url) => url.certificate_files(),
        }
    }
}

impl std::fmt::Display for StoreConfig {
    /// Where the store is, for messages: a path, or a URL without its
    /// password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite(path) => write!(f, "{}", path.display()),
            StoreConfig::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// Opens (creating if needed) the store `config` names, sealing through
/// `sealer`. Opening checks nothing against signed heads: the gateway's
/// start checks do ([`crate::integrity`]).
pub fn open(config: &StoreConfig, sealer: Arc<dyn Sealer>) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path, sealer)?)),
        StoreConfig::Postgres(url) => Ok(Arc::new(postgres::open(url, sealer)?)),
    }
}

/// Brings the schema of the store `config` names up to date (creating it
/// if needed), as opening it does, without opening the log: for
/// `passerelle db migrate`. Returns the migrations applied (PostgreSQL's
/// versioned ones; the embedded store's schema changes are not numbered,
/// so none are listed for it). Running it again changes nothing.
pub fn migrate(config: &StoreConfig) -> Result<Vec<String>, StoreError> {
    match config {
        StoreConfig::Sqlite(path) => sqlite::SqliteStore::migrate_only(path).map(|()| Vec::new()),
        StoreConfig::Postgres(url) => postgres::PostgresStore::migrate_only(url),
    }
}

/// Copies the embedded store at `from`, every row as it is (items, inbox
/// entries, requests, the audit log with its checkpoints and seal), into
/// the PostgreSQL database `to` names, which must hold nothing yet; whole
/// or not at all. For `passerelle db import`, which checks the source
/// against its signatures before and the copy after: this only copies.
pub fn import_embedded(from: &Path, to: &StoreConfig) -> Result<Imported, StoreError> {
    match to {
        StoreConfig::Postgres(url) => postgres::import(from, url),
        StoreConfig::Sqlite(path) => Err(StoreError::BadBatch(format!(
            "an import goes into a PostgreSQL store, and the store {} is a file",
            path.display()
        ))),
    }
}

/// Whether the store `config` names holds anything of an audit log
/// (entries, a seal or checkpoints), without creating it: a store that
/// does not exist holds nothing.
pub fn holds_a_log(config: &StoreConfig) -> Result<bool, StoreError> {
    match config {
        StoreConfig::Sqlite(path) => sqlite::SqliteStore::holds_a_log(path),
        StoreConfig::Postgres(url) => postgres::PostgresStore::holds_a_log(url),
    }
}

/// The store contract. A backend MUST keep every promise below whether one
/// process or several (gateway instances, `passerelle audit export`) use
/// the same database at once.
///
/// - **Atomic batches.** [`Store::append`] writes each [`Batch`] whole or
///   not at all: its change and its entries together, after a crash
///   either both are there or neither. No event without its entry, no
///   entry without its event.
/// - **Gap-free indices.** Audit indices start at 0, are assigned by the
///   store in commit order, each batch's entries consecutively in the
///   order given, and are never reused or skipped, across all processes.
/// - **Durable before answered.** An [`Outcome::Appended`] (a
///   [`Durable`]) is returned only once the transaction is durable
///   (fsynced, or committed to a replicated database).
/// - **Sealed.** Every transaction that appends entries also stores a
///   signed head of the log as it leaves it (the seal, via the
///   [`Sealer`]), so no entry is ever stored without a signature covering
///   it; and a backend MUST refuse to append ([`StoreError::Invariant`])
///   when the stored log is not the one the seal covers.
/// - **Leaf hashes.** The store keeps each entry's RFC 9162 leaf hash and
///   returns leaf hashes and entries by range; a missing entry inside the
///   log is an error, never an empty value.
/// - **Idempotent items.** An item id is stored once per sender: the same
///   content again is a [`Outcome::Duplicate`] with the stored receipt,
///   other content a [`Outcome::Conflict`], whichever process receives it.
/// - **Leases.** An inbox entry under a lease that runs past `now` is not
///   pending; once the lease ends it is pending again (redelivery) until
///   acknowledged, refused or expired.
/// - **Purging keeps digests.** A purged item keeps its row, digest and
///   receipt; its content goes.
pub trait Store: Send + Sync + 'static {
    /// Appends `batches`, in order. Each batch MUST be atomic on its own
    /// (a failing batch writes nothing and does not touch the others);
    /// the backend SHOULD write them all in one transaction, so that a
    /// group of concurrent operations shares one fsync (or one database
    /// round trip). Returns one result per batch, in order; `Err` for the
    /// whole call when nothing was written. Each [`Outcome::Appended`]
    /// gives the indices and leaf hashes of its entries; the indices of
    /// the batches of one call follow each other.
    fn append(&self, batches: Vec<Batch>) -> Result<Vec<Result<Outcome, StoreError>>, StoreError>;

    /// Number of audit entries committed (by any process) and visible now.
    fn size(&self) -> Result<u64, StoreError>;

    /// Leaf hashes of entries `start..end`, in order. MUST return exactly
    /// `end - start` hashes, or an error ([`StoreError::Invariant`] when
    /// one inside the log is missing, [`StoreError::Proof`] past its end).
    fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError>;

    /// Audit entries `start..end`, as stored, with the same promise as
    /// [`Store::leaf_hashes`].
    fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The seal: the signed note of the head the last appending
    /// transaction left, if any.
    fn seal(&self) -> Result<Option<String>, StoreError>;

    /// What a sweep at `now` would change, at most `limit` of them:
    /// unacknowledged inbox entries (not refused or expired) of items
    /// expired by `now`, then items whose retention ended by `now` and not
    /// yet purged. Changes nothing: the gateway builds each one's entry and
    /// appends it with its [`Change::Expire`] or [`Change::Purge`], which
    /// applies only if it is still due (another process may have swept).
    fn sweep_due(&self, now: i64, limit: u32) -> Result<Vec<Swept>, StoreError>;

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

    /// The receipt of an item, for its sender only, with the audit index
    /// of the item's acceptance entry (the first index of the batch that
    /// stored it).
    fn receipt(
        &self,
        sender: &PrincipalId,
        item_ref: &str,
    ) -> Result<Option<Durable<Receipt>>, StoreError>;

    /// Whether a write could be made now: MUST succeed only if a write
    /// transaction can be started at this moment, and MUST change nothing.
    /// For readiness checks.
    fn check_writable(&self) -> Result<(), StoreError>;

    /// What the operator's metrics read at each scrape: per priority, the
    /// open inbox entries (not acknowledged, refused or expired, item not
    /// purged) and the earliest acceptance time among their items; and the
    /// requests due before `now` without an answer. MUST change nothing.
    fn gauges(&self, now: i64) -> Result<StoreGauges, StoreError>;

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

    /// Stores a signed checkpoint of the tree at `size`. MUST refuse a size
    /// below the latest stored checkpoint's ([`StoreError::Invariant`]);
    /// the same size again changes nothing.
    fn save_checkpoint(&self, size: u64, note: &str, now: i64) -> Result<(), StoreError>;

    /// Replaces the stored checkpoint of `size` by `cosigned` if it still
    /// holds `current`, and says whether it did (`false`: another writer
    /// changed it first, or there is none of that size). `cosigned` MUST
    /// extend `current` (begin with it: the same signed checkpoint with
    /// witnesses' cosignature lines added) or the call is refused
    /// ([`StoreError::BadBatch`]): the body and the gateway's signature of
    /// a stored checkpoint never change, only lines are added.
    fn add_cosignatures(
        &self,
        size: u64,
        current: &str,
        cosigned: &str,
    ) -> Result<bool, StoreError>;

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

    /// From now on, calls `wake` with each recipient of an item that
    /// another process (another gateway instance on the same database)
    /// commits, soon after the commit, so that a long-poll here wakes then
    /// rather than at its next look. A best effort that MUST NOT block the
    /// caller or any append: a missed call only delays a long-poll to its
    /// next look. A later call replaces the hook. The default does nothing:
    /// for a store that only its own process appends to, the gateway wakes
    /// its long-polls itself.
    fn watch_arrivals(&self, wake: ArrivalHook) -> Result<(), StoreError> {
        let _ = wake;
        Ok(())
    }
}
