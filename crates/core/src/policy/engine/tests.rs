//! Unit tests of the engine: decisions, explanations and label checks on
//! small inline policies.

use super::*;
use crate::domain::bytes::Bytes;
use crate::domain::item::{Header, Manifest, MANIFEST_VERSION};
use crate::domain::principal::Agency;

const POLICY: &str = r#"
[scheme]
name = "mini"
[[level]]
id = "low"
rank = 0
names = ["LOW"]
[[level]]
id = "high"
rank = 1
names = ["HIGH"]
[[caveat]]
id = "X"
[[purpose]]
id = "p"
[[agency]]
id = "a"
trust_domain = "a.example"
[[agency]]
id = "b"
trust_domain = "b.example"
[[principal]]
id = "a/s"
kind = "desk"
role = "sender"
clearance = "HIGH"
accreditation = "HIGH"
caveats = ["X"]
[[principal]]
id = "b/r"
kind = "station"
role = "reader"
clearance = "HIGH"
accreditation = "LOW"
[[grant]]
id = "g"
from = { agencies = ["a"] }
to = { agencies = ["b"] }
purposes = ["p"]
[[deny]]
id = "d"
from = {}
to = {}
priorities = ["FLASH"]
"#;

fn policy() -> Policy {
    Policy::from_sources(&[("p.toml".into(), POLICY.into())]).unwrap()
}

fn manifest(label: SecurityLabel, priority: Priority, n: usize) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        header: Header {
            id: "i".into(),
            sender: PrincipalId::new("a/s").unwrap(),
            recipients: vec![PrincipalId::new("b/r").unwrap()],
            created: 0,
            priority,
            purpose: "p".into(),
            cases: vec![],
            language: "fr".into(),
            expires: None,
            request: None,
            in_reply_to: None,
        },
        label,
        portions: vec![Bytes(vec![]); n],
    }
}

fn lbl(level: &str) -> SecurityLabel {
    SecurityLabel::new(level, Agency::new("a").unwrap())
}

#[test]
fn grant_deny_default_and_ceiling() {
    let p = policy();
    let to = PrincipalId::new("b/r").unwrap();
    let (high, low) = (lbl("HIGH"), lbl("LOW"));
    let m = manifest(high.clone(), Priority::Routine, 2);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&high, &low],
    };
    let d = p.decide(&facts, &to, 0);
    assert_eq!(d.effect(), Effect::Allow);
    assert_eq!(d.portions(), vec![1]);
    assert_eq!(
        d.rules(),
        vec![rule_ids::ACCREDITATION.to_string(), "g".to_string()]
    );
    // The sender-facing reasons never state the recipient's levels.
    assert!(d
        .reasons()
        .iter()
        .all(|r| !r.contains("LOW") || r.starts_with("portion 1")));

    // Deny wins over the grant.
    let m = manifest(low.clone(), Priority::Flash, 1);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    let d = p.decide(&facts, &to, 0);
    assert_eq!(
        (d.effect(), d.rules().to_vec()),
        (Effect::Deny, vec!["d".to_string()])
    );

    // No grant back from b to a: deny by default.
    let back = PrincipalId::new("a/s").unwrap();
    let mut m = manifest(low.clone(), Priority::Routine, 1);
    m.header.sender = to.clone();
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    let d = p.decide(&facts, &back, 0);
    assert_eq!(d.rules(), vec![rule_ids::DEFAULT_DENY.to_string()]);
    assert!(!d.allowed());
}

#[test]
fn no_portions_and_bad_labels_deny() {
    let p = policy();
    let to = PrincipalId::new("b/r").unwrap();
    let low = lbl("LOW");
    let m = manifest(low.clone(), Priority::Routine, 0);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![],
    };
    assert_eq!(
        p.decide(&facts, &to, 0).rules(),
        vec![rule_ids::LABEL_WELL_FORMED]
    );
    let mut odd = lbl("LOW");
    odd.originator.agency = Agency::new("zz").unwrap();
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&odd],
    };
    let d = p.decide(&facts, &to, 0);
    assert_eq!(d.rules(), vec![rule_ids::LABEL_WELL_FORMED]);
    assert!(
        d.reasons()[0].contains("originator agency zz"),
        "{:?}",
        d.reasons()
    );
}

#[test]
fn unknown_cases_and_purposes_fail_closed() {
    let extra = "[[case]]\nid = \"K\"\npurpose = \"p\"\n[[deny]]\nid = \"no-k\"\nfrom = {}\nto = {}\ncases = [\"K\"]\n";
    let p = Policy::from_sources(&[("p.toml".into(), format!("{POLICY}{extra}"))]).unwrap();
    let to = PrincipalId::new("b/r").unwrap();
    let low = lbl("LOW");
    let mut m = manifest(low.clone(), Priority::Routine, 1);
    m.header.cases = vec!["K".into(), "UNKNOWN-1".into()];
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    assert_eq!(p.decide(&facts, &to, 0).rules(), vec!["no-k".to_string()]);
    // Case references compare in any letter case: "k" is the case K.
    m.header.cases = vec!["k".into()];
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    assert_eq!(p.decide(&facts, &to, 0).rules(), vec!["no-k".to_string()]);
    m.header.cases = vec![];
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    assert!(p.decide(&facts, &to, 0).allowed());
    // An unknown purpose: the grant (purposes = ["p"]) fails closed.
    m.header.purpose = "P".into();
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    assert_eq!(
        p.decide(&facts, &to, 0).rules(),
        vec![rule_ids::DEFAULT_DENY]
    );
}

