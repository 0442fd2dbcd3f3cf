//! Tiles and entries: which tile and bundle files an export holds, and
//! reading the entry bundles into leaf hashes, recording damage (missing,
//! truncated, extra entries) and entries that do not decode.
//!
//! This module owns the reading of the layout, in parallel over bundles. It
//! never judges the entries against a checkpoint (that is
//! [`super::diagnose`]) and never trusts a hash tile it has not checked.

use super::report::Fault;
use super::source::ExportSource;
use super::source::SourceError;
use crate::audit::event::AuditEntry;
use crate::audit::rfc9162::leaf_hash;
use crate::audit::rfc9162::Hash;
use crate::audit::tiles;
use crate::audit::tiles::TileLevel;
use crate::audit::tiles::TilePath;
use crate::audit::tiles::TILE_WIDTH;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// The tile and bundle files present in an export.
pub(crate) struct Layout {
    /// Widths present for each (level, index).
    present: BTreeMap<(TileLevel, u64), BTreeSet<u16>>,
    pub(super) ignored: Vec<String>,
}

impl Layout {
    pub(crate) fn list(source: &dyn ExportSource) -> Result<Self, SourceError> {
        let mut present: BTreeMap<(TileLevel, u64), BTreeSet<u16>> = BTreeMap::new();
        let mut ignored = Vec::new();
        for path in source.list("tile")? {
            match path.parse::<TilePath>() {
                Ok(p) => {
                    present
                        .entry((p.level, p.index))
                        .or_default()
                        .insert(p.width);
                }
                Err(_) => ignored.push(path),
            }
        }
        Ok(Self { present, ignored })
    }

    fn widths(&self, level: TileLevel, index: u64) -> Option<&BTreeSet<u16>> {
        self.present.get(&(level, index)).filter(|w| !w.is_empty())
    }

    /// The widest entry bundle present at `index`: the full one if there.
    pub(crate) fn widest_bundle(&self, index: u64) -> Option<TilePath> {
        let width = *self.widths(TileLevel::Entries, index)?.last()?;
        Some(TilePath {
            level: TileLevel::Entries,
            index,
            width,
        })
    }

    /// The file to read for `want`: itself, else a wider tile of the same
    /// index (a tile of width W' > W starts with the W hashes or entries).
    pub(crate) fn file_for(&self, want: &TilePath) -> Option<TilePath> {
        let widths = self.widths(want.level, want.index)?;
        let width = widths.range(want.width..).next().copied()?;
        Some(TilePath { width, ..*want })
    }
}

/// A fault found while reading bundles, at an entry index.
pub(super) struct Damage {
    pub(super) index: u64,
    pub(super) fault: Fault,
    /// Whether the damage itself is the best account of the fault at
    /// `index` (a truncated or missing bundle), rather than a symptom the
    /// hashes explain better (an entry deleted from a bundle).
    pub(super) pinpoints: bool,
}

/// What reading the entries gave.
pub(super) struct EntriesRead {
    /// Leaf hashes of the entries found, in order.
    pub(super) leaves: Vec<Hash>,
    /// The level-0 tile hashes for the latest size, if every tile is there.
    pub(super) claimed: Option<Vec<Hash>>,
    pub(super) damage: Vec<Damage>,
    pub(super) undecodable: Option<(u64, String)>,
    pub(super) bundles: usize,
    pub(super) span: Option<(i64, i64)>,
}

/// Splits an entry bundle as far as it goes: the entries, and what is wrong
/// after the last one if the bundle ends inside an entry. (Unlike
/// [`tiles::parse_entry_bundle`], which refuses the whole bundle, this keeps
/// the entries before the damage so that the first entry at fault is named.)
pub(crate) fn split_bundle(data: &[u8]) -> (Vec<&[u8]>, Option<&'static str>) {
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some((len, after)) = rest.split_first_chunk::<2>() else {
            return (entries, Some("ends inside the entry's length prefix"));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if after.len() < len {
            return (entries, Some("ends inside the entry (truncated)"));
        }
        let (entry, after) = after.split_at(len);
        entries.push(entry);
        rest = after;
    }
    (entries, None)
}

pub(super) struct BundleRead {
    leaves: Vec<Hash>,
    damage: Option<Damage>,
    undecodable: Option<(u64, String)>,
    span: Option<(i64, i64)>,
}

pub(super) fn read_bundle(
    source: &dyn ExportSource,
    path: &TilePath,
) -> Result<BundleRead, SourceError> {
    let name = path.to_string();
    let start = path.entry_range().start;
    let Some(data) = source.read(&name)? else {
        return Ok(BundleRead {
            leaves: Vec::new(),
            damage: Some(Damage {
                index: start,
                fault: Fault::MissingBundle {
                    path: name,
                    range: path.entry_range(),
                },
                pinpoints: true,
            }),
            undecodable: None,
            span: None,
        });
    };
    let (entries, broken) = split_bundle(&data);
    let mut leaves = Vec::with_capacity(entries.len());
    let mut undecodable = None;
    let mut span: Option<(i64, i64)> = None;
    for (i, entry) in entries.iter().enumerate() {
        leaves.push(leaf_hash(entry));
        match AuditEntry::decode(entry) {
            Ok(e) => {
                span = Some(span.map_or((e.time, e.time), |(a, b)| (a.min(e.time), b.max(e.time))));
            }
            Err(e) if undecodable.is_none() => undecodable = Some((start + i as u64, e.0)),
            Err(_) => {}
        }
    }
    let found = entries.len() as u64;
    let damage = if let Some(what) = broken {
        Some(Damage {
            index: start + found,
            fault: Fault::BundleDamaged {
                index: start + found,
                path: name,
                what: what.to_string(),
            },
            pinpoints: true,
        })
    } else if found != u64::from(path.width) {
        Some(Damage {
            index: start + found.min(u64::from(path.width)),
            fault: Fault::BundleCount {
                path: name,
                range: path.entry_range(),
                expected: u64::from(path.width),
                found,
            },
            pinpoints: false,
        })
    } else {
        None
    };
    Ok(BundleRead {
        leaves,
        damage,
        undecodable,
        span,
    })
}

