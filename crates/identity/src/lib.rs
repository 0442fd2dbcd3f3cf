//! Who is who at passerelle's edges: the mTLS identities of stations and
//! of the gateway, the gateway's signing key file, and the example PKI.
//!
//! - [`tls`]: rustls configurations for both ends (TLS 1.3 only, the ring
//!   provider, the hybrid post-quantum key exchange), the CA→agency
//!   binding, and the identity step: the only code that turns a handshake's
//!   certificate into a [`tls::VerifiedPeer`].
//! - [`config`]: what the gateway's and the stations' operator files share
//!   (agency CAs and trust domains, key exchange policy, reading TOML).
//! - [`keys`]: the gateway's Ed25519 signing key file (receipts,
//!   attestations, checkpoints), and the rule every private key file
//!   follows (refused when others can read it, written 0600).
//! - [`validity`]: certificates' and CRLs' dates, for `config check`.
//! - [`pki`]: an example PKI for demos and tests (rcgen); never for
//!   production certificates.
//!
//! Shared by the gateway and the station client, so that neither depends on
//! the other: a station's laptop does not carry the gateway's database or
//! HTTP server. It reads key and certificate files; it never opens a
//! socket or a database.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod keys;
pub mod pki;
pub mod tls;
pub mod validity;

use passerelle_core::{audit, domain};
