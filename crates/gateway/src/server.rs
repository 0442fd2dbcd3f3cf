//! The accept loop: TCP, TLS handshake, identity, HTTP, shutdown.
//!
//! Shaped like mini-redis's server, with admission asked at each step
//! ([`crate::limits`]): a new TCP connection gets a handshake slot for its
//! source address or is closed at once, before any TLS work; an
//! authenticated connection gets a slot for its principal or is answered
//! `429`; each request passes its principal's rate. A connection is closed
//! when it stays idle too long or takes too long to send a request's
//! headers, each with its own timeout. A `watch` channel signals shutdown,
//! and each connection then finishes the request in progress (a submit is
//! answered only after its commit, so draining never loses an accepted
//! item); an `mpsc` channel whose senders the connections hold tells when
//! they are all gone. A refused connection is logged with the peer address
//! and never stops the loop, and the loop itself never waits for a slot.
//! The key exchange group each handshake agreed on is logged and handed to
//! the connection's requests ([`KeyExchangeGroup`]).
//!
//! The configuration in force is one [`Snapshot`](snapshot::Snapshot) held
//! in a [`Live`] cell:
//! each connection's handshake and identity use the snapshot in force when
//! it was accepted, each request carries the one in force when it started,
//! and [`Running::reload_policy`] checks a new one whole before swapping it
//! in. This module never looks inside requests; each request's log event
//! and end-of-request metrics are [`observe`]'s, the metrics endpoint
//! [`crate::metrics`]'.
//!
//! Over 600 lines: starting (store, log, TLS, listeners, witnesses, the
//! housekeeping task) and the accept loop with its per-connection
//! re-identification are one sequence read top to bottom; what could stand
//! apart already does (`server/observe.rs`, `server/reload.rs`, `metrics`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::api::{self, problem::Problem, ApiState};
use crate::config::GatewayConfig;
use crate::gateway::{Gateway, Settings};
use crate::integrity::{self, HeadFile};
use crate::keys::GatewayKey;
use crate::limits::{Activity, Admission, Session, Tracked, Verdict};
use crate::metrics::Metrics;
use crate::snapshot::{self, Live, Snapshot, SnapshotError};
use crate::store::{self, StoreConfig};
use crate::tls::{self, KeyExchangeGroup, VerifiedPeer};

mod observe;
mod reload;

pub use reload::Reloaded;

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
    /// A limit is out of bounds.
    #[error("{0}")]
    Limits(String),
    /// A `[[witness]]` is unusable (its URL or CA file).
    #[error("{0}")]
    Witness(String),
    /// The metrics endpoint (`[metrics]`) is refused or cannot listen.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<SnapshotError> for StartError {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Policy(reason) => StartError::Policy(reason),
            SnapshotError::Tls(e) => StartError::Tls(e),
            SnapshotError::Limits(reason) => StartError::Limits(reason),
        }
    }
}

