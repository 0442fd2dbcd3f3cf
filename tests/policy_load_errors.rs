//! Broken policies are refused whole, each problem named with file and line.

use std::path::{Path, PathBuf};

use passerelle::policy::{self, Diagnostic, PolicyError};
use passerelle::policy_files;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Copies the example policy (and its tests) into a temporary directory.
fn copy_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["", "tests"] {
        let from = example_dir().join(sub);
        let to = dir.path().join(sub);
        std::fs::create_dir_all(&to).expect("mkdir");
        for e in std::fs::read_dir(&from).expect("read example") {
            let p = e.expect("entry").path();
            if p.is_file() {
                std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
            }
        }
    }
    dir
}

/// Replaces the first `from` in `file` by `to`; returns the 1-based line
/// where `marker` then appears.
fn edit(dir: &Path, file: &str, from: &str, to: &str, marker: &str) -> usize {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no {from:?}");
    let text = text.replacen(from, to, 1);
    std::fs::write(&path, &text).expect("write");
    text.lines()
        .position(|l| l.contains(marker))
        .map(|i| i + 1)
        .expect("marker present")
}

fn append(dir: &Path, file: &str, extra: &str) {
    let path = dir.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(extra);
    std::fs::write(&path, text).expect("write");
}

fn line_of(dir: &Path, file: &str, marker: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(file)).expect("read");
    text.lines()
        .position(|l| l.contains(marker))
        .map(|i| i + 1)
        .expect("marker present")
}

fn refused(dir: &Path) -> Vec<Diagnostic> {
    match policy_files::load_dir(dir) {
        Ok(_) => panic!("a broken policy was accepted"),
        Err(PolicyError::Invalid(d)) => d.0,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn assert_reported(diags: &[Diagnostic], file: &str, line: usize, needle: &str) {
    assert!(
        diags
            .iter()
            .any(|d| d.file == file && d.line == line && d.message.contains(needle)),
        "expected {file}:{line}: …{needle}…, got:\n{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn syntax_error() {
    let d = copy_example();
    append(
        d.path(),
        "principals.toml",
        "\n[[principal]\nid = \"police/x\"\n",
    );
    let line = line_of(d.path(), "principals.toml", "[[principal]\n".trim_end());
    let diags = refused(d.path());
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].file, "principals.toml");
    assert!(diags[0].line >= line - 1, "{diags:?}");
}

#[test]
fn clearance_that_is_not_a_level() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "principals.toml",
        "clearance = \"CONFIDENTIEL\"",
        "clearance = \"CONFIDENTIAL\"",
        "CONFIDENTIAL\"",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "principals.toml",
        line,
        "clearance \"CONFIDENTIAL\" is not a level",
    );
}

#[test]
fn unknown_principal_in_a_rule() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "flows.toml",
        "to = { principals = [\"police/spoc\"] }",
        "to = { principals = [\"police/spocc\"] }",
        "police/spocc",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "unknown principal \"police/spocc\"",
    );
}

#[test]
fn unknown_case_and_caveat() {
    let d = copy_example();
    let l1 = edit(
        d.path(),
        "principals.toml",
        "cases = [\"CT-2026-031\"]",
        "cases = [\"CT-2026-999\"]",
        "CT-2026-999",
    );
    let l2 = edit(
        d.path(),
        "principals.toml",
        "caveats = [\"SIGINT\"]",
        "caveats = [\"SIGNIT\"]",
        "SIGNIT",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "principals.toml",
        l1,
        "unknown case \"CT-2026-999\"",
    );
    assert_reported(&diags, "principals.toml", l2, "unknown caveat \"SIGNIT\"");
}

