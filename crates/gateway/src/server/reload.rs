//! Reloading the configuration of a running gateway: the files read again
//! and checked whole ([`snapshot::check`]), put in force for what starts
//! from now on, or refused with the snapshot in force kept; either way an
//! audit entry naming the files by digest and what changed, and a count in
//! the metrics. Signals and the `passerelle reload` command are the
//! CLI's; this module never reads anything but the files the config names.

use super::{Running, StartError};
use crate::snapshot;

/// What an accepted reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Hex digest of the policy now in force.
    pub policy_digest: String,
    /// What changed: `policy` and the roles of the certificate, CA and CRL
    /// files whose digest changed (`tls-cert`, `ca:<agency>`,
    /// `crl:<agency>`), sorted; empty when nothing did.
    pub changed: Vec<String>,
}

impl Running {
    /// Reads the files of the configuration again (the policy directory,
    /// the agencies' CAs and CRLs, the gateway's certificate and key) and,
    /// if [`snapshot::check`] accepts them all, puts them in force as one
    /// snapshot for every connection and request that starts from now on.
    /// Anything invalid refuses the whole snapshot and the snapshot in
    /// force stays. Either way the reload is on the audit log, naming the
    /// files by digest and what changed, and counted in the metrics.
    pub async fn reload(&self) -> Result<Reloaded, StartError> {
        let before = self.live.current();
        match snapshot::check(&self.config) {
            Ok(next) => {
                let policy_digest = next.policy_digest();
                let changed = before.changes(next.files(), Some(&policy_digest));
                let next = self.live.replace(next);
                self.gateway.metrics().reloaded(true);
                self.gateway
                    .record_policy_loaded(next.decider(), next.files().to_vec(), changed.clone())
                    .await?;
                tracing::info!(policy = %policy_digest, changed = ?changed, "configuration reloaded");
                Ok(Reloaded {
                    policy_digest,
                    changed,
                })
            }
            Err(e) => {
                let e = StartError::from(e);
                self.gateway.metrics().reloaded(false);
                let files = snapshot::file_digests(&self.config);
                let changed = before.changes(&files, None);
                tracing::error!(error = %e, "reload refused; the configuration in force stays");
                self.gateway
                    .record_refused_policy(e.to_string(), files, changed)
                    .await;
                Err(e)
            }
        }
    }

    /// [`Running::reload`], returning the digest of the policy now in force.
    pub async fn reload_policy(&self) -> Result<String, StartError> {
        self.reload().await.map(|r| r.policy_digest)
    }
}
