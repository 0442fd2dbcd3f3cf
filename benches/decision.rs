//! Decision latency: one decision for one recipient, against the example
//! policy and against a generated policy of 10,000 principals and 1,000 flow
//! rules. Targets: < 2 µs and < 50 µs median.
//!
//! Run briefly with
//! `cargo bench --bench decision -- --warm-up-time 1 --measurement-time 3`.
//!
//! Cases:
//! - `example/tearline-2-portions`: VSSE → `police/spoc`, a SECRET DGST
//!   report and its CONFIDENTIEL H2 tearline (third-party consent checked,
//!   one portion released).
//! - `example/1-portion`: VSSE → `police/lo/rabat`, CONFIDENTIEL, case rule.
//! - `generated-10k-principals-1k-rules`: a deterministic policy (a third of
//!   the rules select by agency, a third by roles, a third by principal; one
//!   in ten is a deny), four portions released; and a recipient for which
//!   nothing matches.
//! - `…-all-candidates`: the same size where every rule selects every
//!   recipient, so each decision walks all 1,000 rules (about 110 of them
//!   grant, and all are named in the decision).
//!
//! Figures (2-core shared machine, load average 4.5–5.6 from other builds,
//! criterion median of 100 samples, release profile, 2026-11-25):
//! 1.08 µs, 0.68 µs; 3.3 µs and 1.5 µs; 31.9 µs and 6.0 µs. Compiling the
//! generated policy from TOML takes about 0.7 s.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use passerelle::domain::bytes::Bytes;
use passerelle::domain::decision::ItemFacts;
use passerelle::domain::item::{Header, Manifest, Priority, MANIFEST_VERSION};
use passerelle::domain::label::{HandlingCode, SecurityLabel};
use passerelle::domain::principal::{Agency, PrincipalId};
use passerelle::policy::Policy;

fn manifest(
    sender: &str,
    recipient: &str,
    cases: &[&str],
    label: SecurityLabel,
    n: usize,
) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        header: Header {
            id: "bench-1".into(),
            sender: PrincipalId::new(sender).unwrap(),
            recipients: vec![PrincipalId::new(recipient).unwrap()],
            created: 1_795_000_000,
            priority: Priority::Routine,
            purpose: "terrorism".into(),
            cases: cases.iter().map(|c| c.to_string()).collect(),
            language: "fr".into(),
            expires: None,
            request: None,
            in_reply_to: None,
        },
        label,
        portions: vec![Bytes(vec![0; 32]); n],
    }
}

fn example(c: &mut Criterion) {
    let policy =
        passerelle::policy_files::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap();
    let vsse = Agency::new("vsse").unwrap();
    let mut secret = SecurityLabel::new("SECRET", vsse.clone());
    secret.originator.third_party = Some("partner/ma-dgst".into());
    secret.handling = Some(HandlingCode::H2);
    let mut tearline = secret.clone();
    tearline.level = "CONFIDENTIEL".into();
    let m = manifest(
        "vsse/analysis/ct",
        "police/spoc",
        &["CT-2026-014"],
        secret.clone(),
        2,
    );
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: vec![&secret, &tearline],
    };
    let to = PrincipalId::new("police/spoc").unwrap();
    assert_eq!(
        policy.decide(&facts, &to, 1_795_000_000).portions(),
        vec![1]
    );
    c.bench_function("decide/example/tearline-2-portions", |b| {
        b.iter(|| black_box(&policy).decide(black_box(&facts), black_box(&to), 1_795_000_000))
    });

    let plain = SecurityLabel::new("CONFIDENTIEL", vsse);
    let m1 = manifest(
        "vsse/analysis/ct",
        "police/lo/rabat",
        &["CT-2026-014"],
        plain.clone(),
        1,
    );
    let facts1 = ItemFacts {
        manifest: &m1,
        portion_labels: vec![&plain],
    };
    let rabat = PrincipalId::new("police/lo/rabat").unwrap();
    assert!(policy.decide(&facts1, &rabat, 1_795_000_000).allowed());
    c.bench_function("decide/example/1-portion", |b| {
        b.iter(|| black_box(&policy).decide(black_box(&facts1), black_box(&rabat), 1_795_000_000))
    });
}

/// A small deterministic generator (xorshift64*), so the generated policy is
/// the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const LEVELS: [&str; 5] = [
    "NON CLASSIFIÉ",
    "RESTREINT",
    "CONFIDENTIEL",
    "SECRET",
    "TRÈS SECRET",
];
const AGENCIES: [&str; 3] = ["police", "vsse", "oversight"];
const ROLES: usize = 40;
const CASES: usize = 200;

