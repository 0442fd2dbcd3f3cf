//! `passerelle policy replay`: what a candidate policy would have decided
//! for every acceptance on an exported, verified audit log.
//!
//! A security officer runs it before putting a policy in force: each
//! `item-accepted` entry holds every fact a decision reads (sender,
//! purpose, priority, cases, item and portion labels, and the decision
//! time in the entry's `time`), and each `decided` entry the decision that
//! was recorded for one recipient. This module decides again under the
//! candidate and reports, per recipient and portion, what would change
//! (allow → deny, deny → allow), grouped by the rules that decided before
//! and after. It reads only a verified export (through [`super::show`])
//! and a loaded policy; it never writes anything and never trusts an entry
//! the export's checkpoints do not cover. Acceptances written before entry
//! format version 2 lack the priority and are counted as not replayed,
//! never guessed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::show::{self, Filter, ShowError};
use super::time::rfc3339;
use crate::audit::event::AuditEvent;
use crate::audit::signed_note::VerifierKey;
use crate::domain::bytes::Bytes;
use crate::domain::decision::{Effect, ItemFacts};
use crate::domain::item::{Header, Manifest, MANIFEST_VERSION};
use crate::domain::label::SecurityLabel;
use crate::domain::principal::PrincipalId;
use crate::policy::Policy;

/// Exit code: the candidate decides every replayed acceptance as recorded.
pub const EXIT_UNCHANGED: u8 = 0;
/// Exit code: at least one portion would be decided otherwise.
pub const EXIT_CHANGED: u8 = 1;

/// Most example item references kept per group.
pub const MAX_EXAMPLES: usize = 5;

/// Which way a portion's decision changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Direction {
    /// Released before, withheld under the candidate.
    #[serde(rename = "allow-to-deny")]
    AllowToDeny,
    /// Withheld before, released under the candidate.
    #[serde(rename = "deny-to-allow")]
    DenyToAllow,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::AllowToDeny => "allow → deny",
            Direction::DenyToAllow => "deny → allow",
        })
    }
}

/// One portion for one recipient that the candidate decides otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Index of the item's `item-accepted` entry.
    pub index: u64,
    /// The acceptance time (the decision's `now`), RFC 3339.
    pub time: String,
    /// The item reference.
    pub item_ref: String,
    /// The recipient.
    pub recipient: PrincipalId,
    /// The portion index.
    pub portion: u32,
    /// Which way.
    pub direction: Direction,
    /// Rules that decided, as recorded.
    pub recorded_rules: Vec<String>,
    /// Rules that decide under the candidate.
    pub candidate_rules: Vec<String>,
}

/// Changes of one direction with the same rules before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Which way.
    pub direction: Direction,
    /// Rules that decided, as recorded.
    pub recorded_rules: Vec<String>,
    /// Rules that decide under the candidate.
    pub candidate_rules: Vec<String>,
    /// Portions changed.
    pub portions: u64,
    /// Distinct items concerned.
    pub items: u64,
    /// Distinct recipients concerned.
    pub recipients: Vec<PrincipalId>,
    /// Up to [`MAX_EXAMPLES`] item references, in log order.
    pub examples: Vec<String>,
}

/// What `policy replay` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// The export's origin (the gateway key's name).
    pub origin: String,
    /// Entries verified.
    pub size: u64,
    /// Hex SHA-256 of the candidate policy.
    pub candidate: String,
    /// Acceptances decided again.
    pub acceptances: u64,
    /// Recipient decisions compared.
    pub decisions: u64,
    /// Acceptances that could not be decided again: written before entry
    /// format version 2, they lack the priority.
    pub not_replayed: u64,
    /// Index of the last acceptance not replayed, if any: replay is exact
    /// for every acceptance after it.
    pub last_not_replayed: Option<u64>,
    /// Every change, in log order.
    pub changes: Vec<Change>,
    /// The changes grouped by direction and rules.
    pub groups: Vec<Group>,
}

impl ReplayReport {
    /// The CLI's exit code.
    pub fn exit_code(&self) -> u8 {
        if self.changes.is_empty() {
            EXIT_UNCHANGED
        } else {
            EXIT_CHANGED
        }
    }
}

/// An acceptance waiting for its `decided` entries.
struct Pending {
    index: u64,
    time: i64,
    manifest: Manifest,
    portion_labels: Vec<SecurityLabel>,
}

