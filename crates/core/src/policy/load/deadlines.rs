//! The `[[deadline]]`s: how soon a request must be answered, by
//! priority, accessibility and purpose, followed by the defaults of
//! Directive (EU) 2023/977 that apply where the policy declares none. It
//! never decides whether an item may pass.

use std::ops::Range;

use super::names::Names;
use super::*;

/// Parses a duration written `45m`, `8h` or `3d` into seconds: at least a
/// minute, at most a year.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration such as 30s, 45m, 8h or 3d");
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        // Seconds are for exercises and drills (a deadline that passes
        // while people watch); real deadlines are minutes to days.
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if !(1..=366 * 86_400).contains(&secs) {
        return Err(format!("{s:?} is not between one second and one year"));
    }
    Ok(secs)
}

/// The answer deadlines that apply when the policy declares none for a
/// request: Directive (EU) 2023/977, art. 5(1): 8 hours for urgent requests
/// on directly accessible information, 3 days for urgent requests on
/// indirectly accessible information, 7 days for the others; and FLASH
/// within the hour.
pub(crate) fn default_deadlines() -> Vec<Deadline> {
    const DIRECTIVE: &str = "default: Directive (EU) 2023/977, art. 5(1)";
    let d = |priority: &str, accessibility, within_secs, source| Deadline {
        priority: priority.to_string(),
        accessibility,
        purposes: None,
        within_secs,
        source,
        purpose_mask: None,
    };
    vec![
        d("FLASH", None, 3_600, "default: FLASH within the hour"),
        d("URGENT", Some(Accessibility::Direct), 8 * 3_600, DIRECTIVE),
        d(
            "URGENT",
            Some(Accessibility::Indirect),
            3 * 86_400,
            DIRECTIVE,
        ),
        d("ROUTINE", None, 7 * 86_400, DIRECTIVE),
    ]
}

/// Compiles the policy's deadlines, then appends the defaults.
pub(super) fn compile(
    deadlines: &[Located<RawDeadline>],
    names: &Names,
    r: &mut Reporter,
) -> Vec<Deadline> {
    let purpose_by_name = &names.purpose_by_name;
    // --- answer deadlines ---------------------------------------------
    let mut compiled_deadlines: Vec<Deadline> = Vec::new();
    let mut deadline_keys: HashMap<String, (usize, Range<usize>)> = HashMap::default();
    for d in deadlines.iter() {
        let v = &d.value;
        let before = r.diags.len();
        let priority = v.priority.get_ref().to_ascii_uppercase();
        if !matches!(priority.as_str(), "FLASH" | "URGENT" | "ROUTINE") {
            r.at(
                d.file,
                v.priority.span(),
                format!(
                    "deadline: priority {:?} is not FLASH, URGENT or ROUTINE",
                    v.priority.get_ref()
                ),
            );
        }
        let accessibility = match &v.accessibility {
            None => None,
            Some(a) => match a.get_ref().parse::<Accessibility>() {
                Ok(x) => Some(x),
                Err(e) => {
                    r.at(d.file, a.span(), format!("deadline: {e}"));
                    None
                }
            },
        };
        let mut purpose_mask = None;
        let mut purpose_list = None;
        if let Some(ps) = &v.purposes {
            if ps.get_ref().is_empty() {
                r.at(d.file, ps.span(), "deadline: `purposes` is an empty list");
            }
            let mut m: Mask = 0;
            let mut list = Vec::new();
            for p in ps.get_ref() {
                match purpose_by_name.get(p.get_ref()) {
                    Some(&b) => {
                        m |= 1 << b;
                        list.push(p.get_ref().clone());
                    }
                    None => r.at(
                        d.file,
                        p.span(),
                        format!("deadline: unknown purpose {:?}", p.get_ref()),
                    ),
                }
            }
            list.sort();
            purpose_mask = Some(m);
            purpose_list = Some(list);
        }
        let within = match parse_duration(v.within.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                r.at(d.file, v.within.span(), format!("deadline: {e}"));
                0
            }
        };
        if r.diags.len() != before {
            continue;
        }
        let key = format!("{priority} {accessibility:?} {purpose_list:?}");
        if let Some((ff, fs)) = deadline_keys.get(&key) {
            let first = r.location(*ff, fs);
            r.at(
                d.file,
                d.span.clone(),
                format!("a second deadline for the same requests (first declared at {first})"),
            );
            continue;
        }
        deadline_keys.insert(key, (d.file, d.span.clone()));
        compiled_deadlines.push(Deadline {
            priority,
            accessibility,
            purposes: purpose_list,
            within_secs: within,
            source: "policy",
            purpose_mask,
        });
    }
    compiled_deadlines.sort_by(|a, b| {
        (&a.priority, a.accessibility, &a.purposes, a.within_secs).cmp(&(
            &b.priority,
            b.accessibility,
            &b.purposes,
            b.within_secs,
        ))
    });
    compiled_deadlines.extend(default_deadlines());
    compiled_deadlines
}
