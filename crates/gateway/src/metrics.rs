//! The operator's metrics: counters, gauges and histograms in one
//! Prometheus registry, and the endpoint that serves them (`[metrics]` in
//! gateway.toml).
//!
//! The series are counted at the gateway's edges, by the code that already
//! knows the event (the exchange after a commit, the server at a refused
//! handshake or at the end of a request, the reload), with one call each;
//! gauges that a store or admission control already knows (inbox depth,
//! open connections, log size) are read when the scraper asks. The domain
//! core knows nothing of metrics. The endpoint is plain HTTP on a listener
//! of its own, loopback unless the operator explicitly allows otherwise,
//! and also answers `/healthz` and `/readyz` for probes that cannot
//! present a client certificate.
//!
//! What a series may carry is fixed here: problem slugs, causes, rule ids,
//! priorities, witness names, the policy digest, and principal names only
//! when the operator set `principal_labels`. It must never carry anything
//! from an item: no payload, label, case, item id or reference.
//!
//! A little over 600 lines: the series and the listener that serves them
//! (with its own bounds on connections, since anyone who reaches the port
//! may connect) are read together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::MetricsConfig;
use crate::domain::decision::Decision;
use crate::domain::item::Priority;
use crate::domain::principal::PrincipalId;
use crate::gateway::{unix_now, Gateway};
use crate::limits::Admission;
use crate::snapshot::Live;

/// A series' labels, in the order they are written. A label that is off
/// (the principal, unless allowed) is left out, not written empty.
type Labels = Vec<(&'static str, String)>;

/// The content type of the OpenMetrics text format, which Prometheus
/// scrapes as it does its own text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every series the gateway exports. Cheap to update from any thread:
/// each is an atomic, or a map of atomics keyed by a few fixed labels.
pub struct Metrics {
    registry: Registry,
    principal_labels: bool,
    items_accepted: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    acks: Counter,
    expiries: Counter,
    decision_seconds: Histogram,
    submit_seconds: Histogram,
    handshakes_refused: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    connections: Gauge,
    long_polls: Gauge,
    handshakes_pending: Gauge,
    inbox_depth: Family<Labels, Gauge>,
    inbox_oldest: Family<Labels, Gauge>,
    overdue: Gauge,
    audit_entries: Gauge,
    checkpoint_age: Gauge,
    policy: Family<Labels, Gauge>,
    reloads: Family<Labels, Counter>,
    witness_refusals: Family<Labels, Counter>,
    /// Unix seconds of the latest checkpoint this process signed or found.
    last_checkpoint: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("principal_labels", &self.principal_labels)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(false)
    }
}

/// What the scraper reads from the store and admission control at each
/// scrape, rather than counting as it happens.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    /// Authenticated connections open (long-polls not counted).
    pub connections: usize,
    /// Long-polls waiting.
    pub long_polls: usize,
    /// Connections in their TLS handshake.
    pub handshakes_pending: usize,
    /// Entries on the audit log.
    pub audit_entries: u64,
    /// Per priority: open inbox entries and the age in seconds of the
    /// oldest one's item.
    pub inbox: Vec<(Priority, u64, i64)>,
    /// Requests past due without an answer.
    pub overdue: u64,
    /// The digest of the policy in force.
    pub policy_digest: String,
}

fn counter_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// The wire name of a priority.
fn priority_name(p: Priority) -> String {
    match p {
        Priority::Flash => "FLASH",
        Priority::Urgent => "URGENT",
        Priority::Routine => "ROUTINE",
    }
    .to_string()
}

