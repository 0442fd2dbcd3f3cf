//! Items: what stations and desks exchange, and how the sender's signature
//! covers them.
//!
//! An item is a [`Header`], an item-level [`SecurityLabel`] and one or more
//! [`Portion`]s, each with its own label. The sender signs a [`Manifest`]
//! (header, item label, and for each portion the SHA-256 of its
//! deterministic CBOR, which includes a random salt) as a COSE_Sign1. A
//! recipient that is given only some portions can still check the sender's
//! signature and that its portions are exactly the ones signed; the salt
//! keeps the digests of withheld portions from revealing their content.
//!
//! This module checks shape and signatures. It never decides who may see what
//! (that is the decision's job) and never touches the network or the store.
//!
//! Over 600 lines only with its tests (the code is under 470): the tests
//! build and tamper with signed items and stay beside the checks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::bounds::{self, FieldError};
use super::bytes::{from_cbor, sha256, to_cbor, Bytes, CborError};
use super::cose::{CoseError, PublicKey, SigningKey};
use super::label::SecurityLabel;
use super::principal::PrincipalId;

/// Content type of the signed manifest inside the COSE_Sign1.
pub const MANIFEST_CONTENT_TYPE: &str = "application/vnd.passerelle.manifest+cbor";
/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;
/// Most recipients an item may name.
pub const MAX_RECIPIENTS: usize = bounds::RECIPIENTS;
/// Most portions an item may carry.
pub const MAX_PORTIONS: usize = bounds::PORTIONS;
/// Fewest salt bytes per portion: enough that a digest does not reveal a
/// short, guessable portion body.
pub const MIN_SALT_LEN: usize = bounds::SALT_MIN;

/// Handling priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// Immediate threat to life or operation.
    Flash,
    /// Needs handling within hours.
    Urgent,
    /// Normal business.
    Routine,
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "FLASH" => Ok(Priority::Flash),
            "URGENT" => Ok(Priority::Urgent),
            "ROUTINE" => Ok(Priority::Routine),
            other => Err(format!(
                "unknown priority {other:?} (FLASH, URGENT or ROUTINE)"
            )),
        }
    }
}

/// Whether the information a request asks for is directly accessible to
/// the requested service (in its own databases) or only indirectly (from
/// other authorities or parties): Directive (EU) 2023/977, art. 5, sets
/// different answer deadlines for the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accessibility {
    /// Directly accessible information.
    Direct,
    /// Indirectly accessible information.
    Indirect,
}

impl std::str::FromStr for Accessibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Accessibility::Direct),
            "indirect" => Ok(Accessibility::Indirect),
            other => Err(format!("accessibility {other:?} is not direct or indirect")),
        }
    }
}

/// What makes an item a request for information: its recipients owe an
/// answer by a deadline the policy sets from its priority, purpose and the
/// accessibility of what it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// How accessible the information asked for is.
    pub accessibility: Accessibility,
}

/// The item header, chosen and signed by the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Sender-chosen id, unique per sender; resubmitting it is idempotent.
    pub id: String,
    /// Case references.
    #[serde(default)]
    pub cases: Vec<String>,
    /// The sending principal; must be the one the TLS handshake authenticated.
    pub sender: PrincipalId,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created: i64,
    /// When the item stops being deliverable, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// Purpose of the exchange, e.g. `terrorism`.
    pub purpose: String,
    /// Set when the item is a request for information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Language tag of the content, e.g. `fr`, `nl`, `en`.
    pub language: String,
    /// Handling priority.
    pub priority: Priority,
    /// Who the item is for.
    pub recipients: Vec<PrincipalId>,
    /// Set when the item answers a request: the request's item reference
    /// (see [`crate::domain::reference::item_ref`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

