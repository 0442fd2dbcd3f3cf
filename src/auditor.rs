//! The auditor's offline tools: export the audit log to a directory in the
//! C2SP `tlog-tiles` layout, to be checked with nothing but the gateway's
//! public key.
//!
//! # The export layout
//!
//! ```text
//! DIR/checkpoint                 the latest signed checkpoint (C2SP tlog-checkpoint)
//! DIR/tile/<L>/<N>[.p/<W>]       hash tiles (C2SP tlog-tiles)
//! DIR/tile/entries/<N>[.p/<W>]   entry bundles: each entry a big-endian u16 length, then
//!                                the entry's deterministic CBOR (see `audit::event`)
//! DIR/checkpoints/<size>         every checkpoint the gateway signed, by tree size
//!                                (a passerelle addition, for consistency checks)
//! ```
//!
//! The tiles and bundles describe the tree at the latest checkpoint's size,
//! so any tlog-tiles client can read the log, and, as the C2SP tlog-tiles
//! spec requires ("Logs MUST serve partial tiles corresponding to tree
//! sizes for which a checkpoint was produced"), the partial tiles and
//! bundles of every earlier checkpoint's size too. This module reads the store
//! and writes files; it never changes an entry and never decides anything.
//!
//! # Layout
//!
//! - this file: `passerelle audit export`.
//! - [`verify`]: `passerelle audit verify`, the verdict on an export with
//!   nothing but the verifier key, naming the first entry or checkpoint at
//!   fault; its exit codes are shared by the other auditor commands.
//! - [`prove`]: `passerelle audit prove` (an inclusion proof from an export)
//!   and `passerelle audit check-receipt` (a receipt a sender kept).
//! - [`show`]: `passerelle audit show`, the filtered listing.
//! - [`replay`]: `passerelle policy replay`, a candidate policy decided
//!   again over every audited acceptance.

pub mod prove;
pub mod replay;
pub mod show;
pub mod verify;

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
