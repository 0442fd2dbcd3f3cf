//! A witness for the audit log (C2SP `tlog-witness`): a small HTTP service,
//! run by an oversight body on its own machine with its own Ed25519 key,
//! that cosigns a log's checkpoint only if it is consistent with the last
//! one it cosigned for that log.
//!
//! This module tree owns the witness's configuration ([`config`]), its
//! durable memory of each log ([`state`]) and its HTTP service
//! ([`server`]), and the log's side of the exchange ([`client`]), which
//! the gateway calls. The formats and the decision are the core's
//! (`audit::witness`, `audit::cosignature`). It will become its own crate:
//! it depends only on the core and on tokio, hyper and rustls, never on the
//! gateway, the store or anything else of this crate, and it never holds
//! or sees the gateway's private key.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use passerelle_core::audit;

pub mod client;
pub mod config;
pub mod server;
pub mod state;
