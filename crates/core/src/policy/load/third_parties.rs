//! The `[[third_party]]` originators (foreign services whose material
//! the agencies hold) and the `[[consent]]`s under which that material may
//! be passed on (the third-party rule). It never compiles a rule.

use std::collections::BTreeSet;

use super::agencies::Agencies;
use super::scheme::Scheme;
use super::*;

/// The third parties, their consents, and the consents of each.
pub(super) struct ThirdParties {
    pub(super) tps: Vec<ThirdParty>,
    pub(super) tp_by_id: HashMap<String, u16>,
    pub(super) consents: Vec<Consent>,
    pub(super) consents_by_tp: Vec<Vec<u32>>,
}

/// Compiles third parties and consents.
pub(super) fn compile(
    third_parties: &[Located<RawThirdParty>],
    consents: &[Located<RawConsent>],
    scheme: &Scheme,
    agencies: &Agencies,
    r: &mut Reporter,
) -> ThirdParties {
    let compiled_levels = &scheme.levels;
    let level = |name: &S<String>, what: &str, file: usize, r: &mut Reporter| {
        scheme.level(name, what, file, r)
    };
    let Agencies {
        bindings,
        agency_by_name,
    } = agencies;
    // --- third parties and consents -----------------------------------
    let mut tps: Vec<ThirdParty> = Vec::new();
    let mut tp_by_id: HashMap<String, u16> = HashMap::default();
    for t in third_parties.iter() {
        let id = t.value.id.get_ref();
        if !valid_name(id, 128) || id.contains(char::is_whitespace) {
            r.at(
                t.file,
                t.value.id.span(),
                "a third-party id must be 1-128 characters without spaces",
            );
            continue;
        }
        if tp_by_id.contains_key(id) {
            r.at(
                t.file,
                t.value.id.span(),
                format!("duplicate third party {id:?}"),
            );
            continue;
        }
        if agency_by_name.contains_key(id) {
            r.at(
                t.file,
                t.value.id.span(),
                format!("{id:?} is an agency of the gateway, not a third party"),
            );
            continue;
        }
        tp_by_id.insert(id.clone(), tps.len() as u16);
        tps.push(ThirdParty {
            id: id.clone(),
            name: t.value.name.clone().unwrap_or_else(|| id.clone()),
            country: t.value.country.clone(),
        });
    }
    let mut compiled_consents: Vec<Consent> = Vec::new();
    let mut consent_ids = BTreeSet::new();
    for c in consents.iter() {
        let v = &c.value;
        let id = v.id.get_ref();
        if !consent_ids.insert(id.clone()) {
            r.at(c.file, v.id.span(), format!("duplicate consent {id:?}"));
            continue;
        }
        let tp = tp_by_id.get(v.originator.get_ref()).copied();
        if tp.is_none() {
            r.at(
                    c.file,
                    v.originator.span(),
                    format!("consent {id:?} is for unknown originator {:?}: declare it as a [[third_party]]", v.originator.get_ref()),
                );
        }
        let ag = agency_by_name.get(v.to_agency.get_ref()).copied();
        if ag.is_none() {
            r.at(
                c.file,
                v.to_agency.span(),
                format!(
                    "consent {id:?} names unknown agency {:?}",
                    v.to_agency.get_ref()
                ),
            );
        }
        let max = level(&v.max_level, "max_level", c.file, r);
        let mut mask = 0u8;
        let mut handling_list: Vec<String> = Vec::new();
        match (&v.handling, &v.max_handling) {
                (None, None) => r.at(
                    c.file,
                    c.span.clone(),
                    format!("consent {id:?} names no handling code: list the codes released material must carry (`handling = [\"H2\"]`) or the highest one (`max_handling = \"H2\"`)"),
                ),
                (Some(_), Some(m)) => r.at(
                    c.file,
                    m.span(),
                    format!("consent {id:?} has both `handling` and `max_handling`: give one"),
                ),
                (Some(hs), None) => {
                    if hs.get_ref().is_empty() {
                        r.at(
                            c.file,
                            hs.span(),
                            format!("consent {id:?} lists no handling code"),
                        );
                    }
                    for h in hs.get_ref() {
                        match handling_bit(h.get_ref()) {
                            Some(b) => {
                                mask |= b;
                                handling_list.push(h.get_ref().clone());
                            }
                            None => r.at(
                                c.file,
                                h.span(),
                                format!(
                                    "handling code {:?} is not one of H0, H1, H2, H3",
                                    h.get_ref()
                                ),
                            ),
                        }
                    }
                }
                (None, Some(m)) => match handling_bit(m.get_ref()) {
                    // Every code up to and including the ceiling.
                    Some(b) => {
                        mask = (b << 1) - 1;
                        handling_list = HANDLING_CODES
                            .iter()
                            .take(b.trailing_zeros() as usize + 1)
                            .map(|c| c.to_string())
                            .collect();
                    }
                    None => r.at(
                        c.file,
                        m.span(),
                        format!(
                            "consent {id:?}: max_handling {:?} is not one of H0, H1, H2, H3",
                            m.get_ref()
                        ),
                    ),
                },
            }
        let until = match &v.until {
            None => {
                r.at(
                    c.file,
                    v.id.span(),
                    format!(
                        "consent {id:?} has no expiry: every consent needs `until = YYYY-MM-DD`"
                    ),
                );
                None
            }
            Some(u) => match datetime_to_unix(u.get_ref(), true) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.at(
                        c.file,
                        u.span(),
                        format!("consent {id:?}: invalid expiry: {e}"),
                    );
                    None
                }
            },
        };
        let (Some(tp_idx), Some(agency_idx), Some(max_rank), Some(until_unix)) =
            (tp, ag, max, until)
        else {
            continue;
        };
        compiled_consents.push(Consent {
            id: id.clone(),
            originator: v.originator.get_ref().clone(),
            to_agency: bindings[agency_idx as usize].agency.clone(),
            max_level: compiled_levels[max_rank as usize].id.clone(),
            handling: handling_list,
            max_handling: v.max_handling.as_ref().map(|m| m.get_ref().clone()),
            until_unix,
            reference: v.reference.clone(),
            tp_idx,
            agency_idx,
            max_rank,
            handling_mask: mask,
        });
    }
    compiled_consents.sort_by(|a, b| a.id.cmp(&b.id));
    let mut consents_by_tp = vec![Vec::new(); tps.len()];
    for (i, c) in compiled_consents.iter().enumerate() {
        consents_by_tp[c.tp_idx as usize].push(i as u32);
    }
    ThirdParties {
        tps,
        tp_by_id,
        consents: compiled_consents,
        consents_by_tp,
    }
}
