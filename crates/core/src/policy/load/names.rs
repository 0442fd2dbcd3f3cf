//! The interned names: caveats, purposes, handling codes, the
//! purpose-bound marking, and cases. Each becomes a small integer (a bit in
//! a mask, or an index) that principals, consents, deadlines and rules
//! refer to. It never compiles a principal or a rule.

use std::collections::BTreeSet;

use super::scheme::Scheme;
use super::*;

/// The interned names and their lookups.
pub(super) struct Names {
    pub(super) caveat_names: Vec<String>,
    pub(super) caveat_by_name: HashMap<String, u8>,
    pub(super) purpose_names: Vec<String>,
    pub(super) purpose_by_name: HashMap<String, u8>,
    pub(super) markings: Vec<Marking>,
    /// The index of the Diffusion restreinte marking, when declared.
    pub(super) dr_marking: Option<usize>,
    pub(super) case_names: Vec<String>,
    pub(super) case_purposes: Vec<String>,
    pub(super) case_by_id: HashMap<String, u32>,
}

/// Compiles caveats, purposes, handling codes, markings and cases.
pub(super) fn compile(src: &Sources, scheme: &Scheme, r: &mut Reporter) -> Names {
    let Sources {
        caveats,
        purposes,
        handlings,
        markings,
        cases,
        ..
    } = src;
    let level_by_name = &scheme.level_by_name;
    // --- caveats, purposes, handling, markings -------------------------
    let intern = |items: &[Located<RawNamed>], what: &str, r: &mut Reporter| {
        let mut names: Vec<String> = Vec::new();
        let mut by_name = HashMap::default();
        for c in items {
            let id = c.value.id.get_ref();
            if !valid_name(id, 64) || id.contains(char::is_whitespace) {
                r.at(
                    c.file,
                    c.value.id.span(),
                    format!("a {what} must be 1-64 characters without spaces"),
                );
                continue;
            }
            if by_name.contains_key(id) {
                r.at(
                    c.file,
                    c.value.id.span(),
                    format!("duplicate {what} {id:?}"),
                );
                continue;
            }
            if names.len() >= MAX_INTERNED {
                r.at(
                    c.file,
                    c.value.id.span(),
                    format!("more than {MAX_INTERNED} {what}s"),
                );
                continue;
            }
            by_name.insert(id.clone(), names.len() as u8);
            names.push(id.clone());
        }
        (names, by_name)
    };
    let (caveat_names, caveat_by_name) = intern(caveats, "caveat", r);
    let (purpose_names, purpose_by_name) = intern(purposes, "purpose", r);
    let mut seen_codes = BTreeSet::new();
    for h in handlings.iter() {
        let code = h.value.code.get_ref();
        if handling_bit(code).is_none() {
            r.at(
                h.file,
                h.value.code.span(),
                format!("handling code {code:?} is not one of H0, H1, H2, H3"),
            );
        } else if !seen_codes.insert(code.clone()) {
            r.at(
                h.file,
                h.value.code.span(),
                format!("handling code {code:?} declared twice"),
            );
        }
    }
    let mut marking_ids = BTreeSet::new();
    let mut compiled_markings: Vec<Marking> = Vec::new();
    for m in markings.iter() {
        let id = m.value.id.get_ref();
        if !marking_ids.insert(id.clone()) {
            r.at(
                m.file,
                m.value.id.span(),
                format!("duplicate marking {id:?}"),
            );
            continue;
        }
        // Labels carry one purpose-bound marking, as a flag: a marking
        // of another id could be declared but never carried.
        if id != DIFFUSION_RESTREINTE {
            r.at(
                    m.file,
                    m.value.id.span(),
                    format!(
                        "marking {id:?}: labels carry only the Diffusion restreinte / Beperkte verspreiding marking (`diffusion_restreinte = true`); declare it with id {DIFFUSION_RESTREINTE:?}"
                    ),
                );
        }
        let mut purpose_mask: Mask = 0;
        let mut purpose_list = Vec::new();
        match &m.value.purposes {
                None => r.at(
                    m.file,
                    m.span.clone(),
                    format!(
                        "marking {id:?} names no purposes: a purpose-bound marking needs `purposes = [...]`, the purposes marked material may be released for"
                    ),
                ),
                Some(ps) if ps.get_ref().is_empty() => r.at(
                    m.file,
                    ps.span(),
                    format!("marking {id:?}: `purposes` is an empty list, so marked material could never be released"),
                ),
                Some(ps) => {
                    for p in ps.get_ref() {
                        match purpose_by_name.get(p.get_ref()) {
                            Some(&b) => {
                                purpose_mask |= 1 << b;
                                purpose_list.push(p.get_ref().clone());
                            }
                            None => r.at(
                                m.file,
                                p.span(),
                                format!("marking {id:?}: unknown purpose {:?}", p.get_ref()),
                            ),
                        }
                    }
                }
            }
        purpose_list.sort();
        purpose_list.dedup();
        compiled_markings.push(Marking {
            id: id.clone(),
            names: m.value.names.iter().map(|n| n.get_ref().clone()).collect(),
            purposes: purpose_list,
            purpose_mask,
        });
        for n in &m.value.names {
            if level_by_name.contains_key(&normalize_level(n.get_ref())) {
                r.at(
                    m.file,
                    n.span(),
                    format!(
                        "marking name {:?} is also a level: a marking is not a classification",
                        n.get_ref()
                    ),
                );
            }
        }
    }

    compiled_markings.sort_by(|a, b| a.id.cmp(&b.id));
    let dr_marking = compiled_markings
        .iter()
        .position(|m| m.id == DIFFUSION_RESTREINTE);

    // --- cases ---------------------------------------------------------
    let mut case_names: Vec<String> = Vec::new();
    let mut case_purposes: Vec<String> = Vec::new();
    let mut case_by_id: HashMap<String, u32> = HashMap::default();
    for c in cases.iter() {
        let id = c.value.id.get_ref();
        if !valid_name(id, 64) || id.contains(char::is_whitespace) {
            r.at(
                c.file,
                c.value.id.span(),
                "a case id must be 1-64 characters without spaces",
            );
            continue;
        }
        if case_by_id.contains_key(&normalize_case(id)) {
            r.at(
                c.file,
                c.value.id.span(),
                format!("duplicate case {id:?} (case references compare in any letter case)"),
            );
            continue;
        }
        if id == "*" {
            r.at(
                c.file,
                c.value.id.span(),
                "\"*\" is not a case id: in a principal's `cases` it means every case",
            );
            continue;
        }
        if !purpose_by_name.contains_key(c.value.purpose.get_ref()) {
            r.at(
                c.file,
                c.value.purpose.span(),
                format!(
                    "case {id:?} has unknown purpose {:?}",
                    c.value.purpose.get_ref()
                ),
            );
        }
        case_by_id.insert(normalize_case(id), case_names.len() as u32);
        case_names.push(id.clone());
        case_purposes.push(c.value.purpose.get_ref().clone());
    }
    Names {
        caveat_names,
        caveat_by_name,
        purpose_names,
        purpose_by_name,
        markings: compiled_markings,
        dr_marking,
        case_names,
        case_purposes,
        case_by_id,
    }
}
