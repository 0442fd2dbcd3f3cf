//! What one vault file holds once opened: a received item with what was
//! verified about it, or an item the station wrote, until and after the
//! gateway's receipt. Plain data; the vault seals it whole.

use serde::{Deserialize, Serialize};

use crate::domain::attestation::Attestation;
use crate::domain::item::{DeliveredItem, Header, Priority, SignedItem};
use crate::domain::label::SecurityLabel;
use crate::domain::receipt::SignedReceipt;

/// An item delivered to this station, verified before it was stored
/// (sender's certificate and signature, the gateway's attestation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The gateway's reference of the item.
    pub item_ref: String,
    /// When the station stored it, seconds since the Unix epoch.
    pub received_at: i64,
    /// When the officer first read it.
    pub read_at: Option<i64>,
    /// When the vault deletes it (end of its retention on the station).
    pub purge_after: Option<i64>,
    /// When an answer is due, for a request.
    pub due: Option<i64>,
    /// The header, as the sender signed it.
    pub header: Header,
    /// The item's label, as the sender signed it.
    pub label: SecurityLabel,
    /// What the gateway attested for this delivery.
    pub attestation: Attestation,
    /// The item as delivered, to verify again and show.
    pub item: DeliveredItem,
}

/// Where an item the station wrote stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingState {
    /// Not sent yet.
    Queued,
    /// Sent at least once, no receipt yet (the link dropped before the
    /// answer, or the gateway was unavailable).
    AwaitingReceipt,
    /// The gateway accepted it; the receipt is kept.
    Sent,
    /// The gateway refused it for good (see `refused`).
    Refused,
}

/// An item the station wrote, kept until the gateway's receipt and then
/// with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The item's reference at the gateway.
    pub item_ref: String,
    /// When it was put in the vault.
    pub kept_at: i64,
    /// Submissions tried.
    pub attempts: u32,
    /// When it was last tried.
    pub last_attempt: Option<i64>,
    /// Its header.
    pub header: Header,
    /// The signed item, sent again as it is until a receipt comes.
    pub item: SignedItem,
    /// The gateway's receipt, checked.
    pub receipt: Option<SignedReceipt>,
    /// Why the gateway refused it for good.
    pub refused: Option<String>,
    /// When the vault deletes it.
    pub purge_after: Option<i64>,
}

impl Outgoing {
    /// Where it stands.
    pub fn state(&self) -> OutgoingState {
        match (&self.receipt, &self.refused, self.attempts) {
            (Some(_), _, _) => OutgoingState::Sent,
            (None, Some(_), _) => OutgoingState::Refused,
            (None, None, 0) => OutgoingState::Queued,
            (None, None, _) => OutgoingState::AwaitingReceipt,
        }
    }
}

/// One vault file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// An item delivered to the station.
    Received(Received),
    /// An item the station wrote.
    Outgoing(Outgoing),
}

impl Record {
    /// When the record's retention ends.
    pub fn purge_after(&self) -> Option<i64> {
        match self {
            Record::Received(r) => r.purge_after,
            Record::Outgoing(o) => o.purge_after,
        }
    }

    /// The item's reference.
    pub fn item_ref(&self) -> &str {
        match self {
            Record::Received(r) => &r.item_ref,
            Record::Outgoing(o) => &o.item_ref,
        }
    }

    /// The item's priority.
    pub fn priority(&self) -> Priority {
        match self {
            Record::Received(r) => r.header.priority,
            Record::Outgoing(o) => o.header.priority,
        }
    }
}