/// One portion of an item, with its own label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portion {
    /// The content.
    pub body: Bytes,
    /// Random bytes that make the digest of a withheld portion unguessable.
    pub salt: Bytes,
    /// Portion marking.
    pub label: SecurityLabel,
    /// Media type of the body, e.g. `text/plain; charset=utf-8`.
    pub content_type: String,
}

impl Portion {
    /// SHA-256 of the portion's deterministic CBOR: what the manifest lists.
    pub fn digest(&self) -> [u8; 32] {
        sha256(&to_cbor(self))
    }
}

/// What the sender signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The item-level label, which must dominate every portion's label.
    pub label: SecurityLabel,
    /// The header.
    pub header: Header,
    /// Always [`MANIFEST_VERSION`].
    pub version: u32,
    /// For each portion in order, [`Portion::digest`].
    pub portions: Vec<Bytes>,
}

/// An item as a sender submits it: the signed manifest and all portions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedItem {
    /// Tagged COSE_Sign1 whose payload is the manifest's CBOR.
    pub envelope: Bytes,
    /// All portions, in manifest order.
    pub portions: Vec<Portion>,
}

/// A portion as delivered, with its position in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredPortion {
    /// Index of the portion in the manifest.
    pub index: u32,
    /// The portion itself.
    pub portion: Portion,
}

/// An item as a recipient receives it: the sender's signed manifest, the
/// sender's certificate to check it with, and the portions released to this
/// recipient only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredItem {
    /// The sender's COSE_Sign1 envelope, unchanged.
    pub envelope: Bytes,
    /// DER of the certificate the sender presented when submitting.
    pub sender_certificate: Bytes,
    /// The released portions.
    pub portions: Vec<DeliveredPortion>,
    /// The gateway's COSE_Sign1 attestation of this delivery.
    pub attestation: Bytes,
}

/// Why an item was refused. Every variant is the sender's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The body or the manifest is not CBOR of the expected shape.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// The signature envelope did not verify.
    #[error("the sender's signature is invalid: {0}")]
    Signature(#[from] CoseError),
    /// The manifest is of a version this gateway does not know.
    #[error("invalid header: {0}")]
    Header(String),
    /// The manifest's bytes are not its RFC 8949 §4.2.1 deterministic
    /// encoding with only the documented keys (docs/formats.md): another
    /// key, an explicit `null` or `false`, keys out of order, or a longer
    /// form than needed.
    #[error("the manifest is not in deterministic CBOR with only the documented keys (RFC 8949 §4.2.1; see docs/formats.md)")]
    NotDeterministic,
    /// A field is out of bounds or not well formed: a header field, a label
    /// field, or a label that does not fit the scheme in force.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// The portions do not match the manifest.
    #[error("portion {0} does not match the signed manifest")]
    PortionMismatch(usize),
    /// Portion count or salt out of bounds.
    #[error("invalid portions: {0}")]
    Portions(String),
}

/// An item whose signature and shape the gateway has checked: the only way
/// to get one is [`SignedItem::verify`]. Its fields are private, so code
/// that holds one knows the signature was checked; outside this module
/// nothing can build one by hand:
///
/// ```compile_fail
/// use passerelle::domain::item::{Manifest, Portion, VerifiedItem};
///
/// fn forge(manifest: Manifest, portions: Vec<Portion>) -> VerifiedItem {
///     VerifiedItem { manifest, digest: [0; 32], envelope: vec![], portions }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct VerifiedItem {
    manifest: Manifest,
    digest: [u8; 32],
    envelope: Vec<u8>,
    portions: Vec<Portion>,
}

impl VerifiedItem {
    /// The decoded manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the manifest bytes: the item's content identity.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The envelope as received.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// The portions, in manifest order.
    pub fn portions(&self) -> &[Portion] {
        &self.portions
    }

    /// The envelope and the portions, for storing or releasing them: what
    /// was verified, given up whole.
    pub fn into_parts(self) -> (Vec<u8>, Vec<Portion>) {
        (self.envelope, self.portions)
    }
}

