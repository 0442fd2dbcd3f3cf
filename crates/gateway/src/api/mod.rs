//! The HTTP API, versioned under `/v1`.
//!
//! Bodies are CBOR (`application/cbor`); a caller that sends
//! `Accept: application/json` gets JSON, and may submit JSON, so a person
//! with curl can read everything. Every handler receives the
//! [`VerifiedPeer`] of its connection as an extension set by the server
//! after the handshake; no handler can run without one, and every request
//! but `/healthz` is refused (`403 unknown-principal`) unless the policy in
//! force at that moment names the caller. Each request also carries the
//! configuration [`Snapshot`] in force when it started, and every step of
//! it decides with that one: a reload never changes a request under way. Errors are RFC 9457
//! problem details ([`problem`]), whose slug is the refusal's own cause
//! ([`GatewayError::cause`]). This module maps HTTP to [`Gateway`] calls
//! and back; it holds no exchange logic of its own, and never decides what
//! is audited: a body that never became an item is handed to
//! [`Gateway::refuse_body`], which says whether it counts.
//!
//! | method and path | what |
//! | --- | --- |
//! | `POST /v1/items` | submit a signed item (principals the policy lets send); `201` with a receipt, `200` with the original receipt on an identical resubmit |
//! | `GET /v1/inbox?wait=S&limit=N` | the caller's deliverable items, long-polling up to `S` seconds |
//! | `GET /v1/inbox?wait=S&fetch=N` | up to `N` of them leased and handed out as released, each with its attestation (batched fetch) |
//! | `POST /v1/acks` | confirms delivery of several items, one result each (batched acknowledgement) |
//! | `GET /v1/overdue?within=S` | requests without an answer due within `S` seconds (default 0: past due); auditors see all, others the requests they sent or received |
//! | `GET /v1/items/{ref}` | the item as released to the caller; leases it |
//! | `POST /v1/items/{ref}/ack` | confirms delivery |
//! | `GET /v1/receipts/{ref}` | the receipt of one of the caller's own items |
//! | `GET /v1/audit/checkpoint` | the latest signed checkpoint (a C2SP signed note, `text/plain`), issued now if the log grew |
//! | `GET /v1/audit/inclusion?index=I[&size=S]` | inclusion proof of entry `I` against the signed checkpoint of size `S` (default: the latest), with the entry and that checkpoint; principals with `audit = "all"`, or principals the entry concerns |
//! | `GET /v1/audit/consistency?old=A&new=B` | consistency proof between two sizes |
//! | `GET /healthz` | liveness, who the gateway thinks you are, and the TLS key exchange group of your connection (answers any verified certificate) |

pub mod problem;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::item::SignedItem;
use crate::domain::receipt::ItemRef;
use crate::gateway::{AckedRef, BodyRefused, Gateway, GatewayError, Submitted};
use crate::limits::Session;
use crate::snapshot::Snapshot;
use crate::store::AckOutcome;
use crate::tls::{KeyExchangeGroup, VerifiedPeer};
use problem::Problem;

pub use crate::domain::wire::{
    AckBatch, AckResult, AckResults, Acknowledged, Fetched, Inbox, Overdue, CBOR, JSON, MAX_BATCH,
};

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The exchange.
    pub gateway: Arc<Gateway>,
    /// Flips to `true` when the gateway shuts down, ending long polls.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The API's router. The server adds the caller's [`VerifiedPeer`] and the
/// request's [`Snapshot`] as extensions of each request.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/items", post(submit))
        .route("/v1/inbox", get(inbox))
        .route("/v1/overdue", get(overdue))
        .route("/v1/items/{item_ref}", get(fetch))
        .route("/v1/items/{item_ref}/ack", post(ack))
        .route("/v1/acks", post(ack_batch))
        .route("/v1/receipts/{item_ref}", get(receipt))
        .route("/v1/audit/checkpoint", get(checkpoint))
        .route("/v1/audit/inclusion", get(inclusion))
        .route("/v1/audit/consistency", get(consistency))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every route above, and the fallback, answers only principals of
        // the policy in force at the time of the request.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principals_only,
        ))
        // Added after the layer, so it answers any verified certificate:
        // it tells the caller who the gateway thinks it is.
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Refuses, with `403 unknown-principal`, a request whose caller the policy
/// in force does not name, before its body is read.
async fn principals_only(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match state.gateway.authorise(&peer, snapshot.decider()).await {
        Ok(()) => next.run(request).await,
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this path does not take this method; see the API table in the README",
    )
}

