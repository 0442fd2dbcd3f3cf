//! The `[scheme]` section and the `[[level]]`s: the classification
//! scheme's name, its ranked levels and every name (national, EU, NATO)
//! each level goes by. It owns the one lookup from a written level name to
//! a rank that every later concern uses; it never looks at principals,
//! agencies or rules.

use super::*;

/// The scheme as compiled: its name, the levels in rank order, and every
/// name of a level (as written and normalised) to its rank.
pub(super) struct Scheme {
    pub(super) name: String,
    pub(super) levels: Vec<Level>,
    pub(super) level_by_name: HashMap<String, Rank>,
}

impl Scheme {
    /// The rank a level name stands for, or a diagnostic naming `what`
    /// (`clearance`, `max_level`, …) when it is no level of the scheme.
    pub(super) fn level(
        &self,
        name: &S<String>,
        what: &str,
        file: usize,
        r: &mut Reporter,
    ) -> Option<Rank> {
        let level_by_name = &self.level_by_name;
        let found = level_by_name
            .get(name.get_ref())
            .or_else(|| level_by_name.get(&normalize_level(name.get_ref())))
            .copied();
        if found.is_none() {
            r.at(
                file,
                name.span(),
                format!(
                    "{what} {:?} is not a level of the classification scheme",
                    name.get_ref()
                ),
            );
        }
        found
    }
}

/// Compiles the scheme's name and its levels.
pub(super) fn compile(
    schemes: &[(usize, SchemeMeta)],
    levels: &mut [Located<RawLevel>],
    r: &mut Reporter,
) -> Scheme {
    // --- scheme --------------------------------------------------------
    let scheme_name = match schemes {
        [] => {
            r.at(
                0,
                0..0,
                "no [scheme] section: one file must name the classification scheme",
            );
            String::new()
        }
        [(_, s)] => s.name.get_ref().clone(),
        [_, rest @ ..] => {
            for (fi, s) in rest {
                r.at(*fi, s.name.span(), "a second [scheme] section");
            }
            schemes[0].1.name.get_ref().clone()
        }
    };

    // --- levels --------------------------------------------------------
    levels.sort_by_key(|l| *l.value.rank.get_ref());
    let mut compiled_levels: Vec<Level> = Vec::new();
    let mut level_by_name: HashMap<String, Rank> = HashMap::default();
    let mut level_ids = HashMap::default();
    if levels.is_empty() {
        r.at(0, 0..0, "no [[level]]: the scheme declares no levels");
    }
    if levels.len() > 200 {
        r.at(0, 0..0, "more than 200 levels");
    }
    for (i, l) in levels.iter().enumerate() {
        let v = &l.value;
        if *v.rank.get_ref() != i as i64 {
            r.at(
                    l.file,
                    v.rank.span(),
                    format!(
                        "level {:?} has rank {} but ranks must be 0, 1, 2, … without gaps or duplicates (expected {i})",
                        v.id.get_ref(),
                        v.rank.get_ref()
                    ),
                );
        }
        if !valid_name(v.id.get_ref(), 64) {
            r.at(
                l.file,
                v.id.span(),
                "a level id must be 1-64 printable characters",
            );
        }
        if level_ids.insert(v.id.get_ref().clone(), ()).is_some() {
            r.at(
                l.file,
                v.id.span(),
                format!("duplicate level id {:?}", v.id.get_ref()),
            );
        }
        if v.names.is_empty() {
            r.at(
                l.file,
                l.span.clone(),
                format!("level {:?} has no names", v.id.get_ref()),
            );
        }
        let retention_days = match &v.retention_days {
            None => None,
            Some(d) if (1..=36_600).contains(d.get_ref()) => Some(*d.get_ref() as u32),
            Some(d) => {
                r.at(
                    l.file,
                    d.span(),
                    format!(
                        "retention of {} days is not between 1 day and 100 years",
                        d.get_ref()
                    ),
                );
                None
            }
        };
        let rank = i as Rank;
        let mut register = |name: &S<String>, r: &mut Reporter| {
            if !valid_name(name.get_ref(), 64) {
                r.at(
                    l.file,
                    name.span(),
                    "a level name must be 1-64 printable characters",
                );
                return;
            }
            for key in [name.get_ref().clone(), normalize_level(name.get_ref())] {
                match level_by_name.get(&key) {
                        Some(&other) if other != rank => r.at(
                            l.file,
                            name.span(),
                            format!(
                                "level name {:?} already stands for another level: a name may mean only one level",
                                name.get_ref()
                            ),
                        ),
                        _ => {
                            level_by_name.insert(key, rank);
                        }
                    }
            }
        };
        register(&v.id, r);
        for n in v.names.iter().chain(&v.eu).chain(&v.nato) {
            register(n, r);
        }
        compiled_levels.push(Level {
            id: v.id.get_ref().clone(),
            rank,
            names: v.names.iter().map(|n| n.get_ref().clone()).collect(),
            eu: v.eu.iter().map(|n| n.get_ref().clone()).collect(),
            nato: v.nato.iter().map(|n| n.get_ref().clone()).collect(),
            retention_days,
        });
    }
    Scheme {
        name: scheme_name,
        levels: compiled_levels,
        level_by_name,
    }
}
