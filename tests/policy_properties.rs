//! Property tests: for arbitrary generated policies and labels, no flow rule
//! makes the engine release a portion that the mandatory rules forbid, and
//! with a grant-everything policy it releases exactly what they allow.
//!
//! The oracle below re-states the mandatory rules from DESIGN.md directly on
//! the generated model, independently of the engine's compiled form. The
//! generated policies use every construct that touches a mandatory rule:
//! principals without a station ceiling (`accreditation = "none"`) or
//! assigned to every case (`cases = ["*"]`), consents with a handling-code
//! ceiling (`max_handling`), the purpose-bound Diffusion restreinte
//! marking, and rules on originators, REL TO, the marking and any/all case
//! matching: none of them may release what the mandatory rules forbid.

use std::collections::BTreeSet;

use passerelle::domain::bytes::Bytes;
use passerelle::domain::decision::{Effect, ItemFacts};
use passerelle::domain::item::{Header, Manifest, Priority, MANIFEST_VERSION};
use passerelle::domain::label::{HandlingCode, Originator, SecurityLabel};
use passerelle::domain::principal::{Agency, PrincipalId};
use passerelle::policy::Policy;
use proptest::prelude::*;

const AGENCIES: [&str; 3] = ["a0", "a1", "a2"];
const CAVEATS: [&str; 3] = ["C0", "C1", "C2"];
const PURPOSES: [&str; 2] = ["p0", "p1"];
const CASES: [&str; 3] = ["K0", "K1", "K2"];
const THIRD: [&str; 3] = ["t0", "t1", "t-unknown"];
const HANDLING: [HandlingCode; 4] = [
    HandlingCode::H0,
    HandlingCode::H1,
    HandlingCode::H2,
    HandlingCode::H3,
];
const T0: i64 = 1_780_000_000;

#[derive(Clone, Debug)]
struct GPrincipal {
    agency: usize,
    role: usize,
    clearance: usize,
    /// `None`: `accreditation = "none"` (not a station).
    accreditation: Option<usize>,
    caveats: BTreeSet<usize>,
    cases: BTreeSet<usize>,
    /// `cases = ["*"]`.
    all_cases: bool,
}

#[derive(Clone, Debug)]
struct GConsent {
    tp: usize,
    agency: usize,
    max: usize,
    handling: BTreeSet<usize>,
    /// Written as `max_handling` (H0..=max) instead of `handling`.
    max_handling: Option<usize>,
    until: i64,
}

impl GConsent {
    fn covers(&self, h: usize) -> bool {
        match self.max_handling {
            Some(m) => h <= m,
            None => self.handling.contains(&h),
        }
    }
}

#[derive(Clone, Debug)]
struct GSelector {
    agency: Option<usize>,
    role: Option<usize>,
    principal: Option<usize>,
}

#[derive(Clone, Debug)]
struct GRule {
    deny: bool,
    from: GSelector,
    to: GSelector,
    purposes: Option<BTreeSet<usize>>,
    max_level: Option<usize>,
    caveats_any: Option<BTreeSet<usize>>,
    third_party: Option<bool>,
    case_assignment: Option<usize>,
    case_match_any: bool,
    handling: Option<BTreeSet<usize>>,
    /// Indices into ORIGINATORS.
    originators: Option<BTreeSet<usize>>,
    /// Agency indices; 3 stands for `none`.
    rel_to: Option<BTreeSet<usize>>,
    marked: Option<bool>,
}

/// What `originators` may name: the agencies and the declared third parties.
const ORIGINATORS: [&str; 5] = ["a0", "a1", "a2", "t0", "t1"];

#[derive(Clone, Debug)]
struct GPolicy {
    levels: usize,
    /// The purposes the Diffusion restreinte marking is bound to.
    marking_purposes: BTreeSet<usize>,
    principals: Vec<GPrincipal>,
    consents: Vec<GConsent>,
    rules: Vec<GRule>,
}

#[derive(Clone, Debug)]
struct GLabel {
    level: usize,
    caveats: BTreeSet<usize>,
    rel_to: BTreeSet<usize>,
    handling: Option<usize>,
    origin: usize,
    third_party: Option<usize>,
    marked: bool,
}