#[test]
fn duplicate_ids() {
    let d = copy_example();
    append(
        d.path(),
        "extra.toml",
        r#"
[[principal]]
id = "police/lo/rabat"
kind = "station"
role = "liaison-officer"
clearance = "SECRET"
accreditation = "SECRET"

[[deny]]
id = "vsse.internal"
from = {}
to = { agencies = ["police"] }
"#,
    );
    let diags = refused(d.path());
    // Files load in name order: extra.toml comes first, so the copies in
    // principals.toml and flows.toml are the duplicates, pointing back.
    let rabat = line_of(d.path(), "principals.toml", "id = \"police/lo/rabat\"");
    let internal = line_of(d.path(), "flows.toml", "id = \"vsse.internal\"");
    assert_reported(
        &diags,
        "principals.toml",
        rabat,
        "duplicate principal police/lo/rabat (first declared at extra.toml:3)",
    );
    assert_reported(
        &diags,
        "flows.toml",
        internal,
        "duplicate rule id \"vsse.internal\" (first declared at extra.toml:10)",
    );
}

#[test]
fn rules_that_can_never_match() {
    let d = copy_example();
    append(
        d.path(),
        "extra.toml",
        r#"
[[grant]]
id = "nobody"
from = { roles = ["astronaut"] }
to = { agencies = ["vsse"] }

[[grant]]
id = "inverted"
from = {}
to = { agencies = ["vsse"] }
min_level = "SECRET"
max_level = "RESTREINT"

[[grant]]
id = "nothing"
from = {}
to = { agencies = ["vsse"] }
purposes = []

[[grant]]
id = "empty-intersection"
from = { agencies = ["vsse"], principals = ["police/spoc"] }
to = { agencies = ["vsse"] }

[[grant]]
id = "too-high"
from = {}
to = { roles = ["liaison-officer"] }
min_level = "TRÈS SECRET"
"#,
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "extra.toml",
        4,
        "no principal has role \"astronaut\"",
    );
    assert_reported(&diags, "extra.toml", 7, "min_level is above max_level");
    assert_reported(&diags, "extra.toml", 18, "`purposes` is an empty list");
    assert_reported(
        &diags,
        "extra.toml",
        22,
        "no declared principal matches `from`",
    );
    assert_reported(&diags, "extra.toml", 25, "can never release anything");
}

#[test]
fn consent_for_unknown_originator_and_without_expiry() {
    let d = copy_example();
    append(
        d.path(),
        "third_parties.toml",
        r#"
[[consent]]
id = "consent.ghost"
originator = "partner/ghost"
to_agency = "police"
max_level = "RESTREINT"
handling = ["H2"]
until = 2027-01-01

[[consent]]
id = "consent.forever"
originator = "partner/ma-dgst"
to_agency = "vsse"
max_level = "RESTREINT"
handling = ["H2"]
"#,
    );
    let l1 = line_of(d.path(), "third_parties.toml", "partner/ghost");
    let l2 = line_of(d.path(), "third_parties.toml", "consent.forever");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "third_parties.toml",
        l1,
        "unknown originator \"partner/ghost\"",
    );
    assert_reported(&diags, "third_parties.toml", l2, "has no expiry");
}

#[test]
fn a_level_name_standing_for_two_levels() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "scheme.toml",
        "names = [\"CONFIDENTIEL\", \"VERTROUWELIJK\"]",
        "names = [\"CONFIDENTIEL\", \"VERTROUWELIJK\", \"GEHEIM\"]",
        "\"GEHEIM\"]",
    );
    // GEHEIM is declared first on `confidentiel` now, so the clash is
    // reported where `secret` declares it again.
    let secret_line = line_of(d.path(), "scheme.toml", "names = [\"SECRET\", \"GEHEIM\"]");
    let diags = refused(d.path());
    assert!(line > 0);
    assert_reported(
        &diags,
        "scheme.toml",
        secret_line,
        "already stands for another level",
    );
}

