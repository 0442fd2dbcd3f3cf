//! `passerelle config check CONFIG`: a gateway's configuration, its policy
//! and its certificates checked together, before a start or a reload
//! meets them, and what will expire soon.
//!
//! It runs the same checks as a start and a reload (the validated snapshot:
//! policy, CA→agency bindings, CRLs, the server certificate and its key,
//! key file modes), then the audit key, then reads every certificate's and
//! CRL's dates. Exit codes are stable: 0 all is well, 1 something is
//! refused or wrong now, 3 all is usable but something expires (or a CRL's
//! next update falls) within `--within-days` (2 is a usage error, as for
//! every command). This module reads files only; it never starts the
//! gateway, opens its store or signals it.

use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use passerelle::config::GatewayConfig;
use passerelle::keys::GatewayKey;
use passerelle::validity;

/// Exit code: everything loads, nothing expires within the window.
pub const EXIT_OK: u8 = 0;
/// Exit code: something is refused or wrong now.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: usable, but something expires within the window.
pub const EXIT_EXPIRING: u8 = 3;

#[derive(Args)]
pub struct CheckArgs {
    /// The gateway's configuration (`gateway.toml`).
    config: PathBuf,
    /// Report what expires within this many days.
    #[arg(long, default_value_t = 30)]
    within_days: u32,
}

/// What the check found, printed in this order.
#[derive(Default)]
struct Findings {
    ok: Vec<String>,
    expiring: Vec<String>,
    errors: Vec<String>,
}

impl Findings {
    fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            EXIT_REFUSED
        } else if !self.expiring.is_empty() {
            EXIT_EXPIRING
        } else {
            EXIT_OK
        }
    }

    fn print(&self) {
        for line in &self.ok {
            println!("ok: {line}");
        }
        for line in &self.expiring {
            println!("expires: {line}");
        }
        for line in &self.errors {
            println!("error: {line}");
        }
    }
}

pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let findings = run(&args.config, now, i64::from(args.within_days) * 86_400);
    findings.print();
    Ok(ExitCode::from(findings.exit_code()))
}

fn run(path: &Path, now: i64, window: i64) -> Findings {
    let mut f = Findings::default();
    let config = match GatewayConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            f.errors.push(e.to_string());
            return f;
        }
    };
    f.ok.push(format!("{} reads", path.display()));

    // The start's and the reload's own check: if it refuses, so would they.
    match passerelle::policy_files::check(&config.policy) {
        Ok(report) => f.ok.push(format!(
            "policy {}: {} principals, {} rules, digest {}",
            config.policy.display(),
            report.principals,
            report.rules,
            report.policy_digest
        )),
        Err(e) => f
            .errors
            .push(format!("policy {}: {e}", config.policy.display())),
    }
    match passerelle::snapshot::check(&config) {
        Ok(_) => f.ok.push(
            "the policy's agencies match the CA bindings; the CAs, CRLs, server certificate \
             and its key load, and the key matches the certificate"
                .into(),
        ),
        Err(e) => f.errors.push(e.to_string()),
    }
    audit_key(&config, &mut f);
    let store = passerelle::store::StoreConfig::from_setting(&config.store);
    match store.check() {
        Ok(files) => {
            f.ok.push(format!("store {store}"));
            for (what, file) in files {
                dates(&file, what, now, window, &mut f);
            }
        }
        Err(e) => f.errors.push(e.to_string()),
    }

    dates(&config.tls.cert, "server certificate", now, window, &mut f);
    for a in &config.agencies {
        let what = format!("agency {} CA", a.name);
        dates(&a.ca, &what, now, window, &mut f);
        if let Some(crl) = &a.crl {
            crl_dates(crl, &a.ca, &a.name.to_string(), now, window, &mut f);
        }
    }
    for w in &config.witnesses {
        if let Some(ca) = &w.ca {
            let what = format!("witness {} CA", w.url);
            dates(ca, &what, now, window, &mut f);
        }
    }
    f
}

/// The audit signing key: mode, format, and agreement with the verifier
/// key file stations and auditors were given.
fn audit_key(config: &GatewayConfig, f: &mut Findings) {
    let path = &config.audit.key;
    if !path.exists() {
        f.ok.push(format!(
            "{} does not exist yet: the first start of a new log makes it (a log that \
             already has checkpoints refuses to start without it)",
            path.display()
        ));
        return;
    }
    let key = match GatewayKey::load(path, &config.audit.origin) {
        Ok(k) => k,
        Err(e) => {
            f.errors.push(e.to_string());
            return;
        }
    };
    let vkey = key.verifier_key().to_string();
    if let Some(file) = &config.audit.vkey {
        match std::fs::read_to_string(file) {
            Ok(text) if text.trim() != vkey => f.errors.push(format!(
                "{} holds {}, not the verifier key of {} ({vkey}): stations and auditors \
                 given that file would refuse every receipt",
                file.display(),
                text.trim(),
                path.display()
            )),
            Ok(_) | Err(_) => {}
        }
    }
    f.ok.push(format!("audit key {}: {vkey}", path.display()));
}

fn day(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn in_days(seconds: i64) -> String {
    format!("in {} days", seconds.max(0) / 86_400)
}

/// Each certificate in `file`: refused when not valid now, reported when
/// it expires within the window.
fn dates(file: &Path, what: &str, now: i64, window: i64, f: &mut Findings) {
    let certs = match validity::certificates(file) {
        Ok(c) => c,
        Err(e) => {
            f.errors.push(format!("{what}: {e}"));
            return;
        }
    };
    for c in certs {
        let name = format!("{what} {} ({})", c.subject, file.display());
        if c.not_after < now {
            f.errors
                .push(format!("{name} expired on {}", day(c.not_after)));
        } else if c.not_before > now {
            f.errors
                .push(format!("{name} is not valid before {}", day(c.not_before)));
        } else if c.not_after - now <= window {
            f.expiring.push(format!(
                "{name} expires on {} ({})",
                day(c.not_after),
                in_days(c.not_after - now)
            ));
        } else {
            f.ok.push(format!("{name} valid until {}", day(c.not_after)));
        }
    }
}

/// Each CRL in `file`: refused when its CA did not sign it or its next
/// update has passed (a stale CRL misses the latest revocations), reported
/// when the next update falls within the window.
fn crl_dates(file: &Path, ca: &Path, agency: &str, now: i64, window: i64, f: &mut Findings) {
    let crls = match validity::crls(file, ca) {
        Ok(c) => c,
        Err(e) => {
            f.errors.push(format!("agency {agency} CRL: {e}"));
            return;
        }
    };
    for c in crls {
        let name = format!("agency {agency} CRL ({})", file.display());
        if !c.signed_by_ca {
            f.errors.push(format!(
                "{name} is not signed by the agency's CA {} (issuer {})",
                ca.display(),
                c.issuer
            ));
            continue;
        }
        match c.next_update {
            Some(next) if next < now => f.errors.push(format!(
                "{name} is stale: its next update was due on {}; fetch the current one",
                day(next)
            )),
            Some(next) if next - now <= window => f.expiring.push(format!(
                "{name} must be replaced by {} ({})",
                day(next),
                in_days(next - now)
            )),
            Some(next) => f.ok.push(format!(
                "{name}: {} revoked, next update {}",
                c.revoked,
                day(next)
            )),
            None => f.ok.push(format!(
                "{name}: {} revoked, no next update given",
                c.revoked
            )),
        }
    }
}
