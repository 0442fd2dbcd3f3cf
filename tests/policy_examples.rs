//! The example policy in `policies/` loads, passes its own test cases, and
//! every one of its rules is exercised by some case; broken policies are
//! refused with file and line.

use std::path::{Path, PathBuf};

use passerelle::policy::{self, PolicyError};
use passerelle::policy_files;

const _: Option<PolicyError> = None;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn example_policy_passes_its_tests_and_covers_every_rule() {
    let report = policy_files::run_tests(&example_dir()).expect("example policy loads");
    assert!(report.ok(), "{report}");
    assert!(report.cases >= 40, "only {} cases", report.cases);
    assert!(
        report.uncovered_rules.is_empty(),
        "rules without a test case: {:?}",
        report.uncovered_rules
    );
}

#[test]
fn example_policy_checks() {
    let report = policy_files::check(&example_dir()).expect("example policy is valid");
    assert_eq!(report.agencies, 3);
    assert!(report.test_cases >= 40);
    assert_eq!(report.policy_digest.len(), 64);
}

fn example_policy() -> policy::Policy {
    policy_files::load_dir(&example_dir()).expect("example policy loads")
}

#[test]
fn a_wrong_expectation_is_reported_with_file_and_line() {
    let p = example_policy();
    let case = r#"
now = 2026-11-25T12:00:00Z

[[case]]
name = "wrong on purpose"
sender = "vsse/analysis/ct"
recipient = "police/lo/rabat"
cases = ["CT-2026-014"]
label = { level = "SECRET", originator = "vsse" }
expect = "allow"
released = [0]
"#;
    let report = policy::run_test_sources(&p, &[("tests/wrong.toml".into(), case.into())])
        .expect("test file parses");
    assert!(!report.ok());
    assert_eq!(report.failures.len(), 1);
    let f = &report.failures[0];
    assert_eq!((f.file.as_str(), f.line), ("tests/wrong.toml", 4));
    let text = report.to_string();
    assert!(text.contains("0 passed, 1 failed"), "{text}");
}

#[test]
fn explain_names_the_failed_check_and_the_matching_rules() {
    let p = example_policy();
    let item = r#"
sender = "vsse/analysis/ct"
cases = ["CT-2026-014"]
label = { level = "SECRET", originator = "vsse", third_party = "partner/ma-dgst", handling = "H2" }
portions = [
  { level = "SECRET", originator = "vsse", third_party = "partner/ma-dgst", handling = "H2" },
  { level = "CONFIDENTIEL", originator = "vsse", third_party = "partner/ma-dgst", handling = "H2" },
]
"#;
    let spec = policy::ItemSpec::from_toml("item.toml", item).expect("item parses");
    let to = passerelle::domain::principal::PrincipalId::new("police/spoc").unwrap();
    let ex = p.explain(&spec.facts(), &to, 1_795_000_000);
    let text = ex.to_string();
    println!("{text}");
    assert_eq!(ex.decision.portions(), vec![1]);
    assert!(text.contains("[FAIL] mandatory.third_party"), "{text}");
    assert!(
        text.contains("consent.ma-dgst.police: it stops at CONFIDENTIEL"),
        "{text}"
    );
    assert!(
        text.contains("grant rule vsse.to-police-desks matched"),
        "{text}"
    );
    // The explanation is for the officer and names the recipient's clearance;
    // the decision's reasons, which the sender sees, do not.
    assert!(text.contains("clearance TRÈS SECRET"), "{text}");
    for r in ex.decision.reasons() {
        assert!(
            !r.contains("TRÈS SECRET"),
            "reason leaks the recipient's clearance: {r}"
        );
    }
    let d = p.decide(&spec.facts(), &to, 1_795_000_000);
    assert_eq!(d, ex.decision);
    assert_eq!(d.policy_digest(), p.digest_hex());
}

#[test]
fn unknown_recipient_is_a_clear_deny_and_lookup_fails() {
    let p = example_policy();
    let nobody = passerelle::domain::principal::PrincipalId::new("police/lo/nairobi").unwrap();
    assert!(p.principal(&nobody).is_none());
    let rabat = passerelle::domain::principal::PrincipalId::new("police/lo/rabat").unwrap();
    let r = p.principal(&rabat).expect("known");
    assert_eq!(
        (r.clearance(), r.accreditation()),
        ("secret", Some("confidentiel"))
    );
}

#[test]
fn agency_bindings_name_trust_domains() {
    let p = example_policy();
    let police = p
        .agency_for_trust_domain("police.example")
        .expect("police bound");
    assert_eq!(police.agency.as_str(), "police");
    assert!(p.agency_for_trust_domain("evil.example").is_none());
    assert_eq!(p.retention_days("GEHEIM"), Some(7300));
    assert_eq!(
        p.level("cosmic top secret").map(|l| l.id.as_str()),
        Some("tres-secret")
    );
}

#[test]
fn spiffe_ids_map_to_principals_of_the_bound_agency_only() {
    let p = example_policy();
    let rabat = p
        .principal_for_spiffe("spiffe://police.example/lo/rabat")
        .expect("known");
    assert_eq!(rabat.id().as_str(), "police/lo/rabat");
    // A VSSE trust domain cannot name a police principal.
    assert!(p
        .principal_for_spiffe("spiffe://vsse.example/lo/rabat")
        .is_none());
    assert!(p
        .principal_for_spiffe("spiffe://police.example/lo/paris")
        .is_none());
    assert!(p
        .principal_for_spiffe("spiffe://police.example/../vsse/desk/ci")
        .is_none());
    assert!(p
        .principal_for_spiffe("https://police.example/lo/rabat")
        .is_none());
    assert!(p.rule("vsse.internal").is_some());
    assert!(p.rule("nope").is_none());
    let expired: Vec<&str> = p
        .expired_consents(1_795_000_000)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(expired, vec!["consent.tr-mit.police"]);
}

#[test]
fn the_policy_is_the_gateways_decider() {
    use passerelle::domain::decision::Decider;
    use std::sync::Arc;
    let p = example_policy();
    let digest = p.digest_hex().to_string();
    let decider: Arc<dyn Decider> = Arc::new(p);
    assert_eq!(decider.digest(), digest);
    let rabat = passerelle::domain::principal::PrincipalId::new("police/lo/rabat").unwrap();
    let nairobi = passerelle::domain::principal::PrincipalId::new("police/lo/nairobi").unwrap();
    assert!(decider.knows(&rabat));
    assert!(!decider.knows(&nairobi));
}
