//! `passerelle audit show`: the entries of an exported log, filtered, for a
//! person or (as JSON lines) for a script.
//!
//! This module owns the auditor's listing: what each entry says in one line
//! (index, time in RFC 3339 UTC, event, principals, item reference,
//! decisions and rules) or one JSON object, and the filters (principal,
//! agency, case, decision, time range). With a verifier key the export is
//! verified first ([`super::verify`]) and nothing is listed unless it
//! verifies; without one the listing is marked unverified. It never changes
//! the export and never decides whether an entry is authentic itself.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use super::time::rfc3339;
use super::verify::{self, DirSource, ExportSource, Layout, VerifyFailure, VerifyReport};
use crate::audit::event::{AuditEntry, AuditEvent, RecordedDecision, RefusedSubject};
use crate::audit::tiles::TILE_WIDTH;
use crate::domain::decision::Effect;
use crate::domain::principal::{Agency, PrincipalId};
use serde_json::json;

/// Parses `allow` or `deny`.
pub fn parse_effect(text: &str) -> Result<Effect, String> {
    match text {
        "allow" => Ok(Effect::Allow),
        "deny" => Ok(Effect::Deny),
        other => Err(format!("{other:?} is not a decision: use allow or deny")),
    }
}

/// Which entries to list. Every filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries about this principal (sender, recipient or caller).
    pub principal: Option<PrincipalId>,
    /// Entries about a principal of this agency.
    pub agency: Option<Agency>,
    /// Entries about items of this case: the acceptance, which names the
    /// case, and the deliveries, refusals and acknowledgements of the same
    /// items.
    pub case: Option<String>,
    /// Entries that record a policy decision with this effect: an
    /// acceptance with at least one such recipient, a delivery (allow), a
    /// refused delivery (deny), a refused submission (deny).
    pub decision: Option<Effect>,
    /// Entries at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// Entries before this time (seconds since the Unix epoch).
    pub until: Option<i64>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// One listed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// Its index in the log.
    pub index: u64,
    /// The entry, or why it does not decode (unverified listings only).
    pub entry: Result<AuditEntry, String>,
}

/// The listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The verification, when a key was given; `None` means unverified.
    pub verified: Option<VerifyReport>,
    /// The entries that passed the filter, in log order.
    pub entries: Vec<Shown>,
    /// Entries read in all.
    pub total: u64,
}

/// Why nothing was listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShowError {
    /// A key was given and the export does not verify with it.
    #[error(transparent)]
    Verify(#[from] VerifyFailure),
    /// The export could not be read.
    #[error(transparent)]
    Unreadable(#[from] verify::SourceError),
}

impl ShowError {
    /// The CLI's exit code, as for `audit verify`.
    pub fn exit_code(&self) -> u8 {
        match self {
            ShowError::Verify(v) => v.exit_code(),
            ShowError::Unreadable(_) => verify::EXIT_CANNOT_RUN,
        }
    }
}

/// Lists the entries of the export in `dir` that pass `filter`, after
/// verifying the export with `key` when one is given.
pub fn show(
    dir: &Path,
    filter: &Filter,
    key: Option<&crate::audit::signed_note::VerifierKey>,
) -> Result<Listing, ShowError> {
    let source = DirSource::open(dir).map_err(VerifyFailure::from)?;
    let verified = match key {
        Some(key) => Some(verify::verify(dir, key)?),
        None => None,
    };
    let limit = verified.as_ref().map(|r| r.size);
    let entries = read_all(&source, limit)?;
    let total = entries.len() as u64;
    Ok(Listing {
        verified,
        entries: select(entries, filter),
        total,
    })
}

/// Reads the entries of the export in order, up to `limit` if given, else
/// every entry in the bundles from index 0 on.
fn read_all(source: &dyn ExportSource, limit: Option<u64>) -> Result<Vec<Shown>, ShowError> {
    let layout = Layout::list(source)?;
    let mut out = Vec::new();
    let mut bundle = 0u64;
    loop {
        let start = bundle * TILE_WIDTH;
        if limit.is_some_and(|l| start >= l) {
            break;
        }
        let Some(file) = layout.widest_bundle(bundle) else {
            break;
        };
        let Some(data) = source.read(&file.to_string())? else {
            break;
        };
        let (entries, _) = verify::split_bundle(&data);
        for (i, bytes) in entries.iter().enumerate() {
            let index = start + i as u64;
            if limit.is_some_and(|l| index >= l) {
                break;
            }
            out.push(Shown {
                index,
                entry: AuditEntry::decode(bytes).map_err(|e| e.0),
            });
        }
        if !file.is_full() {
            break;
        }
        bundle += 1;
    }
    Ok(out)
}

fn item_ref(e: &AuditEvent) -> Option<&str> {
    match e {
        AuditEvent::ItemAccepted { item_ref, .. }
        | AuditEvent::Delivered { item_ref, .. }
        | AuditEvent::DeliveryRefused { item_ref, .. }
        | AuditEvent::Acknowledged { item_ref, .. }
        | AuditEvent::Expired { item_ref, .. }
        | AuditEvent::Purged { item_ref, .. }
        | AuditEvent::Decided { item_ref, .. } => Some(item_ref),
        _ => None,
    }
}

fn decisions(e: &AuditEvent) -> Vec<&RecordedDecision> {
    match e {
        AuditEvent::Decided { decision, .. }
        | AuditEvent::Delivered { decision, .. }
        | AuditEvent::DeliveryRefused { decision, .. } => {
            vec![decision]
        }
        _ => Vec::new(),
    }
}

/// The event's name, as in the entry's `event` field.
pub fn event_name(e: &AuditEvent) -> &'static str {
    match e {
        AuditEvent::GatewayStarted { .. } => "gateway-started",
        AuditEvent::GatewayStopped => "gateway-stopped",
        AuditEvent::PolicyLoaded { .. } => "policy-loaded",
        AuditEvent::PolicyRefused { .. } => "policy-refused",
        AuditEvent::Refused { .. } => "refused",
        AuditEvent::ItemAccepted { .. } => "item-accepted",
        AuditEvent::Decided { .. } => "decided",
        AuditEvent::Delivered { .. } => "delivered",
        AuditEvent::DeliveryRefused { .. } => "delivery-refused",
        AuditEvent::Acknowledged { .. } => "acknowledged",
        AuditEvent::Expired { .. } => "expired",
        AuditEvent::Purged { .. } => "purged",
        AuditEvent::NewLog { .. } => "new-log",
        AuditEvent::StoreInconsistency { .. } => "store-inconsistency",
        AuditEvent::WitnessRefused { .. } => "witness-refused",
    }
}

