//! The `--key` and `--witness` arguments: a verifier key given as its
//! string or as the name of a file holding it.
//!
//! This module owns only turning an argument into a key, saying whether the
//! argument or the file was at fault. It never decides which key to trust:
//! the auditor names it on the command line.

use crate::audit::signed_note::NoteError;
use crate::audit::signed_note::VerifierKey;
use std::path::Path;
use std::path::PathBuf;

/// Why the `--key` argument gave no verifier key: the caller's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyArgError {
    /// It is not a key string and no readable file has that name.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The string (given, or read from the file) is not a verifier key.
    #[error("{what} is not a signed-note verifier key (name+keyid+base64, as in gateway/audit.vkey): {source}")]
    Invalid {
        /// The argument, or the file it came from.
        what: String,
        /// What is wrong.
        source: NoteError,
    },
}

/// Reads a verifier key given as the key string itself
/// (`name+keyid+base64`) or as the path of a file holding it.
pub fn load_verifier_key(arg: &str) -> Result<VerifierKey, KeyArgError> {
    load_key_arg(arg)
}

/// Reads a key of type `K` given as its string or as the path of a file
/// holding it: the gateway's key (`--key`) and witnesses' keys
/// (`--witness`).
pub fn load_key_arg<K: std::str::FromStr<Err = NoteError>>(arg: &str) -> Result<K, KeyArgError> {
    let direct = arg.trim().parse::<K>();
    let direct = match direct {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    let path = Path::new(arg);
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|source| KeyArgError::Invalid {
            what: format!("the content of {}", path.display()),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && arg.contains('+') => {
            Err(KeyArgError::Invalid {
                what: format!("{arg:?}"),
                source: direct,
            })
        }
        Err(source) => Err(KeyArgError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