impl Metrics {
    /// Every series, registered and at zero; with the principal as a label
    /// where `principal_labels` allows it.
    pub fn new(principal_labels: bool) -> Self {
        let mut r = Registry::with_prefix("passerelle");
        let metrics = Metrics {
            principal_labels,
            items_accepted: counter_family(
                &mut r,
                "items_accepted",
                "Items accepted (receipt given), by priority",
            ),
            refusals: counter_family(
                &mut r,
                "refusals",
                "Requests answered with a problem, by problem type (slug)",
            ),
            decisions: counter_family(
                &mut r,
                "decisions",
                "Decisions per recipient, at submission and at delivery, by effect and deciding rule",
            ),
            deliveries: counter_family(&mut r, "deliveries", "Items handed to a recipient"),
            acks: counter(&mut r, "acks", "Deliveries acknowledged by their recipient"),
            expiries: counter(
                &mut r,
                "expiries",
                "Inbox entries expired before their recipient acknowledged them",
            ),
            decision_seconds: {
                let h = Histogram::new(exponential_buckets(0.000_01, 4.0, 10));
                r.register(
                    "decision_seconds",
                    "Time to decide one item for its recipients",
                    h.clone(),
                );
                h
            },
            submit_seconds: {
                let h = Histogram::new(exponential_buckets(0.000_5, 2.5, 12));
                r.register(
                    "submit_seconds",
                    "Time from a submission's headers to its answer (receipt or problem)",
                    h.clone(),
                );
                h
            },
            handshakes_refused: counter_family(
                &mut r,
                "handshakes_refused",
                "Connections refused before a request, by cause",
            ),
            rate_limited: counter_family(
                &mut r,
                "rate_limited",
                "Connections, long-polls and requests refused by admission control, by cause",
            ),
            connections: gauge(&mut r, "connections_open", "Authenticated connections open"),
            long_polls: gauge(&mut r, "long_polls_waiting", "Long-polls waiting"),
            handshakes_pending: gauge(
                &mut r,
                "handshakes_pending",
                "Connections in their TLS handshake",
            ),
            inbox_depth: gauge_family(
                &mut r,
                "inbox_depth",
                "Inbox entries not yet acknowledged (nor expired or refused), by priority",
            ),
            inbox_oldest: gauge_family(
                &mut r,
                "inbox_oldest_unacked_seconds",
                "Age of the oldest unacknowledged inbox entry's item, by priority",
            ),
            overdue: gauge(
                &mut r,
                "requests_overdue",
                "Requests past their answer's due time without an answer",
            ),
            audit_entries: gauge(&mut r, "audit_log_entries", "Entries on the audit log"),
            checkpoint_age: gauge(
                &mut r,
                "audit_checkpoint_age_seconds",
                "Seconds since the latest signed checkpoint",
            ),
            policy: gauge_family(
                &mut r,
                "policy",
                "The policy in force, by digest (value 1)",
            ),
            reloads: counter_family(
                &mut r,
                "reloads",
                "Configuration reloads, by outcome (accepted, refused)",
            ),
            witness_refusals: counter_family(
                &mut r,
                "witness_refusals",
                "Witnesses' refusals to cosign a checkpoint, by witness",
            ),
            last_checkpoint: AtomicI64::new(0),
            registry: r,
        };
        // Both outcomes from the start, so that an alert on refusals has a
        // series to compare with before the first one.
        for accepted in [true, false] {
            let _ = metrics.reloads.get_or_create(&Metrics::outcome(accepted));
        }
        metrics
    }

    fn outcome(accepted: bool) -> Labels {
        let outcome = if accepted { "accepted" } else { "refused" };
        vec![("outcome", outcome.to_string())]
    }

    /// The labels of a series about `principal`: none unless allowed.
    fn about(&self, principal: &PrincipalId, mut labels: Labels) -> Labels {
        if self.principal_labels {
            labels.push(("principal", principal.as_str().to_string()));
        }
        labels
    }

    /// Runs `decide` (a pure decision) and counts its time.
    pub fn time_decisions<T>(&self, decide: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = decide();
        self.decision_seconds
            .observe(started.elapsed().as_secs_f64());
        out
    }

    /// Counts one decision made at `stage` (`submission`, `delivery`).
    pub fn decided(&self, stage: &'static str, d: &Decision) {
        // What the recipient gets: an allow that releases no portion is a
        // denial, as the audit log records it.
        let effect = if d.allowed() { "allow" } else { "deny" };
        let rules = d.rules();
        let rule_names: Vec<&str> = if rules.is_empty() {
            vec!["none"]
        } else {
            rules.iter().map(String::as_str).collect()
        };
        for rule in rule_names {
            self.decisions
                .get_or_create(&vec![
                    ("stage", stage.to_string()),
                    ("effect", effect.to_string()),
                    ("rule", rule.to_string()),
                ])
                .inc();
        }
    }

    /// Counts an item accepted from `sender`, and its decisions.
    pub fn accepted(&self, priority: Priority, sender: &PrincipalId, decisions: &[Decision]) {
        self.items_accepted
            .get_or_create(&self.about(sender, vec![("priority", priority_name(priority))]))
            .inc();
        for d in decisions {
            self.decided("submission", d);
        }
    }

