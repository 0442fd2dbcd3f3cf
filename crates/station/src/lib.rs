//! The station side: what a liaison officer's station or an analyst's desk
//! runs to talk to the gateway.
//!
//! - [`client`]: the HTTP client over mTLS ([`client::Station`]): send with
//!   an outbox that survives a lost answer, inbox, fetch with the checks of
//!   the sender's signature and the gateway's attestation, ack, receipts.
//! - [`station_config`]: the station's `client.toml`.
//! - [`spec`]: items written in TOML by a person, turned into signed items.
//! - [`agent`]: `passerelle station run`, which keeps the vault in step
//!   with the gateway, and what the officer sees of it.
//! - [`vault`]: what the station received and has to send, encrypted at
//!   rest under the officer's passphrase.
//!
//! It depends on the core and on the identity crate, never on the gateway:
//! the types it shares with the gateway are the core's wire types.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod client;
pub mod spec;
pub mod station_config;
pub mod vault;

use passerelle_core::{audit, domain};
use passerelle_identity::{config, tls};
