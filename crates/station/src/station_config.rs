//! A station's `client.toml`: how the station reaches the gateway, the
//! files of its identity, the gateway's verifier key and where its outbox
//! is.
//!
//! It sits next to the station client ([`crate::client`]) rather than with
//! the gateway's configuration, which the station never reads; it shares
//! only the agency CA entries, the errors and the TOML reading with
//! [`crate::config`]. Paths inside the file are relative to the file's own
//! directory. This module reads and checks the file; it never opens a
//! socket.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::agent::AgentSettings;
use crate::config::{base_dir, read_toml, AgencyConfig, ConfigError};
use crate::domain::principal::PrincipalId;

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
    /// The station agent (`passerelle station run`): its vault, control
    /// socket, key idle time, retention and pauses.
    #[serde(default)]
    pub agent: AgentSettings,
}

fn default_outbox() -> PathBuf {
    PathBuf::from("outbox")
}

fn default_retries() -> u32 {
    5
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
        c.agent.vault = base.join(&c.agent.vault);
        c.agent.control = base.join(&c.agent.control);
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