#[test]
fn rel_to_narrower_on_portion_breaks_consistency() {
    let p = policy();
    let to = PrincipalId::new("b/r").unwrap();
    let item = lbl("LOW");
    let mut portion = lbl("LOW");
    portion.rel_to.insert(Agency::new("b").unwrap());
    let m = manifest(item, Priority::Routine, 1);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&portion],
    };
    assert_eq!(
        p.decide(&facts, &to, 0).rules(),
        vec![rule_ids::LABEL_CONSISTENCY]
    );
}

#[test]
fn check_labels_names_the_field_and_what_is_allowed() {
    let p = policy();
    let (high, low) = (lbl("HIGH"), lbl("LOW"));
    let check = |item: &SecurityLabel, portions: Vec<&SecurityLabel>| {
        let m = manifest(item.clone(), Priority::Routine, portions.len());
        p.check_labels(&ItemFacts {
            manifest: &m,
            portion_labels: portions,
        })
    };
    assert_eq!(check(&high, vec![&high, &low]), Ok(()));

    let e = check(&lbl("TOP"), vec![&low]).unwrap_err();
    assert_eq!(e.field, "label.level");
    assert!(
        e.problem.contains("\"TOP\"") && e.problem.contains("LOW, HIGH"),
        "{e}"
    );

    let e = check(&low, vec![&high]).unwrap_err();
    assert_eq!(e.field, "portions[0].label");
    assert!(e.problem.contains("dominate"), "{e}");

    let mut odd = lbl("LOW");
    odd.caveats.insert("NOPE".into());
    let e = check(&low, vec![&low, &odd]).unwrap_err();
    assert_eq!(e.field, "portions[1].label.caveats");

    odd = lbl("LOW");
    odd.originator.agency = Agency::new("zz").unwrap();
    let e = check(&odd, vec![&low]).unwrap_err();
    assert_eq!(e.field, "label.originator.agency");

    // What the sender is told matches what the decision would do.
    let m = manifest(low.clone(), Priority::Routine, 1);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&high],
    };
    assert_eq!(
        p.decide(&facts, &PrincipalId::new("b/r").unwrap(), 0)
            .rules(),
        vec![rule_ids::LABEL_CONSISTENCY]
    );
}

fn with(extra: &str) -> Policy {
    Policy::from_sources(&[("p.toml".into(), format!("{POLICY}{extra}"))]).unwrap()
}

#[test]
fn case_match_any_all_and_every_case() {
    let extra = r#"
[[case]]
id = "K1"
purpose = "p"
[[case]]
id = "K2"
purpose = "p"
[[principal]]
id = "b/one"
kind = "desk"
role = "one"
clearance = "HIGH"
accreditation = "none"
cases = ["K1"]
[[principal]]
id = "b/all"
kind = "desk"
role = "all"
clearance = "HIGH"
accreditation = "none"
cases = ["*"]
[[grant]]
id = "any"
from = { agencies = ["a"] }
to = { roles = ["one", "all"] }
case_assignment = "recipient"
case_match = "any"
[[grant]]
id = "all"
from = { agencies = ["a"] }
to = { roles = ["one", "all"] }
case_assignment = "recipient"
case_match = "all"
"#;
    let p = with(extra);
    let low = lbl("LOW");
    let decide = |cases: &[&str], to: &str| {
        let mut m = manifest(low.clone(), Priority::Routine, 1);
        m.header.purpose = "other".into();
        m.header.cases = cases.iter().map(|c| c.to_string()).collect();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        p.decide(&facts, &PrincipalId::new(to).unwrap(), 0)
            .rules()
            .to_vec()
    };
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Two cases, the recipient assigned to one: `any` grants, `all` does not.
    assert_eq!(decide(&["K1", "K2"], "b/one"), ids(&["any"]));
    assert_eq!(decide(&["K1"], "b/one"), ids(&["all", "any"]));
    // `*` is every declared case…
    assert_eq!(decide(&["K1", "K2"], "b/all"), ids(&["all", "any"]));
    // … not a case the policy does not declare: `all` fails closed,
    // `any` still matches on the declared one.
    assert_eq!(decide(&["K2", "K9"], "b/all"), ids(&["any"]));
    assert_eq!(decide(&["K9"], "b/all"), ids(&[rule_ids::DEFAULT_DENY]));
    // No case named: neither matches.
    assert_eq!(decide(&[], "b/all"), ids(&[rule_ids::DEFAULT_DENY]));
    // No station ceiling: HIGH reaches a desk with accreditation none.
    let high = lbl("HIGH");
    let mut m = manifest(high.clone(), Priority::Routine, 1);
    m.header.cases = vec!["K1".into()];
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&high],
    };
    assert!(p
        .decide(&facts, &PrincipalId::new("b/one").unwrap(), 0)
        .allowed());
    // explain says which case is undeclared.
    m.header.cases = vec!["K1".into(), "K9".into()];
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&high],
    };
    let ex = p.explain(&facts, &PrincipalId::new("b/one").unwrap(), 0);
    assert!(
        ex.item
            .iter()
            .any(|i| i.contains("case \"K9\" is not declared")),
        "{ex}"
    );
    assert!(
        ex.to_string()
            .contains("accreditation none (not a station)"),
        "{ex}"
    );
}