pub(crate) fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

fn matches(filter: &Filter, entry: &AuditEntry, case_items: &HashSet<String>) -> bool {
    let principals = entry.principals();
    if filter.since.is_some_and(|t| entry.time < t) || filter.until.is_some_and(|t| entry.time >= t)
    {
        return false;
    }
    if let Some(p) = &filter.principal {
        if !principals.contains(&p) {
            return false;
        }
    }
    if let Some(a) = &filter.agency {
        if !principals.iter().any(|p| p.agency() == *a) {
            return false;
        }
    }
    if filter.case.is_some() && !item_ref(&entry.event).is_some_and(|r| case_items.contains(r)) {
        return false;
    }
    if let Some(effect) = filter.decision {
        let hit = match &entry.event {
            AuditEvent::Refused { .. } => effect == Effect::Deny,
            e => decisions(e).iter().any(|d| d.effect == effect),
        };
        if !hit {
            return false;
        }
    }
    true
}

/// Keeps the entries that pass `filter`. Entries that do not decode pass
/// only an empty filter, so that an unverified listing hides nothing.
pub fn select(entries: Vec<Shown>, filter: &Filter) -> Vec<Shown> {
    let empty = filter.is_empty();
    let mut case_items: HashSet<String> = HashSet::new();
    entries
        .into_iter()
        .filter(|shown| match &shown.entry {
            Err(_) => empty,
            Ok(entry) => {
                if let (
                    Some(case),
                    AuditEvent::ItemAccepted {
                        cases, item_ref, ..
                    },
                ) = (&filter.case, &entry.event)
                {
                    if cases.contains(case) {
                        case_items.insert(item_ref.clone());
                    }
                }
                matches(filter, entry, &case_items)
            }
        })
        .collect()
}

impl fmt::Display for Shown {
    /// One line: index, time, event, principals, item, decisions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        self.write_line(&mut line)?;
        f.write_str(line.trim_end())
    }
}

