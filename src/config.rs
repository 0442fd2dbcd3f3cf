//! Operator files: the gateway's `gateway.toml` and a station's `client.toml`.
//!
//! Paths inside a config file are relative to the file's own directory, so a
//! directory such as `certs-example/` can be moved as a whole. This module
//! reads and checks the files; it never opens sockets or the store.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::domain::principal::{Agency, PrincipalId};

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

fn default_max_body() -> usize {
    4 * 1024 * 1024
}
fn default_lease() -> u64 {
    60
}
fn default_max_connections() -> usize {
    512
}
fn default_max_wait() -> u64 {
    60
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

/// TLS files of the gateway itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain of the gateway.
    pub cert: PathBuf,
    /// PEM PKCS#8 private key of the gateway.
    pub key: PathBuf,
}

fn default_origin() -> String {
    "passerelle.example/audit".into()
}
fn default_checkpoint_seconds() -> u64 {
    60
}

/// The audit log's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The gateway's Ed25519 signing key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// Where the gateway writes its verifier key (for stations and auditors)
    /// when it makes its key at the first start of a new log.
    #[serde(default)]
    pub vkey: Option<PathBuf>,
    /// The log's origin line in checkpoints, and the key's name.
    #[serde(default = "default_origin")]
    pub origin: String,
    /// How often a checkpoint is issued when the log grew.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_seconds: u64,
    /// Removed: who reads every audit proof is said by the policy
    /// (`audit = "all"` on a principal). Still parsed so that a config
    /// written for an older version is refused with a message saying so,
    /// not with "unknown field".
    #[serde(default, rename = "auditor_agencies")]
    removed_auditor_agencies: Option<toml::Value>,
}

/// `gateway.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The store's database file.
    pub store: PathBuf,
    /// The gateway's own certificate and key.
    pub tls: TlsFiles,
    /// The audit log.
    pub audit: AuditConfig,
    /// Trusted CAs, one per agency.
    #[serde(rename = "agency")]
    pub agencies: Vec<AgencyConfig>,
    /// The policy directory (classification scheme, principals, flow rules).
    pub policy: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a fetched, unacknowledged item stays hidden before it is offered again.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// Most connections served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Longest long-poll a station may ask for, in seconds.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
}

/// `client.toml`: how a station reaches the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The station's own principal id, e.g. `police/lo/rabat`.
    pub principal: PrincipalId,
    /// Gateway address, `host:port`.
    pub gateway: String,
    /// Name the gateway's certificate must carry.
    pub server_name: String,
    /// The station's PEM certificate.
    pub cert: PathBuf,
    /// The station's PEM PKCS#8 key (also used to sign items).
    pub key: PathBuf,
    /// PEM CA certificate(s) that issued the gateway's certificate.
    pub ca: PathBuf,
    /// The gateway's signed-note verifier key (`origin+keyid+base64`), or
    /// the path of a file holding it, to check receipts, attestations and
    /// checkpoints. After loading, always the key itself.
    pub gateway_key: String,
    /// Agency CAs, to check the certificate a sender signed with.
    #[serde(rename = "agency")]
    pub agencies: Vec<AgencyConfig>,
    /// How many times `send` tries again after a network failure (a
    /// resubmit is idempotent, so retrying never duplicates an item).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Where `send` keeps each signed item until the gateway has answered
    /// with a receipt, so that a dropped link never loses one.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
}

fn default_outbox() -> PathBuf {
    PathBuf::from("outbox")
}

fn default_retries() -> u32 {
    5
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl GatewayConfig {
    /// Reads and checks `gateway.toml`, resolving paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c: GatewayConfig = read_toml(path)?;
        let base = base_dir(path);
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        c.store = base.join(&c.store);
        c.tls.cert = base.join(&c.tls.cert);
        c.tls.key = base.join(&c.tls.key);
        c.audit.key = base.join(&c.audit.key);
        c.audit.vkey = c.audit.vkey.as_ref().map(|p| base.join(p));
        c.policy = base.join(&c.policy);
        if c.audit.removed_auditor_agencies.is_some() {
            return Err(invalid(
                "[audit] auditor_agencies is no longer read: the policy says who reads every audit \
                 proof (`audit = \"all\"` on a [[principal]]; principals of role \"auditor\" do by \
                 default); remove the line"
                    .into(),
            ));
        }
        if c.audit.checkpoint_seconds == 0 {
            return Err(invalid(
                "[audit] checkpoint_seconds must be at least 1".into(),
            ));
        }
        if c.agencies.is_empty() {
            return Err(invalid("at least one [[agency]] is needed".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut domains = std::collections::BTreeSet::new();
        for a in &mut c.agencies {
            a.ca = base.join(&a.ca);
            a.crl = a.crl.as_ref().map(|p| base.join(p));
            if !names.insert(a.name.clone()) {
                return Err(invalid(format!("agency {} is declared twice", a.name)));
            }
            if !domains.insert(a.trust_domain.clone()) {
                return Err(invalid(format!(
                    "trust domain {} is bound to two agencies",
                    a.trust_domain
                )));
            }
        }
        if c.max_body_bytes < 1024 || c.lease_seconds == 0 || c.max_connections == 0 {
            return Err(invalid(
                "max_body_bytes ≥ 1024, lease_seconds ≥ 1 and max_connections ≥ 1 are required"
                    .into(),
            ));
        }
        Ok(c)
    }
}

impl ClientConfig {
    /// Reads `client.toml`, resolving paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c: ClientConfig = read_toml(path)?;
        let base = base_dir(path);
        c.cert = base.join(&c.cert);
        c.key = base.join(&c.key);
        c.ca = base.join(&c.ca);
        c.outbox = base.join(&c.outbox);
        if c.gateway_key
            .parse::<crate::audit::signed_note::VerifierKey>()
            .is_err()
        {
            let file = base.join(&c.gateway_key);
            c.gateway_key = std::fs::read_to_string(&file)
                .map_err(|source| ConfigError::Read {
                    path: file.clone(),
                    source,
                })?
                .trim()
                .to_string();
        }
        for a in &mut c.agencies {
            a.ca = base.join(&a.ca);
            a.crl = a.crl.as_ref().map(|p| base.join(p));
        }
        Ok(c)
    }
}