#[test]
fn misspelt_key_absurd_retention_and_shared_ca() {
    let d = copy_example();
    let l1 = edit(
        d.path(),
        "principals.toml",
        "accreditation = \"CONFIDENTIEL\"   #",
        "accredditation = \"CONFIDENTIEL\"   #",
        "accredditation",
    );
    let l2 = edit(
        d.path(),
        "scheme.toml",
        "retention_days = 1825",
        "retention_days = -5",
        "retention_days = -5",
    );
    let l3 = edit(
        d.path(),
        "agencies.toml",
        "trust_domain = \"vsse.example\"",
        "trust_domain = \"police.example\"",
        "name = \"Sûreté",
    ) + 1;
    let diags = refused(d.path());
    // A file that does not parse stops the load before references are checked.
    assert_reported(&diags, "principals.toml", l1, "accredditation");
    std::fs::write(
        d.path().join("principals.toml"),
        std::fs::read_to_string(d.path().join("principals.toml"))
            .unwrap()
            .replace("accredditation", "accreditation"),
    )
    .unwrap();
    let diags = refused(d.path());
    assert_reported(&diags, "scheme.toml", l2, "not between 1 day and 100 years");
    assert_reported(
        &diags,
        "agencies.toml",
        l3,
        "already bound to another agency",
    );
}

#[test]
fn test_files_with_unknown_rule_ids_fail_check() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "tests/flows.toml",
        "rules = [\"lo.request-to-vsse\"]",
        "rules = [\"lo.request-to-vse\"]",
        "lo.request-to-vse\"",
    );
    let err = policy_files::check(d.path()).expect_err("refused");
    assert_reported(
        err.diagnostics(),
        "tests/flows.toml",
        line,
        "unknown rule id \"lo.request-to-vse\"",
    );
}

#[test]
fn a_ca_in_the_policy_is_refused_and_says_where_the_binding_lives() {
    // One source of truth for the CA→agency binding: the gateway
    // configuration. A policy written when it also named the CA is refused,
    // not silently half-read.
    let d = copy_example();
    let line = edit(
        d.path(),
        "agencies.toml",
        "trust_domain = \"vsse.example\"",
        "ca = \"certs-example/vsse/ca.pem\"\ntrust_domain = \"vsse.example\"",
        "ca = ",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "agencies.toml",
        line,
        "`ca` is no longer part of the policy",
    );
    assert_reported(&diags, "agencies.toml", line, "gateway.toml");
}

#[test]
fn missing_directory_is_an_io_error() {
    let d = tempfile::tempdir().unwrap();
    let err = policy_files::load_dir(&d.path().join("absent")).expect_err("refused");
    assert!(matches!(err, PolicyError::Io { .. }));
}

#[test]
fn a_revoked_clearance_changes_the_decision_and_the_digest() {
    let d = copy_example();
    let item = r#"
sender = "vsse/analysis/ct"
recipient = "police/djo/ct"
cases = ["CT-2026-014"]
label = { level = "SECRET", originator = "vsse" }
"#;
    let spec = policy::ItemSpec::from_toml("item.toml", item).expect("item parses");
    let to = spec.recipient.clone().expect("recipient");
    let before = policy_files::load_dir(d.path()).expect("loads");
    assert!(before.decide(&spec.facts(), &to, 1_795_000_000).allowed());

    // The DJO desk's clearance is withdrawn to CONFIDENTIEL.
    let text = std::fs::read_to_string(d.path().join("principals.toml")).unwrap();
    let djo = text.find("id = \"police/djo/ct\"").unwrap();
    let (head, tail) = text.split_at(djo);
    let tail = tail.replacen("clearance = \"SECRET\"", "clearance = \"CONFIDENTIEL\"", 1);
    std::fs::write(d.path().join("principals.toml"), format!("{head}{tail}")).unwrap();
    let after = policy_files::load_dir(d.path()).expect("loads");
    let decision = after.decide(&spec.facts(), &to, 1_795_000_000);
    assert!(!decision.allowed());
    assert_eq!(decision.rules(), vec!["mandatory.clearance"]);
    assert_ne!(before.digest_hex(), after.digest_hex());

    // A broken edit is refused; the caller keeps the policy it has.
    append(
        d.path(),
        "principals.toml",
        "\n[[principal]]\nid = \"police/x\"\n",
    );
    assert!(policy_files::load_dir(d.path()).is_err());
}