impl Header {
    /// Checks bounds and the shape of every field. Field paths in the error
    /// start at the manifest (`header.id`).
    pub fn check_shape(&self) -> Result<(), ItemError> {
        let field = |name: &str| format!("header.{name}");
        bounds::token(field("id"), &self.id, bounds::ITEM_ID)?;
        bounds::count(
            field("recipients"),
            self.recipients.len(),
            1,
            bounds::RECIPIENTS,
        )?;
        let unique: BTreeSet<_> = self.recipients.iter().collect();
        if unique.len() != self.recipients.len() {
            return Err(FieldError::new(field("recipients"), "a recipient is named twice").into());
        }
        bounds::token(field("purpose"), &self.purpose, bounds::PURPOSE)?;
        bounds::count(field("cases"), self.cases.len(), 0, bounds::CASES)?;
        for (i, c) in self.cases.iter().enumerate() {
            bounds::token(format!("header.cases[{i}]"), c, bounds::CASE_REF)?;
        }
        if self.language.len() < 2 {
            return Err(FieldError::new(
                field("language"),
                "must be a language tag such as fr, nl or en",
            )
            .into());
        }
        bounds::token(field("language"), &self.language, bounds::LANGUAGE)?;
        if let Some(exp) = self.expires {
            if exp <= self.created {
                return Err(FieldError::new(field("expires"), "is not after creation").into());
            }
        }
        if let Some(r) = &self.in_reply_to {
            if super::reference::ItemRef::parse(r).is_none() {
                return Err(FieldError::new(
                    field("in_reply_to"),
                    format!(
                        "must be the item reference of a request: {} lowercase hex digits",
                        bounds::ITEM_REF
                    ),
                )
                .into());
            }
        }
        Ok(())
    }
}

impl Portion {
    /// Checks bounds and the shape of every field but the body (the body is
    /// bounded by the request size). Field paths are relative to the portion.
    pub fn check_shape(&self) -> Result<(), FieldError> {
        let salt = self.salt.0.len();
        if !(bounds::SALT_MIN..=bounds::SALT_MAX).contains(&salt) {
            return Err(FieldError::new(
                "salt",
                format!(
                    "{salt} bytes, {} to {} allowed",
                    bounds::SALT_MIN,
                    bounds::SALT_MAX
                ),
            ));
        }
        bounds::text("content_type", &self.content_type, bounds::CONTENT_TYPE)?;
        self.label.check_shape().map_err(|e| e.within("label"))
    }
}

/// Checks that all labels of an item together stay within
/// [`bounds::LABELS_TOTAL`], once each label is bounded field by field.
fn check_labels_total<'a>(
    labels: impl IntoIterator<Item = &'a SecurityLabel>,
) -> Result<(), FieldError> {
    let total: usize = labels.into_iter().map(|l| to_cbor(l).len()).sum();
    if total > bounds::LABELS_TOTAL {
        return Err(FieldError::new(
            "labels",
            format!(
                "the item label and the portion labels take {total} bytes together, at most {} allowed",
                bounds::LABELS_TOTAL
            ),
        ));
    }
    Ok(())
}

