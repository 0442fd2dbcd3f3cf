//! The figures of the auditor's report, computed from verified entries.
//!
//! This module owns what the report counts and how: the flow matrix (each
//! recipient's decision at acceptance, between agencies and between
//! principals: released, partially released, denied), denials over time by
//! the kind of rule that withheld (a mandatory rule, a deny rule, no grant,
//! the third-party rule), the time from acceptance to each delivery per
//! priority, refused connections over time by cause, and per case who
//! received what. The filter of `audit show` picks the entries that are
//! counted; every entry (filtered or not) gives the context a counted one
//! needs, such as the sender and priority of the item a delivery is of. It
//! is pure: it never reads files or the clock, never renders, and never
//! decides whether an entry is authentic (the caller verified the export).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::audit::event::{AuditEntry, AuditEvent, RecordedDecision, RefusedSubject};
use crate::auditor::show::{self, Filter, Shown};
use crate::domain::decision::{Effect, DEFAULT_DENY_RULE, MANDATORY_RULE_PREFIX, THIRD_PARTY_RULE};
use crate::domain::item::Priority;

/// The one-hour target for FLASH items, from acceptance to delivery.
pub const FLASH_TARGET_SECONDS: i64 = 3600;

/// Most buckets on a time axis: enough to see a trend, few enough to read.
const MAX_BUCKETS: i64 = 40;

/// Bucket widths a time axis may use, in seconds: the smallest that keeps
/// the span within [`MAX_BUCKETS`] is taken.
const BUCKET_WIDTHS: [i64; 13] = [
    1,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    6 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
    365 * 86_400,
];

/// Why a recipient did not get (all of) an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DenialReason {
    /// A built-in mandatory rule other than the third-party one
    /// (clearance, accreditation, caveats, REL TO, labels, ...).
    Mandatory,
    /// A deny rule of the policy.
    DenyRule,
    /// No grant matched: denied by default.
    NoGrant,
    /// Third-party material without the originator's consent.
    ThirdParty,
}

impl DenialReason {
    /// Every reason, in the order the report shows them.
    pub const ALL: [DenialReason; 4] = [
        DenialReason::Mandatory,
        DenialReason::DenyRule,
        DenialReason::NoGrant,
        DenialReason::ThirdParty,
    ];

    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            DenialReason::Mandatory => "mandatory rule",
            DenialReason::DenyRule => "deny rule",
            DenialReason::NoGrant => "no grant",
            DenialReason::ThirdParty => "third-party rule",
        }
    }

    /// The reasons a decision that withheld something was taken for. A
    /// decision may withhold portions for several reasons; each counts
    /// once.
    pub fn of(decision: &RecordedDecision) -> BTreeSet<DenialReason> {
        let mut out = BTreeSet::new();
        for rule in &decision.rules {
            if rule == THIRD_PARTY_RULE {
                out.insert(DenialReason::ThirdParty);
            } else if rule.starts_with(MANDATORY_RULE_PREFIX) {
                out.insert(DenialReason::Mandatory);
            } else if rule == DEFAULT_DENY_RULE {
                out.insert(DenialReason::NoGrant);
            }
        }
        if !deny_rules(decision).is_empty() {
            out.insert(DenialReason::DenyRule);
        }
        out
    }
}

/// The policy's deny rules that withheld something in `decision`. A rule
/// id other than a built-in one names a deny rule when the decision
/// released nothing (grants are then not named), or when a reason says the
/// rule withheld a portion (a partial release names its grants too).
pub fn deny_rules(decision: &RecordedDecision) -> Vec<&str> {
    decision
        .rules
        .iter()
        .filter(|rule| !rule.starts_with(MANDATORY_RULE_PREFIX) && *rule != DEFAULT_DENY_RULE)
        .filter(|rule| {
            decision.effect == Effect::Deny
                || decision
                    .reasons
                    .iter()
                    .any(|r| r.contains(&format!("withheld by rule {rule}:")))
        })
        .map(String::as_str)
        .collect()
}

/// Items released, partially released and denied, for one flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCount {
    /// Every portion released.
    pub released: u64,
    /// Some portions released, some withheld.
    pub partial: u64,
    /// Nothing released.
    pub denied: u64,
}

impl FlowCount {
    /// Every decision counted.
    pub fn total(&self) -> u64 {
        self.released + self.partial + self.denied
    }
}

/// Equal time buckets from `start`, `width` seconds each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeAxis {
    /// The first bucket's start, Unix seconds.
    pub start: i64,
    /// Seconds per bucket.
    pub width: i64,
    /// How many buckets.
    pub buckets: usize,
}

impl TimeAxis {
    /// The axis over `[first, last]`, in the smallest width that keeps it
    /// within [`MAX_BUCKETS`], aligned on that width.
    pub fn over(first: i64, last: i64) -> TimeAxis {
        let last = last.max(first);
        let width = BUCKET_WIDTHS
            .iter()
            .copied()
            .find(|w| last.div_euclid(*w) - first.div_euclid(*w) < MAX_BUCKETS)
            .unwrap_or(BUCKET_WIDTHS[BUCKET_WIDTHS.len() - 1]);
        let start = first.div_euclid(width) * width;
        let buckets = (last.div_euclid(width) - first.div_euclid(width) + 1).max(1);
        TimeAxis {
            start,
            width,
            buckets: usize::try_from(buckets).unwrap_or(1),
        }
    }