#[test]
fn audit_scope_that_is_neither_all_nor_own() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "principals.toml",
        "audit = \"all\"",
        "audit = \"everything\"",
        "audit = \"everything\"",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "principals.toml",
        line,
        "audit \"everything\" is not \"all\" (every audit proof) or \"own\"",
    );
}

#[test]
fn may_send_that_is_not_a_boolean() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "principals.toml",
        "may_send = false",
        "may_send = \"no\"",
        "may_send = \"no\"",
    );
    let diags = refused(d.path());
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        (diags[0].file.as_str(), diags[0].line),
        ("principals.toml", line)
    );
    assert!(diags[0].message.contains("bool"), "{diags:?}");
}

#[test]
fn a_grant_from_principals_that_may_not_send_can_never_match() {
    let d = copy_example();
    append(
        d.path(),
        "flows.toml",
        "\n[[grant]]\nid = \"auditor.sends\"\nfrom = { roles = [\"auditor\"] }\nto = {}\n",
    );
    let line = line_of(d.path(), "flows.toml", "from = { roles = [\"auditor\"] }");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "rule \"auditor.sends\" can never match: no principal it selects in `from` may send",
    );
    // Letting the auditor send makes the same rule valid.
    edit(
        d.path(),
        "principals.toml",
        "may_send = false",
        "may_send = true",
        "may_send = true",
    );
    policy_files::load_dir(d.path()).expect("the auditor may now send");
}

#[test]
fn what_each_principal_may_do_is_part_of_the_digest() {
    let d = copy_example();
    let before = policy_files::load_dir(d.path())
        .unwrap()
        .digest_hex()
        .to_string();
    edit(
        d.path(),
        "principals.toml",
        "audit = \"all\"",
        "audit = \"own\"",
        "audit = \"own\"",
    );
    let own = policy_files::load_dir(d.path())
        .unwrap()
        .digest_hex()
        .to_string();
    assert_ne!(before, own);
    edit(
        d.path(),
        "principals.toml",
        "may_send = false",
        "may_send = true",
        "may_send = true",
    );
    let sends = policy_files::load_dir(d.path())
        .unwrap()
        .digest_hex()
        .to_string();
    assert_ne!(own, sends);
    // Writing a default out does not change what the policy says.
    edit(
        d.path(),
        "principals.toml",
        "role = \"liaison-officer\"",
        "role = \"liaison-officer\"\nmay_send = true\naudit = \"own\"",
        "may_send = true",
    );
    assert_eq!(
        policy_files::load_dir(d.path()).unwrap().digest_hex(),
        sends.as_str()
    );
}

#[test]
fn defaults_follow_the_role() {
    let d = copy_example();
    // Without the explicit lines, the auditor still sends nothing and
    // reads every proof; a liaison station sends and reads its own.
    edit(d.path(), "principals.toml", "may_send = false", "", "audit");
    edit(d.path(), "principals.toml", "audit = \"all\"", "", "role");
    let p = policy_files::load_dir(d.path()).unwrap();
    let who = |id: &str| {
        p.principal(&passerelle::domain::principal::PrincipalId::new(id).unwrap())
            .unwrap()
            .clone()
    };
    let auditor = who("oversight/comite-r");
    assert!(!auditor.may_send());
    assert_eq!(auditor.audit(), policy::AuditScope::All);
    let rabat = who("police/lo/rabat");
    assert!(rabat.may_send());
    assert_eq!(rabat.audit(), policy::AuditScope::Own);
}

#[test]
fn test_file_errors_are_not_reported_as_an_invalid_policy() {
    let d = copy_example();
    edit(
        d.path(),
        "tests/flows.toml",
        "rules = [\"lo.request-to-vsse\"]",
        "rules = [\"lo.request-to-vse\"]",
        "lo.request-to-vse\"",
    );
    for err in [
        policy_files::check(d.path()).expect_err("refused"),
        policy_files::run_tests(d.path()).expect_err("refused"),
    ] {
        assert!(matches!(err, PolicyError::InvalidTests(_)), "{err}");
        assert!(err.to_string().contains("test files are invalid"), "{err}");
        assert!(
            err.to_string().contains("the policy itself is valid"),
            "{err}"
        );
    }
}

