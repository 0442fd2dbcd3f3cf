//! The policy's digest: SHA-256 of the canonical CBOR of its semantics,
//! sorted, so that comments, layout and the split into files do not change
//! it and every semantic change does. It never validates.

use super::agencies::Agencies;
use super::names::Names;
use super::principals::Principals;
use super::scheme::Scheme;
use super::third_parties::ThirdParties;
use crate::domain::bytes::{sha256, to_cbor};
use crate::policy::model::*;

/// The canonical content hashed into the digest: semantics only, sorted,
/// independent of how the policy is split into files, of comments and of
/// layout.
#[derive(serde::Serialize)]
struct Canonical<'a> {
    format: &'static str,
    scheme: &'a str,
    levels: &'a [Level],
    caveats: Vec<&'a String>,
    purposes: Vec<&'a String>,
    cases: Vec<(&'a String, &'a String)>,
    agencies: &'a [AgencyBinding],
    principals: &'a [Principal],
    third_parties: &'a [ThirdParty],
    consents: &'a [Consent],
    rules: &'a [Rule],
    markings: &'a [Marking],
    deadlines: &'a [Deadline],
}

/// The digest of the compiled policy.
pub(super) fn digest(
    scheme: &Scheme,
    names: &Names,
    agencies: &Agencies,
    principals: &Principals,
    third: &ThirdParties,
    compiled_deadlines: &[Deadline],
    compiled_rules: &[Rule],
) -> [u8; 32] {
    let Names {
        caveat_names,
        purpose_names,
        case_names,
        case_purposes,
        markings: compiled_markings,
        ..
    } = names;
    let scheme_name = &scheme.name;
    let compiled_levels = &scheme.levels;
    let bindings = &agencies.bindings;
    let tps = &third.tps;
    let compiled_principals = &principals.compiled;
    let compiled_consents = &third.consents;
    let mut sorted_caveats: Vec<&String> = caveat_names.iter().collect();
    sorted_caveats.sort();
    let mut sorted_purposes: Vec<&String> = purpose_names.iter().collect();
    sorted_purposes.sort();
    let mut sorted_cases: Vec<(&String, &String)> =
        case_names.iter().zip(case_purposes.iter()).collect();
    sorted_cases.sort();
    let mut sorted_bindings = bindings.clone();
    sorted_bindings.sort_by(|a, b| a.agency.cmp(&b.agency));
    let mut sorted_tps = tps.clone();
    sorted_tps.sort_by(|a, b| a.id.cmp(&b.id));
    let canonical = Canonical {
        format: "passerelle-policy/4",
        scheme: scheme_name,
        levels: compiled_levels,
        caveats: sorted_caveats,
        purposes: sorted_purposes,
        cases: sorted_cases,
        agencies: &sorted_bindings,
        principals: compiled_principals,
        third_parties: &sorted_tps,
        consents: compiled_consents,
        rules: compiled_rules,
        markings: compiled_markings,
        deadlines: compiled_deadlines,
    };

    sha256(&to_cbor(&canonical))
}
