//! The gateway: everything between a station's TLS connection and the
//! durable store, in the order an item travels.
//!
//! - [`limits`]: admission control before any expensive work.
//! - [`api`]: the HTTP API (CBOR, or JSON on request; RFC 9457 problems):
//!   maps requests to the exchange and errors to problems, decides nothing.
//! - [`gateway`]: the exchange, one module per step: refusals (who may use
//!   it, refusals counted for oversight), submit, deliver, receipts and
//!   attestations (signed in one place), and the log service
//!   (checkpoints, proofs).
//! - [`log_service`]: the audit log above the store: the Merkle tree built
//!   from the stored leaf hashes, group commit, catching up with other
//!   processes, and the stop on a broken store invariant.
//! - [`store`]: the durable store contract, its conformance suite and its
//!   backends, chosen by configuration.
//! - [`integrity`]: noticing a store edited behind the gateway's back.
//! - [`snapshot`]: the configuration in force (policy, TLS identities,
//!   limits), checked whole and swapped whole.
//! - [`server`]: accept loop, housekeeping, graceful shutdown.
//! - [`metrics`]: the operator's Prometheus series and their endpoint.
//! - [`config`], [`policy_files`], [`export`]: the operator's files, the
//!   policy directory, the audit log written out for auditors.
//!
//! The decisions themselves are the core's (`passerelle-core`); identities
//! and keys are the identity crate's (`passerelle-identity`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod export;
pub mod gateway;
pub mod integrity;
pub mod limits;
pub mod log_service;
pub mod metrics;
pub mod policy_files;
pub mod server;
pub mod snapshot;
pub mod store;

use passerelle_core::{audit, domain, policy};
#[cfg(test)]
use passerelle_identity::pki;
use passerelle_identity::{keys, tls};
use passerelle_witness as witness;
