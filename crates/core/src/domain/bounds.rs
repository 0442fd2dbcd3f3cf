//! Bounds on every field that comes from outside, in one place.
//!
//! A station, a network attacker or a careless sender controls every byte of
//! an item and of a request. Whatever the gateway keeps of it (the item row,
//! the receipt, and above all the audit entry, which must always fit the
//! audit log's entry bundles, whose lengths are u16) is bounded here, by
//! named constants checked at the edge before any expensive work. The
//! numbers are documented for senders in docs/formats.md.
//!
//! This module owns the numbers and the checks ([`text`], [`token`],
//! [`count`]) and the one error they give ([`FieldError`]): the field's path
//! and what was expected. A [`FieldError`] never carries the offending value
//! unless its caller bounded it first; it never does I/O.
//!
//! With these bounds, an `item-accepted` audit entry holds at most about
//! 38 KiB of what the sender wrote: all labels together [`LABELS_TOTAL`]
//! (16 KiB), recipients 64 × 256 bytes, cases 32 × 64 bytes, purpose, id and
//! sender (see docs/formats.md, "Bounds"); the decisions' rules and reasons
//! come on top.

use std::fmt;

/// Item id, chosen by the sender: bytes.
pub const ITEM_ID: usize = 128;
/// Item reference ([`crate::domain::reference::item_ref`]): exactly this many
/// lowercase hex digits.
pub const ITEM_REF: usize = 32;
/// Principal id: bytes (each segment at most [`SEGMENT`]).
pub const PRINCIPAL_ID: usize = 256;
/// One segment of a principal id, or an agency name: bytes.
pub const SEGMENT: usize = 64;
/// Recipients of one item.
pub const RECIPIENTS: usize = 64;
/// Purpose: bytes.
pub const PURPOSE: usize = 64;
/// One case reference: bytes.
pub const CASE_REF: usize = 64;
/// Case references of one item.
pub const CASES: usize = 32;
/// Language tag: bytes (at least 2).
pub const LANGUAGE: usize = 16;
/// Portions of one item.
pub const PORTIONS: usize = 64;
/// Media type of a portion body: bytes.
pub const CONTENT_TYPE: usize = 128;
/// Fewest salt bytes per portion: enough that a digest does not reveal a
/// short, guessable portion body.
pub const SALT_MIN: usize = 16;
/// Most salt bytes per portion.
pub const SALT_MAX: usize = 64;
/// Classification level name: bytes (the policy allows names of 1-64).
pub const LEVEL: usize = 64;
/// One caveat or compartment: bytes (the policy allows ids of 1-64).
pub const CAVEAT: usize = 64;
/// Caveats and compartments on one label.
pub const CAVEATS: usize = 32;
/// Agencies in one label's REL TO.
pub const REL_TO: usize = 32;
/// Evaluation grade (`B2`, `A1`): bytes.
pub const EVALUATION_GRADE: usize = 8;
/// Third-party originator id: bytes (the policy allows ids of 1-128).
pub const THIRD_PARTY: usize = 128;
/// Review date: `YYYY-MM-DD`.
pub const REVIEW_DATE: usize = 10;
/// The item label and every portion label together, in deterministic CBOR:
/// bytes. Each label is bounded field by field (at most about 4.7 KiB); this
/// keeps an item with many portions from filling its audit entry.
pub const LABELS_TOTAL: usize = 16 * 1024;
/// An HTTP header value the API reads (`Content-Type`, `Accept`): bytes.
pub const HEADER_VALUE: usize = 256;
/// A problem detail: bytes. Details are written by the gateway, but some
/// quote bounded input (a level name, a principal id).
pub const DETAIL: usize = 1024;

/// A field of an item or request that is not acceptable: where, and what was
/// expected. The sender's fault.
///
/// The message never holds the field's value unless the caller bounded it
/// (a level name of at most [`LEVEL`] bytes may be quoted; an evaluation
/// grade that is too long is not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// Path of the field, e.g. `label.level` or `portions[2].label.caveats`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl fmt::Display, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// The same error about a field inside `outer` (e.g. `portions[1]`).
    pub fn within(self, outer: impl fmt::Display) -> Self {
        FieldError {
            field: format!("{outer}.{}", self.field),
            problem: self.problem,
        }
    }
}

/// Checks free text: not blank, at most `max` bytes, no control characters.
pub fn text(field: impl fmt::Display, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError::new(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not hold control characters"));
    }
    Ok(())
}

/// Checks a token: 1 to `max` bytes of ASCII letters, digits and `-_.:/`.
pub fn token(field: impl fmt::Display, value: &str, max: usize) -> Result<(), FieldError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be 1-{max} characters of letters, digits and -_.:/"),
        ))
    }
}

/// Checks that there are `min` to `max` of something.
pub fn count(field: impl fmt::Display, n: usize, min: usize, max: usize) -> Result<(), FieldError> {
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{n} given, {min} to {max} allowed"),
        ))
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut
/// with `…`: for text the gateway writes that may quote bounded input.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// Joins `names` with `, ` up to about `max` bytes, ending with `…` when
/// some were left out: for lists of allowed values in messages.
pub fn list<'a>(names: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let mut out = String::new();
    for n in names {
        let sep = if out.is_empty() { "" } else { ", " };
        if out.len() + sep.len() + n.len() > max {
            out.push_str(", …");
            break;
        }
        out.push_str(sep);
        out.push_str(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        let long = "A".repeat(70_000);
        let e = text("label.evaluation.grade", &long, EVALUATION_GRADE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "label.evaluation.grade: 70000 bytes, at most 8 allowed"
        );
        let e = token("header.id", &long, ITEM_ID)
            .unwrap_err()
            .within("manifest");
        assert!(e
            .to_string()
            .starts_with("manifest.header.id: must be 1-128"));
        assert!(text("x", " ", 8).is_err());
        assert!(text("x", "a\u{0}b", 8).is_err());
        assert!(text("x", "TRÈS SECRET", LEVEL).is_ok());
        assert!(count("recipients", 0, 1, RECIPIENTS).is_err());
        assert!(count("recipients", 64, 1, RECIPIENTS).is_ok());
    }

    #[test]
    fn truncate_and_list_stay_within_bounds() {
        assert_eq!(truncate("abc".into(), 8), "abc");
        let t = truncate("é".repeat(100), 11);
        assert!(t.len() <= 11 && t.ends_with('…'), "{t}");
        assert_eq!(list(["a", "b"], 100), "a, b");
        let l = list(["aaaa"; 100].iter().copied(), 20);
        assert!(l.len() <= 25 && l.ends_with('…'), "{l}");
    }
}
