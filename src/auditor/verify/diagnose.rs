//! The diagnosis: comparing the tree recomputed from the entries with the
//! signed checkpoints to name the first entry or checkpoint at fault, and
//! checking the hash tiles against the entries.
//!
//! This module owns the order in which faults are named (see
//! [`super`]). It uses the level-0 hash tiles to pinpoint an entry only
//! once they recompute a signed root, and never reads a file except
//! through [`ExportSource`].

use super::checkpoints::check_consistent;
use super::entries::Layout;
use super::report::Change;
use super::report::Fault;
use super::report::SignedCheckpoint;
use super::report::VerifyFailure;
use super::source::ExportSource;
use super::source::SourceError;
use crate::audit::rfc9162::Hash;
use crate::audit::rfc9162::Tree;
use crate::audit::rfc9162::HASH_LEN;
use crate::audit::tiles;
use crate::audit::tiles::TileLevel;
use crate::audit::tiles::TilePath;

/// Compares the tree recomputed from the entries with the signed
/// checkpoints (by increasing size) and, when they differ, names the first
/// entry or checkpoint at fault. `claimed` are the level-0 tile hashes for
/// the latest size, used only if they recompute the latest signed root.
pub(super) fn diagnose(
    tree: &Tree,
    claimed: Option<&[Hash]>,
    checkpoints: &[SignedCheckpoint],
) -> Option<Fault> {
    let latest = checkpoints.last()?;
    let size = latest.checkpoint.size;
    let found = tree.size();
    let matches = |c: &SignedCheckpoint| {
        c.checkpoint.size <= found
            && tree.root_at(c.checkpoint.size).ok() == Some(c.checkpoint.root)
    };
    let Some(first_bad) = checkpoints.iter().position(|c| !matches(c)) else {
        return (found > size).then(|| Fault::Appended {
            index: size,
            count: found - size,
            size,
        });
    };
    if matches(latest) {
        // The latest signed checkpoint vouches for the entries, so the
        // earlier one that does not match them is at fault.
        let bad = &checkpoints[first_bad];
        return Some(
            check_consistent(tree, bad, latest, latest)
                .err()
                .unwrap_or_else(|| Fault::Inconsistent {
                    size: bad.checkpoint.size,
                    file: bad.file.clone(),
                    other: size,
                    other_file: latest.file.clone(),
                    reason: "its root is not the root of the first entries".into(),
                }),
        );
    }
    let good = first_bad
        .checked_sub(1)
        .map_or(0, |i| checkpoints[i].checkpoint.size);
    let bad = &checkpoints[first_bad];
    if let Some(claimed) = claimed.filter(|c| c.len() as u64 == size) {
        let signed = Tree::from_leaf_hashes(claimed.iter().copied());
        if signed.root() == latest.checkpoint.root {
            // The tiles are the signed leaf hashes: name the first entry.
            return Some(first_entry_at_fault(
                tree.leaf_hashes(),
                claimed,
                checkpoints,
            ));
        }
        if first_bad + 1 == checkpoints.len() && tree.root_at(size).ok() == Some(signed.root()) {
            return Some(Fault::LatestMismatch {
                size,
                file: latest.file.clone(),
                range: good..size,
            });
        }
    }
    Some(Fault::EntriesInRange {
        size: bad.checkpoint.size,
        file: bad.file.clone(),
        range: good..bad.checkpoint.size,
    })
}

/// The first index where the entries found differ from the signed leaf
/// hashes, and what most likely happened there.
pub(super) fn first_entry_at_fault(
    found: &[Hash],
    signed: &[Hash],
    checkpoints: &[SignedCheckpoint],
) -> Fault {
    let index = found
        .iter()
        .zip(signed)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(signed.len()));
    let at = |v: &[Hash], i: usize| v.get(i).copied();
    let change = if index >= found.len() {
        Change::Missing
    } else if at(found, index) == at(signed, index + 1)
        && at(found, index + 1) == at(signed, index)
        && index + 1 < signed.len()
    {
        Change::Swapped
    } else if index + 1 < signed.len() && at(found, index) == at(signed, index + 1) {
        Change::Deleted
    } else if index + 1 < found.len() && at(found, index + 1) == at(signed, index) {
        Change::Inserted
    } else {
        Change::Changed
    };
    let index = index as u64;
    let covering = checkpoints
        .iter()
        .find(|c| c.checkpoint.size > index)
        .or(checkpoints.last());
    Fault::Entry {
        index,
        change,
        checkpoint: covering.map_or(0, |c| c.checkpoint.size),
        file: covering.map_or_else(String::new, |c| c.file.clone()),
    }
}

/// Checks every hash tile of the tree of `size` against the tree recomputed
/// from the entries; returns how many were checked.
pub(super) fn check_tiles(
    source: &dyn ExportSource,
    layout: &Layout,
    tree: &Tree,
    size: u64,
    claimed: Option<&[Hash]>,
) -> Result<usize, VerifyFailure> {
    let paths: Vec<TilePath> = tiles::hash_tile_paths(size).collect();
    let leaves = tree.leaf_hashes();
    for path in &paths {
        let range = path.entry_range();
        let missing = || Fault::MissingTile {
            path: path.to_string(),
            range: range.start..range.end.min(size),
        };
        if path.level == TileLevel::Hashes(0) {
            // Level 0 was read once already, as the claimed leaf hashes.
            let Some(claimed) = claimed else {
                return Err(first_missing_level0(source, layout, size)?.into());
            };
            let (a, b) = (range.start as usize, range.end.min(size) as usize);
            if let Some(i) = (a..b).find(|&i| claimed.get(i) != leaves.get(i)) {
                return Err(Fault::BadTile {
                    path: path.to_string(),
                    range: range.start..range.end.min(size),
                    what: format!("its hash of entry {i} is not that entry's"),
                }
                .into());
            }
            continue;
        }
        let Some(file) = layout.file_for(path) else {
            return Err(missing().into());
        };
        let Some(data) = source.read(&file.to_string())? else {
            return Err(missing().into());
        };
        let expected = tiles::hash_tile(tree, path).map_err(|e| Fault::BadTile {
            path: path.to_string(),
            range: range.clone(),
            what: e.to_string(),
        })?;
        let n = expected.len();
        if data.len() != usize::from(file.width) * HASH_LEN || data.get(..n) != Some(&expected[..])
        {
            return Err(Fault::BadTile {
                path: file.to_string(),
                range,
                what: "its hashes are not those of the entries".into(),
            }
            .into());
        }
    }
    Ok(paths.len())
}

/// Names the first level-0 tile that is missing or malformed.
pub(crate) fn first_missing_level0(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<Fault, SourceError> {
    for path in tiles::hash_tile_paths(size) {
        if path.level != TileLevel::Hashes(0) {
            continue;
        }
        let range = path.entry_range();
        let Some(file) = layout.file_for(&path) else {
            return Ok(Fault::MissingTile {
                path: path.to_string(),
                range,
            });
        };
        let data = source.read(&file.to_string())?;
        match data.map(|d| tiles::parse_hash_tile(&file, &d)) {
            None => {
                return Ok(Fault::MissingTile {
                    path: path.to_string(),
                    range,
                })
            }
            Some(Err(e)) => {
                return Ok(Fault::BadTile {
                    path: file.to_string(),
                    range,
                    what: e.to_string(),
                })
            }
            Some(Ok(_)) => {}
        }
    }
    Ok(Fault::MissingTile {
        path: "tile/0".into(),
        range: 0..size,
    })
}
