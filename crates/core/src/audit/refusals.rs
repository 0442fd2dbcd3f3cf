//! Refusals counted, not written one by one.
//!
//! Anyone who can open a TCP connection, and any station with a valid
//! certificate, can provoke refusals as fast as it likes. Writing each one
//! to the audit log would let it grow the log, and the work of signing it,
//! faster than the attacker spends. [`RefusalTally`] counts refusals per
//! subject (a principal, or a source address before any identity) and cause
//! during an interval; at the end of the interval the gateway writes one
//! `refused` entry per subject and cause, with the count, the first and last
//! time and a few samples (digests, references, indices: never refused
//! bytes). The number of distinct subjects per interval is capped: over the
//! cap, refusals are counted under [`RefusedSubject::Others`], so memory and
//! the number of entries per interval stay bounded whatever arrives.
//!
//! This module is data only: no I/O, no clock (times are passed in).

use std::collections::BTreeMap;

use super::event::{clip, AuditEvent, RefusedSubject, MAX_SAMPLES, MAX_SAMPLE_LEN};

/// Most distinct (address, cause) pairs counted apart in one interval.
pub const MAX_SUBJECTS: usize = 256;

/// Most distinct (principal, cause) pairs counted apart in one interval:
/// principals hold certificates of an agency CA, so there are far fewer of
/// them than addresses, and a flood of addresses must not hide which
/// station probed what.
pub const MAX_PRINCIPALS: usize = 4096;

/// Longest cause kept.
const MAX_CAUSE_LEN: usize = 64;

#[derive(Debug)]
struct Count {
    count: u64,
    first: i64,
    last: i64,
    samples: Vec<String>,
}

/// Refusals of the current interval.
#[derive(Debug, Default)]
pub struct RefusalTally {
    counts: BTreeMap<(RefusedSubject, String), Count>,
    /// Distinct (principal, cause) pairs counted apart so far.
    principals: usize,
    /// Distinct (address, cause) pairs counted apart so far.
    addresses: usize,
}

impl RefusalTally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one refusal of `subject` for `cause` at `now`, keeping
    /// `sample` (clipped) if there is room for it.
    pub fn note(&mut self, subject: RefusedSubject, cause: &str, sample: Option<&str>, now: i64) {
        let cause = clip(cause, MAX_CAUSE_LEN);
        let (cap, counted) = match subject {
            RefusedSubject::Principal(_) => (MAX_PRINCIPALS, &mut self.principals),
            _ => (MAX_SUBJECTS, &mut self.addresses),
        };
        let key = (subject, cause);
        let key = if self.counts.contains_key(&key) {
            key
        } else if *counted >= cap {
            (RefusedSubject::Others, key.1)
        } else {
            *counted += 1;
            key
        };
        let count = self.counts.entry(key).or_insert(Count {
            count: 0,
            first: now,
            last: now,
            samples: Vec::new(),
        });
        count.count = count.count.saturating_add(1);
        count.first = count.first.min(now);
        count.last = count.last.max(now);
        if let Some(sample) = sample {
            let sample = clip(sample, MAX_SAMPLE_LEN);
            if count.samples.len() < MAX_SAMPLES && !count.samples.contains(&sample) {
                count.samples.push(sample);
            }
        }
    }

    /// Whether nothing was counted since the last [`RefusalTally::drain`].
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The interval's `refused` events, one per subject and cause, in a
    /// stable order; the tally starts again empty.
    pub fn drain(&mut self) -> Vec<AuditEvent> {
        self.principals = 0;
        self.addresses = 0;
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((subject, cause), c)| AuditEvent::Refused {
                subject,
                cause,
                count: c.count,
                first: c.first,
                last: c.last,
                samples: c.samples,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{BoundedEntry, MAX_ENTRY_BYTES};
    use crate::domain::principal::PrincipalId;

    fn addr(i: usize) -> RefusedSubject {
        RefusedSubject::Address(format!("192.0.2.{}", i % 250))
    }

    #[test]
    fn a_flood_from_one_subject_is_one_entry_with_its_count() {
        let mut t = RefusalTally::new();
        for i in 0..10_000 {
            t.note(addr(1), "handshake", None, 100 + (i % 7));
        }
        let events = t.drain();
        assert_eq!(events.len(), 1);
        match &events[0] {
            AuditEvent::Refused {
                count, first, last, ..
            } => {
                assert_eq!(*count, 10_000);
                assert_eq!((*first, *last), (100, 106));
            }
            other => panic!("{other:?}"),
        }
        assert!(t.is_empty());
    }

    #[test]
    fn many_subjects_are_capped_and_counted_together() {
        let mut t = RefusalTally::new();
        for i in 0..5_000 {
            t.note(
                RefusedSubject::Address(format!("10.{}.{}.1", i / 256, i % 256)),
                "handshake",
                None,
                1,
            );
        }
        let events = t.drain();
        assert_eq!(events.len(), MAX_SUBJECTS + 1);
        let total: u64 = events
            .iter()
            .map(|e| match e {
                AuditEvent::Refused { count, .. } => *count,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 5_000);
    }

    #[test]
    fn a_flood_of_addresses_does_not_hide_which_principal_probed() {
        let mut t = RefusalTally::new();
        for i in 0..5_000 {
            t.note(
                RefusedSubject::Address(format!("10.{}.{}.1", i / 256, i % 256)),
                "handshake",
                None,
                1,
            );
        }
        let rabat = RefusedSubject::Principal(PrincipalId::new("police/lo/rabat").unwrap());
        t.note(rabat.clone(), "proof-refused", Some("7"), 2);
        let events = t.drain();
        assert!(events.iter().any(
            |e| matches!(e, AuditEvent::Refused { subject, cause, .. } if *subject == rabat && cause == "proof-refused")
        ));
    }

    #[test]
    fn samples_are_few_short_and_fit_an_entry() {
        let mut t = RefusalTally::new();
        let p = RefusedSubject::Principal(PrincipalId::new("police/lo/rabat").unwrap());
        let huge = "z".repeat(1_000_000);
        for i in 0..100 {
            t.note(p.clone(), &huge, Some(&format!("{huge}{i}")), 1);
        }
        let events = t.drain();
        assert_eq!(events.len(), 1);
        let AuditEvent::Refused { samples, cause, .. } = &events[0] else {
            panic!()
        };
        assert_eq!(samples.len(), 1, "the clipped samples are all alike");
        assert!(cause.len() <= 64);
        let entry = BoundedEntry::new(1, events[0].clone()).unwrap();
        assert!(entry.bytes().len() < MAX_ENTRY_BYTES);
    }
}
