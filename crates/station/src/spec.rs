//! Item files: how a person writes an item for `passerelle send --item`.
//!
//! An item file is TOML: the header fields, the item label, and one
//! `[[portion]]` per portion with its own label and text. The station turns
//! it into a [`SignedItem`] with fresh random salts and its own key. The
//! same format is what `passerelle policy explain --item` reads. This module
//! converts; it never sends anything.
//!
//! ```toml
//! id = "rabat-2026-0001"
//! to = ["vsse/analysis/ct"]
//! purpose = "terrorism"
//! cases = ["CT-2026-014"]
//! priority = "FLASH"
//! language = "fr"
//!
//! [label]
//! level = "CONFIDENTIEL"
//!
//! [[portion]]
//! text = "Request for context on subject X."
//! [portion.label]
//! level = "CONFIDENTIEL"
//! ```

use serde::Deserialize;
use std::collections::BTreeSet;

use crate::domain::bytes::Bytes;
use crate::domain::cose::SigningKey;
use crate::domain::item::{Header, Portion, Priority, Request, SignedItem};
use crate::domain::label::{Evaluation, HandlingCode, Originator, SecurityLabel};
use crate::domain::principal::{Agency, PrincipalId};

/// A label as written in an item file: the originating agency defaults to
/// the sender's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// Classification level.
    pub level: String,
    /// Caveats and compartments.
    #[serde(default)]
    pub caveats: BTreeSet<String>,
    /// REL TO agencies.
    #[serde(default)]
    pub rel_to: BTreeSet<Agency>,
    /// Handling code.
    #[serde(default)]
    pub handling: Option<HandlingCode>,
    /// "Diffusion restreinte" marking.
    #[serde(default)]
    pub diffusion_restreinte: bool,
    /// Originating agency, when not the sender's.
    #[serde(default)]
    pub originator: Option<Agency>,
    /// Third-party originator (foreign partner service).
    #[serde(default)]
    pub third_party: Option<String>,
    /// Evaluation.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// Review date, YYYY-MM-DD.
    #[serde(default)]
    pub review_date: Option<String>,
}

impl LabelSpec {
    /// The label, with `sender_agency` as default originator.
    pub fn to_label(&self, sender_agency: &Agency) -> SecurityLabel {
        SecurityLabel {
            level: self.level.clone(),
            caveats: self.caveats.clone(),
            rel_to: self.rel_to.clone(),
            handling: self.handling,
            diffusion_restreinte: self.diffusion_restreinte,
            originator: Originator {
                agency: self
                    .originator
                    .clone()
                    .unwrap_or_else(|| sender_agency.clone()),
                third_party: self.third_party.clone(),
            },
            evaluation: self.evaluation.clone(),
            review_date: self.review_date.clone(),
        }
    }
}

/// One portion in an item file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortionSpec {
    /// Portion marking.
    pub label: LabelSpec,
    /// The text.
    pub text: String,
}

/// An item file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// Item id; when absent, a fresh [`default_item_id`] each time the item
    /// is signed.
    #[serde(default)]
    pub id: Option<String>,
    /// Recipients.
    pub to: Vec<PrincipalId>,
    /// Purpose.
    pub purpose: String,
    /// Case references.
    #[serde(default)]
    pub cases: Vec<String>,
    /// Priority.
    #[serde(default = "routine")]
    pub priority: Priority,
    /// Language of the content.
    #[serde(default = "french")]
    pub language: String,
    /// Hours until the item stops being deliverable.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
    /// Set when the item is a request for information:
    /// `request = { accessibility = "direct" }` (or `"indirect"`).
    #[serde(default)]
    pub request: Option<Request>,
    /// Set when the item answers a request: the request's item reference.
    #[serde(default)]
    pub in_reply_to: Option<String>,
    /// Item label.
    pub label: LabelSpec,
    /// Portions.
    #[serde(rename = "portion")]
    pub portions: Vec<PortionSpec>,
}

fn routine() -> Priority {
    Priority::Routine
}
fn french() -> String {
    "fr".into()
}

/// Fills `buf` from the OS's random number generator. A station that
/// cannot get randomness must not sign anything, so failure is fatal.
fn fill_random(buf: &mut [u8]) {
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf).is_err() {
        panic!("the system random number generator failed");
    }
}

/// 16 random bytes from the OS.
pub fn random_salt() -> Bytes {
    let mut salt = vec![0u8; 16];
    fill_random(&mut salt);
    Bytes(salt)
}

/// A fresh item id for an item sent at `now` (Unix seconds): a UUIDv7
/// (RFC 9562 §5.7) whose time is `now` and whose other 74 bits are random,
/// so ids sort by time and two items made in the same second (or by two
/// stations) never collide.
pub fn default_item_id(now: i64) -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b[6..]);
    let millis = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70; // version 7
    b[8] = (b[8] & 0x3f) | 0x80; // the RFC 9562 variant
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl ItemSpec {
    /// Parses an item file.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The header this item file describes, sent by `sender` at `now`.
    pub fn header(&self, sender: &PrincipalId, now: i64) -> Header {
        Header {
            id: self.id.clone().unwrap_or_else(|| default_item_id(now)),
            sender: sender.clone(),
            recipients: self.to.clone(),
            created: now,
            priority: self.priority,
            purpose: self.purpose.clone(),
            cases: self.cases.clone(),
            language: self.language.clone(),
            expires: self.expires_in_hours.map(|h| now + i64::from(h) * 3600),
            request: self.request,
            in_reply_to: self.in_reply_to.clone(),
        }
    }

    /// Portions with fresh salts.
    pub fn portions(&self, sender_agency: &Agency) -> Vec<Portion> {
        self.portions
            .iter()
            .map(|p| Portion {
                label: p.label.to_label(sender_agency),
                salt: random_salt(),
                content_type: "text/plain; charset=utf-8".into(),
                body: Bytes(p.text.as_bytes().to_vec()),
            })
            .collect()
    }

    /// Signs the item as `sender` with `key` at `now`.
    pub fn sign(&self, key: &SigningKey, sender: &PrincipalId, now: i64) -> SignedItem {
        let agency = sender.agency();
        SignedItem::sign(
            key,
            self.header(sender, now),
            self.label.to_label(&agency),
            self.portions(&agency),
        )
    }
}
