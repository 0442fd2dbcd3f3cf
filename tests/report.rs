//! `passerelle audit report` over the real binary, read by a real browser:
//! the demo's export rendered to HTML, then by headless Chromium (Debian's
//! `chromium` package, which `.ci/run` installs) to a screenshot and to
//! its DOM. The page must hold every section, the screenshot must not be
//! blank, text from the log must stay text, and an export that does not
//! verify (or is not witnessed when witnesses are asked for) gives no page.
//!
//! These tests fail, never skip, when Chromium is missing: a report nobody
//! checked renders is not tested.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::audit::event::{AuditEvent, BoundedEntry, RecordedDecision, RefusedSubject};
use passerelle::domain::decision::Effect;
use passerelle::domain::item::Priority;
use passerelle::domain::label::SecurityLabel;
use passerelle::domain::principal::{Agency, PrincipalId};
use passerelle::keys::GatewayKey;
use passerelle::log_service::AuditLog;
use passerelle::store::{Batch, StoreConfig};

/// Longest a Chromium run may take before the test fails: generous, for a
/// loaded two-core machine; a page this small renders in seconds.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(180);

fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

/// The Chromium binary, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed to test the auditor's report and was not found in PATH: \
         install Debian's `chromium` package (apt-get install chromium); .ci/run does"
    );
}

/// Runs headless Chromium on `page` with `args` (`--screenshot=…` or
/// `--dump-dom`), in a fresh profile, within [`CHROMIUM_TIMEOUT`]; returns
/// its standard output.
fn run_chromium(page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(chromium())
        // No GPU here; no sandbox because tests may run as root, where
        // Chromium refuses to start with its sandbox. Nothing it opens is
        // untrusted but the page under test, which holds no script.
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--hide-scrollbars",
            "--window-size=1100,2600",
            "--no-first-run",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(out.path()).unwrap()
}

/// Decodes the PNG at `path`: its width, height and how many distinct
/// colours it has, and the share of its most frequent colour.
fn pixel_variety(path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        info.bit_depth == png::BitDepth::Eight && channels >= 3,
        "unexpected PNG format {:?} {:?}",
        info.color_type,
        info.bit_depth
    );
    let mut counts: std::collections::HashMap<[u8; 3], u64> = Default::default();
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        *counts.entry([px[0], px[1], px[2]]).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    (
        info.width,
        info.height,
        counts.len(),
        top as f64 / total.max(1) as f64,
    )
}

/// Runs `passerelle audit report` and returns its exit code and output.
fn report(export: &Path, key: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let run = passerelle()
        .args(["audit", "report"])
        .arg(export)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    (
        run.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
    )
}

const SECTIONS: [&str; 6] = [
    "id=\"verified\"",
    "id=\"flows\"",
    "id=\"denials\"",
    "id=\"timeliness\"",
    "id=\"refusals\"",
    "id=\"cases\"",
];

