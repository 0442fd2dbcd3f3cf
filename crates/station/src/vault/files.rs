//! The vault's files on disk: each written whole and durably, or not at
//! all, readable by the station's user only. A write goes to a temporary
//! file, is fsynced, renamed over the final name and the directory is
//! fsynced, so a crash or power cut leaves either the old record or the
//! new one, never half of one. This module never sees a key or a
//! plaintext: it moves sealed bytes.

use std::io::Write;
use std::path::Path;

use super::{FileInfo, VaultError};

const PARTIAL: &str = "partial";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VaultError + '_ {
    move |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (mode 0700) if missing.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), VaultError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Writes `bytes` as `dir/name`; returns once the file and its directory
/// entry are on disk.
pub(super) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), VaultError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.{PARTIAL}"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

/// Removes `dir/name` durably; a file already gone is not an error.
pub(super) fn remove_durably(dir: &Path, name: &str) -> Result<(), VaultError> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The sealed files of `dir` (temporary ones left out), sorted by name.
pub(super) fn list_sealed(dir: &Path) -> Result<Vec<(String, FileInfo)>, VaultError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.ends_with(PARTIAL) {
            continue;
        }
        let meta = entry.metadata().map_err(io(dir))?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        out.push((
            name,
            FileInfo {
                size: meta.len(),
                modified,
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Removes what interrupted writes left behind.
pub(super) fn remove_partial(dir: &Path) -> Result<(), VaultError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(PARTIAL))
        {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}
