//! The `[[grant]]` and `[[deny]]` rules: each one's selectors resolved
//! to bit sets of principals, its conditions to masks and ranks, and the
//! checks that refuse a rule that can never match. Then the indices the
//! engine walks: rules by recipient (denies first) and by sender. It never
//! decides.

use std::collections::BTreeSet;
use std::ops::Range;

use super::agencies::Agencies;
use super::names::Names;
use super::principals::Principals;
use super::scheme::Scheme;
use super::third_parties::ThirdParties;
use super::*;

/// A compiled rule with the principals it selects as recipients and as
/// senders (bit sets indexed like the principals).
pub(super) type Selected = (Rule, Vec<u64>, Vec<u64>);

/// The rules in id order and the engine's indices over them.
pub(super) struct Rules {
    pub(super) rules: Vec<Rule>,
    pub(super) rules_by_recipient: Vec<Vec<u32>>,
    pub(super) rule_words: usize,
    pub(super) rules_by_sender: Vec<u64>,
}

/// Compiles every rule; a rule with a problem is reported and left out.
pub(super) fn compile(
    rules: &mut [Located<(RuleEffect, RawRule)>],
    scheme: &Scheme,
    names: &Names,
    agencies: &Agencies,
    principals: &Principals,
    third: &ThirdParties,
    r: &mut Reporter,
) -> Vec<Selected> {
    let compiled_levels = &scheme.levels;
    let level = |name: &S<String>, what: &str, file: usize, r: &mut Reporter| {
        scheme.level(name, what, file, r)
    };
    let Names {
        caveat_by_name,
        purpose_by_name,
        dr_marking,
        case_by_id,
        ..
    } = names;
    let Agencies {
        bindings,
        agency_by_name,
    } = agencies;
    let compiled_principals = &principals.compiled;
    let principal_by_id = &principals.by_id;
    let tp_by_id = &third.tp_by_id;
    let roles: BTreeSet<&str> = compiled_principals
        .iter()
        .map(|p| p.role.as_str())
        .collect();
    // --- rules ---------------------------------------------------------
    let n = compiled_principals.len();
    let mut compiled_rules: Vec<(Rule, Vec<u64>, Vec<u64>)> = Vec::new();
    let mut rule_first: HashMap<String, (usize, Range<usize>)> = HashMap::default();
    rules.sort_by_key(|l| (l.file, l.span.start));
    for l in rules.iter() {
        let (effect, v) = (&l.value.0, &l.value.1);
        let f = l.file;
        let id = v.id.get_ref();
        if !valid_name(id, 128) || id.contains(char::is_whitespace) {
            r.at(
                f,
                v.id.span(),
                "a rule id must be 1-128 characters without spaces",
            );
            continue;
        }
        if id.starts_with("mandatory.") || id.starts_with("default.") {
            r.at(
                f,
                v.id.span(),
                format!("rule id {id:?} uses a reserved prefix (mandatory., default.)"),
            );
            continue;
        }
        if let Some((ff, fs)) = rule_first.get(id) {
            let first = r.location(*ff, fs);
            r.at(
                f,
                v.id.span(),
                format!("duplicate rule id {id:?} (first declared at {first})"),
            );
            continue;
        }
        rule_first.insert(id.clone(), (f, v.id.span()));
        let before = r.diags.len();
        let selector = |sel: &S<RawSelector>,
                        side: &str,
                        r: &mut Reporter|
         -> (Selector, Vec<u64>) {
            let s = sel.get_ref();
            for a in &s.agencies {
                if !agency_by_name.contains_key(a.get_ref()) {
                    r.at(
                        f,
                        a.span(),
                        format!("rule {id:?}: unknown agency {:?} in `{side}`", a.get_ref()),
                    );
                }
            }
            for ro in &s.roles {
                if !roles.contains(ro.get_ref().as_str()) {
                    r.at(
                        f,
                        ro.span(),
                        format!(
                            "rule {id:?}: no principal has role {:?} (in `{side}`)",
                            ro.get_ref()
                        ),
                    );
                }
            }
            for p in &s.principals {
                if !principal_by_id.contains_key(p.get_ref()) {
                    r.at(
                        f,
                        p.span(),
                        format!(
                            "rule {id:?}: unknown principal {:?} in `{side}`",
                            p.get_ref()
                        ),
                    );
                }
            }
            let mut set = vec![0u64; n.div_ceil(64)];
            let mut any = false;
            for (i, p) in compiled_principals.iter().enumerate() {
                let ok = (s.agencies.is_empty()
                    || s.agencies.iter().any(|a| a.get_ref() == p.agency.as_str()))
                    && (s.roles.is_empty() || s.roles.iter().any(|x| *x.get_ref() == p.role))
                    && (s.principals.is_empty()
                        || s.principals.iter().any(|x| x.get_ref() == p.id.as_str()));
                if ok {
                    set[i / 64] |= 1 << (i % 64);
                    any = true;
                }
            }
            let strs =
                |v: &Vec<S<String>>| v.iter().map(|x| x.get_ref().clone()).collect::<Vec<_>>();
            let compiled = Selector {
                agencies: strs(&s.agencies),
                roles: strs(&s.roles),
                principals: strs(&s.principals),
            };
            if !any {
                r.at(
                    f,
                    sel.span(),
                    format!("rule {id:?} can never match: no declared principal matches `{side}`"),
                );
            }
            (compiled, set)
        };
        let (from, senders) = selector(&v.from, "from", r);
        let selects_some = senders.iter().any(|w| *w != 0);
        let selects_a_sender = compiled_principals
            .iter()
            .enumerate()
            .any(|(i, p)| p.may_send && bit(&senders, i as u32));
        if *effect == RuleEffect::Grant && selects_some && !selects_a_sender {
            r.at(
                    f,
                    v.from.span(),
                    format!(
                        "rule {id:?} can never match: no principal it selects in `from` may send (may_send = false)"
                    ),
                );
        }
        let (to, recipients) = selector(&v.to, "to", r);

        let nonempty = |list: &S<Vec<S<String>>>, what: &str, r: &mut Reporter| {
            if list.get_ref().is_empty() {
                r.at(
                    f,
                    list.span(),
                    format!("rule {id:?} can never match: `{what}` is an empty list"),
                );
            }
        };
        let mut c = CompiledRule::default();
        if let Some(ps) = &v.purposes {
            nonempty(ps, "purposes", r);
            let mut m: Mask = 0;
            for p in ps.get_ref() {
                match purpose_by_name.get(p.get_ref()) {
                    Some(&b) => m |= 1 << b,
                    None => r.at(
                        f,
                        p.span(),
                        format!("rule {id:?}: unknown purpose {:?}", p.get_ref()),
                    ),
                }
            }
            c.purposes = Some(m);
        }
        if let Some(ps) = &v.priorities {
            nonempty(ps, "priorities", r);
            let mut m = 0u8;
            for p in ps.get_ref() {
                match p.get_ref().as_str() {
                    "FLASH" => m |= 1,
                    "URGENT" => m |= 2,
                    "ROUTINE" => m |= 4,
                    other => r.at(
                        f,
                        p.span(),
                        format!("rule {id:?}: priority {other:?} is not FLASH, URGENT or ROUTINE"),
                    ),
                }
            }
            c.priorities = Some(m);
        }
        if let Some(hs) = &v.handling {
            nonempty(hs, "handling", r);
            let mut m = 0u8;
            for h in hs.get_ref() {
                if h.get_ref() == "none" {
                    m |= 1 << 4;
                } else if let Some(b) = handling_bit(h.get_ref()) {
                    m |= b;
                } else {
                    r.at(
                        f,
                        h.span(),
                        format!(
                            "rule {id:?}: handling {:?} is not H0, H1, H2, H3 or none",
                            h.get_ref()
                        ),
                    );
                }
            }
            c.handling = Some(m);
        }
        c.min_rank = v
            .min_level
            .as_ref()
            .and_then(|x| level(x, "min_level", f, r));
        c.max_rank = v
            .max_level
            .as_ref()
            .and_then(|x| level(x, "max_level", f, r));
        if let (Some(lo), Some(hi)) = (c.min_rank, c.max_rank) {
            if lo > hi {
                r.at(
                    f,
                    l.span.clone(),
                    format!("rule {id:?} can never match: min_level is above max_level"),
                );
            }
        }
        if let Some(cs) = &v.caveats_any {
            nonempty(cs, "caveats_any", r);
            let mut m: Mask = 0;
            for cv in cs.get_ref() {
                match caveat_by_name.get(cv.get_ref()) {
                    Some(&b) => m |= 1 << b,
                    None => r.at(
                        f,
                        cv.span(),
                        format!("rule {id:?}: unknown caveat {:?}", cv.get_ref()),
                    ),
                }
            }
            c.caveats_any = Some(m);
        }
        let case_assignment = match &v.case_assignment {
            None => None,
            Some(s) => match s.get_ref().as_str() {
                "recipient" => Some(CaseAssignment::Recipient),
                "sender" => Some(CaseAssignment::Sender),
                "both" => Some(CaseAssignment::Both),
                other => {
                    r.at(f, s.span(), format!("rule {id:?}: case_assignment {other:?} is not recipient, sender or both"));
                    None
                }
            },
        };
        // Both readings of "for a case of the recipient" are
        // legitimate, so the rule must say which one it means.
        let case_match = match (&v.case_assignment, &v.case_match) {
            (_, Some(m)) if !matches!(m.get_ref().as_str(), "all" | "any") => {
                r.at(
                    f,
                    m.span(),
                    format!(
                        "rule {id:?}: case_match {:?} is not all or any",
                        m.get_ref()
                    ),
                );
                None
            }
            (None, Some(m)) => {
                r.at(
                        f,
                        m.span(),
                        format!("rule {id:?}: case_match without case_assignment says nothing; add case_assignment"),
                    );
                None
            }
            (Some(a), None) => {
                r.at(
                        f,
                        a.span(),
                        format!("rule {id:?}: case_assignment needs case_match = \"all\" (assigned to every case the item names) or \"any\" (to at least one of them)"),
                    );
                None
            }
            (Some(_), Some(m)) if m.get_ref() == "any" => Some(CaseMatch::Any),
            (Some(_), Some(_)) => Some(CaseMatch::All),
            (None, None) => None,
        };
        if let Some(os) = &v.originators {
            nonempty(os, "originators", r);
            for o in os.get_ref() {
                if let Some(&ai) = agency_by_name.get(o.get_ref()) {
                    c.origin_agencies.push(ai);
                } else if let Some(&ti) = tp_by_id.get(o.get_ref()) {
                    c.origin_third_parties.push(ti);
                } else {
                    r.at(
                            f,
                            o.span(),
                            format!(
                                "rule {id:?}: originator {:?} is neither an agency nor a declared third party",
                                o.get_ref()
                            ),
                        );
                }
            }
        }
        if let Some(rs) = &v.rel_to {
            nonempty(rs, "rel_to", r);
            let mut ags = Vec::new();
            let mut none = false;
            for a in rs.get_ref() {
                if a.get_ref() == "none" {
                    none = true;
                } else if let Some(&ai) = agency_by_name.get(a.get_ref()) {
                    ags.push(bindings[ai as usize].agency.clone());
                } else {
                    r.at(
                        f,
                        a.span(),
                        format!(
                            "rule {id:?}: rel_to {:?} is not an agency (or \"none\": no REL TO)",
                            a.get_ref()
                        ),
                    );
                }
            }
            c.rel_to = Some((ags, none));
        }
        if v.diffusion_restreinte == Some(true) && dr_marking.is_none() {
            r.at(
                    f,
                    l.span.clone(),
                    format!("rule {id:?} can never match: no label may carry Diffusion restreinte until the policy declares the [[marking]] {DIFFUSION_RESTREINTE:?}"),
                );
        }
        if let Some(cs) = &v.cases {
            nonempty(cs, "cases", r);
            let mut ids = Vec::new();
            for cv in cs.get_ref() {
                match case_by_id.get(&normalize_case(cv.get_ref())) {
                    Some(&ci) => ids.push(ci),
                    None => r.at(
                        f,
                        cv.span(),
                        format!("rule {id:?}: unknown case {:?}", cv.get_ref()),
                    ),
                }
            }
            ids.sort_unstable();
            ids.dedup();
            c.cases = Some(ids);
        }
        // A grant for levels no matched recipient may ever hold releases nothing.
        if *effect == RuleEffect::Grant {
            if let Some(lo) = c.min_rank {
                let top = compiled_principals
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bit(&recipients, *i as u32))
                    .map(|(_, p)| p.ceiling())
                    .max();
                if top.is_some_and(|t| t < lo) {
                    r.at(
                            f,
                            l.span.clone(),
                            format!("rule {id:?} can never release anything: min_level is above the ceiling of every recipient it selects"),
                        );
                }
            }
        }
        if r.diags.len() != before {
            continue;
        }
        let names = |o: &Option<S<Vec<S<String>>>>| {
            o.as_ref().map(|v| {
                v.get_ref()
                    .iter()
                    .map(|x| x.get_ref().clone())
                    .collect::<Vec<_>>()
            })
        };
        compiled_rules.push((
            Rule {
                id: id.clone(),
                effect: *effect,
                description: v.description.clone(),
                from,
                to,
                purposes: names(&v.purposes),
                priorities: names(&v.priorities),
                handling: names(&v.handling),
                min_level: c.min_rank.map(|x| compiled_levels[x as usize].id.clone()),
                max_level: c.max_rank.map(|x| compiled_levels[x as usize].id.clone()),
                caveats_any: names(&v.caveats_any),
                third_party: v.third_party,
                case_assignment,
                case_match,
                cases: names(&v.cases),
                originators: names(&v.originators),
                rel_to: names(&v.rel_to),
                diffusion_restreinte: v.diffusion_restreinte,
                c,
            },
            recipients,
            senders,
        ));
    }
    compiled_rules
}