#[test]
fn the_demos_report_renders_in_chromium_with_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::kept_demo(env!("CARGO_BIN_EXE_passerelle"), dir.path());
    let html = dir.path().join("report.html");
    let (code, out) = report(
        &demo.join("audit-export"),
        &demo.join("gateway/audit.vkey"),
        &html,
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for absent in ["<script", "http://", "https://", "src=", "href="] {
        assert!(!page.contains(absent), "the page holds {absent:?}");
    }
    assert!(page.contains("<svg"), "no chart");

    // The filters of `audit show`: one case's page, and a filter that does
    // not parse is "could not run", with nothing written.
    let case_html = dir.path().join("case.html");
    let (code, out) = report(
        &demo.join("audit-export"),
        &demo.join("gateway/audit.vkey"),
        &case_html,
        &["--case", "CT-2026-014", "--since", "2000-01-01"],
    );
    assert_eq!(code, Some(0), "{out}");
    let case_page = std::fs::read_to_string(&case_html).unwrap();
    assert!(
        case_page.contains("--case CT-2026-014 --since 2000-01-01T00:00:00Z"),
        "the page does not say its filter"
    );
    assert!(
        case_page.len() < page.len(),
        "the case's page counts as much as the whole log"
    );
    let (code, out) = report(
        &demo.join("audit-export"),
        &demo.join("gateway/audit.vkey"),
        &dir.path().join("bad.html"),
        &["--agency", "not an agency"],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(!dir.path().join("bad.html").exists());

    let dom = run_chromium(&html, &["--dump-dom"]);
    for section in SECTIONS {
        assert!(dom.contains(section), "the rendered page lacks {section}");
    }
    let vkey = std::fs::read_to_string(demo.join("gateway/audit.vkey")).unwrap();
    for expected in [
        vkey.trim(),
        "police/lo/rabat",
        "vsse/analysis/ct",
        "CT-2026-014",
        "identity-refused",
        "FLASH target",
        "third-party rule",
    ] {
        assert!(
            dom.contains(expected),
            "the rendered page lacks {expected:?}"
        );
    }

    let png = dir.path().join("report.png");
    run_chromium(&html, &[&format!("--screenshot={}", png.display())]);
    let (w, h, colours, top) = pixel_variety(&png);
    assert!(w >= 1000 && h >= 2000, "screenshot of {w}x{h}");
    // A blank or failed page is one or two colours; the report has text,
    // bars, dots and tables in several colours.
    assert!(colours >= 32, "only {colours} colours: blank?");
    assert!(top < 0.97, "{:.1}% of the page is one colour", top * 100.0);
}

#[test]
fn no_report_is_written_for_an_export_that_does_not_verify_or_is_not_witnessed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Synthetic::new(dir.path(), vec![]);
    let html = dir.path().join("report.html");

    // Another log's key.
    let other = GatewayKey::generate(&dir.path().join("other.pem"), "test.example/audit").unwrap();
    let other_vkey = dir.path().join("other.vkey");
    std::fs::write(&other_vkey, other.verifier_key().to_string()).unwrap();
    let (code, out) = report(&log.export, &other_vkey, &html, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        !html.exists(),
        "a report was written for an unverified export"
    );

    // An entry changed after it was signed.
    let bundle = log.export.join("tile/entries/000.p/4");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&bundle, &bytes).unwrap();
    let (code, out) = report(&log.export, &log.vkey, &html, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!html.exists(), "a report was written for a tampered export");
    bytes[last] ^= 1;
    std::fs::write(&bundle, &bytes).unwrap();

    // Verified, but a witness asked for never cosigned.
    let witness_key = dir.path().join("w.key");
    let keygen = passerelle()
        .args([
            "witness",
            "keygen",
            "--name",
            "oversight.example/w1",
            "--out",
        ])
        .arg(&witness_key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let printed = String::from_utf8_lossy(&keygen.stdout).to_string();
    let witness_vkey = printed
        .split_whitespace()
        .find(|w| w.starts_with("oversight.example/w1+"))
        .unwrap_or_else(|| panic!("no verifier key in {printed:?}"))
        .to_string();
    let (code, out) = report(
        &log.export,
        &log.vkey,
        &html,
        &["--witness", &witness_vkey, "--quorum", "1"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("NOT WITNESSED"), "{out}");
    assert!(
        !html.exists(),
        "a report was written for an unwitnessed export"
    );

    // The untouched export, without witnesses: written.
    let (code, out) = report(&log.export, &log.vkey, &html, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(html.exists());
}

#[test]
fn text_from_the_log_renders_inert() {
    // What a hostile policy author or sender could put on the log: case
    // ids, rule ids and item references are free text; refusal causes and
    // addresses are the gateway's, but are escaped all the same.
    let script = "<script>document.body.setAttribute('data-pwned','script')</script>";
    let img = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">";
    let dir = tempfile::tempdir().unwrap();
    let rabat = PrincipalId::new("police/lo/rabat").unwrap();
    let ct = PrincipalId::new("vsse/analysis/ct").unwrap();
    let label = SecurityLabel::new("RESTREINT", Agency::new("police").unwrap());
    let item = format!("ref{script}");
    let decision =
        |to: &PrincipalId, effect, portions: Vec<u32>, rules: Vec<String>| RecordedDecision {
            rules,
            effect,
            reasons: vec![],
            portions,
            recipient: to.clone(),
        };
    let events = vec![
        AuditEvent::ItemAccepted {
            due: None,
            answers: None,
            item_ref: item.clone(),
            item_id: script.into(),
            sender: rabat.clone(),
            digest: "d".into(),
            purpose: script.into(),
            cases: vec![format!("CT{script}"), format!("CT{img}")],
            label: label.clone(),
            portion_labels: vec![label.clone()],
            outcomes: vec![],
            priority: Some(Priority::Flash),
            policy_digest: "p".into(),
        },
        AuditEvent::Decided {
            digest: "d".into(),
            decision: decision(&ct, Effect::Allow, vec![0], vec![img.into()]),
            item_ref: item.clone(),
            policy_digest: "p".into(),
        },
        AuditEvent::Decided {
            digest: "d".into(),
            decision: decision(
                &PrincipalId::new("police/spoc").unwrap(),
                Effect::Deny,
                vec![],
                vec![format!("deny{script}"), format!("deny{img}")],
            ),
            item_ref: item.clone(),
            policy_digest: "p".into(),
        },
        AuditEvent::Delivered {
            digest: "d".into(),
            sender: rabat.clone(),
            decision: decision(&ct, Effect::Allow, vec![0], vec![img.into()]),
            item_ref: item.clone(),
            policy_digest: "p".into(),
        },
        AuditEvent::Refused {
            last: 1_790_000_100,
            cause: format!("handshake{img}"),
            count: 3,
            first: 1_790_000_100,
            samples: vec![script.into()],
            subject: RefusedSubject::Address(img.into()),
        },
    ];
    let log = Synthetic::new(dir.path(), events);
    let html = dir.path().join("report.html");
    let (code, out) = report(&log.export, &log.vkey, &html, &[]);
    assert_eq!(code, Some(0), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("<script"),
        "markup from the log reached the page"
    );
    assert!(
        !page.contains("<img"),
        "markup from the log reached the page"
    );
    assert!(
        page.contains("&lt;script&gt;"),
        "the hostile text is not shown"
    );

    let dom = run_chromium(&html, &["--dump-dom"]);
    assert!(
        !dom.contains("data-pwned=\""),
        "text from the log ran as a script in the browser"
    );
    assert!(!dom.contains("<script"), "a script element was parsed");
    assert!(!dom.contains("<img"), "an image element was parsed");
    // Shown as text, where the auditor can read it.
    assert!(dom.contains("CT&lt;script&gt;"), "the case id is not shown");
    assert!(dom.contains("deny&lt;img"), "the deny rule is not shown");
    assert!(dom.contains("handshake&lt;img"), "the cause is not shown");
    for section in SECTIONS {
        assert!(dom.contains(section), "the rendered page lacks {section}");
    }
}

/// A log written straight into a store (entries a gateway would never
/// write, on purpose), signed and exported.
struct Synthetic {
    export: PathBuf,
    vkey: PathBuf,
}

impl Synthetic {
    fn new(dir: &Path, events: Vec<AuditEvent>) -> Synthetic {
        let key = Arc::new(
            GatewayKey::generate(&dir.join("audit-key.pem"), "test.example/audit").unwrap(),
        );
        let store = passerelle::store::open(
            &StoreConfig::from_setting(&dir.join("store.db")),
            key.clone(),
        )
        .unwrap();
        let log = AuditLog::load(store.clone()).unwrap();
        let mut entries: Vec<BoundedEntry> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| BoundedEntry::new(1_790_000_000 + i as i64 * 60, e).unwrap())
            .collect();
        // A few plain entries, so that a bundle is there to tamper with.
        while entries.len() < 4 {
            entries.push(BoundedEntry::new(1_790_000_000, AuditEvent::GatewayStopped).unwrap());
        }
        log.append(Batch::entries(entries)).unwrap();
        passerelle::gateway::sign_checkpoint(&log, &key.note, 1_790_001_000).unwrap();
        let export = dir.join("export");
        passerelle::export::export(store.as_ref(), &export).unwrap();
        let vkey = dir.join("audit.vkey");
        std::fs::write(&vkey, key.verifier_key().to_string()).unwrap();
        Synthetic { export, vkey }
    }
}