/// Decides every acceptance of the export in `dir` (verified with `key`)
/// that passes `filter` again under `candidate`. Only the case and time
/// filters apply to acceptances; the others are ignored.
pub fn replay(
    dir: &Path,
    key: &VerifierKey,
    candidate: &Policy,
    filter: &Filter,
) -> Result<ReplayReport, ShowError> {
    let filter = Filter {
        case: filter.case.clone(),
        since: filter.since,
        until: filter.until,
        ..Filter::default()
    };
    let listing = show::show(dir, &filter, Some(key))?;
    let verified = listing.verified.as_ref();
    let mut report = ReplayReport {
        origin: verified.map(|v| v.origin.clone()).unwrap_or_default(),
        size: verified.map_or(0, |v| v.size),
        candidate: candidate.digest_hex().to_string(),
        acceptances: 0,
        decisions: 0,
        not_replayed: 0,
        last_not_replayed: None,
        changes: Vec::new(),
        groups: Vec::new(),
    };
    let mut pending: HashMap<String, Pending> = HashMap::new();
    for shown in &listing.entries {
        let Ok(entry) = &shown.entry else { continue };
        match &entry.event {
            AuditEvent::ItemAccepted {
                cases,
                label,
                sender,
                item_id,
                purpose,
                item_ref,
                outcomes,
                priority,
                portion_labels,
                ..
            } => {
                let Some(priority) = priority else {
                    report.not_replayed += 1;
                    report.last_not_replayed = Some(shown.index);
                    continue;
                };
                report.acceptances += 1;
                // Only what the engine reads is real: the header's other
                // fields and the portion digests are placeholders.
                let manifest = Manifest {
                    version: MANIFEST_VERSION,
                    header: Header {
                        id: item_id.clone(),
                        cases: cases.clone(),
                        sender: sender.clone(),
                        created: entry.time,
                        expires: None,
                        purpose: purpose.clone(),
                        request: None,
                        language: String::new(),
                        priority: *priority,
                        recipients: outcomes.iter().map(|o| o.recipient.clone()).collect(),
                        in_reply_to: None,
                    },
                    label: label.clone(),
                    portions: portion_labels.iter().map(|_| Bytes(Vec::new())).collect(),
                };
                pending.insert(
                    item_ref.clone(),
                    Pending {
                        index: shown.index,
                        time: entry.time,
                        manifest,
                        portion_labels: portion_labels.clone(),
                    },
                );
            }
            AuditEvent::Decided {
                item_ref, decision, ..
            } => {
                let Some(p) = pending.get(item_ref) else {
                    continue;
                };
                report.decisions += 1;
                let facts = ItemFacts {
                    manifest: &p.manifest,
                    portion_labels: p.portion_labels.iter().collect(),
                };
                let new = candidate.decide(&facts, &decision.recipient, p.time);
                let released_before =
                    |i: u32| decision.effect == Effect::Allow && decision.portions.contains(&i);
                let released_now = |i: u32| new.released().contains(&i);
                for i in 0..p.portion_labels.len() as u32 {
                    let direction = match (released_before(i), released_now(i)) {
                        (true, false) => Direction::AllowToDeny,
                        (false, true) => Direction::DenyToAllow,
                        _ => continue,
                    };
                    report.changes.push(Change {
                        index: p.index,
                        time: rfc3339(p.time),
                        item_ref: item_ref.clone(),
                        recipient: decision.recipient.clone(),
                        portion: i,
                        direction,
                        recorded_rules: decision.rules.clone(),
                        candidate_rules: new.rules().to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    report.groups = group(&report.changes);
    Ok(report)
}

fn group(changes: &[Change]) -> Vec<Group> {
    let mut groups: BTreeMap<(Direction, &[String], &[String]), Group> = BTreeMap::new();
    for c in changes {
        let g = groups
            .entry((c.direction, &c.recorded_rules, &c.candidate_rules))
            .or_insert_with(|| Group {
                direction: c.direction,
                recorded_rules: c.recorded_rules.clone(),
                candidate_rules: c.candidate_rules.clone(),
                portions: 0,
                items: 0,
                recipients: Vec::new(),
                examples: Vec::new(),
            });
        g.portions += 1;
        if !g.recipients.contains(&c.recipient) {
            g.recipients.push(c.recipient.clone());
        }
        if !g.examples.contains(&c.item_ref) {
            g.items += 1;
            if g.examples.len() < MAX_EXAMPLES {
                g.examples.push(c.item_ref.clone());
            }
        }
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    // The largest changes first.
    out.sort_by(|a, b| {
        b.portions
            .cmp(&a.portions)
            .then(a.direction.cmp(&b.direction))
    });
    out
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "replayed {} acceptances ({} recipient decisions) of {} (verified, {} entries) under candidate policy {}",
            self.acceptances, self.decisions, self.origin, self.size, self.candidate
        )?;
        if let Some(last) = self.last_not_replayed {
            writeln!(
                f,
                "not replayed: {} acceptances written before entry format version 2 (no priority recorded); replay is exact after entry {last}",
                self.not_replayed
            )?;
        }
        if self.changes.is_empty() {
            return writeln!(
                f,
                "no change: the candidate decides every portion as recorded"
            );
        }
        let count = |d| self.changes.iter().filter(|c| c.direction == d).count();
        writeln!(
            f,
            "{} portions would change: {} allow → deny, {} deny → allow",
            self.changes.len(),
            count(Direction::AllowToDeny),
            count(Direction::DenyToAllow)
        )?;
        let rules = |r: &[String]| {
            if r.is_empty() {
                "(none)".to_string()
            } else {
                r.join(", ")
            }
        };
        for g in &self.groups {
            writeln!(
                f,
                "\n{}: {} portions of {} items, to {}\n  recorded: {}\n  candidate: {}\n  e.g. {}",
                g.direction,
                g.portions,
                g.items,
                g.recipients
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                rules(&g.recorded_rules),
                rules(&g.candidate_rules),
                g.examples.join(" ")
            )?;
        }
        writeln!(f, "\nper recipient and portion:")?;
        for c in &self.changes {
            writeln!(
                f,
                "  {} {} entry {} {} portion {}: {}",
                c.time, c.item_ref, c.index, c.recipient, c.portion, c.direction
            )?;
        }
        Ok(())
    }
}