#[test]
fn a_test_time_must_say_the_moment() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "tests/flows.toml",
        "now = 2026-11-25T12:00:00Z",
        "now = 2026-11-25",
        "now = 2026-11-25",
    );
    let err = policy_files::check(d.path()).expect_err("refused");
    assert_reported(
        err.diagnostics(),
        "tests/flows.toml",
        line,
        "without a time of day",
    );
    let d = copy_example();
    let line = edit(
        d.path(),
        "tests/flows.toml",
        "now = 2026-11-25T12:00:00Z",
        "now = 2026-11-25T12:00:00",
        "now = 2026-11-25",
    );
    let err = policy_files::check(d.path()).expect_err("refused");
    assert_reported(err.diagnostics(), "tests/flows.toml", line, "has no offset");
}

#[test]
fn test_cases_mix_neither_one_recipient_and_outcomes_nor_rules_and_not_rules() {
    let d = copy_example();
    append(
        d.path(),
        "tests/flows.toml",
        r#"
[[case]]
name = "mixed"
sender = "vsse/analysis/ct"
recipient = "police/spoc"
label = { level = "RESTREINT", originator = "vsse" }
outcomes = [{ recipient = "police/spoc", expect = "allow" }]

[[case]]
name = "contradictory"
sender = "vsse/analysis/ct"
recipient = "police/spoc"
label = { level = "RESTREINT", originator = "vsse" }
expect = "deny"
rules = ["default.deny"]
not_rules = ["default.deny"]
reasons = [""]
"#,
    );
    let err = policy_files::check(d.path()).expect_err("refused");
    let diags = err.diagnostics();
    let mixed = line_of(d.path(), "tests/flows.toml", "name = \"mixed\"") - 1;
    assert_reported(diags, "tests/flows.toml", mixed, "not both");
    let text = std::fs::read_to_string(d.path().join("tests/flows.toml")).unwrap();
    let not_rules = text
        .lines()
        .position(|l| l.starts_with("not_rules = [\"default.deny\"]"))
        .unwrap()
        + 1;
    assert_reported(
        diags,
        "tests/flows.toml",
        not_rules,
        "both in `rules` and in `not_rules`",
    );
    assert_reported(
        diags,
        "tests/flows.toml",
        not_rules + 1,
        "must not be empty",
    );
}

#[test]
fn accreditation_none_only_for_principals_that_are_not_stations() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "principals.toml",
        "accreditation = \"CONFIDENTIEL\"   #",
        "accreditation = \"none\"   #",
        "accreditation = \"none\"   #",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "principals.toml",
        line,
        "a station always has an accreditation level",
    );

    // Left out: the message says what to write.
    let d = copy_example();
    let text = std::fs::read_to_string(d.path().join("principals.toml")).unwrap();
    std::fs::write(
        d.path().join("principals.toml"),
        text.replacen("accreditation = \"none\"           #", "#", 1),
    )
    .unwrap();
    let line = line_of(d.path(), "principals.toml", "id = \"oversight/comite-r\"");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "principals.toml",
        line,
        "or \"none\" for a principal that is not a station",
    );
}

