//! Batched delivery on the station side: several items fetched in one
//! request, each with its attestation, and several acknowledged in one.
//!
//! A batched fetch leases what it returns, as a single fetch does: an item
//! not acknowledged within the gateway's lease comes back. What comes back
//! is not yet verified: check each item with [`Station::open`] before
//! showing it, and acknowledge only what was kept. This module never
//! verifies, shows or stores.

use hyper::Method;
use std::time::Duration;

use super::{ClientError, Station};
use crate::domain::bytes::to_cbor;
use crate::domain::wire::{AckBatch, AckResult, AckResults, Fetched, MAX_BATCH};

impl Station {
    /// Leases up to `n` deliverable items (at most [`MAX_BATCH`]), waiting
    /// up to `wait` for one, each as released to this station with its
    /// attestation (not yet verified), plus the references the policy now
    /// refused to this station.
    pub async fn fetch_batch(&self, wait: Duration, n: u32) -> Result<Fetched, ClientError> {
        let path = format!("/v1/inbox?wait={}&fetch={}", wait.as_secs(), n);
        Ok(self.call(Method::GET, &path, None, wait).await?.1)
    }

    /// Acknowledges every reference of `refs`, [`MAX_BATCH`] per request;
    /// one result per reference, in order. Repeating it is harmless (the
    /// gateway answers `already-acked`).
    pub async fn ack_batch(&self, refs: &[String]) -> Result<Vec<AckResult>, ClientError> {
        let mut results = Vec::with_capacity(refs.len());
        for chunk in refs.chunks(MAX_BATCH as usize) {
            let body = to_cbor(&AckBatch {
                refs: chunk.to_vec(),
            });
            let (_, answer): (_, AckResults) = self
                .call(Method::POST, "/v1/acks", Some(body), Duration::ZERO)
                .await?;
            if answer.results.len() != chunk.len() {
                return Err(ClientError::Protocol(format!(
                    "{} results for {} acknowledgements",
                    answer.results.len(),
                    chunk.len()
                )));
            }
            results.extend(answer.results);
        }
        Ok(results)
    }
}
