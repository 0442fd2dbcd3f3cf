//! `passerelle audit export`: the audit log, read from the store up to its
//! latest signed checkpoint, written to a directory in the C2SP
//! `tlog-tiles` layout that the offline auditor tools read (the layout is
//! described with them, in `crate::auditor`, and in docs/formats.md).
//!
//! This is the gateway side of the export: it reads the store and writes
//! files. It never changes an entry, never signs (the caller signs a fresh
//! checkpoint first if it wants one) and never decides anything.

use std::path::{Path, PathBuf};

use crate::audit::rfc9162::{leaf_hash, Tree};
use crate::audit::tiles::{self, TileLevel, TilePath, TILE_WIDTH};
use crate::store::{Store, StoreError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the directory failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The log has no checkpoint yet: nothing signed to export.
    #[error("the audit log has no signed checkpoint yet")]
    NoCheckpoint,
    /// Tile arithmetic refused the tree: a bug.
    #[error("tiles: {0}")]
    Tiles(#[from] tiles::TileError),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Entries exported: the latest checkpoint's tree size.
    pub size: u64,
    /// Signed checkpoints written.
    pub checkpoints: usize,
    /// Hash tiles written.
    pub hash_tiles: usize,
    /// Entry bundles written.
    pub bundles: usize,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let err = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(err)
}

/// Path of the stored checkpoint of `size` inside an export.
pub fn checkpoint_path(dir: &Path, size: u64) -> PathBuf {
    dir.join("checkpoints").join(size.to_string())
}

/// Exports the log in `store` up to its latest checkpoint into `dir`.
pub fn export(store: &dyn Store, dir: &Path) -> Result<ExportSummary, ExportError> {
    let checkpoints = store.checkpoints()?;
    let Some((size, latest)) = checkpoints.last().cloned() else {
        return Err(ExportError::NoCheckpoint);
    };
    for (s, note) in &checkpoints {
        write(&checkpoint_path(dir, *s), note.as_bytes())?;
    }
    write(&dir.join("checkpoint"), latest.as_bytes())?;
    let mut tree = Tree::new();
    let mut bundles = 0;
    let mut start = 0;
    while start < size {
        let end = (start + TILE_WIDTH).min(size);
        let entries = store.audit_entries(start, end)?;
        if entries.len() as u64 != end - start {
            return Err(StoreError::Invariant(format!(
                "entries {start}..{end} are not all stored"
            ))
            .into());
        }
        for e in &entries {
            tree.append_leaf_hash(leaf_hash(e));
        }
        let path = TilePath {
            level: TileLevel::Entries,
            index: start / TILE_WIDTH,
            // At most TILE_WIDTH (256) entries per bundle, so it fits.
            width: (end - start) as u16,
        };
        let bundle = tiles::encode_entry_bundle(entries.iter().map(Vec::as_slice))?;
        write(&dir.join(path.to_string()), &bundle)?;
        bundles += 1;
        start = end;
    }
    let mut hash_tiles = tiles::hash_tiles(&tree, size)?.len();
    for tile in tiles::hash_tiles(&tree, size)? {
        write(&dir.join(tile.path.to_string()), &tile.data)?;
    }
    // Earlier checkpoints: their full tiles are the latest size's; only
    // their partial tiles and partial bundle are their own.
    for (earlier, _) in checkpoints.iter().filter(|(s, _)| *s < size) {
        for path in tiles::hash_tile_paths(*earlier).filter(|p| !p.is_full()) {
            let data = tiles::hash_tile(&tree, &path)?;
            write(&dir.join(path.to_string()), &data)?;
            hash_tiles += 1;
        }
        if let Some(path) = tiles::entry_bundle_paths(*earlier).find(|p| !p.is_full()) {
            let range = path.entry_range();
            let entries = store.audit_entries(range.start, range.end)?;
            let bundle = tiles::encode_entry_bundle(entries.iter().map(Vec::as_slice))?;
            write(&dir.join(path.to_string()), &bundle)?;
            bundles += 1;
        }
    }
    Ok(ExportSummary {
        size,
        checkpoints: checkpoints.len(),
        hash_tiles,
        bundles,
    })
}
