//! The witness's configuration file (`witness.toml`) and key file.
//!
//! This module owns reading them: the listen address, the key file, the
//! state directory, optional TLS material, and the logs witnessed with
//! their verifier keys. It refuses a configuration that could make the
//! witness cosign for the wrong log (a duplicate origin, a key named for
//! another origin) and a key file others can read. It never starts
//! anything and never writes.

use crate::audit::cosignature::CosignerKey;
use crate::audit::signed_note::VerifierKey;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why the configuration or key cannot be used: the operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is not valid TOML of the expected shape.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is readable by others.
    #[error("{path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
}

/// `[tls]`: the witness's certificate chain and key (PEM). Without it the
/// witness speaks plain HTTP, which is only for loopback and tests.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// One `[[log]]`: a log the witness cosigns for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogEntry {
    origin: String,
    /// Verifier key strings (`name+keyid+base64`), as `passerelle keygen`
    /// prints them; several during a key rotation.
    keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    key: PathBuf,
    state: PathBuf,
    tls: Option<TlsFiles>,
    #[serde(default, rename = "log")]
    logs: Vec<LogEntry>,
}

/// The witness's configuration, checked.
#[derive(Debug)]
pub struct WitnessConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The witness's signer key file.
    pub key: PathBuf,
    /// The directory of the per-log state files.
    pub state: PathBuf,
    /// TLS material, if any.
    pub tls: Option<TlsFiles>,
    /// The logs witnessed: origin → trusted keys.
    pub logs: BTreeMap<String, Vec<VerifierKey>>,
}

impl WitnessConfig {
    /// Reads and checks `path`; relative paths in it are taken from its
    /// directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let raw: RawConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut logs = BTreeMap::new();
        for log in raw.logs {
            if log.keys.is_empty() {
                return Err(invalid(format!("log {:?} has no keys", log.origin)));
            }
            let mut keys = Vec::new();
            for k in &log.keys {
                let key: VerifierKey = k
                    .trim()
                    .parse()
                    .map_err(|e| invalid(format!("log {:?}: key {k:?}: {e}", log.origin)))?;
                // The checkpoint spec names the key after the origin; a key
                // of another name would be another log's.
                if key.name() != log.origin {
                    return Err(invalid(format!(
                        "log {:?}: the key is named {:?}, not after the origin",
                        log.origin,
                        key.name()
                    )));
                }
                keys.push(key);
            }
            if logs.insert(log.origin.clone(), keys).is_some() {
                return Err(invalid(format!("log {:?} is listed twice", log.origin)));
            }
        }
        let tls = raw.tls.map(|t| TlsFiles {
            cert: base.join(t.cert),
            key: base.join(t.key),
        });
        Ok(Self {
            listen: raw.listen,
            key: base.join(raw.key),
            state: base.join(raw.state),
            tls,
            logs,
        })
    }
}

/// Refuses a private key file (the witness's key, its TLS key) that group
/// or others can read.
pub fn refuse_open(path: &Path) -> Result<(), ConfigError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ConfigError::TooOpen {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// Loads the witness's key, refusing a file group or others can read.
// The same check as the gateway's key loader (passerelle-identity), kept
// apart on purpose: a witness depends on the core only (tests/layers.rs),
// and the core does no file I/O.
pub fn load_key(path: &Path) -> Result<CosignerKey, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    refuse_open(path)?;
    let text = std::fs::read_to_string(path).map_err(io)?;
    CosignerKey::from_signer_key_string(text.trim()).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Makes a new witness key named `name` and writes it to `path` (which must
/// not exist) with mode 0600.
pub fn generate_key(path: &Path, name: &str) -> Result<CosignerKey, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| invalid("no randomness".into()))?;
    let key = CosignerKey::from_ed25519_seed(name, seed).map_err(|e| invalid(e.to_string()))?;
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(format!("{}\n", key.to_signer_key_string()).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}
