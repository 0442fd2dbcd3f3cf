//! The declarative classification and need-to-know policy: its files, their
//! loader and checker, the pure decision engine, and the security officer's
//! test runner.
//!
//! This module owns what the police and VSSE agreed on, written as TOML files
//! that security officers read, review and test, and the built-in mandatory
//! rules that no file can switch off. It never touches the file system:
//! `crate::policy_files` reads a policy directory and hands the texts to
//! [`Policy::from_sources`]. The
//! compiled [`Policy`] is immutable, and [`Policy::decide`] is pure: no I/O,
//! no clock, the same inputs always give the same [`Decision`]. Publishing a
//! new policy (reload, `Arc` swap) is the gateway's job, not this module's.
//!
//! # Brief overview
//!
//! - `source` (private): the shape of the files, with spans for messages.
//! - [`load`]: parse and validate a policy's files into a [`Policy`];
//!   every problem is a [`Diagnostic`] with file and line.
//! - [`model`]: the compiled policy (interned ids, rules indexed by
//!   recipient, SHA-256 digest of the canonical content) and its lookups:
//!   principals (and what each may do: send, read the audit log), agency
//!   ↔ CA and trust-domain bindings, retention.
//! - [`engine`]: [`Policy::decide`] and [`Policy::explain`].
//! - [`testing`]: [`check_sources`], [`run_test_sources`] and [`ItemSpec`]
//!   (items written in TOML, for `explain`).
//!
//! # Example
//!
//! ```no_run
//! use passerelle_core::policy::Policy;
//! # fn facts() -> passerelle_core::domain::decision::ItemFacts<'static> { unimplemented!() }
//! // (file name, TOML text) pairs: the caller reads them (the gateway's
//! // `policy_files::load_dir` reads a directory), this crate never does.
//! # let files: Vec<(String, String)> = vec![];
//! let policy = Policy::from_sources(&files)?;
//! let to = passerelle_core::domain::principal::PrincipalId::new("police/spoc")?;
//! let decision = policy.decide(&facts(), &to, 1_790_000_000);
//! println!("{:?} {:?} under policy {}", decision.effect(), decision.portions(), policy.digest_hex());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Decision`]: crate::domain::decision::Decision

pub mod engine;
pub mod load;
pub mod model;
mod source;
pub mod testing;

pub use engine::{rule_ids, Check, Explanation, PortionExplanation, RuleTrace};
pub use load::{parse_duration, Diagnostic, Diagnostics, PolicyError};
pub use model::{
    AgencyBinding, AuditScope, CaseAssignment, CaseMatch, Consent, Deadline, Level, Marking,
    Policy, Principal, PrincipalKind, Rule, RuleEffect, Selector, ThirdParty, AUDITOR_ROLE,
    DIFFUSION_RESTREINTE,
};
pub use testing::{
    check_sources, compare_bindings, duration_text, run_test_sources, BindingReport, CheckReport,
    ConfiguredAgency, ItemSpec, TestFailure, TestReport,
};
