//! The shapes the gateway and a station exchange over HTTP that are not
//! items, receipts or attestations: the media types, the inbox listing and
//! its entries, the overdue listing, the answer to an acknowledgement, and
//! RFC 9457 problem details, the only shape a refusal takes.
//!
//! Both sides build on these same types, so a field renamed on one side is
//! renamed on the other; docs/formats.md and the CDDL schemas describe them
//! for other clients. Plain serde data: this module never does I/O and
//! knows nothing of HTTP servers, TLS or the database (the gateway turns a
//! [`Problem`] into a response, the store its rows into entries).

use serde::{Deserialize, Serialize};

use crate::domain::bounds;
use crate::domain::item::{DeliveredItem, Priority};
use crate::domain::principal::PrincipalId;

/// CBOR media type: bodies are CBOR unless JSON is asked for.
pub const CBOR: &str = "application/cbor";
/// JSON media type.
pub const JSON: &str = "application/json";
/// Media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details document (RFC 9457): what a refusal says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened, for the caller.
    pub detail: String,
}

impl Problem {
    /// A problem of type `urn:passerelle:problem:{slug}`. The detail is cut
    /// to [`bounds::DETAIL`] bytes: details are written by the gateway and
    /// quote only bounded input, and this keeps it so whatever a caller
    /// sends, since refusals are also written to the audit log.
    pub fn new(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:passerelle:problem:{slug}"),
            title: title.to_string(),
            status,
            detail: bounds::truncate(detail.into(), bounds::DETAIL),
        }
    }

    /// The slug at the end of the type URI.
    pub fn slug(&self) -> &str {
        self.kind.rsplit(':').next().unwrap_or_default()
    }
}

/// One deliverable item in a recipient's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// Gateway reference, for fetch and ack.
    pub item_ref: String,
    /// Sender.
    pub sender: PrincipalId,
    /// Sender's id.
    pub item_id: String,
    /// Priority.
    pub priority: Priority,
    /// Acceptance time.
    pub accepted_at: i64,
    /// How many times it was fetched before.
    pub deliveries: u32,
    /// For a request not yet answered: when its answer is due (Unix
    /// seconds). Absent for other items and for answered requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<i64>,
}

/// What `GET /v1/inbox` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inbox {
    /// Deliverable items, FLASH first.
    pub items: Vec<InboxEntry>,
}

/// A request without an answer, as `GET /v1/overdue` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRequest {
    /// Gateway reference.
    pub item_ref: String,
    /// Who asked.
    pub sender: PrincipalId,
    /// Sender's id.
    pub item_id: String,
    /// Priority.
    pub priority: Priority,
    /// When the gateway accepted it.
    pub accepted_at: i64,
    /// When its answer is due.
    pub due: i64,
    /// The desks it was released to (recipients with an inbox entry),
    /// sorted.
    pub recipients: Vec<PrincipalId>,
}

/// What `GET /v1/overdue` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Overdue {
    /// The gateway's time when it looked (Unix seconds): a request whose
    /// `due` is before it is past due.
    pub now: i64,
    /// Requests without an answer due by `now + within`, soonest first.
    pub requests: Vec<OpenRequest>,
}

/// What `POST /v1/items/{ref}/ack` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Acknowledged {
    /// The item.
    pub item_ref: String,
    /// `acked`, or `already-acked` when this repeats an earlier ack.
    pub status: String,
}

/// Most items one batched fetch (`GET /v1/inbox?fetch=N`) hands out, and
/// most references one batched acknowledgement (`POST /v1/acks`) takes.
pub const MAX_BATCH: u32 = 100;

/// One item of a batched fetch: its inbox entry (as listed before this
/// fetch) and the item as released to the caller, with its attestation.
#[derive(Debug, Serialize, Deserialize)]
pub struct FetchedItem {
    /// The inbox entry the item was taken from.
    pub entry: InboxEntry,
    /// The item as released, as `GET /v1/items/{ref}` returns it.
    pub item: DeliveredItem,
}

/// What `GET /v1/inbox?fetch=N` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Fetched {
    /// Items leased to the caller by this request, in inbox order.
    pub items: Vec<FetchedItem>,
    /// References the policy in force refused to deliver to the caller
    /// during this request: they left its inbox (as a single fetch's
    /// `delivery-refused` does).
    pub refused: Vec<String>,
}

/// What `POST /v1/acks` takes.
#[derive(Debug, Serialize, Deserialize)]
pub struct AckBatch {
    /// The references to acknowledge, at most [`MAX_BATCH`]. Decoding
    /// keeps one more than that and skips the rest, so that the gateway
    /// still answers that the batch is too large.
    #[serde(deserialize_with = "at_most_one_over_batch")]
    pub refs: Vec<String>,
}

/// The first [`MAX_BATCH`]` + 1` strings of a sequence; the others are read
/// and dropped. A body of a million empty strings (a byte each in CBOR)
/// would otherwise become a million `String`s, dozens of bytes of memory
/// per byte sent, before the count is checked.
fn at_most_one_over_batch<'de, D>(de: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Kept;
    impl<'de> serde::de::Visitor<'de> for Kept {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of item references")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let keep = MAX_BATCH as usize + 1;
            let mut kept = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(keep));
            while kept.len() < keep {
                match seq.next_element::<String>()? {
                    Some(r) => kept.push(r),
                    None => return Ok(kept),
                }
            }
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(kept)
        }
    }
    de.deserialize_seq(Kept)
}

/// One reference's result in a batched acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResult {
    /// The reference, as sent; absent when it is not a well-formed
    /// reference (never repeated, as a path's is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ref: Option<String>,
    /// `acked`, `already-acked`, or `refused` (then `problem` says why, as
    /// the single acknowledgement would have answered).
    pub status: String,
    /// For `refused`: the problem a single acknowledgement of this
    /// reference answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// What `POST /v1/acks` returns: one result per reference, in the order
/// sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct AckResults {
    /// The results.
    pub results: Vec<AckResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_slug_and_keeps_its_detail_short() {
        let p = Problem::new(404, "not-found", "No such item", "x".repeat(10_000));
        assert_eq!(p.kind, "urn:passerelle:problem:not-found");
        assert_eq!(p.slug(), "not-found");
        assert!(p.detail.len() <= bounds::DETAIL);
    }
}
