//! C2SP tiled transparency logs (<https://c2sp.org/tlog-tiles>): the
//! layout of an exported audit log.
//!
//! This module owns the "Merkle Tree" and "Log entries" sections of the spec:
//! tile paths (`tile/<L>/<N>[.p/<W>]` with `N` in 3-digit groups such as
//! `x001/x234/067`, and `tile/entries/<N>[.p/<W>]`), which tiles a tree of a
//! given size has, the bytes of a hash tile (256 hashes of height-8 subtrees,
//! fewer for a partial tile) and of an entry bundle (each entry as a
//! big-endian 16-bit length then its bytes), and the way back: parsing tiles
//! and bundles and recomputing a root from tiles alone. It never touches the
//! file system: the CLI writes and reads the files; this module only says
//! what goes where.
//!
//! Over 600 lines only with its tests (the code is under 480): the tests
//! check the layout against the spec's examples and stay beside it.

use super::rfc9162::{node_hash, Hash, ProofError, Tree, HASH_LEN};
use std::fmt;
use std::ops::Range;

/// Height of a tile: each tile is a subtree of 8 levels.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile, and entries in a full entry bundle.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// The highest tile level the spec allows.
pub const MAX_LEVEL: u8 = 63;
/// The longest entry an entry bundle can hold (16-bit length prefix).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Why a tile path, tile or bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// The path does not follow the tlog-tiles grammar.
    #[error("malformed tile path {path:?}: {reason}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// A tile has the wrong number of bytes for its width: a truncated or
    /// corrupted export.
    #[error("tile {path} has {len} bytes, expected {expected}")]
    BadTileLength {
        /// The tile's path.
        path: String,
        /// Its length.
        len: usize,
        /// The length its width requires.
        expected: usize,
    },
    /// An entry bundle ends inside an entry, or holds more than 256 entries:
    /// a truncated or corrupted export.
    #[error("malformed entry bundle: {reason}")]
    BadBundle {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// An entry is longer than an entry bundle can hold: the caller's fault.
    #[error("entry of {len} bytes exceeds the {MAX_ENTRY_LEN}-byte limit of entry bundles")]
    EntryTooLarge {
        /// The entry's length.
        len: usize,
    },
    /// A tile needed to answer was not supplied: an incomplete export.
    #[error("tile {0} is missing")]
    MissingTile(String),
    /// The tree does not have the size or tile asked for: the caller's fault.
    #[error(transparent)]
    Tree(#[from] ProofError),
}

/// What a tile holds: Merkle tree hashes at a level, or log entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileLevel {
    /// Hashes of subtrees of 256^level entries; level 0 holds leaf hashes.
    Hashes(u8),
    /// An entry bundle, the entries behind a level-0 tile.
    Entries,
}

/// The address of one tile or entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TilePath {
    /// What the tile holds.
    pub level: TileLevel,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes or entries, 1 to 256; 256 is a full tile.
    pub width: u16,
}

impl TilePath {
    /// Whether this is a full tile (no `.p/<W>` suffix).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The range of entry indices this tile's hashes or entries cover (the
    /// spec's start index to end index, cut short for a partial tile).
    pub fn entry_range(&self) -> Range<u64> {
        let level = match self.level {
            TileLevel::Hashes(l) => u32::from(l),
            TileLevel::Entries => 0,
        };
        let span = 1u64.checked_shl(TILE_HEIGHT * level).unwrap_or(u64::MAX);
        let first = self.index.saturating_mul(TILE_WIDTH).saturating_mul(span);
        first..first.saturating_add(u64::from(self.width).saturating_mul(span))
    }
}