/// A gateway that is running.
pub struct Running {
    /// The address it listens on (useful when the config asked for port 0).
    pub addr: SocketAddr,
    /// The exchange.
    pub gateway: Arc<Gateway>,
    /// Admission control, e.g. to read how many slots are taken.
    pub admission: Arc<Admission>,
    /// The configuration snapshot in force.
    pub live: Arc<Live>,
    /// The address of the metrics endpoint, when `[metrics]` asks for one.
    pub metrics_addr: Option<SocketAddr>,
    config: GatewayConfig,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in progress finish, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
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
    // Refused before anything is opened, like any other config mistake.
    if let Some(m) = &config.metrics {
        m.check()
            .map_err(crate::metrics::MetricsError::NotLoopback)?;
    }
    let live = Arc::new(Live::new(snapshot::check(config)?));
    let first = live.current();
    // A new key only for a new log: no head file (the key never signed a
    // head) and nothing in the store.
    let head = HeadFile::beside(&config.audit.key);
    let store_config = StoreConfig::from_setting(&config.store);
    let log_is_new = head.read()?.is_none() && !store::holds_a_log(&store_config)?;
    let key = Arc::new(GatewayKey::load_or_create(
        &config.audit.key,
        &config.audit.origin,
        config.audit.vkey.as_deref(),
        log_is_new,
    )?);
    let checked = integrity::open_store(
        &store_config,
        key.clone(),
        head,
        options.new_log,
        crate::gateway::unix_now(),
    )?;
    let log = checked.log;
    let witnesses =
        crate::gateway::witnessing::clients(&config.witnesses).map_err(StartError::Witness)?;
    // The head file only knows what this instance published; the
    // witnesses know what every instance did (see behind_witnesses).
    if !options.new_log {
        let behind = crate::gateway::witnessing::behind_witnesses(&witnesses, &log, &key).await?;
        if !behind.is_empty() {
            for t in &behind {
                tracing::error!(found = %t, "the store is behind what a witness cosigned");
            }
            return Err(integrity::IntegrityError::Tampered(behind).into());
        }
    }
    let settings = Settings {
        lease: Duration::from_secs(config.lease_seconds),
        max_wait: Duration::from_secs(config.limits.max_wait_seconds),
        recheck: config.inbox_recheck(),
    };
    let metrics = Arc::new(Metrics::new(
        config.metrics.as_ref().is_some_and(|m| m.principal_labels),
    ));
    let gateway = Arc::new(
        Gateway::new(log, settings, key)
            .with_integrity(checked.head, checked.lost)
            .with_metrics(metrics),
    );
    gateway.watch_arrivals()?;
    crate::gateway::witnessing::start(&gateway, witnesses);
    gateway.record_start(first.decider()).await?;
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
    // Admission keeps counters and rates per address and principal: it is
    // built once, from the limits of the first snapshot (a reload reads
    // the same gateway.toml, so the limits stay).
    let admission = Admission::new(first.limits());
    let metrics_addr = match &config.metrics {
        Some(m) => {
            let (addr, serve) = crate::metrics::bind(
                m,
                gateway.clone(),
                admission.clone(),
                live.clone(),
                shutdown_rx.clone(),
            )
            .await?;
            tokio::spawn(serve);
            tracing::info!(%addr, "metrics endpoint listening");
            Some(addr)
        }
        None => None,
    };
    let state = ApiState {
        gateway: gateway.clone(),
        shutdown: shutdown_rx.clone(),
    };
    let accept = AcceptLoop {
        gateway: gateway.clone(),
        checkpoint_every: Duration::from_secs(config.audit.checkpoint_seconds),
        listener,
        live: live.clone(),
        router: api::router(state),
        admission: admission.clone(),
    };
    let task = tokio::spawn(accept.run(shutdown_rx));
    tracing::info!(%addr, "gateway listening");
    Ok(Running {
        config: config.clone(),
        addr,
        gateway,
        admission,
        live,
        metrics_addr,
        shutdown,
        task,
    })
}

struct AcceptLoop {
    gateway: Arc<Gateway>,
    checkpoint_every: Duration,
    listener: TcpListener,
    live: Arc<Live>,
    router: axum::Router,
    admission: Arc<Admission>,
}

/// What one connection shares with the loop.
#[derive(Clone)]
struct Shared {
    gateway: Arc<Gateway>,
    live: Arc<Live>,
    router: axum::Router,
    admission: Arc<Admission>,
    shutdown: watch::Receiver<bool>,
    // Never sent on: held by every connection task, so that when all are
    // dropped, draining is over.
    _drained: mpsc::Sender<()>,
}

impl AcceptLoop {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let housekeeping = tokio::spawn(housekeeping(
            self.gateway.clone(),
            self.admission.clone(),
            self.checkpoint_every,
            shutdown.clone(),
        ));
        let (drained, mut all_drained) = mpsc::channel::<()>(1);
        let shared = Shared {
            gateway: self.gateway.clone(),
            live: self.live.clone(),
            router: self.router.clone(),
            admission: self.admission.clone(),
            shutdown: shutdown.clone(),
            _drained: drained,
        };
        loop {
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
            // Refusing costs a counter check and a close: no task, no TLS.
            let slot = match self.admission.handshake(peer_addr.ip()) {
                Ok(slot) => slot,
                Err(refusal) => {
                    drop(tcp);
                    refused(&self.gateway, peer_addr, refusal.cause());
                    continue;
                }
            };
            tokio::spawn(connection(shared.clone(), tcp, peer_addr, slot));
        }
        drop(shared);
        if tokio::time::timeout(DRAIN_TIMEOUT, all_drained.recv())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within the drain timeout");
        }
        let _ = housekeeping.await;
        match self.gateway.record_stop().await {
            Ok(_) => {
                self.gateway.settle_witnesses().await;
                tracing::info!("gateway stopped; final checkpoint signed")
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the stop and its final checkpoint")
            }
        }
    }
}