/// Runs `f` over `items` on one thread per core, keeping the order. Work is
/// handed out in small batches from a shared counter rather than split in
/// halves up front, so that a thread slowed by other processes on the
/// machine does not hold the others up.
pub(super) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const BATCH: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 || items.len() < 2 * BATCH {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut parts: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        let Some(batch) = items.get(start..(start + BATCH).min(items.len())) else {
                            break;
                        };
                        if batch.is_empty() {
                            break;
                        }
                        done.push((start, batch.iter().map(f).collect::<Vec<R>>()));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    parts.sort_by_key(|(start, _)| *start);
    parts.into_iter().flat_map(|(_, r)| r).collect()
}

/// The bundles to read: from index 0, each full bundle present, then the
/// widest partial one; a gap ends the log (and is damage if the latest
/// checkpoint's size reaches past it). Also returns bundles found past the
/// end.
pub(super) fn plan_bundles(layout: &Layout, size: u64) -> (Vec<TilePath>, Vec<Damage>) {
    let mut plan = Vec::new();
    let mut damage = Vec::new();
    let mut index = 0u64;
    while let Some(path) = layout.widest_bundle(index) {
        plan.push(path);
        if !path.is_full() {
            break;
        }
        index += 1;
    }
    let end = plan.last().map_or(0, |p| p.entry_range().end);
    if end < size {
        // The next bundle the latest checkpoint needs is not there.
        // Named as the latest checkpoint's layout names it (an earlier
        // checkpoint's partial bundle may have been read up to `end`).
        let index = end / TILE_WIDTH;
        let first = index * TILE_WIDTH;
        let next = TilePath {
            level: TileLevel::Entries,
            index,
            width: (size.min(first + TILE_WIDTH) - first) as u16,
        };
        damage.push(Damage {
            index: end,
            fault: Fault::MissingBundle {
                path: next.to_string(),
                range: end..(end + TILE_WIDTH).min(size),
            },
            pinpoints: true,
        });
    }
    for ((level, index), widths) in &layout.present {
        if *level != TileLevel::Entries || plan.iter().any(|p| p.index == *index) {
            continue;
        }
        for width in widths {
            let stray = TilePath {
                level: TileLevel::Entries,
                index: *index,
                width: *width,
            };
            let range = stray.entry_range();
            let fault = if range.start >= size {
                Fault::Appended {
                    index: range.start,
                    count: u64::from(*width),
                    size,
                }
            } else {
                Fault::StrayBundle {
                    path: stray.to_string(),
                    range: range.clone(),
                }
            };
            damage.push(Damage {
                index: range.start,
                fault,
                pinpoints: false,
            });
        }
    }
    (plan, damage)
}

/// Reads the level-0 hash tiles of the tree of `size`: the leaf hashes the
/// exporter claims. `Ok(None)` if a tile is missing or malformed.
pub(crate) fn read_claimed_leaves(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<Option<Vec<Hash>>, SourceError> {
    let paths: Vec<TilePath> = tiles::hash_tile_paths(size)
        .filter(|p| p.level == TileLevel::Hashes(0))
        .collect();
    let parts = par_map(&paths, |want| -> Result<Option<Vec<Hash>>, SourceError> {
        let Some(file) = layout.file_for(want) else {
            return Ok(None);
        };
        let Some(data) = source.read(&file.to_string())? else {
            return Ok(None);
        };
        let Ok(mut hashes) = tiles::parse_hash_tile(&file, &data) else {
            return Ok(None);
        };
        hashes.truncate(usize::from(want.width));
        Ok(Some(hashes))
    });
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for part in parts {
        match part? {
            Some(hashes) => leaves.extend(hashes),
            None => return Ok(None),
        }
    }
    Ok(Some(leaves))
}

pub(super) fn read_entries(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<EntriesRead, SourceError> {
    let (plan, mut damage) = plan_bundles(layout, size);
    let bundles = par_map(&plan, |p| read_bundle(source, p));
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut undecodable = None;
    let mut span: Option<(i64, i64)> = None;
    let mut bundle_damage = Vec::new();
    for b in bundles {
        let b = b?;
        leaves.extend(b.leaves);
        if undecodable.is_none() {
            undecodable = b.undecodable;
        }
        if let Some((a, z)) = b.span {
            span = Some(span.map_or((a, z), |(x, y)| (x.min(a), y.max(z))));
        }
        bundle_damage.extend(b.damage);
    }
    // An entry beyond the signed size is judged by the checkpoints, not
    // here: only the signed entries must decode.
    if undecodable.as_ref().is_some_and(|(i, _)| *i >= size) {
        undecodable = None;
    }
    bundle_damage.append(&mut damage);
    bundle_damage.sort_by_key(|d| d.index);
    let claimed = read_claimed_leaves(source, layout, size)?;
    Ok(EntriesRead {
        leaves,
        claimed,
        damage: bundle_damage,
        undecodable,
        bundles: plan.len(),
        span,
    })
}
