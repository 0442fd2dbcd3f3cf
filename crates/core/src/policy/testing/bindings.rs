//! The comparison of the policy's agencies with the gateway
//! configuration's bindings, as the gateway makes it at start and reload.
//! Pure: the caller reads the configuration.

use serde::Serialize;

use crate::policy::model::Policy;

/// One agency as the gateway configuration binds it.
#[derive(Clone, Debug)]
pub struct ConfiguredAgency<'a> {
    /// The agency.
    pub agency: &'a str,
    /// The SPIFFE trust domain the configuration gives it.
    pub trust_domain: &'a str,
}

/// How the policy's agencies and the gateway configuration's bindings
/// differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BindingReport {
    /// Differences that make the gateway refuse the policy at start or
    /// reload.
    pub errors: Vec<String>,
    /// Differences the gateway accepts, but that a security officer should
    /// know of: principals that cannot connect.
    pub warnings: Vec<String>,
}

/// Compares the policy's `[[agency]]` bindings with the gateway
/// configuration's, as the gateway does when it starts or reloads (the
/// same refusals: an agency the policy does not declare, or binds to
/// another trust domain), and says which agencies of the policy the
/// configuration leaves out. The gateway trusts the CA files its
/// configuration names. Pure.
pub fn compare_bindings(policy: &Policy, configured: &[ConfiguredAgency<'_>]) -> BindingReport {
    let mut report = BindingReport::default();
    for c in configured {
        let Some(b) = policy
            .agency_bindings()
            .iter()
            .find(|b| b.agency.as_str() == c.agency)
        else {
            report.errors.push(format!(
                "agency {} of the gateway config is not declared in the policy: the gateway refuses this policy",
                c.agency
            ));
            continue;
        };
        if b.trust_domain != c.trust_domain {
            report.errors.push(format!(
                "the policy binds agency {} to trust domain {}, the gateway config to {}: the gateway refuses this policy",
                c.agency, b.trust_domain, c.trust_domain
            ));
        }
    }
    for b in policy.agency_bindings() {
        if !configured.iter().any(|c| c.agency == b.agency.as_str()) {
            let n = policy
                .principals()
                .iter()
                .filter(|p| p.agency() == &b.agency)
                .count();
            report.warnings.push(format!(
                "agency {} of the policy has no [[agency]] in the gateway config: its {n} principal(s) cannot connect",
                b.agency
            ));
        }
    }
    report
}
