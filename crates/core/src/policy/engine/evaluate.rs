//! The decision loop, shared by deciding and explaining: the combining
//! rule of DESIGN.md in order (recipient and sender known, labels well
//! formed and consistent, sender cleared, marking purpose, then per portion
//! the mandatory rules, deny rules, grants, default deny). It reports what
//! it sees to a [`Tracer`]; deciding passes [`NoTrace`], so the explain
//! trace costs nothing there. It never reads the clock or does I/O, and is
//! one long function on purpose: the order of its checks is the decision.

use super::explain::{PortionExplanation, Tracer};
use super::*;
use crate::domain::decision::{Decision, Effect, ItemFacts};

#[cfg(doc)]
use super::explain::NoTrace;

impl Policy {
    pub(super) fn evaluate<T: Tracer>(
        &self,
        facts: &ItemFacts<'_>,
        recipient: &PrincipalId,
        now: i64,
        trace: &mut T,
    ) -> Decision {
        let header = &facts.manifest.header;
        // The decision's combining rule, in order. Any failure before the
        // per-portion loop denies the whole item.
        let Some(&rcp_idx) = self.principal_by_id.get(recipient.as_str()) else {
            return self.deny(
                recipient,
                rule_ids::RECIPIENT_KNOWN,
                format!("{recipient} is not a principal of this policy"),
            );
        };
        let rcp = &self.principals[rcp_idx as usize];
        trace.recipient(|| {
            format!(
                "{} ({:?}, role {}), clearance {}, accreditation {}, caveats [{}], cases [{}], may_send {}, audit {}",
                rcp.id,
                rcp.kind,
                rcp.role,
                self.level_name(rcp.clearance),
                self.accreditation_name(rcp),
                rcp.caveats.join(", "),
                rcp.cases.join(", "),
                rcp.may_send,
                rcp.audit.as_str()
            )
        });
        let Some(&sender_idx) = self.principal_by_id.get(header.sender.as_str()) else {
            let d = self.deny(
                recipient,
                rule_ids::SENDER_KNOWN,
                format!("sender {} is not a principal of this policy", header.sender),
            );
            trace.item(|| d.reasons()[0].clone());
            return d;
        };
        let sender = &self.principals[sender_idx as usize];
        if !sender.may_send {
            // Not a decision rule: the gateway refuses the submission before
            // deciding anything (403 may-not-send). Said here so that an
            // officer who explains such an item is not misled.
            trace.item(|| {
                format!(
                    "sender {} may not send (may_send = false): the gateway refuses its submissions before any decision",
                    sender.id
                )
            });
        }

        // Well formed: the item label and every portion label.
        let item_label = &facts.manifest.label;
        let item_ctx = match self.label_ctx(item_label) {
            Ok(c) => c,
            Err(e) => {
                let d = self.deny(
                    recipient,
                    rule_ids::LABEL_WELL_FORMED,
                    format!("the item label is not well formed: {e}"),
                );
                trace.item(|| d.reasons()[0].clone());
                return d;
            }
        };
        if facts.portion_labels.is_empty() {
            return self.deny(
                recipient,
                rule_ids::LABEL_WELL_FORMED,
                "the item has no portions".into(),
            );
        }
        let mut portions = Vec::with_capacity(facts.portion_labels.len());
        for (i, l) in facts.portion_labels.iter().enumerate() {
            match self.label_ctx(l) {
                Ok(c) => portions.push(c),
                Err(e) => {
                    let d = self.deny(
                        recipient,
                        rule_ids::LABEL_WELL_FORMED,
                        format!("the label of portion {i} is not well formed: {e}"),
                    );
                    trace.item(|| d.reasons()[0].clone());
                    return d;
                }
            }
        }
        // Consistency: the item label dominates every portion.
        for (i, (l, c)) in facts.portion_labels.iter().zip(&portions).enumerate() {
            if let Some(why) = Self::dominance(item_label, &item_ctx, l, c) {
                let d = self.deny(
                    recipient,
                    rule_ids::LABEL_CONSISTENCY,
                    format!("the item label does not dominate portion {i}: {why}"),
                );
                trace.item(|| d.reasons()[0].clone());
                return d;
            }
        }

        // The sender must be cleared for what it sends: the item label
        // dominates every portion, so checking it covers them all. This
        // holds for every recipient alike. The personal clearance, not the
        // station accreditation: an officer abroad may report at once, at
        // the level of what he learnt, what his post may not keep (the
        // recipients' accreditation is checked as ever).
        let sender_over = item_ctx.rank > sender.clearance;
        let sender_lacks = item_ctx.caveats & !sender.caveat_mask;
        if sender_over || sender_lacks != 0 {
            let d = self.deny(
                recipient,
                rule_ids::SENDER_CLEARANCE,
                format!(
                    "the item label ({}) is above the clearance of the sender {}, or carries a caveat it does not hold: a principal sends only material within its own clearance",
                    item_label.level, sender.id
                ),
            );
            trace.item(|| {
                let mut why = Vec::new();
                if sender_over {
                    why.push(format!(
                        "item level {} is above the sender's clearance {}",
                        self.level_name(item_ctx.rank),
                        self.level_name(sender.clearance)
                    ));
                }
                if sender_lacks != 0 {
                    let missing: Vec<&str> = self
                        .caveats
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| sender_lacks & (1 << b) != 0)
                        .map(|(_, c)| c.as_str())
                        .collect();
                    why.push(format!("the sender lacks caveat(s) {}", missing.join(", ")));
                }
                format!("{} ({})", d.reasons()[0], why.join("; "))
            });
            return d;
        }

