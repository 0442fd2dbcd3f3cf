//! What the operator files of the gateway (`gateway.toml`) and of a
//! station (`client.toml`) share: the agency CAs and trust domains, the key
//! exchange policy, the errors, and the reading of a TOML file.
//!
//! Paths inside a config file are relative to the file's own directory, so a
//! directory such as `certs-example/` can be moved as a whole. This module
//! reads files; it never opens sockets.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::domain::principal::Agency;

/// Why a config file could not be used. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is out of bounds or inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One trusted CA and the agency it is bound to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyConfig {
    /// Agency name, the first segment of its principals' ids.
    pub name: Agency,
    /// PEM file of the agency's CA certificate.
    pub ca: PathBuf,
    /// SPIFFE trust domain of the agency's certificates, e.g. `police.example`.
    pub trust_domain: String,
    /// Optional PEM file of CRLs issued by this CA.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

/// `[tls] kx`: whether the handshake's key exchange must resist a future
/// quantum computer. The hybrid group is X25519MLKEM768: X25519 and
/// ML-KEM-768 together, so the session keys stay secret unless both break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyExchange {
    /// X25519MLKEM768 first, classical X25519 and P-256/P-384 for clients
    /// that cannot do it (curl on OpenSSL 3.0, older stations).
    #[default]
    HybridPreferred,
    /// X25519MLKEM768 only: a client that does not offer it is refused at
    /// the handshake, and the refusal is audited (`handshake-kx`).
    HybridRequired,
    /// Classical groups only (X25519, P-256, P-384), as before the hybrid
    /// group existed; for diagnosing a peer that chokes on the larger hello.
    Classical,
}

/// Reads a TOML config file into `T`; the station's `client.toml` is read
/// with it too.
pub fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The directory a config file's relative paths are resolved against.
pub fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