impl Shown {
    fn write_line(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let entry = match &self.entry {
            Ok(e) => e,
            Err(reason) => return write!(f, "{:>8}  (not an audit entry: {reason})", self.index),
        };
        let principals: Vec<&str> = entry.principals().iter().map(|p| p.as_str()).collect();
        write!(
            f,
            "{:>8}  {}  {:<18}  {:<40}  {:<32}",
            self.index,
            rfc3339(entry.time),
            event_name(&entry.event),
            if principals.is_empty() {
                "-".to_string()
            } else {
                principals.join(",")
            },
            item_ref(&entry.event).unwrap_or("-"),
        )?;
        let ds: Vec<String> = decisions(&entry.event)
            .iter()
            .map(|d| {
                format!(
                    "{}:{}[{}]",
                    d.recipient,
                    effect_name(d.effect),
                    d.rules.join(",")
                )
            })
            .collect();
        if !ds.is_empty() {
            write!(f, "  {}", ds.join(" "))?;
        }
        match &entry.event {
            AuditEvent::Refused {
                subject,
                cause,
                count,
                ..
            } => match subject {
                RefusedSubject::Address(a) => write!(f, "  {a}: {cause} ×{count}"),
                RefusedSubject::Principal(_) => write!(f, "  {cause} ×{count}"),
                RefusedSubject::Others => write!(f, "  (others): {cause} ×{count}"),
            },
            AuditEvent::PolicyLoaded {
                policy_digest,
                changed,
                ..
            } if !changed.is_empty() => {
                write!(
                    f,
                    "  policy {policy_digest}; changed: {}",
                    changed.join(", ")
                )
            }
            AuditEvent::PolicyLoaded { policy_digest, .. }
            | AuditEvent::GatewayStarted { policy_digest, .. } => {
                write!(f, "  policy {policy_digest}")
            }
            AuditEvent::PolicyRefused { reason, .. } => write!(f, "  {reason}"),
            AuditEvent::NewLog {
                previous_head,
                found,
            } => {
                let previous = previous_head
                    .as_deref()
                    .and_then(|note| note.lines().nth(1))
                    .map_or("unknown".to_string(), |size| format!("size {size}"));
                write!(f, "  previous head: {previous}; found: {found}")
            }
            AuditEvent::StoreInconsistency {
                items_lost,
                deliveries_lost,
                item_refs,
            } => {
                write!(
                    f,
                    "  {items_lost} items and {deliveries_lost} deliveries lost: {}",
                    item_refs.join(" ")
                )
            }
            AuditEvent::WitnessRefused {
                witness,
                size,
                status,
                reason,
                ..
            } => write!(f, "  {witness} refused size {size} ({status}): {reason}"),
            _ => Ok(()),
        }
    }
}

impl Shown {
    /// One JSON object: the summary fields, then the whole entry.
    pub fn to_json(&self, verified: bool) -> serde_json::Value {
        let entry = match &self.entry {
            Ok(e) => e,
            Err(reason) => {
                return json!({
                    "index": self.index,
                    "verified": verified,
                    "error": format!("not an audit entry: {reason}"),
                })
            }
        };
        json!({
            "index": self.index,
            "time": rfc3339(entry.time),
            "event": event_name(&entry.event),
            "principals": entry.principals(),
            "item_ref": item_ref(&entry.event),
            "decisions": decisions(&entry.event).iter().map(|d| json!({
                "recipient": d.recipient,
                "effect": effect_name(d.effect),
                "rules": d.rules,
                "portions": d.portions,
                "reasons": d.reasons,
            })).collect::<Vec<_>>(),
            "verified": verified,
            "entry": entry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_as_allow_or_deny() {
        assert_eq!(parse_effect("deny"), Ok(Effect::Deny));
        assert!(parse_effect("maybe").is_err());
    }

    #[test]
    fn a_case_filter_follows_the_items_of_the_case() {
        let p = |s: &str| PrincipalId::new(s).unwrap();
        let accepted = |r: &str, case: &str| AuditEvent::ItemAccepted {
            due: None,
            answers: None,
            item_ref: r.into(),
            item_id: "i".into(),
            sender: p("police/lo/rabat"),
            digest: "d".into(),
            purpose: "terrorism".into(),
            cases: vec![case.into()],
            label: crate::domain::label::SecurityLabel::new(
                "RESTREINT",
                Agency::new("police").unwrap(),
            ),
            portion_labels: vec![],
            outcomes: vec![],
            priority: None,
            policy_digest: "p".into(),
        };
        let ack = |r: &str| AuditEvent::Acknowledged {
            item_ref: r.into(),
            recipient: p("vsse/analysis/ct"),
        };
        let entries: Vec<Shown> = [
            accepted("a", "CT-1"),
            accepted("b", "CT-2"),
            ack("b"),
            ack("a"),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| Shown {
            index: i as u64,
            entry: Ok(AuditEntry::new(100 + i as i64, e)),
        })
        .collect();
        let filter = Filter {
            case: Some("CT-1".into()),
            ..Filter::default()
        };
        let picked: Vec<u64> = select(entries.clone(), &filter)
            .iter()
            .map(|s| s.index)
            .collect();
        assert_eq!(picked, [0, 3]);
        let filter = Filter {
            since: Some(101),
            until: Some(103),
            ..Filter::default()
        };
        let picked: Vec<u64> = select(entries, &filter).iter().map(|s| s.index).collect();
        assert_eq!(picked, [1, 2]);
    }
}
