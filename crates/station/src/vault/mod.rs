//! The station's vault: what the station received and what it has still
//! to send, kept on the laptop encrypted at rest.
//!
//! A vault is a directory: `vault.key` (the data keys, wrapped under the
//! officer's passphrase, see [`sealing`]) and `sealed/`, one file per
//! record, each written whole and durably (temporary file, fsync, rename,
//! fsync of the directory) and sealed with its own name as associated
//! data. A file's name is a keyed hash of the record's kind and item
//! reference: the same item lands on the same file, so storing it twice
//! never makes two, and without the passphrase a seized laptop shows only
//! how many files there are, their sizes and times: no item reference,
//! sender, label, subject or body, in a name or in a byte. A file changed,
//! truncated, renamed or swapped does not open ([`VaultError::Tampered`]).
//! What the vault cannot see is a file deleted or rolled back to an older
//! sealed version of itself: a counter or manifest kept on the same disk
//! could be rolled back with the files (SECURITY.md, "Rollback of the
//! vault"); the gateway's audit log keeps what was delivered and
//! acknowledged.
//!
//! This module never talks to the gateway and never verifies an item:
//! the agent stores only what [`crate::client::Station::open`] verified.
//! It never writes a key or any plaintext to disk.

mod files;
pub(crate) use files::make_private_dir;
mod records;
mod sealing;

use std::path::{Path, PathBuf};

pub use records::{Outgoing, OutgoingState, Received, Record};
pub use sealing::KdfParams;

use crate::domain::bytes::{from_cbor, to_cbor};
use files::{list_sealed, remove_durably, write_durably};
use sealing::{KeyFile, Keys};

/// Why the vault refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The passphrase is not the vault's (or its key file was edited).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// There is no vault at this place yet (`station init` makes one).
    #[error("no vault in {0} (make one with `passerelle station init`)")]
    Missing(PathBuf),
    /// There is a vault already; making another would lose it.
    #[error("{0} holds a vault already")]
    Exists(PathBuf),
    /// A sealed file does not open: changed, truncated, renamed or put
    /// there by someone else. Never shown, never deleted by the vault.
    #[error("the vault file {file} was tampered with or damaged")]
    Tampered {
        /// The file's name.
        file: String,
    },
    /// The key file or a record is not in the vault's format (a bug, or a
    /// file from another version).
    #[error("vault format: {0}")]
    Format(String),
    /// The disk refused.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A vault on disk, locked.
#[derive(Debug, Clone)]
pub struct Vault {
    dir: PathBuf,
}

/// What a locked vault shows of one file: its size and time, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Bytes.
    pub size: u64,
    /// Last written, seconds since the Unix epoch.
    pub modified: i64,
}

/// Whether a store added a record or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The record is new and now durable.
    New,
    /// The vault held it already; it was left as it was.
    Already,
}

/// Every record of an unlocked vault, and the files that did not open.
#[derive(Debug, Default)]
pub struct Scan {
    /// Records that opened.
    pub records: Vec<Record>,
    /// Names of files that did not open (see [`VaultError::Tampered`]).
    pub tampered: Vec<String>,
}

impl Vault {
    /// The vault in `dir` (which may not exist yet).
    pub fn at(dir: impl Into<PathBuf>) -> Vault {
        Vault { dir: dir.into() }
    }

    /// The vault's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("vault.key")
    }

    fn sealed_dir(&self) -> PathBuf {
        self.dir.join("sealed")
    }

    /// Whether a vault was made here.
    pub fn exists(&self) -> bool {
        self.key_path().exists()
    }

    /// Makes a new vault under `passphrase`; refuses if one is there.
    pub fn create(&self, passphrase: &[u8], kdf: KdfParams) -> Result<Unlocked, VaultError> {
        if self.exists() {
            return Err(VaultError::Exists(self.dir.clone()));
        }
        let (file, keys) = KeyFile::new(passphrase, kdf)?;
        make_private_dir(&self.dir)?;
        make_private_dir(&self.sealed_dir())?;
        write_durably(&self.dir, "vault.key", &file.encode())?;
        Ok(self.unlocked(keys))
    }

    fn key_file(&self) -> Result<KeyFile, VaultError> {
        let path = self.key_path();
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                VaultError::Missing(self.dir.clone())
            } else {
                VaultError::Io { path, source }
            }
        })?;
        KeyFile::decode(&bytes)
    }

    /// The vault's keys, if `passphrase` is its passphrase.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Unlocked, VaultError> {
        let keys = self.key_file()?.unwrap_keys(passphrase)?;
        // Left by a write that a crash or power cut interrupted: never
        // renamed, so never part of the vault.
        files::remove_partial(&self.sealed_dir())?;
        Ok(self.unlocked(keys))
    }

    /// Wraps the vault's keys under a new passphrase; the records stay as
    /// they are.
    pub fn change_passphrase(
        &self,
        old: &[u8],
        new: &[u8],
        kdf: KdfParams,
    ) -> Result<(), VaultError> {
        let file = self.key_file()?.rewrap(old, new, kdf)?;
        write_durably(&self.dir, "vault.key", &file.encode())
    }

    /// What anyone can see of a vault without its passphrase.
    pub fn files(&self) -> Result<Vec<FileInfo>, VaultError> {
        Ok(list_sealed(&self.sealed_dir())?
            .into_iter()
            .map(|(_, info)| info)
            .collect())
    }

    fn unlocked(&self, keys: Keys) -> Unlocked {
        Unlocked {
            vault: self.clone(),
            keys,
        }
    }
}