/// Writes `n` as 3-digit groups, all but the last prefixed with `x`.
fn fmt_index(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    let digits = n.to_string();
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups = padded.len() / 3;
    for g in 0..groups {
        if g + 1 < groups {
            write!(f, "x{}/", &padded[3 * g..3 * g + 3])?;
        } else {
            f.write_str(&padded[3 * g..3 * g + 3])?;
        }
    }
    Ok(())
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            TileLevel::Hashes(l) => write!(f, "tile/{l}/")?,
            TileLevel::Entries => f.write_str("tile/entries/")?,
        }
        fmt_index(f, self.index)?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for TilePath {
    type Err = TileError;

    /// Parses a path in its one canonical form.
    fn from_str(path: &str) -> Result<Self, TileError> {
        let bad = |reason| TileError::BadPath {
            path: path.to_string(),
            reason,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("a tile path starts with tile/"))?;
        let (level_str, rest) = rest.split_once('/').ok_or_else(|| bad("no tile index"))?;
        let level = if level_str == "entries" {
            TileLevel::Entries
        } else {
            let l = parse_decimal(level_str).ok_or_else(|| bad("the level is not a number"))?;
            match u8::try_from(l) {
                Ok(l) if l <= MAX_LEVEL => TileLevel::Hashes(l),
                _ => return Err(bad("the level is above 63")),
            }
        };
        let (index_str, width) = match rest.split_once(".p/") {
            Some((index_str, w)) => {
                let w = parse_decimal(w).ok_or_else(|| bad("the width is not a number"))?;
                match u16::try_from(w) {
                    Ok(w) if (1..TILE_WIDTH as u16).contains(&w) => (index_str, w),
                    _ => return Err(bad("a partial width is 1 to 255")),
                }
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_str.split('/').collect();
        let mut index: u64 = 0;
        for (i, group) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last {
                *group
            } else {
                group
                    .strip_prefix('x')
                    .ok_or_else(|| bad("all but the last index element start with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index elements are 3 digits"));
            }
            if i == 0 && groups.len() > 1 && digits == "000" {
                return Err(bad("the index has a leading zero group"));
            }
            let value: u64 = digits
                .parse()
                .map_err(|_| bad("index elements are 3 digits"))?;
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(value))
                .ok_or_else(|| bad("the index does not fit in 64 bits"))?;
        }
        Ok(TilePath {
            level,
            index,
            width,
        })
    }
}

/// A decimal number without sign or leading zero.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Number of complete hashes at tile level `level` in a tree of `size`
/// entries: floor(size / 256^level).
fn hashes_at_level(size: u64, level: u8) -> u64 {
    size.checked_shr(TILE_HEIGHT * u32::from(level))
        .unwrap_or(0)
}

/// The hash tiles of a tree of `size` entries, level by level, full tiles
/// then the partial one (spec, "Partial Tiles"). The empty tree has none.
/// Lazy, so that a size read from an untrusted checkpoint costs nothing
/// until tiles are actually asked for.
pub fn hash_tile_paths(size: u64) -> impl Iterator<Item = TilePath> {
    (0..=MAX_LEVEL)
        .map_while(move |level| {
            let count = hashes_at_level(size, level);
            (count > 0).then(|| level_paths(TileLevel::Hashes(level), count))
        })
        .flatten()
}

/// The entry bundles of a tree of `size` entries: the same indices and widths
/// as its level-0 tiles. Lazy, like [`hash_tile_paths`].
pub fn entry_bundle_paths(size: u64) -> impl Iterator<Item = TilePath> {
    level_paths(TileLevel::Entries, size)
}

fn level_paths(level: TileLevel, count: u64) -> impl Iterator<Item = TilePath> {
    let full = count / TILE_WIDTH;
    let partial = (count % TILE_WIDTH) as u16;
    (0..full)
        .map(move |index| TilePath {
            level,
            index,
            width: TILE_WIDTH as u16,
        })
        .chain((partial > 0).then_some(TilePath {
            level,
            index: full,
            width: partial,
        }))
}

/// A tile's path and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Where it goes.
    pub path: TilePath,
    /// The concatenated hashes, `32 * width` bytes.
    pub data: Vec<u8>,
}

