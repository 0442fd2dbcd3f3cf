//! Decoding bytes that came from outside (CBOR, JSON) into typed values,
//! with errors fit to show the sender and to write on the audit log.
//!
//! The decoders' own messages quote the input ("invalid type: string
//! \"…1 MB…\"") or show Rust debug text (`Core(Eof { … })`). This module
//! turns every decode error into a short message: where (the field path,
//! e.g. `portions[0].label.level`) and what was expected, never the input
//! and never debug formatting, at most [`MAX_MESSAGE`] bytes. It does no I/O.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::bounds;

/// Longest decode error message, in bytes.
pub const MAX_MESSAGE: usize = 300;

/// Why bytes from outside could not be decoded: a short message that names
/// the field and what was expected, never the input. The sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl DecodeError {
    fn at(path: &serde_path_to_error::Path, what: String) -> Self {
        let path = field_path(path);
        let message = if path.is_empty() {
            what
        } else {
            format!("{path}: {what}")
        };
        DecodeError(bounds::truncate(message, MAX_MESSAGE))
    }
}

/// Decodes CBOR.
pub fn cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // Decoded first without tracking the field path, which costs on every
    // field of every item; the same bytes are decoded again with it only
    // to say where they failed (the decoder is deterministic: they fail
    // again, at the same place).
    let reader = cbor4ii::core::utils::SliceReader::new(bytes);
    if let Ok(value) = T::deserialize(&mut cbor4ii::serde::Deserializer::new(reader)) {
        return Ok(value);
    }
    let reader = cbor4ii::core::utils::SliceReader::new(bytes);
    let mut de = cbor4ii::serde::Deserializer::new(reader);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let what = match e.inner() {
            cbor4ii::serde::DecodeError::Core(core) => cbor_fault(core),
            cbor4ii::serde::DecodeError::Custom(msg) => serde_fault(msg),
        };
        DecodeError::at(e.path(), what)
    })
}

/// Decodes JSON; nothing but white space may follow the value.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let what = json_fault(e.inner());
        DecodeError::at(e.path(), what)
    })?;
    de.end().map_err(|e| DecodeError(json_fault(&e)))?;
    Ok(value)
}

/// The path as the sender would write it, with any segment that is not
/// one of our field names (a key the sender made up) shown as `?`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let ours = !key.is_empty()
                    && key.len() <= 32
                    && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if ours { key } else { "?" });
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn cbor_fault(e: &cbor4ii::core::error::DecodeError<std::convert::Infallible>) -> String {
    use cbor4ii::core::error::DecodeError as E;
    let kind = |name: &str| match name {
        "str" => "a text string".to_string(),
        "bytes" => "a byte string".to_string(),
        "array" => "an array".to_string(),
        "map" => "a map".to_string(),
        "bool" => "a boolean".to_string(),
        other => format!("a {other}"),
    };
    match e {
        E::Eof { .. } => "the CBOR ends early (truncated)".into(),
        E::Mismatch { name, .. } => format!("expected {}", kind(name)),
        E::RequireUtf8 { .. } => "a text string is not valid UTF-8".into(),
        E::DepthOverflow { .. } => "nested too deeply".into(),
        E::LengthOverflow { .. } | E::CastOverflow { .. } | E::ArithmeticOverflow { .. } => {
            "a number or a length is out of range".into()
        }
        _ => "not well-formed CBOR of the expected shape".into(),
    }
}

fn json_fault(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the JSON ends early (truncated)".into(),
        // serde_json's syntax messages are fixed texts with a position.
        Category::Syntax => format!("not valid JSON: {e}"),
        Category::Data => serde_fault(&e.to_string()),
        Category::Io => "the JSON could not be read".into(),
    }
}

/// serde's messages, kept only for the parts that are ours: what was
/// expected (it comes from our types, after the input in the message) and
/// the name of a missing field.
fn serde_fault(msg: &str) -> String {
    const QUOTING: [&str; 5] = [
        "invalid type: ",
        "invalid value: ",
        "invalid length ",
        "unknown variant ",
        "unknown field ",
    ];
    if QUOTING.iter().any(|p| msg.starts_with(p)) {
        if let Some(at) = msg.rfind(", expected ") {
            return msg[at + 2..].to_string();
        }
    }
    for keep in ["missing field `", "duplicate field `"] {
        if let Some(rest) = msg.strip_prefix(keep) {
            let name: String = rest.chars().take_while(|&c| c != '`').collect();
            if name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return format!("{keep}{name}`");
            }
        }
    }
    if msg.starts_with("invalid principal id") {
        return "expected a principal id: agency/segment[/segment…] of lowercase letters, digits, '-' or '_', at most 256 bytes".into();
    }
    if msg.starts_with("invalid base64") {
        return "expected standard base64 with padding".into();
    }
    "not of the expected shape".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bytes::to_cbor;
    use crate::domain::item::SignedItem;

    #[test]
    fn json_errors_name_the_field_and_never_quote_the_input() {
        let huge = "x".repeat(100_000);
        for (body, expect) in [
            (
                format!(r#"{{"envelope": "AAAA", "portions": "{huge}"}}"#),
                "portions: expected a sequence",
            ),
            (
                format!(r#"{{"envelope": "{huge}!"}}"#),
                "envelope: expected",
            ),
            (format!(r#"["{huge}"]"#), ""),
            (format!(r#"{{"{huge}": 1, "#), "the JSON ends early"),
            (
                format!(r#"{{"portions": [], "envelope": "AAAA"}} {huge}"#),
                "not valid JSON",
            ),
        ] {
            let e = json::<SignedItem>(body.as_bytes()).unwrap_err().to_string();
            assert!(e.len() <= MAX_MESSAGE, "{e}");
            assert!(!e.contains("xxxx"), "{e}");
            assert!(e.contains(expect), "{e}");
        }
    }

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let body = r#"{"envelope": "AAAA", "portions": [{"body": "", "salt": "", "content_type": "t", "label": {"originator": {"agency": "police"}}}]}"#;
        let e = json::<SignedItem>(body.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, "portions[0].label: missing field `level`");
    }

    #[test]
    fn cbor_errors_are_clean() {
        let mut bytes = to_cbor(&vec!["a".repeat(1000)]);
        bytes.truncate(500);
        let e = cbor::<Vec<String>>(&bytes).unwrap_err().to_string();
        assert_eq!(e, "[0]: the CBOR ends early (truncated)");
        let e = cbor::<Vec<u32>>(&to_cbor(&vec!["z".repeat(1000)]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("zzz") && !e.contains('{'), "{e}");
        let e = cbor::<crate::domain::principal::PrincipalId>(&to_cbor(&"Q".repeat(1000)))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("expected a principal id"), "{e}");
        assert!(e.len() <= MAX_MESSAGE);
    }

    #[test]
    fn made_up_keys_are_not_repeated() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("K".repeat(1000), vec![1u8; 4]);
        let mut bytes = to_cbor(&m);
        bytes.truncate(bytes.len() - 1);
        let e = cbor::<std::collections::BTreeMap<String, Vec<u8>>>(&bytes)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("KKK"), "{e}");
    }
}
