//! RFC 9457 problem details: the only shape errors take on the wire (the
//! wire form is [`crate::domain::wire::Problem`]; this module makes it a
//! response and maps the gateway's errors to it).
//!
//! Each refusal has a stable machine-readable `type`
//! (`urn:passerelle:problem:<slug>`), a short title, the HTTP status and a
//! detail written for the caller. Details never carry a stack trace, a
//! store error, or anything about principals or labels the caller may not
//! see: internal faults are logged for the operator and shown as
//! `internal`. Nor do they repeat what the caller sent beyond a bounded
//! name (a level, a principal id), or show Rust debug formatting.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::domain::wire;
use crate::gateway::GatewayError;
use crate::store::StoreError;
use crate::tls::IdentityError;

pub use crate::domain::wire::PROBLEM_JSON;

/// A problem details document as the gateway answers it: the wire form
/// ([`wire::Problem`], which stations read) made an HTTP response here, on
/// the server side, so the wire form needs no HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Problem(pub wire::Problem);

impl Problem {
    /// A problem of type `urn:passerelle:problem:{slug}`, its detail cut
    /// short as [`wire::Problem::new`] does.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem(wire::Problem::new(status.as_u16(), slug, title, detail))
    }
}

impl std::ops::Deref for Problem {
    type Target = wire::Problem;

    fn deref(&self) -> &wire::Problem {
        &self.0
    }
}

impl From<Problem> for wire::Problem {
    fn from(p: Problem) -> Self {
        p.0
    }
}

/// The slug of the problem a response carries, as a response extension:
/// what the server's request log and metrics count, without reading the
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemSlug(pub String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let slug = self.kind.rsplit(':').next().unwrap_or_default().to_string();
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        response.extensions_mut().insert(ProblemSlug(slug));
        response
    }
}

impl From<&GatewayError> for Problem {
    /// The answer to a refusal: its slug is the refusal's own cause
    /// ([`GatewayError::cause`]), so what the caller reads and what the
    /// audit log counts never disagree; status, title and detail are the
    /// API's.
    fn from(e: &GatewayError) -> Self {
        use crate::domain::item::ItemError;
        use crate::gateway::BodyRefused;
        use crate::limits::BodyError;
        let (status, title, detail) = match e {
            GatewayError::Item(ItemError::Signature(_)) => (
                StatusCode::BAD_REQUEST,
                "The sender's signature does not verify",
                format!(
                    "{e}; items must be signed with the key of the certificate used to connect"
                ),
            ),
            GatewayError::Item(ItemError::Cbor(_))
            | GatewayError::Body(BodyRefused::Malformed(_)) => (
                StatusCode::BAD_REQUEST,
                "The body is not a valid item",
                e.to_string(),
            ),
            GatewayError::Item(_) | GatewayError::TooLargeToRecord(_) => (
                StatusCode::BAD_REQUEST,
                "The item is not well formed",
                e.to_string(),
            ),
            GatewayError::SenderMismatch { .. } => (
                StatusCode::FORBIDDEN,
                "The declared sender is not the caller",
                e.to_string(),
            ),
            GatewayError::UnknownSender(_) => (
                StatusCode::FORBIDDEN,
                "You are not a principal of the policy",
                e.to_string(),
            ),
            GatewayError::UnknownPrincipal(_) => (
                StatusCode::FORBIDDEN,
                "You are not a principal of the policy",
                format!("{e}; only /healthz answers a certificate the policy does not name"),
            ),
            GatewayError::MayNotSend(_) => (
                StatusCode::FORBIDDEN,
                "You may not send items",
                e.to_string(),
            ),
            GatewayError::UnknownRecipient(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "A recipient is not a known principal",
                e.to_string(),
            ),
            GatewayError::Conflict(_) => (
                StatusCode::CONFLICT,
                "This item id was used for different content",
                e.to_string(),
            ),
            GatewayError::NotFound => (
                StatusCode::NOT_FOUND,
                "No such item",
                "there is no such item for you (it may have been acknowledged already)".into(),
            ),
            GatewayError::ItemLost(_) => {
                tracing::error!(error = %e, "a request for a lost item");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The gateway lost this item",
                    e.to_string(),
                )
            }
            GatewayError::DeliveryRefused => (
                StatusCode::FORBIDDEN,
                "Delivery is no longer permitted",
                e.to_string(),
            ),
            GatewayError::BadProofRequest(_) => {
                (StatusCode::BAD_REQUEST, "No such proof", e.to_string())
            }
            GatewayError::Body(BodyRefused::MediaType) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported body type",
                format!(
                    "send {} or {} (parameters are allowed)",
                    crate::domain::wire::CBOR,
                    crate::domain::wire::JSON
                ),
            ),
            GatewayError::Body(BodyRefused::Read(BodyError::TooLarge(_))) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The body is too large",
                e.to_string(),
            ),
            GatewayError::Body(BodyRefused::Read(BodyError::TooSlow(_))) => (
                StatusCode::REQUEST_TIMEOUT,
                "The body arrived too slowly",
                e.to_string(),
            ),
            GatewayError::Body(BodyRefused::Read(_)) => (
                StatusCode::BAD_REQUEST,
                "The body is incomplete",
                e.to_string(),
            ),
            // A broken store invariant stops the gateway's work until the
            // operator looks: the request that met it and every one after
            // are refused as unavailable, never answered from a log that
            // is not the one the gateway signed.
            GatewayError::Halted(_)
            | GatewayError::Store(StoreError::Invariant(_) | StoreError::Tampered(_)) => {
                tracing::error!(error = %e, "refused: appending stopped after a broken store invariant");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The gateway stopped accepting work",
                    "a store invariant broke; the gateway refuses new work until its operator intervenes; nothing was accepted".into(),
                )
            }
            GatewayError::Store(_) | GatewayError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "the gateway could not complete the request; nothing was accepted; retry later"
                        .into(),
                )
            }
        };
        Problem::new(status, e.cause(), title, detail)
    }
}

impl From<GatewayError> for Problem {
    fn from(e: GatewayError) -> Self {
        Problem::from(&e)
    }
}

impl From<&IdentityError> for Problem {
    fn from(e: &IdentityError) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "identity-refused",
            "Your certificate is not accepted",
            e.to_string(),
        )
    }
}

/// `429 rate-limited` with `Retry-After` (whole seconds, rounded up, at
/// least 1).
impl IntoResponse for crate::limits::Refusal {
    fn into_response(self) -> Response {
        let wait = self.retry_after();
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let mut response = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("{self}; retry in {seconds} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Refusal;
    use std::time::Duration;

    #[test]
    fn a_rate_refusal_is_429_with_retry_after_in_whole_seconds_rounded_up() {
        let response = Refusal::RequestRate {
            retry_after: Duration::from_millis(1_200),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = Refusal::Connections.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