/// Records a refused connection: counted at once (no I/O; the counts go
/// to the audit log at the next flush, and at the stop), before the
/// connection is answered or closed. Counted in a task of its own, it
/// could still be waiting when a stop made its last flush, and the
/// refusal would be on no log.
fn refused(gateway: &Arc<Gateway>, peer_addr: SocketAddr, cause: &'static str) {
    tracing::debug!(%peer_addr, cause, "connection refused");
    gateway.metrics().handshake_refused(cause);
    gateway.record_refused_connection(&peer_addr.to_string(), cause);
}

/// One connection: the handshake within its deadline, identity, a slot for
/// the principal, then HTTP until the client leaves, idles or stalls.
async fn connection(
    shared: Shared,
    tcp: TcpStream,
    peer_addr: SocketAddr,
    slot: crate::limits::HandshakeSlot,
) {
    // Small request/response exchanges: without this, Nagle's algorithm
    // and delayed ACKs add tens of milliseconds.
    let _ = tcp.set_nodelay(true);
    let limits = shared.admission.limits().clone();
    let deadline = Duration::from_secs(limits.handshake_timeout_seconds);
    // The handshake and the identity read from it use the same snapshot:
    // the one in force when the connection was accepted.
    let snapshot = shared.live.current();
    let acceptor = TlsAcceptor::from(snapshot.tls());
    let tls = match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // The error text comes from the peer's bytes: it goes to the
            // operator's log only; the audit log gets a fixed cause.
            tracing::warn!(%peer_addr, error = %e, "TLS handshake refused");
            // Under kx = "hybrid-required", a client without the hybrid
            // group: counted apart, so the operator sees who still needs
            // upgrading before it becomes the rule.
            let cause = if tls::is_key_exchange_refusal(&e) {
                "handshake-kx"
            } else {
                "handshake-failed"
            };
            refused(&shared.gateway, peer_addr, cause);
            return;
        }
        Err(_) => {
            tracing::warn!(%peer_addr, "TLS handshake timed out");
            refused(&shared.gateway, peer_addr, "handshake-timeout");
            return;
        }
    };
    drop(slot);
    // Always known once a TLS 1.3 handshake is complete.
    let kx = tls
        .get_ref()
        .1
        .negotiated_key_exchange_group()
        .map(|g| KeyExchangeGroup(g.name()));
    let kx_name = kx.map_or_else(|| "none".to_string(), |g| g.to_string());
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    let identified = snapshot.identities().identify(chain);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout is ours ([`Activity`]): hyper's would also run
    // while the connection idles between requests.
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(None);
    let observed = observe::Observed {
        principal: identified.as_ref().ok().map(|p| p.principal().clone()),
        metrics: shared.gateway.metrics().clone(),
    };
    let service = match identified {
        Ok(peer) => match shared.admission.session(peer.principal()) {
            Ok(session) => {
                tracing::debug!(%peer_addr, principal = %peer.principal(), kx = %kx_name, "authenticated");
                Ok((peer, session))
            }
            Err(refusal) => {
                tracing::info!(%peer_addr, principal = %peer.principal(), kx = %kx_name, cause = refusal.cause(), "connection over the principal's budget");
                shared
                    .gateway
                    .record_refused_admission(peer.principal(), refusal.cause());
                Err(axum::Router::new().fallback(move || async move { refusal.into_response() }))
            }
        },
        Err(e) => {
            tracing::warn!(%peer_addr, kx = %kx_name, error = %e, "identity refused");
            refused(&shared.gateway, peer_addr, "identity-refused");
            Err(api::refusal_router(Problem::from(&e)))
        }
    };
    let activity = Activity::new();
    let service = match service {
        Ok((peer, session)) => shared
            .router
            .clone()
            .layer(axum::middleware::from_fn_with_state(
                PerConnection {
                    not_after: tls::not_after(peer.certificate()),
                    chain: Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect()),
                    identified_under: Arc::new(std::sync::Mutex::new(snapshot.clone())),
                    peer,
                    session,
                    kx,
                    activity: activity.clone(),
                    admission: shared.admission.clone(),
                    gateway: shared.gateway.clone(),
                    live: shared.live.clone(),
                },
                admit_request,
            )),
        Err(refusal) => {
            // One answer, then the connection closes.
            builder.keep_alive(false);
            refusal
        }
    }
    .layer(axum::middleware::from_fn_with_state(
        observed,
        observe::observe,
    ));
    let conn = builder.serve_connection(
        TokioIo::new(Tracked::new(tls, activity.clone())),
        TowerToHyperService::new(service),
    );
    let idle = Duration::from_secs(limits.idle_timeout_seconds);
    let header = Duration::from_secs(limits.header_timeout_seconds);
    let mut shutdown = shared.shutdown.clone();
    let mut closing = false;
    tokio::pin!(conn);
    loop {
        if !closing && *shutdown.borrow() {
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
        let wake = match activity.verdict(idle, header) {
            Verdict::Wait(at) => at,
            Verdict::Idle => {
                if !closing {
                    tracing::debug!(%peer_addr, "idle connection closed");
                    // Between requests, hyper closes at once; if bytes of
                    // a request arrived meanwhile, it finishes it first.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                None
            }
            Verdict::HeaderTimeout => {
                tracing::info!(%peer_addr, "request headers too slow; connection dropped");
                return;
            }
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer_addr, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = activity.changed() => {}
            _ = sleep => {}
            _ = shutdown.changed(), if !closing => {}
        }
    }
}

/// What each request of an authenticated connection carries.
#[derive(Clone)]
struct PerConnection {
    peer: VerifiedPeer,
    // The end of the certificate's validity (Unix seconds): a kept-alive
    // or resumed connection outlives its handshake, so each request checks
    // it again.
    not_after: i64,
    /// The certificates the peer presented, to identify it again when the
    /// configuration changes under an open connection.
    chain: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
    /// The snapshot whose CAs and CRLs last identified the peer: a reload
    /// (a new CRL) is checked at the connection's next request, not at its
    /// next handshake.
    identified_under: Arc<std::sync::Mutex<Arc<Snapshot>>>,
    session: Arc<Session>,
    kx: Option<KeyExchangeGroup>,
    activity: Arc<Activity>,
    admission: Arc<Admission>,
    gateway: Arc<Gateway>,
    live: Arc<Live>,
}

/// Before each request: mark it in progress (it is not idle time), check
/// the principal's rate, and hand the handlers who is calling and the
/// configuration snapshot in force now, which the request keeps to its end.
async fn admit_request(
    State(conn): State<PerConnection>,
    mut request: Request,
    next: Next,
) -> Response {
    let _in_progress = conn.activity.request();
    let current = conn.live.current();
    if let Err(e) = still_trusted(&conn, &current) {
        tracing::info!(principal = %conn.peer.principal(), error = %e, "identity refused on an open connection");
        conn.gateway
            .record_refused_admission(conn.peer.principal(), "identity-refused");
        let mut refusal = Problem::from(&e).into_response();
        // The connection ends with this answer; a new one is checked anew.
        refusal.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return refusal;
    }
    if let Err(refusal) = conn.admission.request(conn.peer.principal()) {
        tracing::debug!(principal = %conn.peer.principal(), "request over the principal's rate");
        conn.gateway
            .record_refused_admission(conn.peer.principal(), refusal.cause());
        return refusal.into_response();
    }
    request.extensions_mut().insert(conn.peer);
    request.extensions_mut().insert(current);
    request.extensions_mut().insert(conn.session);
    if let Some(kx) = conn.kx {
        request.extensions_mut().insert(kx);
    }
    next.run(request).await
}

/// Whether the peer of an open connection is still who its handshake
/// said: its certificate has not expired since, and, when the
/// configuration was reloaded since it was last identified, the snapshot
/// in force now (its CAs and CRLs) still identifies it. The chain is
/// checked again only after a reload, so a request costs a time comparison.
fn still_trusted(conn: &PerConnection, current: &Arc<Snapshot>) -> Result<(), tls::IdentityError> {
    if crate::gateway::unix_now() >= conn.not_after {
        return Err(tls::IdentityError::UntrustedChain);
    }
    let mut identified_under = conn
        .identified_under
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !Arc::ptr_eq(&identified_under, current) {
        current.identities().identify(&conn.chain)?;
        *identified_under = current.clone();
    }
    Ok(())
}

/// Every `every`: expire and purge what is due, then sign a checkpoint if
/// the log grew. Runs beside the accept loop until shutdown.
async fn housekeeping(
    gateway: Arc<Gateway>,
    admission: Arc<Admission>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // The first tick one period after start, not at once: start has just
    // swept and signed, and an immediate tick would split the first
    // interval's counted refusals in two entries.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        admission.forget_quiet();
        match gateway.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "expired or purged"),
            Err(e) => tracing::error!(error = %e, "could not expire or purge"),
        }
        // The interval's counted refusals reach the log at each tick (a
        // crash loses at most one interval's counts).
        if let Err(e) = gateway.flush_refusals().await {
            tracing::error!(error = %e, "could not record the counted refusals");
        }
        if let Err(e) = gateway.checkpoint().await {
            tracing::error!(error = %e, "could not issue a checkpoint");
        }
    }
}
