//! The domain core: principals, security labels, items, their signatures,
//! the decision's result type, and the other shapes on the wire.
//!
//! Nothing in here does I/O, reads the clock, or knows about HTTP, TLS or the
//! database: callers pass the time and the bytes in. That keeps every rule
//! about what an item *is* testable on its own and identical on the gateway,
//! in the station CLI and in an auditor's offline tools.

pub mod attestation;
pub mod bounds;
pub mod bytes;
pub mod cose;
pub mod decision;
pub mod decode;
pub mod item;
pub mod label;
pub mod principal;
pub mod receipt;
pub mod reference;
pub mod wire;
