//! The `[[principal]]`s: each one's agency, kind, role, clearance and
//! station accreditation, caveats, cases, and what it may do (send, read
//! the audit log). It never compiles a rule.

use std::collections::BTreeSet;
use std::ops::Range;

use super::agencies::Agencies;
use super::names::Names;
use super::scheme::Scheme;
use super::*;
use crate::domain::principal::PrincipalId;

/// The principals sorted by id, and their index by id.
pub(super) struct Principals {
    pub(super) compiled: Vec<Principal>,
    pub(super) by_id: HashMap<String, u32>,
}

/// Compiles the principals.
pub(super) fn compile(
    principals: &mut [Located<RawPrincipal>],
    scheme: &Scheme,
    names: &Names,
    agencies: &Agencies,
    r: &mut Reporter,
) -> Principals {
    let compiled_levels = &scheme.levels;
    let level = |name: &S<String>, what: &str, file: usize, r: &mut Reporter| {
        scheme.level(name, what, file, r)
    };
    let Names {
        caveat_by_name,
        case_names,
        case_by_id,
        ..
    } = names;
    let agency_by_name = &agencies.agency_by_name;
    // --- principals ----------------------------------------------------
    principals.sort_by(|a, b| a.value.id.get_ref().cmp(b.value.id.get_ref()));
    let mut compiled_principals: Vec<Principal> = Vec::new();
    let mut principal_by_id: HashMap<String, u32> = HashMap::default();
    let mut principal_first: HashMap<String, (usize, Range<usize>)> = HashMap::default();
    for p in principals.iter() {
        let v = &p.value;
        let id = match PrincipalId::new(v.id.get_ref().clone()) {
            Ok(id) => id,
            Err(e) => {
                r.at(p.file, v.id.span(), e.to_string());
                continue;
            }
        };
        if let Some((ff, fs)) = principal_first.get(id.as_str()) {
            let first = r.location(*ff, fs);
            r.at(
                p.file,
                v.id.span(),
                format!("duplicate principal {id} (first declared at {first})"),
            );
            continue;
        }
        principal_first.insert(id.as_str().to_string(), (p.file, v.id.span()));
        let agency = id.agency();
        let agency_idx = agency_by_name.get(agency.as_str()).copied();
        if agency_idx.is_none() {
            r.at(
                p.file,
                v.id.span(),
                format!("principal {id} belongs to unknown agency {agency}"),
            );
        }
        let kind = match v.kind.get_ref().as_str() {
            "station" => Some(PrincipalKind::Station),
            "desk" => Some(PrincipalKind::Desk),
            "person" => Some(PrincipalKind::Person),
            other => {
                r.at(
                    p.file,
                    v.kind.span(),
                    format!("kind {other:?} is not station, desk or person"),
                );
                None
            }
        };
        if !valid_name(v.role.get_ref(), 64) {
            r.at(
                p.file,
                v.role.span(),
                "a role must be 1-64 printable characters",
            );
        }
        let clearance = level(&v.clearance, "clearance", p.file, r);
        // `Some(None)`: no station ceiling; `None`: an error was reported.
        let accreditation: Option<Option<Rank>> = match &v.accreditation {
            None => {
                r.at(
                        p.file,
                        v.id.span(),
                        format!(
                            "principal {id} has no `accreditation`: give the level its station or premises is accredited to, or \"none\" for a principal that is not a station"
                        ),
                    );
                None
            }
            Some(a) if a.get_ref() == "none" => {
                if kind == Some(PrincipalKind::Station) {
                    r.at(
                            p.file,
                            a.span(),
                            format!(
                                "principal {id} is a station: a station always has an accreditation level (\"none\" is only for desks and persons)"
                            ),
                        );
                    None
                } else {
                    Some(None)
                }
            }
            Some(a) => level(a, "accreditation", p.file, r).map(Some),
        };
        let mut caveat_mask: Mask = 0;
        let mut cav = BTreeSet::new();
        for c in &v.caveats {
            match caveat_by_name.get(c.get_ref()) {
                Some(&b) => {
                    caveat_mask |= 1 << b;
                    cav.insert(c.get_ref().clone());
                }
                None => r.at(
                    p.file,
                    c.span(),
                    format!("unknown caveat {:?}", c.get_ref()),
                ),
            }
        }
        let mut case_ids = Vec::new();
        let mut case_list = BTreeSet::new();
        let all_cases = v.cases.iter().any(|c| c.get_ref() == "*");
        if all_cases && v.cases.len() > 1 {
            r.at(
                    p.file,
                    v.cases[0].span(),
                    format!("principal {id}: `cases = [\"*\"]` already names every case; list no other case beside it"),
                );
        }
        for c in &v.cases {
            if c.get_ref() == "*" {
                continue;
            }
            match case_by_id.get(&normalize_case(c.get_ref())) {
                    Some(&ci) => {
                        case_ids.push(ci);
                        case_list.insert(case_names[ci as usize].clone());
                    }
                    None => r.at(
                        p.file,
                        c.span(),
                        format!(
                            "unknown case {:?} (declare it as a [[case]], or write [\"*\"] for every case)",
                            c.get_ref()
                        ),
                    ),
                }
        }
        if all_cases {
            case_list.insert("*".to_string());
        }
        case_ids.sort_unstable();
        case_ids.dedup();
        // Oversight reads and does not take part: an auditor sends
        // nothing and reads every proof unless the policy says otherwise.
        let auditor = v.role.get_ref() == AUDITOR_ROLE;
        let may_send = v.may_send.unwrap_or(!auditor);
        let audit = match v.audit.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
            None if auditor => Some(AuditScope::All),
            None => Some(AuditScope::Own),
            Some(("all", _)) => Some(AuditScope::All),
            Some(("own", _)) => Some(AuditScope::Own),
            Some((other, span)) => {
                r.at(
                        p.file,
                        span,
                        format!(
                            "audit {other:?} is not \"all\" (every audit proof) or \"own\" (the entries that concern this principal)"
                        ),
                    );
                None
            }
        };
        let (Some(clearance), Some(accreditation), Some(agency_idx), Some(kind), Some(audit)) =
            (clearance, accreditation, agency_idx, kind, audit)
        else {
            continue;
        };
        principal_by_id.insert(id.as_str().to_string(), compiled_principals.len() as u32);
        compiled_principals.push(Principal {
            clearance_level: compiled_levels[clearance as usize].id.clone(),
            accreditation_level: accreditation.map(|a| compiled_levels[a as usize].id.clone()),
            id,
            agency,
            kind,
            role: v.role.get_ref().clone(),
            caveats: cav.into_iter().collect(),
            cases: case_list.into_iter().collect(),
            all_cases,
            may_send,
            audit,
            agency_idx,
            clearance,
            accreditation,
            caveat_mask,
            case_ids,
        });
    }
    Principals {
        compiled: compiled_principals,
        by_id: principal_by_id,
    }
}
