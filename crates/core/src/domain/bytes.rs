//! Byte strings on the wire and deterministic CBOR.
//!
//! [`Bytes`] is a CBOR byte string in CBOR and base64 (standard alphabet,
//! padded) in JSON, so that a person with curl can read what a station reads.
//! [`to_cbor`] is the one way the crate encodes anything that is signed or
//! hashed: every such type is a struct (fields in a fixed order) or a
//! `BTreeMap`/`BTreeSet`, integers take their shortest form (cbor4ii always
//! does this), and no floats or indefinite lengths are used, so the same value
//! always gives the same bytes (RFC 8949 §4.2.1's requirements for
//! reproducibility; field order is fixed by the type rather than sorted).

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An owned byte string: CBOR bytes on CBOR, base64 in JSON.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", hex::encode(&self.0))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte string (CBOR) or base64 text (JSON)")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(Bytes)
                    .map_err(|e| E::custom(format!("invalid base64: {e}")))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// Why bytes could not be decoded as CBOR of the expected shape: a short
/// message naming the field, never the input (see [`super::decode`]).
#[derive(Debug, thiserror::Error)]
#[error("malformed CBOR: {0}")]
pub struct CborError(pub String);

/// Encodes `value` as deterministic CBOR.
///
/// Encoding into a `Vec` cannot fail for the crate's own types (no maps with
/// non-string keys that serde would refuse), so an error here is a bug and is
/// reported as such rather than hidden.
pub fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    match cbor4ii::serde::to_vec(Vec::new(), value) {
        Ok(v) => v,
        Err(e) => panic!("bug: encoding an in-memory value as CBOR failed: {e:?}"),
    }
}

/// Decodes CBOR bytes that came from outside (a peer, a file).
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    super::decode::cbor(bytes).map_err(|e| CborError(e.to_string()))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
/// Checks, with an independent decoder, that every map in `bytes` has
/// its keys in RFC 8949 §4.2.1 order (bytewise order of their encodings:
/// shorter text keys first), so another implementation that follows the
/// RFC reproduces our bytes, and so our digests.
pub(crate) fn assert_core_deterministic(bytes: &[u8]) {
    fn walk(v: &ciborium::Value) {
        match v {
            ciborium::Value::Map(entries) => {
                let keys: Vec<Vec<u8>> = entries
                    .iter()
                    .map(|(k, _)| {
                        let mut out = Vec::new();
                        ciborium::into_writer(k, &mut out).unwrap();
                        out
                    })
                    .collect();
                assert!(
                    keys.windows(2).all(|w| w[0] < w[1]),
                    "map keys out of order: {entries:?}"
                );
                entries.iter().for_each(|(_, v)| walk(v));
            }
            ciborium::Value::Array(items) => items.iter().for_each(walk),
            ciborium::Value::Tag(_, inner) => walk(inner),
            _ => {}
        }
    }
    let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    walk(&value);
    let mut again = Vec::new();
    ciborium::into_writer(&value, &mut again).unwrap();
    assert_eq!(again, bytes, "an independent encoder gives other bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_cbor_bytes_and_json_base64() {
        let b = Bytes(vec![0, 1, 2, 255]);
        assert_eq!(to_cbor(&b), vec![0x44, 0, 1, 2, 255]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"AAEC/w==\"");
        let back: Bytes = from_cbor(&to_cbor(&b)).unwrap();
        assert_eq!(back, b);
        let back: Bytes = serde_json::from_str("\"AAEC/w==\"").unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(from_cbor::<Bytes>(&[0xff, 0x00, 0x13]).is_err());
        assert!(from_cbor::<Bytes>(&[]).is_err());
    }
}
