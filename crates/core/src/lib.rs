//! passerelle's core: what an item is, what the policy decides about it,
//! and what the audit log says about both, without any I/O.
//!
//! - [`domain`]: principals, labels, items, COSE signatures, decisions,
//!   receipts, attestations, and the wire types stations and the gateway
//!   share.
//! - [`policy`]: the declarative classification and need-to-know policy,
//!   compiled from its sources, and the pure decision engine.
//! - [`audit`]: the audit log's formats and arithmetic: entries, RFC 9162
//!   trees, C2SP signed notes, checkpoints and tiles, checks of receipts
//!   and attestations.
//!
//! This crate never reads a file, opens a socket, starts a runtime or
//! touches a database: callers hand it bytes and get decisions, proofs and
//! signatures back. Its dependency list is the proof, checked by a test at
//! the workspace root.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod domain;
pub mod policy;
