//! One event per request for the operator's log, and the metrics counted
//! at the end of a request: the principal, method, route, status, latency,
//! the item reference the request concerned and the problem it was
//! answered with.
//!
//! It sits outermost on each connection's routes, so a request refused by
//! admission control or by the identity check is logged and counted too.
//! What it writes is chosen here and bounded: the route is the API's path
//! template (never the path a caller typed), the item reference only a
//! well-formed one. It never reads a body, so no payload, label, reason or
//! key can reach the log through it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::api::problem::ProblemSlug;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::ItemRef;
use crate::metrics::Metrics;

/// What the request log of one connection knows before any request.
#[derive(Clone)]
pub(super) struct Observed {
    /// The connection's principal, once its identity was accepted.
    pub principal: Option<PrincipalId>,
    pub metrics: Arc<Metrics>,
}

/// The well-formed item reference in `path` at the place of `{item_ref}`
/// in `template`, if any.
fn item_ref_in(template: &str, path: &str) -> Option<ItemRef> {
    let at = template.split('/').position(|s| s == "{item_ref}")?;
    ItemRef::parse(path.split('/').nth(at)?)
}

/// Logs and counts one request once it is answered.
pub(super) async fn observe(State(o): State<Observed>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let in_path = route
        .as_deref()
        .and_then(|r| item_ref_in(r, request.uri().path()));
    let response = next.run(request).await;
    let took = started.elapsed();
    let problem = response.extensions().get::<ProblemSlug>().map(|p| &p.0);
    // A submission's reference is known only from its receipt.
    let item = response.extensions().get::<ItemRef>().cloned().or(in_path);
    if let Some(slug) = problem {
        o.metrics.refused(slug, o.principal.as_ref());
    }
    if method == Method::POST && route.as_deref() == Some("/v1/items") {
        o.metrics.submit_took(took);
    }
    tracing::info!(
        target: "passerelle::request",
        principal = o.principal.as_ref().map(PrincipalId::as_str),
        method = method.as_str(),
        route = route.as_deref().unwrap_or("other"),
        status = response.status().as_u16(),
        latency_ms = took.as_secs_f64() * 1000.0,
        item_ref = item.as_ref().map(ItemRef::as_str),
        problem = problem.map(String::as_str),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_reference_in_its_place_is_taken() {
        let r = "0123456789abcdef0123456789abcdef";
        let path = format!("/v1/items/{r}/ack");
        assert_eq!(
            item_ref_in("/v1/items/{item_ref}/ack", &path).map(|r| r.as_str().to_string()),
            Some(r.to_string())
        );
        assert!(item_ref_in("/v1/items/{item_ref}", "/v1/items/not-a-ref").is_none());
        assert!(item_ref_in("/v1/inbox", "/v1/inbox").is_none());
    }
}
