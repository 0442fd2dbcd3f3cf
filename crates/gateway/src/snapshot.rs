//! One validated snapshot of the configuration in force, swapped whole.
//!
//! A [`Snapshot`] holds what the operator's files say and requests read:
//! the policy (the decider), the TLS identities (each agency's trusted CA
//! with its CRLs, and the gateway's own certificate and key, as a rustls
//! server configuration) and the limits. [`check`] is the one way to build
//! one: a start, a reload (SIGHUP) and `passerelle policy reload` (before
//! it signals the gateway) all run it, so what it accepts is what the
//! gateway runs, and a file it refuses refuses the whole snapshot, leaving
//! the one in force untouched. [`Live`] holds the snapshot in force and
//! replaces it in one step: a connection's handshake and the identity read
//! from it use the snapshot in force when the connection was accepted, and
//! each request takes the snapshot in force when it starts and keeps it to
//! the end, so no request ever sees half a reload.
//!
//! This module reads the operator's files (through [`crate::policy`] and
//! [`crate::tls`]); it never opens a socket or the store, and never decides
//! anything about an item.

use std::sync::Arc;

use tokio::sync::watch;

use crate::audit::event::ConfigFile;
use crate::config::{GatewayConfig, LimitsConfig};
use crate::domain::decision::Decider;
use crate::policy::Policy;
use crate::tls::{self, Identities, TlsError};

/// Why a configuration was not accepted. The operator's fault; the
/// snapshot in force, if any, stays.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The policy directory is invalid or disagrees with the CA bindings.
    #[error("policy refused: {0}")]
    Policy(String),
    /// A CA, CRL, certificate or key file is missing or invalid.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A limit is out of bounds.
    #[error("{0}")]
    Limits(String),
}

/// The configuration a connection or a request runs under: built only by
/// [`check`], never changed once built.
pub struct Snapshot {
    decider: Arc<dyn Decider>,
    identities: Arc<Identities>,
    tls: Arc<rustls::ServerConfig>,
    limits: LimitsConfig,
    files: Vec<ConfigFile>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("policy", &self.decider.digest())
            .field("identities", &self.identities)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The policy: who is known, who may send, what each recipient is
    /// released.
    pub fn decider(&self) -> &dyn Decider {
        self.decider.as_ref()
    }

    /// Hex digest of the policy, as recorded on the audit log.
    pub fn policy_digest(&self) -> String {
        self.decider.digest()
    }

    /// The CA→agency bindings with their CRLs, read after the handshake.
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// The TLS server configuration a new connection's handshake uses:
    /// the gateway's certificate and key, and a client verifier over the
    /// same [`Snapshot::identities`].
    pub fn tls(&self) -> Arc<rustls::ServerConfig> {
        self.tls.clone()
    }

    /// The limits: caps, rates and timeouts.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// The certificate, CA and CRL files this snapshot was read from, by
    /// their digests, as a reload's audit entry names them.
    pub fn files(&self) -> &[ConfigFile] {
        &self.files
    }

    /// What `files` (and `policy_digest`, when known) change from this
    /// snapshot: `policy` and the roles whose digest differs, appeared or
    /// went, sorted.
    pub fn changes(&self, files: &[ConfigFile], policy_digest: Option<&str>) -> Vec<String> {
        let before: std::collections::BTreeMap<&str, &str> = self
            .files
            .iter()
            .map(|f| (f.role.as_str(), f.sha256.as_str()))
            .collect();
        let after: std::collections::BTreeMap<&str, &str> = files
            .iter()
            .map(|f| (f.role.as_str(), f.sha256.as_str()))
            .collect();
        let mut changed: std::collections::BTreeSet<String> = before
            .keys()
            .chain(after.keys())
            .filter(|role| before.get(*role) != after.get(*role))
            .map(|role| role.to_string())
            .collect();
        if policy_digest.is_some_and(|d| d != self.policy_digest()) {
            changed.insert("policy".into());
        }
        changed.into_iter().collect()
    }
}

