//! Noticing a store edited behind the gateway's back.
//!
//! This module owns the gateway's side of the store's integrity: the
//! [`Sealer`] made from the gateway key (the store signs each transaction's
//! tree head through it, see [`crate::store::Store`]), the head file kept
//! beside the key, the checks run at start, the operator's explicit start of
//! a new log, and the search for accepted items whose rows vanished. It
//! never repairs anything silently: what disagrees refuses the start, or,
//! on the operator's explicit `--new-log`, is written on the new log.
//!
//! # Why a head file
//!
//! The seal in the database catches an entry changed, added or removed
//! behind the gateway's back, but not a database replaced as a whole: a
//! restored backup carries its own older, valid seal, and a wiped database
//! looks like a first start. So the gateway also keeps the last head it
//! published in a small file beside its key (`<key>.head`, e.g.
//! `gateway/audit-key.head`), a signed checkpoint note written atomically
//! (temporary file, fsync, rename, fsync of the directory) and only after
//! the head it names was committed, so after a crash it may lag the store
//! but is never ahead of it. At start the store must extend that head: a
//! store behind it (rolled back, truncated, wiped) or disagreeing with it
//! (another log) refuses to start. A first start is an empty store and no
//! head file: a key that was provisioned but never used (the example PKI
//! writes the key before the first start) has no head file. The first start
//! writes the head of the empty log before it records anything, so once the
//! store holds an entry the head file exists, and a store that holds a log
//! without a head file beside the key refuses to start too.
//!
//! The file is written at start, with each published checkpoint (every
//! `checkpoint_seconds` when the log grew, on demand, and at stop), not with
//! every transaction: that would double the fsyncs of every commit. The
//! window this leaves is written down in SECURITY.md.
//!
//! Over 600 lines only with its tests: the checks themselves are under 600.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::checkpoint::Checkpoint;
use crate::audit::event::{clip, AuditEntry, AuditEvent, BoundedEntry, MAX_TEXT};
use crate::audit::rfc9162::leaf_hash;
use crate::audit::signed_note;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::Outcome;
use crate::keys::GatewayKey;
use crate::log_service::AuditLog;
use crate::store::{self, Batch, Change, Sealer, StoreConfig, StoreError, Tamper, TreeHead};

/// How many item references a `store-inconsistency` entry names at most;
/// the count says how many there are in all.
pub const MAX_LISTED_REFS: usize = 32;

