//! The gateway's own signing key: it signs checkpoints of the audit log
//! (C2SP signed notes), receipts and delivery attestations (COSE_Sign1).
//!
//! The key is an Ed25519 PKCS#8 PEM file, so it can be made by
//! `passerelle keygen` or by `openssl genpkey -algorithm ed25519`. A key file
//! that group or others can read is refused: whoever reads it can forge the
//! log's checkpoints. This module reads and writes that one file, and owns
//! the rule every private key file of the project follows (the gateway's
//! TLS key, a station's key, this key): it is refused when group or others
//! can read it ([`refuse_open`]), and the project creates it 0600
//! ([`write_private`]). It never signs anything itself beyond handing out
//! the keys.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::audit::signed_note::{SignerKey, VerifierKey};
use crate::domain::cose::{PublicKey, SigningKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

/// Why the gateway key could not be used. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error("{path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not an Ed25519 PKCS#8 PEM key.
    #[error("{path}: not an Ed25519 PKCS#8 PEM private key: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// PEM of a PKCS#8 key without the optional public key (v1, RFC 5208).
///
/// ring writes Ed25519 keys as PKCS#8 v2 (RFC 5958), which OpenSSL 3.0 and
/// so curl refuse; every reader, ring included, takes v1. The example PKI
/// writes its station and gateway keys with it too.
pub fn pkcs8_v1_pem(der: &[u8]) -> Result<String, pkcs8::Error> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)?;
    let v1 = pkcs8::PrivateKeyInfo::new(info.algorithm, info.private_key);
    let doc = pkcs8::SecretDocument::try_from(v1)?;
    let pem = doc.to_pem("PRIVATE KEY", pkcs8::LineEnding::LF)?;
    Ok(pem.to_string())
}

/// The gateway's key, in the two forms it signs with.
pub struct GatewayKey {
    /// For COSE_Sign1 receipts and attestations.
    pub cose: SigningKey,
    /// For checkpoints; its name is the log's origin.
    pub note: SignerKey,
}

impl std::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatewayKey({:?})", self.note)
    }
}

fn from_pem(path: &Path, pem: &str, origin: &str) -> Result<GatewayKey, KeyFileError> {
    let format = |reason: String| KeyFileError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format(e.to_string()))?;
    let note = SignerKey::from_ed25519_pkcs8(origin, der.secret_der())
        .map_err(|e| format(e.to_string()))?;
    let cose = SigningKey::from_pkcs8(der.secret_der()).map_err(|e| format(e.to_string()))?;
    Ok(GatewayKey { cose, note })
}

/// Refuses a private key file that group or others can read (any of the
/// mode bits 0o077): whoever reads it can act as its owner, so it must be
/// the service's alone. The error names the file and the fix (`chmod 600`).
pub fn refuse_open(path: &Path) -> Result<(), KeyFileError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// Writes a private key file with mode 0600, replacing any file there.
/// The file is created 0600 rather than chmod-ed after the write, so its
/// contents are never readable by others, not even for an instant; a file
/// that was already there is set to 0600 before anything is written.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

impl GatewayKey {
    /// Loads the key at `path`; `origin` names the log in checkpoints.
    pub fn load(path: &Path, origin: &str) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        refuse_open(path)?;
        let pem = std::fs::read_to_string(path).map_err(io)?;
        from_pem(path, &pem, origin)
    }

    /// Makes a new key and writes it to `path` (which must not exist) with
    /// mode 0600.
    pub fn generate(path: &Path, origin: &str) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let format = |reason: String| KeyFileError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let rng = ring::rand::SystemRandom::new();
        let v2 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| format("no randomness".into()))?;
        let pem = pkcs8_v1_pem(v2.as_ref()).map_err(|e| format(e.to_string()))?;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        from_pem(path, &pem, origin)
    }

    /// Loads the key at `path`, or, when there is no such file and the log
    /// is new (`log_is_new`), makes one (mode 0600) and writes its verifier
    /// key to `vkey`. A missing key for a log that already has signed
    /// checkpoints is refused: a new key would silently start another log.
    pub fn load_or_create(
        path: &Path,
        origin: &str,
        vkey: Option<&Path>,
        log_is_new: bool,
    ) -> Result<Self, KeyFileError> {
        if path.exists() || !log_is_new {
            return Self::load(path, origin);
        }
        let key = Self::generate(path, origin)?;
        if let Some(vkey) = vkey {
            std::fs::write(vkey, format!("{}\n", key.verifier_key())).map_err(|source| {
                KeyFileError::Io {
                    path: vkey.to_path_buf(),
                    source,
                }
            })?;
        }
        tracing::info!(key = %key.verifier_key(), "made the gateway's signing key for a new audit log");
        Ok(key)
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> PublicKey {
        self.cose.public_key()
    }

    /// The C2SP signed-note verifier key (`name+hash+base64`), for auditors.
    pub fn verifier_key(&self) -> VerifierKey {
        self.note.verifier_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_refuse_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let made = GatewayKey::generate(&path, "passerelle.example/audit").unwrap();
        let loaded = GatewayKey::load(&path, "passerelle.example/audit").unwrap();
        assert_eq!(made.public_key(), loaded.public_key());
        assert_eq!(
            made.verifier_key().to_string(),
            loaded.verifier_key().to_string()
        );
        // A signature by the COSE key verifies with the note key's public half.
        let cose = loaded.cose.sign1(b"x".to_vec(), "application/cbor");
        assert!(made.public_key().verify1(&cose).is_ok());
        assert!(
            GatewayKey::generate(&path, "o").is_err(),
            "must not overwrite"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            GatewayKey::load(&path, "o"),
            Err(KeyFileError::TooOpen { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            GatewayKey::load(&path, "o"),
            Err(KeyFileError::Format { .. })
        ));
    }
}