/// The bytes of hash tile `path` of `tree`: the `width` hashes of subtrees of
/// 256^level entries starting at hash `index * 256` of that level. The tree
/// must hold every entry the tile covers.
pub fn hash_tile(tree: &Tree, path: &TilePath) -> Result<Vec<u8>, TileError> {
    let TileLevel::Hashes(level) = path.level else {
        return Err(TileError::BadPath {
            path: path.to_string(),
            reason: "an entry bundle is not a hash tile",
        });
    };
    let hashes = tree.perfect_subtrees((TILE_HEIGHT * u32::from(level)) as usize);
    let range = usize::try_from(path.index)
        .ok()
        .and_then(|i| i.checked_mul(TILE_WIDTH as usize))
        .and_then(|start| Some(start..start.checked_add(usize::from(path.width))?))
        .filter(|r| r.end <= hashes.len())
        .ok_or(TileError::Tree(ProofError::SizeOutOfRange {
            size: path.entry_range().end,
            limit: tree.size(),
        }))?;
    Ok(hashes[range].concat())
}

/// Every hash tile of the tree as it was at `size` entries, with its bytes.
/// Write these (and the entry bundles) to export the log at that size; a
/// later size produces the same full tiles and new partial ones.
pub fn hash_tiles(tree: &Tree, size: u64) -> Result<Vec<Tile>, TileError> {
    if size > tree.size() {
        return Err(ProofError::SizeOutOfRange {
            size,
            limit: tree.size(),
        }
        .into());
    }
    hash_tile_paths(size)
        .map(|path| {
            Ok(Tile {
                data: hash_tile(tree, &path)?,
                path,
            })
        })
        .collect()
}