fn generated_policy(principals: usize, rules: usize, worst_case: bool) -> (Policy, Vec<String>) {
    let mut rng = Rng(0x5eed_1234_dead_beef);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<(String, String)> = ["scheme.toml", "agencies.toml", "third_parties.toml"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect();
    let mut s = String::new();
    for p in [
        "terrorism",
        "extremism",
        "espionage",
        "interference",
        "proliferation",
        "oversight",
    ] {
        s += &format!("[[purpose]]\nid = \"{p}\"\n");
    }
    for k in 0..CASES {
        s += &format!("[[case]]\nid = \"K-{k}\"\npurpose = \"terrorism\"\n");
    }
    let mut ids = Vec::with_capacity(principals);
    for i in 0..principals {
        let agency = AGENCIES[rng.below(3)];
        let id = format!("{agency}/unit{}/p{i}", i % 97);
        let clearance = 1 + rng.below(4);
        let accreditation = 1 + rng.below(4);
        let cases: Vec<String> = (0..3)
            .map(|_| format!("\"K-{}\"", rng.below(CASES)))
            .collect();
        let caveats = if rng.below(4) == 0 {
            "[\"SIGINT\"]"
        } else {
            "[]"
        };
        s += &format!(
            "[[principal]]\nid = \"{id}\"\nkind = \"desk\"\nrole = \"role{}\"\nclearance = \"{}\"\naccreditation = \"{}\"\ncaveats = {caveats}\ncases = [{}]\n",
            rng.below(ROLES),
            LEVELS[clearance],
            LEVELS[accreditation],
            cases.join(", ")
        );
        ids.push(id);
    }
    for r in 0..rules {
        let kind = if r % 10 == 0 { "deny" } else { "grant" };
        let from = match rng.below(3) {
            0 => format!("{{ agencies = [\"{}\"] }}", AGENCIES[rng.below(3)]),
            1 => format!(
                "{{ roles = [\"role{}\", \"role{}\"] }}",
                rng.below(ROLES),
                rng.below(ROLES)
            ),
            _ => format!("{{ principals = [\"{}\"] }}", ids[rng.below(ids.len())]),
        };
        let to = match if worst_case { 0 } else { rng.below(3) } {
            0 if worst_case => "{ agencies = [\"police\", \"vsse\", \"oversight\"] }".to_string(),
            0 => format!("{{ agencies = [\"{}\"] }}", AGENCIES[rng.below(3)]),
            1 => format!("{{ roles = [\"role{}\"] }}", rng.below(ROLES)),
            _ => format!("{{ principals = [\"{}\"] }}", ids[rng.below(ids.len())]),
        };
        s += &format!("[[{kind}]]\nid = \"gen.{r}\"\nfrom = {from}\nto = {to}\n");
        if kind == "deny" {
            s += "caveats_any = [\"HUMINT\"]\n";
        } else {
            s += "purposes = [\"terrorism\", \"extremism\"]\ncase_assignment = \"recipient\"\ncase_match = \"all\"\nmax_level = \"SECRET\"\n";
        }
    }
    files.push(("generated.toml".into(), s));
    (Policy::from_sources(&files).unwrap(), ids)
}

fn large(c: &mut Criterion) {
    large_with(c, false);
    large_with(c, true);
}

/// `worst_case`: every rule selects every recipient, so a decision walks all
/// 1,000 rules for each portion (in the realistic mix, a recipient is
/// selected by about a tenth of them).
fn large_with(c: &mut Criterion, worst_case: bool) {
    let name = if worst_case {
        "generated-10k-principals-1k-rules-all-candidates"
    } else {
        "generated-10k-principals-1k-rules"
    };
    let start = std::time::Instant::now();
    let (policy, ids) = generated_policy(10_000, 1_000, worst_case);
    eprintln!(
        "generated policy: {} principals, {} rules, compiled in {:?}",
        policy.principals().len(),
        policy.rules().len(),
        start.elapsed()
    );
    // The recipient with the most candidate rules, and a sender and case that
    // make a grant match, so the engine walks its whole candidate list.
    let mut best = None;
    'outer: for r in &ids {
        let rid = PrincipalId::new(r.as_str()).unwrap();
        let p = policy.principal(&rid).unwrap();
        if p.clearance() == "non-classifie" || p.accreditation() == Some("non-classifie") {
            continue;
        }
        for s in ids.iter().step_by(7) {
            let label =
                SecurityLabel::new("RESTREINT", PrincipalId::new(s.as_str()).unwrap().agency());
            let case = p.cases()[0].clone();
            let m = manifest(s, r, &[case.as_str()], label.clone(), 1);
            let facts = ItemFacts {
                manifest: &m,
                portion_labels: vec![&label],
            };
            if policy.decide(&facts, &rid, 1_795_000_000).allowed() {
                best = Some((s.clone(), r.clone(), case));
                break 'outer;
            }
        }
    }
    let (s, r, case) = best.expect("some generated grant matches");
    let rid = PrincipalId::new(r.as_str()).unwrap();
    let agency = PrincipalId::new(s.as_str()).unwrap().agency();
    let item = SecurityLabel::new("RESTREINT", agency.clone());
    let portions: Vec<SecurityLabel> = (0..4)
        .map(|_| SecurityLabel::new("RESTREINT", agency.clone()))
        .collect();
    let m = manifest(&s, &r, &[case.as_str()], item, 4);
    let facts = ItemFacts {
        manifest: &m,
        portion_labels: portions.iter().collect(),
    };
    let d = policy.decide(&facts, &rid, 1_795_000_000);
    assert!(d.allowed(), "{d:?}");
    c.bench_function(&format!("decide/{name}/4-portions"), |b| {
        b.iter(|| black_box(&policy).decide(black_box(&facts), black_box(&rid), 1_795_000_000))
    });
    // A recipient no grant selects: every candidate rule is tried and fails.
    let other = ids
        .iter()
        .find(|x| x.as_str() != r && x.as_str() != s)
        .map(|x| PrincipalId::new(x.as_str()).unwrap())
        .unwrap();
    c.bench_function(&format!("decide/{name}/deny-by-default"), |b| {
        b.iter(|| black_box(&policy).decide(black_box(&facts), black_box(&other), 1_795_000_000))
    });
}

criterion_group!(benches, example, large);
criterion_main!(benches);
