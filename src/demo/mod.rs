//! `passerelle demo`: a scripted exchange over real mutual TLS.
//!
//! In a fresh directory it makes the example PKI and config, starts the
//! gateway on loopback, and plays the exchange of the cooperation protocol:
//! a liaison station abroad sends a request to VSSE, VSSE answers with
//! context and a tearline within the request's deadline (which closes it),
//! the station fetches, verifies and acknowledges; a second request left
//! unanswered is what the oversight body's listing of requests due soon
//! shows, and a drill request (the demo adds to the example policy an
//! `exercise` purpose whose requests are due within 2 seconds) is listed
//! overdue. Each step states what should happen and what did; the demo
//! succeeds only if every step behaved as expected. Apart from that drill,
//! it uses the same public pieces and policy as the CLI and the tests.
//!
//! [`abroad`] is the second demo (`passerelle demo --abroad`): a station's
//! agent that writes while the link is down and syncs when it is back.

use std::path::Path;
use std::time::Duration;

pub mod abroad;

use crate::client::{ClientError, Station};
use crate::config::GatewayConfig;
use crate::domain::receipt::Outcome;
use crate::gateway::unix_now;
use crate::pki;
use crate::server;
use crate::spec::ItemSpec;
use crate::station_config::ClientConfig;

/// One line of the demo's table.
#[derive(Debug, Clone)]
pub struct Step {
    /// Who acts.
    pub actor: String,
    /// What they do.
    pub action: String,
    /// What should happen.
    pub expected: String,
    /// What happened.
    pub observed: String,
    /// Whether that is what should happen.
    pub ok: bool,
}

/// The demo's outcome.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// What the gateway said, worth reading in full (reasons for refusals).
    pub notes: Vec<String>,
    /// The exported audit log and the key that verifies it, for a user who
    /// kept the demo's directory (`--keep`) to verify it again.
    pub export: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Report {
    /// Whether every step behaved as expected.
    pub fn all_ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    fn record(&mut self, actor: &str, action: &str, expected: &str, observed: String, ok: bool) {
        self.steps.push(Step {
            actor: actor.into(),
            action: action.into(),
            expected: expected.into(),
            observed,
            ok,
        });
    }

    /// The table, for a person.
    pub fn table(&self) -> String {
        let headers = ["#", "who", "does", "expected", "observed", "ok"];
        let rows: Vec<[String; 6]> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                [
                    (i + 1).to_string(),
                    s.actor.clone(),
                    s.action.clone(),
                    s.expected.clone(),
                    s.observed.clone(),
                    if s.ok { "yes".into() } else { "NO".into() },
                ]
            })
            .collect();
        let mut widths = headers.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}", w = w))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
        };
        let mut out = vec![line(headers.to_vec())];
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-|-"),
        );
        for r in &rows {
            out.push(line(r.iter().map(String::as_str).collect()));
        }
        out.join("\n")
    }
}

const REQUEST: &str = r#"
id = "rabat-req-0001"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "FLASH"
language = "fr"
request = { accessibility = "direct" }
[label]
level = "CONFIDENTIEL"
[[portion]]
text = "Demande de contexte: individu signalé à Rabat, possible lien avec la cellule CT-2026-014."
[portion.label]
level = "CONFIDENTIEL"
"#;