/// Sorts the rules by id and builds the engine's indices: for each
/// recipient, the rules that select it (denies first); for each sender, a
/// bit set of the rules that select it.
pub(super) fn index(mut compiled_rules: Vec<Selected>, n: usize) -> Rules {
    compiled_rules.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let rule_words = compiled_rules.len().div_ceil(64);
    let mut rules_by_sender = vec![0u64; n * rule_words];
    for (ri, (_, _, senders)) in compiled_rules.iter().enumerate() {
        for pi in 0..n {
            if bit(senders, pi as u32) {
                rules_by_sender[pi * rule_words + ri / 64] |= 1 << (ri % 64);
            }
        }
    }
    let mut rules_by_recipient: Vec<Vec<u32>> = vec![Vec::new(); n];
    for effect in [RuleEffect::Deny, RuleEffect::Grant] {
        for (ri, (rule, recips, _)) in compiled_rules.iter().enumerate() {
            if rule.effect != effect {
                continue;
            }
            for (pi, slot) in rules_by_recipient.iter_mut().enumerate() {
                if bit(recips, pi as u32) {
                    slot.push(ri as u32);
                }
            }
        }
    }
    let compiled_rules: Vec<Rule> = compiled_rules.into_iter().map(|(r, _, _)| r).collect();
    Rules {
        rules: compiled_rules,
        rules_by_recipient,
        rule_words,
        rules_by_sender,
    }
}
