//! The auditor's offline tools: an export of the audit log, in the C2SP
//! `tlog-tiles` layout, checked, proved from and listed with nothing but
//! the gateway's public key.
//!
//! # The export layout
//!
//! ```text
//! DIR/checkpoint                 the latest signed checkpoint (C2SP tlog-checkpoint)
//! DIR/tile/<L>/<N>[.p/<W>]       hash tiles (C2SP tlog-tiles)
//! DIR/tile/entries/<N>[.p/<W>]   entry bundles: each entry a big-endian u16 length, then
//!                                the entry's deterministic CBOR (see `audit::event`)
//! DIR/checkpoints/<size>         every checkpoint the gateway signed, by tree size
//!                                (a passerelle addition, for consistency checks)
//! ```
//!
//! The tiles and bundles describe the tree at the latest checkpoint's size,
//! so any tlog-tiles client can read the log, and, as the C2SP tlog-tiles
//! spec requires ("Logs MUST serve partial tiles corresponding to tree
//! sizes for which a checkpoint was produced"), the partial tiles and
//! bundles of every earlier checkpoint's size too. The gateway side writes
//! the export (`crate::export`, which reads the store); these tools only
//! read it: they never open the store, never change an entry and never
//! decide anything.
//!
//! # Layout
//!
//! - [`verify`]: `passerelle audit verify`, the verdict on an export with
//!   nothing but the verifier key, naming the first entry or checkpoint at
//!   fault; its exit codes are shared by the other auditor commands.
//! - [`prove`]: `passerelle audit prove` (an inclusion proof from an export)
//!   and `passerelle audit check-receipt` (a receipt a sender kept).
//! - [`show`]: `passerelle audit show`, the filtered listing.
//! - [`replay`]: `passerelle policy replay`, a candidate policy decided
//!   again over every audited acceptance.
//! - [`report`]: `passerelle audit report`, a verified export counted and
//!   drawn as one self-contained HTML page.
//! - [`witnesses`]: `audit verify --witness`, the witnesses' cosignatures
//!   on the latest checkpoint counted against a quorum.
//! - [`time`]: timestamps as the tools print and read them.

pub mod prove;
pub mod replay;
pub mod report;
pub mod show;
pub mod time;
pub mod verify;
pub mod witnesses;