/// The query of a request, or a problem document: axum's own rejection is
/// plain text that quotes the input, and every refusal is a problem.
fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "The query is not valid",
            "query parameters are decimal integers; see docs/formats.md for which each path takes",
        )
    })
}

/// A router that refuses every request of a connection whose certificate
/// verified but whose identity was not accepted.
pub fn refusal_router(problem: Problem) -> Router {
    Router::new().fallback(move || {
        let p = problem.clone();
        async move { p }
    })
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-resource",
        "No such resource",
        "see the API table in the README",
    )
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(JSON) || v.contains("+json"))
}

/// Encodes `value` as the caller asked: JSON or CBOR.
fn reply<T: Serialize>(headers: &HeaderMap, status: StatusCode, value: &T) -> Response {
    if wants_json(headers) {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => (status, [(header::CONTENT_TYPE, JSON)], body).into_response(),
            Err(e) => Problem::from(GatewayError::Internal(e.to_string())).into_response(),
        }
    } else {
        let body = crate::domain::bytes::to_cbor(value);
        (status, [(header::CONTENT_TYPE, CBOR)], body).into_response()
    }
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyType {
    Cbor,
    Json,
}

/// The body type a `Content-Type` names: `application/cbor` (also when
/// absent) or `application/json`, exactly, in any letter case, parameters
/// allowed. Anything else, `application/cbor-seq` included, is refused
/// without repeating the header.
fn body_type(headers: &HeaderMap) -> Result<BodyType, BodyRefused> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyType::Cbor);
    };
    if value.len() > crate::domain::bounds::HEADER_VALUE {
        return Err(BodyRefused::MediaType);
    }
    let media: mime::Mime = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(BodyRefused::MediaType)?;
    if media.type_() != mime::APPLICATION || media.suffix().is_some() {
        return Err(BodyRefused::MediaType);
    }
    if media.subtype() == "cbor" {
        Ok(BodyType::Cbor)
    } else if media.subtype() == mime::JSON {
        Ok(BodyType::Json)
    } else {
        Err(BodyRefused::MediaType)
    }
}

/// Reads a bounded body and decodes it by its content type. Decode errors
/// name the field and what was expected, never the input.
async fn read_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    pace: crate::limits::BodyPace,
) -> Result<T, BodyRefused> {
    let body_type = body_type(headers)?;
    let bytes = crate::limits::collect_body(body, pace).await?;
    let decoded = match body_type {
        BodyType::Json => crate::domain::decode::json(&bytes),
        BodyType::Cbor => crate::domain::decode::cbor(&bytes),
    };
    Ok(decoded?)
}

/// The item reference of a path, or the answer to a reference that does not
/// exist: a malformed one (or one that does not even decode) is answered
/// exactly as a well-formed one that is not the caller's, and never echoed.
fn item_ref_of(path: Result<Path<String>, PathRejection>) -> Result<ItemRef, Problem> {
    path.ok()
        .and_then(|Path(r)| ItemRef::parse(&r))
        .ok_or_else(|| Problem::from(GatewayError::NotFound))
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    principal: &'a str,
    agency: &'a str,
    key_exchange: String,
    post_quantum: bool,
}

async fn healthz(
    Extension(peer): Extension<VerifiedPeer>,
    kx: Option<Extension<KeyExchangeGroup>>,
    headers: HeaderMap,
) -> Response {
    let health = Health {
        status: "ok",
        principal: peer.principal().as_str(),
        agency: peer.agency().as_str(),
        key_exchange: kx.map_or_else(|| "none".to_string(), |Extension(g)| g.to_string()),
        post_quantum: kx.is_some_and(|Extension(g)| g.is_post_quantum()),
    };
    reply(&headers, StatusCode::OK, &health)
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    policy_digest: String,
}