#[test]
fn every_case_is_written_alone_and_case_ids_ignore_letter_case() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "principals.toml",
        "cases = [\"*\"]                    #",
        "cases = [\"*\", \"CT-2026-014\"]  #",
        "cases = [\"*\", \"CT-2026-014\"]",
    );
    let diags = refused(d.path());
    assert_reported(&diags, "principals.toml", line, "already names every case");

    let d = copy_example();
    append(
        d.path(),
        "purposes.toml",
        "\n[[case]]\nid = \"ct-2026-014\"\npurpose = \"terrorism\"\n",
    );
    let line = line_of(d.path(), "purposes.toml", "id = \"ct-2026-014\"");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "purposes.toml",
        line,
        "duplicate case \"ct-2026-014\" (case references compare in any letter case)",
    );

    let d = copy_example();
    append(
        d.path(),
        "purposes.toml",
        "\n[[case]]\nid = \"*\"\npurpose = \"terrorism\"\n",
    );
    let line = line_of(d.path(), "purposes.toml", "id = \"*\"");
    let diags = refused(d.path());
    assert_reported(&diags, "purposes.toml", line, "is not a case id");

    // A principal's cases in another letter case are the declared ones.
    let d = copy_example();
    edit(
        d.path(),
        "principals.toml",
        "cases = [\"CT-2026-031\"]",
        "cases = [\"ct-2026-031\"]",
        "ct-2026",
    );
    let p = policy_files::load_dir(d.path()).expect("loads");
    let ankara = p
        .principals()
        .iter()
        .find(|x| x.id().as_str() == "police/lo/ankara")
        .unwrap();
    assert_eq!(ankara.cases(), ["CT-2026-031"]);
    assert_eq!(p.case("ct-2026-031"), Some("CT-2026-031"));
}

#[test]
fn case_assignment_says_any_or_all() {
    let d = copy_example();
    let text = std::fs::read_to_string(d.path().join("flows.toml")).unwrap();
    std::fs::write(
        d.path().join("flows.toml"),
        text.replacen("case_match = \"all\"   ", "#", 1),
    )
    .unwrap();
    let line = line_of(d.path(), "flows.toml", "case_assignment = \"recipient\"");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "case_assignment needs case_match = \"all\"",
    );

    let d = copy_example();
    let line = edit(
        d.path(),
        "flows.toml",
        "case_match = \"any\"",
        "case_match = \"some\"",
        "case_match = \"some\"",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "case_match \"some\" is not all or any",
    );

    let d = copy_example();
    append(
        d.path(),
        "flows.toml",
        "\n[[grant]]\nid = \"x\"\nfrom = {}\nto = {}\ncase_match = \"any\"\n",
    );
    let line = line_of(d.path(), "flows.toml", "case_match = \"any\"\n".trim_end());
    let diags = refused(d.path());
    assert!(line > 0);
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("case_match without case_assignment")),
        "{diags:?}"
    );
}

#[test]
fn consent_handling_as_a_list_or_a_ceiling() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "third_parties.toml",
        "max_handling = \"H2\"",
        "max_handling = \"H4\"",
        "max_handling = \"H4\"",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "third_parties.toml",
        line,
        "max_handling \"H4\" is not one of H0, H1, H2, H3",
    );

    let d = copy_example();
    let line = edit(
        d.path(),
        "third_parties.toml",
        "max_handling = \"H2\"",
        "handling = [\"H2\"]\nmax_handling = \"H2\"",
        "max_handling = \"H2\"",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "third_parties.toml",
        line,
        "both `handling` and `max_handling`",
    );

    let d = copy_example();
    edit(
        d.path(),
        "third_parties.toml",
        "max_handling = \"H2\"",
        "",
        "id = \"consent.ma-dgst.police\"",
    );
    let line = line_of(d.path(), "third_parties.toml", "[[consent]]");
    let diags = refused(d.path());
    assert_reported(&diags, "third_parties.toml", line, "names no handling code");

    // The ceiling covers H0 to H2, and says so.
    let p = policy_files::load_dir(&example_dir()).expect("loads");
    let c = p
        .consents()
        .iter()
        .find(|c| c.id == "consent.ma-dgst.police")
        .unwrap();
    assert_eq!(c.handling, ["H0", "H1", "H2"]);
    assert_eq!(c.max_handling.as_deref(), Some("H2"));
}

