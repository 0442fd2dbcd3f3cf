//! The accept loop: TCP, TLS handshake, identity, HTTP, shutdown.
//!
//! Shaped like mini-redis's server: a semaphore caps connections, a `watch`
//! channel signals shutdown, and hyper-util's graceful shutdown lets
//! requests in progress finish (a submit is answered only after its commit,
//! so draining never loses an accepted item). A failed handshake or a
//! refused identity is logged with the peer address and never stops the
//! loop. This module never looks inside requests.

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::api::{self, problem::Problem, ApiState};
use crate::config::GatewayConfig;
use crate::domain::decision::Decider;
use crate::gateway::{Gateway, Settings};
use crate::integrity::{self, HeadFile};
use crate::keys::GatewayKey;
use crate::policy::{self, Policy};
use crate::store::sqlite::SqliteStore;
use crate::tls::{self, Identities};

/// How long a client has to finish the TLS handshake: a slow or silent
/// client must not hold a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway could not start. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// TLS material is missing or invalid.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The gateway's signing key is missing, unreadable or too open.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyFileError),
    /// The store disagrees with what the gateway signed (edited, rolled
    /// back or wiped behind its back), or the head file is unusable.
    #[error(transparent)]
    Integrity(#[from] crate::integrity::IntegrityError),
    /// Recording the start on the audit log failed.
    #[error("audit log: {0}")]
    Audit(#[from] crate::gateway::GatewayError),
    /// The policy directory is invalid or disagrees with the CA bindings.
    #[error("policy refused: {0}")]
    Policy(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A gateway that is running.
pub struct Running {
    /// The address it listens on (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// The exchange, e.g. to swap the decider.
    pub gateway: Arc<Gateway>,
    config: GatewayConfig,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Loads the policy directory again and, if it is valid, puts it in
    /// force for every request that starts from now on; returns its digest.
    /// An invalid policy is refused, recorded on the audit log, and the
    /// policy in force stays.
    pub async fn reload_policy(&self) -> Result<String, StartError> {
        match load_policy(&self.config) {
            Ok(policy) => {
                let digest = policy.digest_hex().to_string();
                self.gateway.set_decider(policy).await?;
                tracing::info!(policy = %digest, "policy reloaded");
                Ok(digest)
            }
            Err(e) => {
                tracing::error!(error = %e, "policy reload refused; the previous policy stays in force");
                self.gateway.record_refused_policy(e.to_string()).await;
                Err(e)
            }
        }
    }

    /// Stops accepting, lets requests in progress finish, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Loads and checks the policy directory, and checks that it binds each
/// agency to the same SPIFFE trust domain as the gateway's CA bindings: the
/// two must never disagree about who an agency's certificates can name.
pub fn load_policy(config: &GatewayConfig) -> Result<Arc<Policy>, StartError> {
    let policy = policy::load_dir(&config.policy)
        .map_err(|e| StartError::Policy(format!("{}: {e}", config.policy.display())))?;
    for agency in &config.agencies {
        match policy.agency_binding(&agency.name) {
            Some(b) if b.trust_domain == agency.trust_domain => {}
            Some(b) => {
                return Err(StartError::Policy(format!(
                    "the policy binds agency {} to trust domain {}, the gateway config to {}",
                    agency.name, b.trust_domain, agency.trust_domain
                )))
            }
            None => {
                return Err(StartError::Policy(format!(
                    "agency {} of the gateway config is not declared in the policy",
                    agency.name
                )))
            }
        }
    }
    Ok(Arc::new(policy))
}

/// How to start, beyond the config file.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Start a new audit log over a store that disagrees with what the
    /// gateway signed (`passerelle serve --new-log`); recorded on the log.
    pub new_log: bool,
}

/// Loads the policy, opens the store, loads TLS material, binds, and starts
/// serving.
pub async fn start(config: &GatewayConfig) -> Result<Running, StartError> {
    start_with(config, StartOptions::default()).await
}

/// [`start`], with `options`.
pub async fn start_with(
    config: &GatewayConfig,
    options: StartOptions,
) -> Result<Running, StartError> {
    let decider: Arc<dyn Decider> = load_policy(config)?;
    let identities = Arc::new(Identities::new(&config.agencies)?);
    let tls_config = tls::server_config(identities.clone(), &config.tls.cert, &config.tls.key)?;
    // A new key only for a new log: no head file (the key never signed a
    // head) and nothing in the store.
    let head = HeadFile::beside(&config.audit.key);
    let log_is_new = head.read()?.is_none() && !SqliteStore::holds_a_log(&config.store)?;
    let key = Arc::new(GatewayKey::load_or_create(
        &config.audit.key,
        &config.audit.origin,
        config.audit.vkey.as_deref(),
        log_is_new,
    )?);
    let checked = integrity::open_store(
        &config.store,
        key.clone(),
        head,
        options.new_log,
        crate::gateway::unix_now(),
    )?;
    let store = checked.store;
    let settings = Settings {
        lease: Duration::from_secs(config.lease_seconds),
        max_wait: Duration::from_secs(config.max_wait_seconds),
        auditor_agencies: config.audit.auditor_agencies.clone(),
    };
    let gateway = Arc::new(
        Gateway::new(store, decider, settings, key).with_integrity(checked.head, checked.lost),
    );
    gateway.record_start().await?;
    // A crash may have left entries after the last checkpoint: cover them
    // now, so the next checkpoint an auditor sees extends the earlier ones.
    gateway.checkpoint().await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = ApiState {
        gateway: gateway.clone(),
        max_body_bytes: config.max_body_bytes,
        shutdown: shutdown_rx.clone(),
    };
    let accept = AcceptLoop {
        gateway: gateway.clone(),
        checkpoint_every: Duration::from_secs(config.audit.checkpoint_seconds),
        listener,
        acceptor: TlsAcceptor::from(tls_config),
        identities,
        router: api::router(state),
        limit: Arc::new(Semaphore::new(config.max_connections)),
    };
    let task = tokio::spawn(accept.run(shutdown_rx));
    tracing::info!(%addr, "gateway listening");
    Ok(Running {
        config: config.clone(),
        addr,
        gateway,
        shutdown,
        task,
    })
}

struct AcceptLoop {
    gateway: Arc<Gateway>,
    checkpoint_every: Duration,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    identities: Arc<Identities>,
    router: axum::Router,
    limit: Arc<Semaphore>,
}

impl AcceptLoop {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let housekeeping = tokio::spawn(housekeeping(
            self.gateway.clone(),
            self.checkpoint_every,
            shutdown.clone(),
        ));
        loop {
            let permit = tokio::select! {
                p = self.limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.changed() => break,
            };
            let (tcp, peer_addr) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            // Small request/response exchanges: without this, Nagle's
            // algorithm and delayed ACKs add tens of milliseconds.
            let _ = tcp.set_nodelay(true);
            let gateway = self.gateway.clone();
            let acceptor = self.acceptor.clone();
            let identities = self.identities.clone();
            let router = self.router.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer_addr, error = %e, "TLS handshake refused");
                        gateway
                            .record_refused_connection(
                                peer_addr.to_string(),
                                format!("handshake: {e}"),
                            )
                            .await;
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer_addr, "TLS handshake timed out");
                        gateway
                            .record_refused_connection(
                                peer_addr.to_string(),
                                "handshake timed out".into(),
                            )
                            .await;
                        return;
                    }
                };
                let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
                let service = match identities.identify(chain) {
                    Ok(peer) => {
                        tracing::debug!(%peer_addr, principal = %peer.principal, "authenticated");
                        router.layer(axum::Extension(peer))
                    }
                    Err(e) => {
                        tracing::warn!(%peer_addr, error = %e, "identity refused");
                        gateway
                            .record_refused_connection(
                                peer_addr.to_string(),
                                format!("identity: {e}"),
                            )
                            .await;
                        api::refusal_router(Problem::from(&e))
                    }
                };
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer_addr, error = %e, "connection ended with an error");
                }
            });
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within the drain timeout");
        }
        let _ = housekeeping.await;
        match self.gateway.record_stop().await {
            Ok(_) => tracing::info!("gateway stopped; final checkpoint signed"),
            Err(e) => {
                tracing::error!(error = %e, "could not record the stop and its final checkpoint")
            }
        }
    }
}

/// Every `every`: expire and purge what is due, then sign a checkpoint if
/// the log grew. Runs beside the accept loop until shutdown.
async fn housekeeping(gateway: Arc<Gateway>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        match gateway.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "expired or purged"),
            Err(e) => tracing::error!(error = %e, "could not expire or purge"),
        }
        if let Err(e) = gateway.checkpoint().await {
            tracing::error!(error = %e, "could not issue a checkpoint");
        }
    }
}
