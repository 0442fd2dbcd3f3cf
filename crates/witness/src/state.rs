//! The witness's memory: for each log, the last checkpoint it cosigned.
//!
//! One small file per log in the state directory, named by the lowercase
//! hex SHA-256 of the log's origin (the name the spec's monitoring path
//! uses), holding that checkpoint as the witness returned it: the log's
//! signature and the witness's own cosignature. A file per log rather than
//! SQLite: the state is one record per log and never queried, an oversight
//! officer can read it with `cat`, and the service it backs (`GET
//! /<origin hash>/checkpoint`) serves the file as is. A new state is
//! written to a temporary file, flushed to disk (fsync), renamed over the
//! old one and the directory flushed, so a crash leaves either the old or
//! the new state, never a mix, and the witness answers only after that.
//! This module never decides anything; it refuses to start from a state
//! file that its own key did not cosign (damaged or planted).

use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::CosignatureVerifier;
use crate::audit::signed_note;
use crate::audit::witness::LogState;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The directory or a file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state file is not a checkpoint this witness cosigned.
    #[error("{path} is not a checkpoint cosigned by this witness's key: {reason}; move it away only if you know why it changed")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The state directory and what it holds, by origin.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    logs: HashMap<String, (LogState, String)>,
}

/// The file name of a log's state: hex(SHA-256(origin)).
pub fn origin_hash(origin: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        origin.as_bytes(),
    ))
}

impl StateDir {
    /// Opens (creating if needed) the directory and reads every state file,
    /// checking each carries this witness's cosignature.
    pub fn open(dir: &Path, own: &CosignatureVerifier) -> Result<Self, StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut logs = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Temporary files of an interrupted write are not state.
            if name.ends_with(".tmp") || !path.is_file() {
                continue;
            }
            let note = std::fs::read_to_string(&path).map_err(io(&path))?;
            let damaged = |reason: String| StateError::Damaged {
                path: path.clone(),
                reason,
            };
            let parsed = signed_note::parse(note.as_bytes()).map_err(|e| damaged(e.to_string()))?;
            let cp = Checkpoint::from_note_text(parsed.text).map_err(|e| damaged(e.to_string()))?;
            if origin_hash(&cp.origin) != name {
                return Err(damaged(format!("it holds the log {:?}", cp.origin)));
            }
            let mine = parsed.signatures.iter().find(|l| own.claims(l));
            match mine.map(|l| own.verify_line(parsed.text, l)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(damaged(e.to_string())),
                None => return Err(damaged("no cosignature by this witness".into())),
            }
            let state = LogState {
                size: cp.size,
                root: cp.root,
            };
            logs.insert(cp.origin, (state, note));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            logs,
        })
    }

    /// The last state cosigned for `origin`.
    pub fn get(&self, origin: &str) -> Option<LogState> {
        self.logs.get(origin).map(|(s, _)| s.clone())
    }

    /// The last cosigned checkpoint of the log whose origin hashes to
    /// `hash`, as returned (log signature and cosignature).
    pub fn note_by_hash(&self, hash: &str) -> Option<&str> {
        self.logs
            .iter()
            .find(|(origin, _)| origin_hash(origin) == hash)
            .map(|(_, (_, note))| note.as_str())
    }

    /// Records durably that `checkpoint` (of `note`, with the cosignature
    /// appended) is the last cosigned for its log. Returns only once the
    /// file and its directory entry are on disk.
    pub fn put(&mut self, checkpoint: &Checkpoint, note: String) -> Result<(), StateError> {
        let name = origin_hash(&checkpoint.origin);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(note.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The rename is durable only once the directory is.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        self.logs.insert(
            checkpoint.origin.clone(),
            (
                LogState {
                    size: checkpoint.size,
                    root: checkpoint.root,
                },
                note,
            ),
        );
        Ok(())
    }
}
