//! The edge that reads a policy directory: its `*.toml` files and its
//! `tests/*.toml`, handed as `(file name, text)` pairs to the pure policy
//! code ([`Policy::from_sources`], [`policy::check_sources`],
//! [`policy::run_test_sources`]).
//!
//! This module owns every file-system access of the policy: the policy
//! itself never reads a file, so that it can live in a core without I/O.
//! It must never validate, compile or decide anything itself: whatever it
//! reads goes through the same pure functions as a policy given as text.

use std::path::Path;

use crate::policy::{self, CheckReport, Policy, PolicyError, TestReport};

/// Reads every `*.toml` file directly in `dir` (sorted by name; `tests/` is
/// not part of the policy) and compiles them.
pub fn load_dir(dir: &Path) -> Result<Policy, PolicyError> {
    let files = read_toml_files(dir)?;
    Policy::from_sources(&files).map_err(PolicyError::Invalid)
}

/// Reads the `*.toml` files directly in `dir` as `(file name, text)`, sorted.
pub fn read_toml_files(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            names.push(path);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for path in names {
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, text));
    }
    Ok(files)
}

/// Reads the test files in `dir/tests/*.toml`, named `tests/<file>` as
/// their diagnostics show them; no `tests/` directory means no tests.
pub fn read_test_files(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let tests = dir.join("tests");
    if !tests.is_dir() {
        return Ok(Vec::new());
    }
    let files = read_toml_files(&tests)?;
    Ok(files
        .into_iter()
        .map(|(n, t)| (format!("tests/{n}"), t))
        .collect())
}

/// Loads the policy in `dir` and runs the cases in `dir/tests/*.toml`.
pub fn run_tests(dir: &Path) -> Result<TestReport, PolicyError> {
    let policy = load_dir(dir)?;
    let files = read_test_files(dir)?;
    policy::run_test_sources(&policy, &files).map_err(PolicyError::InvalidTests)
}

/// Validates the policy in `dir` and the syntax and references of its test
/// cases, without running them. Every problem is reported with file and line.
pub fn check(dir: &Path) -> Result<CheckReport, PolicyError> {
    let policy = load_dir(dir)?;
    let files = read_test_files(dir)?;
    policy::check_sources(&policy, &files).map_err(PolicyError::InvalidTests)
}