#[test]
fn sender_clearance_and_marking_purpose_deny_every_recipient() {
    let extra = r#"
[[purpose]]
id = "q"
[[marking]]
id = "diffusion-restreinte"
names = ["DR"]
purposes = ["p"]
"#;
    let p = with(extra);
    let to = PrincipalId::new("b/r").unwrap();
    // The sender a/s holds X and is cleared HIGH: LOW with X is fine.
    let mut low = lbl("LOW");
    low.caveats.insert("X".into());
    let m = manifest(low.clone(), Priority::Routine, 1);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    assert_ne!(
        p.decide(&facts, &to, 0).rules(),
        vec![rule_ids::SENDER_CLEARANCE]
    );
    // b/r (HIGH clearance, no caveat) cannot originate X material.
    let mut m = manifest(low.clone(), Priority::Routine, 1);
    m.header.sender = to.clone();
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&low],
    };
    let d = p.decide(&facts, &PrincipalId::new("a/s").unwrap(), 0);
    assert_eq!(d.rules(), vec![rule_ids::SENDER_CLEARANCE]);

    // Marked material: for purpose p only.
    let mut dr = lbl("LOW");
    dr.diffusion_restreinte = true;
    let mut m = manifest(dr.clone(), Priority::Routine, 1);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&dr],
    };
    assert!(p.decide(&facts, &to, 0).allowed());
    m.header.purpose = "q".into();
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&dr],
    };
    let d = p.decide(&facts, &to, 0);
    assert_eq!(d.rules(), vec![rule_ids::MARKING_PURPOSE]);
    assert!(d.reasons()[0].contains("bound to the purposes p"), "{d:?}");
    // Under a policy that declares no such marking, the label is not
    // well formed, and the sender is told at submission.
    let plain = policy();
    let d = plain.decide(&facts, &to, 0);
    assert_eq!(d.rules(), vec![rule_ids::LABEL_WELL_FORMED]);
    let e = plain.check_labels(&facts).unwrap_err();
    assert_eq!(e.field, "label.diffusion_restreinte");
}

#[test]
fn answer_deadlines_default_to_the_directive_and_the_policy_may_shorten_them() {
    use crate::domain::item::{Accessibility, Request};
    let p = policy();
    let m = |prio, acc| {
        let mut m = manifest(lbl("LOW"), prio, 1);
        m.header.request = Some(Request { accessibility: acc });
        m
    };
    let due = |p: &Policy, prio, acc| p.answer_due(&m(prio, acc).header, 1_000);
    assert_eq!(
        due(&p, Priority::Flash, Accessibility::Indirect),
        Some(1_000 + 3_600)
    );
    assert_eq!(
        due(&p, Priority::Urgent, Accessibility::Direct),
        Some(1_000 + 8 * 3_600)
    );
    assert_eq!(
        due(&p, Priority::Urgent, Accessibility::Indirect),
        Some(1_000 + 3 * 86_400)
    );
    assert_eq!(
        due(&p, Priority::Routine, Accessibility::Direct),
        Some(1_000 + 7 * 86_400)
    );
    // Not a request: no deadline.
    assert_eq!(
        p.answer_due(&manifest(lbl("LOW"), Priority::Flash, 1).header, 1_000),
        None
    );

    let p = with(
        r#"
[[purpose]]
id = "q"
[[deadline]]
priority = "URGENT"
within = "6h"
[[deadline]]
priority = "URGENT"
accessibility = "direct"
purposes = ["p"]
within = "2h"
[[deadline]]
priority = "ROUTINE"
purposes = ["q"]
within = "1d"
"#,
    );
    // The shortest of the policy's matching entries.
    assert_eq!(
        due(&p, Priority::Urgent, Accessibility::Direct),
        Some(1_000 + 2 * 3_600)
    );
    assert_eq!(
        due(&p, Priority::Urgent, Accessibility::Indirect),
        Some(1_000 + 6 * 3_600)
    );
    // No entry for this purpose: the default.
    assert_eq!(
        due(&p, Priority::Routine, Accessibility::Direct),
        Some(1_000 + 7 * 86_400)
    );
    assert_eq!(
        p.deadline_for(Priority::Routine, "q", Accessibility::Direct)
            .map(|d| d.within_secs),
        Some(86_400)
    );
    // The table is part of the digest.
    assert_ne!(
        p.digest_hex(),
        with("[[purpose]]\nid = \"q\"\n").digest_hex()
    );
}
