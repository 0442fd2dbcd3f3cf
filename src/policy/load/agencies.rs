//! The `[[agency]]` bindings: each agency's trust domain and the CA
//! that issues its certificates, each bound to exactly one agency. It
//! never looks at principals or rules.

use std::collections::BTreeSet;

use super::*;
use crate::domain::principal::Agency;

/// The agencies in declaration order, and their index by name.
pub(super) struct Agencies {
    pub(super) bindings: Vec<AgencyBinding>,
    pub(super) agency_by_name: HashMap<String, u16>,
}

/// Compiles the agency bindings.
pub(super) fn compile(agencies: &[Located<RawAgency>], r: &mut Reporter) -> Agencies {
    // --- agencies ------------------------------------------------------
    let mut bindings: Vec<AgencyBinding> = Vec::new();
    let mut agency_by_name: HashMap<String, u16> = HashMap::default();
    let mut cas = BTreeSet::new();
    let mut domains = BTreeSet::new();
    for a in agencies.iter() {
        let v = &a.value;
        let agency = match Agency::new(v.id.get_ref().clone()) {
            Ok(ag) => ag,
            Err(e) => {
                r.at(a.file, v.id.span(), e.to_string());
                continue;
            }
        };
        if agency_by_name.contains_key(agency.as_str()) {
            r.at(a.file, v.id.span(), format!("duplicate agency {agency}"));
            continue;
        }
        let ca = v.ca.get_ref();
        if ca.trim().is_empty() || ca.starts_with('/') || ca.contains("..") {
            r.at(
                a.file,
                v.ca.span(),
                "the CA path must be relative to the configuration directory, without '..'",
            );
        } else if !cas.insert(ca.clone()) {
            r.at(
                    a.file,
                    v.ca.span(),
                    format!("CA {ca:?} is already bound to another agency: each CA is bound to exactly one agency"),
                );
        }
        let td = v.trust_domain.get_ref();
        if !valid_trust_domain(td) {
            r.at(
                a.file,
                v.trust_domain.span(),
                format!("{td:?} is not a trust domain name such as police.example"),
            );
        } else if !domains.insert(td.clone()) {
            r.at(
                a.file,
                v.trust_domain.span(),
                format!("trust domain {td:?} is already bound to another agency"),
            );
        }
        agency_by_name.insert(agency.as_str().to_string(), bindings.len() as u16);
        bindings.push(AgencyBinding {
            name: v
                .name
                .clone()
                .unwrap_or_else(|| agency.as_str().to_string()),
            agency,
            ca: ca.clone(),
            trust_domain: td.clone(),
        });
    }
    Agencies {
        bindings,
        agency_by_name,
    }
}
