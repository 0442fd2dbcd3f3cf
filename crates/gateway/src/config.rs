//! Operator files: the gateway's `gateway.toml`, and what a station's
//! `client.toml` (read by `crate::station_config`) shares with it: the
//! agency CAs, the errors and the reading of a TOML file.
//!
//! Paths inside a config file are relative to the file's own directory, so a
//! directory such as `certs-example/` can be moved as a whole. This module
//! reads and checks the files; it never opens sockets or the store.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use passerelle_identity::config::{
    base_dir, read_toml, AgencyConfig, ConfigError, KeyExchange,
};

fn default_lease() -> u64 {
    60
}

/// TLS files of the gateway itself, and its key exchange policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain of the gateway.
    pub cert: PathBuf,
    /// PEM PKCS#8 private key of the gateway.
    pub key: PathBuf,
    /// Which TLS 1.3 key exchange groups the gateway accepts (`kx`).
    #[serde(default)]
    pub kx: KeyExchange,
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
    #[serde(
        default,
        rename = "auditor_agencies",
        deserialize_with = "removed_auditor_agencies"
    )]
    _removed_auditor_agencies: Option<()>,
}

fn removed_auditor_agencies<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<()>, D::Error> {
    let _ = toml::Value::deserialize(d)?;
    Err(serde::de::Error::custom(
        "[audit] auditor_agencies is no longer read: the policy says who reads every audit \
         proof (`audit = \"all\"` on a [[principal]]; principals of role \"auditor\" do by \
         default); remove the line",
    ))
}

/// One `[[witness]]`: a witness (C2SP `tlog-witness`, e.g. `passerelle
/// witness serve` run by an oversight body) that the gateway asks to
/// cosign each new checkpoint; see `crate::gateway::witnessing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessEndpoint {
    /// Its submission prefix: `https://host:port[/prefix]`, or `http://`
    /// (a witness on loopback; the cosignature is verified either way).
    pub url: String,
    /// Its `cosignature/v1` verifier key, as `passerelle witness keygen`
    /// printed it (`name+keyid+base64`); the name names the witness.
    #[serde(deserialize_with = "cosignature_key")]
    pub key: crate::audit::cosignature::CosignatureVerifier,
    /// PEM file of the CA certificate(s) its TLS certificate chains to:
    /// required with `https://`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

fn cosignature_key<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<crate::audit::cosignature::CosignatureVerifier, D::Error> {
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(serde::de::Error::custom)
}

/// `gateway.toml`. Unknown keys are refused with their file and line; the
/// keys that moved into `[limits]` are still read, only to be refused with
/// a message saying where they went.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The store: the embedded database's file, or a PostgreSQL URL
    /// (`postgres://user@host:port/db`).
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
    /// How long a fetched, unacknowledged item stays hidden before it is offered again.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// How often a waiting long-poll looks at its inbox again (leases
    /// run out with time, not with an event); by default a quarter of the
    /// lease, between 1 and 15 s. See [`GatewayConfig::inbox_recheck`].
    #[serde(default)]
    pub inbox_recheck_seconds: Option<u64>,
    /// Admission control: caps, rates and timeouts (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Witnesses asked to cosign each new checkpoint (`[[witness]]`).
    #[serde(default, rename = "witness")]
    pub witnesses: Vec<WitnessEndpoint>,
    /// The operator's metrics endpoint (`[metrics]`); none when absent.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// The gateway's own log (`[log]`).
    #[serde(default)]
    pub log: LogConfig,
    /// Keys that moved into `[limits]`: never accepted, read only so that
    /// the refusal says where they went (and, like every parse error, on
    /// which line they are).
    #[serde(
        default,
        rename = "max_body_bytes",
        deserialize_with = "moved_to_limits"
    )]
    _max_body_bytes: Option<()>,
    #[serde(
        default,
        rename = "max_connections",
        deserialize_with = "moved_to_limits"
    )]
    _max_connections: Option<()>,
    #[serde(
        default,
        rename = "max_wait_seconds",
        deserialize_with = "moved_to_limits"
    )]
    _max_wait_seconds: Option<()>,
}