impl SignedItem {
    /// Signs an item. Used by stations (the CLI) and by tests.
    pub fn sign(
        key: &SigningKey,
        header: Header,
        label: SecurityLabel,
        portions: Vec<Portion>,
    ) -> SignedItem {
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            header,
            label,
            portions: portions
                .iter()
                .map(|p| Bytes(p.digest().to_vec()))
                .collect(),
        };
        let envelope = key.sign1(to_cbor(&manifest), MANIFEST_CONTENT_TYPE);
        SignedItem {
            envelope: Bytes(envelope),
            portions,
        }
    }

    /// Checks the signature with the sender's key, the manifest's shape and
    /// that the portions are exactly those signed.
    pub fn verify(self, sender_key: &PublicKey) -> Result<VerifiedItem, ItemError> {
        // Bounds first: they cost nothing, and an item out of bounds is
        // refused before its signature and its portions are hashed.
        bounds::count("portions", self.portions.len(), 1, bounds::PORTIONS)?;
        for (i, portion) in self.portions.iter().enumerate() {
            portion
                .check_shape()
                .map_err(|e| e.within(format!("portions[{i}]")))?;
        }
        let payload = sender_key.verify1_as(&self.envelope.0, MANIFEST_CONTENT_TYPE)?;
        let manifest = decode_manifest(&payload)?;
        if self.portions.len() != manifest.portions.len() {
            return Err(ItemError::Portions(format!(
                "{} portions sent, {} signed",
                self.portions.len(),
                manifest.portions.len()
            )));
        }
        check_labels_total(
            std::iter::once(&manifest.label).chain(self.portions.iter().map(|p| &p.label)),
        )?;
        for (i, (portion, signed)) in self.portions.iter().zip(&manifest.portions).enumerate() {
            if portion.digest()[..] != signed.0[..] {
                return Err(ItemError::PortionMismatch(i));
            }
        }
        Ok(VerifiedItem {
            digest: sha256(&payload),
            manifest,
            envelope: self.envelope.0,
            portions: self.portions,
        })
    }
}

impl SignedItem {
    /// The manifest, WITHOUT checking the signature: only for the station
    /// that signed the item (to name it in its outbox).
    pub fn own_manifest(&self) -> Result<Manifest, ItemError> {
        decode_manifest(&super::cose::payload_unverified(&self.envelope.0)?)
    }
}

fn decode_manifest(payload: &[u8]) -> Result<Manifest, ItemError> {
    let manifest: Manifest = from_cbor(payload)?;
    if manifest.version != MANIFEST_VERSION {
        return Err(ItemError::Header(format!(
            "unknown manifest version {}",
            manifest.version
        )));
    }
    manifest.header.check_shape()?;
    manifest
        .label
        .check_shape()
        .map_err(|e| e.within("label"))?;
    // The digest is over these bytes, and recipients in other languages
    // read them: a key the format does not have, or an encoding that two
    // implementations could write differently, is refused rather than
    // passed on.
    if to_cbor(&manifest) != payload {
        return Err(ItemError::NotDeterministic);
    }
    Ok(manifest)
}