    /// Counts an item handed to `recipient` (its lease durable; the
    /// decision is counted by [`Metrics::decided`]).
    pub fn delivered(&self, recipient: &PrincipalId) {
        self.deliveries
            .get_or_create(&self.about(recipient, vec![]))
            .inc();
    }

    /// Counts an acknowledgement.
    pub fn acknowledged(&self) {
        self.acks.inc();
    }

    /// Counts `n` expiries.
    pub fn expired(&self, n: u64) {
        self.expiries.inc_by(n);
    }

    /// Counts a request answered with problem `slug`, from `principal`
    /// when the connection had one.
    pub fn refused(&self, slug: &str, principal: Option<&PrincipalId>) {
        let labels = vec![("problem", slug.to_string())];
        let labels = match principal {
            Some(p) => self.about(p, labels),
            None => labels,
        };
        self.refusals.get_or_create(&labels).inc();
    }

    /// Counts a connection refused before any request, for `cause` (a
    /// fixed name: `handshake-failed`, `handshake-rate`, ...).
    pub fn handshake_refused(&self, cause: &str) {
        self.handshakes_refused
            .get_or_create(&vec![("cause", cause.to_string())])
            .inc();
    }

    /// Counts what admission control refused `principal` (`cause`: a
    /// [`crate::limits::Refusal`] cause).
    pub fn rate_limited(&self, principal: &PrincipalId, cause: &str) {
        self.rate_limited
            .get_or_create(&self.about(principal, vec![("cause", cause.to_string())]))
            .inc();
    }

    /// Observes the time one submission took.
    pub fn submit_took(&self, took: Duration) {
        self.submit_seconds.observe(took.as_secs_f64());
    }

    /// Counts a reload, `accepted` or not.
    pub fn reloaded(&self, accepted: bool) {
        self.reloads
            .get_or_create(&Metrics::outcome(accepted))
            .inc();
    }

    /// Counts a witness's refusal to cosign.
    pub fn witness_refused(&self, witness: &str) {
        self.witness_refusals
            .get_or_create(&vec![("witness", witness.to_string())])
            .inc();
    }

    /// Notes that a checkpoint covering the log was signed (or found) now.
    pub fn checkpoint_signed(&self) {
        self.last_checkpoint.store(unix_now(), Ordering::Relaxed);
    }

    /// The exposition of every series, after setting the gauges from
    /// `sample`.
    pub fn encode(&self, sample: &Sample) -> String {
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.connections, sample.connections as u64);
        gauge(&self.long_polls, sample.long_polls as u64);
        gauge(&self.handshakes_pending, sample.handshakes_pending as u64);
        gauge(&self.audit_entries, sample.audit_entries);
        gauge(&self.overdue, sample.overdue);
        let last = self.last_checkpoint.load(Ordering::Relaxed);
        if last > 0 {
            self.checkpoint_age
                .set(unix_now().saturating_sub(last).max(0));
        }
        for p in [Priority::Flash, Priority::Urgent, Priority::Routine] {
            let (depth, oldest) = sample
                .inbox
                .iter()
                .find(|(q, _, _)| *q == p)
                .map_or((0, 0), |(_, d, o)| (*d, *o));
            let labels = vec![("priority", priority_name(p))];
            gauge(&self.inbox_depth.get_or_create(&labels), depth);
            self.inbox_oldest.get_or_create(&labels).set(oldest.max(0));
        }
        // One series: the digest in force now.
        self.policy.clear();
        self.policy
            .get_or_create(&vec![("digest", sample.policy_digest.clone())])
            .set(1);
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            // Writing to a String does not fail; an empty answer would
            // show the scraper something is wrong.
            text.clear();
        }
        text
    }
}

/// What the endpoint reads at each scrape.
#[derive(Clone)]
struct Endpoint {
    gateway: Arc<Gateway>,
    admission: Arc<Admission>,
    live: Arc<Live>,
}