#[test]
fn originators_rel_to_and_marking_predicates() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "flows.toml",
        "originators = [\"partner/ma-dgst\"]",
        "originators = [\"partner/ma-dgstt\"]",
        "partner/ma-dgstt",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "neither an agency nor a declared third party",
    );

    let d = copy_example();
    let line = edit(
        d.path(),
        "flows.toml",
        "rel_to = [\"police\"]",
        "rel_to = [\"polise\"]",
        "polise",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "rel_to \"polise\" is not an agency",
    );

    let d = copy_example();
    let line = edit(
        d.path(),
        "flows.toml",
        "rel_to = [\"police\"]",
        "rel_to = []",
        "rel_to = []",
    );
    let diags = refused(d.path());
    assert_reported(&diags, "flows.toml", line, "`rel_to` is an empty list");

    // Without the marking declared, a rule on it can never match.
    let d = copy_example();
    let text = std::fs::read_to_string(d.path().join("scheme.toml")).unwrap();
    let cut = text.find("[[marking]]").unwrap();
    std::fs::write(d.path().join("scheme.toml"), &text[..cut]).unwrap();
    append(
        d.path(),
        "flows.toml",
        "\n[[deny]]\nid = \"deny.marked\"\nfrom = {}\nto = {}\ndiffusion_restreinte = true\n",
    );
    let line = line_of(d.path(), "flows.toml", "id = \"deny.marked\"") - 1;
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "flows.toml",
        line,
        "can never match: no label may carry Diffusion restreinte",
    );
}

#[test]
fn a_marking_is_bound_to_declared_purposes() {
    let d = copy_example();
    let line = edit(
        d.path(),
        "scheme.toml",
        "purposes = [\"terrorism\", \"extremism\", \"oversight\"]",
        "purposes = [\"terrorism\", \"terrorisme\"]",
        "terrorisme",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "scheme.toml",
        line,
        "unknown purpose \"terrorisme\"",
    );

    let d = copy_example();
    edit(
        d.path(),
        "scheme.toml",
        "purposes = [\"terrorism\", \"extremism\", \"oversight\"]",
        "",
        "[[marking]]",
    );
    let line = line_of(d.path(), "scheme.toml", "[[marking]]");
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "scheme.toml",
        line,
        "a purpose-bound marking needs `purposes",
    );

    let d = copy_example();
    let line = edit(
        d.path(),
        "scheme.toml",
        "id = \"diffusion-restreinte\"",
        "id = \"nodis\"",
        "nodis",
    );
    let diags = refused(d.path());
    assert_reported(
        &diags,
        "scheme.toml",
        line,
        "labels carry only the Diffusion restreinte",
    );
}

#[test]
fn deadlines_are_checked() {
    let d = copy_example();
    append(
        d.path(),
        "purposes.toml",
        r#"
[[deadline]]
priority = "URGENT"
accessibility = "direct"
within = "4h"

[[deadline]]
priority = "SOON"
within = "8 hours"

[[deadline]]
priority = "URGENT"
accessibility = "sideways"
purposes = ["terror"]
within = "0m"

[[deadline]]
priority = "URGENT"
accessibility = "direct"
within = "2h"
"#,
    );
    let diags = refused(d.path());
    let text = std::fs::read_to_string(d.path().join("purposes.toml")).unwrap();
    let at = |needle: &str, nth: usize| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    assert_reported(
        &diags,
        "purposes.toml",
        at("priority = \"SOON\"", 0),
        "priority \"SOON\" is not FLASH, URGENT or ROUTINE",
    );
    assert_reported(
        &diags,
        "purposes.toml",
        at("within = \"8 hours\"", 0),
        "is not a duration such as 30s, 45m, 8h or 3d",
    );
    assert_reported(
        &diags,
        "purposes.toml",
        at("sideways", 0),
        "accessibility \"sideways\" is not direct or indirect",
    );
    assert_reported(
        &diags,
        "purposes.toml",
        at("terror\"]", 0),
        "unknown purpose \"terror\"",
    );
    assert_reported(
        &diags,
        "purposes.toml",
        at("within = \"0m\"", 0),
        "not between one second and one year",
    );
    assert_reported(
        &diags,
        "purposes.toml",
        at("[[deadline]]", 3),
        "a second deadline for the same requests",
    );
}