/// Readiness, distinct from liveness: `200` when the store takes a write,
/// a policy is in force and the signing key works; otherwise `503
/// not-ready` naming what failed (the operator's problem, never an item's).
async fn readyz(
    State(state): State<ApiState>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    headers: HeaderMap,
) -> Response {
    let ready = state.gateway.readiness(snapshot.decider()).await;
    if ready.is_ready() {
        return reply(
            &headers,
            StatusCode::OK,
            &Ready {
                status: "ready",
                policy_digest: ready.policy_digest,
            },
        );
    }
    // The causes go to the operator's log; the caller learns only which
    // check failed, never a store error.
    tracing::error!(store = ?ready.store, key = ?ready.key, "not ready");
    let failed: Vec<&str> = [
        ready.store.is_err().then_some("the store is not writable"),
        ready.key.is_err().then_some("the signing key is unusable"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "The gateway is not ready",
        failed.join("; "),
    )
    .into_response()
}

async fn submit(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let policy = snapshot.decider();
    // Who may send is settled before the body is read.
    state.gateway.may_send(&peer, policy).await?;
    let pace = crate::limits::BodyPace::from_limits(snapshot.limits());
    let item = match read_body::<SignedItem>(&headers, body, pace).await {
        Ok(item) => item,
        // Whether the refusal is counted is the gateway's to say.
        Err(why) => return Err(state.gateway.refuse_body(&peer, why).await.into()),
    };
    let (status, r) = match state.gateway.submit(&peer, policy, item).await? {
        Submitted::Accepted(r) => (StatusCode::CREATED, r),
        Submitted::AlreadyAccepted(r) => (StatusCode::OK, r),
    };
    let mut response = reply(&headers, status, &r);
    // For the server's request log: the item this request concerned.
    if let Some(reference) = ItemRef::parse(&r.receipt.item_ref) {
        response.extensions_mut().insert(reference);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(default)]
    wait: u64,
    #[serde(default)]
    limit: Option<u32>,
    /// A batched fetch of at most this many items.
    #[serde(default)]
    fetch: Option<u32>,
}

/// A batch asked for more than [`MAX_BATCH`] items, or none.
fn batch_refused(asked: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-batch",
        "The batch size is out of bounds",
        format!("{asked} is between 1 and {MAX_BATCH}; ask again with fewer"),
    )
}

