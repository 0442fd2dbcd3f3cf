//! Items written in TOML (a test case, or the `--item` of `explain`): what
//! the decider sees of an item, without bodies. It parses and checks a
//! description; it never decides and never reads files.

use super::*;

/// An item described in TOML (a test case, or the `--item` of `explain`):
/// what the decider sees of it, without bodies.
#[derive(Clone, Debug)]
pub struct ItemSpec {
    /// The case name, when given.
    pub name: Option<String>,
    /// Header and item label, as a sender would sign them.
    pub manifest: Manifest,
    /// Each portion's label.
    pub portion_labels: Vec<SecurityLabel>,
    /// The recipient named in the file, if any.
    pub recipient: Option<PrincipalId>,
    /// The decision time named in the file, if any (Unix seconds, UTC).
    pub now: Option<i64>,
}

impl ItemSpec {
    /// The facts to hand to [`Policy::decide`] or [`Policy::explain`].
    pub fn facts(&self) -> ItemFacts<'_> {
        ItemFacts {
            manifest: &self.manifest,
            portion_labels: self.portion_labels.iter().collect(),
        }
    }

    /// Parses an item description: the keys of one test case at the top
    /// level of the file (`sender`, `label`, `portions`, `purpose`, …).
    pub fn from_toml(file_name: &str, text: &str) -> Result<ItemSpec, Diagnostics> {
        let files = [(file_name.to_string(), text.to_string())];
        let mut r = Reporter::new(&files);
        let raw: toml::Spanned<RawTestCase> = match toml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                r.parse_error(0, &e);
                return Err(Diagnostics(r.diags));
            }
        };
        let span = raw.span();
        match item_spec(&mut r, 0, span, raw.get_ref(), None) {
            Some(s) if r.diags.is_empty() => Ok(s),
            _ => Err(Diagnostics(r.diags)),
        }
    }
}

pub(super) fn label(
    r: &mut Reporter,
    file: usize,
    span: std::ops::Range<usize>,
    l: &RawTestLabel,
) -> Option<SecurityLabel> {
    let agency = match Agency::new(l.originator.clone()) {
        Ok(a) => a,
        Err(e) => {
            r.at(file, span, e.to_string());
            return None;
        }
    };
    let mut rel_to = BTreeSet::new();
    for a in &l.rel_to {
        match Agency::new(a.clone()) {
            Ok(a) => {
                rel_to.insert(a);
            }
            Err(e) => {
                r.at(file, span.clone(), e.to_string());
                return None;
            }
        }
    }
    let handling = match l.handling.as_deref() {
        None => None,
        Some("H0") => Some(HandlingCode::H0),
        Some("H1") => Some(HandlingCode::H1),
        Some("H2") => Some(HandlingCode::H2),
        Some("H3") => Some(HandlingCode::H3),
        Some(other) => {
            r.at(
                file,
                span,
                format!("handling {other:?} is not H0, H1, H2 or H3"),
            );
            return None;
        }
    };
    Some(SecurityLabel {
        level: l.level.clone(),
        caveats: l.caveats.iter().cloned().collect(),
        rel_to,
        handling,
        diffusion_restreinte: l.diffusion_restreinte,
        originator: Originator {
            agency,
            third_party: l.third_party.clone(),
        },
        evaluation: None,
        review_date: None,
    })
}

pub(super) fn item_spec(
    r: &mut Reporter,
    file: usize,
    span: std::ops::Range<usize>,
    c: &RawTestCase,
    default_now: Option<i64>,
) -> Option<ItemSpec> {
    let before = r.diags.len();
    let sender = PrincipalId::new(c.sender.get_ref().clone())
        .map_err(|e| r.at(file, c.sender.span(), e.to_string()))
        .ok();
    let recipient = match &c.recipient {
        None => None,
        Some(s) => PrincipalId::new(s.get_ref().clone())
            .map_err(|e| r.at(file, s.span(), e.to_string()))
            .ok(),
    };
    let priority: Option<Priority> = c
        .priority
        .get_ref()
        .parse()
        .map_err(|e: String| r.at(file, c.priority.span(), e))
        .ok();
    let now = match &c.now {
        Some(n) => test_time(n.get_ref())
            .map_err(|e| r.at(file, n.span(), format!("invalid time: {e}")))
            .ok(),
        None => default_now,
    };
    let item_label = label(r, file, c.label.span(), c.label.get_ref());
    let portion_labels: Vec<Option<SecurityLabel>> = match &c.portions {
        Some(ps) => ps
            .iter()
            .map(|p| label(r, file, p.span(), p.get_ref()))
            .collect(),
        None => vec![item_label.clone()],
    };
    if c.portions.as_ref().is_some_and(|p| p.is_empty()) {
        r.at(
            file,
            span.clone(),
            "`portions` is empty: an item has at least one portion",
        );
    }
    if r.diags.len() != before {
        return None;
    }
    let (Some(sender), Some(priority), Some(item_label)) = (sender, priority, item_label) else {
        return None;
    };
    let portion_labels: Vec<SecurityLabel> = portion_labels.into_iter().flatten().collect();
    let created = now.unwrap_or(0);
    let manifest =
        Manifest {
            version: MANIFEST_VERSION,
            header: Header {
                id: "policy-test".into(),
                sender,
                recipients: recipient
                    .iter()
                    .cloned()
                    .chain(c.outcomes.iter().filter_map(|o| {
                        PrincipalId::new(o.get_ref().recipient.get_ref().clone()).ok()
                    }))
                    .collect(),
                created,
                priority,
                purpose: c.purpose.clone(),
                cases: c.cases.clone(),
                language: "fr".into(),
                expires: None,
                request: None,
                in_reply_to: None,
            },
            label: item_label,
            portions: portion_labels.iter().map(|_| Bytes(vec![0; 32])).collect(),
        };
    Some(ItemSpec {
        name: c.name.clone(),
        manifest,
        portion_labels,
        recipient,
        now,
    })
}

/// A decision time in a test file: a date and a time of day with its
/// offset, so that no one has to guess which moment a bare date means.
pub(super) fn test_time(dt: &toml::value::Datetime) -> Result<i64, String> {
    if dt.date.is_none() {
        return Err("a date is required, not a bare time".into());
    }
    if dt.time.is_none() {
        return Err(format!(
            "{dt} is a date without a time of day: write the moment, e.g. {dt}T12:00:00Z"
        ));
    }
    if dt.offset.is_none() {
        return Err(format!(
            "{dt} has no offset: write Z for UTC (e.g. {dt}Z) or +01:00"
        ));
    }
    datetime_to_unix(dt, false)
}