/// Splits a hash tile of `path.width` hashes into its hashes.
pub fn parse_hash_tile(path: &TilePath, data: &[u8]) -> Result<Vec<Hash>, TileError> {
    let expected = usize::from(path.width) * HASH_LEN;
    if data.len() != expected {
        return Err(TileError::BadTileLength {
            path: path.to_string(),
            len: data.len(),
            expected,
        });
    }
    Ok(data
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Encodes entries as an entry bundle: for each, its length as a big-endian
/// u16, then its bytes. At most 256 entries.
pub fn encode_entry_bundle<'a, I>(entries: I) -> Result<Vec<u8>, TileError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = Vec::new();
    for (count, entry) in entries.into_iter().enumerate() {
        if count as u64 == TILE_WIDTH {
            return Err(TileError::BadBundle {
                reason: "more than 256 entries",
            });
        }
        let len = u16::try_from(entry.len())
            .map_err(|_| TileError::EntryTooLarge { len: entry.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Splits an entry bundle into its entries, refusing truncated bundles and
/// bundles of more than 256 entries. Check the count against the bundle's
/// width: a partial bundle of width W holds exactly W entries.
pub fn parse_entry_bundle(data: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if entries.len() as u64 == TILE_WIDTH {
            return Err(TileError::BadBundle {
                reason: "more than 256 entries",
            });
        }
        let Some((len, after)) = rest.split_first_chunk::<2>() else {
            return Err(TileError::BadBundle {
                reason: "truncated length prefix",
            });
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if after.len() < len {
            return Err(TileError::BadBundle {
                reason: "truncated entry",
            });
        }
        let (entry, after) = after.split_at(len);
        entries.push(entry);
        rest = after;
    }
    Ok(entries)
}

/// Reads the leaf hashes of the tree of `size` entries back from its level-0
/// tiles, in order. An auditor compares them with the hashes of the exported
/// entries: the first index where they differ names the entry at fault.
pub fn leaf_hashes_from_tiles<F>(size: u64, mut read_tile: F) -> Result<Vec<Hash>, TileError>
where
    F: FnMut(&TilePath) -> Option<Vec<u8>>,
{
    let mut hashes = Vec::new();
    for path in level_paths(TileLevel::Hashes(0), size) {
        let data = read_tile(&path).ok_or_else(|| TileError::MissingTile(path.to_string()))?;
        hashes.extend(parse_hash_tile(&path, &data)?);
    }
    Ok(hashes)
}

/// The tile of `level` holding hash number `position` of that level in a
/// tree of `size` entries: full if complete, else the partial one.
fn tile_holding(level: u8, position: u64, size: u64) -> TilePath {
    let count = hashes_at_level(size, level);
    let index = position / TILE_WIDTH;
    let width = if index < count / TILE_WIDTH {
        TILE_WIDTH as u16
    } else {
        (count % TILE_WIDTH) as u16
    };
    TilePath {
        level: TileLevel::Hashes(level),
        index,
        width,
    }
}

/// Recomputes the root of the tree of `size` entries from its hash tiles
/// alone, as a client of a tiled log does. `read_tile` returns a tile's
/// bytes, or `None` if it is not available. Every tile read is checked for
/// length; whether the tiles agree with the entries is checked by recomputing
/// them from the entries (see [`hash_tiles`]).
pub fn root_from_tiles<F>(size: u64, mut read_tile: F) -> Result<Hash, TileError>
where
    F: FnMut(&TilePath) -> Option<Vec<u8>>,
{
    if size == 0 {
        return Ok(super::rfc9162::empty_root());
    }
    let mut cache: Option<(TilePath, Vec<Hash>)> = None;
    let mut subtree_roots: Vec<Hash> = Vec::new();
    let mut start = 0u64;
    // The tree's root folds the perfect subtrees given by the set bits of
    // `size`, largest first.
    for height in (0..64u32).rev() {
        let len = 1u64 << height;
        if size & len == 0 {
            continue;
        }
        let level = (height / TILE_HEIGHT) as u8;
        let below = height % TILE_HEIGHT;
        // The subtree is 2^below consecutive hashes of `level`, inside one tile.
        let first = start >> (TILE_HEIGHT * u32::from(level));
        let count = 1u64 << below;
        let path = tile_holding(level, first, size);
        let hashes = match &cache {
            Some((p, h)) if *p == path => h,
            _ => {
                let data =
                    read_tile(&path).ok_or_else(|| TileError::MissingTile(path.to_string()))?;
                let parsed = parse_hash_tile(&path, &data)?;
                &cache.insert((path, parsed)).1
            }
        };
        let offset = (first % TILE_WIDTH) as usize;
        let Some(slice) = hashes.get(offset..offset + count as usize) else {
            return Err(TileError::MissingTile(path.to_string()));
        };
        subtree_roots.push(perfect_root(slice));
        start += len;
    }
    let mut iter = subtree_roots.iter().rev();
    let Some(last) = iter.next() else {
        return Ok(super::rfc9162::empty_root());
    };
    Ok(iter.fold(*last, |acc, left| node_hash(left, &acc)))
}

/// The root of a perfect subtree given its 2^k leaves (here, tile hashes).
fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|p| node_hash(&p[0], &p[p.len() - 1]))
            .collect();
    }
    layer
        .first()
        .copied()
        .unwrap_or_else(super::rfc9162::empty_root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::rfc9162::leaf_hash;

    fn path(s: &str) -> TilePath {
        s.parse().unwrap()
    }

    #[test]
    fn index_grouping() {
        for (index, text) in [
            (0u64, "tile/0/000"),
            (1, "tile/0/001"),
            (999, "tile/0/999"),
            (1000, "tile/0/x001/000"),
            (1234067, "tile/0/x001/x234/067"),
            (u64::MAX, "tile/0/x018/x446/x744/x073/x709/x551/615"),
        ] {
            let p = TilePath {
                level: TileLevel::Hashes(0),
                index,
                width: 256,
            };
            assert_eq!(p.to_string(), text);
            assert_eq!(path(text), p);
        }
        let p = path("tile/entries/x001/x234/067.p/8");
        assert_eq!(p.level, TileLevel::Entries);
        assert_eq!((p.index, p.width), (1234067, 8));
        assert_eq!(p.to_string(), "tile/entries/x001/x234/067.p/8");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "",
            "tile/",
            "tile/0",
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/y001/002",
            "tile/64/001",
            "tile/01/001",
            "tile/-1/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/05",
            "tile/0/001.p/",
            "tile/data/001",
            "tiles/0/001",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(bad.parse::<TilePath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tiles_cover_the_tree() {
        assert_eq!(hash_tile_paths(0).count(), 0);
        let p: Vec<String> = hash_tile_paths(256).map(|p| p.to_string()).collect();
        assert_eq!(p, ["tile/0/000", "tile/1/000.p/1"]);
        let p: Vec<String> = hash_tile_paths(515).map(|p| p.to_string()).collect();
        assert_eq!(
            p,
            [
                "tile/0/000",
                "tile/0/001",
                "tile/0/002.p/3",
                "tile/1/000.p/2"
            ]
        );
        let e: Vec<String> = entry_bundle_paths(515).map(|p| p.to_string()).collect();
        assert_eq!(
            e,
            [
                "tile/entries/000",
                "tile/entries/001",
                "tile/entries/002.p/3"
            ]
        );
        assert_eq!(path("tile/entries/002.p/3").entry_range(), 512..515);
        assert_eq!(path("tile/1/000.p/2").entry_range(), 0..512);
    }

    #[test]
    fn roots_from_tiles_match_the_tree() {
        let n = 70_000u64;
        let tree = Tree::from_leaf_hashes((0..n).map(|i| leaf_hash(&i.to_le_bytes())));
        for size in [
            1u64, 2, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 69_999, 70_000,
        ] {
            let tiles = hash_tiles(&tree, size).unwrap();
            let root = root_from_tiles(size, |p| {
                tiles.iter().find(|t| t.path == *p).map(|t| t.data.clone())
            })
            .unwrap();
            assert_eq!(root, tree.root_at(size).unwrap(), "size {size}");
            // Level-0 tiles hold the leaf hashes.
            let leaves = leaf_hashes_from_tiles(size, |p| {
                tiles.iter().find(|t| t.path == *p).map(|t| t.data.clone())
            })
            .unwrap();
            assert_eq!(leaves, tree.leaf_hashes()[..size as usize]);
        }
        assert!(matches!(
            root_from_tiles(300, |_| None),
            Err(TileError::MissingTile(_))
        ));
        assert!(matches!(
            root_from_tiles(300, |_| Some(vec![0; 31])),
            Err(TileError::BadTileLength { .. })
        ));
        assert!(hash_tiles(&tree, n + 1).is_err());
        // A huge size from an untrusted checkpoint fails at the first
        // missing tile instead of allocating.
        assert!(leaf_hashes_from_tiles(u64::MAX, |_| None).is_err());
        assert!(root_from_tiles(u64::MAX, |_| None).is_err());
        assert_eq!(hash_tile_paths(u64::MAX).take(3).count(), 3);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn paths_round_trip(level in 0u8..=MAX_LEVEL, index: u64, width in 1u16..=256) {
            let p = TilePath { level: TileLevel::Hashes(level), index, width };
            proptest::prop_assert_eq!(p.to_string().parse::<TilePath>(), Ok(p));
            let e = TilePath { level: TileLevel::Entries, ..p };
            proptest::prop_assert_eq!(e.to_string().parse::<TilePath>(), Ok(e));
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,40}", path in "tile/[0-9a-z./x]{0,30}", bytes: Vec<u8>) {
            let _ = text.parse::<TilePath>();
            let _ = path.parse::<TilePath>();
            let _ = parse_entry_bundle(&bytes);
        }

        #[test]
        fn roots_from_tiles_at_random_sizes(size in 0u64..=3000) {
            let tree = Tree::from_leaf_hashes((0..size).map(|i| leaf_hash(&i.to_le_bytes())));
            let tiles = hash_tiles(&tree, size).unwrap();
            let root = root_from_tiles(size, |p| {
                tiles.iter().find(|t| t.path == *p).map(|t| t.data.clone())
            });
            proptest::prop_assert_eq!(root, Ok(tree.root()));
        }
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_damage() {
        let entries: Vec<Vec<u8>> = (0..256u32).map(|i| vec![i as u8; i as usize]).collect();
        let bundle = encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap();
        let parsed = parse_entry_bundle(&bundle).unwrap();
        assert_eq!(parsed.len(), 256);
        assert!(parsed.iter().zip(&entries).all(|(a, b)| *a == b.as_slice()));
        assert!(parse_entry_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(parse_entry_bundle(&[0]).is_err());
        let mut longer = bundle.clone();
        longer.extend_from_slice(&[0, 0]);
        assert!(parse_entry_bundle(&longer).is_err());
        assert_eq!(parse_entry_bundle(&[]).unwrap().len(), 0);
        assert!(encode_entry_bundle([vec![0u8; 65_536].as_slice()]).is_err());
        assert!(encode_entry_bundle(entries.iter().map(Vec::as_slice).chain([&[][..]])).is_err());
    }
}