    /// The bucket holding `time`, if it is on the axis.
    pub fn bucket(&self, time: i64) -> Option<usize> {
        let i = usize::try_from((time - self.start).div_euclid(self.width)).ok()?;
        (i < self.buckets).then_some(i)
    }
}

/// One delivery, timed from the item's acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// The item's reference.
    pub item_ref: String,
    /// The recipient.
    pub recipient: String,
    /// Seconds from acceptance to delivery.
    pub seconds: i64,
}

/// Acceptance to delivery for the items of one priority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeliness {
    /// Each delivery, in log order.
    pub delivered: Vec<Timed>,
    /// Recipients the acceptance released something to that no delivery
    /// on the log reached yet.
    pub waiting: u64,
}

impl Timeliness {
    /// Deliveries later than `target` seconds after acceptance.
    pub fn late(&self, target: i64) -> usize {
        self.delivered.iter().filter(|t| t.seconds > target).count()
    }

    /// The median and the longest time, when anything was delivered.
    pub fn median_max(&self) -> Option<(i64, i64)> {
        let mut s: Vec<i64> = self.delivered.iter().map(|t| t.seconds).collect();
        s.sort_unstable();
        Some((*s.get(s.len() / 2)?, *s.last()?))
    }
}

/// What one recipient received of one item of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// When it was delivered, Unix seconds.
    pub time: i64,
    /// The item's reference.
    pub item_ref: String,
    /// The sender.
    pub sender: String,
    /// The recipient.
    pub recipient: String,
    /// Portions released to the recipient.
    pub portions: usize,
    /// Portions the item has, when its acceptance is on the log.
    pub of: Option<usize>,
}

/// Everything the report shows, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries on the log.
    pub total: u64,
    /// Entries the filter kept.
    pub counted: u64,
    /// The time of the first and last entry kept.
    pub span: Option<(i64, i64)>,
    /// Decisions at acceptance, from the sender's agency to the recipient's.
    pub agency_flows: BTreeMap<(String, String), FlowCount>,
    /// Decisions at acceptance, from sender to recipient.
    pub principal_flows: BTreeMap<(String, String), FlowCount>,
    /// Decisions that withheld something (at acceptance or at delivery),
    /// with their time.
    pub denials: Vec<(i64, BTreeSet<DenialReason>)>,
    /// Acceptance to delivery, per priority name (`FLASH`, `URGENT`,
    /// `ROUTINE`, or `unknown` for entries that did not record it).
    pub timeliness: BTreeMap<&'static str, Timeliness>,
    /// How many decisions each deny rule of the policy withheld in.
    pub deny_rules: BTreeMap<String, u64>,
    /// Refused connections (handshakes and identities): time, cause, count.
    pub refused_connections: Vec<(i64, String, u64)>,
    /// Per case, each delivery of its items.
    pub cases: BTreeMap<String, Vec<Received>>,
}

/// The priority's name, as the report shows it.
pub fn priority_name(p: Option<Priority>) -> &'static str {
    match p {
        Some(Priority::Flash) => "FLASH",
        Some(Priority::Urgent) => "URGENT",
        Some(Priority::Routine) => "ROUTINE",
        None => "unknown",
    }
}

/// Whether a `refused` entry counts refused connections: a handshake or an
/// identity refused, or anything refused before an identity was known.
fn is_connection_refusal(subject: &RefusedSubject, cause: &str) -> bool {
    matches!(subject, RefusedSubject::Address(_))
        || cause.starts_with("handshake")
        || cause.starts_with("identity")
}

/// What an acceptance tells about its item, for the entries that follow.
struct Accepted<'e> {
    time: i64,
    sender: &'e str,
    portions: usize,
    priority: Option<Priority>,
    cases: &'e [String],
}

/// Counts the entries that pass `filter`, with every entry as context.
pub fn summarize(entries: &[Shown], filter: &Filter) -> Summary {
    let mut accepted: HashMap<&str, Accepted<'_>> = HashMap::new();
    let mut delivered: BTreeSet<(&str, &str)> = BTreeSet::new();
    for shown in entries {
        let Ok(entry) = &shown.entry else { continue };
        match &entry.event {
            AuditEvent::ItemAccepted {
                item_ref,
                sender,
                portion_labels,
                priority,
                cases,
                ..
            } => {
                accepted.insert(
                    item_ref,
                    Accepted {
                        time: entry.time,
                        sender: sender.as_str(),
                        portions: portion_labels.len(),
                        priority: *priority,
                        cases,
                    },
                );
            }
            AuditEvent::Delivered {
                item_ref, decision, ..
            } => {
                delivered.insert((item_ref, decision.recipient.as_str()));
            }
            _ => {}
        }
    }

    let kept = show::select(entries.to_vec(), filter);
    let mut s = Summary {
        total: entries.len() as u64,
        counted: kept.len() as u64,
        ..Summary::default()
    };
    let mut first_delivery: BTreeSet<(String, String)> = BTreeSet::new();
    for shown in &kept {
        let Ok(entry) = &shown.entry else { continue };
        s.span = Some(match s.span {
            None => (entry.time, entry.time),
            Some((a, b)) => (a.min(entry.time), b.max(entry.time)),
        });
        count_entry(&mut s, entry, &accepted, &delivered, &mut first_delivery);
    }
    s
}