/// The digests of the certificate, CA and CRL files `config` names, as
/// they are on disk now; a file that cannot be read is left out (a reload
/// refuses it anyway). The gateway's private key is not among them: its
/// certificate names it, and a digest of a key file is no business of the
/// audit log.
pub fn file_digests(config: &GatewayConfig) -> Vec<ConfigFile> {
    let mut named = vec![("tls-cert".to_string(), &config.tls.cert)];
    for a in &config.agencies {
        named.push((format!("ca:{}", a.name), &a.ca));
        if let Some(crl) = &a.crl {
            named.push((format!("crl:{}", a.name), crl));
        }
    }
    named
        .into_iter()
        .filter_map(|(role, path)| {
            let bytes = std::fs::read(path).ok()?;
            Some(ConfigFile {
                role,
                sha256: hex::encode(crate::domain::bytes::sha256(&bytes)),
            })
        })
        .collect()
}

/// A digest of everything a reload reads from disk: the policy
/// directory's files, the certificate, CA and CRL files and the gateway's
/// key. Loads and checks nothing: a watcher compares it to notice a change
/// cheaply, and then reloads. A file that cannot be read counts as absent.
pub fn on_disk(config: &GatewayConfig) -> [u8; 32] {
    let mut all = Vec::new();
    let mut add = |name: &str, digest: &[u8]| {
        all.extend_from_slice(name.as_bytes());
        all.push(0);
        all.extend_from_slice(digest);
    };
    if let Ok(files) = crate::policy_files::read_toml_files(&config.policy) {
        for (name, text) in files {
            add(&name, &crate::domain::bytes::sha256(text.as_bytes()));
        }
    }
    for f in file_digests(config) {
        add(&f.role, f.sha256.as_bytes());
    }
    if let Ok(key) = std::fs::read(&config.tls.key) {
        add("tls-key", &crate::domain::bytes::sha256(&key));
    }
    crate::domain::bytes::sha256(&all)
}

/// Reads and checks every file `config` names (the policy directory, each
/// agency's CA and CRLs, the gateway's certificate and key) and the limits,
/// and returns them as one snapshot, or the first thing wrong.
pub fn check(config: &GatewayConfig) -> Result<Snapshot, SnapshotError> {
    config.limits.check().map_err(SnapshotError::Limits)?;
    // Read before the files are loaded: a file replaced in between is
    // named by its older digest, and the next reload names the newer one.
    let files = file_digests(config);
    let decider: Arc<dyn Decider> = load_policy(config)?;
    let identities = Arc::new(Identities::new(&config.agencies)?);
    let tls = tls::server_config(
        identities.clone(),
        &config.tls.cert,
        &config.tls.key,
        config.tls.kx,
    )?;
    Ok(Snapshot {
        decider,
        identities,
        tls,
        limits: config.limits.clone(),
        files,
    })
}

/// Loads and checks the policy directory, and checks that it binds each
/// agency to the same SPIFFE trust domain as the gateway's CA bindings: the
/// two must never disagree about who an agency's certificates can name.
pub fn load_policy(config: &GatewayConfig) -> Result<Arc<Policy>, SnapshotError> {
    let policy = crate::policy_files::load_dir(&config.policy)
        .map_err(|e| SnapshotError::Policy(format!("{}: {e}", config.policy.display())))?;
    for agency in &config.agencies {
        match policy.agency_binding(&agency.name) {
            Some(b) if b.trust_domain == agency.trust_domain => {}
            Some(b) => {
                return Err(SnapshotError::Policy(format!(
                    "the policy binds agency {} to trust domain {}, the gateway config to {}",
                    agency.name, b.trust_domain, agency.trust_domain
                )))
            }
            None => {
                return Err(SnapshotError::Policy(format!(
                    "agency {} of the gateway config is not declared in the policy",
                    agency.name
                )))
            }
        }
    }
    Ok(Arc::new(policy))
}

/// The snapshot in force, replaced whole.
///
/// A `watch` channel rather than a lock: reading is a clone of an `Arc`,
/// a replacement never waits for readers, and a task can wait for the
/// next snapshot ([`Live::subscribe`]), e.g. to re-check the certificates
/// of open connections after a reload.
#[derive(Debug)]
pub struct Live {
    current: watch::Sender<Arc<Snapshot>>,
}

impl Live {
    /// `first` in force.
    pub fn new(first: Snapshot) -> Self {
        Live {
            current: watch::Sender::new(Arc::new(first)),
        }
    }

