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

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::domain::wire;
use crate::gateway::GatewayError;
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

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

impl From<&GatewayError> for Problem {
    fn from(e: &GatewayError) -> Self {
        use crate::domain::item::ItemError;
        match e {
            GatewayError::Item(ItemError::Signature(_)) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-signature",
                "The sender's signature does not verify",
                format!(
                    "{e}; items must be signed with the key of the certificate used to connect"
                ),
            ),
            GatewayError::Item(ItemError::Cbor(_)) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "The body is not a valid item",
                e.to_string(),
            ),
            GatewayError::Item(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-item",
                "The item is not well formed",
                e.to_string(),
            ),
            GatewayError::SenderMismatch { .. } => Problem::new(
                StatusCode::FORBIDDEN,
                "sender-mismatch",
                "The declared sender is not the caller",
                e.to_string(),
            ),
            GatewayError::UnknownSender(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "unknown-sender",
                "You are not a principal of the policy",
                e.to_string(),
            ),
            GatewayError::UnknownPrincipal(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "unknown-principal",
                "You are not a principal of the policy",
                format!("{e}; only /healthz answers a certificate the policy does not name"),
            ),
            GatewayError::MayNotSend(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "may-not-send",
                "You may not send items",
                e.to_string(),
            ),
            GatewayError::UnknownRecipient(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-recipient",
                "A recipient is not a known principal",
                e.to_string(),
            ),
            GatewayError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "id-conflict",
                "This item id was used for different content",
                e.to_string(),
            ),
            GatewayError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such item",
                "there is no such item for you (it may have been acknowledged already)",
            ),
            GatewayError::ItemLost(_) => {
                tracing::error!(error = %e, "a request for a lost item");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "item-lost",
                    "The gateway lost this item",
                    e.to_string(),
                )
            }
            GatewayError::DeliveryRefused => Problem::new(
                StatusCode::FORBIDDEN,
                "delivery-refused",
                "Delivery is no longer permitted",
                e.to_string(),
            ),
            GatewayError::TooLargeToRecord(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-item",
                "The item is not well formed",
                e.to_string(),
            ),
            GatewayError::BadProofRequest(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-proof-request",
                "No such proof",
                e.to_string(),
            ),
            GatewayError::Store(_) | GatewayError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the gateway could not complete the request; nothing was accepted; retry later",
                )
            }
        }
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
