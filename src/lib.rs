//! passerelle: a mutual-TLS exchange gateway for classified items between
//! the Belgian Federal Police and the State Security service (VSSE).
//!
//! Every item that crosses the gateway comes from a principal authenticated
//! by its client certificate, carries the sender's COSE_Sign1 signature, is
//! checked against the classification and need-to-know policy for each
//! recipient, and is stored durably before the sender gets a receipt.
//!
//! # Layout
//!
//! Modules follow the path an item travels:
//!
//! - [`domain`]: the core without I/O: principals, labels, items, COSE
//!   signatures, decisions, receipts, attestations, and the other shapes
//!   station and gateway exchange (`domain::wire`).
//! - [`tls`]: mTLS server and client configuration; turns a handshake into a
//!   [`tls::VerifiedPeer`] bound to one agency.
//! - [`limits`]: admission control before any expensive work: handshake
//!   slots and rates per source address, connection and long-poll budgets
//!   and request rates per principal, header, idle and body timeouts.
//! - [`api`]: the HTTP API (CBOR, or JSON on request; RFC 9457 problems).
//! - [`policy`]: the declarative classification and need-to-know policy: its
//!   loader (the only part that reads files) and the pure decision engine.
//! - [`gateway`]: the exchange logic between API and store: verify, decide,
//!   commit with its audit entry, deliver with an attestation.
//! - [`store`]: the durable store contract and its SQLite backend (group
//!   commit, the audit log in the same transactions).
//! - [`audit`]: the audit log's formats and arithmetic, without I/O: RFC
//!   9162 trees, C2SP signed notes, checkpoints and tiles, audit entries,
//!   checks of receipts and attestations.
//! - [`keys`]: the gateway's own signing key file.
//! - [`integrity`]: noticing a store edited behind the gateway's back: the
//!   seal signer, the head file beside the key, the checks at start, the
//!   explicit start of a new log, items whose rows vanished.
//! - [`server`]: accept loop (asking [`limits`] at each step),
//!   housekeeping, graceful shutdown.
//! - [`client`], [`station_config`], [`spec`]: the station side: an HTTP
//!   client over mTLS on one kept-alive connection, its `client.toml`, and
//!   item files.
//! - [`bench`]: the load generator (`passerelle bench`), run apart from the
//!   gateway it measures.
//! - [`export`]: the audit log written from the store to a directory in
//!   the C2SP tlog-tiles layout.
//! - [`auditor`]: offline tools on an exported log: verify, prove, show,
//!   replay; they never open the store.
//! - [`config`], [`pki`], [`demo`]: operator files, the example PKI, the demo.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auditor;
pub mod bench;
pub mod client;
pub mod config;
pub mod demo;
pub mod export;
pub mod gateway;
pub mod integrity;
pub mod keys;
pub mod limits;
pub mod pki;
pub mod server;
pub mod spec;
pub mod station_config;
pub mod store;
pub mod tls;

// The core crate's modules, under the names the rest of the code and the
// integration tests have always used.
pub use passerelle_core::{audit, domain, policy};