/// The answer; `in_reply_to` names the request (filled in at run time).
const ANSWER: &str = r#"
id = "vsse-ctx-0001"
to = ["police/lo/rabat"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "URGENT"
language = "fr"
in_reply_to = "REQUEST_REF"
[label]
level = "SECRET"
[[portion]]
text = "Analyse SECRET: l'individu est connu du service; contacts avec deux membres de la cellule."
[portion.label]
level = "SECRET"
[[portion]]
text = "Tearline: individu d'intérêt pour la cellule CT-2026-014, prudence recommandée lors de tout contact."
[portion.label]
level = "CONFIDENTIEL"
"#;

/// A routine request on indirectly accessible information, left
/// unanswered: 7 days by default (Directive (EU) 2023/977, art. 5(1)).
const OPEN_REQUEST: &str = r#"
id = "rabat-req-0002"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "ROUTINE"
language = "fr"
request = { accessibility = "indirect" }
[label]
level = "RESTREINT"
[[portion]]
text = "Demande: antécédents d'un second individu, sans urgence."
[portion.label]
level = "RESTREINT"
"#;

/// A partner report whose originator (the Turkish service) has no
/// unexpired consent to release to the police.
const PARTNER_REPORT: &str = r#"
id = "vsse-tp-0001"
to = ["police/spoc"]
purpose = "terrorism"
cases = ["CT-2026-031"]
priority = "URGENT"
language = "en"
[label]
level = "CONFIDENTIEL"
third_party = "partner/tr-mit"
handling = "H2"
[[portion]]
text = "Partner report: travel of a subject through Istanbul."
[portion.label]
level = "CONFIDENTIEL"
third_party = "partner/tr-mit"
handling = "H2"
"#;

fn station(dir: &Path, principal: &str, addr: std::net::SocketAddr) -> anyhow::Result<Station> {
    let mut config =
        ClientConfig::load(&dir.join(pki::station_dir(principal)).join("client.toml"))?;
    config.gateway = addr.to_string();
    config.retries = 0;
    Ok(Station::new(config)?)
}

/// What the demo adds to the example policy: a drill. Requests for the
/// purpose `exercise` are due within 2 seconds, so that the demo can show
/// a request going overdue without waiting days (or moving a clock).
const EXERCISE_PURPOSE: &str = "
[[purpose]]
id = \"exercise\"
description = \"Drills of the exchange; never operational material.\"

[[deadline]]
priority = \"ROUTINE\"
purposes = [\"exercise\"]
within = \"2s\"
";

const EXERCISE_GRANT: &str = "
[[grant]]
id = \"drill.lo-to-vsse\"
description = \"Liaison stations drill the exchange with VSSE.\"
from = { roles = [\"liaison-officer\"] }
to = { agencies = [\"vsse\"] }
purposes = [\"exercise\"]
max_level = \"RESTREINT\"
";

/// A drill request: due 2 seconds after acceptance, never answered.
const DRILL_REQUEST: &str = r#"
id = "rabat-drill-0001"
to = ["vsse/analysis/ct"]
purpose = "exercise"
priority = "ROUTINE"
language = "fr"
request = { accessibility = "direct" }
[label]
level = "RESTREINT"
[[portion]]
text = "Exercice: demande fictive, sans réponse attendue."
[portion.label]
level = "RESTREINT"
"#;

fn add_exercise_to_policy(policies: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    for (file, text) in [
        ("purposes.toml", EXERCISE_PURPOSE),
        ("flows.toml", EXERCISE_GRANT),
    ] {
        std::fs::OpenOptions::new()
            .append(true)
            .open(policies.join(file))?
            .write_all(text.as_bytes())?;
    }
    Ok(())
}

/// Runs the demo in `dir` (which should be empty) and returns its report.
pub async fn run(dir: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let example = pki::generate()?;
    pki::write_example(dir, &example, "127.0.0.1:0", None)?;
    add_exercise_to_policy(&dir.join("policies"))?;
    let config = GatewayConfig::load(&dir.join("gateway.toml"))?;
    let running = server::start(&config).await?;
    let addr = running.addr;
    report.record(
        "operator",
        "starts the gateway on loopback",
        "listening, TLS 1.3, client cert required",
        format!("listening on {addr}"),
        true,
    );

    let rabat = station(dir, "police/lo/rabat", addr)?;
    let vsse = station(dir, "vsse/analysis/ct", addr)?;

    // 1. The station abroad sends a FLASH request to VSSE.
    let request =
        ItemSpec::parse(REQUEST)?.sign(rabat.signing_key(), &rabat.config().principal, unix_now());
    let receipt = rabat.submit(&request).await?.receipt;
    let queued = receipt
        .outcomes
        .iter()
        .all(|o| o.outcome == Outcome::Queued);
    report.record(
        "police/lo/rabat",
        "sends a FLASH request (direct information) to vsse/analysis/ct",
        "accepted, queued for VSSE",
        format!(
            "receipt {} ({})",
            &receipt.item_ref[..12],
            if queued { "queued" } else { "not queued" }
        ),
        queued,
    );

    // 2. The link drops before the answer arrives; the station sends again.
    let again = rabat.submit(&request).await?.receipt;
    report.record(
        "police/lo/rabat",
        "sends the same item again (dropped link)",
        "same receipt, no duplicate",
        if again == receipt {
            "same receipt".into()
        } else {
            "a different receipt".into()
        },
        again == receipt,
    );

    // 3. VSSE long-polls its inbox, fetches, verifies and acknowledges.
    let inbox = vsse.inbox(Duration::from_secs(5)).await?;
    let listed = inbox.iter().any(|e| e.item_ref == receipt.item_ref);
    let due = inbox
        .iter()
        .find(|e| e.item_ref == receipt.item_ref)
        .and_then(|e| e.due);
    report.record(
        "vsse/analysis/ct",
        "long-polls its inbox",
        "the request is there, answer due within the hour (FLASH)",
        format!(
            "{} item(s), answer due {}",
            inbox.len(),
            match due {
                Some(d) => format!("{} min after acceptance", (d - receipt.accepted_at) / 60),
                None => "never".into(),
            }
        ),
        listed && inbox.len() == 1 && due == Some(receipt.accepted_at + 3_600),
    );
    let delivered = vsse.fetch(&receipt.item_ref).await?;
    let opened = vsse.open(&delivered);
    report.record(
        "vsse/analysis/ct",
        "fetches the request and checks the sender's signature",
        "signed by police/lo/rabat, 1 portion",
        match &opened {
            Ok(m) => format!(
                "signed by {}, {} portion(s)",
                m.manifest.header.sender,
                delivered.portions.len()
            ),
            Err(e) => e.to_string(),
        },
        opened
            .as_ref()
            .is_ok_and(|m| m.manifest.header.sender.as_str() == "police/lo/rabat"),
    );
    let acked = vsse.ack(&receipt.item_ref).await?;
    report.record(
        "vsse/analysis/ct",
        "acknowledges it",
        "acked",
        acked.status.clone(),
        acked.status == "acked",
    );

    // 4. VSSE answers with a SECRET analysis and a CONFIDENTIEL tearline.
    // Rabat's post is accredited CONFIDENTIEL: only the tearline may go.
    let answer = ItemSpec::parse(&ANSWER.replace("REQUEST_REF", &receipt.item_ref))?.sign(
        vsse.signing_key(),
        &vsse.config().principal,
        unix_now(),
    );
    let answer_receipt = vsse.submit(&answer).await?.receipt;
    let outcome = &answer_receipt.outcomes[0];
    report.record(
        "vsse/analysis/ct",
        "answers: SECRET analysis + CONFIDENTIEL tearline",
        "queued, tearline only (1 of 2 portions)",
        format!(
            "{:?}, {} of 2 portion(s)",
            outcome.outcome, outcome.portions_released
        )
        .to_lowercase(),
        outcome.outcome == Outcome::Queued && outcome.portions_released == 1,
    );

    // 5. The station gets the answer as soon as it arrives.
    let inbox = rabat.inbox(Duration::from_secs(5)).await?;
    let listed = inbox.iter().any(|e| e.item_ref == answer_receipt.item_ref);
    report.record(
        "police/lo/rabat",
        "long-polls its inbox",
        "the answer is there",
        format!("{} item(s)", inbox.len()),
        listed,
    );
    let delivered = rabat.fetch(&answer_receipt.item_ref).await?;
    let opened = rabat.open(&delivered);
    report.record(
        "police/lo/rabat",
        "fetches it; checks signature and attestation",
        "only portion 1 (the tearline), verified",
        match &opened {
            Ok(d) => format!("portions {:?}, verified", d.attestation.portions),
            Err(e) => e.to_string(),
        },
        opened.as_ref().is_ok_and(|d| {
            d.manifest.header.sender.as_str() == "vsse/analysis/ct" && d.attestation.portions == [1]
        }),
    );
    let acked = rabat.ack(&answer_receipt.item_ref).await?;
    report.record(
        "police/lo/rabat",
        "acknowledges it",
        "acked",
        acked.status.clone(),
        acked.status == "acked",
    );
    let inbox = rabat.inbox(Duration::ZERO).await?;
    report.record(
        "police/lo/rabat",
        "looks at its inbox again",
        "empty",
        format!("{} item(s)", inbox.len()),
        inbox.is_empty(),
    );

    // 5a. The answer closed the request within its deadline; a second
    // request, left unanswered, is what the overdue listing shows the
    // oversight body (the demo does not wait days: it asks what will be
    // due within 8 days).
    let closed = running
        .gateway
        .store()
        .request(&receipt.item_ref)?
        .and_then(|r| r.answered_at.map(|at| (at, r.due)));
    report.record(
        "gateway",
        "closes the request when the answer is accepted",
        "answered within its deadline",
        match closed {
            Some((at, due)) if at <= due => {
                format!("answered {} min before it was due", (due - at) / 60)
            }
            Some(_) => "answered late".into(),
            None => "still open".into(),
        },
        closed.is_some_and(|(at, due)| at <= due),
    );
    let open = ItemSpec::parse(OPEN_REQUEST)?.sign(
        rabat.signing_key(),
        &rabat.config().principal,
        unix_now(),
    );
    let open_receipt = rabat.submit(&open).await?.receipt;
    let auditor = station(dir, "oversight/comite-r", addr)?;
    let week = auditor.overdue(Duration::from_secs(8 * 86_400)).await?;
    let listed: Vec<&str> = week.requests.iter().map(|r| r.item_id.as_str()).collect();
    report.record(
        "oversight/comite-r",
        "lists requests due within 8 days",
        "only the unanswered ROUTINE request, due in 7 days",
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        },
        week.requests.len() == 1
            && week.requests[0].item_ref == open_receipt.item_ref
            && week.requests[0].due == open_receipt.accepted_at + 7 * 86_400,
    );
    // A drill request, due 2 seconds after acceptance under the demo's
    // exercise deadline, goes unanswered: the listing shows it overdue.
    let drill = ItemSpec::parse(DRILL_REQUEST)?.sign(
        rabat.signing_key(),
        &rabat.config().principal,
        unix_now(),
    );
    let drill_receipt = rabat.submit(&drill).await?.receipt;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let past_due = auditor.overdue(Duration::ZERO).await?;
    report.record(
        "oversight/comite-r",
        "lists requests past due, after the drill's 2-second deadline",
        "the unanswered drill request, overdue",
        match past_due.requests.as_slice() {
            [r] => format!(
                "{} overdue by {} s",
                r.item_id,
                unix_now().saturating_sub(r.due)
            ),
            other => format!("{} past due", other.len()),
        },
        past_due.requests.len() == 1
            && past_due.requests[0].item_ref == drill_receipt.item_ref
            && past_due.requests[0].due == drill_receipt.accepted_at + 2,
    );

    // 5b. Third-party material without a valid consent of its originator.
    let partner = ItemSpec::parse(PARTNER_REPORT)?.sign(
        vsse.signing_key(),
        &vsse.config().principal,
        unix_now(),
    );
    let partner_receipt = vsse.submit(&partner).await?.receipt;
    let outcome = &partner_receipt.outcomes[0];
    report.record(
        "vsse/analysis/ct",
        "forwards a Turkish partner report to police/spoc",
        "denied: third-party rule",
        format!("{:?}", outcome.outcome).to_lowercase(),
        outcome.outcome == Outcome::Denied,
    );
    for reason in &outcome.reasons {
        report.notes.push(format!(
            "police/spoc denied {}: {reason}",
            partner_receipt.item_id
        ));
    }

    // 6. A certificate from the police CA that claims a VSSE identity.
    let impostor_dir = dir.join("impostor");
    let police_ca = example
        .agency("police")
        .ok_or_else(|| anyhow::anyhow!("no police CA"))?;
    let forged = police_ca.issue_client(
        "spiffe://vsse.example/analysis/ct",
        &pki::ClientCertOptions::default(),
    )?;
    std::fs::create_dir_all(&impostor_dir)?;
    std::fs::write(impostor_dir.join("cert.pem"), &forged.cert_pem)?;
    crate::keys::write_private(&impostor_dir.join("key.pem"), forged.key_pem.as_bytes())?;
    let mut impostor_config = rabat.config().clone();
    impostor_config.cert = impostor_dir.join("cert.pem");
    impostor_config.key = impostor_dir.join("key.pem");
    let impostor = Station::new(impostor_config)?;
    let refused = impostor.inbox(Duration::ZERO).await;
    report.record(
        "police CA cert claiming vsse/analysis/ct",
        "reads VSSE's inbox",
        "refused: identity-refused",
        match &refused {
            Ok(_) => "allowed".into(),
            Err(ClientError::Refused(p)) => format!("refused: {}", p.slug()),
            Err(e) => e.to_string(),
        },
        matches!(&refused, Err(ClientError::Refused(p)) if p.slug() == "identity-refused"),
    );

    running.shutdown().await;
    report.record(
        "operator",
        "stops the gateway",
        "drained, final checkpoint signed",
        "stopped".into(),
        true,
    );

    // 7. The auditor's turn: export the log, then verify it offline with
    // nothing but the gateway's public key.
    let key = crate::keys::GatewayKey::load(&config.audit.key, &config.audit.origin)?;
    let log = crate::integrity::open_checked(
        &crate::store::StoreConfig::from_setting(&config.store),
        std::sync::Arc::new(key),
    )?;
    let export_dir = dir.join("audit-export");
    let exported = crate::export::export(log.store().as_ref(), &export_dir)?;
    report.record(
        "operator",
        "exports the audit log (tlog-tiles)",
        "every entry, under a signed checkpoint",
        format!(
            "{} entries, {} checkpoints",
            exported.size, exported.checkpoints
        ),
        exported.size > 0,
    );
    let vkey = crate::auditor::verify::load_verifier_key(
        &dir.join("gateway/audit.vkey").display().to_string(),
    )?;
    let verified = crate::auditor::verify::verify(&export_dir, &vkey);
    report.record(
        "auditor (oversight)",
        "verifies the export offline",
        "verified: signatures, tree, consistency",
        match &verified {
            Ok(r) => format!(
                "verified {} entries, {} checkpoints",
                r.size,
                r.checkpoints.len()
            ),
            Err(e) => e.to_string(),
        },
        verified.as_ref().is_ok_and(|r| r.size == exported.size),
    );
    // Only worth a hint when the directory outlives the demo (`--keep`):
    // the caller decides.
    report.export = Some((export_dir, dir.join("gateway/audit.vkey")));
    Ok(report)
}