async fn inbox(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(session): Extension<Arc<Session>>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    q: Result<Query<InboxQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let q = query_of(q)?;
    // Refused before any wait or store work.
    if q.fetch.is_some_and(|n| n == 0 || n > MAX_BATCH) {
        return Err(batch_refused("fetch"));
    }
    // A long-poll waits in its own budget, not in the connections'.
    let _waiting = if q.wait > 0 {
        match session.long_poll() {
            Ok(slot) => Some(slot),
            Err(refusal) => {
                state
                    .gateway
                    .record_refused_admission(peer.principal(), refusal.cause());
                return Ok(refusal.into_response());
            }
        }
    } else {
        None
    };
    let mut shutdown = state.shutdown.clone();
    if let Some(n) = q.fetch {
        let batch = state
            .gateway
            .fetch_batch(
                &peer,
                snapshot.decider(),
                Duration::from_secs(q.wait),
                n,
                &mut shutdown,
            )
            .await?;
        let fetched = Fetched {
            items: batch.items,
            refused: batch.refused,
        };
        return Ok(reply(&headers, StatusCode::OK, &fetched));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = state
        .gateway
        .inbox(&peer, Duration::from_secs(q.wait), limit, &mut shutdown)
        .await?;
    Ok(reply(&headers, StatusCode::OK, &Inbox { items }))
}

#[derive(Deserialize)]
struct OverdueQuery {
    #[serde(default)]
    within: u64,
}

async fn overdue(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    q: Result<Query<OverdueQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let q = query_of(q)?;
    let (now, requests) = state
        .gateway
        .overdue(&peer, snapshot.decider(), Duration::from_secs(q.within))
        .await?;
    Ok(reply(&headers, StatusCode::OK, &Overdue { now, requests }))
}

async fn fetch(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    item_ref: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let item_ref = item_ref_of(item_ref)?;
    let item = state
        .gateway
        .fetch(&peer, snapshot.decider(), item_ref.as_str())
        .await?;
    Ok(reply(&headers, StatusCode::OK, &item))
}

async fn ack(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    item_ref: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let item_ref = item_ref_of(item_ref)?;
    let status = match state.gateway.ack(&peer, item_ref.as_str()).await? {
        AckOutcome::AlreadyAcked => "already-acked",
        _ => "acked",
    };
    Ok(reply(
        &headers,
        StatusCode::OK,
        &Acknowledged {
            item_ref: item_ref.as_str().to_string(),
            status: status.into(),
        },
    ))
}

/// `POST /v1/acks`: one result per reference, in the order sent; a
/// reference that is not the caller's gets, as its result, the problem the
/// single acknowledgement answers.
async fn ack_batch(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let pace = crate::limits::BodyPace::from_limits(snapshot.limits());
    let asked: AckBatch = read_body(&headers, body, pace)
        .await
        .map_err(|why| Problem::from(GatewayError::Body(why)))?;
    if asked.refs.is_empty() || asked.refs.len() > MAX_BATCH as usize {
        return Err(batch_refused("the number of references"));
    }
    let outcomes = state.gateway.ack_batch(&peer, &asked.refs).await?;
    let results = asked
        .refs
        .into_iter()
        .zip(outcomes)
        .map(|(r, outcome)| {
            let item_ref = ItemRef::parse(&r).map(|_| r);
            match outcome {
                AckedRef::Done(AckOutcome::AlreadyAcked) => AckResult {
                    item_ref,
                    status: "already-acked".into(),
                    problem: None,
                },
                AckedRef::Done(_) => AckResult {
                    item_ref,
                    status: "acked".into(),
                    problem: None,
                },
                AckedRef::Refused(e) => AckResult {
                    item_ref,
                    status: "refused".into(),
                    problem: Some(Problem::from(e).into()),
                },
            }
        })
        .collect();
    Ok(reply(&headers, StatusCode::OK, &AckResults { results }))
}

async fn receipt(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    item_ref: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let item_ref = item_ref_of(item_ref)?;
    let r = state.gateway.receipt(&peer, item_ref.as_str()).await?;
    Ok(reply(&headers, StatusCode::OK, &r))
}

async fn checkpoint(State(state): State<ApiState>) -> Result<Response, Problem> {
    let note = state.gateway.checkpoint().await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        note,
    )
        .into_response())
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    #[serde(default)]
    size: Option<u64>,
}

async fn inclusion(
    State(state): State<ApiState>,
    Extension(peer): Extension<VerifiedPeer>,
    Extension(snapshot): Extension<Arc<Snapshot>>,
    q: Result<Query<InclusionQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let q = query_of(q)?;
    let proof = state
        .gateway
        .inclusion(&peer, snapshot.decider(), q.index, q.size)
        .await?;
    Ok(reply(&headers, StatusCode::OK, &proof))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// What `GET /v1/audit/consistency` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Older tree size.
    pub old: u64,
    /// Newer tree size.
    pub new: u64,
    /// The proof's hashes (RFC 9162 §2.1.4).
    pub hashes: Vec<crate::domain::bytes::Bytes>,
}

async fn consistency(
    State(state): State<ApiState>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let q = query_of(q)?;
    let hashes = state.gateway.consistency(q.old, q.new).await?;
    Ok(reply(
        &headers,
        StatusCode::OK,
        &ConsistencyProof {
            old: q.old,
            new: q.new,
            hashes,
        },
    ))
}
