//! The test files (`tests/*.toml`): each case parsed into an item and what
//! it expects for each recipient, every problem reported with file and
//! line. It never runs a case.

use super::spec::{item_spec, test_time};
use super::*;

/// What one case expects for one recipient.
pub(super) struct Expectation {
    pub(super) line: usize,
    pub(super) recipient: PrincipalId,
    pub(super) expect: Effect,
    pub(super) released: Option<Vec<u32>>,
    pub(super) rules: Vec<String>,
    pub(super) not_rules: Vec<String>,
    pub(super) reasons: Vec<String>,
    pub(super) sender_reasons: Vec<String>,
}

pub(super) struct ParsedCase {
    pub(super) file: usize,
    pub(super) spec: ItemSpec,
    pub(super) now: i64,
    pub(super) outcomes: Vec<Expectation>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn expectation(
    r: &mut Reporter,
    known: &HashSet<&str>,
    fi: usize,
    line: usize,
    recipient: &toml::Spanned<String>,
    expect: Option<&toml::Spanned<String>>,
    case_span: std::ops::Range<usize>,
    released: &Option<Vec<u32>>,
    rules: &[toml::Spanned<String>],
    not_rules: &[toml::Spanned<String>],
    reasons: &[toml::Spanned<String>],
    sender_reasons: &[toml::Spanned<String>],
) -> Option<Expectation> {
    let recipient = PrincipalId::new(recipient.get_ref().clone())
        .map_err(|e| r.at(fi, recipient.span(), e.to_string()))
        .ok();
    let expect = match expect.map(|e| (e.get_ref().as_str(), e.span())) {
        Some(("allow", _)) => Some(Effect::Allow),
        Some(("deny", _)) => Some(Effect::Deny),
        Some((other, s)) => {
            r.at(fi, s, format!("expect {other:?} is neither allow nor deny"));
            None
        }
        None => {
            r.at(
                fi,
                case_span,
                "a test case needs `expect = \"allow\"` or `\"deny\"`",
            );
            None
        }
    };
    for id in rules.iter().chain(not_rules) {
        if !known.contains(id.get_ref().as_str()) {
            r.at(fi, id.span(), format!("unknown rule id {:?}", id.get_ref()));
        }
    }
    for id in not_rules {
        if rules.iter().any(|x| x.get_ref() == id.get_ref()) {
            r.at(
                fi,
                id.span(),
                format!(
                    "rule {:?} is both in `rules` and in `not_rules`",
                    id.get_ref()
                ),
            );
        }
    }
    for t in reasons.iter().chain(sender_reasons) {
        if t.get_ref().trim().is_empty() {
            r.at(fi, t.span(), "an expected reason must not be empty");
        }
    }
    let strs = |v: &[toml::Spanned<String>]| v.iter().map(|x| x.get_ref().clone()).collect();
    Some(Expectation {
        line,
        recipient: recipient?,
        expect: expect?,
        released: released.clone(),
        rules: strs(rules),
        not_rules: strs(not_rules),
        reasons: strs(reasons),
        sender_reasons: strs(sender_reasons),
    })
}

pub(super) fn parse_tests(
    policy: &Policy,
    files: &[(String, String)],
) -> Result<Vec<ParsedCase>, Diagnostics> {
    let mut r = Reporter::new(files);
    let known: HashSet<&str> = policy
        .rules()
        .iter()
        .map(|x| x.id.as_str())
        .chain(rule_ids::ALL)
        .collect();
    let mut out = Vec::new();
    for (fi, (_, text)) in files.iter().enumerate() {
        let tf: TestFile = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                r.parse_error(fi, &e);
                continue;
            }
        };
        let default_now = match &tf.now {
            Some(n) => match test_time(n.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.at(fi, n.span(), format!("invalid time: {e}"));
                    None
                }
            },
            None => None,
        };
        for c in &tf.case {
            let span = c.span();
            let v = c.get_ref();
            let line = crate::policy::load::line_of(text, span.start);
            if v.name.is_none() {
                r.at(fi, span.clone(), "a test case needs a `name`");
            }
            let mut outcomes = Vec::new();
            let single = v.recipient.is_some()
                || v.expect.is_some()
                || v.released.is_some()
                || !v.rules.is_empty()
                || !v.not_rules.is_empty()
                || !v.reasons.is_empty()
                || !v.sender_reasons.is_empty();
            if !v.outcomes.is_empty() {
                if single {
                    r.at(
                        fi,
                        span.clone(),
                        "a test case has either `recipient` with its expectations, or `outcomes` (one per recipient), not both",
                    );
                    continue;
                }
                let mut seen = HashSet::new();
                for o in &v.outcomes {
                    let ov = o.get_ref();
                    if !seen.insert(ov.recipient.get_ref().clone()) {
                        r.at(
                            fi,
                            ov.recipient.span(),
                            format!(
                                "recipient {} has two outcomes in this case",
                                ov.recipient.get_ref()
                            ),
                        );
                    }
                    outcomes.extend(expectation(
                        &mut r,
                        &known,
                        fi,
                        crate::policy::load::line_of(text, o.span().start),
                        &ov.recipient,
                        Some(&ov.expect),
                        o.span(),
                        &ov.released,
                        &ov.rules,
                        &ov.not_rules,
                        &ov.reasons,
                        &ov.sender_reasons,
                    ));
                }
            } else {
                let Some(rcp) = &v.recipient else {
                    r.at(
                        fi,
                        span.clone(),
                        "a test case needs a `recipient` (or `outcomes`, one per recipient)",
                    );
                    continue;
                };
                outcomes.extend(expectation(
                    &mut r,
                    &known,
                    fi,
                    line,
                    rcp,
                    v.expect.as_ref(),
                    span.clone(),
                    &v.released,
                    &v.rules,
                    &v.not_rules,
                    &v.reasons,
                    &v.sender_reasons,
                ));
            }
            let Some(spec) = item_spec(&mut r, fi, span.clone(), v, default_now) else {
                continue;
            };
            let Some(now) = spec.now else {
                r.at(
                    fi,
                    span.clone(),
                    "no decision time: set `now` on the case or at the top of the file",
                );
                continue;
            };
            out.push(ParsedCase {
                file: fi,
                spec,
                now,
                outcomes,
            });
        }
    }
    if r.diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(r.diags))
    }
}
