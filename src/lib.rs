//! passerelle: a mutual-TLS exchange gateway for classified items between
//! the Belgian Federal Police and the State Security service (VSSE).
//!
//! Every item that crosses the gateway comes from a principal authenticated
//! by its client certificate, carries the sender's COSE_Sign1 signature, is
//! checked against the classification and need-to-know policy for each
//! recipient, and is stored durably before the sender gets a receipt.
//!
//! # Crates
//!
//! This crate is the `passerelle` command ([`demo`], the auditor's offline
//! tools in [`auditor`], the load generator in [`bench`], and the CLI
//! modules of the binary) and the one
//! place the workspace's crates are named together, under the module names
//! the integration tests and examples use:
//!
//! - `passerelle-core` ([`domain`], [`policy`], [`audit`]): labels, items,
//!   COSE signatures, the policy and its decisions, audit entries and
//!   Merkle arithmetic. No I/O, checked from `cargo metadata` by a test.
//! - `passerelle-identity` ([`tls`], [`keys`], [`pki`]): mTLS identities,
//!   the gateway's signing key file, the example PKI.
//! - `passerelle-gateway` ([`api`], [`gateway`], [`store`], [`log_service`],
//!   …): the server.
//! - `passerelle-station` ([`client`], [`station_config`], [`spec`],
//!   [`agent`], [`vault`]): the station side; it never depends on the
//!   gateway.
//! - `passerelle-witness` ([`witness`]): the witness an oversight body runs
//!   on its own machine; it depends on the core only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auditor;
pub mod bench;
pub mod demo;
pub mod fuzz_targets;

pub use passerelle_core::{audit, domain, policy};
pub use passerelle_gateway::{
    api, config, export, gateway, integrity, limits, log_service, metrics, policy_files, server,
    snapshot, store,
};
pub use passerelle_identity::{keys, pki, tls, validity};
pub use passerelle_station::{agent, client, spec, station_config, vault};
pub use passerelle_witness as witness;
