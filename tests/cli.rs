//! The command line as a user meets it: the demo exits 0, every command has
//! help, and the station commands work against a running gateway.

mod common;

use std::process::Command;

fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

#[test]
fn demo_runs_and_exits_zero() {
    let out = passerelle().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every step behaved as expected"),
        "{stdout}"
    );
    assert!(!stdout.contains("| NO"), "{stdout}");
    // Without --keep the files are gone: no hint points at them.
    assert!(!stdout.contains("passerelle audit verify"), "{stdout}");
    assert!(stdout.contains("passerelle demo --keep DIR"), "{stdout}");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec![],
        vec!["demo"],
        vec!["serve"],
        vec!["reload"],
        vec!["pki", "init"],
        vec!["send"],
        vec!["inbox"],
        vec!["overdue"],
        vec!["fetch"],
        vec!["ack"],
        vec!["receipt"],
        vec!["outbox"],
        vec!["keygen"],
        vec!["policy", "check"],
        vec!["policy", "test"],
        vec!["policy", "explain"],
        vec!["policy", "reload"],
        vec!["policy", "replay"],
        vec!["audit", "export"],
    ] {
        let out = passerelle().args(&cmd).arg("--help").output().unwrap();
        assert!(out.status.success(), "{cmd:?} --help failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
}

#[test]
fn pki_init_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let out = passerelle()
        .args(["pki", "init"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

// The CLI blocks its thread, so the gateway needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_commands_send_inbox_fetch_ack_with_json() {
    let h = common::Harness::start().await;
    // Point the stations' client.toml files at this gateway.
    for principal in ["police/lo/rabat", "vsse/analysis/ct"] {
        let path = h
            .path()
            .join(passerelle::pki::station_dir(principal))
            .join("client.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("127.0.0.1:0", &h.addr().to_string());
        std::fs::write(&path, text).unwrap();
    }
    let config = |p: &str| {
        h.path()
            .join(passerelle::pki::station_dir(p))
            .join("client.toml")
    };
    let run = |args: &[&str], station: &str| {
        let out = passerelle()
            .args(args)
            .arg("--config")
            .arg(config(station))
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let receipt = run(
        &[
            "send",
            "--to",
            "vsse/analysis/ct",
            "--text",
            "hello from Rabat",
            "--priority",
            "FLASH",
            "--id",
            "cli-1",
        ],
        "police/lo/rabat",
    );
    assert_eq!(receipt["receipt"]["outcomes"][0]["outcome"], "queued");
    let reference = receipt["receipt"]["item_ref"].as_str().unwrap().to_string();
    let inbox = run(&["inbox", "--wait", "2"], "vsse/analysis/ct");
    assert_eq!(inbox[0]["item_ref"], reference.as_str());
    let shown = run(&["fetch", &reference, "--ack"], "vsse/analysis/ct");
    assert_eq!(shown["portions"][0]["text"], "hello from Rabat");
    assert_eq!(shown["verified"], true);
    let inbox = run(&["inbox"], "vsse/analysis/ct");
    assert_eq!(inbox.as_array().unwrap().len(), 0);
    let again = run(&["receipt", &reference], "police/lo/rabat");
    assert_eq!(again["receipt"]["item_id"], "cli-1");
}

// The CLI blocks its thread, so the gateway needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_shows_due_times_and_overdue_lists_per_desk() {
    let h = common::Harness::start().await;
    for principal in ["police/spoc", "vsse/analysis/ct", "police/lo/rabat"] {
        let path = h
            .path()
            .join(passerelle::pki::station_dir(principal))
            .join("client.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("127.0.0.1:0", &h.addr().to_string());
        std::fs::write(&path, text).unwrap();
    }
    let run = |args: &[&str], station: &str| {
        let out = passerelle()
            .args(args)
            .arg("--config")
            .arg(
                h.path()
                    .join(passerelle::pki::station_dir(station))
                    .join("client.toml"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let item = h.path().join("request.toml");
    std::fs::write(
        &item,
        r#"
id = "cli-request"
to = ["vsse/analysis/ct"]
purpose = "terrorism"
cases = ["CT-2026-014"]
priority = "FLASH"
request = { accessibility = "direct" }
[label]
level = "RESTREINT"
[[portion]]
text = "What do you hold on subject X?"
[portion.label]
level = "RESTREINT"
"#,
    )
    .unwrap();
    let sent = run(&["send", "--item", item.to_str().unwrap()], "police/spoc");
    let reference = sent
        .split_whitespace()
        .find(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no reference in {sent}"))
        .to_string();
    // FLASH: due within the hour, shown with the time left.
    let inbox = run(&["inbox"], "vsse/analysis/ct");
    let line = inbox.lines().find(|l| l.contains(&reference)).unwrap();
    assert!(
        line.contains("(in ") && line.contains("cli-request"),
        "{inbox}"
    );
    assert!(inbox.contains("answer due"), "{inbox}");
    // Nothing is past due; within two hours, listed under the asked desk.
    let none = run(&["overdue"], "vsse/analysis/ct");
    assert!(none.contains("no open request is past due"), "{none}");
    let soon = run(&["overdue", "--within", "2h"], "police/spoc");
    assert!(soon.contains("desk vsse/analysis/ct"), "{soon}");
    assert!(soon.contains(&reference), "{soon}");
    // Someone who neither sent nor received it sees nothing of it.
    let other = run(&["overdue", "--within", "2h"], "police/lo/rabat");
    assert!(!other.contains(&reference), "{other}");
}

#[test]
fn policy_check_test_and_explain_on_the_example_policy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policies = root.join("policies");
    let out = passerelle()
        .args(["policy", "check"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = passerelle()
        .args(["policy", "test"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
    let out = passerelle()
        .args(["policy", "explain"])
        .arg(&policies)
        .arg("--item")
        .arg(policies.join("examples/tr-report-to-spoc.toml"))
        .args(["--to", "police/spoc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("DENY") && text.contains("[FAIL] mandatory.third_party"),
        "{text}"
    );

    // A broken policy: check fails, naming the file and line.
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in passerelle::pki::EXAMPLE_POLICY {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let principals = std::fs::read_to_string(dir.path().join("principals.toml")).unwrap();
    std::fs::write(
        dir.path().join("principals.toml"),
        principals.replacen("clearance = \"SECRET\"", "clearance = \"SUPER SECRET\"", 1),
    )
    .unwrap();
    let out = passerelle()
        .args(["policy", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("principals.toml:") && err.contains("SUPER SECRET"),
        "{err}"
    );
}

#[test]
fn policy_check_compares_the_gateway_config_and_test_speaks_json() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policies = root.join("policies");
    let config = root.join("certs-example/gateway.toml");
    // Git keeps no file mode but 0644 and 0755, and the gateway refuses a
    // key others can read: the README's first step for the example, here.
    std::fs::set_permissions(
        root.join("certs-example/gateway/key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // `policy check policies --config FILE`: whether it passed, and its output.
    let check_with = |config: &std::path::Path| {
        let out = passerelle()
            .args(["policy", "check"])
            .arg(&policies)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (passed, text) = check_with(&config);
    assert!(passed, "{text}");
    assert!(text.contains("match the policy's"), "{text}");
    assert!(
        text.contains("its CA, CRL, certificate and key files load"),
        "{text}"
    );
    assert!(
        text.contains("answer deadline: URGENT direct within 8h"),
        "{text}"
    );

    // A gateway config that binds VSSE to another trust domain: the
    // mismatch a reload would refuse, seen before the reload.
    let dir = tempfile::tempdir().unwrap();
    let gw = std::fs::read_to_string(&config)
        .unwrap()
        .replace("vsse.example", "vsse.exemple")
        .replace("policy = \"../policies\"", "policy = \"policies\"");
    let gw_path = dir.path().join("gateway.toml");
    std::fs::write(&gw_path, gw).unwrap();
    let (passed, text) = check_with(&gw_path);
    assert!(!passed, "{text}");
    assert!(
        text.contains("error: the policy binds agency vsse to trust domain vsse.example, the gateway config to vsse.exemple"),
        "{text}"
    );

    // Bindings that match, but certificate files that are not there: the
    // same check as a start or a reload refuses it.
    let gw = std::fs::read_to_string(&config)
        .unwrap()
        .replace("policy = \"../policies\"", "policy = \"policies\"");
    std::fs::write(&gw_path, gw).unwrap();
    let (passed, text) = check_with(&gw_path);
    assert!(!passed, "{text}");
    assert!(text.contains("match the policy's"), "{text}");
    assert!(text.contains("error: ") && text.contains(".pem"), "{text}");

    let out = passerelle()
        .args(["policy", "test", "--json"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"].as_array().map(Vec::len), Some(0));
    assert!(report["cases"].as_u64().unwrap_or(0) > 60, "{report}");

    // A failing case, in JSON: the case, expected and observed effect,
    // the released portions and the rules that decided.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    for (name, text) in passerelle::pki::EXAMPLE_POLICY {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("tests/wrong.toml"),
        r#"now = 2026-11-25T12:00:00Z
[[case]]
name = "wrong on purpose"
sender = "vsse/analysis/ct"
recipient = "police/lo/rabat"
cases = ["CT-2026-014"]
label = { level = "CONFIDENTIEL", originator = "vsse" }
expect = "deny"
"#,
    )
    .unwrap();
    let out = passerelle()
        .args(["policy", "test", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &report["failures"][0];
    assert_eq!(f["name"], "wrong on purpose");
    assert_eq!(f["file"], "tests/wrong.toml");
    assert_eq!(f["line"], 2);
    assert_eq!(f["expected"], "deny");
    assert_eq!(f["observed"], "allow");
    assert_eq!(f["released"], serde_json::json!([0]));
    assert_eq!(f["rules"], serde_json::json!(["vsse.context-to-lo"]));
}

/// `policy replay` over the demo's own exported log: the policy in force
/// changes nothing (exit 0); a candidate that withdraws the grant the demo's
/// VSSE → liaison officer item used turns that release into a denial, named
/// by recipient, portion, item and rule (exit 1); an export that does not
/// verify is not replayed (exit 2).
#[test]
fn policy_replay_over_the_demos_log_names_what_a_withdrawn_grant_changes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::kept_demo(env!("CARGO_BIN_EXE_passerelle"), dir.path());
    let export = demo.join("audit-export");
    let key = demo.join("gateway/audit.vkey");
    let replay = |policy: &std::path::Path, extra: &[&str]| {
        let out = passerelle()
            .args(["policy", "replay"])
            .arg(policy)
            .arg("--export")
            .arg(&export)
            .arg("--key")
            .arg(&key)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };

    let (code, text) = replay(&demo.join("policies"), &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("replayed ") && text.contains(" acceptances"),
        "{text}"
    );
    assert!(text.contains("no change"), "{text}");

    // The candidate: the same policy without one grant.
    let candidate = dir.path().join("candidate");
    std::fs::create_dir(&candidate).unwrap();
    for f in std::fs::read_dir(demo.join("policies")).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), candidate.join(f.file_name())).unwrap();
        }
    }
    let flows = std::fs::read_to_string(candidate.join("flows.toml")).unwrap();
    let start = flows
        .find("[[grant]]\nid = \"vsse.context-to-lo\"")
        .expect("the demo's policy grants vsse.context-to-lo");
    let end = start + 9 + flows[start + 9..].find("[[").unwrap();
    std::fs::write(
        candidate.join("flows.toml"),
        format!("{}{}", &flows[..start], &flows[end..]),
    )
    .unwrap();

    let (code, text) = replay(&candidate, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("1 allow → deny, 0 deny → allow"), "{text}");
    assert!(
        text.contains("recorded: mandatory.accreditation, vsse.context-to-lo"),
        "{text}"
    );
    assert!(
        text.contains("candidate: mandatory.accreditation, default.deny"),
        "{text}"
    );
    assert!(
        text.contains("police/lo/rabat portion 1: allow → deny"),
        "{text}"
    );

    let (code, json) = replay(&candidate, &["--json"]);
    assert_eq!(code, Some(1), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["not_replayed"], 0, "{json}");
    assert_eq!(v["changes"].as_array().unwrap().len(), 1, "{json}");
    let change = &v["changes"][0];
    assert_eq!(change["direction"], "allow-to-deny");
    assert_eq!(change["recipient"], "police/lo/rabat");
    assert_eq!(v["groups"][0]["examples"][0], change["item_ref"]);

    // Filters: nothing of a case the log does not hold, nothing before the
    // log began.
    let (code, text) = replay(&candidate, &["--case", "NO-SUCH-CASE"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("replayed 0 acceptances"), "{text}");
    let (code, text) = replay(&candidate, &["--until", "2000-01-01"]);
    assert_eq!(code, Some(0), "{text}");

    // An export that does not verify is not replayed.
    let checkpoint = export.join("checkpoint");
    let mut note = std::fs::read(&checkpoint).unwrap();
    note[0] ^= 1;
    std::fs::write(&checkpoint, note).unwrap();
    let (code, text) = replay(&candidate, &[]);
    assert_eq!(code, Some(2), "{text}");
}