fn count_entry(
    s: &mut Summary,
    entry: &AuditEntry,
    accepted: &HashMap<&str, Accepted<'_>>,
    delivered: &BTreeSet<(&str, &str)>,
    first_delivery: &mut BTreeSet<(String, String)>,
) {
    match &entry.event {
        AuditEvent::Decided {
            item_ref, decision, ..
        } => {
            let item = accepted.get(item_ref.as_str());
            let sender = item.map_or("unknown/sender", |a| a.sender);
            let released = decision.portions.len();
            let whole = item.map_or(released, |a| a.portions);
            let count = |f: &mut FlowCount| match decision.effect {
                Effect::Deny => f.denied += 1,
                Effect::Allow if released < whole => f.partial += 1,
                Effect::Allow => f.released += 1,
            };
            let recipient = decision.recipient.as_str();
            count(
                s.principal_flows
                    .entry((sender.to_string(), recipient.to_string()))
                    .or_default(),
            );
            count(
                s.agency_flows
                    .entry((
                        agency_of(sender),
                        decision.recipient.agency().as_str().into(),
                    ))
                    .or_default(),
            );
            s.count_denial(entry.time, decision);
            if decision.effect == Effect::Allow && !delivered.contains(&(item_ref, recipient)) {
                let p = priority_name(item.and_then(|a| a.priority));
                s.timeliness.entry(p).or_default().waiting += 1;
            }
        }
        AuditEvent::DeliveryRefused { decision, .. } => s.count_denial(entry.time, decision),
        AuditEvent::Delivered {
            item_ref,
            sender,
            decision,
            ..
        } => {
            let recipient = decision.recipient.as_str();
            // An item offered again after a dropped link is delivered again:
            // its time to delivery is the first one's.
            if !first_delivery.insert((item_ref.clone(), recipient.to_string())) {
                return;
            }
            let item = accepted.get(item_ref.as_str());
            if let Some(a) = item {
                s.timeliness
                    .entry(priority_name(a.priority))
                    .or_default()
                    .delivered
                    .push(Timed {
                        item_ref: item_ref.clone(),
                        recipient: recipient.to_string(),
                        seconds: entry.time - a.time,
                    });
            }
            for case in item.map_or(&[][..], |a| a.cases) {
                s.cases.entry(case.clone()).or_default().push(Received {
                    time: entry.time,
                    item_ref: item_ref.clone(),
                    sender: sender.as_str().to_string(),
                    recipient: recipient.to_string(),
                    portions: decision.portions.len(),
                    of: item.map(|a| a.portions),
                });
            }
        }
        AuditEvent::Refused {
            subject,
            cause,
            count,
            last,
            ..
        } if is_connection_refusal(subject, cause) => {
            s.refused_connections.push((*last, cause.clone(), *count));
        }
        _ => {}
    }
}

fn agency_of(principal: &str) -> String {
    principal.split('/').next().unwrap_or(principal).to_string()
}

impl Summary {
    /// Counts `decision` among the denials when it withheld something
    /// (only then does it name a reason).
    fn count_denial(&mut self, time: i64, decision: &RecordedDecision) {
        let reasons = DenialReason::of(decision);
        if reasons.is_empty() {
            return;
        }
        for rule in deny_rules(decision) {
            *self.deny_rules.entry(rule.to_string()).or_default() += 1;
        }
        self.denials.push((time, reasons));
    }

    /// The time axis of the report's charts.
    pub fn axis(&self) -> Option<TimeAxis> {
        self.span.map(|(a, b)| TimeAxis::over(a, b))
    }

    /// Denials per bucket of `axis`, one count per reason (in
    /// [`DenialReason::ALL`] order).
    pub fn denials_over(&self, axis: &TimeAxis) -> Vec<[u64; 4]> {
        let mut out = vec![[0u64; 4]; axis.buckets];
        for (time, reasons) in &self.denials {
            let Some(b) = axis.bucket(*time).and_then(|i| out.get_mut(i)) else {
                continue;
            };
            for (slot, reason) in DenialReason::ALL.iter().enumerate() {
                if reasons.contains(reason) {
                    b[slot] += 1;
                }
            }
        }
        out
    }

    /// Refused connections per bucket of `axis`, per cause.
    pub fn refusals_over(&self, axis: &TimeAxis) -> BTreeMap<String, Vec<u64>> {
        let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (time, cause, count) in &self.refused_connections {
            let series = out
                .entry(cause.clone())
                .or_insert_with(|| vec![0; axis.buckets]);
            if let Some(b) = axis.bucket(*time).and_then(|i| series.get_mut(i)) {
                *b += count;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
