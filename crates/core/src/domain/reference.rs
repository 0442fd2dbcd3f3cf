//! Item references: the gateway's name for an item, shared by the item's
//! header (`in_reply_to`), receipts, inboxes and request paths.
//!
//! This module owns how a reference is made from a sender and an id, and
//! which strings from outside are well-formed references. It never looks an
//! item up and never decides whether a reference names an existing item.

use super::bytes::sha256;
use super::principal::PrincipalId;

/// The gateway's reference for an item: hex of the first 16 bytes of
/// SHA-256(sender ‖ 0x00 ‖ id). Senders choose ids; the reference keeps two
/// senders' equal ids apart and can be computed by the sender itself.
pub fn item_ref(sender: &PrincipalId, id: &str) -> String {
    let mut input = Vec::with_capacity(sender.as_str().len() + 1 + id.len());
    input.extend_from_slice(sender.as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(id.as_bytes());
    hex::encode(&sha256(&input)[..16])
}

/// An item reference that came from outside (a request path), checked to
/// be one that [`item_ref`] could have made: exactly
/// [`super::bounds::ITEM_REF`] lowercase hex digits. Anything else names no
/// item, and is answered as such without being repeated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemRef(String);

impl ItemRef {
    /// The reference, when `s` is well formed.
    pub fn parse(s: &str) -> Option<ItemRef> {
        let ok = s.len() == super::bounds::ITEM_REF
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ItemRef(s.to_string()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_refs_parse_only_as_item_ref_makes_them() {
        let sender = PrincipalId::new("police/lo/rabat").unwrap();
        let r = item_ref(&sender, "x");
        assert_eq!(ItemRef::parse(&r).unwrap().as_str(), r);
        for bad in [
            String::new(),
            r.to_uppercase(),
            format!("{r}0"),
            r[1..].to_string(),
            "g".repeat(32),
            "a".repeat(65_500),
        ] {
            assert!(ItemRef::parse(&bad).is_none(), "{bad:.40}");
        }
    }
}
