//! A station's `client.toml`: how the station reaches the gateway, the
//! files of its identity, the gateway's verifier key, where its outbox
//! is, and the witnesses whose cosignatures make a receipt final for it.
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
    /// Witnesses whose cosignatures make a receipt final for this station
    /// (see [`crate::client::finality`]); none by default.
    #[serde(default)]
    pub witnesses: Option<WitnessQuorum>,
    /// The station agent (`passerelle station run`): its vault, control
    /// socket, key idle time, retention and pauses.
    #[serde(default)]
    pub agent: AgentSettings,
}

/// `[witnesses]`: the witnesses a station trusts to have seen the log grow
/// without going back, and how many of them must have cosigned a
/// checkpoint before the station takes it as final.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessQuorum {
    /// Each witness's verifier key (`name+keyid+base64`, as `passerelle
    /// witness keygen` printed it), or the path of a file holding it.
    /// After loading, always the keys themselves.
    pub keys: Vec<String>,
    /// How many must have cosigned (default: all of them).
    #[serde(default)]
    pub quorum: Option<usize>,
    /// Where the station keeps the largest final checkpoint it saw, to
    /// notice a gateway whose log later goes back or forks (default
    /// `final-checkpoint`, beside `client.toml`).
    #[serde(default = "default_final_state")]
    pub state: PathBuf,
}

fn default_final_state() -> PathBuf {
    PathBuf::from("final-checkpoint")
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
        c.gateway_key =
            key_or_file::<crate::audit::signed_note::VerifierKey>(&base, &c.gateway_key)?;
        if let Some(w) = &mut c.witnesses {
            w.state = base.join(&w.state);
            for key in &mut w.keys {
                *key = key_or_file::<crate::audit::cosignature::CosignatureVerifier>(&base, key)?;
            }
            // Checked now, so that a station with a wrong quorum does not
            // start and then call nothing final.
            crate::client::finality::Quorum::from_config(w).map_err(|message| {
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message,
                }
            })?;
        }
        for a in &mut c.agencies {
            a.ca = base.join(&a.ca);
            a.crl = a.crl.as_ref().map(|p| base.join(p));
        }
        Ok(c)
    }
}

/// A key written in the file as itself, or the path (relative to the
/// file's directory) of a file holding it: the key's text either way.
fn key_or_file<K: std::str::FromStr>(base: &Path, text: &str) -> Result<String, ConfigError> {
    if text.trim().parse::<K>().is_ok() {
        return Ok(text.trim().to_string());
    }
    let file = base.join(text);
    Ok(std::fs::read_to_string(&file)
        .map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?
        .trim()
        .to_string())
}