impl DeliveredItem {
    /// What a recipient checks before showing an item: the sender's signature
    /// with `sender_key`, and that each delivered portion is the one signed
    /// at its index.
    pub fn verify(&self, sender_key: &PublicKey) -> Result<(Manifest, [u8; 32]), ItemError> {
        let payload = sender_key.verify1_as(&self.envelope.0, MANIFEST_CONTENT_TYPE)?;
        let manifest = decode_manifest(&payload)?;
        for p in &self.portions {
            let i = p.index as usize;
            match manifest.portions.get(i) {
                Some(signed) if signed.0[..] == p.portion.digest()[..] => {}
                _ => return Err(ItemError::PortionMismatch(i)),
            }
        }
        Ok((manifest, sha256(&payload)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::principal::Agency;

    pub(crate) fn sample(key: &SigningKey) -> SignedItem {
        let police = Agency::new("police").unwrap();
        let header = Header {
            id: "rabat-2026-0001".into(),
            sender: PrincipalId::new("police/lo/rabat").unwrap(),
            recipients: vec![PrincipalId::new("vsse/analysis/ct").unwrap()],
            created: 1_790_000_000,
            priority: Priority::Flash,
            purpose: "terrorism".into(),
            cases: vec!["CT-2026-014".into()],
            language: "fr".into(),
            expires: None,
            request: None,
            in_reply_to: None,
        };
        let portion = |level: &str, body: &str| Portion {
            label: SecurityLabel::new(level, police.clone()),
            salt: Bytes(vec![7; 16]),
            content_type: "text/plain; charset=utf-8".into(),
            body: Bytes(body.as_bytes().to_vec()),
        };
        SignedItem::sign(
            key,
            header,
            SecurityLabel::new("CONFIDENTIEL", police.clone()),
            vec![
                portion("CONFIDENTIEL", "full"),
                portion("RESTREINT", "tearline"),
            ],
        )
    }

    fn key() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn signed_item_verifies_and_partial_delivery_verifies() {
        let k = key();
        let item = sample(&k).verify(&k.public_key()).unwrap();
        let delivered = DeliveredItem {
            envelope: Bytes(item.envelope.clone()),
            sender_certificate: Bytes::default(),
            portions: vec![DeliveredPortion {
                index: 1,
                portion: item.portions[1].clone(),
            }],
            attestation: Bytes::default(),
        };
        let (m, digest) = delivered.verify(&k.public_key()).unwrap();
        assert_eq!(m.header.id, "rabat-2026-0001");
        assert_eq!(digest, item.digest);
    }

    #[test]
    fn changed_portion_is_caught() {
        let k = key();
        let mut item = sample(&k);
        item.portions[1].body.0[0] ^= 1;
        assert!(matches!(
            item.verify(&k.public_key()),
            Err(ItemError::PortionMismatch(1))
        ));

        let good = sample(&k).verify(&k.public_key()).unwrap();
        let mut moved = good.portions[1].clone();
        moved.body = Bytes(b"other".to_vec());
        let delivered = DeliveredItem {
            envelope: Bytes(good.envelope),
            sender_certificate: Bytes::default(),
            portions: vec![DeliveredPortion {
                index: 1,
                portion: moved,
            }],
            attestation: Bytes::default(),
        };
        assert!(matches!(
            delivered.verify(&k.public_key()),
            Err(ItemError::PortionMismatch(1))
        ));
    }

    #[test]
    fn missing_or_extra_portions_are_refused() {
        let k = key();
        let mut item = sample(&k);
        item.portions.pop();
        assert!(matches!(
            item.verify(&k.public_key()),
            Err(ItemError::Portions(_))
        ));
    }

    #[test]
    fn signed_structures_are_in_rfc8949_deterministic_order() {
        let k = key();
        let mut item = sample(&k);
        item.portions[0].label.caveats.insert("HUMINT".into());
        item.portions[0]
            .label
            .rel_to
            .insert(Agency::new("vsse").unwrap());
        item.portions[0].label.handling = Some(crate::domain::label::HandlingCode::H2);
        item.portions[0].label.diffusion_restreinte = true;
        item.portions[0].label.originator.third_party = Some("partner/ma-dgst".into());
        item.portions[0].label.evaluation = Some(crate::domain::label::Evaluation {
            system: "6x6".into(),
            grade: "B2".into(),
        });
        item.portions[0].label.review_date = Some("2030-01-01".into());
        for p in &item.portions {
            crate::domain::bytes::assert_core_deterministic(&to_cbor(p));
        }
        let verified = sample(&k).verify(&k.public_key()).unwrap();
        let mut manifest = verified.manifest.clone();
        manifest.header.expires = Some(manifest.header.created + 3600);
        manifest.header.request = Some(Request {
            accessibility: Accessibility::Indirect,
        });
        manifest.header.in_reply_to = Some("00".repeat(16));
        crate::domain::bytes::assert_core_deterministic(&to_cbor(&manifest));
    }

    #[test]
    fn a_manifest_field_of_the_wrong_type_is_named_without_debug_text() {
        let k = key();
        let item = sample(&k).verify(&k.public_key()).unwrap();
        let signed = resigned(&k, &item, |m| {
            let header = m.iter_mut().find(|(k, _)| k.as_text() == Some("header"));
            for (key, value) in header.unwrap().1.as_map_mut().unwrap() {
                if key.as_text() == Some("id") {
                    *value = ciborium::Value::Integer(7.into());
                }
            }
        });
        let e = signed.verify(&k.public_key()).unwrap_err().to_string();
        assert_eq!(e, "malformed CBOR: header.id: expected a text string");
    }

    /// The entries of a CBOR map, as ciborium holds them.
    type CborMap = Vec<(ciborium::Value, ciborium::Value)>;
    /// A change to a manifest's map.
    type Edit<'a> = Box<dyn FnOnce(&mut CborMap) + 'a>;

    /// `manifest` with `edit` applied to its map, signed by `k`.
    fn resigned(
        k: &SigningKey,
        item: &VerifiedItem,
        edit: impl FnOnce(&mut CborMap),
    ) -> SignedItem {
        let mut manifest: ciborium::Value =
            ciborium::from_reader(&to_cbor(&item.manifest)[..]).unwrap();
        edit(manifest.as_map_mut().unwrap());
        let mut payload = Vec::new();
        ciborium::into_writer(&manifest, &mut payload).unwrap();
        SignedItem {
            envelope: Bytes(k.sign1(payload, MANIFEST_CONTENT_TYPE)),
            portions: item.portions.clone(),
        }
    }

    #[test]
    fn a_manifest_that_is_not_deterministic_or_has_other_keys_is_refused() {
        let k = key();
        let item = sample(&k).verify(&k.public_key()).unwrap();
        assert!(resigned(&k, &item, |_| {}).verify(&k.public_key()).is_ok());
        let text = |s: &str| ciborium::Value::Text(s.into());
        let cases: Vec<Edit> = vec![
            // A key the format does not have.
            Box::new(|m| m.push((text("note"), text("x")))),
            // Keys out of order.
            Box::new(|m| m.reverse()),
            // An optional field written as null instead of left out.
            Box::new(|m| {
                let header = m.iter_mut().find(|(k, _)| k.as_text() == Some("header"));
                let header = header.unwrap().1.as_map_mut().unwrap();
                header.push((text("expires"), ciborium::Value::Null));
            }),
        ];
        for edit in cases {
            let e = resigned(&k, &item, edit).verify(&k.public_key());
            assert!(matches!(e, Err(ItemError::NotDeterministic)), "{e:?}");
        }
    }

    #[test]
    fn manifest_encoding_is_deterministic() {
        let k = key();
        let item = sample(&k).verify(&k.public_key()).unwrap();
        let again = to_cbor(&item.manifest);
        assert_eq!(sha256(&again), item.digest);
    }

    /// A label with every field at its bound.
    fn maximal_label() -> SecurityLabel {
        let agency = |i: usize| Agency::new(format!("{i:0>64}")).unwrap();
        let mut l = SecurityLabel::new("L".repeat(bounds::LEVEL), agency(0));
        l.caveats = (0..bounds::CAVEATS).map(|i| format!("{i:0>64}")).collect();
        l.rel_to = (0..bounds::REL_TO).map(agency).collect();
        l.handling = Some(crate::domain::label::HandlingCode::H3);
        l.evaluation = Some(crate::domain::label::Evaluation {
            grade: "G".repeat(bounds::EVALUATION_GRADE),
            system: "6x6".into(),
        });
        l.originator.third_party = Some("t".repeat(bounds::THIRD_PARTY));
        l.review_date = Some("2030-01-01".into());
        l.diffusion_restreinte = true;
        l
    }

    #[test]
    fn a_maximal_label_is_valid_and_the_labels_together_are_bounded() {
        let label = maximal_label();
        assert_eq!(label.check_shape(), Ok(()));
        // The figure docs/formats.md and the bounds module give.
        let size = to_cbor(&label).len();
        assert!(size <= 4800, "a maximal label takes {size} bytes");
        assert!(check_labels_total([&label, &label, &label]).is_ok());
        let many = vec![&label; 4];
        let e = check_labels_total(many).unwrap_err();
        assert_eq!(e.field, "labels");
    }
}