/// Why the gateway refused to start on this store. The operator's problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The store disagrees with what the gateway signed.
    #[error("{}; refusing to start. If this is known and intended, start a new log with `passerelle serve --new-log` (the new start is recorded on the log, naming the previous head)", list(.0))]
    Tampered(Vec<Tamper>),
    /// `--new-log` was given but the store is as the gateway left it: a
    /// switch left in place would let a later edit through unnoticed.
    #[error("--new-log was given, but the store holds a log of {0} entries that agrees with every head the gateway signed: nothing to start anew; start without --new-log")]
    NothingToStartAnew(u64),
    /// The head file could not be read or written.
    #[error("head file {path}: {reason}")]
    HeadFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(found: &[Tamper]) -> String {
    found
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Sealer for GatewayKey {
    fn seal(&self, head: TreeHead) -> Result<String, String> {
        Checkpoint::new(self.note.name(), head.size, head.root)
            .sign(&[&self.note])
            .map_err(|e| e.to_string())
    }

    fn unseal(&self, note: &str) -> Result<TreeHead, String> {
        let (checkpoint, _) =
            Checkpoint::open(note.as_bytes(), self.note.name(), &[self.verifier_key()])
                .map_err(|e| e.to_string())?;
        Ok(TreeHead {
            size: checkpoint.size,
            root: checkpoint.root,
        })
    }
}

/// The last head the gateway published, kept beside its key.
#[derive(Debug)]
pub struct HeadFile {
    path: PathBuf,
    /// Size of the head last written, so that an unchanged head is not
    /// written again; `u64::MAX` before the first write.
    written: AtomicU64,
    /// Serialises writers, so a smaller head never replaces a larger one.
    writing: Mutex<()>,
}

impl HeadFile {
    /// The head file of the key at `key`: the same path with the extension
    /// `head` (`audit-key.pem` → `audit-key.head`).
    pub fn beside(key: &Path) -> Self {
        HeadFile {
            path: key.with_extension("head"),
            written: AtomicU64::new(u64::MAX),
            writing: Mutex::new(()),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl std::fmt::Display) -> IntegrityError {
        IntegrityError::HeadFile {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// The signed note in the file, or `None` when there is no file.
    pub fn read(&self) -> Result<Option<String>, IntegrityError> {
        match std::fs::read_to_string(&self.path) {
            Ok(note) => Ok(Some(note)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes `note` (a signed checkpoint of a committed head) unless a
    /// head at least as large was written by this process already:
    /// temporary file, fsync, rename, fsync of the directory.
    pub fn advance(&self, note: &str) -> Result<(), IntegrityError> {
        let size = signed_note::parse(note.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|n| Checkpoint::from_note_text(n.text).map_err(|e| e.to_string()))
            .map_err(|e| self.error(format!("not a checkpoint: {e}")))?
            .size;
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let written = self.written.load(Ordering::Acquire);
        if written != u64::MAX && written >= size {
            return Ok(());
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| self.error(e))?;
        tmp.write_all(note.as_bytes()).map_err(|e| self.error(e))?;
        tmp.as_file().sync_all().map_err(|e| self.error(e))?;
        tmp.persist(&self.path).map_err(|e| self.error(e.error))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error(e))?;
        self.written.store(size, Ordering::Release);
        Ok(())
    }
}

/// Whether `log` holds the signed `head` (`what` names it): as many
/// entries at least, giving the same root at its size.
fn compare(log: &AuditLog, what: &str, head: TreeHead) -> Option<Tamper> {
    let stored = log.head().size;
    if head.size > stored {
        return Some(Tamper::Truncated {
            what: what.into(),
            signed: head.size,
            stored,
        });
    }
    (log.root_at(head.size).ok() != Some(head.root)).then(|| Tamper::EntriesChanged {
        what: what.into(),
        size: head.size,
    })
}

/// What [`check_log`] found, and the seal when it verifies.
type Checks = (Vec<Tamper>, Option<(TreeHead, String)>);

/// What the stored log says against its own signatures: the seal (which
/// every appending transaction writes), the latest published checkpoint,
/// and each entry against the leaf hash written with it (the tree, and so
/// the seal, is made of leaf hashes: an entry changed without its leaf
/// hash would otherwise pass). Returns what disagrees, and the seal's head
/// and note when its signature verifies.
fn check_log(log: &AuditLog, sealer: &dyn Sealer) -> Result<Checks, StoreError> {
    const CHUNK: u64 = 4096;
    let store = log.store();
    // The entries first, then the seal, then the entries again. Every
    // appending transaction writes the seal with its entries, so a seal
    // read after the entries covers at least every entry read before it,
    // and once caught up again the tree holds what that seal covers.
    // Another process (a second gateway instance on one database) may go
    // on appending meanwhile, with newer seals: the entries it adds after
    // the seal was read are not after the seal in any sense that matters,
    // so only entries read before the seal and not covered by it are
    // reported. Seal first, as this once was, a reader that loses the race
    // to a fast appender a few times in a row would call a sound log
    // tampered.
    log.catch_up()?;
    let read_before_the_seal = log.head().size;
    let sealed = store.seal()?;
    log.catch_up()?;
    let stored = log.head().size;
    let mut found = Vec::new();
    let mut seal = None;
    match sealed {
        None if read_before_the_seal > 0 => found.push(Tamper::Unsealed {
            stored: read_before_the_seal,
        }),
        None => {}
        Some(note) => match sealer.unseal(&note) {
            Err(reason) => found.push(Tamper::BadSignature {
                what: "seal".into(),
                reason,
            }),
            Ok(head) => {
                if let Some(t) = compare(log, "seal", head) {
                    found.push(t);
                } else if head.size < read_before_the_seal {
                    found.push(Tamper::EntriesAfterSeal {
                        sealed: head.size,
                        stored: read_before_the_seal,
                    });
                }
                seal = Some((head, note));
            }
        },
    }
    if let Some((size, note)) = store.latest_checkpoint_above(None)? {
        match sealer.unseal(&note) {
            Err(reason) => found.push(Tamper::BadSignature {
                what: format!("checkpoint of size {size}"),
                reason,
            }),
            Ok(head) => found.extend(compare(log, "latest published checkpoint", head)),
        }
    }
    let mut start = 0;
    'entries: while start < stored {
        let end = (start + CHUNK).min(stored);
        let leaves = store.leaf_hashes(start, end)?;
        for (i, (entry, leaf)) in store
            .audit_entries(start, end)?
            .iter()
            .zip(leaves)
            .enumerate()
        {
            if leaf_hash(entry) != leaf {
                found.push(Tamper::EntryChanged {
                    index: start + i as u64,
                });
                break 'entries;
            }
        }
        start = end;
    }
    Ok((found, seal))
}

/// Opens the store `config` names for a tool that reads and signs over it
/// (`audit export`, the demo's export) while the gateway may be stopped:
/// refuses a store that disagrees with its seal, its latest checkpoint or
/// the leaf hashes written with its entries, so that what was edited
/// behind the gateway's back is never exported or signed over.
pub fn open_checked(
    config: &StoreConfig,
    key: Arc<GatewayKey>,
) -> Result<AuditLog, IntegrityError> {
    let log = AuditLog::load(store::open(config, key.clone())?)?;
    let (found, _) = check_log(&log, key.as_ref())?;
    if !found.is_empty() {
        return Err(IntegrityError::Tampered(found));
    }
    Ok(log)
}

/// A store that passed the start checks.
pub struct Checked {
    /// The log service over the store.
    pub log: Arc<AuditLog>,
    /// The head file, written with the store's current head.
    pub head: HeadFile,
    /// Accepted items (or inbox entries) whose rows vanished.
    pub lost: LostItems,
}

/// Opens the store `config` names and checks it against its seal, its latest
/// checkpoint and `head` (see the module doc). Refuses any disagreement,
/// unless `new_log`: then the disagreement and the last head known are
/// recorded on the log as a `new-log` entry and the log goes on from what is
/// stored. Then looks for accepted items whose rows vanished and records
/// them (`store-inconsistency`). Writes the head file before returning.
pub fn open_store(
    config: &StoreConfig,
    key: Arc<GatewayKey>,
    head: HeadFile,
    new_log: bool,
    now: i64,
) -> Result<Checked, IntegrityError> {
    let store = store::open(config, key.clone())?;
    let mut log = AuditLog::load(store.clone())?;
    let (mut found, seal) = check_log(&log, key.as_ref())?;
    // The last head the gateway signed that still verifies: the larger of
    // the seal and the head file.
    let mut previous: Option<(u64, String)> = seal.map(|(h, note)| (h.size, note));
    let stored = log.head().size;
    match head.read()? {
        Some(note) => match key.unseal(&note) {
            Err(reason) => found.push(Tamper::BadSignature {
                what: "head file".into(),
                reason,
            }),
            Ok(known) => {
                found.extend(compare(&log, "head file", known));
                if previous
                    .as_ref()
                    .map_or(true, |(size, _)| *size < known.size)
                {
                    previous = Some((known.size, note));
                }
            }
        },
        None if store::holds_a_log(config)? => found.push(Tamper::NoHeadFile { stored }),
        None => {}
    }
    if !found.is_empty() {
        for t in &found {
            tracing::error!(found = %t, "the store disagrees with what the gateway signed");
        }
        if !new_log {
            return Err(IntegrityError::Tampered(found));
        }
    } else if new_log && stored > 0 {
        return Err(IntegrityError::NothingToStartAnew(stored));
    }
    if new_log {
        let entry = BoundedEntry::new(
            now,
            AuditEvent::NewLog {
                previous_head: previous.map(|(_, note)| note),
                found: if found.is_empty() {
                    "a first start".into()
                } else {
                    clip(&list(&found), MAX_TEXT)
                },
            },
        )
        .map_err(|e| StoreError::Invariant(e.to_string()))?;
        // The stored checkpoints that the stored entries do not produce
        // belong to the previous log.
        let stale = store
            .checkpoints()?
            .into_iter()
            .filter(|(_, note)| {
                !key.unseal(note)
                    .ok()
                    .is_some_and(|h| compare(&log, "", h).is_none())
            })
            .map(|(size, _)| size)
            .collect();
        let outcome = log.append(Batch {
            change: Change::NewLog { stale },
            entries: vec![entry],
        })?;
        // The leaf hashes were made again from the entries: the tree too.
        log = AuditLog::load(store.clone())?;
        if let crate::store::Outcome::Appended(at) = outcome {
            tracing::warn!(
                index = at.get().first(),
                "started a new audit log on the operator's request; recorded on the log"
            );
        }
    }
    let lost = find_lost(&log)?;
    if !lost.is_empty() {
        tracing::error!(
            items = lost.items,
            deliveries = lost.deliveries,
            first = ?lost.refs().take(8).collect::<Vec<_>>(),
            "accepted items vanished from the store; recorded on the audit log"
        );
        let entry = BoundedEntry::new(now, lost.event())
            .map_err(|e| StoreError::Invariant(e.to_string()))?;
        log.append(Batch::entries(vec![entry]))?;
    }
    // Before anything else is recorded: from now on the store holds a log,
    // and a store holding a log with no head file beside the key refuses.
    let current = log.head();
    let note = key
        .seal(current)
        .map_err(|e| StoreError::Invariant(format!("cannot sign the head: {e}")))?;
    head.advance(&note)?;
    Ok(Checked {
        log: Arc::new(log),
        head,
        lost,
    })
}

/// Accepted items whose stored rows vanished, and the principals each
/// concerns: found at start by reading the audit log (which the seal
/// vouches for) and asking the store for each accepted item.
#[derive(Debug, Default)]
pub struct LostItems {
    by_ref: HashMap<String, Vec<PrincipalId>>,
    /// Accepted items whose row is gone.
    pub items: u64,
    /// Open inbox entries gone, or closed without an audit entry.
    pub deliveries: u64,
}

impl LostItems {
    /// Nothing lost.
    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }

    /// Whether item `item_ref` was lost and concerns `who` (its sender when
    /// the item row is gone, a recipient whose delivery was still open).
    pub fn concerns(&self, item_ref: &str, who: &PrincipalId) -> bool {
        self.by_ref
            .get(item_ref)
            .is_some_and(|principals| principals.contains(who))
    }

    /// The references lost, in no particular order.
    pub fn refs(&self) -> impl Iterator<Item = &String> {
        self.by_ref.keys()
    }

    fn add(&mut self, item_ref: String, principals: impl IntoIterator<Item = PrincipalId>) {
        let entry = self.by_ref.entry(item_ref).or_default();
        for p in principals {
            if !entry.contains(&p) {
                entry.push(p);
            }
        }
    }

    /// The audit event that records them: counts, and a bounded, sorted
    /// list of references.
    pub fn event(&self) -> AuditEvent {
        let mut refs: Vec<String> = self.by_ref.keys().cloned().collect();
        refs.sort();
        refs.truncate(MAX_LISTED_REFS);
        AuditEvent::StoreInconsistency {
            items_lost: self.items,
            deliveries_lost: self.deliveries,
            item_refs: refs,
        }
    }
}

/// Reads the whole audit log in order and checks that every accepted item
/// still has its row, and every delivery the log leaves open (allowed at
/// acceptance, not acknowledged, refused, expired or purged since) still
/// has its open inbox entry. Memory grows with the open deliveries only;
/// the store answers item by item in chunks.
pub fn find_lost(log: &AuditLog) -> Result<LostItems, StoreError> {
    const CHUNK: u64 = 4096;
    let store = log.store().as_ref();
    let size = log.head().size;
    let mut lost = LostItems::default();
    // item ref -> recipients whose delivery the log leaves open.
    let mut open: HashMap<String, Vec<PrincipalId>> = HashMap::new();
    let mut start = 0;
    while start < size {
        let end = (start + CHUNK).min(size);
        let mut accepted: Vec<(String, Vec<PrincipalId>)> = Vec::new();
        for bytes in store.audit_entries(start, end)? {
            // The seal vouches for these bytes; an entry this version cannot
            // read names no item it knows about.
            let Ok(entry) = AuditEntry::decode(&bytes) else {
                continue;
            };
            match entry.event {
                AuditEvent::ItemAccepted {
                    item_ref,
                    sender,
                    outcomes,
                    ..
                } => {
                    let recipients: Vec<PrincipalId> = outcomes
                        .into_iter()
                        .filter(|o| o.outcome == Outcome::Queued)
                        .map(|o| o.recipient)
                        .collect();
                    if !recipients.is_empty() {
                        open.insert(item_ref.clone(), recipients.clone());
                    }
                    let mut concerned = vec![sender];
                    concerned.extend(recipients);
                    accepted.push((item_ref, concerned));
                }
                AuditEvent::Acknowledged {
                    item_ref,
                    recipient,
                }
                | AuditEvent::Expired {
                    item_ref,
                    recipient,
                } => close(&mut open, &item_ref, &recipient),
                AuditEvent::DeliveryRefused {
                    item_ref, decision, ..
                } => close(&mut open, &item_ref, &decision.recipient),
                AuditEvent::Purged { item_ref, .. } => {
                    open.remove(&item_ref);
                }
                _ => {}
            }
        }
        let refs: Vec<String> = accepted.iter().map(|(r, _)| r.clone()).collect();
        for ((item_ref, concerned), present) in
            accepted.into_iter().zip(store.items_present(&refs)?)
        {
            if !present {
                lost.items += 1;
                open.remove(&item_ref);
                lost.add(item_ref, concerned);
            }
        }
        start = end;
    }
    let pending: Vec<(String, PrincipalId)> = open
        .into_iter()
        .flat_map(|(r, who)| who.into_iter().map(move |w| (r.clone(), w)))
        .collect();
    for chunk in pending.chunks(CHUNK as usize) {
        for ((item_ref, who), is_open) in chunk.iter().zip(store.deliveries_open(chunk)?) {
            if !is_open {
                lost.deliveries += 1;
                lost.add(item_ref.clone(), [who.clone()]);
            }
        }
    }
    Ok(lost)
}

fn close(open: &mut HashMap<String, Vec<PrincipalId>>, item_ref: &str, who: &PrincipalId) {
    if let Some(recipients) = open.get_mut(item_ref) {
        recipients.retain(|r| r != who);
        if recipients.is_empty() {
            open.remove(item_ref);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, name: &str) -> GatewayKey {
        GatewayKey::generate(&dir.join(name), "test.example/audit").unwrap()
    }

    #[test]
    fn seals_verify_only_with_their_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, other) = (key(dir.path(), "a.pem"), key(dir.path(), "b.pem"));
        let head = TreeHead {
            size: 7,
            root: [3; 32],
        };
        let note = ours.seal(head).unwrap();
        assert_eq!(ours.unseal(&note).unwrap(), head);
        assert!(other.unseal(&note).is_err());
        assert!(ours.unseal(&note.replace("\n7\n", "\n8\n")).is_err());
    }

    #[test]
    fn the_head_file_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "audit-key.pem");
        let head = HeadFile::beside(&dir.path().join("audit-key.pem"));
        assert_eq!(head.path(), dir.path().join("audit-key.head"));
        assert_eq!(head.read().unwrap(), None);
        let at = |size| {
            k.seal(TreeHead {
                size,
                root: [1; 32],
            })
            .unwrap()
        };
        head.advance(&at(5)).unwrap();
        head.advance(&at(3)).unwrap();
        assert_eq!(head.read().unwrap(), Some(at(5)));
        head.advance(&at(9)).unwrap();
        assert_eq!(head.read().unwrap(), Some(at(9)));
        assert!(head.advance("not a note").is_err());
    }
}