        let purpose = self.purpose_by_name.get(&header.purpose).copied();
        // Purpose-bound material: the item label carries the marking when
        // any portion does (consistency above), and the flow's purpose must
        // be one the marking is bound to, whatever the recipient.
        if item_label.diffusion_restreinte {
            let mask = self
                .diffusion_restreinte
                .and_then(|i| self.markings.get(i))
                .map(|m| m.purpose_mask)
                .unwrap_or(0);
            if !purpose.is_some_and(|p| mask & (1 << p) != 0) {
                let bound = self
                    .diffusion_restreinte
                    .and_then(|i| self.markings.get(i))
                    .map(|m| m.purposes.join(", "))
                    .unwrap_or_default();
                let d = self.deny(
                    recipient,
                    rule_ids::MARKING_PURPOSE,
                    format!(
                        "the item is marked Diffusion restreinte, bound to the purposes {bound}; this flow's purpose {:?} is not one of them",
                        header.purpose
                    ),
                );
                trace.item(|| d.reasons()[0].clone());
                return d;
            }
        }

        let mut unknown_case = false;
        let mut cases: Vec<u32> = header
            .cases
            .iter()
            .filter_map(|c| {
                let id = self.case_index(c);
                if id.is_none() {
                    unknown_case = true;
                    trace.item(|| {
                        format!(
                            "case {c:?} is not declared by the policy: no grant matches on it, and no one is assigned to it (a deny rule with `cases` matches it, failing closed)"
                        )
                    });
                }
                id
            })
            .collect();
        cases.sort_unstable();
        cases.dedup();
        let ctx = ItemCtx {
            sender: sender_idx,
            purpose,
            priority: priority_bit(header.priority),
            cases,
            unknown_case,
        };
        let candidates = &self.rules_by_recipient[rcp_idx as usize];
        // Item-level predicates (sender, purpose, priority, cases) hold or
        // fail for the whole item: when deciding, test them once and keep
        // only the rules left, so each portion checks its own predicates
        // only; when explaining, every candidate is reported per portion.
        let item_matches: Vec<u32> = if !T::EXPLAINS {
            candidates
                .iter()
                .copied()
                .filter(|&ri| {
                    self.item_mismatch(&self.rules[ri as usize], ri, &ctx, sender, rcp)
                        .is_none()
                })
                .collect()
        } else {
            Vec::new()
        };