fn subset(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..n, 0..=n)
}

fn principal(levels: usize) -> impl Strategy<Value = GPrincipal> {
    (
        0..3usize,
        0..3usize,
        0..levels,
        proptest::option::weighted(0.7, 0..levels),
        subset(3),
        subset(3),
        proptest::bool::weighted(0.3),
    )
        .prop_map(
            |(agency, role, clearance, accreditation, caveats, cases, all_cases)| GPrincipal {
                agency,
                role,
                clearance,
                accreditation,
                caveats,
                cases,
                all_cases,
            },
        )
}

fn selector(n: usize) -> impl Strategy<Value = GSelector> {
    prop_oneof![
        Just(GSelector {
            agency: None,
            role: None,
            principal: None
        }),
        (0..n).prop_map(|p| GSelector {
            agency: None,
            role: None,
            principal: Some(p)
        }),
        (0..n).prop_map(|p| GSelector {
            agency: Some(p),
            role: None,
            principal: None
        }),
        (0..n).prop_map(|p| GSelector {
            agency: None,
            role: Some(p),
            principal: None
        }),
    ]
}

fn rule(levels: usize, n: usize) -> impl Strategy<Value = GRule> {
    (
        proptest::bool::weighted(0.2),
        selector(n),
        selector(n),
        proptest::option::of(proptest::collection::btree_set(0..2usize, 1..=2)),
        proptest::option::of(0..levels),
        proptest::option::of(proptest::collection::btree_set(0..3usize, 1..=3)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0..3usize),
        proptest::option::of(proptest::collection::btree_set(0..5usize, 1..=5)),
        (
            any::<bool>(),
            proptest::option::weighted(0.3, proptest::collection::btree_set(0..5usize, 1..=5)),
            proptest::option::weighted(0.3, proptest::collection::btree_set(0..4usize, 1..=4)),
            proptest::option::weighted(0.3, any::<bool>()),
        ),
    )
        .prop_map(
            |(
                deny,
                from,
                to,
                purposes,
                max_level,
                caveats_any,
                third_party,
                case_assignment,
                handling,
                (case_match_any, originators, rel_to, marked),
            )| GRule {
                deny,
                from,
                to,
                purposes,
                max_level,
                caveats_any,
                third_party,
                case_assignment,
                case_match_any,
                handling,
                originators,
                rel_to,
                marked,
            },
        )
}

fn consent(levels: usize) -> impl Strategy<Value = GConsent> {
    (
        0..2usize,
        0..3usize,
        0..levels,
        proptest::collection::btree_set(0..4usize, 1..=4),
        proptest::option::weighted(0.4, 0..4usize),
        -3i64..3,
    )
        .prop_map(|(tp, agency, max, handling, max_handling, d)| GConsent {
            tp,
            agency,
            max,
            handling,
            max_handling,
            until: T0 + d * 3_600,
        })
}

fn policy() -> impl Strategy<Value = GPolicy> {
    (2..6usize).prop_flat_map(|levels| {
        proptest::collection::vec(principal(levels), 1..8).prop_flat_map(move |principals| {
            let n = principals.len();
            (
                Just(principals),
                proptest::collection::vec(consent(levels), 0..8),
                proptest::collection::vec(rule(levels, n), 0..5),
                any::<bool>(),
                proptest::collection::btree_set(0..2usize, 1..=2),
            )
                .prop_map(
                    move |(principals, consents, mut rules, grant_all, marking_purposes)| {
                        if grant_all {
                            rules.push(GRule {
                                deny: false,
                                from: GSelector {
                                    agency: None,
                                    role: None,
                                    principal: None,
                                },
                                to: GSelector {
                                    agency: None,
                                    role: None,
                                    principal: None,
                                },
                                purposes: None,
                                max_level: None,
                                caveats_any: None,
                                third_party: None,
                                case_assignment: None,
                                case_match_any: false,
                                handling: None,
                                originators: None,
                                rel_to: None,
                                marked: None,
                            });
                        }
                        GPolicy {
                            levels,
                            marking_purposes,
                            principals,
                            consents,
                            rules,
                        }
                    },
                )
        })
    })
}