/// `[metrics]` of `gateway.toml`: a Prometheus endpoint on a listener of
/// its own, plain HTTP, for the operator's scraper (see `crate::metrics`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to listen, e.g. `127.0.0.1:9464`. Loopback unless
    /// `allow_non_loopback`: the endpoint has no TLS and no client
    /// authentication, so anyone who reaches it reads the series.
    pub listen: SocketAddr,
    /// Lets `listen` be an address other than loopback (behind a firewall
    /// that only the scraper passes).
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Adds the principal as a label to the per-principal series (items
    /// accepted, refusals, rate limiting, deliveries). Off by default: a
    /// scraper then learns nothing of who talks to whom.
    #[serde(default)]
    pub principal_labels: bool,
}

impl MetricsConfig {
    /// Refuses a non-loopback `listen` that was not explicitly allowed.
    pub fn check(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && !self.allow_non_loopback {
            return Err(format!(
                "[metrics] listen = \"{}\" is not a loopback address: the endpoint has no TLS \
                 and no authentication; bind it to 127.0.0.1 (or ::1), or set \
                 allow_non_loopback = true if a firewall lets only the scraper reach it",
                self.listen
            ));
        }
        Ok(())
    }
}

/// How the gateway writes its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for a person at a terminal (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]` of `gateway.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` (default) or `"json"`; `passerelle serve --log-format`
    /// overrides it.
    #[serde(default)]
    pub format: LogFormat,
}

impl GatewayConfig {
    /// How often a waiting long-poll looks at its inbox again:
    /// `inbox_recheck_seconds`, or a quarter of the lease (between 1 and
    /// 15 s), so that a waiting long-poll costs one store query per that
    /// interval, not one per second.
    pub fn inbox_recheck(&self) -> Duration {
        match self.inbox_recheck_seconds {
            Some(s) => Duration::from_secs(s),
            None => (Duration::from_secs(self.lease_seconds) / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(15)),
        }
    }
}

/// Refuses a top-level key that moved into `[limits]` (same name).
fn moved_to_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    let _ = toml::Value::deserialize(d)?;
    Err(serde::de::Error::custom(
        "this key moved into the [limits] table (same name): write it under [limits]",
    ))
}

/// `[limits]` of `gateway.toml`: what one source address or one principal
/// may hold, how fast, and for how long. Every refusal here is cheap: it
/// happens before the work it protects (a TLS handshake, a body read, a
/// store query).
///
/// Behind NAT, many stations share one source address: the per-address
/// values (`handshakes_pending_per_address`, `handshakes_per_address_per_second`,
/// `handshake_burst_per_address`) then cover all of them together, and must
/// be raised to what that address's stations need at once. The global
/// `handshakes_pending` still bounds what all addresses together hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes; a larger declared
    /// `Content-Length` is refused before any of it is read.
    pub max_body_bytes: usize,
    /// Longest long-poll a station may ask for, in seconds.
    pub max_wait_seconds: u64,
    /// Connections that have not finished the TLS handshake, all addresses together.
    pub handshakes_pending: usize,
    /// Connections that have not finished the TLS handshake, per source
    /// address (an IPv6 address counts by its /64).
    pub handshakes_pending_per_address: usize,
    /// New connections per second per source address (sustained rate).
    pub handshakes_per_address_per_second: u32,
    /// New connections a source address may open at once before the rate applies.
    pub handshake_burst_per_address: u32,
    /// Seconds from the TCP accept to the end of the TLS handshake.
    pub handshake_timeout_seconds: u64,
    /// Authenticated connections, all principals together (long-polls not counted).
    pub max_connections: usize,
    /// Authenticated connections per principal (long-polls not counted).
    pub connections_per_principal: usize,
    /// Long-polls waiting at once, all principals together.
    pub long_polls: usize,
    /// Long-polls waiting at once per principal.
    pub long_polls_per_principal: usize,
    /// Requests per second per principal (sustained rate); over it, `429`.
    pub requests_per_principal_per_second: u32,
    /// Requests a principal may make at once before the rate applies.
    pub request_burst_per_principal: u32,
    /// Seconds to send a request's headers, from its first byte.
    pub header_timeout_seconds: u64,
    /// Seconds a connection may stay open with no request in progress.
    pub idle_timeout_seconds: u64,
    /// Seconds a body may take before the minimum rate applies.
    pub body_grace_seconds: u64,
    /// Minimum body rate after the grace, in bytes per second.
    pub body_min_bytes_per_second: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4 * 1024 * 1024,
            max_wait_seconds: 60,
            handshakes_pending: 256,
            handshakes_pending_per_address: 16,
            handshakes_per_address_per_second: 20,
            handshake_burst_per_address: 64,
            handshake_timeout_seconds: 5,
            max_connections: 512,
            connections_per_principal: 16,
            long_polls: 4096,
            long_polls_per_principal: 4,
            requests_per_principal_per_second: 20,
            request_burst_per_principal: 100,
            header_timeout_seconds: 10,
            idle_timeout_seconds: 20,
            body_grace_seconds: 10,
            body_min_bytes_per_second: 1024,
        }
    }
}

