//! The per-portion checks against one recipient: the built-in mandatory
//! rules (clearance, accreditation, caveats, REL TO, third-party consent),
//! and why a flow rule does or does not match an item and a portion. Each
//! answers one question and never combines answers into a decision.

use super::*;

impl Policy {
    /// The built-in checks: a bit per failure, and the consent that covered
    /// third-party material, if any.
    pub(super) fn mandatory(
        &self,
        l: &SecurityLabel,
        c: &LabelCtx,
        rcp: &Principal,
        now: i64,
    ) -> (u8, Option<u32>) {
        let mut fails = 0;
        if c.rank > rcp.clearance {
            fails |= F_CLEARANCE;
        }
        if rcp.accreditation.is_some_and(|a| c.rank > a) {
            fails |= F_ACCREDITATION;
        }
        if c.caveats & !rcp.caveat_mask != 0 {
            fails |= F_CAVEATS;
        }
        if !l.rel_to.is_empty() && !l.rel_to.contains(&rcp.agency) {
            fails |= F_REL_TO;
        }
        let mut consent = None;
        if let Some(tp) = c.third_party {
            if rcp.agency_idx != c.origin_agency {
                consent = tp.and_then(|tp| {
                    self.consents_by_tp.get(tp as usize).and_then(|list| {
                        list.iter().copied().find(|&ci| {
                            self.consents.get(ci as usize).is_some_and(|k| {
                                k.agency_idx == rcp.agency_idx
                                    && c.rank <= k.max_rank
                                    && c.handling & k.handling_mask != 0
                                    && now <= k.until_unix
                            })
                        })
                    })
                });
                if consent.is_none() {
                    fails |= F_THIRD_PARTY;
                }
            }
        }
        (fails, consent)
    }

    /// Checks a rule's item-level predicates: sender, purpose, priority,
    /// cases. They hold or fail for the whole item.
    pub(super) fn item_mismatch(
        &self,
        rule: &Rule,
        ri: u32,
        item: &ItemCtx,
        sender: &Principal,
        rcp: &Principal,
    ) -> Option<Mismatch> {
        if !bit(self.sender_row(item.sender), ri) {
            return Some(Mismatch::Sender);
        }
        let k = &rule.c;
        // A deny rule fails closed: a purpose or case the policy does not
        // know (a misspelling, another letter case) could be the one it
        // names, so it matches; a grant never matches on what it cannot know.
        let deny = rule.effect == RuleEffect::Deny;
        if let Some(m) = k.purposes {
            let hit = match item.purpose {
                Some(p) => m & (1 << p) != 0,
                None => deny,
            };
            if !hit {
                return Some(Mismatch::Purpose);
            }
        }
        if let Some(m) = k.priorities {
            if m & item.priority == 0 {
                return Some(Mismatch::Priority);
            }
        }
        if let Some(a) = rule.case_assignment {
            // The loader requires case_match with case_assignment.
            let m = rule.case_match.unwrap_or(CaseMatch::All);
            let ok = match a {
                CaseAssignment::Recipient => assigned(rcp, item, m),
                CaseAssignment::Sender => assigned(sender, item, m),
                CaseAssignment::Both => assigned(rcp, item, m) && assigned(sender, item, m),
            };
            if !ok {
                return Some(Mismatch::CaseAssignment);
            }
        }
        if let Some(cases) = &k.cases {
            // Any named case counts, so an unknown case added beside a
            // listed one cannot slip an item past a deny rule.
            let hit = item.cases.iter().any(|x| cases.binary_search(x).is_ok())
                || (deny && item.unknown_case);
            if !hit {
                return Some(Mismatch::Cases);
            }
        }
        None
    }

    /// Checks a rule's portion-level predicates: handling, level range,
    /// caveats, origin, originators, REL TO, marking.
    pub(super) fn label_mismatch(rule: &Rule, l: &SecurityLabel, c: &LabelCtx) -> Option<Mismatch> {
        let k = &rule.c;
        if let Some(m) = k.handling {
            if m & c.handling == 0 {
                return Some(Mismatch::Handling);
            }
        }
        if k.min_rank.is_some_and(|lo| c.rank < lo) {
            return Some(Mismatch::BelowMin);
        }
        if k.max_rank.is_some_and(|hi| c.rank > hi) {
            return Some(Mismatch::AboveMax);
        }
        if let Some(m) = k.caveats_any {
            if m & c.caveats == 0 {
                return Some(Mismatch::Caveats);
            }
        }
        if let Some(tp) = rule.third_party {
            if tp != c.third_party.is_some() {
                return Some(Mismatch::ThirdParty);
            }
        }
        if rule.originators.is_some() {
            let hit = k.origin_agencies.contains(&c.origin_agency)
                || match c.third_party {
                    Some(Some(t)) => k.origin_third_parties.contains(&t),
                    // A third party the policy does not know might be one a
                    // deny rule names under another spelling: fail closed.
                    Some(None) => rule.effect == RuleEffect::Deny,
                    None => false,
                };
            if !hit {
                return Some(Mismatch::Originator);
            }
        }
        if let Some((agencies, none)) = &k.rel_to {
            let hit = if l.rel_to.is_empty() {
                *none
            } else {
                agencies.iter().any(|a| l.rel_to.contains(a))
            };
            if !hit {
                return Some(Mismatch::RelTo);
            }
        }
        if rule.diffusion_restreinte.is_some_and(|m| m != c.marked) {
            return Some(Mismatch::Marking);
        }
        None
    }
}
