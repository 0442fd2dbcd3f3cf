//! The `[[agency]]` declarations: the agencies of the gateway and the
//! SPIFFE trust domain each one's certificates may name, each bound to
//! exactly one agency. The CA that issues them is not the policy's: the
//! gateway configuration binds it (with its CRLs), and the gateway refuses
//! a configuration whose agencies or trust domains differ. It never looks
//! at principals or rules.

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
        // One source of truth: the gateway configuration binds each CA
        // (and its CRLs) to an agency; the policy says which agencies exist
        // and which trust domain each one's certificates may name, and the
        // gateway refuses a configuration that disagrees.
        if let Some(ca) = &v.ca {
            r.at(
                a.file,
                ca.span(),
                format!("agency {agency}: `ca` is no longer part of the policy: the CA that issues an agency's certificates is bound in the gateway configuration (`[[agency]] name, ca, crl` in gateway.toml), which must give the trust domain this policy gives; remove the line"),
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
            trust_domain: td.clone(),
        });
    }
    Agencies {
        bindings,
        agency_by_name,
    }
}
