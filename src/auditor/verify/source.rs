//! Reading an export: the thin [`ExportSource`] layer through which every
//! check reads its files, and [`DirSource`], the export as a directory.
//!
//! This module owns where bytes come from and nothing else: it lists and
//! reads files relative to the export, refuses paths that leave it, and
//! reports an unreadable file as the environment's fault ([`SourceError`]).
//! It never interprets what it reads and never writes.

use std::path::Path;
use std::path::PathBuf;

/// The file of the latest checkpoint in an export.
pub const LATEST: &str = "checkpoint";
/// The folder of every signed checkpoint in an export.
pub const CHECKPOINTS: &str = "checkpoints";

/// A file of the export could not be read: the environment's fault
/// (permissions, I/O), not evidence of tampering.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct SourceError {
    /// The file or folder, relative to the export.
    pub path: String,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Where an export's files come from. Paths are relative to the export and
/// use `/`, as in the tlog-tiles layout.
pub trait ExportSource: Sync {
    /// The bytes of the file at `path`, or `None` if there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;
    /// Every file under the folder `folder`, recursively, as paths relative
    /// to the export; empty if the folder does not exist.
    fn list(&self, folder: &str) -> Result<Vec<String>, SourceError>;
}

/// An export in a directory.
#[derive(Clone, Debug)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// The export in `root`, which must be a readable directory.
    pub fn open(root: &Path) -> Result<Self, SourceError> {
        let err = |source| SourceError {
            path: root.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(root).map_err(err)?;
        if !meta.is_dir() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory",
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn walk(&self, rel: &str, out: &mut Vec<String>) -> Result<(), SourceError> {
        let dir = self.root.join(rel);
        let err = |source| SourceError {
            path: rel.to_string(),
            source,
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(e)),
        };
        for entry in entries {
            let entry = entry.map_err(err)?;
            // A name that is not UTF-8 is no tile path: skip it.
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{rel}/{name}");
            if entry.file_type().map_err(err)?.is_dir() {
                self.walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
}

impl ExportSource for DirSource {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match std::fs::read(self.root.join(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError {
                path: path.to_string(),
                source,
            }),
        }
    }

    fn list(&self, folder: &str) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        self.walk(folder, &mut out)?;
        out.sort();
        Ok(out)
    }
}