/// An unlocked vault: holds the data keys until it is dropped, which
/// wipes them.
pub struct Unlocked {
    vault: Vault,
    keys: Keys,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("dir", &self.vault.dir)
            .finish_non_exhaustive()
    }
}

fn received_name(item_ref: &str) -> String {
    format!("received\0{item_ref}")
}

fn outgoing_name(item_ref: &str) -> String {
    format!("outgoing\0{item_ref}")
}

impl Unlocked {
    /// The vault, locked again once this is dropped.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    fn read(&self, name: &str) -> Result<Option<Record>, VaultError> {
        let path = self.vault.sealed_dir().join(name);
        let sealed = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(VaultError::Io { path, source }),
        };
        let plain = self.keys.open(name, &sealed)?;
        let record: Record = from_cbor(&plain).map_err(|e| VaultError::Format(e.to_string()))?;
        Ok(Some(record))
    }

    fn write(&self, name: &str, record: &Record) -> Result<(), VaultError> {
        let plain = zeroize::Zeroizing::new(to_cbor(record));
        let sealed = self.keys.seal(name, &plain)?;
        write_durably(&self.vault.sealed_dir(), name, &sealed)
    }

    fn name_of(&self, record: &Record) -> String {
        self.keys.name(&match record {
            Record::Received(r) => received_name(&r.item_ref),
            Record::Outgoing(o) => outgoing_name(&o.item_ref),
        })
    }

    /// Stores a received item durably, unless the vault has it already
    /// (then it is left as it was: read or not, received when it was).
    /// Returns only once the record is on disk.
    pub fn store_received(&self, received: &Received) -> Result<Stored, VaultError> {
        let record = Record::Received(received.clone());
        let name = self.name_of(&record);
        if self.read(&name)?.is_some() {
            return Ok(Stored::Already);
        }
        self.write(&name, &record)?;
        Ok(Stored::New)
    }

    /// The received item `item_ref`, if the vault has it.
    pub fn received(&self, item_ref: &str) -> Result<Option<Received>, VaultError> {
        let name = self.keys.name(&received_name(item_ref));
        Ok(match self.read(&name)? {
            Some(Record::Received(r)) => Some(r),
            _ => None,
        })
    }

    /// Keeps `record` as it is now (a received item marked read, an
    /// outgoing item sent), replacing what the vault had for it.
    pub fn put(&self, record: &Record) -> Result<(), VaultError> {
        self.write(&self.name_of(record), record)
    }

    /// The outgoing item `item_ref`, if the vault has it.
    pub fn outgoing(&self, item_ref: &str) -> Result<Option<Outgoing>, VaultError> {
        let name = self.keys.name(&outgoing_name(item_ref));
        Ok(match self.read(&name)? {
            Some(Record::Outgoing(o)) => Some(o),
            _ => None,
        })
    }

    /// Every record, and the names of the files that did not open.
    pub fn scan(&self) -> Result<Scan, VaultError> {
        let mut scan = Scan::default();
        for (name, _) in list_sealed(&self.vault.sealed_dir())? {
            match self.read(&name) {
                Ok(Some(record)) => scan.records.push(record),
                Ok(None) => {}
                Err(VaultError::Tampered { file }) => scan.tampered.push(file),
                Err(VaultError::Format(_)) => scan.tampered.push(name),
                Err(e) => return Err(e),
            }
        }
        Ok(scan)
    }

    /// Deletes every record whose retention ended by `now`; returns how
    /// many. Files that do not open are left for an investigator.
    pub fn purge(&self, now: i64) -> Result<usize, VaultError> {
        let mut purged = 0;
        for record in self.scan()?.records {
            if record.purge_after().is_some_and(|t| t <= now) {
                remove_durably(&self.vault.sealed_dir(), &self.name_of(&record))?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Deletes one record (an outgoing item refused for good, once shown).
    pub fn remove(&self, record: &Record) -> Result<(), VaultError> {
        remove_durably(&self.vault.sealed_dir(), &self.name_of(record))
    }
}

// The agent's tests build records with its helpers.
#[cfg(test)]
pub(crate) mod tests;