        let n = facts.portion_labels.len();
        let mut released = Vec::with_capacity(n);
        let mut rules: Vec<String> = Vec::with_capacity(n + 1);
        let mut reasons: Vec<String> = Vec::with_capacity(n + 1);
        // Which rule ids are already named: built-in ones by bit, flow rules
        // in a bit set over rule indices (allocated on first use).
        let mut named_builtin: u16 = 0;
        let mut named_rules: Vec<u64> = Vec::new();
        let mut name_rule = |rules: &mut Vec<String>, ri: u32| {
            if named_rules.is_empty() {
                named_rules = vec![0; self.rule_words];
            }
            let (w, b) = ((ri / 64) as usize, 1u64 << (ri % 64));
            if let Some(word) = named_rules.get_mut(w) {
                if *word & b == 0 {
                    *word |= b;
                    rules.push(self.rules[ri as usize].id.clone());
                }
            }
        };
        let mut name_builtin = |rules: &mut Vec<String>, bit: u16, id: &str| {
            if named_builtin & bit == 0 {
                named_builtin |= bit;
                rules.push(id.to_string());
            }
        };
        for (i, (l, c)) in facts.portion_labels.iter().zip(&portions).enumerate() {
            let i32 = i as u32;
            let lvl = &l.level;
            let (fails, consent) = self.mandatory(l, c, rcp, now);
            trace.portion(|| {
                let mut p = PortionExplanation {
                    index: i32,
                    level: lvl.clone(),
                    released: false,
                    checks: Vec::new(),
                    rules: Vec::new(),
                };
                self.trace_checks(&mut p, l, c, rcp, fails, consent, now);
                p
            });
            if fails != 0 {
                for (flag, id, why) in [
                    (F_CLEARANCE, rule_ids::CLEARANCE, "the recipient's clearance does not cover this level"),
                    (F_ACCREDITATION, rule_ids::ACCREDITATION, "the recipient's station accreditation does not cover this level"),
                    (F_CAVEATS, rule_ids::CAVEATS, "the recipient does not hold every caveat of this portion"),
                    (F_REL_TO, rule_ids::REL_TO, "the recipient's agency is not in the portion's REL TO"),
                    (
                        F_THIRD_PARTY,
                        rule_ids::THIRD_PARTY,
                        "third-party material: no recorded, unexpired consent of the originator covers release to the recipient's agency at this level with this handling code",
                    ),
                ] {
                    if fails & flag != 0 {
                        name_builtin(&mut rules, u16::from(flag), id);
                        reasons.push(format!("portion {i} ({lvl}) withheld: {why}"));
                    }
                }
            } else {
                let mut denied_by: Option<u32> = None;
                let mut granted: Vec<u32> = Vec::new();
                // One loop for deciding and explaining. Deciding walks the
                // rules the item-level predicates left and stops at the
                // first matching deny (denies come first); explaining walks
                // every rule that selects the recipient and reports each.
                let walked: &[u32] = if T::EXPLAINS {
                    candidates
                } else {
                    &item_matches
                };
                for &ri in walked {
                    let rule = &self.rules[ri as usize];
                    let mm = if T::EXPLAINS {
                        self.item_mismatch(rule, ri, &ctx, sender, rcp)
                    } else {
                        None
                    }
                    .or_else(|| Self::label_mismatch(rule, l, c));
                    trace.rule(rule, mm);
                    if mm.is_none() {
                        match rule.effect {
                            RuleEffect::Deny => {
                                denied_by = denied_by.or(Some(ri));
                                // The first matching deny settles it.
                                if !T::EXPLAINS {
                                    break;
                                }
                            }
                            RuleEffect::Grant => granted.push(ri),
                        }
                    }
                }
                match (denied_by, granted.is_empty()) {
                    // Any matching deny rule withholds the portion, whatever
                    // grants say.
                    (Some(ri), _) => {
                        let rule = &self.rules[ri as usize];
                        name_rule(&mut rules, ri);
                        let what = rule.description.as_deref().unwrap_or("explicit deny rule");
                        reasons.push(format!(
                            "portion {i} ({lvl}) withheld by rule {}: {what}",
                            rule.id
                        ));
                    }
                    // No grant: deny by default.
                    (None, true) => {
                        name_builtin(&mut rules, 1 << 8, rule_ids::DEFAULT_DENY);
                        reasons.push(format!(
                            "portion {i} ({lvl}) withheld: no flow rule grants {} → {} for this item",
                            header.sender, recipient
                        ));
                    }
                    // Mandatory rules passed, no deny, at least one grant.
                    (None, false) => {
                        released.push(i32);
                        let mut reason = format!("portion {i} ({lvl}) released under ");
                        let shown = granted.len().min(MAX_RULES_IN_REASON);
                        for (k, &ri) in granted.iter().enumerate() {
                            name_rule(&mut rules, ri);
                            if k < shown {
                                if k > 0 {
                                    reason.push_str(", ");
                                }
                                reason.push_str(&self.rules[ri as usize].id);
                            }
                        }
                        if granted.len() > shown {
                            reason.push_str(&format!(" and {} more", granted.len() - shown));
                        }
                        reasons.push(reason);
                        trace.released();
                    }
                }
            }
        }
        let effect = if released.is_empty() {
            reasons.push("no portion of the item may be released to this recipient".into());
            Effect::Deny
        } else {
            Effect::Allow
        };
        Decision::new(
            recipient.clone(),
            effect,
            released,
            rules,
            reasons,
            self.digest_hex.clone(),
        )
    }
}
