//! When the certificates and CRLs of a configuration stop being usable:
//! each certificate's validity period, each CRL's next update and whether
//! its CA signed it. `passerelle config check` reads this to say what is
//! wrong now and what will expire soon.
//!
//! This module only reads the PEM files it is given (through [`crate::tls`]'s
//! loaders) and parses them; it never decides whether a peer is trusted
//! (that is [`crate::tls`]'s job, with the CRLs in force) and never reads
//! the clock: the caller passes `now`.

use std::path::{Path, PathBuf};

use crate::tls::{self, TlsError};

/// Why a file could not be inspected. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidityError {
    /// The PEM file could not be read.
    #[error(transparent)]
    Pem(#[from] TlsError),
    /// An entry of the file is not a certificate or CRL.
    #[error("{path}: entry {index}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Which entry (from 1).
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// One certificate's validity period, in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateValidity {
    /// Its subject, as text.
    pub subject: String,
    /// Whether it may issue certificates (basic constraints `cA`).
    pub is_ca: bool,
    /// Not valid before.
    pub not_before: i64,
    /// Not valid after.
    pub not_after: i64,
}

/// One CRL's dates and whether the CA it is configured with signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlValidity {
    /// Its issuer, as text.
    pub issuer: String,
    /// When it was issued.
    pub this_update: i64,
    /// When its issuer promises the next one, if it says.
    pub next_update: Option<i64>,
    /// Whether one of the given CA certificates' keys verifies its signature.
    pub signed_by_ca: bool,
    /// Number of certificates it revokes.
    pub revoked: usize,
}

/// The validity of every certificate in the PEM file at `path`.
pub fn certificates(path: &Path) -> Result<Vec<CertificateValidity>, ValidityError> {
    let mut out = Vec::new();
    for (i, der) in tls::load_certs(path)?.iter().enumerate() {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| ValidityError::Parse {
                path: path.to_path_buf(),
                index: i + 1,
                message: e.to_string(),
            })?;
        out.push(CertificateValidity {
            subject: cert.subject().to_string(),
            is_ca: cert.is_ca(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        });
    }
    Ok(out)
}

/// The dates of every CRL in the PEM file at `crl`, each checked against
/// the keys of the CA certificates in the PEM file at `ca`.
pub fn crls(crl: &Path, ca: &Path) -> Result<Vec<CrlValidity>, ValidityError> {
    let cas = tls::load_certs(ca)?;
    let mut ca_keys = Vec::new();
    for (i, der) in cas.iter().enumerate() {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| ValidityError::Parse {
                path: ca.to_path_buf(),
                index: i + 1,
                message: e.to_string(),
            })?;
        ca_keys.push(cert);
    }
    let mut out = Vec::new();
    for (i, der) in tls::load_crls(crl)?.iter().enumerate() {
        let (_, list) = x509_parser::parse_x509_crl(der).map_err(|e| ValidityError::Parse {
            path: crl.to_path_buf(),
            index: i + 1,
            message: e.to_string(),
        })?;
        let signed_by_ca = ca_keys
            .iter()
            .any(|ca| list.verify_signature(ca.public_key()).is_ok());
        out.push(CrlValidity {
            issuer: list.issuer().to_string(),
            this_update: list.last_update().timestamp(),
            next_update: list.next_update().map(|t| t.timestamp()),
            signed_by_ca,
            revoked: list.iter_revoked_certificates().count(),
        });
    }
    Ok(out)
}