impl LimitsConfig {
    /// What is out of bounds, if anything.
    pub fn check(&self) -> Result<(), String> {
        let at_least_one = [
            ("max_wait_seconds", self.max_wait_seconds as u128),
            ("handshakes_pending", self.handshakes_pending as u128),
            (
                "handshakes_pending_per_address",
                self.handshakes_pending_per_address as u128,
            ),
            (
                "handshakes_per_address_per_second",
                self.handshakes_per_address_per_second.into(),
            ),
            (
                "handshake_burst_per_address",
                self.handshake_burst_per_address.into(),
            ),
            (
                "handshake_timeout_seconds",
                self.handshake_timeout_seconds.into(),
            ),
            ("max_connections", self.max_connections as u128),
            (
                "connections_per_principal",
                self.connections_per_principal as u128,
            ),
            ("long_polls", self.long_polls as u128),
            (
                "long_polls_per_principal",
                self.long_polls_per_principal as u128,
            ),
            (
                "requests_per_principal_per_second",
                self.requests_per_principal_per_second.into(),
            ),
            (
                "request_burst_per_principal",
                self.request_burst_per_principal.into(),
            ),
            ("header_timeout_seconds", self.header_timeout_seconds.into()),
            ("idle_timeout_seconds", self.idle_timeout_seconds.into()),
            (
                "body_min_bytes_per_second",
                self.body_min_bytes_per_second.into(),
            ),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(format!("[limits] {name} must be at least 1"));
        }
        if self.max_body_bytes < 1024 {
            return Err("[limits] max_body_bytes must be at least 1024".into());
        }
        Ok(())
    }
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
        // A database server's URL is not a path.
        if !crate::store::StoreConfig::names_a_server(&c.store) {
            c.store = base.join(&c.store);
        }
        c.tls.cert = base.join(&c.tls.cert);
        c.tls.key = base.join(&c.tls.key);
        c.audit.key = base.join(&c.audit.key);
        c.audit.vkey = c.audit.vkey.as_ref().map(|p| base.join(p));
        c.policy = base.join(&c.policy);
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
        let mut labels = std::collections::BTreeSet::new();
        for w in &mut c.witnesses {
            w.ca = w.ca.as_ref().map(|p| base.join(p));
            let https = w.url.starts_with("https://");
            if !https && !w.url.starts_with("http://") {
                return Err(invalid(format!(
                    "[[witness]] {}: url must start with https:// (or http://)",
                    w.url
                )));
            }
            if https != w.ca.is_some() {
                return Err(invalid(format!(
                    "[[witness]] {}: ca (the PEM of the CA its certificate chains to) is needed with https:// and only then",
                    w.url
                )));
            }
            if !labels.insert(w.key.label()) {
                return Err(invalid(format!(
                    "[[witness]] {} is listed twice",
                    w.key.label()
                )));
            }
        }
        if c.lease_seconds == 0 {
            return Err(invalid("lease_seconds must be at least 1".into()));
        }
        if c.inbox_recheck_seconds == Some(0) {
            return Err(invalid("inbox_recheck_seconds must be at least 1".into()));
        }
        c.limits.check().map_err(invalid)?;
        if let Some(m) = &c.metrics {
            m.check().map_err(invalid)?;
        }
        Ok(c)
    }
}
