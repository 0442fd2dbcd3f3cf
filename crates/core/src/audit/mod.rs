//! The audit log's formats and arithmetic, without I/O.
//!
//! The gateway's audit log is an RFC 9162 Merkle tree whose signed tree heads
//! are C2SP `tlog-checkpoint` signed notes, exported in the C2SP `tlog-tiles`
//! layout, so that oversight bodies can check it with independent tools. This
//! module owns those formats and the proofs over them; it never touches files,
//! the network, the database or the clock, and it never decides what an entry
//! says: the store and the CLI pass bytes in and write bytes out.
//!
//! # Layout
//!
//! - [`rfc9162`]: leaf and node hashes, the appendable [`rfc9162::Tree`],
//!   roots at any size, inclusion and consistency proofs and their
//!   verification from hashes alone.
//! - [`signed_note`]: C2SP signed notes with Ed25519 keys: signing, opening
//!   with a set of trusted verifier keys, key string formats.
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies (origin, size, root) and
//!   their signing and opening through [`signed_note`].
//! - [`cosignature`]: witness cosignatures (C2SP tlog-cosignature,
//!   `cosignature/v1`): making, verifying and counting them.
//! - [`witness`]: the C2SP tlog-witness `add-checkpoint` exchange: the
//!   request and answer formats and the witness's decision, without I/O.
//! - [`event`]: what an entry says, and [`event::BoundedEntry`], the only
//!   form a store appends.
//! - [`legacy`]: version 1 entries, read and mapped to the current events.
//! - [`refusals`]: refusals counted per subject and cause, written once
//!   per interval.
//! - [`tiles`]: C2SP tlog-tiles paths, hash tiles and entry bundles, and the
//!   reverse: reading hashes and entries back to recompute a root.

pub mod checkpoint;
pub mod cosignature;
pub mod event;
pub mod legacy;
pub mod receipts;
pub mod refusals;
pub mod rfc9162;
pub mod signed_note;
pub mod tiles;
pub mod witness;
