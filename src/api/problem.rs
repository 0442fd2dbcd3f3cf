//! RFC 9457 problem details: the only shape errors take on the wire.
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

use crate::domain::bounds;
use crate::gateway::GatewayError;
use crate::store::StoreError;
use crate::tls::IdentityError;

/// Media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened, for the caller.
    pub detail: String,
}

impl Problem {
    /// A problem of type `urn:passerelle:problem:{slug}`. The detail is cut
    /// to [`bounds::DETAIL`] bytes: details are written by the gateway and
    /// quote only bounded input, and this keeps it so whatever a caller
    /// sends, since refusals are also written to the audit log.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:passerelle:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: bounds::truncate(detail.into(), bounds::DETAIL),
        }
    }

    /// The slug at the end of the type URI.
    pub fn slug(&self) -> &str {
        self.kind.rsplit(':').next().unwrap_or_default()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
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
            // A broken store invariant stops the gateway's work until the
            // operator looks: the request that met it and every one after
            // are refused as unavailable, never answered from a log that
            // is not the one the gateway signed.
            GatewayError::Halted(_)
            | GatewayError::Store(StoreError::Invariant(_) | StoreError::Tampered(_)) => {
                tracing::error!(error = %e, "refused: appending stopped after a broken store invariant");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "halted",
                    "The gateway stopped accepting work",
                    "a store invariant broke; the gateway refuses new work until its operator intervenes; nothing was accepted",
                )
            }
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