    /// The snapshot in force now. Whoever holds it keeps it, whatever
    /// replaces it meanwhile.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.borrow().clone()
    }

    /// Puts `next` in force for every connection and request that starts
    /// from now on, and returns it.
    pub fn replace(&self, next: Snapshot) -> Arc<Snapshot> {
        let next = Arc::new(next);
        self.current.send_replace(next.clone());
        next
    }

    /// A receiver that sees each replacement.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.current.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example PKI and policy in a temporary directory, and its config.
    fn example() -> (tempfile::TempDir, GatewayConfig) {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::generate().unwrap();
        crate::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
        let config = GatewayConfig::load(&dir.path().join("gateway.toml")).unwrap();
        (dir, config)
    }

    #[test]
    fn a_holder_keeps_its_snapshot_across_a_replacement() {
        let (_dir, config) = example();
        let live = Live::new(check(&config).unwrap());
        let held = live.current();
        let seen = live.subscribe();
        let next = live.replace(check(&config).unwrap());
        assert!(!Arc::ptr_eq(&held, &next));
        assert!(Arc::ptr_eq(&live.current(), &next));
        assert!(seen.has_changed().unwrap());
        // What was held is still whole and usable.
        assert_eq!(held.policy_digest(), next.policy_digest());
    }

    #[test]
    fn a_snapshot_names_its_files_and_what_a_new_one_changes() {
        let (dir, config) = example();
        let first = check(&config).unwrap();
        let roles: Vec<&str> = first.files().iter().map(|f| f.role.as_str()).collect();
        assert!(
            roles.contains(&"tls-cert") && roles.contains(&"ca:police"),
            "{roles:?}"
        );
        assert!(!roles.iter().any(|r| r.contains("key")));
        assert!(first
            .changes(first.files(), Some(&first.policy_digest()))
            .is_empty());
        // A CA file rewritten with a second certificate after the first.
        let ca = &config.agencies[0].ca;
        let mut pem = std::fs::read(ca).unwrap();
        pem.extend(std::fs::read(dir.path().join("gateway/ca.pem")).unwrap());
        std::fs::write(ca, pem).unwrap();
        let role = format!("ca:{}", config.agencies[0].name);
        assert_eq!(
            first.changes(&file_digests(&config), Some("other")),
            [role, "policy".to_string()]
        );
    }

    #[test]
    fn what_is_on_disk_changes_with_any_file_a_reload_reads() {
        let (dir, config) = example();
        let first = on_disk(&config);
        assert_eq!(on_disk(&config), first);
        let purposes = dir.path().join("policies/purposes.toml");
        let text = std::fs::read_to_string(&purposes).unwrap();
        std::fs::write(&purposes, format!("{text}\n# reviewed\n")).unwrap();
        let second = on_disk(&config);
        assert_ne!(second, first, "a policy file");
        let mut key = std::fs::read(&config.tls.key).unwrap();
        key.push(b'\n');
        std::fs::write(&config.tls.key, key).unwrap();
        assert_ne!(on_disk(&config), second, "the key");
    }

    #[test]
    fn a_file_that_does_not_load_refuses_the_whole_snapshot() {
        let (dir, config) = example();
        // The gateway's certificate with a station's key.
        let mut wrong_key = config.clone();
        wrong_key.tls.key = dir
            .path()
            .join(crate::pki::station_dir("police/lo/rabat"))
            .join("key.pem");
        assert!(matches!(check(&wrong_key), Err(SnapshotError::Tls(_))));
        // A CA file that is not there.
        let mut no_ca = config.clone();
        no_ca.agencies[0].ca = dir.path().join("nowhere.pem");
        assert!(matches!(check(&no_ca), Err(SnapshotError::Tls(_))));
        // A policy directory that is not there.
        let mut no_policy = config.clone();
        no_policy.policy = dir.path().join("nowhere");
        assert!(matches!(check(&no_policy), Err(SnapshotError::Policy(_))));
        // Limits out of bounds.
        let mut no_limits = config;
        no_limits.limits.max_connections = 0;
        assert!(matches!(check(&no_limits), Err(SnapshotError::Limits(_))));
    }
}