impl Endpoint {
    async fn sample(&self) -> Sample {
        let (handshakes_pending, connections, long_polls) = self.admission.counts();
        let mut sample = Sample {
            connections,
            long_polls,
            handshakes_pending,
            policy_digest: self.live.current().policy_digest(),
            ..Sample::default()
        };
        match self.gateway.gauges().await {
            Ok(g) => {
                sample.audit_entries = g.audit_entries;
                sample.inbox = g.inbox;
                sample.overdue = g.overdue;
            }
            // The scrape still answers what it knows; the operator's log
            // says why the rest is missing.
            Err(e) => tracing::warn!(error = %e, "metrics: could not read the store's gauges"),
        }
        sample
    }
}

async fn scrape(State(e): State<Endpoint>) -> Response {
    let sample = e.sample().await;
    let text = e.gateway.metrics().encode(&sample);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness as the API's `/readyz` says it, for a probe without a client
/// certificate: which check failed, never why in detail.
async fn readyz(State(e): State<Endpoint>) -> Response {
    let ready = e.gateway.readiness(e.live.current().decider()).await;
    if ready.is_ready() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    tracing::error!(store = ?ready.store, key = ?ready.key, "not ready");
    let mut failed = Vec::new();
    if ready.store.is_err() {
        failed.push("the store is not writable");
    }
    if ready.key.is_err() {
        failed.push("the signing key is unusable");
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}\n", failed.join("; ")),
    )
        .into_response()
}

/// Most connections the metrics listener holds at once; more are closed at
/// once. A scraper and a few probes need a handful.
const MAX_SCRAPERS: usize = 16;
/// How long a connection may take to send a request's headers, or idle
/// between requests.
const SCRAPE_HEADERS: Duration = Duration::from_secs(5);
/// Longest a metrics connection stays open.
const SCRAPE_LIFETIME: Duration = Duration::from_secs(60);

/// Binds the metrics listener of `config`, refusing a non-loopback address
/// that was not allowed, and returns its address and a future serving it
/// until `shutdown`.
pub async fn bind(
    config: &MetricsConfig,
    gateway: Arc<Gateway>,
    admission: Arc<Admission>,
    live: Arc<Live>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), MetricsError> {
    config.check().map_err(MetricsError::NotLoopback)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| MetricsError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| MetricsError::Bind {
        addr: config.listen,
        source,
    })?;
    let router = axum::Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Endpoint {
            gateway,
            admission,
            live,
        });
    // Not `axum::serve`: it has no header timeout and no bound on
    // connections, and this process's file descriptors are the TLS
    // listener's too.
    let serve = async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
        while !*shutdown.borrow() {
            let tcp = tokio::select! {
                r = listener.accept() => r,
                r = shutdown.changed() => if r.is_err() { break } else { continue },
            };
            let (tcp, permit) = match (tcp, permits.clone().try_acquire_owned()) {
                (Ok((tcp, _)), Ok(permit)) => (tcp, permit),
                // Over the budget: closed at once. Out of descriptors:
                // back off rather than spin.
                (Ok(_), Err(_)) => continue,
                (Err(_), _) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(SCRAPE_HEADERS);
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(SCRAPE_LIFETIME, conn).await;
                drop(permit);
            });
        }
    };
    Ok((addr, serve))
}

/// Why the metrics endpoint could not start. The operator's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// `listen` is not loopback and `allow_non_loopback` is not set.
    #[error("{0}")]
    NotLoopback(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_is_a_label_only_when_allowed() {
        let p = PrincipalId::new("police/lo/rabat").unwrap();
        for allowed in [false, true] {
            let m = Metrics::new(allowed);
            m.rate_limited(&p, "request-rate");
            m.refused("not-found", Some(&p));
            let text = m.encode(&Sample::default());
            assert_eq!(text.contains("police/lo/rabat"), allowed, "{text}");
            assert!(text.contains("passerelle_rate_limited_total{cause=\"request-rate\""));
            assert!(text.ends_with("# EOF\n"));
        }
    }

    #[test]
    fn a_non_loopback_listener_needs_an_explicit_allowance() {
        let mut c = MetricsConfig {
            listen: "0.0.0.0:9464".parse().unwrap(),
            allow_non_loopback: false,
            principal_labels: false,
        };
        assert!(c.check().is_err());
        c.allow_non_loopback = true;
        assert!(c.check().is_ok());
        c.allow_non_loopback = false;
        c.listen = "[::1]:9464".parse().unwrap();
        assert!(c.check().is_ok());
    }
}