/// Often empty, so that more portions pass the other checks and reach the
/// one under test.
fn sparse_subset(n: usize) -> impl Strategy<Value = BTreeSet<usize>> {
    prop_oneof![Just(BTreeSet::new()), subset(n)]
}

fn label(levels: usize) -> impl Strategy<Value = GLabel> {
    (
        0..levels,
        sparse_subset(3),
        sparse_subset(3),
        proptest::option::weighted(0.8, 0..4usize),
        0..3usize,
        proptest::option::weighted(0.6, 0..3usize),
    )
        .prop_map(
            |(level, caveats, rel_to, handling, origin, third_party)| GLabel {
                level,
                caveats,
                rel_to,
                handling,
                origin,
                third_party,
                marked: false,
            },
        )
}

fn pid(g: &GPolicy, i: usize) -> String {
    format!("{}/p{i}", AGENCIES[g.principals[i].agency])
}

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|x| format!("\"{x}\"")).collect();
    format!("[{}]", v.join(", "))
}

fn sel(g: &GPolicy, s: &GSelector) -> String {
    let mut parts = Vec::new();
    if let Some(a) = s.agency {
        // Select the agency of principal `a`, so the selector matches someone.
        parts.push(format!(
            "agencies = [\"{}\"]",
            AGENCIES[g.principals[a].agency]
        ));
    }
    if let Some(r) = s.role {
        parts.push(format!("roles = [\"r{}\"]", g.principals[r].role));
    }
    if let Some(p) = s.principal {
        parts.push(format!("principals = [\"{}\"]", pid(g, p)));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn to_toml(g: &GPolicy) -> String {
    let mut s = String::from("[scheme]\nname = \"generated\"\n");
    for l in 0..g.levels {
        s += &format!("[[level]]\nid = \"l{l}\"\nrank = {l}\nnames = [\"L{l}\"]\n");
    }
    for c in CAVEATS {
        s += &format!("[[caveat]]\nid = \"{c}\"\n");
    }
    for p in PURPOSES {
        s += &format!("[[purpose]]\nid = \"{p}\"\n");
    }
    for c in CASES {
        s += &format!("[[case]]\nid = \"{c}\"\npurpose = \"p0\"\n");
    }
    for a in AGENCIES {
        s += &format!("[[agency]]\nid = \"{a}\"\ntrust_domain = \"{a}.example\"\n");
    }
    for t in &THIRD[..2] {
        s += &format!("[[third_party]]\nid = \"{t}\"\n");
    }
    s += &format!(
        "[[marking]]\nid = \"diffusion-restreinte\"\nnames = [\"DR\"]\npurposes = {}\n",
        list(g.marking_purposes.iter().map(|p| PURPOSES[*p]))
    );
    for (i, p) in g.principals.iter().enumerate() {
        s += &format!(
            "[[principal]]\nid = \"{}\"\nkind = \"desk\"\nrole = \"r{}\"\nclearance = \"L{}\"\naccreditation = \"{}\"\ncaveats = {}\ncases = {}\n",
            pid(g, i),
            p.role,
            p.clearance,
            p.accreditation
                .map(|a| format!("L{a}"))
                .unwrap_or_else(|| "none".into()),
            list(p.caveats.iter().map(|c| CAVEATS[*c])),
            if p.all_cases {
                "[\"*\"]".to_string()
            } else {
                list(p.cases.iter().map(|c| CASES[*c]))
            },
        );
    }
    for (i, c) in g.consents.iter().enumerate() {
        let until = time::OffsetDateTime::from_unix_timestamp(c.until)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let handling = match c.max_handling {
            Some(m) => format!("max_handling = \"H{m}\""),
            None => format!(
                "handling = {}",
                list(c.handling.iter().map(|h| format!("H{h}")))
            ),
        };
        s += &format!(
            "[[consent]]\nid = \"c{i}\"\noriginator = \"{}\"\nto_agency = \"{}\"\nmax_level = \"L{}\"\n{handling}\nuntil = {until}\n",
            THIRD[c.tp],
            AGENCIES[c.agency],
            c.max,
        );
    }
    for (i, r) in g.rules.iter().enumerate() {
        s += &format!(
            "[[{}]]\nid = \"rule{i}\"\nfrom = {}\nto = {}\n",
            if r.deny { "deny" } else { "grant" },
            sel(g, &r.from),
            sel(g, &r.to)
        );
        if let Some(p) = &r.purposes {
            s += &format!("purposes = {}\n", list(p.iter().map(|x| PURPOSES[*x])));
        }
        if let Some(m) = r.max_level {
            s += &format!("max_level = \"L{m}\"\n");
        }
        if let Some(c) = &r.caveats_any {
            s += &format!("caveats_any = {}\n", list(c.iter().map(|x| CAVEATS[*x])));
        }
        if let Some(t) = r.third_party {
            s += &format!("third_party = {t}\n");
        }
        if let Some(a) = r.case_assignment {
            s += &format!(
                "case_assignment = \"{}\"\ncase_match = \"{}\"\n",
                ["recipient", "sender", "both"][a],
                if r.case_match_any { "any" } else { "all" }
            );
        }
        if let Some(o) = &r.originators {
            s += &format!(
                "originators = {}\n",
                list(o.iter().map(|x| ORIGINATORS[*x]))
            );
        }
        if let Some(a) = &r.rel_to {
            s += &format!(
                "rel_to = {}\n",
                list(
                    a.iter()
                        .map(|x| AGENCIES.get(*x).copied().unwrap_or("none"))
                )
            );
        }
        if let Some(m) = r.marked {
            s += &format!("diffusion_restreinte = {m}\n");
        }
        if let Some(h) = &r.handling {
            s += &format!(
                "handling = {}\n",
                list(h.iter().map(|x| if *x == 4 {
                    "none".to_string()
                } else {
                    format!("H{x}")
                }))
            );
        }
    }
    s
}

fn security_label(l: &GLabel) -> SecurityLabel {
    SecurityLabel {
        level: format!("L{}", l.level),
        caveats: l.caveats.iter().map(|c| CAVEATS[*c].to_string()).collect(),
        rel_to: l
            .rel_to
            .iter()
            .map(|a| Agency::new(AGENCIES[*a]).unwrap())
            .collect(),
        handling: l.handling.map(|h| HANDLING[h]),
        diffusion_restreinte: l.marked,
        originator: Originator {
            agency: Agency::new(AGENCIES[l.origin]).unwrap(),
            third_party: l.third_party.map(|t| THIRD[t].to_string()),
        },
        evaluation: None,
        review_date: None,
    }
}

/// The item label that dominates the portions (when one exists).
fn dominating(portions: &[GLabel]) -> GLabel {
    let mut rel: Option<BTreeSet<usize>> = None;
    for p in portions.iter().filter(|p| !p.rel_to.is_empty()) {
        rel = Some(match rel {
            None => p.rel_to.clone(),
            Some(r) => r.intersection(&p.rel_to).copied().collect(),
        });
    }
    GLabel {
        level: portions.iter().map(|p| p.level).max().unwrap_or(0),
        caveats: portions
            .iter()
            .flat_map(|p| p.caveats.iter().copied())
            .collect(),
        rel_to: rel.unwrap_or_default(),
        handling: portions.iter().find_map(|p| p.handling),
        origin: portions[0].origin,
        third_party: None,
        marked: portions.iter().any(|p| p.marked),
    }
}

/// The mandatory rules, stated directly on the generated model: those on
/// the item as a whole (the sender `s` is cleared for the item label
/// `item`; marked material only for a purpose of the marking), then those
/// on the portion `l` for the recipient `r`.
#[allow(clippy::too_many_arguments)]
fn mandatory_allows(
    g: &GPolicy,
    s: usize,
    item: &GLabel,
    purpose: usize,
    r: usize,
    l: &GLabel,
    now: i64,
) -> bool {
    let sender = &g.principals[s];
    let sender_ok = item.level <= sender.clearance && item.caveats.is_subset(&sender.caveats);
    let marking_ok = !item.marked || g.marking_purposes.contains(&purpose);
    let p = &g.principals[r];
    let level_ok = l.level <= p.clearance && p.accreditation.map_or(true, |a| l.level <= a);
    let caveats_ok = l.caveats.is_subset(&p.caveats);
    let rel_ok = l.rel_to.is_empty() || l.rel_to.contains(&p.agency);
    let tp_ok = match l.third_party {
        None => true,
        Some(_) if l.origin == p.agency => true,
        Some(t) => g.consents.iter().any(|c| {
            c.tp == t
                && c.agency == p.agency
                && l.level <= c.max
                && l.handling.is_some_and(|h| c.covers(h))
                && now <= c.until
        }),
    };
    sender_ok && marking_ok && level_ok && caveats_ok && rel_ok && tp_ok
}

fn scenario() -> impl Strategy<
    Value = (
        GPolicy,
        Vec<GLabel>,
        usize,
        usize,
        usize,
        BTreeSet<usize>,
        i64,
    ),
> {
    policy().prop_flat_map(|g| {
        let n = g.principals.len();
        let levels = g.levels;
        (
            Just(g),
            proptest::collection::vec(label(levels), 1..4),
            0..n,
            0..n,
            0..2usize,
            subset(3),
            -4i64..4,
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(g, mut portions, s, r, purpose, cases, d, marked)| {
                // The marking travels with every portion of a marked item.
                for p in &mut portions {
                    p.marked = marked;
                }
                (g, portions, s, r, purpose, cases, T0 + d * 3_600)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_rule_releases_what_the_mandatory_rules_forbid(
        (g, portions, s, r, purpose, cases, now) in scenario()
    ) {
        let text = to_toml(&g);
        let policy = match Policy::from_sources(&[("generated.toml".into(), text.clone())]) {
            Ok(p) => p,
            // Every generated policy is valid by construction: the loader
            // must accept it.
            Err(e) => return Err(TestCaseError::fail(format!("refused: {e}\n{text}"))),
        };
        let item = dominating(&portions);
        let labels: Vec<SecurityLabel> = portions.iter().map(security_label).collect();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            header: Header {
                id: "x".into(),
                sender: PrincipalId::new(pid(&g, s)).unwrap(),
                recipients: vec![PrincipalId::new(pid(&g, r)).unwrap()],
                created: now,
                priority: Priority::Routine,
                purpose: PURPOSES[purpose].into(),
                cases: cases.iter().map(|c| CASES[*c].to_string()).collect(),
                language: "fr".into(),
                expires: None,
                request: None,
                in_reply_to: None,
            },
            label: security_label(&item),
            portions: labels.iter().map(|_| Bytes(vec![0; 32])).collect(),
        };
        let facts = ItemFacts { manifest: &manifest, portion_labels: labels.iter().collect() };
        let recipient = PrincipalId::new(pid(&g, r)).unwrap();
        let d = policy.decide(&facts, &recipient, now);

        // Deterministic, and explain agrees with decide.
        prop_assert_eq!(&d, &policy.decide(&facts, &recipient, now));
        prop_assert_eq!(&d, &policy.explain(&facts, &recipient, now).decision);
        prop_assert_eq!(d.effect() == Effect::Allow, !d.portions().is_empty());

        for &i in d.portions() {
            let l = &portions[i as usize];
            prop_assert!(
                mandatory_allows(&g, s, &item, purpose, r, l, now),
                "portion {} released against the mandatory rules\n{}\n{:?}", i, text, d
            );
        }

        // With a grant for everyone and no deny rule, exactly the portions the
        // mandatory rules allow are released.
        let grant_all = g.rules.iter().any(|x| !x.deny && x.from.agency.is_none() && x.from.role.is_none() && x.from.principal.is_none()
            && x.to.agency.is_none() && x.to.role.is_none() && x.to.principal.is_none()
            && x.purposes.is_none() && x.max_level.is_none() && x.caveats_any.is_none()
            && x.third_party.is_none() && x.case_assignment.is_none() && x.handling.is_none()
            && x.originators.is_none() && x.rel_to.is_none() && x.marked.is_none());
        let no_deny = g.rules.iter().all(|x| !x.deny);
        let consistent = !d.rules().iter().any(|x| x == "mandatory.label_consistency");
        if grant_all && no_deny && consistent {
            let expected: Vec<u32> = portions
                .iter()
                .enumerate()
                .filter(|(_, l)| mandatory_allows(&g, s, &item, purpose, r, l, now))
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(&d.portions(), &expected, "{}", text);
        }
    }
}
